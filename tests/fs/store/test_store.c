// SPDX-License-Identifier: MIT
/*
 * test_store.c - the store API end to end on a real directory: round trips
 * checked against xxhsum -H2, versions and their states, metadata, names,
 * FORMAT refusal, non-sequential writes, retention, gc, stats.
 */
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "ckptfs/store.h"
#include "tstore.h"

struct fix {
	char *dir;
	struct ckpt_store *s;
	struct ckpt_store_opts o;
};

static int setup(void **state)
{
	struct fix *x = calloc(1, sizeof(*x));

	x->dir = ts_tmpdir("store");
	x->o.create = true;
	assert_int_equal(ckpt_store_open(x->dir, &x->o, &x->s), 0);
	*state = x;
	return 0;
}

static int teardown(void **state)
{
	struct fix *x = *state;

	ckpt_store_close(x->s);
	ts_rmtree(x->dir);
	free(x->dir);
	free(x);
	return 0;
}

static void reopen(struct fix *x)
{
	ckpt_store_close(x->s);
	x->s = NULL;
	assert_int_equal(ckpt_store_open(x->dir, &x->o, &x->s), 0);
}

static void test_first_path(void **state)
{
	struct fix *x = *state;
	struct ckpt_version_info *vi;
	struct ckpt_node_stat st;
	struct ckpt_file *f;
	char **names, buf[64];
	size_t n;

	assert_int_equal(ckpt_run_create(x->s, "run1"), 0);
	assert_int_equal(ckpt_run_create(x->s, "run1"), -EEXIST);
	assert_int_equal(ckpt_version_create(x->s, "run1", "step-1"), 0);
	assert_int_equal(ckpt_node_mkdir(x->s, "run1", "step-1", "sub", 0755), 0);
	assert_int_equal(
		ckpt_file_open(x->s, "run1", "step-1", "sub/a.txt", O_WRONLY | O_CREAT, 0644, &f),
		0);
	assert_int_equal(ckpt_file_pwrite(f, "hello\n", 6, 0), 6);
	assert_int_equal(ckpt_file_close(f), 0);
	{
		struct ckpt_version_info in;

		assert_int_equal(ckpt_version_info(x->s, "run1", "step-1", &in), 0);
		assert_int_equal(in.state, CKPT_V_OPEN);
		assert_int_equal(in.logical_bytes, 6);
	}
	assert_int_equal(ckpt_version_commit(x->s, "run1", "step-1", NULL), 0);
	assert_int_equal(ckpt_version_list(x->s, "run1", &vi, &n), 0);
	assert_int_equal(n, 1);
	assert_int_equal(vi[0].state, CKPT_V_COMMITTED);
	assert_int_equal(vi[0].logical_bytes, 6);
	assert_int_equal(vi[0].nfiles, 1);
	free(vi);
	assert_int_equal(ckpt_node_stat(x->s, "run1", "step-1", "sub/a.txt", &st), 0);
	assert_int_equal(st.type, CKPT_NODE_FILE);
	assert_int_equal(st.size, 6);
	assert_true(st.has_hash);
	assert_int_equal(ckpt_node_list(x->s, "run1", "step-1", "", &names, &n), 0);
	assert_int_equal(n, 1);
	assert_string_equal(names[0], "sub");
	ckpt_strv_free(names, n);
	assert_int_equal(ckpt_file_open(x->s, "run1", "step-1", "sub/a.txt", O_RDONLY, 0, &f), 0);
	assert_int_equal(ckpt_file_pread(f, buf, sizeof(buf), 0), 6);
	assert_memory_equal(buf, "hello\n", 6);
	assert_int_equal(ckpt_file_pread(f, buf, sizeof(buf), 2), 4);
	assert_int_equal(ckpt_file_close(f), 0);
	/* committed is immutable */
	assert_int_equal(ckpt_file_open(x->s, "run1", "step-1", "sub/a.txt", O_WRONLY, 0, &f),
			 -EROFS);
	assert_int_equal(ckpt_node_mkdir(x->s, "run1", "step-1", "d2", 0755), -EROFS);
	reopen(x);
	assert_int_equal(ckpt_node_stat(x->s, "run1", "step-1", "sub/a.txt", &st), 0);
	assert_int_equal(st.size, 6);
	assert_int_equal(ckpt_file_open(x->s, "run1", "step-1", "sub/a.txt", O_RDONLY, 0, &f), 0);
	assert_int_equal(ckpt_file_pread(f, buf, sizeof(buf), 0), 6);
	assert_memory_equal(buf, "hello\n", 6);
	assert_int_equal(ckpt_file_close(f), 0);
	assert_int_equal(ckpt_version_latest(x->s, "run1", buf, sizeof(buf)), 0);
	assert_string_equal(buf, "step-1");
}

#define MiB (1u << 20)

/* files from 0 bytes up; hashes equal xxhsum -H2 of the bytes read back */
static void roundtrip(struct fix *x, enum ckpt_chunking ck)
{
	static const uint64_t sizes[] = {
		0, 1, 4095, MiB - 1, MiB, MiB + 1, 3 * MiB + 7 * 1024 + 3, 37 * MiB + 11};
	static const size_t wsizes[] = {1000, 128 << 10, 4 << 20};
	char path[64], tmp[4200], hex[33], sum[33];
	struct ckpt_node_stat st;
	size_t n = sizeof(sizes) / sizeof(sizes[0]);

	ckpt_store_close(x->s);
	x->o.chunking = ck;
	assert_int_equal(ckpt_store_open(x->dir, &x->o, &x->s), 0);
	assert_int_equal(ckpt_run_create(x->s, "rt"), 0);
	assert_int_equal(ckpt_version_create(x->s, "rt", "v"), 0);
	for (size_t i = 0; i < n; i++) {
		snprintf(path, sizeof(path), "f%zu", i);
		assert_int_equal(
			ts_write_file(x->s, "rt", "v", path, 100 + i, sizes[i], wsizes[i % 3]), 0);
	}
	assert_int_equal(ckpt_version_commit(x->s, "rt", "v", NULL), 0);
	for (int pass = 0; pass < 2; pass++) {
		for (size_t i = 0; i < n; i++) {
			snprintf(path, sizeof(path), "f%zu", i);
			assert_int_equal(ts_check_file(x->s, "rt", "v", path, 100 + i, sizes[i]),
					 0);
			assert_int_equal(ckpt_node_stat(x->s, "rt", "v", path, &st), 0);
			assert_int_equal(st.size, sizes[i]);
			assert_true(st.has_hash);
			snprintf(tmp, sizeof(tmp), "%s/x.export", x->dir);
			assert_int_equal(ts_export(x->s, "rt", "v", path, tmp), 0);
			assert_int_equal(ts_xxhsum(tmp, sum), 0);
			unlink(tmp);
			ts_hex(st.xxh128, hex);
			assert_string_equal(hex, sum);
		}
		reopen(x);
	}
	assert_int_equal(ckpt_store_verify(x->s, NULL, NULL, NULL, NULL, NULL), 0);
}

