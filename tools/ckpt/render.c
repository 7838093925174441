// SPDX-License-Identifier: MIT
/*
 * render.c - ckptd's JSON answers as the operations guide (seeds/) prints
 * them: the operations table with its total line, the "Checkpoint Details"
 * block, and the shorter forms for one operation, statistics and events.
 */
#include "render.h"

#include <math.h>
#include <stdarg.h>
#include <string.h>

const char *ckpt_op_id(json_t *op)
{
	json_t *v = ckpt_jget(op, "id", "operation_id", NULL);

	return json_is_string(v) ? json_string_value(v) : "-";
}

const char *ckpt_op_status(json_t *op)
{
	json_t *v = ckpt_jget(op, "status", "state", NULL);

	return json_is_string(v) ? json_string_value(v) : "-";
}

static json_t *op_checkpoint(json_t *op)
{
	json_t *cp = ckpt_jget(op, "checkpoint", "last_checkpoint", NULL);

	return cp && !json_is_null(cp) && !json_is_false(cp) ? cp : NULL;
}

bool ckpt_op_resumable(json_t *op)
{
	json_t *r = ckpt_jget(op, "resumable", NULL);
	const char *s = ckpt_op_status(op);

	if (json_is_boolean(r))
		return json_is_true(r);
	return (!strcmp(s, "CANCELLED") || !strcmp(s, "FAILED")) && op_checkpoint(op);
}

/* The first of the keys (NULL-terminated) whose value in `o` is a number. */
static bool num_of_v(json_t *o, double *out, va_list ap)
{
	json_t *v;
	const char *k;

	while ((k = va_arg(ap, const char *))) {
		v = json_is_object(o) ? json_object_get(o, k) : NULL;
		if (json_is_number(v)) {
			*out = json_number_value(v);
			return true;
		}
	}
	return false;
}

static bool num_of(json_t *o, double *out, ...)
{
	va_list ap;
	bool found;

	va_start(ap, out);
	found = num_of_v(o, out, ap);
	va_end(ap);
	return found;
}

void ckpt_render_checkpoint_cell(json_t *cp, char *buf, size_t len)
{
	double v;

	if (!cp || json_is_null(cp)) {
		snprintf(buf, len, "-");
	} else if (json_is_string(cp)) {
		const char *s = json_string_value(cp), *slash = strrchr(s, '/');
		snprintf(buf, len, "%s", slash && slash[1] ? slash + 1 : s);
	} else if (num_of(cp, &v, "epoch", NULL) && v > 0) {
		snprintf(buf, len, "epoch %.0f", v);
	} else if (num_of(cp, &v, "step", NULL)) {
		/* before the first epoch ends, the step says more than "epoch 0" */
		snprintf(buf, len, "step %.0f", v);
	} else if (num_of(cp, &v, "epoch", NULL)) {
		snprintf(buf, len, "epoch %.0f", v);
	} else {
		const char *s = ckpt_jstr(cp, "version");
		if (!s)
			s = ckpt_jstr(cp, "path");
		if (s && strrchr(s, '/') && strrchr(s, '/')[1])
			s = strrchr(s, '/') + 1;
		snprintf(buf, len, "%s", s ? s : "-");
	}
}

/* The newest step the operation is known to have reached. ckptd's progress
 * is the last STEP= report it accepted, but it ignores a trainer's reports
 * once a cancel is requested, and the trainer finishes the step in flight
 * before its cancellation save: the checkpoint's own step (what
 * trainer_state.json says) is then one ahead, and it is the true one. */
static bool op_step(json_t *op, double *step)
{
	double ps, cs;
	bool have_p = num_of(ckpt_jget(op, "progress", NULL), &ps, "step", NULL);
	bool have_c = num_of(op_checkpoint(op), &cs, "step", NULL);

	if (!have_p && !have_c)
		return false;
	*step = !have_p ? cs : !have_c ? ps : ps > cs ? ps : cs;
	return true;
}

