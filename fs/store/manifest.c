// SPDX-License-Identifier: MIT
/*
 * manifest.c - a version as a JSON document (jansson): what .manifest shows
 * and what STORE/runs/RUN/versions/VERSION holds for committed versions.
 * docs/store-format.md describes the fields.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "ckptfs/utf8.h"
#include "store_i.h"

/* mode and times; a version that is no longer open keeps its modes
 * without write bits (SPEC §2) */
static void attr_to_json(json_t *o, const struct nattr *a, bool open)
{
	json_object_set_new(o, "mode", json_integer(open ? a->mode : a->mode & ~0222u));
	json_object_set_new(o, "mtime_ns", json_integer(a->mtime_ns));
	json_object_set_new(o, "atime_ns", json_integer(a->atime_ns));
	json_object_set_new(o, "ctime_ns", json_integer(a->ctime_ns));
}

/* Manifests before issue 12 have only mode and mtime_ns (and no "root"):
 * atime and ctime are then the mtime, and a missing mtime is `dflt`. */
static void attr_from_json(json_t *o, struct nattr *a, uint32_t dmode, int64_t dflt)
{
	json_t *m = json_object_get(o, "mode"), *t = json_object_get(o, "mtime_ns");

	a->mode = json_is_integer(m) ? (uint32_t)json_integer_value(m) & 07777 : dmode;
	a->mtime_ns = json_is_integer(t) ? json_integer_value(t) : dflt;
	t = json_object_get(o, "atime_ns");
	a->atime_ns = json_is_integer(t) ? json_integer_value(t) : a->mtime_ns;
	t = json_object_get(o, "ctime_ns");
	a->ctime_ns = json_is_integer(t) ? json_integer_value(t) : a->mtime_ns;
}

static const char *type_name(enum ckpt_node_type t)
{
	return t == CKPT_NODE_DIR ? "dir" : t == CKPT_NODE_SYMLINK ? "symlink" : "file";
}

/* A symlink's target: "target" when it is UTF-8 text, else "target_hex"
 * (JSON strings are UTF-8; a target may be any bytes). */
static void link_to_json(json_t *o, const struct node *k)
{
	char hex[CHUNK_HEX_LEN + 1];

	if (ckpt_utf8_valid(k->target, k->tlen)) {
		json_object_set_new(o, "target", json_stringn(k->target, k->tlen));
	} else {
		char *h = malloc(k->tlen * 2 + 1);

		for (size_t i = 0; h && i < k->tlen; i++)
			snprintf(h + 2 * i, 3, "%02x", (unsigned char)k->target[i]);
		if (h)
			json_object_set_new(o, "target_hex", json_stringn(h, k->tlen * 2));
		free(h);
	}
	chunk_hex(k->thash, hex);
	json_object_set_new(o, "xxh128", json_string(hex));
}

/* A part (manifest_part_build) lists only this mount's files that are
 * closed and durable; a manifest every entry. */
static bool part_skips(const struct node *k)
{
	if (k->owner)
		return k->type != CKPT_NODE_DIR;
	if (k->type != CKPT_NODE_FILE)
		return false;
	return k->f->holds > 0 || !__atomic_load_n(&k->f->pub, __ATOMIC_ACQUIRE);
}