static void test_roundtrip_fixed(void **state)
{
	roundtrip(*state, CKPT_CHUNK_FIXED);
}

static void test_roundtrip_cdc(void **state)
{
	roundtrip(*state, CKPT_CHUNK_CDC);
}

/* several GiB (CKPT_TEST_LARGE=1 only): hash equals xxhsum -H2 */
static void test_roundtrip_large(void **state)
{
	struct fix *x = *state;
	const char *large = getenv("CKPT_TEST_LARGE");
	uint64_t size = 3ull * 1024 * MiB + 17;
	char tmp[4200], hex[33], sum[33];
	struct ckpt_node_stat st;

	if (!large || *large != '1')
		skip();
	assert_int_equal(ckpt_run_create(x->s, "big"), 0);
	assert_int_equal(ckpt_version_create(x->s, "big", "v"), 0);
	assert_int_equal(ts_write_file(x->s, "big", "v", "model.bin", 77, size, 1 << 20), 0);
	assert_int_equal(ckpt_version_commit(x->s, "big", "v", NULL), 0);
	reopen(x);
	assert_int_equal(ts_check_file(x->s, "big", "v", "model.bin", 77, size), 0);
	assert_int_equal(ckpt_node_stat(x->s, "big", "v", "model.bin", &st), 0);
	snprintf(tmp, sizeof(tmp), "%s/x.export", x->dir);
	assert_int_equal(ts_export(x->s, "big", "v", "model.bin", tmp), 0);
	assert_int_equal(ts_xxhsum(tmp, sum), 0);
	unlink(tmp);
	ts_hex(st.xxh128, hex);
	printf("3 GiB + 17 bytes: store %s, xxhsum -H2 %s\n", hex, sum);
	assert_string_equal(hex, sum);
}

static void test_names(void **state)
{
	struct fix *x = *state;
	static const char *bad[] = {
		"",	   ".", "..", "a/b", "/", "tab\there", "nl\n", "del\x7f", "bad\xff\xfeutf8",
		"\xc0\x80"};
	/* names of the store's own (temporary files, the tree's virtual
	 * files): refused for runs and versions, the user's inside a version
	 * (rsync's temp names are .NAME.XXXXXX), except .manifest at its root */
	static const char *store_own[] = {".ckpt-x", ".ckpt.pt.Ab12Cd", ".manifest", ".stats"};
	char longname[300];
	struct ckpt_file *f;
	const char *why;

	memset(longname, 'x', 256);
	longname[256] = 0;
	assert_int_equal(ckpt_run_create(x->s, "r"), 0);
	assert_int_equal(ckpt_version_create(x->s, "r", "v"), 0);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char p[64];

		why = NULL;
		assert_int_equal(ckpt_name_check(bad[i], &why), -EINVAL);
		assert_non_null(why);
		assert_true(ckpt_run_create(x->s, bad[i]) < 0);
		assert_true(ckpt_version_create(x->s, "r", bad[i]) < 0);
		if (!strchr(bad[i], '/') && bad[i][0]) {
			assert_true(ckpt_node_mkdir(x->s, "r", "v", bad[i], 0755) < 0);
			snprintf(p, sizeof(p), "ok/%s", bad[i]);
			assert_true(ckpt_file_open(x->s, "r", "v", bad[i], O_WRONLY | O_CREAT, 0644,
						   &f) < 0);
		}
	}
	assert_int_equal(ckpt_node_mkdir(x->s, "r", "v", "sub", 0755), 0);
	for (size_t i = 0; i < sizeof(store_own) / sizeof(store_own[0]); i++) {
		bool manifest = !strcmp(store_own[i], ".manifest");
		char p[64];

		assert_int_equal(ckpt_name_check(store_own[i], NULL), 0);
		assert_true(ckpt_run_create(x->s, store_own[i]) < 0);
		assert_true(ckpt_version_create(x->s, "r", store_own[i]) < 0);
		assert_int_equal(
			ckpt_file_open(x->s, "r", "v", store_own[i], O_WRONLY | O_CREAT, 0644, &f),
			manifest ? -EINVAL : 0);
		if (!manifest)
			assert_int_equal(ckpt_file_close(f), 0);
		snprintf(p, sizeof(p), "sub/%s", store_own[i]);
		assert_int_equal(ckpt_node_mkdir(x->s, "r", "v", p, 0755), 0);
	}
	assert_int_equal(ckpt_node_mkdir(x->s, "r", "v", ".manifest", 0755), -EINVAL);
	assert_int_equal(ckpt_node_rename(x->s, "r", "v", ".stats", ".manifest"), -EINVAL);
	assert_int_equal(ckpt_name_check(longname, &why), -ENAMETOOLONG);
	assert_int_equal(ckpt_run_create(x->s, longname), -ENAMETOOLONG);
	assert_int_equal(ckpt_file_open(x->s, "r", "v", longname, O_WRONLY | O_CREAT, 0644, &f),
			 -ENAMETOOLONG);
	assert_true(ckpt_version_create(x->s, "r", "latest") < 0);
	assert_true(ckpt_version_create(x->s, "r", "best") < 0);
	longname[255] = 0;
	assert_int_equal(ckpt_name_check(longname, NULL), 0);
	assert_int_equal(ckpt_name_check("caf\xc3\xa9 step-1", NULL), 0);
	assert_int_equal(ckpt_file_open(x->s, "r", "v", longname, O_WRONLY | O_CREAT, 0644, &f), 0);
	assert_int_equal(ckpt_file_close(f), 0);
	/* nothing of the rejected names reached the disk */
	{
		char **names;
		size_t n;

		assert_int_equal(ckpt_run_list(x->s, &names, &n), 0);
		assert_int_equal(n, 1);
		ckpt_strv_free(names, n);
	}
}