static void progress_cell(json_t *op, char *buf, size_t len)
{
	json_t *p = ckpt_jget(op, "progress", NULL);
	double v = -1, e, te, st;
	bool have_step = op_step(op, &st);

	if (json_is_number(p)) {
		v = json_number_value(p);
		/* 0..1 fractions and 0..100 percentages both occur in the wild. */
		if (v <= 1.0 && json_is_real(p))
			v *= 100;
	} else if (num_of(p, &v, "percent", "percentage", NULL)) {
	} else if (num_of(p, &e, "epoch", NULL) && num_of(p, &te, "total_epochs", "epochs", NULL) &&
		   te > 0) {
		v = e * 100 / te;
	} else {
		v = -1;
	}
	/* Before the first epoch ends the epochs say nothing (0% or no
	 * figure at all); the steps do. */
	if (v <= 0 && have_step && st > 0) {
		if (num_of(p, &te, "total_steps", "max_steps", NULL) && te > 0)
			snprintf(buf, len, "%.0f%%", floor(st * 100 / te));
		else
			snprintf(buf, len, "step %.0f", st);
	} else if (v >= 0) {
		snprintf(buf, len, "%.0f%%", floor(v));
	} else {
		snprintf(buf, len, "-");
	}
}

static bool time_of(json_t *o, time_t *t, ...)
{
	const char *k;
	va_list ap;
	bool ok = false;

	va_start(ap, t);
	while ((k = va_arg(ap, const char *))) {
		const char *s = ckpt_jstr(o, k);
		int64_t ns;
		if (s && ckpt_iso_parse(s, &ns) == 0) {
			*t = (time_t)(ns / CKPT_NS_PER_S);
			ok = true;
			break;
		}
	}
	va_end(ap);
	return ok;
}

static json_t *ops_array(json_t *j)
{
	return json_is_array(j) ? j : ckpt_jget(j, "operations", "items", NULL);
}

void ckpt_render_ops_list(struct ckpt_ctx *c, json_t *j, FILE *f)
{
	static const char *head[] = {"OPERATION_ID", "STATUS", "PROGRESS", "CHECKPOINT", "AGE"};
	/* The guide's column widths; wider cells widen their column. */
	static const int minw[] = {42, 11, 11, 13, 0};
	json_t *ops = ops_array(j), *op;
	struct ckpt_table t;
	size_t i, n = 0, nres = 0;

	ckpt_table_init(&t, 5, head, minw);
	json_array_foreach(ops, i, op)
	{
		char prog[32], cp[128], age[32] = "-";
		time_t ct;
		progress_cell(op, prog, sizeof(prog));
		ckpt_render_checkpoint_cell(op_checkpoint(op), cp, sizeof(cp));
		if (time_of(op, &ct, "created", "created_at", NULL))
			ckpt_fmt_age_short(age, sizeof(age), c->now, ct);
		ckpt_table_add(&t, ckpt_op_id(op), ckpt_op_status(op), prog, cp, age);
		n++;
		nres += ckpt_op_resumable(op);
	}
	if (json_is_integer(ckpt_jget(j, "total", NULL)))
		n = (size_t)json_integer_value(ckpt_jget(j, "total", NULL));
	if (json_is_integer(ckpt_jget(j, "resumable", NULL)))
		nres = (size_t)json_integer_value(ckpt_jget(j, "resumable", NULL));
	if (t.nrows == 0) {
		fputs("No operations.\n", f);
	} else {
		ckpt_table_print(&t, f);
		fprintf(f, "\nTotal: %zu operation%s (%zu resumable)\n", n, n == 1 ? "" : "s",
			nres);
	}
	ckpt_table_free(&t);
}

static void line_num(FILE *f, const char *label, json_t *o, ...)
{
	va_list ap;
	double x;
	bool found;
	char b[64];

	va_start(ap, o);
	found = num_of_v(o, &x, ap);
	va_end(ap);
	if (!found)
		return;
	ckpt_fmt_num(b, sizeof(b), x);
	fprintf(f, "  %-15s%s\n", label, b);
}

