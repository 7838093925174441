// SPDX-License-Identifier: MIT
/*
 * dir.c - the dir backend: a store in a local directory. Opening it (the
 * FORMAT check, the layout on first use, the LOCK that keeps a second
 * process out, emptying staging/), and runs, manifests and open markers as
 * small files published with tmp + fsync + rename + fsync of the directory.
 * Chunk files are in dir_chunk.c. The layout is in docs/store-format.md.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "dir_i.h"

#define FORMAT_MAGIC "ckptfs-store format "
#define TMP_PREFIX ".ckpt-tmp-"

static int format_write(struct dir_sb *d)
{
	char buf[64];
	int n = snprintf(buf, sizeof(buf), FORMAT_MAGIC "%d\n", CKPT_STORE_FORMAT);

	return io_publish(d->b.io, d->dirfd, "FORMAT", buf, (size_t)n);
}

static int layout_create(struct dir_sb *d)
{
	static const char *dirs[] = {"chunks", "runs", "staging"};
	const struct ckpt_io_ops *io = d->b.io;
	int ret, cfd;

	for (size_t i = 0; i < 3; i++) {
		ret = IO(io, mkdirat, d->dirfd, dirs[i], 0755);
		if (ret < 0 && ret != -EEXIST)
			return ret;
	}
	cfd = IO(io, openat, d->dirfd, "chunks", O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0);
	if (cfd < 0)
		return cfd;
	for (int i = 0; i < 256; i++) {
		char sub[3];

		snprintf(sub, sizeof(sub), "%02x", i);
		ret = IO(io, mkdirat, cfd, sub, 0755);
		if (ret < 0 && ret != -EEXIST)
			break;
		ret = 0;
	}
	if (ret == 0)
		ret = IO(io, fsync, cfd);
	IO(io, close, cfd);
	if (ret == 0)
		ret = IO(io, fsync, d->dirfd);
	/* FORMAT last: a store without it is not a store yet */
	return ret ? ret : format_write(d);
}

static DIR *dir_at(int dirfd, const char *name)
{
	int fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	DIR *dir;

	if (fd < 0)
		return NULL;
	dir = fdopendir(fd);
	if (!dir)
		close(fd);
	return dir;
}

static bool dir_is_empty(int dirfd)
{
	DIR *dir = dir_at(dirfd, ".");
	struct dirent *de;
	bool empty = true;

	if (!dir)
		return false;
	while ((de = readdir(dir))) {
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, "..")) {
			empty = false;
			break;
		}
	}
	closedir(dir);
	return empty;
}

static int format_check(struct dir_sb *d, char *err, size_t errlen)
{
	const char *dir = d->b.where;
	char buf[128];
	ssize_t n;
	long v;
	int fd;

	fd = IO(d->b.io, openat, d->dirfd, "FORMAT", O_RDONLY | O_CLOEXEC, 0);
	if (fd < 0)
		return fd;
	n = io_read_full(d->b.io, fd, buf, sizeof(buf) - 1, 0);
	IO(d->b.io, close, fd);
	if (n < 0)
		return (int)n;
	buf[n] = 0;
	if (strncmp(buf, FORMAT_MAGIC, strlen(FORMAT_MAGIC))) {
		snprintf(err, errlen,
			 "%s/FORMAT does not name a ckptfs store format; is %s a ckptfs store? "
			 "Point ckptfs at the store directory, or at an empty directory to create "
			 "one",
			 dir, dir);
		return -EPROTO;
	}
	v = strtol(buf + strlen(FORMAT_MAGIC), NULL, 10);
	if (v != CKPT_STORE_FORMAT) {
		snprintf(
			err, errlen,
			"store %s has format version %ld, but this ckptfs reads format version %d: "
			"open it with a ckptfs release that reads format %ld, or copy its "
			"checkpoints out with that release into a new store",
			dir, v, CKPT_STORE_FORMAT, v);
		return -EPROTO;
	}
	return 0;
}

static void staging_clean(struct dir_sb *d)
{
	DIR *dir = dir_at(d->b.stagefd, ".");
	struct dirent *de;

	if (!dir)
		return;
	while ((de = readdir(dir)))
		if (de->d_name[0] != '.')
			IO(d->b.io, unlinkat, d->b.stagefd, de->d_name, 0);
	closedir(dir);
}

static int subdir_open(struct dir_sb *d, const char *name, int *out)
{
	int fd = IO(d->b.io, openat, d->dirfd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0);

	if (fd < 0)
		return fd;
	*out = fd;
	return 0;
}

static int dir_statvfs(struct sb *b, struct statvfs *st)
{
	return fstatvfs(dir_of(b)->dirfd, st) < 0 ? -errno : 0;
}

