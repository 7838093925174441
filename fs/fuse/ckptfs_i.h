/* SPDX-License-Identifier: MIT */
/*
 * ckptfs_i.h - internals of the ckptfs FUSE daemon (SPEC §2), shared by its
 * files: the daemon context, the inode table, path classification, the
 * autocommit tracker and the low-level operation handlers.
 *
 * The daemon uses the libfuse low-level API because the kernel cache
 * timeouts must differ per entry: committed content never changes and is
 * cached for long, open versions and changing listings are not cached.
 */
#ifndef CKPTFS_I_H
#define CKPTFS_I_H

#define FUSE_USE_VERSION 312

#include <fuse_lowlevel.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <unistd.h>

#include "ckptfs/store.h"

/* Kernel cache timeouts in seconds (see docs/mount.md, "Caching"). */
#define CFS_TTL_IMMUTABLE 3600.0 /* committed files and directories */
#define CFS_TTL_NAME 1.0	 /* names of runs and committed versions */
#define CFS_TTL_DIR 1.0		 /* attributes of the root and run directories */
#define CFS_TTL_NONE 0.0	 /* open versions, listings that change */
/* Attributes (not names) of directories of open versions: the kernel drops
 * them itself when it creates or removes an entry, renames or changes them,
 * and every path walk looks the name up again (entry TTL 0), which brings
 * fresh ones; caching them spares two GETATTRs per file created (the
 * permission checks of the walk and of the create). The name is not kept:
 * as the kernel drops the directory's attributes at every create, the next
 * walk would need a GETATTR in place of the LOOKUP. */
#define CFS_TTL_OPEN_DIR 1.0
/* Attributes of a file just created in an open version, for the open that
 * follows the create: with default_permissions the kernel checks the new
 * inode's mode there, and attributes that expire at once cost a GETATTR per
 * file created. The kernel keeps them for a tick or two; its own writes
 * drop them (size, times), as TTL 0 attributes are. */
#define CFS_TTL_CREATED 0.001

#define CFS_MAX_WRITE (1u << 20)

/* -o open_cache: which opens of files in open versions use the page cache
 * (docs/mount.md, "Shared mmap and the page cache"). */
enum cfs_open_cache {
	CFS_OPEN_CACHE_AUTO, /* all but write-only opens */
	CFS_OPEN_CACHE_ON,   /* all */
	CFS_OPEN_CACHE_OFF,  /* none: shared mmap fails with ENODEV */
};

struct cfs_opts {
	char *store_dir;
	char *mountpoint;
	unsigned autocommit_s; /* 0 = off */
	enum ckpt_verify_mode verify;
	size_t write_buffer; /* 0 = store default */
	size_t chunk_size;   /* 0 = store default */
	enum ckpt_direct_io direct_io;
	enum cfs_open_cache open_cache;
	struct ckpt_retention retention;
	size_t resident; /* -o resident=SIZE: the resident tier's budget; 0 = off */
	/* The kernel checks modes (default_permissions): with allow_other,
	 * allow_root or default_permissions given; else the daemon (perm.c). */
	bool kernel_perm;
	bool io_uring; /* -o io_uring: requests over io_uring (uring.c) */
};

struct cfs_nodes; /* inode table, node.c */
struct cfs_track; /* autocommit tracker, track.c */

/* The daemon: one per mount. */
struct cfs {
	struct cfs_opts opts;
	struct ckpt_store *store;
	struct fuse_session *se;
	struct cfs_nodes *nodes;
	struct cfs_track *track;
	int64_t mount_ns; /* times of the root and run directories */
	uid_t uid;
	gid_t gid;
	bool singlethread; /* -s: no second thread serves the kernel's write-back */
};

/* ---- options (opts.c) ---------------------------------------------------- */

/* Parse argv into o and args (what is left for libfuse). Returns 0, 1 when
 * the caller should exit 0 (help, version) or -1 on a usage error (printed). */
