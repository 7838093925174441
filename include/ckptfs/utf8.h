/* SPDX-License-Identifier: MIT */
/* utf8.h - strict UTF-8 validation (RFC 3629: no overlongs, no surrogates). */
#ifndef CKPTFS_UTF8_H
#define CKPTFS_UTF8_H

#include <stdbool.h>
#include <stddef.h>

/* True when the `len` bytes at `s` are well-formed UTF-8. NUL bytes count as
 * well-formed; callers that forbid them check separately. */
bool ckpt_utf8_valid(const char *s, size_t len);

#endif /* CKPTFS_UTF8_H */
