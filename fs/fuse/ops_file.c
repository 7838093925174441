// SPDX-License-Identifier: MIT
/*
 * ops_file.c - open files: create, open, read, write, flush, fsync, release,
 * and the read-only virtual files .stats and .manifest (a snapshot taken at
 * open, served with direct_io because their size is not known in advance).
 * Which opens use the kernel page cache, and what a commit does about the
 * shared mappings of a version's files (docs/mount.md, "Shared mmap and the
 * page cache").
 */
#include "ckptfs_i.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static pthread_mutex_t fh_lock = PTHREAD_MUTEX_INITIALIZER;
static struct cfs_fh *fh_all;

static void fh_link(struct cfs_fh *fh)
{
	pthread_mutex_lock(&fh_lock);
	fh->next = fh_all;
	if (fh_all)
		fh_all->prev = fh;
	fh_all = fh;
	pthread_mutex_unlock(&fh_lock);
}

static void fh_unlink(struct cfs_fh *fh)
{
	pthread_mutex_lock(&fh_lock);
	if (fh->prev)
		fh->prev->next = fh->next;
	else
		fh_all = fh->next;
	if (fh->next)
		fh->next->prev = fh->prev;
	pthread_mutex_unlock(&fh_lock);
}

static int fh_close(struct cfs_fh *fh)
{
	int ret = 0;

	if (fh->f)
		ret = ckpt_file_close(fh->f);
	free(fh->buf);
	free(fh);
	return ret;
}

/* At unmount: the kernel released every file it knew of; anything left
 * (a forced unmount) is closed here so nothing leaks. */
void cfs_files_close_all(void)
{
	struct cfs_fh *fh;

	while ((fh = fh_all)) {
		fh_unlink(fh);
		fh_close(fh);
	}
}

/* The first open handle of a file of inode `ino` (fh_lock held). */
static struct cfs_fh *fh_of_ino(fuse_ino_t ino)
{
	for (struct cfs_fh *fh = fh_all; fh; fh = fh->next)
		if (fh->ino == ino && fh->f)
			return fh;
	return NULL;
}

int cfs_files_stat_ino(fuse_ino_t ino, struct ckpt_node_stat *ns)
{
	struct cfs_fh *fh;
	int ret = -ENOENT;

	pthread_mutex_lock(&fh_lock);
	fh = fh_of_ino(ino);
	if (fh)
		ret = ckpt_file_stat(fh->f, ns);
	pthread_mutex_unlock(&fh_lock);
	return ret;
}

int cfs_files_setattr_ino(fuse_ino_t ino, const struct ckpt_setattr *a)
{
	struct cfs_fh *fh;
	int ret = -ENOENT;

	pthread_mutex_lock(&fh_lock);
	fh = fh_of_ino(ino);
	if (fh)
		ret = ckpt_file_setattr(fh->f, a);
	pthread_mutex_unlock(&fh_lock);
	return ret;
}

/* The inodes of the version's files open read-write through the page cache
 * (malloc'd; NULL and 0 when none or out of memory). `done`: the version is
 * committed, those handles are not counted again (another version may get
 * the old name). */
static size_t mapped_inodes(const char *run, const char *ver, bool done, fuse_ino_t **out)
{
	size_t n = 0, cap = 0;
	fuse_ino_t *v = NULL, *nv;
	struct cfs_fh *fh;

	pthread_mutex_lock(&fh_lock);
	for (fh = fh_all; fh; fh = fh->next) {
		if (!fh->mapped_rw || strcmp(fh->run, run) || strcmp(fh->ver, ver))
			continue;
		if (n == cap) {
			cap = cap ? cap * 2 : 8;
			nv = realloc(v, cap * sizeof(*v));
			if (!nv)
				break;
			v = nv;
		}
		v[n++] = fh->ino;
		fh->mapped_rw = !done;
	}
	pthread_mutex_unlock(&fh_lock);
	*out = v;
	return n;
}

/*
 * Without FUSE's writeback cache the kernel writes the dirty pages of a
 * shared mapping back at msync, munmap, fsync, close and when it needs the
 * memory; a commit must not wait for that. Invalidating the inode's pages
 * makes the kernel write the dirty ones back first (launder), as WRITE
 * requests that other threads of the loop serve, and this call returns once
 * they are done. With -s there is no other thread: the commit has what was
 * written back by then (docs/mount.md).
 */
