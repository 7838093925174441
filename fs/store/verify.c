// SPDX-License-Identifier: MIT
/*
 * verify.c - ckpt_store_verify: check every chunk of committed versions
 * against its XXH128.
 *
 * Why it is shaped like this: one thread reading 1 MiB chunk files one after
 * the other waits for the disk twice per chunk (inode, then data; the
 * kernel's readahead stops at the end of each file) and hashes on one core
 * only. So the chunks to check are listed first, each distinct chunk once
 * (files and versions that share a chunk are checked with one read); a pool
 * of workers reads and hashes them in order while the read-ahead threads of
 * the backend (dir_prefetch.c) open and POSIX_FADV_WILLNEED the next
 * VF_AHEAD chunks. Workers read and hash a chunk with the backend's
 * chunk_hash (dir: in pieces that stay in the CPU cache). The
 * calling thread reports bad chunks and progress in manifest order, so the
 * callbacks see the same sequence as a one-by-one walk.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ckptfs/hmap.h"
#include "store_i.h"

#define VF_MAX_THREADS 8
#define VF_AHEAD 64 /* chunks queued for read-ahead beyond the workers */

struct vjob {
	const struct cref *c;
	struct version *v;
	size_t path;  /* index into vrun.paths */
	size_t first; /* the job that checks this chunk (itself when distinct) */
	int res;      /* 0, -EBADMSG (bad) or -errno (the read failed) */
	bool done;
	bool link;	/* a symlink whose target does not match its hash (c = &lc) */
	struct cref lc; /* its hash */
};

struct vrun {
	struct ckpt_store *s;
	struct vjob *jobs;
	size_t njobs, jcap;
	size_t *uniq; /* indices of the distinct chunks, in order */
	size_t nuniq;
	char **paths;
	size_t npaths, pcap;
	struct ckpt_hmap first; /* chunk hash -> first job (struct vfirst) */

	pthread_mutex_t lock;
	pthread_cond_t cond; /* a job finished */
	size_t next;	     /* next distinct chunk to hand out */
	size_t ahead;	     /* distinct chunks queued for read-ahead so far */
	bool stop;
};

struct vfirst {
	const uint8_t *h; /* the job's chunk hash */
	size_t job;
};

static bool match_first(const void *elem, const void *key)
{
	return !memcmp(((const struct vfirst *)elem)->h, key, CHUNK_HASH_LEN);
}

/* The job that first named chunk h, or (size_t)-1 (and remember j for it);
 * -2 when memory runs out. */
static size_t set_first(struct vrun *r, const uint8_t *h, size_t j)
{
	uint64_t k;
	struct vfirst *e;

	memcpy(&k, h, sizeof(k)); /* the chunk hash is already uniform */
	e = ckpt_hmap_find(&r->first, k, match_first, h);
	if (e)
		return e->job;
	e = ckpt_hmap_add(&r->first, k);
	if (!e)
		return (size_t)-2;
	e->h = h;
	e->job = j;
	return (size_t)-1;
}

static int add_job(struct vrun *r, struct version *v, const struct cref *c)
{
	struct vjob *j;

	if (r->njobs == r->jcap) {
		size_t cap = r->jcap ? r->jcap * 2 : 1024;
		struct vjob *p = realloc(r->jobs, cap * sizeof(*p));

		if (!p)
			return -ENOMEM;
		r->jobs = p;
		r->jcap = cap;
	}
	j = &r->jobs[r->njobs];
	memset(j, 0, sizeof(*j));
	j->c = c;
	j->v = v;
	j->path = r->npaths - 1;
	j->first = r->njobs++;
	return 0;
}

static int add_path(struct vrun *r, const char *path);

/* A symlink of v whose target does not match its XXH128: a bad job of its
 * own, reported in order with the chunks (no chunk is read). */
