// SPDX-License-Identifier: MIT
/*
 * store_cmds.c - `ckpt ls|show|commit|policy|gc` (SPEC §6): the store
 * as seen through the mounted ckptfs tree (see mount.c for why), plus `gc`,
 * which works on an unmounted store through libckptstore because the mount
 * holds the store locked.
 */
#include "ckpt.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#ifdef CKPT_HAVE_STORE
#include "ckptfs/store.h"
#endif

static int skip_dot(const struct dirent *d)
{
	return d->d_name[0] != '.' && strcmp(d->d_name, "latest") && strcmp(d->d_name, "best");
}

static char *link_target(const char *dir, const char *name)
{
	char p[4200], t[PATH_MAX];
	ssize_t n;

	snprintf(p, sizeof(p), "%s/%s", dir, name);
	n = readlink(p, t, sizeof(t) - 1);
	if (n <= 0)
		return NULL;
	t[n] = '\0';
	return strdup(ckpt_basename(t));
}

static long long xattr_num(const char *path, const char *name)
{
	char *s = ckpt_xattr_get(path, name);
	long long v = s ? strtoll(s, NULL, 10) : -1;

	free(s);
	return v;
}

/* ---- ls ---- */

static const char ls_help[] =
	"usage: ckpt ls [RUN[/VERSION]] [--json]\n"
	"\n"
	"Without an argument: the runs in the mount, with their number of versions\n"
	"and their latest and best version. With RUN: its versions, their state,\n"
	"commit sequence and time, size and files. With RUN/VERSION: its files.\n"
	"RUN and RUN/VERSION are relative to the mount (--mount DIR, $CKPT_MOUNT,\n"
	"else STATE_DIR/mnt); a path starting with '/' or '.' is used as is.\n"
	"\n"
	"Options: --mount DIR, --state-dir DIR, --json, -h/--help.\n";

static int ls_root(struct ckpt_ctx *c, const char *root)
{
	static const char *head[] = {"RUN", "VERSIONS", "LATEST", "BEST", "METRIC"};
	struct dirent **ents = NULL;
	struct ckpt_table t;
	json_t *arr = json_array();
	int n = scandir(root, &ents, skip_dot, alphasort);

	if (n < 0) {
		ckpt_err("cannot list %s: %s", root, strerror(errno));
		json_decref(arr);
		return CKPT_EXIT_FAIL;
	}
	ckpt_table_init(&t, 5, head, NULL);
	for (int i = 0; i < n; i++) {
		char rd[4200], cnt[32], *latest, *best, *metric;
		struct dirent **vs = NULL;
		int nv;
		snprintf(rd, sizeof(rd), "%s/%s", root, ents[i]->d_name);
		nv = scandir(rd, &vs, skip_dot, alphasort);
		for (int k = 0; k < nv; k++)
			free(vs[k]);
		free(vs);
		latest = link_target(rd, "latest");
		best = link_target(rd, "best");
		metric = ckpt_xattr_get(rd, "user.ckpt.metric");
		snprintf(cnt, sizeof(cnt), "%d", nv < 0 ? 0 : nv);
		ckpt_table_add(&t, ents[i]->d_name, cnt, latest, best, metric);
		json_array_append_new(arr,
				      json_pack("{s:s,s:i,s:s?,s:s?,s:s?}", "run", ents[i]->d_name,
						"versions", nv < 0 ? 0 : nv, "latest", latest,
						"best", best, "metric", metric));
		free(latest);
		free(best);
		free(metric);
		free(ents[i]);
	}
	free(ents);
	if (c->json)
		ckpt_json_print(arr);
	else if (t.nrows == 0)
		printf("No runs in %s yet. A trainer makes one with mkdir, or submit a job with "
		       "'ckpt run'.\n",
		       root);
	else
		ckpt_table_print(&t, stdout);
	ckpt_table_free(&t);
	json_decref(arr);
	return CKPT_EXIT_OK;
}

