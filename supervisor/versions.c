// SPDX-License-Identifier: MIT
/*
 * versions.c - the checkpoint versions of a run dir, as ckptfs shows them
 * (xattrs user.ckpt.state/seq/committed/meta.*, verification by reading
 * user.ckpt.verify, pinning by user.ckpt.pinned) or, on a plain directory
 * without those xattrs, by convention: a directory not ending in .tmp is a
 * version, complete when its trainer_state.json holds a JSON object.
 */
#include "ckptd_i.h"

#include "ckptfs/hmap.h"

#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

static int get_x(const char *path, const char *name, char *buf, size_t len)
{
	ssize_t n = getxattr(path, name, buf, len - 1);

	if (n < 0)
		return -errno;
	buf[n] = '\0';
	return 0;
}

static double parse_iso(const char *s)
{
	int64_t ns;

	return ckpt_iso_parse(s, &ns) == 0 ? (double)ns / 1e9 : 0;
}

/* trainer_state.json of a plain version: step, epoch, val_loss. -EBADMSG when
 * it is not a JSON object (a torn or flipped file). */
static int read_trainer_state(const char *dir, struct version *v)
{
	char path[CKPTD_PATH_MAX + 32];
	json_t *o, *x;
	json_error_t je;

	snprintf(path, sizeof(path), "%s/trainer_state.json", dir);
	o = json_load_file(path, JSON_REJECT_DUPLICATES, &je);
	if (!o)
		return access(path, F_OK) == 0 ? -EBADMSG : -ENOENT;
	if (!json_is_object(o)) {
		json_decref(o);
		return -EBADMSG;
	}
	if ((x = json_object_get(o, "step")) && json_is_integer(x) && v->step < 0)
		v->step = json_integer_value(x);
	if ((x = json_object_get(o, "epoch")) && json_is_integer(x) && v->epoch < 0)
		v->epoch = json_integer_value(x);
	/* The version's own validation loss: "val_loss", or ckpt-train's
	 * last_val_loss when it was measured at this very step. Never
	 * best_val_loss: that is the lowest of the run so far, not this
	 * checkpoint's figure (a version showed the best beside its own). */
	x = json_object_get(o, "val_loss");
	if (!x) {
		json_t *at = json_object_get(o, "last_val_step");
		json_t *st = json_object_get(o, "step");

		if (json_is_integer(at) && json_is_integer(st) &&
		    json_integer_value(at) == json_integer_value(st))
			x = json_object_get(o, "last_val_loss");
	}
	if (x && json_is_number(x) && isnan(v->val_loss))
		v->val_loss = json_number_value(x);
	json_decref(o);
	return 0;
}

static int cmp_seq(const void *a, const void *b)
{
	const struct version *x = a, *y = b;

	if (x->seq != y->seq)
		return x->seq < y->seq ? 1 : -1; /* newest first */
	return strcmp(y->name, x->name);
}

/*
 * What a plain version's trainer_state.json said, per operation, while the
 * version dir and that file are the ones it was read from (their dev, ino,
 * mtime, ctime; the file's size): the stats, the poller and every answer
 * that shows versions list a running operation's run dir again and again,
 * and parsing each version's JSON was most of ckptd's time. Neither is kept
 * when changed in the last 2 s (file times come from a coarse clock: a
 * change in the same tick would look like none). Not for ckptfs versions
 * (the xattrs are read every time) nor checkpoint selection (uncached).
 */
struct vc_entry {
	char name[256];
	struct version_stamp at;
	char state[16];
	int64_t step, epoch, size_bytes;
	double val_loss;
};

static bool vc_match(const void *elem, const void *key)
{
	return !strcmp(((const struct vc_entry *)elem)->name, key);
}

struct ckpt_hmap *versions_cache_new(void)
{
	struct ckpt_hmap *m = calloc(1, sizeof(*m));

	if (m)
		ckpt_hmap_init(m, sizeof(struct vc_entry));
	return m;
}

/* Forget every version (the operation ended, or the cache outgrew its run). */
void versions_cache_clear(struct ckpt_hmap *m)
{
	if (!m)
		return;
	ckpt_hmap_free(m);
	ckpt_hmap_init(m, sizeof(struct vc_entry));
}

void versions_cache_free(struct ckpt_hmap *m)
{
	if (m)
		ckpt_hmap_free(m);
	free(m);
}