static void dir_close(struct sb *b)
{
	struct dir_sb *d = dir_of(b);
	const struct ckpt_io_ops *io = b->io;

	dir_prefetch_stop(d->pf);
	dir_uring_stop(d->uw);
	if (b->stagefd >= 0)
		IO(io, close, b->stagefd);
	if (d->runsfd >= 0)
		IO(io, close, d->runsfd);
	if (d->chunkfd >= 0)
		IO(io, close, d->chunkfd);
	if (d->lockfd >= 0)
		IO(io, close, d->lockfd);
	if (d->dirfd >= 0)
		IO(io, close, d->dirfd);
	free(b->where);
	free(d);
}

/* ---- runs: runs/RUN/{run.json, versions/, open/} ---- */

static int dir_run_list(struct sb *b, sb_name_fn fn, void *arg)
{
	struct dir_sb *d = dir_of(b);
	DIR *dir = dir_at(d->dirfd, "runs");
	struct dirent *de;
	int ret = 0;

	if (!dir)
		return store_err(NULL, -EIO, "cannot list %s/runs", b->where);
	while (ret >= 0 && (de = readdir(dir)))
		if (name_check_kind(de->d_name, NAME_RUN, NULL) == 0)
			ret = fn(arg, de->d_name);
	closedir(dir);
	return ret < 0 ? ret : 0;
}

static int dir_run_create(struct sb *b, const char *run)
{
	struct dir_sb *d = dir_of(b);
	const struct ckpt_io_ops *io = b->io;
	int ret, rfd;

	ret = IO(io, mkdirat, d->runsfd, run, 0755);
	if (ret < 0 && ret != -EEXIST)
		return ret;
	rfd = IO(io, openat, d->runsfd, run, O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0);
	if (rfd < 0)
		return rfd;
	ret = IO(io, mkdirat, rfd, "versions", 0755);
	if (ret == 0 || ret == -EEXIST)
		ret = IO(io, mkdirat, rfd, "open", 0755);
	if (ret == 0 || ret == -EEXIST)
		ret = IO(io, fsync, rfd);
	if (ret == 0)
		ret = IO(io, fsync, d->runsfd);
	IO(io, close, rfd);
	return ret;
}

static int dir_run_remove(struct sb *b, const char *run)
{
	static const char *parts[] = {"run.json", "versions", "open"};
	struct dir_sb *d = dir_of(b);
	const struct ckpt_io_ops *io = b->io;
	int ret, rfd;

	rfd = IO(io, openat, d->runsfd, run, O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0);
	if (rfd >= 0) {
		for (size_t i = 0; i < 3; i++)
			IO(io, unlinkat, rfd, parts[i], i ? AT_REMOVEDIR : 0);
		IO(io, close, rfd);
	}
	ret = IO(io, unlinkat, d->runsfd, run, AT_REMOVEDIR);
	if (ret == 0)
		ret = IO(io, fsync, d->runsfd);
	return ret;
}

static int dir_run_conf_get(struct sb *b, const char *run, char **doc, size_t *len)
{
	struct dir_sb *d = dir_of(b);
	int rfd = openat(d->runsfd, run, O_RDONLY | O_DIRECTORY | O_CLOEXEC), ret;

	if (rfd < 0)
		return -errno;
	ret = io_read_file(b->io, rfd, "run.json", doc, len);
	IO(b->io, unlinkat, rfd, TMP_PREFIX "run.json", 0); /* an interrupted publication */
	close(rfd);
	return ret;
}

/* Publish runs/RUN/SUB/NAME (SUB "" for the run's own directory). */
static int publish_in(struct dir_sb *d, const char *run, const char *sub, const char *name,
		      const char *doc, size_t len)
{
	char path[2 * CKPT_NAME_MAX + 16];
	int dfd, ret;

	snprintf(path, sizeof(path), "%s%s%s", run, sub[0] ? "/" : "", sub);
	dfd = IO(d->b.io, openat, d->runsfd, path, O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0);
	if (dfd < 0)
		return dfd;
	ret = io_publish(d->b.io, dfd, name, doc, len);
	IO(d->b.io, close, dfd);
	return ret;
}

static int dir_run_conf_put(struct sb *b, const char *run, const char *doc, size_t len)
{
	return publish_in(dir_of(b), run, "", "run.json", doc, len);
}

/*
 * List runs/RUN/SUB: leftovers of interrupted publications (.ckpt-tmp-*)
 * are removed, other names that are not version names skipped, and each
 * document read through the seam (doc NULL when it cannot be read). A
 * positive return of fn asks to remove the file (a leftover marker).
 */
