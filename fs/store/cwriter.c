// SPDX-License-Identifier: MIT
/*
 * cwriter.c - the pipeline of chunk writes: a bounded number of bytes in
 * flight, recycled chunk buffers, and the bookkeeping of each write's
 * outcome in the chunk index. Writers block in cw_write() while the budget
 * is used up (backpressure); the backend does the write asynchronously
 * (io_uring for dir, librados aio for rados) and reports back through
 * sb_put.done, from any thread.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "chunk_i.h"

struct cw_req {
	struct sb_put p; /* first: the backend hands it back */
	struct cwriter *cw;
	uint8_t *buf;
	struct cw_wait *wait; /* borrowed buffer: the submitter waits; NULL: owned */
};

struct cwriter {
	struct chunks *ck;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	size_t inflight, budget;
	unsigned nreq;
	/* recycled chunk buffers: a fresh 1 MiB malloc is an mmap whose pages
	 * fault and get zeroed on first touch, which cost more than the copy */
	void **pool;
	size_t npool, pool_cap, buf_size;
};

void *cw_buf_get(struct cwriter *cw)
{
	void *b = NULL;

	pthread_mutex_lock(&cw->lock);
	if (cw->npool)
		b = cw->pool[--cw->npool];
	pthread_mutex_unlock(&cw->lock);
	if (!b && posix_memalign(&b, CHUNK_ALIGN, cw->buf_size))
		b = NULL;
	return b;
}

void cw_buf_put(struct cwriter *cw, void *b)
{
	if (!b)
		return;
	pthread_mutex_lock(&cw->lock);
	if (cw->npool < cw->pool_cap) {
		cw->pool[cw->npool++] = b;
		b = NULL;
	}
	pthread_mutex_unlock(&cw->lock);
	free(b);
}

/* The chunk is stored (or failed): tell the index, release the budget. */
static void cw_done(struct sb_put *p, int res)
{
	struct cw_req *r = (struct cw_req *)p;
	struct cwriter *cw = r->cw;
	struct chunks *ck = cw->ck;
	struct centry *e;

	pthread_mutex_lock(&ck->ilock);
	e = cindex_find(&ck->ix, p->h);
	if (e && e->state == CE_WRITING) {
		e->state = res < 0 ? CE_FAILED : CE_WRITTEN;
		e->err = res;
	}
	pthread_mutex_unlock(&ck->ilock);

	/* The buffer goes back to the pool under the same lock as the count:
	 * once nreq is 0 a drainer (cw_stop) may free cw at once, so nothing
	 * here touches cw after the unlock. */
	pthread_mutex_lock(&cw->lock);
	cw->inflight -= p->len;
	cw->nreq--;
	if (r->wait) {
		r->wait->pending--;
		if (res < 0 && !r->wait->err)
			r->wait->err = res;
	} else if (r->buf && cw->npool < cw->pool_cap) {
		cw->pool[cw->npool++] = r->buf;
		r->buf = NULL;
	}
	pthread_cond_broadcast(&cw->cond);
	pthread_mutex_unlock(&cw->lock);
	if (!r->wait)
		free(r->buf);
	free(r);
}

int cw_start(struct chunks *ck, size_t budget, struct cwriter **out)
{
	struct cwriter *cw = calloc(1, sizeof(*cw));

	if (!cw)
		return -ENOMEM;
	cw->ck = ck;
	cw->budget = budget;
	cw->buf_size = ck->chunker.max;
	/* enough for the budget's worth of chunks plus a few writers' pending
	 * buffers; beyond that buffers go back to the allocator */
	cw->pool_cap = budget / cw->buf_size + 8;
	cw->pool = calloc(cw->pool_cap, sizeof(*cw->pool));
	if (!cw->pool) {
		free(cw);
		return -ENOMEM;
	}
	pthread_mutex_init(&cw->lock, NULL);
	pthread_cond_init(&cw->cond, NULL);
	*out = cw;
	return 0;
}

void cw_stop(struct cwriter *cw)
{
	if (!cw)
		return;
	cw_drain(cw);
	while (cw->npool)
		free(cw->pool[--cw->npool]);
	free(cw->pool);
	pthread_mutex_destroy(&cw->lock);
	pthread_cond_destroy(&cw->cond);
	free(cw);
}

int cw_write(struct cwriter *cw, const uint8_t *h, uint8_t *buf, size_t len, struct cw_wait *w,
	     bool replace)
{
	struct cw_req *r = calloc(1, sizeof(*r));
	int ret;

	if (!r) {
		if (!w)
			cw_buf_put(cw, buf);
		return -ENOMEM;
	}
	memcpy(r->p.h, h, CHUNK_HASH_LEN);
	r->p.buf = buf;
	r->p.len = len;
	r->p.replace = replace;
	r->p.done = cw_done;
	r->cw = cw;
	r->buf = buf;
	r->wait = w;
	pthread_mutex_lock(&cw->lock);
	/* backpressure: wait until this chunk fits in the budget (a chunk larger
	 * than the whole budget goes alone) */
	while (cw->inflight > 0 && cw->inflight + len > cw->budget)
		pthread_cond_wait(&cw->cond, &cw->lock);
	cw->inflight += len;
	cw->nreq++;
	if (w)
		w->pending++;
	pthread_mutex_unlock(&cw->lock);
	ret = SB(cw->ck->be, chunk_put, &r->p);
	if (ret < 0) { /* not queued: done() will not come */
		pthread_mutex_lock(&cw->lock);
		cw->inflight -= len;
		cw->nreq--;
		if (w)
			w->pending--;
		pthread_cond_broadcast(&cw->cond);
		pthread_mutex_unlock(&cw->lock);
		if (!w)
			cw_buf_put(cw, buf);
		free(r);
	}
	return ret;
}

int cw_wait_done(struct cwriter *cw, struct cw_wait *w)
{
	pthread_mutex_lock(&cw->lock);
	while (w->pending > 0)
		pthread_cond_wait(&cw->cond, &cw->lock);
	pthread_mutex_unlock(&cw->lock);
	return w->err;
}

void cw_drain(struct cwriter *cw)
{
	pthread_mutex_lock(&cw->lock);
	while (cw->nreq > 0)
		pthread_cond_wait(&cw->cond, &cw->lock);
	pthread_mutex_unlock(&cw->lock);
}
