/* SPDX-License-Identifier: MIT */
/*
 * testio.h - test implementations of the store's I/O seam (store_io.h):
 * fault injection (EIO/ENOSPC at the Nth call of a kind, io_uring results
 * turned into short writes, -EAGAIN, -EINTR or errors) and a crash
 * simulator after SQLite's: it logs every change since the last sync that
 * covers it and, at a chosen sync point, "crashes": it undoes the changes
 * that were not synced (or keeps them all) and fails every later call.
 */
#ifndef CKPT_TESTIO_H
#define CKPT_TESTIO_H

#include <stdbool.h>
#include <stdint.h>

#include "ckptfs/store_io.h"

enum tio_kind {
	TIO_OPEN = 1 << 0,
	TIO_PWRITE = 1 << 1,
	TIO_FSYNC = 1 << 2,
	TIO_SYNCFS = 1 << 3,
	TIO_RENAME = 1 << 4,
	TIO_MKDIR = 1 << 5,
	TIO_URING = 1 << 6, /* completions of async chunk writes */
	TIO_PREAD = 1 << 7,
};

struct tio {
	struct ckpt_io_ops ops;
	/* faults: the `fail_at`-th call (1-based) of a kind in `fail_kinds`
	 * returns `fail_err`; with `fail_sticky` every later one too */
	unsigned fail_kinds;
	long fail_at;
	int fail_err;
	bool fail_sticky;
	long calls; /* calls of the kinds in fail_kinds so far */
	long failed;
	/* io_uring completions: each result is altered with probability 1/odd
	 * (short write, -EAGAIN, -EINTR in turn) */
	unsigned uring_odd;
	uint64_t rng;
	long uring_altered;
	/* crash simulation */
	bool crash_sim;
	long crash_at;	 /* the sync point (1-based) at which to crash; 0 = never */
	bool crash_keep; /* keep the unsynced changes instead of dropping them */
	long syncs;
	bool crashed;
	int backup_dfd; /* directory for backups of replaced/unlinked files */
	void *log;	/* undo log (testio.c) */
};

/* real calls through this table until told otherwise */
void tio_init(struct tio *t, bool crash_sim, const char *backup_dir);
void tio_fini(struct tio *t);
/* arm a fault: the `at`-th call from now of a kind in `kinds` */
void tio_fail(struct tio *t, unsigned kinds, long at, int err, bool sticky);
/* arm a crash at the `at`-th sync point from now */
void tio_crash(struct tio *t, long at, bool keep);
/* crash now (after a call that returned success: was it durable?) */
void tio_crash_now(struct tio *t);

#endif
