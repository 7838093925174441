/* SPDX-License-Identifier: MIT */
/*
 * chunk_i.h - the chunk layer, on top of a backend (backend_i.h): where to
 * cut a stream (chunker.c), the in-memory chunk index with each chunk's
 * state and reference count (cindex.c), storing chunks with dedup and
 * reading them back verified (chunk.c), the bounded pipeline of chunk
 * writes (cwriter.c) and read-ahead into parked buffers (rcache.c).
 *
 * Lock order: chunks->ilock (the index) > the writer's lock.
 */
#ifndef CKPTFS_CHUNK_I_H
#define CKPTFS_CHUNK_I_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "backend_i.h"
#include "ckptfs/hmap.h"
#include "util_i.h"

#define STORE_DEF_CHUNK (1u << 20) /* the default chunk size (average for cdc) */

/* ---- where to cut (chunker.c) ---- */
struct chunker {
	enum ckpt_chunking kind;
	size_t min, avg, max;
	uint64_t mask_s, mask_l; /* FastCDC normalized masks */
};
void chunker_init(struct chunker *c, enum ckpt_chunking kind, size_t avg);
/* Length of the next chunk in p[0..n) or 0 when more data is needed (n < max
 * and no boundary yet). `final` cuts what is there. *scan and *h carry the
 * rolling state between calls on a growing buffer; reset both to 0 after a cut. */
size_t chunker_next(const struct chunker *c, const uint8_t *p, size_t n, size_t *scan, uint64_t *h);

/* ---- the chunk index (cindex.c) ---- */
enum centry_state { CE_WRITING = 0, CE_WRITTEN, CE_DURABLE, CE_FAILED };
struct centry {
	uint8_t h[CHUNK_HASH_LEN];
	uint32_t len;
	uint8_t state;
	uint8_t verified;
	uint8_t bad; /* found corrupt: never dedup against it, rewrite it */
	int err;
	uint64_t refs; /* chunk lists (open or committed files) that name it */
};
struct cindex {
	struct ckpt_hmap m; /* of struct centry */
};
void cindex_init(struct cindex *ix);
struct centry *cindex_find(struct cindex *ix, const uint8_t *h);
/* A new entry (zeroed but for hash and length), or NULL without memory. */
struct centry *cindex_insert(struct cindex *ix, const uint8_t *h, uint32_t len);
void cindex_remove(struct cindex *ix, struct centry *e);
/* for (e = NULL; (e = cindex_next(ix, e));) with the index unchanged */
struct centry *cindex_next(struct cindex *ix, struct centry *prev);
void cindex_free(struct cindex *ix);

/* A chunk in a file: its hash, length and offset in the file. */
struct cref {
	uint8_t h[CHUNK_HASH_LEN];
	uint32_t len;
	uint64_t off;
};

/* ---- the chunk store ---- */
struct cwriter;
struct rcache;
struct resident;
struct chunks {
	struct sb *be;
	pthread_mutex_t ilock; /* the index and its entries */
	struct cindex ix;
	struct chunker chunker;
	enum ckpt_verify_mode verify;
	struct cwriter *cw;
	struct rcache *rc;
	struct resident *res; /* NULL: no resident tier */
};
int chunks_open(struct chunks *ck, struct sb *be, const struct ckpt_store_opts *opts);
/* Waits for every write in flight. */
void chunks_close(struct chunks *ck);

/*
 * Store chunk buf[0..len): hash it into h, reference it in the index (a
 * chunk it knows is a dedup hit), and write it unless it is there. The
 * buffer is owned (given to the writer, or recycled) unless `w` is set, in
 * which case it is borrowed from the caller, who must cw_wait_done(w)
 * before reusing it. Returns 0 with the reference taken (the caller lists
 * the chunk) and *werr the error of queueing the write (the entry is then
 * FAILED), or -errno with nothing referenced.
 */
struct cw_wait {
	int pending; /* under the writer's lock */
	int err;
};
int chunk_store(struct chunks *ck, uint8_t *buf, size_t len, struct cw_wait *w, uint8_t *h,
		int *werr);
/* A chunk named by a committed manifest: into the index as durable, one
 * more reference. */
int chunk_ref_durable(struct chunks *ck, const uint8_t *h, uint32_t len);
/* Drop one reference to each of c[0..n). */
void chunk_unref(struct chunks *ck, const struct cref *c, size_t n);
/* Outcome of the writes of c[*checked..n): advances *checked past those
 * done; the first failure's -errno, else 0. */
int chunk_write_errors(struct chunks *ck, const struct cref *c, size_t n, size_t *checked);

/* Read a chunk whole into buf (room for `cap` >= c->len bytes; page aligned
 * with room for the rounded-up length allows O_DIRECT), checked against its
 * hash if `verify`: 0, -EBADMSG (missing, short, longer or altered: callers
 * report -EIO) or -errno. */
