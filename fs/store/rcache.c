// SPDX-License-Identifier: MIT
/*
 * rcache.c - read-ahead for handles that read a file in order.
 *
 * Why: a cold sequential read that loads one chunk at a time waits for the
 * disk once per chunk (queue depth 1), and buffered reads of chunk files add
 * a copy out of the page cache into memory the kernel must first find and
 * fill. Here RC_THREADS loader threads read the next chunks of a sequential
 * reader straight into chunk-sized, page-aligned buffers (O_DIRECT where the
 * store uses it), check their hashes per the verify mode on their own cores,
 * and park them in RC slots. The reader takes a parked chunk by swapping
 * buffers with the slot: no copy, and the reader's old buffer becomes the
 * slot's for the next load.
 *
 * A parked chunk is handed out once, and only within RC_MAX_AGE_NS of being
 * read from disk; a chunk nobody took in that time is dropped. So this is
 * read-ahead, not a cache: a re-read goes to disk again (through the same
 * verification), and a chunk altered on disk later is never served from
 * memory. Loads that find no free slot are dropped (hints only). A load
 * that failed (a read error, a bad hash) is not handed out: the reader reads
 * that chunk itself and so reports the error the usual way.
 *
 * A backend that reads ahead itself (read_hints: rados, whose reads are
 * asynchronous) gets the hints instead, and rc_take takes its chunks
 * (chunk_take); the loader threads are not started then: a loader waiting
 * for the cluster only adds a copy and takes chunks out of order.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "chunk_i.h"

#define RC_THREADS 8
#define RC_BYTES (32u << 20) /* parked chunk buffers, at most */
#define RC_QUEUE 256
#define RC_MAX_AGE_NS 2000000000LL
#define RC_IDLE_BUFS 16 /* reply buffers kept for reuse (rc_buf_get) */

enum rc_state { RC_FREE = 0, RC_LOADING, RC_READY };

struct rc_slot {
	uint8_t h[CHUNK_HASH_LEN];
	uint32_t len;
	enum rc_state state;
	int err; /* of the load: 0 or -EBADMSG/-errno */
	bool verified;
	int64_t loaded_ns;
	uint8_t *buf;
};

struct rc_item {
	uint8_t h[CHUNK_HASH_LEN];
	uint32_t len;
	bool verify;
};

struct rcache {
	struct chunks *ck;
	pthread_mutex_t lock;
	pthread_cond_t work, loaded;
	struct rc_slot *slot;
	size_t nslot, cap;
	struct rc_item q[RC_QUEUE];
	size_t head, n;
	bool stop;
	pthread_t th[RC_THREADS];
	int nth;
	uint8_t *idle[RC_IDLE_BUFS]; /* recycled reply buffers (no page faults) */
	size_t nidle;
};

size_t rc_buf_size(const struct chunks *ck)
{
	return (ck->chunker.max + CHUNK_ALIGN - 1) / CHUNK_ALIGN * CHUNK_ALIGN;
}

uint8_t *rc_buf_alloc(const struct chunks *ck, size_t len, size_t *cap)
{
	size_t n = rc_buf_size(ck);
	void *b;

	if (len > n)
		n = (len + CHUNK_ALIGN - 1) / CHUNK_ALIGN * CHUNK_ALIGN;
	if (posix_memalign(&b, CHUNK_ALIGN, n))
		return NULL;
	if (cap)
		*cap = n;
	return b;
}

/* lock held */
static struct rc_slot *rc_find(struct rcache *rc, const uint8_t *h)
{
	for (size_t i = 0; i < rc->nslot; i++)
		if (rc->slot[i].state != RC_FREE && !memcmp(rc->slot[i].h, h, CHUNK_HASH_LEN))
			return &rc->slot[i];
	return NULL;
}

/* A slot for a new load: a free one, or one whose chunk waited too long.
 * lock held */
static struct rc_slot *rc_victim(struct rcache *rc, int64_t now)
{
	for (size_t i = 0; i < rc->nslot; i++) {
		struct rc_slot *sl = &rc->slot[i];

		if (sl->state == RC_FREE ||
		    (sl->state == RC_READY && now - sl->loaded_ns > RC_MAX_AGE_NS))
			return sl;
	}
	return NULL;
}

static void *rc_main(void *arg)
{
	struct rcache *rc = arg;
	struct chunks *ck = rc->ck;

	pthread_mutex_lock(&rc->lock);
	for (;;) {
		struct cref c = {0};
		struct rc_slot *sl;
		struct rc_item it;
		bool resident;
		int ret;

		while (!rc->n && !rc->stop)
			pthread_cond_wait(&rc->work, &rc->lock);
		if (rc->stop)
			break;
		it = rc->q[rc->head];
		rc->head = (rc->head + 1) % RC_QUEUE;
		rc->n--;
		if (rc_find(rc, it.h) || res_has(ck->res, it.h, it.len) ||
		    !(sl = rc_victim(rc, mono_ns())))
			continue; /* parked or loading already, or resident (the reply is
				   * sent from the tier); or no room: a hint dropped */
		memcpy(sl->h, it.h, CHUNK_HASH_LEN);
		sl->len = it.len;
		sl->state = RC_LOADING;
		pthread_mutex_unlock(&rc->lock);

		if (!sl->buf)
			sl->buf = rc_buf_alloc(ck, 0, NULL);
		memcpy(c.h, it.h, CHUNK_HASH_LEN);
		c.len = it.len;
		/* a chunk that became resident since (-o resident) is copied from
		 * memory, not read from disk and hashed again: the bytes were
		 * hashed when written */
		resident = sl->buf && c.len <= rc->cap && res_copy(ck->res, c.h, c.len, sl->buf);
		ret = resident	? 0
		      : sl->buf ? chunk_read_buf(ck, &c, sl->buf, rc->cap, it.verify)
				: -ENOMEM;

		pthread_mutex_lock(&rc->lock);
		sl->err = ret;
		sl->verified = (it.verify || resident) && ret == 0;
		sl->loaded_ns = mono_ns();
		sl->state = RC_READY;
		pthread_cond_broadcast(&rc->loaded);
	}
	pthread_mutex_unlock(&rc->lock);
	return NULL;
}

