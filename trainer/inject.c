/* SPDX-License-Identifier: MIT */
/*
 * inject.c - fault injection for tests and demos: --inject KIND@STEP
 * [:attempt=N]. The fault fires once optimizer step STEP has run, and with
 * :attempt=N only when CKPT_ATTEMPT is N, so a supervised restart does not
 * hit it again. What each kind does is in docs/trainer.md.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "trainer_i.h"

static const char *const kinds[] = {"nan", "crash", "hang", "spike"};

int inject_parse(const char *s, struct inject *out, char *err, size_t errlen)
{
	const char *at = strchr(s, '@');
	char *end;
	long long v;
	size_t klen;
	int k;

	if (!at) {
		snprintf(err, errlen, "--inject %s: expected KIND@STEP[:attempt=N]", s);
		return -EINVAL;
	}
	klen = (size_t)(at - s);
	for (k = 0; k < 4; k++)
		if (strlen(kinds[k]) == klen && strncmp(s, kinds[k], klen) == 0)
			break;
	if (k == 4) {
		snprintf(err, errlen, "--inject %s: unknown kind; known: nan, crash, hang, spike",
			 s);
		return -EINVAL;
	}
	errno = 0;
	v = strtoll(at + 1, &end, 10);
	if (errno || end == at + 1 || v < 1) {
		snprintf(err, errlen, "--inject %s: STEP must be an integer >= 1", s);
		return -EINVAL;
	}
	out->kind = (enum inject_kind)k;
	out->step = v;
	out->attempt = 0;
	if (*end == 0)
		return 0;
	if (strncmp(end, ":attempt=", 9) == 0) {
		const char *a = end + 9;

		errno = 0;
		v = strtoll(a, &end, 10);
		if (!errno && end != a && *end == 0 && v >= 1 && v <= 1000000) {
			out->attempt = (int)v;
			return 0;
		}
	}
	snprintf(err, errlen, "--inject %s: after STEP only :attempt=N (N >= 1) is allowed", s);
	return -EINVAL;
}

const struct inject *inject_due(const struct opts *o, enum inject_kind kind, int64_t step)
{
	for (int i = 0; i < o->ninj; i++)
		if (o->inj[i].kind == kind && o->inj[i].step == step &&
		    (o->inj[i].attempt == 0 || o->inj[i].attempt == o->attempt))
			return &o->inj[i];
	return NULL;
}
