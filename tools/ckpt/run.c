// SPDX-License-Identifier: MIT
/*
 * run.c - `ckpt submit` and `ckpt run` (SPEC §6). submit sends a job spec
 * (a YAML/JSON file, or the flags of the job-submission API) to ckptd and
 * prints the operation id; run does the same, starting ckptd if none answers,
 * then streams the trainer's output and the events until the operation ends
 * and exits with its result. Ctrl-C cancels the operation (the trainer saves
 * a cancellation checkpoint) and prints how to resume it.
 */
#include "ckpt.h"
#include "render.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char submit_help[] =
	"usage: ckpt submit JOB.yaml [--set KEY=VALUE ...] [--idempotency-key K] [--json]\n"
	"       ckpt submit --project P --model M --dataset D [--gpus N] [--batch-size B]\n"
	"                   [--epochs E] [--lr LR] [--name NAME] [--set KEY=VALUE ...]\n"
	"                   [--idempotency-key K] [--json]\n"
	"\n"
	"Submit a job to ckptd and print the new operation's id. The job spec is YAML\n"
	"or JSON (see ckpt-job(5)); flags and --set override its keys. --set takes a\n"
	"dotted key: --set hyperparams.lr=1e-4 --set recovery.max_attempts=5.\n"
	"--idempotency-key K: a retried submit with the same key returns the same\n"
	"operation instead of starting a second one.\n"
	"Starts ckptd in the background when none answers (and says so).\n"
	"\n"
	"Options: --socket PATH, --state-dir DIR, --json, -h/--help.\n";

static const char run_help[] =
	"usage: ckpt run JOB.yaml [--set KEY=VALUE ...]\n"
	"       ckpt run [--max-attempts N] [--heartbeat-timeout S] [--name NAME]\n"
	"                [--project P] [--set KEY=VALUE ...] -- CMD ARGS...\n"
	"       ckpt run --nproc-per-node N [--nnodes M --node-rank K --rdzv URL] ...\n"
	"                -- CMD ARGS...\n"
	"\n"
	"Submit a job and follow it: the trainer's output and ckptd's events\n"
	"(detected, checkpoint_selected, ...) stream here until the operation ends.\n"
	"Exits 0 when it COMPLETED, 1 when it FAILED or was cancelled.\n"
	"The second form supervises any command (torchrun-style): ckptd gives it\n"
	"CKPT_RUN_DIR, CKPT_NOTIFY_SOCKET, ... (SPEC §4) and restarts it from its\n"
	"newest good checkpoint when it crashes, hangs or reports NaN.\n"
	"--nproc-per-node N starts a gang of N ranks with torchrun's environment\n"
	"(RANK, LOCAL_RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT, ...); when one rank\n"
	"fails all stop and all restart from the same checkpoint. Many hosts: run\n"
	"ckpt run on each with --nnodes M, its own --node-rank K and one --rdzv\n"
	"etcd://HOST:PORT/JOB (the job spec's resources: nodes, procs_per_node,\n"
	"node_rank, rdzv; torchrun's spellings --nproc_per_node, --node_rank too).\n"
	"Ctrl-C cancels the operation: the trainer saves a cancellation checkpoint,\n"
	"and ckpt prints how to resume it. A second Ctrl-C stops following at once.\n"
	"Starts ckptd in the background when none answers (and says so).\n"
	"\n"
	"Options: --idempotency-key K, --socket PATH, --state-dir DIR, -h/--help.\n";

enum {
	O_SET = CKPT_OPT_LOCAL,
	O_IDEM,
	O_PROJECT,
	O_MODEL,
	O_DATASET,
	O_GPUS,
	O_BATCH,
	O_EPOCHS,
	O_LR,
	O_NAME,
	O_MAXATT,
	O_HEARTBEAT,
	O_NPROC,
	O_NNODES,
	O_NODE_RANK,
	O_RDZV,
};