int chunk_read_buf(struct chunks *ck, const struct cref *c, uint8_t *buf, size_t cap, bool verify);
int chunk_read(struct chunks *ck, const struct cref *c, uint8_t *buf, bool verify);
/* Whether a read of c from the backend must check its hash: always, unless
 * verify=off. */
bool chunk_needs_verify(struct chunks *ck, const struct cref *c);
/* chunk_read_buf checked per the verify mode; a chunk that fails is marked
 * bad (chunk_mark_bad). 0, -EBADMSG (bad: callers report -EIO and, in a
 * committed version, mark it corrupt) or -errno (the read itself failed:
 * an I/O error of the disk says nothing about the chunk). */
int chunk_load(struct chunks *ck, const struct cref *c, uint8_t *buf, size_t cap);
/* c was read and checked: verify=first need not check it again. */
void chunk_set_verified(struct chunks *ck, const uint8_t *h);
/* A chunk failed verification: the next write of its content rewrites it. */
void chunk_mark_bad(struct chunks *ck, const uint8_t *h);
/* Read and hash the stored chunk (ckpt_store_verify): 0, -EBADMSG or -errno;
 * a chunk that passes counts as verified. */
int chunk_check(struct chunks *ck, const struct cref *c);
/* Hint: c will be read soon. */
void chunk_hint(struct chunks *ck, const struct cref *c);

/* gc: remove every stored chunk that no chunk list references and that is
 * not being written. */
void chunks_gc(struct chunks *ck, uint64_t *removed, uint64_t *bytes);
/* Bytes of the distinct chunks referenced by some chunk list. */
uint64_t chunks_stored_bytes(struct chunks *ck);

/* ---- the writer's pipeline (cwriter.c) ---- */
int cw_start(struct chunks *ck, size_t budget, struct cwriter **out);
void cw_stop(struct cwriter *cw);
/* Write `buf` as chunk `h` (see chunk_store for `w`); blocks while the
 * in-flight budget is used up (backpressure). */
int cw_write(struct cwriter *cw, const uint8_t *h, uint8_t *buf, size_t len, struct cw_wait *w,
	     bool replace);
int cw_wait_done(struct cwriter *cw, struct cw_wait *w);
/* Wait until every write queued so far has completed. */
void cw_drain(struct cwriter *cw);
/* chunk-sized, page-aligned buffers (recycled) */
void *cw_buf_get(struct cwriter *cw);
void cw_buf_put(struct cwriter *cw, void *b);

/* ---- read-ahead into parked chunk buffers (rcache.c) ---- */
int rc_start(struct chunks *ck, struct rcache **out);
void rc_stop(struct rcache *rc);
/* Queue loads of the chunks c[0..n), each hash-checked if verify[i]. */
void rc_queue(struct rcache *rc, const struct cref *c, const bool *verify, size_t n);
/* Take chunk `c` if it is parked (waiting while it loads), or from the
 * backend's read-ahead (chunk_take): swaps *buf (of `cap` bytes, from
 * rc_buf_alloc) with the parked buffer. */
bool rc_take(struct rcache *rc, const struct cref *c, uint8_t **buf, size_t cap, bool *verified);
/* Page-aligned chunk buffers: room for the largest chunk rounded up to a
 * page, or for `len` bytes (rounded up) if that is more; *cap (if not NULL)
 * gets the size. */
size_t rc_buf_size(const struct chunks *ck);
uint8_t *rc_buf_alloc(const struct chunks *ck, size_t len, size_t *cap);
/* Buffers of rc_cap(rc) bytes for one reply each (recycled: a fresh buffer
 * costs page faults); NULL when out of memory. */
uint8_t *rc_buf_get(struct rcache *rc);
void rc_buf_put(struct rcache *rc, uint8_t *b);
size_t rc_cap(const struct rcache *rc);

/* ---- the resident tier (resident.c) ---- */
/* budget 0: *out = NULL (no tier; the calls below do nothing). Slots of
 * `slot` bytes (the largest chunk), budget / slot of them. */
int res_start(size_t budget, size_t slot, struct resident **out);
void res_stop(struct resident *r);
/* Keep a copy of chunk h (its bytes just hashed), evicting the oldest. */
void res_put(struct resident *r, const uint8_t *h, const uint8_t *buf, size_t len);
/* Copy chunk h of len bytes into buf if it is resident. */
bool res_copy(struct resident *r, const uint8_t *h, uint32_t len, uint8_t *buf);
/* Is chunk h of len bytes resident? */
bool res_has(struct resident *r, const uint8_t *h, uint32_t len);
/* The tier's own copy of chunk h, held (not evicted, its bytes unchanged)
 * until res_unpin: a reply is sent straight from it. NULL if not resident. */
const uint8_t *res_pin(struct resident *r, const uint8_t *h, uint32_t len);
void res_unpin(struct resident *r, const uint8_t *p);
void res_stats(struct resident *r, uint64_t *bytes, uint64_t *budget, uint64_t *hits);

#endif /* CKPTFS_CHUNK_I_H */
