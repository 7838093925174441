// SPDX-License-Identifier: MIT
/*
 * test_jobspec.c - the job spec model: defaults, layering, YAML and JSON,
 * strict validation with key paths, secrets kept out of serialisation.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "ckptfs/cron.h"
#include "ckptfs/jobspec.h"

#include <errno.h>
#include <glob.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void test_defaults(void **state)
{
	struct ckpt_jobspec js;

	assert_int_equal(ckpt_jobspec_init(&js), 0);
	assert_int_equal(js.hyperparams.batch_size, 32);
	assert_true(fabs(js.hyperparams.lr - 3e-5) < 1e-12);
	assert_int_equal(js.hyperparams.epochs, 5);
	assert_int_equal(js.hyperparams.patience, 5);
	assert_string_equal(js.hyperparams.lr_scheduler, "cosine");
	assert_int_equal(js.hyperparams.gradient_accumulation_steps, 1);
	assert_int_equal(js.checkpoint.every_epochs, 5);
	assert_int_equal(js.recovery.max_attempts, 3);
	assert_int_equal(js.recovery.backoff_ms, 5000);
	assert_int_equal(js.recovery.max_backoff_ms, 60000);
	assert_int_equal(js.recovery.poll_interval_ms, 15000);
	assert_int_equal(js.recovery.heartbeat_timeout_s, 300);
	assert_int_equal(js.recovery.loss_spike.window, 100);
	assert_int_equal(js.recovery.loss_spike.rollback_steps, 100);
	assert_true(js.recovery.restore_optimizer);
	assert_true(js.recovery.enabled);
	assert_int_equal(js.recovery.strategy, CKPT_STRATEGY_LATEST);
	assert_int_equal(js.checkpoint.max_age_days, 30);
	assert_string_equal(js.command[0], "ckpt-train");
	assert_null(js.command[1]);
	assert_int_equal(ckpt_jobspec_validate(&js, NULL, 0), 0);
	ckpt_jobspec_free(&js);
}

static const char spec_yaml[] = "project_id: p-demo\n"
				"name: demo\n"
				"command: [ckpt-train, --model, tiny]\n"
				"model: tiny\n"
				"dataset: /tmp/corpus.txt\n"
				"hyperparams:\n"
				"  batch_size: 16\n"
				"  lr: 1e-4\n"
				"  epochs: 2\n"
				"  early_stopping: {patience: 7}\n"
				"  lr_scheduler: linear\n"
				"  gradient_accumulation_steps: 4\n"
				"resources: {gpus: 0}\n"
				"checkpoint: {every_epochs: 1, every_steps: 50, keep_last: 2, "
				"keep_best: 1, metric: 'val_loss:min'}\n"
				"recovery:\n"
				"  checkpoint_strategy: best\n"
				"  restore_optimizer: false\n"
				"  max_attempts: 5\n"
				"  backoff_ms: 10\n"
				"  max_backoff_ms: 100\n"
				"  heartbeat_timeout_s: 2\n"
				"  loss_spike: {factor: 3, window: 10, rollback_steps: 20}\n"
				"  on_failure: [/bin/true, x]\n"
				"schedule: {cron: \"0 * * * *\"}\n"
				"secrets: {WANDB_API_KEY: {env: WANDB_API_KEY}}\n";

static void test_full_yaml(void **state)
{
	struct ckpt_jobspec js;
	char err[512];

	assert_int_equal(ckpt_jobspec_init(&js), 0);
	assert_int_equal(ckpt_jobspec_apply_yaml(&js, spec_yaml, strlen(spec_yaml), "t.yaml", err,
						 sizeof(err)),
			 0);
	assert_int_equal(ckpt_jobspec_validate(&js, err, sizeof(err)), 0);
	assert_string_equal(js.project_id, "p-demo");
	assert_string_equal(js.command[2], "tiny");
	assert_int_equal(js.hyperparams.batch_size, 16);
	assert_true(fabs(js.hyperparams.lr - 1e-4) < 1e-12);
	assert_int_equal(js.hyperparams.patience, 7);
	assert_int_equal(js.hyperparams.gradient_accumulation_steps, 4);
	assert_int_equal(js.checkpoint.every_steps, 50);
	assert_int_equal(js.recovery.strategy, CKPT_STRATEGY_BEST);
	assert_false(js.recovery.restore_optimizer);
	assert_int_equal(js.recovery.loss_spike.window, 10);
	assert_string_equal(js.recovery.on_failure[0], "/bin/true");
	assert_string_equal(js.schedule.cron, "0 * * * *");
	assert_int_equal(js.nsecrets, 1);
	assert_string_equal(js.secrets[0].env, "WANDB_API_KEY");
	ckpt_jobspec_free(&js);
}

/* Layers: a later layer wins key by key, untouched keys keep earlier values. */
static void test_layers(void **state)
{
	struct ckpt_jobspec js;
	char err[512];
	const char *policy =
		"hyperparams: {batch_size: 8, epochs: 9}\nrecovery: {max_attempts: 7}\n";
	const char *job = "{\"hyperparams\": {\"batch_size\": 64}}";

	assert_int_equal(ckpt_jobspec_init(&js), 0);
	assert_int_equal(
		ckpt_jobspec_apply_yaml(&js, policy, strlen(policy), "policy", err, sizeof(err)),
		0);
	assert_int_equal(ckpt_jobspec_apply_json(&js, job, strlen(job), err, sizeof(err)), 0);
	assert_int_equal(ckpt_jobspec_set(&js, "recovery.max_attempts", "2", err, sizeof(err)), 0);
	assert_int_equal(ckpt_jobspec_set(&js, "hyperparams.early_stopping.patience", "11", err,
					  sizeof(err)),
			 0);
	assert_int_equal(js.hyperparams.batch_size, 64);
	assert_int_equal(js.hyperparams.epochs, 9);
	assert_int_equal(js.recovery.max_attempts, 2);
	assert_int_equal(js.hyperparams.patience, 11);
	ckpt_jobspec_free(&js);
}