void cfs_files_writeback(struct cfs *c, const char *run, const char *ver)
{
	fuse_ino_t *v;
	size_t n, i;
	int ret;

	if (c->singlethread)
		return;
	n = mapped_inodes(run, ver, false, &v);
	for (i = 0; i < n; i++) {
		ret = fuse_lowlevel_notify_inval_inode(c->se, v[i], 0, 0);
		if (ret < 0 && ret != -ENOENT)
			cfs_log("writing back the mapped pages of a file of %s/%s before its "
				"commit failed: %s",
				run, ver, strerror(-ret));
	}
	free(v);
}

/*
 * A mapping made before the commit can still be written to: its pages get
 * dirty in the kernel, their write-back fails with EROFS, but the pages stay
 * in the inode's cache. So that nobody reads them as the committed file, its
 * path gets a new inode (with an empty cache) at the next lookup; the old
 * inode lives on for the descriptors and mappings that hold it.
 */
void cfs_files_committed(struct cfs *c, const char *run, const char *ver)
{
	fuse_ino_t *v;
	size_t n, i;
	char *path;

	n = mapped_inodes(run, ver, true, &v);
	for (i = 0; i < n; i++) {
		if (cfs_nodes_path(c->nodes, v[i], &path) < 0)
			continue;
		cfs_nodes_drop(c->nodes, path);
		free(path);
	}
	free(v);
}

static int open_virtual(struct cfs *c, const struct cfs_path *p, struct fuse_file_info *fi,
			struct cfs_fh *fh)
{
	if ((fi->flags & O_ACCMODE) != O_RDONLY)
		return -EACCES;
	fi->direct_io = !fi->keep_cache;
	fi->noflush = true; /* a snapshot: nothing to report at close */
	if (p->kind == CFS_STATS)
		return ckpt_store_stats_json(c->store, &fh->buf, &fh->len);
	return ckpt_version_manifest_json(c->store, p->run, p->ver, &fh->buf, &fh->len);
}

/*
 * Does an open of a file in an open version bypass the page cache? A
 * write-only descriptor streams: FOPEN_DIRECT_IO sends the writer's own
 * buffer to ckptfs, instead of first copying it into page-cache pages the
 * kernel must allocate (the slowest part of the write path,
 * docs/performance.md). But the kernel refuses a shared mmap of a
 * FOPEN_DIRECT_IO file with ENODEV (libfuse 3.14 cannot ask for
 * FUSE_DIRECT_IO_ALLOW_MMAP), and every mmap needs a descriptor open for
 * reading: so descriptors that can read use the page cache. The kernel keeps
 * both kinds of descriptor of one inode coherent (a direct write writes back
 * the dirty pages of its range and drops the cached ones; t_mmap.sh checks
 * it on the kernel it runs on).
 */
static bool open_direct(const struct cfs *c, int flags)
{
	switch (c->opts.open_cache) {
	case CFS_OPEN_CACHE_ON:
		return false;
	case CFS_OPEN_CACHE_OFF:
		return true;
	default:
		return (flags & O_ACCMODE) == O_WRONLY;
	}
}

/*
 * A write by someone other than the file's owner (everything belongs to the
 * mount's owner) clears S_ISUID and S_ISGID, as on ext4; root keeps them
 * (CAP_FSETID). Page-cache writes get this from the kernel (which sends
 * the mode change: FUSE_CAP_HANDLE_KILLPRIV is off, main.c); direct writes
 * arrive here with the writer's uid, and so does an open with O_TRUNC (the
 * kernel sends O_TRUNC with the open, no setattr: truncating clears them on
 * ext4 too, even when nothing is written).
 */
static void kill_priv(fuse_req_t req, struct cfs_fh *fh)
{
	const struct fuse_ctx *ctx = fuse_req_ctx(req);
	struct ckpt_setattr a = {.what = CKPT_SET_KILL_PRIV};

	if (ctx->uid != cfs_of(req)->uid && ctx->uid != 0)
		ckpt_file_setattr(fh->f, &a);
}