static int add_bad_link(struct vrun *r, struct version *v, const struct node *n, const char *path)
{
	struct vjob *j;
	int ret = add_path(r, path);

	if (ret == 0)
		ret = add_job(r, v, NULL);
	if (ret < 0)
		return ret;
	j = &r->jobs[r->njobs - 1];
	j->link = true;
	memcpy(j->lc.h, n->thash, CHUNK_HASH_LEN);
	j->res = -EBADMSG;
	j->done = true;
	return 0;
}

/* The chunk of job j (a bad symlink's hash for those). */
static const struct cref *job_cref(const struct vjob *j)
{
	return j->link ? &j->lc : j->c;
}

static int add_path(struct vrun *r, const char *path)
{
	if (r->npaths == r->pcap) {
		size_t cap = r->pcap ? r->pcap * 2 : 64;
		char **p = realloc(r->paths, cap * sizeof(*p));

		if (!p)
			return -ENOMEM;
		r->paths = p;
		r->pcap = cap;
	}
	if (!(r->paths[r->npaths] = strdup(path)))
		return -ENOMEM;
	r->npaths++;
	return 0;
}

/* List the chunks of every file under n, in tree order. */
static int list_tree(struct vrun *r, struct version *v, struct node *n, char *path, size_t plen)
{
	for (size_t i = 0; i < n->nkids; i++) {
		struct node *k = n->kids[i];
		size_t l = strlen(k->name);
		int ret = 0;

		if (plen + l + 2 > 4096)
			continue;
		if (plen)
			path[plen] = '/';
		memcpy(path + plen + (plen ? 1 : 0), k->name, l + 1);
		if (k->type == CKPT_NODE_DIR) {
			ret = list_tree(r, v, k, path, plen + l + (plen ? 1 : 0));
		} else if (k->type == CKPT_NODE_SYMLINK) {
			ret = k->tbad ? add_bad_link(r, v, k, path) : 0;
		} else if (k->f->nchunks) {
			ret = add_path(r, path);
			for (size_t c = 0; ret == 0 && c < k->f->nchunks; c++)
				ret = add_job(r, v, &k->f->chunks[c]);
		}
		path[plen] = 0;
		if (ret < 0)
			return ret;
	}
	return 0;
}

/* Find each job's first job with the same chunk; list the distinct ones. */
static int dedup_jobs(struct vrun *r)
{
	r->uniq = calloc(r->njobs ? r->njobs : 1, sizeof(*r->uniq));
	if (!r->uniq)
		return -ENOMEM;
	for (size_t j = 0; j < r->njobs; j++) {
		size_t f;

		if (r->jobs[j].link)
			continue; /* nothing to read */
		f = set_first(r, r->jobs[j].c->h, j);
		if (f == (size_t)-2)
			return -ENOMEM;
		if (f == (size_t)-1)
			r->uniq[r->nuniq++] = j;
		else
			r->jobs[j].first = f;
	}
	return 0;
}

/* Queue the distinct chunks up to `upto` for read-ahead; r->lock held. */
static void queue_ahead(struct vrun *r, size_t upto)
{
	if (upto > r->nuniq)
		upto = r->nuniq;
	/* in batches, so the read-ahead threads are woken now and then */
	if (upto < r->ahead + VF_AHEAD / 4 && upto < r->nuniq)
		return;
	for (; r->ahead < upto; r->ahead++)
		chunk_hint(&r->s->ck, r->jobs[r->uniq[r->ahead]].c);
}

static void *worker(void *arg)
{
	struct vrun *r = arg;

	for (;;) {
		struct vjob *j;
		int res;

		pthread_mutex_lock(&r->lock);
		if (r->stop || r->next == r->nuniq) {
			pthread_mutex_unlock(&r->lock);
			break;
		}
		j = &r->jobs[r->uniq[r->next++]];
		queue_ahead(r, r->next + VF_AHEAD);
		pthread_mutex_unlock(&r->lock);

		res = chunk_check(&r->s->ck, j->c);
		pthread_mutex_lock(&r->lock);
		j->res = res;
		j->done = true;
		pthread_cond_broadcast(&r->cond);
		pthread_mutex_unlock(&r->lock);
	}
	return NULL;
}

