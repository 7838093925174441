// SPDX-License-Identifier: MIT
/*
 * test_faults.c - the store under failing I/O, through the seam in
 * store_io.h (tests/fs/store/testio.c):
 *  - a simulated crash at every sync point of writing and committing a
 *    version, dropping or keeping what was not synced: after reopening, the
 *    store is at the old state or the new one, never torn, and everything
 *    committed verifies;
 *  - EIO and ENOSPC injected at random points: clear errors, nothing
 *    committed lost, the store keeps working;
 *  - io_uring completions turned into short writes, -EAGAIN and -EINTR;
 *  - reads that fail with EIO for a while: the reads and verify fail, the
 *    version stays committed and reads back once the disk is well.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "ckptfs/store.h"
#include "testio.h"
#include "tstore.h"

#define MiB (1u << 20)

/* v1 of run "r": a 3 MiB file and a small one */
static void make_v1(struct ckpt_store *s)
{
	assert_int_equal(ckpt_run_create(s, "r"), 0);
	assert_int_equal(ckpt_version_create(s, "r", "v1"), 0);
	assert_int_equal(ts_write_file(s, "r", "v1", "model.bin", 1, 3 * MiB + 123, 128 << 10), 0);
	assert_int_equal(ts_write_file(s, "r", "v1", "opt.bin", 2, 5000, 1000), 0);
	assert_int_equal(ckpt_meta_set(s, "r", "v1", "step", "100", 3), 0);
	assert_int_equal(ckpt_version_commit(s, "r", "v1", NULL), 0);
}

static void check_v1(struct ckpt_store *s)
{
	struct ckpt_version_info in;
	char buf[16];

	assert_int_equal(ckpt_version_info(s, "r", "v1", &in), 0);
	assert_int_equal(in.state, CKPT_V_COMMITTED);
	assert_int_equal(ts_check_file(s, "r", "v1", "model.bin", 1, 3 * MiB + 123), 0);
	assert_int_equal(ts_check_file(s, "r", "v1", "opt.bin", 2, 5000), 0);
	assert_int_equal(ckpt_meta_get(s, "r", "v1", "step", buf, sizeof(buf)), 3);
	assert_int_equal(ckpt_store_verify(s, "r", "v1", NULL, NULL, NULL), 0);
}

/* v2: shares model.bin's first MiBs with v1 (dedup), a new file, and a file
 * written out of order (staging); committed by rename from v2.tmp */
static int write_v2(struct ckpt_store *s)
{
	struct ckpt_file *f;
	uint8_t buf[4096];
	int ret;

	ret = ckpt_version_create(s, "r", "v2.tmp");
	if (ret < 0)
		return ret;
	ret = ts_write_file(s, "r", "v2.tmp", "model.bin", 1, 2 * MiB, 64 << 10);
	if (ret == 0)
		ret = ts_write_file(s, "r", "v2.tmp", "new.bin", 7, 1 * MiB + 5, 100 << 10);
	if (ret < 0)
		return ret;
	ret = ckpt_file_open(s, "r", "v2.tmp", "seek.bin", O_RDWR | O_CREAT, 0644, &f);
	if (ret < 0)
		return ret;
	for (int i = 3; i >= 0 && ret >= 0; i--) { /* back to front */
		ts_fill(9, (uint64_t)i * sizeof(buf), buf, sizeof(buf));
		ret = (int)ckpt_file_pwrite(f, buf, sizeof(buf), (uint64_t)i * sizeof(buf));
	}
	{
		int c = ckpt_file_close(f);

		if (ret >= 0)
			ret = c;
	}
	if (ret < 0)
		return ret;
	return ckpt_version_commit(s, "r", "v2.tmp", "v2");
}

static void check_v2(struct ckpt_store *s)
{
	assert_int_equal(ts_check_file(s, "r", "v2", "model.bin", 1, 2 * MiB), 0);
	assert_int_equal(ts_check_file(s, "r", "v2", "new.bin", 7, 1 * MiB + 5), 0);
	assert_int_equal(ts_check_file(s, "r", "v2", "seek.bin", 9, 4 * 4096), 0);
	assert_int_equal(ckpt_store_verify(s, "r", "v2", NULL, NULL, NULL), 0);
}

