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

/*
 * A shared backend tells which run another host changed (from its own
 * thread); one thread here merges it into memory and tells the layer above
 * (ckptfs invalidates the kernel's caches). Changes that arrive while a
 * refresh runs are merged by the next one.
 */
#define RF_MAX 64 /* runs pending by name; more: refresh everything */

struct refresher {
	struct ckpt_store *s;
	pthread_t th;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool stop, all;
	char *pending[RF_MAX];
	size_t npending;
	/* what the refresh noted, told after the store lock is dropped */
	char **notes;
	size_t nnotes, ncap;
	/* noted by store_refresh_now, told by this thread (under lock) */
	char **late;
	size_t nlate;
};

static void rf_changed(void *arg, const char *run)
{
	struct refresher *rf = arg;

	pthread_mutex_lock(&rf->lock);
	if (!run || rf->npending == RF_MAX) {
		rf->all = true;
	} else {
		bool have = false;

		for (size_t i = 0; i < rf->npending; i++)
			have = have || !strcmp(rf->pending[i], run);
		if (!have && (rf->pending[rf->npending] = strdup(run)))
			rf->npending++;
	}
	pthread_cond_signal(&rf->cond);
	pthread_mutex_unlock(&rf->lock);
}

/* "run\0version" pairs, version "" for NULL */
static void rf_note(void *arg, const char *run, const char *version)
{
	struct refresher *rf = arg;
	size_t rl = strlen(run), vl = version ? strlen(version) : 0;
	char *n;

	if (rf->nnotes == rf->ncap) {
		size_t cap = rf->ncap ? 2 * rf->ncap : 16;
		char **v = realloc(rf->notes, cap * sizeof(*v));

		if (!v)
			return;
		rf->notes = v;
		rf->ncap = cap;
	}
	n = malloc(rl + vl + 2);
	if (!n)
		return;
	memcpy(n, run, rl + 1);
	memcpy(n + rl + 1, version ? version : "", vl + 1);
	rf->notes[rf->nnotes++] = n;
}

static void rf_tell(struct refresher *rf)
{
	const struct ckpt_store_opts *o = &rf->s->opts;

	for (size_t i = 0; i < rf->nnotes; i++) {
		const char *run = rf->notes[i], *ver = run + strlen(run) + 1;

		if (o->changed)
			o->changed(o->changed_arg, run, ver[0] ? ver : NULL);
		free(rf->notes[i]);
	}
	rf->nnotes = 0;
}

static void *rf_main(void *arg)
{
	struct refresher *rf = arg;
	struct ckpt_store *s = rf->s;

	pthread_mutex_lock(&rf->lock);
	while (!rf->stop) {
		char *runs[RF_MAX];
		size_t n;
		bool all;

		char **late;
		size_t nlate;

		if (!rf->all && !rf->npending && !rf->nlate) {
			pthread_cond_wait(&rf->cond, &rf->lock);
			continue;
		}
		late = rf->late;
		nlate = rf->nlate;
		rf->late = NULL;
		rf->nlate = 0;
		all = rf->all;
		n = rf->npending;
		memcpy(runs, rf->pending, n * sizeof(*runs));
		rf->all = false;
		rf->npending = 0;
		pthread_mutex_unlock(&rf->lock);

		pthread_mutex_lock(&s->lock);
		if (all) {
			if (run_refresh(s, NULL, rf_note, rf) < 0)
				store_log("cannot re-read the store %s: %s", s->be->where,
					  ckpt_store_strerror(s));
		}
		for (size_t i = 0; i < n; i++) {
			if (!all && run_refresh(s, runs[i], rf_note, rf) < 0)
				store_log("cannot re-read run %s of %s after another host changed "
					  "it",
					  runs[i], s->be->where);
			free(runs[i]);
		}
		pthread_mutex_unlock(&s->lock);
		rf_tell(rf);
		if (nlate) {
			struct refresher tell = {.s = s, .notes = late, .nnotes = nlate};

			rf_tell(&tell);
		}
		free(late);
		pthread_mutex_lock(&rf->lock);
	}
	pthread_mutex_unlock(&rf->lock);
	return NULL;
}

