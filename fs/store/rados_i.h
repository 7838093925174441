/* SPDX-License-Identifier: MIT */
/*
 * rados_i.h - what the rados backend (rados.c) reads out of the bytes a
 * cluster gives it, as pure functions (rados_dec.c) with no librados in
 * them: rados.c calls them on what it reads, and tests/fuzz/fuzz_rados.c
 * calls the same functions on arbitrary bytes, without a cluster. Each
 * takes a length and does not rely on a terminating NUL (objects, xattrs,
 * omap keys and notify payloads have none).
 *
 * The documents a store keeps in RADOS (a run's settings, the manifests and
 * open markers in its head's omap) are opaque to the backend: the registry
 * (registry.c) parses them as it does the dir backend's files.
 */
#ifndef CKPTFS_RADOS_I_H
#define CKPTFS_RADOS_I_H

#include <stddef.h>
#include <stdint.h>

#include "util_i.h"

#define RADOS_ROOT "ckptfs.store"
#define RADOS_RUN "ckptfs.run."
#define RADOS_CHUNK "ckptfs.c."
#define RADOS_FORMAT_MAGIC "ckptfs-store format "

/* The store object's data, "ckptfs-store format N\n": 0 and *version N, or
 * -EPROTO when it names no store format. */
int rdec_format(const char *buf, size_t n, long *version);

/* A run head's "seq" xattr, the decimal the backend writes: 0, or -EBADMSG
 * when it is none (empty, not digits, or too large to be raised by one). */
int rdec_seq(const char *txt, size_t n, uint64_t *seq);

/* Omap key `key` (klen bytes) as PREFIX + NAME: 0 with the name in `name`
 * (CKPT_NAME_MAX + 1 bytes), or -EINVAL when it is not one (another prefix,
 * an empty or too long name, a NUL in it). Name rules are the caller's. */
int rdec_key(const char *key, size_t klen, const char *prefix, char *name);

/* A notify payload on the store object: the run that changed, "" for the
 * list of runs (in `run`, CKPT_NAME_MAX + 1 bytes), or NULL when it names
 * no run: then the receiver must assume anything changed. */
const char *rdec_notify(const void *data, size_t len, char *run);

/* A notify payload "RUN/VERSION" (the parts of an open version changed,
 * shared.c): 0 with the run in `run` and the version in `version` (each
 * CKPT_NAME_MAX + 1 bytes), or -EINVAL when it is not one. */
int rdec_part_notify(const void *data, size_t len, char *run, char *version);

/* The hash of chunk object `oid` (RADOS_CHUNK + 32 lowercase hex digits):
 * 0, or -EINVAL when oid is no chunk's name. */
int rdec_chunk_oid(const char *oid, uint8_t *h);

#endif /* CKPTFS_RADOS_I_H */
