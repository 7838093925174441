// SPDX-License-Identifier: MIT
/*
 * shared.c - open versions that many mounts (hosts) write into at once, on
 * a shared store (RADOS; SPEC §9, docs/store-format.md "Open versions
 * shared by hosts").
 *
 * Each mount publishes its part of an open version through the backend
 * (sb_ops.part_put): the files it wrote and closed, finalized and durable,
 * with their chunk lists (in manifest form), every directory, its count of
 * handles open for writing and the user.ckpt.writers parts it knows done.
 * Every other mount merges the parts into its tree of the version (their
 * files appear, read-only there: node.owner names the mount that wrote
 * them). A commit on any mount reads every part together with the run's
 * sequence number, refuses (EBUSY) while a live mount has a handle open for
 * writing or a part is missing, merges them all and publishes the manifest
 * in the same compare-and-swap that removes the marker and the parts. A
 * mount that died (its lease ran out) keeps its closed files in the
 * version; what it had open was never in its part.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "store_i.h"

static uint64_t mount_num(const char *id)
{
	return strtoull(id, NULL, 16);
}

static struct vpart *fp_find(struct version *v, uint64_t m)
{
	for (size_t i = 0; i < v->nfp; i++)
		if (v->fp[i].mount == m)
			return &v->fp[i];
	return NULL;
}

/* Remove every node mount m wrote (and its directories left empty). */
static void drop_owned(struct ckpt_store *s, struct version *v, struct node *d, uint64_t m)
{
	for (size_t i = d->nkids; i-- > 0;) {
		struct node *k = d->kids[i];

		if (k->type == CKPT_NODE_DIR)
			drop_owned(s, v, k, m);
		if (k->owner != m || (k->type == CKPT_NODE_DIR && k->nkids))
			continue;
		node_detach(k);
		node_free(s, k);
		v->totals_ok = false;
	}
}

/* Move the entries of `from` (a tree loaded from mount m's part) into `to`;
 * a name that exists here already (not a directory on both sides) is a
 * conflict and stays as it is. */
static uint32_t graft(struct ckpt_store *s, struct node *from, struct node *to, uint64_t m)
{
	uint32_t conflicts = 0;

	for (size_t i = from->nkids; i-- > 0;) {
		struct node *k = from->kids[i], *have = node_child(to, k->name);

		if (k->type == CKPT_NODE_DIR) {
			if (!have) {
				have = node_new(k->name, CKPT_NODE_DIR, k->a.mode);
				if (!have || node_attach(to, have) < 0) {
					node_free(s, have);
					continue;
				}
				have->a = k->a;
				have->owner = m;
			}
			if (have->type == CKPT_NODE_DIR)
				conflicts += graft(s, k, have, m);
			else
				conflicts++;
			continue;
		}
		if (have) {
			conflicts++;
			continue;
		}
		node_detach(k);
		k->owner = m;
		if (node_attach(to, k) < 0)
			node_free(s, k);
	}
	return conflicts;
}

/* What a part says besides its files. */
static void part_meta(json_t *doc, struct vpart *p)
{
	const char *host = json_string_value(json_object_get(doc, "host"));

	p->writers = (uint32_t)json_integer_value(json_object_get(doc, "writers"));
	snprintf(p->host, sizeof(p->host), "%s", host ? host : "?");
}

/* Take the user.ckpt.writers parts another mount knows done. */
static void part_bits(struct ckpt_store *s, struct version *v, json_t *doc)
{
	uint32_t n = (uint32_t)json_integer_value(json_object_get(doc, "nparts"));
	json_t *done = json_object_get(doc, "parts"), *k;
	size_t i;

	if (!n || n > CKPT_WRITERS_MAX)
		return;
	if (!v->nparts) {
		uint8_t *bits = calloc((n + 7) / 8, 1);

		if (!bits)
			return;
		free(v->parts);
		v->parts = bits;
		v->nparts = n;
		v->parts_done = 0;
	}
	if (n != v->nparts) {
		store_log("version %s/%s: another host has user.ckpt.writers=%u, this one %u; "
			  "its parts are not counted",
			  v->run->name, v->name, n, v->nparts);
		return;
	}
	(void)s;
	json_array_foreach(done, i, k)
	{
		json_int_t b = json_integer_value(k);

		if (b < 0 || (uint32_t)b >= n || (v->parts[b / 8] & (1u << (b % 8))))
			continue;
		v->parts[b / 8] |= (uint8_t)(1u << (b % 8));
		v->parts_done++;
	}
}

