// SPDX-License-Identifier: MIT
/*
 * metrics.c - `ckpt ops metrics ID` (loss and val_loss per step, or in 30 s,
 * 5 min or 1 h windows: a table, --csv or --json), the loss sparkline that
 * it and `ckpt ops status` print on a terminal, and `ckpt dashboard` (the
 * URL of ckptd's web page). Over GET .../metrics?resolution=... and POST
 * /api/v1/dashboard (docs/api.md).
 */
#include "ckpt.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

static const char metrics_help[] =
	"usage: ckpt ops metrics ID [--resolution step|30s|5m|1h] [--after STEP] [--csv|--json]\n"
	"\n"
	"Loss and val_loss of an operation: every reported step (the default; ckptd keeps\n"
	"at least the last 100,000 steps), or 30-second, 5-minute or 1-hour windows.\n"
	"A step that a later attempt trained again (after a restart) is listed once per\n"
	"attempt. On a terminal a sparkline of the loss follows the table.\n"
	"\n"
	"  --resolution R  step (default), 30s, 5m or 1h\n"
	"  --after STEP    only what comes after this step\n"
	"  --csv           comma-separated values with a header line\n"
	"  --json          ckptd's answer (columns for step resolution, see docs/api.md)\n";

static const char dashboard_help[] =
	"usage: ckpt dashboard [--json]\n"
	"\n"
	"Print the URL of ckptd's web page: operations, loss and val_loss per step with\n"
	"marks at checkpoints, detections and restarts, events, checkpoints and the\n"
	"store's size. ckptd listens on a loopback TCP port for it (listen_tcp in its\n"
	"config, else a free port) and the URL carries the bearer token (a fresh one\n"
	"unless token_file is configured): anyone with the URL can read the page, so\n"
	"share it like a password. Open it in a browser on this machine, or forward\n"
	"the port (ssh -L PORT:127.0.0.1:PORT host).\n";

/* ---- the sparkline ---- */

static int term_cols(void)
{
	struct winsize ws;

	if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0)
		return ws.ws_col;
	return 80;
}

/* `n` values (NAN = none) squeezed into at most `width` cells, each the mean
 * of its share, drawn with the eight block heights. */
void ckpt_sparkline(FILE *f, const double *v, size_t n, int width)
{
	static const char *const bars[] = {"\u2581", "\u2582", "\u2583", "\u2584",
					   "\u2585", "\u2586", "\u2587", "\u2588"};
	double lo = INFINITY, hi = -INFINITY;
	size_t cells = n < (size_t)width ? n : (size_t)width;
	double *cell;

	if (!cells)
		return;
	cell = calloc(cells, sizeof(*cell));
	if (!cell)
		return;
	for (size_t i = 0; i < cells; i++) {
		size_t a = i * n / cells, b = (i + 1) * n / cells, k = 0;
		double s = 0;

		for (size_t j = a; j < b; j++)
			if (!isnan(v[j])) {
				s += v[j];
				k++;
			}
		cell[i] = k ? s / (double)k : NAN;
		if (k && cell[i] < lo)
			lo = cell[i];
		if (k && cell[i] > hi)
			hi = cell[i];
	}
	for (size_t i = 0; i < cells; i++) {
		int h = 0;

		if (isnan(cell[i])) {
			fputc(' ', f);
			continue;
		}
		if (hi > lo)
			h = (int)lround((cell[i] - lo) / (hi - lo) * 7.0);
		fputs(bars[h < 0 ? 0 : h > 7 ? 7 : h], f);
	}
	free(cell);
}

/* The loss per step as the chart shows it: for each step the newest
 * attempt's value, in step order. Returns the count; *out is malloc'd. */
