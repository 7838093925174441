/* SPDX-License-Identifier: MIT */
/*
 * store_i.h - the versions layer of libckptstore, on top of the chunk
 * layer (chunk_i.h): the bytes of a file (fdata.c), the tree of a version
 * (node.c), a version as a manifest (manifest.c), and the store's runs and
 * versions in memory, loaded from and saved to the backend (registry.c,
 * retention.c). The public API (store.h) is built on this. The layout and
 * the locking rules are described in docs/store-format.md.
 *
 * Lock order (never take an earlier one while holding a later one):
 *   store->lock  >  fdata->lock  >  chunks->ilock (chunk index)  >  writer locks
 */
#ifndef CKPTFS_STORE_I_H
#define CKPTFS_STORE_I_H

#include <jansson.h>
#include <pthread.h>
#include <stdint.h>

#include "chunk_i.h"
#include "ckptfs/isotime.h"
#include "ckptfs/store.h"
#include "io_i.h"
#include "util_i.h"

#define STORE_DEF_INFLIGHT (64u << 20)

/* What stat(2) shows of a file, directory or symlink besides its size.
 * Times are CLOCK_REALTIME nanoseconds; atime changes only by utimensat
 * (reads do not update it, as with noatime). */
struct nattr {
	uint32_t mode; /* permission bits as set (committed: shown without write bits) */
	int64_t atime_ns, mtime_ns, ctime_ns;
};
void nattr_init(struct nattr *a, uint32_t mode);
/* The content or the entries changed: mtime and ctime are now. */
void nattr_touch(struct nattr *a);

/* ---- the bytes of a file (fdata.c) ---- */
enum fmode { F_STREAM = 0, F_STAGED, F_FINAL };
struct fdata {
	pthread_mutex_t lock;
	struct nattr a; /* the file's attributes (under lock): shared by its hard links */
	int refs;	/* nodes and handles */
	enum fmode mode;
	uint64_t size;
	struct cref *chunks;
	size_t nchunks, cap;
	uint8_t hash[CHUNK_HASH_LEN];
	bool has_hash;
	void *hs; /* XXH3_state_t while streaming */
	uint8_t *pend;
	bool parked; /* pend holds just its plen bytes (fdata_park), not a buffer */
	size_t plen, scan;
	uint64_t roll;
	int stage_fd;
	char stage_name[40];
	int err;	/* sticky error from an asynchronous write */
	bool frozen;	/* its version is being committed: no changes */
	size_t checked; /* chunks already checked for async errors */
	/* under the store lock: */
	uint32_t nlink;	 /* nodes (names) that hold it: hard links; 0 = unlinked */
	int holds;	 /* handles of it that hold the commit back (version.writers) */
	uint64_t mark;	 /* a walk that met it already (fdata_walk_gen) */
	uint32_t linkno; /* that walk's number for it (manifest "inode") */
	uint64_t id;	 /* st_ino of its names (ckpt_node_stat.file_id) */
	/* shared open versions (shared.c), under lock: */
	uint64_t wgen; /* changes with every write and truncate */
	bool pub;      /* closed, finalized and durable: listed in this mount's part */
};
/* A fresh mark for a walk of a tree that must meet each file once. */
uint64_t fdata_walk_gen(void);
struct fdata *fdata_new(void);
void fdata_get(struct fdata *f);
void fdata_put(struct ckpt_store *s, struct fdata *f);
/* all with f->lock held */
int fdata_write(struct ckpt_store *s, struct fdata *f, const void *buf, size_t len, uint64_t off);
int fdata_truncate(struct ckpt_store *s, struct fdata *f, uint64_t size);
ssize_t fdata_read_open(struct ckpt_store *s, struct fdata *f, void *buf, size_t len, uint64_t off);
int fdata_finalize(struct ckpt_store *s, struct fdata *f);
int fdata_check_errors(struct ckpt_store *s, struct fdata *f);
void fdata_park(struct ckpt_store *s, struct fdata *f);
int fdata_add_chunk(struct fdata *f, const uint8_t *h, uint32_t len);
void fdata_drop_chunks(struct ckpt_store *s, struct fdata *f);
/* After a commit: the file is a chunk list and a hash from now on. */
void fdata_seal(struct ckpt_store *s, struct fdata *f);