int cfs_opts_parse(struct fuse_args *args, struct cfs_opts *o, struct fuse_cmdline_opts *co);
void cfs_opts_free(struct cfs_opts *o);
/* "64M", "1G", "4096" -> bytes; -EINVAL on garbage. */
int cfs_parse_size(const char *s, size_t *out);

/* ---- FUSE over io_uring (uring.c) --------------------------------------- */

/* -o io_uring: after fuse_session_mount, route libfuse's reads and replies
 * through uring.c, which takes the kernel's per-CPU queues when its INIT
 * offers them. cfs_uring_stop after the session loop: stops the ring
 * threads (nothing when setup was not called). */
int cfs_uring_setup(struct cfs *c);
void cfs_uring_stop(void);

/* ---- paths (path.c) ------------------------------------------------------ */

enum cfs_kind {
	CFS_ROOT,
	CFS_STATS,    /* /.stats */
	CFS_RUN,      /* /RUN */
	CFS_LATEST,   /* /RUN/latest */
	CFS_BEST,     /* /RUN/best */
	CFS_VERSION,  /* /RUN/VERSION */
	CFS_MANIFEST, /* /RUN/VERSION/.manifest */
	CFS_NODE,     /* /RUN/VERSION/a/b */
};

/* A classified path. Paths inside the daemon have no leading slash: "" is the
 * root, "run", "run/ver", "run/ver/a/b". */
struct cfs_path {
	enum cfs_kind kind;
	char run[CKPT_NAME_MAX + 1];
	char ver[CKPT_NAME_MAX + 1];
	const char *rel; /* inside the version ("" for its root); points into full */
	char *full;	 /* malloc'd copy of the path */
};

int cfs_path_parse(const char *path, struct cfs_path *p);
void cfs_path_free(struct cfs_path *p);
/* parent + "/" + name, malloc'd; -ENAMETOOLONG for names over CKPT_NAME_MAX. */
int cfs_path_join(const char *parent, const char *name, char **out);

/* ---- inode table (node.c) ------------------------------------------------ */

struct cfs_nodes *cfs_nodes_new(void);
void cfs_nodes_free(struct cfs_nodes *t);
/* A malloc'd copy of the path of `ino`; -ESTALE when unknown. */
int cfs_nodes_path(struct cfs_nodes *t, fuse_ino_t ino, char **path);
/* The inode for `path` with one more lookup reference. `gen` tells two
 * objects that had the same path apart (a version's creation time): a
 * different gen gives a fresh inode so the kernel drops cached attributes.
 * `dir`: the path is a directory (only those have inodes below them). */
fuse_ino_t cfs_nodes_lookup(struct cfs_nodes *t, const char *path, int64_t gen, bool dir);
void cfs_nodes_forget(struct cfs_nodes *t, fuse_ino_t ino, uint64_t n);
/* The inode the kernel knows for `path`, 0 when none (no reference added). */
fuse_ino_t cfs_nodes_find(struct cfs_nodes *t, const char *path);
/* Is the inode still reachable by its path (not unlinked, not replaced)? */
bool cfs_nodes_linked(struct cfs_nodes *t, fuse_ino_t ino);
/* The path (and everything below it) is gone: later lookups get new inodes. */
void cfs_nodes_drop(struct cfs_nodes *t, const char *path);
/* Move `from` and everything below it to `to` (after a rename). */
void cfs_nodes_move(struct cfs_nodes *t, const char *from, const char *to);

/* ---- attributes (attr.c) ------------------------------------------------- */

/* Attributes of a classified path; *ttl and *gen get the cache timeout and
 * the identity (see cfs_nodes_lookup). */
int cfs_attr(struct cfs *c, const struct cfs_path *p, struct stat *st, double *ttl, int64_t *gen);
/* st_ino of files: their store identity above the range of FUSE inodes. */
#define CFS_FILE_INO_BASE (1ull << 56)
/* The attributes of something inside a version, from the store's stat. */
void cfs_attr_node(struct cfs *c, const struct ckpt_node_stat *ns, struct stat *st);
/* Same, from a version's info (readdirplus of a run needs no listing). */
int cfs_attr_version(struct cfs *c, const char *run, const struct ckpt_version_info *vi,
		     struct stat *st, double *ttl);
