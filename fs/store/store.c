// SPDX-License-Identifier: MIT
/*
 * store.c - opening and closing a store: the FORMAT check, the layout on
 * first use, the lock that keeps a second process out, names, and the
 * per-thread error sentences.
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
#include <time.h>
#include <unistd.h>

#include "ckptfs/utf8.h"
#include "store_i.h"

#define FORMAT_MAGIC "ckptfs-store format "

static __thread char errbuf[512];

int store_err(struct ckpt_store *s, int ret, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(errbuf, sizeof(errbuf), fmt, ap);
	va_end(ap);
	return ret;
}

void store_log(const char *fmt, ...)
{
	char line[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	fprintf(stderr, "ckptfs-store[%d]: %s\n", (int)getpid(), line);
}

const char *ckpt_store_strerror(struct ckpt_store *s)
{
	return errbuf[0] ? errbuf : "no error";
}

int64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

const char *ckpt_vstate_name(enum ckpt_vstate st)
{
	switch (st) {
	case CKPT_V_OPEN:
		return "open";
	case CKPT_V_COMMITTED:
		return "committed";
	case CKPT_V_INCOMPLETE:
		return "incomplete";
	case CKPT_V_CORRUPT:
		return "corrupt";
	case CKPT_V_RETIRED:
		return "retired";
	}
	return "unknown";
}

/* kind 0: path component, 1: run, 2: version (also not "latest"/"best") */
int name_check_kind(const char *name, int kind, const char **why)
{
	const char *w = NULL;
	size_t l = name ? strlen(name) : 0;
	int ret = -EINVAL;

	if (!l)
		w = "the name is empty";
	else if (l > CKPT_NAME_MAX) {
		w = "the name is longer than 255 bytes";
		ret = -ENAMETOOLONG;
	} else if (!strcmp(name, ".") || !strcmp(name, ".."))
		w = "\".\" and \"..\" are not names";
	else if (strchr(name, '/'))
		w = "a name cannot contain '/'";
	else if (!ckpt_utf8_valid(name, l))
		w = "the name is not valid UTF-8";
	else if (!strncmp(name, ".ckpt", 5) || !strcmp(name, ".manifest") ||
		 !strcmp(name, ".stats"))
		w = "names starting with \".ckpt\", \".manifest\" and \".stats\" are reserved";
	else if (kind == 2 && (!strcmp(name, "latest") || !strcmp(name, "best")))
		w = "\"latest\" and \"best\" are reserved in a run";
	else {
		for (size_t i = 0; i < l; i++) {
			unsigned char c = (unsigned char)name[i];

			if (c < 0x20 || c == 0x7f) {
				w = "the name contains a control character";
				break;
			}
		}
	}
	if (why)
		*why = w;
	return w ? ret : 0;
}

int ckpt_name_check(const char *name, const char **why)
{
	return name_check_kind(name, 0, why);
}

static int format_write(struct ckpt_store *s)
{
	char buf[64];
	int n = snprintf(buf, sizeof(buf), FORMAT_MAGIC "%d\n", CKPT_STORE_FORMAT);

	return io_publish(s, s->dirfd, "FORMAT", buf, (size_t)n);
}

static int layout_create(struct ckpt_store *s)
{
	static const char *dirs[] = {"chunks", "runs", "staging"};
	int ret, cfd;

	for (size_t i = 0; i < 3; i++) {
		ret = IO(s, mkdirat, s->dirfd, dirs[i], 0755);
		if (ret < 0 && ret != -EEXIST)
			return ret;
	}
	cfd = IO(s, openat, s->dirfd, "chunks", O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0);
	if (cfd < 0)
		return cfd;
	for (int i = 0; i < 256; i++) {
		char d[3];

		snprintf(d, sizeof(d), "%02x", i);
		ret = IO(s, mkdirat, cfd, d, 0755);
		if (ret < 0 && ret != -EEXIST)
			break;
		ret = 0;
	}
	if (ret == 0)
		ret = IO(s, fsync, cfd);
	IO(s, close, cfd);
	if (ret == 0)
		ret = IO(s, fsync, s->dirfd);
	/* FORMAT last: a store without it is not a store yet */
	return ret ? ret : format_write(s);
}

