/* SPDX-License-Identifier: MIT */
/*
 * store.h - the checkpoint store (SPEC §2-§3): a directory of content-
 * addressed chunks (named by XXH128), manifests per version, and runs.
 *
 * The ckptfs FUSE daemon and the ckpt CLI are thin layers over this API. It
 * speaks in names: a run ("RUN"), a version inside a run ("RUN/VERSION"), and
 * a path inside a version ("a/b/model.safetensors", no leading slash).
 *
 * Conventions (as liburing): functions return 0 or a count on success and a
 * negative errno on failure. Errors a person will read also get a sentence in
 * the store's last-error buffer (ckpt_store_strerror), saying what failed, on
 * what, and what to do. Every function is safe to call from many threads.
 *
 * Version states: OPEN (being written; files are read-write), COMMITTED
 * (durable, immutable), INCOMPLETE (was open when the store was last closed
 * or crashed), CORRUPT (a committed version that failed verification).
 */
#ifndef CKPTFS_STORE_H
#define CKPTFS_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The on-disk format this library reads and writes (the FORMAT file). */
#define CKPT_STORE_FORMAT 1

/* Names of runs, versions and path components: 1..255 bytes, valid UTF-8,
 * no '/', no control characters, not "." or "..". Runs and versions also not
 * starting with ".ckpt" nor ".manifest" or ".stats", versions not "latest" or
 * "best"; inside a version only ".manifest" at its root is reserved (see
 * ckpt_name_check). */
#define CKPT_NAME_MAX 255

struct ckpt_store;
struct ckpt_file;
struct ckpt_io_ops;

enum ckpt_verify_mode {
	/* Both check every chunk read from the backing store; they differ only
	 * in what the FUSE layer lets the kernel cache (docs/mount.md). */
	CKPT_VERIFY_FIRST = 0, /* the default */
	CKPT_VERIFY_ALWAYS,
	CKPT_VERIFY_OFF, /* never check on read (ckpt_store_verify still checks) */
};

enum ckpt_chunking {
	CKPT_CHUNK_DEFAULT = 0, /* what the benchmarks chose; see docs/store-format.md */
	CKPT_CHUNK_FIXED,
	CKPT_CHUNK_CDC,
};

/* Retention of a run. 0 means "no limit" for each field. */
struct ckpt_retention {
	uint32_t keep_last;
	uint32_t keep_best;
	uint32_t max_age_days;
};

struct ckpt_store_opts {
	enum ckpt_verify_mode verify;
	enum ckpt_chunking chunking;
	size_t chunk_size;		 /* target/average chunk size; 0 = default */
	size_t inflight_bytes;		 /* io_uring write budget; 0 = default (64 MiB) */
	bool create;			 /* create the layout when the directory is empty */
	struct ckpt_retention retention; /* defaults for runs that set none */
	const struct ckpt_io_ops *io;	 /* NULL = the real system calls */
	/* Added after the first pin: O_DIRECT for whole-page chunk writes
	 * (docs/performance-store.md has the measurements behind the default). */
	enum ckpt_direct_io {
		CKPT_DIRECT_DEFAULT = 0,
		CKPT_DIRECT_ON,
		CKPT_DIRECT_OFF,
	} direct_io;
	/* How long to wait for another process's lock on the store before
	 * -EBUSY: a mount started right after `umount` finds the old daemon
	 * still closing the store. 0 = fail at once. */
	unsigned lock_wait_ms;
	/* A store shared with other hosts (rados://): called from the store's
	 * own thread, with no lock held, after it loaded what another host
	 * changed: version `version` of run `run` appeared, changed state or
	 * went away; version NULL: the run's listing, latest and best; run ""
	 * the list of runs. NULL: not told. */
	void (*changed)(void *arg, const char *run, const char *version);
	void *changed_arg;
	/* Added with the resident tier: bytes of the most recently stored
	 * chunks kept in memory (read back without the disk); 0 = none. */
	size_t resident_bytes;
};

