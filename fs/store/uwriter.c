// SPDX-License-Identifier: MIT
/*
 * uwriter.c - asynchronous chunk writes through io_uring with a bounded
 * number of bytes in flight. Writers block in uw_write_chunk() while the
 * budget is used up (backpressure); one reaper thread takes completions,
 * resubmits the rest of a short write and writes that got -EAGAIN/-EINTR,
 * and records the outcome in the chunk index. Durability is not done here:
 * commit makes everything written durable with one syncfs (store_commit).
 *
 * One thread submits at a time (uw->lock) and only the reaper waits on the
 * completion queue, which is the concurrency liburing supports.
 */
#include <errno.h>
#include <fcntl.h>
#include <liburing.h>
#include <stdlib.h>
#include <string.h>

#include "store_i.h"

struct uw_req {
	uint8_t h[CHUNK_HASH_LEN];
	int fd;
	uint8_t *buf;
	size_t len, done;
	struct uw_wait *wait; /* borrowed buffer: the submitter waits; NULL: owned */
};

struct uwriter {
	struct ckpt_store *s;
	struct io_uring ring;
	bool ring_ok;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	size_t inflight, budget, peak;
	unsigned nreq;
	pthread_t reaper;
	bool stop;
	/* recycled chunk buffers: a fresh 1 MiB malloc is an mmap whose pages
	 * fault and get zeroed on first touch, which cost more than the copy */
	void **pool;
	size_t npool, pool_cap, buf_size;
};

void *uw_buf_get(struct uwriter *uw)
{
	void *b = NULL;

	pthread_mutex_lock(&uw->lock);
	if (uw->npool)
		b = uw->pool[--uw->npool];
	pthread_mutex_unlock(&uw->lock);
	if (!b && posix_memalign(&b, CHUNK_ALIGN, uw->buf_size))
		b = NULL;
	return b;
}

void uw_buf_put(struct uwriter *uw, void *b)
{
	if (!b)
		return;
	pthread_mutex_lock(&uw->lock);
	if (uw->npool < uw->pool_cap) {
		uw->pool[uw->npool++] = b;
		b = NULL;
	}
	pthread_mutex_unlock(&uw->lock);
	free(b);
}

/* The chunk is on disk (or failed): tell the index, release the budget. */
static void uw_finish(struct uwriter *uw, struct uw_req *r, int res)
{
	struct ckpt_store *s = uw->s;
	struct centry *e;
	int cret;

	cret = IO(s, close, r->fd);
	if (res == 0 && cret < 0)
		res = cret;
	if (res < 0) {
		char rel[CHUNK_HEX_LEN + 4];

		chunk_relpath(r->h, rel);
		store_log("chunk write failed: %s/chunks/%s: %s", s->dir, rel, strerror(-res));
		/* a partial chunk under its final name must not be trusted later */
		IO(s, unlinkat, s->chunkfd, rel, 0);
	}
	pthread_mutex_lock(&s->ilock);
	e = cindex_find(&s->ix, r->h);
	if (e && e->state == CE_WRITING) {
		e->state = res < 0 ? CE_FAILED : CE_WRITTEN;
		e->err = res;
	}
	pthread_mutex_unlock(&s->ilock);

	pthread_mutex_lock(&uw->lock);
	uw->inflight -= r->len;
	uw->nreq--;
	if (r->wait) {
		r->wait->pending--;
		if (res < 0 && !r->wait->err)
			r->wait->err = res;
	}
	pthread_cond_broadcast(&uw->cond);
	pthread_mutex_unlock(&uw->lock);
	if (!r->wait)
		uw_buf_put(uw, r->buf);
	free(r);
}

/* uw->lock held */
static void uw_queue(struct uwriter *uw, struct uw_req *r)
{
	struct io_uring_sqe *sqe;

	while (!(sqe = io_uring_get_sqe(&uw->ring)))
		io_uring_submit(&uw->ring);
	io_uring_prep_write(sqe, r->fd, r->buf + r->done, (unsigned)(r->len - r->done),
			    (uint64_t)r->done);
	io_uring_sqe_set_data(sqe, r);
	io_uring_submit(&uw->ring);
}

static void *uw_reap(void *arg)
{
	struct uwriter *uw = arg;
	struct ckpt_store *s = uw->s;

	for (;;) {
		struct io_uring_cqe *cqe;
		struct uw_req *r;
		int res, ret;

		ret = io_uring_wait_cqe(&uw->ring, &cqe);
		if (ret == -EINTR || ret == -EAGAIN)
			continue;
		if (ret < 0) {
			store_log("io_uring wait failed: %s", strerror(-ret));
			continue;
		}
		r = io_uring_cqe_get_data(cqe);
		res = cqe->res;
		io_uring_cqe_seen(&uw->ring, cqe);
		if (!r)
			return NULL; /* the stop NOP */
		if (s->io->uring_result)
			res = s->io->uring_result(s->io->ctx, r->fd, r->len - r->done,
						  (off_t)r->done, res);
		if (res == -EAGAIN || res == -EINTR) {
			pthread_mutex_lock(&uw->lock);
			uw_queue(uw, r);
			pthread_mutex_unlock(&uw->lock);
			continue;
		}
		if (res == 0)
			res = -EIO; /* no progress on a regular file: do not spin */
		if (res < 0) {
			uw_finish(uw, r, res);
			continue;
		}
		r->done += (size_t)res;
		if (r->done < r->len) { /* short write: queue the rest */
			pthread_mutex_lock(&uw->lock);
			uw_queue(uw, r);
			pthread_mutex_unlock(&uw->lock);
			continue;
		}
		uw_finish(uw, r, 0);
	}
}

