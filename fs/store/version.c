// SPDX-License-Identifier: MIT
/*
 * version.c - versions of a run: create (an OPEN version with a durable
 * marker in runs/RUN/open/), commit, delete, retire, rename, pin, latest and
 * best, and their metadata.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <xxhash.h>

#include "ckptfs/utf8.h"
#include "store_i.h"

static int marker_write(struct ckpt_store *s, struct version *v)
{
	char txt[160];
	/* shared: the mount that made it (alive: the version is open, not incomplete) */
	int n = s->be->mount_id[0]
			? snprintf(txt, sizeof(txt),
				   "{\"id\":\"%016" PRIx64 "\",\"created_ns\":%" PRId64
				   ",\"mount\":\"%s\"}",
				   v->id, v->created_ns, s->be->mount_id)
			: snprintf(txt, sizeof(txt),
				   "{\"id\":\"%016" PRIx64 "\",\"created_ns\":%" PRId64 "}", v->id,
				   v->created_ns);

	return SB(s->be, marker_put, v->run->name, v->name, txt, (size_t)n);
}

static int strcmp_ptr(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static void fill_info(struct version *v, struct ckpt_version_info *in, bool totals)
{
	memset(in, 0, sizeof(*in));
	snprintf(in->name, sizeof(in->name), "%s", v->name);
	in->state = v->state;
	in->pinned = v->pinned;
	in->seq = v->seq;
	in->created_ns = v->created_ns;
	in->committed_ns = v->committed_ns;
	if (v->totals_ok) {
		in->logical_bytes = v->tot_bytes;
		in->nfiles = v->tot_files;
	} else if (v->root && totals) {
		node_tree_totals(v->root, &in->logical_bytes, &in->nfiles);
		if (v->state != CKPT_V_OPEN && !v->busy) {
			v->tot_bytes = in->logical_bytes;
			v->tot_files = in->nfiles;
			v->totals_ok = true;
		}
	}
	in->has_metric = version_metric(v->run, v, &in->metric);
	in->manifest_hidden = v->state == CKPT_V_OPEN && v->manifest_hidden;
}

int ckpt_version_list(struct ckpt_store *s, const char *run, struct ckpt_version_info **out,
		      size_t *n)
{
	struct run *r;
	int ret = 0;

	pthread_mutex_lock(&s->lock);
	r = run_find(s, run);
	if (!r && s->be->shared) { /* made by another host a moment ago? */
		pthread_mutex_unlock(&s->lock);
		store_refresh_now(s, run, NULL);
		pthread_mutex_lock(&s->lock);
		r = run_find(s, run);
	}
	if (!r) {
		ret = store_err(s, -ENOENT, "no run %s", run);
		goto out;
	}
	*out = calloc(r->nv + 1, sizeof(**out));
	if (!*out) {
		ret = -ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < r->nv; i++)
		fill_info(r->v[i], &(*out)[i], true);
	*n = r->nv;
out:
	pthread_mutex_unlock(&s->lock);
	return ret;
}

static int version_get(struct ckpt_store *s, const char *run, const char *version,
		       struct ckpt_version_info *info, bool totals)
{
	struct version *v;
	int ret;

	pthread_mutex_lock(&s->lock);
	ret = version_lookup(s, run, version, &v);
	if (ret == -ENOENT && s->be->shared) {
		/* another host may have made it a moment ago (a rank on this host
		 * opens a file in the version rank 0 made there): ask the store
		 * before saying it is not there */
		pthread_mutex_unlock(&s->lock);
		store_refresh_now(s, run, version);
		pthread_mutex_lock(&s->lock);
		ret = version_lookup(s, run, version, &v);
	}
	if (ret == 0)
		fill_info(v, info, totals);
	pthread_mutex_unlock(&s->lock);
	return ret;
}

int ckpt_version_info(struct ckpt_store *s, const char *run, const char *version,
		      struct ckpt_version_info *info)
{
	return version_get(s, run, version, info, true);
}

int ckpt_version_state(struct ckpt_store *s, const char *run, const char *version,
		       struct ckpt_version_info *info)
{
	return version_get(s, run, version, info, false);
}

int ckpt_version_create(struct ckpt_store *s, const char *run, const char *version)
{
	const char *why;
	struct version *v;
	struct run *r;
	int ret = name_check_kind(version, NAME_VERSION, &why);

	if (ret < 0)
		return store_err(s, ret, "invalid version name: %s", why);
	pthread_mutex_lock(&s->lock);
	r = run_find(s, run);
	if (!r) {
		ret = store_err(s, -ENOENT, "no run %s: create it first", run);
		goto out;
	}
	if (version_find(r, version)) {
		ret = store_err(s, -EEXIST, "version %s already exists in run %s", version, run);
		goto out;
	}
	v = version_new(r, version, CKPT_V_OPEN);
	if (!v) {
		ret = -ENOMEM;
		goto out;
	}
	v->created_ns = now_ns();
	if (getrandom(&v->id, sizeof(v->id), 0) != sizeof(v->id))
		v->id = (uint64_t)v->created_ns;
	v->id |= 1;
	v->shared = s->be->shared && s->be->ops->part_put;
	v->mine = true;
	snprintf(v->creator, sizeof(v->creator), "%s", s->be->mount_id);
	/* durable before anyone writes into it: after a crash the version is
	 * known and shown INCOMPLETE rather than silently gone */
	ret = marker_write(s, v);
	if (ret < 0) {
		store_err(s, ret, "cannot create version %s/%s in %s: %s", run, version,
			  s->be->where, strerror(-ret));
		goto fail;
	}
	ret = run_add_version(r, v);
	if (ret == 0)
		goto out;
fail:
	node_free(s, v->root);
	json_decref(v->meta);
	free(v);
out:
	pthread_mutex_unlock(&s->lock);
	return ret;
}

/* Collect the fdata of every file (each once, with a reference: hard links
 * share one); `gen` marks the ones met. */
static int collect_files(struct node *n, uint64_t gen, struct fdata ***v, size_t *nv, size_t *cap)
{
	for (size_t i = 0; i < n->nkids; i++) {
		struct node *k = n->kids[i];

		if (k->type == CKPT_NODE_DIR) {
			int ret = collect_files(k, gen, v, nv, cap);

			if (ret < 0)
				return ret;
			continue;
		}
		if (k->type != CKPT_NODE_FILE || k->f->mark == gen)
			continue;
		k->f->mark = gen;
		if (*nv == *cap) {
			size_t c = *cap ? *cap * 2 : 16;
			struct fdata **p = realloc(*v, c * sizeof(*p));

			if (!p)
				return -ENOMEM;
			*v = p;
			*cap = c;
		}
		fdata_get(k->f);
		(*v)[(*nv)++] = k->f;
	}
	return 0;
}

static int commit_data(struct ckpt_store *s, struct version *v, struct fdata **fv, size_t nf)
{
	int ret = 0;

	/* frozen: a write that raced past the busy check cannot change a file
	 * after its chunk list went into the manifest */
	for (size_t i = 0; i < nf && ret == 0; i++) {
		pthread_mutex_lock(&fv[i]->lock);
		fv[i]->frozen = true;
		ret = fdata_finalize(s, fv[i]);
		pthread_mutex_unlock(&fv[i]->lock);
	}
	if (ret < 0)
		return store_err(s, ret, "commit of %s/%s failed while chunking its files: %s",
				 v->run->name, v->name, strerror(-ret));
	cw_drain(s->ck.cw);
	for (size_t i = 0; i < nf && ret == 0; i++) {
		pthread_mutex_lock(&fv[i]->lock);
		ret = fdata_check_errors(s, fv[i]);
		pthread_mutex_unlock(&fv[i]->lock);
	}
	if (ret < 0)
		return store_err(
			s, ret,
			"commit of %s/%s failed: writing its chunks to %s failed (%s); the "
			"version stays open: free space or fix the disk, rewrite the files",
			v->run->name, v->name, s->be->where, strerror(-ret));
	/* Every chunk durable before the manifest names them (dir: one syncfs
	 * for all of them). Never retried: after an error the kernel may have
	 * dropped the dirty pages. */
	ret = SB(s->be, chunk_sync);
	if (ret < 0)
		return store_err(s, ret,
				 "commit of %s/%s failed: syncing the chunks in %s failed (%s); "
				 "nothing committed changed; check the disk (dmesg) and write the "
				 "version again",
				 v->run->name, v->name, s->be->where, strerror(-ret));
	return 0;
}

/* The manifest of a committing version, once the backend gave its seq.
 * Shared: `parts` are every mount's part as the commit's compare-and-swap
 * read them; the manifest holds exactly their files and this mount's. */
static char *commit_doc(void *arg, uint64_t seq, const struct sb_part *parts, size_t nparts,
			size_t *len, int *err)
{
	struct version *v = ((void **)arg)[0];
	struct ckpt_store *s = ((void **)arg)[1];
	int *said = ((void **)arg)[2]; /* the error has its sentence */
	char who[256];
	char *txt;

	*said = 1;
	if (v->shared) {
		shared_merge(s, v, parts, nparts, true);
		if (shared_foreign_writers(v, who, sizeof(who))) {
			*err = store_err(s, -EBUSY,
					 "version %s/%s has files still open for writing on other "
					 "hosts (%s): close every file of the version (every rank) "
					 "before committing it",
					 v->run->name, v->name, who);
			return NULL;
		}
		*err = version_parts_check(s, v);
		if (*err < 0)
			return NULL;
		if (shared_conflicts(v)) {
			*err = store_err(
				s, -EEXIST,
				"version %s/%s: %u path%s written on two hosts; remove one "
				"of each before committing",
				v->run->name, v->name, shared_conflicts(v),
				shared_conflicts(v) == 1 ? " was" : "s were");
			return NULL;
		}
	}
	v->seq = seq;
	txt = manifest_text(s, v, len);
	if (!txt)
		*err = -ENOMEM;
	else
		*said = 0; /* the backend's errors from here on are its own */
	return txt;
}

/* Wait until `until` or for the writers count to drop; shared versions
 * look at the other hosts' parts every 100 ms. true: the time is up. */
static bool writers_wait(struct ckpt_store *s, struct version *v, const struct timespec *until)
{
	struct timespec now, t;

	if (!v->shared)
		return pthread_cond_timedwait(&s->writers_cond, &s->lock, until) == ETIMEDOUT;
	clock_gettime(CLOCK_MONOTONIC, &now);
	t = now;
	t.tv_nsec += 100000000;
	if (t.tv_nsec >= 1000000000) {
		t.tv_sec++;
		t.tv_nsec -= 1000000000;
	}
	if (t.tv_sec > until->tv_sec || (t.tv_sec == until->tv_sec && t.tv_nsec > until->tv_nsec))
		t = *until;
	pthread_cond_timedwait(&s->writers_cond, &s->lock, &t);
	clock_gettime(CLOCK_MONOTONIC, &now);
	return now.tv_sec > until->tv_sec ||
	       (now.tv_sec == until->tv_sec && now.tv_nsec >= until->tv_nsec);
}

int ckpt_version_commit(struct ckpt_store *s, const char *run, const char *version,
			const char *new_name)
{
	struct fdata **fv = NULL;
	size_t nf = 0, cap = 0;
	const char *why, *final;
	struct version *v;
	struct timespec until;
	bool waited = false;
	char who[256];
	uint32_t fw = 0;
	int ret;

	clock_gettime(CLOCK_MONOTONIC, &until);
	until.tv_sec += STORE_WRITERS_WAIT_MS / 1000;
	until.tv_nsec += (long)(STORE_WRITERS_WAIT_MS % 1000) * 1000000;
	if (until.tv_nsec >= 1000000000) {
		until.tv_sec++;
		until.tv_nsec -= 1000000000;
	}
	pthread_mutex_lock(&s->lock);
again:
	ret = version_lookup(s, run, version, &v);
	if (ret < 0)
		goto out;
	if (v->state != CKPT_V_OPEN) {
		ret = store_err(
			s, v->state == CKPT_V_INCOMPLETE ? -EINVAL : -EROFS,
			"version %s/%s is %s, not open: only open versions can be committed", run,
			version, ckpt_vstate_name(v->state));
		goto out;
	}
	if (v->busy) {
		ret = store_err(s, -EBUSY, "version %s/%s is being committed already", run,
				version);
		goto out;
	}
	if (v->shared) { /* what the other hosts wrote, and their parts */
		ret = shared_refresh(s, v);
		if (ret < 0) {
			store_err(s, ret, "commit of %s/%s: cannot read the other hosts' parts: %s",
				  run, version, strerror(-ret));
			goto out;
		}
		fw = shared_foreign_writers(v, who, sizeof(who));
	}
	ret = version_parts_check(s, v);
	if (ret < 0)
		goto out;
	if (v->writers > 0 || fw > 0) {
		/* never publish a file that is still being written; the wait
		 * covers the RELEASE the kernel sends after close(2) returns */
		if (waited && fw) {
			ret = store_err(s, -EBUSY,
					"version %s/%s has files still open for writing on other "
					"hosts (%s): close every file of the version (every rank) "
					"before committing it",
					run, version, who);
			goto out;
		}
		if (waited) {
			ret = store_err(s, -EBUSY,
					"version %s/%s has %d file%s still open for writing: "
					"close every file of the version (every writer, every "
					"rank) before committing it",
					run, version, v->writers, v->writers == 1 ? "" : "s");
			goto out;
		}
		v->refs++;
		waited = writers_wait(s, v, &until);
		version_unref(s, v);
		goto again;
	}
	final = new_name && strcmp(new_name, version) ? new_name : version;
	if (final != version) {
		ret = name_check_kind(final, NAME_VERSION, &why);
		if (ret < 0) {
			store_err(s, ret, "invalid version name %s: %s", final, why);
			goto out;
		}
		if (version_find(v->run, final)) {
			ret = store_err(s, -EEXIST, "version %s already exists in run %s", final,
					run);
			goto out;
		}
	}
	ret = collect_files(v->root, fdata_walk_gen(), &fv, &nf, &cap);
	if (ret < 0)
		goto out_put;
	v->busy = true;
	v->refs++;
	pthread_mutex_unlock(&s->lock);

	ret = commit_data(s, v, fv, nf);

	pthread_mutex_lock(&s->lock);
	if (ret == 0 && final != version && version_find(v->run, final))
		ret = store_err(s, -EEXIST, "version %s already exists in run %s", final, run);
	if (ret == 0) {
		char oldname[CKPT_NAME_MAX + 1];
		int said = 0;
		void *arg[3] = {v, s, &said};
		uint64_t seq;

		snprintf(oldname, sizeof(oldname), "%s", v->name);
		v->committed_ns = now_ns();
		v->state = CKPT_V_COMMITTED;
		snprintf(v->name, sizeof(v->name), "%s", final);
		/* dir: tmp, fsync, rename, fsync dir (io_publish) */
		ret = SB(s->be, manifest_commit, v->run->name, final, oldname, s->next_seq,
			 commit_doc, arg, &seq);
		if (ret == -ENOENT && !said)
			ret = store_err(s, -ENOENT,
					"commit of %s/%s failed: another host committed or removed "
					"the version meanwhile",
					run, version);
		else if (ret == -EEXIST && !said)
			ret = store_err(
				s, -EEXIST,
				"commit of %s/%s failed: version %s was committed in run %s "
				"by another host meanwhile",
				run, version, final, run);
		else if (ret < 0 && !said)
			store_err(s, ret,
				  "commit of %s/%s failed: writing its manifest in %s failed (%s); "
				  "the version stays open and nothing committed changed",
				  run, version, s->be->where, strerror(-ret));
		if (ret < 0) {
			v->seq = 0;
			v->committed_ns = 0;
			v->state = CKPT_V_OPEN;
			snprintf(v->name, sizeof(v->name), "%s", oldname);
		} else {
			v->seq = seq;
			s->next_seq = seq + 1;
			free(v->parts); /* whole now: user.ckpt.writers is for open versions */
			v->parts = NULL;
			v->nparts = v->parts_done = 0;
			v->shared = false;
			free(v->fp);
			v->fp = NULL;
			v->nfp = 0;
			for (size_t i = 0; i < nf; i++) {
				pthread_mutex_lock(&fv[i]->lock);
				fdata_seal(s, fv[i]);
				pthread_mutex_unlock(&fv[i]->lock);
			}
			/* the marker is only a hint now: a leftover one with this
			 * version's id is removed at the next open */
			SB(s->be, marker_remove, v->run->name, oldname, false);
			if (final != version) {
				run_del_version(v->run, v);
				run_add_version(v->run, v);
			}
		}
	}
	if (ret < 0) {
		for (size_t i = 0; i < nf; i++) {
			pthread_mutex_lock(&fv[i]->lock);
			fv[i]->frozen = false;
			pthread_mutex_unlock(&fv[i]->lock);
		}
	}
	v->busy = false;
	pthread_cond_broadcast(&s->writers_cond); /* parts waiting on it: parts.c */
	if (ret == 0 && !v->dead)
		retention_apply_run(s, v->run, 0);
	version_unref(s, v);
out_put:
	for (size_t i = 0; i < nf; i++)
		fdata_put(s, fv[i]);
	free(fv);
out:
	pthread_mutex_unlock(&s->lock);
	return ret;
}

int ckpt_version_delete(struct ckpt_store *s, const char *run, const char *version)
{
	struct version *v;
	int ret;

	pthread_mutex_lock(&s->lock);
	ret = version_lookup(s, run, version, &v);
	if (ret < 0)
		goto out;
	if (v->pinned) {
		ret = store_err(s, -EBUSY,
				"version %s/%s is pinned (in use by a resume): unpin it "
				"first",
				run, version);
		goto out;
	}
	if (v->busy) {
		ret = store_err(s, -EBUSY, "version %s/%s is being committed", run, version);
		goto out;
	}
	ret = version_remove_locked(s, v);
	if (ret < 0)
		store_err(s, ret, "cannot delete version %s/%s in %s: %s", run, version,
			  s->be->where, strerror(-ret));
out:
	pthread_mutex_unlock(&s->lock);
	return ret;
}

int ckpt_version_retire(struct ckpt_store *s, const char *run, const char *version)
{
	struct version *v;
	enum ckpt_vstate old;
	int ret;

	pthread_mutex_lock(&s->lock);
	ret = version_lookup(s, run, version, &v);
	if (ret < 0)
		goto out;
	/* an INCOMPLETE version is never resumable anyway: "retiring" it only
	 * lets rm -r hide its paths one by one */
	if (v->state == CKPT_V_RETIRED || v->state == CKPT_V_INCOMPLETE)
		goto out;
	if (v->state != CKPT_V_COMMITTED && v->state != CKPT_V_CORRUPT) {
		ret = store_err(s, -EINVAL, "version %s/%s is %s: only committed versions retire",
				run, version, ckpt_vstate_name(v->state));
		goto out;
	}
	if (v->pinned) {
		ret = store_err(s, -EBUSY, "version %s/%s is pinned (in use by a resume)", run,
				version);
		goto out;
	}
	old = v->state;
	v->state = CKPT_V_RETIRED;
	ret = version_persist(s, v);
	if (ret < 0) {
		v->state = old;
		store_err(s, ret, "cannot retire %s/%s: %s", run, version, strerror(-ret));
	}
out:
	pthread_mutex_unlock(&s->lock);
	return ret;
}

int ckpt_version_rename(struct ckpt_store *s, const char *run, const char *version,
			const char *new_name)
{
	const char *why;
	struct version *v;
	int ret = name_check_kind(new_name, NAME_VERSION, &why);

	if (ret < 0)
		return store_err(s, ret, "invalid version name %s: %s", new_name, why);
	pthread_mutex_lock(&s->lock);
	ret = version_lookup(s, run, version, &v);
	if (ret < 0)
		goto out;
	if (v->state != CKPT_V_OPEN || v->busy) {
		ret = store_err(s, v->busy ? -EBUSY : -EROFS,
				"version %s/%s is %s: only open versions can be renamed", run,
				version, ckpt_vstate_name(v->state));
		goto out;
	}
	if (!strcmp(version, new_name))
		goto out;
	if (version_find(v->run, new_name)) {
		ret = store_err(s, -EEXIST, "version %s already exists in run %s", new_name, run);
		goto out;
	}
	ret = SB(s->be, marker_rename, run, version, new_name);
	if (ret < 0) {
		store_err(s, ret, "cannot rename %s/%s: %s", run, version, strerror(-ret));
		goto out;
	}
	snprintf(v->name, sizeof(v->name), "%s", new_name);
	run_del_version(v->run, v);
	run_add_version(v->run, v);
out:
	pthread_mutex_unlock(&s->lock);
	return ret;
}

int ckpt_version_pin(struct ckpt_store *s, const char *run, const char *version, bool pin)
{
	struct version *v;
	int ret;

	pthread_mutex_lock(&s->lock);
	ret = version_lookup(s, run, version, &v);
	if (ret < 0 || v->pinned == pin)
		goto out;
	v->pinned = pin;
	ret = version_persist(s, v);
	if (ret < 0) {
		v->pinned = !pin;
		store_err(s, ret, "cannot %s %s/%s: %s", pin ? "pin" : "unpin", run, version,
			  strerror(-ret));
	}
out:
	pthread_mutex_unlock(&s->lock);
	return ret;
}

int ckpt_version_hide_manifest(struct ckpt_store *s, const char *run, const char *version)
{
	struct version *v;
	int ret;

	pthread_mutex_lock(&s->lock);
	ret = version_lookup(s, run, version, &v);
	if (ret == 0 && v->state == CKPT_V_OPEN)
		v->manifest_hidden = true;
	pthread_mutex_unlock(&s->lock);
	return ret;
}

static int latest_best(struct ckpt_store *s, const char *run, char *buf, size_t len, bool best)
{
	struct version *v;
	struct run *r;
	int ret;

	pthread_mutex_lock(&s->lock);
	r = run_find(s, run);
	if (!r) {
		ret = store_err(s, -ENOENT, "no run %s", run);
		goto out;
	}
	v = version_pick(r, best);
	if (!v)
		ret = -ENOENT;
	else if (strlen(v->name) >= len)
		ret = -ERANGE;
	else
		ret = snprintf(buf, len, "%s", v->name) > 0 ? 0 : -EINVAL;
out:
	pthread_mutex_unlock(&s->lock);
	return ret;
}

int ckpt_version_latest(struct ckpt_store *s, const char *run, char *buf, size_t len)
{
	return latest_best(s, run, buf, len, false);
}

int ckpt_version_best(struct ckpt_store *s, const char *run, char *buf, size_t len)
{
	return latest_best(s, run, buf, len, true);
}

/* ---- metadata ---- */

static int meta_key_check(struct ckpt_store *s, const char *key)
{
	const char *why;
	int ret = name_check_kind(key, NAME_COMP, &why);

	return ret < 0 ? store_err(s, ret, "invalid metadata key: %s", why) : 0;
}

int ckpt_meta_set(struct ckpt_store *s, const char *run, const char *version, const char *key,
		  const char *value, size_t len)
{
	struct version *v;
	json_t *old;
	int ret = meta_key_check(s, key);

	if (ret < 0)
		return ret;
	if (len > 65536 || memchr(value, 0, len) || !ckpt_utf8_valid(value, len))
		return store_err(s, -EINVAL,
				 "metadata %s: the value must be UTF-8 text up to 64 KiB", key);
	pthread_mutex_lock(&s->lock);
	ret = version_lookup(s, run, version, &v);
	if (ret < 0)
		goto out;
	if (v->state == CKPT_V_INCOMPLETE || v->state == CKPT_V_RETIRED) {
		ret = store_err(s, -EROFS, "version %s/%s is %s: its metadata cannot change", run,
				version, ckpt_vstate_name(v->state));
		goto out;
	}
	old = json_incref(json_object_get(v->meta, key));
	json_object_set_new(v->meta, key, json_stringn(value, len));
	ret = version_persist(s, v);
	if (ret < 0) {
		if (old)
			json_object_set(v->meta, key, old);
		else
			json_object_del(v->meta, key);
		store_err(s, ret, "cannot save metadata of %s/%s: %s", run, version,
			  strerror(-ret));
	}
	json_decref(old);
out:
	pthread_mutex_unlock(&s->lock);
	return ret;
}

int ckpt_meta_get(struct ckpt_store *s, const char *run, const char *version, const char *key,
		  char *buf, size_t len)
{
	struct version *v;
	json_t *val;
	size_t l;
	int ret;

	pthread_mutex_lock(&s->lock);
	ret = version_lookup(s, run, version, &v);
	if (ret < 0)
		goto out;
	val = json_object_get(v->meta, key);
	if (!val) {
		ret = -ENODATA;
		goto out;
	}
	l = json_string_length(val);
	if (buf && len) {
		if (l > len) {
			ret = -ERANGE;
			goto out;
		}
		memcpy(buf, json_string_value(val), l);
		if (l < len)
			buf[l] = 0;
	}
	ret = (int)l;
out:
	pthread_mutex_unlock(&s->lock);
	return ret;
}

int ckpt_meta_remove(struct ckpt_store *s, const char *run, const char *version, const char *key)
{
	struct version *v;
	json_t *old;
	int ret;

	pthread_mutex_lock(&s->lock);
	ret = version_lookup(s, run, version, &v);
	if (ret < 0)
		goto out;
	old = json_incref(json_object_get(v->meta, key));
	if (!old) {
		ret = -ENODATA;
		goto out;
	}
	if (v->state == CKPT_V_INCOMPLETE || v->state == CKPT_V_RETIRED) {
		json_decref(old);
		ret = -EROFS;
		goto out;
	}
	json_object_del(v->meta, key);
	ret = version_persist(s, v);
	if (ret < 0)
		json_object_set(v->meta, key, old);
	json_decref(old);
out:
	pthread_mutex_unlock(&s->lock);
	return ret;
}

int ckpt_meta_list(struct ckpt_store *s, const char *run, const char *version, char ***keys,
		   size_t *n)
{
	struct version *v;
	const char *k;
	json_t *val;
	size_t i = 0;
	char **out;
	int ret;

	pthread_mutex_lock(&s->lock);
	ret = version_lookup(s, run, version, &v);
	if (ret < 0)
		goto done;
	out = calloc(json_object_size(v->meta) + 1, sizeof(*out));
	if (!out) {
		ret = -ENOMEM;
		goto done;
	}
	json_object_foreach(v->meta, k, val)
	{
		out[i] = strdup(k);
		if (!out[i]) {
			ckpt_strv_free(out, i);
			ret = -ENOMEM;
			goto done;
		}
		i++;
	}
	qsort(out, i, sizeof(*out), strcmp_ptr);
	*keys = out;
	*n = i;
done:
	pthread_mutex_unlock(&s->lock);
	return ret;
}

int ckpt_version_manifest_json(struct ckpt_store *s, const char *run, const char *version,
			       char **json, size_t *len)
{
	struct version *v;
	json_t *o;
	int ret;

	pthread_mutex_lock(&s->lock);
	ret = version_lookup(s, run, version, &v);
	if (ret < 0)
		goto out;
	o = manifest_build(s, v, true);
	*json = o ? json_dumps(o, JSON_INDENT(2) | JSON_PRESERVE_ORDER) : NULL;
	json_decref(o);
	if (!*json) {
		ret = -ENOMEM;
		goto out;
	}
	*len = strlen(*json);
out:
	pthread_mutex_unlock(&s->lock);
	return ret;
}
