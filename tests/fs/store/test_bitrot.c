// SPDX-License-Identifier: MIT
/*
 * test_bitrot.c - 100 random single-byte flips in 100 stored chunks: every
 * one is found on read (EIO, never wrong bytes) and by ckpt_store_verify,
 * and the version becomes CORRUPT (persisted). With verify=off the flips
 * come through as wrong bytes, which shows the flips were real.
 * test_verify_shared: a bad chunk shared by several files and versions is
 * reported once per file that names it, in walk order, with progress.
 * test_rot_after_read: chunks damaged after this process has read (and so
 * checked) them once still give EIO, in committed and in open versions, and
 * a damaged chunk never reaches a staging file (issue 11, item 8).
 */
#include <errno.h>
#include <fcntl.h>
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
#include <xxhash.h>

#include "ckptfs/store.h"
#include "tstore.h"

#define CH (64u << 10)
#define NCH 160
#define FLIPS 100

static int reported;

static void on_bad(void *arg, const char *run, const char *version, const char *path, uint64_t off,
		   const char *hex, const char *what)
{
	reported++;
}

/* flip one byte in each of FLIPS distinct chunk files of the store */
static void flip_chunks(const char *dir, const char *json, unsigned *seed)
{
	char *hexes[NCH];
	int n = 0;
	json_t *doc = json_loads(json, 0, NULL), *cl;

	/* chunk names from the manifest: files[0].chunks = [["<32 hex>", len], ...] */
	cl = json_object_get(json_array_get(json_object_get(doc, "files"), 0), "chunks");
	assert_int_equal(json_array_size(cl), NCH);
	for (; n < NCH; n++)
		hexes[n] =
			strdup(json_string_value(json_array_get(json_array_get(cl, (size_t)n), 0)));
	json_decref(doc);
	for (int i = n - 1; i > 0; i--) { /* shuffle */
		int j = rand_r(seed) % (i + 1);
		char *t = hexes[i];

		hexes[i] = hexes[j];
		hexes[j] = t;
	}
	for (int i = 0; i < FLIPS; i++) {
		char path[4200];
		off_t off = rand_r(seed) % CH;
		unsigned char b;
		int fd;

		snprintf(path, sizeof(path), "%s/chunks/%.2s/%s", dir, hexes[i], hexes[i]);
		chmod(path, 0644);
		fd = open(path, O_RDWR);
		assert_true(fd >= 0);
		assert_int_equal(pread(fd, &b, 1, off), 1);
		b ^= (unsigned char)(1 + rand_r(seed) % 255);
		assert_int_equal(pwrite(fd, &b, 1, off), 1);
		close(fd);
	}
	for (int i = 0; i < n; i++)
		free(hexes[i]);
}

static int read_ver(struct ckpt_store *s, const char *ver, int *eio, int *wrong)
{
	uint8_t *a = malloc(CH), *b = malloc(CH);
	struct ckpt_file *f;
	int ret = ckpt_file_open(s, "r", ver, "model.bin", O_RDONLY, 0, &f);

	*eio = *wrong = 0;
	if (ret < 0)
		return ret;
	for (int i = 0; i < NCH; i++) {
		ssize_t r = ckpt_file_pread(f, a, CH, (uint64_t)i * CH);

		if (r == -EIO) {
			(*eio)++;
			continue;
		}
		assert_int_equal(r, CH);
		ts_fill(42, (uint64_t)i * CH, b, CH);
		if (memcmp(a, b, CH))
			(*wrong)++;
	}
	ckpt_file_close(f);
	free(a);
	free(b);
	return 0;
}

static int read_all(struct ckpt_store *s, int *eio, int *wrong)
{
	return read_ver(s, "v", eio, wrong);
}

/* a new version with the same content must not dedup against bad chunks */
static void rewrite_same(struct ckpt_store *s, const char *ver)
{
	struct ckpt_version_info in;
	int eio, wrong;

	assert_int_equal(ckpt_version_create(s, "r", ver), 0);
	assert_int_equal(ts_write_file(s, "r", ver, "model.bin", 42, (uint64_t)NCH * CH, 1 << 20),
			 0);
	assert_int_equal(ckpt_version_commit(s, "r", ver, NULL), 0);
	assert_int_equal(read_ver(s, ver, &eio, &wrong), 0);
	assert_int_equal(eio, 0);
	assert_int_equal(wrong, 0);
	assert_int_equal(ckpt_store_verify(s, "r", ver, NULL, NULL, NULL), 0);
	assert_int_equal(ckpt_version_info(s, "r", ver, &in), 0);
	assert_int_equal(in.state, CKPT_V_COMMITTED);
}