void shared_merge(struct ckpt_store *s, struct version *v, const struct sb_part *parts, size_t n,
		  bool force)
{
	struct vpart *nfp = calloc(n + 1, sizeof(*nfp));
	size_t nn = 0;

	if (!nfp)
		return;
	for (size_t i = 0; i < n; i++) {
		const struct sb_part *p = &parts[i];
		uint64_t m = mount_num(p->mount);
		uint8_t h[CHUNK_HASH_LEN];
		struct vpart *old;
		struct version *tmp;
		json_t *doc;
		uint64_t dh;

		if (!strcmp(p->mount, s->be->mount_id) || !m)
			continue; /* this mount's own */
		hash128(p->doc, p->len, h);
		memcpy(&dh, h, sizeof(dh));
		old = fp_find(v, m);
		nfp[nn].mount = m;
		nfp[nn].alive = SB(s->be, mount_alive, p->mount);
		doc = json_loadb(p->doc, p->len, 0, NULL);
		if (!doc) {
			store_log("the part of %s/%s from mount %s is damaged: not merged",
				  v->run->name, v->name, p->mount);
			if (old)
				nfp[nn++] = *old;
			continue;
		}
		part_meta(doc, &nfp[nn]);
		part_bits(s, v, doc);
		if (old && old->dochash == dh && !force) {
			nfp[nn].dochash = dh;
			nfp[nn++].conflicts = old->conflicts;
			json_decref(doc);
			continue;
		}
		drop_owned(s, v, v->root, m);
		if (manifest_load(s, v->run, v->name, doc, &tmp) == 0) {
			nfp[nn].conflicts = graft(s, tmp->root, v->root, m);
			if (nfp[nn].conflicts)
				store_log("version %s/%s: %u path%s written by this host and by %s "
					  "too; the commit fails until one of them is removed",
					  v->run->name, v->name, nfp[nn].conflicts,
					  nfp[nn].conflicts == 1 ? "" : "s", nfp[nn].host);
			tmp->dead = true;
			version_unref(s, tmp);
		} else {
			store_log("the part of %s/%s from host %s is damaged: not merged",
				  v->run->name, v->name, nfp[nn].host);
		}
		json_decref(doc);
		nfp[nn++].dochash = dh;
		v->totals_ok = false;
	}
	/* mounts whose part is gone (removed it: nothing of theirs is left) */
	for (size_t i = 0; i < v->nfp; i++) {
		bool kept = false;

		for (size_t j = 0; j < nn; j++)
			kept = kept || nfp[j].mount == v->fp[i].mount;
		if (!kept)
			drop_owned(s, v, v->root, v->fp[i].mount);
	}
	free(v->fp);
	v->fp = nfp;
	v->nfp = nn;
}

struct collect {
	struct sb_part *v;
	char **docs;
	size_t n;
	int err;
};

static int collect_part(void *arg, const struct sb_part *p)
{
	struct collect *c = arg;
	struct sb_part *nv = realloc(c->v, (c->n + 1) * sizeof(*nv));
	char **nd = nv ? realloc(c->docs, (c->n + 1) * sizeof(*nd)) : NULL;
	char *d = nd ? malloc(p->len + 1) : NULL;

	if (nv)
		c->v = nv;
	if (nd)
		c->docs = nd;
	if (!d)
		return c->err = -ENOMEM;
	memcpy(d, p->doc, p->len);
	d[p->len] = 0;
	c->v[c->n] = *p;
	c->v[c->n].doc = d;
	c->docs[c->n++] = d;
	return 0;
}

static void collect_free(struct collect *c)
{
	for (size_t i = 0; i < c->n; i++)
		free(c->docs[i]);
	free(c->docs);
	free(c->v);
}

int shared_refresh(struct ckpt_store *s, struct version *v)
{
	struct collect c = {0};
	int ret;

	if (!v->shared || !s->be->ops->part_list)
		return 0;
	ret = SB(s->be, part_list, v->run->name, v->name, collect_part, &c);
	if (ret == 0 && c.err)
		ret = c.err;
	if (ret == 0)
		shared_merge(s, v, c.v, c.n, false);
	collect_free(&c);
	return ret;
}

