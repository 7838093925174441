// SPDX-License-Identifier: MIT
/*
 * test_notify.c - the trainer-protocol reports: parser and real sockets.
 */
#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cmocka.h>

#include "ckptfs/notify.h"

static int parse_str(const char *s, struct ckpt_report *r, const char **why)
{
	return ckpt_notify_parse(s, strlen(s), r, why);
}

static void test_parse_full_report(void **state)
{
	struct ckpt_report r;
	const char *why = "unset";
	const char *msg = "READY=1\nSTEP=1200\nEPOCH=3\nLOSS=0.25\nVAL_LOSS=1e-3\n"
			  "CHECKPOINT=/mnt/run/step-1200\nSAVING=0\nSTATUS=training epoch 3\n";

	assert_int_equal(parse_str(msg, &r, &why), 0);
	assert_null(why);
	assert_int_equal(r.have, CKPT_R_READY | CKPT_R_STEP | CKPT_R_EPOCH | CKPT_R_LOSS |
					 CKPT_R_VAL_LOSS | CKPT_R_CHECKPOINT | CKPT_R_SAVING |
					 CKPT_R_STATUS);
	assert_int_equal(r.step, 1200);
	assert_int_equal(r.epoch, 3);
	assert_true(r.loss == 0.25);
	assert_true(r.val_loss == 1e-3);
	assert_string_equal(r.checkpoint, "/mnt/run/step-1200");
	assert_int_equal(r.saving, 0);
	assert_string_equal(r.status, "training epoch 3");
}

static void test_parse_nan_and_corruption(void **state)
{
	struct ckpt_report r;

	assert_int_equal(parse_str("LOSS=nan\nCORRUPTED=1\nREASON=loss is NaN at step 7", &r, NULL),
			 0);
	assert_true(isnan(r.loss));
	assert_int_equal(r.corrupted, 1);
	assert_string_equal(r.reason, "loss is NaN at step 7");
	assert_int_equal(parse_str("LOSS=-inf", &r, NULL), 0);
	assert_true(isinf(r.loss) && r.loss < 0);
	assert_int_equal(parse_str("VAL_LOSS=Infinity", &r, NULL), 0);
	assert_true(isinf(r.val_loss) && r.val_loss > 0);
}

static void test_parse_unknown_keys_ignored(void **state)
{
	struct ckpt_report r;

	assert_int_equal(parse_str("X_CUSTOM=hello\nSTEP=5\nMAINPID=42", &r, NULL), 0);
	assert_int_equal(r.unknown_keys, 2);
	assert_int_equal(r.have, CKPT_R_STEP);
	assert_int_equal(r.step, 5);
}

static void test_parse_max_step(void **state)
{
	struct ckpt_report r;

	assert_int_equal(parse_str("STEP=9223372036854775807", &r, NULL), 0);
	assert_true(r.step == INT64_MAX);
	assert_int_equal(parse_str("STEP=0", &r, NULL), 0);
	assert_int_equal(r.step, 0);
}

/* Each malformed datagram must be rejected, with a reason, without crashing. */
struct bad_case {
	const char *data;
	size_t len; /* 0: strlen(data) */
	int err;
};

