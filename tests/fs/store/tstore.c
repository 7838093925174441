// SPDX-License-Identifier: MIT
/* tstore.c - helpers for the store tests (see tstore.h). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include "tstore.h"

/* Directories made by ts_tmpdir and not yet removed: removed at exit, so a
 * failed assertion (cmocka longjmps out of the test) leaves nothing behind. */
#define TS_MAXDIRS 64
static char ts_dirs[TS_MAXDIRS][512];
static pid_t ts_owner;

static void ts_cleanup_all(void)
{
	if (getpid() != ts_owner)
		return; /* a forked child must not remove its parent's directories */
	for (int i = 0; i < TS_MAXDIRS; i++) {
		if (ts_dirs[i][0]) {
			char d[512];

			memcpy(d, ts_dirs[i], sizeof(d));
			ts_rmtree(d);
		}
	}
}

char *ts_tmpdir(const char *tag)
{
	const char *t = getenv("TMPDIR");
	char *p;

	if (asprintf(&p, "%s/ckpt-%s-XXXXXX", t && *t ? t : "/tmp", tag) < 0)
		return NULL;
	if (!mkdtemp(p)) {
		free(p);
		return NULL;
	}
	if (!ts_owner) {
		ts_owner = getpid();
		atexit(ts_cleanup_all);
	}
	for (int i = 0; i < TS_MAXDIRS; i++) {
		if (!ts_dirs[i][0] && strlen(p) < sizeof(ts_dirs[i])) {
			memcpy(ts_dirs[i], p, strlen(p) + 1);
			break;
		}
	}
	return p;
}

static int rm_cb(const char *p, const struct stat *st, int flag, struct FTW *f)
{
	return remove(p);
}

void ts_rmtree(const char *dir)
{
	if (!dir)
		return;
	nftw(dir, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
	for (int i = 0; i < TS_MAXDIRS; i++)
		if (ts_dirs[i][0] && !strcmp(ts_dirs[i], dir))
			ts_dirs[i][0] = 0;
}

static uint64_t word_at(uint64_t seed, uint64_t w)
{
	uint64_t z = (w + seed * 0x9e3779b97f4a7c15ull) * 0xbf58476d1ce4e5b9ull;

	z ^= z >> 31;
	z *= 0x94d049bb133111ebull;
	z ^= z >> 29;
	return z;
}

void ts_fill(uint64_t seed, uint64_t off, uint8_t *buf, size_t len)
{
	/* 8-byte words of a counter hash: cheap, determined by position */
	size_t i = 0;

	while (i < len && (off + i) % 8) {
		uint64_t pos = off + i;

		buf[i++] = (uint8_t)(word_at(seed, pos >> 3) >> ((pos & 7) * 8));
	}
	for (; i + 8 <= len; i += 8) {
		uint64_t z = word_at(seed, (off + i) >> 3);

		memcpy(buf + i, &z, 8); /* little endian: byte k is z >> 8k */
	}
	for (; i < len; i++) {
		uint64_t pos = off + i;

		buf[i] = (uint8_t)(word_at(seed, pos >> 3) >> ((pos & 7) * 8));
	}
}

int ts_write_file(struct ckpt_store *s, const char *run, const char *ver, const char *path,
		  uint64_t seed, uint64_t size, size_t wsize)
{
	struct ckpt_file *f;
	uint8_t *buf = malloc(wsize ? wsize : 1);
	uint64_t off = 0;
	int ret;

	if (!buf)
		return -ENOMEM;
	ret = ckpt_file_open(s, run, ver, path, O_WRONLY | O_CREAT | O_TRUNC, 0644, &f);
	if (ret < 0) {
		free(buf);
		return ret;
	}
	while (off < size) {
		size_t n = size - off < wsize ? (size_t)(size - off) : wsize;
		ssize_t w;

		ts_fill(seed, off, buf, n);
		w = ckpt_file_pwrite(f, buf, n, off);
		if (w < 0) {
			ret = (int)w;
			break;
		}
		off += n;
	}
	{
		int c = ckpt_file_close(f);

		if (ret == 0)
			ret = c;
	}
	free(buf);
	return ret;
}

int ts_check_file(struct ckpt_store *s, const char *run, const char *ver, const char *path,
		  uint64_t seed, uint64_t size)
{
	size_t bs = 1 << 20;
	uint8_t *a = malloc(bs), *b = malloc(bs);
	struct ckpt_file *f;
	uint64_t off = 0;
	int ret;

	ret = ckpt_file_open(s, run, ver, path, O_RDONLY, 0, &f);
	if (ret < 0)
		goto out;
	while (off < size) {
		size_t n = size - off < bs ? (size_t)(size - off) : bs;
		ssize_t r = ckpt_file_pread(f, a, n, off);

		if (r < 0) {
			ret = (int)r;
			break;
		}
		ts_fill(seed, off, b, n);
		if ((size_t)r != n || memcmp(a, b, n)) {
			ret = 1;
			break;
		}
		off += n;
	}
	if (ret == 0 && ckpt_file_pread(f, a, 1, size) != 0)
		ret = 1; /* longer than it should be */
	ckpt_file_close(f);
out:
	free(a);
	free(b);
	return ret;
}

int ts_export(struct ckpt_store *s, const char *run, const char *ver, const char *path,
	      const char *dest)
{
	size_t bs = 1 << 20;
	uint8_t *a = malloc(bs);
	struct ckpt_file *f;
	uint64_t off = 0;
	int fd, ret;

	ret = ckpt_file_open(s, run, ver, path, O_RDONLY, 0, &f);
	if (ret < 0) {
		free(a);
		return ret;
	}
	fd = open(dest, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	for (;;) {
		ssize_t r = ckpt_file_pread(f, a, bs, off);

		if (r <= 0) {
			ret = (int)r;
			break;
		}
		if (write(fd, a, (size_t)r) != r) {
			ret = -EIO;
			break;
		}
		off += (uint64_t)r;
	}
	close(fd);
	ckpt_file_close(f);
	free(a);
	return ret;
}

int ts_xxhsum(const char *path, char *hex33)
{
	char cmd[4200], out[128];
	FILE *p;

	snprintf(cmd, sizeof(cmd), "xxhsum -H2 '%s' 2>/dev/null", path);
	p = popen(cmd, "r");
	if (!p)
		return -errno;
	if (!fgets(out, sizeof(out), p)) {
		pclose(p);
		return -EIO;
	}
	pclose(p);
	/* "XXH128 (file) = hex" (BSD style) or "hex  file" */
	{
		char *eq = strstr(out, "= ");
		const char *h = eq ? eq + 2 : out;

		memcpy(hex33, h, 32);
		hex33[32] = 0;
	}
	return 0;
}

void ts_hex(const uint8_t *h, char *hex33)
{
	for (int i = 0; i < 16; i++)
		sprintf(hex33 + 2 * i, "%02x", h[i]);
}

static uint64_t chunk_total;

static int sum_cb(const char *p, const struct stat *st, int flag, struct FTW *f)
{
	if (flag == FTW_F)
		chunk_total += (uint64_t)st->st_size;
	return 0;
}

uint64_t ts_chunk_bytes(const char *store)
{
	char p[4096];

	snprintf(p, sizeof(p), "%s/chunks", store);
	chunk_total = 0;
	nftw(p, sum_cb, 16, FTW_PHYS);
	return chunk_total;
}
