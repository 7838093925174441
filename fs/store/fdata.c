// SPDX-License-Identifier: MIT
/*
 * fdata.c - the bytes of one file. A file written front to back streams:
 * each write feeds the whole-file XXH128 and a pending buffer that the
 * chunker cuts into chunks, which go to the chunk writer at once (only
 * chunks the index does not have: dedup). A write anywhere else (seek back,
 * truncate to a non-zero size) makes the file fall back to a local staging
 * file (in the backend's staging directory), into which what was streamed
 * is copied; it is chunked at commit. Committed files are F_FINAL: a chunk list and a hash.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#include "store_i.h"

#define STAGE_BLOCK (4u << 20)

static uint64_t fdata_ids, walk_gens;

uint64_t fdata_walk_gen(void)
{
	return __atomic_add_fetch(&walk_gens, 1, __ATOMIC_RELAXED);
}

struct fdata *fdata_new(void)
{
	struct fdata *f = calloc(1, sizeof(*f));

	if (!f)
		return NULL;
	pthread_mutex_init(&f->lock, NULL);
	f->refs = 1;
	f->stage_fd = -1;
	f->id = __atomic_add_fetch(&fdata_ids, 1, __ATOMIC_RELAXED);
	f->hs = XXH3_createState();
	if (!f->hs) {
		free(f);
		return NULL;
	}
	XXH3_128bits_reset(f->hs);
	return f;
}

void fdata_get(struct fdata *f)
{
	__atomic_add_fetch(&f->refs, 1, __ATOMIC_SEQ_CST);
}

void fdata_drop_chunks(struct ckpt_store *s, struct fdata *f)
{
	chunk_unref(&s->ck, f->chunks, f->nchunks);
	free(f->chunks);
	f->chunks = NULL;
	f->nchunks = f->cap = 0;
	f->checked = 0;
}

static void stage_close(struct ckpt_store *s, struct fdata *f)
{
	if (f->stage_fd < 0)
		return;
	IO(s->io, close, f->stage_fd);
	IO(s->io, unlinkat, s->be->stagefd, f->stage_name, 0);
	f->stage_fd = -1;
}

void fdata_put(struct ckpt_store *s, struct fdata *f)
{
	if (!f || __atomic_sub_fetch(&f->refs, 1, __ATOMIC_SEQ_CST) > 0)
		return;
	fdata_drop_chunks(s, f);
	stage_close(s, f);
	free(f->pend);
	if (f->hs)
		XXH3_freeState(f->hs);
	pthread_mutex_destroy(&f->lock);
	free(f);
}

int fdata_add_chunk(struct fdata *f, const uint8_t *h, uint32_t len)
{
	uint64_t off =
		f->nchunks ? f->chunks[f->nchunks - 1].off + f->chunks[f->nchunks - 1].len : 0;

	if (f->nchunks == f->cap) {
		size_t cap = f->cap ? f->cap * 2 : 16;
		struct cref *c = realloc(f->chunks, cap * sizeof(*c));

		if (!c)
			return -ENOMEM;
		f->chunks = c;
		f->cap = cap;
	}
	memcpy(f->chunks[f->nchunks].h, h, CHUNK_HASH_LEN);
	f->chunks[f->nchunks].len = len;
	f->chunks[f->nchunks].off = off;
	f->nchunks++;
	return 0;
}

/* Store one chunk (chunk_store) and list it in the file. */
static int emit_chunk(struct ckpt_store *s, struct fdata *f, uint8_t *buf, size_t len,
		      struct cw_wait *w)
{
	uint8_t h[CHUNK_HASH_LEN];
	int ret, werr;

	ret = chunk_store(&s->ck, buf, len, w, h, &werr);
	if (ret < 0)
		return ret;
	ret = fdata_add_chunk(f, h, (uint32_t)len);
	if (ret < 0) {
		struct cref c = {.len = (uint32_t)len};

		memcpy(c.h, h, CHUNK_HASH_LEN);
		chunk_unref(&s->ck, &c, 1);
		return ret;
	}
	if (werr < 0)
		f->err = werr;
	return werr;
}