static int ls_run(struct ckpt_ctx *c, const char *rd)
{
	static const char *head[] = {"VERSION", "STATE", "SEQ", "COMMITTED", "SIZE", "FILES", ""};
	struct dirent **ents = NULL;
	struct ckpt_table t;
	json_t *arr = json_array();
	char *latest = link_target(rd, "latest"), *best = link_target(rd, "best");
	int n = scandir(rd, &ents, skip_dot, alphasort);

	if (n < 0) {
		ckpt_err("cannot list %s: %s", rd, strerror(errno));
		json_decref(arr);
		free(latest);
		free(best);
		return CKPT_EXIT_FAIL;
	}
	ckpt_table_init(&t, 7, head, NULL);
	for (int i = 0; i < n; i++) {
		char vd[4200], mp[4300], seq[32] = "-", when[64] = "-", size[32] = "-",
					 files[32] = "-";
		char flags[64] = "";
		char *state, *committed, *pinned;
		json_t *m, *o;
		int64_t ct;
		snprintf(vd, sizeof(vd), "%s/%s", rd, ents[i]->d_name);
		state = ckpt_xattr_get(vd, "user.ckpt.state");
		if (!state) {
			free(ents[i]);
			continue;
		}
		committed = ckpt_xattr_get(vd, "user.ckpt.committed");
		pinned = ckpt_xattr_get(vd, "user.ckpt.pinned");
		if (xattr_num(vd, "user.ckpt.seq") > 0)
			snprintf(seq, sizeof(seq), "%lld", xattr_num(vd, "user.ckpt.seq"));
		if (committed && ckpt_iso_parse(committed, &ct) == 0)
			ckpt_iso_format(when, sizeof(when), ct, CKPT_ISO_HUMAN);
		snprintf(mp, sizeof(mp), "%s/.manifest", vd);
		m = json_load_file(mp, 0, NULL);
		o = json_pack("{s:s,s:s,s:s?}", "version", ents[i]->d_name, "state", state,
			      "committed", committed);
		json_object_set_new(o, "seq", json_integer(xattr_num(vd, "user.ckpt.seq")));
		if (m) {
			json_t *lb = json_object_get(m, "logical_bytes");
			json_t *nf = json_object_get(m, "nfiles");
			if (json_is_integer(lb)) {
				ckpt_fmt_bytes(size, sizeof(size),
					       (uint64_t)json_integer_value(lb));
				json_object_set(o, "size_bytes", lb);
			}
			if (json_is_integer(nf)) {
				snprintf(files, sizeof(files), "%lld",
					 (long long)json_integer_value(nf));
				json_object_set(o, "files", nf);
			}
			json_object_set(o, "metadata", json_object_get(m, "metadata"));
		}
		if (latest && !strcmp(latest, ents[i]->d_name))
			strcat(flags, "latest ");
		if (best && !strcmp(best, ents[i]->d_name))
			strcat(flags, "best ");
		if (pinned && !strcmp(pinned, "1"))
			strcat(flags, "pinned ");
		if (flags[0])
			flags[strlen(flags) - 1] = '\0';
		json_object_set_new(o, "latest", json_boolean(strstr(flags, "latest") != NULL));
		json_object_set_new(o, "best", json_boolean(strstr(flags, "best") != NULL));
		json_object_set_new(o, "pinned", json_boolean(strstr(flags, "pinned") != NULL));
		json_array_append_new(arr, o);
		ckpt_table_add(&t, ents[i]->d_name, state, seq, when, size, files,
			       flags[0] ? flags : "");
		json_decref(m);
		free(state);
		free(committed);
		free(pinned);
		free(ents[i]);
	}
	free(ents);
	if (c->json)
		ckpt_json_print(arr);
	else if (t.nrows == 0)
		printf("No versions in %s yet.\n", rd);
	else
		ckpt_table_print(&t, stdout);
	ckpt_table_free(&t);
	json_decref(arr);
	free(latest);
	free(best);
	return CKPT_EXIT_OK;
}

