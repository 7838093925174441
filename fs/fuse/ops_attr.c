// SPDX-License-Identifier: MIT
/*
 * ops_attr.c - lookup, forget, getattr, setattr, readlink, statfs, access.
 */
#include "ckptfs_i.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>

bool cfs_resolve(fuse_req_t req, fuse_ino_t ino, struct cfs_path *p)
{
	struct cfs *c = cfs_of(req);
	char *path = NULL;
	int ret;

	ret = cfs_nodes_path(c->nodes, ino, &path);
	if (ret == 0) {
		ret = cfs_path_parse(path, p);
		free(path);
	}
	if (ret < 0) {
		fuse_reply_err(req, -ret);
		return false;
	}
	return true;
}

void cfs_op_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct cfs *c = cfs_of(req);
	struct fuse_entry_param e;
	char *dir = NULL, *path = NULL;
	int ret;

	cfs_tune_once(c);
	ret = cfs_may_dir(req, parent, X_OK);
	if (ret == 0)
		ret = cfs_nodes_path(c->nodes, parent, &dir);
	if (ret < 0)
		goto out;
	ret = cfs_path_join(dir, name, &path);
	if (ret < 0)
		goto out;
	ret = cfs_entry(c, path, &e);
	/* A name the store cannot hold simply does not exist. */
	if (ret == -EINVAL)
		ret = -ENOENT;
out:
	free(dir);
	free(path);
	if (ret < 0)
		fuse_reply_err(req, -ret);
	else
		fuse_reply_entry(req, &e);
}

void cfs_op_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup)
{
	cfs_nodes_forget(cfs_of(req)->nodes, ino, nlookup);
	fuse_reply_none(req);
}

void cfs_op_forget_multi(fuse_req_t req, size_t count, struct fuse_forget_data *forgets)
{
	size_t i;

	for (i = 0; i < count; i++)
		cfs_nodes_forget(cfs_of(req)->nodes, forgets[i].ino, forgets[i].nlookup);
	fuse_reply_none(req);
}

/*
 * The file of an inode that lost its path (unlinked, or replaced by a
 * rename) lives on while descriptors hold it (POSIX): its attributes come
 * through one of its handles (fi's, else any), never from the path, which
 * may name another file by now. 1 when answered that way, 0 when the
 * inode still has its path (or no handle: then its path answers, as before).
 */
static int detached_stat(struct cfs *c, fuse_ino_t ino, struct fuse_file_info *fi, struct stat *st)
{
	struct cfs_fh *fh = fi ? (struct cfs_fh *)(uintptr_t)fi->fh : NULL;
	struct ckpt_node_stat ns;
	int ret;

	if (cfs_nodes_linked(c->nodes, ino))
		return 0;
	if (fh && fh->f)
		ret = ckpt_file_stat(fh->f, &ns);
	else
		ret = cfs_files_stat_ino(ino, &ns);
	if (ret < 0)
		return 0;
	cfs_attr_node(c, &ns, st);
	return 1;
}

static void reply_attr(fuse_req_t req, fuse_ino_t ino, const struct cfs_path *p,
		       struct fuse_file_info *fi)
{
	struct stat st;
	int64_t gen;
	double ttl;
	int ret;

	if (detached_stat(cfs_of(req), ino, fi, &st)) {
		fuse_reply_attr(req, &st, CFS_TTL_NONE);
		return;
	}
	ret = cfs_attr(cfs_of(req), p, &st, &ttl, &gen);
	if (ret < 0) {
		fuse_reply_err(req, -ret);
		return;
	}
	if (!st.st_ino)
		st.st_ino = ino;
	fuse_reply_attr(req, &st, ttl);
}

void cfs_op_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct cfs_path p;

	cfs_tune_once(cfs_of(req));
	if (!cfs_resolve(req, ino, &p))
		return;
	reply_attr(req, ino, &p, fi);
	cfs_path_free(&p);
}

static int64_t ts_ns(const struct timespec *ts)
{
	return (int64_t)ts->tv_sec * 1000000000 + ts->tv_nsec;
}

