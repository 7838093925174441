// SPDX-License-Identifier: MIT
/*
 * run.c - runs: STORE/runs/RUN/{run.json, versions/, open/}, their metric
 * and retention, and loading every run and version when the store opens
 * (open markers without a committed manifest become INCOMPLETE versions).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "store_i.h"

/* Runs and versions are kept sorted by name: listings come out in order and
 * lookups are binary searches (a run may hold thousands of versions, and
 * every per-path call starts with a lookup). */
static const char *run_name(const void *item)
{
	return (*(struct run *const *)item)->name;
}

static size_t run_pos(struct ckpt_store *s, const char *name, bool *found)
{
	return sorted_pos(s->runs, s->nruns, run_name, name, found);
}

struct run *run_find(struct ckpt_store *s, const char *name)
{
	bool found;
	size_t i = run_pos(s, name, &found);

	return found ? s->runs[i] : NULL;
}

static int store_add_run(struct ckpt_store *s, struct run *r)
{
	return sorted_insert(&s->runs, &s->nruns, &s->rcap, run_name, r->name, r);
}

static const char *ver_name(const void *item)
{
	return (*(struct version *const *)item)->name;
}

static size_t ver_pos(struct run *r, const char *name, bool *found)
{
	return sorted_pos(r->v, r->nv, ver_name, name, found);
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
	size_t i = ver_pos(r, name, &found);

	return found ? r->v[i] : NULL;
}

void version_unref(struct ckpt_store *s, struct version *v)
{
	if (--v->refs > 0)
		return;
	node_free(s, v->root);
	json_decref(v->meta);
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
	int dfd, ret;

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
	dfd = IO(s, openat, s->runsfd, r->name, O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0);
	if (dfd < 0) {
		free(txt);
		return dfd;
	}
	ret = io_publish(s, dfd, "run.json", txt, strlen(txt));
	IO(s, close, dfd);
	free(txt);
	return ret;
}

/* Read a whole small file through the seam. */
static json_t *json_read_at(struct ckpt_store *s, int dirfd, const char *name)
{
	struct stat st;
	json_t *doc = NULL;
	char *buf;
	ssize_t n;
	int fd;

	fd = IO(s, openat, dirfd, name, O_RDONLY | O_CLOEXEC, 0);
	if (fd < 0)
		return NULL;
	if (fstat(fd, &st) < 0 || !(buf = malloc((size_t)st.st_size + 1))) {
		IO(s, close, fd);
		return NULL;
	}
	n = io_read_full(s, fd, buf, (size_t)st.st_size, 0);
	IO(s, close, fd);
	if (n >= 0)
		doc = json_loadb(buf, (size_t)n, 0, NULL);
	free(buf);
	return doc;
}

static DIR *dir_at(int dirfd, const char *name)
{
	int fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	DIR *d;

	if (fd < 0)
		return NULL;
	d = fdopendir(fd);
	if (!d)
		close(fd);
	return d;
}