static int ls_version(struct ckpt_ctx *c, const char *vd)
{
	static const char *head[] = {"SIZE", "XXH128", "PATH"};
	json_t *m = ckpt_manifest_load(vd), *files, *f;
	struct ckpt_table t;
	size_t i;

	if (!m)
		return CKPT_EXIT_FAIL;
	files = ckpt_manifest_files(m);
	if (c->json) {
		ckpt_json_print(files);
	} else {
		ckpt_table_init(&t, 3, head, NULL);
		json_array_foreach(files, i, f)
		{
			char sz[32];
			snprintf(sz, sizeof(sz), "%lld",
				 (long long)json_integer_value(json_object_get(f, "size")));
			ckpt_table_add(&t, sz, ckpt_jstr(f, "xxh128"), ckpt_jstr(f, "path"));
		}
		if (t.nrows)
			ckpt_table_print(&t, stdout);
		else
			printf("No files in %s.\n", vd);
		ckpt_table_free(&t);
	}
	json_decref(files);
	json_decref(m);
	return CKPT_EXIT_OK;
}

int cmd_ls(struct ckpt_ctx *c, int argc, char **argv)
{
	int i = ckpt_simple_opts(c, "ls", ls_help, argc, argv), rc;
	const char *root;
	char *p;

	if (i < 0)
		return ckpt_opts_rc(i);
	if (i + 1 < argc)
		return ckpt_usage_err("ls", "one path at a time; unexpected '%s'", argv[i + 1]);
	if (i == argc) {
		root = ckpt_mount_root(c);
		return root ? ls_root(c, root) : CKPT_EXIT_FAIL;
	}
	p = ckpt_mount_resolve(c, argv[i]);
	if (!p)
		return CKPT_EXIT_FAIL;
	switch (ckpt_path_kind(p)) {
	case CKPT_K_ROOT:
		rc = ls_root(c, p);
		break;
	case CKPT_K_RUN:
		rc = ls_run(c, p);
		break;
	case CKPT_K_VERSION:
		rc = ls_version(c, p);
		break;
	default:
		ckpt_err("%s is not a run or a version of a ckptfs mount; use plain 'ls' for "
			 "directories inside a version.",
			 p);
		rc = CKPT_EXIT_FAIL;
	}
	free(p);
	return rc;
}

/* ---- show ---- */

static const char show_help[] =
	"usage: ckpt show RUN/VERSION [--json]\n"
	"\n"
	"A version's state, commit sequence and time, metadata (user.ckpt.meta.*),\n"
	"and every file with its size and XXH128 (what 'xxhsum -H2 FILE' prints);\n"
	"symlinks as PATH -> TARGET with the XXH128 of the target text.\n"
	"--json prints the version's .manifest (chunk lists included).\n"
	"\n"
	"Options: --mount DIR, --state-dir DIR, --json, -h/--help.\n";