/* A gang's ranks on this host: RANK HOST PID STEP LAST_REPORT STATE. */
static void render_ranks(struct ckpt_ctx *c, json_t *op, FILE *f)
{
	static const char *head[] = {"RANK", "HOST", "PID", "STEP", "LAST_REPORT", "STATE"};
	static const int minw[] = {4, 4, 3, 4, 11, 0};
	json_t *ranks = ckpt_jget(op, "ranks", NULL), *r;
	struct ckpt_table t;
	double x;
	size_t i;

	if (!json_is_array(ranks))
		return;
	fprintf(f, "Ranks:           %zu here", json_array_size(ranks));
	if (num_of(op, &x, "world_size", NULL))
		fprintf(f, " of %.0f", x);
	if (num_of(op, &x, "node_rank", NULL))
		fprintf(f, " (node %.0f)", x);
	fputc('\n', f);
	ckpt_table_init(&t, 6, head, minw);
	json_array_foreach(ranks, i, r)
	{
		char rk[16] = "-", pid[16] = "-", step[24] = "-", last[40] = "-", st[48];
		json_t *ex = ckpt_jget(r, "exit", NULL);
		const char *state = ckpt_jstr(r, "state");
		time_t lt;

		if (num_of(r, &x, "rank", NULL))
			snprintf(rk, sizeof(rk), "%.0f", x);
		if (num_of(r, &x, "pid", NULL))
			snprintf(pid, sizeof(pid), "%.0f", x);
		if (num_of(r, &x, "step", NULL))
			snprintf(step, sizeof(step), "%.0f", x);
		if (time_of(r, &lt, "last_report", NULL)) {
			ckpt_fmt_age_short(last, sizeof(last) - 4, c->now, lt);
			strcat(last, " ago");
		}
		snprintf(st, sizeof(st), "%s", state ? state : "-");
		if (num_of(ex, &x, "code", NULL))
			snprintf(st + strlen(st), sizeof(st) - strlen(st), " (status %.0f)", x);
		else if (num_of(ex, &x, "signal", NULL))
			snprintf(st + strlen(st), sizeof(st) - strlen(st), " (signal %.0f)", x);
		ckpt_table_add(&t, rk, ckpt_jstr(r, "host") ? ckpt_jstr(r, "host") : "-", pid, step,
			       last, st);
	}
	ckpt_table_print(&t, f);
	ckpt_table_free(&t);
}

void ckpt_render_op(struct ckpt_ctx *c, json_t *op, FILE *f)
{
	json_t *cp = op_checkpoint(op), *p = ckpt_jget(op, "progress", NULL);
	json_t *ex = ckpt_jget(op, "exit", NULL);
	const char *s;
	char b[128], b2[64];
	double a, ma, e, te;
	time_t t;

	fprintf(f, "Operation ID:    %s\n", ckpt_op_id(op));
	if ((s = ckpt_jstr(op, "name")))
		fprintf(f, "Name:            %s\n", s);
	if ((s = ckpt_jstr(op, "project_id")))
		fprintf(f, "Project:         %s\n", s);
	fprintf(f, "Status:          %s%s\n", ckpt_op_status(op),
		json_is_true(ckpt_jget(op, "cancel_requested", NULL)) ? " (cancelling)" : "");
	if ((s = ckpt_jstr(op, "reason")))
		fprintf(f, "Reason:          %s\n", s);
	progress_cell(op, b, sizeof(b));
	fprintf(f, "Progress:        %s", b);
	if (num_of(p, &e, "epoch", NULL)) {
		fprintf(f, " (epoch %.0f", e);
		if (num_of(p, &te, "epochs", "total_epochs", NULL))
			fprintf(f, " / %.0f", te);
		if (op_step(op, &e))
			fprintf(f, ", step %.0f", e);
		fputc(')', f);
	} else if (op_step(op, &e) && !strstr(b, "step")) {
		fprintf(f, " (step %.0f)", e);
	}
	fputc('\n', f);
	if (num_of(p, &e, "loss", NULL)) {
		ckpt_fmt_num(b, sizeof(b), e);
		fprintf(f, "Loss:            %s", b);
		if (num_of(p, &e, "val_loss", NULL)) {
			ckpt_fmt_num(b, sizeof(b), e);
			fprintf(f, " (val %s)", b);
		}
		fputc('\n', f);
	}
	if (num_of(op, &a, "attempt", NULL)) {
		fprintf(f, "Attempt:         %.0f", a);
		if (num_of(op, &ma, "max_attempts", NULL))
			fprintf(f, " / %.0f", ma);
		if (num_of(op, &e, "recoveries", NULL))
			fprintf(f, " (%.0f recover%s)", e, e == 1 ? "y" : "ies");
		fputc('\n', f);
	}
	ckpt_render_checkpoint_cell(cp, b, sizeof(b));
	fprintf(f, "Checkpoint:      %s", b);
	if (json_is_object(cp) && (s = ckpt_jstr(cp, "path")))
		fprintf(f, " (%s)", s);
	fputc('\n', f);
	if ((s = ckpt_jstr(op, "run_dir")))
		fprintf(f, "Run Dir:         %s\n", s);
	{
		json_t *gs = ckpt_jget(op, "gpus", NULL), *gi;
		size_t i;

		if (json_array_size(gs)) { /* the GPUs it holds, as CUDA_VISIBLE_DEVICES */
			fprintf(f, "GPUs:            ");
			json_array_foreach(gs, i, gi) fprintf(f, "%s%lld", i ? "," : "",
							      (long long)json_integer_value(gi));
			fputc('\n', f);
		}
	}
	if (json_is_integer(ckpt_jget(op, "pid", NULL)))
		fprintf(f, "PID:             %lld\n",
			(long long)json_integer_value(ckpt_jget(op, "pid", NULL)));
	render_ranks(c, op, f);
	if (num_of(ex, &e, "code", NULL))
		fprintf(f, "Exit:            status %.0f\n", e);
	else if (num_of(ex, &e, "signal", NULL))
		fprintf(f, "Exit:            signal %.0f\n", e);
	if (time_of(op, &t, "created", "created_at", NULL)) {
		ckpt_iso_format(b, sizeof(b), (int64_t)t * CKPT_NS_PER_S, CKPT_ISO_HUMAN);
		ckpt_fmt_age_long(b2, sizeof(b2), c->now, t);
		fprintf(f, "Created At:      %s (%s ago)\n", b, b2);
	}
	if (time_of(op, &t, "finished", NULL)) {
		ckpt_iso_format(b, sizeof(b), (int64_t)t * CKPT_NS_PER_S, CKPT_ISO_HUMAN);
		fprintf(f, "Finished At:     %s\n", b);
	}
	if ((s = ckpt_jstr(ckpt_jget(op, "schedule", NULL), "cron"))) {
		fprintf(f, "Schedule:        %s (UTC)\n", s);
		if (time_of(ckpt_jget(op, "schedule", NULL), &t, "next_fire", NULL)) {
			ckpt_iso_format(b, sizeof(b), (int64_t)t * CKPT_NS_PER_S, CKPT_ISO_HUMAN);
			fprintf(f, "Next Fire:       %s\n", b);
		} else {
			fprintf(f, "Next Fire:       - (cancelled, or the schedule ended)\n");
		}
	}
	if (ckpt_op_resumable(op))
		fprintf(f, "\nTo resume: ckpt ops resume %s\n", ckpt_op_id(op));
}

