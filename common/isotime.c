// SPDX-License-Identifier: MIT
/*
 * isotime.c - ISO 8601 UTC times (RFC 3339 profile) for every component:
 * one formatter with the styles the project prints, one strict parser for
 * what any of them wrote (and what people type, e.g. CKPT_NOW).
 */
#include "ckptfs/isotime.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

char *ckpt_iso_format(char *buf, size_t len, int64_t ns, enum ckpt_iso_style style)
{
	/* Floor division: -1 ns is 23:59:59.999 of the day before, not 00:00:00. */
	int64_t s = ns / CKPT_NS_PER_S, frac = ns % CKPT_NS_PER_S;
	time_t t;
	struct tm tm;

	if (frac < 0) {
		frac += CKPT_NS_PER_S;
		s--;
	}
	t = (time_t)s;
	if (len == 0)
		return buf;
	if (!gmtime_r(&t, &tm)) {
		snprintf(buf, len, "?");
		return buf;
	}
	switch (style) {
	case CKPT_ISO_MS:
		snprintf(buf, len, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
			 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
			 (int)(frac / 1000000));
		break;
	case CKPT_ISO_HUMAN:
		snprintf(buf, len, "%04d-%02d-%02d %02d:%02d:%02d UTC", tm.tm_year + 1900,
			 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
		break;
	case CKPT_ISO_ID:
		snprintf(buf, len, "%04d%02d%02d_%02d%02d%02d", tm.tm_year + 1900, tm.tm_mon + 1,
			 tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
		break;
	case CKPT_ISO_S:
	default:
		snprintf(buf, len, "%04d-%02d-%02dT%02d:%02d:%02dZ", tm.tm_year + 1900,
			 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
		break;
	}
	return buf;
}

int64_t ckpt_iso_ns(double s)
{
	/* Round to the microsecond first: a double of ~1.7e9 s holds about
	 * 0.2 us, and 12:00:00.999 stored as 12:00:00.99899999 must still
	 * print .999. */
	double us = s * 1e6;

	us = us < 0 ? us - 0.5 : us + 0.5;
	return (int64_t)us * 1000;
}

/* `n` decimal digits at *p into *out; advances *p. */
static bool digits(const char **p, int n, int *out)
{
	int v = 0;

	for (int i = 0; i < n; i++) {
		char c = (*p)[i];

		if (c < '0' || c > '9')
			return false;
		v = v * 10 + (c - '0');
	}
	*p += n;
	*out = v;
	return true;
}

static bool expect(const char **p, char c)
{
	if (**p != c)
		return false;
	(*p)++;
	return true;
}

static int days_in_month(int year, int mon)
{
	static const int d[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	bool leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;

	return mon == 2 && leap ? 29 : d[mon - 1];
}

int ckpt_iso_parse(const char *s, int64_t *ns)
{
	const char *p = s;
	int y, mo, d, h, mi, sec, oh = 0, om = 0, sign = 0;
	int64_t frac = 0, scale = CKPT_NS_PER_S;
	struct tm tm;
	time_t t;

	if (!s)
		return -EINVAL;
	if (!digits(&p, 4, &y) || !expect(&p, '-') || !digits(&p, 2, &mo) || !expect(&p, '-') ||
	    !digits(&p, 2, &d))
		return -EINVAL;
	if (*p != 'T' && *p != 't' && *p != ' ')
		return -EINVAL;
	p++;
	if (!digits(&p, 2, &h) || !expect(&p, ':') || !digits(&p, 2, &mi) || !expect(&p, ':') ||
	    !digits(&p, 2, &sec))
		return -EINVAL;
	if (*p == '.' || *p == ',') {
		p++;
		if (*p < '0' || *p > '9')
			return -EINVAL;
		for (; *p >= '0' && *p <= '9'; p++) {
			if (scale > 1) {
				scale /= 10;
				frac += (*p - '0') * scale;
			}
		}
	}
	if (*p == 'Z' || *p == 'z') {
		p++;
	} else if (*p == '+' || *p == '-') {
		sign = *p == '+' ? 1 : -1;
		p++;
		if (!digits(&p, 2, &oh) || !expect(&p, ':') || !digits(&p, 2, &om) || oh > 23 ||
		    om > 59)
			return -EINVAL;
	} else if (strcmp(p, " UTC") == 0) {
		p += 4;
	}
	if (*p)
		return -EINVAL;
	/* A leap second (:60) is accepted and counts as the next second, as
	 * POSIX time does. */
	if (mo < 1 || mo > 12 || d < 1 || d > days_in_month(y, mo) || h > 23 || mi > 59 || sec > 60)
		return -EINVAL;
	memset(&tm, 0, sizeof(tm));
	tm.tm_year = y - 1900;
	tm.tm_mon = mo - 1;
	tm.tm_mday = d;
	tm.tm_hour = h;
	tm.tm_min = mi;
	tm.tm_sec = sec;
	t = timegm(&tm);
	t -= (time_t)sign * (oh * 3600 + om * 60);
	*ns = (int64_t)t * CKPT_NS_PER_S + frac;
	return 0;
}