int rc_start(struct chunks *ck, struct rcache **out)
{
	struct rcache *rc = calloc(1, sizeof(*rc));

	if (!rc)
		return -ENOMEM;
	rc->ck = ck;
	rc->cap = rc_buf_size(ck);
	rc->nslot = RC_BYTES / rc->cap;
	if (rc->nslot < 4)
		rc->nslot = 4;
	rc->slot = calloc(rc->nslot, sizeof(*rc->slot));
	if (!rc->slot) {
		free(rc);
		return -ENOMEM;
	}
	pthread_mutex_init(&rc->lock, NULL);
	pthread_cond_init(&rc->work, NULL);
	pthread_cond_init(&rc->loaded, NULL);
	for (; rc->nth < RC_THREADS && !ck->be->read_hints; rc->nth++)
		if (pthread_create(&rc->th[rc->nth], NULL, rc_main, rc))
			break;
	*out = rc;
	return 0;
}

void rc_stop(struct rcache *rc)
{
	if (!rc)
		return;
	pthread_mutex_lock(&rc->lock);
	rc->stop = true;
	pthread_cond_broadcast(&rc->work);
	pthread_mutex_unlock(&rc->lock);
	for (int i = 0; i < rc->nth; i++)
		pthread_join(rc->th[i], NULL);
	for (size_t i = 0; i < rc->nslot; i++)
		free(rc->slot[i].buf);
	for (size_t i = 0; i < rc->nidle; i++)
		free(rc->idle[i]);
	free(rc->slot);
	pthread_mutex_destroy(&rc->lock);
	pthread_cond_destroy(&rc->work);
	pthread_cond_destroy(&rc->loaded);
	free(rc);
}

void rc_queue(struct rcache *rc, const struct cref *c, const bool *verify, size_t n)
{
	/* a backend that reads ahead itself (rados) has them in flight at
	 * once; the reader takes them from it (rc_take) */
	if (rc && rc->ck->be->read_hints) {
		for (size_t i = 0; i < n; i++)
			chunk_hint(rc->ck, &c[i]);
		return;
	}
	if (!rc || !rc->nth)
		return;
	pthread_mutex_lock(&rc->lock);
	for (size_t i = 0; i < n && rc->n < RC_QUEUE; i++) {
		struct rc_item *it = &rc->q[(rc->head + rc->n) % RC_QUEUE];

		if (c[i].len > rc->cap)
			continue; /* from a store opened with larger chunks: read in place */
		memcpy(it->h, c[i].h, CHUNK_HASH_LEN);
		it->len = c[i].len;
		it->verify = verify[i];
		rc->n++;
	}
	pthread_cond_broadcast(&rc->work);
	pthread_mutex_unlock(&rc->lock);
}

bool rc_take(struct rcache *rc, const struct cref *c, uint8_t **buf, size_t cap, bool *verified)
{
	struct rc_slot *sl;
	bool took = false;

	if (!rc || !*buf)
		return false;
	if (rc->ck->be->ops->chunk_take)
		return SB(rc->ck->be, chunk_take, c->h, c->len, buf, cap, verified);
	if (cap != rc->cap)
		return false;
	pthread_mutex_lock(&rc->lock);
	while ((sl = rc_find(rc, c->h)) && sl->state == RC_LOADING)
		pthread_cond_wait(&rc->loaded, &rc->lock);
	if (sl && sl->err == 0 && sl->len == c->len && mono_ns() - sl->loaded_ns <= RC_MAX_AGE_NS) {
		uint8_t *mine = *buf;

		*buf = sl->buf;
		sl->buf = mine;
		*verified = sl->verified;
		took = true;
	}
	if (sl)
		sl->state = RC_FREE; /* taken, failed or stale: free again */
	pthread_mutex_unlock(&rc->lock);
	return took;
}

uint8_t *rc_buf_get(struct rcache *rc)
{
	uint8_t *b = NULL;

	pthread_mutex_lock(&rc->lock);
	if (rc->nidle)
		b = rc->idle[--rc->nidle];
	pthread_mutex_unlock(&rc->lock);
	return b ? b : rc_buf_alloc(rc->ck, 0, NULL);
}

void rc_buf_put(struct rcache *rc, uint8_t *b)
{
	pthread_mutex_lock(&rc->lock);
	if (rc->nidle < RC_IDLE_BUFS) {
		rc->idle[rc->nidle++] = b;
		b = NULL;
	}
	pthread_mutex_unlock(&rc->lock);
	free(b);
}

size_t rc_cap(const struct rcache *rc)
{
	return rc ? rc->cap : 0;
}
