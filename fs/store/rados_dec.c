// SPDX-License-Identifier: MIT
/*
 * rados_dec.c - the decoders of the rados backend (rados_i.h): the store
 * object's format line, a head's seq xattr, omap keys, notify payloads and
 * chunk object names, from bytes read from a cluster. No librados here, so
 * that the fuzz target runs exactly these without one.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rados_i.h"

int rdec_format(const char *buf, size_t n, long *version)
{
	size_t ml = strlen(RADOS_FORMAT_MAGIC);
	char num[24];
	size_t k = 0;

	if (n < ml || memcmp(buf, RADOS_FORMAT_MAGIC, ml))
		return -EPROTO;
	/* the number as strtol reads it, from a copy: buf has no NUL */
	for (size_t i = ml; i < n && k < sizeof(num) - 1 && buf[i]; i++)
		num[k++] = buf[i];
	num[k] = 0;
	*version = strtol(num, NULL, 10);
	return 0;
}

int rdec_seq(const char *txt, size_t n, uint64_t *seq)
{
	uint64_t v = 0;

	if (n == 0)
		return -EBADMSG;
	for (size_t i = 0; i < n; i++) {
		unsigned d = (unsigned char)txt[i] - '0';

		/* a commit writes seq + 1: UINT64_MAX itself is too large */
		if (d > 9 || v > (UINT64_MAX - 1 - d) / 10)
			return -EBADMSG;
		v = v * 10 + d;
	}
	*seq = v;
	return 0;
}

int rdec_key(const char *key, size_t klen, const char *prefix, char *name)
{
	size_t plen = strlen(prefix);

	if (klen <= plen || klen - plen > CKPT_NAME_MAX || memcmp(key, prefix, plen) ||
	    memchr(key + plen, 0, klen - plen))
		return -EINVAL;
	memcpy(name, key + plen, klen - plen);
	name[klen - plen] = 0;
	return 0;
}

const char *rdec_notify(const void *data, size_t len, char *run)
{
	if (len > CKPT_NAME_MAX || (len && memchr(data, 0, len)))
		return NULL;
	if (len)
		memcpy(run, data, len);
	run[len] = 0;
	if (len && name_check_kind(run, NAME_RUN, NULL) < 0)
		return NULL;
	return run;
}

int rdec_part_notify(const void *data, size_t len, char *run, char *version)
{
	const char *slash = len ? memchr(data, '/', len) : NULL;
	size_t rl = slash ? (size_t)(slash - (const char *)data) : 0;

	if (!slash || !rl || rl > CKPT_NAME_MAX || len - rl - 1 > CKPT_NAME_MAX ||
	    memchr(data, 0, len))
		return -EINVAL;
	memcpy(run, data, rl);
	run[rl] = 0;
	memcpy(version, slash + 1, len - rl - 1);
	version[len - rl - 1] = 0;
	if (name_check_kind(run, NAME_RUN, NULL) < 0 ||
	    name_check_kind(version, NAME_VERSION, NULL) < 0)
		return -EINVAL;
	return 0;
}

int rdec_chunk_oid(const char *oid, uint8_t *h)
{
	size_t pl = sizeof(RADOS_CHUNK) - 1;

	if (strncmp(oid, RADOS_CHUNK, pl))
		return -EINVAL;
	return chunk_unhex(oid + pl, h) < 0 ? -EINVAL : 0;
}