static void crash_at_every_sync_point(bool keep)
{
	int old_seen = 0, new_seen = 0;
	bool done = false;

	for (long n = 1; !done; n++) {
		char *dir = ts_tmpdir("crash"), bdir[4200];
		struct ckpt_store_opts o = {.create = true};
		struct ckpt_version_info in;
		struct ckpt_store *s;
		struct tio t;
		int ret;

		snprintf(bdir, sizeof(bdir), "%s/backup", dir);
		{
			char sd[4200];

			snprintf(sd, sizeof(sd), "%s/store", dir);
			tio_init(&t, true, bdir);
			o.io = &t.ops;
			assert_int_equal(ckpt_store_open(sd, &o, &s), 0);
			make_v1(s);
			tio_crash(&t, n, keep);
			ret = write_v2(s);
			if (!t.crashed) {
				/* no sync point n: the whole sequence has n-1 of them */
				assert_int_equal(ret, 0);
				done = true;
				/* and a crash right after the commit returned: all of
				 * it must have been durable already */
				tio_crash_now(&t);
			} else {
				assert_true(ret < 0);
			}
			ckpt_store_close(s);
			tio_fini(&t);

			o.io = NULL;
			o.create = false;
			ret = ckpt_store_open(sd, &o, &s);
			if (ret < 0)
				printf("reopen after crash at sync %ld: %s\n", n,
				       ckpt_store_strerror(NULL));
			assert_int_equal(ret, 0);
		}
		check_v1(s);
		ret = ckpt_version_info(s, "r", "v2", &in);
		if (done)
			assert_int_equal(ret, 0);
		if (ret == 0) {
			assert_int_equal(in.state, CKPT_V_COMMITTED);
			check_v2(s);
			new_seen++;
			/* the rename commit leaves no trace of the old name */
			assert_int_equal(ckpt_version_info(s, "r", "v2.tmp", &in), -ENOENT);
		} else {
			assert_int_equal(ret, -ENOENT);
			old_seen++;
			/* the open version is INCOMPLETE or gone, never committed */
			if (ckpt_version_info(s, "r", "v2.tmp", &in) == 0)
				assert_int_equal(in.state, CKPT_V_INCOMPLETE);
		}
		assert_true(ckpt_store_verify(s, NULL, NULL, NULL, NULL, NULL) == 0);
		/* gc after the crash keeps everything committed */
		assert_int_equal(ckpt_store_gc(s, NULL), 0);
		check_v1(s);
		if (ret == 0)
			check_v2(s);
		ckpt_store_close(s);
		ts_rmtree(dir);
		free(dir);
		assert_true(n < 100);
	}
	printf("crash sim (%s unsynced): %d crash points left the old state, %d the new one\n",
	       keep ? "keep" : "drop", old_seen, new_seen);
	assert_true(old_seen > 0);
	assert_true(new_seen > 0);
}

static void test_crash_drop(void **state)
{
	crash_at_every_sync_point(false);
}

static void test_crash_keep(void **state)
{
	crash_at_every_sync_point(true);
}

/* EIO/ENOSPC at a random call of a random kind while writing v2 */
static void test_random_faults(void **state)
{
	char *dir = ts_tmpdir("faults");
	struct ckpt_store_opts o = {.create = true};
	static const unsigned kinds[] = {TIO_OPEN,   TIO_PWRITE, TIO_FSYNC, TIO_SYNCFS,
					 TIO_RENAME, TIO_URING,	 TIO_PREAD};
	struct ckpt_store *s;
	struct tio t;
	unsigned seed = 12345;
	int failures = 0;

	tio_init(&t, false, NULL);
	o.io = &t.ops;
	assert_int_equal(ckpt_store_open(dir, &o, &s), 0);
	make_v1(s);
	for (int it = 0; it < 40; it++) {
		unsigned k = kinds[rand_r(&seed) % 7];
		int err = rand_r(&seed) % 2 ? -EIO : -ENOSPC;
		struct ckpt_version_info in;
		int ret;

		tio_fail(&t, k, 1 + rand_r(&seed) % 6, err, rand_r(&seed) % 2);
		ret = write_v2(s);
		tio_fail(&t, 0, 0, 0, false);
		if (ret < 0) {
			failures++;
			/* a sentence that says what failed */
			assert_true(strlen(ckpt_store_strerror(s)) > 10);
			assert_true(ret == err || ret == -EIO || ret == -ENOENT || ret == -EEXIST);
		} else {
			check_v2(s);
		}
		check_v1(s);
		/* clean up for the next round: whatever v2 became */
		if (ckpt_version_info(s, "r", "v2", &in) == 0)
			assert_int_equal(ckpt_version_delete(s, "r", "v2"), 0);
		if (ckpt_version_info(s, "r", "v2.tmp", &in) == 0) {
			assert_int_equal(in.state, CKPT_V_OPEN);
			assert_int_equal(ckpt_version_delete(s, "r", "v2.tmp"), 0);
		}
	}
	printf("random faults: %d of 40 rounds failed with a clear error\n", failures);
	assert_true(failures > 5);
	/* the store still works and nothing committed was lost, also after reopening */
	assert_int_equal(write_v2(s), 0);
	check_v2(s);
	ckpt_store_close(s);
	tio_fini(&t);
	o.io = NULL;
	if (ckpt_store_open(dir, &o, &s) < 0)
		fail_msg("reopen: %s", ckpt_store_strerror(NULL));
	check_v1(s);
	check_v2(s);
	ckpt_store_close(s);
	ts_rmtree(dir);
	free(dir);
}

