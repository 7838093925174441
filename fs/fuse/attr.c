// SPDX-License-Identifier: MIT
/*
 * attr.c - stat(2) results and kernel cache timeouts for every kind of path.
 *
 * Committed content never changes, so its attributes and names are cached by
 * the kernel for long (CFS_TTL_IMMUTABLE). Open versions change under writes
 * and are not cached. Run and root listings, latest and best change with
 * every commit: listings and links are not cached, the directories' own
 * attributes for a second only (CFS_TTL_DIR): with default_permissions the
 * kernel checks the parent's mode on every lookup, and `ls -l` of a run of
 * 10,000 versions must not stat the run 10,000 times (nor may the daemon's
 * own checks without it, perm.c).
 */
#include "ckptfs_i.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

bool cfs_vstate_immutable(enum ckpt_vstate s)
{
	return s != CKPT_V_OPEN;
}

static void set_times(struct stat *st, int64_t ns)
{
	st->st_mtim.tv_sec = ns / 1000000000;
	st->st_mtim.tv_nsec = ns % 1000000000;
	st->st_atim = st->st_mtim;
	st->st_ctim = st->st_mtim;
}

static void ts_of(struct timespec *ts, int64_t ns)
{
	ts->tv_sec = ns / 1000000000;
	ts->tv_nsec = ns % 1000000000;
}

/* The times of something inside a version, as the store keeps them. */
static void node_times(struct stat *st, const struct ckpt_node_stat *ns)
{
	ts_of(&st->st_atim, ns->atime_ns);
	ts_of(&st->st_mtim, ns->mtime_ns);
	ts_of(&st->st_ctim, ns->ctime_ns);
}

static void base(struct cfs *c, struct stat *st, mode_t mode)
{
	memset(st, 0, sizeof(*st));
	st->st_mode = mode;
	st->st_nlink = S_ISDIR(mode) ? 2 : 1;
	st->st_uid = c->uid;
	st->st_gid = c->gid;
	st->st_blksize = CFS_MAX_WRITE; /* cp and friends size their buffers by it */
	set_times(st, c->mount_ns);
}

/* A version directory: its mode is the one chmod gave it while open (0755
 * from mkdir), without write bits once committed (the store says so); its
 * times change with its entries; its link count counts its subdirectories
 * (the store keeps the count: no walk). */
int cfs_attr_version(struct cfs *c, const char *run, const struct ckpt_version_info *vi,
		     struct stat *st, double *ttl)
{
	bool imm = cfs_vstate_immutable(vi->state);
	struct ckpt_node_stat ns;
	int ret;

	ret = ckpt_node_stat(c->store, run, vi->name, "", &ns);
	if (ret < 0)
		return ret;
	base(c, st, S_IFDIR | (ns.mode & 07777));
	st->st_nlink += ns.nsubdirs;
	node_times(st, &ns);
	*ttl = imm ? CFS_TTL_IMMUTABLE : CFS_TTL_OPEN_DIR;
	return 0;
}

static int attr_json(struct cfs *c, const struct cfs_path *p, struct stat *st)
{
	char *json = NULL;
	size_t len = 0;
	int ret;

	if (p->kind == CFS_STATS)
		ret = ckpt_store_stats_json(c->store, &json, &len);
	else
		ret = ckpt_version_manifest_json(c->store, p->run, p->ver, &json, &len);
	if (ret < 0)
		return ret;
	free(json);
	st->st_size = (off_t)len;
	return 0;
}

/*
 * Something inside a version: modes as set, without write bits once
 * committed (the store). A file's st_ino is its store identity, the same for
 * all its hard links (FUSE inodes are per path), so tar, rsync -H and cp -a
 * see the links; its st_nlink counts its names (0 once unlinked).
 */
void cfs_attr_node(struct cfs *c, const struct ckpt_node_stat *ns, struct stat *st)
{
	switch (ns->type) {
	case CKPT_NODE_DIR:
		base(c, st, S_IFDIR | (ns->mode & 07777));
		st->st_nlink += ns->nsubdirs;
		break;
	case CKPT_NODE_SYMLINK:
		base(c, st, S_IFLNK | 0777);
		st->st_size = (off_t)ns->size;
		break;
	default:
		base(c, st, S_IFREG | (ns->mode & 07777));
		st->st_size = (off_t)ns->size;
		st->st_blocks = (blkcnt_t)((ns->size + 511) / 512);
		st->st_nlink = ns->nlink;
		st->st_ino = (ino_t)(CFS_FILE_INO_BASE | ns->file_id);
		break;
	}
	node_times(st, ns);
}

