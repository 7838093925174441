// SPDX-License-Identifier: MIT
/*
 * rados.c - the rados backend: a store in a Ceph RADOS pool (and
 * namespace), which many hosts mount at once (SPEC §9). Object layout
 * (docs/store-format.md, "A RADOS store"):
 *
 *   ckptfs.store     data: the FORMAT line; omap "r/RUN" -> "" per run;
 *                    the object every mount watches for changes
 *   ckptfs.run.RUN   the run's head: data the run's settings (run.json);
 *                    xattr "seq" the highest commit sequence of the run,
 *                    xattr "ptok" changed with every part; omap
 *                    "v/VERSION" -> manifest, "o/VERSION" -> open marker,
 *                    "p/VERSION/MOUNT" -> a mount's part of an open version
 *                    (shared.c)
 *   ckptfs.c.HEX     one chunk, named by its XXH128, at most 16 MiB;
 *                    xattr "seen" when it was last written or
 *                    deduplicated against (for gc, rados_chunk_remove)
 *
 * Chunks are written asynchronously (rados_aio_write_op_operate) with an
 * exclusive create: an existing object is a dedup hit, from any host.
 * Chunks a reader will need next are read ahead asynchronously
 * (rados_chunk_hint), every one checked against its hash as it arrives. A
 * commit is one compound operation on the run's head: compare the "seq"
 * xattr with what was read (cmpxattr), set it one higher and add the
 * manifest; two hosts committing in one run serialize on it, and the same
 * version name twice gives -EEXIST; it also compares "ptok", removes the
 * open version's marker and every mount's part. Every change of a head is
 * followed by a notify on ckptfs.store carrying the run's name. Each mount
 * holds a lease (a shared lock on ckptfs.store, renewed by a thread) that
 * tells the others it is alive.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <pthread.h>
#include <rados/librados.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/random.h>
#include <sys/statvfs.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>
#include <xxhash.h>

#include "backend_i.h"
#include "io_i.h"
#include "rados_i.h"

#define RADOS_MAX_CHUNK (16u << 20) /* below osd_max_write_size and object size limits */
#define RADOS_CONNECT_S 8 /* an unreachable cluster: an error within this (and 10 s in all) */
#define RADOS_CONNECT_S_TXT "8"
#define RADOS_OP_S 30 /* an operation against a cluster gone away */
#define RADOS_OMAP_PAGE 256
#define RADOS_CLOSE_MS 5000 /* at unmount, how long to wait for a cluster gone away */
/* gc keeps chunks written or deduplicated against this long before the
 * oldest open version and before gc began (rados_chunk_remove): the hosts'
 * clocks may differ by that much */
#define RADOS_GC_MARGIN_S 300
#define RADOS_LEASE_S 10 /* a mount's lease on ckptfs.store (see lease_main) */
#define RADOS_LEASE_LOCK "mounts"
#define RADOS_MAX_PARTS 1024 /* mounts writing into one open version */
/* read-ahead: bytes in flight or parked, at most (rados_direct's 4 objects
 * of 16 MiB), in at most RADOS_RA_MAX chunks; RADOS_RA_IDLE buffers kept */
#define RADOS_RA_BYTES (64u << 20)
#define RADOS_RA_MAX 32
#define RADOS_RA_IDLE 8
#define RADOS_RA_AGE_NS 2000000000LL /* a parked chunk nobody took is dropped */

/* CKPT_RADOS_GC_GRACE_S overrides the margin (tests). */
static int64_t rados_gc_grace_ns(void)
{
	const char *e = getenv("CKPT_RADOS_GC_GRACE_S");
	long long v = e && *e ? atoll(e) : RADOS_GC_MARGIN_S;

	return (int64_t)(v < 0 ? 0 : v) * 1000000000;
}

struct rados_sb {
	struct sb b; /* first */
	rados_t cl;
	rados_ioctx_t io;
	char *pool, *ns, *conf, *id;
	char stagedir[80];
	uint64_t watch;
	bool watching;
	uint64_t self; /* this client's instance id: its own notifies are skipped */
	/* the lease: a shared lock on ckptfs.store, cookie = b.mount_id,
	 * renewed by a thread; other mounts' liveness from the lockers */
	pthread_t lease_th;
	bool leasing, lease_stop, lease_lost;
	int lease_s;
	pthread_mutex_t llock;
	pthread_cond_t lcond;
	char *alive; /* the lockers' cookies ("id\0id\0"), read at alive_ns */
	size_t alive_len;
	int64_t alive_ns;
	/* read-ahead (see rados_chunk_hint) */
	pthread_mutex_t ra_lock;
	pthread_cond_t ra_cond;
	bool ra_init, ra_closing;
	bool ra_verify; /* hash what is read ahead (unless verify=off) */
	struct ra_ent *ra[RADOS_RA_MAX];
	size_t ra_n, ra_bytes, ra_busy; /* ra_bytes: of the chunks read or parked */
	uint64_t ra_order;
	size_t ra_cap; /* the readers' chunk buffers (chunk_take): ours as large */
	uint8_t *ra_idle[RADOS_RA_IDLE];
	size_t ra_idle_cap[RADOS_RA_IDLE], ra_nidle, ra_idle_bytes;
};

/* One chunk read ahead: queued (no buf yet), in flight until done, then
 * parked for chunk_take. */
struct ra_ent {
	uint8_t h[CHUNK_HASH_LEN];
	uint64_t order; /* of its hint: queued ones are read oldest first */
	uint32_t len;
	size_t cap; /* of buf */
	uint8_t *buf;
	/* the read op's outputs (written by librados) */
	uint64_t size;
	size_t nread;
	int stat_rval, read_rval;
	bool done;
	bool good; /* len bytes of an object len long, and (ra_verify) its hash */
	int64_t done_ns;
	struct rados_sb *r;
};

static struct rados_sb *rs_of(struct sb *b)
{
	return (struct rados_sb *)b;
}

static void head_oid(const char *run, char *out, size_t len)
{
	snprintf(out, len, RADOS_RUN "%s", run);
}

static void chunk_oid(const uint8_t *h, char *out)
{
	memcpy(out, RADOS_CHUNK, sizeof(RADOS_CHUNK) - 1);
	chunk_hex(h, out + sizeof(RADOS_CHUNK) - 1);
}

#define CHUNK_OID_LEN (sizeof(RADOS_CHUNK) + CHUNK_HEX_LEN)

/* Tell every other mount that `run` ("" for the list of runs, "RUN/VERSION"
 * for the parts of an open version) changed. */
static void changed(struct rados_sb *r, const char *run)
{
	rados_completion_t c;

	if (rados_aio_create_completion2(NULL, NULL, &c) < 0)
		return;
	/* fire and forget: the completion is released whenever it ends */
	if (rados_aio_notify(r->io, RADOS_ROOT, c, run, (int)strlen(run), 5000, NULL, NULL) < 0) {
		rados_aio_release(c);
		return;
	}
	rados_aio_release(c);
}

static void watch_cb(void *arg, uint64_t notify_id, uint64_t handle, uint64_t notifier_id,
		     void *data, size_t data_len)
{
	struct rados_sb *r = arg;
	char run[2 * CKPT_NAME_MAX + 2], ver[CKPT_NAME_MAX + 1]; /* RUN, or RUN/VERSION */

	(void)handle;
	rados_notify_ack(r->io, RADOS_ROOT, notify_id, r->watch, NULL, 0);
	/* read once: rf_stop clears it, then waits for callbacks (quiesce) */
	void (*fn)(void *, const char *) = __atomic_load_n(&r->b.changed, __ATOMIC_ACQUIRE);

	if (notifier_id == r->self || !fn)
		return;
	/* RUN/VERSION: the parts of an open version (shared.c); a payload
	 * that names no run: re-read everything */
	if (rdec_part_notify(data, data_len, run, ver) == 0) {
		size_t rl = strlen(run);

		run[rl] = '/';
		memmove(run + rl + 1, ver, strlen(ver) + 1);
		fn(r->b.changed_arg, run);
		return;
	}
	fn(r->b.changed_arg, rdec_notify(data, data_len, run));
}

static void watch_err_cb(void *arg, uint64_t cookie, int err)
{
	struct rados_sb *r = arg;

	(void)cookie;
	store_log("the watch on %s was lost (%s): re-reading the whole store", r->b.where,
		  strerror(-err));
	/* librados re-establishes the watch when it can; what was missed is
	 * picked up by a refresh of everything */
	void (*fn)(void *, const char *) = __atomic_load_n(&r->b.changed, __ATOMIC_ACQUIRE);

	if (fn)
		fn(r->b.changed_arg, NULL);
}

/* ---- chunks ---- */

/*
 * Every chunk object carries xattr "seen": the time (ns, the writer's
 * clock) it was last written or deduplicated against. A put is an
 * exclusive create that sets it; when the object exists already (a dedup
 * hit, from any host) a second op sets "seen" again on the existing object
 * before the write counts as done, and if gc removed the object in between
 * the create is tried again. gc removes an object only with a cmpxattr on
 * the "seen" it decided on (rados_chunk_remove), so an object a writer
 * counts on is never removed behind it.
 */