static bool dir_is_empty(int dirfd)
{
	int fd = dup(dirfd);
	struct dirent *de;
	bool empty = true;
	DIR *d;

	if (fd < 0)
		return false;
	d = fdopendir(fd);
	if (!d) {
		close(fd);
		return false;
	}
	rewinddir(d);
	while ((de = readdir(d))) {
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, "..")) {
			empty = false;
			break;
		}
	}
	closedir(d);
	return empty;
}

static int format_check(struct ckpt_store *s, char *err, size_t errlen)
{
	char buf[128];
	ssize_t n;
	long v;
	int fd;

	fd = IO(s, openat, s->dirfd, "FORMAT", O_RDONLY | O_CLOEXEC, 0);
	if (fd < 0)
		return fd;
	n = io_read_full(s, fd, buf, sizeof(buf) - 1, 0);
	IO(s, close, fd);
	if (n < 0)
		return (int)n;
	buf[n] = 0;
	if (strncmp(buf, FORMAT_MAGIC, strlen(FORMAT_MAGIC))) {
		snprintf(err, errlen,
			 "%s/FORMAT does not name a ckptfs store format; is %s a ckptfs store? "
			 "Point ckptfs at the store directory, or at an empty directory to create "
			 "one",
			 s->dir, s->dir);
		return -EPROTO;
	}
	v = strtol(buf + strlen(FORMAT_MAGIC), NULL, 10);
	if (v != CKPT_STORE_FORMAT) {
		snprintf(
			err, errlen,
			"store %s has format version %ld, but this ckptfs reads format version %d: "
			"open it with a ckptfs release that reads format %ld, or copy its "
			"checkpoints out with that release into a new store",
			s->dir, v, CKPT_STORE_FORMAT, v);
		return -EPROTO;
	}
	return 0;
}

static void staging_clean(struct ckpt_store *s)
{
	int fd = dup(s->stagefd);
	struct dirent *de;
	DIR *d;

	if (fd < 0)
		return;
	d = fdopendir(fd);
	if (!d) {
		close(fd);
		return;
	}
	while ((de = readdir(d)))
		if (de->d_name[0] != '.')
			IO(s, unlinkat, s->stagefd, de->d_name, 0);
	closedir(d);
}

static int subdir_open(struct ckpt_store *s, const char *name, int *out)
{
	int fd = IO(s, openat, s->dirfd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0);

	if (fd < 0)
		return fd;
	*out = fd;
	return 0;
}

int ckpt_store_open_err(const char *dir, const struct ckpt_store_opts *opts,
			struct ckpt_store **out, char *err, size_t errlen)
{
	static const struct ckpt_store_opts defaults = {0};
	struct ckpt_store *s;
	char dummy[8];
	bool locked;
	int ret;

	if (!err) {
		err = dummy;
		errlen = sizeof(dummy);
	}
	err[0] = 0;
	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	pthread_mutex_init(&s->lock, NULL);
	pthread_mutex_init(&s->ilock, NULL);
	s->dirfd = s->chunkfd = s->runsfd = s->stagefd = s->lockfd = -1;
	s->opts = opts ? *opts : defaults;
	s->io = s->opts.io ? s->opts.io : &ckpt_io_default;
	s->dir = strdup(dir);
	s->next_seq = 1;
	if (!s->dir) {
		ret = -ENOMEM;
		goto fail;
	}
	if (!s->opts.chunk_size)
		s->opts.chunk_size = STORE_DEF_CHUNK;
	if (s->opts.direct_io == CKPT_DIRECT_ON)
		s->no_direct = false;
	else if (s->opts.direct_io == CKPT_DIRECT_OFF)
		s->no_direct = true;
	else
		s->no_direct = !STORE_DEF_DIRECT;
	if (!s->opts.inflight_bytes)
		s->opts.inflight_bytes = STORE_DEF_INFLIGHT;
	if (s->opts.chunk_size < 4096 || s->opts.chunk_size > (64u << 20)) {
		snprintf(err, errlen, "chunk size %zu is out of range: use 4 KiB to 64 MiB",
			 s->opts.chunk_size);
		ret = -EINVAL;
		goto fail;
	}