/*
 * A streaming file's tail waits in its pending buffer (a chunk buffer of the
 * pool) for more bytes or for the commit. Once closed, a file with a short
 * tail keeps only those bytes and gives the buffer back: a version of
 * 100,000 small files would otherwise hold 100,000 chunk buffers (a page or
 * two of memory each, and an mmap to make) until it is committed. A longer
 * tail keeps its buffer: copying it at every close of a file appended to by
 * open, write, close would cost more than it saves. The next write or the
 * commit takes a buffer again (unpark).
 */
#define PARK_MAX (64u << 10)

void fdata_park(struct ckpt_store *s, struct fdata *f)
{
	uint8_t *b;

	if (f->mode != F_STREAM || !f->pend || f->parked || f->plen > PARK_MAX)
		return;
	b = malloc(f->plen ? f->plen : 1);
	if (!b)
		return; /* it keeps the buffer */
	memcpy(b, f->pend, f->plen);
	cw_buf_put(s->ck.cw, f->pend);
	f->pend = b;
	f->parked = true;
}

static int unpark(struct ckpt_store *s, struct fdata *f)
{
	uint8_t *b;

	if (!f->parked)
		return 0;
	b = cw_buf_get(s->ck.cw);
	if (!b)
		return -ENOMEM;
	memcpy(b, f->pend, f->plen);
	free(f->pend);
	f->pend = b;
	f->parked = false;
	return 0;
}

/* Cut what the chunker allows out of the pending buffer; with `final`, all. */
static int cut_pending(struct ckpt_store *s, struct fdata *f, bool final)
{
	int ret = unpark(s, f); /* the chunk writer takes pool buffers only */

	if (ret < 0)
		return ret;
	while (f->plen > 0) {
		size_t cut = chunker_next(&s->ck.chunker, f->pend, f->plen, &f->scan, &f->roll);
		uint8_t *c;

		if (!cut && !final)
			return 0;
		if (!cut)
			cut = f->plen;
		f->scan = 0;
		f->roll = 0;
		if (cut == f->plen) { /* hand the buffer over whole: no copy */
			c = f->pend;
			f->pend = NULL;
			f->plen = 0;
		} else {
			c = cw_buf_get(s->ck.cw);
			if (!c)
				return -ENOMEM;
			memcpy(c, f->pend, cut);
			memmove(f->pend, f->pend + cut, f->plen - cut);
			f->plen -= cut;
		}
		ret = emit_chunk(s, f, c, cut, NULL);
		if (ret < 0)
			return ret;
	}
	return 0;
}

static int stream_append(struct ckpt_store *s, struct fdata *f, const uint8_t *p, size_t len)
{
	size_t max = s->ck.chunker.max;
	int ret = unpark(s, f);

	if (ret < 0)
		return ret;
	XXH3_128bits_update(f->hs, p, len);
	f->size += len;
	if (s->ck.chunker.kind == CKPT_CHUNK_FIXED && s->be->zero_copy && f->plen == 0 &&
	    len >= max) {
		/* whole chunks straight from the caller's buffer: no copy; the
		 * writes are waited for before returning, as the buffer is the
		 * caller's. Buffered writes only: they complete once in the page
		 * cache, while O_DIRECT ones would make each write wait for the
		 * disk (those take the copying, asynchronous path) */
		struct cw_wait w = {0};
		int wret;

		ret = 0;
		while (len >= max && ret == 0) {
			ret = emit_chunk(s, f, (uint8_t *)p, max, &w);
			p += max;
			len -= max;
		}
		wret = cw_wait_done(s->ck.cw, &w);
		if (ret < 0)
			return ret;
		if (wret < 0)
			return f->err = wret;
	}
	while (len > 0) {
		size_t take;

		if (!f->pend) {
			/* page aligned (for O_DIRECT), recycled (no page faults) */
			f->pend = cw_buf_get(s->ck.cw);
			if (!f->pend)
				return -ENOMEM;
			f->plen = 0;
		}
		take = max - f->plen < len ? max - f->plen : len;
		memcpy(f->pend + f->plen, p, take);
		f->plen += take;
		p += take;
		len -= take;
		ret = cut_pending(s, f, false);
		if (ret < 0)
			return ret;
	}
	return 0;
}

