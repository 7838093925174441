// SPDX-License-Identifier: MIT
/*
 * fuzz_cron.c - libFuzzer target for cron expressions (schedule.cron). The
 * input is the expression. Checked: a refusal says why; an accepted
 * expression's next fire times are whole minutes, strictly later, within the
 * horizon, match every field, and no earlier minute of the first day matches.
 *   tests/fuzz/run-fuzz build/tests/fuzz/fuzz_cron tests/fuzz/corpus/cron -t 60
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ckptfs/cron.h"
#include "fuzz_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int matches(const struct ckpt_cron *c, time_t t)
{
	struct tm tm;
	int dom, dow;

	gmtime_r(&t, &tm);
	dom = !!(c->dom & (1u << tm.tm_mday));
	dow = !!(c->dow & (1u << tm.tm_wday));
	if (!(c->minute & (1ull << tm.tm_min)) || !(c->hour & (1u << tm.tm_hour)) ||
	    !(c->month & (1u << (tm.tm_mon + 1))))
		return 0;
	return c->dom_star || c->dow_star ? dom && dow : dom || dow;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *expr = fuzz_str(data, size), err[256] = "";
	struct ckpt_cron c;
	time_t after = 1767225600; /* 2026-01-01T00:00:00Z */

	if (ckpt_cron_parse(expr, &c, err, sizeof(err)) < 0) {
		FUZZ_CHECK(err[0]);
		free(expr);
		return 0;
	}
	FUZZ_CHECK(c.minute && c.hour && c.dom && c.month && c.dow);
	FUZZ_CHECK(!(c.minute >> 60) && !(c.hour >> 24) && !(c.dom & 1));
	FUZZ_CHECK(!(c.month & 1) && !(c.month >> 13) && !(c.dow >> 7));
	for (int i = 0; i < 3; i++) {
		time_t t = ckpt_cron_next(&c, after);

		if (t < 0)
			break;
		FUZZ_CHECK(t > after && t % 60 == 0 && t - after <= CKPT_CRON_HORIZON_S);
		FUZZ_CHECK(matches(&c, t));
		if (i == 0)
			for (time_t u = after - after % 60 + 60; u < t && u < after + 86400;
			     u += 60)
				FUZZ_CHECK(!matches(&c, u));
		after = t;
	}
	free(expr);
	return 0;
}