struct rput {
	struct sb_put *p;
	struct rados_sb *r;
	int tries;
};

#define RADOS_PUT_TRIES 16

static int put_submit(struct rput *w);

static void op_seen(rados_write_op_t op)
{
	char now[24];
	int n = snprintf(now, sizeof(now), "%" PRId64, now_ns());

	rados_write_op_setxattr(op, "seen", now, (size_t)n);
}

static void put_end(struct rput *w, int ret)
{
	struct sb_put *p = w->p;

	free(w);
	p->done(p, ret);
}

static void touch_done(rados_completion_t c, void *arg)
{
	struct rput *w = arg;
	int ret = rados_aio_get_return_value(c);

	rados_aio_release(c);
	/* removed by gc since the create found it: create it after all */
	if (ret == -ENOENT && ++w->tries < RADOS_PUT_TRIES)
		put_submit(w); /* a failure ends the put there */
	else
		put_end(w, ret);
}

/* The object exists: "seen" becomes now (it must still be there). */
static int touch_submit(struct rput *w)
{
	char oid[CHUNK_OID_LEN];
	rados_completion_t c;
	rados_write_op_t op;
	int ret;

	chunk_oid(w->p->h, oid);
	ret = rados_aio_create_completion2(w, touch_done, &c);
	if (ret < 0)
		return ret;
	op = rados_create_write_op();
	if (!op) {
		rados_aio_release(c);
		return -ENOMEM;
	}
	rados_write_op_assert_exists(op);
	op_seen(op);
	ret = rados_aio_write_op_operate(op, w->r->io, c, oid, NULL, 0);
	rados_release_write_op(op);
	if (ret < 0)
		rados_aio_release(c);
	return ret;
}

static void put_done(rados_completion_t c, void *arg)
{
	struct rput *w = arg;
	int ret = rados_aio_get_return_value(c);

	rados_aio_release(c);
	/* an existing object: another write (this host or another) stored it */
	if (ret == -EEXIST && ++w->tries < RADOS_PUT_TRIES) {
		ret = touch_submit(w);
		if (ret == 0)
			return;
	}
	put_end(w, ret);
}

/* Called again from the callbacks (a retry): then a failure ends the put. */
static int put_submit(struct rput *w)
{
	struct sb_put *p = w->p;
	char oid[CHUNK_OID_LEN];
	rados_completion_t c;
	rados_write_op_t op;
	int ret;

	chunk_oid(p->h, oid);
	ret = rados_aio_create_completion2(w, put_done, &c);
	if (ret < 0)
		goto fail;
	op = rados_create_write_op();
	if (!op) {
		rados_aio_release(c);
		ret = -ENOMEM;
		goto fail;
	}
	/* an existing object is a dedup hit, unless it is the damaged one */
	if (!p->replace)
		rados_write_op_create(op, LIBRADOS_CREATE_EXCLUSIVE, NULL);
	rados_write_op_write_full(op, (const char *)p->buf, p->len);
	op_seen(op);
	ret = rados_aio_write_op_operate(op, w->r->io, c, oid, NULL, 0);
	rados_release_write_op(op);
	if (ret == 0)
		return 0;
	rados_aio_release(c);
fail:
	if (w->tries)
		put_end(w, ret);
	return ret;
}

static int rados_chunk_put(struct sb *b, struct sb_put *p)
{
	struct rput *w;
	int ret;

	if (p->len > RADOS_MAX_CHUNK)
		return -EFBIG;
	w = calloc(1, sizeof(*w));
	if (!w)
		return -ENOMEM;
	w->p = p;
	w->r = rs_of(b);
	ret = put_submit(w);
	if (ret < 0)
		free(w);
	return ret;
}

/* ---- read-ahead: asynchronous reads of the chunks a reader will need ---- */

/*
 * The read path names the next chunks of a file read in order (chunk_hint,
 * from the read-ahead queue, the chunk it reads now first). Each is queued,
 * in order, and becomes an asynchronous read (the object's size and its
 * bytes, one operation) into a buffer of its own as soon as the chunks in
 * flight or parked take less than RADOS_RA_BYTES, so a sequential read
 * keeps as many bytes in flight as rados_direct does instead of one round
 * trip per chunk. The completion checks the bytes against the chunk's
 * XXH128 (unless verify=off), on librados' callback thread, beside the
 * reader. chunk_take hands a parked chunk to the reader by swapping
 * buffers (no copy; the reader's old buffer becomes the next read's),
 * waiting for it while it is in flight and starting it at once, ahead of
 * the budget, when it is still queued. A chunk is handed out once, within
 * RADOS_RA_AGE_NS of arriving; one whose read failed, whose object has
 * another length or whose hash does not match is not handed out: the
 * reader reads it again directly, so the error (or EBADMSG) is the direct
 * read's.
 */

/* A buffer for e: an idle one that fits, else a new one of the readers'
 * size (so that chunk_take can swap it), page aligned. ra_lock held. */
static bool ra_buf(struct rados_sb *r, struct ra_ent *e)
{
	size_t cap = ((size_t)e->len + CHUNK_ALIGN - 1) / CHUNK_ALIGN * CHUNK_ALIGN;
	void *b;

	for (size_t i = 0; i < r->ra_nidle; i++)
		if (r->ra_idle_cap[i] >= e->len) {
			e->buf = r->ra_idle[i];
			e->cap = r->ra_idle_cap[i];
			r->ra_idle_bytes -= e->cap;
			r->ra_idle[i] = r->ra_idle[--r->ra_nidle];
			r->ra_idle_cap[i] = r->ra_idle_cap[r->ra_nidle];
			return true;
		}
	if (r->ra_cap > cap)
		cap = r->ra_cap;
	if (posix_memalign(&b, CHUNK_ALIGN, cap))
		return false;
	e->buf = b;
	e->cap = cap;
	return true;
}

/* Take e out of the table. ra_lock held. */
static void ra_unlink(struct rados_sb *r, struct ra_ent *e)
{
	for (size_t i = 0; i < r->ra_n; i++)
		if (r->ra[i] == e) {
			r->ra[i] = r->ra[--r->ra_n];
			break;
		}
	if (e->buf)
		r->ra_bytes -= e->len;
}

/* Free e; its buffer is kept for a later one while the idle ones stay
 * within RADOS_RA_BYTES (a fresh 16 MiB buffer faults in every page).
 * ra_lock held. */
static void ra_free(struct rados_sb *r, struct ra_ent *e)
{
	if (e->buf && e->cap >= r->ra_cap && r->ra_nidle < RADOS_RA_IDLE &&
	    r->ra_idle_bytes + e->cap <= RADOS_RA_BYTES) {
		r->ra_idle[r->ra_nidle] = e->buf;
		r->ra_idle_cap[r->ra_nidle++] = e->cap;
		r->ra_idle_bytes += e->cap;
	} else {
		free(e->buf);
	}
	free(e);
}

/* ra_lock held */
static struct ra_ent *ra_find(struct rados_sb *r, const uint8_t *h)
{
	for (size_t i = 0; i < r->ra_n; i++)
		if (!memcmp(r->ra[i]->h, h, CHUNK_HASH_LEN))
			return r->ra[i];
	return NULL;
}

static void ra_done(rados_completion_t c, void *arg)
{
	struct ra_ent *e = arg;
	struct rados_sb *r = e->r;
	bool good = rados_aio_get_return_value(c) >= 0 && e->stat_rval == 0 && e->read_rval == 0 &&
		    e->size == e->len && e->nread == e->len;

	rados_aio_release(c);
	if (good && r->ra_verify) {
		uint8_t h[CHUNK_HASH_LEN];

		hash128(e->buf, e->len, h);
		good = !memcmp(h, e->h, CHUNK_HASH_LEN);
	}
	pthread_mutex_lock(&r->ra_lock);
	e->good = good;
	e->done = true;
	e->done_ns = mono_ns();
	pthread_cond_broadcast(&r->ra_cond);
	pthread_mutex_unlock(&r->ra_lock);
}

/* Start the read of e (it has its buffer, counted in ra_bytes). e may be
 * taken and freed by another thread as soon as the read is submitted. */
static void ra_submit(struct rados_sb *r, struct ra_ent *e)
{
	char oid[CHUNK_OID_LEN];
	rados_completion_t c;
	rados_read_op_t op;
	int ret;

	chunk_oid(e->h, oid);
	ret = rados_aio_create_completion2(e, ra_done, &c);
	if (ret < 0)
		goto fail;
	op = rados_create_read_op();
	if (!op) {
		rados_aio_release(c);
		goto fail;
	}
	rados_read_op_stat(op, &e->size, NULL, &e->stat_rval);
	rados_read_op_read(op, 0, e->len, (char *)e->buf, &e->nread, &e->read_rval);
	ret = rados_aio_read_op_operate(op, r->io, c, oid, LIBRADOS_OPERATION_NOFLAG);
	rados_release_read_op(op);
	if (ret == 0)
		return;
	rados_aio_release(c);
fail:
	pthread_mutex_lock(&r->ra_lock);
	e->done = true; /* not good: read directly */
	e->done_ns = mono_ns();
	pthread_cond_broadcast(&r->ra_cond);
	pthread_mutex_unlock(&r->ra_lock);
}