/* The checkpoint to detail: "latest" (the newest good one), else the newest listed. */
static json_t *pick_checkpoint(json_t *j)
{
	json_t *cp = ckpt_jget(j, "latest", NULL), *arr = ckpt_jget(j, "checkpoints", NULL);

	if (json_is_object(cp))
		return cp;
	if (json_is_array(arr) && json_array_size(arr) > 0)
		return json_array_get(arr, 0); /* newest first */
	return NULL;
}

int ckpt_render_checkpoint_details(struct ckpt_ctx *c, const char *id, json_t *j, json_t *op,
				   json_t *tstate, FILE *f)
{
	json_t *cp = pick_checkpoint(j), *p = ckpt_jget(op, "progress", NULL);
	json_t *arr = ckpt_jget(j, "checkpoints", NULL), *spec;
	const char *s, *opid;
	char b[128];
	double e, te;
	time_t t;

	opid = ckpt_jstr(j, "operation");
	if (!opid)
		opid = id;
	if (!cp) {
		fprintf(f, "No checkpoint found for operation %s.\n", opid);
		return -1;
	}
	fputs("Checkpoint Details\n==================\n", f);
	fprintf(f, "Operation ID:    %s\n", opid);
	s = ckpt_jstr(j, "checkpoint_type");
	fprintf(f, "Checkpoint Type: %s\n", s ? s : "-");
	if ((s = ckpt_jstr(cp, "version")))
		fprintf(f, "Version:         %s\n", s);
	if (time_of(cp, &t, "committed", "created", NULL)) {
		ckpt_iso_format(b, sizeof(b), (int64_t)t * CKPT_NS_PER_S, CKPT_ISO_HUMAN);
		fprintf(f, "Created At:      %s\n", b);
		ckpt_fmt_age_long(b, sizeof(b), c->now, t);
		fprintf(f, "Age:             %s\n", b);
	}
	fputs("\nState:\n", f);
	/* The checkpoint's own trainer_state.json knows most; the API's listing
	 * and the operation's spec fill in what it lacks. */
	if (num_of(tstate, &e, "epoch", NULL) || num_of(cp, &e, "epoch", NULL)) {
		fprintf(f, "  %-15s%.0f", "Epoch:", e);
		spec = ckpt_jget(ckpt_jget(op, "spec", NULL), "hyperparams", NULL);
		if (num_of(p, &te, "epochs", NULL) || num_of(spec, &te, "epochs", NULL))
			fprintf(f, " / %.0f", te);
		fputc('\n', f);
	}
	if (tstate)
		line_num(f, "Step:", tstate, "step", NULL);
	else
		line_num(f, "Step:", cp, "step", NULL);
	line_num(f, "Train Loss:", tstate, "loss", "train_loss", NULL);
	if (num_of(cp, &e, "val_loss", NULL))
		line_num(f, "Val Loss:", cp, "val_loss", NULL);
	else
		line_num(f, "Val Loss:", tstate, "last_val_loss", "val_loss", NULL);
	line_num(f, "Best Val Loss:", tstate, "best_val_loss", NULL);
	line_num(f, "Learning Rate:", tstate, "lr", "learning_rate", NULL);
	s = ckpt_jstr(cp, "path");
	fprintf(f, "\nArtifacts: %s\n", s ? s : "-");
	if (json_is_array(arr) && json_array_size(arr) > 1)
		fprintf(f, "(%zu checkpoints in all; 'ckpt ls %s' lists them)\n",
			json_array_size(arr), opid);
	if (!op || ckpt_op_resumable(op))
		fprintf(f, "\nTo resume: ckpt ops resume %s\n", opid);
	else
		fprintf(f, "\nResumable once the operation is CANCELLED or FAILED (now %s).\n",
			ckpt_op_status(op));
	return 0;
}

