// SPDX-License-Identifier: MIT
/*
 * mount.c - make sure the checkpoint tree is there: when the configured
 * mount point is not mounted, start `ckptfs STORE MOUNT [-o mount_options]`
 * (found through the config, next to ckptd's own build or install dir, or in
 * PATH) and wait for the mount to appear. Without ckptfs, ckptd still works on the plain
 * directory and says so.
 */
#include "ckptd_i.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <unistd.h>

static bool executable(const char *p)
{
	return p[0] && access(p, X_OK) == 0;
}

static void find_ckptfs(char *out, size_t len)
{
	char self[CKPTD_PATH_MAX], dir[CKPTD_PATH_MAX], cand[CKPTD_PATH_MAX + 64];
	const char *path = getenv("PATH");
	ssize_t n;

	if (executable(g.ckptfs_bin)) {
		snprintf(out, len, "%s", g.ckptfs_bin);
		return;
	}
	out[0] = '\0';
	n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (n > 0) {
		self[n] = '\0';
		snprintf(dir, sizeof(dir), "%s", dirname(self));
		snprintf(cand, sizeof(cand), "%s/../fs/fuse/ckptfs", dir); /* build tree */
		if (executable(cand)) {
			snprintf(out, len, "%s", cand);
			return;
		}
		snprintf(cand, sizeof(cand), "%s/ckptfs", dir); /* installed side by side */
		if (executable(cand)) {
			snprintf(out, len, "%s", cand);
			return;
		}
	}
	while (path && *path) {
		const char *colon = strchr(path, ':');
		size_t l = colon ? (size_t)(colon - path) : strlen(path);

		snprintf(cand, sizeof(cand), "%.*s/ckptfs", (int)l, path);
		if (l && executable(cand)) {
			snprintf(out, len, "%s", cand);
			return;
		}
		path = colon ? colon + 1 : NULL;
	}
}

int mount_ensure(void)
{
	char bin[CKPTD_PATH_MAX], buf[8];
	pid_t pid;
	int status = 0;

	mkdir_p(g.mount, 0755);
	if (is_mountpoint(g.mount)) {
		g.ckptfs_mount = getxattr(g.mount, "user.ckpt.state", buf, sizeof(buf)) >= 0 ||
				 errno != ENOTSUP;
		ckptd_log("using the mounted tree at %s%s", g.mount,
			  g.mount_opts[0]
				  ? " (already mounted: mount_options are not applied to it)"
				  : "");
		return 0;
	}
	if (g.mount_mode == 1) {
		ckptd_log("using %s as a plain directory (mount_ckptfs: never)", g.mount);
		return 0;
	}
	find_ckptfs(bin, sizeof(bin));
	if (!bin[0]) {
		ckptd_log(
			"ckptfs not found (config key ckptfs, next to ckptd, or in PATH); using %s "
			"as a plain directory: checkpoints are not verified by hashes",
			g.mount);
		return 0;
	}
	if (strncmp(g.store, "rados://", 8)) /* a RADOS pool is not made here */
		mkdir_p(g.store, 0700);
	pid = fork();
	if (pid == 0) {
		int fd = open("/dev/null", O_RDWR);

		setsid();
		if (fd >= 0) {
			dup2(fd, 0);
			dup2(g.log_fd >= 0 ? g.log_fd : fd, 1);
			dup2(g.log_fd >= 0 ? g.log_fd : fd, 2);
		}
		syscall(SYS_close_range, 3, ~0u, 0);
		if (g.mount_opts[0])
			execl(bin, "ckptfs", g.store, g.mount, "-o", g.mount_opts, (char *)NULL);
		else
			execl(bin, "ckptfs", g.store, g.mount, (char *)NULL);
		_exit(127);
	}
	if (pid < 0)
		return -errno;
	/* ckptfs may stay in the foreground or daemonise; either way the mount
	 * appearing is what counts. */
	for (int i = 0; i < 100; i++) {
		if (is_mountpoint(g.mount)) {
			g.mounted_by_us = true;
			g.ckptfs_mount = true;
			ckptd_log("mounted %s on %s with %s%s%s", g.store, g.mount, bin,
				  g.mount_opts[0] ? " -o " : "", g.mount_opts);
			return 0;
		}
		if (waitpid(pid, &status, WNOHANG) == pid && !is_mountpoint(g.mount)) {
			ckptd_log(
				"%s %s %s exited (status %d) without mounting; using %s as a plain "
				"directory. Run it by hand to see why.",
				bin, g.store, g.mount, status, g.mount);
			return 0;
		}
		usleep(100000);
	}
	ckptd_log("%s did not mount %s within 10 s; using it as a plain directory", bin, g.mount);
	kill(pid, SIGTERM);
	return 0;
}