/* The validators of a version dir `st` and its trainer_state.json now. */
static void vc_stat(const char *dir, const struct stat *st, struct version_stamp *e)
{
	char path[CKPTD_PATH_MAX + 32];
	struct stat ts;

	e->dev = st->st_dev;
	e->ino = st->st_ino;
	e->mtime = ts_ns(&st->st_mtim);
	e->ctime = ts_ns(&st->st_ctim);
	snprintf(path, sizeof(path), "%s/trainer_state.json", dir);
	if (stat(path, &ts) == 0) {
		e->ts_ino = ts.st_ino;
		e->ts_size = ts.st_size;
		e->ts_mtime = ts_ns(&ts.st_mtim);
		e->ts_ctime = ts_ns(&ts.st_ctim);
	} else {
		e->ts_ino = 0;
		e->ts_size = e->ts_mtime = e->ts_ctime = -1;
	}
}

static bool vc_same(const struct version_stamp *a, const struct version_stamp *b)
{
	return a->dev == b->dev && a->ino == b->ino && a->mtime == b->mtime &&
	       a->ctime == b->ctime && a->ts_ino == b->ts_ino && a->ts_size == b->ts_size &&
	       a->ts_mtime == b->ts_mtime && a->ts_ctime == b->ts_ctime;
}

/* Changed too recently for its file times to tell the next change from it
 * (RACY_NS): what was read now is not kept. */
static bool vc_racy(const struct version_stamp *e)
{
	struct timespec t;
	int64_t old;

	clock_gettime(CLOCK_REALTIME, &t);
	old = ts_ns(&t) - RACY_NS;
	return e->mtime >= old || e->ctime >= old || e->ts_mtime >= old || e->ts_ctime >= old;
}

/* A plain version's state from its trainer_state.json. */
static void plain_read(struct version *v)
{
	int r;

	g.n_version_reads++;
	r = read_trainer_state(v->path, v);
	snprintf(v->state, sizeof(v->state), "%s",
		 r == 0		 ? "committed"
		 : r == -EBADMSG ? "corrupt"
				 : "incomplete");
}

/* plain_read(), or what `cache` kept of it while the files are unchanged. */
static void plain_cached(struct version *v, const struct stat *st, struct ckpt_hmap *cache)
{
	uint64_t h = ckpt_hash_str(v->name);
	struct vc_entry *e = ckpt_hmap_find(cache, h, vc_match, v->name);
	struct version_stamp now;

	vc_stat(v->path, st, &now);
	if (e && !vc_same(&e->at, &now))
		g.n_version_changes++; /* a settled version rewritten: run_summary() */
	if (e && vc_same(&e->at, &now)) {
		snprintf(v->state, sizeof(v->state), "%s", e->state);
		v->step = e->step;
		v->epoch = e->epoch;
		v->val_loss = e->val_loss;
		v->size_bytes = e->size_bytes;
		return;
	}
	plain_read(v);
	if (e)
		ckpt_hmap_del(cache, e);
	if (vc_racy(&now))
		return;
	e = ckpt_hmap_add(cache, h);
	if (!e)
		return;
	e->at = now;
	snprintf(e->name, sizeof(e->name), "%s", v->name);
	snprintf(e->state, sizeof(e->state), "%s", v->state);
	e->step = v->step;
	e->epoch = v->epoch;
	e->val_loss = v->val_loss;
	e->size_bytes = -1;
}

/* One entry of a run dir: 0 and `v` filled when RUN_DIR/NAME is a version
 * (a directory, not latest/best/hidden), else -ENOENT. `st` gets the
 * directory's lstat. With `cache`, a plain version unchanged since it was
 * read comes from there, its size (v->size_bytes) too once counted. */
static int version_entry(const char *run_dir, const char *name, struct version *v, struct stat *st,
			 struct ckpt_hmap *cache)
{
	size_t len = strlen(name);
	char buf[256];

