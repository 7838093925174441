// SPDX-License-Identifier: MIT
/*
 * resident.c - the resident tier (-o resident=SIZE): the bytes of the chunks
 * this process wrote most recently, kept in memory within a byte budget, so
 * that the newest checkpoint of each run can be read back (and pushed into
 * the kernel's page cache at commit, fs/fuse/fill.c) without the disk.
 *
 * Why these bytes need no new check: each was copied right after it was
 * hashed for its name (chunk_store), so it is what the hash says; a chunk
 * that rots on disk later is still served correctly from here. What is
 * read from the backing store is always checked (chunk_load).
 *
 * Eviction is oldest-stored first; storing a chunk again (a dedup hit)
 * makes it the newest. The budget is one arena of chunk-sized slots,
 * touched once in the background at start, so filling the tier costs the
 * writes a copy and no page faults, and RSS stays at the budget.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "chunk_i.h"
#include "ckptfs/hmap.h"

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif

struct rentry {
	uint8_t h[CHUNK_HASH_LEN];
	uint32_t len;
	uint32_t pins; /* replies sent from its slot now (res_pin): not evicted */
	uint8_t *buf;  /* its slot in the arena */
	struct rentry *older, *newer;
};

struct rslot {
	struct rentry *e;
};

struct resident {
	pthread_mutex_t lock;
	struct ckpt_hmap map; /* chunk hash -> entry */
	uint8_t *arena;	      /* nslot slots of `slot` bytes */
	size_t arena_len, slot, nslot;
	struct rentry *ent;		/* nslot entries */
	struct rentry *oldest, *newest; /* the ones in use, by age */
	struct rentry *free;		/* the unused ones (through newer) */
	pthread_t populate;
	bool populating;
	uint64_t hits;
};

static bool match(const void *elem, const void *key)
{
	return !memcmp(((const struct rslot *)elem)->e->h, key, CHUNK_HASH_LEN);
}

static uint64_t key_of(const uint8_t *h)
{
	uint64_t k;

	memcpy(&k, h, sizeof(k)); /* the chunk hash is already uniform */
	return k ? k : 1;
}

/*
 * Touch the arena once, in the background: a page touched for the first
 * time is a fault (and on a VM that hands free memory back to its host, a
 * slow one), which would otherwise land on the writes that fill the tier.
 */
static void *populate_main(void *arg)
{
	struct resident *r = arg;

	for (size_t off = 0; off < r->arena_len; off += 64u << 20) {
		size_t n = r->arena_len - off < (64u << 20) ? r->arena_len - off : (64u << 20);

		if (madvise(r->arena + off, n, MADV_POPULATE_WRITE) < 0)
			for (size_t p = 0; p < n; p += 4096)
				r->arena[off + p] = 0;
	}
	return NULL;
}

int res_start(size_t budget, size_t slot, struct resident **out)
{
	struct resident *r;

	*out = NULL;
	if (!budget)
		return 0;
	if (budget < slot)
		budget = slot;
	r = calloc(1, sizeof(*r));
	if (!r)
		return -ENOMEM;
	r->slot = slot;
	r->nslot = budget / slot;
	r->arena_len = r->nslot * slot;
	r->ent = calloc(r->nslot, sizeof(*r->ent));
	r->arena = mmap(NULL, r->arena_len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1,
			0);
	if (!r->ent || r->arena == MAP_FAILED) {
		if (r->arena != MAP_FAILED)
			munmap(r->arena, r->arena_len);
		free(r->ent);
		free(r);
		return -ENOMEM;
	}
	for (size_t i = 0; i < r->nslot; i++) {
		r->ent[i].buf = r->arena + i * slot;
		r->ent[i].newer = r->free;
		r->free = &r->ent[i];
	}
	pthread_mutex_init(&r->lock, NULL);
	ckpt_hmap_init(&r->map, sizeof(struct rslot));
	r->populating = pthread_create(&r->populate, NULL, populate_main, r) == 0;
	*out = r;
	return 0;
}

void res_stop(struct resident *r)
{
	if (!r)
		return;
	if (r->populating)
		pthread_join(r->populate, NULL);
	munmap(r->arena, r->arena_len);
	free(r->ent);
	ckpt_hmap_free(&r->map);
	pthread_mutex_destroy(&r->lock);
	free(r);
}

/* lock held */
static void unlink_entry(struct resident *r, struct rentry *e)
{
	if (e->older)
		e->older->newer = e->newer;
	else
		r->oldest = e->newer;
	if (e->newer)
		e->newer->older = e->older;
	else
		r->newest = e->older;
	e->older = e->newer = NULL;
}

