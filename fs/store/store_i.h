/* SPDX-License-Identifier: MIT */
/*
 * store_i.h - internals of libckptstore shared by its files. The on-disk
 * layout and the locking rules are described in docs/store-format.md.
 *
 * Lock order (never take an earlier one while holding a later one):
 *   store->lock  >  fdata->lock  >  store->ilock (chunk index)  >  uwriter->lock
 */
#ifndef CKPTFS_STORE_I_H
#define CKPTFS_STORE_I_H

#include <jansson.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>

#include "ckptfs/isotime.h"
#include "ckptfs/store.h"
#include "ckptfs/store_io.h"

#define CHUNK_HASH_LEN 16
#define CHUNK_HEX_LEN 32
#define STORE_DEF_CHUNK (1u << 20)
#define STORE_DEF_INFLIGHT (64u << 20)
/* O_DIRECT chunk writes by default: 1.5x a plain write+fsync on a quiet
 * machine, buffered ones 0.7x (docs/performance-store.md). */
#define STORE_DEF_DIRECT true
#define CHUNK_ALIGN 4096 /* O_DIRECT alignment of chunk buffers and lengths */

/* ---- errors ---- */
int store_err(struct ckpt_store *s, int ret, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
void store_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* ---- chunking (chunker.c) ---- */
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

/* ---- chunk index (chunk.c) ---- */
enum centry_state { CE_WRITING = 0, CE_WRITTEN, CE_DURABLE, CE_FAILED };
struct centry {
	uint8_t h[CHUNK_HASH_LEN];
	uint32_t len;
	uint8_t state;
	uint8_t verified;
	uint8_t bad;  /* found corrupt: never dedup against it, rewrite it */
	uint8_t used; /* slot in use */
	int err;
	uint64_t refs; /* chunk lists (open or committed files) that name it */
};
struct cindex {
	struct centry *slots;
	size_t cap, n;
};
struct centry *cindex_find(struct cindex *ix, const uint8_t *h);
struct centry *cindex_insert(struct cindex *ix, const uint8_t *h, uint32_t len);
void cindex_remove(struct cindex *ix, struct centry *e);
void cindex_free(struct cindex *ix);
void chunk_hex(const uint8_t *h, char *out); /* out: 33 bytes */
int chunk_unhex(const char *hex, uint8_t *h);
void chunk_relpath(const uint8_t *h, char *out); /* "ab/abcd...": 36 bytes */
void hash128(const void *p, size_t n, uint8_t *out);

/* ---- the io_uring writer (uwriter.c) ---- */
struct uwriter;
int uw_start(struct ckpt_store *s, size_t budget, struct uwriter **out);
void uw_stop(struct uwriter *uw);
/* Write `buf` as chunk `h`; blocks while the in-flight budget is used up
 * (backpressure). With `w` NULL the buffer's ownership passes to the writer;
 * otherwise it is borrowed and the caller must uw_wait_done(w) before
 * reusing it (the zero-copy path for whole chunks in a caller's buffer). */
struct uw_wait {
	int pending; /* under the writer's lock */
	int err;
};
int uw_write_chunk(struct uwriter *uw, const uint8_t *h, uint8_t *buf, size_t len,
		   struct uw_wait *w);
int uw_wait_done(struct uwriter *uw, struct uw_wait *w);
void uw_drain(struct uwriter *uw);
/* chunk-sized, page-aligned buffers (recycled) */
void *uw_buf_get(struct uwriter *uw);
void uw_buf_put(struct uwriter *uw, void *b);
size_t uw_peak(struct uwriter *uw);

/* ---- read-ahead across chunk files (prefetch.c) ---- */
struct prefetch;
struct cref;
int pf_start(struct ckpt_store *s, struct prefetch **out);
void pf_stop(struct prefetch *p);
void pf_queue(struct prefetch *p, const struct cref *c, size_t n);

/* ---- read-ahead into parked chunk buffers (rcache.c) ---- */
struct rcache;
int rc_start(struct ckpt_store *s, struct rcache **out);
void rc_stop(struct rcache *rc);
/* Queue loads of the chunks c[0..n), each hash-checked if verify[i]. */
void rc_queue(struct rcache *rc, const struct cref *c, const bool *verify, size_t n);
/* Take chunk `c` if it is parked (waiting while it loads): swaps *buf (of
 * `cap` bytes, from rc_buf_alloc) with the parked buffer. */
bool rc_take(struct rcache *rc, const struct cref *c, uint8_t **buf, size_t cap, bool *verified);
/* Page-aligned chunk buffers: room for the store's largest chunk rounded up
 * to a page, or for `len` bytes (rounded up) if that is more; *cap (if not
 * NULL) gets the size. */
size_t rc_buf_size(const struct ckpt_store *s);
uint8_t *rc_buf_alloc(const struct ckpt_store *s, size_t len, size_t *cap);

/* ---- file data (fdata.c) ---- */
struct cref {
	uint8_t h[CHUNK_HASH_LEN];
	uint32_t len;
	uint64_t off;
};
enum fmode { F_STREAM = 0, F_STAGED, F_FINAL };
struct fdata {
	pthread_mutex_t lock;
	int refs; /* nodes and handles */
	enum fmode mode;
	uint64_t size;
	struct cref *chunks;
	size_t nchunks, cap;
	uint8_t hash[CHUNK_HASH_LEN];
	bool has_hash;
	void *hs; /* XXH3_state_t while streaming */
	uint8_t *pend;
	size_t plen, scan;
	uint64_t roll;
	int stage_fd;
	char stage_name[40];
	int err;	/* sticky error from an asynchronous write */
	bool frozen;	/* its version is being committed: no changes */
	size_t checked; /* chunks already checked for async errors */
};
struct fdata *fdata_new(void);
void fdata_get(struct fdata *f);
void fdata_put(struct ckpt_store *s, struct fdata *f);
/* all with f->lock held */
int fdata_write(struct ckpt_store *s, struct fdata *f, const void *buf, size_t len, uint64_t off);
int fdata_truncate(struct ckpt_store *s, struct fdata *f, uint64_t size);
ssize_t fdata_read_open(struct ckpt_store *s, struct fdata *f, void *buf, size_t len, uint64_t off);
int fdata_finalize(struct ckpt_store *s, struct fdata *f);
int fdata_check_errors(struct ckpt_store *s, struct fdata *f);
int fdata_add_chunk(struct ckpt_store *s, struct fdata *f, const uint8_t *h, uint32_t len);
void fdata_drop_chunks(struct ckpt_store *s, struct fdata *f);
/* read a chunk whole, verifying per mode: 0 or -EIO/-errno */
int chunk_read(struct ckpt_store *s, const struct cref *c, uint8_t *buf, bool verify);
/* the same into a buffer with room for `cap` bytes: O_DIRECT where it can */
int chunk_read_buf(struct ckpt_store *s, const struct cref *c, uint8_t *buf, size_t cap,
		   bool verify);
/* a chunk failed verification: the next write of its content rewrites it */
void chunk_mark_bad(struct ckpt_store *s, const uint8_t *h);

/* ---- sorted arrays of named items (node.c) ---- */
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

/* ---- namespace (node.c) ---- */
struct node {
	char *name;
	enum ckpt_node_type type;
	uint32_t mode;
	int64_t mtime_ns;
	struct node *parent;
	struct node **kids;
	size_t nkids, kcap;
	struct fdata *f;
};
struct node *node_new(const char *name, enum ckpt_node_type type, uint32_t mode);
void node_free(struct ckpt_store *s, struct node *n);
struct node *node_child(struct node *d, const char *name);
int node_attach(struct node *d, struct node *n);
void node_detach(struct node *n);
/* Resolve "a/b/c" (validated); "" is the root. */
int node_lookup(struct ckpt_store *s, struct node *root, const char *path, struct node **out);
/* Parent directory and last component of `path`. */
int node_lookup_parent(struct ckpt_store *s, struct node *root, const char *path,
		       struct node **parent, const char **last);

/* ---- runs and versions ---- */
struct run;
struct version {
	char name[CKPT_NAME_MAX + 1];
	struct run *run;
	enum ckpt_vstate state;
	bool pinned;
	bool busy; /* a commit is in progress */
	bool dead; /* deleted; freed when refs drops to 0 */
	int refs;  /* the run's list + open handles */
	uint64_t seq, id;
	int64_t created_ns, committed_ns;
	struct node *root;
	json_t *meta;	/* object: key -> string */
	bool totals_ok; /* tot_* are valid (trees of non-open versions do not grow) */
	uint64_t tot_bytes, tot_files;
};
struct run {
	char name[CKPT_NAME_MAX + 1];
	struct version **v;
	size_t nv, cap;
	char metric[CKPT_NAME_MAX + 8];
	struct ckpt_retention ret;
	bool has_ret;
};

struct ckpt_store {
	pthread_mutex_t lock;
	pthread_mutex_t ilock;
	int dirfd, chunkfd, runsfd, stagefd, lockfd;
	char *dir;
	struct ckpt_store_opts opts;
	const struct ckpt_io_ops *io;
	struct chunker chunker;
	struct cindex ix;
	struct uwriter *uw;
	struct prefetch *pf;
	struct rcache *rc;
	struct run **runs;
	size_t nruns, rcap;
	uint64_t next_seq;
	uint64_t stage_ctr;
	bool no_direct; /* the backing file system refused O_DIRECT */
};

/* I/O through the seam */
#define IO(s, fn, ...) ((s)->io->fn((s)->io->ctx, __VA_ARGS__))
int io_write_all(struct ckpt_store *s, int fd, const void *buf, size_t len, off_t off);
ssize_t io_read_full(struct ckpt_store *s, int fd, void *buf, size_t len, off_t off);
/* tmp file + fsync + rename + dir fsync (the Redis rdbSave dance) */
int io_publish(struct ckpt_store *s, int dirfd, const char *name, const char *data, size_t len);

int name_check_kind(const char *name, int kind,
		    const char **why); /* kind: 0 comp, 1 run, 2 version */
struct run *run_find(struct ckpt_store *s, const char *name);
struct version *version_find(struct run *r, const char *name);
int version_lookup(struct ckpt_store *s, const char *run, const char *version,
		   struct version **out);		     /* store lock held */
void version_unref(struct ckpt_store *s, struct version *v); /* store lock held */
int run_add_version(struct run *r, struct version *v);
void run_del_version(struct run *r, struct version *v);
int run_persist(struct ckpt_store *s, struct run *r);
int run_load_all(struct ckpt_store *s);
void run_free(struct ckpt_store *s, struct run *r);
bool version_metric(const struct run *r, const struct version *v, double *out);

/* manifests (manifest.c) */
json_t *manifest_build(struct ckpt_store *s, struct version *v, bool with_chunks);
int manifest_write(struct ckpt_store *s, struct version *v, const char *name);
int manifest_load(struct ckpt_store *s, struct run *r, const char *name, json_t *doc,
		  struct version **out);
int64_t now_ns(void);
int version_mark_corrupt(struct ckpt_store *s, struct version *v); /* store lock held */
int retention_apply_run(struct ckpt_store *s, struct run *r, uint32_t max_age_override);
int version_remove_locked(struct ckpt_store *s, struct version *v);
void store_tree_bytes(struct node *n, uint64_t *bytes);

#endif /* CKPTFS_STORE_I_H */
