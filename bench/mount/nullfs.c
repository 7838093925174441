// SPDX-License-Identifier: MIT
/*
 * nullfs.c - the floor of any FUSE filesystem for bench_files.sh: names and
 * sizes in memory, data dropped, every request answered at once. Mounted the
 * way ckptfs is (libfuse low-level API, multi-threaded loop,
 * default_permissions, 1 MiB writes, write-only opens direct_io), it gets
 * the same requests for the same work, so its time is what the kernel's
 * round trips cost without any filesystem behind them. Not a product: no
 * readdir, no data, rmdir drops a directory whole.
 *
 *   nullfs MOUNTPOINT      (stays in the foreground; fusermount3 -u stops it)
 */
#define FUSE_USE_VERSION 314
#include <errno.h>
#include <fuse_lowlevel.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define TTL 1.0

struct node {
	fuse_ino_t parent;
	char *name; /* NULL: free or removed */
	mode_t mode;
	off_t size;
	uint32_t next; /* hash chain */
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct node *nodes; /* by inode number; 1 is the root */
static size_t nnodes, capnodes;
static uint32_t *buckets; /* (parent, name) -> inode, chained */
static size_t nbuckets;

static uint64_t hash(fuse_ino_t parent, const char *name)
{
	uint64_t h = 1469598103934665603ull ^ parent;

	for (; *name; name++)
		h = (h ^ (unsigned char)*name) * 1099511628211ull;
	return h;
}

static void chain(fuse_ino_t ino)
{
	size_t b = hash(nodes[ino].parent, nodes[ino].name) & (nbuckets - 1);

	nodes[ino].next = buckets[b];
	buckets[b] = (uint32_t)ino;
}

static int grow(void)
{
	size_t i, cap = capnodes ? capnodes * 2 : 1024;
	struct node *n = realloc(nodes, cap * sizeof(*n));

	if (!n)
		return -1;
	nodes = n;
	memset(nodes + capnodes, 0, (cap - capnodes) * sizeof(*n));
	capnodes = cap;
	free(buckets);
	nbuckets = cap;
	buckets = calloc(nbuckets, sizeof(*buckets));
	if (!buckets)
		return -1;
	for (i = 1; i < nnodes && i < capnodes; i++)
		if (nodes[i].name)
			chain(i);
	return 0;
}

static fuse_ino_t find(fuse_ino_t parent, const char *name)
{
	uint32_t i = buckets[hash(parent, name) & (nbuckets - 1)];

	for (; i; i = nodes[i].next)
		if (nodes[i].parent == parent && nodes[i].name && !strcmp(nodes[i].name, name))
			return i;
	return 0;
}

static void unchain(fuse_ino_t ino)
{
	uint32_t *p = &buckets[hash(nodes[ino].parent, nodes[ino].name) & (nbuckets - 1)];

	while (*p && *p != ino)
		p = &nodes[*p].next;
	if (*p)
		*p = nodes[ino].next;
	free(nodes[ino].name);
	nodes[ino].name = NULL;
}

static fuse_ino_t add(fuse_ino_t parent, const char *name, mode_t mode)
{
	fuse_ino_t ino;

	if (nnodes >= capnodes && grow() < 0)
		return 0;
	ino = nnodes++;
	nodes[ino] = (struct node){.parent = parent, .name = strdup(name), .mode = mode};
	if (!nodes[ino].name)
		return 0;
	chain(ino);
	return ino;
}

static void fill(fuse_ino_t ino, struct stat *st)
{
	memset(st, 0, sizeof(*st));
	st->st_ino = ino;
	st->st_mode = nodes[ino].mode;
	st->st_nlink = S_ISDIR(st->st_mode) ? 2 : 1;
	st->st_size = nodes[ino].size;
	st->st_uid = getuid();
	st->st_gid = getgid();
	st->st_blksize = 1 << 20;
}

static void entry(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct fuse_entry_param e = {.ino = ino, .attr_timeout = TTL, .entry_timeout = TTL};

	fill(ino, &e.attr);
	pthread_mutex_unlock(&lock);
	if (fi)
		fuse_reply_create(req, &e, fi);
	else
		fuse_reply_entry(req, &e);
}

static void op_init(void *data, struct fuse_conn_info *conn)
{
	(void)data;
	conn->max_write = 1 << 20;
}

static void op_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	fuse_ino_t ino;

	pthread_mutex_lock(&lock);
	ino = find(parent, name);
	if (!ino) {
		/* as ckptfs: a name that is not there is not cached either */
		pthread_mutex_unlock(&lock);
		fuse_reply_err(req, ENOENT);
		return;
	}
	entry(req, ino, NULL);
}

static void op_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct stat st;

	(void)fi;
	pthread_mutex_lock(&lock);
	if (ino >= nnodes) {
		pthread_mutex_unlock(&lock);
		fuse_reply_err(req, ENOENT);
		return;
	}
	fill(ino, &st);
	pthread_mutex_unlock(&lock);
	fuse_reply_attr(req, &st, TTL);
}

