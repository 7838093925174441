// SPDX-License-Identifier: MIT
/*
 * metrics.c - what the dashboard and /metrics show of a training run besides
 * the 30-second windows of db.c: every reported step (STEP, EPOCH, LOSS,
 * VAL_LOSS) of the recent history, the trainer's speed, how long checkpoint
 * saves take and how old the newest checkpoint is.
 *
 * Steps are buffered per operation and written in one transaction at most
 * once a second for all operations (and before every read), so trainers
 * reporting thousands of steps a second cost one fsync a second, not one
 * per step; a ckptd
 * killed with -9 loses at most that last second of points. Steps older than
 * the newest step minus metrics_keep_steps (default 100,000) are pruned in
 * batches of a tenth of that.
 */
#include "ckptd_i.h"

#include "ckptfs/notify.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FLUSH_S 1.0	    /* the longest a reported step waits in memory */
#define FLUSH_AT 4096	    /* ... or until this many are waiting */
#define PENDING_MAX 1000000 /* when the db keeps failing: drop the oldest beyond */
#define RATE_S 5.0	    /* steps/s is measured over at least this long */

struct op_metrics {
	struct step_point *pend;
	size_t npend, cap;
	double last_flush;
	int64_t max_step, pruned_upto;
	bool have_max, warned;
	/* steps per second: (step - rate_step) / (now - rate_t) */
	int rate_attempt;
	double rate_t, rate, save_start;
	int64_t rate_step;
	bool have_rate;
};

/* ckptd_checkpoint_commit_seconds: SAVING=1 to CHECKPOINT= of any trainer */
static const double commit_le[] = {0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300};
#define NBUCKETS (sizeof(commit_le) / sizeof(commit_le[0]))
static uint64_t commit_bucket[NBUCKETS], commit_count;
static double commit_sum;

static struct op_metrics *mx_of(struct op *op)
{
	if (!op->mx) {
		op->mx = calloc(1, sizeof(*op->mx));
		if (op->mx) {
			op->mx->pruned_upto = -1;
			op->mx->last_flush = now_s();
		}
	}
	return op->mx;
}

void metrics_free(struct op *op)
{
	if (op->mx)
		free(op->mx->pend);
	free(op->mx);
	op->mx = NULL;
}

static void commit_observe(double s)
{
	for (size_t i = 0; i < NBUCKETS; i++)
		if (s <= commit_le[i])
			commit_bucket[i]++;
	commit_count++;
	commit_sum += s;
}

static const char *nonfinite_name(double v)
{
	return isnan(v) ? "nan" : v > 0 ? "inf" : "-inf";
}

static void add_nonfinite(struct step_point *p, const char *key, double v)
{
	size_t n = strlen(p->nonfinite);

	snprintf(p->nonfinite + n, sizeof(p->nonfinite) - n, "%s%s=%s", n ? "," : "", key,
		 nonfinite_name(v));
}

/* The point of (attempt, step): the last one waiting when it is that step. */
static struct step_point *point_at(struct op_metrics *m, int attempt, int64_t step)
{
	struct step_point *p;

	if (m->npend && m->pend[m->npend - 1].attempt == attempt &&
	    m->pend[m->npend - 1].step == step)
		return &m->pend[m->npend - 1];
	if (m->npend == m->cap) {
		size_t cap = m->cap ? m->cap * 2 : 64;
		struct step_point *np = realloc(m->pend, cap * sizeof(*np));

		if (!np)
			return NULL;
		m->pend = np;
		m->cap = cap;
	}
	p = &m->pend[m->npend++];
	memset(p, 0, sizeof(*p));
	p->attempt = attempt;
	p->step = step;
	return p;
}

