// SPDX-License-Identifier: MIT
/*
 * fuzz_rados.c - libFuzzer target for what the rados backend decodes from a
 * cluster's bytes (fs/store/rados_i.h, the functions rados.c calls): the
 * store object's format line, a run head's "seq" xattr, omap keys of the
 * store object and of run heads, a notify payload, a chunk object's name.
 * The documents kept in omap (manifests, markers) and a head's data
 * (run.json) go to the registry as the dir backend's files do: fuzz_store.
 *
 * The input is up to five parts separated by a line "%%" (bytes, NULs
 * included; a part that is absent is not decoded):
 *   FORMAT %% SEQ %% OMAP-KEY %% NOTIFY %% OID
 *
 * Checked: each decoder accepts exactly what its contract says (rados_i.h)
 * and gives back the bytes it was given; what the backend writes (the
 * format line, a seq, "r/RUN", "v/NAME", a run notify, a chunk's name)
 * decodes to what was written.
 *   tests/fuzz/run-fuzz build/tests/fuzz/fuzz_rados tests/fuzz/corpus/rados -t 60
 */
#include <errno.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_util.h"
#include "rados_i.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define NPARTS 5

static void check_format(const char *p, size_t n)
{
	size_t ml = strlen(RADOS_FORMAT_MAGIC);
	int ok = n >= ml && !memcmp(p, RADOS_FORMAT_MAGIC, ml);
	long v = -12345, w = -1;
	char line[64];
	int len;

	FUZZ_CHECK((rdec_format(p, n, &v) == 0) == ok);
	if (!ok)
		return;
	/* the line format_check writes, with this version, reads back as it */
	if (v < INT32_MIN || v > INT32_MAX)
		v = 1;
	len = snprintf(line, sizeof(line), RADOS_FORMAT_MAGIC "%d\n", (int)v);
	FUZZ_CHECK(rdec_format(line, (size_t)len, &w) == 0 && w == v);
}

static void check_seq(const char *p, size_t n)
{
	unsigned __int128 want = 0;
	int ok = n > 0;
	uint64_t seq = 12345, back = 0;
	char txt[32];
	int len;

	for (size_t i = 0; i < n && ok; i++) {
		ok = p[i] >= '0' && p[i] <= '9';
		want = want * 10 + (unsigned)(p[i] - '0');
		ok = ok && want < UINT64_MAX;
	}
	if (rdec_seq(p, n, &seq) == 0) {
		FUZZ_CHECK(ok && seq == (uint64_t)want);
	} else {
		FUZZ_CHECK(!ok && seq == 12345);
		return;
	}
	/* what a commit writes next (PRIu64 of seq + 1) is read back as it */
	len = snprintf(txt, sizeof(txt), "%" PRIu64, seq + 1);
	if (seq + 1 < UINT64_MAX)
		FUZZ_CHECK(rdec_seq(txt, (size_t)len, &back) == 0 && back == seq + 1);
	else
		FUZZ_CHECK(rdec_seq(txt, (size_t)len, &back) == -EBADMSG);
}

static void check_key(const char *p, size_t n)
{
	static const char *const prefixes[] = {"r/", "v/", "o/", ""};

	for (size_t i = 0; i < sizeof(prefixes) / sizeof(prefixes[0]); i++) {
		const char *pre = prefixes[i];
		size_t pl = strlen(pre);
		char name[CKPT_NAME_MAX + 1], key[CKPT_NAME_MAX + 4], again[CKPT_NAME_MAX + 1];
		int ok = n > pl && n - pl <= CKPT_NAME_MAX && !memcmp(p, pre, pl) &&
			 !memchr(p + pl, 0, n - pl);
		int ret = rdec_key(p, n, pre, name);

		FUZZ_CHECK((ret == 0) == ok && (ret == 0 || ret == -EINVAL));
		if (!ok)
			continue;
		FUZZ_CHECK(strlen(name) == n - pl && !memcmp(name, p + pl, n - pl));
		/* the key the backend writes for this name ("%s%s") names it */
		snprintf(key, sizeof(key), "%s%s", pre, name);
		FUZZ_CHECK(rdec_key(key, strlen(key), pre, again) == 0 && !strcmp(again, name));
	}
}

static void check_notify(const char *p, size_t n)
{
	char run[CKPT_NAME_MAX + 1], again[CKPT_NAME_MAX + 1], ver[CKPT_NAME_MAX + 1];
	const char *got = rdec_notify(p, n, run);

	/* RUN/VERSION: two valid names that make up the payload exactly */
	if (rdec_part_notify(p, n, again, ver) == 0)
		FUZZ_CHECK(name_check_kind(again, NAME_RUN, NULL) == 0 &&
			   name_check_kind(ver, NAME_VERSION, NULL) == 0 &&
			   strlen(again) + 1 + strlen(ver) == n &&
			   !memcmp(p, again, strlen(again)) && p[strlen(again)] == '/' &&
			   !memcmp(p + strlen(again) + 1, ver, strlen(ver)));

	if (!got) {
		/* refused only what is no run name (then everything is re-read) */
		char *s = fuzz_str((const uint8_t *)p, n);

		FUZZ_CHECK(n > CKPT_NAME_MAX || memchr(p, 0, n) ||
			   name_check_kind(s, NAME_RUN, NULL) < 0);
		free(s);
		return;
	}
	FUZZ_CHECK(got == run && strlen(run) == n && !memcmp(run, p, n));
	FUZZ_CHECK(n == 0 || name_check_kind(run, NAME_RUN, NULL) == 0);
	/* the payload changed() sends for this run: strlen(run) bytes, no NUL */
	FUZZ_CHECK(rdec_notify(run, strlen(run), again) && !strcmp(again, run));
}

static void check_oid(const char *p, size_t n)
{
	char *oid = fuzz_str((const uint8_t *)p, n), name[sizeof(RADOS_CHUNK) + CHUNK_HEX_LEN];
	size_t pl = sizeof(RADOS_CHUNK) - 1;
	uint8_t h[CHUNK_HASH_LEN], h2[CHUNK_HASH_LEN];
	int ret = rdec_chunk_oid(oid, h);

	FUZZ_CHECK(ret == 0 || ret == -EINVAL);
	if (ret == 0) {
		/* a chunk's name is canonical: its hash names it again, byte for byte */
		memcpy(name, RADOS_CHUNK, pl);
		chunk_hex(h, name + pl);
		FUZZ_CHECK(!strcmp(name, oid));
	}
	/* the name chunk_oid gives the hash of these bytes decodes to the hash */
	hash128(p, n, h);
	memcpy(name, RADOS_CHUNK, pl);
	chunk_hex(h, name + pl);
	FUZZ_CHECK(rdec_chunk_oid(name, h2) == 0 && !memcmp(h, h2, sizeof(h)));
	free(oid);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* an exact-size copy of each part: ASan sees a read past its end */
	static void (*const check[NPARTS])(const char *, size_t) = {
		check_format, check_seq, check_key, check_notify, check_oid};
	const uint8_t *p = data, *end = data + size;

	for (int i = 0; i < NPARTS && p; i++) {
		const uint8_t *sep =
			i < NPARTS - 1 ? memmem(p, (size_t)(end - p), "\n%%\n", 4) : NULL;
		size_t n = sep ? (size_t)(sep - p) : (size_t)(end - p);
		char *part = malloc(n ? n : 1);

		FUZZ_CHECK(part);
		memcpy(part, p, n);
		check[i](part, n);
		free(part);
		p = sep ? sep + 4 : NULL;
	}
	return 0;
}