static void test_bitrot(void **state)
{
	char *dir = ts_tmpdir("bitrot");
	struct ckpt_store_opts o = {.create = true, .chunking = CKPT_CHUNK_FIXED, .chunk_size = CH};
	struct ckpt_version_info in;
	struct ckpt_store *s;
	unsigned seed = 777;
	char *json;
	size_t len;
	int eio, wrong;

	assert_int_equal(ckpt_store_open(dir, &o, &s), 0);
	assert_int_equal(ckpt_run_create(s, "r"), 0);
	assert_int_equal(ckpt_version_create(s, "r", "v"), 0);
	assert_int_equal(ts_write_file(s, "r", "v", "model.bin", 42, (uint64_t)NCH * CH, 1 << 20),
			 0);
	assert_int_equal(ckpt_version_commit(s, "r", "v", NULL), 0);
	assert_int_equal(ckpt_version_manifest_json(s, "r", "v", &json, &len), 0);
	ckpt_store_close(s);
	flip_chunks(dir, json, &seed);
	free(json);

	/* verify=off: the flips are real (wrong bytes come through) */
	o.verify = CKPT_VERIFY_OFF;
	assert_int_equal(ckpt_store_open(dir, &o, &s), 0);
	assert_int_equal(read_all(s, &eio, &wrong), 0);
	assert_int_equal(eio, 0);
	assert_int_equal(wrong, FLIPS);
	ckpt_store_close(s);

	/* verify=first (default): all 100 found on read, as EIO */
	o.verify = CKPT_VERIFY_FIRST;
	assert_int_equal(ckpt_store_open(dir, &o, &s), 0);
	assert_int_equal(read_all(s, &eio, &wrong), 0);
	printf("bit rot: %d of %d flipped chunks gave EIO on read, %d wrong bytes returned\n", eio,
	       FLIPS, wrong);
	assert_int_equal(eio, FLIPS);
	assert_int_equal(wrong, 0);
	assert_int_equal(ckpt_version_info(s, "r", "v", &in), 0);
	assert_int_equal(in.state, CKPT_V_CORRUPT);
	ckpt_store_close(s);

	/* and by verify; CORRUPT persisted across reopen */
	o.verify = CKPT_VERIFY_ALWAYS;
	assert_int_equal(ckpt_store_open(dir, &o, &s), 0);
	assert_int_equal(ckpt_version_info(s, "r", "v", &in), 0);
	assert_int_equal(in.state, CKPT_V_CORRUPT);
	reported = 0;
	assert_int_equal(ckpt_store_verify(s, NULL, NULL, on_bad, NULL, NULL), FLIPS);
	printf("bit rot: verify found %d bad chunks\n", reported);
	assert_int_equal(reported, FLIPS);
	assert_int_equal(read_all(s, &eio, &wrong), 0);
	assert_int_equal(eio, FLIPS);

	/* the same content written again is stored fresh, not deduplicated
	 * against the 100 bad chunks (which it thereby repairs) */
	rewrite_same(s, "v2");
	ckpt_store_close(s);

	/* a chunk cut short on disk, found by the size check before dedup in a
	 * freshly opened store (nothing read yet) */
	{
		char path[4200], *json2;
		json_t *doc;
		const char *hx;
		size_t l2;

		assert_int_equal(ckpt_store_open(dir, &o, &s), 0);
		assert_int_equal(ckpt_version_manifest_json(s, "r", "v2", &json2, &l2), 0);
		ckpt_store_close(s);
		doc = json_loads(json2, 0, NULL);
		hx = json_string_value(json_array_get(
			json_array_get(
				json_object_get(json_array_get(json_object_get(doc, "files"), 0),
						"chunks"),
				7),
			0));
		snprintf(path, sizeof(path), "%s/chunks/%.2s/%s", dir, hx, hx);
		assert_int_equal(truncate(path, CH / 2), 0);
		json_decref(doc);
		free(json2);
		assert_int_equal(ckpt_store_open(dir, &o, &s), 0);
		rewrite_same(s, "v3");
		ckpt_store_close(s);
	}
	ts_rmtree(dir);
	free(dir);
}

/* flip one byte of the chunk file at `path` */
static void flip_file(const char *path, off_t off)
{
	unsigned char b;
	int fd;

	chmod(path, 0644);
	fd = open(path, O_RDWR);
	assert_true(fd >= 0);
	assert_int_equal(pread(fd, &b, 1, off), 1);
	b ^= 0x5a;
	assert_int_equal(pwrite(fd, &b, 1, off), 1);
	close(fd);
}

static void chunk_path(const char *dir, uint64_t seed, uint64_t off, char *path, size_t len);

