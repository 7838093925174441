// SPDX-License-Identifier: MIT
/*
 * bench_store.c - the store library against the plain file system on the
 * same disk, alternating runs in one process:
 *   write: a checkpoint of SIZE bytes written through the library and
 *          committed, vs the same bytes with write()+fsync() to one file
 *          (page cache dropped before each side, so that neither pays for
 *          reclaiming the other's pages);
 *   read:  the committed file read back cold (page cache dropped), vs the
 *          plain file read back cold;
 *   rss:   peak RSS of a process that writes and commits SIZE bytes through
 *          the library, against the in-flight budget;
 *   verify: ckpt_store_verify of one committed version of SIZE bytes, cold
 *          (page cache dropped, store freshly opened) and warm, against a
 *          cold read() of the same bytes from one plain file.
 * Prints MB/s per run and the ratios (library / plain). See
 * docs/performance-store.md for how to run it and the figures.
 *
 * usage: bench_store [-s SIZE_MiB] [-r RUNS] [-d DIR] [-w WRITE_KiB]
 *                    [-b BUDGET_MiB] [-c fixed|cdc] [-k CHUNK_KiB]
 *                    [-m write|read|rss|verify|all]
 */
#include <errno.h>
#include <stdbool.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "ckptfs/store.h"
#include "ckptfs/store_io.h"

#define MiB (1ull << 20)

static uint64_t size_b = 2048 * MiB;
static size_t wsize = 1 * MiB;
static size_t budget = 64 * MiB;
static size_t chunk_size;
static struct ckpt_io_ops sync_io;
static bool use_sync_io;
static enum ckpt_direct_io direct_io;
static int runs = 3;
static enum ckpt_chunking chunking = CKPT_CHUNK_DEFAULT;
static const char *base = NULL;