/* ENOSPC in an io_uring completion: the writer hears it at close or commit */
static void test_uring_enospc(void **state)
{
	char *dir = ts_tmpdir("enospc");
	struct ckpt_store_opts o = {.create = true};
	struct ckpt_version_info in;
	struct ckpt_store *s;
	struct tio t;
	int ret;

	tio_init(&t, false, NULL);
	o.io = &t.ops;
	assert_int_equal(ckpt_store_open(dir, &o, &s), 0);
	make_v1(s);
	assert_int_equal(ckpt_version_create(s, "r", "v3"), 0);
	tio_fail(&t, TIO_URING, 2, -ENOSPC, false);
	ret = ts_write_file(s, "r", "v3", "big.bin", 33, 8 * MiB, 1 * MiB);
	assert_int_equal(ret, -ENOSPC);
	assert_int_equal(ckpt_version_commit(s, "r", "v3", NULL), -ENOSPC);
	assert_non_null(strstr(ckpt_store_strerror(s), "v3"));
	assert_int_equal(ckpt_version_info(s, "r", "v3", &in), 0);
	assert_int_equal(in.state, CKPT_V_OPEN);
	/* rewrite the file and commit: works */
	tio_fail(&t, 0, 0, 0, false);
	assert_int_equal(ts_write_file(s, "r", "v3", "big.bin", 33, 8 * MiB, 1 * MiB), 0);
	assert_int_equal(ckpt_version_commit(s, "r", "v3", NULL), 0);
	assert_int_equal(ts_check_file(s, "r", "v3", "big.bin", 33, 8 * MiB), 0);
	check_v1(s);
	ckpt_store_close(s);
	tio_fini(&t);
	ts_rmtree(dir);
	free(dir);
}

/* A disk that fails every read with EIO for a while (issue 11, item 9):
 * reads and verify fail with EIO, and the version is not marked corrupt
 * (in memory or in its manifest); afterwards it reads and verifies. */
static void test_read_eio(void **state)
{
	char *dir = ts_tmpdir("readeio");
	struct ckpt_store_opts o = {.create = true};
	struct ckpt_version_info in;
	struct ckpt_store *s;
	struct tio t;

	tio_init(&t, false, NULL);
	o.io = &t.ops;
	assert_int_equal(ckpt_store_open(dir, &o, &s), 0);
	make_v1(s);
	tio_fail(&t, TIO_PREAD, 1, -EIO, true);
	assert_int_equal(ts_check_file(s, "r", "v1", "model.bin", 1, 3 * MiB + 123), -EIO);
	assert_non_null(strstr(ckpt_store_strerror(s), "disk"));
	assert_int_equal(ckpt_store_verify(s, "r", "v1", NULL, NULL, NULL), -EIO);
	assert_int_equal(ckpt_version_info(s, "r", "v1", &in), 0);
	assert_int_equal(in.state, CKPT_V_COMMITTED);
	assert_true(t.failed > 0);
	/* the disk is back */
	tio_fail(&t, 0, 0, 0, false);
	check_v1(s);
	ckpt_store_close(s);
	tio_fini(&t);
	o.io = NULL;
	assert_int_equal(ckpt_store_open(dir, &o, &s), 0);
	check_v1(s);
	ckpt_store_close(s);
	ts_rmtree(dir);
	free(dir);
}

/* short writes, -EAGAIN and -EINTR in completions are retried correctly */
static void test_uring_glitches(void **state)
{
	char *dir = ts_tmpdir("glitch");
	struct ckpt_store_opts o = {.create = true, .inflight_bytes = 4 * MiB};
	struct ckpt_store *s;
	struct tio t;

	tio_init(&t, false, NULL);
	t.uring_odd = 3;
	o.io = &t.ops;
	assert_int_equal(ckpt_store_open(dir, &o, &s), 0);
	assert_int_equal(ckpt_run_create(s, "r"), 0);
	assert_int_equal(ckpt_version_create(s, "r", "g"), 0);
	assert_int_equal(ts_write_file(s, "r", "g", "f.bin", 5, 40 * MiB + 17, 1 * MiB), 0);
	assert_int_equal(ckpt_version_commit(s, "r", "g", NULL), 0);
	printf("io_uring glitches injected: %ld\n", t.uring_altered);
	assert_true(t.uring_altered > 10);
	ckpt_store_close(s);
	tio_fini(&t);
	o.io = NULL;
	assert_int_equal(ckpt_store_open(dir, &o, &s), 0);
	assert_int_equal(ts_check_file(s, "r", "g", "f.bin", 5, 40 * MiB + 17), 0);
	assert_int_equal(ckpt_store_verify(s, NULL, NULL, NULL, NULL, NULL), 0);
	ckpt_store_close(s);
	ts_rmtree(dir);
	free(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_crash_drop),     cmocka_unit_test(test_crash_keep),
		cmocka_unit_test(test_random_faults),  cmocka_unit_test(test_uring_enospc),
		cmocka_unit_test(test_uring_glitches), cmocka_unit_test(test_read_eio),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
