// SPDX-License-Identifier: MIT
/*
 * node.c - the inode table of the low-level FUSE API: inode number <-> path.
 *
 * The kernel holds an inode while its lookup count is above zero (it sends
 * FORGET to lower it). The store speaks in paths, so each inode remembers its
 * path; a rename moves the paths below it, an unlink detaches the path so a
 * new file of the same name gets a new inode. Inode numbers are never reused,
 * so the generation is always 0.
 */
#include "ckptfs_i.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define NBUCKETS (1u << 16)

struct cfs_node {
	fuse_ino_t ino;
	uint64_t nlookup;
	int64_t gen;
	char *path;
	bool in_paths; /* reachable by path (not unlinked) */
	struct cfs_node *ino_next;
	struct cfs_node *path_next;
};

struct cfs_nodes {
	pthread_mutex_t lock;
	fuse_ino_t next_ino;
	struct cfs_node *by_ino[NBUCKETS];
	struct cfs_node *by_path[NBUCKETS];
};

static unsigned hash_str(const char *s)
{
	uint64_t h = 1469598103934665603ull; /* FNV-1a */

	while (*s) {
		h ^= (unsigned char)*s++;
		h *= 1099511628211ull;
	}
	return (unsigned)(h ^ (h >> 32)) & (NBUCKETS - 1);
}

static unsigned hash_ino(fuse_ino_t ino)
{
	return (unsigned)(ino * 0x9E3779B97F4A7C15ull >> 48) & (NBUCKETS - 1);
}

static void path_unlink(struct cfs_nodes *t, struct cfs_node *n)
{
	struct cfs_node **pp = &t->by_path[hash_str(n->path)];

	if (!n->in_paths)
		return;
	for (; *pp; pp = &(*pp)->path_next) {
		if (*pp == n) {
			*pp = n->path_next;
			break;
		}
	}
	n->in_paths = false;
	n->path_next = NULL;
}

static void path_link(struct cfs_nodes *t, struct cfs_node *n)
{
	unsigned b = hash_str(n->path);

	n->path_next = t->by_path[b];
	t->by_path[b] = n;
	n->in_paths = true;
}

static struct cfs_node *find_ino(struct cfs_nodes *t, fuse_ino_t ino)
{
	struct cfs_node *n = t->by_ino[hash_ino(ino)];

	while (n && n->ino != ino)
		n = n->ino_next;
	return n;
}

static struct cfs_node *find_path(struct cfs_nodes *t, const char *path)
{
	struct cfs_node *n = t->by_path[hash_str(path)];

	while (n && strcmp(n->path, path) != 0)
		n = n->path_next;
	return n;
}

static struct cfs_node *node_new(struct cfs_nodes *t, const char *path, int64_t gen)
{
	struct cfs_node *n = calloc(1, sizeof(*n));
	unsigned b;

	if (!n)
		return NULL;
	n->path = strdup(path);
	if (!n->path) {
		free(n);
		return NULL;
	}
	n->ino = t->next_ino++;
	n->gen = gen;
	b = hash_ino(n->ino);
	n->ino_next = t->by_ino[b];
	t->by_ino[b] = n;
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
	t->next_ino = FUSE_ROOT_ID;
	root = node_new(t, "", 0);
	if (!root) {
		free(t);
		return NULL;
	}
	root->nlookup = UINT64_MAX / 2; /* never forgotten */
	return t;
}

void cfs_nodes_free(struct cfs_nodes *t)
{
	unsigned i;

	if (!t)
		return;
	for (i = 0; i < NBUCKETS; i++) {
		struct cfs_node *n = t->by_ino[i], *next;

		for (; n; n = next) {
			next = n->ino_next;
			free(n->path);
			free(n);
		}
	}
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

fuse_ino_t cfs_nodes_lookup(struct cfs_nodes *t, const char *path, int64_t gen)
{
	struct cfs_node *n;
	fuse_ino_t ino = 0;

	pthread_mutex_lock(&t->lock);
	n = find_path(t, path);
	if (n && n->gen != gen && n->ino != FUSE_ROOT_ID) {
		/* Same name, another object (a version deleted and made again). */
		path_unlink(t, n);
		n = NULL;
	}
	if (!n)
		n = node_new(t, path, gen);
	if (n) {
		n->nlookup++;
		ino = n->ino;
	}
	pthread_mutex_unlock(&t->lock);
	return ino;
}

static void node_release(struct cfs_nodes *t, struct cfs_node *n)
{
	struct cfs_node **pp = &t->by_ino[hash_ino(n->ino)];

	path_unlink(t, n);
	for (; *pp; pp = &(*pp)->ino_next) {
		if (*pp == n) {
			*pp = n->ino_next;
			break;
		}
	}
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

/* Is `path` equal to `top` or below it? */
static bool path_under(const char *path, const char *top, size_t tl)
{
	return strncmp(path, top, tl) == 0 && (path[tl] == '\0' || path[tl] == '/');
}

/* Collect the linked nodes at or below `top` (caller holds the lock). */
static size_t collect(struct cfs_nodes *t, const char *top, struct cfs_node ***out)
{
	size_t tl = strlen(top), n = 0, cap = 0;
	struct cfs_node **v = NULL;
	unsigned i;

	for (i = 0; i < NBUCKETS; i++) {
		struct cfs_node *x;

		for (x = t->by_path[i]; x; x = x->path_next) {
			if (x->ino == FUSE_ROOT_ID || !path_under(x->path, top, tl))
				continue;
			if (n == cap) {
				struct cfs_node **nv;

				cap = cap ? cap * 2 : 16;
				nv = realloc(v, cap * sizeof(*v));
				if (!nv)
					goto out;
				v = nv;
			}
			v[n++] = x;
		}
	}
out:
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
	for (i = 0; i < n; i++) {
		struct cfs_node *x = v[i];
		size_t rest = strlen(x->path) - fl;
		char *np = malloc(tl + rest + 1);

		path_unlink(t, x);
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