/* Drop parked chunks nobody took in time, then start the reads of the
 * queued ones, oldest first, while they fit in RADOS_RA_BYTES. */
static void ra_pump(struct rados_sb *r)
{
	struct ra_ent *go[RADOS_RA_MAX];
	size_t ngo = 0;
	int64_t now = mono_ns();

	pthread_mutex_lock(&r->ra_lock);
	for (size_t i = r->ra_n; i-- > 0;) {
		struct ra_ent *e = r->ra[i];

		if (e->done && now - e->done_ns > RADOS_RA_AGE_NS) {
			ra_unlink(r, e);
			ra_free(r, e);
		}
	}
	while (!r->ra_closing) {
		struct ra_ent *first = NULL;

		for (size_t i = 0; i < r->ra_n; i++)
			if (!r->ra[i]->buf && (!first || r->ra[i]->order < first->order))
				first = r->ra[i];
		if (!first || (r->ra_bytes && r->ra_bytes + first->len > RADOS_RA_BYTES))
			break;
		if (!ra_buf(r, first)) {
			ra_unlink(r, first);
			ra_free(r, first);
			break;
		}
		r->ra_bytes += first->len;
		go[ngo++] = first;
	}
	pthread_mutex_unlock(&r->ra_lock);
	for (size_t i = 0; i < ngo; i++)
		ra_submit(r, go[i]);
}

static void rados_chunk_hint(struct sb *b, const uint8_t *h, uint32_t len)
{
	struct rados_sb *r = rs_of(b);
	struct ra_ent *e;

	pthread_mutex_lock(&r->ra_lock);
	if (r->ra_closing || ra_find(r, h) || r->ra_n == RADOS_RA_MAX) {
		pthread_mutex_unlock(&r->ra_lock);
		return; /* hints only: the reader reads it itself */
	}
	e = calloc(1, sizeof(*e));
	if (e) {
		memcpy(e->h, h, CHUNK_HASH_LEN);
		e->len = len;
		e->order = r->ra_order++;
		e->r = r;
		r->ra[r->ra_n++] = e;
	}
	pthread_mutex_unlock(&r->ra_lock);
	ra_pump(r);
}

/*
 * Chunk h (len bytes) from the read-ahead into *buf (cap bytes): swapped
 * when `swap` and our buffer is at least as large, else copied. false when
 * it is not there or not good (the caller reads it itself). An entry still
 * queued is started now and waited for: the reader needs it before those
 * the budget lets in.
 */
static bool ra_get(struct rados_sb *r, const uint8_t *h, uint32_t len, uint8_t **buf, size_t cap,
		   bool swap)
{
	struct ra_ent *e;
	bool good;

	pthread_mutex_lock(&r->ra_lock);
	if (swap && cap > r->ra_cap)
		r->ra_cap = cap;
	/* found again after each wait: another reader of the same chunk may
	 * have taken it meanwhile */
	while ((e = ra_find(r, h)) && !e->done) {
		if (e->buf) {
			pthread_cond_wait(&r->ra_cond, &r->ra_lock);
			continue;
		}
		if (r->ra_closing || !ra_buf(r, e)) {
			ra_unlink(r, e);
			ra_free(r, e);
			e = NULL;
			break;
		}
		r->ra_bytes += e->len;
		pthread_mutex_unlock(&r->ra_lock);
		ra_submit(r, e);
		pthread_mutex_lock(&r->ra_lock);
	}
	if (!e) {
		pthread_mutex_unlock(&r->ra_lock);
		return false;
	}
	/* out of the table first: a hint for the same chunk meanwhile starts a
	 * read of its own */
	ra_unlink(r, e);
	good = e->good && e->len == len && len <= cap && mono_ns() - e->done_ns <= RADOS_RA_AGE_NS;
	if (good && swap && e->cap >= cap) {
		uint8_t *mine = *buf;

		*buf = e->buf;
		e->buf = mine;
		e->cap = cap;
	} else if (good) {
		r->ra_busy++;
		pthread_mutex_unlock(&r->ra_lock);
		memcpy(*buf, e->buf, len);
		pthread_mutex_lock(&r->ra_lock);
		r->ra_busy--;
		pthread_cond_broadcast(&r->ra_cond);
	}
	ra_free(r, e);
	pthread_mutex_unlock(&r->ra_lock);
	ra_pump(r); /* room for the next ones */
	return good;
}

static bool rados_chunk_take(struct sb *b, const uint8_t *h, uint32_t len, uint8_t **buf,
			     size_t cap, bool *verified)
{
	struct rados_sb *r = rs_of(b);

	*verified = r->ra_verify;
	return ra_get(r, h, len, buf, cap, true);
}

static int ra_init(struct rados_sb *r)
{
	int ret = -pthread_mutex_init(&r->ra_lock, NULL);

	if (ret == 0)
		ret = -pthread_cond_init(&r->ra_cond, NULL);
	r->ra_init = ret == 0;
	return ret;
}

/* At close: wait (up to ms) for the reads in flight, whose callbacks use r.
 * false when some did not end (a cluster gone away): r must not be freed. */
static bool ra_stop(struct rados_sb *r, int ms)
{
	struct timespec until;
	bool clear = true;

	if (!r->ra_init)
		return true;
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += ms / 1000;
	until.tv_nsec += (long)(ms % 1000) * 1000000L;
	until.tv_sec += until.tv_nsec / 1000000000L;
	until.tv_nsec %= 1000000000L;
	pthread_mutex_lock(&r->ra_lock);
	r->ra_closing = true;
	for (;;) {
		bool loading = r->ra_busy > 0;

		for (size_t i = 0; i < r->ra_n; i++)
			loading = loading || (r->ra[i]->buf && !r->ra[i]->done);
		if (!loading)
			break;
		if (pthread_cond_timedwait(&r->ra_cond, &r->ra_lock, &until) == ETIMEDOUT) {
			clear = false;
			break;
		}
	}
	if (clear) {
		while (r->ra_n) {
			struct ra_ent *e = r->ra[0];

			ra_unlink(r, e);
			free(e->buf);
			free(e);
		}
		for (size_t i = 0; i < r->ra_nidle; i++)
			free(r->ra_idle[i]);
		r->ra_nidle = 0;
	}
	pthread_mutex_unlock(&r->ra_lock);
	if (clear) {
		pthread_cond_destroy(&r->ra_cond);
		pthread_mutex_destroy(&r->ra_lock);
		r->ra_init = false;
	}
	return clear;
}

static ssize_t rados_chunk_get(struct sb *b, const uint8_t *h, uint32_t len, uint8_t *buf,
			       size_t cap)
{
	struct rados_sb *r = rs_of(b);
	char oid[CHUNK_OID_LEN];
	size_t want = cap > (size_t)len ? (size_t)len + 1 : cap; /* one more: a longer object */

	if (ra_get(r, h, len, &buf, cap, false))
		return len;
	chunk_oid(h, oid);
	return rados_read(r->io, oid, (char *)buf, want, 0);
}

static int rados_chunk_stat(struct sb *b, const uint8_t *h, uint64_t *size)
{
	char oid[CHUNK_OID_LEN];
	time_t mt;

	chunk_oid(h, oid);
	return rados_stat(rs_of(b)->io, oid, size, &mt);
}

static int rados_chunk_hash(struct sb *b, const uint8_t *h, uint32_t len, uint8_t *out)
{
	uint8_t *buf = malloc((size_t)len + 1);
	ssize_t n;

	if (!buf)
		return -ENOMEM;
	n = rados_chunk_get(b, h, len, buf, (size_t)len + 1);
	if (n == (ssize_t)len)
		hash128(buf, len, out);
	free(buf);
	if (n == -ENOENT || (n >= 0 && n != (ssize_t)len))
		return -EBADMSG;
	return n < 0 ? (int)n : 0;
}

static int rados_chunk_scan(struct sb *b, sb_chunk_fn fn, void *arg)
{
	struct rados_sb *r = rs_of(b);
	rados_list_ctx_t ctx;
	const char *oid;
	int ret;

	ret = rados_nobjects_list_open(r->io, &ctx);
	if (ret < 0)
		return ret;
	while ((ret = rados_nobjects_list_next(ctx, &oid, NULL, NULL)) == 0) {
		uint8_t h[CHUNK_HASH_LEN];

		if (rdec_chunk_oid(oid, h) < 0)
			continue;
		ret = fn(arg, h);
		if (ret < 0)
			break;
	}
	rados_nobjects_list_close(ctx);
	return ret == -ENOENT ? 0 : ret;
}

/*
 * Remove chunk h unless it was written or deduplicated against at or after
 * b->gc_keep_ns (its "seen", or for an object without one its mtime): an
 * open version on some host may name it then (ckpt_store_gc sets the
 * limit). The removal compares "seen" with what was read: a writer that
 * deduplicated against it meanwhile keeps it (-EBUSY).
 */
