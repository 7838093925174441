// SPDX-License-Identifier: MIT
/*
 * ops_readdir.c - directory listings. A listing is taken whole at opendir
 * (so that offsets stay stable while entries come and go) in the store's
 * sorted order, with the tree's own entries first: .stats in the root,
 * .manifest in a version, latest and best in a run.
 */
#include "ckptfs_i.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define UNKNOWN_INO 0xffffffffu

struct cfs_dir {
	char *path;
	size_t n, cap;
	char **names;
	mode_t *types;
	/* A run's listing keeps its versions' infos: readdirplus answers
	 * from them. Entry i >= vbase is version vi[i - vbase]. */
	struct ckpt_version_info *vi;
	size_t vbase, nvi;
	char run[CKPT_NAME_MAX + 1];
};

static int dir_add(struct cfs_dir *d, const char *name, mode_t type)
{
	if (d->n == d->cap) {
		size_t cap = d->cap ? d->cap * 2 : 32;
		char **nn = realloc(d->names, cap * sizeof(*nn));
		mode_t *nt;

		if (!nn)
			return -ENOMEM;
		d->names = nn;
		nt = realloc(d->types, cap * sizeof(*nt));
		if (!nt)
			return -ENOMEM;
		d->types = nt;
		d->cap = cap;
	}
	d->names[d->n] = strdup(name);
	if (!d->names[d->n])
		return -ENOMEM;
	d->types[d->n++] = type;
	return 0;
}

static void dir_free(struct cfs_dir *d)
{
	size_t i;

	for (i = 0; i < d->n; i++)
		free(d->names[i]);
	free(d->names);
	free(d->types);
	free(d->vi);
	free(d->path);
	free(d);
}

static int list_root(struct cfs *c, struct cfs_dir *d)
{
	char **names = NULL;
	size_t n = 0, i;
	int ret;

	ret = dir_add(d, ".stats", S_IFREG);
	if (ret < 0)
		return ret;
	ret = ckpt_run_list(c->store, &names, &n);
	if (ret < 0)
		return ret;
	for (i = 0; i < n && ret == 0; i++)
		ret = dir_add(d, names[i], S_IFDIR);
	ckpt_strv_free(names, n);
	return ret;
}

static int list_run(struct cfs *c, const struct cfs_path *p, struct cfs_dir *d)
{
	struct ckpt_version_info *v = NULL;
	char buf[CKPT_NAME_MAX + 1];
	size_t n = 0, i;
	int ret;

	if (ckpt_version_latest(c->store, p->run, buf, sizeof(buf)) == 0) {
		ret = dir_add(d, "latest", S_IFLNK);
		if (ret < 0)
			return ret;
	}
	if (ckpt_version_best(c->store, p->run, buf, sizeof(buf)) == 0) {
		ret = dir_add(d, "best", S_IFLNK);
		if (ret < 0)
			return ret;
	}
	ret = ckpt_version_list(c->store, p->run, &v, &n);
	if (ret < 0)
		return ret;
	d->vbase = d->n;
	for (i = 0; i < n && ret == 0; i++)
		ret = dir_add(d, v[i].name, S_IFDIR);
	if (ret < 0) {
		free(v);
		return ret;
	}
	d->vi = v;
	d->nvi = n;
	snprintf(d->run, sizeof(d->run), "%s", p->run);
	return 0;
}

static int list_nodes(struct cfs *c, const struct cfs_path *p, struct cfs_dir *d)
{
	char **names = NULL, *child;
	size_t n = 0, i;
	int ret = 0;

	if (p->kind == CFS_VERSION) {
		struct ckpt_version_info vi;

		/* A retired version is being removed: its .manifest is not
		 * listed; nor an open one's once unlinked. */
		ret = ckpt_version_state(c->store, p->run, p->ver, &vi);
		if (ret < 0)
			return ret;
		if (vi.state != CKPT_V_RETIRED && !vi.manifest_hidden)
			ret = dir_add(d, ".manifest", S_IFREG);
		if (ret < 0)
			return ret;
	}
	ret = ckpt_node_list(c->store, p->run, p->ver, p->rel, &names, &n);
	if (ret < 0)
		return ret;
	for (i = 0; i < n && ret == 0; i++) {
		struct ckpt_node_stat ns;
		mode_t type = S_IFREG;

		if (cfs_path_join(p->rel, names[i], &child) == 0) {
			if (ckpt_node_stat(c->store, p->run, p->ver, child, &ns) == 0)
				type = ns.type == CKPT_NODE_DIR	      ? S_IFDIR
				       : ns.type == CKPT_NODE_SYMLINK ? S_IFLNK
								      : S_IFREG;
			free(child);
		}
		ret = dir_add(d, names[i], type);
	}
	ckpt_strv_free(names, n);
	return ret;
}

