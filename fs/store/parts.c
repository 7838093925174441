// SPDX-License-Identifier: MIT
/*
 * parts.c - versions written by many processes (SPEC §9, docs/mount.md
 * "Many writers"): the handles open for writing that hold a commit back
 * (a commit waits for them, then fails with EBUSY instead of publishing a
 * file that is still being written), and user.ckpt.writers=N: the version
 * is whole once each of its N writers has committed its part (a rank sets
 * user.ckpt.commit=rank=K), and commits then by itself.
 *
 * A part is named by the writer's number K (0 <= K < N), not counted by
 * calls or by process: a rank that commits its part twice (a retry) counts
 * once, and a restarted rank with the same number is the same writer.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store_i.h"

static void refresh_quiet(void *arg, const char *run, const char *version)
{
	(void)arg;
	(void)run;
	(void)version;
}

static bool part_done(const struct version *v, uint32_t k)
{
	return v->parts && k < v->nparts && (v->parts[k / 8] & (1u << (k % 8)));
}

/* "0, 1, 3" (the parts done), cut short with "..." when long. */
static void parts_text(const struct version *v, bool done, char *buf, size_t len)
{
	size_t off = 0;

	buf[0] = '\0';
	for (uint32_t k = 0; k < v->nparts && off + 16 < len; k++) {
		if (part_done(v, k) != done)
			continue;
		off += (size_t)snprintf(buf + off, len - off, "%s%u", off ? ", " : "", k);
	}
	if (off + 16 >= len && len > 4)
		snprintf(buf + len - 4, 4, "...");
}

int version_parts_check(struct ckpt_store *s, struct version *v)
{
	char missing[160];

	if (!v->nparts || v->parts_done == v->nparts)
		return 0;
	parts_text(v, false, missing, sizeof(missing));
	return store_err(s, -EBUSY,
			 "version %s/%s waits for its writers: %u of %u have committed their "
			 "part (user.ckpt.writers=%u), not yet %s; each sets "
			 "user.ckpt.commit=rank=K when its files are closed, or remove "
			 "user.ckpt.writers to commit it as it is",
			 v->run->name, v->name, v->parts_done, v->nparts, v->nparts, missing);
}

void version_writer_done(struct ckpt_store *s, struct version *v)
{
	if (v->writers > 0 && --v->writers == 0)
		pthread_cond_broadcast(&s->writers_cond);
}

void version_file_unnamed(struct ckpt_store *s, struct version *v, struct fdata *f)
{
	if (f->nlink != 1 || f->holds <= 0)
		return;
	v->writers -= v->writers < f->holds ? v->writers : f->holds;
	if (v->writers == 0)
		pthread_cond_broadcast(&s->writers_cond);
}

int ckpt_version_set_writers(struct ckpt_store *s, const char *run, const char *version, uint32_t n)
{
	struct version *v;
	uint8_t *bits = NULL;
	int ret;

	if (n > CKPT_WRITERS_MAX)
		return store_err(s, -EINVAL, "user.ckpt.writers: %u is more than %u writers", n,
				 CKPT_WRITERS_MAX);
	pthread_mutex_lock(&s->lock);
	ret = version_lookup(s, run, version, &v);
	if (ret < 0)
		goto out;
	if (v->state != CKPT_V_OPEN || v->busy) {
		ret = store_err(s, v->busy ? -EBUSY : -EROFS,
				"version %s/%s is %s: its writers are set while it is open", run,
				version, v->busy ? "being committed" : ckpt_vstate_name(v->state));
		goto out;
	}
	shared_refresh(s, v); /* another host may have set it, and parts */
	if (n == v->nparts)
		goto out; /* every rank may set it: the same N is no change */
	if (n && v->parts_done) {
		ret = store_err(s, -EBUSY,
				"version %s/%s has user.ckpt.writers=%u and %u parts committed "
				"already; remove user.ckpt.writers first to change it",
				run, version, v->nparts, v->parts_done);
		goto out;
	}
	if (n) {
		bits = calloc((n + 7) / 8, 1);
		if (!bits) {
			ret = -ENOMEM;
			goto out;
		}
	}
	free(v->parts);
	v->parts = bits;
	v->nparts = n;
	v->parts_done = 0;
	shared_publish(s, v);
out:
	pthread_mutex_unlock(&s->lock);
	return ret;
}