static int add_nodes(json_t *files, struct node *n, char *path, size_t plen, bool with_chunks,
		     bool open, bool part, uint64_t gen, uint32_t *linkno)
{
	for (size_t i = 0; i < n->nkids; i++) {
		struct node *k = n->kids[i];
		size_t l = strlen(k->name);
		json_t *o;

		if (part && part_skips(k))
			continue;
		if (plen + l + 2 > 4096)
			return -ENAMETOOLONG;
		if (plen)
			path[plen] = '/';
		memcpy(path + plen + (plen ? 1 : 0), k->name, l + 1);
		o = json_object();
		json_object_set_new(o, "path", json_string(path));
		json_object_set_new(o, "type", json_string(type_name(k->type)));
		if (k->type != CKPT_NODE_FILE)
			attr_to_json(o, &k->a, open);
		if (k->type == CKPT_NODE_SYMLINK)
			link_to_json(o, k);
		if (k->type == CKPT_NODE_FILE) {
			struct fdata *f = k->f;

			if (f->nlink > 1) { /* hard links: one number per file */
				if (f->mark != gen) {
					f->mark = gen;
					f->linkno = ++*linkno;
				}
				json_object_set_new(o, "inode", json_integer(f->linkno));
			}
			pthread_mutex_lock(&f->lock);
			attr_to_json(o, &f->a, open);
			json_object_set_new(o, "size", json_integer((json_int_t)f->size));
			if (f->has_hash) {
				char hex[CHUNK_HEX_LEN + 1];

				chunk_hex(f->hash, hex);
				json_object_set_new(o, "xxh128", json_string(hex));
			}
			if (with_chunks && f->mode != F_STAGED) {
				json_t *cl = json_array();

				for (size_t c = 0; c < f->nchunks; c++) {
					char hex[CHUNK_HEX_LEN + 1];

					chunk_hex(f->chunks[c].h, hex);
					json_array_append_new(
						cl, json_pack("[s,I]", hex,
							      (json_int_t)f->chunks[c].len));
				}
				json_object_set_new(o, "chunks", cl);
			}
			pthread_mutex_unlock(&f->lock);
		}
		json_array_append_new(files, o);
		if (k->type == CKPT_NODE_DIR) {
			int ret = add_nodes(files, k, path, plen + l + (plen ? 1 : 0), with_chunks,
					    open, part, gen, linkno);

			if (ret < 0)
				return ret;
		}
		path[plen] = 0;
	}
	return 0;
}

static json_t *build(struct ckpt_store *s, struct version *v, bool with_chunks, bool part)
{
	char t[64], id[24], *path;
	json_t *o = json_object(), *files = json_array();
	uint64_t bytes = 0, nfiles = 0;

	snprintf(id, sizeof(id), "%016" PRIx64, v->id);
	json_object_set_new(o, "format", json_integer(CKPT_STORE_FORMAT));
	json_object_set_new(o, "run", json_string(v->run->name));
	json_object_set_new(o, "version", json_string(v->name));
	json_object_set_new(o, "id", json_string(id));
	json_object_set_new(o, "state", json_string(ckpt_vstate_name(v->state)));
	json_object_set_new(o, "seq", json_integer((json_int_t)v->seq));
	ckpt_iso_format(t, sizeof(t), v->created_ns, CKPT_ISO_S);
	json_object_set_new(o, "created", json_string(t));
	json_object_set_new(o, "created_ns", json_integer(v->created_ns));
	if (v->committed_ns) {
		ckpt_iso_format(t, sizeof(t), v->committed_ns, CKPT_ISO_S);
		json_object_set_new(o, "committed", json_string(t));
	} else {
		json_object_set_new(o, "committed", json_null());
	}
	json_object_set_new(o, "committed_ns", json_integer(v->committed_ns));
	json_object_set_new(o, "pinned", json_boolean(v->pinned));
	json_object_set_new(o, "chunking",
			    json_string(s->ck.chunker.kind == CKPT_CHUNK_CDC ? "cdc" : "fixed"));
	json_object_set_new(o, "metadata", json_deep_copy(v->meta));
	path = calloc(1, 4096);
	if (path && v->root) {
		json_t *root = json_object();
		uint32_t linkno = 0;

		attr_to_json(root, &v->root->a, v->state == CKPT_V_OPEN);
		json_object_set_new(o, "root", root);
		add_nodes(files, v->root, path, 0, with_chunks, v->state == CKPT_V_OPEN, part,
			  fdata_walk_gen(), &linkno);
	}
	free(path);
	for (size_t i = 0; i < json_array_size(files); i++) {
		json_t *f = json_array_get(files, i);

		if (!strcmp(json_string_value(json_object_get(f, "type")), "file")) {
			nfiles++;
			bytes += (uint64_t)json_integer_value(json_object_get(f, "size"));
		}
	}
	json_object_set_new(o, "logical_bytes", json_integer((json_int_t)bytes));
	json_object_set_new(o, "nfiles", json_integer((json_int_t)nfiles));
	json_object_set_new(o, "files", files);
	return o;
}

json_t *manifest_build(struct ckpt_store *s, struct version *v, bool with_chunks)
{
	return build(s, v, with_chunks, false);
}

