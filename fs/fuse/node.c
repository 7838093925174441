// SPDX-License-Identifier: MIT
/*
 * node.c - the inode table of the low-level FUSE API: inode number <-> path.
 *
 * The kernel holds an inode while its lookup count is above zero (it sends
 * FORGET to lower it). The store speaks in paths, so each inode remembers its
 * path; a rename moves the paths below it, an unlink detaches the path so a
 * new file of the same name gets a new inode. Inode numbers are never reused,
 * so the generation is always 0.
 *
 * Two hash tables (common/hmap.c, growing with the number of inodes) map
 * inode numbers and paths to nodes, so lookups cost the same with ten inodes
 * or a million. Only a directory can have inodes below it, and only while
 * the kernel holds it (a child's dentry pins its parent's), so drop and move
 * walk the table for descendants only when the path is a directory the
 * table knows (rmdir of a version, rename of a directory).
 */
#include "ckptfs_i.h"

#include "ckptfs/hmap.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

struct cfs_node {
	fuse_ino_t ino;
	uint64_t nlookup;
	int64_t gen;
	char *path;
	bool in_paths; /* reachable by path (not unlinked) */
	bool dir;      /* may have inodes below it */
};

struct cfs_nodes {
	pthread_mutex_t lock;
	fuse_ino_t next_ino;
	struct ckpt_hmap by_ino;  /* struct cfs_node *, by ino */
	struct ckpt_hmap by_path; /* struct cfs_node *, by path, linked ones only */
};

static bool match_ino(const void *elem, const void *key)
{
	return (*(struct cfs_node *const *)elem)->ino == *(const fuse_ino_t *)key;
}

static bool match_path(const void *elem, const void *key)
{
	return strcmp((*(struct cfs_node *const *)elem)->path, key) == 0;
}

static struct cfs_node **slot_ino(struct cfs_nodes *t, fuse_ino_t ino)
{
	return ckpt_hmap_find(&t->by_ino, ckpt_hash_u64(ino), match_ino, &ino);
}

static struct cfs_node **slot_path(struct cfs_nodes *t, const char *path)
{
	return ckpt_hmap_find(&t->by_path, ckpt_hash_str(path), match_path, path);
}

static struct cfs_node *find_ino(struct cfs_nodes *t, fuse_ino_t ino)
{
	struct cfs_node **s = slot_ino(t, ino);

	return s ? *s : NULL;
}

static struct cfs_node *find_path(struct cfs_nodes *t, const char *path)
{
	struct cfs_node **s = slot_path(t, path);

	return s ? *s : NULL;
}

static void path_unlink(struct cfs_nodes *t, struct cfs_node *n)
{
	struct cfs_node **s;

	if (!n->in_paths)
		return;
	s = slot_path(t, n->path);
	if (s)
		ckpt_hmap_del(&t->by_path, s);
	n->in_paths = false;
}

static int path_link(struct cfs_nodes *t, struct cfs_node *n)
{
	struct cfs_node **s = ckpt_hmap_add(&t->by_path, ckpt_hash_str(n->path));

	if (!s)
		return -ENOMEM; /* stays detached: the kernel looks it up again */
	*s = n;
	n->in_paths = true;
	return 0;
}

static struct cfs_node *node_new(struct cfs_nodes *t, const char *path, int64_t gen, bool dir)
{
	struct cfs_node *n = calloc(1, sizeof(*n)), **s;

	if (!n)
		return NULL;
	n->path = strdup(path);
	s = n->path ? ckpt_hmap_add(&t->by_ino, ckpt_hash_u64(t->next_ino)) : NULL;
	if (!s) {
		free(n->path);
		free(n);
		return NULL;
	}
	n->ino = t->next_ino++;
	n->gen = gen;
	n->dir = dir;
	*s = n;
	path_link(t, n);
	return n;
}

struct cfs_nodes *cfs_nodes_new(void)
{
	struct cfs_nodes *t = calloc(1, sizeof(*t));
	struct cfs_node *root;

	if (!t)
		return NULL;
	pthread_mutex_init(&t->lock, NULL);
	ckpt_hmap_init(&t->by_ino, sizeof(struct cfs_node *));
	ckpt_hmap_init(&t->by_path, sizeof(struct cfs_node *));
	t->next_ino = FUSE_ROOT_ID;
	root = node_new(t, "", 0, true);
	if (!root) {
		cfs_nodes_free(t);
		return NULL;
	}
	root->nlookup = UINT64_MAX / 2; /* never forgotten */
	return t;
}

void cfs_nodes_free(struct cfs_nodes *t)
{
	if (!t)
		return;
	for (struct cfs_node **s = NULL; (s = ckpt_hmap_next(&t->by_ino, s));) {
		free((*s)->path);
		free(*s);
	}
	ckpt_hmap_free(&t->by_ino);
	ckpt_hmap_free(&t->by_path);
	pthread_mutex_destroy(&t->lock);
	free(t);
}

