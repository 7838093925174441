// SPDX-License-Identifier: MIT
/*
 * chunk.c - storing chunks and reading them back. A chunk is named by the
 * XXH128 of its bytes; the index (cindex.c) decides whether storing one is
 * a dedup hit or a write (cwriter.c, then the backend), counts the chunk
 * lists that name it, remembers which chunks were checked and which failed
 * a check. Reads go to the backend and are checked against the name per
 * the verify mode: a missing, short or altered chunk is never returned.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "chunk_i.h"

int chunks_open(struct chunks *ck, struct sb *be, const struct ckpt_store_opts *opts)
{
	int ret;

	ck->be = be;
	ck->verify = opts->verify;
	pthread_mutex_init(&ck->ilock, NULL);
	cindex_init(&ck->ix);
	chunker_init(&ck->chunker, opts->chunking, opts->chunk_size);
	ret = cw_start(ck, opts->inflight_bytes, &ck->cw);
	if (ret == 0)
		ret = rc_start(ck, &ck->rc);
	if (ret == 0)
		ret = res_start(opts->resident_bytes, rc_buf_size(ck), &ck->res);
	return ret;
}

void chunks_close(struct chunks *ck)
{
	rc_stop(ck->rc);
	ck->rc = NULL;
	res_stop(ck->res);
	ck->res = NULL;
	cw_stop(ck->cw);
	ck->cw = NULL;
	cindex_free(&ck->ix);
	pthread_mutex_destroy(&ck->ilock);
}

/*
 * A chunk named by a committed manifest but not yet read by this process
 * could have been damaged since: before deduplicating against it, check
 * that it exists with the right size (one stat; a full read would cost as
 * much as writing it). Bad contents are caught on read and then rewritten
 * (centry.bad). Called with the index lock held.
 */
static bool chunk_plausible(struct chunks *ck, struct centry *e)
{
	char hex[CHUNK_HEX_LEN + 1];
	uint64_t size;

	if (e->verified || e->state != CE_DURABLE)
		return true;
	if (SB(ck->be, chunk_stat, e->h, &size) == 0 && size == e->len)
		return true;
	chunk_hex(e->h, hex);
	store_log("chunk %s is missing or has the wrong size; writing it again", hex);
	return false;
}

static void buf_release(struct chunks *ck, uint8_t *buf, struct cw_wait *w)
{
	if (!w)
		cw_buf_put(ck->cw, buf);
}

int chunk_store(struct chunks *ck, uint8_t *buf, size_t len, struct cw_wait *w, uint8_t *h,
		int *werr)
{
	struct centry *e;
	bool write, bad;
	int ret;

	*werr = 0;
	hash128(buf, len, h);
	res_put(ck->res, h, buf, len);
	pthread_mutex_lock(&ck->ilock);
	e = cindex_find(&ck->ix, h);
	/* a backend shared with other hosts decides itself whether a chunk is
	 * there (another host's gc may have removed one this index knows) */
	write = !e || e->state == CE_FAILED || e->bad || !ck->be->local_dedup ||
		!chunk_plausible(ck, e);
	bad = e && e->bad;
	if (bad)
		store_log(
			"rewriting chunk found corrupt earlier, with good bytes of the same hash");
	if (e)
		e->bad = 0;
	if (!e)
		e = cindex_insert(&ck->ix, h, (uint32_t)len);
	if (!e) {
		pthread_mutex_unlock(&ck->ilock);
		buf_release(ck, buf, w);
		return -ENOMEM;
	}
	if (write) {
		e->state = CE_WRITING;
		e->err = 0;
		e->verified = 1; /* we produced these bytes */
	}
	e->refs++;
	pthread_mutex_unlock(&ck->ilock);
	if (!write) {
		buf_release(ck, buf, w);
		return 0;
	}
	ret = cw_write(ck->cw, h, buf, len, w, bad);
	if (ret < 0) {
		pthread_mutex_lock(&ck->ilock);
		e = cindex_find(&ck->ix, h);
		if (e && e->state == CE_WRITING) {
			e->state = CE_FAILED;
			e->err = ret;
		}
		pthread_mutex_unlock(&ck->ilock);
		*werr = ret;
	}
	return 0;
}

int chunk_ref_durable(struct chunks *ck, const uint8_t *h, uint32_t len)
{
	struct centry *e;

	pthread_mutex_lock(&ck->ilock);
	e = cindex_find(&ck->ix, h);
	if (!e) {
		e = cindex_insert(&ck->ix, h, len);
		if (e)
			e->state = CE_DURABLE;
	}
	if (e)
		e->refs++;
	pthread_mutex_unlock(&ck->ilock);
	return e ? 0 : -ENOMEM;
}

void chunk_unref(struct chunks *ck, const struct cref *c, size_t n)
{
	pthread_mutex_lock(&ck->ilock);
	for (size_t i = 0; i < n; i++) {
		struct centry *e = cindex_find(&ck->ix, c[i].h);

		if (e && e->refs > 0)
			e->refs--;
	}
	pthread_mutex_unlock(&ck->ilock);
}

