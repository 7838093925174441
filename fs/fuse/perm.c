// SPDX-License-Identifier: MIT
/*
 * perm.c - mode checks in the daemon (docs/mount.md, "Permissions").
 *
 * With -o allow_other (or allow_root, or an explicit default_permissions)
 * the kernel checks every mode itself (default_permissions). To do so it
 * needs fresh attributes of each directory it walks or creates in, and it
 * drops a directory's attributes at every create in it: a LOOKUP or GETATTR
 * of the directory per file created. Without allow_other the kernel lets
 * only processes with the mount owner's uid and gid in at all, so the
 * checks left are the owner's own mode bits, which the daemon makes here
 * from its own (always fresh) attributes, as generic_permission would:
 * search (x) of the directory of every lookup, write and search of the
 * directory of every create, removal and rename, read and write of opened
 * files and read of opened directories, write for truncate(2) by path, and
 * read and write of the user.* extended attributes. Root (a mount by root)
 * passes every check but executing a file without any x bit, as with
 * CAP_DAC_OVERRIDE. For exec(2) the kernel itself checks that the file
 * has some x bit (not that it is the owner's).
 */
#include "ckptfs_i.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* generic_permission for the caller of req on attributes st */
static int may_st(fuse_req_t req, const struct stat *st, int mask)
{
	const struct fuse_ctx *ctx = fuse_req_ctx(req);
	mode_t bits;

	if (ctx->uid == 0)
		return (mask & X_OK) && !S_ISDIR(st->st_mode) && !(st->st_mode & 0111) ? -EACCES
										       : 0;
	if (ctx->uid == st->st_uid)
		bits = st->st_mode >> 6;
	else if (ctx->gid == st->st_gid)
		bits = st->st_mode >> 3;
	else
		bits = st->st_mode;
	return ((int)bits & mask) == mask ? 0 : -EACCES;
}

/* Nothing for the daemon to check: the kernel does (default_permissions),
 * or the caller is root and a directory is searched, read or written. */
static bool nothing_to_check(fuse_req_t req, int mask, bool dir)
{
	return cfs_of(req)->opts.kernel_perm || !mask ||
	       (fuse_req_ctx(req)->uid == 0 && (dir || !(mask & X_OK)));
}

int cfs_may(fuse_req_t req, const struct cfs_path *p, int mask)
{
	struct stat st;
	int64_t gen;
	double ttl;
	int ret;

	if (nothing_to_check(req, mask & ~CFS_MAY_IF_DIR, false))
		return 0;
	if (p->kind == CFS_ROOT || p->kind == CFS_RUN) {
		/* 0755 and the owner's, always (attr.c); a run's attributes
		 * would count its versions, at every lookup in it */
		memset(&st, 0, sizeof(st));
		st.st_mode = S_IFDIR | 0755;
		st.st_uid = cfs_of(req)->uid;
		st.st_gid = cfs_of(req)->gid;
		return may_st(req, &st, mask & ~CFS_MAY_IF_DIR);
	}
	ret = cfs_attr(cfs_of(req), p, &st, &ttl, &gen);
	if (ret < 0)
		return ret;
	if ((mask & CFS_MAY_IF_DIR) && !S_ISDIR(st.st_mode))
		return 0;
	return may_st(req, &st, mask & ~CFS_MAY_IF_DIR);
}

int cfs_may_dir(fuse_req_t req, fuse_ino_t dir, int mask)
{
	struct cfs_path p;
	char *path;
	int ret;

	if (nothing_to_check(req, mask, true))
		return 0;
	ret = cfs_nodes_path(cfs_of(req)->nodes, dir, &path);
	if (ret < 0)
		return ret;
	ret = cfs_path_parse(path, &p);
	free(path);
	if (ret < 0)
		return ret;
	ret = cfs_may(req, &p, mask);
	cfs_path_free(&p);
	return ret;
}

int cfs_may_open(fuse_req_t req, const struct cfs_path *p, int flags)
{
	int mask = 0;

	if ((flags & O_ACCMODE) != O_WRONLY)
		mask |= R_OK;
	if ((flags & O_ACCMODE) != O_RDONLY || (flags & O_TRUNC))
		mask |= W_OK;
	return cfs_may(req, p, mask);
}

int cfs_may_xattr(fuse_req_t req, const struct cfs_path *p, const char *name, int mask)
{
	/* the VFS checks the mode for user.* only (xattr_permission) */
	if (strncmp(name, "user.", 5))
		return 0;
	return cfs_may(req, p, mask);
}
