// SPDX-License-Identifier: MIT
/*
 * track.c - autocommit (-o autocommit=SECONDS, SPEC §2): an open version with
 * no file open for writing and no write for that long is committed, for
 * frameworks that never rename. Versions are tracked from their first
 * mkdir/write in this mount; open versions from before a restart are
 * incomplete and never committed.
 *
 * The lock is held across the commit on purpose: a writer opening a file of
 * the version at that moment waits, then finds the version committed (EROFS)
 * instead of writing into a version that is being sealed.
 */
#include "ckptfs_i.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct tv {
	char run[CKPT_NAME_MAX + 1];
	char ver[CKPT_NAME_MAX + 1];
	int writers;
	int64_t last_ns; /* CLOCK_MONOTONIC of the last activity */
	struct tv *next;
};

struct cfs_track {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool stop;
	pthread_t thread;
	struct tv *list;
};

static int64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static struct tv **find(struct cfs_track *t, const char *run, const char *ver)
{
	struct tv **pp;

	for (pp = &t->list; *pp; pp = &(*pp)->next)
		if (!strcmp((*pp)->run, run) && !strcmp((*pp)->ver, ver))
			return pp;
	return pp;
}

void cfs_track_touch(struct cfs *c, const char *run, const char *ver, int open_delta)
{
	struct cfs_track *t = c->track;
	struct tv **pp, *v;

	if (!t)
		return;
	pthread_mutex_lock(&t->lock);
	pp = find(t, run, ver);
	v = *pp;
	if (!v && open_delta >= 0) {
		v = calloc(1, sizeof(*v));
		if (v) {
			snprintf(v->run, sizeof(v->run), "%s", run);
			snprintf(v->ver, sizeof(v->ver), "%s", ver);
			*pp = v;
		}
	}
	if (v) {
		v->writers += open_delta;
		if (v->writers < 0)
			v->writers = 0;
		v->last_ns = mono_ns();
	}
	pthread_mutex_unlock(&t->lock);
}

void cfs_track_forget(struct cfs *c, const char *run, const char *ver)
{
	struct cfs_track *t = c->track;
	struct tv **pp, *v;

	if (!t)
		return;
	pthread_mutex_lock(&t->lock);
	pp = find(t, run, ver);
	v = *pp;
	if (v) {
		*pp = v->next;
		free(v);
	}
	pthread_mutex_unlock(&t->lock);
}

/* Commit what is due (lock held). */
static void sweep(struct cfs *c, struct cfs_track *t)
{
	int64_t due = (int64_t)c->opts.autocommit_s * 1000000000, now = mono_ns();
	struct tv **pp = &t->list, *v;

	while ((v = *pp)) {
		struct ckpt_version_info vi;
		int ret;

		if (v->writers > 0 || now - v->last_ns < due) {
			pp = &v->next;
			continue;
		}
		ret = ckpt_version_state(c->store, v->run, v->ver, &vi);
		if (ret == 0 && vi.state == CKPT_V_OPEN) {
			ret = ckpt_version_commit(c->store, v->run, v->ver, NULL);
			if (ret < 0) {
				cfs_log("autocommit of %s/%s failed: %s; retrying in %u s", v->run,
					v->ver, ckpt_store_strerror(c->store),
					c->opts.autocommit_s);
				v->last_ns = now;
				pp = &v->next;
				continue;
			}
			cfs_log("autocommitted %s/%s", v->run, v->ver);
			cfs_version_committed(c, v->run, v->ver);
			cfs_fill_queue(c, v->run, v->ver);
		}
		*pp = v->next;
		free(v);
	}
}

static void *track_main(void *arg)
{
	struct cfs *c = arg;
	struct cfs_track *t = c->track;
	unsigned period_ms = c->opts.autocommit_s * 1000 / 4;

	if (period_ms < 100)
		period_ms = 100;
	if (period_ms > 1000)
		period_ms = 1000;
	pthread_mutex_lock(&t->lock);
	while (!t->stop) {
		struct timespec ts;

		clock_gettime(CLOCK_MONOTONIC, &ts);
		ts.tv_nsec += (long)(period_ms % 1000) * 1000000;
		ts.tv_sec += period_ms / 1000 + ts.tv_nsec / 1000000000;
		ts.tv_nsec %= 1000000000;
		pthread_cond_timedwait(&t->cond, &t->lock, &ts);
		if (!t->stop)
			sweep(c, t);
	}
	pthread_mutex_unlock(&t->lock);
	return NULL;
}

int cfs_track_start(struct cfs *c)
{
	struct cfs_track *t;
	pthread_condattr_t ca;
	int ret;

	if (!c->opts.autocommit_s)
		return 0;
	t = calloc(1, sizeof(*t));
	if (!t)
		return -ENOMEM;
	pthread_mutex_init(&t->lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&t->cond, &ca);
	pthread_condattr_destroy(&ca);
	c->track = t;
	ret = pthread_create(&t->thread, NULL, track_main, c);
	if (ret) {
		c->track = NULL;
		pthread_cond_destroy(&t->cond);
		pthread_mutex_destroy(&t->lock);
		free(t);
		return -ret;
	}
	return 0;
}

void cfs_track_stop(struct cfs *c)
{
	struct cfs_track *t = c->track;
	struct tv *v;

	if (!t)
		return;
	pthread_mutex_lock(&t->lock);
	t->stop = true;
	pthread_cond_signal(&t->cond);
	pthread_mutex_unlock(&t->lock);
	pthread_join(t->thread, NULL);
	c->track = NULL;
	while ((v = t->list)) {
		t->list = v->next;
		free(v);
	}
	pthread_cond_destroy(&t->cond);
	pthread_mutex_destroy(&t->lock);
	free(t);
}
