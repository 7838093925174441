/* SPDX-License-Identifier: MIT */
/*
 * rng.c - xoshiro256** seeded through splitmix64 (Blackman & Vigna,
 * https://prng.di.unimi.it/). Our own generator, not rand(), so that its
 * whole state is four integers we can save in trainer_state.json.
 */
#include "trainer_i.h"

static uint64_t splitmix64(uint64_t *x)
{
	uint64_t z = (*x += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

void rng_seed(struct rng *r, uint64_t seed)
{
	for (int i = 0; i < 4; i++)
		r->s[i] = splitmix64(&seed);
}

static uint64_t rotl(uint64_t x, int k)
{
	return (x << k) | (x >> (64 - k));
}

uint64_t rng_next(struct rng *r)
{
	uint64_t *s = r->s;
	uint64_t out = rotl(s[1] * 5, 7) * 9;
	uint64_t t = s[1] << 17;

	s[2] ^= s[0];
	s[3] ^= s[1];
	s[1] ^= s[2];
	s[0] ^= s[3];
	s[2] ^= t;
	s[3] = rotl(s[3], 45);
	return out;
}

float rng_sym(struct rng *r)
{
	/* 24 random bits -> exactly representable float in [-1, 1). */
	return (float)(int32_t)((rng_next(r) >> 40) - (1u << 23)) / (float)(1u << 23);
}
