/* SPDX-License-Identifier: MIT */
/*
 * data.c - the corpus as byte tokens. The first 90% is the training split,
 * the last 10% the validation split. A training example is the `ctx` bytes
 * before position i and the byte at i; an epoch visits every example once in
 * an order shuffled with the epoch's seed, so the data position is just
 * (epoch, micro-batch) plus that seed.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "trainer_i.h"

/* Validation examples per evaluation: enough for a stable number, few
 * enough that evaluating at every checkpoint stays cheap. */
#define VAL_MAX_EXAMPLES 256

int data_load(struct data *d, const char *path, int ctx, char *err, size_t errlen)
{
	FILE *f;
	long sz;
	size_t n_val;

	memset(d, 0, sizeof(*d));
	f = fopen(path, "rb");
	if (!f) {
		snprintf(err, errlen, "cannot open dataset %s: %s; pass --dataset PATH", path,
			 strerror(errno));
		return -errno;
	}
	if (fseek(f, 0, SEEK_END) < 0 || (sz = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) < 0) {
		snprintf(err, errlen, "cannot size dataset %s: %s", path, strerror(errno));
		fclose(f);
		return -EIO;
	}
	d->bytes = malloc(sz ? (size_t)sz : 1);
	if (!d->bytes) {
		fclose(f);
		return -ENOMEM;
	}
	if (fread(d->bytes, 1, (size_t)sz, f) != (size_t)sz) {
		snprintf(err, errlen, "cannot read dataset %s", path);
		fclose(f);
		data_free(d);
		return -EIO;
	}
	fclose(f);
	d->len = (size_t)sz;
	d->ctx = ctx;
	n_val = d->len / 10;
	d->n_train = d->len - n_val;
	if (d->n_train < (size_t)ctx + 64 || n_val < (size_t)ctx + 1) {
		snprintf(err, errlen,
			 "dataset %s has %zu bytes; a context of %d needs at least %d bytes", path,
			 d->len, ctx, 10 * (ctx + 64));
		data_free(d);
		return -EINVAL;
	}
	d->n_ex = d->n_train - (size_t)ctx;
	d->n_val_ex = n_val - (size_t)ctx;
	if (d->n_val_ex > VAL_MAX_EXAMPLES)
		d->n_val_ex = VAL_MAX_EXAMPLES;
	d->perm = malloc(d->n_ex * sizeof(*d->perm));
	if (!d->perm) {
		data_free(d);
		return -ENOMEM;
	}
	return 0;
}

void data_free(struct data *d)
{
	free(d->bytes);
	free(d->perm);
	d->bytes = NULL;
	d->perm = NULL;
}

void data_shuffle(struct data *d, uint64_t epoch_seed)
{
	struct rng r;

	rng_seed(&r, epoch_seed);
	for (size_t i = 0; i < d->n_ex; i++)
		d->perm[i] = (uint32_t)i;
	/* Fisher-Yates; the modulo bias is irrelevant here and deterministic. */
	for (size_t i = d->n_ex - 1; i > 0; i--) {
		size_t j = rng_next(&r) % (i + 1);
		uint32_t t = d->perm[i];

		d->perm[i] = d->perm[j];
		d->perm[j] = t;
	}
}

static void example(const uint8_t *base, size_t pos, int ctx, uint8_t *x, uint8_t *y)
{
	memcpy(x, base + pos, (size_t)ctx);
	*y = base[pos + (size_t)ctx];
}

void data_batch(const struct data *d, int64_t mb, int B, uint8_t *x, uint8_t *y)
{
	for (int b = 0; b < B; b++) {
		size_t i = d->perm[((size_t)mb * (size_t)B + (size_t)b) % d->n_ex];

		example(d->bytes, i, d->ctx, x + (size_t)b * d->ctx, y + b);
	}
}

void data_val_batch(const struct data *d, size_t first, int B, uint8_t *x, uint8_t *y)
{
	for (int b = 0; b < B; b++)
		example(d->bytes + d->n_train, first + (size_t)b, d->ctx, x + (size_t)b * d->ctx,
			y + b);
}