static int load_versions(struct ckpt_store *s, struct run *r)
{
	char path[CKPT_NAME_MAX + 16];
	struct dirent *de;
	int vfd, ret = 0;
	DIR *d;

	snprintf(path, sizeof(path), "%s/versions", r->name);
	vfd = openat(s->runsfd, path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	d = dir_at(s->runsfd, path);
	if (vfd < 0 || !d) {
		if (vfd >= 0)
			close(vfd);
		if (d)
			closedir(d);
		return store_err(s, -EIO, "cannot read %s/runs/%s: restore it from a backup",
				 s->dir, path);
	}
	while ((de = readdir(d))) {
		struct version *v;
		json_t *doc;

		if (!strncmp(de->d_name, ".ckpt-tmp-", 10)) {
			/* a manifest whose publication a crash interrupted */
			IO(s, unlinkat, vfd, de->d_name, 0);
			continue;
		}
		if (name_check_kind(de->d_name, 2, NULL) < 0)
			continue;
		doc = json_read_at(s, vfd, de->d_name);
		ret = doc ? manifest_load(s, r, de->d_name, doc, &v) : -EINVAL;
		json_decref(doc);
		if (ret < 0) {
			store_err(s, ret,
				  "manifest %s/runs/%s/%s is damaged: move it away and run "
				  "ckpt verify",
				  s->dir, path, de->d_name);
			break;
		}
		if (v->seq >= s->next_seq)
			s->next_seq = v->seq + 1;
		run_add_version(r, v);
	}
	closedir(d);
	close(vfd);
	if (ret < 0)
		return ret;

	/* open markers: committed (same id) -> remove; else INCOMPLETE */
	snprintf(path, sizeof(path), "%s/open", r->name);
	vfd = openat(s->runsfd, path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	d = dir_at(s->runsfd, path);
	while (d && (de = readdir(d))) {
		struct version *v;
		json_t *doc;
		uint64_t id;
		bool done = false;

		if (!strncmp(de->d_name, ".ckpt-tmp-", 10)) {
			IO(s, unlinkat, vfd, de->d_name, 0);
			continue;
		}
		if (name_check_kind(de->d_name, 2, NULL) < 0)
			continue;
		doc = json_read_at(s, vfd, de->d_name);
		id = doc ? strtoull(json_string_value(json_object_get(doc, "id")) ?: "0", NULL, 16)
			 : 0;
		for (size_t i = 0; i < r->nv; i++)
			if (r->v[i]->id == id && id)
				done = true;
		if (done || version_find(r, de->d_name)) {
			IO(s, unlinkat, vfd, de->d_name, 0);
			json_decref(doc);
			continue;
		}
		v = calloc(1, sizeof(*v));
		if (!v) {
			json_decref(doc);
			ret = -ENOMEM;
			break;
		}
		snprintf(v->name, sizeof(v->name), "%s", de->d_name);
		v->state = CKPT_V_INCOMPLETE;
		v->refs = 1;
		v->id = id;
		v->created_ns = doc ? json_integer_value(json_object_get(doc, "created_ns")) : 0;
		v->meta = json_object();
		v->root = node_new("", CKPT_NODE_DIR, 0755);
		json_decref(doc);
		run_add_version(r, v);
	}
	if (d)
		closedir(d);
	if (vfd >= 0)
		close(vfd);
	return ret;
}

int run_load_all(struct ckpt_store *s)
{
	DIR *d = dir_at(s->dirfd, "runs");
	struct dirent *de;
	int ret = 0;

	if (!d)
		return store_err(s, -EIO, "cannot list %s/runs", s->dir);
	while ((de = readdir(d))) {
		struct run *r;
		json_t *doc, *rt;
		int rfd;

		if (name_check_kind(de->d_name, 1, NULL) < 0)
			continue;
		r = calloc(1, sizeof(*r));
		if (!r) {
			ret = -ENOMEM;
			break;
		}
		snprintf(r->name, sizeof(r->name), "%s", de->d_name);
		rfd = openat(s->runsfd, r->name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		doc = rfd >= 0 ? json_read_at(s, rfd, "run.json") : NULL;
		if (rfd >= 0) {
			IO(s, unlinkat, rfd, ".ckpt-tmp-run.json", 0);
			close(rfd);
		}
		if (doc) {
			snprintf(r->metric, sizeof(r->metric), "%s",
				 json_string_value(json_object_get(doc, "metric")) ?: "");
			rt = json_object_get(doc, "retention");
			if (json_is_object(rt)) {
				r->has_ret = true;
				r->ret.keep_last = (uint32_t)json_integer_value(
					json_object_get(rt, "keep_last"));
				r->ret.keep_best = (uint32_t)json_integer_value(
					json_object_get(rt, "keep_best"));
				r->ret.max_age_days = (uint32_t)json_integer_value(
					json_object_get(rt, "max_age_days"));
			}
			json_decref(doc);
		}
		ret = store_add_run(s, r);
		if (ret == 0)
			ret = load_versions(s, r);
		else
			free(r);
		if (ret < 0)
			break;
	}
	closedir(d);
	return ret;
}

/* ---- public run API ---- */

int ckpt_run_create(struct ckpt_store *s, const char *run)
{
	const char *why;
	struct run *r;
	int ret = name_check_kind(run, 1, &why), rfd = -1;

	if (ret < 0)
		return store_err(s, ret, "invalid run name: %s", why);
	pthread_mutex_lock(&s->lock);
	if (run_find(s, run)) {
		ret = store_err(s, -EEXIST, "run %s already exists", run);
		goto out;
	}
	ret = IO(s, mkdirat, s->runsfd, run, 0755);
	if (ret < 0 && ret != -EEXIST)
		goto io_fail;
	rfd = IO(s, openat, s->runsfd, run, O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0);
	if (rfd < 0) {
		ret = rfd;
		goto io_fail;
	}
	ret = IO(s, mkdirat, rfd, "versions", 0755);
	if (ret == 0 || ret == -EEXIST)
		ret = IO(s, mkdirat, rfd, "open", 0755);
	if (ret == 0 || ret == -EEXIST)
		ret = IO(s, fsync, rfd);
	if (ret == 0)
		ret = IO(s, fsync, s->runsfd);
	if (ret < 0)
		goto io_fail;
	r = calloc(1, sizeof(*r));
	if (!r) {
		ret = -ENOMEM;
		goto out;
	}
	snprintf(r->name, sizeof(r->name), "%s", run);
	ret = run_persist(s, r);
	if (ret < 0) {
		free(r);
		goto io_fail;
	}
	ret = store_add_run(s, r);
	if (ret < 0)
		free(r);
	goto out;
io_fail:
	store_err(s, ret, "cannot create run %s in %s/runs: %s", run, s->dir, strerror(-ret));
out:
	if (rfd >= 0)
		IO(s, close, rfd);
	pthread_mutex_unlock(&s->lock);
	return ret;
}

int ckpt_run_remove(struct ckpt_store *s, const char *run)
{
	static const char *parts[] = {"run.json", "versions", "open"};
	struct run *r;
	int ret = 0, rfd;

	pthread_mutex_lock(&s->lock);
	r = run_find(s, run);
	if (!r) {
		ret = store_err(s, -ENOENT, "no run %s", run);
		goto out;
	}
	if (r->nv) {
		ret = store_err(s, -ENOTEMPTY, "run %s still has versions: delete them first", run);
		goto out;
	}
	rfd = IO(s, openat, s->runsfd, run, O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0);
	if (rfd >= 0) {
		for (size_t i = 0; i < 3; i++)
			IO(s, unlinkat, rfd, parts[i], i ? AT_REMOVEDIR : 0);
		IO(s, close, rfd);
	}
	ret = IO(s, unlinkat, s->runsfd, run, AT_REMOVEDIR);
	if (ret == 0)
		ret = IO(s, fsync, s->runsfd);
	if (ret < 0) {
		store_err(s, ret, "cannot remove run %s from %s/runs: %s", run, s->dir,
			  strerror(-ret));
		goto out;
	}
	for (size_t i = 0; i < s->nruns; i++) {
		if (s->runs[i] == r) {
			memmove(s->runs + i, s->runs + i + 1,
				(s->nruns - i - 1) * sizeof(*s->runs));
			s->nruns--;
			break;
		}
	}
	run_free(s, r);
out:
	pthread_mutex_unlock(&s->lock);
	return ret;
}

int ckpt_run_exists(struct ckpt_store *s, const char *run)
{
	int ret;

	pthread_mutex_lock(&s->lock);
	ret = run_find(s, run) != NULL;
	pthread_mutex_unlock(&s->lock);
	return ret;
}

int ckpt_run_list(struct ckpt_store *s, char ***names, size_t *n)
{
	char **v;

	pthread_mutex_lock(&s->lock);
	v = calloc(s->nruns + 1, sizeof(*v));
	if (!v) {
		pthread_mutex_unlock(&s->lock);
		return -ENOMEM;
	}
	for (size_t i = 0; i < s->nruns; i++) {
		v[i] = strdup(s->runs[i]->name);
		if (!v[i]) {
			ckpt_strv_free(v, i);
			pthread_mutex_unlock(&s->lock);
			return -ENOMEM;
		}
	}
	*n = s->nruns;
	*names = v;
	pthread_mutex_unlock(&s->lock);
	return 0;
}

int ckpt_run_get_retention(struct ckpt_store *s, const char *run, struct ckpt_retention *rt)
{
	struct run *r;
	int ret = 0;

	pthread_mutex_lock(&s->lock);
	r = run_find(s, run);
	if (!r)
		ret = store_err(s, -ENOENT, "no run %s", run);
	else
		*rt = r->has_ret ? r->ret : s->opts.retention;
	pthread_mutex_unlock(&s->lock);
	return ret;
}

int ckpt_run_set_retention(struct ckpt_store *s, const char *run, const struct ckpt_retention *rt)
{
	struct ckpt_retention old;
	struct run *r;
	bool had;
	int ret = 0;

	pthread_mutex_lock(&s->lock);
	r = run_find(s, run);
	if (!r) {
		ret = store_err(s, -ENOENT, "no run %s", run);
		goto out;
	}
	old = r->ret;
	had = r->has_ret;
	r->ret = *rt;
	r->has_ret = true;
	ret = run_persist(s, r);
	if (ret < 0) {
		r->ret = old;
		r->has_ret = had;
		store_err(s, ret, "cannot save retention of run %s: %s", run, strerror(-ret));
	}
out:
	pthread_mutex_unlock(&s->lock);
	return ret;
}

int ckpt_run_get_metric(struct ckpt_store *s, const char *run, char *buf, size_t len)
{
	struct run *r;
	int ret = 0;

	pthread_mutex_lock(&s->lock);
	r = run_find(s, run);
	if (!r)
		ret = store_err(s, -ENOENT, "no run %s", run);
	else if (strlen(r->metric) >= len)
		ret = -ERANGE;
	else
		ret = snprintf(buf, len, "%s", r->metric);
	pthread_mutex_unlock(&s->lock);
	return ret;
}

int ckpt_run_set_metric(struct ckpt_store *s, const char *run, const char *metric)
{
	char old[sizeof(((struct run *)0)->metric)];
	const char *colon = strrchr(metric, ':');
	struct run *r;
	int ret = 0;

	if (metric[0] &&
	    (!colon || colon == metric || (strcmp(colon, ":min") && strcmp(colon, ":max")) ||
	     (size_t)(colon - metric) > CKPT_NAME_MAX))
		return store_err(
			s, -EINVAL,
			"invalid metric \"%s\": use KEY:min or KEY:max (e.g. val_loss:min)",
			metric);
	pthread_mutex_lock(&s->lock);
	r = run_find(s, run);
	if (!r) {
		ret = store_err(s, -ENOENT, "no run %s", run);
		goto out;
	}
	memcpy(old, r->metric, sizeof(old));
	snprintf(r->metric, sizeof(r->metric), "%s", metric);
	ret = run_persist(s, r);
	if (ret < 0) {
		memcpy(r->metric, old, sizeof(old));
		store_err(s, ret, "cannot save the metric of run %s: %s", run, strerror(-ret));
	}
out:
	pthread_mutex_unlock(&s->lock);
	return ret;
}
