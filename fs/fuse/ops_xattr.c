// SPDX-License-Identifier: MIT
/*
 * ops_xattr.c - the user.ckpt.* extended attributes, the interface that
 * ckptd and the ckpt CLI use (docs/mount.md lists them):
 *
 *   version dir  user.ckpt.state, .seq, .committed, .pinned (rw), .verify,
 *                .commit (write 1 or rank=K), .writers (rw), .parts,
 *                .meta.<key> (rw) (writers and parts: writers.c)
 *   run dir      user.ckpt.metric, .keep_last, .keep_best, .max_age_days
 *   file         user.ckpt.xxh128 (committed versions)
 *   mount root   user.ckpt.gc: write 1 to collect garbage now (the store's gc
 *                is safe while versions are being written); read it for the
 *                last result as JSON. This is how `ckpt gc` works while the
 *                store is mounted (and so locked by this process).
 */
#include "ckptfs_i.h"

#include "ckptfs/isotime.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/xattr.h>
#include <time.h>

#define PFX "user.ckpt."
#define PFX_LEN (sizeof(PFX) - 1)
#define META "meta."
#define META_LEN (sizeof(META) - 1)

/* The last gc's result, for getxattr user.ckpt.gc on the root. */
static pthread_mutex_t gc_lock = PTHREAD_MUTEX_INITIALIZER;
static char gc_last[256];

static int root_gc(struct cfs *c, const char *value, size_t size)
{
	struct ckpt_gc_result res;
	int ret;

	if (size != 1 || value[0] != '1')
		return -EINVAL;
	/* One gc at a time; writers keep going meanwhile. */
	pthread_mutex_lock(&gc_lock);
	ret = ckpt_store_gc(c->store, &res);
	if (ret < 0) {
		cfs_log("gc failed: %s", ckpt_store_strerror(c->store));
	} else {
		snprintf(gc_last, sizeof(gc_last),
			 "{\"chunks_removed\": %" PRIu64 ", \"bytes_removed\": %" PRIu64
			 ", \"versions_removed\": %" PRIu64 "}",
			 res.chunks_removed, res.bytes_removed, res.versions_removed);
		cfs_log("gc: removed %" PRIu64 " chunks (%" PRIu64 " bytes), %" PRIu64
			" incomplete versions",
			res.chunks_removed, res.bytes_removed, res.versions_removed);
		ret = 0;
	}
	pthread_mutex_unlock(&gc_lock);
	return ret;
}

/* A value being built for a reply. */
struct xval {
	char *s;
	size_t len;
};

static int xval_set(struct xval *v, const char *s, size_t len)
{
	v->s = malloc(len + 1);
	if (!v->s)
		return -ENOMEM;
	memcpy(v->s, s, len);
	v->s[len] = '\0';
	v->len = len;
	return 0;
}

static int xval_str(struct xval *v, const char *s)
{
	return xval_set(v, s, strlen(s));
}

static int xval_u64(struct xval *v, uint64_t x)
{
	char b[32];

	snprintf(b, sizeof(b), "%" PRIu64, x);
	return xval_str(v, b);
}

static int get_version(struct cfs *c, const struct cfs_path *p, const char *key, struct xval *v)
{
	struct ckpt_version_info vi;
	char b[64];
	int ret;

	if (strncmp(key, META, META_LEN) == 0) {
		char *buf;
		size_t cap = 4096;

		for (;;) {
			buf = malloc(cap);
			if (!buf)
				return -ENOMEM;
			ret = ckpt_meta_get(c->store, p->run, p->ver, key + META_LEN, buf, cap);
			if (ret == -ERANGE && cap < (1u << 20)) {
				free(buf);
				cap *= 4; /* XATTR_SIZE_MAX is 64 KiB */
				continue;
			}
			if (ret < 0 || (size_t)ret < cap)
				break;
			free(buf);
			cap = (size_t)ret + 1;
		}
		if (ret >= 0)
			ret = xval_set(v, buf, (size_t)ret);
		free(buf);
		return ret;
	}
	if (strcmp(key, "verify") == 0) {
		ret = ckpt_store_verify(c->store, p->run, p->ver, NULL, NULL, NULL);
		if (ret < 0)
			return ret;
		if (ret > 0) {
			cfs_log("verify of %s/%s: %d bad chunk(s); the version is now corrupt",
				p->run, p->ver, ret);
			return -EIO;
		}
		return xval_str(v, "ok");
	}
	if (cfs_writers_key(key)) {
		char w[1024];

		ret = cfs_writers_get(c, p, key, w, sizeof(w));
		return ret < 0 ? ret : xval_str(v, w);
	}
	ret = ckpt_version_state(c->store, p->run, p->ver, &vi);
	if (ret < 0)
		return ret;
	if (strcmp(key, "state") == 0)
		return xval_str(v, ckpt_vstate_name(vi.state));
	if (strcmp(key, "pinned") == 0)
		return xval_str(v, vi.pinned ? "1" : "0");
	if (strcmp(key, "seq") == 0)
		return vi.seq ? xval_u64(v, vi.seq) : -ENODATA;
	if (strcmp(key, "committed") == 0) {
		if (!vi.committed_ns)
			return -ENODATA;
		ckpt_iso_format(b, sizeof(b), vi.committed_ns, CKPT_ISO_S);
		return xval_str(v, b);
	}
	return -ENODATA;
}