void metrics_report(struct op *op, const struct ckpt_report *r)
{
	const unsigned step_keys = CKPT_R_STEP | CKPT_R_EPOCH | CKPT_R_LOSS | CKPT_R_VAL_LOSS;
	struct op_metrics *m = mx_of(op);
	double now = now_s();
	struct step_point *p;

	if (!m)
		return;
	/* a save: from SAVING=1 to the CHECKPOINT= that ends it ("CHECKPOINT=...
	 * \nSAVING=0" in one datagram); SAVING=0 alone ends a load or a failed save */
	if (r->have & CKPT_R_CHECKPOINT && m->save_start > 0) {
		commit_observe(now - m->save_start);
		m->save_start = 0;
	}
	if (r->have & CKPT_R_SAVING) {
		if (r->saving && m->save_start <= 0)
			m->save_start = now;
		else if (!r->saving)
			m->save_start = 0;
	}
	if (r->have & CKPT_R_STEP) {
		if (!m->rate_t || m->rate_attempt != op->attempt || r->step < m->rate_step) {
			m->rate_attempt = op->attempt;
			m->rate_t = now;
			m->rate_step = r->step;
			m->have_rate = false;
		} else if (now - m->rate_t >= RATE_S) {
			m->rate = (double)(r->step - m->rate_step) / (now - m->rate_t);
			m->have_rate = true;
			m->rate_t = now;
			m->rate_step = r->step;
		}
	}
	/* a step needs a number: reports before the first STEP= have none */
	if (!(r->have & step_keys) || !op->have_step)
		return;
	p = point_at(m, op->attempt, op->step);
	if (!p)
		return;
	p->time = now;
	if (r->have & CKPT_R_EPOCH) {
		p->epoch = r->epoch;
		p->have_epoch = true;
	}
	if (r->have & CKPT_R_LOSS) {
		if (isfinite(r->loss)) {
			p->loss = r->loss;
			p->have_loss = true;
		} else {
			add_nonfinite(p, "loss", r->loss);
		}
	}
	if (r->have & CKPT_R_VAL_LOSS) {
		if (isfinite(r->val_loss)) {
			p->val_loss = r->val_loss;
			p->have_val_loss = true;
		} else {
			add_nonfinite(p, "val_loss", r->val_loss);
		}
	}
	if (!m->have_max || op->step > m->max_step) {
		m->max_step = op->step;
		m->have_max = true;
	}
	if (m->npend >= FLUSH_AT)
		metrics_flush(op);
}

int metrics_flush(struct op *op)
{
	struct op_metrics *m = op->mx;
	int64_t slack, upto;
	int ret;

	if (!m)
		return 0;
	m->last_flush = now_s();
	ret = db_steps_write(op->id, m->pend, m->npend);
	if (ret == 0) {
		m->npend = 0;
		m->warned = false;
	} else {
		if (!m->warned)
			ckptd_log("operation %s: cannot save %zu step metrics yet; keeping them "
				  "in memory and trying again",
				  op->id, m->npend);
		m->warned = true;
		if (m->npend > PENDING_MAX) {
			size_t drop = m->npend - PENDING_MAX;

			memmove(m->pend, m->pend + drop, PENDING_MAX * sizeof(*m->pend));
			m->npend = PENDING_MAX;
			ckptd_log("operation %s: dropped the %zu oldest unsaved step metrics",
				  op->id, drop);
		}
		return ret;
	}
	slack = g.keep_steps / 10 > 0 ? g.keep_steps / 10 : 1;
	upto = m->max_step - g.keep_steps;
	if (m->have_max && upto >= 0 && upto >= m->pruned_upto + slack) {
		if (db_steps_prune(op->id, upto) == 0)
			m->pruned_upto = upto;
	}
	return 0;
}

/* Once a FLUSH_S, in one transaction (one fsync instead of one per
 * operation and kind): every operation's waiting steps and the progress of
 * every running one that reported (op->dirty, ops.c). Its commit does not
 * wait for the disk (db_relaxed): the next event's commit syncs it, and a
 * power cut before that takes back steps and progress only. */