int cmd_show(struct ckpt_ctx *c, int argc, char **argv)
{
	int i = ckpt_simple_opts(c, "show", show_help, argc, argv);
	json_t *m, *files, *links, *meta, *v, *f;
	const char *k;
	char *p, b[64];
	size_t n;

	if (i < 0)
		return ckpt_opts_rc(i);
	if (i == argc)
		return ckpt_usage_err("show", "which version? e.g. ckpt show RUN/step-000500");
	if (i + 1 < argc)
		return ckpt_usage_err("show", "one version at a time; unexpected '%s'",
				      argv[i + 1]);
	p = ckpt_mount_resolve(c, argv[i]);
	if (!p)
		return CKPT_EXIT_FAIL;
	if (ckpt_path_kind(p) != CKPT_K_VERSION) {
		ckpt_err("%s is not a version directory; 'ckpt ls %s' lists what is in it.", p,
			 argv[i]);
		free(p);
		return CKPT_EXIT_FAIL;
	}
	m = ckpt_manifest_load(p);
	if (!m) {
		free(p);
		return CKPT_EXIT_FAIL;
	}
	if (c->json) {
		ckpt_json_print(m);
		goto out;
	}
	printf("Version:    %s/%s\n", ckpt_jstr(m, "run") ? ckpt_jstr(m, "run") : "-",
	       ckpt_jstr(m, "version") ? ckpt_jstr(m, "version") : ckpt_basename(p));
	printf("Path:       %s\n", p);
	printf("State:      %s%s\n", ckpt_jstr(m, "state") ? ckpt_jstr(m, "state") : "-",
	       json_is_true(json_object_get(m, "pinned")) ? " (pinned)" : "");
	if (json_integer_value(json_object_get(m, "seq")) > 0)
		printf("Sequence:   %lld\n",
		       (long long)json_integer_value(json_object_get(m, "seq")));
	if (ckpt_jstr(m, "committed")) {
		int64_t t;
		if (ckpt_iso_parse(ckpt_jstr(m, "committed"), &t) == 0) {
			ckpt_iso_format(b, sizeof(b), t, CKPT_ISO_HUMAN);
			printf("Committed:  %s\n", b);
		}
	}
	files = ckpt_manifest_files(m);
	links = ckpt_manifest_symlinks(m);
	ckpt_fmt_bytes(b, sizeof(b),
		       (uint64_t)json_integer_value(json_object_get(m, "logical_bytes")));
	printf("Files:      %zu (%s)\n", json_array_size(files), b);
	if (json_array_size(links))
		printf("Symlinks:   %zu\n", json_array_size(links));
	meta = json_object_get(m, "metadata");
	if (json_object_size(meta)) {
		printf("Metadata:\n");
		json_object_foreach(meta, k, v)
		{
			char *s = json_dumps(v, JSON_ENCODE_ANY);
			printf("  %-20s %s\n", k, json_is_string(v) ? json_string_value(v) : s);
			free(s);
		}
	}
	if (json_array_size(files) || json_array_size(links)) {
		static const char *head[] = {"SIZE", "XXH128", "CHUNKS", "PATH"};
		struct ckpt_table t;
		ckpt_table_init(&t, 4, head, NULL);
		printf("\n");
		json_array_foreach(files, n, f)
		{
			char sz[32], nc[32] = "-";
			json_t *ch = json_object_get(f, "chunks");
			snprintf(sz, sizeof(sz), "%lld",
				 (long long)json_integer_value(json_object_get(f, "size")));
			if (json_is_array(ch))
				snprintf(nc, sizeof(nc), "%zu", json_array_size(ch));
			ckpt_table_add(&t, sz, ckpt_jstr(f, "xxh128"), nc, ckpt_jstr(f, "path"));
		}
		/* symlinks: the XXH128 of the target text, "PATH -> TARGET" */
		json_array_foreach(links, n, f)
		{
			char sz[32], *pt;
			const char *tg = ckpt_jstr(f, "target");
			size_t tl = tg ? strlen(tg) : strlen(ckpt_jstr(f, "target_hex") ?: "") / 2;
			snprintf(sz, sizeof(sz), "%zu", tl);
			if (asprintf(&pt, "%s -> %s%s", ckpt_jstr(f, "path") ?: "?", tg ? "" : "hex:",
				     tg ?: ckpt_jstr(f, "target_hex") ?: "?") < 0)
				continue;
			ckpt_table_add(&t, sz, ckpt_jstr(f, "xxh128"), "-", pt);
			free(pt);
		}
		ckpt_table_print(&t, stdout);
		ckpt_table_free(&t);
	}
	json_decref(links);
	json_decref(files);
out:
	json_decref(m);
	free(p);
	return CKPT_EXIT_OK;
}

/* ---- commit ---- */

