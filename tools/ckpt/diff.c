// SPDX-License-Identifier: MIT
/*
 * diff.c - `ckpt diff A B` (SPEC §6): two versions compared through their
 * .manifest files. A file is the same when its XXH128 is; shared bytes are
 * B's chunk bytes whose hashes A also has (stored once in the store).
 */
#include "ckpt.h"

#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* ---- diff ---- */

static const char diff_help[] =
	"usage: ckpt diff A B [--json]\n"
	"\n"
	"Compare two versions file by file: same (equal XXH128), changed, added (only\n"
	"in B) or removed (only in A), and how many of B's bytes are stored chunks it\n"
	"shares with A (deduplicated: not stored twice). B may be a bare version name\n"
	"of A's run: ckpt diff myrun/step-000100 step-000200. Exits 0 when the diff\n"
	"was made (like git diff), 1 on errors.\n"
	"\n"
	"Options: --mount DIR, --state-dir DIR, --json, -h/--help.\n";

/* Sum of the chunk bytes of file f whose hashes are in set. */
static uint64_t shared_bytes(json_t *f, json_t *set)
{
	json_t *ch = json_object_get(f, "chunks"), *e;
	uint64_t n = 0;
	size_t i;

	json_array_foreach(ch, i, e)
	{
		const char *h = json_string_value(json_array_get(e, 0));
		if (h && json_object_get(set, h))
			n += (uint64_t)json_integer_value(json_array_get(e, 1));
	}
	return n;
}

static json_t *by_path(json_t *files)
{
	json_t *o = json_object(), *f;
	size_t i;

	json_array_foreach(files, i, f) if (ckpt_jstr(f, "path"))
		json_object_set(o, ckpt_jstr(f, "path"), f);
	return o;
}

int cmd_diff(struct ckpt_ctx *c, int argc, char **argv)
{
	int i = ckpt_simple_opts(c, "diff", diff_help, argc, argv), rc = CKPT_EXIT_FAIL;
	char *pa = NULL, *pb = NULL;
	json_t *ma = NULL, *mb = NULL, *fa = NULL, *fb = NULL, *ia = NULL, *ib = NULL;
	json_t *chunks_a = NULL, *out = NULL, *rows, *f, *e;
	uint64_t shared = 0, total_b = 0, cnt[4] = {0};
	static const char *names[] = {"same", "changed", "added", "removed"};
	const char *k;
	size_t n;

	if (i < 0)
		return ckpt_opts_rc(i);
	if (argc - i != 2)
		return ckpt_usage_err("diff", "diff needs two versions, A and B; e.g. ckpt diff "
					      "RUN/step-000100 RUN/step-000200");
	pa = ckpt_mount_resolve(c, argv[i]);
	if (!pa)
		goto out;
	if (!strchr(argv[i + 1], '/') && argv[i + 1][0] != '.') {
		/* A bare name: a sibling of A. */
		char sib[4200];
		struct stat st;
		snprintf(sib, sizeof(sib), "%.*s/%s", (int)(ckpt_basename(pa) - pa - 1), pa,
			 argv[i + 1]);
		if (stat(sib, &st) == 0)
			pb = strdup(sib);
	}
	if (!pb)
		pb = ckpt_mount_resolve(c, argv[i + 1]);
	if (!pb)
		goto out;
	if (ckpt_path_kind(pa) != CKPT_K_VERSION || ckpt_path_kind(pb) != CKPT_K_VERSION) {
		ckpt_err("%s is not a version directory; diff compares two versions (see 'ckpt ls "
			 "RUN').",
			 ckpt_path_kind(pa) != CKPT_K_VERSION ? pa : pb);
		goto out;
	}
	ma = ckpt_manifest_load(pa);
	mb = ckpt_manifest_load(pb);
	if (!ma || !mb)
		goto out;
	fa = ckpt_manifest_files(ma);
	fb = ckpt_manifest_files(mb);
	ia = by_path(fa);
	ib = by_path(fb);
	chunks_a = json_object();
	json_array_foreach(fa, n, f)
	{
		json_array_foreach(json_object_get(f, "chunks"), i,
				   e) if (json_string_value(json_array_get(e, 0)))
			json_object_set_new(chunks_a, json_string_value(json_array_get(e, 0)),
					    json_true());
	}
	rows = json_array();
	/* Files of B in B's order, then those only in A. */
	json_array_foreach(fb, n, f)
	{
		json_t *a = json_object_get(ia, ckpt_jstr(f, "path"));
		uint64_t size = (uint64_t)json_integer_value(json_object_get(f, "size")), sh;
		int st;
		if (!a)
			st = 2;
		else if (ckpt_jstr(a, "xxh128") && ckpt_jstr(f, "xxh128") &&
			 !strcmp(ckpt_jstr(a, "xxh128"), ckpt_jstr(f, "xxh128")))
			st = 0;
		else
			st = 1;
		/* Without chunk lists, an identical file still shares all its bytes. */
		sh = json_object_get(f, "chunks") ? shared_bytes(f, chunks_a) : st == 0 ? size : 0;
		cnt[st]++;
		shared += sh;
		total_b += size;
		json_array_append_new(rows,
				      json_pack("{s:s,s:s,s:I,s:I}", "path", ckpt_jstr(f, "path"),
						"status", names[st], "size", (json_int_t)size,
						"shared_bytes", (json_int_t)sh));
	}
	json_object_foreach(ia, k, f)
	{
		if (json_object_get(ib, k))
			continue;
		cnt[3]++;
		json_array_append_new(
			rows, json_pack("{s:s,s:s,s:I,s:I}", "path", k, "status", "removed", "size",
					json_integer_value(json_object_get(f, "size")),
					"shared_bytes", (json_int_t)0));
	}
	out = json_pack("{s:s,s:s,s:o,s:{s:I,s:I,s:I,s:I},s:I,s:I}", "a", pa, "b", pb, "files",
			rows, "summary", "same", (json_int_t)cnt[0], "changed", (json_int_t)cnt[1],
			"added", (json_int_t)cnt[2], "removed", (json_int_t)cnt[3], "shared_bytes",
			(json_int_t)shared, "total_bytes_b", (json_int_t)total_b);
	if (c->json) {
		ckpt_json_print(out);
	} else {
		char s1[32], s2[32];
		json_array_foreach(rows, n, f)
		{
			char sz[32];
			ckpt_fmt_bytes(sz, sizeof(sz),
				       (uint64_t)json_integer_value(json_object_get(f, "size")));
			printf("%-8s %-10s %s\n", ckpt_jstr(f, "status"), sz, ckpt_jstr(f, "path"));
		}
		ckpt_fmt_bytes(s1, sizeof(s1), shared);
		ckpt_fmt_bytes(s2, sizeof(s2), total_b);
		printf("\n%llu same, %llu changed, %llu added, %llu removed; B shares %s of its %s "
		       "with A (%.0f%%)\n",
		       (unsigned long long)cnt[0], (unsigned long long)cnt[1],
		       (unsigned long long)cnt[2], (unsigned long long)cnt[3], s1, s2,
		       total_b ? 100.0 * (double)shared / (double)total_b : 100.0);
	}
	rc = CKPT_EXIT_OK;
out:
	json_decref(out);
	json_decref(chunks_a);
	json_decref(ia);
	json_decref(ib);
	json_decref(fa);
	json_decref(fb);
	json_decref(ma);
	json_decref(mb);
	free(pa);
	free(pb);
	return rc;
}