enum ckpt_vstate {
	CKPT_V_OPEN = 0,
	CKPT_V_COMMITTED,
	CKPT_V_INCOMPLETE,
	CKPT_V_CORRUPT,
	CKPT_V_RETIRED, /* committed, then deleted piecewise: hidden from latest/best,
			 * never resumable; its files vanish one by one (rm -r) */
};

const char *ckpt_vstate_name(enum ckpt_vstate s); /* "open", "committed", ... */

struct ckpt_version_info {
	char name[CKPT_NAME_MAX + 1];
	enum ckpt_vstate state;
	bool pinned;
	uint64_t seq;		/* commit sequence in the store, 0 while not committed */
	int64_t created_ns;	/* CLOCK_REALTIME */
	int64_t committed_ns;	/* 0 while not committed */
	uint64_t logical_bytes; /* sum of file sizes */
	uint64_t nfiles;
	bool has_metric; /* the run's metric is set in this version's metadata */
	double metric;
	bool manifest_hidden; /* open, and its .manifest was unlinked */
};

/* ---- the store -------------------------------------------------------- */

/* Open (and with opts->create, create) the store in `dir`. A store of another
 * format version is refused with -EPROTO and a message naming both. Open
 * versions left by a crash become INCOMPLETE. */
int ckpt_store_open(const char *dir, const struct ckpt_store_opts *opts, struct ckpt_store **out);
/* Like open, but on failure writes the reason into err (for the caller to
 * print; the store does not exist yet to hold it). */
int ckpt_store_open_err(const char *dir, const struct ckpt_store_opts *opts,
			struct ckpt_store **out, char *err, size_t errlen);
void ckpt_store_close(struct ckpt_store *s);

/* The sentence describing the last error this thread got from `s`. */
const char *ckpt_store_strerror(struct ckpt_store *s);
/* Where the store's log lines go (each one line, without its newline):
 * stderr as "ckptfs-store[PID]: LINE" until a program sets its own (the
 * daemon, whose stderr is gone in the background); NULL restores that. */
void ckpt_store_set_log(void (*fn)(const char *line));

/* 0 if `name` is a valid name of a path component inside a version, else
 * -EINVAL or -ENAMETOOLONG; *why (if not NULL) gets a reason. */
int ckpt_name_check(const char *name, const char **why);

/* ---- runs ------------------------------------------------------------- */

int ckpt_run_create(struct ckpt_store *s, const char *run);
int ckpt_run_remove(struct ckpt_store *s, const char *run); /* -ENOTEMPTY with versions */
int ckpt_run_exists(struct ckpt_store *s, const char *run); /* 1, 0 or -errno */
/* Names in a stable (sorted) order; free with ckpt_strv_free. */
int ckpt_run_list(struct ckpt_store *s, char ***names, size_t *n);
void ckpt_strv_free(char **v, size_t n);

int ckpt_run_get_retention(struct ckpt_store *s, const char *run, struct ckpt_retention *r);
int ckpt_run_set_retention(struct ckpt_store *s, const char *run, const struct ckpt_retention *r);
/* The run's metric for `best`, "KEY:min" or "KEY:max"; "" to clear. */
int ckpt_run_get_metric(struct ckpt_store *s, const char *run, char *buf, size_t len);
int ckpt_run_set_metric(struct ckpt_store *s, const char *run, const char *metric);

/* ---- versions --------------------------------------------------------- */

/* Versions of a run in a stable order (by name); free with free(). */
int ckpt_version_list(struct ckpt_store *s, const char *run, struct ckpt_version_info **v,
		      size_t *n);
int ckpt_version_info(struct ckpt_store *s, const char *run, const char *version,
		      struct ckpt_version_info *info);
/* The same without logical_bytes and nfiles (left 0), which cost a walk of
 * an open version's tree: for callers that ask on every file operation. */
int ckpt_version_state(struct ckpt_store *s, const char *run, const char *version,
		       struct ckpt_version_info *info);