static void stream_reset(struct ckpt_store *s, struct fdata *f)
{
	fdata_drop_chunks(s, f);
	free(f->pend);
	f->pend = NULL;
	f->parked = false;
	f->plen = f->scan = 0;
	f->roll = 0;
	f->size = 0;
	f->err = 0;
	XXH3_128bits_reset(f->hs);
}

int fdata_check_errors(struct ckpt_store *s, struct fdata *f)
{
	int err = chunk_write_errors(&s->ck, f->chunks, f->nchunks, &f->checked);

	if (err < 0)
		f->err = err;
	return f->err;
}

/* Read back a chunk this file streamed earlier (into a buffer of the
 * largest chunk size), checked like any read from the store: a mismatch is
 * -EIO and logged (an open version cannot become corrupt; the chunk is
 * flagged so the next write of those bytes rewrites it). */
static int open_chunk_read(struct ckpt_store *s, const struct cref *c, uint8_t *buf)
{
	char hex[CHUNK_HEX_LEN + 1];
	int ret = chunk_load(&s->ck, c, buf, s->ck.chunker.max);

	if (ret == 0)
		return 0;
	chunk_hex(c->h, hex);
	store_log("read of chunk %s of a file being written, at offset %llu: %s", hex,
		  (unsigned long long)c->off,
		  ret == -EBADMSG ? "does not match its XXH128 (missing, short or altered)"
				  : strerror(-ret));
	return ret == -EBADMSG ? -EIO : ret;
}

