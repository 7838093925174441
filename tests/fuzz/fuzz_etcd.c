// SPDX-License-Identifier: MIT
/*
 * fuzz_etcd.c - libFuzzer target for what ckptd reads from etcd's v3 JSON
 * gateway (supervisor/etcd.c, the decoders its calls use): an answer's
 * body with its HTTP status (etcd_answer), then what each call reads from
 * it: a lease grant, a keepalive, a txn's outcome, a range's keys and
 * values in base64 (etcd_range_decode, with the prefix rdzv.c asks for).
 * The watch stream's chunks are not parsed (each one only wakes ckptd's
 * loop, which then reads a range), so there is no decoder of them to fuzz.
 *
 * The input is a first line "CALL STATUS" (CALL one of range, grant,
 * keepalive, txn, put; STATUS the HTTP status, 200 when absent) and the
 * body after it, as etcd sent it.
 *
 * Checked: an answer is taken only with status 200 and a JSON object, else
 * refused with a sentence naming etcd; a range gives only keys under the
 * prefix, with no NUL in a key or value, each from the answer's kvs in
 * order; a grant gives a lease or says why; base64 of any bytes (the
 * body) decodes to them, and decoding refuses exactly what is not base64.
 * Every key of a range (and the body, as a key) goes through rdzv.c's
 * parser of the gang's key names (rdzv_key.c): it takes exactly the names
 * rdzv.c writes (numbers as "%lld" of one >= 0, at most 18 digits), and
 * what it takes prints back as the same key.
 *   tests/fuzz/run-fuzz build/tests/fuzz/fuzz_etcd tests/fuzz/corpus/etcd -t 60
 */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "etcd_i.h"
