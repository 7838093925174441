// SPDX-License-Identifier: MIT
/*
 * api.c - paths inside a version (stat, list, mkdir, unlink, rename, ...)
 * and file handles (open, pread with verification, pwrite, fsync, close).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "store_i.h"

struct ckpt_file {
	struct ckpt_store *s;
	struct version *v;
	struct fdata *f;
	int flags;
	bool holds;	      /* counted in v->writers: holds the commit back */
	pthread_mutex_t lock; /* the chunk cache; FUSE may read one handle from many threads */
	uint8_t *cache;	      /* page-aligned, cache_cap bytes (rc_buf_alloc) */
	size_t cache_cap;
	ssize_t cache_idx;
	/* the chunk in the buffer before (cache_chunk), kept for requests of
	 * its end answered after the first ones of the next */
	uint8_t *prev;
	size_t prev_cap;
	ssize_t prev_idx;
	ssize_t last_idx; /* the chunk read last (either path): is the reader in order? */
	size_t ra_next;	  /* first chunk not yet queued for read-ahead */
	char path[4096];
};

/* Find run/version/path with the store lock held. */
static int resolve(struct ckpt_store *s, const char *run, const char *version, const char *path,
		   struct version **v, struct node **n)
{
	int ret = version_lookup(s, run, version, v);

	if (ret < 0)
		return ret;
	if (!(*v)->root)
		return -ENOENT;
	return node_lookup((*v)->root, path ? path : "", n);
}

/* Mutations of the namespace: OPEN versions only, not while committing. */
static int writable(struct ckpt_store *s, struct version *v)
{
	if (v->busy)
		return store_err(s, -EBUSY, "version %s/%s is being committed", v->run->name,
				 v->name);
	if (v->state != CKPT_V_OPEN)
		return store_err(s, -EROFS, "version %s/%s is %s and cannot change", v->run->name,
				 v->name, ckpt_vstate_name(v->state));
	return 0;
}

/* Attributes as stat shows them: a version that can no longer change
 * shows its modes without write bits (SPEC §2: a 0600 file becomes 0400,
 * never world-readable, a 0755 script keeps its x bits). */
static void attr_out(const struct version *v, const struct nattr *a, struct ckpt_node_stat *st)
{
	st->mode = v->state == CKPT_V_OPEN ? a->mode : a->mode & ~0222u;
	st->atime_ns = a->atime_ns;
	st->mtime_ns = a->mtime_ns;
	st->ctime_ns = a->ctime_ns;
}

/* A file's part of ckpt_node_stat (store lock held; takes the file's). */
static void file_stat_locked(const struct version *v, struct fdata *f, struct ckpt_node_stat *st)
{
	st->type = CKPT_NODE_FILE;
	st->nlink = f->nlink;
	st->file_id = f->id;
	pthread_mutex_lock(&f->lock);
	attr_out(v, &f->a, st);
	st->size = f->size;
	if (f->mode == F_FINAL && f->has_hash) {
		st->has_hash = true;
		memcpy(st->xxh128, f->hash, sizeof(st->xxh128));
	}
	pthread_mutex_unlock(&f->lock);
}

/* What stat shows of node n (store lock held). */
static void node_stat_locked(const struct version *v, struct node *n, struct ckpt_node_stat *st)
{
	memset(st, 0, sizeof(*st));
	st->type = n->type;
	st->nsubdirs = n->ndirs;
	attr_out(v, &n->a, st);
	if (n->type == CKPT_NODE_SYMLINK) {
		st->size = n->tlen;
		st->has_hash = true;
		memcpy(st->xxh128, n->thash, sizeof(st->xxh128));
	}
	if (n->type == CKPT_NODE_FILE)
		file_stat_locked(v, n->f, st);
}

int ckpt_node_stat(struct ckpt_store *s, const char *run, const char *version, const char *path,
		   struct ckpt_node_stat *st)
{
	struct version *v;
	struct node *n;
	int ret;

	pthread_mutex_lock(&s->lock);
	ret = resolve(s, run, version, path, &v, &n);
	if (ret == 0)
		node_stat_locked(v, n, st);
	pthread_mutex_unlock(&s->lock);
	return ret;
}

int ckpt_node_list(struct ckpt_store *s, const char *run, const char *version, const char *path,
		   char ***names, size_t *count)
{
	struct version *v;
	struct node *n;
	char **out;
	int ret;

	pthread_mutex_lock(&s->lock);
	ret = resolve(s, run, version, path, &v, &n);
	if (ret < 0)
		goto out;
	if (n->type != CKPT_NODE_DIR) {
		ret = -ENOTDIR;
		goto out;
	}
	out = calloc(n->nkids + 1, sizeof(*out));
	if (!out) {
		ret = -ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < n->nkids; i++) {
		out[i] = strdup(n->kids[i]->name);
		if (!out[i]) {
			ckpt_strv_free(out, i);
			ret = -ENOMEM;
			goto out;
		}
	}
	*names = out;
	*count = n->nkids;
out:
	pthread_mutex_unlock(&s->lock);
	return ret;
}

/* Lookup of the parent of a new name in a writable version. */
static int new_entry(struct ckpt_store *s, const char *run, const char *version, const char *path,
		     struct version **v, struct node **parent, const char **last)
{
	const char *why;
	int ret = version_lookup(s, run, version, v);

