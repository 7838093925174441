// SPDX-License-Identifier: MIT
/* test_hmap.c - the open-addressing hash table against a plain array model:
 * random adds and removes with well-spread and with badly colliding hashes
 * (long probe runs that wrap around the end, where backward-shift deletion
 * has its corner cases), growth, iteration. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "ckptfs/hmap.h"

#define NKEYS 2000

struct el {
	uint64_t key;
	uint64_t val;
};

static bool match(const void *e, const void *key)
{
	return ((const struct el *)e)->key == *(const uint64_t *)key;
}

static uint64_t spread(uint64_t k)
{
	return ckpt_hash_u64(k);
}

static uint64_t collide(uint64_t k)
{
	/* 13 distinct hashes, all near the end of any table: runs wrap */
	return (uint64_t)-1 - k % 13;
}

static void check_model(struct ckpt_hmap *m, const bool *present, uint64_t (*hf)(uint64_t))
{
	size_t n = 0, seen = 0;

	for (uint64_t k = 0; k < NKEYS; k++) {
		struct el *e = ckpt_hmap_find(m, hf(k), match, &k);

		if (present[k]) {
			assert_non_null(e);
			assert_int_equal(e->val, k * 3 + 1);
			n++;
		} else {
			assert_null(e);
		}
	}
	assert_int_equal(m->n, n);
	for (struct el *e = NULL; (e = ckpt_hmap_next(m, e));) {
		assert_true(e->key < NKEYS && present[e->key]);
		seen++;
	}
	assert_int_equal(seen, n);
}

static void run_random(uint64_t (*hf)(uint64_t), unsigned seed, int rounds)
{
	struct ckpt_hmap m;
	bool *present = calloc(NKEYS, sizeof(*present));

	assert_non_null(present);
	srand(seed);
	ckpt_hmap_init(&m, sizeof(struct el));
	for (int r = 0; r < rounds; r++) {
		uint64_t k = (uint64_t)rand() % NKEYS;
		struct el *e = ckpt_hmap_find(&m, hf(k), match, &k);

		if (e) {
			assert_true(present[k]);
			ckpt_hmap_del(&m, e);
			present[k] = false;
		} else {
			assert_false(present[k]);
			e = ckpt_hmap_add(&m, hf(k));
			assert_non_null(e);
			e->key = k;
			e->val = k * 3 + 1;
			present[k] = true;
		}
		if (r % 4999 == 0)
			check_model(&m, present, hf);
	}
	check_model(&m, present, hf);
	/* half full at most: the table grew as it filled */
	assert_true(m.n * 2 <= m.cap);
	ckpt_hmap_free(&m);
	free(present);
}

static void test_random_spread(void **state)
{
	run_random(spread, 1, 30000);
	run_random(spread, 2, 30000);
}

static void test_random_collide(void **state)
{
	run_random(collide, 3, 10000);
}

static void test_hash0(void **state)
{
	struct ckpt_hmap m;
	uint64_t k = 7;
	struct el *e;

	/* a hash of 0 (the empty mark) still works */
	ckpt_hmap_init(&m, sizeof(struct el));
	assert_null(ckpt_hmap_find(&m, 0, match, &k));
	e = ckpt_hmap_add(&m, 0);
	e->key = 7;
	assert_ptr_equal(ckpt_hmap_find(&m, 0, match, &k), e);
	ckpt_hmap_del(&m, e);
	assert_null(ckpt_hmap_find(&m, 0, match, &k));
	assert_int_equal(m.n, 0);
	ckpt_hmap_free(&m);
}

static void test_hashes(void **state)
{
	assert_int_equal(ckpt_hash_str("abc"), ckpt_hash_bytes("abc", 3));
	assert_true(ckpt_hash_str("abc") != ckpt_hash_str("abd"));
	assert_true(ckpt_hash_u64(1) != ckpt_hash_u64(2));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_random_spread),
		cmocka_unit_test(test_random_collide),
		cmocka_unit_test(test_hash0),
		cmocka_unit_test(test_hashes),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