/* Create an OPEN version. -EEXIST when the name is taken. */
int ckpt_version_create(struct ckpt_store *s, const char *run, const char *version);
/*
 * Commit an OPEN version, all or nothing: data durable, manifest written to a
 * temporary name, fsynced, renamed, directory fsynced. With `new_name` not
 * NULL the version is published under that name (rename(2) commit); the old
 * name disappears at the same moment. A file of the version still open for
 * writing (a handle that holds the commit, see ckpt_file_unhold) is waited
 * for up to 2 s, then the commit fails with -EBUSY: a file being written is
 * never published. A version with user.ckpt.writers set and parts missing
 * (ckpt_version_commit_part) gives -EBUSY too. On failure (-EIO, -ENOSPC,
 * -EBUSY, ...) the version stays OPEN and nothing committed changes.
 * Retention runs after the commit is durable.
 */
int ckpt_version_commit(struct ckpt_store *s, const char *run, const char *version,
			const char *new_name);
/*
 * A version written by many processes (ranks, docs/mount.md "Many
 * writers"): set_writers(n) says it is whole once each of its n writers has
 * committed its part; n = 0 clears it (and the parts done). Setting the same
 * n again is no change; another n once parts are done is -EBUSY.
 * commit_part(k) records that writer k (0 <= k < n) is done, once however
 * often it is called; the part that completes the set commits the version
 * (ckpt_version_commit, *committed = true), and calling it again retries a
 * commit that failed. writers() reads n, the parts done and (parts, len) the
 * list of them ("0, 2, 3").
 */
#define CKPT_WRITERS_MAX 65536
int ckpt_version_set_writers(struct ckpt_store *s, const char *run, const char *version,
			     uint32_t n);
int ckpt_version_commit_part(struct ckpt_store *s, const char *run, const char *version,
			     uint32_t part, bool *committed);
int ckpt_version_writers(struct ckpt_store *s, const char *run, const char *version, uint32_t *n,
			 uint32_t *done, char *parts, size_t len);
/* Delete a version whole (any state). -EBUSY when pinned. */
int ckpt_version_delete(struct ckpt_store *s, const char *run, const char *version);
/*
 * Retire a committed (or corrupt) version: it leaves latest/best at once and
 * can never be resumed from; durable. Afterwards ckpt_node_unlink/rmdir on its
 * paths succeed and hide them, so `rm -r RUN/VERSION` works file by file, and
 * ckpt_version_delete removes it whole. The FUSE layer retires a version on the
 * first unlink inside it (SPEC §2).
 */
int ckpt_version_retire(struct ckpt_store *s, const char *run, const char *version);
/* Rename an OPEN version without committing (-EROFS for committed ones). */
int ckpt_version_rename(struct ckpt_store *s, const char *run, const char *version,
			const char *new_name);
int ckpt_version_pin(struct ckpt_store *s, const char *run, const char *version, bool pin);
/* An open version's .manifest was unlinked (rm -r, rsync --delete, tar -x
 * replacing it): the mount stops showing it until the version is committed
 * (info.manifest_hidden), so a tool that removes it and creates it again
 * gets an error instead of finding it there forever. No effect on versions
 * that are not open; not kept across a restart (open versions are
 * incomplete then). */
int ckpt_version_hide_manifest(struct ckpt_store *s, const char *run, const char *version);
/* The newest COMMITTED version by commit order, and the best by the run's
 * metric. -ENOENT when there is none. */
int ckpt_version_latest(struct ckpt_store *s, const char *run, char *buf, size_t len);
int ckpt_version_best(struct ckpt_store *s, const char *run, char *buf, size_t len);

/* Metadata "meta.<key>" of a version (open or committed). Values are UTF-8
 * text. get returns the value length, or -ENODATA. */
int ckpt_meta_set(struct ckpt_store *s, const char *run, const char *version, const char *key,
		  const char *value, size_t len);
int ckpt_meta_get(struct ckpt_store *s, const char *run, const char *version, const char *key,
		  char *buf, size_t len);
