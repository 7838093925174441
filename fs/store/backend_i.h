/* SPDX-License-Identifier: MIT */
/*
 * backend_i.h - the one seam for the store's durable I/O: where chunks,
 * manifests, open markers and run settings live. Two backends implement it:
 * `dir` (a directory on a local file system, dir*.c) and `rados` (a Ceph
 * RADOS pool, rados*.c). Everything above (chunk index, files, versions, the
 * public API, the FUSE layer, ckpt, ckptd) is the same for both.
 *
 * Conventions: every op returns 0 (or a count) or a negative errno; ops are
 * called from many threads at once and do their own locking. Documents
 * (manifests, markers, run settings) are opaque bytes to a backend, except
 * that a commit asks the caller to build its manifest once the sequence
 * number is known (see manifest_commit).
 */
#ifndef CKPTFS_BACKEND_I_H
#define CKPTFS_BACKEND_I_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "ckptfs/store.h"
#include "ckptfs/store_io.h"
#include "util_i.h"

struct statvfs;

/*
 * An asynchronous chunk write. The backend calls done(p, res) exactly once,
 * from any thread (possibly before chunk_put returns), when the chunk is
 * stored (res 0) or failed (res < 0); `buf` must stay valid until then.
 * "Stored" means readable by chunk_get; durability of stored chunks comes
 * with chunk_sync.
 */
struct sb_put {
	uint8_t h[CHUNK_HASH_LEN];
	const uint8_t *buf;
	size_t len;
	bool replace; /* the stored chunk was read corrupt: overwrite it, even
		       * where an existing one would count as stored (rados) */
	void (*done)(struct sb_put *p, int res);
};

/* One mount's part of an open version of a shared store (rados: an omap
 * entry of the run's head, docs/store-format.md "Open versions shared by
 * hosts"): the files that mount wrote and closed, durable, and its handles
 * open for writing. `mount` is the writing mount's id (16 hex). */
struct sb_part {
	char mount[24];
	const char *doc;
	size_t len;
};

/* Build the manifest for sequence number `seq` (malloc'd; *len its length),
 * or NULL with *err set (-ENOMEM, or the reason the commit cannot go on:
 * -EBUSY, -EEXIST). `parts` are every mount's part of the open version being
 * committed, read together with the sequence number (NULL, 0 for a backend
 * that is not shared): the commit publishes exactly them. */
typedef char *(*sb_build_fn)(void *arg, uint64_t seq, const struct sb_part *parts, size_t nparts,
			     size_t *len, int *err);
typedef int (*sb_part_fn)(void *arg, const struct sb_part *p);
/* Called for each item of a listing; a negative return stops it. */
typedef int (*sb_name_fn)(void *arg, const char *name);
typedef int (*sb_doc_fn)(void *arg, const char *name, const char *doc, size_t len);
typedef int (*sb_chunk_fn)(void *arg, const uint8_t *h);

struct sb;

struct sb_ops {
	void (*close)(struct sb *b);
	int (*statvfs)(struct sb *b, struct statvfs *st);

	/* ---- chunks, named by their XXH128 ---- */
	/* Queue a write (see struct sb_put). An error returned here means
	 * nothing was queued and done() will not be called. */
	int (*chunk_put)(struct sb *b, struct sb_put *p);
	/* Read chunk h, `len` bytes long, into buf (room for `cap` >= len
	 * bytes): the number of bytes the stored chunk has (may differ from
	 * len when it is damaged), -ENOENT when it is missing, or -errno. */
	ssize_t (*chunk_get)(struct sb *b, const uint8_t *h, uint32_t len, uint8_t *buf,
			     size_t cap);
	/* Stored size of chunk h (one metadata look-up), -ENOENT when missing. */
	int (*chunk_stat)(struct sb *b, const uint8_t *h, uint64_t *size);
	/* XXH128 of the stored bytes of chunk h, `len` long: 0, -EBADMSG when
	 * missing or short, -errno on a read error. */
	int (*chunk_hash)(struct sb *b, const uint8_t *h, uint32_t len, uint8_t *out);
	/* Every stored chunk, for gc (the callback may call chunk_remove). */
	int (*chunk_scan)(struct sb *b, sb_chunk_fn fn, void *arg);
	/* Remove chunk h; *bytes gets its size. */
	int (*chunk_remove)(struct sb *b, const uint8_t *h, uint64_t *bytes);
	/* Make every chunk stored so far durable. Never retried after an
	 * error: the commit fails. */
	int (*chunk_sync)(struct sb *b);
	/* Hint: chunk h will be read soon (may be NULL). */
	void (*chunk_hint)(struct sb *b, const uint8_t *h, uint32_t len);
	/* Chunk h, hinted before, from the backend's own read-ahead (may be
	 * NULL): into *buf (cap bytes, page aligned, malloc'd), by swapping
	 * buffers when the backend's is as large (the backend keeps the old
	 * one) or copying; *verified when its hash was checked. false when
	 * it is not there or its read failed: the caller reads it itself. */
	bool (*chunk_take)(struct sb *b, const uint8_t *h, uint32_t len, uint8_t **buf, size_t cap,
			   bool *verified);

