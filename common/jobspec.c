// SPDX-License-Identifier: MIT
/*
 * jobspec.c - the job spec model: built-in defaults, strict overlay of a
 * parsed YAML/JSON tree (every key checked for name, type and range, errors
 * naming the key path), cross-field validation and serialisation.
 * YAML parsing lives in jobspec_yaml.c.
 */
#include "jobspec_i.h"
#include "ckptfs/cron.h"
#include "ckptfs/yamljson.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Where we are in the tree, for messages: "recovery.loss_spike.factor". */
struct ctx {
	const char *origin;
	char *err;
	size_t errlen;
	char path[256];
};

static int fail(struct ctx *c, const char *key, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int fail(struct ctx *c, const char *key, const char *fmt, ...)
{
	char msg[320];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	snprintf(c->err, c->errlen, "%s: %s%s%s: %s", c->origin, c->path, c->path[0] ? "." : "",
		 key, msg);
	return -EINVAL;
}

static const char *type_name(const json_t *v)
{
	double d;

	if (ckpt_json_number(v, &d))
		return "a number"; /* also YAML's .inf and .nan */
	switch (json_typeof(v)) {
	case JSON_OBJECT:
		return "a mapping";
	case JSON_ARRAY:
		return "a list";
	case JSON_STRING:
		return "a string";
	case JSON_INTEGER:
		return "an integer";
	case JSON_REAL:
		return "a number";
	case JSON_TRUE:
	case JSON_FALSE:
		return "a boolean";
	default:
		return "null";
	}
}

static int set_str(char **dst, const char *s)
{
	char *n = s ? strdup(s) : NULL;

	if (s && !n)
		return -ENOMEM;
	free(*dst);
	*dst = n;
	return 0;
}

static void free_argv(char **argv)
{
	if (!argv)
		return;
	for (char **a = argv; *a; a++)
		free(*a);
	free(argv);
}

static int get_int(struct ctx *c, const char *key, json_t *v, int64_t lo, int64_t hi, int64_t *out)
{
	if (!json_is_integer(v))
		return fail(c, key, "must be an integer between %lld and %lld (got %s)",
			    (long long)lo, (long long)hi, type_name(v));
	if (json_integer_value(v) < lo || json_integer_value(v) > hi)
		return fail(c, key, "must be an integer between %lld and %lld (got %lld)",
			    (long long)lo, (long long)hi, (long long)json_integer_value(v));
	*out = json_integer_value(v);
	return 0;
}

static int get_double(struct ctx *c, const char *key, json_t *v, double lo, double hi, int lo_open,
		      double *out)
{
	double d;

	if (!ckpt_json_number(v, &d))
		return fail(c, key, "must be a number (got %s)", type_name(v));
	if (!isfinite(d) || d > hi || d < lo || (lo_open && d == lo))
		return fail(c, key, "must be a number %s %g and at most %g (got %g)",
			    lo_open ? "greater than" : "of at least", lo, hi, d);
	*out = d;
	return 0;
}

static int get_bool(struct ctx *c, const char *key, json_t *v, bool *out)
{
	if (!json_is_boolean(v))
		return fail(c, key, "must be true or false (got %s)", type_name(v));
	*out = json_is_true(v);
	return 0;
}

/* A non-empty printable string of at most `max` bytes. */
static int get_str(struct ctx *c, const char *key, json_t *v, size_t max, char **out)
{
	const char *s;
	size_t n;

	if (!json_is_string(v))
		return fail(c, key, "must be a string (got %s)", type_name(v));
	s = json_string_value(v);
	n = json_string_length(v);
	if (n == 0)
		return fail(c, key, "must not be empty");
	if (n > max)
		return fail(c, key, "is too long (%zu bytes; at most %zu)", n, max);
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
			return fail(c, key, "contains a control character");
	return set_str(out, s) ? fail(c, key, "out of memory") : 0;
}

static int get_enum(struct ctx *c, const char *key, json_t *v, const char *const *allowed,
		    char **out)
{
	char list[128] = "";

	if (json_is_string(v))
		for (const char *const *a = allowed; *a; a++)
			if (!strcmp(json_string_value(v), *a))
				return set_str(out, *a) ? fail(c, key, "out of memory") : 0;
	for (const char *const *a = allowed; *a; a++)
		snprintf(list + strlen(list), sizeof(list) - strlen(list), "%s%s",
			 a == allowed ? "" : ", ", *a);
	if (json_is_string(v))
		return fail(c, key, "must be one of %s (got '%.40s')", list, json_string_value(v));
	return fail(c, key, "must be one of %s (got %s)", list, type_name(v));
}

/* argv: a non-empty list of strings, or one string (a single word). */
static int get_argv(struct ctx *c, const char *key, json_t *v, char ***out)
{
	size_t n, i;
	char **argv;
	json_t *e;

	if (json_is_null(v) && strncmp(key, "on_", 3) == 0) {
		free_argv(*out); /* a hook may be unset by a later layer */
		*out = NULL;
		return 0;
	}
	if (json_is_string(v)) {
		json_t *a;
		int ret;

		/* "logger x" would run a program named "logger x": no shell splits
		 * words here, so say how to write it */
		if (strpbrk(json_string_value(v), " \t\n")) {
			char hint[200] = "", *d = hint;

			for (const char *p = json_string_value(v);
			     *p && d < hint + sizeof(hint) - 8; p++) {
				if (strchr(" \t\n", *p)) {
					if (d > hint && d[-1] != ' ')
						*d++ = ',', *d++ = ' ';
				} else {
					*d++ = *p;
				}
			}
			*d = '\0';
			return fail(c, key,
				    "'%.100s' is one string with spaces, which would run a program "
				    "of that whole name (there is no shell); write an argv list, "
				    "e.g. [%s]",
				    json_string_value(v), hint);
		}
		a = json_array();
		json_array_append(a, v);
		ret = get_argv(c, key, a, out);
		json_decref(a);
		return ret;
	}
	if (!json_is_array(v))
		return fail(c, key,
			    "must be a list of strings, an argv run without a shell (got %s)",
			    type_name(v));
	n = json_array_size(v);
	if (n == 0)
		return fail(c, key, "must not be empty: give at least the program");
	if (n > CKPT_JOBSPEC_MAX_ARGV)
		return fail(c, key, "has %zu arguments; at most %d", n, CKPT_JOBSPEC_MAX_ARGV);
	argv = calloc(n + 1, sizeof(*argv));
	if (!argv)
		return fail(c, key, "out of memory");
	json_array_foreach(v, i, e)
	{
		if (!json_is_string(e) || json_string_length(e) != strlen(json_string_value(e)) ||
		    json_string_length(e) > 4096) {
			free_argv(argv);
			return fail(c, key,
				    "element %zu must be a string of at most 4096 bytes "
				    "without NUL (got %s)",
				    i, type_name(e));
		}
		if (i == 0 && json_string_length(e) == 0) {
			free_argv(argv);
			return fail(c, key, "the program (element 0) must not be empty");
		}
		argv[i] = strdup(json_string_value(e));
		if (!argv[i]) {
			free_argv(argv);
			return fail(c, key, "out of memory");
		}
	}
	free_argv(*out);
	*out = argv;
	return 0;
}

static int need_object(struct ctx *c, const char *key, json_t *v)
{
	if (!json_is_object(v))
		return fail(c, key, "must be a mapping of keys (got %s)", type_name(v));
	return 0;
}

static int unknown_key(struct ctx *c, const char *key, const char *known)
{
	return fail(c, key, "unknown key (known keys here: %s)", known);
}

/* Enter a sub-mapping: extend the path for messages. */
static void push(struct ctx *c, const char *key, size_t *saved)
{
	*saved = strlen(c->path);
	snprintf(c->path + *saved, sizeof(c->path) - *saved, "%s%s", *saved ? "." : "", key);
}

static void pop(struct ctx *c, size_t saved)
{
	c->path[saved] = '\0';
}

static int apply_early_stopping(struct ckpt_jobspec *js, struct ctx *c, json_t *o)
{
	const char *k;
	json_t *v;

	json_object_foreach(o, k, v)
	{
		if (!strcmp(k, "patience")) {
			if (get_int(c, k, v, 0, 1000000, &js->hyperparams.patience))
				return -EINVAL;
		} else {
			return unknown_key(c, k, "patience");
		}
	}
	return 0;
}

static int apply_hyperparams(struct ckpt_jobspec *js, struct ctx *c, json_t *o)
{
	static const char *const scheds[] = {"cosine", "linear", "constant", NULL};
	const char *k;
	json_t *v;
	size_t saved;
	int ret = 0;

	json_object_foreach(o, k, v)
	{
		if (!strcmp(k, "batch_size"))
			ret = get_int(c, k, v, 1, 1048576, &js->hyperparams.batch_size);
		else if (!strcmp(k, "lr"))
			ret = get_double(c, k, v, 0, 10, 1, &js->hyperparams.lr);
		else if (!strcmp(k, "epochs"))
			ret = get_int(c, k, v, 1, 1000000, &js->hyperparams.epochs);
		else if (!strcmp(k, "lr_scheduler"))
			ret = get_enum(c, k, v, scheds, &js->hyperparams.lr_scheduler);
		else if (!strcmp(k, "gradient_accumulation_steps"))
			ret = get_int(c, k, v, 1, 65536,
				      &js->hyperparams.gradient_accumulation_steps);
		else if (!strcmp(k, "early_stopping")) {
			ret = need_object(c, k, v);
			if (!ret) {
				push(c, k, &saved);
				ret = apply_early_stopping(js, c, v);
				pop(c, saved);
			}
		} else
			ret = unknown_key(c, k,
					  "batch_size, lr, epochs, early_stopping, lr_scheduler, "
					  "gradient_accumulation_steps");
		if (ret)
			return ret;
	}
	return 0;
}

static int apply_resources(struct ckpt_jobspec *js, struct ctx *c, json_t *o)
{
	const char *k;
	json_t *v;

	json_object_foreach(o, k, v)
	{
		int ret;

		if (!strcmp(k, "gpus"))
			ret = get_int(c, k, v, 0, 1024, &js->resources.gpus);
		else if (!strcmp(k, "nodes"))
			ret = get_int(c, k, v, 1, 1024, &js->resources.nodes);
		else if (!strcmp(k, "procs_per_node"))
			ret = get_int(c, k, v, 1, 1024, &js->resources.procs_per_node);
		else if (!strcmp(k, "node_rank"))
			ret = get_int(c, k, v, 0, 1023, &js->resources.node_rank);
		else if (!strcmp(k, "rdzv"))
			ret = json_is_null(v) ? set_str(&js->resources.rdzv, NULL)
					      : get_str(c, k, v, 512, &js->resources.rdzv);
		else if (!strcmp(k, "nice"))
			ret = get_int(c, k, v, 0, 19, &js->resources.nice);
		else
			return unknown_key(c, k,
					   "gpus, nodes, procs_per_node, node_rank, rdzv, nice");
		if (ret)
			return ret;
	}
	return 0;
}

static int check_metric(struct ctx *c, const char *key, const char *m)
{
	const char *colon = strchr(m, ':');

	if (!colon || colon == m || (strcmp(colon, ":min") && strcmp(colon, ":max")))
		return fail(c, key, "must be NAME:min or NAME:max, e.g. val_loss:min (got '%.40s')",
			    m);
	for (const char *p = m; p < colon; p++)
		if (!isalnum((unsigned char)*p) && *p != '_')
			return fail(c, key,
				    "metric name must be letters, digits or _ (got '%.40s')", m);
	return 0;
}

static int apply_checkpoint(struct ckpt_jobspec *js, struct ctx *c, json_t *o)
{
	const char *k;
	json_t *v;
	int ret = 0;

	json_object_foreach(o, k, v)
	{
		if (!strcmp(k, "every_epochs"))
			ret = get_int(c, k, v, 0, 1000000, &js->checkpoint.every_epochs);
		else if (!strcmp(k, "every_steps"))
			ret = get_int(c, k, v, 0, INT64_C(1) << 40, &js->checkpoint.every_steps);
		else if (!strcmp(k, "keep_last"))
			ret = get_int(c, k, v, 0, 100000, &js->checkpoint.keep_last);
		else if (!strcmp(k, "keep_best"))
			ret = get_int(c, k, v, 0, 100000, &js->checkpoint.keep_best);
		else if (!strcmp(k, "max_age_days"))
			ret = get_int(c, k, v, 0, 36500, &js->checkpoint.max_age_days);
		else if (!strcmp(k, "metric")) {
			ret = get_str(c, k, v, 64, &js->checkpoint.metric);
			if (!ret)
				ret = check_metric(c, k, js->checkpoint.metric);
		} else
			ret = unknown_key(
				c, k,
				"every_epochs, every_steps, keep_last, keep_best, metric, "
				"max_age_days");
		if (ret)
			return ret;
	}
	return 0;
}

static int apply_loss_spike(struct ckpt_jobspec *js, struct ctx *c, json_t *o)
{
	const char *k;
	json_t *v;
	int ret = 0;

	json_object_foreach(o, k, v)
	{
		if (!strcmp(k, "factor"))
			ret = get_double(c, k, v, 0, 1e6, 0, &js->recovery.loss_spike.factor);
		else if (!strcmp(k, "window"))
			ret = get_int(c, k, v, 1, 100000, &js->recovery.loss_spike.window);
		else if (!strcmp(k, "rollback_steps"))
			ret = get_int(c, k, v, 0, INT64_C(1) << 40,
				      &js->recovery.loss_spike.rollback_steps);
		else if (!strcmp(k, "skip_batches"))
			ret = get_int(c, k, v, 0, INT64_C(1) << 40,
				      &js->recovery.loss_spike.skip_batches);
		else
			ret = unknown_key(c, k, "factor, window, rollback_steps, skip_batches");
		if (ret)
			return ret;
	}
	if (js->recovery.loss_spike.factor > 0 && js->recovery.loss_spike.factor <= 1)
		return fail(c, "factor", "must be 0 (off) or greater than 1 (got %g)",
			    js->recovery.loss_spike.factor);
	return 0;
}

/* A ".." component anywhere in an absolute path. */
static int has_dotdot(const char *p)
{
	size_t n = strlen(p);

	return strstr(p, "/../") || (n >= 3 && !strcmp(p + n - 3, "/.."));
}

static int apply_strategy(struct ckpt_jobspec *js, struct ctx *c, const char *k, json_t *v)
{
	const char *s;

	if (!json_is_string(v))
		return fail(c, k, "must be latest, best or specific:<version path> (got %s)",
			    type_name(v));
	s = json_string_value(v);
	if (!strcmp(s, "latest") || !strcmp(s, "best")) {
		js->recovery.strategy = s[0] == 'l' ? CKPT_STRATEGY_LATEST : CKPT_STRATEGY_BEST;
		set_str(&js->recovery.specific_path, NULL);
		return 0;
	}
	if (!strncmp(s, "specific:", 9)) {
		const char *p = s + 9;

		if (p[0] != '/')
			return fail(c, k,
				    "specific: needs an absolute version path, e.g. "
				    "specific:/mnt/run/step-500 (got '%.60s')",
				    p);
		if (strlen(p) > 1024 || has_dotdot(p))
			return fail(c, k,
				    "the path must be at most 1024 bytes without '..' "
				    "components");
		if (set_str(&js->recovery.specific_path, p))
			return fail(c, k, "out of memory");
		js->recovery.strategy = CKPT_STRATEGY_SPECIFIC;
		return 0;
	}
	return fail(c, k, "must be latest, best or specific:<version path> (got '%.40s')", s);
}

static int apply_recovery(struct ckpt_jobspec *js, struct ctx *c, json_t *o)
{
	const char *k;
	json_t *v;
	size_t saved;
	int ret = 0;

	json_object_foreach(o, k, v)
	{
		if (!strcmp(k, "enabled"))
			ret = get_bool(c, k, v, &js->recovery.enabled);
		else if (!strcmp(k, "checkpoint_strategy"))
			ret = apply_strategy(js, c, k, v);
		else if (!strcmp(k, "restore_optimizer"))
			ret = get_bool(c, k, v, &js->recovery.restore_optimizer);
		else if (!strcmp(k, "from_scratch"))
			ret = get_bool(c, k, v, &js->recovery.from_scratch);
		else if (!strcmp(k, "poll_interval_ms"))
			ret = get_int(c, k, v, 10, 86400000, &js->recovery.poll_interval_ms);
		else if (!strcmp(k, "max_attempts"))
			ret = get_int(c, k, v, 1, 1000, &js->recovery.max_attempts);
		else if (!strcmp(k, "backoff_ms"))
			ret = get_int(c, k, v, 0, 86400000, &js->recovery.backoff_ms);
		else if (!strcmp(k, "max_backoff_ms"))
			ret = get_int(c, k, v, 0, 86400000, &js->recovery.max_backoff_ms);
		else if (!strcmp(k, "heartbeat_timeout_s"))
			ret = get_int(c, k, v, 0, 604800, &js->recovery.heartbeat_timeout_s);
		else if (!strcmp(k, "grace_s"))
			ret = get_int(c, k, v, 0, 3600, &js->recovery.grace_s);
		else if (!strcmp(k, "hook_timeout_s"))
			ret = get_int(c, k, v, 1, 3600, &js->recovery.hook_timeout_s);
		else if (!strcmp(k, "gang_timeout_s"))
			ret = get_int(c, k, v, 1, 604800, &js->recovery.gang_timeout_s);
		else if (!strcmp(k, "on_recovery"))
			ret = get_argv(c, k, v, &js->recovery.on_recovery);
		else if (!strcmp(k, "on_failure"))
			ret = get_argv(c, k, v, &js->recovery.on_failure);
		else if (!strcmp(k, "loss_spike")) {
			ret = need_object(c, k, v);
			if (!ret) {
				push(c, k, &saved);
				ret = apply_loss_spike(js, c, v);
				pop(c, saved);
			}
		} else
			ret = unknown_key(
				c, k,
				"enabled, checkpoint_strategy, restore_optimizer, "
				"from_scratch, poll_interval_ms, max_attempts, backoff_ms, "
				"max_backoff_ms, heartbeat_timeout_s, grace_s, loss_spike, "
				"on_recovery, on_failure, hook_timeout_s, gang_timeout_s");
		if (ret)
			return ret;
	}
	return 0;
}

static int apply_schedule(struct ckpt_jobspec *js, struct ctx *c, json_t *o)
{
	const char *k;
	json_t *v;

	json_object_foreach(o, k, v)
	{
		if (!strcmp(k, "cron")) {
			struct ckpt_cron cr;
			char why[200];

			if (json_is_null(v)) {
				set_str(&js->schedule.cron, NULL);
				continue;
			}
			if (get_str(c, k, v, 200, &js->schedule.cron))
				return -EINVAL;
			if (ckpt_cron_parse(js->schedule.cron, &cr, why, sizeof(why)))
				return fail(c, k, "'%s' %s", js->schedule.cron, why);
		} else {
			return unknown_key(c, k, "cron");
		}
	}
	return 0;
}

static int env_name_ok(const char *s)
{
	if (!s[0] || strlen(s) > 128 || isdigit((unsigned char)s[0]))
		return 0;
	for (; *s; s++)
		if (!isupper((unsigned char)*s) && !isdigit((unsigned char)*s) && *s != '_')
			return 0;
	return 1;
}

static void secret_clear(struct ckpt_secret *s)
{
	free(s->name);
	free(s->env);
	free(s->file);
	if (s->value) {
		explicit_bzero(s->value, strlen(s->value));
		free(s->value);
	}
	memset(s, 0, sizeof(*s));
}

static int apply_secrets(struct ckpt_jobspec *js, struct ctx *c, json_t *o)
{
	const char *k;
	json_t *v;

	json_object_foreach(o, k, v)
	{
		struct ckpt_secret s = {0};
		const char *src = NULL;
		size_t saved, i;
		int ret = 0;

		if (!env_name_ok(k) || !strncmp(k, "CKPT_", 5))
			return fail(c, k,
				    "a secret's name must be an environment variable name "
				    "([A-Z_][A-Z0-9_]*) not starting with CKPT_");
		if (json_is_string(v))
			return fail(c, k,
				    "give a reference, not the value: {env: VARIABLE}, "
				    "{file: PATH} or {value: TEXT}");
		if (need_object(c, k, v))
			return -EINVAL;
		push(c, k, &saved);
		if (json_object_size(v) != 1) {
			ret = fail(c, "env", "give exactly one of env, file or value");
		} else {
			json_t *x;
			const char *kk;

			json_object_foreach(v, kk, x)
			{
				src = kk;
				if (!strcmp(kk, "env")) {
					ret = get_str(c, kk, x, 128, &s.env);
					if (!ret && !env_name_ok(s.env))
						ret = fail(c, kk,
							   "must be an environment variable name");
				} else if (!strcmp(kk, "file")) {
					ret = get_str(c, kk, x, 1024, &s.file);
					if (!ret && s.file[0] != '/')
						ret = fail(c, kk, "must be an absolute path");
				} else if (!strcmp(kk, "value")) {
					if (!json_is_string(x))
						ret = fail(c, kk, "must be a string (got %s)",
							   type_name(x));
					else if (!(s.value = strdup(json_string_value(x))))
						ret = -ENOMEM;
				} else {
					ret = unknown_key(c, kk, "env, file, value");
				}
			}
		}
		pop(c, saved);
		(void)src;
		if (!ret && !(s.name = strdup(k)))
			ret = -ENOMEM;
		if (ret) {
			secret_clear(&s);
			return ret == -ENOMEM ? fail(c, k, "out of memory") : ret;
		}
		for (i = 0; i < js->nsecrets; i++)
			if (!strcmp(js->secrets[i].name, k))
				break;
		if (i == js->nsecrets) {
			struct ckpt_secret *n;

			if (js->nsecrets >= CKPT_JOBSPEC_MAX_SECRETS) {
				secret_clear(&s);
				return fail(c, k, "too many secrets (at most %d)",
					    CKPT_JOBSPEC_MAX_SECRETS);
			}
			n = realloc(js->secrets, (js->nsecrets + 1) * sizeof(*n));
			if (!n) {
				secret_clear(&s);
				return fail(c, k, "out of memory");
			}
			js->secrets = n;
			js->nsecrets++;
		} else {
			secret_clear(&js->secrets[i]);
		}
		js->secrets[i] = s;
	}
	return 0;
}

static int check_dataset(struct ctx *c, const char *d)
{
	const char *colon = strstr(d, "://");

	if (colon && strncmp(d, "file://", 7))
		return fail(c, "dataset",
			    "scheme '%.*s://' is not supported; give a local path or a file:// URL",
			    (int)(colon - d > 16 ? 16 : colon - d), d);
	if (!strncmp(d, "file://", 7) && d[7] != '/')
		return fail(c, "dataset",
			    "a file:// URL needs an absolute path (file:///data/x.txt)");
	return 0;
}

static int name_ok(const char *s)
{
	if (!isalnum((unsigned char)s[0]))
		return 0;
	for (; *s; s++)
		if (!isalnum((unsigned char)*s) && *s != '-' && *s != '_' && *s != '.')
			return 0;
	return 1;
}

int jobspec_apply_tree(struct ckpt_jobspec *js, json_t *root, const char *origin, char *err,
		       size_t errlen)
{
	static const char *const models[] = {"tiny", "small", "base", "large", NULL};
	struct ctx c = {.origin = origin ? origin : "job spec", .err = err, .errlen = errlen};
	const char *k;
	json_t *v;
	size_t saved;
	int ret = 0;

	if (!json_is_object(root)) {
		snprintf(err, errlen, "%s: a job spec must be a mapping of keys (got %s)", c.origin,
			 type_name(root));
		return -EINVAL;
	}
	json_object_foreach(root, k, v)
	{
		if (!strcmp(k, "project_id") || !strcmp(k, "name")) {
			char **dst = k[0] == 'p' ? &js->project_id : &js->name;

			ret = get_str(&c, k, v, 64, dst);
			if (!ret && !name_ok(*dst))
				ret = fail(&c, k,
					   "must be letters, digits, '-', '_' or '.', "
					   "starting with a letter or digit (got '%.64s')",
					   *dst);
		} else if (!strcmp(k, "command")) {
			ret = get_argv(&c, k, v, &js->command);
		} else if (!strcmp(k, "model")) {
			ret = get_enum(&c, k, v, models, &js->model);
		} else if (!strcmp(k, "dataset")) {
			if (json_is_null(v))
				ret = set_str(&js->dataset, NULL);
			else
				ret = get_str(&c, k, v, 4096, &js->dataset);
			if (!ret && js->dataset)
				ret = check_dataset(&c, js->dataset);
		} else if (!strcmp(k, "hyperparams") || !strcmp(k, "resources") ||
			   !strcmp(k, "checkpoint") || !strcmp(k, "recovery") ||
			   !strcmp(k, "schedule") || !strcmp(k, "secrets")) {
			ret = need_object(&c, k, v);
			if (ret)
				break;
			push(&c, k, &saved);
			if (k[0] == 'h')
				ret = apply_hyperparams(js, &c, v);
			else if (!strcmp(k, "resources"))
				ret = apply_resources(js, &c, v);
			else if (k[0] == 'c')
				ret = apply_checkpoint(js, &c, v);
			else if (!strcmp(k, "recovery"))
				ret = apply_recovery(js, &c, v);
			else if (!strcmp(k, "schedule"))
				ret = apply_schedule(js, &c, v);
			else
				ret = apply_secrets(js, &c, v);
			pop(&c, saved);
		} else {
			ret = unknown_key(&c, k,
					  "project_id, name, command, model, dataset, hyperparams, "
					  "resources, checkpoint, recovery, schedule, secrets");
		}
		if (ret)
			break;
	}
	return ret ? -EINVAL : 0;
}

int ckpt_jobspec_init(struct ckpt_jobspec *js)
{
	memset(js, 0, sizeof(*js));
	js->project_id = strdup("default");
	js->name = strdup("job");
	js->model = strdup("small");
	js->hyperparams.lr_scheduler = strdup("cosine");
	js->checkpoint.metric = strdup("val_loss:min");
	js->command = calloc(2, sizeof(char *));
	if (js->command)
		js->command[0] = strdup("ckpt-train");
	if (!js->project_id || !js->name || !js->model || !js->hyperparams.lr_scheduler ||
	    !js->checkpoint.metric || !js->command || !js->command[0]) {
		ckpt_jobspec_free(js);
		return -ENOMEM;
	}
	js->hyperparams.batch_size = 32;
	js->hyperparams.lr = 3e-5;
	js->hyperparams.epochs = 5;
	js->hyperparams.patience = 5;
	js->hyperparams.gradient_accumulation_steps = 1;
	js->resources.gpus = 1;
	js->checkpoint.every_epochs = 5;
	js->checkpoint.every_steps = 0;
	js->checkpoint.keep_last = 3;
	js->checkpoint.keep_best = 1;
	js->checkpoint.max_age_days = 30;
	js->recovery.enabled = true;
	js->recovery.strategy = CKPT_STRATEGY_LATEST;
	js->recovery.restore_optimizer = true;
	js->recovery.poll_interval_ms = 15000;
	js->recovery.max_attempts = 3;
	js->recovery.backoff_ms = 5000;
	js->recovery.max_backoff_ms = 60000;
	js->recovery.heartbeat_timeout_s = 300;
	js->recovery.grace_s = 10;
	js->recovery.hook_timeout_s = 30;
	js->recovery.gang_timeout_s = 300;
	js->recovery.from_scratch = false;
	js->recovery.loss_spike.factor = 0;
	js->recovery.loss_spike.window = 100;
	js->recovery.loss_spike.rollback_steps = 100;
	js->recovery.loss_spike.skip_batches = 0;
	return 0;
}

void ckpt_jobspec_free(struct ckpt_jobspec *js)
{
	free(js->project_id);
	free(js->name);
	free_argv(js->command);
	free(js->model);
	free(js->dataset);
	free(js->hyperparams.lr_scheduler);
	free(js->checkpoint.metric);
	free(js->resources.rdzv);
	free(js->recovery.specific_path);
	free_argv(js->recovery.on_recovery);
	free_argv(js->recovery.on_failure);
	free(js->schedule.cron);
	for (size_t i = 0; i < js->nsecrets; i++)
		secret_clear(&js->secrets[i]);
	free(js->secrets);
	memset(js, 0, sizeof(*js));
}

int ckpt_jobspec_apply_yaml(struct ckpt_jobspec *js, const char *text, size_t len,
			    const char *origin, char *err, size_t errlen)
{
	json_t *root;
	int ret;

	root = jobspec_yaml_parse(text, len, origin ? origin : "job spec", err, errlen);
	if (!root)
		return -EINVAL;
	ret = jobspec_apply_tree(js, root, origin, err, errlen);
	json_decref(root);
	return ret;
}

int ckpt_jobspec_apply_json(struct ckpt_jobspec *js, const char *text, size_t len, char *err,
			    size_t errlen)
{
	json_error_t je;
	json_t *root;
	int ret;

	if (len > CKPT_JOBSPEC_MAX_BYTES) {
		snprintf(err, errlen, "job spec: too large (%zu bytes; the limit is %u)", len,
			 CKPT_JOBSPEC_MAX_BYTES);
		return -EINVAL;
	}
	root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je);
	if (!root) {
		snprintf(err, errlen, "job spec: invalid JSON at line %d column %d: %s", je.line,
			 je.column, je.text);
		return -EINVAL;
	}
	ret = jobspec_apply_tree(js, root, NULL, err, errlen);
	json_decref(root);
	return ret;
}