int cfs_attr(struct cfs *c, const struct cfs_path *p, struct stat *st, double *ttl, int64_t *gen)
{
	struct ckpt_version_info vi;
	struct ckpt_node_stat ns;
	char buf[CKPT_NAME_MAX + 1];
	char **names = NULL;
	struct ckpt_version_info *vv = NULL;
	size_t n = 0;
	int ret;

	*ttl = CFS_TTL_NONE;
	*gen = 0;
	switch (p->kind) {
	case CFS_ROOT:
		base(c, st, S_IFDIR | 0755);
		ret = ckpt_run_list(c->store, &names, &n);
		if (ret < 0)
			return ret;
		ckpt_strv_free(names, n);
		st->st_nlink = 2 + n;
		*ttl = CFS_TTL_DIR;
		return 0;
	case CFS_STATS:
		base(c, st, S_IFREG | 0444);
		return attr_json(c, p, st);
	case CFS_RUN:
		base(c, st, S_IFDIR | 0755);
		ret = ckpt_version_list(c->store, p->run, &vv, &n);
		if (ret < 0)
			return ret;
		free(vv);
		st->st_nlink = 2 + n;
		*ttl = CFS_TTL_DIR;
		return 0;
	case CFS_LATEST:
	case CFS_BEST:
		ret = p->kind == CFS_LATEST
			      ? ckpt_version_latest(c->store, p->run, buf, sizeof(buf))
			      : ckpt_version_best(c->store, p->run, buf, sizeof(buf));
		if (ret < 0)
			return ret;
		base(c, st, S_IFLNK | 0777);
		st->st_size = (off_t)strlen(buf);
		return 0;
	default:
		break;
	}

	ret = ckpt_version_state(c->store, p->run, p->ver, &vi);
	if (ret < 0)
		return ret;
	*gen = vi.created_ns;
	switch (p->kind) {
	case CFS_VERSION:
		return cfs_attr_version(c, p->run, &vi, st, ttl);
	case CFS_MANIFEST:
		if (vi.manifest_hidden)
			return -ENOENT;
		base(c, st, S_IFREG | 0444);
		set_times(st, vi.committed_ns ? vi.committed_ns : vi.created_ns);
		return attr_json(c, p, st);
	case CFS_NODE:
		ret = ckpt_node_stat(c->store, p->run, p->ver, p->rel, &ns);
		if (ret < 0)
			return ret;
		cfs_attr_node(c, &ns, st);
		if (cfs_vstate_immutable(vi.state))
			*ttl = CFS_TTL_IMMUTABLE;
		else
			*ttl = ns.type == CKPT_NODE_DIR ? CFS_TTL_OPEN_DIR : CFS_TTL_NONE;
		return 0;
	default:
		return -ENOENT;
	}
}

/*
 * The name of a version. An open one's is looked up at every path walk
 * where the kernel checks modes: the walk's check needs fresh attributes of
 * the directory, which each create in it drops, and the LOOKUP brings them
 * (a cached name would cost a GETATTR instead). Where the daemon checks
 * modes (perm.c) the walk needs no attributes, and the name is cached like
 * a committed version's: one request less per file created in it.
 */
static double version_name_ttl(const struct cfs *c, double attr_ttl)
{
	return attr_ttl == CFS_TTL_IMMUTABLE || !c->opts.kernel_perm ? CFS_TTL_NAME : CFS_TTL_NONE;
}

void cfs_version_committed(struct cfs *c, const char *run, const char *ver)
{
	char path[2 * CKPT_NAME_MAX + 2];
	fuse_ino_t ino;

	snprintf(path, sizeof(path), "%s/%s", run, ver);
	ino = cfs_nodes_find(c->nodes, path);
	/* attributes only (offset < 0): no page or inode lock is taken, so
	 * this is safe while the kernel waits for the commit's own request */
	if (ino)
		fuse_lowlevel_notify_inval_inode(c->se, ino, -1, 0);
}

double cfs_entry_ttl(const struct cfs *c, const struct cfs_path *p, double attr_ttl)
{
	switch (p->kind) {
	case CFS_STATS:
	case CFS_RUN:
	case CFS_MANIFEST:
		return CFS_TTL_NAME;
	case CFS_VERSION:
		return version_name_ttl(c, attr_ttl);
	case CFS_NODE:
		/* names in an open version are looked up every time */
		return attr_ttl == CFS_TTL_IMMUTABLE ? attr_ttl : CFS_TTL_NONE;
	default:
		return CFS_TTL_NONE;
	}
}

int cfs_entry_version(struct cfs *c, const char *path, const char *run,
		      const struct ckpt_version_info *vi, struct fuse_entry_param *e)
{
	double ttl;
	int ret;

	memset(e, 0, sizeof(*e));
	ret = cfs_attr_version(c, run, vi, &e->attr, &ttl);
	if (ret < 0)
		return ret;
	e->ino = cfs_nodes_lookup(c->nodes, path, vi->created_ns, true);
	if (!e->ino)
		return -ENOMEM;
	e->attr.st_ino = e->ino;
	e->attr_timeout = ttl;
	e->entry_timeout = version_name_ttl(c, ttl);
	return 0;
}

int cfs_entry(struct cfs *c, const char *path, struct fuse_entry_param *e)
{
	struct cfs_path p;
	int64_t gen;
	double ttl;
	int ret;

	memset(e, 0, sizeof(*e));
	ret = cfs_path_parse(path, &p);
	if (ret < 0)
		return ret;
	ret = cfs_attr(c, &p, &e->attr, &ttl, &gen);
	if (ret == 0) {
		e->ino = cfs_nodes_lookup(c->nodes, path, gen, S_ISDIR(e->attr.st_mode));
		if (!e->ino)
			ret = -ENOMEM;
		if (!e->attr.st_ino)
			e->attr.st_ino = e->ino;
		e->attr_timeout = ttl;
		e->entry_timeout = cfs_entry_ttl(c, &p, ttl);
	}
	cfs_path_free(&p);
	return ret;
}
