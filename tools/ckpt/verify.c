// SPDX-License-Identifier: MIT
/*
 * verify.c - `ckpt verify [PATH]` (SPEC §6): check committed versions byte
 * for byte. Through the mount, two independent checks per version:
 *   1. every file is read and its XXH128 compared with the manifest (what a
 *      reader would get; a chunk that fails its own hash reads as EIO), with a
 *      progress bar on a terminal;
 *   2. the user.ckpt.verify xattr makes ckptfs check every stored chunk
 *      against its hash on disk (the kernel's page cache cannot hide a bad
 *      chunk from it): "ok", or EIO and the version becomes corrupt.
 * With --store DIR (an unmounted store) libckptstore's verify does the work
 * and reports each bad chunk. Exit 1 when anything is corrupt.
 */
#include "ckpt.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <xxhash.h>

#ifdef CKPT_HAVE_STORE
#include "ckptfs/store.h"
#endif

static const char verify_help[] =
	"usage: ckpt verify [PATH] [--json]\n"
	"       ckpt verify --store DIR [RUN[/VERSION]] [--json]\n"
	"\n"
	"Check committed versions against their hashes: PATH is RUN/VERSION, RUN (all\n"
	"its versions) or nothing (every run). Each file is read through the mount and\n"
	"its XXH128 compared with the manifest, then ckptfs checks every stored chunk\n"
	"(xattr user.ckpt.verify). Prints ok or CORRUPT per version and the bad files;\n"
	"exits 1 when anything is corrupt. A progress bar shows on a terminal.\n"
	"With --store DIR the store is opened directly (it must not be mounted) and\n"
	"every bad chunk is listed.\n"
	"\n"
	"Options: --mount DIR, --store DIR, --state-dir DIR, --json, -q, -h/--help.\n";

struct vjob {
	struct ckpt_ctx *c;
	uint64_t done, total;
	const char *label;
	json_t *results; /* array of {version, state, ok, files, bad: [...]} */
	int corrupt;
};

/* Hash one file through the mount; 0 and hex filled, or -errno. */
static int hash_file(struct vjob *j, const char *path, char hex[33])
{
	static char buf[1 << 20];
	XXH3_state_t *st = XXH3_createState();
	XXH128_canonical_t canon;
	int fd, ret = 0;
	ssize_t n;

	if (!st)
		return -ENOMEM;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		ret = -errno;
		goto out;
	}
	XXH3_128bits_reset(st);
	for (;;) {
		n = read(fd, buf, sizeof(buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			ret = -errno;
			break;
		}
		if (n == 0)
			break;
		XXH3_128bits_update(st, buf, (size_t)n);
		j->done += (uint64_t)n;
		ckpt_progress(j->c, j->label, j->done, j->total);
	}
	close(fd);
	if (ret == 0) {
		XXH128_canonicalFromHash(&canon, XXH3_128bits_digest(st));
		for (int i = 0; i < 16; i++)
			snprintf(hex + 2 * i, 3, "%02x", canon.digest[i]);
	}
out:
	XXH3_freeState(st);
	return ret;
}

/* Each symlink: readlink through the mount gives the manifest's target, and
 * that text has the manifest's XXH128. */
static void verify_links(json_t *m, const char *vd, json_t *bad)
{
	json_t *links = ckpt_manifest_symlinks(m), *f;
	static char want[4096], got[4097];
	size_t i;

	json_array_foreach(links, i, f)
	{
		const char *rel = ckpt_jstr(f, "path"), *hx = ckpt_jstr(f, "xxh128");
		int wl = ckpt_link_target(f, want, sizeof(want));
		XXH128_canonical_t canon;
		char p[4600], hex[33];
		ssize_t gl;

		if (!rel)
			continue;
		snprintf(p, sizeof(p), "%s/%s", vd, rel);
		gl = readlink(p, got, sizeof(got));
		if (gl < 0) {
			json_array_append_new(bad, json_pack("{s:s,s:s}", "path", rel, "reason",
							     strerror(errno)));
			continue;
		}
		XXH128_canonicalFromHash(&canon, XXH3_128bits(got, (size_t)gl));
		for (int b = 0; b < 16; b++)
			snprintf(hex + 2 * b, 3, "%02x", canon.digest[b]);
		if (wl < 0 || wl != gl || memcmp(want, got, (size_t)gl))
			json_array_append_new(bad, json_pack("{s:s,s:s}", "path", rel, "reason",
							     "symlink target differs from the "
							     "manifest"));
		else if (!hx || strcmp(hx, hex))
			json_array_append_new(bad, json_pack("{s:s,s:s,s:s,s:s}", "path", rel,
							     "reason", "XXH128 mismatch (symlink)",
							     "expected", hx ? hx : "", "got", hex));
	}
	json_decref(links);
}