static char *read_small_file(const char *path, size_t max, size_t *len, int *ret)
{
	struct stat st;
	char *buf = NULL;
	size_t got = 0;
	int fd;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		*ret = -errno;
		return NULL;
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		*ret = fstat(fd, &st) < 0 ? -errno : -EISDIR;
		goto out;
	}
	if ((size_t)st.st_size > max) {
		*ret = -EFBIG;
		goto out;
	}
	buf = malloc((size_t)st.st_size + 1);
	if (!buf) {
		*ret = -ENOMEM;
		goto out;
	}
	while (got < (size_t)st.st_size) {
		ssize_t n = read(fd, buf + got, (size_t)st.st_size - got);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			*ret = n < 0 ? -errno : -EIO;
			free(buf);
			buf = NULL;
			goto out;
		}
		got += (size_t)n;
	}
	buf[got] = '\0';
	*len = got;
	*ret = 0;
out:
	close(fd);
	return buf;
}

int ckpt_jobspec_apply_file(struct ckpt_jobspec *js, const char *path, char *err, size_t errlen)
{
	size_t len = 0;
	char *text;
	int ret;

	text = read_small_file(path, CKPT_JOBSPEC_MAX_BYTES, &len, &ret);
	if (!text) {
		snprintf(err, errlen, "%s: cannot read the job spec: %s", path,
			 ret == -EFBIG ? "larger than 1 MiB" : strerror(-ret));
		return ret;
	}
	ret = ckpt_jobspec_apply_yaml(js, text, len, path, err, errlen);
	free(text);
	return ret;
}