static const char commit_help[] =
	"usage: ckpt commit RUN/VERSION\n"
	"\n"
	"Commit an open version: its data and manifest become durable and it becomes\n"
	"immutable, all or nothing (the same as renaming step-N.tmp to step-N, or\n"
	"'setfattr -n user.ckpt.commit -v 1 PATH'). Committing a committed version\n"
	"does nothing and succeeds. A file still open for writing, or a version with\n"
	"user.ckpt.writers whose writers have not all committed their part, fails\n"
	"(the version stays open).\n"
	"\n"
	"Options: --mount DIR, --state-dir DIR, -h/--help.\n";

int cmd_commit(struct ckpt_ctx *c, int argc, char **argv)
{
	int i = ckpt_simple_opts(c, "commit", commit_help, argc, argv), rc = CKPT_EXIT_FAIL;
	char *p, *state;

	if (i < 0)
		return ckpt_opts_rc(i);
	if (i == argc)
		return ckpt_usage_err("commit", "which version? e.g. ckpt commit RUN/step-000500");
	if (i + 1 < argc)
		return ckpt_usage_err("commit", "one version at a time; unexpected '%s'",
				      argv[i + 1]);
	p = ckpt_mount_resolve(c, argv[i]);
	if (!p)
		return CKPT_EXIT_FAIL;
	state = ckpt_xattr_get(p, "user.ckpt.state");
	if (!state) {
		ckpt_err("%s is not a version directory of a ckptfs mount (no user.ckpt.state); "
			 "commit takes RUN/VERSION.",
			 p);
		goto out;
	}
	if (!strcmp(state, "committed")) {
		printf("%s is already committed (seq %lld)\n", p, xattr_num(p, "user.ckpt.seq"));
		rc = CKPT_EXIT_OK;
		goto out;
	}
	if (strcmp(state, "open")) {
		ckpt_err("%s is %s, not open: only open versions can be committed.%s", p, state,
			 !strcmp(state, "incomplete")
				 ? " An incomplete version was left by a crash; "
				   "'ckpt gc' removes it."
				 : "");
		goto out;
	}
	if (setxattr(p, "user.ckpt.commit", "1", 1, 0) < 0) {
		int e = errno;
		char *w = e == EBUSY ? ckpt_xattr_get(p, "user.ckpt.writers") : NULL;
		char *parts = w ? ckpt_xattr_get(p, "user.ckpt.parts") : NULL;

		if (w)
			ckpt_err("committing %s failed: it waits for its writers: "
				 "user.ckpt.writers=%s and only %s%s committed their part. "
				 "The version stays open; each writer sets "
				 "user.ckpt.commit=rank=K, or 'setfattr -x user.ckpt.writers %s' "
				 "commits it as it is.",
				 p, w, parts && parts[0] ? "ranks " : "none", parts ? parts : "",
				 p);
		else if (e == EBUSY)
			ckpt_err("committing %s failed: a file of the version is still open for "
				 "writing. The version stays open; close it (or wait for its "
				 "writer) and retry.",
				 p);
		else
			ckpt_err("committing %s failed: %s. %s", p, strerror(e),
				 e == ENOSPC || e == EIO ? "The version stays open; free space "
							   "or fix the disk and retry."
							 : "The version stays open.");
		free(w);
		free(parts);
		goto out;
	}
	printf("committed %s (seq %lld)\n", p, xattr_num(p, "user.ckpt.seq"));
	rc = CKPT_EXIT_OK;
out:
	free(state);
	free(p);
	return rc;
}

/* ---- policy ---- */

static const char policy_help[] =
	"usage: ckpt policy RUN [--keep-last N] [--keep-best K] [--metric NAME:min|max]\n"
	"                       [--max-age-days D] [--json]\n"
	"\n"
	"Show a run's retention and metric, or set them (xattrs user.ckpt.keep_last,\n"
	"keep_best, max_age_days, metric on the run directory). 0 means no limit.\n"
	"Retention runs after each commit and never removes the newest committed, the\n"
	"best, a pinned or an open version. The metric picks 'best': e.g.\n"
	"--metric val_loss:min uses each version's user.ckpt.meta.val_loss.\n"
	"\n"
	"Options: --mount DIR, --state-dir DIR, --json, -h/--help.\n";