int ckpt_meta_remove(struct ckpt_store *s, const char *run, const char *version, const char *key);
/* Keys (without the "meta." prefix), sorted; free with ckpt_strv_free. */
int ckpt_meta_list(struct ckpt_store *s, const char *run, const char *version, char ***keys,
		   size_t *n);

/* The .manifest document of a version (JSON, malloc'd, NUL-terminated). */
int ckpt_version_manifest_json(struct ckpt_store *s, const char *run, const char *version,
			       char **json, size_t *len);

/* ---- paths inside a version ------------------------------------------- */

enum ckpt_node_type { CKPT_NODE_FILE = 1, CKPT_NODE_DIR = 2, CKPT_NODE_SYMLINK = 3 };

/* The longest symlink target (bytes; as PATH_MAX without its NUL). */
#define CKPT_SYMLINK_MAX 4095

struct ckpt_node_stat {
	enum ckpt_node_type type;
	uint64_t size; /* symlinks: the length of the target */
	uint32_t mode; /* permission bits (07777); without write bits once committed */
	int64_t atime_ns, mtime_ns, ctime_ns; /* CLOCK_REALTIME */
	uint64_t nsubdirs; /* directories: how many of their entries are directories */
	/* committed files carry their whole-file XXH128, symlinks (open or
	 * committed) the XXH128 of their target */
	bool has_hash;
	uint8_t xxh128[16]; /* canonical (big-endian) form, as xxhsum -H2 prints */
	/* Added with hard links: files: how many names the file has in its
	 * version (0 once unlinked, seen through a handle); file_id tells the
	 * names of one file apart from other files (unique in the store while
	 * it is open, not kept across opens). */
	uint32_t nlink;
	uint64_t file_id;
};

/* `path` is relative to the version ("" is the version's root directory). */
int ckpt_node_stat(struct ckpt_store *s, const char *run, const char *version, const char *path,
		   struct ckpt_node_stat *st);
/* Children of a directory in stable order; free with ckpt_strv_free. */
int ckpt_node_list(struct ckpt_store *s, const char *run, const char *version, const char *path,
		   char ***names, size_t *n);
/* In OPEN versions only (-EROFS otherwise); unlink and rmdir also in RETIRED
 * versions (see ckpt_version_retire). */
int ckpt_node_mkdir(struct ckpt_store *s, const char *run, const char *version, const char *path,
		    uint32_t mode);
int ckpt_node_rmdir(struct ckpt_store *s, const char *run, const char *version, const char *path);
int ckpt_node_unlink(struct ckpt_store *s, const char *run, const char *version, const char *path);
/* A symlink holding `target` (len bytes, 1..CKPT_SYMLINK_MAX, any bytes but
 * NUL: the text is never interpreted), and its target: the length, copied
 * into buf up to len bytes (no NUL added). A target that does not match its
 * stored XXH128 (a damaged manifest) reads as -EIO. */
int ckpt_node_symlink(struct ckpt_store *s, const char *run, const char *version, const char *path,
		      const char *target, size_t len);
ssize_t ckpt_node_readlink(struct ckpt_store *s, const char *run, const char *version,
			   const char *path, char *buf, size_t len);
/* A hard link: `to` becomes another name of the file `from` in the same
 * (open) version, sharing its content and attributes. Directories and
 * symlinks: -EPERM. */
int ckpt_node_link(struct ckpt_store *s, const char *run, const char *version, const char *from,
		   const char *to);
/* Rename within one version; replaces an existing file (like rename(2)). */
int ckpt_node_rename(struct ckpt_store *s, const char *run, const char *version, const char *from,
		     const char *to);
int ckpt_node_truncate(struct ckpt_store *s, const char *run, const char *version, const char *path,
		       uint64_t size);
/* Attributes to change (ckpt_node_setattr, ckpt_file_setattr). Every change
 * sets ctime; a size change also mtime, as truncate(2). */