/* ---- the tree of a version (node.c) ---- */
struct node {
	char *name;
	enum ckpt_node_type type;
	struct nattr a; /* directories (under the store lock); files use f->a */
	struct node *parent;
	struct node **kids;
	size_t nkids, kcap;
	size_t ndirs;	 /* kids that are directories (st_nlink without a walk) */
	struct fdata *f; /* files (shared by hard links) */
	char *target;	 /* symlinks: the target (tlen bytes, NUL-terminated) */
	size_t tlen;
	uint8_t thash[CHUNK_HASH_LEN]; /* its XXH128 (as stored) */
	bool tbad;		       /* the target does not match thash: reads EIO */
	uint64_t owner; /* shared open versions: the mount that wrote it, 0 = this one */
};
struct node *node_new(const char *name, enum ckpt_node_type type, uint32_t mode);
/* A symlink node (mode 0777); NULL when out of memory. */
struct node *node_new_symlink(const char *name, const char *target, size_t len);
/* Another name of file `f` (a hard link). */
struct node *node_new_link(const char *name, struct fdata *f);
void node_free(struct ckpt_store *s, struct node *n);
/* A directory's entries changed. */
void node_touch(struct node *d);
struct node *node_child(struct node *d, const char *name);
int node_attach(struct node *d, struct node *n);
void node_detach(struct node *n);
/* Resolve "a/b/c" (validated); "" is the root. */
int node_lookup(struct node *root, const char *path, struct node **out);
/* Parent directory and last component of `path`. */
int node_lookup_parent(struct node *root, const char *path, struct node **parent,
		       const char **last);
void node_tree_bytes(struct node *n, uint64_t *bytes);
void node_tree_totals(struct node *n, uint64_t *bytes, uint64_t *files);

/* ---- runs and versions in memory ---- */
struct run;
struct version {
	char name[CKPT_NAME_MAX + 1];
	struct run *run;
	enum ckpt_vstate state;
	bool pinned;
	bool busy;	      /* a commit is in progress */
	bool manifest_hidden; /* ckpt_version_hide_manifest */
	bool dead;	      /* deleted; freed when refs drops to 0 */
	int refs;	      /* the run's list + open handles */
	uint64_t seq, id;
	int64_t created_ns, committed_ns;
	struct node *root;
	json_t *meta;	/* object: key -> string */
	bool totals_ok; /* tot_* are valid (trees of non-open versions do not grow) */
	uint64_t tot_bytes, tot_files;
	/* many writers (parts.c): handles open for writing that hold a commit
	 * back, and user.ckpt.writers (nparts, 0 = unset) with the parts done */
	int writers;
	uint32_t nparts, parts_done;
	uint8_t *parts; /* bitmap of nparts bits (shared: every mount's parts, merged) */
	/* an open version of a shared store that every mount writes into
	 * (shared.c): the other mounts' parts as last merged into the tree */
	bool shared;
	struct vpart *fp;
	size_t nfp;
	int pending_pub;  /* handles closed whose file is not yet in this mount's part */
	bool mine;	  /* made here, or this mount has a part in it */
	char creator[24]; /* shared: the mount that made it (its marker's "mount") */
};
/* Another mount's part of a shared open version, as merged. */
struct vpart {
	uint64_t mount;
	uint64_t dochash;
	uint32_t writers;   /* its handles open for writing */
	uint32_t conflicts; /* its paths that another mount wrote too */
	bool alive;
	char host[64];
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
	pthread_cond_t writers_cond; /* a version's writers count went down */
	struct ckpt_store_opts opts;
	const struct ckpt_io_ops *io; /* local files: staging */
	struct sb *be;		      /* where everything durable lives */
	struct chunks ck;
	struct run **runs;
	size_t nruns, rcap;
	uint64_t next_seq;
	uint64_t stage_ctr;
	struct refresher *rf; /* shared backends: what other hosts change (store.c) */
};

/* A name of file f leaves version v's tree (unlink, rename over it), store
 * lock held, before the node is freed: when it was the last name, its
 * handles stop holding the commit back (nothing of it is committed). */
void version_file_unnamed(struct ckpt_store *s, struct version *v, struct fdata *f);

/* ---- many writers (parts.c), store->lock held ---- */
/* -EBUSY (with the reason) while the version waits for parts of its
 * user.ckpt.writers. */
int version_parts_check(struct ckpt_store *s, struct version *v);
/* A handle of `v` that held its commit back is closed. */
void version_writer_done(struct ckpt_store *s, struct version *v);
/* How long a commit waits for handles still open for writing: FUSE sends
 * RELEASE after close(2) has returned, so a writer's own close may still
 * be on its way when its rename arrives. */
