// SPDX-License-Identifier: MIT
/*
 * etcd.c - the few calls of etcd's v3 API that a gang across hosts needs
 * (rdzv.c), over etcd's JSON gateway (https://etcd.io/docs/v3.4/dev-guide/
 * api_grpc_gateway/) with libcurl: POST /v3/kv/range|put|txn,
 * /v3/lease/grant|keepalive|revoke, /v3/watch. Keys and values travel in
 * base64; 64-bit numbers as JSON strings.
 *
 * Calls are synchronous with short timeouts (they run in ckptd's poll loop,
 * against an etcd that answers in milliseconds); only the watch, a request
 * that never ends, runs in its own thread, which does nothing but wake the
 * loop through an eventfd when etcd sends something: the loop then reads
 * the state with a range, so no state is shared with the thread.
 *
 * What etcd answers is read by the decoders etcd_answer and etcd_*_decode
 * (etcd_i.h), which take the bytes or the parsed answer and touch no
 * connection: tests/fuzz/fuzz_etcd.c runs the same functions on any bytes.
 */
#include "etcd_i.h"

#include <curl/curl.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

/* A request to a reachable etcd takes milliseconds; these bound how long
 * ckptd's loop can wait on one that is not there. */
#define ETCD_CONNECT_MS 500L
#define ETCD_TIMEOUT_MS 2000L

static const char b64c[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

char *etcd_b64(const void *data, size_t len)
{
	const unsigned char *p = data;
	char *out = malloc(4 * ((len + 2) / 3) + 1), *o = out;

	if (!out)
		return NULL;
	for (size_t i = 0; i < len; i += 3) {
		uint32_t v = (uint32_t)p[i] << 16;

		if (i + 1 < len)
			v |= (uint32_t)p[i + 1] << 8;
		if (i + 2 < len)
			v |= p[i + 2];
		*o++ = b64c[v >> 18 & 63];
		*o++ = b64c[v >> 12 & 63];
		*o++ = i + 1 < len ? b64c[v >> 6 & 63] : '=';
		*o++ = i + 2 < len ? b64c[v & 63] : '=';
	}
	*o = '\0';
	return out;
}

static int b64v(char c)
{
	const char *p = c ? strchr(b64c, c) : NULL;

	return p ? (int)(p - b64c) : -1;
}

char *etcd_unb64(const char *s, size_t *len)
{
	size_t n = strlen(s), k = 0;
	char *out = malloc(n / 4 * 3 + 4);
	uint32_t acc = 0;
	int bits = 0;

	if (!out)
		return NULL;
	for (size_t i = 0; i < n && s[i] != '='; i++) {
		int v = b64v(s[i]);

		if (v < 0) {
			free(out);
			return NULL;
		}
		acc = acc << 6 | (uint32_t)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			out[k++] = (char)(acc >> bits & 0xff);
		}
	}
	out[k] = '\0';
	if (len)
		*len = k;
	return out;
}

/* The end of the range of every key that starts with `prefix`: the prefix
 * with its last byte plus one (etcd's "range_end"). */
static char *prefix_end(const char *prefix)
{
	size_t n = strlen(prefix);
	char *e = strdup(prefix);

	if (e && n)
		e[n - 1]++;
	return e;
}

struct buf {
	char *p;
	size_t n;
};

static size_t on_body(char *data, size_t sz, size_t nm, void *arg)
{
	struct buf *b = arg;
	size_t n = sz * nm;
	char *np;

	if (b->n + n > (64u << 20))
		return 0; /* no answer of ours is that big */
	np = realloc(b->p, b->n + n + 1);
	if (!np)
		return 0;
	memcpy(np + b->n, data, n);
	b->p = np;
	b->n += n;
	b->p[b->n] = '\0';
	return n;
}

int etcd_init(struct etcd *e, const char *host, int port)
{
	memset(e, 0, sizeof(*e));
	if (strchr(host, ':')) /* an IPv6 address */
		snprintf(e->base, sizeof(e->base), "http://[%s]:%d", host, port);
	else
		snprintf(e->base, sizeof(e->base), "http://%s:%d", host, port);
	e->h = curl_easy_init();
	return e->h ? 0 : -ENOMEM;
}

void etcd_close(struct etcd *e)
{
	if (e->h)
		curl_easy_cleanup(e->h);
	e->h = NULL;
}

