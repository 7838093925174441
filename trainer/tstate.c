/* SPDX-License-Identifier: MIT */
/*
 * tstate.c - trainer_state.json: everything besides tensors that a resume
 * needs to continue bitwise where the run stopped. 64-bit RNG words are hex
 * strings (JSON numbers lose bits past 2^53); "no value yet" is null, since
 * JSON has no Inf/NaN. Doubles are printed with 17 significant digits, so
 * they read back bit-exact.
 */
#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "trainer_i.h"

static json_t *hex64(uint64_t v)
{
	char b[24];

	snprintf(b, sizeof(b), "0x%016" PRIx64, v);
	return json_string(b);
}

static json_t *real_or_null(double v)
{
	return isfinite(v) ? json_real(v) : json_null();
}

char *tstate_dump(const struct tstate *s)
{
	json_t *rng = json_array(), *o;
	char *txt;

	if (!rng)
		return NULL;
	for (int i = 0; i < 4; i++)
		json_array_append_new(rng, hex64(s->rng[i]));
	o = json_pack("{s:i, s:s, s:I, s:I, s:{s:I, s:I, s:I, s:o}, s:{s:s, s:o, s:o}, s:o, s:I,"
		      " s:o, s:o, s:o, s:s, s:s}",
		      "format_version", s->format_version, "preset", s->preset, "step",
		      (json_int_t)s->step, "epoch", (json_int_t)s->epoch, "data_position", "epoch",
		      (json_int_t)s->epoch, "micro_batch", (json_int_t)s->micro_batch, "batch_size",
		      (json_int_t)s->batch_size, "epoch_seed", hex64(s->epoch_seed), "rng",
		      "algorithm", "xoshiro256**", "state", rng, "seed", hex64(s->seed),
		      "best_val_loss", real_or_null(s->best_val_loss), "bad_epochs",
		      (json_int_t)s->bad_epochs, "last_val_loss", real_or_null(s->last_val_loss),
		      "lr", json_real(s->lr), "loss", real_or_null(s->loss), "reason", s->reason,
		      "writer", "ckpt-train " CKPTFS_VERSION);
	if (!o)
		return NULL;
	json_object_set_new(o, "grad_accum", json_integer(s->grad_accum));
	json_object_set_new(o, "early_stopping_best_val_loss", real_or_null(s->es_best_val_loss));
	json_object_set_new(o, "last_val_step",
			    s->last_val_step >= 0 ? json_integer(s->last_val_step) : json_null());
	txt = json_dumps(o, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(17));
	json_decref(o);
	if (txt) { /* end with a newline, like a text file should */
		size_t n = strlen(txt);
		char *t = realloc(txt, n + 2);

		if (!t) {
			free(txt);
			return NULL;
		}
		t[n] = '\n';
		t[n + 1] = 0;
		txt = t;
	}
	return txt;
}

static int get_hex(json_t *v, uint64_t *out)
{
	const char *s = json_string_value(v);
	char *end;

	if (!s || strncmp(s, "0x", 2) != 0)
		return -EINVAL;
	errno = 0;
	*out = strtoull(s + 2, &end, 16);
	return errno || *end || end == s + 2 ? -EINVAL : 0;
}

static double get_real(json_t *v, double none)
{
	return json_is_number(v) ? json_number_value(v) : none;
}

int tstate_load(const char *path, struct tstate *s, char *err, size_t errlen)
{
	json_error_t je;
	json_t *o = json_load_file(path, 0, &je), *dp, *rng, *st;
	const char *preset;
	int ret = -EINVAL;

	memset(s, 0, sizeof(*s));
	if (!o) {
		snprintf(err, errlen, "cannot parse %s: %s (line %d)", path, je.text, je.line);
		return -EINVAL;
	}
	if (!json_is_integer(json_object_get(o, "format_version"))) {
		snprintf(err, errlen,
			 "%s has no integer format_version; it is not a ckpt-train state", path);
		goto out;
	}
	s->format_version = (int)json_integer_value(json_object_get(o, "format_version"));
	if (s->format_version != TRAIN_FORMAT_VERSION) {
		snprintf(err, errlen,
			 "%s has format_version %d, but this ckpt-train reads version %d only; "
			 "resume it with the ckpt-train that wrote it, or start a fresh run",
			 path, s->format_version, TRAIN_FORMAT_VERSION);
		ret = -EPROTO;
		goto out;
	}
	dp = json_object_get(o, "data_position");
	rng = json_object_get(o, "rng");
	st = json_object_get(rng, "state");
	preset = json_string_value(json_object_get(o, "preset"));
	if (!preset || !json_is_object(dp) || json_array_size(st) != 4 ||
	    !json_is_integer(json_object_get(o, "step"))) {
		snprintf(err, errlen, "%s lacks preset, step, data_position or rng.state", path);
		goto out;
	}
	snprintf(s->preset, sizeof(s->preset), "%s", preset);
	s->step = json_integer_value(json_object_get(o, "step"));
	s->epoch = json_integer_value(json_object_get(dp, "epoch"));
	s->micro_batch = json_integer_value(json_object_get(dp, "micro_batch"));
	s->batch_size = json_integer_value(json_object_get(dp, "batch_size"));
	s->grad_accum = json_integer_value(json_object_get(o, "grad_accum"));
	s->bad_epochs = json_integer_value(json_object_get(o, "bad_epochs"));
	s->last_val_step = json_is_integer(json_object_get(o, "last_val_step"))
				   ? json_integer_value(json_object_get(o, "last_val_step"))
				   : -1;
	for (int i = 0; i < 4; i++)
		if (get_hex(json_array_get(st, (size_t)i), &s->rng[i]) < 0)
			goto bad;
	if (get_hex(json_object_get(dp, "epoch_seed"), &s->epoch_seed) < 0 ||
	    get_hex(json_object_get(rng, "seed"), &s->seed) < 0)
		goto bad;
	s->best_val_loss = get_real(json_object_get(o, "best_val_loss"), INFINITY);
	/* Before it had its own key, best_val_loss was the epoch-end figure. */
	s->es_best_val_loss =
		json_object_get(o, "early_stopping_best_val_loss")
			? get_real(json_object_get(o, "early_stopping_best_val_loss"), INFINITY)
			: s->best_val_loss;
	s->last_val_loss = get_real(json_object_get(o, "last_val_loss"), NAN);
	s->lr = get_real(json_object_get(o, "lr"), 0);
	s->loss = get_real(json_object_get(o, "loss"), NAN);
	/* last_val_step: a step (>= 0), or null for none (-1 in memory) */
	if (s->step < 0 || s->epoch < 0 || s->micro_batch < 0 || s->batch_size <= 0 ||
	    (json_is_integer(json_object_get(o, "last_val_step")) && s->last_val_step < 0)) {
		snprintf(err, errlen,
			 "%s: step, epoch, data_position or last_val_step out of range", path);
		goto out;
	}
	ret = 0;
	goto out;
bad:
	snprintf(err, errlen, "%s: an RNG word is not a 0x-prefixed 64-bit hex string", path);
out:
	json_decref(o);
	return ret;
}