json_t *manifest_part_build(struct ckpt_store *s, struct version *v)
{
	return build(s, v, true, true);
}

/* The manifest as stored: compact JSON, malloc'd. */
char *manifest_text(struct ckpt_store *s, struct version *v, size_t *len)
{
	json_t *o = manifest_build(s, v, true);
	char *txt;

	if (!o)
		return NULL;
	txt = json_dumps(o, JSON_COMPACT);
	json_decref(o);
	if (txt)
		*len = strlen(txt);
	return txt;
}

static enum ckpt_vstate state_parse(const char *st)
{
	if (st && !strcmp(st, "corrupt"))
		return CKPT_V_CORRUPT;
	if (st && !strcmp(st, "retired"))
		return CKPT_V_RETIRED;
	return CKPT_V_COMMITTED;
}

/* Build the tree of a committed version; its chunks enter the index as
 * durable (a manifest is only published after its chunks are). */
static int load_file(struct ckpt_store *s, struct node *n, json_t *jf)
{
	struct fdata *f = n->f;
	json_t *cl = json_object_get(jf, "chunks"), *c;
	const char *hx = json_string_value(json_object_get(jf, "xxh128"));
	size_t i;

	f->mode = F_FINAL;
	XXH3_freeState(f->hs);
	f->hs = NULL;
	f->size = (uint64_t)json_integer_value(json_object_get(jf, "size"));
	if (!hx || chunk_unhex(hx, f->hash) < 0)
		return -EINVAL;
	f->has_hash = true;
	json_array_foreach(cl, i, c)
	{
		uint8_t h[CHUNK_HASH_LEN];
		json_int_t len = json_integer_value(json_array_get(c, 1));
		int ret;

		if (chunk_unhex(json_string_value(json_array_get(c, 0)) ?: "", h) < 0 || len <= 0 ||
		    len > (64 << 20))
			return -EINVAL;
		ret = chunk_ref_durable(&s->ck, h, (uint32_t)len);
		if (ret < 0)
			return ret;
		ret = fdata_add_chunk(f, h, (uint32_t)len);
		if (ret < 0)
			return ret;
	}
	f->checked = f->nchunks;
	if (f->nchunks && f->chunks[f->nchunks - 1].off + f->chunks[f->nchunks - 1].len != f->size)
		return -EINVAL;
	if (!f->nchunks && f->size)
		return -EINVAL;
	return 0;
}

static int unhex_byte(const char *p)
{
	int v = 0;

	for (int i = 0; i < 2; i++) {
		char c = p[i];

		v <<= 4;
		if (c >= '0' && c <= '9')
			v |= c - '0';
		else if (c >= 'a' && c <= 'f')
			v |= c - 'a' + 10;
		else
			return -1;
	}
	return v;
}

/* A symlink entry. Its target is checked against its "xxh128": a mismatch
 * (or none) makes it read as EIO and verify report it, as a bad chunk. NULL
 * when out of memory or the target is not one (the manifest is damaged). */
static struct node *load_symlink(const char *name, json_t *jf)
{
	json_t *t = json_object_get(jf, "target"), *th = json_object_get(jf, "target_hex");
	const char *hx = json_string_value(json_object_get(jf, "xxh128"));
	uint8_t want[CHUNK_HASH_LEN];
	char *buf = NULL;
	struct node *n;
	size_t len;

	if (json_is_string(t)) {
		len = json_string_length(t);
		buf = malloc(len + 1);
		if (buf)
			memcpy(buf, json_string_value(t), len);
	} else if (json_is_string(th) && json_string_length(th) % 2 == 0) {
		const char *h = json_string_value(th);

		len = json_string_length(th) / 2;
		buf = malloc(len + 1);
		for (size_t i = 0; buf && i < len; i++) {
			int b = unhex_byte(h + 2 * i);

			if (b <= 0) { /* not hex, or a NUL */
				free(buf);
				return NULL;
			}
			buf[i] = (char)b;
		}
	} else {
		return NULL;
	}
	if (!buf || len == 0 || len > CKPT_SYMLINK_MAX || memchr(buf, 0, len)) {
		free(buf);
		return NULL;
	}
	n = node_new_symlink(name, buf, len);
	free(buf);
	if (n && (!hx || chunk_unhex(hx, want) < 0 || memcmp(want, n->thash, CHUNK_HASH_LEN))) {
		n->tbad = true;
		if (hx && chunk_unhex(hx, want) == 0)
			memcpy(n->thash, want, CHUNK_HASH_LEN); /* report the stored one */
	}
	return n;
}

