// SPDX-License-Identifier: MIT
/*
 * maint.c - whole-store work: garbage-collect unreferenced chunks and
 * incomplete versions, statistics (verification is in verify.c).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "store_i.h"

static void no_note(void *arg, const char *run, const char *version)
{
	(void)arg;
	(void)run;
	(void)version;
}

/* Remove the incomplete versions nobody can finish any more: on a store
 * with leases, those no live mount made or writes into (checked again now);
 * without, those older than the grace; on a store of one process, all. */
static void gc_versions(struct ckpt_store *s, struct ckpt_gc_result *r)
{
	int64_t young = now_ns() - s->be->gc_grace_ns;

	for (size_t i = 0; i < s->nruns; i++) {
		struct run *run = s->runs[i];

		for (size_t j = 0; j < run->nv;) {
			struct version *v = run->v[j];
			bool gone = !s->be->shared ||
				    (s->be->ops->mount_alive ? !shared_version_alive(s, v)
							     : v->created_ns < young);

			if (v->state == CKPT_V_INCOMPLETE && gone &&
			    version_remove_locked(s, v) == 0) {
				r->versions_removed++;
				continue;
			}
			j++;
		}
	}
}

/* The creation time of the oldest open (or kept incomplete) version. */
static int64_t oldest_open(struct ckpt_store *s, int64_t t)
{
	for (size_t i = 0; i < s->nruns; i++)
		for (size_t j = 0; j < s->runs[i]->nv; j++) {
			struct version *v = s->runs[i]->v[j];

			if ((v->state == CKPT_V_OPEN || v->state == CKPT_V_INCOMPLETE) &&
			    v->created_ns < t)
				t = v->created_ns;
		}
	return t;
}

/*
 * A store shared with other hosts (docs/store-format.md, "A RADOS
 * store", GC on a shared store). What gc knows is every published manifest
 * and every part of an open version; what it cannot know is a chunk a
 * live host wrote (or deduplicated against) for a file it has not closed
 * yet. Every such chunk was written after the version's open marker was,
 * so gc keeps every unreferenced chunk written since the oldest open
 * version was created, or since gc began, less the clock margin; older
 * ones go at once. The store is read twice, the incomplete versions
 * removed in between: a version committed while the first read went from
 * its manifests to its markers is in the second read's manifests, and one
 * committed later had its marker seen; one removed as abandoned can no
 * longer commit (the commit requires its marker).
 */
int ckpt_store_gc(struct ckpt_store *s, struct ckpt_gc_result *res)
{
	struct ckpt_gc_result r = {0};
	int64_t t0 = now_ns(), keep = t0;

	pthread_mutex_lock(&s->lock);
	for (int pass = 0; pass < (s->be->shared ? 2 : 1); pass++) {
		if (s->be->shared && run_refresh(s, NULL, no_note, NULL) < 0) {
			pthread_mutex_unlock(&s->lock);
			return store_err(s, -EIO, "gc: cannot read the store %s: nothing removed",
					 s->be->where);
		}
		if (pass == 0)
			gc_versions(s, &r);
		keep = oldest_open(s, keep);
	}
	pthread_mutex_unlock(&s->lock);
	s->be->gc_keep_ns = keep - s->be->gc_grace_ns;
	chunks_gc(&s->ck, &r.chunks_removed, &r.bytes_removed);
	if (r.chunks_removed)
		SB(s->be, chunk_sync); /* best effort: removal need not be durable */
	if (res)
		*res = r;
	return 0;
}

int ckpt_store_stats(struct ckpt_store *s, struct ckpt_store_stats *st)
{
	memset(st, 0, sizeof(*st));
	pthread_mutex_lock(&s->lock);
	st->total_runs = s->nruns;
	for (size_t i = 0; i < s->nruns; i++) {
		struct run *r = s->runs[i];

		for (size_t j = 0; j < r->nv; j++) {
			struct version *v = r->v[j];

			if (v->state != CKPT_V_COMMITTED)
				continue;
			st->total_checkpoints++;
			node_tree_bytes(v->root, &st->total_size_bytes);
			if (!st->oldest_checkpoint_ns || v->committed_ns < st->oldest_checkpoint_ns)
				st->oldest_checkpoint_ns = v->committed_ns;
		}
	}
	st->stored_bytes = chunks_stored_bytes(&s->ck);
	pthread_mutex_unlock(&s->lock);
	st->dedup_ratio =
		st->stored_bytes ? (double)st->total_size_bytes / (double)st->stored_bytes : 1.0;
	return 0;
}

int ckpt_store_stats_json(struct ckpt_store *s, char **json, size_t *len)
{
	struct ckpt_store_stats st;
	char t[64];
	json_t *o;

	ckpt_store_stats(s, &st);
	o = json_object();
	json_object_set_new(o, "total_runs", json_integer((json_int_t)st.total_runs));
	json_object_set_new(o, "total_checkpoints", json_integer((json_int_t)st.total_checkpoints));
	json_object_set_new(o, "total_size_bytes", json_integer((json_int_t)st.total_size_bytes));
	json_object_set_new(o, "stored_bytes", json_integer((json_int_t)st.stored_bytes));
	json_object_set_new(o, "dedup_ratio", json_real(st.dedup_ratio));
	if (st.oldest_checkpoint_ns) {
		ckpt_iso_format(t, sizeof(t), st.oldest_checkpoint_ns, CKPT_ISO_S);
		json_object_set_new(o, "oldest_checkpoint", json_string(t));
	} else {
		json_object_set_new(o, "oldest_checkpoint", json_null());
	}
	*json = json_dumps(o, JSON_INDENT(2));
	json_decref(o);
	if (!*json)
		return -ENOMEM;
	*len = strlen(*json);
	return 0;
}