static void test_parse_malformed(void **state)
{
	static char big[CKPT_NOTIFY_MAX + 2];
	static char longreason[CKPT_NOTIFY_TEXT_MAX + 16];
	static char longkey[100];
	const struct bad_case cases[] = {
		{"", 0, -EBADMSG},			    /* empty */
		{"\n", 0, -EBADMSG},			    /* only a newline */
		{"STEP", 0, -EBADMSG},			    /* no '=' */
		{"=5", 0, -EBADMSG},			    /* empty key */
		{"step=5", 0, -EBADMSG},		    /* lower-case key */
		{"1STEP=5", 0, -EBADMSG},		    /* key starts with a digit */
		{"ST EP=5", 0, -EBADMSG},		    /* space in key */
		{"STEP=-1", 0, -EBADMSG},		    /* negative count */
		{"STEP=12abc", 0, -EBADMSG},		    /* trailing junk */
		{"STEP=99999999999999999999", 0, -EBADMSG}, /* overflow */
		{"STEP=007", 0, -EBADMSG},		    /* leading zeros */
		{"STEP=", 0, -EBADMSG},			    /* empty count */
		{"LOSS=abc", 0, -EBADMSG},		    /* not a number */
		{"LOSS=0x1p3", 0, -EBADMSG},		    /* hex float */
		{"LOSS=1e999", 0, -EBADMSG},		    /* out of range */
		{"LOSS=nan(123)", 0, -EBADMSG},		    /* nan payload */
		{"READY=2", 0, -EBADMSG},		    /* READY must be 1 */
		{"SAVING=yes", 0, -EBADMSG},		    /* bool */
		{"CORRUPTED=", 0, -EBADMSG},		    /* empty bool */
		{"CHECKPOINT=relative/path", 0, -EBADMSG},  /* not absolute */
		{"CHECKPOINT=/a\tb", 0, -EBADMSG},	    /* control char in path */
		{"STATUS=bell\a", 0, -EBADMSG},		    /* control char in text */
		{"STEP=1\nSTEP=2", 0, -EBADMSG},	    /* duplicate key */
		{"STEP=1\n\nEPOCH=2", 0, -EBADMSG},	    /* empty line */
		{"STEP=1\r\nEPOCH=2", 0, -EBADMSG},	    /* CRLF */
		{"STEP=1\0EPOCH=2", 14, -EBADMSG},	    /* embedded NUL */
		{"STATUS=\xff\xfe", 0, -EBADMSG},	    /* not UTF-8 */
		{"STATUS=\xc0\xaf", 0, -EBADMSG},	    /* overlong UTF-8 */
		{"STATUS=\xed\xa0\x80", 0, -EBADMSG},	    /* UTF-16 surrogate */
		{"STATUS=caf\xc3", 0, -EBADMSG},	    /* truncated sequence */
		{"X_OTHER=\x01", 0, -EBADMSG},		    /* control char in unknown key */
		{big, sizeof(big) - 1, -EMSGSIZE},	    /* oversized */
		{longreason, 0, -EBADMSG},		    /* text value too long */
		{longkey, 0, -EBADMSG},			    /* key too long */
	};
	struct ckpt_report r;

	memset(big, 'A', sizeof(big) - 1);
	big[0] = 'X';
	big[1] = '=';
	memcpy(longreason, "REASON=", 7);
	memset(longreason + 7, 'r', CKPT_NOTIFY_TEXT_MAX + 1);
	memset(longkey, 'K', 80);
	longkey[80] = '=';
	longkey[81] = '1';

	assert_true(sizeof(cases) / sizeof(cases[0]) >= 15);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const char *why = NULL;
		size_t len = cases[i].len ? cases[i].len : strlen(cases[i].data);
		int ret = ckpt_notify_parse(cases[i].data, len, &r, &why);

		if (ret != cases[i].err)
			fail_msg("case %zu: expected %d, got %d (%s)", i, cases[i].err, ret,
				 why ? why : "no reason");
		assert_non_null(why);
		assert_true(strlen(why) > 5);
	}
	/* NULL buffer is an empty datagram, not a crash. */
	assert_int_equal(ckpt_notify_parse(NULL, 10, &r, NULL), -EBADMSG);
}

/* Happy path over a real socketpair, via ckpt_notify_recv. */
static void test_socketpair_roundtrip(void **state)
{
	int sv[2], one = 1;
	struct ckpt_report r;
	const char *why = NULL;
	pid_t pid = -1;
	const char msg[] = "STEP=10\nLOSS=1.5\n";

	assert_int_equal(socketpair(AF_UNIX, SOCK_DGRAM, 0, sv), 0);
	assert_int_equal(setsockopt(sv[1], SOL_SOCKET, SO_PASSCRED, &one, sizeof(one)), 0);
	assert_int_equal(send(sv[0], msg, sizeof(msg) - 1, 0), (ssize_t)sizeof(msg) - 1);
	assert_int_equal(ckpt_notify_recv(sv[1], &r, &why, &pid), 0);
	assert_int_equal(r.step, 10);
	assert_true(r.loss == 1.5);
	assert_int_equal(pid, getpid());
	close(sv[0]);
	close(sv[1]);
}

/* A bound path socket and ckpt_notifyf() through CKPT_NOTIFY_SOCKET, then an
 * oversized datagram that must be reported as truncated, not parsed. */
