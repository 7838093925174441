// SPDX-License-Identifier: MIT
/*
 * testio.c - fault injection and crash simulation through the store's I/O
 * seam (see testio.h). The crash model: a write, create, rename, unlink or
 * mkdir is lost in a crash unless a sync covered it before: fsync of the
 * file covers its data, fsync of a directory covers the names in it, syncfs
 * covers everything. On a crash the uncovered changes are undone newest
 * first (drop mode) or left in place (keep mode).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "testio.h"

enum rec_kind { R_DATA, R_CREATE, R_RENAME, R_UNLINK, R_MKDIR };

struct rec {
	enum rec_kind kind;
	dev_t dev;
	ino_t ino;  /* R_DATA: the file; others: the directory of the name */
	ino_t ino2; /* R_RENAME: the directory of the new name */
	int fd;	    /* R_DATA: a dup of the file; others: the directory */
	int fd2;    /* R_RENAME: directory of the new name */
	char name[300], name2[300], backup[64];
	off_t off, old_size;
	uint8_t *old; /* R_DATA: bytes overwritten */
	size_t old_len;
	bool durable;
	struct rec *prev;
};

static int dup_keep(int fd)
{
	return fcntl(fd, F_DUPFD_CLOEXEC, 100);
}

static void rec_push(struct tio *t, struct rec *r)
{
	r->prev = t->log;
	t->log = r;
}

static bool stat_fd(int fd, struct stat *st)
{
	return fstat(fd, st) == 0;
}

static void rec_free(struct rec *r)
{
	if (r->fd >= 0)
		close(r->fd);
	if (r->fd2 >= 0)
		close(r->fd2);
	free(r->old);
	free(r);
}

static struct rec *rec_new(enum rec_kind k)
{
	struct rec *r = calloc(1, sizeof(*r));

	r->kind = k;
	r->fd = r->fd2 = -1;
	return r;
}

static int backup_ctr;

/* keep the file at dirfd/name reachable under a backup name (hard link) */
static void take_backup(struct tio *t, struct rec *r, int dirfd, const char *name)
{
	snprintf(r->backup, sizeof(r->backup), "b%d", ++backup_ctr);
	if (linkat(dirfd, name, t->backup_dfd, r->backup, 0) < 0)
		r->backup[0] = 0;
}

static void undo(struct tio *t, struct rec *r)
{
	switch (r->kind) {
	case R_DATA:
		if (r->old_len)
			pwrite(r->fd, r->old, r->old_len, r->off);
		ftruncate(r->fd, r->old_size);
		break;
	case R_CREATE:
	case R_MKDIR:
		unlinkat(r->fd, r->name, r->kind == R_MKDIR ? AT_REMOVEDIR : 0);
		break;
	case R_RENAME:
		renameat(r->fd2, r->name2, r->fd, r->name);
		if (r->backup[0])
			linkat(t->backup_dfd, r->backup, r->fd2, r->name2, 0);
		break;
	case R_UNLINK:
		if (r->backup[0])
			linkat(t->backup_dfd, r->backup, r->fd, r->name, 0);
		break;
	}
}

static void do_crash(struct tio *t)
{
	struct rec *r = t->log;

	t->crashed = true;
	for (; r; r = r->prev)
		if (!r->durable && !t->crash_keep)
			undo(t, r);
}

static void log_clear(struct tio *t)
{
	struct rec *r = t->log;

	while (r) {
		struct rec *p = r->prev;

		rec_free(r);
		r = p;
	}
	t->log = NULL;
}

/* one more sync point: crash here if armed (the sync itself is lost) */
static bool sync_point(struct tio *t)
{
	if (!t->crash_sim || t->crashed)
		return t->crashed;
	t->syncs++;
	if (t->crash_at && t->syncs == t->crash_at) {
		do_crash(t);
		return true;
	}
	return false;
}

static bool fault(struct tio *t, unsigned kind, int *err)
{
	if (t->crashed) {
		*err = -EIO;
		return true;
	}
	if (!(t->fail_kinds & kind))
		return false;
	t->calls++;
	if (t->calls == t->fail_at || (t->fail_sticky && t->fail_at && t->calls > t->fail_at)) {
		*err = t->fail_err;
		t->failed++;
		return true;
	}
	return false;
}