static int nthreads(size_t nuniq)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);

	if (n < 2)
		n = 2; /* one may hash while the other waits for the disk */
	if (n > VF_MAX_THREADS)
		n = VF_MAX_THREADS;
	if ((size_t)n > nuniq)
		n = (long)nuniq;
	return (int)n;
}

/* Report job j (in order) through the log and the callbacks: a bad chunk
 * (-EBADMSG) is flagged for rewriting; a read that failed says nothing about
 * the chunk, so nothing is flagged. */
static void report(struct vrun *r, struct vjob *j, ckpt_verify_cb cb, void *arg)
{
	const struct cref *c = job_cref(j);
	char hex[CHUNK_HEX_LEN + 1], what[96];

	if (j->link)
		snprintf(what, sizeof(what), "symlink target does not match its XXH128");
	else if (j->res == -EBADMSG)
		snprintf(what, sizeof(what), "hash mismatch");
	else
		snprintf(what, sizeof(what), "read error (%s)", strerror(-j->res));
	chunk_hex(c->h, hex);
	store_log("verify: chunk %s of %s/%s/%s at offset %llu: %s%s", hex, j->v->run->name,
		  j->v->name, r->paths[j->path], (unsigned long long)c->off, what,
		  j->res == -EBADMSG ? "" : "; the version is left as it is");
	if (cb)
		cb(arg, j->v->run->name, j->v->name, r->paths[j->path], c->off, hex, what);
	if (j->res == -EBADMSG && !j->link)
		chunk_mark_bad(&r->s->ck, c->h);
}

/*
 * Check all jobs; returns the number of bad chunk references, else the
 * first read error (-errno), else 0. Versions with a bad chunk are marked
 * CORRUPT; a read error (EIO from a failing disk) leaves the version as it
 * is: only a hash mismatch proves a checkpoint bad, and a disk that fails
 * for a minute must not make good checkpoints unresumable.
 */
static int run_jobs(struct vrun *r, ckpt_verify_cb cb, void *arg,
		    void (*progress)(void *arg, uint64_t done, uint64_t total), uint64_t total)
{
	pthread_t th[VF_MAX_THREADS];
	int nth = 0, want = nthreads(r->nuniq), bad = 0, ret = 0;
	struct version *last_bad = NULL;
	uint64_t done = 0;

	pthread_mutex_lock(&r->lock);
	queue_ahead(r, VF_AHEAD);
	pthread_mutex_unlock(&r->lock);
	for (; nth < want; nth++)
		if (pthread_create(&th[nth], NULL, worker, r))
			break;
	if (!nth && r->nuniq) {
		ret = -EAGAIN;
		goto out;
	}
	for (size_t i = 0; i < r->njobs; i++) {
		struct vjob *j = &r->jobs[i], *f = &r->jobs[j->first];

		pthread_mutex_lock(&r->lock);
		while (!f->done)
			pthread_cond_wait(&r->cond, &r->lock);
		pthread_mutex_unlock(&r->lock);
		j->res = f->res;
		if (j->res < 0)
			report(r, j, cb, arg);
		if (j->res == -EBADMSG) {
			bad++;
			if (j->v != last_bad) {
				pthread_mutex_lock(&r->s->lock);
				version_mark_corrupt(r->s, j->v);
				pthread_mutex_unlock(&r->s->lock);
				last_bad = j->v;
			}
		} else if (j->res < 0 && ret == 0) {
			ret = store_err(r->s, j->res,
					"reading a chunk of %s/%s/%s failed: %s; the store's disk "
					"gave an error, the version is left as it is: check the "
					"disk and verify again",
					j->v->run->name, j->v->name, r->paths[j->path],
					strerror(-j->res));
		}
		done += job_cref(j)->len;
		if (progress)
			progress(arg, done, total);
	}
out:
	pthread_mutex_lock(&r->lock);
	r->stop = true;
	pthread_mutex_unlock(&r->lock);
	for (int i = 0; i < nth; i++)
		pthread_join(th[i], NULL);
	return bad ? bad : ret;
}

