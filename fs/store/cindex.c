// SPDX-License-Identifier: MIT
/*
 * cindex.c - the in-memory chunk index: an open-addressing hash table keyed
 * by the chunk's hash (already random, so its bits are the slot). It knows
 * the chunks this process may dedup against: those named by committed
 * manifests (durable) and those it wrote itself, with their state and the
 * number of chunk lists that name them. Callers hold chunks->ilock.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "chunk_i.h"

static size_t slot_of(const struct cindex *ix, const uint8_t *h)
{
	uint64_t k;

	memcpy(&k, h + 8, sizeof(k));
	return (size_t)k & (ix->cap - 1);
}

struct centry *cindex_find(struct cindex *ix, const uint8_t *h)
{
	if (!ix->cap)
		return NULL;
	for (size_t i = slot_of(ix, h);; i = (i + 1) & (ix->cap - 1)) {
		struct centry *e = &ix->slots[i];

		if (!e->used)
			return NULL;
		if (!memcmp(e->h, h, CHUNK_HASH_LEN))
			return e;
	}
}

static int cindex_grow(struct cindex *ix)
{
	struct cindex n = {.cap = ix->cap ? ix->cap * 2 : 1024};

	n.slots = calloc(n.cap, sizeof(*n.slots));
	if (!n.slots)
		return -ENOMEM;
	for (size_t i = 0; i < ix->cap; i++) {
		struct centry *e = &ix->slots[i];

		if (e->used) {
			size_t j = slot_of(&n, e->h);

			while (n.slots[j].used)
				j = (j + 1) & (n.cap - 1);
			n.slots[j] = *e;
			n.n++;
		}
	}
	free(ix->slots);
	*ix = n;
	return 0;
}

struct centry *cindex_insert(struct cindex *ix, const uint8_t *h, uint32_t len)
{
	size_t i;

	if ((ix->n + 1) * 2 > ix->cap && cindex_grow(ix) < 0)
		return NULL;
	i = slot_of(ix, h);
	while (ix->slots[i].used)
		i = (i + 1) & (ix->cap - 1);
	memset(&ix->slots[i], 0, sizeof(ix->slots[i]));
	memcpy(ix->slots[i].h, h, CHUNK_HASH_LEN);
	ix->slots[i].len = len;
	ix->slots[i].used = 1;
	ix->n++;
	return &ix->slots[i];
}

/* Backward-shift deletion keeps probe chains intact without tombstones. */
void cindex_remove(struct cindex *ix, struct centry *e)
{
	size_t i = (size_t)(e - ix->slots), j = i;

	ix->slots[i].used = 0;
	ix->n--;
	for (;;) {
		size_t k;

		j = (j + 1) & (ix->cap - 1);
		if (!ix->slots[j].used)
			return;
		k = slot_of(ix, ix->slots[j].h);
		/* move j into the hole at i when its home k is not in (i, j] */
		if ((j > i && (k <= i || k > j)) || (j < i && (k <= i && k > j))) {
			ix->slots[i] = ix->slots[j];
			ix->slots[j].used = 0;
			i = j;
		}
	}
}

void cindex_free(struct cindex *ix)
{
	free(ix->slots);
	memset(ix, 0, sizeof(*ix));
}
