// SPDX-License-Identifier: MIT
/*
 * ops_ns.c - the namespace: mkdir (runs, versions, directories inside
 * versions), unlink, rmdir and rename, with the commit and deletion rules of
 * SPEC §2: renaming an open version commits it; the first unlink in a
 * committed version retires it; rmdir of a version removes it whole.
 */
#include "ckptfs_i.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/stat.h>

/* Answer mkdir or mknod: the new entry (a fresh inode for its path), or
 * the error `ret`. Frees p. */
static void reply_created(fuse_req_t req, struct cfs *c, struct cfs_path *p, int ret)
{
	struct fuse_entry_param e;

	if (ret == 0) {
		cfs_nodes_drop(c->nodes, p->full);
		ret = cfs_entry(c, p->full, &e);
	}
	cfs_path_free(p);
	if (ret < 0)
		fuse_reply_err(req, -ret);
	else
		fuse_reply_entry(req, &e);
}

/* Parse the path of `name` in directory `parent`. */
static int child_path(struct cfs *c, fuse_ino_t parent, const char *name, struct cfs_path *p)
{
	char *dir = NULL, *path = NULL;
	int ret;

	ret = cfs_nodes_path(c->nodes, parent, &dir);
	if (ret < 0)
		return ret;
	ret = cfs_path_join(dir, name, &path);
	free(dir);
	if (ret < 0)
		return ret;
	ret = cfs_path_parse(path, p);
	free(path);
	return ret;
}

void cfs_op_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode)
{
	struct cfs *c = cfs_of(req);
	struct cfs_path p;
	int ret;

	ret = cfs_may_dir(req, parent, W_OK | X_OK);
	if (ret == 0)
		ret = child_path(c, parent, name, &p);
	if (ret < 0) {
		fuse_reply_err(req, -ret);
		return;
	}
	switch (p.kind) {
	case CFS_RUN:
		ret = ckpt_run_create(c->store, p.run);
		break;
	case CFS_VERSION:
		ret = ckpt_version_create(c->store, p.run, p.ver);
		if (ret == 0)
			cfs_track_touch(c, p.run, p.ver, 0);
		break;
	case CFS_NODE:
		ret = ckpt_node_mkdir(c->store, p.run, p.ver, p.rel, mode & 07777);
		if (ret == 0)
			cfs_track_touch(c, p.run, p.ver, 0);
		break;
	default: /* .stats, latest, best, .manifest */
		ret = -EEXIST;
		break;
	}
	reply_created(req, c, &p, ret);
}

/* mknod(2): regular files only (what `mknod` of S_IFREG means, as some
 * tools create files); FIFOs, sockets and device nodes have no place in a
 * checkpoint: EPERM, as on a file system mounted nodev that refuses them. */
void cfs_op_mknod(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode, dev_t rdev)
{
	struct cfs *c = cfs_of(req);
	struct ckpt_file *f = NULL;
	struct cfs_path p;
	int ret;

	ret = cfs_may_dir(req, parent, W_OK | X_OK);
	if (ret == 0)
		ret = child_path(c, parent, name, &p);
	if (ret < 0) {
		fuse_reply_err(req, -ret);
		return;
	}
	if (p.kind == CFS_MANIFEST || p.kind == CFS_STATS)
		ret = -EEXIST;
	else if (p.kind != CFS_NODE || !S_ISREG(mode))
		ret = -EPERM;
	else
		ret = ckpt_file_open(c->store, p.run, p.ver, p.rel, O_WRONLY | O_CREAT | O_EXCL,
				     mode & 07777, &f);
	if (ret == 0) {
		ret = ckpt_file_close(f);
		cfs_track_touch(c, p.run, p.ver, 0);
	}
	reply_created(req, c, &p, ret);
}

/* symlink(2) inside a version: any target text, kept as it is. */
void cfs_op_symlink(fuse_req_t req, const char *link, fuse_ino_t parent, const char *name)
{
	struct cfs *c = cfs_of(req);
	struct cfs_path p;
	int ret;

	ret = cfs_may_dir(req, parent, W_OK | X_OK);
	if (ret == 0)
		ret = child_path(c, parent, name, &p);
	if (ret < 0) {
		fuse_reply_err(req, -ret);
		return;
	}
	if (p.kind == CFS_NODE)
		ret = ckpt_node_symlink(c->store, p.run, p.ver, p.rel, link, strlen(link));
	else if (p.kind == CFS_MANIFEST || p.kind == CFS_STATS || p.kind == CFS_LATEST ||
		 p.kind == CFS_BEST)
		ret = -EEXIST;
	else
		ret = -EPERM; /* runs and versions are directories */
	if (ret == 0)
		cfs_track_touch(c, p.run, p.ver, 0);
	reply_created(req, c, &p, ret);
}

/* link(2): another name of a file in the same open version. Versions are
 * separate trees: a link from one into another is EXDEV (ln falls back to
 * nothing, cp -l and rsync --link-dest copy). */
