/* SPDX-License-Identifier: MIT */
/*
 * etcd_i.h - a small client of etcd's v3 JSON gateway (etcd.c): leases,
 * keys, compare-and-swap, and a watch that wakes ckptd's loop. Functions
 * return 0 (etcd_put_if: 1 done, 0 the comparison failed) or -errno with
 * e->err saying what failed, for a person.
 */
#ifndef ETCD_I_H
#define ETCD_I_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

struct etcd {
	char base[300]; /* http://HOST:PORT */
	void *h;	/* CURL * */
	char err[400];
	char local_ip[64]; /* this host's address on its connection to etcd */
};

struct etcd_kv {
	char *key, *value;
	int64_t mod_rev, lease;
};

int etcd_init(struct etcd *e, const char *host, int port);
void etcd_close(struct etcd *e);
int etcd_grant(struct etcd *e, int64_t ttl, int64_t *id);
/* *ttl is 0 when the lease is gone (expired or revoked) */
int etcd_keepalive(struct etcd *e, int64_t id, int64_t *ttl);
int etcd_revoke(struct etcd *e, int64_t id);
int etcd_put(struct etcd *e, const char *key, const char *val, int64_t lease);
/* Put only if the key's mod_revision is mod_rev (0: only if it is absent). */
int etcd_put_if(struct etcd *e, const char *key, int64_t mod_rev, const char *val, int64_t lease);
/* Every key starting with prefix, in key order. */
int etcd_range(struct etcd *e, const char *prefix, struct etcd_kv **out, size_t *n);
int etcd_delete_prefix(struct etcd *e, const char *prefix);
void etcd_kvs_free(struct etcd_kv *kv, size_t n);
char *etcd_b64(const void *data, size_t len);
char *etcd_unb64(const char *s, size_t *len);

/*
 * The decoders of etcd's answers, which the calls above use and
 * tests/fuzz/fuzz_etcd.c runs on any bytes. etcd_answer: the body (n bytes
 * and a NUL after them, or NULL for none) that a call of `path` got with
 * HTTP `code`, parsed into *out (a JSON
 * object; the caller frees it), or -EPROTO with e->err saying what was
 * answered. The others read a parsed answer: a lease grant (-EPROTO when it
 * granted none), a keepalive (the TTL left, 0 when the lease is gone), a
 * txn (1 its comparison held, else 0), a range (the keys starting with
 * prefix, decoded from base64; -ENOMEM only).
 */
int etcd_answer(struct etcd *e, const char *path, long code, const char *text, size_t n,
		json_t **out);
int etcd_grant_decode(struct etcd *e, json_t *r, int64_t *id);
int64_t etcd_keepalive_decode(json_t *r);
int etcd_txn_decode(json_t *r);
int etcd_range_decode(json_t *r, const char *prefix, struct etcd_kv **out, size_t *n);

struct etcd_watch;
/* A thread that watches every key under prefix; its fd becomes readable
 * when something changed (or the watch reconnected). */
struct etcd_watch *etcd_watch_start(const struct etcd *e, const char *prefix);
int etcd_watch_fd(const struct etcd_watch *w);
void etcd_watch_drain(struct etcd_watch *w);
void etcd_watch_stop(struct etcd_watch *w);

#endif /* ETCD_I_H */
