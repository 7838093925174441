/* SPDX-License-Identifier: MIT */
/*
 * opts.c - ckpt-train's configuration, in layers: built-in defaults (the
 * SPEC's: batch 32, lr 3e-5, 5 epochs, patience 5, cosine, accumulation 1,
 * a checkpoint every 5 epochs) < the job spec (--job or CKPT_JOB, parsed by
 * the shared parser in common/jobspec.c) < command-line flags.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ckptfs/jobspec.h>

#include "trainer_i.h"

static const char usage[] =
	"usage: ckpt-train [--job JOB.yaml] [--model PRESET] [--dataset PATH] [--epochs N]\n"
	"                  [--max-steps N] [--batch-size B] [--lr LR] [--seed S]\n"
	"                  [--checkpoint-every-steps N] [--checkpoint-every-epochs N]\n"
	"                  [--grad-accum N] [--patience N] [--lr-scheduler "
	"cosine|linear|constant]\n"
	"                  [--device auto|cpu|cuda] [--threads N] [--inject "
	"KIND@STEP[:attempt=N]]\n"
	"                  [--sync-save] [--no-checkpoint-eval] [--run-dir DIR]\n"
	"Presets: tiny, small, base, large. Environment: CKPT_RUN_DIR, CKPT_RESUME_FROM,\n"
	"CKPT_RESTORE_OPTIMIZER, CKPT_SKIP_BATCHES, CKPT_NOTIFY_SOCKET, CKPT_ATTEMPT, CKPT_JOB.\n"
	"See docs/trainer.md.\n";

enum {
	O_JOB = 256,
	O_MODEL,
	O_DATASET,
	O_EPOCHS,
	O_MAX_STEPS,
	O_BATCH,
	O_LR,
	O_SEED,
	O_EVERY_STEPS,
	O_EVERY_EPOCHS,
	O_ACCUM,
	O_PATIENCE,
	O_SCHED,
	O_DEVICE,
	O_THREADS,
	O_INJECT,
	O_SYNC,
	O_NO_EVAL,
	O_RUN_DIR,
	O_HELP,
};

static const struct option longopts[] = {
	{"job", required_argument, NULL, O_JOB},
	{"model", required_argument, NULL, O_MODEL},
	{"dataset", required_argument, NULL, O_DATASET},
	{"epochs", required_argument, NULL, O_EPOCHS},
	{"max-steps", required_argument, NULL, O_MAX_STEPS},
	{"batch-size", required_argument, NULL, O_BATCH},
	{"lr", required_argument, NULL, O_LR},
	{"seed", required_argument, NULL, O_SEED},
	{"checkpoint-every-steps", required_argument, NULL, O_EVERY_STEPS},
	{"checkpoint-every-epochs", required_argument, NULL, O_EVERY_EPOCHS},
	{"grad-accum", required_argument, NULL, O_ACCUM},
	{"patience", required_argument, NULL, O_PATIENCE},
	{"lr-scheduler", required_argument, NULL, O_SCHED},
	{"device", required_argument, NULL, O_DEVICE},
	{"threads", required_argument, NULL, O_THREADS},
	{"inject", required_argument, NULL, O_INJECT},
	{"sync-save", no_argument, NULL, O_SYNC},
	{"no-checkpoint-eval", no_argument, NULL, O_NO_EVAL},
	{"run-dir", required_argument, NULL, O_RUN_DIR},
	{"help", no_argument, NULL, O_HELP},
	{NULL, 0, NULL, 0},
};

static int int_arg(const char *flag, const char *s, int64_t lo, int64_t hi, int64_t *out)
{
	char *end;
	long long v;

	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno || end == s || *end || v < lo || v > hi) {
		fprintf(stderr,
			"ckpt-train: %s %s: must be an integer between %" PRId64 " and %" PRId64
			"\n",
			flag, s, lo, hi);
		return -EINVAL;
	}
	*out = v;
	return 0;
}

static int set_str(char *dst, size_t len, const char *flag, const char *v,
		   const char *const *allowed)
{
	for (int i = 0; allowed[i]; i++)
		if (strcmp(v, allowed[i]) == 0) {
			snprintf(dst, len, "%s", v);
			return 0;
		}
	fprintf(stderr, "ckpt-train: %s %s: unknown value\n", flag, v);
	return -EINVAL;
}

static const char *const scheds[] = {"cosine", "linear", "constant", NULL};
static const char *const devices[] = {"auto", "cpu", "cuda", NULL};

static int set_dataset(struct opts *o, const char *v)
{
	if (strncmp(v, "file://", 7) == 0)
		v += 7;
	else if (strstr(v, "://")) {
		fprintf(stderr,
			"ckpt-train: dataset %s: only local paths and file:// URLs are "
			"supported; copy the data to this machine first\n",
			v);
		return -EINVAL;
	}
	free(o->dataset);
	o->dataset = strdup(v);
	return o->dataset ? 0 : -ENOMEM;
}

static int apply_job(struct opts *o, const char *path)
{
	struct ckpt_jobspec js;
	char err[512];
	int ret = ckpt_jobspec_load_file(path, &js, err, sizeof(err));

	if (ret < 0) {
		fprintf(stderr, "ckpt-train: job spec %s: %s\n", path, err);
		return ret;
	}
	free(o->job_model);
	o->job_model = js.model ? strdup(js.model) : NULL;
	if (o->job_model)
		o->model = o->job_model;
	if (js.dataset)
		ret = set_dataset(o, js.dataset);
	o->batch_size = js.hyperparams.batch_size;
	o->lr = js.hyperparams.lr;
	o->epochs = js.hyperparams.epochs;
	o->patience = js.hyperparams.patience;
	o->grad_accum = js.hyperparams.gradient_accumulation_steps;
	if (!ret && js.hyperparams.lr_scheduler)
		ret = set_str(o->sched, sizeof(o->sched), "hyperparams.lr_scheduler",
			      js.hyperparams.lr_scheduler, scheds);
	o->ckpt_every_epochs = js.checkpoint.every_epochs;
	o->ckpt_every_steps = js.checkpoint.every_steps;
	ckpt_jobspec_free(&js);
	return ret;
}

int opts_parse(struct opts *o, int argc, char **argv)
{
	const char *job = getenv("CKPT_JOB"), *att = getenv("CKPT_ATTEMPT");
	int64_t v;
	int c, ret = 0;
	char err[256];

	memset(o, 0, sizeof(*o));
	o->model = "small";
	o->epochs = 5;
	o->batch_size = 32;
	o->lr = 3e-5;
	o->seed = 1;
	o->ckpt_every_epochs = 5;
	o->grad_accum = 1;
	o->patience = 5;
	o->threads = 1;
	o->ckpt_eval = 1;
	o->attempt = 1;
	snprintf(o->sched, sizeof(o->sched), "cosine");
	snprintf(o->device, sizeof(o->device), "auto");
	if (att && *att && int_arg("CKPT_ATTEMPT", att, 1, 1000000, &v) == 0)
		o->attempt = (int)v;

	/* The job spec is the lower layer: find it before applying any flag. */
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--") == 0)
			break;
		if (strcmp(argv[i], "--job") == 0 && i + 1 < argc)
			job = argv[i + 1];
		else if (strncmp(argv[i], "--job=", 6) == 0)
			job = argv[i] + 6;
	}
	if (job && *job && apply_job(o, job) < 0)
		return TRAIN_EXIT_CONFIG;

	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (c) {
		case O_JOB:
			break;
		case O_MODEL:
			o->model = optarg;
			break;
		case O_DATASET:
			ret = set_dataset(o, optarg);
			break;
		case O_EPOCHS:
			ret = int_arg("--epochs", optarg, 1, 1000000, &o->epochs);
			break;
		case O_MAX_STEPS:
			ret = int_arg("--max-steps", optarg, 0, INT64_MAX / 2, &o->max_steps);
			break;
		case O_BATCH:
			ret = int_arg("--batch-size", optarg, 1, 65536, &o->batch_size);
			break;
		case O_LR: {
			char *end;

			errno = 0;
			o->lr = strtod(optarg, &end);
			if (errno || end == optarg || *end || !(o->lr > 0 && o->lr < 10)) {
				fprintf(stderr,
					"ckpt-train: --lr %s: must be a number in (0, 10)\n",
					optarg);
				ret = -EINVAL;
			}
			break;
		}
		case O_SEED:
			ret = int_arg("--seed", optarg, 0, INT64_MAX, &v);
			o->seed = (uint64_t)v;
			break;
		case O_EVERY_STEPS:
			ret = int_arg("--checkpoint-every-steps", optarg, 0, INT64_MAX / 2,
				      &o->ckpt_every_steps);
			break;
		case O_EVERY_EPOCHS:
			ret = int_arg("--checkpoint-every-epochs", optarg, 0, 1000000,
				      &o->ckpt_every_epochs);
			break;
		case O_ACCUM:
			ret = int_arg("--grad-accum", optarg, 1, 65536, &o->grad_accum);
			break;
		case O_PATIENCE:
			ret = int_arg("--patience", optarg, 1, 1000000, &o->patience);
			break;
		case O_SCHED:
			ret = set_str(o->sched, sizeof(o->sched), "--lr-scheduler", optarg, scheds);
			break;
		case O_DEVICE:
			ret = set_str(o->device, sizeof(o->device), "--device", optarg, devices);
			break;
		case O_THREADS:
			ret = int_arg("--threads", optarg, 1, 256, &v);
			o->threads = (int)v;
			break;
		case O_INJECT:
			if (o->ninj == MAX_INJECT) {
				fprintf(stderr, "ckpt-train: at most %d --inject flags\n",
					MAX_INJECT);
				ret = -EINVAL;
			} else if ((ret = inject_parse(optarg, &o->inj[o->ninj], err,
						       sizeof(err))) < 0) {
				fprintf(stderr, "ckpt-train: %s\n", err);
			} else {
				o->ninj++;
			}
			break;
		case O_SYNC:
			o->sync_save = 1;
			break;
		case O_NO_EVAL:
			o->ckpt_eval = 0;
			break;
		case O_RUN_DIR:
			free(o->run_dir);
			o->run_dir = strdup(optarg);
			break;
		case O_HELP:
			fputs(usage, stdout);
			return -1;
		default:
			fprintf(stderr, "ckpt-train: unknown or incomplete option %s\n%s",
				argv[optind - 1], usage);
			return TRAIN_EXIT_CONFIG;
		}
		if (ret < 0)
			return TRAIN_EXIT_CONFIG;
	}
	if (optind < argc) {
		fprintf(stderr, "ckpt-train: unexpected argument %s\n%s", argv[optind], usage);
		return TRAIN_EXIT_CONFIG;
	}
	if (!o->run_dir && getenv("CKPT_RUN_DIR") && *getenv("CKPT_RUN_DIR"))
		o->run_dir = strdup(getenv("CKPT_RUN_DIR"));
	if (!o->run_dir) {
		fprintf(stderr,
			"ckpt-train: no run directory: set CKPT_RUN_DIR or pass --run-dir DIR\n");
		return TRAIN_EXIT_CONFIG;
	}
	if (!preset_find(o->model)) {
		fprintf(stderr, "ckpt-train: unknown model preset '%s'; known presets: %s\n",
			o->model, preset_list());
		return TRAIN_EXIT_CONFIG;
	}
	return 0;
}

void opts_free(struct opts *o)
{
	free(o->dataset);
	free(o->run_dir);
	free(o->job_model);
}