	if (ret < 0)
		return ret;
	ret = writable(s, *v);
	if (ret < 0)
		return ret;
	ret = node_lookup_parent((*v)->root, path, parent, last);
	if (ret < 0)
		return ret;
	ret = name_check_kind(*last, NAME_COMP, &why);
	if (ret < 0)
		return store_err(s, ret, "invalid name \"%s\": %s", *last, why);
	if (*parent == (*v)->root && !strcmp(*last, ".manifest"))
		return store_err(s, -EINVAL,
				 "\".manifest\" at the root of a version is reserved (the "
				 "version's manifest); pick another name");
	return 0;
}

/* Attach a new node (NULL: it could not be made) under parent, which new_entry
 * gave; the parent's times change as a directory's do. Under s->lock. */
static int attach_new(struct ckpt_store *s, struct version *v, struct node *parent, struct node *n)
{
	int ret;

	if (!n)
		return -ENOMEM;
	ret = node_attach(parent, n);
	if (ret < 0) {
		node_free(s, n);
		return ret;
	}
	node_touch(parent);
	shared_publish(s, v); /* the other hosts see it */
	return 0;
}

int ckpt_node_mkdir(struct ckpt_store *s, const char *run, const char *version, const char *path,
		    uint32_t mode)
{
	struct node *parent;
	struct version *v;
	const char *last;
	int ret;

	pthread_mutex_lock(&s->lock);
	ret = new_entry(s, run, version, path, &v, &parent, &last);
	if (ret < 0)
		goto out;
	if (node_child(parent, last)) {
		ret = -EEXIST;
		goto out;
	}
	ret = attach_new(s, v, parent, node_new(last, CKPT_NODE_DIR, mode));
out:
	pthread_mutex_unlock(&s->lock);
	return ret;
}

static int remove_node(struct ckpt_store *s, const char *run, const char *version, const char *path,
		       bool dir)
{
	struct version *v;
	struct node *n;
	int ret;

	pthread_mutex_lock(&s->lock);
	ret = resolve(s, run, version, path, &v, &n);
	if (ret < 0)
		goto out;
	if (v->state != CKPT_V_RETIRED && v->state != CKPT_V_INCOMPLETE) {
		ret = writable(s, v);
		if (ret < 0)
			goto out;
	}
	if (n == v->root) {
		ret = -EBUSY;
		goto out;
	}
	if (dir && n->type != CKPT_NODE_DIR) {
		ret = -ENOTDIR;
		goto out;
	}
	if (!dir && n->type == CKPT_NODE_DIR) {
		ret = -EISDIR;
		goto out;
	}
	if (dir && n->nkids) {
		ret = -ENOTEMPTY;
		goto out;
	}
	if (v->state == CKPT_V_OPEN) {
		ret = shared_node_writable(s, v, n);
		if (ret < 0)
			goto out;
	}
	/* in a RETIRED or INCOMPLETE version this only hides the path (the
	 * version is removed whole by ckpt_version_delete) */
	node_touch(n->parent);
	node_detach(n);
	if (n->f) {
		version_file_unnamed(s, v, n->f);
		if (n->f->nlink > 1) { /* another name lives on: its ctime changes */
			pthread_mutex_lock(&n->f->lock);
			n->f->a.ctime_ns = now_ns();
			pthread_mutex_unlock(&n->f->lock);
		}
	}
	node_free(s, n);
	v->totals_ok = false;
	if (v->state == CKPT_V_OPEN)
		shared_publish(s, v);
out:
	pthread_mutex_unlock(&s->lock);
	return ret;
}

int ckpt_node_rmdir(struct ckpt_store *s, const char *run, const char *version, const char *path)
{
	return remove_node(s, run, version, path, true);
}

int ckpt_node_unlink(struct ckpt_store *s, const char *run, const char *version, const char *path)
{
	return remove_node(s, run, version, path, false);
}

int ckpt_node_symlink(struct ckpt_store *s, const char *run, const char *version, const char *path,
		      const char *target, size_t len)
{
	struct node *parent;
	struct version *v;
	const char *last;
	int ret;

	if (len == 0 || memchr(target, 0, len))
		return store_err(s, -EINVAL, "a symlink target is 1 or more bytes without NUL");
	if (len > CKPT_SYMLINK_MAX)
		return store_err(s, -ENAMETOOLONG, "a symlink target is at most %d bytes, not %zu",
				 CKPT_SYMLINK_MAX, len);
	pthread_mutex_lock(&s->lock);
	ret = new_entry(s, run, version, path, &v, &parent, &last);
	if (ret < 0)
		goto out;
	if (node_child(parent, last)) {
		ret = -EEXIST;
		goto out;
	}
	ret = attach_new(s, v, parent, node_new_symlink(last, target, len));
out:
	pthread_mutex_unlock(&s->lock);
	return ret;
}