/* A lookup reply for version `vi` of `run` at `path`, from a listing. */
int cfs_entry_version(struct cfs *c, const char *path, const char *run,
		      const struct ckpt_version_info *vi, struct fuse_entry_param *e);
/* Run/ver (its name now) was committed: its modes lost their write bits
 * behind the kernel's back, which may have its name cached for a second
 * (the renaming or setxattr that commits drops only its ctime): drop its
 * cached attributes. */
void cfs_version_committed(struct cfs *c, const char *run, const char *ver);
/* The timeout for the name of an entry of this kind. */
double cfs_entry_ttl(const struct cfs *c, const struct cfs_path *p, double attr_ttl);
/* Fill a lookup reply for `path` (adds a lookup reference). */
int cfs_entry(struct cfs *c, const char *path, struct fuse_entry_param *e);
bool cfs_vstate_immutable(enum ckpt_vstate s);

/* ---- mode checks (perm.c) ------------------------------------------------ */

/* Where the daemon checks modes (no default_permissions, see perm.c): may
 * the caller of req access p / directory `dir` with mask (R_OK, W_OK, X_OK;
 * with CFS_MAY_IF_DIR only if p is a directory)? 0 or -EACCES (or the
 * error of finding p); always 0 where the kernel checks. */
#define CFS_MAY_IF_DIR 0x100
int cfs_may(fuse_req_t req, const struct cfs_path *p, int mask);
int cfs_may_dir(fuse_req_t req, fuse_ino_t dir, int mask);
/* open(2) with these flags: read, write (O_TRUNC writes too) */
int cfs_may_open(fuse_req_t req, const struct cfs_path *p, int flags);
/* the extended attribute `name`: R_OK to read it, W_OK to set or remove */
int cfs_may_xattr(fuse_req_t req, const struct cfs_path *p, const char *name, int mask);

/* ---- autocommit tracker (track.c) ---------------------------------------- */

int cfs_track_start(struct cfs *c);
void cfs_track_stop(struct cfs *c);

/* ---- the kernel's cache filled at commit (fill.c, -o resident) ----------- */

int cfs_fill_start(struct cfs *c);
void cfs_fill_stop(struct cfs *c);
/* Run/ver (its name now) was committed: push its resident chunks into the
 * kernel's page cache, in the background. */
void cfs_fill_queue(struct cfs *c, const char *run, const char *ver);
/* The kernel asked for [off, off + size) of ino: in its cache soon, so the
 * fill skips it if it is pushing ino now. */
void cfs_fill_read(fuse_ino_t ino, uint64_t off, size_t size);
/* A version was written to, a writer opened or closed one of its files. */
void cfs_track_touch(struct cfs *c, const char *run, const char *ver, int open_delta);
/* The version was committed, renamed or deleted by someone else. */
void cfs_track_forget(struct cfs *c, const char *run, const char *ver);

/* ---- many writers (writers.c) ------------------------------------------- */

/* user.ckpt.writers and .parts of a version (keys without "user.ckpt."). */
bool cfs_writers_key(const char *key);
/* The value's length (snprintf-style into buf), or -errno (-ENODATA unset). */
int cfs_writers_get(struct cfs *c, const struct cfs_path *p, const char *key, char *buf,
		    size_t len);
int cfs_writers_set(struct cfs *c, const struct cfs_path *p, const char *key, const char *value,
		    size_t size);
int cfs_writers_remove(struct cfs *c, const struct cfs_path *p, const char *key);
/* setxattr user.ckpt.commit: "1" commits, "rank=K" commits writer K's part. */
int cfs_commit_xattr(struct cfs *c, const struct cfs_path *p, const char *value, size_t size);

/* ---- kernel tuning (tune.c) ---------------------------------------------- */

/* Once per mount, at the first request after INIT: readahead window. */
void cfs_tune_once(struct cfs *c);