/* write `txt` to dir/rel (directories made as needed) */
static void put_file(const char *dir, const char *rel, const char *txt, size_t len)
{
	char path[4200], *slash;
	int fd;

	snprintf(path, sizeof(path), "%s/%s", dir, rel);
	for (slash = strchr(path + strlen(dir) + 1, '/'); slash; slash = strchr(slash + 1, '/')) {
		*slash = 0;
		mkdir(path, 0755);
		*slash = '/';
	}
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, txt, len), (ssize_t)len);
	close(fd);
}

/*
 * A store written by the code before issue 12 (files copied from one that
 * ckptfs of that time made: mkdir sub, a 0600 file in a 0700 directory,
 * commit by rename): manifests without atime/ctime, without "root", without
 * symlinks or hard links. It opens, reads and verifies; modes show without
 * write bits, atime and ctime are the mtime, the version directory's times
 * are its commit time.
 */
static void test_old_manifest(void **state)
{
	static const char manifest[] =
		"{\"format\":1,\"run\":\"r\",\"version\":\"old\",\"id\":\"517186ccd25d20ff\","
		"\"state\":\"committed\",\"seq\":1,\"created\":\"2026-12-02T06:27:17Z\","
		"\"created_ns\":1796192837330817289,\"committed\":\"2026-12-02T06:27:17Z\","
		"\"committed_ns\":1796192837386828869,\"pinned\":false,\"chunking\":\"fixed\","
		"\"metadata\":{},\"logical_bytes\":16,\"nfiles\":1,\"files\":[{\"path\":\"sub\","
		"\"type\":\"dir\",\"mode\":448,\"mtime_ns\":1796192837337025581},{\"path\":"
		"\"sub/a.txt\",\"type\":\"file\",\"mode\":384,\"mtime_ns\":1796192837337658508,"
		"\"size\":16,\"xxh128\":\"83d52b22487d7eac98bb652bc61db8d4\",\"chunks\":[["
		"\"83d52b22487d7eac98bb652bc61db8d4\",16]]}]}";
	static const char content[] = "hello old store\n";
	struct fix *x = *state;
	struct ckpt_node_stat st;
	struct ckpt_file *f;
	char buf[64];

	ckpt_store_close(x->s);
	x->s = NULL;
	put_file(x->dir, "runs/r/run.json", "{\"metric\":\"\"}", 13);
	put_file(x->dir, "runs/r/versions/old", manifest, sizeof(manifest) - 1);
	{
		char open_dir[4200];

		snprintf(open_dir, sizeof(open_dir), "%s/runs/r/open", x->dir);
		assert_int_equal(mkdir(open_dir, 0755), 0);
	}
	put_file(x->dir, "chunks/83/83d52b22487d7eac98bb652bc61db8d4", content,
		 sizeof(content) - 1);
	assert_int_equal(ckpt_store_open(x->dir, &x->o, &x->s), 0);

	assert_int_equal(ckpt_node_stat(x->s, "r", "old", "sub/a.txt", &st), 0);
	assert_int_equal(st.type, CKPT_NODE_FILE);
	assert_int_equal(st.mode, 0400);
	assert_int_equal(st.size, 16);
	assert_true(st.has_hash);
	assert_int_equal(st.mtime_ns, 1796192837337658508LL);
	assert_int_equal(st.atime_ns, st.mtime_ns);
	assert_int_equal(st.ctime_ns, st.mtime_ns);
	assert_int_equal(ckpt_node_stat(x->s, "r", "old", "sub", &st), 0);
	assert_int_equal(st.mode, 0500);
	assert_int_equal(st.mtime_ns, 1796192837337025581LL);
	assert_int_equal(ckpt_node_stat(x->s, "r", "old", "", &st), 0);
	assert_int_equal(st.mode, 0555);
	assert_int_equal(st.mtime_ns, 1796192837386828869LL);
	assert_int_equal(st.nsubdirs, 1);

	assert_int_equal(ckpt_file_open(x->s, "r", "old", "sub/a.txt", O_RDONLY, 0, &f), 0);
	assert_int_equal(ckpt_file_pread(f, buf, sizeof(buf), 0), 16);
	assert_memory_equal(buf, content, 16);
	assert_int_equal(ckpt_file_close(f), 0);
	assert_int_equal(ckpt_store_verify(x->s, "r", "old", NULL, NULL, NULL), 0);
}

static void test_format_refused(void **state)
{
	struct fix *x = *state;
	char p[4200], err[512];
	struct ckpt_store *s2;
	FILE *fp;

	ckpt_store_close(x->s);
	x->s = NULL;
	snprintf(p, sizeof(p), "%s/FORMAT", x->dir);
	fp = fopen(p, "w");
	fputs("ckptfs-store format 2\n", fp);
	fclose(fp);
	assert_int_equal(ckpt_store_open_err(x->dir, &x->o, &s2, err, sizeof(err)), -EPROTO);
	printf("refused: %s\n", err);
	assert_non_null(strstr(err, "format version 2"));
	assert_non_null(strstr(err, "format version 1"));
	assert_non_null(strstr(err, "release"));
	fp = fopen(p, "w");
	fputs("ckptfs-store format 1\n", fp);
	fclose(fp);
	reopen(x);
}

