/* SPDX-License-Identifier: MIT */
/*
 * util_i.h - the leaf of libckptstore: small helpers every layer may use and
 * that use nothing of the store themselves: error sentences and the log,
 * clocks, chunk hashes and their hex names, name rules, sorted name arrays.
 *
 * The store's layers (docs/store-format.md, "How the library is built"),
 * each including only the headers below it:
 *
 *   public API    store.c run.c version.c api.c maint.c verify.c
 *   versions      store_i.h: fdata.c node.c manifest.c registry.c retention.c
 *   chunks        chunk_i.h: chunker.c cindex.c chunk.c cwriter.c rcache.c
 *   backends      backend_i.h: backend.c, dir*.c (a directory)
 *   leaf          util_i.h io_i.h: util.c io.c
 */
#ifndef CKPTFS_UTIL_I_H
#define CKPTFS_UTIL_I_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ckptfs/store.h"

#define CHUNK_HASH_LEN 16
#define CHUNK_HEX_LEN 32
#define CHUNK_ALIGN 4096 /* O_DIRECT alignment of chunk buffers and lengths */

/* ---- errors and the log ---- */
/* Set this thread's error sentence (ckpt_store_strerror) and return `ret`. */
int store_err(struct ckpt_store *s, int ret, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* One line on stderr: "ckptfs-store[PID]: ...". */
void store_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* ---- clocks ---- */
int64_t now_ns(void);  /* CLOCK_REALTIME */
int64_t mono_ns(void); /* CLOCK_MONOTONIC */

/* ---- chunk hashes ---- */
void hash128(const void *p, size_t n, uint8_t *out); /* XXH3-128, canonical */
void chunk_hex(const uint8_t *h, char *out);	     /* out: 33 bytes */
int chunk_unhex(const char *hex, uint8_t *h);

/* ---- names ---- */
enum name_kind { NAME_COMP = 0, NAME_RUN, NAME_VERSION }; /* versions: not latest/best */
int name_check_kind(const char *name, int kind, const char **why);

/* ---- sorted arrays of named items ---- */
/* Binary search of `n` pointers at `items`, sorted by the name that
 * `name_of(&items[i])` returns: the index of `key`, or where it would be
 * inserted (*found says which). Runs, versions and directory entries are
 * all kept this way, so listings come out sorted and lookups are O(log n). */
size_t sorted_pos(const void *items, size_t n, const char *(*name_of)(const void *item),
		  const char *key, bool *found);
/* Insert pointer `item`, named `key`, into the sorted pointer array *arrp of
 * *n (room for *cap): 0, -EEXIST when the name is taken, or -ENOMEM. */
int sorted_insert(void *arrp, size_t *n, size_t *cap, const char *(*name_of)(const void *item),
		  const char *key, void *item);

#endif /* CKPTFS_UTIL_I_H */