static int t_openat(void *ctx, int dirfd, const char *path, int flags, mode_t mode)
{
	struct tio *t = ctx;
	bool creat = (flags & O_CREAT) != 0;
	struct stat st;
	bool existed = false;
	int err, fd;

	if ((flags & O_ACCMODE) != O_RDONLY || creat) {
		if (fault(t, TIO_OPEN, &err))
			return err;
	} else if (t->crashed) {
		return -EIO;
	}
	if (t->crash_sim && creat)
		existed = fstatat(dirfd, path, &st, 0) == 0;
	if (t->crash_sim && existed && (flags & O_TRUNC) && st.st_size > 0) {
		/* the old content comes back if the truncation is lost */
		int ofd = openat(dirfd, path, O_RDONLY | O_CLOEXEC);
		struct rec *r = rec_new(R_DATA);

		r->old = malloc((size_t)st.st_size);
		r->old_len = (size_t)pread(ofd, r->old, (size_t)st.st_size, 0);
		r->old_size = st.st_size;
		r->dev = st.st_dev;
		r->ino = st.st_ino;
		r->fd = dup_keep(ofd);
		close(ofd);
		/* reopen for writing on the same inode */
		rec_push(t, r);
	}
	fd = openat(dirfd, path, flags, mode);
	if (fd < 0)
		return -errno;
	if (t->crash_sim && creat && !existed) {
		struct rec *r = rec_new(R_CREATE);
		struct stat ds;

		stat_fd(dirfd == AT_FDCWD ? fd : dirfd, &ds);
		r->dev = ds.st_dev;
		r->ino = ds.st_ino;
		r->fd = dup_keep(dirfd);
		snprintf(r->name, sizeof(r->name), "%s", path);
		rec_push(t, r);
	}
	if (t->crash_sim && existed && (flags & O_TRUNC)) {
		struct rec *r = t->log;

		if (r && r->kind == R_DATA && r->fd >= 0) {
			close(r->fd);
			r->fd = dup_keep(fd);
		}
	}
	return fd;
}

static int t_close(void *ctx, int fd)
{
	return close(fd) < 0 ? -errno : 0;
}

static ssize_t t_pread(void *ctx, int fd, void *buf, size_t len, off_t off)
{
	struct tio *t = ctx;
	int err;
	ssize_t n;

	if (fault(t, TIO_PREAD, &err))
		return err;
	n = pread(fd, buf, len, off);
	return n < 0 ? -errno : n;
}

static ssize_t t_pwrite(void *ctx, int fd, const void *buf, size_t len, off_t off)
{
	struct tio *t = ctx;
	int err;
	ssize_t n;

	if (fault(t, TIO_PWRITE, &err))
		return err;
	if (t->crash_sim) {
		struct rec *r = rec_new(R_DATA);
		struct stat st;

		stat_fd(fd, &st);
		r->dev = st.st_dev;
		r->ino = st.st_ino;
		r->off = off;
		r->old_size = st.st_size;
		if (off < st.st_size) {
			size_t l =
				(size_t)(st.st_size - off) < len ? (size_t)(st.st_size - off) : len;

			r->old = malloc(l);
			r->old_len = (size_t)pread(fd, r->old, l, off);
		}
		r->fd = dup_keep(fd);
		rec_push(t, r);
	}
	n = pwrite(fd, buf, len, off);
	return n < 0 ? -errno : n;
}

static int t_ftruncate(void *ctx, int fd, off_t len)
{
	struct tio *t = ctx;

	if (t->crashed)
		return -EIO;
	if (t->crash_sim) {
		struct rec *r = rec_new(R_DATA);
		struct stat st;

		stat_fd(fd, &st);
		r->dev = st.st_dev;
		r->ino = st.st_ino;
		r->old_size = st.st_size;
		r->off = len;
		if (len < st.st_size) {
			r->old_len = (size_t)(st.st_size - len);
			r->old = malloc(r->old_len);
			r->old_len = (size_t)pread(fd, r->old, r->old_len, len);
		}
		r->fd = dup_keep(fd);
		rec_push(t, r);
	}
	return ftruncate(fd, len) < 0 ? -errno : 0;
}

static int t_fsync(void *ctx, int fd)
{
	struct tio *t = ctx;
	struct stat st;
	int err;

	if (sync_point(t))
		return -EIO;
	if (fault(t, TIO_FSYNC, &err))
		return err;
	if (t->crash_sim && stat_fd(fd, &st)) {
		bool dir = S_ISDIR(st.st_mode);

		for (struct rec *r = t->log; r; r = r->prev) {
			if (r->dev != st.st_dev)
				continue;
			if (!dir && r->kind == R_DATA && r->ino == st.st_ino)
				r->durable = true;
			/* names: the directory that holds the (new) name; the store
			 * only renames within one directory */
			if (dir && r->kind != R_DATA &&
			    (r->kind == R_RENAME ? r->ino2 : r->ino) == st.st_ino)
				r->durable = true;
		}
	}
	return fsync(fd) < 0 ? -errno : 0;
}

static int t_syncfs(void *ctx, int fd)
{
	struct tio *t = ctx;
	int err;

	if (sync_point(t))
		return -EIO;
	if (fault(t, TIO_SYNCFS, &err))
		return err;
	if (t->crash_sim)
		log_clear(t); /* everything so far is durable */
	return syncfs(fd) < 0 ? -errno : 0;
}

