// SPDX-License-Identifier: MIT
/*
 * statedir.c - the state dir lookup of SPEC §5, shared by ckptd and ckpt so
 * that both always name the same directory.
 */
#include "ckptfs/statedir.h"

#include <errno.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static const char *env(const char *name)
{
	const char *v = getenv(name);

	return v && v[0] ? v : NULL;
}

static int put(char *buf, size_t len, const char *a, const char *b)
{
	int n = snprintf(buf, len, "%s%s", a, b);

	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

int ckpt_state_dir_find(const char *opt, char *buf, size_t len)
{
	const char *e, *home;
	struct passwd *pw;

	if (opt)
		return opt[0] ? put(buf, len, opt, "") : -EINVAL;
	if ((e = env("CKPT_STATE_DIR")))
		return put(buf, len, e, "");
	if ((e = env("XDG_STATE_HOME")))
		return put(buf, len, e, "/ckptfs");
	if (geteuid() == 0)
		return put(buf, len, "/var/lib/ckptfs", "");
	home = env("HOME");
	if (!home) {
		pw = getpwuid(geteuid());
		home = pw && pw->pw_dir && pw->pw_dir[0] ? pw->pw_dir : NULL;
	}
	if (!home)
		return -ENOENT;
	return put(buf, len, home, "/.local/state/ckptfs");
}