/*
 * Does close(2) of this descriptor skip the FLUSH request (FOPEN_NOFLUSH)?
 * A FLUSH reports the errors of earlier asynchronous writes of a writer
 * (ckpt_file_flush); the same errors fail the next write, fsync and the
 * commit, which SPEC §3 allows for them. A reader's FLUSH has nothing to
 * report, and a write-only (direct_io) writer's only what the commit reports
 * too: both skip it, one round trip less per file (a small file written in
 * an open version: docs/mount.md, "Caching"). A writer through the page
 * cache keeps it: at close the kernel writes the pages a shared mapping
 * dirtied back first, and their errors come with the FLUSH. The release
 * that follows the close still parks the file's pending bytes.
 */
static bool noflush(bool writer, bool direct_io)
{
	return !writer || direct_io;
}

/* Open (or create, with O_CREAT in flags) a file of a version. */
static int open_node(struct cfs *c, const struct cfs_path *p, int flags, mode_t mode,
		     struct fuse_file_info *fi, struct cfs_fh *fh)
{
	struct ckpt_version_info vi;
	int ret;

	ret = ckpt_version_state(c->store, p->run, p->ver, &vi);
	if (ret < 0)
		return ret;
	/* The kernel gives write offsets itself (O_APPEND included). */
	flags &= O_ACCMODE | O_CREAT | O_EXCL | O_TRUNC;
	fh->writer = (flags & O_ACCMODE) != O_RDONLY;
	if (fh->writer)
		cfs_track_touch(c, p->run, p->ver, 1);
	ret = ckpt_file_open(c->store, p->run, p->ver, p->rel, flags, mode & 07777, &fh->f);
	if (ret < 0) {
		if (fh->writer)
			cfs_track_touch(c, p->run, p->ver, -1);
		fh->writer = false;
		return ret;
	}
	snprintf(fh->run, sizeof(fh->run), "%s", p->run);
	snprintf(fh->ver, sizeof(fh->ver), "%s", p->ver);
	/* Committed content never changes: keep the page cache across opens.
	 * Files of open versions drop it at open (another descriptor may have
	 * written since) and may bypass it (open_direct). A corrupt version
	 * drops it too: once a host knows (here or from another host of a
	 * shared store), every read goes to the store and its checks again. */
	fi->keep_cache = cfs_vstate_immutable(vi.state) && vi.state != CKPT_V_CORRUPT;
	fi->direct_io = !fi->keep_cache && open_direct(c, flags);
	fh->mapped_rw = !fi->keep_cache && !fi->direct_io && (flags & O_ACCMODE) == O_RDWR;
	fi->noflush = noflush(fh->writer, fi->direct_io);
	/* A file open for writing holds the version's commit back (EBUSY,
	 * mount.md "Many writers"), except one that may be mapped: its dirty
	 * pages are written back at the commit, which takes them. */
	if (fh->writer && fh->mapped_rw)
		ckpt_file_unhold(fh->f);
	return 0;
}

void cfs_op_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct cfs *c = cfs_of(req);
	struct cfs_path p;
	struct cfs_fh *fh;
	int ret;

	if (!cfs_resolve(req, ino, &p))
		return;
	ret = cfs_may_open(req, &p, fi->flags);
	fh = ret == 0 ? calloc(1, sizeof(*fh)) : NULL;
	if (!fh) {
		ret = ret < 0 ? ret : -ENOMEM;
		goto out;
	}
	switch (p.kind) {
	case CFS_STATS:
	case CFS_MANIFEST:
		ret = open_virtual(c, &p, fi, fh);
		break;
	case CFS_NODE:
		ret = open_node(c, &p, fi->flags, 0, fi, fh);
		if (ret == 0 && (fi->flags & O_TRUNC) && fh->writer)
			kill_priv(req, fh);
		break;
	default:
		ret = -EISDIR;
		break;
	}
out:
	cfs_path_free(&p);
	if (ret < 0) {
		if (fh)
			fh_close(fh);
		fuse_reply_err(req, -ret);
		return;
	}
	fh->ino = ino;
	fh_link(fh);
	fi->fh = (uintptr_t)fh;
	if (fuse_reply_open(req, fi) == -ENOENT) {
		/* The opener was interrupted: no release will come. */
		fh_unlink(fh);
		if (fh->writer)
			cfs_track_touch(c, fh->run, fh->ver, -1);
		fh_close(fh);
	}
}