int cfs_nodes_path(struct cfs_nodes *t, fuse_ino_t ino, char **path)
{
	struct cfs_node *n;
	int ret = 0;

	pthread_mutex_lock(&t->lock);
	n = find_ino(t, ino);
	if (!n) {
		ret = -ESTALE;
	} else {
		*path = strdup(n->path);
		if (!*path)
			ret = -ENOMEM;
	}
	pthread_mutex_unlock(&t->lock);
	return ret;
}

fuse_ino_t cfs_nodes_find(struct cfs_nodes *t, const char *path)
{
	struct cfs_node *n;
	fuse_ino_t ino;

	pthread_mutex_lock(&t->lock);
	n = find_path(t, path);
	ino = n ? n->ino : 0;
	pthread_mutex_unlock(&t->lock);
	return ino;
}

bool cfs_nodes_linked(struct cfs_nodes *t, fuse_ino_t ino)
{
	struct cfs_node *n;
	bool linked;

	pthread_mutex_lock(&t->lock);
	n = find_ino(t, ino);
	linked = n && n->in_paths;
	pthread_mutex_unlock(&t->lock);
	return linked;
}

fuse_ino_t cfs_nodes_lookup(struct cfs_nodes *t, const char *path, int64_t gen, bool dir)
{
	struct cfs_node *n;
	fuse_ino_t ino = 0;

	pthread_mutex_lock(&t->lock);
	n = find_path(t, path);
	if (n && ((n->gen != gen && n->ino != FUSE_ROOT_ID) || n->dir != dir)) {
		/* Same name, another object (a version deleted and made again,
		 * a file replaced by a directory behind the kernel's back). */
		path_unlink(t, n);
		n = NULL;
	}
	if (!n)
		n = node_new(t, path, gen, dir);
	if (n) {
		n->nlookup++;
		ino = n->ino;
	}
	pthread_mutex_unlock(&t->lock);
	return ino;
}

static void node_release(struct cfs_nodes *t, struct cfs_node *n)
{
	struct cfs_node **s = slot_ino(t, n->ino);

	path_unlink(t, n);
	if (s)
		ckpt_hmap_del(&t->by_ino, s);
	free(n->path);
	free(n);
}

void cfs_nodes_forget(struct cfs_nodes *t, fuse_ino_t ino, uint64_t count)
{
	struct cfs_node *n;

	pthread_mutex_lock(&t->lock);
	n = find_ino(t, ino);
	if (n && n->ino != FUSE_ROOT_ID) {
		n->nlookup = count >= n->nlookup ? 0 : n->nlookup - count;
		if (n->nlookup == 0)
			node_release(t, n);
	}
	pthread_mutex_unlock(&t->lock);
}

/* Is `path` below `top` (not equal)? */
static bool path_below(const char *path, const char *top, size_t tl)
{
	return strncmp(path, top, tl) == 0 && path[tl] == '/';
}

/* The linked nodes at or below `top` (caller holds the lock): the node of
 * `top` itself, and when it is a directory, a walk for those below it. */
static size_t collect(struct cfs_nodes *t, const char *top, struct cfs_node ***out)
{
	struct cfs_node *x = find_path(t, top), **v;
	size_t tl = strlen(top), n = 0, cap = 1;

	*out = NULL;
	if (!x || x->ino == FUSE_ROOT_ID)
		return 0;
	v = malloc(sizeof(*v));
	if (!v)
		return 0;
	v[n++] = x;
	if (x->dir) {
		for (struct cfs_node **s = NULL; (s = ckpt_hmap_next(&t->by_path, s));) {
			if (!path_below((*s)->path, top, tl))
				continue;
			if (n == cap) {
				struct cfs_node **nv = realloc(v, cap * 2 * sizeof(*v));

				if (!nv)
					break;
				v = nv;
				cap *= 2;
			}
			v[n++] = *s;
		}
	}
	*out = v;
	return n;
}

void cfs_nodes_drop(struct cfs_nodes *t, const char *path)
{
	struct cfs_node **v;
	size_t n, i;

	pthread_mutex_lock(&t->lock);
	n = collect(t, path, &v);
	for (i = 0; i < n; i++)
		path_unlink(t, v[i]);
	pthread_mutex_unlock(&t->lock);
	free(v);
}

void cfs_nodes_move(struct cfs_nodes *t, const char *from, const char *to)
{
	size_t fl = strlen(from), tl = strlen(to), n, i;
	struct cfs_node **v;

	pthread_mutex_lock(&t->lock);
	/* A replaced target is gone. */
	n = collect(t, to, &v);
	for (i = 0; i < n; i++)
		path_unlink(t, v[i]);
	free(v);

	n = collect(t, from, &v);
	for (i = 0; i < n; i++)
		path_unlink(t, v[i]);
	for (i = 0; i < n; i++) {
		struct cfs_node *x = v[i];
		size_t rest = strlen(x->path) - fl;
		char *np = malloc(tl + rest + 1);

		if (!np)
			continue; /* stays detached: the kernel looks it up again */
		memcpy(np, to, tl);
		memcpy(np + tl, x->path + fl, rest + 1);
		free(x->path);
		x->path = np;
		path_link(t, x);
	}
	pthread_mutex_unlock(&t->lock);
	free(v);
}