static int curl_errno(CURLcode c)
{
	switch (c) {
	case CURLE_COULDNT_CONNECT:
		return -ECONNREFUSED;
	case CURLE_COULDNT_RESOLVE_HOST:
		return -EHOSTUNREACH;
	case CURLE_OPERATION_TIMEDOUT:
		return -ETIMEDOUT;
	default:
		return -EIO;
	}
}

/* POST `body` to base/path; *out is the parsed answer. On failure e->err
 * says what happened, for a person. */
static int call(struct etcd *e, const char *path, json_t *body, json_t **out)
{
	char url[400], *text = json_dumps(body, JSON_COMPACT);
	struct buf b = {0};
	long code = 0;
	CURLcode c;
	int ret = 0;

	json_decref(body);
	*out = NULL;
	if (!text)
		return -ENOMEM;
	snprintf(url, sizeof(url), "%s%s", e->base, path);
	curl_easy_reset(e->h);
	curl_easy_setopt(e->h, CURLOPT_URL, url);
	curl_easy_setopt(e->h, CURLOPT_POSTFIELDS, text);
	curl_easy_setopt(e->h, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(e->h, CURLOPT_WRITEDATA, &b);
	curl_easy_setopt(e->h, CURLOPT_CONNECTTIMEOUT_MS, ETCD_CONNECT_MS);
	curl_easy_setopt(e->h, CURLOPT_TIMEOUT_MS, ETCD_TIMEOUT_MS);
	curl_easy_setopt(e->h, CURLOPT_NOSIGNAL, 1L);
	c = curl_easy_perform(e->h);
	free(text);
	if (c != CURLE_OK) {
		snprintf(e->err, sizeof(e->err), "cannot reach etcd at %s: %s", e->base,
			 curl_easy_strerror(c));
		ret = curl_errno(c);
		goto out;
	}
	curl_easy_getinfo(e->h, CURLINFO_RESPONSE_CODE, &code);
	if (!e->local_ip[0]) {
		char *ip = NULL;

		if (curl_easy_getinfo(e->h, CURLINFO_LOCAL_IP, &ip) == CURLE_OK && ip)
			snprintf(e->local_ip, sizeof(e->local_ip), "%s", ip);
	}
	ret = etcd_answer(e, path, code, b.p, b.n, out);
out:
	free(b.p);
	return ret;
}

int etcd_answer(struct etcd *e, const char *path, long code, const char *text, size_t n,
		json_t **out)
{
	json_t *m;

	*out = text ? json_loadb(text, n, 0, NULL) : NULL;
	if (code == 200 && json_is_object(*out))
		return 0;
	m = *out ? json_object_get(*out, "error") : NULL;
	/* the body as far as its first NUL: a sentence, not bytes */
	snprintf(e->err, sizeof(e->err), "etcd at %s answered %s with HTTP %ld: %.150s", e->base,
		 path, code,
		 json_is_string(m) ? json_string_value(m) : (text && n ? text : "(nothing)"));
	json_decref(*out);
	*out = NULL;
	return -EPROTO;
}

/* etcd's int64 fields are JSON strings, and absent when 0. */
static int64_t num(json_t *o, const char *k)
{
	json_t *v = json_object_get(o, k);

	if (json_is_string(v))
		return strtoll(json_string_value(v), NULL, 10);
	if (json_is_integer(v))
		return json_integer_value(v);
	return 0;
}

static json_t *str64(int64_t v)
{
	char b[24];

	snprintf(b, sizeof(b), "%lld", (long long)v);
	return json_string(b);
}

static json_t *b64_json(const char *s)
{
	char *b = etcd_b64(s, strlen(s));
	json_t *j = b ? json_string(b) : NULL;

	free(b);
	return j;
}

int etcd_grant(struct etcd *e, int64_t ttl, int64_t *id)
{
	json_t *r;
	int ret = call(e, "/v3/lease/grant", json_pack("{so}", "TTL", str64(ttl)), &r);

	if (ret)
		return ret;
	ret = etcd_grant_decode(e, r, id);
	json_decref(r);
	return ret;
}

int etcd_grant_decode(struct etcd *e, json_t *r, int64_t *id)
{
	*id = num(r, "ID");
	if (*id == 0) {
		snprintf(e->err, sizeof(e->err), "etcd at %s granted no lease", e->base);
		return -EPROTO;
	}
	return 0;
}

int etcd_keepalive(struct etcd *e, int64_t id, int64_t *ttl)
{
	json_t *r;
	int ret = call(e, "/v3/lease/keepalive", json_pack("{so}", "ID", str64(id)), &r);

	if (ret)
		return ret;
	*ttl = etcd_keepalive_decode(r);
	json_decref(r);
	return 0;
}

int64_t etcd_keepalive_decode(json_t *r)
{
	/* {"result": {"ID", "TTL"}}; no TTL: the lease expired or was revoked */
	return num(json_object_get(r, "result"), "TTL");
}

int etcd_revoke(struct etcd *e, int64_t id)
{
	json_t *r;
	int ret = call(e, "/v3/lease/revoke", json_pack("{so}", "ID", str64(id)), &r);

	json_decref(r);
	return ret;
}

static json_t *put_req(const char *key, const char *val, int64_t lease)
{
	json_t *p = json_pack("{soso}", "key", b64_json(key), "value", b64_json(val));

	if (p && lease)
		json_object_set_new(p, "lease", str64(lease));
	return p;
}

int etcd_put(struct etcd *e, const char *key, const char *val, int64_t lease)
{
	json_t *r;
	int ret = call(e, "/v3/kv/put", put_req(key, val, lease), &r);

	json_decref(r);
	return ret;
}

int etcd_put_if(struct etcd *e, const char *key, int64_t mod_rev, const char *val, int64_t lease)
{
	json_t *cmp, *r;
	int ret;

	/* mod_rev 0: the key must not exist (its version is 0) */
	if (mod_rev)
		cmp = json_pack("{sossssso}", "key", b64_json(key), "target", "MOD", "result",
				"EQUAL", "mod_revision", str64(mod_rev));
	else
		cmp = json_pack("{sossssso}", "key", b64_json(key), "target", "VERSION", "result",
				"EQUAL", "version", str64(0));
	ret = call(e, "/v3/kv/txn",
		   json_pack("{s[o]s[{so}]}", "compare", cmp, "success", "request_put",
			     put_req(key, val, lease)),
		   &r);
	if (ret)
		return ret;
	ret = etcd_txn_decode(r);
	json_decref(r);
	return ret;
}

int etcd_txn_decode(json_t *r)
{
	return json_is_true(json_object_get(r, "succeeded")) ? 1 : 0;
}

int etcd_range(struct etcd *e, const char *prefix, struct etcd_kv **out, size_t *n)
{
	char *end = prefix_end(prefix);
	json_t *r;
	int ret;

	*out = NULL;
	*n = 0;
	if (!end)
		return -ENOMEM;
	ret = call(e, "/v3/kv/range",
		   json_pack("{soso}", "key", b64_json(prefix), "range_end", b64_json(end)), &r);
	free(end);
	if (ret)
		return ret;
	ret = etcd_range_decode(r, prefix, out, n);
	json_decref(r);
	return ret;
}

int etcd_range_decode(json_t *r, const char *prefix, struct etcd_kv **out, size_t *n)
{
	json_t *kvs = json_object_get(r, "kvs");
	size_t pl = strlen(prefix);

	*n = 0;
	*out = calloc(json_array_size(kvs) + 1, sizeof(**out));
	if (!*out)
		return -ENOMEM;
	for (size_t i = 0; i < json_array_size(kvs); i++) {
		json_t *kv = json_array_get(kvs, i);
		const char *k = json_string_value(json_object_get(kv, "key"));
		const char *v = json_string_value(json_object_get(kv, "value"));
		struct etcd_kv *o = &(*out)[*n];
		size_t kl = 0, vl = 0;

		o->key = etcd_unb64(k ? k : "", &kl);
		o->value = etcd_unb64(v ? v : "", &vl);
		/* callers read a key past the prefix, and both as strings: a key
		 * outside the range asked for, or a NUL in either, is none of ours */
		if (!o->key || !o->value || kl != strlen(o->key) || vl != strlen(o->value) ||
		    strncmp(o->key, prefix, pl)) {
			free(o->key);
			free(o->value);
			o->key = o->value = NULL;
			continue;
		}
		o->mod_rev = num(kv, "mod_revision");
		o->lease = num(kv, "lease");
		(*n)++;
	}
	return 0;
}

void etcd_kvs_free(struct etcd_kv *kv, size_t n)
{
	for (size_t i = 0; kv && i < n; i++) {
		free(kv[i].key);
		free(kv[i].value);
	}
	free(kv);
}

/*
 * The watch: one thread per watched prefix, holding one long POST to
 * /v3/watch. Each chunk etcd sends (the "created" answer, events, the end of
 * a broken connection) adds to the eventfd; the thread reconnects after
 * 200 ms while it is wanted. It and the loop each hold a reference; the
 * last one frees it, so stopping never waits for the thread.
 */
struct etcd_watch {
	atomic_int refs;
	atomic_bool stop;
	int fd;
	char url[300];
	char *body;
};

static void watch_unref(struct etcd_watch *w)
{
	if (atomic_fetch_sub(&w->refs, 1) == 1) {
		close(w->fd);
		free(w->body);
		free(w);
	}
}

static void watch_wake(struct etcd_watch *w)
{
	uint64_t one = 1;

	if (write(w->fd, &one, sizeof(one)) < 0) {
		/* the counter is at its maximum: the loop is woken anyway */
	}
}

static size_t watch_chunk(char *data, size_t sz, size_t nm, void *arg)
{
	struct etcd_watch *w = arg;

	(void)data;
	if (atomic_load(&w->stop))
		return 0;
	watch_wake(w);
	return sz * nm;
}

static int watch_progress(void *arg, curl_off_t a, curl_off_t b, curl_off_t c, curl_off_t d)
{
	struct etcd_watch *w = arg;

	(void)a, (void)b, (void)c, (void)d;
	return atomic_load(&w->stop) ? 1 : 0;
}

static void *watch_main(void *arg)
{
	struct etcd_watch *w = arg;
	CURL *h = curl_easy_init();

	while (h && !atomic_load(&w->stop)) {
		struct timespec ts = {0, 200 * 1000 * 1000};

		curl_easy_reset(h);
		curl_easy_setopt(h, CURLOPT_URL, w->url);
		curl_easy_setopt(h, CURLOPT_POSTFIELDS, w->body);
		curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, watch_chunk);
		curl_easy_setopt(h, CURLOPT_WRITEDATA, w);
		curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
		curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, watch_progress);
		curl_easy_setopt(h, CURLOPT_XFERINFODATA, w);
		curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, ETCD_CONNECT_MS);
		curl_easy_setopt(h, CURLOPT_TCP_KEEPALIVE, 1L);
		curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
		curl_easy_perform(h);
		/* the stream ended (etcd went away, or came back): look again */
		watch_wake(w);
		nanosleep(&ts, NULL);
	}
	if (h)
		curl_easy_cleanup(h);
	watch_unref(w);
	return NULL;
}