/* Every bad spec is rejected with a message that names the key path. */
static void test_rejects(void **state)
{
	static const struct {
		const char *yaml, *want;
	} cases[] = {
		{"hyperparams: {batch_size: 0}", "hyperparams.batch_size"},
		{"hyperparams: {batch_size: '32'}", "hyperparams.batch_size: must be an integer"},
		{"hyperparams: {lr: -1}", "hyperparams.lr"},
		/* YAML 1.2 core schema: .nan and .inf are numbers, out of range */
		{"hyperparams: {lr: .nan}",
		 "hyperparams.lr: must be a number greater than 0 and at most 10 (got nan)"},
		{"hyperparams: {lr: .inf}", "hyperparams.lr: must be a number greater than 0 and "
					    "at most 10 (got inf)"},
		{"hyperparams: {lr: -.Inf}", "(got -inf)"},
		{"hyperparams: {lr: '.nan'}", "hyperparams.lr: must be a number (got a string)"},
		{"hyperparams: {batch_size: .NAN}",
		 "hyperparams.batch_size: must be an integer between 1 and"},
		{"hyperparams: {batch_size: 0x}", "(got a string)"},
		{"hyperparams: {batch_size: 0o8}", "(got a string)"},
		{"recovery: {on_recovery: 'logger x'}",
		 "recovery.on_recovery: 'logger x' is one string with spaces"},
		{"recovery: {on_failure: 'notify-send  job failed'}",
		 "write an argv list, e.g. [notify-send, job, failed]"},
		{"command: 'python3 train.py'", "command: 'python3 train.py' is one string"},
		{"hyperparams: {early_stopping: {patience: x}}",
		 "hyperparams.early_stopping.patience"},
		{"hyperparams: {early_stopping: {patiense: 3}}",
		 "early_stopping.patiense: unknown key"},
		{"hyperparams: {lr_scheduler: exp}", "hyperparams.lr_scheduler: must be one of"},
		{"hyperparams: [1]", "hyperparams: must be a mapping"},
		{"bogus: 1", "bogus: unknown key"},
		{"model: bert-base", "model: must be one of tiny, small, base, large"},
		{"dataset: s3://bucket/x", "dataset: scheme 's3://'"},
		{"command: []", "command: must not be empty"},
		{"command: [1, 2]", "command: element 0"},
		{"command: {a: b}", "command: must be a list"},
		{"recovery: {max_attempts: 0}", "recovery.max_attempts"},
		{"recovery: {checkpoint_strategy: newest}", "recovery.checkpoint_strategy"},
		{"recovery: {checkpoint_strategy: 'specific:rel/path'}", "absolute"},
		{"recovery: {checkpoint_strategy: 'specific:/a/../b'}", "'..'"},
		{"recovery: {loss_spike: {factor: 0.5}}", "recovery.loss_spike.factor"},
		{"recovery: {enabled: yes}", "recovery.enabled: must be true or false"},
		{"checkpoint: {metric: val_loss}", "checkpoint.metric"},
		{"schedule: {cron: '61 * * * *'}", "schedule.cron"},
		{"schedule: {cron: '* * *'}", "schedule.cron"},
		{"secrets: {lower: {env: X}}", "secrets.lower"},
		{"secrets: {KEY: plain}", "secrets.KEY: give a reference"},
		{"secrets: {CKPT_X: {env: X}}", "secrets.CKPT_X"},
		{"secrets: {KEY: {env: A, file: /b}}", "secrets.KEY"},
		{"name: ../../etc", "name: must be letters"},
		{"project_id: ''", "project_id: must not be empty"},
		{"a: 1\na: 2", "duplicate key"},
		{"[1, 2]", "must be a mapping"},
		{"key: [unclosed", "line"},
		{"a: 1\n---\nb: 2", "more than one YAML document"},
		{"", "empty document"},
		{"x: &a [*a]", ""},
		{"resources: {procs_per_node: 0}", "resources.procs_per_node: must be an integer "
						   "between 1 and 1024 (got 0)"},
		{"resources: {nodes: 2.5}", "resources.nodes: must be an integer"},
		{"resources: {node_rank: -1}", "resources.node_rank"},
		{"resources: {rdzv: 5}", "resources.rdzv: must be a string"},
		{"resources: {nproc: 2}",
		 "resources.nproc: unknown key (known keys here: gpus, nodes, "
		 "procs_per_node, node_rank, rdzv, nice)"},
		{"resources: {nice: 20}", "resources.nice: must be an integer between 0 and 19 "
					  "(got 20)"},
		{"resources: {nice: -5}", "resources.nice: must be an integer between 0 and 19"},
		{"recovery: {gang_timeout_s: 0}", "recovery.gang_timeout_s"},
	};
	char err[512];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct ckpt_jobspec js;
		int ret;

		assert_int_equal(ckpt_jobspec_init(&js), 0);
		err[0] = '\0';
		ret = ckpt_jobspec_apply_yaml(&js, cases[i].yaml, strlen(cases[i].yaml), "job.yaml",
					      err, sizeof(err));
		if (ret != -EINVAL || !strstr(err, cases[i].want))
			fail_msg("case %zu '%s': ret %d err '%s' (want '%s')", i, cases[i].yaml,
				 ret, err, cases[i].want);
		ckpt_jobspec_free(&js);
	}
}

