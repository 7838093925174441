// SPDX-License-Identifier: MIT
/*
 * chunk.c - chunk names and the in-memory chunk index. A chunk is named by
 * the XXH128 of its bytes (canonical big-endian hex) and lives in
 * chunks/<first two hex digits>/<32 hex digits>. The index knows the chunks
 * this process may dedup against: those named by committed manifests
 * (durable) and those it wrote itself; a chunk file found on disk but not in
 * the index (left by a crash) is never trusted and gets rewritten.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "store_i.h"

void hash128(const void *p, size_t n, uint8_t *out)
{
	XXH128_hash_t h = XXH3_128bits(p, n);
	XXH128_canonical_t c;

	XXH128_canonicalFromHash(&c, h);
	memcpy(out, c.digest, CHUNK_HASH_LEN);
}

void chunk_hex(const uint8_t *h, char *out)
{
	static const char x[] = "0123456789abcdef";

	for (int i = 0; i < CHUNK_HASH_LEN; i++) {
		out[2 * i] = x[h[i] >> 4];
		out[2 * i + 1] = x[h[i] & 15];
	}
	out[CHUNK_HEX_LEN] = 0;
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

int chunk_unhex(const char *hex, uint8_t *h)
{
	if (strlen(hex) != CHUNK_HEX_LEN)
		return -EINVAL;
	for (int i = 0; i < CHUNK_HASH_LEN; i++) {
		int a = hexval(hex[2 * i]), b = hexval(hex[2 * i + 1]);

		if (a < 0 || b < 0)
			return -EINVAL;
		h[i] = (uint8_t)(a << 4 | b);
	}
	return 0;
}

void chunk_relpath(const uint8_t *h, char *out)
{
	chunk_hex(h, out + 3);
	out[0] = out[3];
	out[1] = out[4];
	out[2] = '/';
}

/* ---- open-addressing hash table keyed by the (already random) hash ---- */

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

/*
 * Read chunk `c` whole into buf (room for `cap` bytes). With `verify`, its
 * XXH128 is checked. A chunk that is missing, short, longer than named, or
 * whose bytes do not match its name is -EBADMSG (callers report -EIO), never
 * data. Where the store bypasses the page cache and `buf` allows it
 * (page-aligned, room for the length rounded up to a page), the read is
 * O_DIRECT: the disk fills `buf` itself, with no page-cache copy.
 */
int chunk_read_buf(struct ckpt_store *s, const struct cref *c, uint8_t *buf, size_t cap,
		   bool verify)
{
	size_t want = (c->len + CHUNK_ALIGN - 1) / CHUNK_ALIGN * CHUNK_ALIGN;
	bool direct = !s->no_direct && want <= cap && (uintptr_t)buf % CHUNK_ALIGN == 0;
	char rel[CHUNK_HEX_LEN + 4];
	uint8_t h[CHUNK_HASH_LEN];
	ssize_t n;
	int fd = -EINVAL;

	chunk_relpath(c->h, rel);
	if (direct)
		fd = IO(s, openat, s->chunkfd, rel, O_RDONLY | O_CLOEXEC | O_DIRECT, 0);
	if (fd == -EINVAL) { /* not asked for, or refused (e.g. tmpfs) */
		if (direct)
			s->no_direct = true; /* buffered from now on, as chunk_create does */
		direct = false;
		fd = IO(s, openat, s->chunkfd, rel, O_RDONLY | O_CLOEXEC, 0);
	}
	if (fd < 0)
		return fd == -ENOENT ? -EBADMSG : fd;
	/* one O_DIRECT read of the rounded-up length ends at the file's end */
	n = direct ? IO(s, pread, fd, buf, want, 0) : io_read_full(s, fd, buf, c->len, 0);
	IO(s, close, fd);
	if (n < 0)
		return (int)n;
	if ((size_t)n != c->len)
		return -EBADMSG;
	if (!verify)
		return 0;
	hash128(buf, c->len, h);
	return memcmp(h, c->h, CHUNK_HASH_LEN) ? -EBADMSG : 0;
}

int chunk_read(struct ckpt_store *s, const struct cref *c, uint8_t *buf, bool verify)
{
	return chunk_read_buf(s, c, buf, c->len, verify);
}

void chunk_mark_bad(struct ckpt_store *s, const uint8_t *h)
{
	struct centry *e;

	pthread_mutex_lock(&s->ilock);
	e = cindex_find(&s->ix, h);
	if (e) {
		e->bad = 1;
		e->verified = 0;
	}
	pthread_mutex_unlock(&s->ilock);
}
