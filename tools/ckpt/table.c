// SPDX-License-Identifier: MIT
/*
 * table.c - how ckpt prints things for people: the operations guide's tables
 * (columns padded to a minimum width), ages ("2d" in tables, "2 days" in
 * details), UTC times, byte sizes, numbers, JSON and progress bars.
 */
#include "ckpt.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

void ckpt_fmt_age_short(char *buf, size_t len, time_t now, time_t t)
{
	long long d = (long long)(now - t);

	if (d < 0)
		d = 0;
	if (d >= 86400)
		snprintf(buf, len, "%lldd", d / 86400);
	else if (d >= 3600)
		snprintf(buf, len, "%lldh", d / 3600);
	else if (d >= 60)
		snprintf(buf, len, "%lldm", d / 60);
	else
		snprintf(buf, len, "%llds", d);
}

void ckpt_fmt_age_long(char *buf, size_t len, time_t now, time_t t)
{
	long long d = (long long)(now - t), v;
	const char *unit;

	if (d < 0)
		d = 0;
	if (d >= 86400) {
		v = d / 86400;
		unit = "day";
	} else if (d >= 3600) {
		v = d / 3600;
		unit = "hour";
	} else if (d >= 60) {
		v = d / 60;
		unit = "minute";
	} else {
		v = d;
		unit = "second";
	}
	snprintf(buf, len, "%lld %s%s", v, unit, v == 1 ? "" : "s");
}

void ckpt_fmt_bytes(char *buf, size_t len, uint64_t n)
{
	static const char *units[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
	double v = (double)n;
	int u = 0;

	if (n < 1024) {
		snprintf(buf, len, "%llu B", (unsigned long long)n);
		return;
	}
	while (v >= 1024 && u < 5) {
		v /= 1024;
		u++;
	}
	snprintf(buf, len, "%.1f %s", v, units[u]);
}

void ckpt_fmt_num(char *buf, size_t len, double v)
{
	/* Whole numbers as such (1450, not 1.45e+03); otherwise the shortest %g
	 * that reads back as the same double, at most 6 significant digits (what
	 * a person compares): 0.28 stays 0.28, 5.521362017 becomes 5.52136. */
	if (v == floor(v) && fabs(v) < 1e15) {
		snprintf(buf, len, "%.0f", v);
		return;
	}
	for (int prec = 1; prec <= 6; prec++) {
		snprintf(buf, len, "%.*g", prec, v);
		if (strtod(buf, NULL) == v || isnan(v))
			return;
	}
}

void ckpt_table_init(struct ckpt_table *t, size_t ncols, const char **head, const int *minw)
{
	memset(t, 0, sizeof(*t));
	t->ncols = ncols;
	t->head = head;
	t->minw = minw;
}

void ckpt_table_add(struct ckpt_table *t, ...)
{
	va_list ap;

	if (t->nrows == t->cap) {
		size_t cap = t->cap ? t->cap * 2 : 16;
		char **cells = realloc(t->cells, cap * t->ncols * sizeof(*cells));
		if (!cells)
			abort(); /* out of memory in a CLI: nothing sensible left to do */
		t->cells = cells;
		t->cap = cap;
	}
	va_start(ap, t);
	for (size_t i = 0; i < t->ncols; i++) {
		const char *s = va_arg(ap, const char *);
		t->cells[t->nrows * t->ncols + i] = strdup(s ? s : "-");
	}
	va_end(ap);
	t->nrows++;
}

void ckpt_table_print(struct ckpt_table *t, FILE *f)
{
	size_t w[16];

	for (size_t i = 0; i < t->ncols && i < 16; i++) {
		size_t m = strlen(t->head[i]) + 2;
		for (size_t r = 0; r < t->nrows; r++) {
			size_t l = strlen(t->cells[r * t->ncols + i]) + 2;
			if (l > m)
				m = l;
		}
		if (t->minw && (size_t)t->minw[i] > m)
			m = (size_t)t->minw[i];
		w[i] = m;
	}
	for (size_t r = 0; r <= t->nrows; r++) {
		/* Build the line, then drop trailing blanks (an empty last cell). */
		char *line = NULL;
		size_t len = 0;
		FILE *m = open_memstream(&line, &len);
		if (!m)
			abort();
		for (size_t i = 0; i < t->ncols; i++) {
			const char *s = r == 0 ? t->head[i] : t->cells[(r - 1) * t->ncols + i];
			if (i + 1 == t->ncols)
				fputs(s, m);
			else
				fprintf(m, "%-*s", (int)w[i], s);
		}
		fclose(m);
		while (len && line[len - 1] == ' ')
			line[--len] = '\0';
		fprintf(f, "%s\n", line);
		free(line);
	}
}

void ckpt_table_free(struct ckpt_table *t)
{
	for (size_t i = 0; i < t->nrows * t->ncols; i++)
		free(t->cells[i]);
	free(t->cells);
	t->cells = NULL;
	t->nrows = t->cap = 0;
}

json_t *ckpt_jget(json_t *o, ...)
{
	va_list ap;
	const char *k;
	json_t *v = NULL;

	if (!json_is_object(o))
		return NULL;
	va_start(ap, o);
	while ((k = va_arg(ap, const char *))) {
		v = json_object_get(o, k);
		if (v && !json_is_null(v))
			break;
		v = NULL;
	}
	va_end(ap);
	return v;
}

const char *ckpt_jstr(json_t *o, const char *key)
{
	json_t *v = json_is_object(o) ? json_object_get(o, key) : NULL;

	return json_is_string(v) ? json_string_value(v) : NULL;
}

void ckpt_json_print(json_t *j)
{
	char *s = json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_ENCODE_ANY);

	if (s) {
		puts(s);
		free(s);
	}
}

