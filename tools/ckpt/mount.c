// SPDX-License-Identifier: MIT
/*
 * mount.c - the store commands' view of the world: the mounted ckptfs tree.
 * ckpt reads it like any program would (readdir, stat, the user.ckpt.*
 * xattrs, the .manifest files) instead of opening the store itself, because
 * the ckptfs daemon holds the store open (and locked) while it is mounted;
 * going through the mount is also what the user sees, caches included.
 *
 * Paths: an absolute path or one starting with "." is taken as is; anything
 * else (RUN, RUN/VERSION) is relative to the mount: --mount, $CKPT_MOUNT, or
 * STATE_DIR/mnt (where ckptd mounts the store by default).
 */
#include "ckpt.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

const char *ckpt_mount_root(struct ckpt_ctx *c)
{
	const char *e = getenv("CKPT_MOUNT");
	char stats[4200];
	struct stat st;

	if (!c->mount && e && e[0])
		c->mount = e;
	if (!c->mount) {
		snprintf(c->mount_buf, sizeof(c->mount_buf), "%s/mnt", ckpt_state_dir(c));
		c->mount = c->mount_buf;
	}
	/* .stats exists only at the root of a ckptfs mount. */
	snprintf(stats, sizeof(stats), "%s/.stats", c->mount);
	if (stat(stats, &st) == 0 && S_ISREG(st.st_mode))
		return c->mount;
	ckpt_err("no ckptfs is mounted at %s (%s). Start ckptd (it mounts its store there), "
		 "mount one with 'ckptfs STORE %s', or name the mount with --mount DIR or "
		 "CKPT_MOUNT.",
		 c->mount, errno == ENOENT ? "no .stats there" : strerror(errno), c->mount);
	return NULL;
}

char *ckpt_mount_resolve(struct ckpt_ctx *c, const char *arg)
{
	const char *root;
	char *p;
	struct stat st;

	if (arg[0] == '/' || arg[0] == '.') {
		p = strdup(arg);
	} else {
		root = ckpt_mount_root(c);
		if (!root)
			return NULL;
		if (strstr(arg, "..")) {
			ckpt_err("'%s': '..' is not allowed in a RUN/VERSION name", arg);
			return NULL;
		}
		if (asprintf(&p, "%s/%s", root, arg) < 0)
			p = NULL;
	}
	if (!p)
		abort();
	/* Trailing slashes would only confuse the "is it a version" checks. */
	for (size_t n = strlen(p); n > 1 && p[n - 1] == '/'; n--)
		p[n - 1] = '\0';
	if (stat(p, &st) < 0) {
		ckpt_err("%s: %s. List what exists with 'ckpt ls'.", p, strerror(errno));
		free(p);
		return NULL;
	}
	return p;
}

char *ckpt_xattr_get(const char *path, const char *name)
{
	char small[4096];
	ssize_t n;
	char *buf;

	/* One call for values that fit (all of ckptfs's do): asking for the
	 * size first would make ckptfs compute user.ckpt.verify twice. */
	n = getxattr(path, name, small, sizeof(small) - 1);
	if (n >= 0) {
		buf = malloc((size_t)n + 1);
		if (!buf)
			abort();
		memcpy(buf, small, (size_t)n);
		buf[n] = '\0';
		return buf;
	}
	if (errno != ERANGE)
		return NULL;
	for (int tries = 0; tries < 4; tries++) {
		n = getxattr(path, name, NULL, 0);
		if (n < 0)
			return NULL;
		buf = malloc((size_t)n + 1);
		if (!buf)
			abort();
		n = getxattr(path, name, buf, (size_t)n);
		if (n >= 0) {
			buf[n] = '\0';
			return buf;
		}
		free(buf);
		if (errno != ERANGE) /* ERANGE: it grew in between */
			return NULL;
	}
	return NULL;
}

bool ckpt_is_version(const char *path)
{
	char *s = ckpt_xattr_get(path, "user.ckpt.state");
	bool yes = s != NULL;

	free(s);
	return yes;
}

json_t *ckpt_manifest_load(const char *vdir)
{
	char path[4200];
	json_error_t je;
	json_t *m;

	snprintf(path, sizeof(path), "%s/.manifest", vdir);
	m = json_load_file(path, 0, &je);
	if (!m)
		ckpt_err("cannot read %s: %s. Is %s a version directory in a ckptfs mount?", path,
			 je.text, vdir);
	return m;
}

json_t *ckpt_manifest_files(json_t *m)
{
	json_t *files = json_object_get(m, "files"), *out = json_array(), *f;
	const char *k;
	size_t i;

	/* Regular files only; directories carry no content. */
	if (json_is_array(files)) {
		json_array_foreach(files, i, f)
		{
			const char *t = ckpt_jstr(f, "type");
			if (json_is_object(f) && (!t || !strcmp(t, "file")))
				json_array_append(out, f);
		}
	} else if (json_is_object(files)) {
		json_object_foreach(files, k, f)
		{
			json_t *o = json_deep_copy(f);
			json_object_set_new(o, "path", json_string(k));
			json_array_append_new(out, o);
		}
	}
	return out;
}

json_t *ckpt_manifest_symlinks(json_t *m)
{
	json_t *files = json_object_get(m, "files"), *out = json_array(), *f;
	size_t i;

	json_array_foreach(files, i, f)
	{
		const char *t = ckpt_jstr(f, "type");
		if (json_is_object(f) && t && !strcmp(t, "symlink"))
			json_array_append(out, f);
	}
	return out;
}

int ckpt_link_target(json_t *f, char *buf, size_t len)
{
	const char *t = ckpt_jstr(f, "target"), *h = ckpt_jstr(f, "target_hex");
	size_t n, i;

	if (t) {
		n = json_string_length(json_object_get(f, "target"));
		if (n > len)
			return -1;
		memcpy(buf, t, n);
		return (int)n;
	}
	if (!h || strlen(h) % 2 || strlen(h) / 2 > len)
		return -1;
	n = strlen(h) / 2;
	for (i = 0; i < n; i++) {
		unsigned b;
		if (sscanf(h + 2 * i, "%2x", &b) != 1)
			return -1;
		buf[i] = (char)b;
	}
	return (int)n;
}

int ckpt_simple_opts(struct ckpt_ctx *c, const char *cmd, const char *help, int argc, char **argv)
{
	static const struct option lo[] = {CKPT_COMMON_LONGOPTS, {NULL, 0, NULL, 0}};
	int opt;

	while ((opt = getopt_long(argc, argv, "hq", lo, NULL)) != -1) {
		if (ckpt_common_opt(c, opt, optarg))
			continue;
		if (opt == 'h') {
			fputs(help, stdout);
			return -1000;
		}
		return -ckpt_bad_opt(cmd, opt, argv);
	}
	return optind;
}

enum ckpt_kind ckpt_path_kind(const char *path)
{
	char buf[4200];
	struct stat st;
	char *s;

	if (ckpt_is_version(path))
		return CKPT_K_VERSION;
	snprintf(buf, sizeof(buf), "%s/.stats", path);
	if (stat(buf, &st) == 0)
		return CKPT_K_ROOT;
	s = ckpt_xattr_get(path, "user.ckpt.keep_last");
	if (s) {
		free(s);
		return CKPT_K_RUN;
	}
	return CKPT_K_OTHER;
}

const char *ckpt_basename(const char *p)
{
	const char *s = strrchr(p, '/');

	return s && s[1] ? s + 1 : p;
}