	if (s->opts.create)
		mkdir(dir, 0755); /* EEXIST is fine; other errors show up below */
	s->dirfd = IO(s, openat, AT_FDCWD, dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0);
	if (s->dirfd < 0) {
		ret = s->dirfd;
		snprintf(err, errlen, "cannot open store directory %s: %s%s", dir, strerror(-ret),
			 ret == -ENOENT ? " (create it, or let ckptfs create the store)" : "");
		goto fail;
	}
	ret = format_check(s, err, errlen);
	if (ret == -ENOENT) {
		if (!s->opts.create || !dir_is_empty(s->dirfd)) {
			snprintf(err, errlen, "%s is not a ckptfs store (no FORMAT file)%s", dir,
				 s->opts.create
					 ? " and not empty: use an empty directory for a new store"
					 : ": create one in an empty directory");
			ret = -EINVAL;
			goto fail;
		}
		ret = layout_create(s);
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

	s->lockfd = IO(s, openat, s->dirfd, "LOCK", O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (s->lockfd < 0) {
		ret = s->lockfd;
		snprintf(err, errlen, "cannot open %s/LOCK: %s", dir, strerror(-ret));
		goto fail;
	}
	locked = flock(s->lockfd, LOCK_EX | LOCK_NB) == 0;
	for (unsigned waited = 0; !locked && waited < s->opts.lock_wait_ms; waited += 50) {
		usleep(50 * 1000);
		locked = flock(s->lockfd, LOCK_EX | LOCK_NB) == 0;
	}
	if (!locked) {
		ret = -EBUSY;
		snprintf(
			err, errlen,
			"store %s is in use by another process (a ckptfs mount or a ckpt command): "
			"stop it or work through its mount",
			dir);
		goto fail;
	}
	if ((ret = subdir_open(s, "chunks", &s->chunkfd)) < 0 ||
	    (ret = subdir_open(s, "runs", &s->runsfd)) < 0 ||
	    (ret = subdir_open(s, "staging", &s->stagefd)) < 0) {
		snprintf(err, errlen,
			 "store %s is missing part of its layout (%s): restore it "
			 "from a backup",
			 dir, strerror(-ret));
		goto fail;
	}
	staging_clean(s);
	chunker_init(&s->chunker, s->opts.chunking, s->opts.chunk_size);
	ret = uw_start(s, s->opts.inflight_bytes, &s->uw);
	if (ret < 0) {
		snprintf(err, errlen, "cannot start the chunk writer: %s", strerror(-ret));
		goto fail;
	}
	ret = pf_start(s, &s->pf);
	if (ret == 0)
		ret = rc_start(s, &s->rc);
	if (ret < 0)
		goto fail;
	ret = run_load_all(s);
	if (ret < 0) {
		snprintf(err, errlen, "cannot load the store %s: %s", dir, ckpt_store_strerror(s));
		goto fail;
	}
	*out = s;
	return 0;
fail:
	store_err(s, ret, "%s", err);
	ckpt_store_close(s);
	return ret;
}

int ckpt_store_open(const char *dir, const struct ckpt_store_opts *opts, struct ckpt_store **out)
{
	char err[512];
	int ret = ckpt_store_open_err(dir, opts, out, err, sizeof(err));

	if (ret < 0)
		store_err(NULL, ret, "%s", err);
	return ret;
}

void ckpt_store_close(struct ckpt_store *s)
{
	if (!s)
		return;
	pf_stop(s->pf);
	rc_stop(s->rc);
	uw_stop(s->uw);
	s->uw = NULL;
	for (size_t i = 0; i < s->nruns; i++)
		run_free(s, s->runs[i]);
	free(s->runs);
	cindex_free(&s->ix);
	if (s->stagefd >= 0)
		IO(s, close, s->stagefd);
	if (s->runsfd >= 0)
		IO(s, close, s->runsfd);
	if (s->chunkfd >= 0)
		IO(s, close, s->chunkfd);
	if (s->lockfd >= 0)
		IO(s, close, s->lockfd);
	if (s->dirfd >= 0)
		IO(s, close, s->dirfd);
	pthread_mutex_destroy(&s->lock);
	pthread_mutex_destroy(&s->ilock);
	free(s->dir);
	free(s);
}

int ckpt_store_statvfs(struct ckpt_store *s, struct statvfs *st)
{
	return fstatvfs(s->dirfd, st) < 0 ? -errno : 0;
}

void ckpt_strv_free(char **v, size_t n)
{
	if (!v)
		return;
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}
