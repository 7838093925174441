// SPDX-License-Identifier: MIT
/*
 * retention.c - keep_last, keep_best and max_age_days of a run, applied
 * after each durable commit and on demand (docs/store-format.md,
 * "Retention"). Only COMMITTED versions are ever removed, and never the
 * newest, the best, a pinned one or one being committed.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "store_i.h"

static int cmp_seq_desc(const void *a, const void *b)
{
	const struct version *x = *(struct version *const *)a, *y = *(struct version *const *)b;

	return x->seq < y->seq ? 1 : x->seq > y->seq ? -1 : 0;
}

/* What cmp_metric compares by: the run and whether its metric is :max. */
struct metric_order {
	const struct run *r;
	bool max;
};

/* qsort_r(3): the order travels with the call, no globals to guard. */
static int cmp_metric(const void *a, const void *b, void *arg)
{
	const struct version *x = *(struct version *const *)a, *y = *(struct version *const *)b;
	const struct metric_order *o = arg;
	double mx = 0, my = 0;
	bool hx = version_metric(o->r, x, &mx), hy = version_metric(o->r, y, &my);

	if (hx != hy)
		return hx ? -1 : 1;
	if (mx != my)
		return (o->max ? mx > my : mx < my) ? -1 : 1;
	return cmp_seq_desc(a, b);
}

/* store lock held */
int retention_apply_run(struct ckpt_store *s, struct run *r, uint32_t max_age_override)
{
	struct ckpt_retention rt = r->has_ret ? r->ret : s->opts.retention;
	struct version **c, **bm, *newest, *bestv;
	size_t n = 0, removed = 0;
	int64_t now = now_ns();

	if (max_age_override)
		rt.max_age_days = max_age_override;
	if (!rt.keep_last && !rt.keep_best && !rt.max_age_days)
		return 0;
	c = calloc(r->nv + 1, sizeof(*c));
	bm = calloc(r->nv + 1, sizeof(*bm));
	if (!c || !bm) {
		free(c);
		free(bm);
		return -ENOMEM;
	}
	for (size_t i = 0; i < r->nv; i++)
		if (r->v[i]->state == CKPT_V_COMMITTED)
			c[n++] = r->v[i];
	qsort(c, n, sizeof(*c), cmp_seq_desc);
	memcpy(bm, c, n * sizeof(*c));
	{
		struct metric_order o = {.r = r, .max = strstr(r->metric, ":max") != NULL};

		qsort_r(bm, n, sizeof(*bm), cmp_metric, &o);
	}
	newest = version_pick(r, false);
	bestv = version_pick(r, true);
	for (size_t i = 0; i < n; i++) {
		struct version *v = c[i];
		bool keep = v == newest || v == bestv || v->pinned || v->busy, remove = false;

		if (rt.keep_last || rt.keep_best) {
			bool in = rt.keep_last && i < rt.keep_last;

			for (size_t j = 0; j < rt.keep_best && j < n && !in; j++) {
				double m;

				if (bm[j] == v && version_metric(r, v, &m))
					in = true;
			}
			remove = !in;
		}
		if (rt.max_age_days &&
		    v->committed_ns < now - (int64_t)rt.max_age_days * 86400LL * 1000000000LL)
			remove = true;
		if (remove && !keep) {
			if (version_remove_locked(s, v) == 0)
				removed++;
			else
				store_log("retention: cannot remove %s/%s", r->name, v->name);
		}
	}
	free(c);
	free(bm);
	return (int)removed;
}

int ckpt_store_apply_retention(struct ckpt_store *s, uint32_t max_age_days)
{
	int total = 0;

	pthread_mutex_lock(&s->lock);
	for (size_t i = 0; i < s->nruns; i++) {
		int ret = retention_apply_run(s, s->runs[i], max_age_days);

		if (ret > 0)
			total += ret;
	}
	pthread_mutex_unlock(&s->lock);
	return total;
}