static bool manifest_hidden(struct cfs *c, const struct cfs_path *p)
{
	struct ckpt_version_info vi;

	return ckpt_version_state(c->store, p->run, p->ver, &vi) == 0 && vi.manifest_hidden;
}

void cfs_op_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
		   struct fuse_file_info *fi)
{
	struct cfs *c = cfs_of(req);
	struct fuse_entry_param e;
	char *dir = NULL, *path = NULL;
	struct cfs_fh *fh = NULL;
	struct cfs_path p;
	int ret;

	ret = cfs_may_dir(req, parent, W_OK | X_OK);
	if (ret == 0)
		ret = cfs_nodes_path(c->nodes, parent, &dir);
	if (ret == 0)
		ret = cfs_path_join(dir, name, &path);
	free(dir);
	if (ret < 0)
		goto reply;
	ret = cfs_path_parse(path, &p);
	if (ret < 0)
		goto reply;
	if (p.kind != CFS_NODE) {
		/* Files live in versions; names of the tree's own are taken
		 * (an open version's unlinked .manifest: reserved, not there) */
		ret = (p.kind == CFS_MANIFEST || p.kind == CFS_STATS) ? -EEXIST : -EPERM;
		if (p.kind == CFS_MANIFEST && manifest_hidden(c, &p))
			ret = -EPERM;
		goto free_p;
	}
	fh = calloc(1, sizeof(*fh));
	if (!fh) {
		ret = -ENOMEM;
		goto free_p;
	}
	ret = open_node(c, &p, fi->flags | O_CREAT, mode, fi, fh);
	if (ret < 0)
		goto free_p;
	if ((fi->flags & O_TRUNC) && fh->writer)
		kill_priv(req, fh);
	cfs_nodes_drop(c->nodes, p.full);
	ret = cfs_entry(c, p.full, &e);
	if (ret == 0 && e.attr_timeout == CFS_TTL_NONE)
		e.attr_timeout = CFS_TTL_CREATED;
free_p:
	cfs_path_free(&p);
reply:
	free(path);
	if (ret < 0) {
		if (fh) {
			if (fh->writer)
				cfs_track_touch(c, fh->run, fh->ver, -1);
			fh_close(fh);
		}
		fuse_reply_err(req, -ret);
		return;
	}
	fh->ino = e.ino;
	fh_link(fh);
	fi->fh = (uintptr_t)fh;
	if (fuse_reply_create(req, &e, fi) == -ENOENT) {
		fh_unlink(fh);
		if (fh->writer)
			cfs_track_touch(c, fh->run, fh->ver, -1);
		fh_close(fh);
	}
}

/* A read that brought no data: it failed (n < 0) or hit the end (n == 0). */
static void reply_no_data(const struct cfs_fh *fh, fuse_req_t req, ssize_t n)
{
	if (n == 0) {
		fuse_reply_buf(req, NULL, 0);
		return;
	}
	if (n == -EIO)
		cfs_log("read of %s/%s failed with EIO: %s", fh->run, fh->ver,
			ckpt_store_strerror(cfs_of(req)->store));
	fuse_reply_err(req, (int)-n);
}

