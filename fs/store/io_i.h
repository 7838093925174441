/* SPDX-License-Identifier: MIT */
/*
 * io_i.h - helpers on the I/O seam (include/ckptfs/store_io.h), a leaf like
 * util_i.h: every call on local files (the dir backend's store, and the
 * staging files of any backend) goes through a struct ckpt_io_ops, so tests
 * can inject faults and simulate crashes.
 */
#ifndef CKPTFS_IO_I_H
#define CKPTFS_IO_I_H

#include <stddef.h>
#include <sys/types.h>

#include "ckptfs/store_io.h"

/* Call `fn` of the table `io` (a const struct ckpt_io_ops *). */
#define IO(io, fn, ...) ((io)->fn((io)->ctx, __VA_ARGS__))

int io_write_all(const struct ckpt_io_ops *io, int fd, const void *buf, size_t len, off_t off);
ssize_t io_read_full(const struct ckpt_io_ops *io, int fd, void *buf, size_t len, off_t off);
/* tmp file + fsync + rename + dir fsync (the Redis rdbSave dance) */
int io_publish(const struct ckpt_io_ops *io, int dirfd, const char *name, const char *data,
	       size_t len);
/* A whole small file read through the seam (malloc'd, NUL-terminated). */
int io_read_file(const struct ckpt_io_ops *io, int dirfd, const char *name, char **data,
		 size_t *len);

#endif /* CKPTFS_IO_I_H */