int ckpt_jobspec_set(struct ckpt_jobspec *js, const char *path, const char *value, char *err,
		     size_t errlen)
{
	char keys[256], *save = NULL, *tok;
	json_t *root, *cur, *val;
	char last[128] = "";
	int ret;

	if (!path || !*path || strlen(path) >= sizeof(keys)) {
		snprintf(err, errlen, "--set: expected KEY.PATH=VALUE");
		return -EINVAL;
	}
	val = jobspec_yaml_parse(value, strlen(value), path, err, errlen);
	if (!val && strlen(value) == 0)
		val = json_null();
	if (!val)
		return -EINVAL;
	strcpy(keys, path);
	root = json_object();
	cur = root;
	for (tok = strtok_r(keys, ".", &save); tok; tok = strtok_r(NULL, ".", &save)) {
		if (last[0]) {
			json_t *o = json_object();

			json_object_set_new(cur, last, o);
			cur = o;
		}
		snprintf(last, sizeof(last), "%s", tok);
	}
	if (!last[0]) {
		json_decref(val);
		json_decref(root);
		snprintf(err, errlen, "--set: '%s' is not a key path", path);
		return -EINVAL;
	}
	json_object_set_new(cur, last, val);
	ret = jobspec_apply_tree(js, root, "--set", err, errlen);
	json_decref(root);
	return ret;
}

