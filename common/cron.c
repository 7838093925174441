// SPDX-License-Identifier: MIT
/*
 * cron.c - parse five-field cron expressions and find the next matching
 * minute (crontab(5) semantics: when both day fields are restricted, a day
 * matches if either does; month and day-of-week names; @hourly and the other
 * macros).
 */
#include "ckptfs/cron.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static const char *const field_names[5] = {"minute", "hour", "day of month", "month",
					   "day of week"};
static const int field_min[5] = {0, 0, 1, 1, 0};
static const int field_max[5] = {59, 23, 31, 12, 7};

static const char *const month_names[] = {"jan", "feb", "mar", "apr", "may", "jun",
					  "jul", "aug", "sep", "oct", "nov", "dec"};
static const char *const dow_names[] = {"sun", "mon", "tue", "wed", "thu", "fri", "sat"};

/* A number, or in the month and day-of-week fields a three-letter name in
 * any case (crontab(5)): JAN = 1, SUN = 0. */
static int parse_num(const char **p, int f, int *out)
{
	char *end;
	long v;

	if ((f == 3 || f == 4) && ((**p | 0x20) >= 'a' && (**p | 0x20) <= 'z')) {
		const char *const *names = f == 3 ? month_names : dow_names;
		int n = f == 3 ? 12 : 7;

		for (int i = 0; i < n; i++)
			if (!strncasecmp(*p, names[i], 3)) {
				*out = f == 3 ? i + 1 : i;
				*p += 3;
				return 0;
			}
		return -EINVAL;
	}
	if (**p < '0' || **p > '9')
		return -EINVAL;
	v = strtol(*p, &end, 10);
	if (v > 1000)
		return -EINVAL;
	*out = (int)v;
	*p = end;
	return 0;
}

/* One field (a comma list) into a bitmask. */
static int parse_field(const char *s, int f, uint64_t *mask, int *star)
{
	const char *p = s;

	*mask = 0;
	*star = !strcmp(s, "*");
	for (;;) {
		int lo, hi, step = 1, v;

		if (*p == '*') {
			lo = field_min[f];
			hi = field_max[f];
			p++;
		} else {
			if (parse_num(&p, f, &lo))
				return -EINVAL;
			hi = lo;
			if (*p == '-') {
				p++;
				if (parse_num(&p, f, &hi))
					return -EINVAL;
			}
		}
		if (*p == '/') {
			p++;
			if (parse_num(&p, -1, &step) || step < 1)
				return -EINVAL;
		}
		if (lo < field_min[f] || hi > field_max[f] || lo > hi)
			return -ERANGE;
		for (v = lo; v <= hi; v += step)
			*mask |= 1ull << (f == 4 && v == 7 ? 0 : v);
		if (*p == ',') {
			p++;
			continue;
		}
		return *p ? -EINVAL : 0;
	}
}

/* crontab(5)'s macros; @reboot has no meaning for a job schedule. */
static const struct {
	const char *name, *expr;
} macros[] = {
	{"@yearly", "0 0 1 1 *"}, {"@annually", "0 0 1 1 *"}, {"@monthly", "0 0 1 * *"},
	{"@weekly", "0 0 * * 0"}, {"@daily", "0 0 * * *"},    {"@midnight", "0 0 * * *"},
	{"@hourly", "0 * * * *"},
};

int ckpt_cron_parse(const char *expr, struct ckpt_cron *c, char *err, size_t errlen)
{
	char buf[256], *save = NULL, *tok;
	uint64_t masks[5];
	int stars[5], n = 0, ret;

	if (!expr || strlen(expr) >= sizeof(buf)) {
		snprintf(err, errlen,
			 "not a cron expression (expected 5 fields, e.g. \"0 * * * *\")");
		return -EINVAL;
	}
	if (expr[0] == '@') {
		for (size_t i = 0; i < sizeof(macros) / sizeof(macros[0]); i++)
			if (!strcasecmp(expr, macros[i].name))
				return ckpt_cron_parse(macros[i].expr, c, err, errlen);
		snprintf(err, errlen,
			 "is not one of @hourly, @daily, @midnight, @weekly, @monthly, @yearly, "
			 "@annually (@reboot has no meaning for a job)");
		return -EINVAL;
	}
	strcpy(buf, expr);
	for (tok = strtok_r(buf, " \t", &save); tok; tok = strtok_r(NULL, " \t", &save)) {
		if (n == 5) {
			n++;
			break;
		}
		ret = parse_field(tok, n, &masks[n], &stars[n]);
		if (ret) {
			snprintf(err, errlen,
				 "%s field '%s' %s (allowed %d-%d%s, *, lists, ranges, /step)",
				 field_names[n], tok,
				 ret == -ERANGE ? "is out of range" : "is not valid", field_min[n],
				 field_max[n],
				 n == 3	  ? " or JAN-DEC"
				 : n == 4 ? " or SUN-SAT"
					  : "");
			return -EINVAL;
		}
		n++;
	}
	if (n != 5) {
		snprintf(err, errlen,
			 "has %s than 5 fields (minute hour day-of-month month day-of-week)",
			 n < 5 ? "fewer" : "more");
		return -EINVAL;
	}
	c->minute = masks[0];
	c->hour = (uint32_t)masks[1];
	c->dom = (uint32_t)masks[2];
	c->month = (uint16_t)masks[3];
	c->dow = (uint8_t)masks[4];
	c->dom_star = stars[2];
	c->dow_star = stars[4];
	return 0;
}

static int day_matches(const struct ckpt_cron *c, const struct tm *tm)
{
	int dom = !!(c->dom & (1u << tm->tm_mday));
	int dow = !!(c->dow & (1u << tm->tm_wday));

	if (c->dom_star || c->dow_star)
		return dom && dow;
	return dom || dow;
}

time_t ckpt_cron_next(const struct ckpt_cron *c, time_t after)
{
	time_t t = after - after % 60 + 60;
	time_t limit = after + CKPT_CRON_HORIZON_S;
	struct tm tm;

	while (t < limit) {
		gmtime_r(&t, &tm);
		if (!(c->month & (1u << (tm.tm_mon + 1))) || !day_matches(c, &tm)) {
			t += 86400 - (tm.tm_hour * 3600 + tm.tm_min * 60);
			continue;
		}
		if (!(c->hour & (1u << tm.tm_hour))) {
			t += 3600 - tm.tm_min * 60;
			continue;
		}
		if (c->minute & (1ull << tm.tm_min))
			return t;
		t += 60;
	}
	return -1;
}
