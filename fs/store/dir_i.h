/* SPDX-License-Identifier: MIT */
/*
 * dir_i.h - internals of the dir backend: a store in a local directory
 * (layout in docs/store-format.md). dir.c opens it and keeps runs,
 * manifests and markers as files; dir_chunk.c keeps the chunk files;
 * dir_uring.c writes them through io_uring; dir_prefetch.c reads ahead.
 * All I/O goes through the seam `io` (store_io.h) except directory
 * listings, fstat and the read-ahead hints.
 */
#ifndef CKPTFS_DIR_I_H
#define CKPTFS_DIR_I_H

#include "backend_i.h"
#include "io_i.h"

/* O_DIRECT chunk writes by default: 1.5x a plain write+fsync on a quiet
 * machine, buffered ones 0.7x (docs/performance-store.md). */
#define DIR_DEF_DIRECT true

struct dir_uring;
struct dir_prefetch;

struct dir_sb {
	struct sb b; /* first: a struct sb * is a struct dir_sb * */
	int dirfd, chunkfd, runsfd, lockfd;
	bool no_direct; /* O_DIRECT not wanted, or refused by the file system */
	struct dir_uring *uw;
	struct dir_prefetch *pf;
};

static inline struct dir_sb *dir_of(struct sb *b)
{
	return (struct dir_sb *)b;
}

/* "ab/ab3f...": the chunk's path under chunks/ (36 bytes with the NUL) */
void dir_chunk_relpath(const uint8_t *h, char *out);
/* O_DIRECT was refused: buffered from now on */
void dir_no_direct(struct dir_sb *d);

/* dir_chunk.c: the chunk ops of struct sb_ops */
int dir_chunk_put(struct sb *b, struct sb_put *p);
ssize_t dir_chunk_get(struct sb *b, const uint8_t *h, uint32_t len, uint8_t *buf, size_t cap);
int dir_chunk_stat(struct sb *b, const uint8_t *h, uint64_t *size);
int dir_chunk_hash(struct sb *b, const uint8_t *h, uint32_t len, uint8_t *out);
int dir_chunk_scan(struct sb *b, sb_chunk_fn fn, void *arg);
int dir_chunk_remove(struct sb *b, const uint8_t *h, uint64_t *bytes);
int dir_chunk_sync(struct sb *b);
void dir_chunk_hint(struct sb *b, const uint8_t *h, uint32_t len);

/* dir_uring.c: chunk files written through one io_uring (or synchronously
 * when it is not available or the seam asks for it) */
int dir_uring_start(struct dir_sb *d, struct dir_uring **out);
void dir_uring_stop(struct dir_uring *uw);
/* Write p's chunk into the open file fd (owned from here on; closed on
 * an error, when done() is not called). */
int dir_uring_write(struct dir_uring *uw, int fd, struct sb_put *p);

/* dir_prefetch.c: open and POSIX_FADV_WILLNEED chunk files ahead */
int dir_prefetch_start(struct dir_sb *d, struct dir_prefetch **out);
void dir_prefetch_stop(struct dir_prefetch *p);
void dir_prefetch_queue(struct dir_prefetch *p, const uint8_t *h, uint32_t len);

#endif /* CKPTFS_DIR_I_H */