ssize_t ckpt_node_readlink(struct ckpt_store *s, const char *run, const char *version,
			   const char *path, char *buf, size_t len)
{
	struct version *v;
	struct node *n;
	ssize_t ret;
	int r;

	pthread_mutex_lock(&s->lock);
	r = resolve(s, run, version, path, &v, &n);
	if (r < 0) {
		ret = r;
	} else if (n->type != CKPT_NODE_SYMLINK) {
		ret = -EINVAL;
	} else if (n->tbad) {
		ret = store_err(s, -EIO,
				"the target of symlink %s/%s/%s does not match its XXH128 in the "
				"manifest: the version is damaged; run ckpt verify",
				run, version, path);
	} else {
		memcpy(buf, n->target, n->tlen < len ? n->tlen : len);
		ret = (ssize_t)n->tlen;
	}
	pthread_mutex_unlock(&s->lock);
	return ret;
}

int ckpt_node_link(struct ckpt_store *s, const char *run, const char *version, const char *from,
		   const char *to)
{
	struct node *src, *parent;
	struct version *v;
	const char *last;
	int ret;

	pthread_mutex_lock(&s->lock);
	ret = resolve(s, run, version, from, &v, &src);
	if (ret < 0)
		goto out;
	ret = new_entry(s, run, version, to, &v, &parent, &last);
	if (ret < 0)
		goto out;
	if (src->type != CKPT_NODE_FILE) {
		ret = store_err(s, -EPERM, "hard links are for files; %s is a %s", from,
				src->type == CKPT_NODE_DIR ? "directory" : "symlink");
		goto out;
	}
	if (node_child(parent, last)) {
		ret = -EEXIST;
		goto out;
	}
	ret = shared_node_writable(s, v, src);
	if (ret < 0)
		goto out;
	ret = attach_new(s, v, parent, node_new_link(last, src->f));
	if (ret < 0)
		goto out;
	pthread_mutex_lock(&src->f->lock);
	src->f->a.ctime_ns = parent->a.mtime_ns; /* link(2) changes the inode's ctime */
	pthread_mutex_unlock(&src->f->lock);
	v->totals_ok = false;
out:
	pthread_mutex_unlock(&s->lock);
	return ret;
}

int ckpt_node_rename(struct ckpt_store *s, const char *run, const char *version, const char *from,
		     const char *to)
{
	struct node *src, *parent, *dst, *p;
	struct version *v;
	const char *last;
	char *nm;
	int ret;

	pthread_mutex_lock(&s->lock);
	ret = resolve(s, run, version, from, &v, &src);
	if (ret < 0)
		goto out;
	ret = new_entry(s, run, version, to, &v, &parent, &last);
	if (ret < 0)
		goto out;
	if (src == v->root) {
		ret = -EBUSY;
		goto out;
	}
	ret = shared_node_writable(s, v, src);
	if (ret == 0)
		ret = shared_node_writable(s, v, node_child(parent, last));
	if (ret < 0)
		goto out;
	for (p = parent; p; p = p->parent)
		if (p == src) {
			ret = -EINVAL; /* into its own subtree */
			goto out;
		}
	dst = node_child(parent, last);
	if (dst == src || (dst && dst->f && dst->f == src->f))
		goto out; /* two names of one file: nothing happens (rename(2)) */
	if (dst) {
		if (dst->type == CKPT_NODE_DIR && src->type != CKPT_NODE_DIR) {
			ret = -EISDIR;
			goto out;
		}
		if (dst->type != CKPT_NODE_DIR && src->type == CKPT_NODE_DIR) {
			ret = -ENOTDIR;
			goto out;
		}
		if (dst->nkids) {
			ret = -ENOTEMPTY;
			goto out;
		}
	}
	nm = strdup(last);
	if (!nm) {
		ret = -ENOMEM;
		goto out;
	}
	if (dst) {
		node_detach(dst);
		if (dst->f)
			version_file_unnamed(s, v, dst->f);
		node_free(s, dst);
	}
	node_touch(src->parent);
	node_touch(parent);
	node_detach(src);
	free(src->name);
	src->name = nm;
	ret = node_attach(parent, src);
	if (src->f) { /* rename changes the inode's ctime (as ext4) */
		pthread_mutex_lock(&src->f->lock);
		src->f->a.ctime_ns = parent->a.mtime_ns;
		pthread_mutex_unlock(&src->f->lock);
	} else {
		src->a.ctime_ns = parent->a.mtime_ns;
	}
	shared_publish(s, v);
out:
	pthread_mutex_unlock(&s->lock);
	return ret;
}

/* Apply `a` to attributes `na` (the file's lock or the store lock held). */
static void attr_apply(struct nattr *na, const struct ckpt_setattr *a)
{
	int64_t now = now_ns();

	if (a->what & CKPT_SET_MODE)
		na->mode = a->mode & 07777;
	if (a->what & CKPT_SET_ATIME)
		na->atime_ns = a->atime_ns == CKPT_TIME_NOW ? now : a->atime_ns;
	if (a->what & CKPT_SET_MTIME)
		na->mtime_ns = a->mtime_ns == CKPT_TIME_NOW ? now : a->mtime_ns;
	if (a->what & CKPT_SET_KILL_PRIV) {
		/* as should_remove_suid(): S_ISGID only with group execute */
		na->mode &= ~(uint32_t)S_ISUID;
		if (na->mode & S_IXGRP)
			na->mode &= ~(uint32_t)S_ISGID;
	}
	na->ctime_ns = now;
}

/* A file's attributes and size, under its own lock (the size may mean I/O:
 * never under the store lock). */
