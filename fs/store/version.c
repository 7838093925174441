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
#include <xxhash.h>

#include "ckptfs/utf8.h"
#include "store_i.h"

static int strcmp_ptr(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

int version_lookup(struct ckpt_store *s, const char *run, const char *version, struct version **out)
{
	struct run *r = run_find(s, run);
	struct version *v;

	if (!r)
		return store_err(s, -ENOENT, "no run %s", run);
	v = version_find(r, version);
	if (!v)
		return store_err(s, -ENOENT, "no version %s in run %s", version, run);
	*out = v;
	return 0;
}

bool version_metric(const struct run *r, const struct version *v, double *out)
{
	char key[CKPT_NAME_MAX + 8];
	const char *colon = strrchr(r->metric, ':'), *val;
	char *end;
	double d;

	if (!r->metric[0] || !colon)
		return false;
	snprintf(key, sizeof(key), "%.*s", (int)(colon - r->metric), r->metric);
	val = json_string_value(json_object_get(v->meta, key));
	if (!val || !*val)
		return false;
	d = strtod(val, &end);
	while (*end == ' ' || *end == '\n')
		end++;
	if (*end || isnan(d))
		return false;
	*out = d;
	return true;
}

static void tree_totals(struct node *n, uint64_t *bytes, uint64_t *files)
{
	for (size_t i = 0; i < n->nkids; i++) {
		struct node *k = n->kids[i];

		if (k->type == CKPT_NODE_FILE) {
			*bytes += k->f->size;
			(*files)++;
		} else {
			tree_totals(k, bytes, files);
		}
	}
}

static void fill_info(struct version *v, struct ckpt_version_info *in)
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
	} else if (v->root) {
		tree_totals(v->root, &in->logical_bytes, &in->nfiles);
		if (v->state != CKPT_V_OPEN && !v->busy) {
			v->tot_bytes = in->logical_bytes;
			v->tot_files = in->nfiles;
			v->totals_ok = true;
		}
	}
	in->has_metric = version_metric(v->run, v, &in->metric);
}

int ckpt_version_list(struct ckpt_store *s, const char *run, struct ckpt_version_info **out,
		      size_t *n)
{
	struct run *r;
	int ret = 0;

	pthread_mutex_lock(&s->lock);
	r = run_find(s, run);
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
		fill_info(r->v[i], &(*out)[i]);
	*n = r->nv;
out:
	pthread_mutex_unlock(&s->lock);
	return ret;
}

int ckpt_version_info(struct ckpt_store *s, const char *run, const char *version,
		      struct ckpt_version_info *info)
{
	struct version *v;
	int ret;

	pthread_mutex_lock(&s->lock);
	ret = version_lookup(s, run, version, &v);
	if (ret == 0)
		fill_info(v, info);
	pthread_mutex_unlock(&s->lock);
	return ret;
}

static int marker_write(struct ckpt_store *s, struct version *v)
{
	char dir[CKPT_NAME_MAX + 8], txt[128];
	int dfd, ret, n;

	n = snprintf(txt, sizeof(txt), "{\"id\":\"%016" PRIx64 "\",\"created_ns\":%" PRId64 "}",
		     v->id, v->created_ns);
	snprintf(dir, sizeof(dir), "%s/open", v->run->name);
	dfd = IO(s, openat, s->runsfd, dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0);
	if (dfd < 0)
		return dfd;
	ret = io_publish(s, dfd, v->name, txt, (size_t)n);
	IO(s, close, dfd);
	return ret;
}

static int marker_remove(struct ckpt_store *s, struct run *r, const char *name, bool sync)
{
	char dir[CKPT_NAME_MAX + 8];
	int dfd, ret;

	snprintf(dir, sizeof(dir), "%s/open", r->name);
	dfd = IO(s, openat, s->runsfd, dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0);
	if (dfd < 0)
		return dfd;
	ret = IO(s, unlinkat, dfd, name, 0);
	if (ret == 0 && sync)
		ret = IO(s, fsync, dfd);
	IO(s, close, dfd);
	return ret;
}