#include "rdzv_key.h"
#include "fuzz_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* What rdzv.c watches and reads: /ckpt/JOB/ */
#define PREFIX "/ckpt/job-1/"
static const char b64c[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* Any bytes through base64 and back; the body as base64 text. */
static void check_b64(const uint8_t *data, size_t size, const char *text)
{
	char *enc = etcd_b64(data, size), *dec;
	size_t len = 12345, tl = strlen(text), valid = 1;

	FUZZ_CHECK(enc && strlen(enc) == 4 * ((size + 2) / 3));
	dec = etcd_unb64(enc, &len);
	FUZZ_CHECK(dec && len == size && !memcmp(dec, data, size) && dec[len] == 0);
	free(dec);
	free(enc);

	for (size_t i = 0; i < tl && text[i] != '='; i++)
		valid &= strchr(b64c, text[i]) != NULL;
	dec = etcd_unb64(text, &len);
	FUZZ_CHECK((dec != NULL) == (valid != 0));
	if (dec) {
		char *again, *back;
		size_t l2;

		FUZZ_CHECK(len <= tl / 4 * 3 + 2 && dec[len] == 0);
		/* what it decoded to encodes and decodes to the same bytes */
		again = etcd_b64(dec, len);
		FUZZ_CHECK(again);
		back = etcd_unb64(again, &l2);
		FUZZ_CHECK(back && l2 == len && !memcmp(back, dec, len));
		free(back);
		free(again);
		free(dec);
	}
}

/* A number as rdzv.c writes one: digits, no leading zero, at most 18. */
static int canon(const char *s, size_t n)
{
	if (!n || n > 18 || (n > 1 && s[0] == '0'))
		return 0;
	for (size_t i = 0; i < n; i++)
		if (s[i] < '0' || s[i] > '9')
			return 0;
	return 1;
}

/* Which kind k is, found another way: its fields split at '/'. */
static enum rdzv_key_kind oracle(const char *k)
{
	const char *f[4];
	size_t len[4], nf = 0;

	for (const char *p = k;; p++) {
		const char *e = strchr(p, '/');

		if (nf == 4)
			return RDZV_KEY_OTHER;
		f[nf] = p;
		len[nf++] = e ? (size_t)(e - p) : strlen(p);
		if (!e)
			break;
		p = e;
	}
#define IS(i, w) (len[i] == strlen(w) && !strncmp(f[i], w, len[i]))
	if (nf == 1 && IS(0, "gen"))
		return RDZV_KEY_GEN;
	if (nf == 2 && IS(0, "hosts") && canon(f[1], len[1]))
		return RDZV_KEY_HOST;
	if (nf == 2 && IS(0, "done") && canon(f[1], len[1]))
		return RDZV_KEY_DONE;
	if (nf == 2 && IS(0, "plan") && canon(f[1], len[1]))
		return RDZV_KEY_PLAN;
	if (nf == 3 && IS(0, "ready") && canon(f[1], len[1]) && canon(f[2], len[2]))
		return RDZV_KEY_READY;
#undef IS
	return RDZV_KEY_OTHER;
}

static void check_key(const char *k)
{
	struct rdzv_key rk;
	enum rdzv_key_kind kind = rdzv_key_parse(k, &rk);
	char again[96];

	FUZZ_CHECK(kind == oracle(k));
	switch (kind) {
	case RDZV_KEY_GEN:
		snprintf(again, sizeof(again), "gen");
		break;
	case RDZV_KEY_HOST:
		snprintf(again, sizeof(again), "hosts/%lld", (long long)rk.node);
		break;
	case RDZV_KEY_DONE:
		snprintf(again, sizeof(again), "done/%lld", (long long)rk.node);
		break;
	case RDZV_KEY_PLAN:
		snprintf(again, sizeof(again), "plan/%lld", (long long)rk.attempt);
		break;
	case RDZV_KEY_READY:
		snprintf(again, sizeof(again), "ready/%lld/%lld", (long long)rk.attempt,
			 (long long)rk.node);
		break;
	default:
		return;
	}
	FUZZ_CHECK(!strcmp(again, k));
}

/* The keys rdzv.c writes, of numbers made from the input, parse back. */
static void check_written(const uint8_t *data, size_t size)
{
	uint64_t a = 0, b = 0;
	struct rdzv_key rk;
	char k[96];

	memcpy(&a, data, size < 8 ? size : 8);
	if (size > 8)
		memcpy(&b, data + 8, size < 16 ? size - 8 : 8);
	a %= 1000000000000000000ull;
	b %= 1000000000000000000ull;
	snprintf(k, sizeof(k), "ready/%llu/%llu", (unsigned long long)a, (unsigned long long)b);
	FUZZ_CHECK(rdzv_key_parse(k, &rk) == RDZV_KEY_READY && rk.attempt == (int64_t)a &&
		   rk.node == (int64_t)b);
	snprintf(k, sizeof(k), "hosts/%llu", (unsigned long long)b);
	FUZZ_CHECK(rdzv_key_parse(k, &rk) == RDZV_KEY_HOST && rk.node == (int64_t)b);
	snprintf(k, sizeof(k), "plan/%llu", (unsigned long long)a);
	FUZZ_CHECK(rdzv_key_parse(k, &rk) == RDZV_KEY_PLAN && rk.attempt == (int64_t)a);
}

static void check_range(json_t *r)
{
	json_t *kvs = json_object_get(r, "kvs");
	struct etcd_kv *kv = NULL;
	size_t n = 99, j = 0;

	FUZZ_CHECK(etcd_range_decode(r, PREFIX, &kv, &n) == 0);
	FUZZ_CHECK(kv && n <= json_array_size(kvs));
	/* each result is one of the answer's kvs, in the answer's order */
	for (size_t i = 0; i < json_array_size(kvs) && j < n; i++) {
		json_t *o = json_array_get(kvs, i);
		const char *k = json_string_value(json_object_get(o, "key"));
		const char *v = json_string_value(json_object_get(o, "value"));
		char *dk = etcd_unb64(k ? k : "", NULL), *dv = etcd_unb64(v ? v : "", NULL);

		if (dk && dv && !strcmp(dk, kv[j].key) && !strcmp(dv, kv[j].value))
			j++;
		free(dk);
		free(dv);
	}
	FUZZ_CHECK(j == n);
	for (size_t i = 0; i < n; i++) {
		FUZZ_CHECK(!strncmp(kv[i].key, PREFIX, strlen(PREFIX)));
		check_key(kv[i].key + strlen(PREFIX));
	}
	FUZZ_CHECK(kv[n].key == NULL);
	etcd_kvs_free(kv, n);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *in = fuzz_str(data, size), *nl = memchr(in, '\n', size), call[16] = "", *body;
	const char *path = "/v3/kv/range";
	struct etcd e;
	long code = 200;
	size_t blen;
	json_t *r = NULL;
	int ret;

	body = nl ? nl + 1 : in + size;
	blen = size - (size_t)(body - in);
	if (nl)
		*nl = 0;
	if (sscanf(in, "%15s %ld", call, &code) < 1)
		call[0] = 0;
	memset(&e, 0, sizeof(e));
	snprintf(e.base, sizeof(e.base), "http://127.0.0.1:2379");
	if (!strcmp(call, "grant"))
		path = "/v3/lease/grant";
	else if (!strcmp(call, "keepalive"))
		path = "/v3/lease/keepalive";
	else if (!strcmp(call, "txn"))
		path = "/v3/kv/txn";
	else if (!strcmp(call, "put"))
		path = "/v3/kv/put";

	/* the body as call() has it: its bytes and a NUL after them */
	ret = etcd_answer(&e, path, code, blen ? body : NULL, blen, &r);
	if (ret < 0) {
		FUZZ_CHECK(ret == -EPROTO && !r && !strncmp(e.err, "etcd at ", 8));
	} else {
		FUZZ_CHECK(ret == 0 && code == 200 && json_is_object(r));
		if (!strcmp(path, "/v3/lease/grant")) {
			int64_t id = 1;

			e.err[0] = 0;
			ret = etcd_grant_decode(&e, r, &id);
			FUZZ_CHECK(ret == 0 ? id != 0 : ret == -EPROTO && id == 0 && e.err[0]);
		} else if (!strcmp(path, "/v3/lease/keepalive")) {
			json_t *res = json_object_get(r, "result");

			if (!json_object_get(res, "TTL"))
				FUZZ_CHECK(etcd_keepalive_decode(r) == 0);
			else
				etcd_keepalive_decode(r);
		} else if (!strcmp(path, "/v3/kv/txn")) {
			FUZZ_CHECK(etcd_txn_decode(r) ==
				   (json_is_true(json_object_get(r, "succeeded")) ? 1 : 0));
		} else {
			check_range(r);
		}
		json_decref(r);
	}
	check_b64(data, size, body);
	check_key(body);
	check_written(data, size);
	free(in);
	return 0;
}
