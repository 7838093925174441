// SPDX-License-Identifier: MIT
/*
 * store.c - opening and closing a store: the options, the backend named
 * by the store's name (backend.c), the chunk layer on top of it, and the
 * runs and versions loaded from it.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
#include <time.h>

#include "store_i.h"

int ckpt_store_open_err(const char *where, const struct ckpt_store_opts *opts,
			struct ckpt_store **out, char *err, size_t errlen)
{
	static const struct ckpt_store_opts defaults = {0};
	struct ckpt_store *s;
	char dummy[8];
	int ret;

	if (!err) {
		err = dummy;
		errlen = sizeof(dummy);
	}
	err[0] = 0;
	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	pthread_mutex_init(&s->lock, NULL);
	{
		pthread_condattr_t ca;

		pthread_condattr_init(&ca);
		pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
		pthread_cond_init(&s->writers_cond, &ca);
		pthread_condattr_destroy(&ca);
	}
	s->opts = opts ? *opts : defaults;
	s->io = s->opts.io ? s->opts.io : &ckpt_io_default;
	s->next_seq = 1;
	if (!s->opts.chunk_size)
		s->opts.chunk_size = STORE_DEF_CHUNK;
	if (!s->opts.inflight_bytes)
		s->opts.inflight_bytes = STORE_DEF_INFLIGHT;
	if (s->opts.chunk_size < 4096 || s->opts.chunk_size > (64u << 20)) {
		snprintf(err, errlen, "chunk size %zu is out of range: use 4 KiB to 64 MiB",
			 s->opts.chunk_size);
		ret = -EINVAL;
		goto fail;
	}
	ret = sb_open(where, &s->opts, &s->be, err, errlen);
	if (ret < 0)
		goto fail;
	ret = chunks_open(&s->ck, s->be, &s->opts);
	if (ret < 0) {
		snprintf(err, errlen, "cannot start the chunk writer: %s", strerror(-ret));
		goto fail;
	}
	ret = run_load_all(s);
	if (ret < 0) {
		snprintf(err, errlen, "cannot load the store %s: %s", where,
			 ckpt_store_strerror(s));
		goto fail;
	}
	*out = s;
	return 0;
fail:
	store_err(s, ret, "%s", err);
	ckpt_store_close(s);
	return ret;
}

int ckpt_store_open(const char *dir, const struct ckpt_store_opts *opts, struct ckpt_store **out)
{
	char err[512];
	int ret = ckpt_store_open_err(dir, opts, out, err, sizeof(err));

	if (ret < 0)
		store_err(NULL, ret, "%s", err);
	return ret;
}

void ckpt_store_close(struct ckpt_store *s)
{
	if (!s)
		return;
	/* writes in flight complete first (chunks_close drains them); the
	 * files' staging files go before the backend that holds them */
	if (s->be) {
		rc_stop(s->ck.rc);
		s->ck.rc = NULL;
		cw_stop(s->ck.cw);
		s->ck.cw = NULL;
	}
	for (size_t i = 0; i < s->nruns; i++)
		run_free(s, s->runs[i]);
	free(s->runs);
	if (s->be) {
		chunks_close(&s->ck);
		SB(s->be, close);
	}
	pthread_cond_destroy(&s->writers_cond);
	pthread_mutex_destroy(&s->lock);
	free(s);
}

int ckpt_store_statvfs(struct ckpt_store *s, struct statvfs *st)
{
	return SB(s->be, statvfs, st);
}