static void op_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set,
		       struct fuse_file_info *fi)
{
	struct stat st;

	(void)fi;
	pthread_mutex_lock(&lock);
	if (to_set & FUSE_SET_ATTR_MODE)
		nodes[ino].mode = (nodes[ino].mode & S_IFMT) | (attr->st_mode & 07777);
	if (to_set & FUSE_SET_ATTR_SIZE)
		nodes[ino].size = attr->st_size;
	fill(ino, &st);
	pthread_mutex_unlock(&lock);
	fuse_reply_attr(req, &st, TTL);
}

static void make(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
		 struct fuse_file_info *fi)
{
	fuse_ino_t ino;

	pthread_mutex_lock(&lock);
	if (find(parent, name)) {
		pthread_mutex_unlock(&lock);
		fuse_reply_err(req, EEXIST);
		return;
	}
	ino = add(parent, name, mode);
	if (!ino) {
		pthread_mutex_unlock(&lock);
		fuse_reply_err(req, ENOMEM);
		return;
	}
	entry(req, ino, fi);
}

static void op_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode)
{
	make(req, parent, name, S_IFDIR | (mode & 07777), NULL);
}

static void op_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
		      struct fuse_file_info *fi)
{
	fi->direct_io = (fi->flags & O_ACCMODE) == O_WRONLY;
	make(req, parent, name, S_IFREG | (mode & 07777), fi);
}

static void op_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	(void)ino;
	fi->direct_io = (fi->flags & O_ACCMODE) == O_WRONLY;
	fuse_reply_open(req, fi);
}

static void op_write(fuse_req_t req, fuse_ino_t ino, const char *buf, size_t size, off_t off,
		     struct fuse_file_info *fi)
{
	(void)buf;
	(void)fi;
	pthread_mutex_lock(&lock);
	if (off + (off_t)size > nodes[ino].size)
		nodes[ino].size = off + (off_t)size;
	pthread_mutex_unlock(&lock);
	fuse_reply_write(req, size);
}

static void op_ok(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	(void)ino;
	(void)fi;
	fuse_reply_err(req, 0);
}

static void op_fsync(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi)
{
	(void)datasync;
	op_ok(req, ino, fi);
}

static void remove_name(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	fuse_ino_t ino;

	pthread_mutex_lock(&lock);
	ino = find(parent, name);
	if (ino)
		unchain(ino);
	pthread_mutex_unlock(&lock);
	fuse_reply_err(req, ino ? 0 : ENOENT);
}

static void op_rename(fuse_req_t req, fuse_ino_t parent, const char *name, fuse_ino_t newparent,
		      const char *newname, unsigned int flags)
{
	fuse_ino_t ino, old;
	char *n;

	(void)flags;
	pthread_mutex_lock(&lock);
	ino = find(parent, name);
	n = ino ? strdup(newname) : NULL;
	if (!n) {
		pthread_mutex_unlock(&lock);
		fuse_reply_err(req, ino ? ENOMEM : ENOENT);
		return;
	}
	old = find(newparent, newname);
	if (old)
		unchain(old);
	unchain(ino);
	nodes[ino].parent = newparent;
	nodes[ino].name = n;
	chain(ino);
	pthread_mutex_unlock(&lock);
	fuse_reply_err(req, 0);
}

static const struct fuse_lowlevel_ops ops = {
	.init = op_init,
	.lookup = op_lookup,
	.getattr = op_getattr,
	.setattr = op_setattr,
	.mkdir = op_mkdir,
	.create = op_create,
	.open = op_open,
	.write = op_write,
	.flush = op_ok,
	.release = op_ok,
	.fsync = op_fsync,
	.unlink = remove_name,
	.rmdir = remove_name,
	.rename = op_rename,
};

int main(int argc, char **argv)
{
	char *av[] = {argv[0], "-odefault_permissions,fsname=nullfs,subtype=nullfs", NULL};
	struct fuse_args args = FUSE_ARGS_INIT(2, av);
	struct fuse_loop_config *lc;
	struct fuse_session *se;
	int ret = 1;

	if (argc != 2) {
		fprintf(stderr, "usage: nullfs MOUNTPOINT\n");
		return 2;
	}
	nnodes = 1; /* inode 0 is no node: the chains end there */
	if (grow() < 0 || add(0, "/", S_IFDIR | 0755) != FUSE_ROOT_ID) {
		fprintf(stderr, "nullfs: out of memory\n");
		return 1;
	}
	se = fuse_session_new(&args, &ops, sizeof(ops), NULL);
	if (!se)
		return 1;
	if (fuse_set_signal_handlers(se) == 0 && fuse_session_mount(se, argv[1]) == 0) {
		lc = fuse_loop_cfg_create();
		ret = lc ? fuse_session_loop_mt(se, lc) : 1;
		fuse_loop_cfg_destroy(lc);
		fuse_session_unmount(se);
	}
	fuse_remove_signal_handlers(se);
	fuse_session_destroy(se);
	return ret ? 1 : 0;
}