int uw_start(struct ckpt_store *s, size_t budget, struct uwriter **out)
{
	struct uwriter *uw = calloc(1, sizeof(*uw));
	int ret;

	if (!uw)
		return -ENOMEM;
	uw->s = s;
	uw->budget = budget;
	uw->buf_size = s->chunker.max;
	/* enough for the budget's worth of chunks plus a few writers' pending
	 * buffers; beyond that buffers go back to the allocator */
	uw->pool_cap = budget / uw->buf_size + 8;
	uw->pool = calloc(uw->pool_cap, sizeof(*uw->pool));
	if (!uw->pool) {
		free(uw);
		return -ENOMEM;
	}
	pthread_mutex_init(&uw->lock, NULL);
	pthread_cond_init(&uw->cond, NULL);
	if (!s->io->no_uring) {
		ret = io_uring_queue_init(256, &uw->ring, 0);
		if (ret < 0) {
			store_log("io_uring unavailable (%s); writing chunks synchronously",
				  strerror(-ret));
		} else {
			uw->ring_ok = true;
			ret = pthread_create(&uw->reaper, NULL, uw_reap, uw);
			if (ret) {
				io_uring_queue_exit(&uw->ring);
				free(uw);
				return -ret;
			}
		}
	}
	*out = uw;
	return 0;
}

void uw_stop(struct uwriter *uw)
{
	if (!uw)
		return;
	uw_drain(uw);
	if (uw->ring_ok) {
		struct io_uring_sqe *sqe;

		pthread_mutex_lock(&uw->lock);
		while (!(sqe = io_uring_get_sqe(&uw->ring)))
			io_uring_submit(&uw->ring);
		io_uring_prep_nop(sqe);
		io_uring_sqe_set_data(sqe, NULL);
		io_uring_submit(&uw->ring);
		pthread_mutex_unlock(&uw->lock);
		pthread_join(uw->reaper, NULL);
		io_uring_queue_exit(&uw->ring);
	}
	while (uw->npool)
		free(uw->pool[--uw->npool]);
	free(uw->pool);
	pthread_mutex_destroy(&uw->lock);
	pthread_cond_destroy(&uw->cond);
	free(uw);
}

/*
 * Chunk buffers are the store's own copy of the data, so a page-aligned
 * chunk of a whole number of pages goes with O_DIRECT: no second copy into
 * the page cache, and little left for syncfs to write back at commit. Other
 * chunks (the tail of a file, CDC chunks) are written buffered.
 */
static int chunk_create(struct ckpt_store *s, const char *rel, const uint8_t *buf, size_t len)
{
	int flags = O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, fd;
	bool direct = !s->no_direct && len % CHUNK_ALIGN == 0 && (uintptr_t)buf % CHUNK_ALIGN == 0;

	if (direct) {
		fd = IO(s, openat, s->chunkfd, rel, flags | O_DIRECT, 0444);
		if (fd != -EINVAL)
			return fd;
		s->no_direct = true; /* e.g. tmpfs: buffered from now on */
	}
	return IO(s, openat, s->chunkfd, rel, flags, 0444);
}

int uw_write_chunk(struct uwriter *uw, const uint8_t *h, uint8_t *buf, size_t len,
		   struct uw_wait *w)
{
	struct ckpt_store *s = uw->s;
	char rel[CHUNK_HEX_LEN + 4];
	struct uw_req *r;
	int fd, ret;

	chunk_relpath(h, rel);
	fd = chunk_create(s, rel, buf, len);
	if (fd < 0) {
		if (!w)
			uw_buf_put(uw, buf);
		return fd;
	}
	r = calloc(1, sizeof(*r));
	if (!r) {
		IO(s, close, fd);
		if (!w)
			uw_buf_put(uw, buf);
		return -ENOMEM;
	}
	memcpy(r->h, h, CHUNK_HASH_LEN);
	r->fd = fd;
	r->buf = buf;
	r->len = len;
	r->wait = w;
	if (!uw->ring_ok) {
		/* synchronous path (no io_uring, or a test table that must see
		 * every write): same bookkeeping, done inline */
		ret = io_write_all(s, fd, buf, len, 0);
		pthread_mutex_lock(&uw->lock);
		uw->inflight += len;
		uw->nreq++;
		if (w)
			w->pending++;
		pthread_mutex_unlock(&uw->lock);
		uw_finish(uw, r, ret);
		return ret;
	}
	pthread_mutex_lock(&uw->lock);
	/* backpressure: wait until this chunk fits in the budget (a chunk larger
	 * than the whole budget goes alone) */
	while (uw->inflight > 0 && uw->inflight + len > uw->budget)
		pthread_cond_wait(&uw->cond, &uw->lock);
	uw->inflight += len;
	if (uw->inflight > uw->peak)
		uw->peak = uw->inflight;
	uw->nreq++;
	if (w)
		w->pending++;
	uw_queue(uw, r);
	pthread_mutex_unlock(&uw->lock);
	return 0;
}

int uw_wait_done(struct uwriter *uw, struct uw_wait *w)
{
	pthread_mutex_lock(&uw->lock);
	while (w->pending > 0)
		pthread_cond_wait(&uw->cond, &uw->lock);
	pthread_mutex_unlock(&uw->lock);
	return w->err;
}

void uw_drain(struct uwriter *uw)
{
	pthread_mutex_lock(&uw->lock);
	while (uw->nreq > 0)
		pthread_cond_wait(&uw->cond, &uw->lock);
	pthread_mutex_unlock(&uw->lock);
}

size_t uw_peak(struct uwriter *uw)
{
	return uw->peak;
}