/* ---- logging ------------------------------------------------------------- */

void cfs_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* ---- operations (ops_*.c) ------------------------------------------------ */

extern const struct fuse_lowlevel_ops cfs_ops;

void cfs_op_lookup(fuse_req_t req, fuse_ino_t parent, const char *name);
void cfs_op_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup);
void cfs_op_forget_multi(fuse_req_t req, size_t count, struct fuse_forget_data *forgets);
void cfs_op_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
void cfs_op_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set,
		    struct fuse_file_info *fi);
void cfs_op_readlink(fuse_req_t req, fuse_ino_t ino);
void cfs_op_statfs(fuse_req_t req, fuse_ino_t ino);
void cfs_op_access(fuse_req_t req, fuse_ino_t ino, int mask);

void cfs_op_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode);
void cfs_op_mknod(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode, dev_t rdev);
void cfs_op_symlink(fuse_req_t req, const char *link, fuse_ino_t parent, const char *name);
void cfs_op_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent, const char *newname);
void cfs_op_unlink(fuse_req_t req, fuse_ino_t parent, const char *name);
void cfs_op_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name);
void cfs_op_rename(fuse_req_t req, fuse_ino_t parent, const char *name, fuse_ino_t newparent,
		   const char *newname, unsigned int flags);

void cfs_op_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
void cfs_op_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		    struct fuse_file_info *fi);
void cfs_op_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
			struct fuse_file_info *fi);
void cfs_op_releasedir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);

/* An open file (or a virtual file's snapshot), fi->fh of open/create. */
struct cfs_fh {
	struct ckpt_file *f; /* NULL for .stats and .manifest */
	char *buf;	     /* the virtual file's content */
	size_t len;
	bool writer; /* counted as an open writer by the autocommit tracker */
	/* Read-write through the page cache: may back a shared writable
	 * mapping whose dirty pages the kernel writes back later. */
	bool mapped_rw;
	fuse_ino_t ino;
	char run[CKPT_NAME_MAX + 1];
	char ver[CKPT_NAME_MAX + 1];
	struct cfs_fh *prev, *next; /* all open handles, closed at unmount */
};

void cfs_op_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
		   struct fuse_file_info *fi);
void cfs_op_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
void cfs_op_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi);
void cfs_op_write(fuse_req_t req, fuse_ino_t ino, const char *buf, size_t size, off_t off,
		  struct fuse_file_info *fi);
void cfs_op_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
void cfs_op_fsync(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi);
void cfs_op_fallocate(fuse_req_t req, fuse_ino_t ino, int mode, off_t offset, off_t length,
		      struct fuse_file_info *fi);
void cfs_op_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
void cfs_files_close_all(void);
/* An inode that lost its path (an unlinked file): stat or change the file
 * through one of its open handles; -ENOENT when none is open. */
int cfs_files_stat_ino(fuse_ino_t ino, struct ckpt_node_stat *ns);
int cfs_files_setattr_ino(fuse_ino_t ino, const struct ckpt_setattr *a);
/* Before a commit of run/ver: have the kernel write back the pages that
 * shared mappings of its files hold dirty, so the commit has them. */
void cfs_files_writeback(struct cfs *c, const char *run, const char *ver);
/* After the commit of run/ver (its old name; after cfs_nodes_move): files
 * still open read-write through the page cache get new inodes for later
 * lookups, so pages dirtied through an older mapping never show as the
 * committed content. */
void cfs_files_committed(struct cfs *c, const char *run, const char *ver);

void cfs_op_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name, const char *value,
		     size_t size, int flags);
void cfs_op_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name, size_t size);
void cfs_op_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size);
void cfs_op_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name);

/* The daemon of a request. */
static inline struct cfs *cfs_of(fuse_req_t req)
{
	return fuse_req_userdata(req);
}

/* Resolve an inode to a classified path; replies the error itself and
 * returns false when it cannot. */
bool cfs_resolve(fuse_req_t req, fuse_ino_t ino, struct cfs_path *p);

#endif /* CKPTFS_I_H */