static int get_run(struct cfs *c, const struct cfs_path *p, const char *key, struct xval *v)
{
	struct ckpt_retention r;
	char b[CKPT_NAME_MAX + 8];
	int ret;

	if (strcmp(key, "metric") == 0) {
		ret = ckpt_run_get_metric(c->store, p->run, b, sizeof(b));
		if (ret < 0)
			return ret;
		return b[0] ? xval_str(v, b) : -ENODATA;
	}
	ret = ckpt_run_get_retention(c->store, p->run, &r);
	if (ret < 0)
		return ret;
	if (strcmp(key, "keep_last") == 0)
		return xval_u64(v, r.keep_last);
	if (strcmp(key, "keep_best") == 0)
		return xval_u64(v, r.keep_best);
	if (strcmp(key, "max_age_days") == 0)
		return xval_u64(v, r.max_age_days);
	return -ENODATA;
}

static int get_node(struct cfs *c, const struct cfs_path *p, const char *key, struct xval *v)
{
	struct ckpt_node_stat ns;
	char hex[33];
	int ret, i;

	if (strcmp(key, "xxh128") != 0)
		return -ENODATA;
	ret = ckpt_node_stat(c->store, p->run, p->ver, p->rel, &ns);
	if (ret < 0)
		return ret;
	if (ns.type != CKPT_NODE_FILE || !ns.has_hash)
		return -ENODATA;
	for (i = 0; i < 16; i++)
		snprintf(hex + 2 * i, 3, "%02x", ns.xxh128[i]);
	return xval_set(v, hex, 32);
}

static void reply_value(fuse_req_t req, const struct xval *v, size_t size)
{
	if (size == 0)
		fuse_reply_xattr(req, v->len);
	else if (size < v->len)
		fuse_reply_err(req, ERANGE);
	else
		fuse_reply_buf(req, v->s, v->len);
}

/* The value of user.ckpt.KEY of p. */
static int get_key(struct cfs *c, const struct cfs_path *p, const char *key, struct xval *v)
{
	int ret = -ENODATA;

	if (p->kind == CFS_VERSION) {
		ret = get_version(c, p, key, v);
	} else if (p->kind == CFS_RUN) {
		ret = get_run(c, p, key, v);
	} else if (p->kind == CFS_ROOT && strcmp(key, "gc") == 0) {
		pthread_mutex_lock(&gc_lock);
		ret = gc_last[0] ? xval_str(v, gc_last) : -ENODATA;
		pthread_mutex_unlock(&gc_lock);
	} else if (p->kind == CFS_NODE) {
		ret = get_node(c, p, key, v);
	}
	return ret;
}

void cfs_op_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name, size_t size)
{
	struct cfs *c = cfs_of(req);
	struct xval v = {0};
	struct cfs_path p;
	int ret;

	/* ls -l asks every file for security.selinux; ENOTSUP (only user.*
	 * names exist here) makes coreutils stop asking for this device. */
	if (strncmp(name, "user.", 5) != 0) {
		fuse_reply_err(req, ENOTSUP);
		return;
	}
	if (!cfs_resolve(req, ino, &p))
		return;
	ret = cfs_may_xattr(req, &p, name, R_OK);
	if (ret == 0)
		ret = strncmp(name, PFX, PFX_LEN) ? -ENODATA : get_key(c, &p, name + PFX_LEN, &v);
	cfs_path_free(&p);
	if (ret < 0)
		fuse_reply_err(req, -ret);
	else
		reply_value(req, &v, size);
	free(v.s);
}