struct etcd_watch *etcd_watch_start(const struct etcd *e, const char *prefix)
{
	struct etcd_watch *w = calloc(1, sizeof(*w));
	char *end = prefix_end(prefix);
	pthread_t t;
	json_t *body;

	if (!w || !end)
		goto fail;
	w->fd = -1;
	w->fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (w->fd < 0)
		goto fail;
	snprintf(w->url, sizeof(w->url), "%s/v3/watch", e->base);
	body = json_pack("{s{soso}}", "create_request", "key", b64_json(prefix), "range_end",
			 b64_json(end));
	w->body = body ? json_dumps(body, JSON_COMPACT) : NULL;
	json_decref(body);
	if (!w->body)
		goto fail;
	atomic_init(&w->refs, 2);
	atomic_init(&w->stop, false);
	if (pthread_create(&t, NULL, watch_main, w) != 0)
		goto fail;
	pthread_detach(t);
	free(end);
	return w;
fail:
	if (w && w->fd >= 0)
		close(w->fd);
	if (w)
		free(w->body);
	free(w);
	free(end);
	return NULL;
}

int etcd_watch_fd(const struct etcd_watch *w)
{
	return w->fd;
}

void etcd_watch_drain(struct etcd_watch *w)
{
	uint64_t v;

	if (read(w->fd, &v, sizeof(v)) < 0) {
		/* EAGAIN: nothing new */
	}
}

void etcd_watch_stop(struct etcd_watch *w)
{
	if (!w)
		return;
	atomic_store(&w->stop, true);
	watch_unref(w);
}

int etcd_delete_prefix(struct etcd *e, const char *prefix)
{
	char *end = prefix_end(prefix);
	json_t *r;
	int ret;

	if (!end)
		return -ENOMEM;
	ret = call(e, "/v3/kv/deleterange",
		   json_pack("{soso}", "key", b64_json(prefix), "range_end", b64_json(end)), &r);
	free(end);
	json_decref(r);
	return ret;
}
