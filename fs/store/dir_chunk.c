// SPDX-License-Identifier: MIT
/*
 * dir_chunk.c - the dir backend's chunk files: chunks/<2 hex>/<32 hex>,
 * each holding one chunk's bytes. Written through dir_uring.c (O_DIRECT
 * for page-aligned whole-page chunks, buffered otherwise), read whole (with
 * O_DIRECT into a page-aligned buffer where it can), made durable with one
 * syncfs, listed and removed by gc.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#include "dir_i.h"

#define VF_PIECE (128u << 10) /* chunk_hash reads in pieces that stay in the CPU cache */

void dir_chunk_relpath(const uint8_t *h, char *out)
{
	chunk_hex(h, out + 3);
	out[0] = out[3];
	out[1] = out[4];
	out[2] = '/';
}

void dir_no_direct(struct dir_sb *d)
{
	d->no_direct = true;
	d->b.zero_copy = true;
}

/*
 * Chunk buffers are the store's own copy of the data, so a page-aligned
 * chunk of a whole number of pages goes with O_DIRECT: no second copy into
 * the page cache, and little left for syncfs to write back at commit. Other
 * chunks (the tail of a file, CDC chunks) are written buffered. A chunk
 * file left by a crash (not trusted) is rewritten: O_TRUNC.
 */
static int chunk_create(struct dir_sb *d, const char *rel, const uint8_t *buf, size_t len)
{
	int flags = O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, fd;
	bool direct = !d->no_direct && len % CHUNK_ALIGN == 0 && (uintptr_t)buf % CHUNK_ALIGN == 0;

	if (direct) {
		fd = IO(d->b.io, openat, d->chunkfd, rel, flags | O_DIRECT, 0444);
		if (fd != -EINVAL)
			return fd;
		dir_no_direct(d); /* e.g. tmpfs: buffered from now on */
	}
	return IO(d->b.io, openat, d->chunkfd, rel, flags, 0444);
}

int dir_chunk_put(struct sb *b, struct sb_put *p)
{
	struct dir_sb *d = dir_of(b);
	char rel[CHUNK_HEX_LEN + 4];
	int fd;

	dir_chunk_relpath(p->h, rel);
	fd = chunk_create(d, rel, p->buf, p->len);
	if (fd < 0)
		return fd;
	return dir_uring_write(d->uw, fd, p);
}

/*
 * Where the store bypasses the page cache and `buf` allows it (page
 * aligned, room for the length rounded up to a page), the read is O_DIRECT:
 * the disk fills `buf` itself, with no page-cache copy.
 */
ssize_t dir_chunk_get(struct sb *b, const uint8_t *h, uint32_t len, uint8_t *buf, size_t cap)
{
	struct dir_sb *d = dir_of(b);
	size_t want = (len + CHUNK_ALIGN - 1) / CHUNK_ALIGN * CHUNK_ALIGN;
	bool direct = !d->no_direct && want <= cap && (uintptr_t)buf % CHUNK_ALIGN == 0;
	char rel[CHUNK_HEX_LEN + 4];
	ssize_t n;
	int fd = -EINVAL;

	dir_chunk_relpath(h, rel);
	if (direct)
		fd = IO(b->io, openat, d->chunkfd, rel, O_RDONLY | O_CLOEXEC | O_DIRECT, 0);
	if (fd == -EINVAL) { /* not asked for, or refused (e.g. tmpfs) */
		if (direct)
			dir_no_direct(d); /* buffered from now on, as chunk_create does */
		direct = false;
		fd = IO(b->io, openat, d->chunkfd, rel, O_RDONLY | O_CLOEXEC, 0);
	}
	if (fd < 0)
		return fd;
	/* one O_DIRECT read of the rounded-up length ends at the file's end */
	n = direct ? IO(b->io, pread, fd, buf, want, 0) : io_read_full(b->io, fd, buf, len, 0);
	IO(b->io, close, fd);
	return n;
}