void ckpt_progress(struct ckpt_ctx *c, const char *what, uint64_t done, uint64_t total)
{
	char d[32], t[32];
	int pct, fill;

	if (!c->err_tty || c->quiet)
		return;
	pct = total ? (int)(done * 100 / total) : 100;
	fill = pct * 30 / 100;
	ckpt_fmt_bytes(d, sizeof(d), done);
	ckpt_fmt_bytes(t, sizeof(t), total);
	fprintf(stderr, "\r%-30.30s [%.*s%*s] %3d%% %s / %s\033[K", what, fill,
		"##############################", 30 - fill, "", pct, d, t);
	fflush(stderr);
}

void ckpt_progress_end(struct ckpt_ctx *c)
{
	if (!c->err_tty || c->quiet)
		return;
	fputs("\r\033[K", stderr);
	fflush(stderr);
}

struct ckpt_busy {
	pthread_t th;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool done;
	struct timespec t0;
	char what[256];
};

static double busy_elapsed(const struct ckpt_busy *b)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (double)(now.tv_sec - b->t0.tv_sec) + (double)(now.tv_nsec - b->t0.tv_nsec) / 1e9;
}

static void busy_draw(const struct ckpt_busy *b, unsigned frame)
{
	static const char spin[] = "|/-\\";

	fprintf(stderr, "\r%s  %c %.0f s\033[K", b->what, spin[frame % 4], floor(busy_elapsed(b)));
	fflush(stderr);
}

static void *busy_loop(void *arg)
{
	struct ckpt_busy *b = arg;
	unsigned frame = 0;

	pthread_mutex_lock(&b->mu);
	while (!b->done) {
		struct timespec dl;

		clock_gettime(CLOCK_REALTIME, &dl);
		dl.tv_nsec += 200 * 1000000L;
		if (dl.tv_nsec >= 1000000000L) {
			dl.tv_sec++;
			dl.tv_nsec -= 1000000000L;
		}
		if (pthread_cond_timedwait(&b->cv, &b->mu, &dl) == ETIMEDOUT && !b->done)
			busy_draw(b, ++frame);
	}
	pthread_mutex_unlock(&b->mu);
	return NULL;
}

struct ckpt_busy *ckpt_busy_start(struct ckpt_ctx *c, const char *what)
{
	struct ckpt_busy *b;

	if (!c->err_tty || c->quiet || c->json)
		return NULL;
	b = calloc(1, sizeof(*b));
	if (!b)
		return NULL;
	snprintf(b->what, sizeof(b->what), "%s", what);
	clock_gettime(CLOCK_MONOTONIC, &b->t0);
	pthread_mutex_init(&b->mu, NULL);
	pthread_cond_init(&b->cv, NULL);
	/* The first frame now, so that even instant work shows what it did. */
	busy_draw(b, 0);
	if (pthread_create(&b->th, NULL, busy_loop, b) != 0) {
		pthread_cond_destroy(&b->cv);
		pthread_mutex_destroy(&b->mu);
		free(b);
		fputs("\r\033[K", stderr);
		return NULL;
	}
	return b;
}

void ckpt_busy_end(struct ckpt_busy *b)
{
	if (!b)
		return;
	pthread_mutex_lock(&b->mu);
	b->done = true;
	pthread_cond_signal(&b->cv);
	pthread_mutex_unlock(&b->mu);
	pthread_join(b->th, NULL);
	pthread_cond_destroy(&b->cv);
	pthread_mutex_destroy(&b->mu);
	fputs("\r\033[K", stderr);
	fflush(stderr);
	free(b);
}
