// SPDX-License-Identifier: MIT
/*
 * fuzz_store.c - libFuzzer target for what the store reads at mount: a
 * version's manifest file, its run.json, an open marker and the FORMAT file,
 * read by ckpt_store_open on a real dir store (on /dev/shm), and the name
 * rules (ckpt_name_check and the run/version kinds).
 *
 * The input is up to five parts separated by a line "%%":
 *   MANIFEST %% VERSION-NAME %% RUN-JSON %% FORMAT %% MARKER
 * written as runs/r/versions/NAME, runs/r/run.json, FORMAT (the right one
 * when the part is absent) and runs/r/open/o1. The store holds one real
 * chunk, "hello, ckptfs\n" (its hash is in the seeds), so a manifest can
 * name data that exists; the seeds have hard links and symlinks too.
 *
 * Checked: the name rules accept only names that are names; the store
 * opens or says why; once open, every version lists, its tree walks (names
 * valid, stat, read and readlink give data or an errno), and its manifest as the store
 * writes it loads again into the same manifest (a fixed point).
 *   tests/fuzz/run-fuzz build/tests/fuzz/fuzz_store tests/fuzz/corpus/store -t 60
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "ckptfs/store.h"
#include "ckptfs/utf8.h"
#include "fuzz_util.h"
#include "util_i.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

#define NPARTS 5
static const char format_ok[] = "ckptfs-store format 1\n";
static char store[512];

static void put(const char *rel, const char *data, size_t len)
{
	char path[1024];
	int fd;

	snprintf(path, sizeof(path), "%s/%s", store, rel);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	FUZZ_CHECK(fd >= 0);
	FUZZ_CHECK(len == 0 || write(fd, data, len) == (ssize_t)len);
	close(fd);
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	return ftw->level == 0 ? 0 : remove(path);
}

/* Empty runs/ and staging/ (no processes: this runs a million times), then
 * make runs/r/versions and runs/r/open. */
static void reset(void)
{
	static const char *const dirs[] = {"runs/r", "runs/r/versions", "runs/r/open"};
	char path[1024];

	for (int i = 0; i < 2; i++) {
		snprintf(path, sizeof(path), "%s/%s", store, i ? "staging" : "runs");
		FUZZ_CHECK(nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS) == 0);
	}
	for (int i = 0; i < 3; i++) {
		snprintf(path, sizeof(path), "%s/%s", store, dirs[i]);
		FUZZ_CHECK(mkdir(path, 0755) == 0);
	}
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	struct ckpt_store_opts o = {.create = true};
	struct ckpt_store *s;
	struct ckpt_file *f;
	static const char hello[] = "hello, ckptfs\n";

	snprintf(store, sizeof(store), "%s/store", fuzz_dir());
	FUZZ_CHECK(mkdir(store, 0755) == 0);
	FUZZ_CHECK(ckpt_store_open(store, &o, &s) == 0);
	FUZZ_CHECK(ckpt_run_create(s, "seed") == 0);
	FUZZ_CHECK(ckpt_version_create(s, "seed", "v") == 0);
	FUZZ_CHECK(ckpt_node_mkdir(s, "seed", "v", "a", 0755) == 0);
	FUZZ_CHECK(ckpt_file_open(s, "seed", "v", "a/h", O_CREAT | O_WRONLY, 0644, &f) == 0);
	FUZZ_CHECK(ckpt_file_pwrite(f, hello, sizeof(hello) - 1, 0) == sizeof(hello) - 1);
	FUZZ_CHECK(ckpt_file_close(f) == 0);
	FUZZ_CHECK(ckpt_node_link(s, "seed", "v", "a/h", "a/h2") == 0);
	FUZZ_CHECK(ckpt_node_symlink(s, "seed", "v", "l", "a/h", 3) == 0);
	FUZZ_CHECK(ckpt_node_symlink(s, "seed", "v", "lb", "\xff\x01", 2) == 0);
	FUZZ_CHECK(ckpt_version_commit(s, "seed", "v", NULL) == 0);
	if (getenv("FUZZ_STORE_SEED")) { /* print a real manifest, for the seeds */
		char *m;
		size_t n;

		FUZZ_CHECK(ckpt_version_manifest_json(s, "seed", "v", &m, &n) == 0);
		fwrite(m, 1, n, stdout);
		free(m);
	}
	ckpt_store_close(s);
	return 0;
}

/* The name rules, against what a name is (store.h). */
static void names(const char *n)
{
	const char *why = NULL;
	size_t l = strlen(n);
	int comp = name_check_kind(n, NAME_COMP, &why), pub = ckpt_name_check(n, &why);
	int run = name_check_kind(n, NAME_RUN, NULL), ver = name_check_kind(n, NAME_VERSION, NULL);
	int ok = l >= 1 && l <= CKPT_NAME_MAX && strcmp(n, ".") && strcmp(n, "..") &&
		 !strchr(n, '/') && ckpt_utf8_valid(n, l);

	for (size_t i = 0; i < l; i++)
		ok &= (unsigned char)n[i] >= 0x20 && n[i] != 0x7f;
	FUZZ_CHECK((comp == 0) == ok && (pub == 0) == ok);
	FUZZ_CHECK(pub == 0 || why);
	FUZZ_CHECK(run != 0 || ok);
	FUZZ_CHECK(ver != 0 || run == 0);
	FUZZ_CHECK(ver != 0 || (strcmp(n, "latest") && strcmp(n, "best")));
	FUZZ_CHECK(run != 0 ||
		   (strncmp(n, ".ckpt", 5) && strcmp(n, ".manifest") && strcmp(n, ".stats")));
}

