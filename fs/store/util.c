// SPDX-License-Identifier: MIT
/*
 * util.c - the leaf helpers (util_i.h): per-thread error sentences and the
 * log, clocks, XXH128 chunk hashes and their hex form, the rules for names,
 * and sorted arrays of named items.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <xxhash.h>

#include "ckptfs/utf8.h"
#include "util_i.h"

static __thread char errbuf[512];

int store_err(struct ckpt_store *s, int ret, const char *fmt, ...)
{
	va_list ap;

	(void)s;
	va_start(ap, fmt);
	vsnprintf(errbuf, sizeof(errbuf), fmt, ap);
	va_end(ap);
	return ret;
}

static void (*log_fn)(const char *line);

void ckpt_store_set_log(void (*fn)(const char *line))
{
	__atomic_store_n(&log_fn, fn, __ATOMIC_RELEASE);
}

void store_log(const char *fmt, ...)
{
	void (*fn)(const char *) = __atomic_load_n(&log_fn, __ATOMIC_ACQUIRE);
	char line[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (fn)
		fn(line);
	else
		fprintf(stderr, "ckptfs-store[%d]: %s\n", (int)getpid(), line);
}

const char *ckpt_store_strerror(struct ckpt_store *s)
{
	(void)s;
	return errbuf[0] ? errbuf : "no error";
}

int64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

int64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

void hash128(const void *p, size_t n, uint8_t *out)
{
	XXH128_hash_t h = XXH3_128bits(p, n);
	XXH128_canonical_t c;

	XXH128_canonicalFromHash(&c, h);
	memcpy(out, c.digest, CHUNK_HASH_LEN);
}

void chunk_hex(const uint8_t *h, char *out)
{
	static const char x[] = "0123456789abcdef";

	for (int i = 0; i < CHUNK_HASH_LEN; i++) {
		out[2 * i] = x[h[i] >> 4];
		out[2 * i + 1] = x[h[i] & 15];
	}
	out[CHUNK_HEX_LEN] = 0;
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

int chunk_unhex(const char *hex, uint8_t *h)
{
	if (strlen(hex) != CHUNK_HEX_LEN)
		return -EINVAL;
	for (int i = 0; i < CHUNK_HASH_LEN; i++) {
		int a = hexval(hex[2 * i]), b = hexval(hex[2 * i + 1]);

		if (a < 0 || b < 0)
			return -EINVAL;
		h[i] = (uint8_t)(a << 4 | b);
	}
	return 0;
}

const char *ckpt_vstate_name(enum ckpt_vstate st)
{
	switch (st) {
	case CKPT_V_OPEN:
		return "open";
	case CKPT_V_COMMITTED:
		return "committed";
	case CKPT_V_INCOMPLETE:
		return "incomplete";
	case CKPT_V_CORRUPT:
		return "corrupt";
	case CKPT_V_RETIRED:
		return "retired";
	}
	return "unknown";
}

/* kind NAME_COMP: path component inside a version, NAME_RUN: run, NAME_VERSION: version
 * (also not "latest"/"best") */
int name_check_kind(const char *name, int kind, const char **why)
{
	const char *w = NULL;
	size_t l = name ? strlen(name) : 0;
	int ret = -EINVAL;

	if (!l)
		w = "the name is empty";
	else if (l > CKPT_NAME_MAX) {
		w = "the name is longer than 255 bytes";
		ret = -ENAMETOOLONG;
	} else if (!strcmp(name, ".") || !strcmp(name, ".."))
		w = "\".\" and \"..\" are not names";
	else if (strchr(name, '/'))
		w = "a name cannot contain '/'";
	else if (!ckpt_utf8_valid(name, l))
		w = "the name is not valid UTF-8";
	else if (kind != NAME_COMP && (!strncmp(name, ".ckpt", 5) || !strcmp(name, ".manifest") ||
				       !strcmp(name, ".stats")))
		/* runs and versions name files of the store (temporary files
		 * are .ckpt-tmp-*); inside a version every name is the user's
		 * except .manifest at its root (new_entry in api.c) */
		w = "run and version names starting with \".ckpt\", \".manifest\" and "
		    "\".stats\" are reserved";
	else if (kind == NAME_VERSION && (!strcmp(name, "latest") || !strcmp(name, "best")))
		w = "\"latest\" and \"best\" are reserved in a run";
	else {
		for (size_t i = 0; i < l; i++) {
			unsigned char c = (unsigned char)name[i];

			if (c < 0x20 || c == 0x7f) {
				w = "the name contains a control character";
				break;
			}
		}
	}
	if (why)
		*why = w;
	return w ? ret : 0;
}

int ckpt_name_check(const char *name, const char **why)
{
	return name_check_kind(name, NAME_COMP, why);
}

void ckpt_strv_free(char **v, size_t n)
{
	if (!v)
		return;
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

size_t sorted_pos(const void *items, size_t n, const char *(*name_of)(const void *item),
		  const char *key, bool *found)
{
	const void *const *v = items;
	size_t lo = 0, hi = n;

	*found = false;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		int c = strcmp(name_of(&v[mid]), key);

		if (c == 0) {
			*found = true;
			return mid;
		}
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* Open a gap at index i of the array *arrp (n elements of `elem` bytes, room
 * for *cap), doubling it when full: 0 or -ENOMEM (the array is unchanged). */
static int sorted_make_room(void *arrp, size_t elem, size_t n, size_t *cap, size_t i)
{
	char *a;

	memcpy(&a, arrp, sizeof(a));
	if (n == *cap) {
		size_t c = *cap ? *cap * 2 : 8;
		char *b = realloc(a, c * elem);

		if (!b)
			return -ENOMEM;
		a = b;
		*cap = c;
		memcpy(arrp, &a, sizeof(a));
	}
	memmove(a + (i + 1) * elem, a + i * elem, (n - i) * elem);
	return 0;
}

int sorted_insert(void *arrp, size_t *n, size_t *cap, const char *(*name_of)(const void *item),
		  const char *key, void *item)
{
	char *a;
	bool found;
	size_t i;

	memcpy(&a, arrp, sizeof(a));
	i = sorted_pos(a, *n, name_of, key, &found);
	if (found)
		return -EEXIST;
	if (sorted_make_room(arrp, sizeof(item), *n, cap, i) < 0)
		return -ENOMEM;
	memcpy(&a, arrp, sizeof(a));
	memcpy(a + i * sizeof(item), &item, sizeof(item));
	(*n)++;
	return 0;
}
