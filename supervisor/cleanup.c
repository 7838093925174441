// SPDX-License-Identifier: MIT
/*
 * cleanup.c - the checkpoint side of the API: stats over every run dir, an
 * operation's checkpoints, and cleanup (versions older than max_age_days of
 * operations that are not running, and orphan run dirs that no operation
 * owns). Never removes the newest good version of a resumable operation.
 */
#include "ckptd_i.h"

#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/*
 * One run dir's committed versions, bytes and oldest commit. A finished
 * operation's run dir changes only when versions come or go (a commit is a
 * rename into it, a retirement or delete an unlink from it), which changes
 * the directory's own mtime and ctime: its summary is kept while the
 * directory's stat is the one it was counted at, so the stats over a long
 * history cost a stat per finished run instead of reading every version's
 * files. Counted afresh: a run with ckptfs versions (their state is an
 * xattr that changes without the directory: retired, corrupt), a directory
 * changed less than RACY_NS ago, and a live operation's after at most
 * LIVE_S: its trainer may write into a version dir in place, which the run
 * dir's stat does not show (the stats and /metrics counted every version of
 * every running operation on each answer, 3 syscalls each: most of ckptd's
 * syscalls under the soak's load). Sooner when a commit event of it was
 * emitted, or a listing through a version cache (the poller, its
 * checkpoints) found a cached version changed in place.
 */
#define LIVE_S 1.0
const struct run_summary *run_summary(struct op *op)
{
	struct run_summary *s = &op->sum;
	struct ckpt_hmap *cache;
	struct version *vs = NULL;
	struct timespec now;
	struct stat st;
	bool plain = true;
	size_t n = 0;

	if (stat(op->run_dir, &st) < 0) {
		memset(s, 0, sizeof(*s));
		return s;
	}
	if (s->dev == st.st_dev && s->ino == st.st_ino && s->mtime_ns == ts_ns(&st.st_mtim) &&
	    s->ctime_ns == ts_ns(&st.st_ctim) &&
	    (op_live(op) ? now_s() < s->live_until && s->changes == g.n_version_changes : s->valid))
		return s;
	clock_gettime(CLOCK_REALTIME, &now);
	memset(s, 0, sizeof(*s));
	/* a finished operation's count is kept in `s` instead: its version
	 * cache stays empty (finish() cleared it; a long history held one per
	 * operation, several KiB each) */
	cache = op_live(op) ? op->vcache : NULL;
	if (versions_list_cached(op->run_dir, cache, &vs, &n) == 0) {
		for (size_t i = 0; i < n; i++) {
			plain &= !vs[i].xattrs;
			if (strcmp(vs[i].state, "committed"))
				continue;
			s->committed++;
			s->size_bytes += version_size(cache, &vs[i]);
			if (!s->oldest || vs[i].committed < s->oldest)
				s->oldest = vs[i].committed;
		}
	}
	free(vs);
	s->dev = st.st_dev;
	s->ino = st.st_ino;
	s->mtime_ns = ts_ns(&st.st_mtim);
	s->ctime_ns = ts_ns(&st.st_ctim);
	s->valid = plain && !op_live(op) && s->mtime_ns < ts_ns(&now) - RACY_NS &&
		   s->ctime_ns < ts_ns(&now) - RACY_NS;
	s->live_until = plain && op_live(op) ? now_s() + LIVE_S : 0;
	s->changes = g.n_version_changes;
	return s;
}

/* The committed versions of every operation's run dir. */
void runs_summary(int64_t *committed, int64_t *size_bytes, double *oldest)
{
	*committed = 0;
	*size_bytes = 0;
	*oldest = 0;
	for (struct op *op = g.ops; op; op = op->next) {
		const struct run_summary *s = run_summary(op);

		*committed += s->committed;
		*size_bytes += s->size_bytes;
		if (s->oldest && (!*oldest || s->oldest < *oldest))
			*oldest = s->oldest;
	}
}

json_t *checkpoints_stats(void)
{
	int64_t total, size, stored = -1, logical, stored_all;
	double oldest;
	char path[CKPTD_PATH_MAX + 16], ts[40];
	json_t *o, *st;

	runs_summary(&total, &size, &oldest);
	snprintf(path, sizeof(path), "%s/.stats", g.mount);
	st = json_load_file(path, 0, NULL);
	if (st && json_is_integer(json_object_get(st, "stored_bytes")))
		stored = json_integer_value(json_object_get(st, "stored_bytes"));
	json_decref(st);
	store_bytes(&logical, &stored_all, size);
	o = json_pack("{sb sI sI sI sI sI sf}", "success", 1, "total_checkpoints",
		      (json_int_t)total, "total_size_bytes", (json_int_t)size, "stored_bytes",
		      (json_int_t)(stored >= 0 ? stored : size), "logical_bytes",
		      (json_int_t)logical, "store_stored_bytes", (json_int_t)stored_all,
		      "dedup_ratio", stored_all > 0 ? (double)logical / (double)stored_all : 1.0);
	if (oldest) {
		ckpt_iso_format(ts, sizeof(ts), ckpt_iso_ns(oldest), CKPT_ISO_S);
		json_object_set_new(o, "oldest_checkpoint", json_string(ts));
	} else {
		json_object_set_new(o, "oldest_checkpoint", json_null());
	}
	return o;
}