/* Walk a version's tree: names, stat, a read of each file. */
static void walk(struct ckpt_store *s, const char *ver, const char *dir, int depth)
{
	char **kids = NULL;
	size_t n = 0;

	if (depth > 8 || ckpt_node_list(s, "r", ver, dir, &kids, &n) < 0)
		return;
	for (size_t i = 0; i < n; i++) {
		char path[4096], buf[64];
		struct ckpt_node_stat st;
		struct ckpt_file *f;

		FUZZ_CHECK(ckpt_name_check(kids[i], NULL) == 0);
		snprintf(path, sizeof(path), "%s%s%s", dir, *dir ? "/" : "", kids[i]);
		FUZZ_CHECK(ckpt_node_stat(s, "r", ver, path, &st) == 0);
		if (st.type == CKPT_NODE_DIR) {
			walk(s, ver, path, depth + 1);
		} else if (st.type == CKPT_NODE_SYMLINK) {
			ssize_t got = ckpt_node_readlink(s, "r", ver, path, buf, sizeof(buf));

			FUZZ_CHECK(got < 0 || (uint64_t)got == st.size);
		} else if (ckpt_file_open(s, "r", ver, path, O_RDONLY, 0, &f) == 0) {
			ssize_t got = ckpt_file_pread(f, buf, sizeof(buf), 0);

			FUZZ_CHECK(got <= (ssize_t)sizeof(buf));
			FUZZ_CHECK(got < 0 || (uint64_t)got <= st.size);
			ckpt_file_close(f);
		}
	}
	ckpt_strv_free(kids, n);
}

/* Open the store; on success list and walk everything. Returns the
 * manifest of version `ver` as the store would write it (or NULL). */
static char *open_and_walk(const char *ver, int *opened)
{
	struct ckpt_store_opts o = {0};
	struct ckpt_store *s = NULL;
	struct ckpt_version_info *vs = NULL;
	char err[512] = "", buf[CKPT_NAME_MAX + 1], *mine = NULL;
	size_t nv = 0;
	int ret = ckpt_store_open_err(store, &o, &s, err, sizeof(err));

	*opened = ret == 0;
	if (ret < 0) {
		FUZZ_CHECK(err[0]);
		return NULL;
	}
	if (ckpt_version_list(s, "r", &vs, &nv) == 0) {
		for (size_t i = 0; i < nv; i++) {
			char *m = NULL;
			size_t len;

			walk(s, vs[i].name, "", 0);
			if (ckpt_version_manifest_json(s, "r", vs[i].name, &m, &len) == 0) {
				json_t *j = json_loadb(m, len, 0, NULL);

				FUZZ_CHECK(j);
				json_decref(j);
				if (!strcmp(vs[i].name, ver) && vs[i].state != CKPT_V_INCOMPLETE)
					mine = m;
				else
					free(m);
			}
		}
		free(vs);
	}
	ckpt_version_latest(s, "r", buf, sizeof(buf));
	ckpt_version_best(s, "r", buf, sizeof(buf));
	ckpt_store_close(s);
	return mine;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *in = fuzz_str(data, size), *part[NPARTS] = {0}, *p = in, *m1, *m2;
	const char *ver = "v1";
	int opened;

	for (int i = 0; i < NPARTS && p; i++) {
		char *sep = i < NPARTS - 1 ? strstr(p, "\n%%\n") : NULL;

		part[i] = p;
		if (sep) {
			*sep = '\0';
			p = sep + 4;
		} else {
			p = NULL;
		}
	}
	if (part[1]) {
		names(part[1]);
		if (name_check_kind(part[1], NAME_COMP, NULL) == 0)
			ver = part[1];
	}
	reset();
	put("FORMAT", part[3] ? part[3] : format_ok, strlen(part[3] ? part[3] : format_ok));
	if (part[2] && *part[2])
		put("runs/r/run.json", part[2], strlen(part[2]));
	if (part[4])
		put("runs/r/open/o1", part[4], strlen(part[4]));
	{
		char rel[300 + CKPT_NAME_MAX];

		snprintf(rel, sizeof(rel), "runs/r/versions/%s", ver);
		put(rel, part[0], strlen(part[0]));
	}
	m1 = open_and_walk(ver, &opened);
	if (m1) {
		/* what the store writes, it reads back the same */
		char rel[300 + CKPT_NAME_MAX];

		reset();
		put("FORMAT", format_ok, sizeof(format_ok) - 1);
		snprintf(rel, sizeof(rel), "runs/r/versions/%s", ver);
		put(rel, m1, strlen(m1));
		m2 = open_and_walk(ver, &opened);
		if (!m2 || strcmp(m1, m2)) {
			fprintf(stderr, "not a fixed point:\n%s\n---\n%s\n", m1,
				m2 ? m2 : "(none)");
			abort();
		}
		free(m2);
		free(m1);
	}
	free(in);
	return 0;
}