void metrics_tick(double now, double *next)
{
	static double due;
	bool any = false, tx, relaxed;

	if (now < due) {
		if (due < *next)
			*next = due;
		return;
	}
	due = now + FLUSH_S;
	for (struct op *op = g.ops; op && !any; op = op->next)
		any = (op->mx && op->mx->npend) || (op->dirty && op->status == OP_RUNNING);
	if (!any)
		return;
	relaxed = db_relaxed(true) == 0;
	tx = db_begin() == 0;
	for (struct op *op = g.ops; op; op = op->next) {
		if (op->dirty && op->status == OP_RUNNING) {
			op->dirty = false;
			db_save_op(op);
		}
		if (op->mx && op->mx->npend)
			metrics_flush(op);
	}
	if (tx && db_commit() < 0) {
		ckptd_log("cannot save the last second's step metrics and progress; they are "
			  "lost (the next reports save them again)");
		db_rollback();
	}
	if (relaxed)
		db_relaxed(false);
}

/* ---- the API's resolution=step answer, in columns (what uPlot draws) ---- */

struct points {
	struct step_point *p;
	size_t n, cap;
};

static int collect(void *arg, const struct step_point *p)
{
	struct points *ps = arg;

	if (ps->n == ps->cap) {
		size_t cap = ps->cap ? ps->cap * 2 : 1024;
		struct step_point *np = realloc(ps->p, cap * sizeof(*np));

		if (!np)
			return -ENOMEM;
		ps->p = np;
		ps->cap = cap;
	}
	ps->p[ps->n++] = *p;
	return 0;
}

static int point_cmp(const struct step_point *a, int attempt, int64_t step)
{
	if (a->attempt != attempt)
		return a->attempt < attempt ? -1 : 1;
	return a->step < step ? -1 : a->step > step;
}

/* A waiting step `w` into the stored ones (in report order), as
 * db_steps_write() would store it: a step already there takes the values
 * `w` has, and its time. */
static int merge_waiting(struct points *ps, const struct step_point *w)
{
	size_t lo = 0, hi = ps->n;
	struct step_point *p;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (point_cmp(&ps->p[mid], w->attempt, w->step) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo < ps->n && !point_cmp(&ps->p[lo], w->attempt, w->step)) {
		p = &ps->p[lo];
		if (w->have_epoch) {
			p->epoch = w->epoch;
			p->have_epoch = true;
		}
		if (w->have_loss) {
			p->loss = w->loss;
			p->have_loss = true;
		}
		if (w->have_val_loss) {
			p->val_loss = w->val_loss;
			p->have_val_loss = true;
		}
		if (w->nonfinite[0])
			snprintf(p->nonfinite, sizeof(p->nonfinite), "%s", w->nonfinite);
		p->time = w->time;
		return 0;
	}
	if (collect(ps, w) < 0)
		return -ENOMEM;
	memmove(&ps->p[lo + 1], &ps->p[lo], (ps->n - 1 - lo) * sizeof(*ps->p));
	ps->p[lo] = *w;
	return 0;
}

/* Integers without printf: most of a 100,000-step answer is integers. */
static void put_int(FILE *f, long long v)
{
	char buf[24], *p = buf + sizeof(buf);
	unsigned long long u = v < 0 ? 0ULL - (unsigned long long)v : (unsigned long long)v;

	do {
		*--p = (char)('0' + u % 10);
		u /= 10;
	} while (u);
	if (v < 0)
		*--p = '-';
	fwrite(p, 1, (size_t)(buf + sizeof(buf) - p), f);
}

static void put_real(FILE *f, double v, bool have)
{
	char buf[32];
	int n;

	if (!have) {
		fputs("null", f);
		return;
	}
	n = snprintf(buf, sizeof(buf), "%.9g", v);
	fwrite(buf, 1, (size_t)n, f);
}

