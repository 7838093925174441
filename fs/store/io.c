// SPDX-License-Identifier: MIT
/*
 * io.c - the default I/O table (real system calls) and the helpers that
 * build on the seam: full writes, full reads, atomic publication of a small
 * file (write tmp, fsync, rename, fsync the directory), and reading one whole.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "io_i.h"
#include "util_i.h"

static int d_openat(void *ctx, int dirfd, const char *path, int flags, mode_t mode)
{
	int fd = openat(dirfd, path, flags, mode);

	return fd < 0 ? -errno : fd;
}

static int d_close(void *ctx, int fd)
{
	return close(fd) < 0 ? -errno : 0;
}

static ssize_t d_pread(void *ctx, int fd, void *buf, size_t len, off_t off)
{
	ssize_t n = pread(fd, buf, len, off);

	return n < 0 ? -errno : n;
}

static ssize_t d_pwrite(void *ctx, int fd, const void *buf, size_t len, off_t off)
{
	ssize_t n = pwrite(fd, buf, len, off);

	return n < 0 ? -errno : n;
}

static int d_ftruncate(void *ctx, int fd, off_t len)
{
	return ftruncate(fd, len) < 0 ? -errno : 0;
}

static int d_fsync(void *ctx, int fd)
{
	return fsync(fd) < 0 ? -errno : 0;
}

static int d_syncfs(void *ctx, int fd)
{
	return syncfs(fd) < 0 ? -errno : 0;
}

static int d_renameat(void *ctx, int od, const char *op, int nd, const char *np)
{
	return renameat(od, op, nd, np) < 0 ? -errno : 0;
}

static int d_unlinkat(void *ctx, int dirfd, const char *path, int flags)
{
	return unlinkat(dirfd, path, flags) < 0 ? -errno : 0;
}

static int d_mkdirat(void *ctx, int dirfd, const char *path, mode_t mode)
{
	return mkdirat(dirfd, path, mode) < 0 ? -errno : 0;
}

const struct ckpt_io_ops ckpt_io_default = {
	.openat = d_openat,
	.close = d_close,
	.pread = d_pread,
	.pwrite = d_pwrite,
	.ftruncate = d_ftruncate,
	.fsync = d_fsync,
	.syncfs = d_syncfs,
	.renameat = d_renameat,
	.unlinkat = d_unlinkat,
	.mkdirat = d_mkdirat,
};

int io_write_all(const struct ckpt_io_ops *io, int fd, const void *buf, size_t len, off_t off)
{
	const uint8_t *p = buf;

	while (len > 0) {
		ssize_t n = IO(io, pwrite, fd, p, len, off);

		if (n == -EINTR || n == -EAGAIN)
			continue;
		if (n < 0)
			return (int)n;
		if (n == 0)
			return -EIO;
		p += n;
		len -= (size_t)n;
		off += n;
	}
	return 0;
}

ssize_t io_read_full(const struct ckpt_io_ops *io, int fd, void *buf, size_t len, off_t off)
{
	uint8_t *p = buf;
	size_t done = 0;

	while (done < len) {
		ssize_t n = IO(io, pread, fd, p + done, len - done, off + (off_t)done);

		if (n == -EINTR || n == -EAGAIN)
			continue;
		if (n < 0)
			return n;
		if (n == 0)
			break;
		done += (size_t)n;
	}
	return (ssize_t)done;
}

/*
 * Publish `data` as dirfd/name atomically and durably. The order is what
 * makes it crash safe: the content is durable under the temporary name
 * before the rename makes it visible, and the directory fsync makes the
 * rename itself durable. fsync is never retried after an error (its error
 * state is consumed by the first report; a retry could "succeed" on lost
 * data).
 */
int io_publish(const struct ckpt_io_ops *io, int dirfd, const char *name, const char *data,
	       size_t len)
{
	char tmp[CKPT_NAME_MAX + 32];
	int fd, ret;

	snprintf(tmp, sizeof(tmp), ".ckpt-tmp-%s", name);
	fd = IO(io, openat, dirfd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return fd;
	ret = io_write_all(io, fd, data, len, 0);
	if (ret == 0)
		ret = IO(io, fsync, fd);
	IO(io, close, fd);
	if (ret == 0)
		ret = IO(io, renameat, dirfd, tmp, dirfd, name);
	if (ret < 0) {
		IO(io, unlinkat, dirfd, tmp, 0);
		return ret;
	}
	return IO(io, fsync, dirfd);
}

int io_read_file(const struct ckpt_io_ops *io, int dirfd, const char *name, char **data,
		 size_t *len)
{
	struct stat st;
	char *buf;
	ssize_t n;
	int fd;

	fd = IO(io, openat, dirfd, name, O_RDONLY | O_CLOEXEC, 0);
	if (fd < 0)
		return fd;
	if (fstat(fd, &st) < 0 || !(buf = malloc((size_t)st.st_size + 1))) {
		IO(io, close, fd);
		return -ENOMEM;
	}
	n = io_read_full(io, fd, buf, (size_t)st.st_size, 0);
	IO(io, close, fd);
	if (n < 0) {
		free(buf);
		return (int)n;
	}
	buf[n] = 0;
	*data = buf;
	*len = (size_t)n;
	return 0;
}
