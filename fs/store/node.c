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
	nattr_init(&n->a, mode);
	if (type == CKPT_NODE_FILE) {
		n->f = fdata_new();
		if (!n->f) {
			free(n->name);
			free(n);
			return NULL;
		}
		n->f->a = n->a;
		n->f->nlink = 1;
	}
	return n;
}

struct node *node_new_symlink(const char *name, const char *target, size_t len)
{
	struct node *n = node_new(name, CKPT_NODE_SYMLINK, 0777);

	if (!n)
		return NULL;
	n->target = malloc(len + 1);
	if (!n->target) {
		node_free(NULL, n);
		return NULL;
	}
	memcpy(n->target, target, len);
	n->target[len] = 0;
	n->tlen = len;
	hash128(target, len, n->thash);
	return n;
}

struct node *node_new_link(const char *name, struct fdata *f)
{
	struct node *n = node_new(name, CKPT_NODE_DIR, 0);

	if (!n)
		return NULL;
	n->type = CKPT_NODE_FILE;
	n->f = f;
	fdata_get(f);
	f->nlink++;
	return n;
}

void nattr_init(struct nattr *a, uint32_t mode)
{
	a->mode = mode & 07777;
	a->atime_ns = a->mtime_ns = a->ctime_ns = now_ns();
}

void nattr_touch(struct nattr *a)
{
	a->mtime_ns = a->ctime_ns = now_ns();
}

void node_touch(struct node *d)
{
	nattr_touch(&d->a);
}

void node_free(struct ckpt_store *s, struct node *n)
{
	if (!n)
		return;
	for (size_t i = 0; i < n->nkids; i++)
		node_free(s, n->kids[i]);
	free(n->kids);
	if (n->f)
		n->f->nlink--;
	fdata_put(s, n->f);
	free(n->target);
	free(n->name);
	free(n);
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

	if (ret == 0) {
		n->parent = d;
		d->ndirs += n->type == CKPT_NODE_DIR;
	}
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
		d->ndirs -= n->type == CKPT_NODE_DIR;
	}
	n->parent = NULL;
}

/* Walk `path` one validated component at a time. */
int node_lookup(struct node *root, const char *path, struct node **out)
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
		ret = name_check_kind(comp, NAME_COMP, NULL);
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

int node_lookup_parent(struct node *root, const char *path, struct node **parent, const char **last)
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
	ret = node_lookup(root, buf, parent);
	if (ret < 0)
		return ret;
	if ((*parent)->type != CKPT_NODE_DIR)
		return -ENOTDIR;
	return 0;
}

void node_tree_bytes(struct node *n, uint64_t *bytes)
{
	for (size_t i = 0; i < n->nkids; i++) {
		if (n->kids[i]->type == CKPT_NODE_FILE)
			*bytes += n->kids[i]->f->size;
		else
			node_tree_bytes(n->kids[i], bytes);
	}
}

void node_tree_totals(struct node *n, uint64_t *bytes, uint64_t *files)
{
	for (size_t i = 0; i < n->nkids; i++) {
		struct node *k = n->kids[i];

		if (k->type == CKPT_NODE_FILE) {
			*bytes += k->f->size;
			(*files)++;
		} else {
			node_tree_totals(k, bytes, files);
		}
	}
}