void cfs_op_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent, const char *newname)
{
	struct cfs *c = cfs_of(req);
	struct cfs_path a, b;
	int ret;

	if (!cfs_resolve(req, ino, &a))
		return;
	ret = cfs_may_dir(req, newparent, W_OK | X_OK);
	if (ret == 0)
		ret = child_path(c, newparent, newname, &b);
	if (ret < 0) {
		cfs_path_free(&a);
		fuse_reply_err(req, -ret);
		return;
	}
	if (b.kind == CFS_MANIFEST || b.kind == CFS_STATS || b.kind == CFS_LATEST ||
	    b.kind == CFS_BEST)
		ret = -EEXIST;
	else if (a.kind != CFS_NODE)
		ret = -EPERM; /* .stats, .manifest, versions, runs */
	else if (b.kind != CFS_NODE || strcmp(a.run, b.run) || strcmp(a.ver, b.ver))
		ret = -EXDEV;
	else if (!cfs_nodes_linked(c->nodes, ino))
		ret = -ENOENT; /* linkat of an unlinked file's descriptor */
	else
		ret = ckpt_node_link(c->store, a.run, a.ver, a.rel, b.rel);
	if (ret == 0)
		cfs_track_touch(c, b.run, b.ver, 0);
	cfs_path_free(&a);
	reply_created(req, c, &b, ret);
}

/* Before removing anything inside a version: a pinned one is busy, a
 * committed one is retired first (it leaves latest/best at once). */
static int prepare_removal(struct cfs *c, const struct cfs_path *p)
{
	struct ckpt_version_info vi;
	int ret;

	ret = ckpt_version_state(c->store, p->run, p->ver, &vi);
	if (ret < 0)
		return ret;
	if (vi.pinned)
		return -EBUSY;
	if (vi.state == CKPT_V_INCOMPLETE) {
		/* Left by a crash, never resumable: removable piecewise where the
		 * store allows retiring it, else read-only (rmdir removes it whole). */
		return ckpt_version_retire(c->store, p->run, p->ver) < 0 ? -EROFS : 0;
	}
	if (vi.state == CKPT_V_COMMITTED || vi.state == CKPT_V_CORRUPT) {
		ret = ckpt_version_retire(c->store, p->run, p->ver);
		if (ret < 0) {
			cfs_log("retiring %s/%s failed: %s", p->run, p->ver,
				ckpt_store_strerror(c->store));
			return ret;
		}
		cfs_log("retired %s/%s (first removal inside it)", p->run, p->ver);
	}
	return 0;
}

/* `rm -r RUN/VERSION` and `rsync --delete` meet .manifest too, and it must
 * never stop them: in a committed version removing it retires the version
 * like any other file; in a retired one it is already gone from listings;
 * in an open version it is generated from the tree, so there is nothing to
 * remove: the unlink succeeds and hides it until the commit (the next rmdir
 * of the emptied version works as on any directory, and `tar -x` of an
 * archive holding .manifest, which unlinks what is in the way and creates
 * it again, gets EPERM from the create instead of EEXIST forever). */
static int unlink_manifest(struct cfs *c, const struct cfs_path *p)
{
	struct ckpt_version_info vi;
	int ret;

	ret = ckpt_version_state(c->store, p->run, p->ver, &vi);
	if (ret < 0)
		return ret;
	if (vi.state == CKPT_V_OPEN)
		return ckpt_version_hide_manifest(c->store, p->run, p->ver);
	if (vi.state == CKPT_V_RETIRED)
		return 0;
	return prepare_removal(c, p);
}

void cfs_op_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct cfs *c = cfs_of(req);
	struct cfs_path p;
	int ret;

	ret = cfs_may_dir(req, parent, W_OK | X_OK);
	if (ret == 0)
		ret = child_path(c, parent, name, &p);
	if (ret < 0)
		goto reply;
	switch (p.kind) {
	case CFS_NODE:
		ret = prepare_removal(c, &p);
		if (ret == 0)
			ret = ckpt_node_unlink(c->store, p.run, p.ver, p.rel);
		if (ret == 0)
			cfs_track_touch(c, p.run, p.ver, 0);
		break;
	case CFS_MANIFEST:
		ret = unlink_manifest(c, &p);
		break;
	case CFS_ROOT:
	case CFS_RUN:
	case CFS_VERSION:
		ret = -EISDIR;
		break;
	default: /* .stats, latest, best are the tree's own */
		ret = -EPERM;
		break;
	}
	if (ret == 0)
		cfs_nodes_drop(c->nodes, p.full);
	cfs_path_free(&p);
reply:
	fuse_reply_err(req, ret < 0 ? -ret : 0);
}

static int rmdir_version(struct cfs *c, const struct cfs_path *p)
{
	struct ckpt_version_info vi;
	char **names = NULL;
	size_t n = 0;
	int ret;

	ret = ckpt_version_state(c->store, p->run, p->ver, &vi);
	if (ret < 0)
		return ret;
	if (vi.pinned)
		return -EBUSY;
	if (vi.state == CKPT_V_OPEN) {
		/* Open versions follow rmdir(2): only when empty. */
		ret = ckpt_node_list(c->store, p->run, p->ver, "", &names, &n);
		if (ret < 0)
			return ret;
		ckpt_strv_free(names, n);
		if (n > 0)
			return -ENOTEMPTY;
	}
	ret = ckpt_version_delete(c->store, p->run, p->ver);
	if (ret < 0)
		return ret;
	cfs_track_forget(c, p->run, p->ver);
	cfs_log("removed version %s/%s (was %s)", p->run, p->ver, ckpt_vstate_name(vi.state));
	return 0;
}