static const struct option job_opts[] = {
	CKPT_COMMON_LONGOPTS,
	{"set", required_argument, NULL, O_SET},
	{"idempotency-key", required_argument, NULL, O_IDEM},
	{"project", required_argument, NULL, O_PROJECT},
	{"model", required_argument, NULL, O_MODEL},
	{"dataset", required_argument, NULL, O_DATASET},
	{"gpus", required_argument, NULL, O_GPUS},
	{"batch-size", required_argument, NULL, O_BATCH},
	{"epochs", required_argument, NULL, O_EPOCHS},
	{"lr", required_argument, NULL, O_LR},
	{"name", required_argument, NULL, O_NAME},
	{"max-attempts", required_argument, NULL, O_MAXATT},
	{"heartbeat-timeout", required_argument, NULL, O_HEARTBEAT},
	{"nproc-per-node", required_argument, NULL, O_NPROC},
	{"nproc_per_node", required_argument, NULL, O_NPROC},
	{"nnodes", required_argument, NULL, O_NNODES},
	{"node-rank", required_argument, NULL, O_NODE_RANK},
	{"node_rank", required_argument, NULL, O_NODE_RANK},
	{"rdzv", required_argument, NULL, O_RDZV},
	{NULL, 0, NULL, 0},
};

/* Flag -> job spec key, applied like --set after the file. */
static const char *flag_key(int opt)
{
	switch (opt) {
	case O_PROJECT:
		return "project_id";
	case O_MODEL:
		return "model";
	case O_DATASET:
		return "dataset";
	case O_GPUS:
		return "resources.gpus";
	case O_BATCH:
		return "hyperparams.batch_size";
	case O_EPOCHS:
		return "hyperparams.epochs";
	case O_LR:
		return "hyperparams.lr";
	case O_NAME:
		return "name";
	case O_MAXATT:
		return "recovery.max_attempts";
	case O_HEARTBEAT:
		return "recovery.heartbeat_timeout_s";
	case O_NPROC:
		return "resources.procs_per_node";
	case O_NNODES:
		return "resources.nodes";
	case O_NODE_RANK:
		return "resources.node_rank";
	case O_RDZV:
		return "resources.rdzv";
	}
	return NULL;
}

static const char *opt_name(int opt)
{
	for (const struct option *o = job_opts; o->name; o++)
		if (o->val == opt)
			return o->name;
	return "?";
}

struct job_args {
	json_t *sets; /* array of "key=value" in command-line order */
	const char *idem;
	bool json;
};

/* Parse the options shared by run and submit; returns optind or -exit code. */
static int parse_job_opts(struct ckpt_ctx *c, const char *cmd, const char *help, int argc,
			  char **argv, bool run, struct job_args *a)
{
	int opt;

	while ((opt = getopt_long(argc, argv, run ? "+hq" : "hq", job_opts, NULL)) != -1) {
		const char *k;
		char buf[4200];
		if (ckpt_common_opt(c, opt, optarg))
			continue;
		if (opt == 'h') {
			fputs(help, stdout);
			return -CKPT_EXIT_OK - 1000;
		}
		if (opt == O_SET) {
			json_array_append_new(a->sets, json_string(optarg));
			continue;
		}
		if (opt == O_IDEM) {
			if (!optarg[0] || strlen(optarg) > 255 || strpbrk(optarg, "\r\n")) {
				ckpt_usage_err(cmd, "--idempotency-key wants 1..255 characters on "
						    "one line");
				return -CKPT_EXIT_USAGE;
			}
			a->idem = optarg;
			continue;
		}
		k = flag_key(opt);
		if (!k)
			return -ckpt_bad_opt(cmd, opt, argv);
		if (!optarg[0]) {
			ckpt_usage_err(cmd, "--%s needs a value", opt_name(opt));
			return -CKPT_EXIT_USAGE;
		}
		if (opt == O_NODE_RANK) {
			if (ckpt_parse_count(cmd, "--node-rank", optarg, 1023) < 0)
				return -CKPT_EXIT_USAGE;
		} else if (opt == O_NPROC || opt == O_NNODES) {
			char on[64];
			snprintf(on, sizeof(on), "--%s", opt_name(opt));
			if (ckpt_parse_count(cmd, on, optarg, 1024) < 1) {
				if (!strcmp(optarg, "0"))
					ckpt_usage_err(cmd, "%s wants 1 or more, not 0", on);
				return -CKPT_EXIT_USAGE;
			}
		} else if (opt == O_GPUS || opt == O_BATCH || opt == O_EPOCHS || opt == O_MAXATT ||
			   opt == O_HEARTBEAT) {
			char on[64];
			snprintf(on, sizeof(on), "--%s", opt_name(opt));
			if (ckpt_parse_count(cmd, on, optarg, 1000000000) < 0)
				return -CKPT_EXIT_USAGE;
		} else if (opt == O_LR) {
			char *end;
			double v = strtod(optarg, &end);
			if (*end || !(v > 0)) {
				ckpt_usage_err(cmd,
					       "--lr wants a positive number (e.g. 3e-5), not '%s'",
					       optarg);
				return -CKPT_EXIT_USAGE;
			}
		}
		snprintf(buf, sizeof(buf), "%s=%s", k, optarg);
		json_array_append_new(a->sets, json_string(buf));
	}
	return optind;
}