/* chown to the mount's owner changes nothing (everything belongs to the
 * user who mounted, docs/mount.md) and succeeds, so `tar -x` and `rsync -a`
 * as that user or root work; to anyone else: EPERM. */
static int check_owner(struct cfs *c, const struct stat *attr, int to_set)
{
	if ((to_set & FUSE_SET_ATTR_UID) && attr->st_uid != c->uid)
		return -EPERM;
	if ((to_set & FUSE_SET_ATTR_GID) && attr->st_gid != c->gid)
		return -EPERM;
	return 0;
}

/* The store's form of a setattr request: mode, times, size. */
static void setattr_of(const struct stat *attr, int to_set, struct ckpt_setattr *a)
{
	memset(a, 0, sizeof(*a));
	if (to_set & FUSE_SET_ATTR_MODE) {
		a->what |= CKPT_SET_MODE;
		a->mode = attr->st_mode & 07777;
	}
	if (to_set & (FUSE_SET_ATTR_ATIME | FUSE_SET_ATTR_ATIME_NOW)) {
		a->what |= CKPT_SET_ATIME;
		a->atime_ns =
			(to_set & FUSE_SET_ATTR_ATIME_NOW) ? CKPT_TIME_NOW : ts_ns(&attr->st_atim);
	}
	if (to_set & (FUSE_SET_ATTR_MTIME | FUSE_SET_ATTR_MTIME_NOW)) {
		a->what |= CKPT_SET_MTIME;
		a->mtime_ns =
			(to_set & FUSE_SET_ATTR_MTIME_NOW) ? CKPT_TIME_NOW : ts_ns(&attr->st_mtim);
	}
	if (to_set & FUSE_SET_ATTR_SIZE) {
		a->what |= CKPT_SET_SIZE;
		a->size = (uint64_t)attr->st_size;
	}
}

static int setattr_node(struct cfs *c, fuse_ino_t ino, const struct cfs_path *p, struct stat *attr,
			int to_set, struct fuse_file_info *fi)
{
	struct cfs_fh *fh = fi ? (struct cfs_fh *)(uintptr_t)fi->fh : NULL;
	struct ckpt_setattr a;
	int ret;

	ret = check_owner(c, attr, to_set);
	if (ret < 0)
		return ret;
	setattr_of(attr, to_set, &a);
	if (!a.what)
		return 0; /* chown to the owner */
	if (fh && fh->f)
		ret = ckpt_file_setattr(fh->f, &a);
	else if (cfs_nodes_linked(c->nodes, ino))
		ret = ckpt_node_setattr(c->store, p->run, p->ver, p->rel, &a);
	else /* an unlinked file, through a handle (fchmod, futimens) */
		ret = cfs_files_setattr_ino(ino, &a);
	if (ret == -ENOENT && !(fh && fh->f) && !cfs_nodes_linked(c->nodes, ino))
		ret = ckpt_node_setattr(c->store, p->run, p->ver, p->rel, &a);
	if (ret == 0 && (a.what & CKPT_SET_SIZE))
		cfs_track_touch(c, p->run, p->ver, 0);
	return ret;
}

/* The tree's own directories and files. An open version's directory takes
 * chmod and times like any directory inside it; runs and the root have no
 * settable mode, and their times (and a committed version's) are accepted
 * and ignored so that `cp -a` and `touch` into the tree work. */
