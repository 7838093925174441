/* SPDX-License-Identifier: MIT */
/*
 * jobspec.h - the job spec model (SPEC §5): what a training job is, with its
 * hyperparameters, checkpoint and recovery policy, schedule and secrets.
 *
 * A spec is built in layers, each overriding the one before:
 *
 *   built-in defaults  <  project policy file  <  job spec  <  flags (--set)
 *
 *   struct ckpt_jobspec js;
 *   char err[256];
 *   ckpt_jobspec_init(&js);                          // built-in defaults
 *   ckpt_jobspec_apply_file(&js, "policy.yaml", ...); // optional layer
 *   ckpt_jobspec_apply_file(&js, "job.yaml", ...);
 *   ckpt_jobspec_set(&js, "hyperparams.lr", "1e-4", ...);
 *   ckpt_jobspec_validate(&js, ...);                 // cross-field checks
 *   ...
 *   ckpt_jobspec_free(&js);
 *
 * or in one call: ckpt_jobspec_load_file(path, &js, err, sizeof(err)).
 *
 * YAML goes through libyaml and is turned into a jansson tree, so YAML and
 * JSON (the API's format) share one validator. Validation is strict: unknown
 * keys, wrong types and out-of-range values are rejected with a message that
 * starts with the key's path, e.g. "hyperparams.batch_size: must be an
 * integer between 1 and 1048576 (got 0)". Nothing is silently replaced.
 *
 * Linking: the code is in libckptcommon (common/jobspec*.c) and needs libyaml
 * and jansson, so a target that calls it adds yaml_dep and jansson_dep next to
 * common_dep.
 *
 * Functions return 0 or a negative errno (-EINVAL for an invalid spec, with
 * the reason in `err`), like the rest of the project.
 */
#ifndef CKPTFS_JOBSPEC_H
#define CKPTFS_JOBSPEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Limits: longer input is rejected, never truncated. */
#define CKPT_JOBSPEC_MAX_BYTES (1u << 20) /* a spec file or API body */
#define CKPT_JOBSPEC_MAX_ARGV 256	  /* command / hook arguments */
#define CKPT_JOBSPEC_MAX_SECRETS 64

enum ckpt_strategy {
	CKPT_STRATEGY_LATEST = 0, /* newest good version by commit order */
	CKPT_STRATEGY_BEST,	  /* best good version by checkpoint.metric */
	CKPT_STRATEGY_SPECIFIC,	  /* recovery.specific_path */
};

/* A secret: an environment variable given to the trainer, whose value comes
 * from ckptd's environment (env), a file (file) or the spec itself (value,
 * held in memory only: ckptd moves it to a 0600 file before storing the spec).
 * Exactly one source is set. */
struct ckpt_secret {
	char *name;  /* the trainer's variable, [A-Z_][A-Z0-9_]*, not CKPT_* */
	char *env;   /* or NULL */
	char *file;  /* or NULL */
	char *value; /* or NULL; never printed, never serialised */
};

struct ckpt_jobspec {
	char *project_id; /* default "default" */
	char *name;	  /* default "job" */
	char **command;	  /* NULL-terminated argv; default {"ckpt-train", NULL} */
	char *model;	  /* tiny | small | base | large; default "small" */
	char *dataset;	  /* local path or file:// URL; NULL = the bundled corpus */

	struct {
		int64_t batch_size;		     /* 32 */
		double lr;			     /* 3e-5 */
		int64_t epochs;			     /* 5 */
		int64_t patience;		     /* early_stopping.patience, 5 */
		char *lr_scheduler;		     /* cosine | linear | constant; "cosine" */
		int64_t gradient_accumulation_steps; /* 1 */
	} hyperparams;

	struct {
		int64_t gpus; /* 1 (informational: ckptd does not reserve GPUs) */
		/* A gang of ranks (SPEC §9, docs/ranks.md): 0 = not given. Either
		 * given (even as 1) makes the job a gang, started with the
		 * torchrun environment. */
		int64_t nodes;		/* hosts of the gang */
		int64_t procs_per_node; /* ranks on each host */
		int64_t node_rank;	/* this host's place, 0 .. nodes-1 */
		char *rdzv;		/* etcd://HOST:PORT/JOB, needed for nodes > 1 */
		/* CPU priority of the trainer, 0 (as ckptd's) .. 19 (lowest):
		 * its nice and its session's autogroup's (ckptd starts each
		 * trainer in a session of its own); 0 */
		int64_t nice;
	} resources;

	struct {
		int64_t every_epochs; /* 5 */
		int64_t every_steps;  /* 0 = off */
		int64_t keep_last;    /* 3 */
		int64_t keep_best;    /* 1 */
		char *metric;	      /* "val_loss:min" (NAME:min|max) */
		int64_t max_age_days; /* 30: cleanup removes older checkpoints */
	} checkpoint;