/* The job document: a file (or an empty one) with every override applied. */
static json_t *build_job(const char *file, json_t *sets)
{
	json_t *job = file ? ckpt_job_load(file) : json_object(), *s;
	size_t i;

	if (!job)
		return NULL;
	json_array_foreach(sets, i, s)
	{
		if (ckpt_job_set(job, json_string_value(s)) < 0) {
			json_decref(job);
			return NULL;
		}
	}
	return job;
}

/* POST the job; on success *id gets the new operation's id (malloc'd). */
static int submit_job(struct ckpt_ctx *c, json_t *job, const char *idem, char **id, json_t **answer)
{
	struct ckpt_resp r;
	json_t *v;
	int rc;

	ckpt_api(c, "POST", "/api/v1/operations", job, idem, &r);
	if (r.status < 200 || r.status >= 300) {
		rc = ckpt_api_fail(c, "submitting the job", &r);
		ckpt_resp_free(&r);
		return rc;
	}
	v = ckpt_jget(r.json, "id", "operation_id", NULL);
	if (!json_is_string(v)) {
		ckpt_err("submitting the job: ckptd answered HTTP %ld without an operation id; "
			 "see its log in %s.",
			 r.status, ckpt_state_dir(c));
		ckpt_resp_free(&r);
		return CKPT_EXIT_FAIL;
	}
	*id = strdup(json_string_value(v));
	if (answer) {
		*answer = r.json;
		r.json = NULL;
	}
	ckpt_resp_free(&r);
	return CKPT_EXIT_OK;
}

int cmd_submit(struct ckpt_ctx *c, int argc, char **argv)
{
	struct job_args a = {.sets = json_array()};
	json_t *job = NULL, *ans = NULL;
	const char *file = NULL;
	char *id = NULL;
	int rc, i;

	i = parse_job_opts(c, "submit", submit_help, argc, argv, false, &a);
	if (i < 0) {
		rc = i == -CKPT_EXIT_OK - 1000 ? CKPT_EXIT_OK : -i;
		goto out;
	}
	if (i < argc)
		file = argv[i++];
	if (i < argc) {
		rc = ckpt_usage_err("submit", "one job file at a time; unexpected '%s'", argv[i]);
		goto out;
	}
	if (!file && json_array_size(a.sets) == 0) {
		rc = ckpt_usage_err("submit", "give a job file (ckpt submit JOB.yaml) or flags "
					      "(--project P --model M --dataset D ...)");
		goto out;
	}
	job = build_job(file, a.sets);
	if (!job) {
		rc = CKPT_EXIT_USAGE;
		goto out;
	}
	rc = ckpt_daemon_ensure(c);
	if (rc)
		goto out;
	rc = submit_job(c, job, a.idem, &id, &ans);
	if (rc)
		goto out;
	if (c->json) {
		ckpt_json_print(ans);
	} else {
		puts(id);
		if (c->err_tty && !c->quiet)
			fprintf(stderr,
				"Submitted %s. Follow it with 'ckpt ops logs %s --follow'.\n", id,
				id);
	}
out:
	json_decref(a.sets);
	json_decref(job);
	json_decref(ans);
	free(id);
	return rc;
}

static volatile sig_atomic_t interrupted;

static void on_sigint(int sig)
{
	(void)sig;
	interrupted++;
	if (interrupted >= 2)
		signal(SIGINT, SIG_DFL);
}

static int final_status(struct ckpt_ctx *c, const char *id, char *buf, size_t len)
{
	char path[256];
	json_t *j, *op;
	int rc;

	snprintf(path, sizeof(path), "/api/v1/operations/%s", id);
	j = ckpt_api_get(c, "the operation's result", path, &rc);
	if (!j)
		return rc;
	op = ckpt_jget(j, "operation", NULL);
	snprintf(buf, len, "%s", ckpt_op_status(op ? op : j));
	json_decref(j);
	return 0;
}