void cfs_op_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi)
{
	struct cfs_fh *fh = (struct cfs_fh *)(uintptr_t)fi->fh;
	ssize_t n;
	char *buf;

	if (!fh->f) {
		/*
		 * Reply from a copy, not from fh->buf: the kernel completes the
		 * read while our writev(2) to /dev/fuse is still returning, so the
		 * reader may close the file and another thread free fh in
		 * release before this thread is done with the buffer (ASan sees
		 * writev's iovec after the free). Virtual files are small.
		 */
		if ((size_t)off >= fh->len)
			size = 0;
		else if (size > fh->len - (size_t)off)
			size = fh->len - (size_t)off;
		buf = size ? malloc(size) : NULL;
		if (size && !buf) {
			fuse_reply_err(req, ENOMEM);
			return;
		}
		if (size)
			memcpy(buf, fh->buf + off, size);
		fuse_reply_buf(req, buf, size);
		free(buf);
		return;
	}
	{
		struct ckpt_file *f = fh->f;
		struct ckpt_rref r;
		const void *p;

		cfs_fill_read(ino, (uint64_t)off, size); /* the fill need not push it */
		/*
		 * Straight from the chunk buffer: no copy here. Once the kernel
		 * has the reply the reader may close the file, and fh be freed
		 * by a release on another thread while this one is still in
		 * writev: hence `f` and `r` (ckpt_file_close waits for a release
		 * of the handle's buffer; a buffer of the request's own is r's).
		 */
		n = ckpt_file_read_ref(f, size, (uint64_t)off, &p, &r);
		if (n > 0) {
			fuse_reply_buf(req, p, (size_t)n);
			ckpt_file_read_release(f, &r);
			return;
		}
		if (n != -ERANGE) {
			reply_no_data(fh, req, n);
			return;
		}
	}
	buf = malloc(size ? size : 1);
	if (!buf) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	n = ckpt_file_pread(fh->f, buf, size, (uint64_t)off);
	if (n < 0)
		reply_no_data(fh, req, n);
	else
		fuse_reply_buf(req, buf, (size_t)n);
	free(buf);
}

void cfs_op_write(fuse_req_t req, fuse_ino_t ino, const char *buf, size_t size, off_t off,
		  struct fuse_file_info *fi)
{
	struct cfs_fh *fh = (struct cfs_fh *)(uintptr_t)fi->fh;
	ssize_t n;

	if (!fh->f) {
		fuse_reply_err(req, EBADF);
		return;
	}
	n = ckpt_file_pwrite(fh->f, buf, size, (uint64_t)off);
	if (n < 0) {
		fuse_reply_err(req, (int)-n);
		return;
	}
	kill_priv(req, fh);
	cfs_track_touch(cfs_of(req), fh->run, fh->ver, 0);
	fuse_reply_write(req, (size_t)n);
}

/* close(2) of one descriptor: report earlier asynchronous write errors. */
void cfs_op_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct cfs_fh *fh = (struct cfs_fh *)(uintptr_t)fi->fh;
	int ret = 0;

	if (fh->f && fh->writer)
		ret = ckpt_file_flush(fh->f);
	fuse_reply_err(req, ret < 0 ? -ret : 0);
}

void cfs_op_fsync(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi)
{
	struct cfs_fh *fh = (struct cfs_fh *)(uintptr_t)fi->fh;
	int ret = 0;

	if (fh->f)
		ret = ckpt_file_fsync(fh->f);
	fuse_reply_err(req, ret < 0 ? -ret : 0);
}

void cfs_op_fallocate(fuse_req_t req, fuse_ino_t ino, int mode, off_t offset, off_t length,
		      struct fuse_file_info *fi)
{
	struct cfs_fh *fh = (struct cfs_fh *)(uintptr_t)fi->fh;
	int ret;

	if (!fh->f) {
		fuse_reply_err(req, EBADF); /* .stats, .manifest */
		return;
	}
	if (offset < 0 || length <= 0) {
		fuse_reply_err(req, EINVAL);
		return;
	}
	ret = ckpt_file_fallocate(fh->f, mode, (uint64_t)offset, (uint64_t)length);
	if (ret == 0)
		cfs_track_touch(cfs_of(req), fh->run, fh->ver, 0);
	fuse_reply_err(req, ret < 0 ? -ret : 0);
}

void cfs_op_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct cfs_fh *fh = (struct cfs_fh *)(uintptr_t)fi->fh;
	struct cfs *c = cfs_of(req);
	bool writer = fh->writer;
	char run[CKPT_NAME_MAX + 1], ver[CKPT_NAME_MAX + 1];
	int ret;

	fh_unlink(fh);
	memcpy(run, fh->run, sizeof(run));
	memcpy(ver, fh->ver, sizeof(ver));
	ret = fh_close(fh);
	if (ret < 0)
		cfs_log("closing a file of %s/%s failed: %s", run, ver, strerror(-ret));
	if (writer)
		cfs_track_touch(c, run, ver, -1);
	fuse_reply_err(req, ret < 0 ? -ret : 0);
}
