// SPDX-License-Identifier: MIT
/*
 * api.c - the HTTP API of docs/api.md on libmicrohttpd, in external epoll
 * mode so it runs inside ckptd's one poll loop (main.c). Requests are routed
 * by path; bodies are collected up to 1 MiB; every error is a JSON body
 * {"error": {"code", "message"}} with a 4xx/5xx status.
 */
#include "ckptd_i.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#define BODY_MAX (1u << 20)
/* Clients served at once per listener; more wait in the listen queue
 * (SOMAXCONN) until one ends. ckptd raises its fd limit to fit. */
#define API_MAX_CONNECTIONS ((unsigned)2048)

struct req {
	char *body;
	size_t len, cap;
	bool too_large;
	int64_t t0_ns; /* its first callback: the request's head is in */
};

/* The request being answered (one at a time: the handler runs in the loop) */
static int64_t req_t0_ns;

static int64_t mono_ns(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return ts_ns(&t);
}

/*
 * Every answer goes out here: with `Server-Timing: ckptd;dur=MS`, ckptd's
 * own time on the request, from its first callback (its head read) to its
 * answer queued. What a client measures beyond it is the wait before ckptd
 * read the request (its loop busy with something else, or not given a CPU)
 * and the transfer; the soak (bench/supervisor/soak_ckptd.py) reports both.
 */
int api_queue(struct MHD_Connection *c, unsigned status, struct MHD_Response *r)
{
	char st[48];

	if (req_t0_ns) {
		snprintf(st, sizeof(st), "ckptd;dur=%.3f", (double)(mono_ns() - req_t0_ns) / 1e6);
		MHD_add_response_header(r, "Server-Timing", st);
	}
	return (int)MHD_queue_response(c, status, r);
}

static enum MHD_Result send_text(struct MHD_Connection *c, unsigned status, char *text,
				 const char *ctype)
{
	struct MHD_Response *r;
	enum MHD_Result ret;

	r = MHD_create_response_from_buffer(strlen(text), text, MHD_RESPMEM_MUST_FREE);
	if (!r) {
		free(text);
		return MHD_NO;
	}
	MHD_add_response_header(r, "Content-Type", ctype);
	ret = (enum MHD_Result)api_queue(c, status, r);
	MHD_destroy_response(r);
	return ret;
}

/* Length of the UTF-8 sequence at s (RFC 3629: no overlongs, no
 * surrogates, nothing above U+10FFFF), or 0 when it is not one. */
