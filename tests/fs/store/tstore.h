/* SPDX-License-Identifier: MIT */
/*
 * tstore.h - helpers shared by the store tests: temporary stores, writing a
 * file from a deterministic pattern, reading it back, and xxhsum -H2.
 */
#ifndef CKPT_TSTORE_H
#define CKPT_TSTORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ckptfs/store.h"

/* mkdtemp under $TMPDIR or /tmp; the caller removes it with ts_rmtree. */
char *ts_tmpdir(const char *tag);
void ts_rmtree(const char *dir);
/* Deterministic bytes: position `off` of stream `seed`. */
void ts_fill(uint64_t seed, uint64_t off, uint8_t *buf, size_t len);
/* Write `size` bytes of stream `seed` to RUN/VERSION/PATH with `wsize` writes. */
int ts_write_file(struct ckpt_store *s, const char *run, const char *ver, const char *path,
		  uint64_t seed, uint64_t size, size_t wsize);
/* Read it back and compare with the stream: 0 equal, -errno, or 1 when different. */
int ts_check_file(struct ckpt_store *s, const char *run, const char *ver, const char *path,
		  uint64_t seed, uint64_t size);
/* Read the whole file into a fresh local file (for xxhsum). */
int ts_export(struct ckpt_store *s, const char *run, const char *ver, const char *path,
	      const char *dest);
/* xxhsum -H2 of a local file, as 32 hex digits. */
int ts_xxhsum(const char *path, char *hex33);
void ts_hex(const uint8_t *h, char *hex33);
/* total bytes of files under dir/chunks */
uint64_t ts_chunk_bytes(const char *store);

#endif