int ckpt_version_writers(struct ckpt_store *s, const char *run, const char *version, uint32_t *n,
			 uint32_t *done, char *parts, size_t len)
{
	struct version *v;
	int ret;

	pthread_mutex_lock(&s->lock);
	ret = version_lookup(s, run, version, &v);
	if (ret == 0) {
		*n = v->nparts;
		*done = v->parts_done;
		if (parts && len)
			parts_text(v, true, parts, len);
	}
	pthread_mutex_unlock(&s->lock);
	return ret;
}

/*
 * A part whose commit of the whole version failed because another writer's
 * last part got there first: that commit's outcome is this one's. Two
 * hosts can each be last (each publishes its part, then reads the other's):
 * the one that loses the compare-and-swap finds the version gone (ENOENT)
 * or, when the winner's notification came first, committed (EROFS); on one
 * mount a commit already under way (a rename) gives EBUSY, and is waited
 * for. An EBUSY for files still open stays: the version is still open.
 */
static int commit_race(struct ckpt_store *s, const char *run, uint64_t id, bool shared, int ret)
{
	struct version *v = NULL;
	struct run *r;

	pthread_mutex_lock(&s->lock);
	if (shared)
		run_refresh(s, run, refresh_quiet, NULL);
	r = run_find(s, run);
	for (size_t i = 0; r && i < r->nv && !v; i++)
		if (r->v[i]->id == id)
			v = r->v[i];
	if (v) {
		v->refs++;
		while (v->busy && !v->dead)
			pthread_cond_wait(&s->writers_cond, &s->lock);
		if (!v->dead && v->state != CKPT_V_OPEN && v->state != CKPT_V_INCOMPLETE)
			ret = 0;
		version_unref(s, v);
	}
	pthread_mutex_unlock(&s->lock);
	return ret;
}

int ckpt_version_commit_part(struct ckpt_store *s, const char *run, const char *version,
			     uint32_t part, bool *committed)
{
	struct version *v;
	bool whole, shared;
	uint64_t id;
	int ret;

	*committed = false;
	pthread_mutex_lock(&s->lock);
	ret = version_lookup(s, run, version, &v);
	if (ret < 0)
		goto unlock;
	if (v->state == CKPT_V_OPEN && v->shared) {
		ret = shared_refresh(s, v); /* user.ckpt.writers may come from another host */
		if (ret < 0) {
			store_err(s, ret, "version %s/%s: cannot read the other hosts' parts: %s",
				  run, version, strerror(-ret));
			goto unlock;
		}
	}
	if (v->state != CKPT_V_OPEN) {
		ret = store_err(s, v->state == CKPT_V_INCOMPLETE ? -EINVAL : -EROFS,
				"version %s/%s is %s, not open: its parts cannot be committed", run,
				version, ckpt_vstate_name(v->state));
		goto unlock;
	}
	if (!v->nparts) {
		ret = store_err(s, -EINVAL,
				"version %s/%s has no user.ckpt.writers: set it to the number of "
				"writers before they commit their parts (or commit the version "
				"with user.ckpt.commit=1)",
				run, version);
		goto unlock;
	}
	if (part >= v->nparts) {
		ret = store_err(s, -EINVAL,
				"version %s/%s: part %u is not one of its %u writers (0 to %u)",
				run, version, part, v->nparts, v->nparts - 1);
		goto unlock;
	}
	if (!part_done(v, part)) {
		v->parts[part / 8] |= (uint8_t)(1u << (part % 8));
		v->parts_done++;
	}
	shared = v->shared;
	id = v->id;
	if (shared) {
		/* every host publishes its parts, then reads the others': the
		 * last to publish sees them all */
		ret = shared_publish(s, v);
		if (ret == 0)
			ret = shared_refresh(s, v);
		if (ret < 0 && ret != -ENOENT)
			goto unlock;
	}
	whole = v->parts_done == v->nparts;
	pthread_mutex_unlock(&s->lock);
	/* The last part commits the version. Setting a part again retries a
	 * commit that failed (EBUSY while a file was still open, ENOSPC). */
	if (!whole && ret != -ENOENT)
		return 0;
	if (ret != -ENOENT)
		ret = ckpt_version_commit(s, run, version, NULL);
	*committed = ret == 0;
	if (ret == -ENOENT || ret == -EROFS || ret == -EBUSY)
		ret = commit_race(s, run, id, shared, ret);
	return ret;
unlock:
	pthread_mutex_unlock(&s->lock);
	return ret;
}