int cmd_policy(struct ckpt_ctx *c, int argc, char **argv)
{
	enum { O_LAST = CKPT_OPT_LOCAL, O_BEST, O_METRIC, O_AGE };
	static const struct option lo[] = {
		CKPT_COMMON_LONGOPTS,
		{"keep-last", required_argument, NULL, O_LAST},
		{"keep-best", required_argument, NULL, O_BEST},
		{"metric", required_argument, NULL, O_METRIC},
		{"max-age-days", required_argument, NULL, O_AGE},
		{NULL, 0, NULL, 0},
	};
	static const char *keys[] = {"keep_last", "keep_best", "max_age_days"};
	const char *val[3] = {NULL, NULL, NULL}, *metric = NULL;
	char *p, *cur;
	int opt, rc = CKPT_EXIT_OK;
	json_t *j;

	while ((opt = getopt_long(argc, argv, "hq", lo, NULL)) != -1) {
		if (ckpt_common_opt(c, opt, optarg))
			continue;
		switch (opt) {
		case 'h':
			fputs(policy_help, stdout);
			return CKPT_EXIT_OK;
		case O_LAST:
		case O_BEST:
		case O_AGE:
			if (ckpt_parse_count("policy",
					     opt == O_LAST   ? "--keep-last"
					     : opt == O_BEST ? "--keep-best"
							     : "--max-age-days",
					     optarg, opt == O_AGE ? 36500 : 1000000) < 0)
				return CKPT_EXIT_USAGE;
			val[opt == O_LAST ? 0 : opt == O_BEST ? 1 : 2] = optarg;
			break;
		case O_METRIC: {
			const char *colon = strrchr(optarg, ':');
			if (optarg[0] && (!colon || colon == optarg ||
					  (strcmp(colon, ":min") && strcmp(colon, ":max"))))
				return ckpt_usage_err("policy",
						      "--metric wants NAME:min or NAME:max "
						      "(e.g. val_loss:min), or '' to clear, "
						      "not '%s'",
						      optarg);
			metric = optarg;
			break;
		}
		default:
			return ckpt_bad_opt("policy", opt, argv);
		}
	}
	if (optind == argc)
		return ckpt_usage_err("policy", "which run? e.g. ckpt policy RUN --keep-last 3");
	if (optind + 1 < argc)
		return ckpt_usage_err("policy", "one run at a time; unexpected '%s'",
				      argv[optind + 1]);
	p = ckpt_mount_resolve(c, argv[optind]);
	if (!p)
		return CKPT_EXIT_FAIL;
	if (ckpt_path_kind(p) != CKPT_K_RUN) {
		ckpt_err("%s is not a run directory of a ckptfs mount; policy takes RUN (see 'ckpt "
			 "ls').",
			 p);
		free(p);
		return CKPT_EXIT_FAIL;
	}
	for (int k = 0; k < 3; k++) {
		char name[64];
		if (!val[k])
			continue;
		snprintf(name, sizeof(name), "user.ckpt.%s", keys[k]);
		if (setxattr(p, name, val[k], strlen(val[k]), 0) < 0) {
			ckpt_err("setting %s=%s on %s failed: %s", keys[k], val[k], p,
				 strerror(errno));
			rc = CKPT_EXIT_FAIL;
		}
	}
	if (metric) {
		int r = metric[0] ? setxattr(p, "user.ckpt.metric", metric, strlen(metric), 0)
				  : removexattr(p, "user.ckpt.metric");
		if (r < 0 && !(errno == ENODATA && !metric[0])) {
			ckpt_err("setting the metric '%s' on %s failed: %s", metric, p,
				 strerror(errno));
			rc = CKPT_EXIT_FAIL;
		}
	}
	j = json_pack("{s:s}", "run", ckpt_basename(p));
	for (int k = 0; k < 3; k++) {
		char name[64];
		snprintf(name, sizeof(name), "user.ckpt.%s", keys[k]);
		json_object_set_new(j, keys[k], json_integer(xattr_num(p, name)));
	}
	cur = ckpt_xattr_get(p, "user.ckpt.metric");
	json_object_set_new(j, "metric", cur && cur[0] ? json_string(cur) : json_null());
	if (c->json) {
		ckpt_json_print(j);
	} else {
		printf("Run:          %s\n", ckpt_basename(p));
		for (int k = 0; k < 3; k++) {
			long long v = json_integer_value(json_object_get(j, keys[k]));
			printf("%-13s %s%lld%s\n",
			       k == 0	? "Keep Last:"
			       : k == 1 ? "Keep Best:"
					: "Max Age Days:",
			       "", v, v == 0 ? " (no limit)" : "");
		}
		printf("Metric:       %s\n", cur && cur[0] ? cur : "- (no 'best' link)");
	}
	free(cur);
	json_decref(j);
	free(p);
	return rc;
}

