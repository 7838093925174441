// SPDX-License-Identifier: MIT
/*
 * gpus.c - the GPUs of ckptd's operations: the inventory at start
 * (gpu_inv.c), who holds what, taking and giving back a set, the queue of
 * PENDING operations, and what the API shows of it all.
 *
 * An operation takes `resources.gpus` free GPUs when it leaves PENDING and
 * holds them, through every recovery, until it ends (finish() in ops.c), so
 * a waiting job never gets the GPUs of one being recovered. The set is
 * stored with the operation (column `gpus`), so a restarted ckptd knows who
 * holds what. Who holds a GPU is not kept anywhere else: it is worked out
 * from the live operations each time, so it cannot drift from them.
 */
#include "ckptd_i.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static bool live(const struct op *op)
{
	return op->status == OP_PENDING || op->status == OP_RUNNING || op->status == OP_RECOVERING;
}

void gpus_init(void)
{
	const char *lib = getenv("CKPTD_TEST_NVML_LIB"), *dir = getenv("CKPTD_TEST_PROC_GPUS");

	/* The overrides are for the tests (docs/supervisor.md): a stand-in
	 * library or a fixture dir in place of the driver's. */
	if (!g.gpu_configured)
		gpu_inv_detect(&g.gpu, lib && *lib ? lib : GPU_NVML_LIB,
			       dir && *dir ? dir : GPU_PROC_DIR);
	ckptd_log("GPUs: %s", g.gpu.note);
}

static const struct op *holder(int index)
{
	for (const struct op *op = g.ops; op; op = op->next)
		if (live(op))
			for (int i = 0; i < op->gpu_n; i++)
				if (op->gpu_ids[i] == index)
					return op;
	return NULL;
}

int gpus_free(void)
{
	int n = 0;

	for (int i = 0; i < g.gpu.n; i++)
		n += holder(g.gpu.dev[i].index) == NULL;
	return n;
}

int gpus_check(int64_t want, char *err, size_t errlen)
{
	if (want <= g.gpu.n)
		return 0;
	snprintf(err, errlen,
		 "resources.gpus: %lld GPU%s asked for, but this host has %d (%s); ask for at "
		 "most %d%s",
		 (long long)want, want == 1 ? "" : "s", g.gpu.n, g.gpu.note, g.gpu.n,
		 g.gpu.n ? "" : ", i.e. resources: {gpus: 0} to run on the CPU");
	return -EINVAL;
}

/* `op` holds the n GPUs `ids` from now on (n 0: none). */
int gpus_hold(struct op *op, const int *ids, int n)
{
	int *p = NULL;

	if (n > 0) {
		p = malloc((size_t)n * sizeof(*p));
		if (!p)
			return -ENOMEM;
		memcpy(p, ids, (size_t)n * sizeof(*p));
	}
	free(op->gpu_ids);
	op->gpu_ids = p;
	op->gpu_n = n;
	return 0;
}

/* The first free ones in inventory order. -EBUSY when too few are free. */
int gpus_take(struct op *op)
{
	int want = (int)op->spec.resources.gpus, n = 0, ids[GPU_MAX];

	if (op->gpu_n == want)
		return 0;
	gpus_hold(op, NULL, 0);
	if (want > gpus_free())
		return -EBUSY;
	for (int i = 0; i < g.gpu.n && n < want; i++)
		if (!holder(g.gpu.dev[i].index))
			ids[n++] = g.gpu.dev[i].index;
	return gpus_hold(op, ids, n) < 0 ? -EBUSY : 0;
}

void gpus_release(struct op *op)
{
	gpus_hold(op, NULL, 0);
}

/* After a restart: the sets come back from the database. Say what does not
 * add up rather than take GPUs from a trainer that is using them. */
void gpus_adopt(void)
{
	const struct op *seen[GPU_MAX] = {0};
	char set[GPU_SET_LEN];

	for (struct op *op = g.ops; op; op = op->next) {
		if (!live(op)) {
			gpus_hold(op, NULL, 0);
			continue;
		}
		for (int i = 0; i < op->gpu_n; i++) {
			int id = op->gpu_ids[i];

			if (gpu_inv_find(&g.gpu, id) < 0)
				ckptd_log("operation %s holds GPU %d, which is not in this "
					  "ckptd's inventory (%s); it keeps it until it ends",
					  op->id, id, g.gpu.note);
			if (seen[id])
				ckptd_log("GPU %d is held by both %s and %s (a database from "
					  "another host?); both keep it",
					  id, seen[id]->id, op->id);
			seen[id] = op;
		}
		if (op->gpu_n || !op->spec.resources.gpus || op->status == OP_PENDING)
			continue;
		/* live, and started by a ckptd that did not assign GPUs */
		if (gpus_take(op) == 0) {
			gpu_set_format(op->gpu_ids, op->gpu_n, set, sizeof(set));
			ckptd_log("operation %s was started before ckptd assigned GPUs; it "
				  "holds GPUs %s from now on (its next attempt runs on them)",
				  op->id, set);
			db_save_op(op);
		} else {
			ckptd_log("operation %s was started before ckptd assigned GPUs and "
				  "not enough are free to give it %lld; it runs without a set",
				  op->id, (long long)op->spec.resources.gpus);
		}
	}
}

/* Due PENDING operations in queue order: by queued_at (submission, the cron
 * time, or the resume), ties in submission order. *out is malloc'd. */
size_t gpus_queue(double now, struct op ***out)
{
	struct op **q = NULL;
	size_t n = 0, cap = 0;

	for (struct op *op = g.ops; op; op = op->next) {
		if (op->status != OP_PENDING || op->not_before > now)
			continue;
		if (n == cap) {
			struct op **nq = realloc(q, (cap = cap ? cap * 2 : 16) * sizeof(*nq));

			if (!nq)
				break;
			q = nq;
		}
		q[n++] = op;
	}
	for (size_t i = 1; i < n; i++) /* insertion sort: stable, n is small */
		for (size_t j = i; j > 0 && q[j - 1]->queued_at > q[j]->queued_at; j--) {
			struct op *t = q[j];

			q[j] = q[j - 1];
			q[j - 1] = t;
		}
	*out = q;
	return n;
}

json_t *gpus_of(const struct op *op)
{
	json_t *a = json_array();

	for (int i = 0; i < op->gpu_n; i++)
		json_array_append_new(a, json_integer(op->gpu_ids[i]));
	return a;
}

static json_t *str_or_null(const char *s)
{
	return s[0] ? json_string(s) : json_null();
}

json_t *gpus_json(void)
{
	json_t *devs = json_array(), *queue = json_array();
	struct op **q = NULL;
	size_t n;

	for (int i = 0; i < g.gpu.n; i++) {
		const struct gpu_dev *d = &g.gpu.dev[i];
		const struct op *h = holder(d->index);

		json_array_append_new(devs,
				      json_pack("{si so so so}", "index", d->index, "uuid",
						str_or_null(d->uuid), "name", str_or_null(d->name),
						"operation", h ? json_string(h->id) : json_null()));
	}
	n = gpus_queue(now_s(), &q);
	for (size_t i = 0; i < n; i++)
		if (q[i]->spec.resources.gpus > 0 && !q[i]->gpu_n)
			json_array_append_new(queue,
					      json_pack("{ss sI}", "operation", q[i]->id, "gpus",
							(json_int_t)q[i]->spec.resources.gpus));
	free(q);
	return json_pack("{ss ss si si so so}", "source", g.gpu.source, "note", g.gpu.note, "count",
			 g.gpu.n, "free", gpus_free(), "devices", devs, "queue", queue);
}