/* etcd://HOST:PORT/JOB: host and port of the etcd the gang's hosts share,
 * and the gang's name there (1..64 of [A-Za-z0-9._-]). */
int ckpt_rdzv_parse(const char *url, char *host, size_t hostlen, int *port, char *job,
		    size_t joblen)
{
	const char *h, *colon, *slash;
	char *end;
	long p;
	size_t n;

	if (strncmp(url, "etcd://", 7))
		return -EINVAL;
	h = url + 7;
	slash = strchr(h, '/');
	colon = slash ? memrchr(h, ':', (size_t)(slash - h)) : NULL;
	if (!slash || !colon || colon == h || (size_t)(colon - h) >= hostlen)
		return -EINVAL;
	p = strtol(colon + 1, &end, 10);
	if (end != slash || p < 1 || p > 65535)
		return -EINVAL;
	n = strlen(slash + 1);
	if (n < 1 || n > 64 || n >= joblen ||
	    strspn(slash + 1, "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
			      "abcdefghijklmnopqrstuvwxyz"
			      "0123456789._-") != n)
		return -EINVAL;
	memcpy(host, h, (size_t)(colon - h));
	host[colon - h] = '\0';
	*port = (int)p;
	snprintf(job, joblen, "%s", slash + 1);
	return 0;
}