	if (name[0] == '.' || !strcmp(name, "latest") || !strcmp(name, "best") ||
	    len >= sizeof(v->name))
		return -ENOENT;
	memset(v, 0, sizeof(*v));
	snprintf(v->name, sizeof(v->name), "%s", name);
	if ((size_t)snprintf(v->path, sizeof(v->path), "%s/%s", run_dir, name) >= sizeof(v->path))
		return -ENOENT;
	if (lstat(v->path, st) < 0 || !S_ISDIR(st->st_mode))
		return -ENOENT;
	v->step = -1;
	v->epoch = -1;
	v->val_loss = NAN;
	v->size_bytes = -1;
	if (get_x(v->path, "user.ckpt.state", v->state, sizeof(v->state)) == 0) {
		/* ckptfs: the xattrs are the truth */
		g.n_version_reads++;
		if (get_x(v->path, "user.ckpt.seq", buf, sizeof(buf)) == 0)
			v->seq = strtoll(buf, NULL, 10);
		if (get_x(v->path, "user.ckpt.committed", buf, sizeof(buf)) == 0)
			v->committed = parse_iso(buf);
		if (get_x(v->path, "user.ckpt.meta.step", buf, sizeof(buf)) == 0)
			v->step = strtoll(buf, NULL, 10);
		if (get_x(v->path, "user.ckpt.meta.epoch", buf, sizeof(buf)) == 0)
			v->epoch = strtoll(buf, NULL, 10);
		if (get_x(v->path, "user.ckpt.meta.val_loss", buf, sizeof(buf)) == 0)
			v->val_loss = strtod(buf, NULL);
		if (!v->committed)
			v->committed = (double)st->st_mtim.tv_sec;
		if (!strcmp(v->state, "committed") && (v->step < 0 || isnan(v->val_loss)))
			read_trainer_state(v->path, v);
		v->xattrs = true;
	} else {
		if (len > 4 && !strcmp(name + len - 4, ".tmp")) {
			snprintf(v->state, sizeof(v->state), "open");
		} else if (cache) {
			plain_cached(v, st, cache);
		} else {
			plain_read(v);
		}
		v->committed = (double)st->st_mtim.tv_sec + (double)st->st_mtim.tv_nsec / 1e9;
		/* no commit sequence on a plain dir: the version dir's mtime (its
		 * last file created, just before the rename) orders commits */
		v->seq = (int64_t)st->st_mtim.tv_sec * 1000000000 + st->st_mtim.tv_nsec;
	}
	return 0;
}

int versions_list_cached(const char *run_dir, struct ckpt_hmap *cache, struct version **out,
			 size_t *n)
{
	struct version *vs = NULL;
	size_t cap = 0, cnt = 0;
	struct dirent *e;
	DIR *d;

	*out = NULL;
	*n = 0;
	d = opendir(run_dir);
	if (!d)
		return -errno;
	while ((e = readdir(d))) {
		struct version v;
		struct stat st;

		if (version_entry(run_dir, e->d_name, &v, &st, cache) < 0)
			continue;
		if (cnt == cap) {
			struct version *nv = realloc(vs, (cap ? cap * 2 : 16) * sizeof(*vs));

			if (!nv)
				break;
			vs = nv;
			cap = cap ? cap * 2 : 16;
		}
		vs[cnt++] = v;
	}
	closedir(d);
	/* versions gone (retired, deleted) leave their entries: start afresh
	 * when they outnumber the run's */
	if (cache && cache->n > 2 * cnt + 16)
		versions_cache_clear(cache);
	if (cnt)
		qsort(vs, cnt, sizeof(*vs), cmp_seq);
	*out = vs;
	*n = cnt;
	return 0;
}

int versions_list(const char *run_dir, struct version **out, size_t *n)
{
	return versions_list_cached(run_dir, NULL, out, n);
}

/* The size of a version as du_bytes() counts it, kept with the version in
 * `cache` (for as long as version_entry() finds it unchanged). */
int64_t version_size(struct ckpt_hmap *cache, const struct version *v)
{
	struct vc_entry *e;
	int64_t size;

	if (v->size_bytes >= 0)
		return v->size_bytes;
	size = du_bytes(v->path);
	e = cache && !v->xattrs ? ckpt_hmap_find(cache, ckpt_hash_str(v->name), vc_match, v->name)
				: NULL;
	if (e)
		e->size_bytes = size;
	return size;
}

/* The one version RUN_DIR/NAME that `path` names, as versions_list() would
 * list it, without listing the others (an operation's checkpoint in every
 * answer about it would otherwise read every version of its run). -ENOENT
 * when `path` is not a version of run_dir. */
int version_get(const char *run_dir, struct ckpt_hmap *cache, const char *path, struct version *v)
{
	size_t k = strlen(run_dir);
	struct stat st;

	if (strncmp(path, run_dir, k) || path[k] != '/' || !path[k + 1] ||
	    strchr(path + k + 1, '/'))
		return -ENOENT;
	return version_entry(run_dir, path + k + 1, v, &st, cache);
}

/* version_get() of a finished operation's checkpoint, which every list of
 * operations shows (reading its trainer_state.json each time was most of a
 * list's time): what a plain version said is kept in `m` while the version
 * dir and that file are unchanged (as in the version cache), so an answer
 * costs their two stats. */
