/* SPDX-License-Identifier: MIT */
/*
 * store_io.h - the one seam through which the store does its backing-store
 * I/O (after SQLite's VFS syscall table). Tests pass their own table in
 * ckpt_store_opts.io to inject EIO, ENOSPC, short writes, or to simulate a
 * crash at the Nth sync point; NULL means ckpt_io_default (the real calls).
 *
 * Every function returns a non-negative result or a negative errno (never -1
 * with errno). Directory listing (readdir) is not routed through here: it
 * reads only names, never data the store depends on for correctness.
 */
#ifndef CKPTFS_STORE_IO_H
#define CKPTFS_STORE_IO_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

struct ckpt_io_ops {
	void *ctx; /* passed as first argument to every call */
	int (*openat)(void *ctx, int dirfd, const char *path, int flags, mode_t mode);
	int (*close)(void *ctx, int fd);
	ssize_t (*pread)(void *ctx, int fd, void *buf, size_t len, off_t off);
	ssize_t (*pwrite)(void *ctx, int fd, const void *buf, size_t len, off_t off);
	int (*ftruncate)(void *ctx, int fd, off_t len);
	/* Sync points: fsync of a file or a directory, and syncfs of the store's
	 * file system (the store makes chunk data durable with one syncfs). */
	int (*fsync)(void *ctx, int fd);
	int (*syncfs)(void *ctx, int fd);
	int (*renameat)(void *ctx, int olddirfd, const char *oldpath, int newdirfd,
			const char *newpath);
	int (*unlinkat)(void *ctx, int dirfd, const char *path, int flags);
	int (*mkdirat)(void *ctx, int dirfd, const char *path, mode_t mode);
	/*
	 * io_uring: called with the result of every completed asynchronous chunk
	 * write (cqe->res) before the store acts on it; returns the result to use.
	 * Tests turn a full write into a short one, -EAGAIN, -EINTR, -EIO or
	 * -ENOSPC here. NULL = results as the kernel gave them.
	 */
	int (*uring_result)(void *ctx, int fd, size_t len, off_t off, int res);
	/* true: do "asynchronous" chunk writes with pwrite above instead of
	 * io_uring (a crash simulator must see every byte written). */
	bool no_uring;
};

/* The real system calls. */
extern const struct ckpt_io_ops ckpt_io_default;

#ifdef __cplusplus
}
#endif

#endif /* CKPTFS_STORE_IO_H */