struct quiet_note {
	struct refresher *rf;
	const char *skip;
};

/* Only versions this mount knew and another host changed: the name looked
 * up and the run's own entries were not in the kernel's cache (the lookup
 * missed), and invalidating entries of the directory being changed here
 * (mkdir in the run) would wait for that change; should the daemon die
 * then (kill -9), the kernel's inval and the change wait on each other for
 * good. */
static void quiet_note(void *arg, const char *run, const char *version)
{
	struct quiet_note *q = arg;

	if (version && (!q->skip || strcmp(version, q->skip)))
		rf_note(q->rf, run, version);
}

int store_refresh_now(struct ckpt_store *s, const char *run, const char *version)
{
	struct refresher tmp = {.s = s};
	struct quiet_note q = {&tmp, version};
	int ret;

	if (!s->rf)
		return 0;
	pthread_mutex_lock(&s->lock);
	ret = run_refresh(s, run, quiet_note, &q);
	pthread_mutex_unlock(&s->lock);
	/* told by the refresher's thread: this one may be answering a FUSE
	 * request, and invalidating an entry of the directory it looks up
	 * in would wait for that very lookup */
	pthread_mutex_lock(&s->rf->lock);
	for (size_t i = 0; i < tmp.nnotes; i++) {
		char **nl = realloc(s->rf->late, (s->rf->nlate + 1) * sizeof(*nl));

		if (!nl) {
			free(tmp.notes[i]);
			continue;
		}
		s->rf->late = nl;
		s->rf->late[s->rf->nlate++] = tmp.notes[i];
	}
	if (tmp.nnotes)
		pthread_cond_signal(&s->rf->cond);
	pthread_mutex_unlock(&s->rf->lock);
	free(tmp.notes);
	return ret;
}

static int rf_start(struct ckpt_store *s)
{
	struct refresher *rf = calloc(1, sizeof(*rf));
	int ret;

	if (!rf)
		return -ENOMEM;
	rf->s = s;
	pthread_mutex_init(&rf->lock, NULL);
	pthread_cond_init(&rf->cond, NULL);
	ret = -pthread_create(&rf->th, NULL, rf_main, rf);
	if (ret < 0) {
		pthread_cond_destroy(&rf->cond);
		pthread_mutex_destroy(&rf->lock);
		free(rf);
		return ret;
	}
	s->rf = rf;
	s->be->changed_arg = rf;
	s->be->changed = rf_changed;
	/* what changed between loading and watching */
	rf_changed(rf, NULL);
	return 0;
}

static void rf_stop(struct ckpt_store *s)
{
	struct refresher *rf = s->rf;

	if (!rf)
		return;
	__atomic_store_n(&s->be->changed, NULL, __ATOMIC_RELEASE);
	/* a notification being handled right now still calls rf_changed */
	if (s->be->ops->quiesce)
		SB(s->be, quiesce);
	pthread_mutex_lock(&rf->lock);
	rf->stop = true;
	pthread_cond_signal(&rf->cond);
	pthread_mutex_unlock(&rf->lock);
	pthread_join(rf->th, NULL);
	for (size_t i = 0; i < rf->npending; i++)
		free(rf->pending[i]);
	for (size_t i = 0; i < rf->nnotes; i++)
		free(rf->notes[i]);
	free(rf->notes);
	for (size_t i = 0; i < rf->nlate; i++)
		free(rf->late[i]);
	free(rf->late);
	pthread_cond_destroy(&rf->cond);
	pthread_mutex_destroy(&rf->lock);
	free(rf);
	s->rf = NULL;
}

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
	if (s->be->shared) {
		ret = rf_start(s);
		if (ret < 0) {
			snprintf(err, errlen,
				 "cannot start the thread that follows other hosts: %s",
				 strerror(-ret));
			goto fail;
		}
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
	if (s->be)
		rf_stop(s);
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
