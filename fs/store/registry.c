// SPDX-License-Identifier: MIT
/*
 * registry.c - the store's runs and versions in memory, and their life in
 * the backend: loading every run and version when the store opens (open
 * markers without a committed manifest become INCOMPLETE versions), saving
 * a run's settings and a version's manifest after a change, removing a
 * version, and picking latest and best. Callers hold the store lock.
 */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store_i.h"

/* Runs and versions are kept sorted by name: listings come out in order and
 * lookups are binary searches (a run may hold thousands of versions, and
 * every per-path call starts with a lookup). */
static const char *run_name(const void *item)
{
	return (*(struct run *const *)item)->name;
}

struct run *run_find(struct ckpt_store *s, const char *name)
{
	bool found;
	size_t i = sorted_pos(s->runs, s->nruns, run_name, name, &found);

	return found ? s->runs[i] : NULL;
}

int run_add(struct ckpt_store *s, struct run *r)
{
	return sorted_insert(&s->runs, &s->nruns, &s->rcap, run_name, r->name, r);
}

void run_unlink(struct ckpt_store *s, struct run *r)
{
	for (size_t i = 0; i < s->nruns; i++) {
		if (s->runs[i] == r) {
			memmove(s->runs + i, s->runs + i + 1,
				(s->nruns - i - 1) * sizeof(*s->runs));
			s->nruns--;
			return;
		}
	}
}

static const char *ver_name(const void *item)
{
	return (*(struct version *const *)item)->name;
}

int run_add_version(struct run *r, struct version *v)
{
	int ret = sorted_insert(&r->v, &r->nv, &r->cap, ver_name, v->name, v);

	if (ret == 0)
		v->run = r;
	return ret;
}

/* by pointer: the version's name may have changed since it was added */
void run_del_version(struct run *r, struct version *v)
{
	for (size_t i = 0; i < r->nv; i++) {
		if (r->v[i] == v) {
			memmove(r->v + i, r->v + i + 1, (r->nv - i - 1) * sizeof(*r->v));
			r->nv--;
			return;
		}
	}
}

struct version *version_find(struct run *r, const char *name)
{
	bool found;
	size_t i = sorted_pos(r->v, r->nv, ver_name, name, &found);

	return found ? r->v[i] : NULL;
}

int version_lookup(struct ckpt_store *s, const char *run, const char *version, struct version **out)
{
	struct run *r = run_find(s, run);
	struct version *v;

	if (!r)
		return store_err(s, -ENOENT, "no run %s", run);
	v = version_find(r, version);
	if (!v)
		return store_err(s, -ENOENT, "no version %s in run %s", version, run);
	*out = v;
	return 0;
}

/* A version with an empty tree and no metadata, not yet in its run. */
struct version *version_new(struct run *r, const char *name, enum ckpt_vstate state)
{
	struct version *v = calloc(1, sizeof(*v));

	if (!v)
		return NULL;
	snprintf(v->name, sizeof(v->name), "%s", name);
	v->run = r;
	v->refs = 1;
	v->state = state;
	v->meta = json_object();
	v->root = node_new("", CKPT_NODE_DIR, 0755);
	if (!v->meta || !v->root) {
		node_free(NULL, v->root);
		json_decref(v->meta);
		free(v);
		return NULL;
	}
	return v;
}

void version_unref(struct ckpt_store *s, struct version *v)
{
	if (--v->refs > 0)
		return;
	node_free(s, v->root);
	json_decref(v->meta);
	free(v->parts);
	free(v->fp);
	free(v);
}

void run_free(struct ckpt_store *s, struct run *r)
{
	for (size_t i = 0; i < r->nv; i++) {
		r->v[i]->dead = true;
		version_unref(s, r->v[i]);
	}
	free(r->v);
	free(r);
}

