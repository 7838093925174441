// SPDX-License-Identifier: MIT
/*
 * fuzz_path.c - libFuzzer target for the FUSE layer's path parser
 * (fs/fuse/path.c: what a path in the mount names). Two checks per input:
 *  - the input as a path: parsed or refused, never read past; a parsed
 *    path's parts are what it says (run, version, rel inside the copy);
 *  - the input's lines as the names a kernel looks up, one below the other:
 *    cfs_path_join refuses exactly the names that are not names (empty, '/',
 *    over 255 bytes), and the joined path parses back into those names.
 *   tests/fuzz/run-fuzz build/tests/fuzz/fuzz_path tests/fuzz/corpus/path -t 60
 */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ckptfs_i.h"
#include "fuzz_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void parse_raw(const char *s)
{
	struct cfs_path p;
	int ret = cfs_path_parse(s, &p);

	if (ret < 0) {
		FUZZ_CHECK(ret == -EINVAL || ret == -ENAMETOOLONG || ret == -ENOTDIR);
		FUZZ_CHECK(p.full == NULL);
		return;
	}
	FUZZ_CHECK(!strcmp(p.full, s));
	FUZZ_CHECK(strlen(p.run) <= CKPT_NAME_MAX && strlen(p.ver) <= CKPT_NAME_MAX);
	switch (p.kind) {
	case CFS_ROOT:
		FUZZ_CHECK(!*s);
		break;
	case CFS_STATS:
		FUZZ_CHECK(!strcmp(p.run, ".stats") && !p.ver[0]);
		break;
	case CFS_RUN:
		FUZZ_CHECK(p.run[0] && !p.ver[0] && !strchr(p.run, '/'));
		break;
	case CFS_LATEST:
	case CFS_BEST:
	case CFS_VERSION:
		FUZZ_CHECK(p.run[0] && p.ver[0] && !strchr(p.ver, '/'));
		FUZZ_CHECK((p.kind == CFS_LATEST) == !strcmp(p.ver, "latest"));
		FUZZ_CHECK((p.kind == CFS_BEST) == !strcmp(p.ver, "best"));
		break;
	case CFS_MANIFEST:
	case CFS_NODE:
		FUZZ_CHECK(p.rel >= p.full && p.rel < p.full + strlen(p.full));
		FUZZ_CHECK((p.kind == CFS_MANIFEST) == !strcmp(p.rel, ".manifest"));
		break;
	default:
		FUZZ_CHECK(!"unknown kind");
	}
	cfs_path_free(&p);
}

static void join_names(char *s)
{
	char *names[8], *path = strdup(""), *save = NULL, *tok;
	size_t n = 0;
	struct cfs_path p;

	FUZZ_CHECK(path);
	for (tok = strtok_r(s, "\n", &save); tok && n < 8; tok = strtok_r(NULL, "\n", &save)) {
		char *next = NULL;
		size_t len = strlen(tok);
		int bad = len == 0 || len > CKPT_NAME_MAX || strchr(tok, '/');
		int ret = cfs_path_join(path, tok, &next);

		FUZZ_CHECK(bad ? ret < 0 : ret == 0);
		if (ret < 0)
			break;
		free(path);
		path = next;
		names[n++] = tok;
	}
	if (n && !(n >= 2 && !strcmp(names[0], ".stats"))) {
		FUZZ_CHECK(cfs_path_parse(path, &p) == 0);
		FUZZ_CHECK(!strcmp(p.run, names[0]));
		if (n == 1)
			FUZZ_CHECK(p.kind == CFS_RUN || p.kind == CFS_STATS);
		if (n >= 2)
			FUZZ_CHECK(!strcmp(p.ver, names[1]));
		if (n >= 3) {
			FUZZ_CHECK(p.kind == CFS_NODE || p.kind == CFS_MANIFEST);
			FUZZ_CHECK(!strncmp(p.rel, names[2], strlen(names[2])));
		}
		cfs_path_free(&p);
	}
	free(path);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = fuzz_str(data, size);

	parse_raw(s);
	join_names(s);
	free(s);
	return 0;
}