static void test_not_a_store(void **state)
{
	struct fix *x = *state;
	char p[4200], err[512];
	struct ckpt_store *s2;
	struct ckpt_store_opts o = {0};
	FILE *fp;
	char *d = ts_tmpdir("nostore");

	snprintf(p, sizeof(p), "%s/somefile", d);
	fp = fopen(p, "w");
	fclose(fp);
	o.create = true;
	assert_int_equal(ckpt_store_open_err(d, &o, &s2, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "not a ckptfs store"));
	/* a second opener of the same store is refused, not corrupted */
	assert_int_equal(ckpt_store_open_err(x->dir, &x->o, &s2, err, sizeof(err)), -EBUSY);
	assert_non_null(strstr(err, "in use"));
	ts_rmtree(d);
	free(d);
}

static void *close_later(void *arg)
{
	struct fix *x = arg;

	usleep(300 * 1000);
	ckpt_store_close(x->s);
	x->s = NULL;
	return NULL;
}

/* lock_wait_ms: a store still held is refused after the wait; one whose
 * holder closes it during the wait (a daemon finishing after umount) opens */
static void test_lock_wait(void **state)
{
	struct fix *x = *state;
	struct ckpt_store_opts o = x->o;
	struct ckpt_store *s2 = NULL;
	char err[512];
	pthread_t th;

	o.lock_wait_ms = 200;
	assert_int_equal(ckpt_store_open_err(x->dir, &o, &s2, err, sizeof(err)), -EBUSY);
	assert_non_null(strstr(err, "in use"));
	o.lock_wait_ms = 5000;
	assert_int_equal(pthread_create(&th, NULL, close_later, x), 0);
	assert_int_equal(ckpt_store_open_err(x->dir, &o, &s2, err, sizeof(err)), 0);
	pthread_join(th, NULL);
	x->s = s2;
}

/* Flip one byte of the chunk file named by the chunk list entry `i` of
 * run/ver/path (from the version's manifest). */
static void flip_chunk(struct fix *x, const char *path, size_t i)
{
	char *json = NULL, file[4300];
	const char *hex = NULL;
	json_t *doc, *jf;
	size_t len, k;
	unsigned char b;
	int fd;

	assert_int_equal(ckpt_version_manifest_json(x->s, "r", "v", &json, &len), 0);
	doc = json_loadb(json, len, 0, NULL);
	assert_non_null(doc);
	json_array_foreach(json_object_get(doc, "files"), k,
			   jf) if (!strcmp(json_string_value(json_object_get(jf, "path")), path))
		hex = json_string_value(
			json_array_get(json_array_get(json_object_get(jf, "chunks"), i), 0));
	assert_non_null(hex);
	snprintf(file, sizeof(file), "%s/chunks/%.2s/%s", x->dir, hex, hex);
	json_decref(doc);
	free(json);
	chmod(file, 0644);
	fd = open(file, O_RDWR);
	assert_true(fd >= 0);
	assert_int_equal(pread(fd, &b, 1, 4242), 1);
	b ^= 0x10;
	assert_int_equal(pwrite(fd, &b, 1, 4242), 1);
	close(fd);
}

/*
 * The read paths of committed files: in-order 1 MiB reads through
 * ckpt_file_read_ref (served by read-ahead, rcache.c), reads out of order,
 * small reads across chunk boundaries, the -ERANGE cases, and a chunk
 * altered on disk found by the read-ahead's hash check and reported as EIO.
 */
static void read_paths(struct fix *x)
{
	size_t size = 9 * MiB + 777;
	uint8_t *model = malloc(size), *buf = malloc(2 * MiB);
	struct ckpt_version_info vi;
	struct ckpt_file *f;
	struct ckpt_rref r;
	const void *p;
	ssize_t n;

	ts_fill(11, 0, model, size);
	assert_int_equal(ckpt_run_create(x->s, "r"), 0);
	assert_int_equal(ckpt_version_create(x->s, "r", "v"), 0);
	assert_int_equal(ts_write_file(x->s, "r", "v", "m.bin", 11, size, MiB), 0);
	assert_int_equal(ckpt_file_open(x->s, "r", "v", "m.bin", O_RDONLY, 0, &f), 0);
	/* the version is open: no zero-copy reads yet */
	assert_int_equal(ckpt_file_read_ref(f, MiB, 0, &p, &r), -ERANGE);
	assert_int_equal(ckpt_file_close(f), 0);
	assert_int_equal(ckpt_version_commit(x->s, "r", "v", NULL), 0);
	reopen(x);

	assert_int_equal(ckpt_file_open(x->s, "r", "v", "m.bin", O_RDONLY, 0, &f), 0);
	for (uint64_t off = 0; off < size; off += MiB) {
		n = ckpt_file_read_ref(f, MiB, off, &p, &r);
		assert_int_equal(n, off + MiB <= size ? MiB : size - off);
		assert_memory_equal(p, model + off, (size_t)n);
		ckpt_file_read_release(f, &r);
	}
	/* a whole chunk's buffer is the request's own: the handle may be
	 * closed (FUSE: released on another thread) before the release */
	assert_int_equal(ckpt_file_close(f), 0);
	assert_int_equal(ckpt_file_open(x->s, "r", "v", "m.bin", O_RDONLY, 0, &f), 0);
	assert_int_equal(ckpt_file_read_ref(f, MiB, 2 * MiB, &p, &r), MiB);
	assert_int_equal(ckpt_file_close(f), 0);
	assert_memory_equal(p, model + 2 * MiB, MiB);
	ckpt_file_read_release(NULL, &r);
	assert_int_equal(ckpt_file_open(x->s, "r", "v", "m.bin", O_RDONLY, 0, &f), 0);
	assert_int_equal(ckpt_file_read_ref(f, MiB, size, &p, &r), 0);
	assert_int_equal(ckpt_file_read_ref(f, MiB, MiB / 2, &p, &r), -ERANGE);
	/* out of order, and across chunk boundaries */
	for (int k = 7; k >= 0; k -= 3) {
		uint64_t off = (uint64_t)k * MiB + MiB / 2;

		assert_int_equal(ckpt_file_pread(f, buf, MiB, off), MiB);
		assert_memory_equal(buf, model + off, MiB);
	}
	for (uint64_t off = MiB - 4096 * 3; off < 2 * MiB + 4096 * 3; off += 4096) {
		assert_int_equal(ckpt_file_pread(f, buf, 5000, off), 5000);
		assert_memory_equal(buf, model + off, 5000);
	}
	assert_int_equal(ckpt_file_close(f), 0);

	/* chunk 5 altered on disk: read in order (read-ahead loads it) */
	flip_chunk(x, "m.bin", 5);
	reopen(x);
	assert_int_equal(ckpt_file_open(x->s, "r", "v", "m.bin", O_RDONLY, 0, &f), 0);
	for (uint64_t off = 0; off < size; off += MiB) {
		n = ckpt_file_read_ref(f, MiB, off, &p, &r);
		if (off == 5 * MiB) {
			assert_int_equal(n, -EIO);
			continue;
		}
		assert_true(n > 0);
		assert_memory_equal(p, model + off, (size_t)n);
		ckpt_file_read_release(f, &r);
	}
	assert_int_equal(ckpt_file_close(f), 0);
	assert_int_equal(ckpt_version_info(x->s, "r", "v", &vi), 0);
	assert_int_equal(vi.state, CKPT_V_CORRUPT);
	free(model);
	free(buf);
}