int run_persist(struct ckpt_store *s, struct run *r)
{
	json_t *o = json_object();
	char *txt;
	int ret;

	json_object_set_new(o, "metric", json_string(r->metric));
	if (r->has_ret)
		json_object_set_new(o, "retention",
				    json_pack("{s:i,s:i,s:i}", "keep_last", (int)r->ret.keep_last,
					      "keep_best", (int)r->ret.keep_best, "max_age_days",
					      (int)r->ret.max_age_days));
	txt = json_dumps(o, JSON_COMPACT);
	json_decref(o);
	if (!txt)
		return -ENOMEM;
	ret = SB(s->be, run_conf_put, r->name, txt, strlen(txt));
	free(txt);
	return ret;
}

static void run_conf_parse(struct run *r, const char *txt, size_t len)
{
	json_t *doc = json_loadb(txt, len, 0, NULL), *rt;

	if (!doc)
		return;
	snprintf(r->metric, sizeof(r->metric), "%s",
		 json_string_value(json_object_get(doc, "metric")) ?: "");
	rt = json_object_get(doc, "retention");
	if (json_is_object(rt)) {
		r->has_ret = true;
		r->ret.keep_last = (uint32_t)json_integer_value(json_object_get(rt, "keep_last"));
		r->ret.keep_best = (uint32_t)json_integer_value(json_object_get(rt, "keep_best"));
		r->ret.max_age_days =
			(uint32_t)json_integer_value(json_object_get(rt, "max_age_days"));
	}
	json_decref(doc);
}

struct load {
	struct ckpt_store *s;
	struct run *r;
};

static int load_manifest(void *arg, const char *name, const char *txt, size_t len)
{
	struct load *l = arg;
	struct ckpt_store *s = l->s;
	json_t *doc = txt ? json_loadb(txt, len, 0, NULL) : NULL;
	struct version *v;
	int ret;

	ret = doc ? manifest_load(s, l->r, name, doc, &v) : -EINVAL;
	json_decref(doc);
	if (ret < 0)
		return store_err(s, ret,
				 "the manifest of version %s/%s in store %s is damaged: move it "
				 "away and run ckpt verify",
				 l->r->name, name, s->be->where);
	if (v->seq >= s->next_seq)
		s->next_seq = v->seq + 1;
	run_add_version(l->r, v);
	return 0;
}

/* The version of an open marker that has no manifest: on a shared store,
 * OPEN while a live mount made it or writes into it (every mount writes
 * into one open version, shared.c); else INCOMPLETE (open when its
 * mount went away). */
static struct version *marker_version(struct ckpt_store *s, struct run *r, const char *name,
				      json_t *doc)
{
	bool open = s->be->shared && s->be->ops->part_put && doc &&
		    shared_marker_alive(s, r->name, name, doc);
	struct version *v = version_new(r, name, open ? CKPT_V_OPEN : CKPT_V_INCOMPLETE);

	if (!v)
		return NULL;
	v->shared = open;
	if (doc && json_is_string(json_object_get(doc, "mount")))
		snprintf(v->creator, sizeof(v->creator), "%s",
			 json_string_value(json_object_get(doc, "mount")));
	if (doc) {
		v->id = strtoull(json_string_value(json_object_get(doc, "id")) ?: "0", NULL, 16);
		v->created_ns = json_integer_value(json_object_get(doc, "created_ns"));
	}
	return v;
}

/* An open marker: committed (same id) or shadowed -> remove it (1); else
 * the version was open when the store was last closed: INCOMPLETE (on a
 * shared store: OPEN while other mounts write into it). */
static int load_marker(void *arg, const char *name, const char *txt, size_t len)
{
	struct load *l = arg;
	struct run *r = l->r;
	json_t *doc = txt ? json_loadb(txt, len, 0, NULL) : NULL;
	struct version *v;
	uint64_t id;
	bool done = false;

	id = doc ? strtoull(json_string_value(json_object_get(doc, "id")) ?: "0", NULL, 16) : 0;
	for (size_t i = 0; i < r->nv; i++)
		if (r->v[i]->id == id && id)
			done = true;
	if (done || version_find(r, name)) {
		json_decref(doc);
		return 1;
	}
	v = marker_version(l->s, r, name, doc);
	json_decref(doc);
	if (!v)
		return -ENOMEM;
	run_add_version(r, v);
	if (v->shared)
		shared_refresh(l->s, v);
	return 0;
}