/* ---- gc ---- */

static const char gc_help[] =
	"usage: ckpt gc [--store DIR] [--json]\n"
	"\n"
	"Remove chunks that no manifest references and incomplete versions (left by\n"
	"crashes). Without --store, gc asks the mounted ckptfs to do it (xattr\n"
	"user.ckpt.gc on the mount) when that ckptfs offers it; otherwise gc opens\n"
	"the store itself, which needs it unmounted ('ckpt daemon stop', or\n"
	"'fusermount3 -u MOUNT'). The store is --store DIR, else STATE_DIR/store.\n"
	"\n"
	"Options: --store DIR, --state-dir DIR, --json, -h/--help.\n";

/*
 * gc through the mount: `setfattr -n user.ckpt.gc -v 1 MOUNT` runs gc inside
 * the ckptfs that holds the store, and `getfattr -n user.ckpt.gc MOUNT` gives
 * the result as JSON. Returns an exit code, or -1 when this ckptfs does not
 * offer it (then gc needs the store unmounted).
 */
static int gc_via_mount(struct ckpt_ctx *c)
{
	const char *e = getenv("CKPT_MOUNT");
	char mnt[4200], stats[4300], what[4300], *res;
	struct ckpt_busy *busy;
	struct stat st;
	json_t *j;
	int ret;

	snprintf(mnt, sizeof(mnt), "%s", c->mount ? c->mount : e && e[0] ? e : ckpt_state_dir(c));
	if (!c->mount && !(e && e[0]))
		snprintf(mnt, sizeof(mnt), "%s/mnt", ckpt_state_dir(c));
	snprintf(stats, sizeof(stats), "%s/.stats", mnt);
	if (stat(stats, &st) < 0)
		return -1; /* not mounted: open the store directly */
	snprintf(what, sizeof(what), "Collecting garbage in the store mounted at %s", mnt);
	busy = ckpt_busy_start(c, what);
	ret = setxattr(mnt, "user.ckpt.gc", "1", 1, 0) < 0 ? errno : 0;
	ckpt_busy_end(busy); /* may change errno */
	if (ret) {
		if (ret == ENOTSUP || ret == ENODATA || ret == EINVAL || ret == EPERM ||
		    ret == EACCES)
			return -1;
		ckpt_err("gc through the mount %s failed: %s", mnt, strerror(ret));
		return CKPT_EXIT_FAIL;
	}
	res = ckpt_xattr_get(mnt, "user.ckpt.gc");
	j = res ? json_loads(res, 0, NULL) : NULL;
	if (c->json) {
		ckpt_json_print(j ? j : json_object());
	} else if (j) {
		char b[32];
		ckpt_fmt_bytes(b, sizeof(b),
			       (uint64_t)json_integer_value(json_object_get(j, "bytes_removed")));
		printf("gc of %s: removed %lld chunks (%s) and %lld incomplete versions\n", mnt,
		       (long long)json_integer_value(json_object_get(j, "chunks_removed")), b,
		       (long long)json_integer_value(json_object_get(j, "versions_removed")));
	} else {
		printf("gc of %s: done\n", mnt);
	}
	json_decref(j);
	free(res);
	return CKPT_EXIT_OK;
}