static size_t utf8_seq(const unsigned char *s)
{
	size_t n;
	uint32_t cp;

	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xc2 && s[0] <= 0xdf)
		n = 2, cp = s[0] & 0x1f;
	else if (s[0] >= 0xe0 && s[0] <= 0xef)
		n = 3, cp = s[0] & 0x0f;
	else if (s[0] >= 0xf0 && s[0] <= 0xf4)
		n = 4, cp = s[0] & 0x07;
	else
		return 0;
	for (size_t i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (s[i] & 0x3f);
	}
	if ((n == 3 && cp < 0x800) || (n == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
	    (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return n;
}

static bool utf8_valid(const char *s)
{
	for (size_t n; *s; s += n)
		if (!(n = utf8_seq((const unsigned char *)s)))
			return false;
	return true;
}

/* Messages quote what the client sent, which need not be UTF-8 (a URL with
 * %ff, or a quote cut in the middle of a character); JSON strings must be. */
static void utf8_clean(char *s)
{
	for (size_t n; *s; s += n)
		if (!(n = utf8_seq((const unsigned char *)s))) {
			*s = '?';
			n = 1;
		}
}

static enum MHD_Result send_json(struct MHD_Connection *c, unsigned status, json_t *o)
{
	char *s = o ? json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;

	json_decref(o);
	if (!s) /* still an answer: a client must never see a bare close */
		return send_text(c, 500,
				 strdup("{\"error\":{\"code\":\"internal\",\"message\":\"cannot "
					"encode the answer as JSON\"}}"),
				 "application/json; charset=utf-8");
	return send_text(c, status, s, "application/json; charset=utf-8");
}

static enum MHD_Result send_err(struct MHD_Connection *c, unsigned status, const char *code,
				const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static enum MHD_Result send_err(struct MHD_Connection *c, unsigned status, const char *code,
				const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	utf8_clean(msg);
	return send_json(c, status, json_pack("{s{ss ss}}", "error", "code", code, "message", msg));
}

static enum MHD_Result not_allowed(struct MHD_Connection *c, const char *allow)
{
	char *s = NULL;
	struct MHD_Response *r;
	enum MHD_Result ret;

	if (asprintf(&s,
		     "{\"error\":{\"code\":\"method_not_allowed\",\"message\":\"use %s on this "
		     "path\"}}",
		     allow) < 0)
		return MHD_NO;
	r = MHD_create_response_from_buffer(strlen(s), s, MHD_RESPMEM_MUST_FREE);
	MHD_add_response_header(r, "Content-Type", "application/json; charset=utf-8");
	MHD_add_response_header(r, "Allow", allow);
	ret = (enum MHD_Result)api_queue(c, 405, r);
	MHD_destroy_response(r);
	return ret;
}

static const char *arg(struct MHD_Connection *c, const char *k)
{
	return MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, k);
}

/* A query integer in [lo, hi]; -1 absent, -2 bad. */
static int64_t arg_int(struct MHD_Connection *c, const char *k, int64_t lo, int64_t hi)
{
	const char *s = arg(c, k);
	char *end;
	long long v;

	if (!s)
		return -1;
	if (!*s || !isdigit((unsigned char)s[0]))
		return -2;
	v = strtoll(s, &end, 10);
	if (*end || v < lo || v > hi)
		return -2;
	return v;
}

static bool idem_ok(const char *k)
{
	size_t n = strlen(k);

	if (n == 0 || n > 128)
		return false;
	for (; *k; k++)
		if (!isalnum((unsigned char)*k) && !strchr("._:-", *k))
			return false;
	return true;
}

static enum MHD_Result list_ops(struct MHD_Connection *c)
{
	bool want[6] = {true, true, true, true, true, true};
	const char *st = arg(c, "status"), *res = arg(c, "resumable");
	int64_t limit = arg_int(c, "limit", 1, 1000);
	bool only_resumable = false;
	json_t *arr = json_array();
	struct op **pick;
	size_t n = 0, skip;
	int total = 0, nres = 0;

	if (limit == -2) {
		json_decref(arr);
		return send_err(c, 400, "invalid_request", "limit: must be an integer 1-1000");
	}
	if (limit < 0)
		limit = 100;
	if (res) {
		if (!strcmp(res, "true") || !strcmp(res, "1"))
			only_resumable = true;
		else if (strcmp(res, "false") && strcmp(res, "0")) {
			json_decref(arr);
			return send_err(c, 400, "invalid_request",
					"resumable: must be true or false (got '%.40s')", res);
		}
	}
	if (st) {
		char buf[128], *save = NULL, *tok;

		if (strlen(st) >= sizeof(buf)) {
			json_decref(arr);
			return send_err(c, 400, "invalid_request", "status: too long");
		}
		memset(want, 0, sizeof(want));
		strcpy(buf, st);
		for (tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
			enum op_status s;

			if (status_parse(tok, &s)) {
				json_decref(arr);
				return send_err(c, 400, "invalid_request",
						"status: '%.40s' is not one of PENDING, RUNNING, "
						"RECOVERING, COMPLETED, FAILED, CANCELLED",
						tok);
			}
			want[s] = true;
		}
	}
	/* newest first, `limit` of them: the list is oldest first, so the
	 * newest matches are its last ones, and only those become JSON (each
	 * reads its checkpoint's version) */
	for (struct op *op = g.ops; op; op = op->next)
		n += want[op->status] && (!only_resumable || op_resumable(op));
	skip = n > (size_t)limit ? n - (size_t)limit : 0;
	pick = calloc(n - skip + 1, sizeof(*pick));
	if (!pick) {
		json_decref(arr);
		return send_err(c, 500, "internal", "out of memory");
	}
	for (struct op *op = g.ops; op; op = op->next) {
		if (!want[op->status] || (only_resumable && !op_resumable(op)))
			continue;
		if (skip)
			skip--;
		else
			pick[total++] = op;
	}
	for (int i = total; i-- > 0;) {
		nres += op_resumable(pick[i]);
		json_array_append_new(arr, op_to_json(pick[i], false));
	}
	free(pick);
	return send_json(
		c, 200,
		json_pack("{so si si}", "operations", arr, "total", total, "resumable", nres));
}

static enum MHD_Result submit(struct MHD_Connection *c, struct req *rq)
{
	const char *idem = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Idempotency-Key");
	char err[1024] = "";
	struct op *op = NULL;
	bool replay;
	int ret;

	if (idem && !idem_ok(idem))
		return send_err(c, 400, "invalid_request",
				"Idempotency-Key: must be 1-128 characters of A-Z a-z 0-9 . _ : -");
	if (!rq->body || rq->len == 0)
		return send_err(c, 400, "invalid_json",
				"the body is empty; send a job spec as a JSON object");
	ret = op_submit(rq->body, rq->len, idem, &op, &replay, err, sizeof(err));
	if (ret == -EINVAL) {
		bool json = strstr(err, "invalid JSON") != NULL;

		return send_err(c, 400, json ? "invalid_json" : "invalid_spec", "%s", err);
	}
	if (ret == -EHOSTUNREACH) /* a gang's etcd (resources.rdzv) does not answer */
		return send_err(c, 503, "rdzv_unreachable", "%s", err);
	if (ret)
		return send_err(c, 500, "internal", "%s", err[0] ? err : strerror(-ret));
	return send_json(c, replay ? 200 : 201,
			 json_pack("{ss ss so}", "id", op->id, "status", status_name(op->status),
				   "operation", op_to_json(op, false)));
}

static enum MHD_Result logs(struct MHD_Connection *c, struct op *op)
{
	int64_t off = arg_int(c, "offset", 0, INT64_MAX / 2);
	int64_t lim = arg_int(c, "limit", 1, BODY_MAX);
	int64_t rank = arg_int(c, "rank", 0, 1 << 20); /* a gang's rank; default the first */
	char path[CKPTD_PATH_MAX + 64], next[32], *buf;
	struct MHD_Response *r;
	enum MHD_Result ret;
	ssize_t n = 0;
	int fd;

	if (off == -2 || lim == -2)
		return send_err(c, 400, "invalid_request",
				"offset and limit must be non-negative integers (limit at most "
				"1048576)");
	if (off < 0)
		off = 0;
	if (lim < 0)
		lim = BODY_MAX;
	buf = malloc((size_t)lim + 1);
	if (!buf)
		return send_err(c, 500, "internal", "out of memory");
	if (rank == -2 || (rank >= 0 && !rank_find(op, (int)rank))) {
		free(buf);
		return send_err(c, 404, "not_found",
				"rank: operation %s has no rank %s on this host (%s)%s", op->id,
				arg(c, "rank"), g.host,
				op->gang ? "; see its ranks in GET .../operations/ID" : "");
	}
	rank_log(op, rank >= 0 ? rank_find(op, (int)rank) : &op->r[0], path, sizeof(path));
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd >= 0) {
		n = pread(fd, buf, (size_t)lim, off);
		close(fd);
		if (n < 0)
			n = 0;
	}
	buf[n] = '\0';
	snprintf(next, sizeof(next), "%lld", (long long)(off + n));
	r = MHD_create_response_from_buffer((size_t)n, buf, MHD_RESPMEM_MUST_FREE);
	MHD_add_response_header(r, "Content-Type", "text/plain; charset=utf-8");
	MHD_add_response_header(r, "X-Next-Offset", next);
	ret = (enum MHD_Result)api_queue(c, 200, r);
	MHD_destroy_response(r);
	return ret;
}

/* Keep the windows whose last step is above `after`. */
static json_t *windows_after(json_t *arr, int64_t after)
{
	json_t *out = json_array(), *w;
	size_t i;

	json_array_foreach(arr, i, w)
	{
		if (after < 0 || json_integer_value(json_object_get(w, "step")) > after)
			json_array_append(out, w);
	}
	json_decref(arr);
	return out;
}

/* GET .../metrics: without `resolution` the 30 s windows and their
 * downsampled forms (as before); resolution=step every kept step in columns
 * (metrics.c); 30s, 5m or 1h one kind of window. `after=STEP` keeps what is
 * past that step; with `after_attempt=N` too, the steps after that cursor. */
static enum MHD_Result metrics(struct MHD_Connection *c, struct op *op)
{
	static const struct {
		const char *name;
		int secs;
	} res[] = {{"30s", 30}, {"5m", 300}, {"1h", 3600}};
	const char *r = arg(c, "resolution");
	int64_t after = arg_int(c, "after", 0, INT64_MAX / 2);
	int64_t after_attempt = arg_int(c, "after_attempt", 0, INT32_MAX);

	if (after == -2 || after_attempt == -2)
		return send_err(c, 400, "invalid_request",
				"after and after_attempt must be non-negative integers");
	if (after_attempt >= 0 && after < 0)
		return send_err(
			c, 400, "invalid_request",
			"after_attempt goes with after=STEP (the cursor is attempt and step)");
	if (!r)
		return send_json(c, 200,
				 json_pack("{ss si so s{so so}}", "operation", op->id, "window_s",
					   30, "windows", windows_after(db_metrics(op, 30), after),
					   "downsampled", "300",
					   windows_after(db_metrics(op, 300), after), "3600",
					   windows_after(db_metrics(op, 3600), after)));
	if (!strcmp(r, "step")) {
		size_t len = 0;
		char *body = metrics_steps_body(op, after_attempt, after < 0 ? -1 : after, &len);

		if (!body)
			return send_err(c, 500, "internal",
					"cannot read the step metrics of %s from the database; see "
					"ckptd.log",
					op->id);
		return send_text(c, 200, body, "application/json; charset=utf-8");
	}
	for (size_t i = 0; i < sizeof(res) / sizeof(res[0]); i++)
		if (!strcmp(r, res[i].name))
			return send_json(
				c, 200,
				json_pack("{ss ss si so}", "operation", op->id, "resolution",
					  res[i].name, "window_s", res[i].secs, "windows",
					  windows_after(db_metrics(op, res[i].secs), after)));
	return send_err(c, 400, "invalid_request",
			"resolution: '%.40s' is not one of step, 30s, 5m, 1h", r);
}

static enum MHD_Result op_route(struct MHD_Connection *c, const char *method, const char *rest)
{
	char id[CKPTD_ID_MAX + 1];
	const char *slash = strchr(rest, '/'), *sub = slash ? slash + 1 : "";
	size_t n = slash ? (size_t)(slash - rest) : strlen(rest);
	struct op *op;
	char err[1024] = "";

	if (n == 0 || n >= sizeof(id))
		return send_err(
			c, 400, "invalid_request",
			"operation id: not a valid id (expected op_training_YYYYMMDD_HHMMSS_"
			"xxxxxx)");
	memcpy(id, rest, n);
	id[n] = '\0';
	if (!valid_op_id(id))
		return send_err(c, 400, "invalid_request",
				"operation id '%.64s' is not valid (expected op_training_YYYYMMDD_"
				"HHMMSS_xxxxxx)",
				id);
	op = op_find(id);
	if (!op)
		return send_err(c, 404, "not_found",
				"no operation %s; list them with GET "
				"/api/v1/operations",
				id);
	if (!*sub) {
		if (strcmp(method, "GET"))
			return not_allowed(c, "GET");
		return send_json(c, 200, op_to_json(op, true));
	}
	if (!strcmp(sub, "cancel") || !strcmp(sub, "resume")) {
		if (strcmp(method, "POST"))
			return not_allowed(c, "POST");
		if (sub[0] == 'c') {
			if (op_cancel(op) < 0)
				return send_err(c, 409, "conflict",
						"operation %s is %s and cannot be cancelled",
						op->id, status_name(op->status));
		} else if (op_resume(op, err, sizeof(err)) < 0) {
			return send_err(c, 409, "conflict", "%s", err);
		}
		return send_json(c, 200, op_to_json(op, false));
	}
	if (strcmp(method, "GET"))
		return not_allowed(c, "GET");
	if (!strcmp(sub, "events")) {
		int64_t after = arg_int(c, "after", 0, INT64_MAX / 2);
		int64_t lim = arg_int(c, "limit", 1, 100000);

		if (after == -2 || lim == -2)
			return send_err(c, 400, "invalid_request",
					"after and limit must be non-negative integers");
		return send_json(
			c, 200,
			json_pack("{so}", "events",
				  db_events(op->id, after < 0 ? 0 : after, lim < 0 ? 1000 : lim)));
	}
	if (!strcmp(sub, "logs"))
		return logs(c, op);
	if (!strcmp(sub, "metrics"))
		return metrics(c, op);
	return send_err(c, 404, "not_found", "no such path; see docs/api.md");
}

static enum MHD_Result ckpt_route(struct MHD_Connection *c, const char *method, const char *rest)
{
	struct op *op;

	if (!strcmp(rest, "stats")) {
		if (strcmp(method, "GET"))
			return not_allowed(c, "GET");
		return send_json(c, 200, checkpoints_stats());
	}
	if (!strcmp(rest, "cleanup")) {
		int64_t days = arg_int(c, "max_age_days", 0, 36500);
		json_t *res = NULL;

		if (strcmp(method, "POST"))
			return not_allowed(c, "POST");
		if (days == -2)
			return send_err(c, 400, "invalid_request",
					"max_age_days: must be an integer 0-36500 (got '%.40s')",
					arg(c, "max_age_days"));
		cleanup_run(days, &res);
		return send_json(c, 200, res);
	}
	if (!valid_op_id(rest))
		return send_err(
			c, 400, "invalid_request",
			"'%.64s' is not a valid operation id (expected op_training_YYYYMMDD_"
			"HHMMSS_xxxxxx)",
			rest);
	op = op_find(rest);
	if (!op)
		return send_err(c, 404, "not_found", "no operation %s", rest);
	if (!strcmp(method, "GET"))
		return send_json(c, 200, checkpoints_of(op));
	if (!strcmp(method, "DELETE")) {
		struct version *vs = NULL;
		size_t n = 0;
		int deleted = 0;

		if (op->status == OP_PENDING || op->status == OP_RUNNING ||
		    op->status == OP_RECOVERING)
			return send_err(c, 409, "conflict",
					"operation %s is %s; cancel it before deleting its "
					"checkpoints",
					op->id, status_name(op->status));
		if (versions_list(op->run_dir, &vs, &n) == 0)
			for (size_t i = 0; i < n; i++)
				deleted += rm_rf(vs[i].path) == 0;
		free(vs);
		op_set_str(&op->checkpoint, "");
		op->updated_at = now_s();
		db_save_op(op);
		return send_json(c, 200, json_pack("{si}", "deleted", deleted));
	}
	return not_allowed(c, "GET, DELETE");
}

/* One metric family: its HELP and TYPE lines, as the exposition format
 * wants before the first sample (promtool check metrics). */
static void prom_family(FILE *f, const char *name, const char *type, const char *help)
{
	fprintf(f, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static enum MHD_Result prom(struct MHD_Connection *c)
{
	static const char *const kinds[] = {"exit",	  "hang",      "nan",
					    "loss_spike", "corrupted", "verify"};
	int counts[6] = {0};
	char *s = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&s, &len);

	if (!f)
		return send_err(c, 500, "internal", "out of memory");
	for (struct op *op = g.ops; op; op = op->next)
		counts[op->status]++;
	prom_family(f, "ckptd_operations", "gauge", "Operations by status.");
	for (int i = 0; i < 6; i++)
		fprintf(f, "ckptd_operations{status=\"%s\"} %d\n", status_name((enum op_status)i),
			counts[i]);
	prom_family(f, "ckptd_recoveries_total", "counter",
		    "Recoveries started (a new attempt from a checkpoint).");
	fprintf(f, "ckptd_recoveries_total %llu\n", (unsigned long long)g.n_recoveries);
	prom_family(f, "ckptd_detections_total", "counter", "Faults detected, by kind.");
	for (int i = 0; i < 6; i++)
		fprintf(f, "ckptd_detections_total{reason=\"%s\"} %llu\n", kinds[i],
			(unsigned long long)g.n_detect[i]);
	prom_family(f, "ckptd_events_total", "counter", "Operation events emitted.");
	fprintf(f, "ckptd_events_total %llu\n", (unsigned long long)g.n_events);
	prom_family(f, "ckptd_notify_datagrams_total", "counter",
		    "Trainer notify datagrams accepted.");
	fprintf(f, "ckptd_notify_datagrams_total %llu\n", (unsigned long long)g.n_datagrams);
	prom_family(f, "ckptd_notify_rejected_total", "counter",
		    "Trainer reports rejected: malformed datagrams and CHECKPOINT= paths that "
		    "are not a committed version of the operation's own run.");
	fprintf(f, "ckptd_notify_rejected_total %llu\n", (unsigned long long)g.n_rejected);
	prom_family(f, "ckptd_checkpoint_reports_rejected_total", "counter",
		    "CHECKPOINT= reports rejected (outside the run dir, or not committed).");
	fprintf(f, "ckptd_checkpoint_reports_rejected_total %llu\n",
		(unsigned long long)g.n_rejected_checkpoint);
	prom_family(f, "ckptd_version_reads_total", "counter",
		    "Checkpoint versions ckptd read from run dirs (a version's state and "
		    "metadata; the stats keep what a finished run holds instead).");
	fprintf(f, "ckptd_version_reads_total %llu\n", (unsigned long long)g.n_version_reads);
	prom_family(f, "ckptd_uptime_seconds", "gauge", "Seconds since ckptd started.");
	fprintf(f, "ckptd_uptime_seconds %.0f\n", now_s() - g.started);
	prom_family(f, "ckptd_trainer_loss", "gauge",
		    "Last training loss reported by each running operation.");
	for (struct op *op = g.ops; op; op = op->next)
		if (op->status == OP_RUNNING && op->have_loss)
			fprintf(f, "ckptd_trainer_loss{operation=\"%s\"} %g\n", op->id, op->loss);
	prom_family(f, "ckptd_trainer_step", "gauge",
		    "Last training step reported by each running operation.");
	for (struct op *op = g.ops; op; op = op->next)
		if (op->status == OP_RUNNING && op->have_step)
			fprintf(f, "ckptd_trainer_step{operation=\"%s\"} %lld\n", op->id,
				(long long)op->step);
	metrics_prom(f);
	fclose(f);
	return send_text(c, 200, s, "text/plain; version=0.0.4");
}

static enum MHD_Result daemon_info(struct MHD_Connection *c)
{
	json_t *counts = json_object();
	char ts[40];

	for (int i = 0; i < 6; i++) {
		int n = 0;

		for (struct op *op = g.ops; op; op = op->next)
			n += op->status == (enum op_status)i;
		json_object_set_new(counts, status_name((enum op_status)i), json_integer(n));
	}
	iso_time(g.started, ts, sizeof(ts));
	return send_json(c, 200,
			 json_pack("{si ss ss ss ss sb sb ss sI so si so}", "pid", (int)getpid(),
				   "version", CKPTFS_VERSION, "state_dir", g.state_dir, "socket",
				   g.sock_path, "mount", g.mount, "mounted_by_ckptd",
				   g.mounted_by_us, "ckptfs_mount", g.ckptfs_mount, "started", ts,
				   "uptime_s", (json_int_t)(now_s() - g.started), "operations",
				   counts, "db_schema_version", db_schema_version(), "gpus",
				   gpus_json()));
}

static enum MHD_Result route(struct MHD_Connection *c, const char *url, const char *method,
			     struct req *rq)
{
	static const char ops[] = "/api/v1/operations", cks[] = "/api/v1/checkpoints/";

	if (g.stopping)
		return send_err(c, 503, "shutting_down", "ckptd is stopping; retry in a moment");
	if (!strcmp(url, "/healthz")) {
		if (strcmp(method, "GET") && strcmp(method, "HEAD"))
			return not_allowed(c, "GET");
		return send_json(c, 200, json_pack("{ss}", "status", "ok"));
	}
	if (!strcmp(url, "/metrics")) {
		if (strcmp(method, "GET"))
			return not_allowed(c, "GET");
		return prom(c);
	}
	if (!strcmp(url, ops) || !strcmp(url, "/api/v1/operations/")) {
		if (!strcmp(method, "GET"))
			return list_ops(c);
		if (!strcmp(method, "POST"))
			return submit(c, rq);
		return not_allowed(c, "GET, POST");
	}
	if (!strncmp(url, ops, sizeof(ops) - 1) && url[sizeof(ops) - 1] == '/')
		return op_route(c, method, url + sizeof(ops));
	if (!strncmp(url, cks, sizeof(cks) - 1))
		return ckpt_route(c, method, url + sizeof(cks) - 1);
	if (!strcmp(url, "/api/v1/daemon")) {
		if (strcmp(method, "GET"))
			return not_allowed(c, "GET");
		return daemon_info(c);
	}
	if (!strcmp(url, "/api/v1/dashboard")) {
		char err[512] = "";

		if (strcmp(method, "POST"))
			return not_allowed(c, "POST");
		if (dashboard_open(err, sizeof(err)) < 0)
			return send_err(c, 500, "internal", "%s", err);
		return send_json(c, 200, dashboard_info());
	}
	if (dashboard_path(url))
		return (enum MHD_Result)dashboard_serve(c, url, method);
	if (!strcmp(url, "/api/v1/gpus")) {
		if (strcmp(method, "GET"))
			return not_allowed(c, "GET");
		return send_json(c, 200, gpus_json());
	}
	if (!strcmp(url, "/api/v1/daemon/stop")) {
		if (strcmp(method, "POST"))
			return not_allowed(c, "POST");
		g.stopping = true;
		return send_json(c, 202, json_pack("{sb}", "stopping", 1));
	}
	return send_err(c, 404, "not_found", "no such path '%.100s'; see docs/api.md", url);
}

/* Equal without saying where they differ (no early exit). */
static bool same_secret(const char *a, const char *b)
{
	size_t na = strlen(a), nb = strlen(b);
	unsigned char d = na != nb;

	for (size_t i = 0; i < na; i++)
		d |= (unsigned char)(a[i] ^ b[i % (nb ? nb : 1)]);
	return d == 0 && nb > 0;
}

/* A request on the TCP listener carries the token: `Authorization: Bearer
 * T`, or for GET `?token=T`, which is how a browser opens the page (it
 * cannot send a header on navigation); the page sends the header itself. */
static bool token_ok(struct MHD_Connection *c, const char *method)
{
	const char *auth = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Authorization");
	const char *q = arg(c, "token");

	if (!g.token[0])
		return false;
	if (auth && !strncmp(auth, "Bearer ", 7) && same_secret(auth + 7, g.token))
		return true;
	return q && (!strcmp(method, "GET") || !strcmp(method, "HEAD")) && same_secret(q, g.token);
}

static enum MHD_Result handler(void *cls, struct MHD_Connection *c, const char *url,
			       const char *method, const char *version, const char *upload,
			       size_t *upload_size, void **con_cls)
{
	struct req *rq = *con_cls;

	if (!rq) {
		rq = calloc(1, sizeof(*rq));
		if (!rq)
			return MHD_NO;
		rq->t0_ns = mono_ns();
		*con_cls = rq;
		return MHD_YES;
	}
	if (*upload_size) {
		if (!rq->too_large && rq->len + *upload_size > BODY_MAX) {
			rq->too_large = true;
			free(rq->body);
			rq->body = NULL;
			rq->len = rq->cap = 0;
		}
		if (!rq->too_large) {
			if (rq->len + *upload_size + 1 > rq->cap) {
				size_t cap = (rq->len + *upload_size + 1) * 2;
				char *nb = realloc(rq->body, cap);

				if (!nb)
					return MHD_NO;
				rq->body = nb;
				rq->cap = cap;
			}
			memcpy(rq->body + rq->len, upload, *upload_size);
			rq->len += *upload_size;
			rq->body[rq->len] = '\0';
		}
		*upload_size = 0;
		return MHD_YES;
	}
	req_t0_ns = rq->t0_ns;
	if (cls && !token_ok(c, method)) /* the TCP listener: the token is required */
		return send_err(c, 401, "unauthorized",
				"send Authorization: Bearer TOKEN (the token is in the file named "
				"by the config key token_file, or open the URL `ckpt dashboard` "
				"prints)");
	if (rq->too_large)
		return send_err(c, 413, "too_large", "the body is larger than 1 MiB");
	if (!utf8_valid(url))
		return send_err(
			c, 400, "invalid_request",
			"the path '%.100s' is not valid UTF-8 once its %%-escapes are decoded; "
			"see docs/api.md for the paths",
			url);
	return route(c, url, method, rq);
}

static void completed(void *cls, struct MHD_Connection *c, void **con_cls,
		      enum MHD_RequestTerminationCode toe)
{
	struct req *rq = *con_cls;

	if (rq) {
		free(rq->body);
		free(rq);
	}
	*con_cls = NULL;
}

/* One HTTP server with ckptd's handler, on the listening socket fd, or with
 * none (fd -1): then connections are handed to it with MHD_add_connection
 * (tests/fuzz/fuzz_api.c calls the API that way, without a listener). With
 * tcp every request needs the token. */
struct MHD_Daemon *api_daemon(int fd, bool tcp)
{
	struct MHD_OptionItem opts[] = {
		{MHD_OPTION_NOTIFY_COMPLETED, (intptr_t)completed, NULL},
		{MHD_OPTION_CONNECTION_TIMEOUT, 60, NULL},
		{MHD_OPTION_CONNECTION_LIMIT, API_MAX_CONNECTIONS, NULL},
		{fd >= 0 ? MHD_OPTION_LISTEN_SOCKET : MHD_OPTION_END, fd, NULL},
		{MHD_OPTION_END, 0, NULL},
	};

	return MHD_start_daemon(MHD_USE_EPOLL | MHD_USE_ERROR_LOG |
					(fd < 0 ? MHD_USE_NO_LISTEN_SOCKET : 0),
				0, NULL, NULL, handler, tcp ? (void *)1 : NULL, MHD_OPTION_ARRAY,
				opts, MHD_OPTION_END);
}

int api_start(int unix_fd)
{
	g.httpd = api_daemon(unix_fd, false);
	if (!g.httpd) {
		ckptd_log("cannot start the HTTP server on %s", g.sock_path);
		return -EIO;
	}
	if (g.listen_tcp > 0 && api_tcp_start(g.listen_tcp) < 0)
		ckptd_log("cannot listen on 127.0.0.1:%d; the Unix socket still works",
			  g.listen_tcp);
	return 0;
}

/* The loopback TCP listener (config listen_tcp, or `ckpt dashboard` with
 * port 0: the kernel picks a free one). Sets g.tcp_port. */
int api_tcp_start(int port)
{
	struct sockaddr_in sa = {.sin_family = AF_INET,
				 .sin_port = htons((uint16_t)port),
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t sl = sizeof(sa);
	int fd, one = 1, ret;

	if (g.httpd_tcp)
		return 0;
	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -errno;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, SOMAXCONN) < 0 ||
	    getsockname(fd, (struct sockaddr *)&sa, &sl) < 0) {
		ret = -errno;
		close(fd);
		return ret;
	}
	g.httpd_tcp = api_daemon(fd, true);
	if (!g.httpd_tcp) {
		close(fd);
		return -EIO;
	}
	g.tcp_port = ntohs(sa.sin_port);
	return 0;
}

void api_stop(void)
{
	if (g.httpd)
		MHD_stop_daemon(g.httpd);
	if (g.httpd_tcp)
		MHD_stop_daemon(g.httpd_tcp);
	g.httpd = g.httpd_tcp = NULL;
}

int api_epoll_fd(struct MHD_Daemon *d)
{
	const union MHD_DaemonInfo *i;

	if (!d)
		return -1;
	i = MHD_get_daemon_info(d, MHD_DAEMON_INFO_EPOLL_FD);
	return i ? i->epoll_fd : -1;
}

void api_run(void)
{
	if (g.httpd)
		MHD_run(g.httpd);
	if (g.httpd_tcp)
		MHD_run(g.httpd_tcp);
}

int64_t api_timeout_ms(void)
{
	MHD_UNSIGNED_LONG_LONG t;
	int64_t best = -1;

	if (g.httpd && MHD_get_timeout(g.httpd, &t) == MHD_YES)
		best = (int64_t)t;
	if (g.httpd_tcp && MHD_get_timeout(g.httpd_tcp, &t) == MHD_YES &&
	    (best < 0 || (int64_t)t < best))
		best = (int64_t)t;
	return best;
}