int version_get_memo(const char *run_dir, struct version_memo *m, const char *path,
		     struct version *v)
{
	uint64_t h = ckpt_hash_str(path);
	struct version_stamp now;
	const char *name = strrchr(path, '/');
	struct stat st;
	bool have;
	int r;

	have = lstat(path, &st) == 0 && S_ISDIR(st.st_mode);
	if (have)
		vc_stat(path, &st, &now);
	if (have && m->path_hash == h && vc_same(&m->at, &now) && name) {
		memset(v, 0, sizeof(*v));
		snprintf(v->name, sizeof(v->name), "%s", name + 1);
		snprintf(v->path, sizeof(v->path), "%s", path);
		snprintf(v->state, sizeof(v->state), "%s", m->state);
		v->seq = m->seq;
		v->step = m->step;
		v->epoch = m->epoch;
		v->val_loss = m->val_loss;
		v->committed = m->committed;
		v->size_bytes = -1;
		return 0;
	}
	m->path_hash = 0;
	r = version_get(run_dir, NULL, path, v);
	if (r || !have || v->xattrs || vc_racy(&now))
		return r;
	m->path_hash = h;
	m->at = now;
	snprintf(m->state, sizeof(m->state), "%s", v->state);
	m->seq = v->seq;
	m->step = v->step;
	m->epoch = v->epoch;
	m->val_loss = v->val_loss;
	m->committed = v->committed;
	return 0;
}

/* The training step a version holds (its ckptfs metadata, else its
 * trainer_state.json), or -1. Events name it, not the step the trainer had
 * reached when it reported the commit: an async save commits later. */
int64_t version_step(const char *path)
{
	struct version v = {.step = -1, .epoch = -1, .val_loss = NAN};
	char buf[64];

	if (!path || !path[0])
		return -1;
	if (get_x(path, "user.ckpt.meta.step", buf, sizeof(buf)) == 0)
		return strtoll(buf, NULL, 10);
	if (read_trainer_state(path, &v) < 0)
		return -1;
	return v.step;
}

/* ckptfs verifies every chunk when user.ckpt.verify is read (EIO when a
 * hash does not match); a plain dir can only check its state file. */
int version_verify(const struct version *v, char *why, size_t len)
{
	char buf[64];
	int r;

	r = get_x(v->path, "user.ckpt.verify", buf, sizeof(buf));
	if (r == 0) {
		if (!strncmp(buf, "ok", 2))
			return 0;
		snprintf(why, len, "verification of %s says '%s'", v->path, buf);
		return -EIO;
	}
	if (r == -EIO) {
		snprintf(why, len, "verification of %s failed: a hash does not match (EIO)",
			 v->path);
		return -EIO;
	}
	if (r != -ENOTSUP && r != -ENODATA) {
		snprintf(why, len, "cannot verify %s: %s", v->path, strerror(-r));
		return r;
	}
	{
		struct version tmp = *v;

		tmp.step = -1;
		r = read_trainer_state(v->path, &tmp);
		if (r) {
			snprintf(why, len, "%s/trainer_state.json is %s", v->path,
				 r == -EBADMSG ? "not valid JSON (corrupt)" : "missing");
			return r == -EBADMSG ? -EIO : -ENOENT;
		}
	}
	return 0;
}

void version_pin(const char *path, bool pin)
{
	if (!path || !path[0])
		return;
	if (setxattr(path, "user.ckpt.pinned", pin ? "1" : "0", 1, 0) < 0 && errno != ENOTSUP &&
	    errno != ENOENT && errno != ENODATA)
		ckptd_log("cannot %s %s: %s", pin ? "pin" : "unpin", path, strerror(errno));
}

bool is_mountpoint(const char *path)
{
	char *buf, *line, *save = NULL, real[CKPTD_PATH_MAX];
	bool found = false;

	if (!realpath(path, real))
		return false;
	buf = read_file("/proc/self/mountinfo", 1 << 20, NULL);
	if (!buf)
		return false;
	for (line = strtok_r(buf, "\n", &save); line && !found;
	     line = strtok_r(NULL, "\n", &save)) {
		char mp[CKPTD_PATH_MAX];

		/* id parent major:minor root mountpoint ... */
		if (sscanf(line, "%*s %*s %*s %*s %4095s", mp) == 1 && !strcmp(mp, real))
			found = true;
	}
	free(buf);
	return found;
}