	/* ---- runs ---- */
	int (*run_list)(struct sb *b, sb_name_fn fn, void *arg);
	int (*run_create)(struct sb *b, const char *run);
	int (*run_remove)(struct sb *b, const char *run);
	/* The run's settings document; -ENOENT when it has none. */
	int (*run_conf_get)(struct sb *b, const char *run, char **doc, size_t *len);
	int (*run_conf_put)(struct sb *b, const char *run, const char *doc, size_t len);

	/* ---- manifests of committed (corrupt, retired) versions ---- */
	int (*manifest_list)(struct sb *b, const char *run, sb_doc_fn fn, void *arg);
	/* Publish the manifest of a newly committed version `name`, durably
	 * and atomically, once every chunk it names is durable. `seq_hint` is
	 * the caller's next sequence number; the backend may raise it (to one
	 * above the highest the run has where other hosts commit too) and
	 * calls build() with the one the manifest will carry, returned in
	 * *seq. -EEXIST when the name is published already. `open` is the
	 * open version's name: a shared backend removes its marker and its
	 * parts in the same atomic step (and fails with -ENOENT when the
	 * marker is gone: committed or removed by another host). */
	int (*manifest_commit)(struct sb *b, const char *run, const char *name, const char *open,
			       uint64_t seq_hint, sb_build_fn build, void *arg, uint64_t *seq);
	/* Replace the manifest of a published version (state, pin, metadata). */
	int (*manifest_put)(struct sb *b, const char *run, const char *name, const char *doc,
			    size_t len);
	int (*manifest_remove)(struct sb *b, const char *run, const char *name);

	/* ---- markers of open versions ---- */
	int (*marker_list)(struct sb *b, const char *run, sb_doc_fn fn, void *arg);
	int (*marker_put)(struct sb *b, const char *run, const char *name, const char *doc,
			  size_t len);
	/* `sync`: durably (a deletion), else a hint (after a commit). */
	int (*marker_remove)(struct sb *b, const char *run, const char *name, bool sync);
	int (*marker_rename)(struct sb *b, const char *run, const char *from, const char *to);

	/* ---- open versions shared by hosts (NULL unless `shared`) ---- */
	/* Publish this mount's part of open version `name` (doc NULL: remove
	 * it), atomically with a check that its marker is still there:
	 * -ENOENT when it is gone (committed or removed elsewhere). */
	int (*part_put)(struct sb *b, const char *run, const char *name, const char *doc,
			size_t len);
	/* Every mount's part of open version `name` (this mount's too). */
	int (*part_list)(struct sb *b, const char *run, const char *name, sb_part_fn fn, void *arg);
	/* Is mount `id` alive (holds its lease)? */
	bool (*mount_alive)(struct sb *b, const char *id);
	/* Wait until no call of `changed` is running (may be NULL). */
	void (*quiesce)(struct sb *b);
};

/* What every backend exposes to the layers above. */
struct sb {
	const struct sb_ops *ops;
	char *where; /* for messages: the store's directory or its rados:// URL */
	/* Local files: staging files of non-sequential writes go in the
	 * directory `stagefd`, through the seam `io`. */
	const struct ckpt_io_ops *io;
	int stagefd;
	/* A chunk the index knows as durable may be referenced without asking
	 * the backend (one process owns the store). */
	bool local_dedup;
	/* Whole chunks may be written straight from a caller's buffer (the
	 * write completes quickly, e.g. into the page cache). */
	bool zero_copy;
	size_t inflight; /* bytes of chunk writes in flight, at most */
	/* The read-ahead of a handle reading in order passes its chunks to
	 * chunk_hint instead of loading them in threads of its own, and takes
	 * them with chunk_take (rados: asynchronous reads of them). */
	bool read_hints;
	/* Other processes (hosts) use the store at the same time: what is
	 * loaded in memory must be refreshed when they change it. */
	bool shared;
	/* Shared: how far the hosts' clocks may differ (ns): gc keeps chunks
	 * written or deduplicated against that long before the oldest open
	 * version, and before gc began. Without leases (mount_alive NULL) also
	 * the age at which another host's incomplete version is removed. */
	int64_t gc_grace_ns;
	/* Shared: set by gc before its chunk scan: chunk_remove keeps a chunk
	 * written or deduplicated against at or after this time (ns). */
	int64_t gc_keep_ns;
	/* Shared: this mount's id (16 hex), naming its parts and markers. */
	char mount_id[24];
	/* Set by the layer above: the backend calls it (from any thread, with
	 * no lock of the store held) when another host changed run `run`
	 * ("" the list of runs, NULL anything). */
	void (*changed)(void *arg, const char *run);
	void *changed_arg;
};

/* Call op `fn` of backend `b`. */
#define SB(b, fn, ...) ((b)->ops->fn((b), ##__VA_ARGS__))

/* Open the store named by `where` (a directory, or rados://...); on
 * failure, err gets the sentence for a person. */
int sb_open(const char *where, const struct ckpt_store_opts *opts, struct sb **out, char *err,
	    size_t errlen);
int rados_sb_open(const char *url, const struct ckpt_store_opts *opts, struct sb **out, char *err,
		  size_t errlen);
int dir_open(const char *dir, const struct ckpt_store_opts *opts, struct sb **out, char *err,
	     size_t errlen);

#endif /* CKPTFS_BACKEND_I_H */