static size_t loss_by_step(json_t *m, double **out)
{
	json_t *steps = json_object_get(m, "step"), *loss = json_object_get(m, "loss");
	size_t n = json_array_size(steps), k = 0;
	double *v = NULL;
	int64_t *st = NULL;

	*out = NULL;
	if (!n || json_array_size(loss) != n)
		return 0;
	v = malloc(n * sizeof(*v));
	st = malloc(n * sizeof(*st));
	if (!v || !st) {
		free(v);
		free(st);
		return 0;
	}
	/* points come by attempt, then step: a restart goes back to an earlier
	 * step; its values replace that stretch */
	for (size_t i = 0; i < n; i++) {
		int64_t s = json_integer_value(json_array_get(steps, i));
		json_t *l = json_array_get(loss, i);

		while (k > 0 && st[k - 1] >= s)
			k--;
		st[k] = s;
		v[k++] = json_is_number(l) ? json_number_value(l) : NAN;
	}
	free(st);
	*out = v;
	return k;
}

static void print_sparkline(FILE *f, json_t *m, const char *label)
{
	double *v, first = NAN, last = NAN;
	size_t n = loss_by_step(m, &v);
	char a[32], b[32];
	int width = term_cols() - (int)strlen(label) - 32;

	for (size_t i = 0; i < n; i++)
		if (!isnan(v[i])) {
			if (isnan(first))
				first = v[i];
			last = v[i];
		}
	if (!n || isnan(first)) {
		free(v);
		return;
	}
	ckpt_fmt_num(a, sizeof(a), first);
	ckpt_fmt_num(b, sizeof(b), last);
	fprintf(f, "%s", label);
	ckpt_sparkline(f, v, n, width < 10 ? 10 : width > 100 ? 100 : width);
	fprintf(f, "  %s -> %s (%zu steps)\n", a, b, n);
	free(v);
}

void ckpt_status_sparkline(struct ckpt_ctx *c, const char *id, FILE *f)
{
	char path[200];
	struct ckpt_resp r;

	snprintf(path, sizeof(path), "/api/v1/operations/%s/metrics?resolution=step", id);
	if (ckpt_api(c, "GET", path, NULL, NULL, &r) == 0 && r.status == 200 && r.json)
		print_sparkline(f, r.json, "Loss curve:     ");
	ckpt_resp_free(&r);
}

/* ---- ckpt ops metrics ---- */

static void cell_num(char *buf, size_t len, json_t *v)
{
	if (json_is_number(v))
		ckpt_fmt_num(buf, len, json_number_value(v));
	else
		snprintf(buf, len, "-");
}

static void cell_int(char *buf, size_t len, json_t *v)
{
	if (json_is_integer(v))
		snprintf(buf, len, "%lld", (long long)json_integer_value(v));
	else
		snprintf(buf, len, "-");
}

/* "nan"/"inf" for a step's loss that JSON could not carry */
static const char *nonfinite_of(json_t *m, json_t *attempt, json_t *step, const char *key)
{
	json_t *nf = json_object_get(m, "nonfinite"), *e;
	size_t i, kl = strlen(key);

	json_array_foreach(nf, i, e)
	{
		const char *w = ckpt_jstr(e, "what"), *p;

		if (!w || !json_equal(json_object_get(e, "attempt"), attempt) ||
		    !json_equal(json_object_get(e, "step"), step))
			continue;
		for (p = w; (p = strstr(p, key)); p += kl)
			if ((p == w || p[-1] == ',') && p[kl] == '=')
				return p + kl + 1;
	}
	return NULL;
}