static int load_run(void *arg, const char *name)
{
	struct ckpt_store *s = arg;
	struct load l = {.s = s};
	struct run *r = calloc(1, sizeof(*r));
	size_t len;
	char *txt;
	int ret;

	if (!r)
		return -ENOMEM;
	snprintf(r->name, sizeof(r->name), "%s", name);
	if (SB(s->be, run_conf_get, name, &txt, &len) == 0) {
		run_conf_parse(r, txt, len);
		free(txt);
	}
	ret = run_add(s, r);
	if (ret < 0) {
		free(r);
		return ret;
	}
	l.r = r;
	ret = SB(s->be, manifest_list, name, load_manifest, &l);
	if (ret == 0)
		ret = SB(s->be, marker_list, name, load_marker, &l);
	return ret;
}

int run_load_all(struct ckpt_store *s)
{
	return SB(s->be, run_list, load_run, s);
}

int version_persist(struct ckpt_store *s, struct version *v)
{
	size_t len;
	char *txt;
	int ret;

	if (v->state == CKPT_V_OPEN || v->state == CKPT_V_INCOMPLETE)
		return 0;
	txt = manifest_text(s, v, &len);
	if (!txt)
		return -ENOMEM;
	ret = SB(s->be, manifest_put, v->run->name, v->name, txt, len);
	free(txt);
	return ret;
}

int version_mark_corrupt(struct ckpt_store *s, struct version *v)
{
	int ret;

	if (v->state != CKPT_V_COMMITTED)
		return 0;
	v->state = CKPT_V_CORRUPT;
	ret = version_persist(s, v);
	if (ret < 0)
		store_log("cannot record version %s/%s as corrupt in its manifest: %s",
			  v->run->name, v->name, strerror(-ret));
	return ret;
}

int version_remove_locked(struct ckpt_store *s, struct version *v)
{
	int ret;

	if (v->state == CKPT_V_OPEN || v->state == CKPT_V_INCOMPLETE)
		ret = SB(s->be, marker_remove, v->run->name, v->name, true);
	else
		ret = SB(s->be, manifest_remove, v->run->name, v->name);
	if (ret < 0 && ret != -ENOENT)
		return ret;
	run_del_version(v->run, v);
	v->dead = true;
	version_unref(s, v);
	return 0;
}

bool version_metric(const struct run *r, const struct version *v, double *out)
{
	char key[CKPT_NAME_MAX + 8];
	const char *colon = strrchr(r->metric, ':'), *val;
	char *end;
	double d;

	if (!r->metric[0] || !colon)
		return false;
	snprintf(key, sizeof(key), "%.*s", (int)(colon - r->metric), r->metric);
	val = json_string_value(json_object_get(v->meta, key));
	if (!val || !*val)
		return false;
	d = strtod(val, &end);
	while (*end == ' ' || *end == '\n')
		end++;
	if (*end || isnan(d))
		return false;
	*out = d;
	return true;
}

struct version *version_pick(struct run *r, bool best)
{
	struct version *pickv = NULL;
	bool max = strstr(r->metric, ":max") != NULL;
	double pm = 0;

	for (size_t i = 0; i < r->nv; i++) {
		struct version *v = r->v[i];
		double m;

		if (v->state != CKPT_V_COMMITTED)
			continue;
		if (!best) {
			if (!pickv || v->seq > pickv->seq)
				pickv = v;
			continue;
		}
		if (!version_metric(r, v, &m))
			continue;
		if (!pickv || (max ? m > pm : m < pm) || (m == pm && v->seq > pickv->seq)) {
			pickv = v;
			pm = m;
		}
	}
	return pickv;
}

/* ---- what other hosts changed (shared backends) ---- */

struct seen {
	char **names;
	size_t n, cap;
};