static int rados_chunk_remove(struct sb *b, const uint8_t *h, uint64_t *bytes)
{
	struct rados_sb *r = rs_of(b);
	char oid[CHUNK_OID_LEN], seen[32] = "";
	rados_read_op_t rop = rados_create_read_op();
	rados_write_op_t op;
	rados_xattrs_iter_t xit;
	const char *xn, *xv;
	size_t xl;
	uint64_t size = 0;
	time_t mt = 0;
	int ret, rv1 = 0, rv2 = 0;
	int64_t when;

	if (!rop)
		return -ENOMEM;
	chunk_oid(h, oid);
	rados_read_op_stat(rop, &size, &mt, &rv1);
	rados_read_op_getxattrs(rop, &xit, &rv2);
	ret = rados_read_op_operate(rop, r->io, oid, 0);
	rados_release_read_op(rop);
	if (ret == 0)
		ret = rv1 < 0 ? rv1 : rv2;
	if (ret < 0)
		return ret;
	while (rados_getxattrs_next(xit, &xn, &xv, &xl) == 0 && xn)
		if (!strcmp(xn, "seen") && xl < sizeof(seen)) {
			memcpy(seen, xv, xl);
			seen[xl] = 0;
		}
	rados_getxattrs_end(xit);
	when = seen[0] ? strtoll(seen, NULL, 10) : (int64_t)mt * 1000000000;
	if (when >= b->gc_keep_ns)
		return -EBUSY;
	op = rados_create_write_op();
	if (!op)
		return -ENOMEM;
	rados_write_op_cmpxattr(op, "seen", LIBRADOS_CMPXATTR_OP_EQ, seen, strlen(seen));
	rados_write_op_remove(op);
	ret = rados_write_op_operate2(op, r->io, oid, NULL, 0);
	rados_release_write_op(op);
	if (ret == -ECANCELED)
		return -EBUSY; /* deduplicated against since it was read */
	if (ret == 0)
		*bytes = size;
	return ret;
}

/* A chunk write completes once the OSDs have it durably (done() is called
 * at "complete", which librados reports after the commit). */
static int rados_chunk_sync(struct sb *b)
{
	return rados_aio_flush(rs_of(b)->io);
}

/* ---- small documents in omap ---- */

static void op_omap_set(rados_write_op_t op, const char *key, const char *val, size_t vlen)
{
	size_t klen = strlen(key);

	rados_write_op_omap_set2(op, &key, &val, &klen, &vlen, 1);
}

static void op_omap_rm(rados_write_op_t op, const char *key)
{
	size_t klen = strlen(key);

	rados_write_op_omap_rm_keys2(op, &key, &klen, 1);
}

/* A random token in xattr "ptok": changed by every part_put and commit,
 * compared by a commit, so that a part written between a commit's read and
 * its write makes the commit read again. */
static void op_new_ptok(rados_write_op_t op)
{
	char tok[24];
	uint64_t x;

	if (getrandom(&x, sizeof(x), 0) != sizeof(x))
		x = (uint64_t)now_ns();
	snprintf(tok, sizeof(tok), "%016" PRIx64, x);
	rados_write_op_setxattr(op, "ptok", tok, strlen(tok));
}

/* Read object oid's whole data (-ENOENT missing or empty). */
static int read_all(struct rados_sb *r, const char *oid, char **doc, size_t *len)
{
	uint64_t size;
	time_t mt;
	char *buf;
	int ret = rados_stat(r->io, oid, &size, &mt);

	if (ret < 0)
		return ret;
	if (size == 0)
		return -ENOENT;
	buf = malloc(size + 1);
	if (!buf)
		return -ENOMEM;
	ret = rados_read(r->io, oid, buf, size, 0);
	if (ret < 0) {
		free(buf);
		return ret;
	}
	buf[ret] = 0;
	*doc = buf;
	*len = (size_t)ret;
	return 0;
}

/* One write op on oid that sets/removes omap key `key` (doc NULL: remove). */
static int omap_put(struct rados_sb *r, const char *oid, const char *key, const char *doc,
		    size_t len, bool must_exist)
{
	rados_write_op_t op = rados_create_write_op();
	int ret;

	if (!op)
		return -ENOMEM;
	if (must_exist)
		rados_write_op_assert_exists(op);
	if (doc)
		op_omap_set(op, key, doc, len);
	else
		op_omap_rm(op, key);
	ret = rados_write_op_operate2(op, r->io, oid, NULL, 0);
	rados_release_write_op(op);
	return ret;
}

/* Each omap key of oid that starts with prefix, with its value. A positive
 * fn return asks for the key's removal. */
static int omap_each(struct rados_sb *r, const char *oid, const char *prefix,
		     int (*fn)(void *arg, const char *name, const char *val, size_t len), void *arg)
{
	char after[CKPT_NAME_MAX + 8] = "";
	char **drop = NULL;
	size_t ndrop = 0;
	unsigned char more = 1;
	int ret = 0;

	while (more && ret >= 0) {
		rados_read_op_t op = rados_create_read_op();
		rados_omap_iter_t it;
		int rv = 0;

		if (!op)
			return -ENOMEM;
		rados_read_op_omap_get_vals2(op, after, prefix, RADOS_OMAP_PAGE, &it, &more, &rv);
		ret = rados_read_op_operate(op, r->io, oid, 0);
		rados_release_read_op(op);
		if (ret == 0)
			ret = rv;
		if (ret < 0)
			break;
		for (;;) {
			char *key, *val, name[CKPT_NAME_MAX + 1];
			size_t klen, vlen;

			if (rados_omap_get_next2(it, &key, &val, &klen, &vlen) < 0 || !key)
				break;
			snprintf(after, sizeof(after), "%.*s", (int)klen, key);
			if (rdec_key(key, klen, prefix, name) < 0)
				continue;
			ret = fn(arg, name, val, vlen);
			if (ret > 0) {
				char **nd = realloc(drop, (ndrop + 1) * sizeof(*drop));

				ret = 0;
				if (nd) {
					drop = nd;
					drop[ndrop] = strdup(after);
					if (drop[ndrop])
						ndrop++;
				}
			}
			if (ret < 0)
				break;
		}
		rados_omap_get_end(it);
	}
	for (size_t i = 0; i < ndrop; i++) {
		if (ret >= 0)
			omap_put(r, oid, drop[i], NULL, 0, false);
		free(drop[i]);
	}
	free(drop);
	return ret < 0 ? ret : 0;
}

/* ---- runs ---- */

struct name_cb {
	sb_name_fn fn;
	void *arg;
};

static int run_one(void *arg, const char *name, const char *val, size_t len)
{
	struct name_cb *c = arg;

	(void)val;
	(void)len;
	if (name_check_kind(name, NAME_RUN, NULL) < 0)
		return 0;
	return c->fn(c->arg, name);
}

static int rados_run_list(struct sb *b, sb_name_fn fn, void *arg)
{
	struct name_cb c = {fn, arg};

	return omap_each(rs_of(b), RADOS_ROOT, "r/", run_one, &c);
}

static int rados_run_create(struct sb *b, const char *run)
{
	struct rados_sb *r = rs_of(b);
	char oid[CKPT_NAME_MAX + 32], key[CKPT_NAME_MAX + 4];
	rados_write_op_t op = rados_create_write_op();
	int ret;

	if (!op)
		return -ENOMEM;
	head_oid(run, oid, sizeof(oid));
	/* a head another host created already keeps its seq */
	rados_write_op_create(op, LIBRADOS_CREATE_EXCLUSIVE, NULL);
	rados_write_op_setxattr(op, "seq", "0", 1);
	ret = rados_write_op_operate2(op, r->io, oid, NULL, 0);
	rados_release_write_op(op);
	if (ret < 0 && ret != -EEXIST)
		return ret;
	snprintf(key, sizeof(key), "r/%s", run);
	ret = omap_put(r, RADOS_ROOT, key, "", 0, false);
	if (ret == 0)
		changed(r, "");
	return ret;
}

static int rados_run_remove(struct sb *b, const char *run)
{
	struct rados_sb *r = rs_of(b);
	char oid[CKPT_NAME_MAX + 32], key[CKPT_NAME_MAX + 4];
	int ret;

	snprintf(key, sizeof(key), "r/%s", run);
	ret = omap_put(r, RADOS_ROOT, key, NULL, 0, false);
	if (ret < 0)
		return ret;
	head_oid(run, oid, sizeof(oid));
	ret = rados_remove(r->io, oid);
	changed(r, "");
	return ret == -ENOENT ? 0 : ret;
}

static int rados_run_conf_get(struct sb *b, const char *run, char **doc, size_t *len)
{
	char oid[CKPT_NAME_MAX + 32];

	head_oid(run, oid, sizeof(oid));
	return read_all(rs_of(b), oid, doc, len);
}

static int rados_run_conf_put(struct sb *b, const char *run, const char *doc, size_t len)
{
	struct rados_sb *r = rs_of(b);
	char oid[CKPT_NAME_MAX + 32];
	int ret;

	head_oid(run, oid, sizeof(oid));
	ret = rados_write_full(r->io, oid, doc, len);
	if (ret == 0)
		changed(r, run);
	return ret;
}