static void verify_version(struct vjob *j, const char *vd, const char *name)
{
	json_t *m = ckpt_manifest_load(vd), *files = NULL, *bad = json_array(), *f, *r;
	char *state = ckpt_xattr_get(vd, "user.ckpt.state"), *v;
	size_t i;

	r = json_pack("{s:s,s:s}", "version", name, "state", state ? state : "unknown");
	if (!m) {
		json_array_append_new(bad, json_pack("{s:s,s:s}", "path", ".manifest", "reason",
						     "cannot read the manifest"));
		goto done;
	}
	if (state && strcmp(state, "committed") && strcmp(state, "corrupt")) {
		/* open / incomplete / retired versions have no promise to keep */
		json_object_set_new(r, "skipped", json_true());
		goto done;
	}
	files = ckpt_manifest_files(m);
	json_array_foreach(files, i, f)
	{
		char p[4600], hex[33] = "";
		const char *want = ckpt_jstr(f, "xxh128"), *rel = ckpt_jstr(f, "path");
		int ret;
		if (!rel)
			continue;
		snprintf(p, sizeof(p), "%s/%s", vd, rel);
		ret = hash_file(j, p, hex);
		if (ret < 0)
			json_array_append_new(
				bad, json_pack("{s:s,s:s}", "path", rel, "reason", strerror(-ret)));
		else if (want && strcmp(want, hex))
			json_array_append_new(bad, json_pack("{s:s,s:s,s:s,s:s}", "path", rel,
							     "reason", "XXH128 mismatch",
							     "expected", want, "got", hex));
	}
	verify_links(m, vd, bad);
	json_object_set_new(r, "files", json_integer((json_int_t)json_array_size(files)));
	/* The store's own check of every chunk on disk. */
	v = ckpt_xattr_get(vd, "user.ckpt.verify");
	if (!v) {
		json_array_append_new(bad,
				      json_pack("{s:s,s:s}", "path", "(chunks)", "reason",
						errno == EIO ? "a stored chunk does not match its "
							       "hash"
							     : strerror(errno)));
	}
	free(v);
done:
	json_object_set_new(r, "ok", json_boolean(json_array_size(bad) == 0));
	json_object_set_new(r, "bad", bad);
	if (json_array_size(bad))
		j->corrupt++;
	json_array_append_new(j->results, r);
	json_decref(files);
	json_decref(m);
	free(state);
}

static uint64_t version_bytes(const char *vd)
{
	char p[4300];
	json_t *m;
	uint64_t n;

	snprintf(p, sizeof(p), "%s/.manifest", vd);
	m = json_load_file(p, 0, NULL);
	n = (uint64_t)json_integer_value(json_object_get(m, "logical_bytes"));
	json_decref(m);
	return n;
}

static int skip_dot(const struct dirent *d)
{
	return d->d_name[0] != '.' && strcmp(d->d_name, "latest") && strcmp(d->d_name, "best");
}

/* Collect the version dirs under path (root, run or version) into list. */
static void collect(const char *path, const char *name, json_t *list, int depth)
{
	struct dirent **ents = NULL;
	int n;

	if (ckpt_is_version(path)) {
		json_array_append_new(list, json_pack("[s,s]", path, name));
		return;
	}
	if (depth >= 2)
		return;
	n = scandir(path, &ents, skip_dot, alphasort);
	for (int i = 0; i < n; i++) {
		char p[4200], nm[600];
		snprintf(p, sizeof(p), "%s/%s", path, ents[i]->d_name);
		snprintf(nm, sizeof(nm), "%s%s%s", name, name[0] ? "/" : "", ents[i]->d_name);
		if (ents[i]->d_type == DT_DIR || ents[i]->d_type == DT_UNKNOWN)
			collect(p, nm, list, depth + 1);
		free(ents[i]);
	}
	free(ents);
}