static void test_rot_after_read(void **state)
{
	char *dir = ts_tmpdir("rotlater");
	struct ckpt_store_opts o = {.create = true, .chunking = CKPT_CHUNK_FIXED, .chunk_size = CH};
	enum ckpt_verify_mode modes[] = {CKPT_VERIFY_FIRST, CKPT_VERIFY_ALWAYS};
	struct ckpt_version_info in;
	struct ckpt_store *s;
	struct ckpt_file *f;
	unsigned seed = 4242;
	uint8_t byte = 1;
	char path[4200], *json;
	size_t len;
	int eio, wrong;

	for (size_t m = 0; m < sizeof(modes) / sizeof(modes[0]); m++) {
		o.verify = modes[m];
		ts_rmtree(dir);
		free(dir);
		dir = ts_tmpdir("rotlater");
		assert_int_equal(ckpt_store_open(dir, &o, &s), 0);
		assert_int_equal(ckpt_run_create(s, "r"), 0);
		assert_int_equal(ckpt_version_create(s, "r", "v"), 0);
		assert_int_equal(
			ts_write_file(s, "r", "v", "model.bin", 42, (uint64_t)NCH * CH, 1 << 20),
			0);
		assert_int_equal(ckpt_version_commit(s, "r", "v", NULL), 0);
		/* read (and check) everything once, then damage it */
		assert_int_equal(read_all(s, &eio, &wrong), 0);
		assert_int_equal(eio + wrong, 0);
		assert_int_equal(ckpt_version_manifest_json(s, "r", "v", &json, &len), 0);
		flip_chunks(dir, json, &seed);
		free(json);
		/* never wrong bytes; a chunk that read-ahead loaded and checked
		 * just before the damage may still be handed out once (parked
		 * buffers live 2 s, rcache.c): the bytes are the right ones */
		assert_int_equal(read_all(s, &eio, &wrong), 0);
		assert_int_equal(wrong, 0);
		assert_true(eio > 0);
		assert_int_equal(read_all(s, &eio, &wrong), 0);
		printf("rot after a first read (verify=%s): %d EIO, %d wrong of %d damaged\n",
		       m ? "always" : "first", eio, wrong, FLIPS);
		assert_int_equal(wrong, 0);
		assert_int_equal(eio, FLIPS);
		assert_int_equal(ckpt_version_info(s, "r", "v", &in), 0);
		assert_int_equal(in.state, CKPT_V_CORRUPT);

		/* an open version: its streamed chunks are checked on read back */
		assert_int_equal(ckpt_version_create(s, "r", "o"), 0);
		assert_int_equal(ts_write_file(s, "r", "o", "w.bin", 7, 4 * CH, CH), 0);
		assert_int_equal(ts_check_file(s, "r", "o", "w.bin", 7, 4 * CH), 0);
		chunk_path(dir, 7, CH, path, sizeof(path));
		flip_file(path, 100);
		assert_int_equal(ts_check_file(s, "r", "o", "w.bin", 7, 4 * CH), -EIO);
		/* a write elsewhere than the end copies the file to a staging
		 * file: the damaged chunk must not slip in */
		assert_int_equal(ckpt_file_open(s, "r", "o", "w.bin", O_WRONLY, 0, &f), 0);
		assert_int_equal(ckpt_file_pwrite(f, &byte, 1, 0), -EIO);
		ckpt_file_close(f);
		assert_int_equal(ckpt_version_info(s, "r", "o", &in), 0);
		assert_int_equal(in.state, CKPT_V_OPEN);
		ckpt_store_close(s);
	}
	ts_rmtree(dir);
	free(dir);
}

struct vrec {
	char what[8][300];
	int n;
	uint64_t last_done, last_total;
	bool backwards;
};

static void on_bad_rec(void *arg, const char *run, const char *version, const char *path,
		       uint64_t off, const char *hex, const char *what)
{
	struct vrec *r = arg;

	if (r->n < 8)
		snprintf(r->what[r->n], sizeof(r->what[0]), "%s/%s/%s@%llu", run, version, path,
			 (unsigned long long)off);
	r->n++;
}

static void on_progress(void *arg, uint64_t done, uint64_t total)
{
	struct vrec *r = arg;

	if (done < r->last_done)
		r->backwards = true;
	r->last_done = done;
	r->last_total = total;
}

/* the chunk file holding CH bytes of stream `seed` at `off` */
static void chunk_path(const char *dir, uint64_t seed, uint64_t off, char *path, size_t len)
{
	uint8_t *b = malloc(CH);
	XXH128_canonical_t c;
	char hex[33];

	ts_fill(seed, off, b, CH);
	XXH128_canonicalFromHash(&c, XXH3_128bits(b, CH));
	ts_hex(c.digest, hex);
	snprintf(path, len, "%s/chunks/%.2s/%s", dir, hex, hex);
	free(b);
}