	struct {
		bool enabled;		     /* true */
		enum ckpt_strategy strategy; /* latest */
		char *specific_path;	     /* for specific:<path>, else NULL */
		bool restore_optimizer;	     /* true */
		int64_t poll_interval_ms;    /* 15000 */
		int64_t max_attempts;	     /* 3 */
		int64_t backoff_ms;	     /* 5000 */
		int64_t max_backoff_ms;	     /* 60000 */
		int64_t heartbeat_timeout_s; /* 300; 0 = no hang detection */
		int64_t grace_s;	     /* 10: SIGTERM to SIGKILL when stopping */
		int64_t gang_timeout_s;	     /* 300: a gang waits this long for a host */
		bool from_scratch;	     /* false: no good checkpoint -> FAILED */
		struct {
			double factor;		/* 0 = off */
			int64_t window;		/* 100 */
			int64_t rollback_steps; /* 100 */
			int64_t skip_batches;	/* 0 */
		} loss_spike;
		char **on_recovery;	/* NULL-terminated argv or NULL */
		char **on_failure;	/* likewise */
		int64_t hook_timeout_s; /* 30 */
	} recovery;

	struct {
		char *cron; /* 5-field cron expression or NULL */
	} schedule;

	struct ckpt_secret *secrets;
	size_t nsecrets;
};

/* Fill *js with the built-in defaults. Returns 0 or -ENOMEM. */
int ckpt_jobspec_init(struct ckpt_jobspec *js);

/* Release everything *js owns (secret values are wiped first). */
void ckpt_jobspec_free(struct ckpt_jobspec *js);

/*
 * Overlay a YAML (or JSON: it is YAML too) document on *js: every key present
 * replaces the current value. `origin` names the source in messages (a file
 * name; NULL for "job spec"). Returns 0, or -EINVAL with err set to
 * "ORIGIN: line L column C: ..." or "ORIGIN: KEY.PATH: reason".
 */
int ckpt_jobspec_apply_yaml(struct ckpt_jobspec *js, const char *text, size_t len,
			    const char *origin, char *err, size_t errlen);

/* Overlay a file (YAML or JSON). -ENOENT etc. when it cannot be read. */
int ckpt_jobspec_apply_file(struct ckpt_jobspec *js, const char *path, char *err, size_t errlen);

/* Overlay a JSON text (the API's body). */
int ckpt_jobspec_apply_json(struct ckpt_jobspec *js, const char *text, size_t len, char *err,
			    size_t errlen);

/*
 * Overlay one flag: `path` is a dotted key ("recovery.max_attempts",
 * "hyperparams.early_stopping.patience") and `value` a YAML scalar or flow
 * collection ("1e-4", "true", "[python3, t.py]"). For --set key=value.
 */
int ckpt_jobspec_set(struct ckpt_jobspec *js, const char *path, const char *value, char *err,
		     size_t errlen);

/* etcd://HOST:PORT/JOB (resources.rdzv): 0, or -EINVAL when malformed. */
int ckpt_rdzv_parse(const char *url, char *host, size_t hostlen, int *port, char *job,
		    size_t joblen);

/* A gang of ranks: resources.nodes or resources.procs_per_node given. */
static inline bool ckpt_jobspec_gang(const struct ckpt_jobspec *js)
{
	return js->resources.nodes > 0 || js->resources.procs_per_node > 0;
}

/* Ranks on this host and in the whole gang (1 and 1 for a plain job). */
static inline int64_t ckpt_jobspec_local_ranks(const struct ckpt_jobspec *js)
{
	return js->resources.procs_per_node > 0 ? js->resources.procs_per_node : 1;
}

static inline int64_t ckpt_jobspec_world(const struct ckpt_jobspec *js)
{
	return ckpt_jobspec_local_ranks(js) * (js->resources.nodes > 0 ? js->resources.nodes : 1);
}

/* Cross-field checks once every layer is applied (e.g. backoff_ms <=
 * max_backoff_ms, strategy best needs a metric). */
int ckpt_jobspec_validate(const struct ckpt_jobspec *js, char *err, size_t errlen);

/*
 * Built-in defaults, then the file, then validation: what a trainer given
 * --job/CKPT_JOB needs. On failure *out holds nothing to free.
 */
int ckpt_jobspec_load_file(const char *path, struct ckpt_jobspec *out, char *err, size_t errlen);

/*
 * Write the resolved spec as JSON text (which is also YAML, so it can be the
 * file CKPT_JOB names). Secrets appear as their references ({"env": NAME} or
 * {"file": PATH}); an inline value is never written, only {"value":
 * "(redacted)"}. Returns a malloc'd NUL-terminated string or NULL.
 */
char *ckpt_jobspec_to_json(const struct ckpt_jobspec *js);

/* "latest", "best" or "specific:<path>" into buf; returns buf. */
const char *ckpt_jobspec_strategy_str(const struct ckpt_jobspec *js, char *buf, size_t len);

/*
 * Resolve a secret's value (env from the calling process, file read whole
 * with one trailing newline dropped, or the inline value). Returns a malloc'd
 * string, or NULL with errno set and err saying which secret and why.
 */
char *ckpt_secret_resolve(const struct ckpt_secret *s, char *err, size_t errlen);

#ifdef __cplusplus
}
#endif

#endif /* CKPTFS_JOBSPEC_H */