int chunk_write_errors(struct chunks *ck, const struct cref *c, size_t n, size_t *checked)
{
	int err = 0;

	pthread_mutex_lock(&ck->ilock);
	for (; *checked < n; (*checked)++) {
		struct centry *e = cindex_find(&ck->ix, c[*checked].h);

		if (!e || e->state == CE_WRITING)
			break;
		if (e->state == CE_FAILED) {
			err = e->err ? e->err : -EIO;
			break;
		}
	}
	pthread_mutex_unlock(&ck->ilock);
	return err;
}

int chunk_read_buf(struct chunks *ck, const struct cref *c, uint8_t *buf, size_t cap, bool verify)
{
	uint8_t h[CHUNK_HASH_LEN];
	ssize_t n = SB(ck->be, chunk_get, c->h, c->len, buf, cap);

	if (n == -ENOENT)
		return -EBADMSG;
	if (n < 0)
		return (int)n;
	if ((size_t)n != c->len)
		return -EBADMSG;
	if (!verify)
		return 0;
	hash128(buf, c->len, h);
	return memcmp(h, c->h, CHUNK_HASH_LEN) ? -EBADMSG : 0;
}

int chunk_read(struct chunks *ck, const struct cref *c, uint8_t *buf, bool verify)
{
	return chunk_read_buf(ck, c, buf, c->len, verify);
}

/*
 * Every read from the backing store is checked unless verify=off: a chunk
 * checked once can rot on disk later (SPEC §2: never wrong bytes). What
 * this process holds in memory (a handle's chunk buffer, the kernel's page
 * cache above the FUSE layer) is served without a new check. `verified`
 * in the index still spares the size check before a dedup hit.
 */
bool chunk_needs_verify(struct chunks *ck, const struct cref *c)
{
	return ck->verify != CKPT_VERIFY_OFF;
}

int chunk_load(struct chunks *ck, const struct cref *c, uint8_t *buf, size_t cap)
{
	bool verify = chunk_needs_verify(ck, c);
	int ret;

	if (c->len <= cap && res_copy(ck->res, c->h, c->len, buf))
		return 0; /* held since it was hashed (resident.c) */
	ret = chunk_read_buf(ck, c, buf, cap, verify);

	if (ret == -EBADMSG)
		chunk_mark_bad(ck, c->h);
	else if (ret == 0 && verify)
		chunk_set_verified(ck, c->h);
	return ret;
}

void chunk_set_verified(struct chunks *ck, const uint8_t *h)
{
	struct centry *e;

	pthread_mutex_lock(&ck->ilock);
	e = cindex_find(&ck->ix, h);
	if (e)
		e->verified = 1;
	pthread_mutex_unlock(&ck->ilock);
}

void chunk_mark_bad(struct chunks *ck, const uint8_t *h)
{
	struct centry *e;

	pthread_mutex_lock(&ck->ilock);
	e = cindex_find(&ck->ix, h);
	if (e) {
		e->bad = 1;
		e->verified = 0;
	}
	pthread_mutex_unlock(&ck->ilock);
}

int chunk_check(struct chunks *ck, const struct cref *c)
{
	uint8_t h[CHUNK_HASH_LEN];
	struct centry *e;
	int ret = SB(ck->be, chunk_hash, c->h, c->len, h);

	if (ret < 0)
		return ret;
	if (memcmp(h, c->h, CHUNK_HASH_LEN))
		return -EBADMSG;
	/* reads with verify=first need not hash it again */
	pthread_mutex_lock(&ck->ilock);
	e = cindex_find(&ck->ix, c->h);
	if (e && !e->bad)
		e->verified = 1;
	pthread_mutex_unlock(&ck->ilock);
	return 0;
}

void chunk_hint(struct chunks *ck, const struct cref *c)
{
	/* a resident chunk's reply comes from the tier (res_pin) */
	if (ck->be->ops->chunk_hint && !res_has(ck->res, c->h, c->len))
		SB(ck->be, chunk_hint, c->h, c->len);
}

struct gc_state {
	struct chunks *ck;
	uint64_t removed, bytes;
};

/* Under the index lock: a writer that wants this chunk either already
 * holds a reference (kept) or inserts it after we are done and writes it
 * again. */
static int gc_one(void *arg, const uint8_t *h)
{
	struct gc_state *g = arg;
	struct chunks *ck = g->ck;
	struct centry *e;
	uint64_t bytes = 0;

	pthread_mutex_lock(&ck->ilock);
	e = cindex_find(&ck->ix, h);
	if (!e || (e->refs == 0 && e->state != CE_WRITING)) {
		if (SB(ck->be, chunk_remove, h, &bytes) == 0) {
			g->removed++;
			g->bytes += bytes;
		}
		if (e)
			cindex_remove(&ck->ix, e);
	}
	pthread_mutex_unlock(&ck->ilock);
	return 0;
}

void chunks_gc(struct chunks *ck, uint64_t *removed, uint64_t *bytes)
{
	struct gc_state g = {.ck = ck};

	SB(ck->be, chunk_scan, gc_one, &g);
	*removed += g.removed;
	*bytes += g.bytes;
}

uint64_t chunks_stored_bytes(struct chunks *ck)
{
	uint64_t bytes = 0;

	pthread_mutex_lock(&ck->ilock);
	for (struct centry *e = NULL; (e = cindex_next(&ck->ix, e));)
		if (e->refs > 0 && e->state != CE_FAILED)
			bytes += e->len;
	pthread_mutex_unlock(&ck->ilock);
	return bytes;
}
