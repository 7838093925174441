/* SPDX-License-Identifier: MIT */
/*
 * cron.h - five-field cron expressions (minute hour day-of-month month
 * day-of-week) for `schedule.cron` in job specs: "*", "N", "A-B", "*\/S",
 * "A-B/S" and comma lists, month names JAN-DEC and day names SUN-SAT (any
 * case, also in ranges), and the macros @hourly, @daily (@midnight), @weekly,
 * @monthly, @yearly (@annually), as in crontab(5). Times are UTC.
 */
#ifndef CKPTFS_CRON_H
#define CKPTFS_CRON_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

struct ckpt_cron {
	uint64_t minute; /* bit N = minute N */
	uint32_t hour;
	uint32_t dom;	/* bit 1..31 */
	uint16_t month; /* bit 1..12 */
	uint8_t dow;	/* bit 0..6, Sunday = 0 (7 is accepted as Sunday) */
	int dom_star, dow_star;
};

/* Parse `expr`; 0, or -EINVAL with err saying which field is wrong. */
int ckpt_cron_parse(const char *expr, struct ckpt_cron *c, char *err, size_t errlen);

/* The first minute strictly after `after` that matches, or -1 if none within
 * five years (CKPT_CRON_HORIZON_S): ckptd refuses such a schedule at submit
 * ("0 0 31 2 *" never fires) and ends one that has run out. */
#define CKPT_CRON_HORIZON_S ((time_t)5 * 366 * 86400)
time_t ckpt_cron_next(const struct ckpt_cron *c, time_t after);

#endif /* CKPTFS_CRON_H */