int shared_publish(struct ckpt_store *s, struct version *v)
{
	char host[64] = "?";
	json_t *o, *done;
	char *txt;
	int ret;

	if (!v->shared || v->state != CKPT_V_OPEN || v->dead || !s->be->ops->part_put)
		return 0;
	o = manifest_part_build(s, v);
	if (!o)
		return -ENOMEM;
	gethostname(host, sizeof(host) - 1);
	json_object_set_new(o, "mount", json_string(s->be->mount_id));
	json_object_set_new(o, "host", json_string(host));
	json_object_set_new(o, "pid", json_integer(getpid()));
	/* a closed file counts as open until it is in the part */
	json_object_set_new(o, "writers", json_integer(v->writers + v->pending_pub));
	json_object_set_new(o, "nparts", json_integer(v->nparts));
	done = json_array();
	for (uint32_t k = 0; k < v->nparts; k++)
		if (v->parts[k / 8] & (1u << (k % 8)))
			json_array_append_new(done, json_integer(k));
	json_object_set_new(o, "parts", done);
	txt = json_dumps(o, JSON_COMPACT);
	json_decref(o);
	if (!txt)
		return -ENOMEM;
	ret = SB(s->be, part_put, v->run->name, v->name, txt, strlen(txt));
	free(txt);
	if (ret == 0)
		v->mine = true;
	if (ret < 0 && ret != -ENOENT)
		store_err(s, ret,
			  "cannot publish this host's part of open version %s/%s in %s: %s; the "
			  "other hosts do not see its latest files until it is published",
			  v->run->name, v->name, s->be->where, strerror(-ret));
	return ret;
}

uint32_t shared_foreign_writers(struct version *v, char *who, size_t len)
{
	uint32_t n = 0;
	size_t off = 0;

	if (who && len)
		who[0] = 0;
	for (size_t i = 0; i < v->nfp; i++) {
		if (!v->fp[i].alive || !v->fp[i].writers)
			continue;
		n += v->fp[i].writers;
		if (who && off + 80 < len)
			off += (size_t)snprintf(who + off, len - off, "%s%u on %s", off ? ", " : "",
						v->fp[i].writers, v->fp[i].host);
	}
	return n;
}

uint32_t shared_conflicts(struct version *v)
{
	uint32_t n = 0;

	for (size_t i = 0; i < v->nfp; i++)
		n += v->fp[i].conflicts;
	return n;
}

int shared_file_closed(struct ckpt_store *s, struct version *v, struct fdata *f, bool last)
{
	uint64_t gen = 0;
	int ret = 0, pret;

	if (last) {
		/* durable before any other host may commit it */
		pthread_mutex_lock(&f->lock);
		gen = f->wgen;
		ret = f->frozen ? -EBUSY : fdata_finalize(s, f);
		pthread_mutex_unlock(&f->lock);
		if (ret == 0) {
			cw_drain(s->ck.cw);
			pthread_mutex_lock(&f->lock);
			ret = fdata_check_errors(s, f);
			pthread_mutex_unlock(&f->lock);
		}
		if (ret == 0)
			ret = SB(s->be, chunk_sync);
		if (ret < 0 && ret != -EBUSY)
			store_err(s, ret,
				  "a file of open version %s/%s could not be made durable (%s): "
				  "it is not in this host's part; write it again",
				  v->run->name, v->name, strerror(-ret));
	}
	pthread_mutex_lock(&s->lock);
	if (last && ret == 0) {
		pthread_mutex_lock(&f->lock);
		if (f->wgen == gen && f->holds == 0)
			__atomic_store_n(&f->pub, true, __ATOMIC_RELEASE);
		pthread_mutex_unlock(&f->lock);
	}
	v->pending_pub--;
	pret = shared_publish(s, v);
	pthread_mutex_unlock(&s->lock);
	if (ret == -EBUSY) /* being committed here: the commit takes it */
		ret = 0;
	return ret < 0 ? ret : pret == -ENOENT ? 0 : pret;
}

int shared_node_writable(struct ckpt_store *s, struct version *v, struct node *n)
{
	struct vpart *p;

	if (!n || !n->owner || n->type == CKPT_NODE_DIR)
		return 0;
	p = fp_find(v, n->owner);
	return store_err(s, -EROFS,
			 "%s in open version %s/%s was written by another host (%s): only that "
			 "host may change it",
			 n->name, v->run->name, v->name, p ? p->host : "gone");
}

struct alive_cb {
	struct ckpt_store *s;
	bool alive;
};

static int part_alive(void *arg, const struct sb_part *p)
{
	struct alive_cb *a = arg;

	if (!a->alive)
		a->alive = SB(a->s->be, mount_alive, p->mount);
	return 0;
}

bool shared_version_alive(struct ckpt_store *s, struct version *v)
{
	struct alive_cb a = {.s = s};

	if (!s->be->ops->mount_alive)
		return false;
	if (v->creator[0] && SB(s->be, mount_alive, v->creator))
		return true;
	SB(s->be, part_list, v->run->name, v->name, part_alive, &a);
	return a.alive;
}

bool shared_marker_alive(struct ckpt_store *s, const char *run, const char *name, json_t *doc)
{
	const char *m = json_string_value(json_object_get(doc, "mount"));
	struct alive_cb a = {.s = s};

	if (!s->be->ops->mount_alive)
		return false;
	if (m && strcmp(m, s->be->mount_id) && SB(s->be, mount_alive, m))
		return true;
	SB(s->be, part_list, run, name, part_alive, &a);
	return a.alive;
}
