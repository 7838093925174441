// SPDX-License-Identifier: MIT
/*
 * notify_sock.c - the sockets of the trainer protocol: a trainer's sender
 * (ckpt_notify_send, ckpt_notifyf) and the supervisor's receiver
 * (ckpt_notify_listen, ckpt_notify_recv). Parsing lives in notify_parse.c.
 */
#include "ckptfs/notify.h"

#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

int ckpt_notify_addr(const char *name, struct sockaddr_un *sa)
{
	size_t n;

	if (!name || !name[0])
		return -EINVAL;
	n = strlen(name);
	if (n >= sizeof(sa->sun_path))
		return -ENAMETOOLONG;
	memset(sa, 0, sizeof(*sa));
	sa->sun_family = AF_UNIX;
	memcpy(sa->sun_path, name, n);
	if (name[0] == '@') {
		/* Abstract namespace: the name is the bytes after the leading NUL,
		 * and its length is exact (no terminating NUL). */
		if (n == 1)
			return -EINVAL;
		sa->sun_path[0] = '\0';
		return (int)(offsetof(struct sockaddr_un, sun_path) + n);
	}
	return (int)(offsetof(struct sockaddr_un, sun_path) + n + 1);
}

int ckpt_notify_send(const char *name, const char *msg, size_t len)
{
	struct sockaddr_un sa;
	int fd, alen, ret = 0;
	ssize_t n;

	if (len == 0 || len > CKPT_NOTIFY_MAX)
		return -EMSGSIZE;
	alen = ckpt_notify_addr(name, &sa);
	if (alen < 0)
		return alen;
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	do {
		n = sendto(fd, msg, len, MSG_NOSIGNAL, (struct sockaddr *)&sa, (socklen_t)alen);
	} while (n < 0 && errno == EINTR);
	if (n < 0)
		ret = -errno;
	else if ((size_t)n != len)
		ret = -EMSGSIZE; /* datagrams are all or nothing; a short send is a bug */
	close(fd);
	return ret;
}

int ckpt_notifyf(const char *fmt, ...)
{
	const char *name = getenv("CKPT_NOTIFY_SOCKET");
	char buf[CKPT_NOTIFY_MAX + 1];
	va_list ap;
	int n, ret;

	if (!name || !name[0])
		return 0;
	va_start(ap, fmt);
	n = vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (n < 0)
		return -EINVAL;
	if ((size_t)n > CKPT_NOTIFY_MAX)
		return -EMSGSIZE;
	ret = ckpt_notify_send(name, buf, (size_t)n);
	return ret < 0 ? ret : 1;
}

int ckpt_notify_listen(const char *name)
{
	struct sockaddr_un sa;
	int fd, alen, one = 1;
	struct stat st;

	alen = ckpt_notify_addr(name, &sa);
	if (alen < 0)
		return alen;
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -errno;
	if (setsockopt(fd, SOL_SOCKET, SO_PASSCRED, &one, sizeof(one)) < 0)
		goto fail;
	/* A socket file left by an earlier supervisor is replaced; any other
	 * kind of file is not ours to remove. */
	if (name[0] != '@' && lstat(name, &st) == 0) {
		if (!S_ISSOCK(st.st_mode)) {
			errno = EEXIST;
			goto fail;
		}
		unlink(name);
	}
	if (bind(fd, (struct sockaddr *)&sa, (socklen_t)alen) < 0)
		goto fail;
	return fd;
fail:
	alen = -errno;
	close(fd);
	return alen;
}

int ckpt_notify_recv(int fd, struct ckpt_report *r, const char **why, pid_t *pid)
{
	/* One byte more than the limit so that an oversized datagram shows as
	 * MSG_TRUNC rather than being cut silently. */
	char buf[CKPT_NOTIFY_MAX + 1];
	union {
		struct cmsghdr align;
		char buf[CMSG_SPACE(sizeof(struct ucred))];
	} ctl;
	struct iovec iov = {.iov_base = buf, .iov_len = sizeof(buf)};
	struct msghdr mh = {
		.msg_iov = &iov,
		.msg_iovlen = 1,
		.msg_control = ctl.buf,
		.msg_controllen = sizeof(ctl.buf),
	};
	ssize_t n;

	if (pid)
		*pid = 0;
	do {
		n = recvmsg(fd, &mh, MSG_CMSG_CLOEXEC | MSG_TRUNC);
	} while (n < 0 && errno == EINTR);
	if (n < 0)
		return errno == EWOULDBLOCK ? -EAGAIN : -errno;
	for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
		if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_CREDENTIALS && pid) {
			struct ucred uc;
			memcpy(&uc, CMSG_DATA(c), sizeof(uc));
			*pid = uc.pid;
		} else if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
			/* Nobody should pass us descriptors: close them, do not leak. */
			size_t nfd = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
			for (size_t i = 0; i < nfd; i++) {
				int pfd;
				memcpy(&pfd, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
				close(pfd);
			}
		}
	}
	if ((mh.msg_flags & MSG_TRUNC) || (size_t)n > CKPT_NOTIFY_MAX) {
		memset(r, 0, sizeof(*r));
		if (why)
			*why = "datagram larger than 4096 bytes";
		return -EMSGSIZE;
	}
	return ckpt_notify_parse(buf, (size_t)n, r, why);
}