static void test_read_paths(void **state)
{
	read_paths(*state);
}

/* the same with buffered chunk I/O (odirect=off) */
static void test_read_paths_buffered(void **state)
{
	struct fix *x = *state;

	x->o.direct_io = CKPT_DIRECT_OFF;
	reopen(x);
	read_paths(x);
}

/* on tmpfs, which refuses O_DIRECT: the store falls back to buffered I/O */
static void test_read_paths_tmpfs(void **state)
{
	struct fix *x = *state;
	char tmpl[] = "/dev/shm/ckpt-store-XXXXXX";

	if (!mkdtemp(tmpl)) {
		skip();
		return;
	}
	ckpt_store_close(x->s);
	ts_rmtree(x->dir);
	free(x->dir);
	x->dir = strdup(tmpl);
	x->o.direct_io = CKPT_DIRECT_ON;
	assert_int_equal(ckpt_store_open(x->dir, &x->o, &x->s), 0);
	read_paths(x);
}

/* seek back and rewrite, sparse holes, truncates: staged, then chunked */
static void test_nonsequential(void **state)
{
	struct fix *x = *state;
	size_t size = 5 * MiB + 333;
	uint8_t *model = calloc(1, 8 * MiB), *buf = malloc(8 * MiB);
	char tmp[4200], sum[33], hex[33];
	struct ckpt_node_stat st;
	struct ckpt_file *f;
	FILE *fp;

	assert_int_equal(ckpt_run_create(x->s, "r"), 0);
	assert_int_equal(ckpt_version_create(x->s, "r", "v"), 0);
	assert_int_equal(ckpt_file_open(x->s, "r", "v", "t.bin", O_RDWR | O_CREAT, 0644, &f), 0);
	ts_fill(3, 0, model, size);
	/* 3 MiB streamed, then a header rewritten at offset 0 (like torch.save
	 * / safetensors writers that patch a header), then the rest */
	assert_int_equal(ckpt_file_pwrite(f, model, 3 * MiB, 0), 3 * MiB);
	memset(model, 0xab, 100);
	assert_int_equal(ckpt_file_pwrite(f, model, 100, 0), 100);
	assert_int_equal(ckpt_file_pwrite(f, model + 3 * MiB, size - 3 * MiB, 3 * MiB),
			 (ssize_t)(size - 3 * MiB));
	/* read while open */
	assert_int_equal(ckpt_file_pread(f, buf, size, 0), (ssize_t)size);
	assert_memory_equal(buf, model, size);
	/* a hole past the end, then truncate back a bit */
	memset(model + 7 * MiB, 0x5a, 4096);
	assert_int_equal(ckpt_file_pwrite(f, model + 7 * MiB, 4096, 7 * MiB), 4096);
	size = 7 * MiB + 1000;
	assert_int_equal(ckpt_file_ftruncate(f, size), 0);
	assert_int_equal(ckpt_file_close(f), 0);
	/* a streamed file read while open */
	assert_int_equal(ts_write_file(x->s, "r", "v", "s.bin", 8, 2 * MiB + 5, 300000), 0);
	assert_int_equal(ts_check_file(x->s, "r", "v", "s.bin", 8, 2 * MiB + 5), 0);
	assert_int_equal(ckpt_version_commit(x->s, "r", "v", NULL), 0);
	reopen(x);
	assert_int_equal(ckpt_file_open(x->s, "r", "v", "t.bin", O_RDONLY, 0, &f), 0);
	assert_int_equal(ckpt_file_pread(f, buf, 8 * MiB, 0), (ssize_t)size);
	assert_memory_equal(buf, model, size);
	assert_int_equal(ckpt_file_close(f), 0);
	snprintf(tmp, sizeof(tmp), "%s/x.model", x->dir);
	fp = fopen(tmp, "w");
	fwrite(model, 1, size, fp);
	fclose(fp);
	assert_int_equal(ts_xxhsum(tmp, sum), 0);
	unlink(tmp);
	assert_int_equal(ckpt_node_stat(x->s, "r", "v", "t.bin", &st), 0);
	ts_hex(st.xxh128, hex);
	assert_string_equal(hex, sum);
	free(model);
	free(buf);
}

static void commit_step(struct fix *x, const char *run, const char *v, const char *loss,
			uint64_t seed)
{
	assert_int_equal(ckpt_version_create(x->s, run, v), 0);
	assert_int_equal(ts_write_file(x->s, run, v, "w.bin", seed, 300000, 65536), 0);
	if (loss)
		assert_int_equal(ckpt_meta_set(x->s, run, v, "val_loss", loss, strlen(loss)), 0);
	assert_int_equal(ckpt_version_commit(x->s, run, v, NULL), 0);
}

