// SPDX-License-Identifier: MIT
/*
 * test_kill9.c - a real writer process is killed with SIGKILL in the middle
 * of writing and committing versions; the store is reopened each time and
 * every committed version must verify and hold exactly the bytes written
 * (its seed is in its metadata); the version being written is INCOMPLETE.
 * Standalone: exit 0 pass, 1 fail.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "ckptfs/store.h"
#include "tstore.h"

#define MiB (1ull << 20)
#define ROUNDS 8

static int fails;

#define CHECK(c)                                                                                   \
	do {                                                                                       \
		if (!(c)) {                                                                        \
			printf("FAIL %s:%d: %s\n", __FILE__, __LINE__, #c);                        \
			fails++;                                                                   \
		}                                                                                  \
	} while (0)

/* the child: write and commit versions until killed */
static void writer(const char *dir, int round, int fd)
{
	struct ckpt_store_opts o = {0};
	struct ckpt_store *s;

	if (ckpt_store_open(dir, &o, &s) < 0) {
		printf("child: open: %s\n", ckpt_store_strerror(NULL));
		_exit(2);
	}
	for (int k = 0;; k++) {
		char v[32], seed[32];
		uint64_t sd = (uint64_t)round * 1000 + (uint64_t)k;

		snprintf(v, sizeof(v), "r%d-k%d", round, k);
		snprintf(seed, sizeof(seed), "%llu", (unsigned long long)sd);
		if (ckpt_version_create(s, "run", v) < 0 ||
		    ts_write_file(s, "run", v, "model.bin", sd, 6 * MiB + sd, 256 << 10) < 0 ||
		    ts_write_file(s, "run", v, "small", sd + 1, sd % 5000, 100) < 0 ||
		    ckpt_meta_set(s, "run", v, "seed", seed, strlen(seed)) < 0 ||
		    ckpt_version_commit(s, "run", v, NULL) < 0) {
			printf("child: %s\n", ckpt_store_strerror(s));
			_exit(3);
		}
		if (write(fd, "c", 1) != 1)
			_exit(4);
	}
}

static void check_store(const char *dir, int *committed, int *incomplete)
{
	struct ckpt_store_opts o = {0};
	struct ckpt_version_info *vi;
	struct ckpt_store *s;
	size_t n;

	*committed = *incomplete = 0;
	if (ckpt_store_open(dir, &o, &s) < 0) {
		printf("FAIL reopen: %s\n", ckpt_store_strerror(NULL));
		fails++;
		return;
	}
	CHECK(ckpt_version_list(s, "run", &vi, &n) == 0);
	for (size_t i = 0; i < n; i++) {
		char seed[32];
		uint64_t sd;
		int l;

		if (vi[i].state == CKPT_V_INCOMPLETE) {
			(*incomplete)++;
			continue;
		}
		CHECK(vi[i].state == CKPT_V_COMMITTED);
		(*committed)++;
		l = ckpt_meta_get(s, "run", vi[i].name, "seed", seed, sizeof(seed) - 1);
		CHECK(l > 0);
		if (l <= 0)
			continue;
		seed[l] = 0;
		sd = strtoull(seed, NULL, 10);
		CHECK(ts_check_file(s, "run", vi[i].name, "model.bin", sd, 6 * MiB + sd) == 0);
		CHECK(ts_check_file(s, "run", vi[i].name, "small", sd + 1, sd % 5000) == 0);
	}
	free(vi);
	CHECK(ckpt_store_verify(s, NULL, NULL, NULL, NULL, NULL) == 0);
	CHECK(ckpt_store_gc(s, NULL) == 0);
	CHECK(ckpt_store_verify(s, NULL, NULL, NULL, NULL, NULL) == 0);
	ckpt_store_close(s);
}

int main(void)
{
	char *dir = ts_tmpdir("kill9");
	struct ckpt_store_opts o = {.create = true};
	struct ckpt_store *s;
	unsigned seed = (unsigned)time(NULL);
	int total_committed = 0, committed, incomplete;

	if (!dir || ckpt_store_open(dir, &o, &s) < 0 || ckpt_run_create(s, "run") < 0) {
		printf("setup failed: %s\n", ckpt_store_strerror(NULL));
		return 1;
	}
	ckpt_store_close(s);
	for (int round = 0; round < ROUNDS; round++) {
		int p[2], st;
		pid_t pid;
		char c;

		if (pipe(p) < 0)
			return 1;
		pid = fork();
		if (pid == 0) {
			close(p[0]);
			writer(dir, round, p[1]);
		}
		close(p[1]);
		/* let it commit once, then kill it at a random moment (mostly in
		 * the middle of writing or committing the next version) */
		if (read(p[0], &c, 1) != 1) {
			printf("FAIL: writer died before its first commit\n");
			fails++;
		}
		usleep((useconds_t)(rand_r(&seed) % 40000));
		kill(pid, SIGKILL);
		waitpid(pid, &st, 0);
		close(p[0]);
		CHECK(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
		check_store(dir, &committed, &incomplete);
		printf("round %d: killed; %d committed versions verify, %d incomplete\n", round,
		       committed, incomplete);
		total_committed = committed;
	}
	CHECK(total_committed >= ROUNDS);
	ts_rmtree(dir);
	free(dir);
	printf("%s\n", fails ? "FAIL" : "PASS");
	return fails ? 1 : 0;
}