static int validate_gang(const struct ckpt_jobspec *js, char *err, size_t errlen)
{
	int64_t nodes = js->resources.nodes > 0 ? js->resources.nodes : 1;
	char host[256], job[72];
	int port;

	if (js->resources.node_rank >= nodes) {
		snprintf(err, errlen,
			 "resources.node_rank: %lld is not a host of a gang of %lld (node_rank "
			 "counts from 0 to resources.nodes - 1)",
			 (long long)js->resources.node_rank, (long long)nodes);
		return -EINVAL;
	}
	if (nodes > 1 && !js->resources.rdzv) {
		snprintf(err, errlen,
			 "resources.rdzv: needed when resources.nodes is more than 1: the etcd "
			 "that the gang's hosts share, etcd://HOST:PORT/JOB (--rdzv)");
		return -EINVAL;
	}
	if (js->resources.rdzv &&
	    ckpt_rdzv_parse(js->resources.rdzv, host, sizeof(host), &port, job, sizeof(job))) {
		snprintf(err, errlen,
			 "resources.rdzv: '%.200s' is not etcd://HOST:PORT/JOB (JOB: 1 to 64 "
			 "letters, digits, '.', '_' or '-'); only etcd rendezvous is supported",
			 js->resources.rdzv);
		return -EINVAL;
	}
	if ((js->resources.rdzv || js->resources.node_rank) && !ckpt_jobspec_gang(js)) {
		snprintf(err, errlen,
			 "resources.%s: only for a gang of ranks; set resources.nodes and "
			 "resources.procs_per_node too",
			 js->resources.rdzv ? "rdzv" : "node_rank");
		return -EINVAL;
	}
	return 0;
}

