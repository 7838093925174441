/* SPDX-License-Identifier: MIT */
/*
 * rdzv_key.h - the names of a gang's keys in etcd (rdzv.c: hosts/K, done/K,
 * ready/A/K, plan/A, gen under /ckpt/JOB/), read back from what any host
 * wrote. tests/fuzz/fuzz_etcd.c runs the parser on every key of a range.
 */
#ifndef RDZV_KEY_H
#define RDZV_KEY_H

#include <stdint.h>

enum rdzv_key_kind {
	RDZV_KEY_OTHER = 0, /* not one of the gang's: ignored */
	RDZV_KEY_GEN,
	RDZV_KEY_HOST,
	RDZV_KEY_DONE,
	RDZV_KEY_READY,
	RDZV_KEY_PLAN,
};

struct rdzv_key {
	int64_t attempt; /* ready/A/K, plan/A */
	int64_t node;	 /* hosts/K, done/K, ready/A/K */
};

/* k: the key with the gang's prefix taken off. Numbers are written as
 * rdzv.c writes them ("%lld" of a number >= 0: digits, no sign, no leading
 * zero, at most 18 digits); anything else is RDZV_KEY_OTHER. */
enum rdzv_key_kind rdzv_key_parse(const char *k, struct rdzv_key *out);

#endif /* RDZV_KEY_H */
