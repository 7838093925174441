// SPDX-License-Identifier: MIT
/*
 * nullfs.c - the floor of any FUSE filesystem for bench_files.sh: names and
 * sizes in memory, data dropped, every request answered at once. Mounted the
 * way ckptfs is (libfuse low-level API, multi-threaded loop, 1 MiB writes,
 * write-only opens direct_io; default_permissions as ckptfs with
 * allow_other, or with --no-perm as without it; --noflush as ckptfs opens
 * readers and write-only writers), it gets the same requests for the same
 * work, so its time is what the kernel's round trips cost without any
 * filesystem behind them. Not a product: no readdir, no data, rmdir drops a
 * directory whole.
 *
 *   nullfs [OPTIONS] MOUNTPOINT   (stays in the foreground; fusermount3 -u stops it)
 *
 * Options, to measure what a mount option or an open flag would save:
 *   --noflush           opens and creates answer FOPEN_NOFLUSH (close(2)
 *                       sends no FLUSH)
 *   --no-perm           no default_permissions: the kernel checks no modes
 *                       and needs no fresh attributes of a directory for a
 *                       path walk or a create in it
 *   --count             at unmount, print how many requests of each kind
 *                       came (stderr)
 *   -d                  libfuse's debug output (every request)
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
static int noflush;
static int counting;
enum {
	C_LOOKUP,
	C_GETATTR,
	C_SETATTR,
	C_MKDIR,
	C_CREATE,
	C_OPEN,
	C_WRITE,
	C_FLUSH,
	C_RELEASE,
	C_FSYNC,
	C_REMOVE,
	C_RENAME,
	C_N
};
static const char *const cnames[C_N] = {"LOOKUP",  "GETATTR", "SETATTR", "MKDIR",
					"CREATE",  "OPEN",    "WRITE",	 "FLUSH",
					"RELEASE", "FSYNC",   "REMOVE",	 "RENAME"};
static unsigned long counts[C_N];

static void count(int what)
{
	if (counting)
		__atomic_add_fetch(&counts[what], 1, __ATOMIC_RELAXED);
}

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

	count(C_LOOKUP);
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

	count(C_GETATTR);
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

	count(C_SETATTR);
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
	count(C_MKDIR);
	make(req, parent, name, S_IFDIR | (mode & 07777), NULL);
}

static void op_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
		      struct fuse_file_info *fi)
{
	count(C_CREATE);
	fi->direct_io = (fi->flags & O_ACCMODE) == O_WRONLY;
	fi->noflush = noflush;
	make(req, parent, name, S_IFREG | (mode & 07777), fi);
}

static void op_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	count(C_OPEN);
	(void)ino;
	fi->direct_io = (fi->flags & O_ACCMODE) == O_WRONLY;
	fi->noflush = noflush;
	fuse_reply_open(req, fi);
}

static void op_write(fuse_req_t req, fuse_ino_t ino, const char *buf, size_t size, off_t off,
		     struct fuse_file_info *fi)
{
	count(C_WRITE);
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

static void op_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	count(C_FLUSH);
	op_ok(req, ino, fi);
}

static void op_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	count(C_RELEASE);
	op_ok(req, ino, fi);
}

static void op_fsync(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi)
{
	(void)datasync;
	count(C_FSYNC);
	op_ok(req, ino, fi);
}

static void remove_name(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	fuse_ino_t ino;

	count(C_REMOVE);
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

	count(C_RENAME);
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
	.flush = op_flush,
	.release = op_release,
	.fsync = op_fsync,
	.unlink = remove_name,
	.rmdir = remove_name,
	.rename = op_rename,
};

static void print_counts(void)
{
	int i;

	for (i = 0; i < C_N; i++)
		if (counts[i])
			fprintf(stderr, "nullfs: %s %lu\n", cnames[i], counts[i]);
}

int main(int argc, char **argv)
{
	char *av[4] = {argv[0], "-odefault_permissions,fsname=nullfs,subtype=nullfs"};
	struct fuse_args args = FUSE_ARGS_INIT(2, av);
	struct fuse_loop_config *lc;
	struct fuse_session *se;
	int i, ret = 1;

	for (i = 1; i < argc - 1; i++) {
		if (!strcmp(argv[i], "--noflush"))
			noflush = 1;
		else if (!strcmp(argv[i], "--no-perm"))
			av[1] = "-ofsname=nullfs,subtype=nullfs";
		else if (!strcmp(argv[i], "--count"))
			counting = 1;
		else if (!strcmp(argv[i], "-d"))
			av[args.argc++] = "-d";
		else
			break;
	}
	if (i != argc - 1) {
		fprintf(stderr,
			"usage: nullfs [--noflush] [--no-perm] [--count] [-d] MOUNTPOINT\n");
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
	if (fuse_set_signal_handlers(se) == 0 && fuse_session_mount(se, argv[argc - 1]) == 0) {
		lc = fuse_loop_cfg_create();
		ret = lc ? fuse_session_loop_mt(se, lc) : 1;
		fuse_loop_cfg_destroy(lc);
		fuse_session_unmount(se);
	}
	fuse_remove_signal_handlers(se);
	fuse_session_destroy(se);
	if (counting)
		print_counts();
	return ret ? 1 : 0;
}