void cfs_op_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct cfs *c = cfs_of(req);
	struct ckpt_version_info vi;
	struct cfs_dir *d = NULL;
	struct cfs_path p;
	int ret;

	if (!cfs_resolve(req, ino, &p))
		return;
	ret = cfs_may(req, &p, R_OK);
	if (ret < 0)
		goto out;
	d = calloc(1, sizeof(*d));
	if (!d) {
		ret = -ENOMEM;
		goto out;
	}
	d->path = strdup(p.full);
	ret = d->path ? dir_add(d, ".", S_IFDIR) : -ENOMEM;
	if (ret == 0)
		ret = dir_add(d, "..", S_IFDIR);
	if (ret < 0)
		goto out;
	switch (p.kind) {
	case CFS_ROOT:
		ret = list_root(c, d);
		break;
	case CFS_RUN:
		ret = list_run(c, &p, d);
		break;
	case CFS_VERSION:
	case CFS_NODE:
		ret = list_nodes(c, &p, d);
		/* Committed listings never change (removal tells the kernel). */
		if (ret == 0 && ckpt_version_state(c->store, p.run, p.ver, &vi) == 0 &&
		    cfs_vstate_immutable(vi.state)) {
			fi->cache_readdir = 1;
			fi->keep_cache = 1;
		}
		break;
	default:
		ret = -ENOTDIR;
		break;
	}
out:
	cfs_path_free(&p);
	if (ret < 0) {
		if (d)
			dir_free(d);
		fuse_reply_err(req, -ret);
		return;
	}
	fi->fh = (uintptr_t)d;
	fuse_reply_open(req, fi);
}

static void do_readdir(fuse_req_t req, size_t size, off_t off, struct fuse_file_info *fi, bool plus)
{
	struct cfs_dir *d = (struct cfs_dir *)(uintptr_t)fi->fh;
	struct cfs *c = cfs_of(req);
	char *buf;
	size_t pos = 0, i;

	buf = malloc(size);
	if (!buf) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	for (i = (size_t)off; i < d->n; i++) {
		const char *name = d->names[i];
		struct fuse_entry_param e;
		char *path = NULL;
		size_t need;

		memset(&e, 0, sizeof(e));
		e.attr.st_ino = UNKNOWN_INO;
		e.attr.st_mode = d->types[i];
		if (!plus) {
			need = fuse_add_direntry(req, buf + pos, size - pos, name, &e.attr,
						 (off_t)i + 1);
			if (need > size - pos)
				break;
			pos += need;
			continue;
		}
		need = fuse_add_direntry_plus(req, NULL, 0, name, NULL, 0);
		if (need > size - pos)
			break;
		/* Each entry given with attributes counts as a lookup. */
		if (i >= 2 && cfs_path_join(d->path, name, &path) == 0) {
			int ret;

			if (d->vi && i >= d->vbase && i - d->vbase < d->nvi)
				ret = cfs_entry_version(c, path, d->run, &d->vi[i - d->vbase], &e);
			else
				ret = cfs_entry(c, path, &e);
			if (ret < 0) {
				memset(&e, 0, sizeof(e));
				e.attr.st_ino = UNKNOWN_INO;
				e.attr.st_mode = d->types[i];
			}
			free(path);
		}
		pos += fuse_add_direntry_plus(req, buf + pos, size - pos, name, &e, (off_t)i + 1);
	}
	fuse_reply_buf(req, buf, pos);
	free(buf);
}

void cfs_op_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		    struct fuse_file_info *fi)
{
	do_readdir(req, size, off, fi, false);
}

void cfs_op_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
			struct fuse_file_info *fi)
{
	do_readdir(req, size, off, fi, true);
}

void cfs_op_releasedir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	dir_free((struct cfs_dir *)(uintptr_t)fi->fh);
	fuse_reply_err(req, 0);
}
