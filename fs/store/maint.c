// SPDX-License-Identifier: MIT
/*
 * maint.c - whole-store work: garbage-collect unreferenced chunks and
 * incomplete versions, statistics (verification is in verify.c).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "store_i.h"

void store_tree_bytes(struct node *n, uint64_t *bytes)
{
	for (size_t i = 0; i < n->nkids; i++) {
		if (n->kids[i]->type == CKPT_NODE_FILE)
			*bytes += n->kids[i]->f->size;
		else
			store_tree_bytes(n->kids[i], bytes);
	}
}

/* Remove the chunk files of one fan-out directory that nothing references. */
static void gc_dir(struct ckpt_store *s, const char *sub, struct ckpt_gc_result *res)
{
	int fd = openat(s->chunkfd, sub, O_RDONLY | O_DIRECTORY | O_CLOEXEC), dfd;
	struct dirent *de;
	DIR *d;

	if (fd < 0)
		return;
	dfd = dup(fd);
	d = dfd >= 0 ? fdopendir(dfd) : NULL;
	if (!d) {
		if (dfd >= 0)
			close(dfd);
		close(fd);
		return;
	}
	while ((de = readdir(d))) {
		uint8_t h[CHUNK_HASH_LEN];
		struct centry *e;
		struct stat st;

		if (chunk_unhex(de->d_name, h) < 0)
			continue;
		/* under the index lock: a writer that wants this chunk either
		 * already holds a reference (kept) or inserts it after we are done
		 * and writes it again */
		pthread_mutex_lock(&s->ilock);
		e = cindex_find(&s->ix, h);
		if (!e || (e->refs == 0 && e->state != CE_WRITING)) {
			if (fstatat(fd, de->d_name, &st, 0) == 0 &&
			    IO(s, unlinkat, fd, de->d_name, 0) == 0) {
				res->chunks_removed++;
				res->bytes_removed += (uint64_t)st.st_size;
			}
			if (e)
				cindex_remove(&s->ix, e);
		}
		pthread_mutex_unlock(&s->ilock);
	}
	closedir(d);
	close(fd);
}

int ckpt_store_gc(struct ckpt_store *s, struct ckpt_gc_result *res)
{
	struct ckpt_gc_result r = {0};

	pthread_mutex_lock(&s->lock);
	for (size_t i = 0; i < s->nruns; i++) {
		struct run *run = s->runs[i];

		for (size_t j = 0; j < run->nv;) {
			struct version *v = run->v[j];

			if (v->state == CKPT_V_INCOMPLETE && version_remove_locked(s, v) == 0) {
				r.versions_removed++;
				continue;
			}
			j++;
		}
	}
	pthread_mutex_unlock(&s->lock);
	for (int i = 0; i < 256; i++) {
		char sub[3];

		snprintf(sub, sizeof(sub), "%02x", i);
		gc_dir(s, sub, &r);
	}
	if (r.chunks_removed)
		IO(s, syncfs, s->dirfd); /* best effort: removal need not be durable */
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
			store_tree_bytes(v->root, &st->total_size_bytes);
			if (!st->oldest_checkpoint_ns || v->committed_ns < st->oldest_checkpoint_ns)
				st->oldest_checkpoint_ns = v->committed_ns;
		}
	}
	pthread_mutex_lock(&s->ilock);
	for (size_t i = 0; i < s->ix.cap; i++) {
		struct centry *e = &s->ix.slots[i];

		if (e->used && e->refs > 0 && e->state != CE_FAILED)
			st->stored_bytes += e->len;
	}
	pthread_mutex_unlock(&s->ilock);
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