static void column(FILE *f, const char *name, const struct points *ps, int which)
{
	fprintf(f, ",\"%s\":[", name);
	for (size_t i = 0; i < ps->n; i++) {
		const struct step_point *p = &ps->p[i];

		if (i)
			fputc(',', f);
		switch (which) {
		case 0:
			put_int(f, p->attempt);
			break;
		case 1:
			put_int(f, p->step);
			break;
		case 2:
			if (p->have_epoch)
				put_int(f, p->epoch);
			else
				fputs("null", f);
			break;
		case 3:
			put_real(f, p->loss, p->have_loss);
			break;
		case 4:
			put_real(f, p->val_loss, p->have_val_loss);
			break;
		default: /* milliseconds since the epoch, an integer */
			put_int(f, llround(p->time * 1000.0));
		}
	}
	fputc(']', f);
}

char *metrics_steps_body(struct op *op, int64_t after_attempt, int64_t after_step, size_t *len)
{
	struct points ps = {0};
	char *s = NULL;
	size_t n = 0;
	bool first = true;
	FILE *f;

	/* the stored steps and the ones still waiting in memory: a read
	 * writes nothing (it was a transaction and an fsync on every poll of
	 * a running operation's steps) */
	if (db_steps_query(op->id, after_attempt, after_step, collect, &ps) < 0) {
		free(ps.p);
		return NULL;
	}
	for (size_t i = 0; op->mx && i < op->mx->npend; i++) {
		const struct step_point *w = &op->mx->pend[i];

		if (after_attempt < 0 ? w->step <= after_step
				      : point_cmp(w, (int)after_attempt, after_step) <= 0)
			continue;
		if (merge_waiting(&ps, w) < 0) {
			free(ps.p);
			return NULL;
		}
	}
	f = open_memstream(&s, &n);
	if (!f) {
		free(ps.p);
		return NULL;
	}
	fprintf(f,
		"{\"operation\":\"%s\",\"resolution\":\"step\",\"kept_steps\":%lld,\"count\":%zu",
		op->id, (long long)g.keep_steps, ps.n);
	if (ps.n)
		fprintf(f, ",\"last\":{\"attempt\":%d,\"step\":%lld}", ps.p[ps.n - 1].attempt,
			(long long)ps.p[ps.n - 1].step);
	else
		fputs(",\"last\":null", f);
	column(f, "attempt", &ps, 0);
	column(f, "step", &ps, 1);
	column(f, "epoch", &ps, 2);
	column(f, "loss", &ps, 3);
	column(f, "val_loss", &ps, 4);
	column(f, "time_ms", &ps, 5);
	fputs(",\"nonfinite\":[", f);
	for (size_t i = 0; i < ps.n; i++) {
		if (!ps.p[i].nonfinite[0])
			continue;
		fprintf(f, "%s{\"attempt\":%d,\"step\":%lld,\"what\":\"%s\"}", first ? "" : ",",
			ps.p[i].attempt, (long long)ps.p[i].step, ps.p[i].nonfinite);
		first = false;
	}
	fputs("]}", f);
	free(ps.p);
	if (fclose(f) != 0) {
		free(s);
		return NULL;
	}
	*len = n;
	return s;
}

/* ---- /metrics ---- */

/* The store's logical and stored bytes: ckptfs counts them in MOUNT/.stats;
 * a plain directory stores what it holds, the committed versions' bytes
 * (`plain`, or counted here when it is negative). */
void store_bytes(int64_t *logical, int64_t *stored, int64_t plain)
{
	char path[CKPTD_PATH_MAX + 16];
	json_t *st, *l, *s;

	snprintf(path, sizeof(path), "%s/.stats", g.mount);
	st = json_load_file(path, 0, NULL);
	l = json_object_get(st, "total_size_bytes");
	s = json_object_get(st, "stored_bytes");
	if (json_is_integer(l) && json_is_integer(s)) {
		*logical = json_integer_value(l);
		*stored = json_integer_value(s);
	} else {
		if (plain < 0) {
			int64_t committed;
			double oldest;

			runs_summary(&committed, &plain, &oldest);
		}
		*logical = *stored = plain;
	}
	json_decref(st);
}

