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

/*
 * A store shared with other hosts: first load every manifest they
 * published (their chunks are referenced then) and every live open
 * version's parts; an incomplete version (no live mount made it or writes
 * into it: their leases ran out) is removed once that still holds now, or
 * once older than the grace period (a store without leases). Chunks stay
 * for the grace period (the backend's chunk_remove), so that what an open
 * version on another host has written or deduplicated against stays.
 */
int ckpt_store_gc(struct ckpt_store *s, struct ckpt_gc_result *res)
{
	struct ckpt_gc_result r = {0};
	int64_t young = now_ns() - s->be->gc_grace_ns;

	pthread_mutex_lock(&s->lock);
	if (s->be->shared && run_refresh(s, NULL, no_note, NULL) < 0) {
		pthread_mutex_unlock(&s->lock);
		return store_err(s, -EIO, "gc: cannot read the store %s: nothing removed",
				 s->be->where);
	}
	for (size_t i = 0; i < s->nruns; i++) {
		struct run *run = s->runs[i];

		for (size_t j = 0; j < run->nv;) {
			struct version *v = run->v[j];

			if (v->state == CKPT_V_INCOMPLETE &&
			    (!s->be->shared || v->created_ns < young ||
			     (s->be->ops->mount_alive && !shared_version_alive(s, v))) &&
			    version_remove_locked(s, v) == 0) {
				r.versions_removed++;
				continue;
			}
			j++;
		}
	}
	pthread_mutex_unlock(&s->lock);
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