static int file_setattr(struct ckpt_store *s, struct fdata *f, const struct ckpt_setattr *a)
{
	int ret = 0;

	pthread_mutex_lock(&f->lock);
	if (a->what & CKPT_SET_SIZE) {
		ret = fdata_truncate(s, f, a->size);
		if (ret == 0)
			nattr_touch(&f->a);
	}
	if (ret == 0 && (a->what & ~CKPT_SET_SIZE))
		attr_apply(&f->a, a);
	pthread_mutex_unlock(&f->lock);
	return ret;
}

int ckpt_node_setattr(struct ckpt_store *s, const char *run, const char *version, const char *path,
		      const struct ckpt_setattr *a)
{
	struct version *v;
	struct fdata *f = NULL;
	struct node *n;
	int ret;

	bool repub = false;

	pthread_mutex_lock(&s->lock);
	ret = resolve(s, run, version, path, &v, &n);
	if (ret == 0)
		ret = writable(s, v);
	if (ret == 0)
		ret = shared_node_writable(s, v, n);
	if (ret == 0 && (a->what & CKPT_SET_SIZE) && n->type != CKPT_NODE_FILE)
		ret = n->type == CKPT_NODE_DIR ? -EISDIR : -EINVAL;
	if (ret == 0 && n->f) {
		f = n->f;
		fdata_get(f);
		/* a closed file of a shared version changed: in the part again */
		repub = v->shared && f->holds == 0;
		if (repub) {
			v->refs++;
			v->pending_pub++;
		}
	} else if (ret == 0) {
		attr_apply(&n->a, a);
	}
	pthread_mutex_unlock(&s->lock);
	if (!f)
		return ret;
	ret = file_setattr(s, f, a);
	if (repub) {
		int r2 = shared_file_closed(s, v, f, true);

		if (ret == 0)
			ret = r2;
		pthread_mutex_lock(&s->lock);
		version_unref(s, v);
		pthread_mutex_unlock(&s->lock);
	}
	fdata_put(s, f);
	return ret;
}

int ckpt_node_truncate(struct ckpt_store *s, const char *run, const char *version, const char *path,
		       uint64_t size)
{
	struct ckpt_setattr a = {.what = CKPT_SET_SIZE, .size = size};

	return ckpt_node_setattr(s, run, version, path, &a);
}

int ckpt_node_chmod(struct ckpt_store *s, const char *run, const char *version, const char *path,
		    uint32_t mode)
{
	struct ckpt_setattr a = {.what = CKPT_SET_MODE, .mode = mode};

	return ckpt_node_setattr(s, run, version, path, &a);
}

int ckpt_node_utimens(struct ckpt_store *s, const char *run, const char *version, const char *path,
		      int64_t mtime_ns)
{
	struct ckpt_setattr a = {.what = CKPT_SET_MTIME, .mtime_ns = mtime_ns};

	return ckpt_node_setattr(s, run, version, path, &a);
}

/* ---- file handles ---- */

int ckpt_file_open(struct ckpt_store *s, const char *run, const char *version, const char *path,
		   int flags, uint32_t mode, struct ckpt_file **out)
{
	int acc = flags & O_ACCMODE;
	bool wr = acc != O_RDONLY || (flags & O_TRUNC);
	struct ckpt_file *h;
	struct version *v = NULL;
	struct node *n, *parent;
	const char *last;
	int ret;

	h = calloc(1, sizeof(*h));
	if (!h)
		return -ENOMEM;
	pthread_mutex_lock(&s->lock);
	ret = resolve(s, run, version, path, &v, &n);
	if (ret == -ENOENT && (flags & O_CREAT) && v) {
		ret = new_entry(s, run, version, path, &v, &parent, &last);
		if (ret < 0)
			goto fail;
		n = node_new(last, CKPT_NODE_FILE, mode);
		if (!n) {
			ret = -ENOMEM;
			goto fail;
		}
		ret = node_attach(parent, n);
		if (ret < 0) {
			node_free(s, n);
			goto fail;
		}
		node_touch(parent);
	} else if (ret < 0) {
		goto fail;
	} else if ((flags & O_CREAT) && (flags & O_EXCL)) {
		ret = -EEXIST;
		goto fail;
	}
	if (n->type == CKPT_NODE_DIR) {
		ret = -EISDIR;
		goto fail;
	}
	if (n->type == CKPT_NODE_SYMLINK) {
		ret = -ELOOP; /* the kernel follows symlinks itself */
		goto fail;
	}
	if (wr) {
		ret = writable(s, v);
		if (ret == 0)
			ret = shared_node_writable(s, v, n);
		if (ret < 0)
			goto fail;
	}
	h->s = s;
	h->v = v;
	h->f = n->f;
	h->flags = flags;
	h->cache_idx = h->prev_idx = -1;
	h->last_idx = -1;
	pthread_mutex_init(&h->lock, NULL);
	snprintf(h->path, sizeof(h->path), "%s", path);
	fdata_get(h->f);
	v->refs++;
	if (acc != O_RDONLY) {
		h->holds = true;
		h->f->holds++;
		v->writers++;
		/* the other hosts' commits wait for this handle from now on */
		ret = shared_publish(s, v);
		if (ret < 0) {
			pthread_mutex_unlock(&s->lock);
			ckpt_file_close(h);
			return ret == -ENOENT ? store_err(s, -EROFS,
							  "version %s/%s was committed or removed "
							  "by another host",
							  run, version)
					      : ret;
		}
	}
	pthread_mutex_unlock(&s->lock);
	if ((flags & O_TRUNC) && acc != O_RDONLY) {
		pthread_mutex_lock(&h->f->lock);
		ret = fdata_truncate(s, h->f, 0);
		if (ret == 0)
			nattr_touch(&h->f->a); /* O_TRUNC always changes the times */
		pthread_mutex_unlock(&h->f->lock);
		if (ret < 0) {
			ckpt_file_close(h);
			return ret;
		}
	}
	*out = h;
	return 0;
fail:
	pthread_mutex_unlock(&s->lock);
	free(h);
	return ret;
}