void cfs_op_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct cfs *c = cfs_of(req);
	struct cfs_path p;
	int ret;

	ret = cfs_may_dir(req, parent, W_OK | X_OK);
	if (ret == 0)
		ret = child_path(c, parent, name, &p);
	if (ret < 0)
		goto reply;
	switch (p.kind) {
	case CFS_RUN:
		ret = ckpt_run_remove(c->store, p.run);
		break;
	case CFS_VERSION:
		ret = rmdir_version(c, &p);
		break;
	case CFS_NODE:
		ret = prepare_removal(c, &p);
		if (ret == 0)
			ret = ckpt_node_rmdir(c->store, p.run, p.ver, p.rel);
		break;
	default:
		ret = -ENOTDIR;
		break;
	}
	if (ret == 0)
		cfs_nodes_drop(c->nodes, p.full);
	cfs_path_free(&p);
reply:
	fuse_reply_err(req, ret < 0 ? -ret : 0);
}

/* rename(2) of a version directory inside its run: an open version is
 * committed under the new name, which appears only once it is durable
 * (*committed is set then). */
static int rename_version(struct cfs *c, const struct cfs_path *a, const struct cfs_path *b,
			  bool *committed)
{
	struct ckpt_version_info vi;
	int ret;

	if (strcmp(a->run, b->run) != 0)
		return -EXDEV;
	if (b->kind != CFS_VERSION)
		return -EEXIST; /* latest, best */
	ret = ckpt_version_state(c->store, a->run, a->ver, &vi);
	if (ret < 0)
		return ret;
	if (strcmp(a->ver, b->ver) == 0)
		return 0;
	if (vi.state != CKPT_V_OPEN)
		return ckpt_version_rename(c->store, a->run, a->ver, b->ver);
	cfs_files_writeback(c, a->run, a->ver);
	ret = ckpt_version_commit(c->store, a->run, a->ver, b->ver);
	if (ret < 0) {
		cfs_log("commit of %s/%s as %s failed: %s", a->run, a->ver, b->ver,
			ckpt_store_strerror(c->store));
		return ret;
	}
	cfs_track_forget(c, a->run, a->ver);
	*committed = true;
	return 0;
}

void cfs_op_rename(fuse_req_t req, fuse_ino_t parent, const char *name, fuse_ino_t newparent,
		   const char *newname, unsigned int flags)
{
	struct cfs *c = cfs_of(req);
	bool committed = false;
	struct cfs_path a, b;
	int ret;

	if (flags & ~RENAME_NOREPLACE) {
		fuse_reply_err(req, EINVAL); /* RENAME_EXCHANGE, WHITEOUT */
		return;
	}
	ret = cfs_may_dir(req, parent, W_OK | X_OK);
	if (ret == 0 && newparent != parent)
		ret = cfs_may_dir(req, newparent, W_OK | X_OK);
	if (ret == 0)
		ret = child_path(c, parent, name, &a);
	if (ret < 0)
		goto reply;
	/* a directory that moves to another one has its ".." changed */
	ret = newparent != parent ? cfs_may(req, &a, W_OK | CFS_MAY_IF_DIR) : 0;
	if (ret == 0)
		ret = child_path(c, newparent, newname, &b);
	if (ret < 0)
		goto free_a;
	if (flags & RENAME_NOREPLACE) {
		struct stat st;
		int64_t gen;
		double ttl;

		if (cfs_attr(c, &b, &st, &ttl, &gen) == 0) {
			ret = -EEXIST;
			goto free_b;
		}
	}
	switch (a.kind) {
	case CFS_VERSION:
		ret = rename_version(c, &a, &b, &committed);
		break;
	case CFS_NODE:
		if (b.kind != CFS_NODE)
			ret = b.kind == CFS_MANIFEST ? -EPERM : -EXDEV;
		else if (strcmp(a.run, b.run) != 0 || strcmp(a.ver, b.ver) != 0)
			ret = -EXDEV; /* versions are separate trees; mv copies */
		else
			ret = ckpt_node_rename(c->store, a.run, a.ver, a.rel, b.rel);
		if (ret == 0)
			cfs_track_touch(c, a.run, a.ver, 0);
		break;
	default: /* runs, .stats, .manifest, latest, best */
		ret = -EPERM;
		break;
	}
	if (ret == 0)
		cfs_nodes_move(c->nodes, a.full, b.full);
	if (committed) {
		cfs_files_committed(c, a.run, a.ver);
		cfs_version_committed(c, b.run, b.ver);
		cfs_fill_queue(c, b.run, b.ver);
	}
free_b:
	cfs_path_free(&b);
free_a:
	cfs_path_free(&a);
reply:
	fuse_reply_err(req, ret < 0 ? -ret : 0);
}