static int seen_add(struct seen *l, const char *name)
{
	if (l->n == l->cap) {
		size_t cap = l->cap ? 2 * l->cap : 16;
		char **v = realloc(l->names, cap * sizeof(*v));

		if (!v)
			return -ENOMEM;
		l->names = v;
		l->cap = cap;
	}
	l->names[l->n] = strdup(name);
	if (!l->names[l->n])
		return -ENOMEM;
	l->n++;
	return 0;
}

static bool seen_has(const struct seen *l, const char *name)
{
	for (size_t i = 0; i < l->n; i++)
		if (!strcmp(l->names[i], name))
			return true;
	return false;
}

static void seen_free(struct seen *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->names[i]);
	free(l->names);
}

struct merge {
	struct ckpt_store *s;
	struct run *r;
	struct seen man, mark;
	refresh_note_fn note;
	void *arg;
};

/* A published manifest: new here, replacing another host's open version
 * shown as incomplete, or a state another host changed (corrupt, retired,
 * pinned). */
static int merge_manifest(void *arg, const char *name, const char *txt, size_t len)
{
	struct merge *m = arg;
	struct ckpt_store *s = m->s;
	struct version *v = version_find(m->r, name), *nv;
	json_t *doc;
	int ret;

	if (seen_add(&m->man, name) < 0)
		return -ENOMEM;
	if (v && v->busy)
		return 0; /* this host's own */
	if (v && v->state == CKPT_V_OPEN && !v->shared)
		return 0;
	doc = txt ? json_loadb(txt, len, 0, NULL) : NULL;
	if (!doc)
		return 0;
	if (v && v->state != CKPT_V_INCOMPLETE && v->state != CKPT_V_OPEN) {
		const char *st = json_string_value(json_object_get(doc, "state")) ?: "";
		json_t *pin = json_object_get(doc, "pinned");

		for (int k = CKPT_V_COMMITTED; k <= CKPT_V_RETIRED; k++)
			if (!strcmp(st, ckpt_vstate_name((enum ckpt_vstate)k)) &&
			    v->state != (enum ckpt_vstate)k) {
				v->state = (enum ckpt_vstate)k;
				m->note(m->arg, m->r->name, name);
			}
		if (json_is_boolean(pin))
			v->pinned = json_is_true(pin);
		json_decref(doc);
		return 0;
	}
	ret = manifest_load(s, m->r, name, doc, &nv);
	json_decref(doc);
	if (ret < 0) {
		store_log("the manifest of %s/%s in %s (from another host) is damaged: %s",
			  m->r->name, name, s->be->where, strerror(-ret));
		return 0;
	}
	if (v) { /* an open version (another host's or shared), now committed */
		run_del_version(m->r, v);
		v->dead = true;
		version_unref(s, v);
	}
	if (nv->seq >= s->next_seq)
		s->next_seq = nv->seq + 1;
	run_add_version(m->r, nv);
	m->note(m->arg, m->r->name, name);
	return 0;
}

/* An open marker: another host's open version, which this one writes
 * into too while a live mount does (shared.c), else incomplete. A known
 * shared open version takes the other hosts' parts. */
static int merge_marker(void *arg, const char *name, const char *txt, size_t len)
{
	struct merge *m = arg;
	struct version *v;
	json_t *doc;

	if (seen_add(&m->mark, name) < 0)
		return -ENOMEM;
	v = version_find(m->r, name);
	if (v && v->shared && v->state == CKPT_V_OPEN && !v->busy) {
		shared_refresh(m->s, v); /* no note: see run_refresh */
		/* nobody writes into it any more (every mount that made it or
		 * has a part went away, and this one has none): incomplete */
		doc = v->mine || v->writers ? NULL : txt ? json_loadb(txt, len, 0, NULL) : NULL;
		if (doc && !shared_marker_alive(m->s, m->r->name, name, doc)) {
			v->state = CKPT_V_INCOMPLETE;
			v->shared = false;
			m->note(m->arg, m->r->name, name);
		}
		json_decref(doc);
		return 0;
	}
	if (v || seen_has(&m->man, name))
		return 0;
	doc = txt ? json_loadb(txt, len, 0, NULL) : NULL;
	v = marker_version(m->s, m->r, name, doc);
	json_decref(doc);
	if (!v)
		return -ENOMEM;
	run_add_version(m->r, v);
	if (v->shared)
		shared_refresh(m->s, v);
	m->note(m->arg, m->r->name, name);
	return 0;
}