static void report_bad_chunk(struct ckpt_file *h, const struct cref *c, const char *what)
{
	struct ckpt_store *s = h->s;
	char hex[CHUNK_HEX_LEN + 1];

	chunk_hex(c->h, hex);
	store_log("verify: chunk %s of %s/%s/%s at offset %llu: %s; version marked corrupt", hex,
		  h->v->run->name, h->v->name, h->path, (unsigned long long)c->off, what);
	pthread_mutex_lock(&s->lock);
	version_mark_corrupt(s, h->v);
	pthread_mutex_unlock(&s->lock);
	store_err(s, -EIO,
		  "chunk %s of %s/%s/%s (offset %llu) %s: the version is corrupt; "
		  "resume from another version",
		  hex, h->v->run->name, h->v->name, h->path, (unsigned long long)c->off, what);
}

/*
 * While a handle reads in order, keep the next RA_CHUNKS chunks queued for
 * read-ahead (rcache.c), topping up in batches of half the window. "In
 * order" allows the small reorderings of a multi-threaded FUSE loop, whose
 * threads take the kernel's read-ahead requests in any order.
 */
#define RA_CHUNKS 16

static void read_ahead(struct ckpt_file *h, size_t i)
{
	const struct cref *c = h->f->chunks;
	bool verify[RA_CHUNKS];
	size_t end = i + 1 + RA_CHUNKS, n;

	if (i != 0 &&
	    (h->last_idx < 0 || i + 2 < (size_t)h->last_idx || i > (size_t)h->last_idx + 2))
		return; /* not sequential */
	if (h->ra_next < i + 1) {
		/* a backend reading ahead itself (rados) reads the chunk wanted
		 * now first, not after the ones queued next */
		if (h->ra_next <= i && h->s->ck.be->read_hints)
			chunk_hint(&h->s->ck, &c[i]);
		h->ra_next = i + 1;
	}
	if (end > h->f->nchunks)
		end = h->f->nchunks;
	if (h->ra_next >= end || (h->ra_next > i + RA_CHUNKS / 2 && end < h->f->nchunks))
		return;
	n = end - h->ra_next;
	for (size_t k = 0; k < n; k++)
		verify[k] = chunk_needs_verify(&h->s->ck, &c[h->ra_next + k]);
	rc_queue(h->s->ck.rc, &c[h->ra_next], verify, n);
	h->ra_next = end;
}

/* A chunk could not be read (the disk, not the chunk): the read fails with
 * the error and the version keeps its state, so a disk that fails for a
 * while does not make good checkpoints unresumable. */
static int report_read_error(struct ckpt_file *h, const struct cref *c, int err)
{
	char hex[CHUNK_HEX_LEN + 1];

	chunk_hex(c->h, hex);
	store_log("read of chunk %s of %s/%s/%s at offset %llu failed: %s; the version is "
		  "left %s",
		  hex, h->v->run->name, h->v->name, h->path, (unsigned long long)c->off,
		  strerror(-err), ckpt_vstate_name(h->v->state));
	return store_err(h->s, err,
			 "reading chunk %s of %s/%s/%s (offset %llu) failed: %s; the store's "
			 "disk gave an error, the checkpoint itself is not known to be bad: "
			 "check the disk and retry",
			 hex, h->v->run->name, h->v->name, h->path, (unsigned long long)c->off,
			 strerror(-err));
}

/* Chunk c into *buf (cap bytes, page aligned), checked (unless
 * verify=off): from read-ahead when it is there (swapping buffers), else
 * from disk. A bad chunk marks the version corrupt: -EIO. */
static int load_chunk(struct ckpt_file *h, const struct cref *c, uint8_t **buf, size_t cap)
{
	struct ckpt_store *s = h->s;
	bool verified = false;
	int ret;

	/* read-ahead first: its loaders copied resident chunks already, and a
	 * buffer from there is swapped in, not copied */
	if (rc_take(s->ck.rc, c, buf, cap, &verified)) {
		uint8_t hh[CHUNK_HASH_LEN];

		ret = 0;
		if (chunk_needs_verify(&s->ck, c) && !verified) {
			hash128(*buf, c->len, hh);
			if (memcmp(hh, c->h, CHUNK_HASH_LEN)) {
				chunk_mark_bad(&s->ck, c->h);
				ret = -EBADMSG;
			}
		}
	} else {
		ret = chunk_load(&s->ck, c, *buf, cap); /* the resident tier, else the disk */
	}
	if (ret == -EBADMSG) {
		report_bad_chunk(h, c, "does not match its XXH128 (missing, short or altered)");
		return -EIO;
	}
	if (ret < 0)
		return report_read_error(h, c, ret);
	return 0;
}