/* When op->checkpoint was committed, or 0 when it is not among its versions. */
static double checkpoint_time(const struct op *op)
{
	struct version v;

	if (!op->checkpoint[0] || version_get(op->run_dir, op->vcache, op->checkpoint, &v) < 0)
		return 0;
	return v.committed;
}

static bool live(const struct op *op)
{
	return op->status == OP_RUNNING || op->status == OP_RECOVERING;
}

void metrics_prom(FILE *f)
{
	double now = now_s();
	int64_t logical, stored;

	fputs("# HELP ckptd_trainer_val_loss The last validation loss the trainer of a running "
	      "operation reported.\n# TYPE ckptd_trainer_val_loss gauge\n",
	      f);
	for (struct op *op = g.ops; op; op = op->next)
		if (op->status == OP_RUNNING && op->have_val_loss && isfinite(op->val_loss))
			fprintf(f, "ckptd_trainer_val_loss{operation=\"%s\"} %.9g\n", op->id,
				op->val_loss);
	fputs("# HELP ckptd_trainer_steps_per_second Training steps per second of a running "
	      "operation, measured over at least 5 s.\n"
	      "# TYPE ckptd_trainer_steps_per_second gauge\n",
	      f);
	for (struct op *op = g.ops; op; op = op->next)
		if (op->status == OP_RUNNING && op->mx && op->mx->have_rate &&
		    op->mx->rate_attempt == op->attempt)
			fprintf(f, "ckptd_trainer_steps_per_second{operation=\"%s\"} %.6g\n",
				op->id, op->mx->rate);
	fputs("# HELP ckptd_checkpoint_age_seconds Seconds since the newest good checkpoint of a "
	      "running or recovering operation was committed.\n"
	      "# TYPE ckptd_checkpoint_age_seconds gauge\n",
	      f);
	for (struct op *op = g.ops; op; op = op->next) {
		double t = live(op) ? checkpoint_time(op) : 0;

		if (t > 0)
			fprintf(f, "ckptd_checkpoint_age_seconds{operation=\"%s\"} %.3f\n", op->id,
				now > t ? now - t : 0.0);
	}
	fputs("# HELP ckptd_checkpoint_commit_seconds Time a trainer took to save a checkpoint, "
	      "from its SAVING=1 to its CHECKPOINT= report.\n"
	      "# TYPE ckptd_checkpoint_commit_seconds histogram\n",
	      f);
	for (size_t i = 0; i < NBUCKETS; i++) /* cumulative: commit_observe counts every le >= s */
		fprintf(f, "ckptd_checkpoint_commit_seconds_bucket{le=\"%g\"} %llu\n", commit_le[i],
			(unsigned long long)commit_bucket[i]);
	fprintf(f, "ckptd_checkpoint_commit_seconds_bucket{le=\"+Inf\"} %llu\n",
		(unsigned long long)commit_count);
	fprintf(f, "ckptd_checkpoint_commit_seconds_sum %.6f\n", commit_sum);
	fprintf(f, "ckptd_checkpoint_commit_seconds_count %llu\n",
		(unsigned long long)commit_count);
	store_bytes(&logical, &stored, -1);
	fprintf(f,
		"# HELP ckptd_store_logical_bytes Bytes of the committed checkpoints in the store, "
		"as their files add up.\n# TYPE ckptd_store_logical_bytes gauge\n"
		"ckptd_store_logical_bytes %lld\n",
		(long long)logical);
	fprintf(f,
		"# HELP ckptd_store_stored_bytes Bytes the store keeps on disk for them, after "
		"deduplication.\n# TYPE ckptd_store_stored_bytes gauge\n"
		"ckptd_store_stored_bytes %lld\n",
		(long long)stored);
}