/* Parse a decimal retention value. */
static int parse_u32(const char *value, size_t size, uint32_t *out)
{
	char b[16], *end;
	unsigned long x;

	if (size == 0 || size >= sizeof(b))
		return -EINVAL;
	memcpy(b, value, size);
	b[size] = '\0';
	if (b[size - 1] == '\n')
		b[size - 1] = '\0';
	errno = 0;
	x = strtoul(b, &end, 10);
	if (errno || *end || end == b || x > UINT32_MAX || b[0] == '-')
		return -EINVAL;
	*out = (uint32_t)x;
	return 0;
}

/* "1" / "0" (a trailing newline from echo is allowed). */
static int parse_bool(const char *value, size_t size)
{
	if (size == 2 && value[1] == '\n')
		size = 1;
	if (size == 1 && value[0] == '1')
		return 1;
	if (size == 1 && value[0] == '0')
		return 0;
	return -EINVAL;
}

static int set_version(struct cfs *c, const struct cfs_path *p, const char *key, const char *value,
		       size_t size, int flags)
{
	int ret, b;

	if (strncmp(key, META, META_LEN) == 0) {
		if (flags & (XATTR_CREATE | XATTR_REPLACE)) {
			char one;

			ret = ckpt_meta_get(c->store, p->run, p->ver, key + META_LEN, &one, 1);
			if ((flags & XATTR_CREATE) && ret != -ENODATA)
				return -EEXIST;
			if ((flags & XATTR_REPLACE) && ret == -ENODATA)
				return -ENODATA;
		}
		return ckpt_meta_set(c->store, p->run, p->ver, key + META_LEN, value, size);
	}
	if (strcmp(key, "commit") == 0)
		return cfs_commit_xattr(c, p, value, size);
	if (cfs_writers_key(key))
		return cfs_writers_set(c, p, key, value, size);
	if (strcmp(key, "pinned") == 0) {
		b = parse_bool(value, size);
		if (b < 0)
			return b;
		return ckpt_version_pin(c->store, p->run, p->ver, b == 1);
	}
	if (!strcmp(key, "state") || !strcmp(key, "seq") || !strcmp(key, "committed") ||
	    !strcmp(key, "verify"))
		return -EPERM; /* read-only */
	return -ENOTSUP;
}

static int set_run(struct cfs *c, const struct cfs_path *p, const char *key, const char *value,
		   size_t size)
{
	struct ckpt_retention r;
	char b[CKPT_NAME_MAX + 1];
	uint32_t x = 0;
	int ret;

	if (strcmp(key, "metric") == 0) {
		if (size >= sizeof(b))
			return -EINVAL;
		memcpy(b, value, size);
		b[size] = '\0';
		if (size && b[size - 1] == '\n')
			b[size - 1] = '\0';
		return ckpt_run_set_metric(c->store, p->run, b);
	}
	if (strcmp(key, "keep_last") && strcmp(key, "keep_best") && strcmp(key, "max_age_days"))
		return -ENOTSUP;
	if (value) {
		ret = parse_u32(value, size, &x);
		if (ret < 0)
			return ret;
	}
	ret = ckpt_run_get_retention(c->store, p->run, &r);
	if (ret < 0)
		return ret;
	if (strcmp(key, "keep_last") == 0)
		r.keep_last = x;
	else if (strcmp(key, "keep_best") == 0)
		r.keep_best = x;
	else
		r.max_age_days = x;
	return ckpt_run_set_retention(c->store, p->run, &r);
}

void cfs_op_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name, const char *value,
		     size_t size, int flags)
{
	struct cfs *c = cfs_of(req);
	struct cfs_path p;
	int ret;

	if (!cfs_resolve(req, ino, &p))
		return;
	ret = cfs_may_xattr(req, &p, name, W_OK);
	if (ret == 0)
		ret = -ENOTSUP;
	if (ret == -ENOTSUP && strncmp(name, PFX, PFX_LEN) == 0) {
		const char *key = name + PFX_LEN;

		if (p.kind == CFS_VERSION)
			ret = set_version(c, &p, key, value, size, flags);
		else if (p.kind == CFS_RUN)
			ret = set_run(c, &p, key, value, size);
		else if (p.kind == CFS_ROOT && strcmp(key, "gc") == 0)
			ret = root_gc(c, value, size);
		else if (p.kind == CFS_NODE && strcmp(key, "xxh128") == 0)
			ret = -EPERM;
	}
	cfs_path_free(&p);
	fuse_reply_err(req, ret < 0 ? -ret : 0);
}

