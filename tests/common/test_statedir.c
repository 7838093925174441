// SPDX-License-Identifier: MIT
/* test_statedir.c - the state dir lookup ckptd and ckpt share (SPEC §5). */
#include <errno.h>
#include <pwd.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "ckptfs/statedir.h"

static int clear_env(void **state)
{
	(void)state;
	unsetenv("CKPT_STATE_DIR");
	unsetenv("XDG_STATE_HOME");
	setenv("HOME", "/home/u", 1);
	return 0;
}

static void check(const char *opt, const char *want)
{
	char b[4096];

	assert_int_equal(ckpt_state_dir_find(opt, b, sizeof(b)), 0);
	assert_string_equal(b, want);
}

static void test_order(void **state)
{
	(void)state;
	/* each rule wins over every later one */
	setenv("CKPT_STATE_DIR", "/env/state", 1);
	setenv("XDG_STATE_HOME", "/xdg", 1);
	check("/opt/state", "/opt/state");
	check(NULL, "/env/state");
	unsetenv("CKPT_STATE_DIR");
	check(NULL, "/xdg/ckptfs");
	unsetenv("XDG_STATE_HOME");
	check(NULL, geteuid() == 0 ? "/var/lib/ckptfs" : "/home/u/.local/state/ckptfs");
}

static void test_empty_is_unset(void **state)
{
	(void)state;
	setenv("CKPT_STATE_DIR", "", 1);
	setenv("XDG_STATE_HOME", "", 1);
	setenv("HOME", "/h", 1);
	check(NULL, geteuid() == 0 ? "/var/lib/ckptfs" : "/h/.local/state/ckptfs");
}

static void test_empty_option(void **state)
{
	char b[64];

	(void)state;
	assert_int_equal(ckpt_state_dir_find("", b, sizeof(b)), -EINVAL);
}

static void test_home_from_passwd(void **state)
{
	struct passwd *pw = getpwuid(geteuid());
	char want[4096];

	(void)state;
	if (geteuid() == 0 || !pw || !pw->pw_dir || !pw->pw_dir[0])
		skip();
	unsetenv("HOME");
	snprintf(want, sizeof(want), "%s/.local/state/ckptfs", pw->pw_dir);
	check(NULL, want);
}

static void test_too_long(void **state)
{
	char b[16];

	(void)state;
	assert_int_equal(ckpt_state_dir_find("/a/very/long/state/dir", b, sizeof(b)),
			 -ENAMETOOLONG);
	setenv("XDG_STATE_HOME", "/0123456789", 1);
	assert_int_equal(ckpt_state_dir_find(NULL, b, sizeof(b)), -ENAMETOOLONG);
	assert_int_equal(ckpt_state_dir_find("/fits", b, sizeof(b)), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_order, clear_env),
		cmocka_unit_test_setup(test_empty_is_unset, clear_env),
		cmocka_unit_test_setup(test_empty_option, clear_env),
		cmocka_unit_test_setup(test_home_from_passwd, clear_env),
		cmocka_unit_test_setup(test_too_long, clear_env),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