static void test_path_socket(void **state)
{
	char dir[] = "/tmp/ckpt-notify-XXXXXX", path[128];
	struct ckpt_report r;
	const char *why = NULL;
	char big[CKPT_NOTIFY_MAX + 100];
	int fd;

	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/notify.sock", dir);
	fd = ckpt_notify_listen(path);
	assert_true(fd >= 0);
	assert_int_equal(ckpt_notify_recv(fd, &r, &why, NULL), -EAGAIN);

	setenv("CKPT_NOTIFY_SOCKET", path, 1);
	assert_int_equal(ckpt_notifyf("STEP=%d\nCHECKPOINT=%s", 77, "/m/r/step-77"), 1);
	assert_int_equal(ckpt_notify_recv(fd, &r, &why, NULL), 0);
	assert_int_equal(r.step, 77);
	assert_string_equal(r.checkpoint, "/m/r/step-77");

	/* Send an oversized datagram with a raw socket: the limit is ours, not
	 * the kernel's. */
	memset(big, 'A', sizeof(big));
	memcpy(big, "X=", 2);
	{
		struct sockaddr_un sa;
		int alen = ckpt_notify_addr(path, &sa);
		int s = socket(AF_UNIX, SOCK_DGRAM, 0);
		assert_true(alen > 0 && s >= 0);
		assert_int_equal(sendto(s, big, sizeof(big), 0, (struct sockaddr *)&sa, alen),
				 (ssize_t)sizeof(big));
		close(s);
	}
	assert_int_equal(ckpt_notify_recv(fd, &r, &why, NULL), -EMSGSIZE);
	assert_non_null(why);
	/* A malformed one is consumed and the next good one still arrives. */
	assert_int_equal(ckpt_notify_send(path, "garbage", 7), 0);
	assert_int_equal(ckpt_notify_send(path, "READY=1", 7), 0);
	assert_int_equal(ckpt_notify_recv(fd, &r, &why, NULL), -EBADMSG);
	assert_int_equal(ckpt_notify_recv(fd, &r, &why, NULL), 0);
	assert_int_equal(r.have, CKPT_R_READY);

	/* Sending too much is refused before it reaches the socket. */
	assert_int_equal(ckpt_notify_send(path, big, sizeof(big)), -EMSGSIZE);

	unsetenv("CKPT_NOTIFY_SOCKET");
	assert_int_equal(ckpt_notifyf("STEP=1"), 0); /* unset: a no-op */
	close(fd);
	unlink(path);
	rmdir(dir);
}

static void test_abstract_socket(void **state)
{
	char name[64];
	struct ckpt_report r;
	int fd;

	snprintf(name, sizeof(name), "@ckpt-test-%d", (int)getpid());
	fd = ckpt_notify_listen(name);
	assert_true(fd >= 0);
	assert_int_equal(ckpt_notify_send(name, "EPOCH=4\nSAVING=1", 16), 0);
	assert_int_equal(ckpt_notify_recv(fd, &r, NULL, NULL), 0);
	assert_int_equal(r.epoch, 4);
	assert_int_equal(r.saving, 1);
	close(fd);
	/* Bad names. */
	assert_int_equal(ckpt_notify_listen(""), -EINVAL);
	assert_int_equal(ckpt_notify_listen("@"), -EINVAL);
	memset(name, 'x', sizeof(name));
	{
		char longname[200];
		memset(longname, 'x', sizeof(longname) - 1);
		longname[sizeof(longname) - 1] = '\0';
		assert_int_equal(ckpt_notify_listen(longname), -ENAMETOOLONG);
	}
	/* Sending to nobody is an error, not a hang. */
	assert_true(ckpt_notify_send("@ckpt-test-nobody-listens", "STEP=1", 6) < 0);
}

/* ckpt_notify_listen refuses to replace a file that is not a socket. */
static void test_listen_does_not_clobber(void **state)
{
	char path[] = "/tmp/ckpt-notify-file-XXXXXX";
	int fd = mkstemp(path);

	assert_true(fd >= 0);
	close(fd);
	assert_int_equal(ckpt_notify_listen(path), -EEXIST);
	assert_int_equal(access(path, F_OK), 0);
	unlink(path);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_full_report),
		cmocka_unit_test(test_parse_nan_and_corruption),
		cmocka_unit_test(test_parse_unknown_keys_ignored),
		cmocka_unit_test(test_parse_max_step),
		cmocka_unit_test(test_parse_malformed),
		cmocka_unit_test(test_socketpair_roundtrip),
		cmocka_unit_test(test_path_socket),
		cmocka_unit_test(test_abstract_socket),
		cmocka_unit_test(test_listen_does_not_clobber),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