/* ---- manifests and markers: omap of the run's head ---- */

struct doc_cb {
	sb_doc_fn fn;
	void *arg;
};

static int doc_one(void *arg, const char *name, const char *val, size_t len)
{
	struct doc_cb *c = arg;

	if (name_check_kind(name, NAME_VERSION, NULL) < 0)
		return 0;
	return c->fn(c->arg, name, val, len);
}

static int head_each(struct rados_sb *r, const char *run, const char *prefix, sb_doc_fn fn,
		     void *arg)
{
	char oid[CKPT_NAME_MAX + 32];
	struct doc_cb c = {fn, arg};
	int ret;

	head_oid(run, oid, sizeof(oid));
	ret = omap_each(r, oid, prefix, doc_one, &c);
	return ret == -ENOENT ? 0 : ret;
}

static int rados_manifest_list(struct sb *b, const char *run, sb_doc_fn fn, void *arg)
{
	return head_each(rs_of(b), run, "v/", fn, arg);
}

static int head_put(struct rados_sb *r, const char *run, const char *prefix, const char *name,
		    const char *doc, size_t len)
{
	char oid[CKPT_NAME_MAX + 32], key[CKPT_NAME_MAX + 4];
	int ret;

	head_oid(run, oid, sizeof(oid));
	snprintf(key, sizeof(key), "%s%s", prefix, name);
	ret = omap_put(r, oid, key, doc, len, true);
	if (ret == 0)
		changed(r, run);
	return ret;
}

/* What a commit reads of the run's head, in one read op: the "seq" and
 * "ptok" xattrs, whether v/NAME is taken, whether the open version's marker
 * o/OPEN is there, and every mount's part p/OPEN/... */
struct head_snap {
	char seq[32], tok[32];
	bool taken, marker;
	struct sb_part *parts;
	char **vals;
	size_t nparts;
};

static void snap_free(struct head_snap *h)
{
	for (size_t i = 0; i < h->nparts; i++)
		free(h->vals[i]);
	free(h->vals);
	free(h->parts);
	memset(h, 0, sizeof(*h));
}

static int head_snapshot(struct rados_sb *r, const char *oid, const char *vkey, const char *open,
			 struct head_snap *h)
{
	char okey[CKPT_NAME_MAX + 4], pfx[CKPT_NAME_MAX + 4];
	const char *keys[2] = {vkey, okey};
	size_t klens[2];
	rados_read_op_t op = rados_create_read_op();
	rados_omap_iter_t kit, pit;
	rados_xattrs_iter_t xit;
	unsigned char more = 0;
	int ret, rv1 = 0, rv2 = 0, rv3 = 0;
	const char *xn, *xv;
	size_t xl, plen;
	char *k, *v;
	size_t kl, vl;

	if (!op)
		return -ENOMEM;
	memset(h, 0, sizeof(*h));
	snprintf(okey, sizeof(okey), "o/%s", open ? open : "");
	snprintf(pfx, sizeof(pfx), "p/%s/", open ? open : "");
	plen = strlen(pfx);
	klens[0] = strlen(vkey);
	klens[1] = strlen(okey);
	rados_read_op_getxattrs(op, &xit, &rv1);
	rados_read_op_omap_get_vals_by_keys2(op, keys, open ? 2 : 1, klens, &kit, &rv2);
	if (open)
		rados_read_op_omap_get_vals2(op, pfx, pfx, RADOS_MAX_PARTS, &pit, &more, &rv3);
	ret = rados_read_op_operate(op, r->io, oid, 0);
	rados_release_read_op(op);
	if (ret == 0)
		ret = rv1 < 0 ? rv1 : rv2 < 0 ? rv2 : rv3;
	if (ret < 0)
		return ret;
	while (rados_getxattrs_next(xit, &xn, &xv, &xl) == 0 && xn) {
		char *dst = !strcmp(xn, "seq") ? h->seq : !strcmp(xn, "ptok") ? h->tok : NULL;

		if (dst && xl < sizeof(h->seq)) {
			memcpy(dst, xv, xl);
			dst[xl] = 0;
		}
	}
	rados_getxattrs_end(xit);
	while (rados_omap_get_next2(kit, &k, &v, &kl, &vl) == 0 && k) {
		if (kl == klens[0] && !memcmp(k, vkey, kl))
			h->taken = true;
		else if (open && kl == klens[1] && !memcmp(k, okey, kl))
			h->marker = true;
	}
	rados_omap_get_end(kit);
	if (!open)
		return 0;
	ret = more ? -E2BIG : 0; /* more mounts than RADOS_MAX_PARTS wrote into it */
	while (ret == 0 && rados_omap_get_next2(pit, &k, &v, &kl, &vl) == 0 && k) {
		struct sb_part *np;
		char **nv;

		if (kl <= plen || kl - plen >= sizeof(np->mount))
			continue;
		np = realloc(h->parts, (h->nparts + 1) * sizeof(*np));
		nv = np ? realloc(h->vals, (h->nparts + 1) * sizeof(*nv)) : NULL;
		if (np)
			h->parts = np;
		if (nv)
			h->vals = nv;
		if (!np || !nv || !(h->vals[h->nparts] = malloc(vl + 1))) {
			ret = -ENOMEM;
			break;
		}
		memcpy(h->vals[h->nparts], v, vl);
		h->vals[h->nparts][vl] = 0;
		memset(&h->parts[h->nparts], 0, sizeof(*np));
		memcpy(h->parts[h->nparts].mount, k + plen, kl - plen);
		h->parts[h->nparts].doc = h->vals[h->nparts];
		h->parts[h->nparts].len = vl;
		h->nparts++;
	}
	rados_omap_get_end(pit);
	return ret;
}

/*
 * A commit is one compound write op on the run's head: cmpxattr seq and
 * ptok (nobody committed in this run, and no mount changed its part of the
 * open version, since the read), setxattr seq one higher and a new ptok,
 * the manifest v/NAME, and the removal of the open version's marker and of
 * every part. A lost race (-ECANCELED) reads again.
 */
static int rados_manifest_commit(struct sb *b, const char *run, const char *name, const char *open,
				 uint64_t seq_hint, sb_build_fn build, void *arg, uint64_t *seq)
{
	struct rados_sb *r = rs_of(b);
	char oid[CKPT_NAME_MAX + 32], key[CKPT_NAME_MAX + 4], okey[CKPT_NAME_MAX + 4];
	char pbeg[CKPT_NAME_MAX + 4], pend[CKPT_NAME_MAX + 4];
	int ret;

	head_oid(run, oid, sizeof(oid));
	snprintf(key, sizeof(key), "v/%s", name);
	if (open) {
		snprintf(okey, sizeof(okey), "o/%s", open);
		snprintf(pbeg, sizeof(pbeg), "p/%s/", open);
		snprintf(pend, sizeof(pend), "p/%s0", open); /* '0' follows '/' */
	}
	for (int tries = 0;; tries++) {
		struct head_snap h;
		char next[32];
		uint64_t have, s;
		size_t len;
		rados_write_op_t op;
		char *doc;

		ret = head_snapshot(r, oid, key, open, &h);
		if (ret < 0)
			return ret;
		if (h.taken || (open && !h.marker)) {
			snap_free(&h);
			return h.taken ? -EEXIST : -ENOENT;
		}
		if (rdec_seq(h.seq, strlen(h.seq), &have) < 0) {
			store_log("%s: object %s has a damaged \"seq\" xattr (%s): no commit in "
				  "this run until it is repaired",
				  r->b.where, oid, h.seq);
			snap_free(&h);
			return -EBADMSG;
		}
		s = seq_hint > have ? seq_hint : have + 1;
		ret = -ENOMEM;
		doc = build(arg, s, h.parts, h.nparts, &len, &ret);
		if (!doc) {
			snap_free(&h);
			return ret;
		}
		snprintf(next, sizeof(next), "%" PRIu64, s);
		op = rados_create_write_op();
		if (!op) {
			snap_free(&h);
			free(doc);
			return -ENOMEM;
		}
		/* compare-and-swap: nobody committed in this run, and no part of
		 * the open version changed, since head_snapshot */
		rados_write_op_cmpxattr(op, "seq", LIBRADOS_CMPXATTR_OP_EQ, h.seq, strlen(h.seq));
		rados_write_op_cmpxattr(op, "ptok", LIBRADOS_CMPXATTR_OP_EQ, h.tok, strlen(h.tok));
		rados_write_op_setxattr(op, "seq", next, strlen(next));
		op_omap_set(op, key, doc, len);
		if (open) {
			op_omap_rm(op, okey);
			rados_write_op_omap_rm_range2(op, pbeg, strlen(pbeg), pend, strlen(pend));
			op_new_ptok(op);
		}
		ret = rados_write_op_operate2(op, r->io, oid, NULL, 0);
		rados_release_write_op(op);
		free(doc);
		snap_free(&h);
		if (ret == 0) {
			*seq = s;
			changed(r, run);
			return 0;
		}
		/* another host committed or changed its part in between: read again */
		if (ret != -ECANCELED || tries > 1000)
			return ret;
	}
}