int manifest_load(struct ckpt_store *s, struct run *r, const char *name, json_t *doc,
		  struct version **out)
{
	struct version *v = calloc(1, sizeof(*v));
	json_t *files = json_object_get(doc, "files"), *jf;
	const char *id = json_string_value(json_object_get(doc, "id"));
	struct fdata **inodes = NULL; /* hard links: "inode" -> the file */
	size_t i;
	int ret = -ENOMEM;

	if (!v)
		return -ENOMEM;
	snprintf(v->name, sizeof(v->name), "%s", name);
	v->run = r;
	v->refs = 1;
	v->state = state_parse(json_string_value(json_object_get(doc, "state")));
	v->pinned = json_is_true(json_object_get(doc, "pinned"));
	v->seq = (uint64_t)json_integer_value(json_object_get(doc, "seq"));
	v->id = id ? strtoull(id, NULL, 16) : 0;
	v->created_ns = json_integer_value(json_object_get(doc, "created_ns"));
	v->committed_ns = json_integer_value(json_object_get(doc, "committed_ns"));
	v->meta = json_deep_copy(json_object_get(doc, "metadata"));
	if (!json_is_object(v->meta)) {
		json_decref(v->meta);
		v->meta = json_object();
	}
	v->root = node_new("", CKPT_NODE_DIR, 0755);
	if (!v->root)
		goto fail;
	attr_from_json(json_object_get(doc, "root"), &v->root->a, 0755,
		       v->committed_ns ? v->committed_ns : v->created_ns);
	ret = -EINVAL;
	if (!json_is_array(files))
		goto fail;
	inodes = calloc(json_array_size(files) + 1, sizeof(*inodes));
	if (!inodes) {
		ret = -ENOMEM;
		goto fail;
	}
	json_array_foreach(files, i, jf)
	{
		const char *path = json_string_value(json_object_get(jf, "path")), *last;
		const char *type = json_string_value(json_object_get(jf, "type"));
		json_t *ino = json_object_get(jf, "inode");
		struct node *parent, *n;
		json_int_t k = 0;

		if (!path || !type)
			goto fail_inval; /* ret may still be 0 from the entry before */
		ret = node_lookup_parent(v->root, path, &parent, &last);
		if (ret < 0 || name_check_kind(last, NAME_COMP, NULL) < 0)
			goto fail_inval;
		if (json_is_integer(ino)) {
			k = json_integer_value(ino);
			if (k < 1 || (size_t)k > json_array_size(files) || strcmp(type, "file"))
				goto fail_inval;
		}
		if (!strcmp(type, "symlink"))
			n = load_symlink(last, jf);
		else if (k && inodes[k])
			n = node_new_link(last, inodes[k]); /* another name of that file */
		else
			n = node_new(last, strcmp(type, "dir") ? CKPT_NODE_FILE : CKPT_NODE_DIR, 0);
		if (!n) {
			ret = strcmp(type, "symlink") ? -ENOMEM : -EINVAL;
			goto fail;
		}
		if (!n->f || !k || !inodes[k])
			attr_from_json(jf, n->f ? &n->f->a : &n->a,
				       n->f	   ? 0444
				       : n->target ? 0777
						   : 0555,
				       v->created_ns);
		ret = node_attach(parent, n);
		if (ret < 0) {
			node_free(s, n);
			goto fail_inval;
		}
		if (k && inodes[k])
			continue;
		if (n->type == CKPT_NODE_FILE && (ret = load_file(s, n, jf)) < 0)
			goto fail_inval;
		if (k)
			inodes[k] = n->f;
	}
	free(inodes);
	*out = v;
	return 0;
fail_inval:
	ret = -EINVAL;
fail:
	free(inodes);
	node_free(s, v->root);
	json_decref(v->meta);
	free(v);
	return ret;
}