#define CKPT_SET_MODE 0x01
#define CKPT_SET_ATIME 0x02
#define CKPT_SET_MTIME 0x04
#define CKPT_SET_SIZE 0x08
#define CKPT_SET_KILL_PRIV 0x10 /* clear S_ISUID, and S_ISGID with group x (a non-owner wrote) */
#define CKPT_TIME_NOW INT64_MIN /* atime_ns/mtime_ns: the current time */
struct ckpt_setattr {
	unsigned what;
	uint32_t mode;
	int64_t atime_ns, mtime_ns;
	uint64_t size;
};
int ckpt_node_setattr(struct ckpt_store *s, const char *run, const char *version, const char *path,
		      const struct ckpt_setattr *a);
int ckpt_node_chmod(struct ckpt_store *s, const char *run, const char *version, const char *path,
		    uint32_t mode);
int ckpt_node_utimens(struct ckpt_store *s, const char *run, const char *version, const char *path,
		      int64_t mtime_ns);

/* ---- file handles ----------------------------------------------------- */

/*
 * Open a file in a version. flags: O_RDONLY, O_WRONLY, O_RDWR, with O_CREAT,
 * O_EXCL, O_TRUNC, O_APPEND as open(2). Writing is allowed in OPEN versions
 * only (-EROFS otherwise). Sequential writes stream into chunks; a write at
 * another offset makes the file fall back to a staging file that is chunked
 * at commit.
 */
int ckpt_file_open(struct ckpt_store *s, const char *run, const char *version, const char *path,
		   int flags, uint32_t mode, struct ckpt_file **out);
/* A handle open for writing holds its version's commit back until it is
 * closed (ckpt_version_commit). unhold lets the commit go ahead while it is
 * open: for handles whose data the caller brings in at commit itself (a
 * FUSE file that may be mapped: its dirty pages are written back first). */
void ckpt_file_unhold(struct ckpt_file *f);
/* Read: every chunk read from the backing store is checked against its hash
 * (unless verify=off); a mismatch returns -EIO, marks the version CORRUPT
 * and logs the chunk. A read error of the disk is returned (-EIO, ...) and
 * logged, and leaves the version's state alone. */
ssize_t ckpt_file_pread(struct ckpt_file *f, void *buf, size_t len, uint64_t off);
/*
 * The same read without a copy, for files of committed versions: on success
 * (> 0) *p points at all `len` bytes (fewer only at the end of the file)
 * inside a chunk buffer lent until ckpt_file_read_release(f, r): a buffer of
 * the request's own when it asks for one whole chunk (other reads of the
 * handle go on meanwhile, and f may even be closed before the release), else
 * the handle's, which stays locked until then. 0 at the end of the file.
 * -ERANGE when the range spans chunks or the file is still being written:
 * use ckpt_file_pread. Only after a return > 0 is there something to release.
 */
struct ckpt_rref {
	void *buf, *pool, *res;
};
ssize_t ckpt_file_read_ref(struct ckpt_file *f, size_t len, uint64_t off, const void **p,
			   struct ckpt_rref *r);
void ckpt_file_read_release(struct ckpt_file *f, struct ckpt_rref *r);
/* The chunk of a committed file that starts at `off`, if the resident tier
 * holds it: *p points at its bytes in the tier, lent (not evicted) until
 * ckpt_file_read_release(f, r); its length. -ENOENT when it is not resident
 * (or there is no tier, or off is at the end), -ERANGE when no chunk starts
 * at off. *next: where the chunk holding off ends (UINT64_MAX at the end).
 * p NULL: only *next (0 if a chunk starts at off). Never reads the backing
 * store. */
ssize_t ckpt_file_read_resident(struct ckpt_file *f, uint64_t off, const void **p,
				struct ckpt_rref *r, uint64_t *next);