static int list_docs(struct dir_sb *d, const char *run, const char *sub, sb_doc_fn fn, void *arg,
		     bool must_exist)
{
	char path[CKPT_NAME_MAX + 16];
	struct dirent *de;
	int vfd, ret = 0;
	DIR *dir;

	snprintf(path, sizeof(path), "%s/%s", run, sub);
	vfd = openat(d->runsfd, path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	dir = dir_at(d->runsfd, path);
	if (vfd < 0 || !dir) {
		if (vfd >= 0)
			close(vfd);
		if (dir)
			closedir(dir);
		if (!must_exist)
			return 0;
		return store_err(NULL, -EIO, "cannot read %s/runs/%s: restore it from a backup",
				 d->b.where, path);
	}
	while (ret >= 0 && (de = readdir(dir))) {
		char *doc = NULL;
		size_t len = 0;

		if (!strncmp(de->d_name, TMP_PREFIX, strlen(TMP_PREFIX))) {
			IO(d->b.io, unlinkat, vfd, de->d_name, 0);
			continue;
		}
		if (name_check_kind(de->d_name, NAME_VERSION, NULL) < 0)
			continue;
		if (io_read_file(d->b.io, vfd, de->d_name, &doc, &len) < 0)
			doc = NULL;
		ret = fn(arg, de->d_name, doc, len);
		free(doc);
		if (ret > 0) {
			IO(d->b.io, unlinkat, vfd, de->d_name, 0);
			ret = 0;
		}
	}
	closedir(dir);
	close(vfd);
	return ret < 0 ? ret : 0;
}

static int dir_manifest_list(struct sb *b, const char *run, sb_doc_fn fn, void *arg)
{
	return list_docs(dir_of(b), run, "versions", fn, arg, true);
}

/* One process owns a dir store (LOCK), so the caller's seq is the next. */
static int dir_manifest_commit(struct sb *b, const char *run, const char *name, const char *open,
			       uint64_t seq_hint, sb_build_fn build, void *arg, uint64_t *seq)
{
	size_t len;
	int ret = -ENOMEM;
	char *doc = build(arg, seq_hint, NULL, 0, &len, &ret);

	(void)open; /* the marker is removed after (a leftover one is known by its id) */
	if (!doc)
		return ret;
	ret = publish_in(dir_of(b), run, "versions", name, doc, len);
	free(doc);
	if (ret == 0)
		*seq = seq_hint;
	return ret;
}

static int dir_manifest_put(struct sb *b, const char *run, const char *name, const char *doc,
			    size_t len)
{
	return publish_in(dir_of(b), run, "versions", name, doc, len);
}

/* Unlink runs/RUN/SUB/NAME, and with `sync` fsync the directory. */
static int unlink_in(struct dir_sb *d, const char *run, const char *sub, const char *name,
		     bool sync)
{
	char path[CKPT_NAME_MAX + 16];
	int dfd, ret;

	snprintf(path, sizeof(path), "%s/%s", run, sub);
	dfd = IO(d->b.io, openat, d->runsfd, path, O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0);
	if (dfd < 0)
		return dfd;
	ret = IO(d->b.io, unlinkat, dfd, name, 0);
	if (ret == 0 && sync)
		ret = IO(d->b.io, fsync, dfd);
	IO(d->b.io, close, dfd);
	return ret;
}

static int dir_manifest_remove(struct sb *b, const char *run, const char *name)
{
	return unlink_in(dir_of(b), run, "versions", name, true);
}

static int dir_marker_list(struct sb *b, const char *run, sb_doc_fn fn, void *arg)
{
	return list_docs(dir_of(b), run, "open", fn, arg, false);
}

static int dir_marker_put(struct sb *b, const char *run, const char *name, const char *doc,
			  size_t len)
{
	return publish_in(dir_of(b), run, "open", name, doc, len);
}

static int dir_marker_remove(struct sb *b, const char *run, const char *name, bool sync)
{
	return unlink_in(dir_of(b), run, "open", name, sync);
}

static int dir_marker_rename(struct sb *b, const char *run, const char *from, const char *to)
{
	struct dir_sb *d = dir_of(b);
	char path[CKPT_NAME_MAX + 8];
	int dfd, ret;

	snprintf(path, sizeof(path), "%s/open", run);
	dfd = IO(b->io, openat, d->runsfd, path, O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0);
	ret = dfd < 0 ? dfd : IO(b->io, renameat, dfd, from, dfd, to);
	if (ret == 0)
		ret = IO(b->io, fsync, dfd);
	if (dfd >= 0)
		IO(b->io, close, dfd);
	return ret;
}

static const struct sb_ops dir_ops = {
	.close = dir_close,
	.statvfs = dir_statvfs,
	.chunk_put = dir_chunk_put,
	.chunk_get = dir_chunk_get,
	.chunk_stat = dir_chunk_stat,
	.chunk_hash = dir_chunk_hash,
	.chunk_scan = dir_chunk_scan,
	.chunk_remove = dir_chunk_remove,
	.chunk_sync = dir_chunk_sync,
	.chunk_hint = dir_chunk_hint,
	.run_list = dir_run_list,
	.run_create = dir_run_create,
	.run_remove = dir_run_remove,
	.run_conf_get = dir_run_conf_get,
	.run_conf_put = dir_run_conf_put,
	.manifest_list = dir_manifest_list,
	.manifest_commit = dir_manifest_commit,
	.manifest_put = dir_manifest_put,
	.manifest_remove = dir_manifest_remove,
	.marker_list = dir_marker_list,
	.marker_put = dir_marker_put,
	.marker_remove = dir_marker_remove,
	.marker_rename = dir_marker_rename,
};

static int lock_store(struct dir_sb *d, unsigned wait_ms, char *err, size_t errlen)
{
	bool locked;
	int ret;

	d->lockfd = IO(d->b.io, openat, d->dirfd, "LOCK", O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (d->lockfd < 0) {
		ret = d->lockfd;
		snprintf(err, errlen, "cannot open %s/LOCK: %s", d->b.where, strerror(-ret));
		return ret;
	}
	locked = flock(d->lockfd, LOCK_EX | LOCK_NB) == 0;
	for (unsigned waited = 0; !locked && waited < wait_ms; waited += 50) {
		usleep(50 * 1000);
		locked = flock(d->lockfd, LOCK_EX | LOCK_NB) == 0;
	}
	if (!locked) {
		snprintf(
			err, errlen,
			"store %s is in use by another process (a ckptfs mount or a ckpt command): "
			"stop it or work through its mount",
			d->b.where);
		return -EBUSY;
	}
	return 0;
}

int dir_open(const char *dir, const struct ckpt_store_opts *opts, struct sb **out, char *err,
	     size_t errlen)
{
	struct dir_sb *d = calloc(1, sizeof(*d));
	int ret;

	if (!d)
		return -ENOMEM;
	d->b.ops = &dir_ops;
	d->b.io = opts->io ? opts->io : &ckpt_io_default;
	d->b.local_dedup = true;
	d->dirfd = d->chunkfd = d->runsfd = d->b.stagefd = d->lockfd = -1;
	if (opts->direct_io == CKPT_DIRECT_ON)
		d->no_direct = false;
	else if (opts->direct_io == CKPT_DIRECT_OFF)
		d->no_direct = true;
	else
		d->no_direct = !DIR_DEF_DIRECT;
	d->b.zero_copy = d->no_direct;
	d->b.where = strdup(dir);
	if (!d->b.where) {
		free(d);
		return -ENOMEM;
	}

	if (opts->create)
		mkdir(dir, 0755); /* EEXIST is fine; other errors show up below */
	d->dirfd = IO(d->b.io, openat, AT_FDCWD, dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0);
	if (d->dirfd < 0) {
		ret = d->dirfd;
		snprintf(err, errlen, "cannot open store directory %s: %s%s", dir, strerror(-ret),
			 ret == -ENOENT ? " (create it, or let ckptfs create the store)" : "");
		goto fail;
	}
	ret = format_check(d, err, errlen);
	if (ret == -ENOENT) {
		if (!opts->create || !dir_is_empty(d->dirfd)) {
			snprintf(err, errlen, "%s is not a ckptfs store (no FORMAT file)%s", dir,
				 opts->create
					 ? " and not empty: use an empty directory for a new store"
					 : ": create one in an empty directory");
			ret = -EINVAL;
			goto fail;
		}
		ret = layout_create(d);
		if (ret < 0) {
			snprintf(err, errlen, "cannot create the store layout in %s: %s", dir,
				 strerror(-ret));
			goto fail;
		}
	} else if (ret < 0) {
		if (!err[0])
			snprintf(err, errlen, "cannot read %s/FORMAT: %s", dir, strerror(-ret));
		goto fail;
	}
	ret = lock_store(d, opts->lock_wait_ms, err, errlen);
	if (ret < 0)
		goto fail;
	if ((ret = subdir_open(d, "chunks", &d->chunkfd)) < 0 ||
	    (ret = subdir_open(d, "runs", &d->runsfd)) < 0 ||
	    (ret = subdir_open(d, "staging", &d->b.stagefd)) < 0) {
		snprintf(err, errlen,
			 "store %s is missing part of its layout (%s): restore it "
			 "from a backup",
			 dir, strerror(-ret));
		goto fail;
	}
	staging_clean(d);
	ret = dir_uring_start(d, &d->uw);
	if (ret < 0) {
		snprintf(err, errlen, "cannot start the chunk writer: %s", strerror(-ret));
		goto fail;
	}
	ret = dir_prefetch_start(d, &d->pf);
	if (ret < 0)
		goto fail;
	*out = &d->b;
	return 0;
fail:
	dir_close(&d->b);
	return ret;
}