static int setattr_other(struct cfs *c, const struct cfs_path *p, struct stat *attr, int to_set)
{
	struct ckpt_version_info vi;
	struct ckpt_setattr a;
	bool open = false;
	int ret;

	if (p->kind == CFS_VERSION || p->kind == CFS_MANIFEST) {
		ret = ckpt_version_state(c->store, p->run, p->ver, &vi);
		if (ret < 0)
			return ret;
		open = !cfs_vstate_immutable(vi.state);
	}
	if (!(to_set &
	      (FUSE_SET_ATTR_MODE | FUSE_SET_ATTR_UID | FUSE_SET_ATTR_GID | FUSE_SET_ATTR_SIZE))) {
		if (!open || p->kind != CFS_VERSION)
			return 0;
		setattr_of(attr, to_set, &a);
		return a.what ? ckpt_node_setattr(c->store, p->run, p->ver, "", &a) : 0;
	}
	if ((p->kind == CFS_VERSION || p->kind == CFS_MANIFEST) && !open)
		return -EROFS;
	if (to_set & FUSE_SET_ATTR_SIZE)
		return (p->kind == CFS_STATS || p->kind == CFS_MANIFEST) ? -EACCES : -EISDIR;
	ret = check_owner(c, attr, to_set);
	if (ret < 0)
		return ret;
	if (p->kind != CFS_VERSION)
		return (to_set & FUSE_SET_ATTR_MODE) ? -EPERM : 0;
	setattr_of(attr, to_set, &a);
	return a.what ? ckpt_node_setattr(c->store, p->run, p->ver, "", &a) : 0;
}

void cfs_op_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set,
		    struct fuse_file_info *fi)
{
	struct cfs *c = cfs_of(req);
	struct cfs_path p;
	int ret;

	if (!cfs_resolve(req, ino, &p))
		return;
	/* truncate(2) by path (ftruncate has a descriptor open for writing);
	 * everything else here is the owner's (check_owner) */
	ret = (to_set & FUSE_SET_ATTR_SIZE) && !fi ? cfs_may(req, &p, W_OK) : 0;
	if (ret == 0)
		ret = p.kind == CFS_NODE ? setattr_node(c, ino, &p, attr, to_set, fi)
					 : setattr_other(c, &p, attr, to_set);
	if (ret < 0)
		fuse_reply_err(req, -ret);
	else
		reply_attr(req, ino, &p, fi);
	cfs_path_free(&p);
}

void cfs_op_readlink(fuse_req_t req, fuse_ino_t ino)
{
	struct cfs *c = cfs_of(req);
	char buf[CKPT_SYMLINK_MAX + 1];
	struct cfs_path p;
	ssize_t n;
	int ret;

	if (!cfs_resolve(req, ino, &p))
		return;
	if (p.kind == CFS_LATEST) {
		ret = ckpt_version_latest(c->store, p.run, buf, sizeof(buf));
	} else if (p.kind == CFS_BEST) {
		ret = ckpt_version_best(c->store, p.run, buf, sizeof(buf));
	} else if (p.kind == CFS_NODE) {
		n = ckpt_node_readlink(c->store, p.run, p.ver, p.rel, buf, sizeof(buf) - 1);
		ret = n < 0 ? (int)n : 0;
		if (n >= 0)
			buf[n] = 0;
		if (n == -EIO)
			cfs_log("readlink of %s failed: %s", p.full, ckpt_store_strerror(c->store));
	} else {
		ret = -EINVAL;
	}
	cfs_path_free(&p);
	if (ret < 0)
		fuse_reply_err(req, -ret);
	else
		fuse_reply_readlink(req, buf);
}

void cfs_op_statfs(fuse_req_t req, fuse_ino_t ino)
{
	struct statvfs st;
	int ret;

	memset(&st, 0, sizeof(st));
	ret = ckpt_store_statvfs(cfs_of(req)->store, &st);
	if (ret < 0) {
		fuse_reply_err(req, -ret);
		return;
	}
	st.f_namemax = CKPT_NAME_MAX;
	fuse_reply_statfs(req, &st);
}

/* With default_permissions the kernel checks modes itself; without it
 * (perm.c) this answers access(2) and chdir(2), as the kernel would
 * (root may write what the daemon refuses with EROFS: the table of
 * docs/mount.md says ok). */
void cfs_op_access(fuse_req_t req, fuse_ino_t ino, int mask)
{
	struct cfs_path p;
	struct stat st;
	int64_t gen;
	double ttl;
	int ret;

	if (!cfs_resolve(req, ino, &p))
		return;
	ret = cfs_attr(cfs_of(req), &p, &st, &ttl, &gen);
	if (ret == 0)
		ret = cfs_may(req, &p, mask & (R_OK | W_OK | X_OK));
	cfs_path_free(&p);
	fuse_reply_err(req, ret < 0 ? -ret : 0);
}
