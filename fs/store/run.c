// SPDX-License-Identifier: MIT
/*
 * run.c - the public API of runs: create, remove, list, and their metric
 * (for `best`) and retention.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store_i.h"

int ckpt_run_create(struct ckpt_store *s, const char *run)
{
	const char *why;
	struct run *r;
	int ret = name_check_kind(run, NAME_RUN, &why);

	if (ret < 0)
		return store_err(s, ret, "invalid run name: %s", why);
	pthread_mutex_lock(&s->lock);
	if (run_find(s, run)) {
		ret = store_err(s, -EEXIST, "run %s already exists", run);
		goto out;
	}
	ret = SB(s->be, run_create, run);
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
	ret = run_add(s, r);
	if (ret < 0)
		free(r);
	goto out;
io_fail:
	store_err(s, ret, "cannot create run %s in %s: %s", run, s->be->where, strerror(-ret));
out:
	pthread_mutex_unlock(&s->lock);
	return ret;
}

int ckpt_run_remove(struct ckpt_store *s, const char *run)
{
	struct run *r;
	int ret = 0;

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
	ret = SB(s->be, run_remove, run);
	if (ret < 0) {
		store_err(s, ret, "cannot remove run %s from %s: %s", run, s->be->where,
			  strerror(-ret));
		goto out;
	}
	run_unlink(s, r);
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
