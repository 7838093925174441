/* SPDX-License-Identifier: MIT */
/*
 * isotime.h - ISO 8601 UTC times, the one formatter and parser every
 * component uses (manifests, xattrs, .stats, the API, events, ckpt's tables),
 * so that what one writes the others read back.
 *
 * Times are nanoseconds since the Unix epoch (int64_t); a double of seconds
 * converts with ckpt_iso_ns().
 */
#ifndef CKPTFS_ISOTIME_H
#define CKPTFS_ISOTIME_H

#include <stddef.h>
#include <stdint.h>

#define CKPT_NS_PER_S 1000000000LL
/* Big enough for every style, any year a time_t holds. */
#define CKPT_ISO_LEN 40

enum ckpt_iso_style {
	CKPT_ISO_S,	/* 2024-12-13T14:35:00Z: manifests, xattrs, .stats */
	CKPT_ISO_MS,	/* 2024-12-13T14:35:00.123Z: events, the API's times */
	CKPT_ISO_HUMAN, /* 2024-12-13 14:35:00 UTC: ckpt's tables */
	CKPT_ISO_ID,	/* 20241213_143500: the stamp in operation ids */
};

/* Format `ns` in `style` into buf (truncated to len, always NUL-terminated
 * when len > 0); returns buf. Sub-second parts are truncated, not rounded,
 * so a time never prints later than it is. */
char *ckpt_iso_format(char *buf, size_t len, int64_t ns, enum ckpt_iso_style style);

/* Seconds (a double, as ckptd keeps them) to nanoseconds. */
int64_t ckpt_iso_ns(double s);

/* Parse "YYYY-MM-DDTHH:MM:SS[.fraction][Z|+HH:MM|-HH:MM| UTC]" (a space may
 * stand for the 'T'; no zone means UTC) into *ns. Every field is range
 * checked (February 30 is refused). Returns 0, or -EINVAL when `s` is not
 * such a time (nothing else may follow it). */
int ckpt_iso_parse(const char *s, int64_t *ns);

#endif /* CKPTFS_ISOTIME_H */