int cmd_gc(struct ckpt_ctx *c, int argc, char **argv)
{
	enum { O_STORE = CKPT_OPT_LOCAL };
	static const struct option lo[] = {
		CKPT_COMMON_LONGOPTS,
		{"store", required_argument, NULL, O_STORE},
		{NULL, 0, NULL, 0},
	};
	const char *store = NULL;
	char def[4200];
	int opt;

	while ((opt = getopt_long(argc, argv, "hq", lo, NULL)) != -1) {
		if (ckpt_common_opt(c, opt, optarg))
			continue;
		if (opt == 'h') {
			fputs(gc_help, stdout);
			return CKPT_EXIT_OK;
		}
		if (opt == O_STORE) {
			store = optarg;
			continue;
		}
		return ckpt_bad_opt("gc", opt, argv);
	}
	if (optind < argc)
		return ckpt_usage_err("gc",
				      "gc takes no argument, got '%s'; name the store with "
				      "--store DIR",
				      argv[optind]);
	if (!store) {
		int rc = gc_via_mount(c);
		if (rc >= 0)
			return rc;
		snprintf(def, sizeof(def), "%s/store", ckpt_state_dir(c));
		store = def;
	}
#ifdef CKPT_HAVE_STORE
	{
		struct ckpt_store_opts o = {0};
		struct ckpt_gc_result res = {0};
		struct ckpt_store *s = NULL;
		char err[512] = "";
		int ret;

		ret = ckpt_store_open_err(store, &o, &s, err, sizeof(err));
		if (ret < 0) {
			/* The mount holds the store locked (-EBUSY or -EWOULDBLOCK). */
			bool busy = ret == -EBUSY || ret == -EWOULDBLOCK || strstr(err, "in use");
			ckpt_err("cannot open the store %s: %s.%s", store,
				 err[0] ? err : strerror(-ret),
				 busy ? " It is mounted: run 'ckpt gc' without --store (with "
					"--mount "
					"MOUNT if needed) to collect through the mount."
				      : "");
			return CKPT_EXIT_FAIL;
		}
		char what[4300];
		struct ckpt_busy *busy;

		snprintf(what, sizeof(what), "Collecting garbage in %s", store);
		busy = ckpt_busy_start(c, what);
		ret = ckpt_store_gc(s, &res);
		ckpt_busy_end(busy);
		if (ret < 0) {
			ckpt_err("gc of %s failed: %s", store, ckpt_store_strerror(s));
			ckpt_store_close(s);
			return CKPT_EXIT_FAIL;
		}
		ckpt_store_close(s);
		if (c->json) {
			json_t *j = json_pack("{s:s,s:I,s:I,s:I}", "store", store, "chunks_removed",
					      (json_int_t)res.chunks_removed, "bytes_removed",
					      (json_int_t)res.bytes_removed, "versions_removed",
					      (json_int_t)res.versions_removed);
			ckpt_json_print(j);
			json_decref(j);
		} else {
			char b[32];
			ckpt_fmt_bytes(b, sizeof(b), res.bytes_removed);
			printf("gc of %s: removed %llu chunks (%s) and %llu incomplete versions\n",
			       store, (unsigned long long)res.chunks_removed, b,
			       (unsigned long long)res.versions_removed);
		}
		return CKPT_EXIT_OK;
	}
#else
	ckpt_err("this ckpt was built without the store library, so it cannot run gc on %s. "
		 "Rebuild ckptfs with fs/store.",
		 store);
	return CKPT_EXIT_FAIL;
#endif
}