/* YAML 1.2 core schema integers: 0x hex and 0o octal. */
static void test_yaml_numbers(void **state)
{
	static const char y[] = "hyperparams: {batch_size: 0x20, epochs: 0o17, lr: +.5e-3}\n"
				"resources: {gpus: 0x0, nice: 0xa}\n"
				"recovery: {on_recovery: logger, loss_spike: {factor: 0x2}}\n";
	struct ckpt_jobspec js;
	char err[512];

	assert_int_equal(ckpt_jobspec_init(&js), 0);
	if (ckpt_jobspec_apply_yaml(&js, y, strlen(y), "job.yaml", err, sizeof(err)))
		fail_msg("%s", err);
	assert_int_equal(js.hyperparams.batch_size, 32);
	assert_int_equal(js.hyperparams.epochs, 15);
	assert_true(fabs(js.hyperparams.lr - 5e-4) < 1e-12);
	assert_int_equal(js.resources.gpus, 0);
	assert_int_equal(js.resources.nice, 10);
	assert_true(js.recovery.loss_spike.factor == 2.0);
	assert_string_equal(js.recovery.on_recovery[0], "logger");
	assert_null(js.recovery.on_recovery[1]);
	ckpt_jobspec_free(&js);
}

static void test_cross_validate(void **state)
{
	struct ckpt_jobspec js;
	char err[512];
	const char *y = "recovery: {backoff_ms: 100, max_backoff_ms: 10}";

	assert_int_equal(ckpt_jobspec_init(&js), 0);
	assert_int_equal(ckpt_jobspec_apply_yaml(&js, y, strlen(y), NULL, err, sizeof(err)), 0);
	assert_int_equal(ckpt_jobspec_validate(&js, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "recovery.backoff_ms"));
	ckpt_jobspec_free(&js);
}