static enum ckpt_vstate vstate(struct fix *x, const char *run, const char *v)
{
	struct ckpt_version_info in;

	if (ckpt_version_info(x->s, run, v, &in) < 0)
		return (enum ckpt_vstate) - 1;
	return in.state;
}

static void test_versions(void **state)
{
	struct fix *x = *state;
	struct ckpt_version_info in;
	char buf[300], **keys, *json;
	size_t n, len;

	assert_int_equal(ckpt_run_create(x->s, "r"), 0);
	assert_int_equal(ckpt_run_set_metric(x->s, "r", "val_loss:min"), 0);
	assert_int_equal(ckpt_run_set_metric(x->s, "r", "nonsense"), -EINVAL);
	commit_step(x, "r", "s1", "0.9", 1);
	commit_step(x, "r", "s2", "0.5", 2);
	commit_step(x, "r", "s3", "0.7", 3);
	assert_int_equal(ckpt_version_best(x->s, "r", buf, sizeof(buf)), 0);
	assert_string_equal(buf, "s2");
	assert_int_equal(ckpt_version_latest(x->s, "r", buf, sizeof(buf)), 0);
	assert_string_equal(buf, "s3");
	assert_int_equal(ckpt_version_info(x->s, "r", "s2", &in), 0);
	assert_true(in.has_metric);
	assert_true(in.metric == 0.5);
	assert_int_equal(in.seq, 2);
	/* metadata on a committed version persists */
	assert_int_equal(ckpt_meta_set(x->s, "r", "s3", "step", "300", 3), 0);
	assert_int_equal(ckpt_version_pin(x->s, "r", "s1", true), 0);
	assert_int_equal(ckpt_version_delete(x->s, "r", "s1"), -EBUSY);
	/* an open version, left open across a reopen, becomes incomplete */
	assert_int_equal(ckpt_version_create(x->s, "r", "s4"), 0);
	assert_int_equal(ts_write_file(x->s, "r", "s4", "w.bin", 4, 3 * MiB, 65536), 0);
	assert_int_equal(ckpt_version_info(x->s, "r", "s4", &in), 0);
	assert_int_equal(in.state, CKPT_V_OPEN);
	assert_int_equal(ckpt_version_manifest_json(x->s, "r", "s3", &json, &len), 0);
	assert_non_null(strstr(json, "\"state\": \"committed\""));
	assert_non_null(strstr(json, "\"xxh128\""));
	assert_non_null(strstr(json, "\"step\": \"300\""));
	free(json);
	reopen(x);
	assert_int_equal(vstate(x, "r", "s4"), CKPT_V_INCOMPLETE);
	assert_int_equal(ckpt_meta_get(x->s, "r", "s3", "step", buf, sizeof(buf)), 3);
	assert_int_equal(ckpt_meta_list(x->s, "r", "s3", &keys, &n), 0);
	assert_int_equal(n, 2);
	assert_string_equal(keys[0], "step");
	assert_string_equal(keys[1], "val_loss");
	ckpt_strv_free(keys, n);
	assert_int_equal(ckpt_meta_remove(x->s, "r", "s3", "step"), 0);
	assert_int_equal(ckpt_meta_get(x->s, "r", "s3", "step", buf, sizeof(buf)), -ENODATA);
	assert_int_equal(ckpt_version_info(x->s, "r", "s1", &in), 0);
	assert_true(in.pinned);
	assert_int_equal(ckpt_run_get_metric(x->s, "r", buf, sizeof(buf)), 12);
	assert_string_equal(buf, "val_loss:min");
	/* retire: leaves latest/best at once, files vanish one by one */
	assert_int_equal(ckpt_version_retire(x->s, "r", "s2"), 0);
	assert_int_equal(ckpt_version_best(x->s, "r", buf, sizeof(buf)), 0);
	assert_string_equal(buf, "s3");
	reopen(x);
	assert_int_equal(vstate(x, "r", "s2"), CKPT_V_RETIRED);
	assert_int_equal(ckpt_node_unlink(x->s, "r", "s2", "w.bin"), 0);
	assert_int_equal(ckpt_node_unlink(x->s, "r", "s3", "w.bin"), -EROFS);
	assert_int_equal(ckpt_version_delete(x->s, "r", "s2"), 0);
	assert_int_equal(vstate(x, "r", "s2"), (enum ckpt_vstate) - 1);
	/* rename commit */
	assert_int_equal(ckpt_version_create(x->s, "r", "s5.tmp"), 0);
	assert_int_equal(ts_write_file(x->s, "r", "s5.tmp", "w.bin", 5, 1000, 100), 0);
	assert_int_equal(ckpt_version_rename(x->s, "r", "s5.tmp", "s5.tmp2"), 0);
	assert_int_equal(ckpt_version_commit(x->s, "r", "s5.tmp2", "s3"), -EEXIST);
	assert_int_equal(ckpt_version_commit(x->s, "r", "s5.tmp2", "s5"), 0);
	assert_int_equal(vstate(x, "r", "s5.tmp2"), (enum ckpt_vstate) - 1);
	assert_int_equal(ckpt_version_latest(x->s, "r", buf, sizeof(buf)), 0);
	assert_string_equal(buf, "s5");
	assert_int_equal(ckpt_version_rename(x->s, "r", "s5", "zz"), -EROFS);
	reopen(x);
	assert_int_equal(vstate(x, "r", "s5"), CKPT_V_COMMITTED);
	assert_int_equal(ts_check_file(x->s, "r", "s5", "w.bin", 5, 1000), 0);
	/* gc drops the incomplete version and the chunks only it had */
	{
		struct ckpt_gc_result g;

		assert_int_equal(ckpt_store_gc(x->s, &g), 0);
		assert_int_equal(g.versions_removed, 1);
		assert_true(g.chunks_removed >= 3); /* s4's 3 MiB and s2's file */
		assert_int_equal(ckpt_store_verify(x->s, NULL, NULL, NULL, NULL, NULL), 0);
	}
	assert_int_equal(ckpt_run_remove(x->s, "r"), -ENOTEMPTY);
}