/* Load chunk i into the handle's buffer (h->lock held). */
static int cache_chunk(struct ckpt_file *h, size_t i)
{
	struct ckpt_store *s = h->s;
	const struct cref *c = &h->f->chunks[i];
	int ret;

	if (h->cache_idx == (ssize_t)i)
		return 0;
	/* With a readahead window of many requests (16 MiB) the loop's
	 * threads answer the last requests of a chunk after the first of
	 * the next: the chunk before stays, swapped back, not read again. */
	if (h->cache_idx >= 0 || h->prev_idx == (ssize_t)i) {
		uint8_t *b = h->prev;
		size_t cap = h->prev_cap;
		ssize_t idx = h->prev_idx;

		h->prev = h->cache;
		h->prev_cap = h->cache_cap;
		h->prev_idx = h->cache_idx;
		h->cache = b;
		h->cache_cap = cap;
		h->cache_idx = -1;
		if (idx == (ssize_t)i) {
			h->cache_idx = idx;
			return 0;
		}
	}
	if (!h->cache || c->len > h->cache_cap) { /* larger chunks: a store made so */
		free(h->cache);
		h->cache = rc_buf_alloc(&s->ck, c->len, &h->cache_cap);
		if (!h->cache)
			return -ENOMEM;
	}
	read_ahead(h, i);
	h->last_idx = (ssize_t)i;
	h->cache_idx = -1;
	ret = load_chunk(h, c, &h->cache, h->cache_cap);
	if (ret < 0)
		return ret;
	h->cache_idx = (ssize_t)i;
	return 0;
}

/* The chunk holding `off` (off < f->size). */
static size_t chunk_at(const struct fdata *f, uint64_t off)
{
	size_t lo = 0, hi = f->nchunks;

	while (lo + 1 < hi) { /* last chunk with chunk.off <= off */
		size_t mid = (lo + hi) / 2;

		if (f->chunks[mid].off <= off)
			lo = mid;
		else
			hi = mid;
	}
	return lo;
}

static ssize_t read_final(struct ckpt_file *h, uint8_t *buf, size_t len, uint64_t off)
{
	struct fdata *f = h->f;
	size_t done = 0;

	if (off >= f->size)
		return 0;
	if (len > f->size - off)
		len = (size_t)(f->size - off);
	for (size_t i = chunk_at(f, off); i < f->nchunks && done < len; i++) {
		const struct cref *c = &f->chunks[i];
		uint64_t pos = off + done;
		size_t n;
		int ret = cache_chunk(h, i);

		if (ret < 0)
			return done ? (ssize_t)done : ret;
		n = (size_t)(c->off + c->len - pos);
		if (n > len - done)
			n = len - done;
		memcpy(buf + done, h->cache + (pos - c->off), n);
		done += n;
	}
	return (ssize_t)done;
}

/* F_FINAL never changes again: no file lock needed to read it. */
static bool is_final(struct fdata *f)
{
	bool final;

	pthread_mutex_lock(&f->lock);
	final = f->mode == F_FINAL;
	pthread_mutex_unlock(&f->lock);
	return final;
}

ssize_t ckpt_file_pread(struct ckpt_file *h, void *buf, size_t len, uint64_t off)
{
	struct fdata *f = h->f;
	ssize_t ret;

	if ((h->flags & O_ACCMODE) == O_WRONLY)
		return -EBADF;
	pthread_mutex_lock(&f->lock);
	if (f->mode != F_FINAL) {
		ret = fdata_read_open(h->s, f, buf, len, off);
		pthread_mutex_unlock(&f->lock);
		return ret;
	}
	pthread_mutex_unlock(&f->lock);
	pthread_mutex_lock(&h->lock);
	ret = read_final(h, buf, len, off);
	pthread_mutex_unlock(&h->lock);
	return ret;
}

/*
 * A request for a whole chunk (the kernel's read-ahead asks for 1 MiB at
 * chunk boundaries) gets a buffer of its own: the handle is locked only to
 * note the position and queue read-ahead, so the threads of the FUSE loop
 * load, check and reply to one reader's requests at the same time. A
 * request for part of a chunk uses the handle's chunk buffer (the next
 * small read finds the chunk there) and keeps the handle locked until the
 * release.
 */
ssize_t ckpt_file_read_ref(struct ckpt_file *h, size_t len, uint64_t off, const void **p,
			   struct ckpt_rref *r)
{
	struct rcache *rc = h->s->ck.rc;
	struct fdata *f = h->f;
	const struct cref *c;
	uint8_t *buf;
	size_t i;
	int ret;