/* A gang: the cross-field rules of resources (SPEC §9), its serialised
 * form, and rdzv URLs. */
static void test_gang(void **state)
{
	static const struct {
		const char *yaml, *want;
	} bad[] = {
		{"resources: {nodes: 2, procs_per_node: 2}", "resources.rdzv: needed when"},
		{"resources: {nodes: 2, node_rank: 2, rdzv: 'etcd://h:1/j'}",
		 "resources.node_rank: 2 is not a host of a gang of 2"},
		{"resources: {nodes: 2, rdzv: 'http://h:1/j'}", "only etcd rendezvous"},
		{"resources: {nodes: 2, rdzv: 'etcd://h/j'}", "is not etcd://HOST:PORT/JOB"},
		{"resources: {nodes: 2, rdzv: 'etcd://h:99999/j'}", "is not etcd://"},
		{"resources: {nodes: 2, rdzv: 'etcd://h:1/a b'}", "is not etcd://"},
		{"resources: {rdzv: 'etcd://h:1/j'}", "resources.rdzv: only for a gang"},
	};
	struct ckpt_jobspec js;
	char err[512], host[64], job[72], *out;
	const char *y;
	int port;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(ckpt_jobspec_init(&js), 0);
		assert_int_equal(ckpt_jobspec_apply_yaml(&js, bad[i].yaml, strlen(bad[i].yaml),
							 NULL, err, sizeof(err)),
				 0);
		err[0] = '\0';
		if (ckpt_jobspec_validate(&js, err, sizeof(err)) != -EINVAL ||
		    !strstr(err, bad[i].want))
			fail_msg("case %zu '%s': err '%s' (want '%s')", i, bad[i].yaml, err,
				 bad[i].want);
		ckpt_jobspec_free(&js);
	}
	/* not a gang: no torchrun keys in the resolved spec */
	assert_int_equal(ckpt_jobspec_init(&js), 0);
	assert_false(ckpt_jobspec_gang(&js));
	out = ckpt_jobspec_to_json(&js);
	assert_null(strstr(out, "procs_per_node"));
	free(out);
	ckpt_jobspec_free(&js);
	y = "resources: {nodes: 2, procs_per_node: 4, node_rank: 1, rdzv: "
	    "'etcd://10.0.0.1:2379/job-1'}\n";
	assert_int_equal(ckpt_jobspec_init(&js), 0);
	assert_int_equal(ckpt_jobspec_apply_yaml(&js, y, strlen(y), NULL, err, sizeof(err)), 0);
	assert_int_equal(ckpt_jobspec_validate(&js, err, sizeof(err)), 0);
	assert_true(ckpt_jobspec_gang(&js));
	assert_int_equal(ckpt_jobspec_world(&js), 8);
	assert_int_equal(ckpt_jobspec_local_ranks(&js), 4);
	out = ckpt_jobspec_to_json(&js);
	assert_non_null(strstr(out, "\"procs_per_node\": 4"));
	assert_non_null(strstr(out, "\"rdzv\": \"etcd://10.0.0.1:2379/job-1\""));
	free(out);
	ckpt_jobspec_free(&js);
	assert_int_equal(ckpt_rdzv_parse("etcd://[::1]:2379/j.x_y-z", host, sizeof(host), &port,
					 job, sizeof(job)),
			 0);
	assert_string_equal(host, "[::1]");
	assert_int_equal(port, 2379);
	assert_string_equal(job, "j.x_y-z");
	assert_int_equal(
		ckpt_rdzv_parse("etcd://h:2379/", host, sizeof(host), &port, job, sizeof(job)),
		-EINVAL);
}