/* CPU seconds (user + system, all threads incl. io_uring workers) */
static double cpu(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
	       (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

static double cpu_store, cpu_plain; /* CPU seconds of the last write */

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* incompressible, and different in every run so dedup never skips work */
static void fill(uint8_t *buf, size_t len, uint64_t off, uint64_t run)
{
	uint64_t *w = (uint64_t *)buf,
		 x = off * 0x9e3779b97f4a7c15ull + run * 0xda942042e4dd58b5ull + 1;

	for (size_t i = 0; i < len / 8; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		w[i] = x;
	}
}

static void drop_caches(const char *path)
{
	int fd = open("/proc/sys/vm/drop_caches", O_WRONLY);

	sync();
	if (fd >= 0) {
		if (write(fd, "3\n", 2) != 2)
			fprintf(stderr, "drop_caches failed; cold reads may be warm\n");
		close(fd);
	} else {
		fprintf(stderr, "cannot drop caches (not root?): cold reads may be warm\n");
	}
	(void)path;
}

static char *mkpath(const char *dir, const char *name)
{
	char *p;

	if (asprintf(&p, "%s/%s", dir, name) < 0)
		exit(1);
	return p;
}

static void rmrf(const char *p)
{
	char *cmd;

	if (asprintf(&cmd, "rm -rf '%s'", p) < 0)
		exit(1);
	if (system(cmd) != 0)
		fprintf(stderr, "cannot remove %s\n", p);
	free(cmd);
}

static double lib_write(const char *dir, uint64_t run, uint8_t *buf)
{
	struct ckpt_store_opts o = {.create = true,
				    .inflight_bytes = budget,
				    .chunking = chunking,
				    .chunk_size = chunk_size,
				    .direct_io = direct_io};
	struct ckpt_store *s;
	struct ckpt_file *f;
	double t0;
	int ret;

	if (use_sync_io)
		o.io = &sync_io;
	drop_caches(dir);
	if (ckpt_store_open(dir, &o, &s) < 0 || ckpt_run_create(s, "run") < 0 ||
	    ckpt_version_create(s, "run", "v") < 0) {
		fprintf(stderr, "store: %s\n", ckpt_store_strerror(NULL));
		exit(1);
	}
	t0 = now();
	cpu_store = cpu();
	ret = ckpt_file_open(s, "run", "v", "model.bin", O_WRONLY | O_CREAT, 0644, &f);
	for (uint64_t off = 0; ret == 0 && off < size_b; off += wsize) {
		fill(buf, wsize, off, run);
		if (ckpt_file_pwrite(f, buf, wsize, off) != (ssize_t)wsize)
			ret = -EIO;
	}
	if (ret == 0)
		ret = ckpt_file_close(f);
	if (getenv("BENCH_VERBOSE"))
		fprintf(stderr, "  written %.2fs\n", now() - t0);
	if (ret == 0)
		ret = ckpt_version_commit(s, "run", "v", NULL);
	t0 = now() - t0;
	cpu_store = cpu() - cpu_store;
	if (ret < 0) {
		fprintf(stderr, "store write: %s\n", ckpt_store_strerror(s));
		exit(1);
	}
	ckpt_store_close(s);
	return (double)size_b / t0 / 1e6;
}

static double plain_write(const char *file, uint64_t run, uint8_t *buf)
{
	double t0;
	int fd;

	drop_caches(file);
	t0 = now();
	cpu_plain = cpu();
	fd = open(file, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	for (uint64_t off = 0; off < size_b; off += wsize) {
		fill(buf, wsize, off, run);
		if (write(fd, buf, wsize) != (ssize_t)wsize) {
			perror("write");
			exit(1);
		}
	}
	if (fsync(fd) < 0 || close(fd) < 0) {
		perror("fsync");
		exit(1);
	}
	cpu_plain = cpu() - cpu_plain;
	return (double)size_b / (now() - t0) / 1e6;
}

static double lib_read(const char *dir, uint8_t *buf)
{
	struct ckpt_store_opts o = {0};
	struct ckpt_store *s;
	struct ckpt_file *f;
	uint64_t off = 0;
	double t0;

	drop_caches(dir);
	t0 = now();
	if (ckpt_store_open(dir, &o, &s) < 0 ||
	    ckpt_file_open(s, "run", "v", "model.bin", O_RDONLY, 0, &f) < 0) {
		fprintf(stderr, "store read: %s\n", ckpt_store_strerror(NULL));
		exit(1);
	}
	for (;;) {
		ssize_t n = ckpt_file_pread(f, buf, wsize, off);

		if (n <= 0) {
			if (n < 0)
				exit(1);
			break;
		}
		off += (uint64_t)n;
	}
	ckpt_file_close(f);
	ckpt_store_close(s);
	t0 = now() - t0;
	if (off != size_b)
		exit(1);
	return (double)size_b / t0 / 1e6;
}

static double plain_read(const char *file, uint8_t *buf)
{
	uint64_t tot = 0;
	double t0;
	int fd;

	drop_caches(file);
	t0 = now();
	fd = open(file, O_RDONLY);
	for (;;) {
		ssize_t n = read(fd, buf, wsize);

		if (n <= 0)
			break;
		tot += (uint64_t)n;
	}
	close(fd);
	t0 = now() - t0;
	if (tot != size_b)
		exit(1);
	return (double)size_b / t0 / 1e6;
}

/* seconds for ckpt_store_verify of run/v in a freshly opened store */
static double lib_verify(const char *dir, bool cold)
{
	struct ckpt_store_opts o = {0};
	struct ckpt_store *s;
	double t0;
	int ret;

	if (cold)
		drop_caches(dir);
	t0 = now();
	if (ckpt_store_open(dir, &o, &s) < 0) {
		fprintf(stderr, "store verify: %s\n", ckpt_store_strerror(NULL));
		exit(1);
	}
	ret = ckpt_store_verify(s, "run", "v", NULL, NULL, NULL);
	if (ret != 0) {
		fprintf(stderr, "store verify: %d: %s\n", ret, ckpt_store_strerror(s));
		exit(1);
	}
	ckpt_store_close(s);
	return now() - t0;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* median, min and max of n values (sorts them) */
static void stats3(double *v, int n, const char *what)
{
	qsort(v, (size_t)n, sizeof(*v), cmp_double);
	printf("%s: median %.3f s (min %.3f, max %.3f, %d runs)\n", what, v[n / 2], v[0], v[n - 1],
	       n);
}

static void bench_verify(const char *work, uint8_t *buf)
{
	double *vc = calloc((size_t)runs, sizeof(double)),
	       *vw = calloc((size_t)runs, sizeof(double));
	double *rc = calloc((size_t)runs, sizeof(double));
	char sdir[4200], pfile[4200];

	snprintf(sdir, sizeof(sdir), "%s/store-verify", work);
	snprintf(pfile, sizeof(pfile), "%s/plain-verify.bin", work);
	lib_write(sdir, 7, buf);
	plain_write(pfile, 7, buf);
	for (int i = 0; i < runs; i++) {
		double mb = (double)size_b / 1e6;

		/* warm right after cold: plain_read drops the page cache */
		if (i % 2) {
			rc[i] = mb / plain_read(pfile, buf);
			vc[i] = lib_verify(sdir, true);
			vw[i] = lib_verify(sdir, false);
		} else {
			vc[i] = lib_verify(sdir, true);
			vw[i] = lib_verify(sdir, false);
			rc[i] = mb / plain_read(pfile, buf);
		}
		printf("run %d: verify cold %.3f s (%.0f MB/s), warm %.3f s (%.0f MB/s); "
		       "plain cold read %.3f s\n",
		       i, vc[i], mb / vc[i], vw[i], mb / vw[i], rc[i]);
		fflush(stdout);
	}
	stats3(vc, runs, "verify cold");
	stats3(vw, runs, "verify warm");
	stats3(rc, runs, "plain cold read()");
	free(vc);
	free(vw);
	free(rc);
}

static void report(const char *what, double *a, double *b)
{
	double sa = 0, sb = 0;

	for (int i = 0; i < runs; i++) {
		sa += a[i];
		sb += b[i];
	}
	printf("%s: store %.0f MB/s, plain %.0f MB/s (means of %d alternating runs), ratio %.3f\n",
	       what, sa / runs, sb / runs, runs, sa / sb);
}

static void rss_child(const char *dir)
{
	uint8_t *buf = malloc(wsize);
	struct rusage ru;

	lib_write(dir, 99, buf);
	getrusage(RUSAGE_SELF, &ru);
	printf("rss: %llu MiB written and committed with an in-flight budget of %zu MiB: "
	       "peak RSS %ld MiB (goal: <= budget + 64 MiB = %zu MiB)\n",
	       (unsigned long long)(size_b >> 20), budget >> 20, ru.ru_maxrss / 1024,
	       (budget >> 20) + 64);
	free(buf);
	exit(0);
}

int main(int argc, char **argv)
{
	const char *mode = "all";
	char *work, sdir[4200], pfile[4200];
	uint8_t *buf;
	double *lw, *pw, *lr, *pr;
	int opt;

	while ((opt = getopt(argc, argv, "s:r:d:w:b:c:k:m:SD:")) != -1) {
		switch (opt) {
		case 's':
			size_b = strtoull(optarg, NULL, 10) * MiB;
			break;
		case 'r':
			runs = atoi(optarg);
			break;
		case 'd':
			base = optarg;
			break;
		case 'w':
			wsize = strtoull(optarg, NULL, 10) << 10;
			break;
		case 'b':
			budget = strtoull(optarg, NULL, 10) * MiB;
			break;
		case 'c':
			chunking = strcmp(optarg, "cdc") ? CKPT_CHUNK_FIXED : CKPT_CHUNK_CDC;
			break;
		case 'k':
			chunk_size = strtoull(optarg, NULL, 10) << 10;
			break;
		case 'm':
			mode = optarg;
			break;
		case 'D':
			direct_io = strcmp(optarg, "on") ? CKPT_DIRECT_OFF : CKPT_DIRECT_ON;
			break;
		case 'S': /* chunk writes with pwrite instead of io_uring (comparison) */
			sync_io = ckpt_io_default;
			sync_io.no_uring = true;
			use_sync_io = true;
			break;
		default:
			fprintf(stderr,
				"usage: %s [-s MiB] [-r runs] [-d dir] [-w KiB] [-b MiB] "
				"[-c fixed|cdc] [-k chunk KiB] [-m write|read|rss|verify|all]\n",
				argv[0]);
			return 2;
		}
	}
	if (!base)
		base = getenv("TMPDIR") ? getenv("TMPDIR") : "/var/tmp";
	if (runs < 1 || wsize < 4096 || size_b % wsize) {
		fprintf(stderr, "size must be a multiple of the write size\n");
		return 2;
	}
	/* every run gets fresh names and nothing is deleted until the end:
	 * deleting thousands of files just before creating new ones makes ext4's
	 * inode allocator scan recently deleted inodes, which would penalize
	 * whichever side creates more files */
	work = mkpath(base, "ckpt-bench-XXXXXX");
	if (!mkdtemp(work)) {
		perror(work);
		return 1;
	}
	buf = aligned_alloc(4096, wsize);
	lw = calloc((size_t)runs, sizeof(double));
	pw = calloc((size_t)runs, sizeof(double));
	lr = calloc((size_t)runs, sizeof(double));
	pr = calloc((size_t)runs, sizeof(double));
	printf("bench_store: %llu MiB, %zu KiB writes, budget %zu MiB, chunking %s, in %s\n",
	       (unsigned long long)(size_b >> 20), wsize >> 10, budget >> 20,
	       chunking == CKPT_CHUNK_CDC ? "cdc" : "default", base);
	if (!strcmp(mode, "all") || !strcmp(mode, "write") || !strcmp(mode, "read")) {
		for (int i = 0; i < runs; i++) {
			snprintf(sdir, sizeof(sdir), "%s/store-%d", work, i);
			snprintf(pfile, sizeof(pfile), "%s/plain-%d.bin", work, i);
			/* alternate which goes first so that neither always gets the
			 * cooler disk */
			if (i % 2) {
				pw[i] = plain_write(pfile, (uint64_t)i, buf);
				lw[i] = lib_write(sdir, (uint64_t)i, buf);
			} else {
				lw[i] = lib_write(sdir, (uint64_t)i, buf);
				pw[i] = plain_write(pfile, (uint64_t)i, buf);
			}
			if (strcmp(mode, "write")) {
				if (i % 2) {
					pr[i] = plain_read(pfile, buf);
					lr[i] = lib_read(sdir, buf);
				} else {
					lr[i] = lib_read(sdir, buf);
					pr[i] = plain_read(pfile, buf);
				}
			}
			printf("run %d: write store %.0f plain %.0f MB/s (CPU s/GiB store %.2f "
			       "plain %.2f)",
			       i, lw[i], pw[i], cpu_store * (double)(1ull << 30) / (double)size_b,
			       cpu_plain * (double)(1ull << 30) / (double)size_b);
			if (strcmp(mode, "write"))
				printf("; cold read store %.0f plain %.0f MB/s", lr[i], pr[i]);
			printf("\n");
			fflush(stdout);
		}
		report("write+commit", lw, pw);
		if (strcmp(mode, "write"))
			report("cold read", lr, pr);
	}
	if (!strcmp(mode, "all") || !strcmp(mode, "rss")) {
		pid_t pid;
		int st;

		fflush(stdout);
		snprintf(sdir, sizeof(sdir), "%s/store-rss", work);
		pid = fork();
		if (pid == 0)
			rss_child(sdir);
		waitpid(pid, &st, 0);
	}
	if (!strcmp(mode, "verify"))
		bench_verify(work, buf);
	rmrf(work);
	free(buf);
	free(lw);
	free(pw);
	free(lr);
	free(pr);
	free(work);
	return 0;
}