void cfs_op_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name)
{
	struct cfs *c = cfs_of(req);
	struct cfs_path p;
	int ret;

	if (!cfs_resolve(req, ino, &p))
		return;
	ret = cfs_may_xattr(req, &p, name, W_OK);
	if (ret == 0)
		ret = -ENODATA;
	if (ret == -ENODATA && strncmp(name, PFX, PFX_LEN) == 0) {
		const char *key = name + PFX_LEN;

		if (p.kind == CFS_VERSION && strncmp(key, META, META_LEN) == 0)
			ret = ckpt_meta_remove(c->store, p.run, p.ver, key + META_LEN);
		else if (p.kind == CFS_VERSION && cfs_writers_key(key))
			ret = cfs_writers_remove(c, &p, key);
		else if (p.kind == CFS_RUN && strcmp(key, "metric") == 0)
			ret = ckpt_run_set_metric(c->store, p.run, "");
		else if (p.kind == CFS_RUN)
			ret = set_run(c, &p, key, NULL, 0);
		else if (p.kind == CFS_VERSION || p.kind == CFS_NODE)
			ret = -EPERM;
	}
	cfs_path_free(&p);
	fuse_reply_err(req, ret < 0 ? -ret : 0);
}

/* A list of NUL-terminated names. */
struct xlist {
	char *s;
	size_t len, cap;
};

static int xlist_add(struct xlist *l, const char *a, const char *b)
{
	size_t n = strlen(a) + strlen(b) + 1;

	if (l->len + n > l->cap) {
		size_t cap = (l->cap + n) * 2;
		char *s = realloc(l->s, cap);

		if (!s)
			return -ENOMEM;
		l->s = s;
		l->cap = cap;
	}
	memcpy(l->s + l->len, a, strlen(a));
	memcpy(l->s + l->len + strlen(a), b, strlen(b) + 1);
	l->len += n;
	return 0;
}

/* Names listed by getfattr -d: the cheap ones. verify and commit act when
 * touched, so they are not listed. */
static int list_version(struct cfs *c, const struct cfs_path *p, struct xlist *l)
{
	struct ckpt_version_info vi;
	char **keys = NULL;
	size_t n = 0, i;
	int ret;

	ret = ckpt_version_state(c->store, p->run, p->ver, &vi);
	if (ret < 0)
		return ret;
	ret = xlist_add(l, PFX, "state");
	if (ret == 0 && vi.seq)
		ret = xlist_add(l, PFX, "seq");
	if (ret == 0 && vi.committed_ns)
		ret = xlist_add(l, PFX, "committed");
	if (ret == 0)
		ret = xlist_add(l, PFX, "pinned");
	if (ret == 0 && vi.state == CKPT_V_OPEN) {
		char w[16];

		if (cfs_writers_get(c, p, "writers", w, sizeof(w)) > 0) {
			ret = xlist_add(l, PFX, "writers");
			if (ret == 0)
				ret = xlist_add(l, PFX, "parts");
		}
	}
	if (ret < 0)
		return ret;
	ret = ckpt_meta_list(c->store, p->run, p->ver, &keys, &n);
	if (ret < 0)
		return ret;
	for (i = 0; i < n && ret == 0; i++)
		ret = xlist_add(l, PFX META, keys[i]);
	ckpt_strv_free(keys, n);
	return ret;
}

static int list_run(struct cfs *c, const struct cfs_path *p, struct xlist *l)
{
	char b[CKPT_NAME_MAX + 8];
	int ret;

	ret = ckpt_run_get_metric(c->store, p->run, b, sizeof(b));
	if (ret < 0)
		return ret;
	if (b[0])
		ret = xlist_add(l, PFX, "metric");
	if (ret == 0)
		ret = xlist_add(l, PFX, "keep_last");
	if (ret == 0)
		ret = xlist_add(l, PFX, "keep_best");
	if (ret == 0)
		ret = xlist_add(l, PFX, "max_age_days");
	return ret;
}

void cfs_op_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size)
{
	struct cfs *c = cfs_of(req);
	struct xlist l = {0};
	struct ckpt_node_stat ns;
	struct cfs_path p;
	int ret = 0;

	if (!cfs_resolve(req, ino, &p))
		return;
	if (p.kind == CFS_VERSION)
		ret = list_version(c, &p, &l);
	else if (p.kind == CFS_RUN)
		ret = list_run(c, &p, &l);
	else if (p.kind == CFS_NODE && ckpt_node_stat(c->store, p.run, p.ver, p.rel, &ns) == 0 &&
		 ns.has_hash)
		ret = xlist_add(&l, PFX, "xxh128");
	cfs_path_free(&p);
	if (ret < 0) {
		fuse_reply_err(req, -ret);
	} else {
		struct xval v = {.s = l.s, .len = l.len};

		reply_value(req, &v, size);
	}
	free(l.s);
}