#define STORE_WRITERS_WAIT_MS 2000

/* ---- open versions shared by mounts (shared.c), store->lock held ---- */
/* Read every mount's part of v from the backend and merge them. */
int shared_refresh(struct ckpt_store *s, struct version *v);
/* Merge parts (from the backend) into v's tree: other mounts' files come
 * and go; `force` rebuilds them all (a commit: conflicts counted anew). */
void shared_merge(struct ckpt_store *s, struct version *v, const struct sb_part *parts, size_t n,
		  bool force);
/* Publish this mount's part of v (-ENOENT: the version is gone from the
 * backend: committed or removed by another mount). */
int shared_publish(struct ckpt_store *s, struct version *v);
/* Handles open for writing on live other mounts (their hosts in `who`). */
uint32_t shared_foreign_writers(struct version *v, char *who, size_t len);
/* Paths written by two mounts (a commit fails with EEXIST). */
uint32_t shared_conflicts(struct version *v);
/* A handle of f that wrote is closed (store lock NOT held): when it was the
 * last, f is finalized and made durable, then the part is published. */
int shared_file_closed(struct ckpt_store *s, struct version *v, struct fdata *f, bool last);
/* May node n be changed here (-EROFS when another mount wrote it)? */
int shared_node_writable(struct ckpt_store *s, struct version *v, struct node *n);
/* Does a live mount write into v (its maker or one with a part)? */
bool shared_version_alive(struct ckpt_store *s, struct version *v);
/* Is the open version `name` (marker doc) still written by a live mount? */
bool shared_marker_alive(struct ckpt_store *s, const char *run, const char *name, json_t *doc);

/* ---- manifests (manifest.c) ---- */
json_t *manifest_build(struct ckpt_store *s, struct version *v, bool with_chunks);
/* This mount's part of a shared open version: its own closed, durable
 * files and every directory, in manifest form. */
json_t *manifest_part_build(struct ckpt_store *s, struct version *v);
char *manifest_text(struct ckpt_store *s, struct version *v, size_t *len);
int manifest_load(struct ckpt_store *s, struct run *r, const char *name, json_t *doc,
		  struct version **out);

/* ---- the registry of runs and versions (registry.c); store lock held ---- */
struct run *run_find(struct ckpt_store *s, const char *name);
int run_add(struct ckpt_store *s, struct run *r);
void run_free(struct ckpt_store *s, struct run *r);
void run_unlink(struct ckpt_store *s, struct run *r);
/* Save the run's metric and retention. */
int run_persist(struct ckpt_store *s, struct run *r);
/* Load every run and version from the backend (at open). */
int run_load_all(struct ckpt_store *s);
/* Another host changed run `run` ("" the list of runs, NULL anything):
 * merge what the backend has now; note(arg, run, version) for each name
 * that changed (version NULL: the run's listing, latest, best). */
typedef void (*refresh_note_fn)(void *arg, const char *run, const char *version);
int run_refresh(struct ckpt_store *s, const char *run, refresh_note_fn note, void *arg);
/* Shared store: re-read run `run` now, store lock NOT held (a name another
 * host made a moment ago, before its notification arrived: `version`, or
 * NULL for the run itself). */
int store_refresh_now(struct ckpt_store *s, const char *run, const char *version);
struct version *version_find(struct run *r, const char *name);
int version_lookup(struct ckpt_store *s, const char *run, const char *version,
		   struct version **out);
struct version *version_new(struct run *r, const char *name, enum ckpt_vstate state);
void version_unref(struct ckpt_store *s, struct version *v);
int run_add_version(struct run *r, struct version *v);
void run_del_version(struct run *r, struct version *v);
/* Rewrite a published version's manifest after a change (nothing for
 * open and incomplete versions); on failure the caller restores. */
int version_persist(struct ckpt_store *s, struct version *v);
int version_mark_corrupt(struct ckpt_store *s, struct version *v);
/* Remove a version from the backend and the registry. */
int version_remove_locked(struct ckpt_store *s, struct version *v);
bool version_metric(const struct run *r, const struct version *v, double *out);
/* The newest COMMITTED version (by seq), or the best by the run's metric. */
struct version *version_pick(struct run *r, bool best);

/* ---- retention (retention.c); store lock held ---- */
int retention_apply_run(struct ckpt_store *s, struct run *r, uint32_t max_age_override);

#endif /* CKPTFS_STORE_I_H */