static int rados_manifest_put(struct sb *b, const char *run, const char *name, const char *doc,
			      size_t len)
{
	return head_put(rs_of(b), run, "v/", name, doc, len);
}

static int rados_manifest_remove(struct sb *b, const char *run, const char *name)
{
	return head_put(rs_of(b), run, "v/", name, NULL, 0);
}

static int rados_marker_list(struct sb *b, const char *run, sb_doc_fn fn, void *arg)
{
	return head_each(rs_of(b), run, "o/", fn, arg);
}

static int rados_marker_put(struct sb *b, const char *run, const char *name, const char *doc,
			    size_t len)
{
	return head_put(rs_of(b), run, "o/", name, doc, len);
}

/* The marker and every mount's part of the version, in one op. */
static int rados_marker_remove(struct sb *b, const char *run, const char *name, bool sync)
{
	struct rados_sb *r = rs_of(b);
	char oid[CKPT_NAME_MAX + 32], key[CKPT_NAME_MAX + 4], pbeg[CKPT_NAME_MAX + 4],
		pend[CKPT_NAME_MAX + 4];
	rados_write_op_t op = rados_create_write_op();
	int ret;

	(void)sync;
	if (!op)
		return -ENOMEM;
	head_oid(run, oid, sizeof(oid));
	snprintf(key, sizeof(key), "o/%s", name);
	snprintf(pbeg, sizeof(pbeg), "p/%s/", name);
	snprintf(pend, sizeof(pend), "p/%s0", name); /* '0' follows '/' */
	rados_write_op_assert_exists(op);
	op_omap_rm(op, key);
	rados_write_op_omap_rm_range2(op, pbeg, strlen(pbeg), pend, strlen(pend));
	op_new_ptok(op);
	ret = rados_write_op_operate2(op, r->io, oid, NULL, 0);
	rados_release_write_op(op);
	if (ret == 0)
		changed(r, run);
	return ret;
}

static int rados_marker_rename(struct sb *b, const char *run, const char *from, const char *to)
{
	struct rados_sb *r = rs_of(b);
	char oid[CKPT_NAME_MAX + 32], kf[CKPT_NAME_MAX + 4], kt[CKPT_NAME_MAX + 4];
	rados_omap_iter_t it;
	rados_read_op_t rop;
	rados_write_op_t op;
	char *k, *v = NULL, *doc = NULL;
	size_t kl, vl = 0;
	int ret, rv = 0;

	head_oid(run, oid, sizeof(oid));
	snprintf(kf, sizeof(kf), "o/%s", from);
	snprintf(kt, sizeof(kt), "o/%s", to);
	rop = rados_create_read_op();
	if (!rop)
		return -ENOMEM;
	rados_read_op_omap_get_vals_by_keys2(rop, &(const char *){kf}, 1, &(size_t){strlen(kf)},
					     &it, &rv);
	ret = rados_read_op_operate(rop, r->io, oid, 0);
	rados_release_read_op(rop);
	if (ret == 0)
		ret = rv;
	if (ret < 0)
		return ret;
	if (rados_omap_get_next2(it, &k, &v, &kl, &vl) == 0 && k) {
		doc = malloc(vl + 1);
		if (doc)
			memcpy(doc, v, vl);
	}
	rados_omap_get_end(it);
	if (!doc)
		return -ENOENT;
	op = rados_create_write_op();
	if (!op) {
		free(doc);
		return -ENOMEM;
	}
	op_omap_rm(op, kf);
	op_omap_set(op, kt, doc, vl);
	ret = rados_write_op_operate2(op, r->io, oid, NULL, 0);
	rados_release_write_op(op);
	free(doc);
	if (ret == 0)
		changed(r, run);
	return ret;
}

/* ---- leases: which mounts are alive ---- */

/*
 * Every mount holds a shared lock "mounts" on ckptfs.store with its id as
 * the cookie and a duration of lease_s, renewed every lease_s/3. The OSD
 * drops a lock that was not renewed in time (cls_lock trims expired
 * lockers when they are listed), so a mount killed with -9 stops being a
 * locker within lease_s: its part of an open version then no longer holds
 * a commit back. The OSD's clock decides, not the hosts'.
 */
static int lease_take(struct rados_sb *r, bool renew)
{
	struct timeval d = {.tv_sec = r->lease_s};
	char desc[96], host[64] = "?";

	gethostname(host, sizeof(host) - 1);
	snprintf(desc, sizeof(desc), "ckptfs on %s pid %ld", host, (long)getpid());
	return rados_lock_shared(r->io, RADOS_ROOT, RADOS_LEASE_LOCK, r->b.mount_id, "ckptfs", desc,
				 &d, renew ? LIBRADOS_LOCK_FLAG_MAY_RENEW : 0);
}

static void *lease_main(void *arg)
{
	struct rados_sb *r = arg;

	pthread_mutex_lock(&r->llock);
	while (!r->lease_stop) {
		struct timespec until;
		int ret;

		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_nsec += (long)r->lease_s * 1000000000L / 3;
		until.tv_sec += until.tv_nsec / 1000000000L;
		until.tv_nsec %= 1000000000L;
		pthread_cond_timedwait(&r->lcond, &r->llock, &until);
		if (r->lease_stop)
			break;
		pthread_mutex_unlock(&r->llock);
		ret = lease_take(r, true);
		pthread_mutex_lock(&r->llock);
		if (ret < 0 && !r->lease_lost)
			store_log("%s: cannot renew this mount's lease (%s): other hosts may take "
				  "its "
				  "open versions for abandoned until the cluster answers",
				  r->b.where, strerror(-ret));
		else if (ret == 0 && r->lease_lost)
			store_log("%s: this mount's lease is renewed again", r->b.where);
		r->lease_lost = ret < 0;
	}
	pthread_mutex_unlock(&r->llock);
	return NULL;
}

static int lease_start(struct rados_sb *r, char *err, size_t errlen)
{
	const char *e = getenv("CKPT_RADOS_LEASE_S");
	uint64_t id;
	int ret;

	r->lease_s = e && atoi(e) > 0 ? atoi(e) : RADOS_LEASE_S;
	if (getrandom(&id, sizeof(id), 0) != sizeof(id))
		id = (uint64_t)now_ns() ^ ((uint64_t)getpid() << 32);
	snprintf(r->b.mount_id, sizeof(r->b.mount_id), "%016" PRIx64, id | 1);
	ret = lease_take(r, false);
	if (ret < 0) {
		snprintf(err, errlen, "%s: cannot take this mount's lease on %s: %s", r->b.where,
			 RADOS_ROOT, strerror(-ret));
		return ret;
	}
	pthread_mutex_init(&r->llock, NULL);
	pthread_cond_init(&r->lcond, NULL);
	ret = -pthread_create(&r->lease_th, NULL, lease_main, r);
	if (ret < 0) {
		snprintf(err, errlen, "%s: cannot start the lease thread: %s", r->b.where,
			 strerror(-ret));
		pthread_cond_destroy(&r->lcond);
		pthread_mutex_destroy(&r->llock);
		return ret;
	}
	r->leasing = true;
	return 0;
}

static void lease_stop(struct rados_sb *r, bool alive)
{
	if (!r->leasing)
		return;
	pthread_mutex_lock(&r->llock);
	r->lease_stop = true;
	pthread_cond_signal(&r->lcond);
	pthread_mutex_unlock(&r->llock);
	pthread_join(r->lease_th, NULL);
	/* gone at once for the others, rather than when the lease runs out */
	if (alive)
		rados_unlock(r->io, RADOS_ROOT, RADOS_LEASE_LOCK, r->b.mount_id);
	pthread_cond_destroy(&r->lcond);
	pthread_mutex_destroy(&r->llock);
	free(r->alive);
	r->leasing = false;
}

/* The cookies of the live lockers, re-read when older than 200 ms (llock held). */
static int lockers_read(struct rados_sb *r)
{
	size_t cap = 4096;

	if (r->alive && now_ns() - r->alive_ns < 200000000)
		return 0;
	for (int tries = 0; tries < 8; tries++) {
		char tag[64], *clients = malloc(cap), *cookies = malloc(cap), *addrs = malloc(cap);
		size_t tl = sizeof(tag), cl = cap, kl = cap, al = cap;
		int excl;
		ssize_t n = clients && cookies && addrs
				    ? rados_list_lockers(r->io, RADOS_ROOT, RADOS_LEASE_LOCK, &excl,
							 tag, &tl, clients, &cl, cookies, &kl,
							 addrs, &al)
				    : -ENOMEM;

		free(clients);
		free(addrs);
		if (n == -ERANGE) {
			free(cookies);
			cap = (cl > kl ? cl : kl) + al + 4096;
			continue;
		}
		if (n < 0) {
			free(cookies);
			return (int)n;
		}
		free(r->alive);
		r->alive = cookies;
		r->alive_len = n ? kl : 0;
		r->alive_ns = now_ns();
		return 0;
	}
	return -ERANGE;
}

/* Every watch callback that started has returned (they run on librados'
 * finisher thread; rados_watch_flush waits for its queue). */
static void rados_quiesce(struct sb *b)
{
	rados_watch_flush(rs_of(b)->cl);
}