void ckpt_render_checkpoint_stats(struct ckpt_ctx *c, json_t *j, FILE *f)
{
	double v;
	char b[64];
	const char *s;
	int64_t ns;

	(void)c;
	fputs("Checkpoint Statistics\n=====================\n", f);
	if (num_of(j, &v, "total_checkpoints", NULL))
		fprintf(f, "Total Checkpoints: %.0f\n", v);
	if (num_of(j, &v, "total_size_bytes", NULL)) {
		ckpt_fmt_bytes(b, sizeof(b), (uint64_t)v);
		fprintf(f, "Total Size:        %s (%.0f bytes)\n", b, v);
	}
	if (num_of(j, &v, "stored_bytes", NULL)) {
		ckpt_fmt_bytes(b, sizeof(b), (uint64_t)v);
		fprintf(f, "Stored:            %s (%.0f bytes)\n", b, v);
	}
	if (num_of(j, &v, "dedup_ratio", NULL))
		fprintf(f, "Dedup Ratio:       %.2f\n", v);
	s = ckpt_jstr(j, "oldest_checkpoint");
	if (s && ckpt_iso_parse(s, &ns) == 0) {
		ckpt_iso_format(b, sizeof(b), ns, CKPT_ISO_HUMAN);
		fprintf(f, "Oldest:            %s\n", b);
	} else {
		fprintf(f, "Oldest:            -\n");
	}
}

void ckpt_render_event(struct ckpt_ctx *c, json_t *ev, FILE *f)
{
	json_t *a = ckpt_jget(ev, "attempt", NULL);
	const char *type = ckpt_jstr(ev, "event"), *reason = ckpt_jstr(ev, "reason");
	const char *cpath = ckpt_jstr(ev, "checkpoint");
	char b[64] = "-";
	time_t t;

	(void)c;
	if (!type)
		type = ckpt_jstr(ev, "type");
	if (time_of(ev, &t, "time", "ts", "timestamp", NULL))
		ckpt_iso_format(b, sizeof(b), (int64_t)t * CKPT_NS_PER_S, CKPT_ISO_HUMAN);
	fprintf(f, "%s  %-20s", b, type ? type : "-");
	if (json_is_integer(a))
		fprintf(f, "  attempt %lld", (long long)json_integer_value(a));
	if (reason && reason[0])
		fprintf(f, "  %s", reason);
	if (cpath && cpath[0])
		fprintf(f, "  checkpoint %s", cpath);
	fputc('\n', f);
}

void ckpt_render_log_line(json_t *it, FILE *f)
{
	const char *s = json_is_string(it) ? json_string_value(it) : ckpt_jstr(it, "line");

	if (!s)
		s = ckpt_jstr(it, "text");
	if (!s)
		s = ckpt_jstr(it, "message");
	if (!s)
		return;
	fputs(s, f);
	if (!s[0] || s[strlen(s) - 1] != '\n')
		fputc('\n', f);
}