static int print_results(struct ckpt_ctx *c, struct vjob *j)
{
	json_t *r, *b;
	size_t i, k, nok = 0, nskip = 0;

	if (c->json) {
		json_t *o = json_pack("{s:b,s:O}", "ok", j->corrupt == 0, "versions", j->results);
		ckpt_json_print(o);
		json_decref(o);
		return j->corrupt ? CKPT_EXIT_FAIL : CKPT_EXIT_OK;
	}
	json_array_foreach(j->results, i, r)
	{
		const char *name = ckpt_jstr(r, "version");
		if (json_is_true(json_object_get(r, "skipped"))) {
			nskip++;
			if (!c->quiet)
				printf("skip     %s (%s: nothing to verify until committed)\n",
				       name, ckpt_jstr(r, "state"));
			continue;
		}
		if (json_is_true(json_object_get(r, "ok"))) {
			nok++;
			if (!c->quiet)
				printf("ok       %s (%lld files)\n", name,
				       (long long)json_integer_value(json_object_get(r, "files")));
			continue;
		}
		printf("CORRUPT  %s\n", name);
		json_array_foreach(json_object_get(r, "bad"), k, b)
			printf("  bad: %s: %s\n", ckpt_jstr(b, "path"), ckpt_jstr(b, "reason"));
	}
	printf("\n%zu version%s verified: %zu ok, %d corrupt", nok + (size_t)j->corrupt,
	       nok + (size_t)j->corrupt == 1 ? "" : "s", nok, j->corrupt);
	if (nskip)
		printf(", %zu not committed (skipped)", nskip);
	printf("\n");
	if (j->corrupt)
		printf("Corrupt versions are never resumed from; delete them with 'rm -r "
		       "MOUNT/RUN/VERSION' once you no longer need to inspect them.\n");
	return j->corrupt ? CKPT_EXIT_FAIL : CKPT_EXIT_OK;
}

#ifdef CKPT_HAVE_STORE
/* The store calls both callbacks with one argument. */
struct sverify {
	struct ckpt_ctx *c;
	json_t *bad;
};

static void on_bad_chunk(void *arg, const char *run, const char *version, const char *path,
			 uint64_t offset, const char *chunk_hex, const char *what)
{
	json_t *bad = ((struct sverify *)arg)->bad;

	json_array_append_new(bad, json_pack("{s:s,s:s,s:s,s:I,s:s,s:s}", "run", run, "version",
					     version, "path", path, "offset", (json_int_t)offset,
					     "chunk", chunk_hex, "reason", what ? what : "bad"));
}

static void on_progress(void *arg, uint64_t done, uint64_t total)
{
	ckpt_progress(((struct sverify *)arg)->c, "verifying", done, total);
}