int dir_chunk_stat(struct sb *b, const uint8_t *h, uint64_t *size)
{
	char rel[CHUNK_HEX_LEN + 4];
	struct stat st;

	dir_chunk_relpath(h, rel);
	if (fstatat(dir_of(b)->chunkfd, rel, &st, 0) < 0)
		return -errno;
	*size = (uint64_t)st.st_size;
	return 0;
}

/* Read chunk h in pieces and hash it with the streaming XXH3 (the same
 * digest as one shot) in a buffer that stays in the CPU cache. */
int dir_chunk_hash(struct sb *b, const uint8_t *h, uint32_t len, uint8_t *out)
{
	struct dir_sb *d = dir_of(b);
	char rel[CHUNK_HEX_LEN + 4];
	XXH128_canonical_t can;
	uint8_t buf[VF_PIECE]; /* worker threads have the default 8 MiB stacks */
	XXH3_state_t *st;
	uint64_t done = 0;
	int fd, ret = 0;

	dir_chunk_relpath(h, rel);
	fd = IO(b->io, openat, d->chunkfd, rel, O_RDONLY | O_CLOEXEC, 0);
	if (fd < 0)
		return fd == -ENOENT ? -EBADMSG : fd;
	st = XXH3_createState();
	if (!st) {
		ret = -ENOMEM;
		goto out;
	}
	XXH3_128bits_reset(st);
	while (done < len) {
		size_t want = len - done < VF_PIECE ? (size_t)(len - done) : VF_PIECE;
		ssize_t n = io_read_full(b->io, fd, buf, want, (off_t)done);

		if (n < 0) {
			ret = (int)n;
			break;
		}
		if ((size_t)n != want) { /* short chunk file */
			ret = -EBADMSG;
			break;
		}
		XXH3_128bits_update(st, buf, want);
		done += want;
	}
	if (ret == 0) {
		XXH128_canonicalFromHash(&can, XXH3_128bits_digest(st));
		memcpy(out, can.digest, CHUNK_HASH_LEN);
	}
out:
	IO(b->io, close, fd);
	XXH3_freeState(st);
	return ret;
}

int dir_chunk_scan(struct sb *b, sb_chunk_fn fn, void *arg)
{
	struct dir_sb *d = dir_of(b);
	int ret = 0;

	for (int i = 0; i < 256 && ret >= 0; i++) {
		char sub[3];
		struct dirent *de;
		DIR *dir;
		int fd;

		snprintf(sub, sizeof(sub), "%02x", i);
		fd = openat(d->chunkfd, sub, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (fd < 0)
			continue;
		dir = fdopendir(fd);
		if (!dir) {
			close(fd);
			continue;
		}
		while (ret >= 0 && (de = readdir(dir))) {
			uint8_t h[CHUNK_HASH_LEN];

			if (chunk_unhex(de->d_name, h) == 0)
				ret = fn(arg, h);
		}
		closedir(dir);
	}
	return ret < 0 ? ret : 0;
}

int dir_chunk_remove(struct sb *b, const uint8_t *h, uint64_t *bytes)
{
	struct dir_sb *d = dir_of(b);
	char rel[CHUNK_HEX_LEN + 4];
	struct stat st;
	int fd, ret;

	dir_chunk_relpath(h, rel);
	rel[2] = 0; /* the fan-out directory, then the name */
	fd = openat(d->chunkfd, rel, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (fstatat(fd, rel + 3, &st, 0) < 0)
		ret = -errno;
	else
		ret = IO(b->io, unlinkat, fd, rel + 3, 0);
	if (ret == 0)
		*bytes = (uint64_t)st.st_size;
	close(fd);
	return ret;
}

/* One syncfs makes every chunk written so far durable, with its directory
 * entry, in one journal commit instead of one fsync per chunk. */
int dir_chunk_sync(struct sb *b)
{
	return IO(b->io, syncfs, dir_of(b)->dirfd);
}

void dir_chunk_hint(struct sb *b, const uint8_t *h, uint32_t len)
{
	dir_prefetch_queue(dir_of(b)->pf, h, len);
}