static const char *base_name(const char *p)
{
	const char *s = strrchr(p, '/');

	return s ? s + 1 : p;
}

json_t *checkpoints_of(struct op *op)
{
	struct version *vs = NULL;
	size_t n = 0;
	json_t *arr = json_array(), *latest = json_null(), *o;
	const char *type = op->status == OP_CANCELLED ? "cancellation"
			   : op->status == OP_FAILED  ? "failure"
						      : "periodic";
	/* a finished operation's answer keeps nothing (its history is long) */
	struct ckpt_hmap *cache = op_live(op) ? op->vcache : NULL;

	if (versions_list_cached(op->run_dir, cache, &vs, &n) == 0) {
		for (size_t i = 0; i < n; i++) {
			char t[40];
			json_t *v;

			iso_time(vs[i].committed, t, sizeof(t));
			v = json_pack("{ss ss ss ss sI}", "version", vs[i].name, "path", vs[i].path,
				      "state", vs[i].state, "committed", t, "size_bytes",
				      (json_int_t)version_size(cache, &vs[i]));
			json_object_set_new(v, "step",
					    vs[i].step >= 0 ? json_integer(vs[i].step)
							    : json_null());
			json_object_set_new(v, "epoch",
					    vs[i].epoch >= 0 ? json_integer(vs[i].epoch)
							     : json_null());
			json_object_set_new(v, "val_loss",
					    isnan(vs[i].val_loss) ? json_null()
								  : json_real(vs[i].val_loss));
			if (json_is_null(latest) && !strcmp(vs[i].state, "committed"))
				latest = json_deep_copy(v);
			json_array_append_new(arr, v);
		}
		free(vs);
	}
	o = json_pack("{ss ss ss so so}", "operation", op->id, "run_dir", op->run_dir,
		      "checkpoint_type", type, "checkpoints", arr, "latest", latest);
	{
		/* ckptfs keeps RUN/best -> VERSION by the run's metric */
		char link[CKPTD_PATH_MAX + 8], to[256];
		ssize_t k;

		snprintf(link, sizeof(link), "%s/best", op->run_dir);
		k = readlink(link, to, sizeof(to) - 1);
		if (k > 0) {
			to[k] = '\0';
			json_object_set_new(o, "best", json_string(base_name(to)));
		} else {
			json_object_set_new(o, "best", json_null());
		}
	}
	return o;
}

static bool looks_like_run(const char *name)
{
	return valid_op_id(name);
}

int cleanup_run(int64_t max_age_days, json_t **result)
{
	int64_t removed = 0, orphans = 0, freed = 0;
	double now = now_s();
	struct dirent *e;
	DIR *d;

	for (struct op *op = g.ops; op; op = op->next) {
		struct version *vs = NULL;
		size_t n = 0;
		int64_t days = max_age_days >= 0 ? max_age_days : op->spec.checkpoint.max_age_days;
		bool keep_newest = op->status == OP_CANCELLED || op->status == OP_FAILED;
		bool kept = false;

		if (op_live(op) || versions_list(op->run_dir, &vs, &n) < 0)
			continue;
		for (size_t i = 0; i < n; i++) {
			bool good = !strcmp(vs[i].state, "committed");

			if (good && keep_newest && !kept) {
				kept = true; /* the version a resume would use */
				continue;
			}
			if (vs[i].committed > now - (double)days * 86400)
				continue;
			freed += du_bytes(vs[i].path);
			if (rm_rf(vs[i].path) == 0)
				removed++;
		}
		free(vs);
		op_refresh_checkpoint(op);
	}
	d = opendir(g.mount);
	if (d) {
		while ((e = readdir(d))) {
			char path[CKPTD_PATH_MAX + 256];

			if (!looks_like_run(e->d_name) || op_find(e->d_name))
				continue;
			snprintf(path, sizeof(path), "%s/%s", g.mount, e->d_name);
			freed += du_bytes(path);
			if (rm_rf(path) == 0)
				orphans++;
		}
		closedir(d);
	}
	ckptd_log("cleanup: removed %lld checkpoints and %lld orphan run dirs", (long long)removed,
		  (long long)orphans);
	if (result)
		*result = json_pack("{sI sI sI}", "removed_checkpoints", (json_int_t)removed,
				    "removed_orphans", (json_int_t)orphans, "freed_bytes",
				    (json_int_t)freed);
	return 0;
}