static int verify_store(struct ckpt_ctx *c, const char *store, const char *what)
{
	struct ckpt_store_opts o = {0};
	struct ckpt_store *s = NULL;
	char err[512] = "", run[512] = "", *ver = NULL;
	json_t *bad = json_array(), *b;
	struct sverify sv;
	size_t i;
	int ret;

	if (what) {
		snprintf(run, sizeof(run), "%s", what);
		ver = strchr(run, '/');
		if (ver)
			*ver++ = '\0';
	}
	ret = ckpt_store_open_err(store, &o, &s, err, sizeof(err));
	if (ret < 0) {
		ckpt_err("cannot open the store %s: %s%s", store, err[0] ? err : strerror(-ret),
			 " If it is mounted, verify through the mount: ckpt verify [PATH].");
		json_decref(bad);
		return CKPT_EXIT_FAIL;
	}
	sv.c = c;
	sv.bad = bad;
	ret = ckpt_store_verify(s, what ? run : NULL, ver, on_bad_chunk, &sv, on_progress);
	ckpt_progress_end(c);
	if (ret < 0) {
		ckpt_err("verify of %s failed: %s", store, ckpt_store_strerror(s));
		ckpt_store_close(s);
		json_decref(bad);
		return CKPT_EXIT_FAIL;
	}
	ckpt_store_close(s);
	if (c->json) {
		json_t *out = json_pack("{s:b,s:s,s:O}", "ok", ret == 0, "store", store,
					"bad_chunks", bad);
		ckpt_json_print(out);
		json_decref(out);
	} else if (ret == 0) {
		printf("ok: every chunk of %s%s%s matches its hash\n", store, what ? " " : "",
		       what ? what : "");
	} else {
		printf("CORRUPT: %d bad chunk%s\n", ret, ret == 1 ? "" : "s");
		json_array_foreach(bad, i, b)
			printf("  bad: %s/%s/%s at offset %lld (chunk %s): %s\n",
			       ckpt_jstr(b, "run"), ckpt_jstr(b, "version"), ckpt_jstr(b, "path"),
			       (long long)json_integer_value(json_object_get(b, "offset")),
			       ckpt_jstr(b, "chunk"), ckpt_jstr(b, "reason"));
	}
	json_decref(bad);
	return ret == 0 ? CKPT_EXIT_OK : CKPT_EXIT_FAIL;
}
#endif

int cmd_verify(struct ckpt_ctx *c, int argc, char **argv)
{
	enum { O_STORE = CKPT_OPT_LOCAL };
	static const struct option lo[] = {
		CKPT_COMMON_LONGOPTS,
		{"store", required_argument, NULL, O_STORE},
		{NULL, 0, NULL, 0},
	};
	struct vjob j = {.c = c};
	const char *store = NULL, *arg = NULL;
	json_t *list, *e;
	char *p, label[64];
	size_t i;
	int opt, rc;

	while ((opt = getopt_long(argc, argv, "hq", lo, NULL)) != -1) {
		if (ckpt_common_opt(c, opt, optarg))
			continue;
		if (opt == 'h') {
			fputs(verify_help, stdout);
			return CKPT_EXIT_OK;
		}
		if (opt == O_STORE) {
			store = optarg;
			continue;
		}
		return ckpt_bad_opt("verify", opt, argv);
	}
	if (optind + 1 < argc)
		return ckpt_usage_err("verify", "one path at a time; unexpected '%s'",
				      argv[optind + 1]);
	if (optind < argc)
		arg = argv[optind];
	if (store) {
#ifdef CKPT_HAVE_STORE
		return verify_store(c, store, arg);
#else
		ckpt_err("this ckpt was built without the store library; verify through the "
			 "mount instead: ckpt verify [PATH]");
		return CKPT_EXIT_FAIL;
#endif
	}
	p = arg ? ckpt_mount_resolve(c, arg) : NULL;
	if (!p) {
		const char *root = arg ? NULL : ckpt_mount_root(c);
		if (!root)
			return CKPT_EXIT_FAIL;
		p = strdup(root);
	}
	list = json_array();
	collect(p, arg ? arg : "", list, ckpt_is_version(p) ? 0 : (arg ? 1 : 0));
	if (json_array_size(list) == 0) {
		ckpt_err("no versions under %s to verify%s", p,
			 ckpt_is_version(p) ? "" : "; is it a run or version of a ckptfs mount?");
		json_decref(list);
		free(p);
		return arg ? CKPT_EXIT_FAIL : CKPT_EXIT_OK;
	}
	json_array_foreach(list, i, e) j.total +=
		version_bytes(json_string_value(json_array_get(e, 0)));
	j.results = json_array();
	json_array_foreach(list, i, e)
	{
		snprintf(label, sizeof(label), "%s", json_string_value(json_array_get(e, 1)));
		j.label = label;
		verify_version(&j, json_string_value(json_array_get(e, 0)),
			       json_string_value(json_array_get(e, 1)));
	}
	ckpt_progress_end(c);
	rc = print_results(c, &j);
	json_decref(j.results);
	json_decref(list);
	free(p);
	return rc;
}