/* An inline secret never leaves through serialisation. */
static void test_secret_redacted(void **state)
{
	struct ckpt_jobspec js;
	char err[512], *out, *v;
	const char *y = "secrets: {TOKEN: {value: s3cr3t-XYZ}, OTHER: {env: HOME}}";

	assert_int_equal(ckpt_jobspec_init(&js), 0);
	assert_int_equal(ckpt_jobspec_apply_yaml(&js, y, strlen(y), NULL, err, sizeof(err)), 0);
	out = ckpt_jobspec_to_json(&js);
	assert_non_null(out);
	assert_null(strstr(out, "s3cr3t"));
	assert_non_null(strstr(out, "\"HOME\""));
	v = ckpt_secret_resolve(&js.secrets[0], err, sizeof(err));
	assert_string_equal(v, "s3cr3t-XYZ");
	free(v);
	free(out);
	ckpt_jobspec_free(&js);
}

/* The serialised spec reads back to the same values (it is the CKPT_JOB file). */
static void test_roundtrip(void **state)
{
	struct ckpt_jobspec a, b;
	char err[512], path[] = "/tmp/jobspec-XXXXXX", *out;
	int fd;

	assert_int_equal(ckpt_jobspec_init(&a), 0);
	assert_int_equal(
		ckpt_jobspec_apply_yaml(&a, spec_yaml, strlen(spec_yaml), NULL, err, sizeof(err)),
		0);
	out = ckpt_jobspec_to_json(&a);
	fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, out, strlen(out)), (ssize_t)strlen(out));
	close(fd);
	if (ckpt_jobspec_load_file(path, &b, err, sizeof(err)))
		fail_msg("%s", err);
	unlink(path);
	assert_int_equal(b.hyperparams.batch_size, 16);
	assert_true(fabs(b.hyperparams.lr - 1e-4) < 1e-15);
	assert_int_equal(b.recovery.strategy, CKPT_STRATEGY_BEST);
	assert_string_equal(b.schedule.cron, "0 * * * *");
	assert_string_equal(b.secrets[0].env, "WANDB_API_KEY");
	free(out);
	ckpt_jobspec_free(&a);
	ckpt_jobspec_free(&b);
}

static void test_load_missing(void **state)
{
	struct ckpt_jobspec js;
	char err[512];

	assert_int_equal(ckpt_jobspec_load_file("/nonexistent/job.yaml", &js, err, sizeof(err)),
			 -ENOENT);
	assert_non_null(strstr(err, "/nonexistent/job.yaml"));
}

/* Every example job spec in examples/ loads and validates. */
static void test_examples(void **state)
{
	const char *root = getenv("CKPTFS_SOURCE_ROOT");
	char pattern[4096];
	glob_t gl;

	if (!root)
		skip();
	snprintf(pattern, sizeof(pattern), "%s/examples/*.yaml", root);
	assert_int_equal(glob(pattern, 0, NULL, &gl), 0);
	assert_true(gl.gl_pathc >= 3);
	for (size_t i = 0; i < gl.gl_pathc; i++) {
		struct ckpt_jobspec js;
		char err[512];

		if (ckpt_jobspec_load_file(gl.gl_pathv[i], &js, err, sizeof(err)))
			fail_msg("%s", err);
		ckpt_jobspec_free(&js);
	}
	globfree(&gl);
}

static void test_cron(void **state)
{
	struct ckpt_cron c;
	char err[200];
	time_t t0 = 1700000000; /* 2023-11-14 22:13:20 UTC */

	assert_int_equal(ckpt_cron_parse("0 * * * *", &c, err, sizeof(err)), 0);
	assert_int_equal(ckpt_cron_next(&c, t0), 1700002800); /* 23:00 */
	assert_int_equal(ckpt_cron_parse("*/15 2 * * 1-5", &c, err, sizeof(err)), 0);
	assert_int_equal(ckpt_cron_next(&c, t0) % 86400, 2 * 3600);
	assert_int_equal(ckpt_cron_parse("* * * * * *", &c, err, sizeof(err)), -EINVAL);
	assert_int_equal(ckpt_cron_parse("5-1 * * * *", &c, err, sizeof(err)), -EINVAL);
}