int ckpt_version_create(struct ckpt_store *s, const char *run, const char *version)
{
	const char *why;
	struct version *v;
	struct run *r;
	int ret = name_check_kind(version, 2, &why);

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
	v = calloc(1, sizeof(*v));
	if (!v) {
		ret = -ENOMEM;
		goto out;
	}
	snprintf(v->name, sizeof(v->name), "%s", version);
	v->run = r;
	v->refs = 1;
	v->state = CKPT_V_OPEN;
	v->created_ns = now_ns();
	if (getrandom(&v->id, sizeof(v->id), 0) != sizeof(v->id))
		v->id = (uint64_t)v->created_ns;
	v->id |= 1;
	v->meta = json_object();
	v->root = node_new("", CKPT_NODE_DIR, 0755);
	if (!v->meta || !v->root) {
		ret = -ENOMEM;
		goto fail;
	}
	/* durable before anyone writes into it: after a crash the version is
	 * known and shown INCOMPLETE rather than silently gone */
	ret = marker_write(s, v);
	if (ret < 0) {
		store_err(s, ret, "cannot create version %s/%s in %s: %s", run, version, s->dir,
			  strerror(-ret));
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

/* Collect the fdata of every file (each with a reference). */
static int collect_files(struct node *n, struct fdata ***v, size_t *nv, size_t *cap)
{
	for (size_t i = 0; i < n->nkids; i++) {
		struct node *k = n->kids[i];

		if (k->type == CKPT_NODE_DIR) {
			int ret = collect_files(k, v, nv, cap);

			if (ret < 0)
				return ret;
			continue;
		}
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
	uw_drain(s->uw);
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
			v->run->name, v->name, s->dir, strerror(-ret));
	/* One syncfs makes every chunk written so far durable, with its directory
	 * entry, in one journal commit instead of one fsync per chunk. Never
	 * retried: after an error the kernel may have dropped the dirty pages. */
	ret = IO(s, syncfs, s->dirfd);
	if (ret < 0)
		return store_err(s, ret,
				 "commit of %s/%s failed: syncing the chunks in %s failed (%s); "
				 "nothing committed changed; check the disk (dmesg) and write the "
				 "version again",
				 v->run->name, v->name, s->dir, strerror(-ret));
	return 0;
}

int ckpt_version_commit(struct ckpt_store *s, const char *run, const char *version,
			const char *new_name)
{
	struct fdata **fv = NULL;
	size_t nf = 0, cap = 0;
	const char *why, *final;
	struct version *v;
	int ret;

	pthread_mutex_lock(&s->lock);
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
	final = new_name && strcmp(new_name, version) ? new_name : version;
	if (final != version) {
		ret = name_check_kind(final, 2, &why);
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
	ret = collect_files(v->root, &fv, &nf, &cap);
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

		snprintf(oldname, sizeof(oldname), "%s", v->name);
		v->seq = s->next_seq;
		v->committed_ns = now_ns();
		v->state = CKPT_V_COMMITTED;
		snprintf(v->name, sizeof(v->name), "%s", final);
		/* manifest: tmp, fsync, rename, fsync dir (io_publish) */
		ret = manifest_write(s, v, final);
		if (ret < 0) {
			v->seq = 0;
			v->committed_ns = 0;
			v->state = CKPT_V_OPEN;
			snprintf(v->name, sizeof(v->name), "%s", oldname);
			store_err(s, ret,
				  "commit of %s/%s failed: writing its manifest in %s failed (%s); "
				  "the version stays open and nothing committed changed",
				  run, version, s->dir, strerror(-ret));
		} else {
			s->next_seq++;
			for (size_t i = 0; i < nf; i++) {
				struct fdata *f = fv[i];

				pthread_mutex_lock(&f->lock);
				f->mode = F_FINAL;
				if (f->stage_fd >= 0) {
					IO(s, close, f->stage_fd);
					IO(s, unlinkat, s->stagefd, f->stage_name, 0);
					f->stage_fd = -1;
				}
				free(f->pend);
				f->pend = NULL;
				XXH3_freeState(f->hs);
				f->hs = NULL;
				pthread_mutex_unlock(&f->lock);
			}
			/* the marker is only a hint now: a leftover one with this
			 * version's id is removed at the next open */
			marker_remove(s, v->run, oldname, false);
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

/* store lock held */
int version_remove_locked(struct ckpt_store *s, struct version *v)
{
	char dir[CKPT_NAME_MAX + 16];
	int ret, dfd;

	if (v->state == CKPT_V_OPEN || v->state == CKPT_V_INCOMPLETE) {
		ret = marker_remove(s, v->run, v->name, true);
	} else {
		snprintf(dir, sizeof(dir), "%s/versions", v->run->name);
		dfd = IO(s, openat, s->runsfd, dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0);
		if (dfd < 0)
			return dfd;
		ret = IO(s, unlinkat, dfd, v->name, 0);
		if (ret == 0)
			ret = IO(s, fsync, dfd);
		IO(s, close, dfd);
	}
	if (ret < 0 && ret != -ENOENT)
		return ret;
	run_del_version(v->run, v);
	v->dead = true;
	version_unref(s, v);
	return 0;
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
		store_err(s, ret, "cannot delete version %s/%s in %s: %s", run, version, s->dir,
			  strerror(-ret));
out:
	pthread_mutex_unlock(&s->lock);
	return ret;
}

/* Rewrite a committed version's manifest after a change (store lock held);
 * on failure the caller restores the old value. */
static int version_persist(struct ckpt_store *s, struct version *v)
{
	if (v->state == CKPT_V_OPEN || v->state == CKPT_V_INCOMPLETE)
		return 0;
	return manifest_write(s, v, v->name);
}

int version_mark_corrupt(struct ckpt_store *s, struct version *v)
{
	int ret;

	if (v->state != CKPT_V_COMMITTED)
		return 0;
	v->state = CKPT_V_CORRUPT;
	ret = version_persist(s, v);
	if (ret < 0)
		store_log("cannot record version %s/%s as corrupt in its manifest: %s",
			  v->run->name, v->name, strerror(-ret));
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
	char dir[CKPT_NAME_MAX + 8];
	const char *why;
	struct version *v;
	int ret = name_check_kind(new_name, 2, &why), dfd;

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
	snprintf(dir, sizeof(dir), "%s/open", run);
	dfd = IO(s, openat, s->runsfd, dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0);
	ret = dfd < 0 ? dfd : IO(s, renameat, dfd, version, dfd, new_name);
	if (ret == 0)
		ret = IO(s, fsync, dfd);
	if (dfd >= 0)
		IO(s, close, dfd);
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

/* newest committed (by seq), or best by metric; store lock held */
static struct version *pick(struct run *r, bool best)
{
	struct version *pickv = NULL;
	bool max = strstr(r->metric, ":max") != NULL;
	double pm = 0;

	for (size_t i = 0; i < r->nv; i++) {
		struct version *v = r->v[i];
		double m;

		if (v->state != CKPT_V_COMMITTED)
			continue;
		if (!best) {
			if (!pickv || v->seq > pickv->seq)
				pickv = v;
			continue;
		}
		if (!version_metric(r, v, &m))
			continue;
		if (!pickv || (max ? m > pm : m < pm) || (m == pm && v->seq > pickv->seq)) {
			pickv = v;
			pm = m;
		}
	}
	return pickv;
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
	v = pick(r, best);
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

/* ---- retention ---- */

static int cmp_seq_desc(const void *a, const void *b)
{
	const struct version *x = *(struct version *const *)a, *y = *(struct version *const *)b;

	return x->seq < y->seq ? 1 : x->seq > y->seq ? -1 : 0;
}

static bool mmax;
static const struct run *mrun;

static int cmp_metric(const void *a, const void *b)
{
	const struct version *x = *(struct version *const *)a, *y = *(struct version *const *)b;
	double mx = 0, my = 0;
	bool hx = version_metric(mrun, x, &mx), hy = version_metric(mrun, y, &my);

	if (hx != hy)
		return hx ? -1 : 1;
	if (mx != my)
		return (mmax ? mx > my : mx < my) ? -1 : 1;
	return cmp_seq_desc(a, b);
}

/* store lock held (which also serializes the qsort globals above) */
int retention_apply_run(struct ckpt_store *s, struct run *r, uint32_t max_age_override)
{
	struct ckpt_retention rt = r->has_ret ? r->ret : s->opts.retention;
	struct version **c, **bm, *newest, *bestv;
	size_t n = 0, removed = 0;
	int64_t now = now_ns();

	if (max_age_override)
		rt.max_age_days = max_age_override;
	if (!rt.keep_last && !rt.keep_best && !rt.max_age_days)
		return 0;
	c = calloc(r->nv + 1, sizeof(*c));
	bm = calloc(r->nv + 1, sizeof(*bm));
	if (!c || !bm) {
		free(c);
		free(bm);
		return -ENOMEM;
	}
	for (size_t i = 0; i < r->nv; i++)
		if (r->v[i]->state == CKPT_V_COMMITTED)
			c[n++] = r->v[i];
	qsort(c, n, sizeof(*c), cmp_seq_desc);
	memcpy(bm, c, n * sizeof(*c));
	mmax = strstr(r->metric, ":max") != NULL;
	mrun = r;
	qsort(bm, n, sizeof(*bm), cmp_metric);
	newest = pick(r, false);
	bestv = pick(r, true);
	for (size_t i = 0; i < n; i++) {
		struct version *v = c[i];
		bool keep = v == newest || v == bestv || v->pinned || v->busy, remove = false;

		if (rt.keep_last || rt.keep_best) {
			bool in = rt.keep_last && i < rt.keep_last;

			for (size_t j = 0; j < rt.keep_best && j < n && !in; j++) {
				double m;

				if (bm[j] == v && version_metric(r, v, &m))
					in = true;
			}
			remove = !in;
		}
		if (rt.max_age_days &&
		    v->committed_ns < now - (int64_t)rt.max_age_days * 86400LL * 1000000000LL)
			remove = true;
		if (remove && !keep) {
			if (version_remove_locked(s, v) == 0)
				removed++;
			else
				store_log("retention: cannot remove %s/%s", r->name, v->name);
		}
	}
	free(c);
	free(bm);
	return (int)removed;
}

int ckpt_store_apply_retention(struct ckpt_store *s, uint32_t max_age_days)
{
	int total = 0;

	pthread_mutex_lock(&s->lock);
	for (size_t i = 0; i < s->nruns; i++) {
		int ret = retention_apply_run(s, s->runs[i], max_age_days);

		if (ret > 0)
			total += ret;
	}
	pthread_mutex_unlock(&s->lock);
	return total;
}

/* ---- metadata ---- */

static int meta_key_check(struct ckpt_store *s, const char *key)
{
	const char *why;
	int ret = name_check_kind(key, 0, &why);

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