static int t_renameat(void *ctx, int od, const char *op, int nd, const char *np)
{
	struct tio *t = ctx;
	struct rec *r = NULL;
	int err;

	if (fault(t, TIO_RENAME, &err))
		return err;
	if (t->crash_sim) {
		struct stat a, b, x;

		r = rec_new(R_RENAME);
		stat_fd(od, &a);
		stat_fd(nd, &b);
		r->dev = a.st_dev;
		r->ino = a.st_ino;
		r->ino2 = b.st_ino;
		r->fd = dup_keep(od);
		r->fd2 = dup_keep(nd);
		snprintf(r->name, sizeof(r->name), "%s", op);
		snprintf(r->name2, sizeof(r->name2), "%s", np);
		if (fstatat(nd, np, &x, 0) == 0)
			take_backup(t, r, nd, np);
	}
	if (renameat(od, op, nd, np) < 0) {
		err = -errno;
		if (r)
			rec_free(r);
		return err;
	}
	if (r)
		rec_push(t, r);
	return 0;
}

static int t_unlinkat(void *ctx, int dirfd, const char *path, int flags)
{
	struct tio *t = ctx;
	struct rec *r = NULL;

	if (t->crashed)
		return -EIO;
	if (t->crash_sim && !(flags & AT_REMOVEDIR)) {
		struct stat d;

		r = rec_new(R_UNLINK);
		stat_fd(dirfd, &d);
		r->dev = d.st_dev;
		r->ino = d.st_ino;
		r->fd = dup_keep(dirfd);
		snprintf(r->name, sizeof(r->name), "%s", path);
		take_backup(t, r, dirfd, path);
	}
	if (unlinkat(dirfd, path, flags) < 0) {
		int err = -errno;

		if (r)
			rec_free(r);
		return err;
	}
	if (r)
		rec_push(t, r);
	return 0;
}

static int t_mkdirat(void *ctx, int dirfd, const char *path, mode_t mode)
{
	struct tio *t = ctx;
	int err;

	if (fault(t, TIO_MKDIR, &err))
		return err;
	if (mkdirat(dirfd, path, mode) < 0)
		return -errno;
	if (t->crash_sim) {
		struct rec *r = rec_new(R_MKDIR);
		struct stat d;

		stat_fd(dirfd, &d);
		r->dev = d.st_dev;
		r->ino = d.st_ino;
		r->fd = dup_keep(dirfd);
		snprintf(r->name, sizeof(r->name), "%s", path);
		rec_push(t, r);
	}
	return 0;
}

static uint64_t rnd(struct tio *t)
{
	t->rng ^= t->rng << 13;
	t->rng ^= t->rng >> 7;
	t->rng ^= t->rng << 17;
	return t->rng;
}

static int t_uring_result(void *ctx, int fd, size_t len, off_t off, int res)
{
	struct tio *t = ctx;
	int err;

	if (res > 0 && fault(t, TIO_URING, &err))
		return err;
	if (t->uring_odd && res > 1 && rnd(t) % t->uring_odd == 0) {
		static const int alt[] = {0, -EAGAIN, -EINTR};
		int a = alt[t->uring_altered++ % 3];

		/* a short write: report fewer bytes than the kernel wrote; the
		 * store rewrites the rest, which is the same bytes */
		return a ? a : res / 2;
	}
	return res;
}

void tio_init(struct tio *t, bool crash_sim, const char *backup_dir)
{
	memset(t, 0, sizeof(*t));
	t->ops.ctx = t;
	t->ops.openat = t_openat;
	t->ops.close = t_close;
	t->ops.pread = t_pread;
	t->ops.pwrite = t_pwrite;
	t->ops.ftruncate = t_ftruncate;
	t->ops.fsync = t_fsync;
	t->ops.syncfs = t_syncfs;
	t->ops.renameat = t_renameat;
	t->ops.unlinkat = t_unlinkat;
	t->ops.mkdirat = t_mkdirat;
	t->ops.uring_result = t_uring_result;
	t->ops.no_uring = crash_sim;
	t->crash_sim = crash_sim;
	t->rng = 88172645463325252ull;
	t->backup_dfd = -1;
	if (backup_dir) {
		mkdir(backup_dir, 0700);
		t->backup_dfd = open(backup_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	}
}

void tio_fini(struct tio *t)
{
	log_clear(t);
	if (t->backup_dfd >= 0)
		close(t->backup_dfd);
	t->backup_dfd = -1;
}

void tio_fail(struct tio *t, unsigned kinds, long at, int err, bool sticky)
{
	t->fail_kinds = kinds;
	t->fail_at = at;
	t->fail_err = err;
	t->fail_sticky = sticky;
	t->calls = 0;
	t->failed = 0;
}

void tio_crash(struct tio *t, long at, bool keep)
{
	t->syncs = 0;
	t->crash_at = at;
	t->crash_keep = keep;
}

void tio_crash_now(struct tio *t)
{
	do_crash(t);
}
