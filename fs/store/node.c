// SPDX-License-Identifier: MIT
/*
 * node.c - the namespace inside a version: directories and files, kept in
 * memory (open versions are built here; committed ones are loaded from
 * their manifest). Children are kept sorted so listings are stable.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "store_i.h"

struct node *node_new(const char *name, enum ckpt_node_type type, uint32_t mode)
{
	struct node *n = calloc(1, sizeof(*n));

	if (!n)
		return NULL;
	n->name = strdup(name);
	if (!n->name) {
		free(n);
		return NULL;
	}
	n->type = type;
	n->mode = mode & 07777;
	n->mtime_ns = now_ns();
	if (type == CKPT_NODE_FILE) {
		n->f = fdata_new();
		if (!n->f) {
			free(n->name);
			free(n);
			return NULL;
		}
	}
	return n;
}

void node_free(struct ckpt_store *s, struct node *n)
{
	if (!n)
		return;
	for (size_t i = 0; i < n->nkids; i++)
		node_free(s, n->kids[i]);
	free(n->kids);
	fdata_put(s, n->f);
	free(n->name);
	free(n);
}

size_t sorted_pos(const void *items, size_t n, const char *(*name_of)(const void *item),
		  const char *key, bool *found)
{
	const void *const *v = items;
	size_t lo = 0, hi = n;

	*found = false;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		int c = strcmp(name_of(&v[mid]), key);

		if (c == 0) {
			*found = true;
			return mid;
		}
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* Open a gap at index i of the array *arrp (n elements of `elem` bytes, room
 * for *cap), doubling it when full: 0 or -ENOMEM (the array is unchanged). */
static int sorted_make_room(void *arrp, size_t elem, size_t n, size_t *cap, size_t i)
{
	char *a;

	memcpy(&a, arrp, sizeof(a));
	if (n == *cap) {
		size_t c = *cap ? *cap * 2 : 8;
		char *b = realloc(a, c * elem);

		if (!b)
			return -ENOMEM;
		a = b;
		*cap = c;
		memcpy(arrp, &a, sizeof(a));
	}
	memmove(a + (i + 1) * elem, a + i * elem, (n - i) * elem);
	return 0;
}

int sorted_insert(void *arrp, size_t *n, size_t *cap, const char *(*name_of)(const void *item),
		  const char *key, void *item)
{
	char *a;
	bool found;
	size_t i;

	memcpy(&a, arrp, sizeof(a));
	i = sorted_pos(a, *n, name_of, key, &found);
	if (found)
		return -EEXIST;
	if (sorted_make_room(arrp, sizeof(item), *n, cap, i) < 0)
		return -ENOMEM;
	memcpy(&a, arrp, sizeof(a));
	memcpy(a + i * sizeof(item), &item, sizeof(item));
	(*n)++;
	return 0;
}

static const char *kid_name(const void *item)
{
	return (*(struct node *const *)item)->name;
}

static size_t kid_pos(struct node *d, const char *name, bool *found)
{
	return sorted_pos(d->kids, d->nkids, kid_name, name, found);
}

struct node *node_child(struct node *d, const char *name)
{
	bool found;
	size_t i;

	if (d->type != CKPT_NODE_DIR)
		return NULL;
	i = kid_pos(d, name, &found);
	return found ? d->kids[i] : NULL;
}

int node_attach(struct node *d, struct node *n)
{
	int ret = sorted_insert(&d->kids, &d->nkids, &d->kcap, kid_name, n->name, n);

	if (ret == 0)
		n->parent = d;
	return ret;
}

void node_detach(struct node *n)
{
	struct node *d = n->parent;
	bool found;
	size_t i;

	if (!d)
		return;
	i = kid_pos(d, n->name, &found);
	if (found) {
		memmove(d->kids + i, d->kids + i + 1, (d->nkids - i - 1) * sizeof(*d->kids));
		d->nkids--;
	}
	n->parent = NULL;
}

/* Walk `path` one validated component at a time. */
int node_lookup(struct ckpt_store *s, struct node *root, const char *path, struct node **out)
{
	char comp[CKPT_NAME_MAX + 2];
	struct node *n = root;
	const char *p = path;

	while (*p == '/')
		p++;
	while (*p) {
		const char *e = strchr(p, '/');
		size_t l = e ? (size_t)(e - p) : strlen(p);
		int ret;

		if (l > CKPT_NAME_MAX)
			return -ENAMETOOLONG;
		memcpy(comp, p, l);
		comp[l] = 0;
		ret = name_check_kind(comp, 0, NULL);
		if (ret < 0)
			return ret;
		if (n->type != CKPT_NODE_DIR)
			return -ENOTDIR;
		n = node_child(n, comp);
		if (!n)
			return -ENOENT;
		p += l;
		while (*p == '/')
			p++;
	}
	*out = n;
	return 0;
}

int node_lookup_parent(struct ckpt_store *s, struct node *root, const char *path,
		       struct node **parent, const char **last)
{
	char buf[4096];
	const char *slash;
	size_t l = strlen(path);
	int ret;

	while (l > 0 && path[l - 1] == '/')
		l--;
	if (l == 0)
		return -EINVAL; /* the root has no parent */
	if (l >= sizeof(buf))
		return -ENAMETOOLONG;
	memcpy(buf, path, l);
	buf[l] = 0;
	slash = strrchr(buf, '/');
	*last = path + (slash ? slash - buf + 1 : 0);
	if (slash)
		buf[slash - buf] = 0;
	else
		buf[0] = 0;
	ret = node_lookup(s, root, buf, parent);
	if (ret < 0)
		return ret;
	if ((*parent)->type != CKPT_NODE_DIR)
		return -ENOTDIR;
	return 0;
}