	r->buf = r->pool = r->res = NULL;
	if ((h->flags & O_ACCMODE) == O_WRONLY)
		return -EBADF;
	if (!is_final(f))
		return -ERANGE;
	if (off >= f->size)
		return 0;
	if (len > f->size - off)
		len = (size_t)(f->size - off);
	i = chunk_at(f, off);
	c = &f->chunks[i];
	if (off + len > c->off + c->len)
		return -ERANGE;
	pthread_mutex_lock(&h->lock);
	if (off != c->off || len != c->len || c->len > rc_cap(rc) || h->cache_idx == (ssize_t)i ||
	    h->prev_idx == (ssize_t)i) {
		ret = cache_chunk(h, i);
		if (ret < 0) {
			pthread_mutex_unlock(&h->lock);
			return ret;
		}
		*p = h->cache + (off - c->off);
		return (ssize_t)len;
	}
	read_ahead(h, i);
	h->last_idx = (ssize_t)i;
	pthread_mutex_unlock(&h->lock);
	/* a resident chunk is sent from the tier itself: no copy at all */
	*p = res_pin(h->s->ck.res, c->h, c->len);
	if (*p) {
		r->buf = (void *)*p;
		r->res = h->s->ck.res;
		return (ssize_t)len;
	}
	buf = rc_buf_get(rc);
	if (!buf)
		return -ENOMEM;
	ret = load_chunk(h, c, &buf, rc_cap(rc));
	if (ret < 0) {
		rc_buf_put(rc, buf);
		return ret;
	}
	r->buf = buf;
	r->pool = rc;
	*p = buf;
	return (ssize_t)len;
}

void ckpt_file_read_release(struct ckpt_file *h, struct ckpt_rref *r)
{
	if (r->res) /* h may be closed by now: only r is ours */
		res_unpin(r->res, r->buf);
	else if (r->buf)
		rc_buf_put(r->pool, r->buf);
	else
		pthread_mutex_unlock(&h->lock);
	r->buf = r->pool = r->res = NULL;
}

ssize_t ckpt_file_read_resident(struct ckpt_file *h, uint64_t off, const void **p,
				struct ckpt_rref *r, uint64_t *next)
{
	struct fdata *f = h->f;
	const struct cref *c;

	*next = UINT64_MAX;
	if (!h->s->ck.res || !is_final(f) || off >= f->size)
		return -ENOENT;
	c = &f->chunks[chunk_at(f, off)];
	*next = c->off + c->len;
	if (c->off != off)
		return -ERANGE;
	if (!p)
		return 0;
	*p = res_pin(h->s->ck.res, c->h, c->len);
	if (!*p)
		return -ENOENT;
	r->buf = (void *)*p;
	r->pool = NULL;
	r->res = h->s->ck.res;
	return (ssize_t)c->len;
}

/* May this handle change its file now? */
static int handle_writable(struct ckpt_file *h)
{
	if ((h->flags & O_ACCMODE) == O_RDONLY)
		return -EBADF;
	if (__atomic_load_n(&h->v->busy, __ATOMIC_SEQ_CST))
		return -EBUSY;
	if (h->v->state != CKPT_V_OPEN || h->v->dead)
		return -EROFS;
	return 0;
}

ssize_t ckpt_file_pwrite(struct ckpt_file *h, const void *buf, size_t len, uint64_t off)
{
	struct fdata *f = h->f;
	int ret;

	ret = handle_writable(h);
	if (ret < 0)
		return ret;
	if (len == 0)
		return 0;
	pthread_mutex_lock(&f->lock);
	if (h->flags & O_APPEND)
		off = f->size;
	/* A chunk of this file that did not reach the disk fails the writes
	 * after it: the writer may never flush (FUSE's FOPEN_NOFLUSH,
	 * fs/fuse/ops_file.c), and the commit would be the first to say. */
	ret = f->checked < f->nchunks ? fdata_check_errors(h->s, f) : 0;
	if (ret == 0)
		ret = fdata_write(h->s, f, buf, len, off);
	if (ret == 0)
		nattr_touch(&f->a);
	pthread_mutex_unlock(&f->lock);
	if (ret < 0)
		return store_err(h->s, ret, "write to %s/%s/%s failed: %s", h->v->run->name,
				 h->v->name, h->path, strerror(-ret));
	return (ssize_t)len;
}

/* Zeros over [off, off + len) of a file being written (f->lock held). */
static int write_zeros(struct ckpt_store *s, struct fdata *f, uint64_t off, uint64_t len)
{
	size_t chunk = len < (1u << 20) ? (size_t)len : (1u << 20);
	void *z;
	int ret = 0;

	if (!len)
		return 0;
	z = calloc(1, chunk);
	if (!z)
		return -ENOMEM;
	while (len && ret == 0) {
		size_t n = len < chunk ? (size_t)len : chunk;

		ret = fdata_write(s, f, z, n, off);
		off += n;
		len -= n;
	}
	free(z);
	return ret;
}