static int refresh_one(struct ckpt_store *s, struct run *r, refresh_note_fn note, void *arg)
{
	struct merge m = {.s = s, .r = r, .note = note, .arg = arg};
	size_t len;
	char *txt;
	int ret;

	if (SB(s->be, run_conf_get, r->name, &txt, &len) == 0) {
		run_conf_parse(r, txt, len);
		free(txt);
	}
	ret = SB(s->be, manifest_list, r->name, merge_manifest, &m);
	if (ret == 0)
		ret = SB(s->be, marker_list, r->name, merge_marker, &m);
	if (ret < 0)
		goto out;
	/* gone from the backend: deleted (or retired away) by another host */
	for (size_t i = r->nv; i-- > 0;) {
		struct version *v = r->v[i];
		bool gone = v->state == CKPT_V_INCOMPLETE
				    ? !seen_has(&m.mark, v->name) && !seen_has(&m.man, v->name)
				    : !seen_has(&m.man, v->name);

		/* a shared open version whose marker went: another host
		 * committed it (under this or another name) or removed it */
		if (v->state == CKPT_V_OPEN && v->shared && !v->busy)
			gone = !seen_has(&m.mark, v->name);
		else if (v->state == CKPT_V_OPEN)
			continue;
		if (v->busy || !gone)
			continue;
		note(arg, r->name, v->name);
		run_del_version(r, v);
		v->dead = true;
		version_unref(s, v);
	}
	note(arg, r->name, NULL);
out:
	seen_free(&m.man);
	seen_free(&m.mark);
	return ret;
}

static int list_run(void *arg, const char *name)
{
	return seen_add(arg, name);
}

int run_refresh(struct ckpt_store *s, const char *run, refresh_note_fn note, void *arg)
{
	struct seen names = {0};
	struct run *r;
	int ret = 0;

	if (run && strchr(run, '/')) { /* RUN/VERSION: the parts of an open version */
		char rn[CKPT_NAME_MAX + 1];
		const char *slash = strchr(run, '/');
		struct version *v;

		snprintf(rn, sizeof(rn), "%.*s", (int)(slash - run), run);
		r = run_find(s, rn);
		v = r ? version_find(r, slash + 1) : NULL;
		/* no note: names and attributes in open versions are not
		 * cached by the kernel (ckptfs gives them no timeout) */
		if (v && v->shared && v->state == CKPT_V_OPEN && !v->busy)
			return shared_refresh(s, v);
		if (r)
			return refresh_one(s, r, note, arg);
		run = rn[0] ? NULL : run;
	}
	if (run && run[0]) {
		r = run_find(s, run);
		if (r)
			return refresh_one(s, r, note, arg);
		/* a run this host has not seen yet */
	}
	ret = SB(s->be, run_list, list_run, &names);
	if (ret < 0)
		goto out;
	for (size_t i = 0; i < names.n; i++) {
		r = run_find(s, names.names[i]);
		if (!r) {
			ret = load_run(s, names.names[i]);
			if (ret < 0)
				goto out;
			note(arg, names.names[i], NULL);
			note(arg, "", NULL);
		} else if (!run) {
			refresh_one(s, r, note, arg);
		}
	}
	for (size_t i = s->nruns; i-- > 0;) {
		r = s->runs[i];
		bool busy = false;

		if (seen_has(&names, r->name))
			continue;
		for (size_t j = 0; j < r->nv; j++)
			if (r->v[j]->state == CKPT_V_OPEN || r->v[j]->busy)
				busy = true;
		if (busy)
			continue;
		note(arg, r->name, NULL);
		note(arg, "", NULL);
		run_unlink(s, r);
		run_free(s, r);
	}
out:
	seen_free(&names);
	return ret;
}
