// SPDX-License-Identifier: MIT
/*
 * hmap.c - open-addressing hash table (see include/ckptfs/hmap.h). Used by the
 * store's chunk index and verifier and by the FUSE daemon's inode table.
 *
 * Deletion is the backward shift of Knuth (TAOCP vol. 3, 6.4, Algorithm R):
 * after a slot empties, each following element of the probe run moves into
 * the hole unless its home slot lies cyclically in (hole, element], so
 * lookups never need tombstones.
 */
#include "ckptfs/hmap.h"

#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#define HMAP_MIN_CAP 16

static uint64_t stored(uint64_t h)
{
	return h ? h : 1; /* 0 marks an empty slot */
}

static void *elem_at(const struct ckpt_hmap *m, size_t i)
{
	return m->elems + i * m->esize;
}

void ckpt_hmap_init(struct ckpt_hmap *m, size_t esize)
{
	memset(m, 0, sizeof(*m));
	m->esize = esize;
}

void ckpt_hmap_free(struct ckpt_hmap *m)
{
	free(m->hashes);
	free(m->elems);
	m->hashes = NULL;
	m->elems = NULL;
	m->cap = m->n = 0;
}

void *ckpt_hmap_find(const struct ckpt_hmap *m, uint64_t h,
		     bool (*match)(const void *elem, const void *key), const void *key)
{
	size_t mask = m->cap - 1;

	if (!m->cap)
		return NULL;
	h = stored(h);
	for (size_t i = (size_t)h & mask;; i = (i + 1) & mask) {
		if (!m->hashes[i])
			return NULL;
		if (m->hashes[i] == h && match(elem_at(m, i), key))
			return elem_at(m, i);
	}
}

static size_t free_slot(const struct ckpt_hmap *m, uint64_t h)
{
	size_t mask = m->cap - 1, i = (size_t)h & mask;

	while (m->hashes[i])
		i = (i + 1) & mask;
	return i;
}

static int grow(struct ckpt_hmap *m)
{
	struct ckpt_hmap n = *m;

	n.cap = m->cap ? m->cap * 2 : HMAP_MIN_CAP;
	n.hashes = calloc(n.cap, sizeof(*n.hashes));
	n.elems = malloc(n.cap * m->esize);
	if (!n.hashes || !n.elems) {
		free(n.hashes);
		free(n.elems);
		return -1;
	}
	for (size_t i = 0; i < m->cap; i++) {
		size_t j;

		if (!m->hashes[i])
			continue;
		j = free_slot(&n, m->hashes[i]);
		n.hashes[j] = m->hashes[i];
		memcpy(elem_at(&n, j), elem_at(m, i), m->esize);
	}
	free(m->hashes);
	free(m->elems);
	*m = n;
	return 0;
}

void *ckpt_hmap_add(struct ckpt_hmap *m, uint64_t h)
{
	size_t i;

	if ((m->n + 1) * 2 > m->cap && grow(m) < 0)
		return NULL;
	h = stored(h);
	i = free_slot(m, h);
	m->hashes[i] = h;
	m->n++;
	memset(elem_at(m, i), 0, m->esize);
	return elem_at(m, i);
}

void ckpt_hmap_del(struct ckpt_hmap *m, void *elem)
{
	size_t mask = m->cap - 1;
	size_t i = (size_t)((char *)elem - m->elems) / m->esize, j = i;

	m->hashes[i] = 0;
	m->n--;
	for (;;) {
		size_t k;

		j = (j + 1) & mask;
		if (!m->hashes[j])
			return;
		k = (size_t)m->hashes[j] & mask;
		/* j stays when its home k lies cyclically in (i, j] */
		if (i <= j ? (i < k && k <= j) : (i < k || k <= j))
			continue;
		m->hashes[i] = m->hashes[j];
		memcpy(elem_at(m, i), elem_at(m, j), m->esize);
		m->hashes[j] = 0;
		i = j;
	}
}

void *ckpt_hmap_next(const struct ckpt_hmap *m, void *prev)
{
	size_t i = prev ? (size_t)((char *)prev - m->elems) / m->esize + 1 : 0;

	for (; i < m->cap; i++)
		if (m->hashes[i])
			return elem_at(m, i);
	return NULL;
}

uint64_t ckpt_hash_bytes(const void *p, size_t n)
{
	return XXH3_64bits(p, n);
}

uint64_t ckpt_hash_str(const char *s)
{
	return XXH3_64bits(s, strlen(s));
}

uint64_t ckpt_hash_u64(uint64_t x)
{
	/* splitmix64's finalizer (Steele, Lea, Flood, OOPSLA 2014) */
	x ^= x >> 30;
	x *= 0xbf58476d1ce4e5b9ull;
	x ^= x >> 27;
	x *= 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}
