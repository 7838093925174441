/* SPDX-License-Identifier: MIT */
/*
 * notify.h - the trainer protocol's reports (SPEC §4).
 *
 * A trainer sends one AF_UNIX datagram per report to the socket named by
 * CKPT_NOTIFY_SOCKET, in the sd_notify wire format: newline-separated
 * KEY=VALUE lines. A leading '@' in the socket name means the Linux abstract
 * namespace. The supervisor binds that socket, receives datagrams and parses
 * them with ckpt_notify_parse(), which is strict and total: any input is
 * either a report or a rejection with a reason, never a crash.
 *
 * All functions return 0 (or a count) on success and a negative errno on
 * failure, like liburing.
 */
#ifndef CKPTFS_NOTIFY_H
#define CKPTFS_NOTIFY_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The largest datagram accepted; larger ones are rejected as oversized. */
#define CKPT_NOTIFY_MAX 4096
/* The longest value of a text key (REASON, STATUS, CHECKPOINT). */
#define CKPT_NOTIFY_TEXT_MAX 1024

/* Which fields a report carries (bits of ckpt_report.have). */
enum ckpt_report_field {
	CKPT_R_READY = 1u << 0,
	CKPT_R_STEP = 1u << 1,
	CKPT_R_EPOCH = 1u << 2,
	CKPT_R_LOSS = 1u << 3,
	CKPT_R_VAL_LOSS = 1u << 4,
	CKPT_R_CHECKPOINT = 1u << 5,
	CKPT_R_SAVING = 1u << 6,
	CKPT_R_CORRUPTED = 1u << 7,
	CKPT_R_REASON = 1u << 8,
	CKPT_R_STATUS = 1u << 9,
	CKPT_R_WATCHDOG = 1u << 10,
	CKPT_R_STOPPING = 1u << 11,
};

/* One parsed datagram. Only the fields whose bit is set in `have` are valid. */
struct ckpt_report {
	unsigned have;
	int64_t step;
	int64_t epoch;
	double loss;	       /* may be NaN or +-Inf: that is what the supervisor looks for */
	double val_loss;       /* likewise */
	int saving;	       /* 0 or 1 */
	int corrupted;	       /* 0 or 1 */
	unsigned unknown_keys; /* well-formed keys this version does not know: ignored */
	char checkpoint[CKPT_NOTIFY_TEXT_MAX + 1];
	char reason[CKPT_NOTIFY_TEXT_MAX + 1];
	char status[CKPT_NOTIFY_TEXT_MAX + 1];
};

/*
 * Parse one datagram of `len` bytes. On success fills *r and returns 0. On a
 * malformed datagram returns -EBADMSG (or -EMSGSIZE when oversized) and, if
 * `why` is not NULL, points *why at a static string that says what was wrong.
 */
int ckpt_notify_parse(const char *buf, size_t len, struct ckpt_report *r, const char **why);

/*
 * Fill `sa` for a notify socket name: a filesystem path, or '@name' for the
 * abstract namespace. Returns the address length to pass to bind/sendto, or
 * -EINVAL (empty name) / -ENAMETOOLONG.
 */
struct sockaddr_un;
int ckpt_notify_addr(const char *name, struct sockaddr_un *sa);

/*
 * Send one datagram `msg` (at most CKPT_NOTIFY_MAX bytes) to the socket
 * `name`. Returns 0 or -errno.
 */
int ckpt_notify_send(const char *name, const char *msg, size_t len);

/*
 * printf-style report to $CKPT_NOTIFY_SOCKET. Returns 0 without sending
 * anything when the variable is unset (a trainer run by hand), 1 when sent,
 * or -errno. Example: ckpt_notifyf("STEP=%ld\nLOSS=%.6g", step, loss).
 */
int ckpt_notifyf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/*
 * The supervisor's side: create a non-blocking, close-on-exec datagram socket
 * bound to `name` (an existing socket file at a path is replaced; the
 * receiver asks for SO_PASSCRED so it learns the sender's pid). Returns the
 * fd or -errno.
 */
int ckpt_notify_listen(const char *name);

/*
 * Receive and parse one datagram from a socket made by ckpt_notify_listen().
 * Returns 0 with *r filled, -EAGAIN when nothing is waiting, -EBADMSG or
 * -EMSGSIZE for a rejected datagram (with *why set; the datagram is consumed),
 * or another -errno. If `pid` is not NULL it receives the sender's pid (0 when
 * unknown).
 */
int ckpt_notify_recv(int fd, struct ckpt_report *r, const char **why, pid_t *pid);

#ifdef __cplusplus
}
#endif

#endif /* CKPTFS_NOTIFY_H */