/* Switch a streaming file to a staging file holding the same bytes. */
static int stage_begin(struct ckpt_store *s, struct fdata *f)
{
	uint8_t *buf = NULL;
	uint64_t end = 0;
	int fd, ret;

	cw_drain(s->ck.cw);
	ret = fdata_check_errors(s, f);
	if (ret < 0)
		return ret;
	snprintf(f->stage_name, sizeof(f->stage_name), "%d-%" PRIu64, (int)getpid(),
		 __atomic_add_fetch(&s->stage_ctr, 1, __ATOMIC_SEQ_CST));
	fd = IO(s->io, openat, s->be->stagefd, f->stage_name,
		O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return fd;
	if (f->nchunks) {
		buf = malloc(s->ck.chunker.max);
		if (!buf) {
			ret = -ENOMEM;
			goto fail;
		}
	}
	for (size_t i = 0; i < f->nchunks; i++) {
		/* checked: a chunk that rotted since it was written must not
		 * slip into the staging file and from there into a commit */
		ret = open_chunk_read(s, &f->chunks[i], buf);
		if (ret == 0)
			ret = io_write_all(s->io, fd, buf, f->chunks[i].len,
					   (off_t)f->chunks[i].off);
		if (ret < 0)
			goto fail;
		end = f->chunks[i].off + f->chunks[i].len;
	}
	if (f->plen) {
		ret = io_write_all(s->io, fd, f->pend, f->plen, (off_t)end);
		if (ret < 0)
			goto fail;
	}
	free(buf);
	{
		uint64_t size = f->size;

		stream_reset(s, f);
		f->size = size;
	}
	f->stage_fd = fd;
	f->mode = F_STAGED;
	return 0;
fail:
	free(buf);
	IO(s->io, close, fd);
	IO(s->io, unlinkat, s->be->stagefd, f->stage_name, 0);
	return ret;
}

int fdata_write(struct ckpt_store *s, struct fdata *f, const void *buf, size_t len, uint64_t off)
{
	int ret;

	if (f->mode == F_FINAL)
		return -EROFS;
	if (f->frozen)
		return -EBUSY;
	f->wgen++;
	__atomic_store_n(&f->pub, false, __ATOMIC_RELEASE);
	if (f->mode == F_STREAM && off != f->size) {
		ret = stage_begin(s, f);
		if (ret < 0)
			return ret;
	}
	if (f->mode == F_STREAM) {
		if (f->err)
			return f->err;
		return stream_append(s, f, buf, len);
	}
	ret = io_write_all(s->io, f->stage_fd, buf, len, (off_t)off);
	if (ret < 0)
		return ret;
	if (off + len > f->size)
		f->size = off + len;
	return 0;
}

int fdata_truncate(struct ckpt_store *s, struct fdata *f, uint64_t size)
{
	int ret;

	if (f->mode == F_FINAL)
		return -EROFS;
	if (f->frozen)
		return -EBUSY;
	if (size != f->size) {
		f->wgen++;
		__atomic_store_n(&f->pub, false, __ATOMIC_RELEASE);
	}
	if (f->mode == F_STREAM) {
		if (size == f->size)
			return 0;
		if (size == 0) {
			stream_reset(s, f);
			return 0;
		}
		ret = stage_begin(s, f);
		if (ret < 0)
			return ret;
	}
	ret = IO(s->io, ftruncate, f->stage_fd, (off_t)size);
	if (ret == 0)
		f->size = size;
	return ret;
}

/* Reads of a file that is still being written (open versions only). */
ssize_t fdata_read_open(struct ckpt_store *s, struct fdata *f, void *buf, size_t len, uint64_t off)
{
	uint8_t *out = buf, *cbuf = NULL;
	size_t done = 0;
	uint64_t cend;

	if (off >= f->size)
		return 0;
	if (len > f->size - off)
		len = (size_t)(f->size - off);
	if (f->mode == F_STAGED)
		return io_read_full(s->io, f->stage_fd, buf, len, (off_t)off);
	cw_drain(s->ck.cw);
	cend = f->nchunks ? f->chunks[f->nchunks - 1].off + f->chunks[f->nchunks - 1].len : 0;
	for (size_t i = 0; i < f->nchunks && done < len; i++) {
		struct cref *c = &f->chunks[i];
		uint64_t pos = off + done;
		size_t n;
		int ret;

		if (pos >= c->off + c->len)
			continue;
		if (!cbuf && !(cbuf = malloc(s->ck.chunker.max)))
			return -ENOMEM;
		ret = open_chunk_read(s, c, cbuf);
		if (ret < 0) {
			free(cbuf);
			return ret;
		}
		n = (size_t)(c->off + c->len - pos);
		if (n > len - done)
			n = len - done;
		memcpy(out + done, cbuf + (pos - c->off), n);
		done += n;
	}
	free(cbuf);
	if (done < len) { /* the rest is in the pending buffer */
		uint64_t pos = off + done;

		memcpy(out + done, f->pend + (pos - cend), len - done);
		done = len;
	}
	return (ssize_t)done;
}

/* Chunk what is left and fix the whole-file hash: the file becomes F_FINAL. */
int fdata_finalize(struct ckpt_store *s, struct fdata *f)
{
	XXH128_canonical_t c;
	int ret;

	if (f->mode == F_FINAL)
		return 0;
	if (f->err)
		return f->err;
	if (f->mode == F_STAGED) {
		uint8_t *buf = malloc(STAGE_BLOCK);
		uint64_t size = f->size, pos = 0;

		if (!buf)
			return -ENOMEM;
		stream_reset(s, f);
		while (pos < size) {
			size_t want = size - pos < STAGE_BLOCK ? (size_t)(size - pos) : STAGE_BLOCK;
			ssize_t n = io_read_full(s->io, f->stage_fd, buf, want, (off_t)pos);

			if (n >= 0 && (size_t)n < want) {
				memset(buf + n, 0, want - (size_t)n); /* sparse tail */
				n = (ssize_t)want;
			}
			if (n < 0) {
				free(buf);
				return (int)n;
			}
			ret = stream_append(s, f, buf, (size_t)n);
			if (ret < 0) {
				free(buf);
				return ret;
			}
			pos += (uint64_t)n;
		}
		free(buf);
		/* its bytes are in chunks now: a streaming file again */
		stage_close(s, f);
		f->mode = F_STREAM;
	}
	ret = cut_pending(s, f, true);
	if (ret < 0)
		return ret;
	XXH128_canonicalFromHash(&c, XXH3_128bits_digest(f->hs));
	memcpy(f->hash, c.digest, CHUNK_HASH_LEN);
	f->has_hash = true;
	return 0;
}

/* The version is committed: only the chunk list and the hash matter now. */
void fdata_seal(struct ckpt_store *s, struct fdata *f)
{
	f->mode = F_FINAL;
	stage_close(s, f);
	free(f->pend);
	f->pend = NULL;
	f->parked = false;
	XXH3_freeState(f->hs);
	f->hs = NULL;
}
