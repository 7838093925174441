// SPDX-License-Identifier: MIT
/*
 * cindex.c - the in-memory chunk index, on the project's one hash table
 * (common/hmap.c) keyed by the chunk's hash (already random, so 64 of its
 * bits are the table's hash). It knows the chunks this process may dedup
 * against: those named by committed manifests (durable) and those it wrote
 * itself, with their state and the number of chunk lists that name them.
 * Callers hold chunks->ilock; an entry pointer is good until the next
 * insert or remove.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "chunk_i.h"

static uint64_t key_of(const uint8_t *h)
{
	uint64_t k;

	memcpy(&k, h + 8, sizeof(k));
	return k;
}

static bool match(const void *elem, const void *key)
{
	return !memcmp(((const struct centry *)elem)->h, key, CHUNK_HASH_LEN);
}

void cindex_init(struct cindex *ix)
{
	ckpt_hmap_init(&ix->m, sizeof(struct centry));
}

struct centry *cindex_find(struct cindex *ix, const uint8_t *h)
{
	return ckpt_hmap_find(&ix->m, key_of(h), match, h);
}

struct centry *cindex_insert(struct cindex *ix, const uint8_t *h, uint32_t len)
{
	struct centry *e = ckpt_hmap_add(&ix->m, key_of(h));

	if (!e)
		return NULL;
	memcpy(e->h, h, CHUNK_HASH_LEN);
	e->len = len;
	return e;
}

void cindex_remove(struct cindex *ix, struct centry *e)
{
	ckpt_hmap_del(&ix->m, e);
}

struct centry *cindex_next(struct cindex *ix, struct centry *prev)
{
	return ckpt_hmap_next(&ix->m, prev);
}

void cindex_free(struct cindex *ix)
{
	ckpt_hmap_free(&ix->m);
}