/* Committed versions to verify (referenced); store lock held. */
static int pick_versions(struct ckpt_store *s, const char *run, const char *version,
			 struct version ***out, size_t *nout)
{
	struct version **vs = NULL;
	size_t nv = 0, cap = 0;

	if (run && version) {
		struct version *v;
		int ret = version_lookup(s, run, version, &v);

		if (ret < 0)
			return ret;
		if (v->state == CKPT_V_OPEN || v->state == CKPT_V_INCOMPLETE)
			return store_err(s, -EINVAL,
					 "version %s/%s is %s: only committed versions "
					 "can be verified",
					 run, version, ckpt_vstate_name(v->state));
		if (!(vs = calloc(1, sizeof(*vs))))
			return -ENOMEM;
		vs[nv++] = v;
		v->refs++;
		*out = vs;
		*nout = nv;
		return 0;
	}
	for (size_t i = 0; i < s->nruns; i++) {
		struct run *r = s->runs[i];

		if (run && strcmp(r->name, run))
			continue;
		for (size_t j = 0; j < r->nv; j++) {
			struct version *v = r->v[j];

			if (v->state == CKPT_V_OPEN || v->state == CKPT_V_INCOMPLETE)
				continue;
			if (nv == cap) {
				struct version **p;

				cap = cap ? cap * 2 : 16;
				p = realloc(vs, cap * sizeof(*p));
				if (!p) {
					for (size_t k = 0; k < nv; k++)
						version_unref(s, vs[k]);
					free(vs);
					return -ENOMEM;
				}
				vs = p;
			}
			vs[nv++] = v;
			v->refs++;
		}
	}
	*out = vs;
	*nout = nv;
	return 0;
}

int ckpt_store_verify(struct ckpt_store *s, const char *run, const char *version, ckpt_verify_cb cb,
		      void *arg, void (*progress)(void *arg, uint64_t done, uint64_t total))
{
	struct vrun r = {.s = s};
	struct version **vs = NULL;
	uint64_t total = 0;
	size_t nv = 0;
	char *path = NULL;
	int ret;

	pthread_mutex_init(&r.lock, NULL);
	pthread_cond_init(&r.cond, NULL);
	ckpt_hmap_init(&r.first, sizeof(struct vfirst));
	pthread_mutex_lock(&s->lock);
	ret = pick_versions(s, run, version, &vs, &nv);
	for (size_t i = 0; i < nv; i++)
		node_tree_bytes(vs[i]->root, &total);
	pthread_mutex_unlock(&s->lock);
	if (ret < 0)
		goto out;

	path = calloc(1, 4096);
	if (!path) {
		ret = -ENOMEM;
		goto out;
	}
	/* committed trees never change: walk them without the store lock */
	for (size_t i = 0; i < nv && ret >= 0; i++) {
		path[0] = 0;
		ret = list_tree(&r, vs[i], vs[i]->root, path, 0);
	}
	if (ret >= 0)
		ret = dedup_jobs(&r);
	if (ret >= 0)
		ret = run_jobs(&r, cb, arg, progress, total);
out:
	pthread_mutex_lock(&s->lock);
	for (size_t i = 0; i < nv; i++)
		version_unref(s, vs[i]);
	pthread_mutex_unlock(&s->lock);
	for (size_t i = 0; i < r.npaths; i++)
		free(r.paths[i]);
	free(r.paths);
	free(r.jobs);
	free(r.uniq);
	ckpt_hmap_free(&r.first);
	free(vs);
	free(path);
	pthread_mutex_destroy(&r.lock);
	pthread_cond_destroy(&r.cond);
	return ret;
}