static void test_verify_shared(void **state)
{
	char *dir = ts_tmpdir("vshared");
	struct ckpt_store_opts o = {.create = true, .chunking = CKPT_CHUNK_FIXED, .chunk_size = CH};
	struct ckpt_version_info in;
	struct ckpt_store *s;
	struct vrec rec = {0};
	char path[4200];
	unsigned char b;
	int fd;

	assert_int_equal(ckpt_store_open(dir, &o, &s), 0);
	assert_int_equal(ckpt_run_create(s, "r"), 0);
	assert_int_equal(ckpt_version_create(s, "r", "v1"), 0);
	assert_int_equal(ckpt_node_mkdir(s, "r", "v1", "d", 0755), 0);
	/* the same 8 chunks in two files of v1 and one of v2, plus others */
	assert_int_equal(ts_write_file(s, "r", "v1", "a.bin", 5, 8 * CH, CH), 0);
	assert_int_equal(ts_write_file(s, "r", "v1", "d/c.bin", 5, 8 * CH, CH), 0);
	assert_int_equal(ts_write_file(s, "r", "v1", "e.bin", 6, 8 * CH, CH), 0);
	assert_int_equal(ckpt_version_commit(s, "r", "v1", NULL), 0);
	assert_int_equal(ckpt_version_create(s, "r", "v2"), 0);
	assert_int_equal(ts_write_file(s, "r", "v2", "a.bin", 5, 8 * CH, CH), 0);
	assert_int_equal(ckpt_version_commit(s, "r", "v2", NULL), 0);
	assert_int_equal(ckpt_store_verify(s, NULL, NULL, on_bad_rec, &rec, on_progress), 0);
	assert_int_equal(rec.n, 0);
	assert_false(rec.backwards);
	assert_int_equal(rec.last_done, 32 * CH);
	assert_int_equal(rec.last_total, 32 * CH);

	chunk_path(dir, 5, 3 * CH, path, sizeof(path));
	chmod(path, 0644);
	fd = open(path, O_RDWR);
	assert_true(fd >= 0);
	assert_int_equal(pread(fd, &b, 1, 100), 1);
	b ^= 0x5a;
	assert_int_equal(pwrite(fd, &b, 1, 100), 1);
	close(fd);

	memset(&rec, 0, sizeof(rec));
	assert_int_equal(ckpt_store_verify(s, "r", "v2", on_bad_rec, &rec, on_progress), 1);
	assert_int_equal(rec.n, 1);
	snprintf(path, sizeof(path), "r/v2/a.bin@%u", 3 * CH);
	assert_string_equal(rec.what[0], path);
	assert_int_equal(rec.last_done, 8 * CH);
	assert_int_equal(ckpt_version_info(s, "r", "v1", &in), 0);
	assert_int_equal(in.state, CKPT_V_COMMITTED);

	memset(&rec, 0, sizeof(rec));
	assert_int_equal(ckpt_store_verify(s, NULL, NULL, on_bad_rec, &rec, on_progress), 3);
	assert_int_equal(rec.n, 3);
	assert_false(rec.backwards);
	assert_int_equal(rec.last_done, 32 * CH);
	snprintf(path, sizeof(path), "r/v1/a.bin@%u", 3 * CH);
	assert_string_equal(rec.what[0], path);
	snprintf(path, sizeof(path), "r/v1/d/c.bin@%u", 3 * CH);
	assert_string_equal(rec.what[1], path);
	snprintf(path, sizeof(path), "r/v2/a.bin@%u", 3 * CH);
	assert_string_equal(rec.what[2], path);
	assert_int_equal(ckpt_version_info(s, "r", "v1", &in), 0);
	assert_int_equal(in.state, CKPT_V_CORRUPT);
	assert_int_equal(ckpt_version_info(s, "r", "v2", &in), 0);
	assert_int_equal(in.state, CKPT_V_CORRUPT);
	/* a chunk removed from disk is reported too */
	chunk_path(dir, 6, 0, path, sizeof(path));
	assert_int_equal(unlink(path), 0);
	memset(&rec, 0, sizeof(rec));
	assert_int_equal(ckpt_store_verify(s, "r", "v1", on_bad_rec, &rec, NULL), 3);
	snprintf(path, sizeof(path), "r/v1/e.bin@0");
	assert_string_equal(rec.what[2], path);
	ckpt_store_close(s);
	ts_rmtree(dir);
	free(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_bitrot),
		cmocka_unit_test(test_verify_shared),
		cmocka_unit_test(test_rot_after_read),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