static void test_retention(void **state)
{
	struct fix *x = *state;
	struct ckpt_retention rt = {.keep_last = 2, .keep_best = 1};
	struct ckpt_version_info *vi;
	char buf[64];
	size_t n;

	assert_int_equal(ckpt_run_create(x->s, "r"), 0);
	assert_int_equal(ckpt_run_set_metric(x->s, "r", "val_loss:min"), 0);
	assert_int_equal(ckpt_run_set_retention(x->s, "r", &rt), 0);
	commit_step(x, "r", "a", "0.9", 1);
	commit_step(x, "r", "b", "0.1", 2); /* the best: kept */
	commit_step(x, "r", "c", "0.8", 3);
	assert_int_equal(ckpt_version_pin(x->s, "r", "c", true), 0);
	assert_int_equal(ckpt_version_create(x->s, "r", "open1"), 0);
	commit_step(x, "r", "d", "0.7", 4);
	commit_step(x, "r", "e", "0.6", 5);
	commit_step(x, "r", "f", "0.5", 6);
	assert_int_equal(ckpt_version_list(x->s, "r", &vi, &n), 0);
	/* kept: b (best), c (pinned), e f (last 2), open1 (open) */
	assert_int_equal(n, 5);
	assert_string_equal(vi[0].name, "b");
	assert_string_equal(vi[1].name, "c");
	assert_string_equal(vi[2].name, "e");
	assert_string_equal(vi[3].name, "f");
	assert_string_equal(vi[4].name, "open1");
	free(vi);
	reopen(x);
	assert_int_equal(ckpt_run_get_retention(x->s, "r", &rt), 0);
	assert_int_equal(rt.keep_last, 2);
	assert_int_equal(ckpt_version_best(x->s, "r", buf, sizeof(buf)), 0);
	assert_string_equal(buf, "b");
	/* max_age cleanup keeps the newest and the best */
	assert_int_equal(ckpt_version_pin(x->s, "r", "c", false), 0);
	rt = (struct ckpt_retention){0};
	assert_int_equal(ckpt_run_set_retention(x->s, "r", &rt), 0);
	assert_int_equal(ckpt_store_apply_retention(x->s, 0), 0);
}

static void test_stats(void **state)
{
	struct fix *x = *state;
	struct ckpt_store_stats st;
	char *json;
	size_t len;

	assert_int_equal(ckpt_store_stats(x->s, &st), 0);
	assert_int_equal(st.total_checkpoints, 0);
	assert_true(st.dedup_ratio == 1.0);
	assert_int_equal(ckpt_run_create(x->s, "r"), 0);
	commit_step(x, "r", "a", NULL, 1);
	commit_step(x, "r", "b", NULL, 1); /* same bytes: stored once */
	assert_int_equal(ckpt_store_stats(x->s, &st), 0);
	assert_int_equal(st.total_runs, 1);
	assert_int_equal(st.total_checkpoints, 2);
	assert_int_equal(st.total_size_bytes, 600000);
	assert_int_equal(st.stored_bytes, 300000);
	assert_true(st.dedup_ratio == 2.0);
	assert_true(st.oldest_checkpoint_ns > 0);
	assert_int_equal(ts_chunk_bytes(x->dir), 300000);
	assert_int_equal(ckpt_store_stats_json(x->s, &json, &len), 0);
	assert_non_null(strstr(json, "\"dedup_ratio\": 2.0"));
	assert_non_null(strstr(json, "\"oldest_checkpoint\": \"20"));
	free(json);
}

struct wthread {
	struct fix *x;
	int i;
	int ret;
};

static void *writer(void *arg)
{
	struct wthread *w = arg;
	char p[32];

	snprintf(p, sizeof(p), "part-%d", w->i);
	w->ret = ts_write_file(w->x->s, "r", "v", p, 50 + (uint64_t)w->i, 6 * MiB + (uint64_t)w->i,
			       128 << 10);
	return NULL;
}

/* many writers in one version, gc running meanwhile: nothing lost */
static void test_concurrent(void **state)
{
	struct fix *x = *state;
	struct wthread w[4];
	pthread_t th[4];
	char p[32];

	ckpt_store_close(x->s);
	x->o.inflight_bytes = 2 * MiB; /* lots of backpressure */
	assert_int_equal(ckpt_store_open(x->dir, &x->o, &x->s), 0);
	assert_int_equal(ckpt_run_create(x->s, "r"), 0);
	assert_int_equal(ckpt_version_create(x->s, "r", "v"), 0);
	for (int i = 0; i < 4; i++) {
		w[i] = (struct wthread){.x = x, .i = i};
		pthread_create(&th[i], NULL, writer, &w[i]);
	}
	for (int i = 0; i < 5; i++)
		assert_int_equal(ckpt_store_gc(x->s, NULL), 0);
	for (int i = 0; i < 4; i++) {
		pthread_join(th[i], NULL);
		assert_int_equal(w[i].ret, 0);
	}
	assert_int_equal(ckpt_store_gc(x->s, NULL), 0);
	assert_int_equal(ckpt_version_commit(x->s, "r", "v", NULL), 0);
	reopen(x);
	for (int i = 0; i < 4; i++) {
		snprintf(p, sizeof(p), "part-%d", i);
		assert_int_equal(
			ts_check_file(x->s, "r", "v", p, 50 + (uint64_t)i, 6 * MiB + (uint64_t)i),
			0);
	}
}

/*
 * A version of many small files does not hold a chunk buffer per file until
 * its commit (fdata_park): 2,000 closed files of a few bytes each grow the
 * heap by far less than 2,000 chunk buffers (1 MiB each, mmapped), and every
 * byte is still there at the commit.
 */