/* lock held */
static void link_newest(struct resident *r, struct rentry *e)
{
	e->older = r->newest;
	e->newer = NULL;
	if (r->newest)
		r->newest->newer = e;
	else
		r->oldest = e;
	r->newest = e;
}

/* An entry to fill: a free one, else the oldest complete one, forgotten.
 * lock held */
static struct rentry *take_entry(struct resident *r)
{
	struct rentry *e = r->free;
	struct rslot *sl;

	if (e) {
		r->free = e->newer;
		e->newer = NULL;
		return e;
	}
	e = r->oldest;
	while (e && (!e->len || e->pins)) /* being copied into, or sent from */
		e = e->newer;
	if (!e)
		return NULL;
	sl = ckpt_hmap_find(&r->map, key_of(e->h), match, e->h);
	if (sl)
		ckpt_hmap_del(&r->map, sl);
	unlink_entry(r, e);
	return e;
}

void res_put(struct resident *r, const uint8_t *h, const uint8_t *buf, size_t len)
{
	struct rentry *e;
	struct rslot *sl;

	if (!r || len > r->slot)
		return;
	pthread_mutex_lock(&r->lock);
	sl = ckpt_hmap_find(&r->map, key_of(h), match, h);
	if (sl) { /* stored again: the newest now, no copy */
		unlink_entry(r, sl->e);
		link_newest(r, sl->e);
		pthread_mutex_unlock(&r->lock);
		return;
	}
	e = take_entry(r);
	if (!e) {
		pthread_mutex_unlock(&r->lock);
		return;
	}
	/* in the table before its bytes are: readers must not see it yet, so
	 * its len is 0 until the copy is done (res_copy matches len) */
	memcpy(e->h, h, CHUNK_HASH_LEN);
	e->len = 0;
	sl = ckpt_hmap_add(&r->map, key_of(h));
	if (!sl) {
		e->newer = r->free;
		r->free = e;
		pthread_mutex_unlock(&r->lock);
		return;
	}
	sl->e = e;
	link_newest(r, e);
	pthread_mutex_unlock(&r->lock);
	memcpy(e->buf, buf, len);
	pthread_mutex_lock(&r->lock);
	e->len = (uint32_t)len;
	pthread_mutex_unlock(&r->lock);
}

bool res_copy(struct resident *r, const uint8_t *h, uint32_t len, uint8_t *buf)
{
	struct rslot *sl;
	bool hit = false;

	if (!r)
		return false;
	pthread_mutex_lock(&r->lock);
	sl = ckpt_hmap_find(&r->map, key_of(h), match, h);
	if (sl && sl->e->len == len) {
		memcpy(buf, sl->e->buf, len);
		r->hits++;
		hit = true;
	}
	pthread_mutex_unlock(&r->lock);
	return hit;
}

bool res_has(struct resident *r, const uint8_t *h, uint32_t len)
{
	struct rslot *sl;
	bool hit;

	if (!r)
		return false;
	pthread_mutex_lock(&r->lock);
	sl = ckpt_hmap_find(&r->map, key_of(h), match, h);
	hit = sl && sl->e->len == len;
	pthread_mutex_unlock(&r->lock);
	return hit;
}

const uint8_t *res_pin(struct resident *r, const uint8_t *h, uint32_t len)
{
	const uint8_t *p = NULL;
	struct rslot *sl;

	if (!r)
		return NULL;
	pthread_mutex_lock(&r->lock);
	sl = ckpt_hmap_find(&r->map, key_of(h), match, h);
	if (sl && sl->e->len == len) {
		sl->e->pins++;
		r->hits++;
		p = sl->e->buf;
	}
	pthread_mutex_unlock(&r->lock);
	return p;
}

void res_unpin(struct resident *r, const uint8_t *p)
{
	struct rentry *e = &r->ent[(size_t)(p - r->arena) / r->slot];

	pthread_mutex_lock(&r->lock);
	e->pins--;
	pthread_mutex_unlock(&r->lock);
}

void res_stats(struct resident *r, uint64_t *bytes, uint64_t *budget, uint64_t *hits)
{
	*bytes = *budget = *hits = 0;
	if (!r)
		return;
	pthread_mutex_lock(&r->lock);
	for (struct rentry *e = r->oldest; e; e = e->newer)
		*bytes += e->len;
	*budget = r->arena_len;
	*hits = r->hits;
	pthread_mutex_unlock(&r->lock);
}