static bool rados_mount_alive(struct sb *b, const char *id)
{
	struct rados_sb *r = rs_of(b);
	bool alive = false;

	if (!strcmp(id, b->mount_id))
		return true;
	pthread_mutex_lock(&r->llock);
	if (lockers_read(r) < 0) {
		alive = true; /* cannot tell: never take a mount for dead on a guess */
	} else {
		for (size_t off = 0; off < r->alive_len && !alive;) {
			const char *c = r->alive + off;
			size_t l = strnlen(c, r->alive_len - off);

			alive = l == strlen(id) && !memcmp(c, id, l);
			off += l + 1;
		}
	}
	pthread_mutex_unlock(&r->llock);
	return alive;
}

/* ---- parts of open versions: omap "p/VERSION/MOUNT" of the run's head ---- */

static int rados_part_put(struct sb *b, const char *run, const char *name, const char *doc,
			  size_t len)
{
	struct rados_sb *r = rs_of(b);
	char oid[CKPT_NAME_MAX + 32], mk[CKPT_NAME_MAX + 4], pk[CKPT_NAME_MAX + 32];
	char note[2 * CKPT_NAME_MAX + 2];
	rados_write_op_t op = rados_create_write_op();
	int ret, prval = 0;

	if (!op)
		return -ENOMEM;
	head_oid(run, oid, sizeof(oid));
	snprintf(mk, sizeof(mk), "o/%s", name);
	snprintf(pk, sizeof(pk), "p/%s/%s", name, b->mount_id);
	/* the marker is there: nobody committed or removed the version */
	rados_write_op_omap_cmp(op, mk, LIBRADOS_CMPXATTR_OP_GT, "", 0, &prval);
	if (doc)
		op_omap_set(op, pk, doc, len);
	else
		op_omap_rm(op, pk);
	op_new_ptok(op);
	ret = rados_write_op_operate2(op, r->io, oid, NULL, 0);
	rados_release_write_op(op);
	if (ret == -ECANCELED)
		return -ENOENT;
	if (ret == 0) {
		snprintf(note, sizeof(note), "%s/%s", run, name);
		changed(r, note);
	}
	return ret;
}

/* Page through omap keys of oid from `prefix` on, calling fn for each
 * "p/VERSION/MOUNT" entry of version `name`. */
struct part_cb {
	sb_part_fn fn;
	void *arg;
};

static int part_one(void *arg, const char *mount, const char *val, size_t len)
{
	struct part_cb *c = arg;
	struct sb_part p = {.doc = val, .len = len};

	if (strlen(mount) >= sizeof(p.mount))
		return 0;
	snprintf(p.mount, sizeof(p.mount), "%s", mount);
	return c->fn(c->arg, &p);
}

static int rados_part_list(struct sb *b, const char *run, const char *name, sb_part_fn fn,
			   void *arg)
{
	char oid[CKPT_NAME_MAX + 32], prefix[CKPT_NAME_MAX + 4];
	struct part_cb c = {fn, arg};
	int ret;

	head_oid(run, oid, sizeof(oid));
	snprintf(prefix, sizeof(prefix), "p/%s/", name);
	ret = omap_each(rs_of(b), oid, prefix, part_one, &c);
	return ret == -ENOENT ? 0 : ret;
}

/* ---- the store ---- */

static int rados_statvfs_op(struct sb *b, struct statvfs *st)
{
	struct rados_cluster_stat_t cs;
	int ret = rados_cluster_stat(rs_of(b)->cl, &cs);

	if (ret < 0)
		return ret;
	memset(st, 0, sizeof(*st));
	st->f_bsize = st->f_frsize = 4096;
	st->f_blocks = cs.kb / 4;
	st->f_bfree = st->f_bavail = cs.kb_avail / 4;
	st->f_files = cs.num_objects + 1000000;
	st->f_ffree = st->f_favail = 1000000;
	st->f_namemax = CKPT_NAME_MAX;
	return 0;
}

static void rm_stagedir(struct rados_sb *r)
{
	if (r->b.stagefd >= 0) {
		close(r->b.stagefd);
		r->b.stagefd = -1;
	}
	if (r->stagedir[0]) {
		/* staging files were unlinked by their owners; leftovers of a
		 * crash are in another directory */
		rmdir(r->stagedir);
		r->stagedir[0] = 0;
	}
}

static void rados_close(struct sb *b)
{
	struct rados_sb *r = rs_of(b);

	bool alive = true;

	if (r->watching) {
		/* a cluster gone away never answers an unwatch: wait a while,
		 * then leave the client as it is (the process is ending) */
		rados_completion_t c;

		alive = false;
		if (rados_aio_create_completion2(NULL, NULL, &c) == 0) {
			if (rados_aio_unwatch(r->io, r->watch, c) == 0)
				for (int i = 0; i < RADOS_CLOSE_MS / 10 && !alive; i++) {
					alive = rados_aio_is_complete(c);
					if (!alive)
						usleep(10000);
				}
			if (alive)
				rados_aio_release(c);
		}
		if (!alive)
			store_log("%s: the cluster did not answer at unmount within %d s; "
				  "leaving without closing the connection",
				  b->where, RADOS_CLOSE_MS / 1000);
		else
			rados_watch_flush(r->cl);
	}
	lease_stop(r, alive);
	/* a read ahead still in flight calls back into r: then r stays */
	if (!ra_stop(r, alive ? RADOS_CLOSE_MS : 0)) {
		store_log("%s: reads ahead still in flight at unmount; leaving them", b->where);
		rm_stagedir(r);
		return;
	}
	if (r->io && alive) {
		rados_aio_flush(r->io);
		rados_ioctx_destroy(r->io);
	}
	if (r->cl && alive)
		rados_shutdown(r->cl);
	rm_stagedir(r);
	free(r->pool);
	free(r->ns);
	free(r->conf);
	free(r->id);
	free(b->where);
	free(r);
}

static const struct sb_ops rados_ops = {
	.close = rados_close,
	.statvfs = rados_statvfs_op,
	.chunk_put = rados_chunk_put,
	.chunk_get = rados_chunk_get,
	.chunk_stat = rados_chunk_stat,
	.chunk_hash = rados_chunk_hash,
	.chunk_scan = rados_chunk_scan,
	.chunk_remove = rados_chunk_remove,
	.chunk_sync = rados_chunk_sync,
	.chunk_hint = rados_chunk_hint,
	.chunk_take = rados_chunk_take,
	.run_list = rados_run_list,
	.run_create = rados_run_create,
	.run_remove = rados_run_remove,
	.run_conf_get = rados_run_conf_get,
	.run_conf_put = rados_run_conf_put,
	.manifest_list = rados_manifest_list,
	.manifest_commit = rados_manifest_commit,
	.manifest_put = rados_manifest_put,
	.manifest_remove = rados_manifest_remove,
	.marker_list = rados_marker_list,
	.marker_put = rados_marker_put,
	.marker_remove = rados_marker_remove,
	.marker_rename = rados_marker_rename,
	.part_put = rados_part_put,
	.part_list = rados_part_list,
	.mount_alive = rados_mount_alive,
	.quiesce = rados_quiesce,
};

/* %XX decoding of one URL component, in place. */
static void url_unescape(char *s)
{
	char *o = s;

	for (; *s; s++) {
		if (*s == '%' && s[1] && s[2]) {
			char hex[3] = {s[1], s[2], 0};

			*o++ = (char)strtol(hex, NULL, 16);
			s += 2;
		} else {
			*o++ = *s;
		}
	}
	*o = 0;
}

/* rados://POOL[/NAMESPACE][?conf=PATH&id=CLIENT] */
static int url_parse(struct rados_sb *r, const char *url, char *err, size_t errlen)
{
	char *s = strdup(url + strlen("rados://")), *q, *slash;

	if (!s)
		return -ENOMEM;
	q = strchr(s, '?');
	if (q)
		*q++ = 0;
	slash = strchr(s, '/');
	if (slash) {
		*slash++ = 0;
		if (*slash && strchr(slash, '/')) {
			snprintf(err, errlen,
				 "%s: a RADOS store is "
				 "rados://POOL[/NAMESPACE][?conf=PATH&id=CLIENT] "
				 "(one namespace, no further '/')",
				 url);
			free(s);
			return -EINVAL;
		}
		if (*slash) {
			url_unescape(slash);
			r->ns = strdup(slash);
		}
	}
	url_unescape(s);
	if (!*s) {
		snprintf(err, errlen,
			 "%s: no pool: use rados://POOL[/NAMESPACE][?conf=PATH&id=CLIENT]", url);
		free(s);
		return -EINVAL;
	}
	r->pool = strdup(s);
	while (q && *q) {
		char *amp = strchr(q, '&'), *eq;

		if (amp)
			*amp++ = 0;
		eq = strchr(q, '=');
		if (eq)
			*eq++ = 0;
		if (eq && !strcmp(q, "conf")) {
			url_unescape(eq);
			free(r->conf);
			r->conf = strdup(eq);
		} else if (eq && !strcmp(q, "id")) {
			url_unescape(eq);
			free(r->id);
			r->id = strdup(eq);
		} else {
			snprintf(err, errlen,
				 "%s: unknown option \"%s\": a RADOS store takes conf=PATH (the "
				 "ceph.conf) and id=CLIENT (the cephx user, without \"client.\")",
				 url, q);
			free(s);
			return -EINVAL;
		}
		q = amp;
	}
	free(s);
	return r->pool ? 0 : -ENOMEM;
}