ssize_t ckpt_file_pwrite(struct ckpt_file *f, const void *buf, size_t len, uint64_t off);
int ckpt_file_ftruncate(struct ckpt_file *f, uint64_t size);
/* ckpt_node_setattr through a handle (the file may have been unlinked). */
int ckpt_file_setattr(struct ckpt_file *f, const struct ckpt_setattr *a);
/* ckpt_node_stat through a handle: works after the file was unlinked (then
 * nlink is 0; its content lives until the last handle is closed and is
 * never committed). */
int ckpt_file_stat(struct ckpt_file *f, struct ckpt_node_stat *st);
/*
 * fallocate(2) of a file being written. mode 0 extends the size to off+len
 * (zeros); KEEP_SIZE alone changes nothing a reader sees (nothing is
 * preallocated); PUNCH_HOLE (with KEEP_SIZE, as fallocate(2) requires) and
 * ZERO_RANGE make the range read as zeros. Other modes: -EOPNOTSUPP.
 */
#define CKPT_FALLOC_KEEP_SIZE 0x01 /* the values of FALLOC_FL_* */
#define CKPT_FALLOC_PUNCH_HOLE 0x02
#define CKPT_FALLOC_ZERO_RANGE 0x10
int ckpt_file_fallocate(struct ckpt_file *f, int mode, uint64_t off, uint64_t len);
/* Make what was written so far durable (a writer's fsync). Errors from
 * earlier asynchronous writes are reported here, at flush, at close, and by
 * the writes after them. */
int ckpt_file_fsync(struct ckpt_file *f);
int ckpt_file_flush(struct ckpt_file *f);
int ckpt_file_close(struct ckpt_file *f);

/* ---- verification, garbage collection, statistics --------------------- */

/* Called for each bad chunk found by verify: file, offset, chunk hash (hex). */
typedef void (*ckpt_verify_cb)(void *arg, const char *run, const char *version, const char *path,
			       uint64_t offset, const char *chunk_hex, const char *what);
/* Verify every chunk of a version (or of all committed versions when run is
 * NULL). Returns the number of bad chunks (0 = all good), else the first
 * read error (-EIO from the disk, ...) or -errno. Versions with a bad chunk
 * (hash mismatch, missing, short) become CORRUPT; a read error leaves the
 * version as it is (reported through cb with what = "read error (...)").
 * `progress` (may be NULL) gets bytes done/total. */
int ckpt_store_verify(struct ckpt_store *s, const char *run, const char *version, ckpt_verify_cb cb,
		      void *arg, void (*progress)(void *arg, uint64_t done, uint64_t total));

struct ckpt_gc_result {
	uint64_t chunks_removed;
	uint64_t bytes_removed;
	uint64_t versions_removed; /* incomplete versions */
};
/* Remove chunks no manifest references and INCOMPLETE versions; safe while
 * versions are being written (their chunks are kept). */
int ckpt_store_gc(struct ckpt_store *s, struct ckpt_gc_result *res);

/* Apply retention to every run now (also applied after each commit);
 * returns the number of versions removed. `max_age_days` > 0 overrides the
 * runs' own setting (cleanup). */
int ckpt_store_apply_retention(struct ckpt_store *s, uint32_t max_age_days);

struct ckpt_store_stats {
	uint64_t total_runs;
	uint64_t total_checkpoints;   /* committed versions */
	uint64_t total_size_bytes;    /* logical */
	uint64_t stored_bytes;	      /* chunk bytes on disk */
	double dedup_ratio;	      /* total_size_bytes / stored_bytes (1.0 when empty) */
	int64_t oldest_checkpoint_ns; /* commit time; 0 when none */
};
int ckpt_store_stats(struct ckpt_store *s, struct ckpt_store_stats *st);
/* The .stats document (JSON with ISO 8601 UTC times), malloc'd. */
int ckpt_store_stats_json(struct ckpt_store *s, char **json, size_t *len);

/* statfs of the backing directory. */
struct statvfs;
int ckpt_store_statvfs(struct ckpt_store *s, struct statvfs *st);

#ifdef __cplusplus
}
#endif

#endif /* CKPTFS_STORE_H */