int ckpt_jobspec_validate(const struct ckpt_jobspec *js, char *err, size_t errlen)
{
	if (js->recovery.backoff_ms > js->recovery.max_backoff_ms) {
		snprintf(err, errlen,
			 "recovery.backoff_ms: %lld is larger than "
			 "recovery.max_backoff_ms (%lld); raise max_backoff_ms",
			 (long long)js->recovery.backoff_ms,
			 (long long)js->recovery.max_backoff_ms);
		return -EINVAL;
	}
	if (js->recovery.strategy == CKPT_STRATEGY_SPECIFIC && !js->recovery.specific_path) {
		snprintf(err, errlen, "recovery.checkpoint_strategy: specific needs a path");
		return -EINVAL;
	}
	if (js->recovery.strategy == CKPT_STRATEGY_BEST && !js->checkpoint.metric) {
		snprintf(err, errlen, "recovery.checkpoint_strategy: best needs checkpoint.metric");
		return -EINVAL;
	}
	if (!js->command || !js->command[0]) {
		snprintf(err, errlen, "command: missing; give the trainer's argv");
		return -EINVAL;
	}
	return validate_gang(js, err, errlen);
}

int ckpt_jobspec_load_file(const char *path, struct ckpt_jobspec *out, char *err, size_t errlen)
{
	int ret = ckpt_jobspec_init(out);

	if (ret) {
		snprintf(err, errlen, "%s: out of memory", path);
		return ret;
	}
	ret = ckpt_jobspec_apply_file(out, path, err, errlen);
	if (!ret)
		ret = ckpt_jobspec_validate(out, err, errlen);
	if (ret)
		ckpt_jobspec_free(out);
	return ret;
}