static int print_steps(struct ckpt_ctx *c, json_t *m, bool csv)
{
	static const char *head[] = {"STEP", "ATTEMPT", "EPOCH", "LOSS", "VAL_LOSS"};
	static const int minw[] = {8, 8, 6, 12, 12};
	json_t *att = json_object_get(m, "attempt"), *st = json_object_get(m, "step");
	json_t *ep = json_object_get(m, "epoch"), *lo = json_object_get(m, "loss");
	json_t *vl = json_object_get(m, "val_loss"), *tm = json_object_get(m, "time_ms");
	size_t n = json_array_size(st);
	struct ckpt_table t;

	if (csv)
		puts("step,attempt,epoch,loss,val_loss,time_ms");
	else
		ckpt_table_init(&t, 5, head, minw);
	for (size_t i = 0; i < n; i++) {
		char s[32], a[16], e[32], l[40], v[40], tt[40];
		json_t *ja = json_array_get(att, i), *js = json_array_get(st, i);
		const char *nl = nonfinite_of(m, ja, js, "loss");
		const char *nv = nonfinite_of(m, ja, js, "val_loss");

		cell_int(s, sizeof(s), js);
		cell_int(a, sizeof(a), ja);
		cell_int(e, sizeof(e), json_array_get(ep, i));
		if (csv) {
			json_t *x;

			/* full precision in CSV: it is for programs */
			x = json_array_get(lo, i);
			if (json_is_number(x))
				snprintf(l, sizeof(l), "%.9g", json_number_value(x));
			else
				snprintf(l, sizeof(l), "%s", nl ? nl : "");
			x = json_array_get(vl, i);
			if (json_is_number(x))
				snprintf(v, sizeof(v), "%.9g", json_number_value(x));
			else
				snprintf(v, sizeof(v), "%s", nv ? nv : "");
			x = json_array_get(tm, i);
			snprintf(tt, sizeof(tt), "%.3f",
				 json_is_number(x) ? json_number_value(x) : 0);
			printf("%s,%s,%s,%s,%s,%s\n", s, a, strcmp(e, "-") ? e : "", l, v, tt);
			continue;
		}
		cell_num(l, sizeof(l), json_array_get(lo, i));
		if (nl)
			snprintf(l, sizeof(l), "%s", nl);
		cell_num(v, sizeof(v), json_array_get(vl, i));
		if (nv)
			snprintf(v, sizeof(v), "%s", nv);
		ckpt_table_add(&t, s, a, e, l, v);
	}
	if (csv)
		return CKPT_EXIT_OK;
	if (n)
		ckpt_table_print(&t, stdout);
	ckpt_table_free(&t);
	if (!n)
		printf("No steps reported%s.\n",
		       json_is_integer(json_object_get(m, "count")) ? "" : " (old ckptd?)");
	if (c->tty)
		print_sparkline(stdout, m, "loss ");
	return CKPT_EXIT_OK;
}

static int print_windows(struct ckpt_ctx *c, json_t *m, bool csv)
{
	static const char *head[] = {"START",	 "STEP",     "COUNT",	"LOSS_MEAN",
				     "LOSS_MIN", "LOSS_MAX", "VAL_LOSS"};
	static const int minw[] = {26, 8, 7, 11, 11, 11, 11};
	json_t *ws = json_object_get(m, "windows"), *w;
	struct ckpt_table t;
	size_t i;

	if (csv)
		puts("start,step,count,loss_mean,loss_min,loss_max,val_loss");
	else
		ckpt_table_init(&t, 7, head, minw);
	json_array_foreach(ws, i, w)
	{
		char s[32], k[32], a[40], b[40], d[40], v[40];
		const char *start = ckpt_jstr(w, "start");

		cell_int(s, sizeof(s), json_object_get(w, "step"));
		cell_int(k, sizeof(k), json_object_get(w, "count"));
		cell_num(a, sizeof(a), json_object_get(w, "loss_mean"));
		cell_num(b, sizeof(b), json_object_get(w, "loss_min"));
		cell_num(d, sizeof(d), json_object_get(w, "loss_max"));
		cell_num(v, sizeof(v), json_object_get(w, "val_loss"));
		if (csv)
			printf("%s,%s,%s,%s,%s,%s,%s\n", start ? start : "", s, k,
			       strcmp(a, "-") ? a : "", strcmp(b, "-") ? b : "",
			       strcmp(d, "-") ? d : "", strcmp(v, "-") ? v : "");
		else
			ckpt_table_add(&t, start ? start : "-", s, k, a, b, d, v);
	}
	if (csv)
		return CKPT_EXIT_OK;
	if (json_array_size(ws))
		ckpt_table_print(&t, stdout);
	else
		printf("No metrics windows yet.\n");
	ckpt_table_free(&t);
	(void)c;
	return CKPT_EXIT_OK;
}