static int format_check(struct rados_sb *r, bool create, char *err, size_t errlen)
{
	char buf[128];
	int n = rados_read(r->io, RADOS_ROOT, buf, sizeof(buf) - 1, 0);
	long v;

	if (n == -ENOENT) {
		rados_write_op_t op;
		int len;

		if (!create) {
			snprintf(err, errlen,
				 "%s holds no ckptfs store: mount it once with ckptfs to create "
				 "one",
				 r->b.where);
			return -ENOENT;
		}
		len = snprintf(buf, sizeof(buf), RADOS_FORMAT_MAGIC "%d\n", CKPT_STORE_FORMAT);
		op = rados_create_write_op();
		if (!op)
			return -ENOMEM;
		rados_write_op_create(op, LIBRADOS_CREATE_EXCLUSIVE, NULL);
		rados_write_op_write_full(op, buf, (size_t)len);
		n = rados_write_op_operate2(op, r->io, RADOS_ROOT, NULL, 0);
		rados_release_write_op(op);
		if (n < 0 && n != -EEXIST) {
			snprintf(err, errlen, "cannot create the store in %s: %s", r->b.where,
				 strerror(-n));
			return n;
		}
		return n == -EEXIST ? format_check(r, false, err, errlen) : 0;
	}
	if (n < 0) {
		snprintf(err, errlen, "cannot read the store object %s in %s: %s", RADOS_ROOT,
			 r->b.where, strerror(-n));
		return n;
	}
	if (rdec_format(buf, (size_t)n, &v) < 0) {
		snprintf(err, errlen,
			 "%s: object %s does not name a ckptfs store format; use another pool "
			 "or namespace",
			 r->b.where, RADOS_ROOT);
		return -EPROTO;
	}
	if (v != CKPT_STORE_FORMAT) {
		snprintf(err, errlen,
			 "store %s has format version %ld, but this ckptfs reads format version "
			 "%d: open it with a ckptfs release that reads format %ld",
			 r->b.where, v, CKPT_STORE_FORMAT, v);
		return -EPROTO;
	}
	return 0;
}

static int connect_cluster(struct rados_sb *r, char *err, size_t errlen)
{
	char mon[256] = "?", t[16];
	const char *conf = r->conf ? r->conf : "the default ceph.conf (/etc/ceph/ceph.conf)";
	int ret;

	ret = rados_create(&r->cl, r->id);
	if (ret < 0) {
		snprintf(err, errlen, "cannot set up a Ceph client for %s: %s", r->b.where,
			 strerror(-ret));
		return ret;
	}
	ret = rados_conf_read_file(r->cl, r->conf);
	if (ret < 0) {
		snprintf(err, errlen,
			 "%s: cannot read the Ceph configuration %s: %s (give it with "
			 "?conf=PATH)",
			 r->b.where, conf, strerror(-ret));
		return ret;
	}
	snprintf(t, sizeof(t), "%d", RADOS_CONNECT_S);
	rados_conf_set(r->cl, "client_mount_timeout", t);
	rados_conf_set(r->cl, "rados_mon_op_timeout", t);
	/* CKPT_RADOS_OP_TIMEOUT_S shortens it (tests) */
	snprintf(t, sizeof(t), "%d",
		 getenv("CKPT_RADOS_OP_TIMEOUT_S") ? atoi(getenv("CKPT_RADOS_OP_TIMEOUT_S"))
						   : RADOS_OP_S);
	rados_conf_set(r->cl, "rados_osd_op_timeout", t);
	rados_conf_get(r->cl, "mon_host", mon, sizeof(mon));
	ret = rados_connect(r->cl);
	if (ret < 0) {
		snprintf(err, errlen,
			 "%s: cannot connect to the Ceph cluster: monitor %s (from %s) %s: is "
			 "the cluster up, and are the conf and the client id (%s) right?",
			 r->b.where, mon[0] ? mon : "(none in the conf)", conf,
			 ret == -ETIMEDOUT ? "did not answer within " RADOS_CONNECT_S_TXT " s"
					   : strerror(-ret),
			 r->id ? r->id : "admin");
		return ret;
	}
	ret = rados_ioctx_create(r->cl, r->pool, &r->io);
	if (ret < 0) {
		if (ret == -ENOENT)
			snprintf(err, errlen,
				 "%s: the cluster (monitor %s) has no pool %s: create it with "
				 "`ceph osd pool create %s` and `ceph osd pool application enable "
				 "%s ckptfs`",
				 r->b.where, mon, r->pool, r->pool, r->pool);
		else
			snprintf(err, errlen, "%s: cannot open pool %s: %s", r->b.where, r->pool,
				 strerror(-ret));
		return ret;
	}
	if (r->ns)
		rados_ioctx_set_namespace(r->io, r->ns);
	r->self = rados_get_instance_id(r->cl);
	return 0;
}

/* Staging directories of ckptfs processes that died (kill -9) on this
 * host: ckptfs-stage-PID-* of this user whose PID is gone. */
static void stage_reap(const char *base)
{
	DIR *d = opendir(base);
	struct dirent *de;

	if (!d)
		return;
	while ((de = readdir(d))) {
		char path[PATH_MAX];
		struct stat st;
		long pid;
		char *end;
		DIR *sd;

		if (strncmp(de->d_name, "ckptfs-stage-", 13))
			continue;
		pid = strtol(de->d_name + 13, &end, 10);
		if (pid <= 0 || *end != '-' || kill((pid_t)pid, 0) == 0 || errno != ESRCH)
			continue;
		snprintf(path, sizeof(path), "%s/%s", base, de->d_name);
		if (lstat(path, &st) < 0 || !S_ISDIR(st.st_mode) || st.st_uid != getuid())
			continue;
		sd = opendir(path);
		if (sd) {
			struct dirent *f;

			while ((f = readdir(sd)))
				if (f->d_name[0] != '.')
					unlinkat(dirfd(sd), f->d_name, 0);
			closedir(sd);
		}
		rmdir(path);
	}
	closedir(d);
}

static int stage_open(struct rados_sb *r, char *err, size_t errlen)
{
	const char *tmp = getenv("TMPDIR"), *base = tmp && strlen(tmp) < 32 ? tmp : "/var/tmp";

	stage_reap(base);
	snprintf(r->stagedir, sizeof(r->stagedir), "%s/ckptfs-stage-%ld-XXXXXX", base,
		 (long)getpid());
	if (!mkdtemp(r->stagedir)) {
		int ret = -errno;

		snprintf(err, errlen, "cannot create a staging directory %s: %s", r->stagedir,
			 strerror(errno));
		r->stagedir[0] = 0;
		return ret;
	}
	r->b.stagefd = open(r->stagedir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	return r->b.stagefd < 0 ? -errno : 0;
}

int rados_sb_open(const char *url, const struct ckpt_store_opts *opts, struct sb **out, char *err,
		  size_t errlen)
{
	struct rados_sb *r = calloc(1, sizeof(*r));
	int ret;

	if (!r)
		return -ENOMEM;
	r->b.ops = &rados_ops;
	r->b.io = opts->io ? opts->io : &ckpt_io_default;
	r->b.stagefd = -1;
	r->b.local_dedup = false; /* other hosts' gc */
	r->b.zero_copy = false;
	r->b.shared = true;
	r->b.gc_grace_ns = rados_gc_grace_ns();
	r->b.read_hints = true;
	r->ra_verify = opts->verify != CKPT_VERIFY_OFF;
	r->b.where = strdup(url);
	if (!r->b.where || ra_init(r) < 0) {
		free(r->b.where);
		free(r);
		return -ENOMEM;
	}
	if (opts->chunk_size > RADOS_MAX_CHUNK) {
		snprintf(err, errlen,
			 "chunk size %zu is too large for a RADOS store: use at most 16 MiB",
			 opts->chunk_size);
		ret = -EINVAL;
		goto fail;
	}
	ret = url_parse(r, url, err, errlen);
	if (ret == 0)
		ret = connect_cluster(r, err, errlen);
	if (ret == 0)
		ret = format_check(r, opts->create, err, errlen);
	if (ret == 0)
		ret = stage_open(r, err, errlen);
	if (ret < 0)
		goto fail;
	ret = rados_watch3(r->io, RADOS_ROOT, &r->watch, watch_cb, watch_err_cb, 30, r);
	if (ret < 0) {
		snprintf(err, errlen, "%s: cannot watch %s for other hosts' changes: %s", url,
			 RADOS_ROOT, strerror(-ret));
		goto fail;
	}
	r->watching = true;
	ret = lease_start(r, err, errlen);
	if (ret < 0)
		goto fail;
	*out = &r->b;
	return 0;
fail:
	rados_close(&r->b);
	return ret;
}