/* crontab(5) names and macros are the same schedules as their numbers. */
static void test_cron_names(void **state)
{
	static const char *const same[][2] = {
		{"*/15 2 * * MON-FRI", "*/15 2 * * 1-5"},
		{"0 3 * jan,Jul sun", "0 3 * 1,7 0"},
		{"0 0 * DEC-dec Sat,SUN", "0 0 * 12 0,6"},
		{"@hourly", "0 * * * *"},
		{"@daily", "0 0 * * *"},
		{"@midnight", "0 0 * * *"},
		{"@weekly", "0 0 * * 0"},
		{"@monthly", "0 0 1 * *"},
		{"@yearly", "0 0 1 1 *"},
		{"@ANNUALLY", "0 0 1 1 *"},
	};
	struct ckpt_cron a, b;
	char err[200];
	time_t t0 = 1700000000;

	for (size_t i = 0; i < sizeof(same) / sizeof(same[0]); i++) {
		memset(&a, 0, sizeof(a));
		memset(&b, 0, sizeof(b));
		assert_int_equal(ckpt_cron_parse(same[i][0], &a, err, sizeof(err)), 0);
		assert_int_equal(ckpt_cron_parse(same[i][1], &b, err, sizeof(err)), 0);
		assert_memory_equal(&a, &b, sizeof(a));
		for (time_t t = t0, n = 0; n < 20; n++, t = ckpt_cron_next(&a, t))
			assert_int_equal(ckpt_cron_next(&a, t), ckpt_cron_next(&b, t));
	}
	assert_int_equal(ckpt_cron_parse("@reboot", &a, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "@hourly"));
	assert_int_equal(ckpt_cron_parse("0 0 * * MONDAY", &a, err, sizeof(err)), -EINVAL);
	assert_int_equal(ckpt_cron_parse("0 0 * FOO *", &a, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "JAN-DEC"));
	assert_int_equal(ckpt_cron_parse("MON * * * *", &a, err, sizeof(err)), -EINVAL);
}

/* A day that never comes: no fire time in the five-year horizon. */
static void test_cron_never(void **state)
{
	static const char *const never[] = {"0 0 31 2 *", "0 0 30 2 *", "0 0 31 4 *",
					    "0 0 31 jun,sep,nov *"};
	struct ckpt_cron c;
	char err[200];
	time_t t0 = 1700000000, t;

	for (size_t i = 0; i < sizeof(never) / sizeof(never[0]); i++) {
		assert_int_equal(ckpt_cron_parse(never[i], &c, err, sizeof(err)), 0);
		assert_int_equal(ckpt_cron_next(&c, t0), -1);
	}
	/* 29 February comes every four years; with a weekday it is "either" */
	assert_int_equal(ckpt_cron_parse("0 0 29 2 *", &c, err, sizeof(err)), 0);
	t = ckpt_cron_next(&c, t0);
	assert_int_equal(t, 1709164800);		     /* 2024-02-29 00:00 UTC */
	assert_int_equal(ckpt_cron_next(&c, t), 1835395200); /* 2028-02-29 */
	assert_int_equal(ckpt_cron_parse("0 0 31 2 mon", &c, err, sizeof(err)), 0);
	assert_int_equal(ckpt_cron_next(&c, t0) % (7 * 86400), 4 * 86400); /* a Monday */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults),	cmocka_unit_test(test_full_yaml),
		cmocka_unit_test(test_layers),		cmocka_unit_test(test_rejects),
		cmocka_unit_test(test_yaml_numbers),	cmocka_unit_test(test_cross_validate),
		cmocka_unit_test(test_secret_redacted), cmocka_unit_test(test_roundtrip),
		cmocka_unit_test(test_load_missing),	cmocka_unit_test(test_cron),
		cmocka_unit_test(test_cron_names),	cmocka_unit_test(test_cron_never),
		cmocka_unit_test(test_examples),	cmocka_unit_test(test_gang),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