int ckpt_file_fallocate(struct ckpt_file *h, int mode, uint64_t off, uint64_t len)
{
	const int known = CKPT_FALLOC_KEEP_SIZE | CKPT_FALLOC_PUNCH_HOLE | CKPT_FALLOC_ZERO_RANGE;
	bool keep = mode & CKPT_FALLOC_KEEP_SIZE;
	struct fdata *f = h->f;
	uint64_t end, size;
	int ret = 0;

	if (mode & ~known)
		return -EOPNOTSUPP;
	if ((mode & CKPT_FALLOC_PUNCH_HOLE) &&
	    (!keep || (mode & CKPT_FALLOC_ZERO_RANGE))) /* as fallocate(2) */
		return -EINVAL;
	if (len == 0)
		return -EINVAL;
	if (off + len < off)
		return -EFBIG;
	ret = handle_writable(h);
	if (ret < 0)
		return ret;
	end = off + len;
	pthread_mutex_lock(&f->lock);
	size = f->size;
	/* Nothing is preallocated (chunks are written whole at commit time):
	 * the size is what a reader can see, and zeros are written where a
	 * hole or a zeroed range meets existing data. */
	if ((mode & (CKPT_FALLOC_PUNCH_HOLE | CKPT_FALLOC_ZERO_RANGE)) && off < size)
		ret = write_zeros(h->s, f, off, (end < size ? end : size) - off);
	if (ret == 0 && !keep && end > f->size)
		ret = fdata_truncate(h->s, f, end);
	if (ret == 0 &&
	    (f->size != size || (mode & (CKPT_FALLOC_PUNCH_HOLE | CKPT_FALLOC_ZERO_RANGE))))
		nattr_touch(&f->a);
	pthread_mutex_unlock(&f->lock);
	if (ret < 0)
		return store_err(h->s, ret, "fallocate of %s/%s/%s failed: %s", h->v->run->name,
				 h->v->name, h->path, strerror(-ret));
	return 0;
}

int ckpt_file_setattr(struct ckpt_file *h, const struct ckpt_setattr *a)
{
	int ret;

	if ((a->what & CKPT_SET_SIZE) && (h->flags & O_ACCMODE) == O_RDONLY)
		return -EBADF;
	if (__atomic_load_n(&h->v->busy, __ATOMIC_SEQ_CST))
		return -EBUSY;
	if (h->v->state != CKPT_V_OPEN || h->v->dead)
		return -EROFS;
	ret = file_setattr(h->s, h->f, a);
	return ret < 0 ? store_err(h->s, ret, "changing %s/%s/%s failed: %s", h->v->run->name,
				   h->v->name, h->path, strerror(-ret))
		       : 0;
}

int ckpt_file_ftruncate(struct ckpt_file *h, uint64_t size)
{
	struct ckpt_setattr a = {.what = CKPT_SET_SIZE, .size = size};

	return ckpt_file_setattr(h, &a);
}

/* Errors of earlier asynchronous writes surface here. Data of an open
 * version becomes durable at commit (an open version does not survive a
 * crash anyway), so this waits for the writes, not for the disk. */
int ckpt_file_flush(struct ckpt_file *h)
{
	int ret;

	if ((h->flags & O_ACCMODE) == O_RDONLY || h->f->mode == F_FINAL)
		return 0;
	cw_drain(h->s->ck.cw);
	pthread_mutex_lock(&h->f->lock);
	ret = fdata_check_errors(h->s, h->f);
	fdata_park(h->s, h->f);
	pthread_mutex_unlock(&h->f->lock);
	if (ret < 0)
		store_err(h->s, ret, "writing %s/%s/%s failed: %s", h->v->run->name, h->v->name,
			  h->path, strerror(-ret));
	return ret;
}

int ckpt_file_fsync(struct ckpt_file *h)
{
	return ckpt_file_flush(h);
}

/* The handle stops holding its version's commit back (store lock held). An
 * unlinked file's handles stopped counting when its last name went. */
static void handle_unhold(struct ckpt_file *h)
{
	if (!h->holds)
		return;
	h->holds = false;
	h->f->holds--;
	if (h->f->nlink > 0)
		version_writer_done(h->s, h->v);
}

void ckpt_file_unhold(struct ckpt_file *h)
{
	pthread_mutex_lock(&h->s->lock);
	handle_unhold(h);
	pthread_mutex_unlock(&h->s->lock);
}

int ckpt_file_stat(struct ckpt_file *h, struct ckpt_node_stat *st)
{
	memset(st, 0, sizeof(*st));
	pthread_mutex_lock(&h->s->lock);
	file_stat_locked(h->v, h->f, st);
	pthread_mutex_unlock(&h->s->lock);
	return 0;
}

int ckpt_file_close(struct ckpt_file *h)
{
	bool publish, last = false;
	struct ckpt_store *s;
	int ret;

	if (!h)
		return 0;
	s = h->s;
	ret = ckpt_file_flush(h);
	pthread_mutex_lock(&s->lock);
	publish = h->holds && h->v->shared && h->v->state == CKPT_V_OPEN && !h->v->dead;
	handle_unhold(h);
	if (publish) {
		last = h->f->holds == 0 && h->f->nlink > 0;
		h->v->pending_pub++;
	}
	pthread_mutex_unlock(&s->lock);
	if (publish) {
		int r2 = shared_file_closed(s, h->v, h->f, last);

		if (ret == 0)
			ret = r2;
	}
	pthread_mutex_lock(&s->lock);
	version_unref(s, h->v);
	pthread_mutex_unlock(&s->lock);
	fdata_put(s, h->f); /* the last handle of an unlinked file drops its bytes */
	/* a reader between ckpt_file_read_ref and _release still uses the
	 * chunk buffer (FUSE: the read is answered, so the file may be released
	 * while that thread's reply is still returning) */
	pthread_mutex_lock(&h->lock);
	pthread_mutex_unlock(&h->lock);
	pthread_mutex_destroy(&h->lock);
	free(h->cache);
	free(h->prev);
	free(h);
	return ret;
}