int ckpt_ops_metrics(struct ckpt_ctx *c, int argc, char **argv)
{
	enum { O_RES = CKPT_OPT_LOCAL, O_AFTER, O_CSV };
	static const struct option lo[] = {
		CKPT_COMMON_LONGOPTS,
		{"resolution", required_argument, NULL, O_RES},
		{"after", required_argument, NULL, O_AFTER},
		{"csv", no_argument, NULL, O_CSV},
		{NULL, 0, NULL, 0},
	};
	const char *res = "step", *id;
	long long after = -1;
	char path[300], what[200];
	bool csv = false;
	json_t *m;
	int opt, rc;

	optind = 0;
	while ((opt = getopt_long(argc, argv, "hq", lo, NULL)) != -1) {
		if (ckpt_common_opt(c, opt, optarg))
			continue;
		switch (opt) {
		case 'h':
			fputs(metrics_help, stdout);
			return CKPT_EXIT_OK;
		case O_RES:
			res = optarg;
			break;
		case O_AFTER:
			after = ckpt_parse_count("ops metrics", "--after", optarg, (1LL << 62));
			if (after < 0)
				return CKPT_EXIT_USAGE;
			break;
		case O_CSV:
			csv = true;
			break;
		default:
			return ckpt_bad_opt("ops metrics", opt, argv);
		}
	}
	if (strcmp(res, "step") && strcmp(res, "30s") && strcmp(res, "5m") && strcmp(res, "1h"))
		return ckpt_usage_err("ops metrics",
				      "--resolution '%s' is not one of step, 30s, 5m, 1h", res);
	if (csv && c->json)
		return ckpt_usage_err("ops metrics", "--csv and --json: pick one");
	if (optind >= argc)
		return ckpt_usage_err("ops metrics",
				      "'ops metrics' needs an operation id (see 'ckpt ops list')");
	id = argv[optind++];
	if (optind < argc)
		return ckpt_usage_err("ops metrics", "unexpected argument '%s' after the id",
				      argv[optind]);
	if (!ckpt_id_valid(id))
		return ckpt_usage_err("ops metrics",
				      "'%s' is not an operation id; ids look like "
				      "op_training_20261122_100000_1a2b3c (see 'ckpt ops list')",
				      id);
	if (after >= 0)
		snprintf(path, sizeof(path),
			 "/api/v1/operations/%s/metrics?resolution=%s&after=%lld", id, res, after);
	else
		snprintf(path, sizeof(path), "/api/v1/operations/%s/metrics?resolution=%s", id,
			 res);
	snprintf(what, sizeof(what), "metrics of %s", id);
	m = ckpt_api_get(c, what, path, &rc);
	if (!m)
		return rc;
	if (c->json)
		ckpt_json_print(m);
	else if (!strcmp(res, "step"))
		rc = print_steps(c, m, csv);
	else
		rc = print_windows(c, m, csv);
	json_decref(m);
	return rc;
}

/* ---- ckpt dashboard ---- */

int cmd_dashboard(struct ckpt_ctx *c, int argc, char **argv)
{
	struct ckpt_resp r;
	const char *url;
	int n = ckpt_simple_opts(c, "dashboard", dashboard_help, argc, argv), rc = CKPT_EXIT_OK;

	if (n < 0)
		return ckpt_opts_rc(n);
	if (n < argc)
		return ckpt_usage_err("dashboard", "unexpected argument '%s'", argv[n]);
	ckpt_api(c, "POST", "/api/v1/dashboard", NULL, NULL, &r);
	if (r.status != 200 || !r.json) {
		rc = ckpt_api_fail(c, "opening the dashboard", &r);
		ckpt_resp_free(&r);
		return rc;
	}
	url = ckpt_jstr(r.json, "url");
	if (c->json) {
		ckpt_json_print(r.json);
	} else {
		printf("%s\n", url ? url : "?");
		if (c->tty)
			printf("Open it in a browser on this machine (the token in it is the key: "
			       "share it like a password).\n"
			       "From elsewhere: ssh -L %lld:127.0.0.1:%lld THIS_HOST, then the "
			       "same "
			       "URL.\n",
			       (long long)json_integer_value(json_object_get(r.json, "port")),
			       (long long)json_integer_value(json_object_get(r.json, "port")));
		if (json_is_false(json_object_get(r.json, "charts")))
			fprintf(stderr,
				"ckpt: note: this ckptd was built without uPlot, so the page "
				"has no charts; run tools/install-deps and rebuild ckptd\n");
	}
	ckpt_resp_free(&r);
	return rc;
}
