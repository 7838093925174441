// SPDX-License-Identifier: MIT
/*
 * dir_uring.c - the dir backend's chunk writes through io_uring. One ring
 * per store, one reaper thread that takes completions, resubmits the rest
 * of a short write and writes that got -EAGAIN/-EINTR, closes the chunk
 * file and reports the outcome (sb_put.done). The budget of bytes in
 * flight is kept above this, in cwriter.c. Durability is not done here:
 * commit makes everything written durable with one syncfs (chunk_sync).
 *
 * One thread submits at a time (uw->lock) and only the reaper waits on the
 * completion queue, which is the concurrency liburing supports.
 */
#include <errno.h>
#include <fcntl.h>
#include <liburing.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "dir_i.h"

struct uw_req {
	int fd;
	size_t done;
	struct sb_put *p;
};

struct dir_uring {
	struct dir_sb *d;
	struct io_uring ring;
	bool ring_ok;
	pthread_mutex_t lock;
	pthread_t reaper;
};

/* The chunk is in its file (or failed): close it, report. */
static void uw_finish(struct dir_uring *uw, struct uw_req *r, int res)
{
	struct dir_sb *d = uw->d;
	struct sb_put *p = r->p;
	int cret;

	cret = IO(d->b.io, close, r->fd);
	if (res == 0 && cret < 0)
		res = cret;
	if (res < 0) {
		char rel[CHUNK_HEX_LEN + 4];

		dir_chunk_relpath(p->h, rel);
		store_log("chunk write failed: %s/chunks/%s: %s", d->b.where, rel, strerror(-res));
		/* a partial chunk under its final name must not be trusted later */
		IO(d->b.io, unlinkat, d->chunkfd, rel, 0);
	}
	free(r);
	p->done(p, res);
}

/* uw->lock held */
static void uw_queue(struct dir_uring *uw, struct uw_req *r)
{
	struct io_uring_sqe *sqe;

	while (!(sqe = io_uring_get_sqe(&uw->ring)))
		io_uring_submit(&uw->ring);
	io_uring_prep_write(sqe, r->fd, r->p->buf + r->done, (unsigned)(r->p->len - r->done),
			    (uint64_t)r->done);
	io_uring_sqe_set_data(sqe, r);
	io_uring_submit(&uw->ring);
}

static void *uw_reap(void *arg)
{
	struct dir_uring *uw = arg;
	const struct ckpt_io_ops *io = uw->d->b.io;

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
		if (io->uring_result)
			res = io->uring_result(io->ctx, r->fd, r->p->len - r->done, (off_t)r->done,
					       res);
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
		if (r->done < r->p->len) { /* short write: queue the rest */
			pthread_mutex_lock(&uw->lock);
			uw_queue(uw, r);
			pthread_mutex_unlock(&uw->lock);
			continue;
		}
		uw_finish(uw, r, 0);
	}
}

int dir_uring_start(struct dir_sb *d, struct dir_uring **out)
{
	struct dir_uring *uw = calloc(1, sizeof(*uw));
	int ret;

	if (!uw)
		return -ENOMEM;
	uw->d = d;
	pthread_mutex_init(&uw->lock, NULL);
	if (!d->b.io->no_uring) {
		ret = io_uring_queue_init(256, &uw->ring, 0);
		if (ret < 0) {
			store_log("io_uring unavailable (%s); writing chunks synchronously",
				  strerror(-ret));
		} else {
			uw->ring_ok = true;
			ret = pthread_create(&uw->reaper, NULL, uw_reap, uw);
			if (ret) {
				io_uring_queue_exit(&uw->ring);
				pthread_mutex_destroy(&uw->lock);
				free(uw);
				return -ret;
			}
		}
	}
	*out = uw;
	return 0;
}

/* Every write has completed by now (the chunk layer drained them). */
void dir_uring_stop(struct dir_uring *uw)
{
	if (!uw)
		return;
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
	pthread_mutex_destroy(&uw->lock);
	free(uw);
}

int dir_uring_write(struct dir_uring *uw, int fd, struct sb_put *p)
{
	struct uw_req *r = calloc(1, sizeof(*r));

	if (!r) {
		IO(uw->d->b.io, close, fd);
		return -ENOMEM;
	}
	r->fd = fd;
	r->p = p;
	if (!uw->ring_ok) {
		/* synchronous path (no io_uring, or a test table that must see
		 * every write): same bookkeeping, done inline */
		uw_finish(uw, r, io_write_all(uw->d->b.io, fd, p->buf, p->len, 0));
		return 0;
	}
	pthread_mutex_lock(&uw->lock);
	uw_queue(uw, r);
	pthread_mutex_unlock(&uw->lock);
	return 0;
}