static void test_small_files_memory(void **state)
{
	struct fix *x = *state;
	struct mallinfo2 before, after;
	size_t grown;
	char p[32];

	assert_int_equal(ckpt_run_create(x->s, "r"), 0);
	assert_int_equal(ckpt_version_create(x->s, "r", "v"), 0);
	/* a first file fills the buffer pool: what follows is the growth */
	assert_int_equal(ts_write_file(x->s, "r", "v", "first", 1, 100, 100), 0);
	before = mallinfo2();
	for (int i = 0; i < 2000; i++) {
		snprintf(p, sizeof(p), "f-%04d", i);
		assert_int_equal(
			ts_write_file(x->s, "r", "v", p, 100 + (uint64_t)i, 10 + i % 50, 64), 0);
	}
	after = mallinfo2();
	grown = (after.hblkhd + after.uordblks) - (before.hblkhd + before.uordblks);
	/* each file's tree node, chunk list and hash state: a few hundred bytes;
	 * a buffer held per file would be 2,000 MiB */
	assert_true(grown < 2000 * (64u << 10));
	assert_int_equal(ckpt_version_commit(x->s, "r", "v", NULL), 0);
	reopen(x);
	for (int i = 0; i < 2000; i += 199) {
		snprintf(p, sizeof(p), "f-%04d", i);
		assert_int_equal(ts_check_file(x->s, "r", "v", p, 100 + (uint64_t)i, 10 + i % 50),
				 0);
	}
}

static void test_namespace_ops(void **state)
{
	struct fix *x = *state;
	struct ckpt_node_stat st;
	char **names;
	size_t n;

	assert_int_equal(ckpt_run_create(x->s, "r"), 0);
	assert_int_equal(ckpt_version_create(x->s, "r", "v"), 0);
	assert_int_equal(ckpt_version_create(x->s, "r", "v"), -EEXIST);
	assert_int_equal(ckpt_node_mkdir(x->s, "r", "v", "a", 0700), 0);
	assert_int_equal(ckpt_node_mkdir(x->s, "r", "v", "a/b", 0755), 0);
	assert_int_equal(ckpt_node_mkdir(x->s, "r", "v", "a", 0755), -EEXIST);
	assert_int_equal(ckpt_node_mkdir(x->s, "r", "v", "nope/b", 0755), -ENOENT);
	assert_int_equal(ts_write_file(x->s, "r", "v", "a/b/f", 1, 10, 10), 0);
	assert_int_equal(ts_write_file(x->s, "r", "v", "a/g", 2, 20, 10), 0);
	assert_int_equal(ckpt_node_rmdir(x->s, "r", "v", "a"), -ENOTEMPTY);
	assert_int_equal(ckpt_node_rename(x->s, "r", "v", "a/g", "a/b/f"), 0); /* replaces */
	assert_int_equal(ckpt_node_rename(x->s, "r", "v", "a", "a/b/c"), -EINVAL);
	assert_int_equal(ckpt_node_unlink(x->s, "r", "v", "a/b"), -EISDIR);
	assert_int_equal(ckpt_node_chmod(x->s, "r", "v", "a/b/f", 0600), 0);
	assert_int_equal(ckpt_node_truncate(x->s, "r", "v", "a/b/f", 5), 0);
	assert_int_equal(ckpt_node_utimens(x->s, "r", "v", "a/b/f", 12345), 0);
	assert_int_equal(ckpt_node_stat(x->s, "r", "v", "a/b/f", &st), 0);
	assert_int_equal(st.size, 5);
	assert_int_equal(st.mode, 0600);
	assert_int_equal(st.mtime_ns, 12345);
	assert_false(st.has_hash);
	assert_int_equal(ckpt_node_list(x->s, "r", "v", "a", &names, &n), 0);
	assert_int_equal(n, 1);
	ckpt_strv_free(names, n);
	assert_int_equal(ckpt_version_commit(x->s, "r", "v", NULL), 0);
	assert_int_equal(ts_check_file(x->s, "r", "v", "a/b/f", 2, 5), 0);
	assert_int_equal(ckpt_node_stat(x->s, "r", "v", "a", &st), 0);
	assert_int_equal(st.type, CKPT_NODE_DIR);
	assert_int_equal(st.mode, 0500); /* committed: without write bits */
	assert_int_equal(ckpt_node_truncate(x->s, "r", "v", "a/b/f", 1), -EROFS);
	assert_int_equal(ckpt_node_rename(x->s, "r", "v", "a/b/f", "x"), -EROFS);
	assert_int_equal(ckpt_node_chmod(x->s, "r", "v", "a/b/f", 0777), -EROFS);
	assert_int_equal(ckpt_version_commit(x->s, "r", "v", NULL), -EROFS);
	assert_int_equal(ckpt_version_delete(x->s, "r", "v"), 0);
	assert_int_equal(ckpt_run_remove(x->s, "r"), 0);
	assert_int_equal(ckpt_run_exists(x->s, "r"), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_first_path, setup, teardown),
		cmocka_unit_test_setup_teardown(test_roundtrip_fixed, setup, teardown),
		cmocka_unit_test_setup_teardown(test_roundtrip_cdc, setup, teardown),
		cmocka_unit_test_setup_teardown(test_roundtrip_large, setup, teardown),
		cmocka_unit_test_setup_teardown(test_names, setup, teardown),
		cmocka_unit_test_setup_teardown(test_format_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_old_manifest, setup, teardown),
		cmocka_unit_test_setup_teardown(test_not_a_store, setup, teardown),
		cmocka_unit_test_setup_teardown(test_nonsequential, setup, teardown),
		cmocka_unit_test_setup_teardown(test_versions, setup, teardown),
		cmocka_unit_test_setup_teardown(test_retention, setup, teardown),
		cmocka_unit_test_setup_teardown(test_stats, setup, teardown),
		cmocka_unit_test_setup_teardown(test_lock_wait, setup, teardown),
		cmocka_unit_test_setup_teardown(test_read_paths, setup, teardown),
		cmocka_unit_test_setup_teardown(test_read_paths_buffered, setup, teardown),
		cmocka_unit_test_setup_teardown(test_read_paths_tmpfs, setup, teardown),
		cmocka_unit_test_setup_teardown(test_concurrent, setup, teardown),
		cmocka_unit_test_setup_teardown(test_namespace_ops, setup, teardown),
		cmocka_unit_test_setup_teardown(test_small_files_memory, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