const char *ckpt_jobspec_strategy_str(const struct ckpt_jobspec *js, char *buf, size_t len)
{
	switch (js->recovery.strategy) {
	case CKPT_STRATEGY_BEST:
		snprintf(buf, len, "best");
		break;
	case CKPT_STRATEGY_SPECIFIC:
		snprintf(buf, len, "specific:%s", js->recovery.specific_path);
		break;
	default:
		snprintf(buf, len, "latest");
	}
	return buf;
}

static json_t *argv_json(char **argv)
{
	json_t *a;

	if (!argv)
		return json_null();
	a = json_array();
	for (; *argv; argv++)
		json_array_append_new(a, json_string(*argv));
	return a;
}

char *ckpt_jobspec_to_json(const struct ckpt_jobspec *js)
{
	json_t *o, *secrets;
	char sbuf[1100];
	char *out;

	secrets = json_object();
	for (size_t i = 0; i < js->nsecrets; i++) {
		const struct ckpt_secret *s = &js->secrets[i];

		if (s->env)
			json_object_set_new(secrets, s->name, json_pack("{ss}", "env", s->env));
		else if (s->file)
			json_object_set_new(secrets, s->name, json_pack("{ss}", "file", s->file));
		else
			json_object_set_new(secrets, s->name,
					    json_pack("{ss}", "value", "(redacted)"));
	}
	o = json_pack("{ss ss so ss so s{sI sf sI s{sI} ss sI} s{sI sI} "
		      "s{sI sI sI sI ss sI} "
		      "s{sb ss sb sb sI sI sI sI sI sI sI s{sf sI sI sI} so so} "
		      "s{so} so}",
		      "project_id", js->project_id, "name", js->name, "command",
		      argv_json(js->command), "model", js->model, "dataset",
		      js->dataset ? json_string(js->dataset) : json_null(), "hyperparams",
		      "batch_size", (json_int_t)js->hyperparams.batch_size, "lr",
		      js->hyperparams.lr, "epochs", (json_int_t)js->hyperparams.epochs,
		      "early_stopping", "patience", (json_int_t)js->hyperparams.patience,
		      "lr_scheduler", js->hyperparams.lr_scheduler, "gradient_accumulation_steps",
		      (json_int_t)js->hyperparams.gradient_accumulation_steps, "resources", "gpus",
		      (json_int_t)js->resources.gpus, "nice", (json_int_t)js->resources.nice,
		      "checkpoint", "every_epochs", (json_int_t)js->checkpoint.every_epochs,
		      "every_steps", (json_int_t)js->checkpoint.every_steps, "keep_last",
		      (json_int_t)js->checkpoint.keep_last, "keep_best",
		      (json_int_t)js->checkpoint.keep_best, "metric", js->checkpoint.metric,
		      "max_age_days", (json_int_t)js->checkpoint.max_age_days, "recovery",
		      "enabled", js->recovery.enabled, "checkpoint_strategy",
		      ckpt_jobspec_strategy_str(js, sbuf, sizeof(sbuf)), "restore_optimizer",
		      js->recovery.restore_optimizer, "from_scratch", js->recovery.from_scratch,
		      "poll_interval_ms", (json_int_t)js->recovery.poll_interval_ms, "max_attempts",
		      (json_int_t)js->recovery.max_attempts, "backoff_ms",
		      (json_int_t)js->recovery.backoff_ms, "max_backoff_ms",
		      (json_int_t)js->recovery.max_backoff_ms, "heartbeat_timeout_s",
		      (json_int_t)js->recovery.heartbeat_timeout_s, "grace_s",
		      (json_int_t)js->recovery.grace_s, "hook_timeout_s",
		      (json_int_t)js->recovery.hook_timeout_s, "loss_spike", "factor",
		      js->recovery.loss_spike.factor, "window",
		      (json_int_t)js->recovery.loss_spike.window, "rollback_steps",
		      (json_int_t)js->recovery.loss_spike.rollback_steps, "skip_batches",
		      (json_int_t)js->recovery.loss_spike.skip_batches, "on_recovery",
		      argv_json(js->recovery.on_recovery), "on_failure",
		      argv_json(js->recovery.on_failure), "schedule", "cron",
		      js->schedule.cron ? json_string(js->schedule.cron) : json_null(), "secrets",
		      secrets);
	if (!o)
		return NULL;
	if (ckpt_jobspec_gang(js)) {
		json_t *r = json_object_get(o, "resources");

		json_object_set_new(r, "nodes", json_integer(js->resources.nodes ?: 1));
		json_object_set_new(r, "procs_per_node",
				    json_integer(js->resources.procs_per_node ?: 1));
		json_object_set_new(r, "node_rank", json_integer(js->resources.node_rank));
		json_object_set_new(r, "rdzv",
				    js->resources.rdzv ? json_string(js->resources.rdzv)
						       : json_null());
		json_object_set_new(json_object_get(o, "recovery"), "gang_timeout_s",
				    json_integer(js->recovery.gang_timeout_s));
	}
	out = json_dumps(o, JSON_INDENT(2) | JSON_REAL_PRECISION(17));
	json_decref(o);
	return out;
}

char *ckpt_secret_resolve(const struct ckpt_secret *s, char *err, size_t errlen)
{
	char *v;

	if (s->value) {
		v = strdup(s->value);
	} else if (s->env) {
		const char *e = getenv(s->env);

		if (!e) {
			snprintf(err, errlen,
				 "secrets.%s: environment variable %s is not set in "
				 "ckptd's environment; export it before starting ckptd",
				 s->name, s->env);
			errno = ENOENT;
			return NULL;
		}
		v = strdup(e);
	} else if (s->file) {
		size_t len = 0;
		int ret;

		v = read_small_file(s->file, 65536, &len, &ret);
		if (!v) {
			snprintf(err, errlen, "secrets.%s: cannot read %s: %s", s->name, s->file,
				 strerror(-ret));
			errno = -ret;
			return NULL;
		}
		if (len && v[len - 1] == '\n')
			v[len - 1] = '\0';
	} else {
		snprintf(err, errlen, "secrets.%s: no source", s->name);
		errno = EINVAL;
		return NULL;
	}
	if (!v)
		snprintf(err, errlen, "secrets.%s: out of memory", s->name);
	return v;
}
