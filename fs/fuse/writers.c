// SPDX-License-Identifier: MIT
/*
 * writers.c - the extended attributes of versions written by many
 * processes (SPEC §9, docs/mount.md "Many writers"):
 *
 *   user.ckpt.writers  rw, remove: N, the writers whose parts make it whole
 *   user.ckpt.parts    read: the writers that have committed theirs ("0, 2")
 *   user.ckpt.commit   write "1": commit the version now;
 *                      write "rank=K": writer K's part is done; the last
 *                      part commits the version
 *
 * The rules live in the store (fs/store/parts.c); this is their syntax.
 */
#include "ckptfs_i.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

bool cfs_writers_key(const char *key)
{
	return !strcmp(key, "writers") || !strcmp(key, "parts");
}

/* A decimal number up to max, from an xattr value (a trailing newline, as
 * from echo, allowed). */
static int parse_num(const char *value, size_t size, unsigned long max, uint32_t *out)
{
	char b[24], *end;
	unsigned long x;

	if (size && value[size - 1] == '\n')
		size--;
	if (size == 0 || size >= sizeof(b) || value[0] < '0' || value[0] > '9')
		return -EINVAL;
	memcpy(b, value, size);
	b[size] = '\0';
	errno = 0;
	x = strtoul(b, &end, 10);
	if (errno || *end || x > max)
		return -EINVAL;
	*out = (uint32_t)x;
	return 0;
}

int cfs_writers_get(struct cfs *c, const struct cfs_path *p, const char *key, char *buf, size_t len)
{
	uint32_t n, done;
	char parts[1024];
	int ret;

	ret = ckpt_version_writers(c->store, p->run, p->ver, &n, &done, parts, sizeof(parts));
	if (ret < 0)
		return ret;
	if (!n)
		return -ENODATA;
	if (!strcmp(key, "writers"))
		return snprintf(buf, len, "%u", n);
	return snprintf(buf, len, "%s", parts);
}

int cfs_writers_set(struct cfs *c, const struct cfs_path *p, const char *key, const char *value,
		    size_t size)
{
	uint32_t n;
	int ret;

	if (strcmp(key, "writers"))
		return -EPERM; /* parts: read-only */
	ret = parse_num(value, size, CKPT_WRITERS_MAX, &n);
	if (ret < 0 || n == 0)
		return -EINVAL;
	ret = ckpt_version_set_writers(c->store, p->run, p->ver, n);
	if (ret < 0)
		cfs_log("%s/%s: %s", p->run, p->ver, ckpt_store_strerror(c->store));
	return ret;
}

int cfs_writers_remove(struct cfs *c, const struct cfs_path *p, const char *key)
{
	uint32_t n, done;
	int ret;

	if (strcmp(key, "writers"))
		return -EPERM;
	ret = ckpt_version_writers(c->store, p->run, p->ver, &n, &done, NULL, 0);
	if (ret == 0 && !n)
		return -ENODATA;
	return ret < 0 ? ret : ckpt_version_set_writers(c->store, p->run, p->ver, 0);
}

int cfs_commit_xattr(struct cfs *c, const struct cfs_path *p, const char *value, size_t size)
{
	bool committed = true;
	uint32_t k;
	int ret;

	bool part = size > 5 && !memcmp(value, "rank=", 5);

	if (part) {
		ret = parse_num(value + 5, size - 5, CKPT_WRITERS_MAX, &k);
		if (ret < 0)
			return ret;
	} else if (!((size == 1 || (size == 2 && value[1] == '\n')) && value[0] == '1')) {
		return -EINVAL;
	}
	/* what mapped handles hold dirty goes into the commit (ops_file.c) */
	cfs_files_writeback(c, p->run, p->ver);
	if (part)
		ret = ckpt_version_commit_part(c->store, p->run, p->ver, k, &committed);
	else
		ret = ckpt_version_commit(c->store, p->run, p->ver, NULL);
	if (ret < 0) {
		cfs_log("commit of %s/%s failed: %s", p->run, p->ver,
			ckpt_store_strerror(c->store));
		return ret;
	}
	if (committed) {
		cfs_track_forget(c, p->run, p->ver);
		cfs_files_committed(c, p->run, p->ver);
		cfs_version_committed(c, p->run, p->ver);
		cfs_fill_queue(c, p->run, p->ver);
	}
	return 0;
}