int cmd_run(struct ckpt_ctx *c, int argc, char **argv)
{
	struct job_args a = {.sets = json_array()};
	json_t *job = NULL;
	const char *file = NULL;
	char *id = NULL, status[64] = "";
	struct sigaction sa;
	struct ckpt_cursor cur = {0, 0, false, 0};
	int rc, i;

	i = parse_job_opts(c, "run", run_help, argc, argv, true, &a);
	if (i < 0) {
		rc = i == -CKPT_EXIT_OK - 1000 ? CKPT_EXIT_OK : -i;
		goto out;
	}
	if (i > 0 && i <= argc && !strcmp(argv[i - 1], "--")) {
		/* ckpt run [flags] -- CMD ARGS... */
		if (i == argc) {
			rc = ckpt_usage_err("run", "nothing to run after '--'; e.g. ckpt run -- "
						   "python3 train.py");
			goto out;
		}
		job = build_job(NULL, a.sets);
		if (!job) {
			rc = CKPT_EXIT_USAGE;
			goto out;
		}
		json_t *cmd = json_array();
		for (; i < argc; i++)
			json_array_append_new(cmd, json_string(argv[i]));
		json_object_set_new(job, "command", cmd);
		if (!json_object_get(job, "name")) {
			const char *base = strrchr(argv[argc - json_array_size(cmd)], '/');
			json_object_set_new(
				job, "name",
				json_string(base ? base + 1 : argv[argc - json_array_size(cmd)]));
		}
	} else {
		if (i >= argc) {
			rc = ckpt_usage_err("run",
					    "give a job file (ckpt run JOB.yaml) or a command "
					    "after '--' (ckpt run -- CMD ARGS...)");
			goto out;
		}
		file = argv[i++];
		if (i < argc) {
			/* '+' parsing stopped at the file: options may follow it. */
			int j2;
			optind = 0; /* a fresh scan of the words after the file */
			argv[i - 1] = (char *)"ckpt run"; /* getopt's name for messages */
			j2 = parse_job_opts(c, "run", run_help, argc - i + 1, argv + i - 1, false,
					    &a);
			if (j2 < 0) {
				rc = j2 == -CKPT_EXIT_OK - 1000 ? CKPT_EXIT_OK : -j2;
				goto out;
			}
			if (j2 < argc - i + 1) {
				rc = ckpt_usage_err("run",
						    "one job file at a time; unexpected '%s'",
						    argv[i - 1 + j2]);
				goto out;
			}
		}
		job = build_job(file, a.sets);
		if (!job) {
			rc = CKPT_EXIT_USAGE;
			goto out;
		}
	}
	if (c->json) {
		rc = ckpt_usage_err("run", "--json is for read commands; 'ckpt submit --json' "
					   "prints the new operation as JSON");
		goto out;
	}
	rc = ckpt_daemon_ensure(c);
	if (rc)
		goto out;
	rc = submit_job(c, job, a.idem, &id, NULL);
	if (rc)
		goto out;
	fprintf(stderr, "ckpt: operation %s submitted; following it (Ctrl-C cancels)\n", id);

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_sigint;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	rc = ckpt_follow(c, id, true, true, true, &cur, &interrupted, 0);
	if (rc)
		goto out;
	if (interrupted) {
		struct ckpt_resp r;
		char path[256];
		snprintf(path, sizeof(path), "/api/v1/operations/%s/cancel", id);
		fprintf(stderr,
			"\nckpt: cancelling %s; the trainer saves a cancellation "
			"checkpoint first (Ctrl-C again to stop waiting)\n",
			id);
		ckpt_api(c, "POST", path, NULL, NULL, &r);
		if (r.status < 200 || r.status >= 300)
			ckpt_api_fail(c, "cancelling", &r);
		ckpt_resp_free(&r);
		/* Keep following until it is CANCELLED, or a second Ctrl-C. */
		rc = ckpt_follow(c, id, true, true, true, &cur, &interrupted, 1);
		if (rc)
			goto out;
	}
	if (final_status(c, id, status, sizeof(status)) == 0) {
		fprintf(stderr, "ckpt: operation %s %s\n", id, status);
		if (!strcmp(status, "CANCELLED") || !strcmp(status, "FAILED") || interrupted)
			fprintf(stderr, "To resume: ckpt ops resume %s\n", id);
	}
	rc = !strcmp(status, "COMPLETED") ? CKPT_EXIT_OK : CKPT_EXIT_FAIL;
out:
	json_decref(a.sets);
	json_decref(job);
	free(id);
	return rc;
}
