// SPDX-License-Identifier: MIT
/*
 * chunker.c - where to cut a byte stream into chunks: fixed size, or
 * content-defined with a gear rolling hash and normalized chunking
 * (Xia et al., "FastCDC", USENIX ATC 2016). Content-defined cuts move with
 * the data, so an insertion that shifts the rest of a file only changes the
 * chunks around it; fixed cuts are cheaper. docs/store-format.md has the
 * measurements behind the default.
 */
#include <string.h>

#include "chunk_i.h"

/* 256 random 64-bit values (splitmix64 of the index), fixed forever: they
 * decide the cut points, so changing them would defeat dedup against old
 * chunks (not correctness). */
static uint64_t gear[256];
static pthread_once_t gear_once = PTHREAD_ONCE_INIT;

static void gear_init(void)
{
	uint64_t x = 0x9e3779b97f4a7c15ull;

	for (int i = 0; i < 256; i++) {
		uint64_t z = (x += 0x9e3779b97f4a7c15ull);

		z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
		z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
		gear[i] = z ^ (z >> 31);
	}
}

static unsigned log2u(size_t v)
{
	unsigned b = 0;

	while (v > 1) {
		v >>= 1;
		b++;
	}
	return b;
}

static uint64_t mask_bits(unsigned bits)
{
	/* the top bits of a gear hash depend on the last 64 bytes: use those */
	uint64_t m = 0;

	for (unsigned i = 0; i < bits && i < 64; i++)
		m |= 1ull << (63 - i);
	return m;
}

void chunker_init(struct chunker *c, enum ckpt_chunking kind, size_t avg)
{
	unsigned bits;

	pthread_once(&gear_once, gear_init);
	if (kind == CKPT_CHUNK_DEFAULT)
		kind = CKPT_CHUNK_FIXED;
	if (avg == 0)
		avg = STORE_DEF_CHUNK;
	c->kind = kind;
	c->avg = avg;
	if (kind == CKPT_CHUNK_FIXED) {
		c->min = c->max = avg;
		return;
	}
	c->min = avg / 4;
	c->max = avg * 4;
	bits = log2u(avg);
	c->mask_s = mask_bits(bits + 2); /* harder to match before avg */
	c->mask_l = mask_bits(bits - 2); /* easier after */
}

size_t chunker_next(const struct chunker *c, const uint8_t *p, size_t n, size_t *scan, uint64_t *h)
{
	size_t i = *scan, lim;
	uint64_t x = *h;

	if (c->kind == CKPT_CHUNK_FIXED)
		return n >= c->max ? c->max : 0;
	if (i < c->min)
		i = c->min; /* no cut before min: skip hashing there */
	lim = n < c->max ? n : c->max;
	for (; i < lim && i < c->avg; i++) {
		x = (x << 1) + gear[p[i]];
		if (!(x & c->mask_s))
			return i + 1;
	}
	for (; i < lim; i++) {
		x = (x << 1) + gear[p[i]];
		if (!(x & c->mask_l))
			return i + 1;
	}
	if (n >= c->max)
		return c->max;
	*scan = i;
	*h = x;
	return 0;
}
