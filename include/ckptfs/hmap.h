/* SPDX-License-Identifier: MIT */
/*
 * hmap.h - the project's one hash table: open addressing with linear probing,
 * elements of a fixed size stored inline, found by a 64-bit hash the caller
 * computes plus a match function. The capacity is a power of two that doubles
 * when the table is half full, so every operation stays O(1) on average
 * whatever the number of elements; removal shifts later elements back (no
 * tombstones), so a table that churns does not slow down.
 *
 * Pointers to elements stay valid only until the next add or remove. Not
 * thread safe: callers hold their own lock.
 */
#ifndef CKPTFS_HMAP_H
#define CKPTFS_HMAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct ckpt_hmap {
	uint64_t *hashes; /* per slot; 0 = empty (stored hashes are never 0) */
	char *elems;	  /* cap elements of esize bytes */
	size_t esize, cap, n;
};

/* An empty table of elements of `esize` bytes (allocates nothing yet). */
void ckpt_hmap_init(struct ckpt_hmap *m, size_t esize);
void ckpt_hmap_free(struct ckpt_hmap *m);

/* The element with hash `h` that match(elem, key) accepts, or NULL. */
void *ckpt_hmap_find(const struct ckpt_hmap *m, uint64_t h,
		     bool (*match)(const void *elem, const void *key), const void *key);
/* Room for a new element with hash `h`, zeroed, for the caller to fill; NULL
 * when memory runs out. Keeping keys unique is the caller's business. */
void *ckpt_hmap_add(struct ckpt_hmap *m, uint64_t h);
/* Remove the element `elem` points at (from find, add or next). */
void ckpt_hmap_del(struct ckpt_hmap *m, void *elem);
/* Iterate: for (void *e = NULL; (e = ckpt_hmap_next(m, e));). The table must
 * not change during the walk. */
void *ckpt_hmap_next(const struct ckpt_hmap *m, void *prev);

/* Hashes for keys: bytes (XXH3-64), a NUL-terminated string, a 64-bit
 * integer (a bijective mixer, so sequential numbers spread). */
uint64_t ckpt_hash_bytes(const void *p, size_t n);
uint64_t ckpt_hash_str(const char *s);
uint64_t ckpt_hash_u64(uint64_t x);

#endif /* CKPTFS_HMAP_H */
