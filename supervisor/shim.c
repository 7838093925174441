// SPDX-License-Identifier: MIT
/*
 * shim.c - ckptd-shim, the small process between ckptd and one trainer
 * attempt. It outlives ckptd (it ignores SIGTERM/SIGINT/SIGHUP and lives in
 * its own session), starts the trainer in the trainer's own process group
 * with stdout/stderr appended to the operation's log, and records how the
 * trainer ended in ATTEMPT_DIR/exit ("exit N" or "signal N"), durably, so a
 * ckptd that was down when the trainer ended still learns the status.
 *
 *   ckptd-shim ATTEMPT_DIR LOGFILE ATTEMPT -- ARGV...
 *
 * fd 3 is a pipe from ckptd: the shim waits for one byte on it before it
 * starts the trainer. ckptd sends it only after it has recorded the shim's
 * pid durably, so a ckptd killed in between never leaves a trainer it does
 * not know about (the shim sees EOF and exits without starting one).
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static int write_atomic(const char *dir, const char *name, const char *text)
{
	char tmp[4200], path[4200];
	size_t len = strlen(text), off = 0;
	int fd, dfd;

	snprintf(tmp, sizeof(tmp), "%s/.%s.tmp", dir, name);
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return -errno;
	while (off < len) {
		ssize_t n = write(fd, text + off, len - off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			close(fd);
			return -errno;
		}
		off += (size_t)n;
	}
	if (fsync(fd) < 0 || close(fd) < 0 || rename(tmp, path) < 0)
		return -errno;
	dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd >= 0) {
		fsync(dfd);
		close(dfd);
	}
	return 0;
}

static unsigned long long start_time(pid_t pid)
{
	char path[64], buf[1024], *p;
	unsigned long long st = 0;
	ssize_t n;
	int fd, field = 2;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	p = strrchr(buf, ')');
	if (!p)
		return 0;
	for (p++; *p && field < 22; p++)
		if (*p == ' ')
			field++;
	if (field == 22)
		st = strtoull(p, NULL, 10);
	return st;
}

int main(int argc, char **argv)
{
	const char *dir, *logfile;
	char go = 0, line[256];
	int logfd, status, i;
	sigset_t empty;
	pid_t pid;

	if (argc < 6 || strcmp(argv[4], "--")) {
		fprintf(stderr, "usage: ckptd-shim ATTEMPT_DIR LOGFILE ATTEMPT -- ARGV...\n"
				"(started by ckptd; not meant to be run by hand)\n");
		return 2;
	}
	dir = argv[1];
	logfile = argv[2];
	while (read(3, &go, 1) < 0 && errno == EINTR)
		;
	close(3);
	if (go != 'g')
		return 0; /* ckptd went away before recording us: start nothing */

	signal(SIGTERM, SIG_IGN);
	signal(SIGINT, SIG_IGN);
	signal(SIGHUP, SIG_IGN);
	signal(SIGPIPE, SIG_IGN);
	prctl(PR_SET_NAME, "ckptd-shim", 0, 0, 0);

	logfd = open(logfile, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
	if (logfd >= 0) {
		int n = snprintf(line, sizeof(line), "--- ckptd: attempt %s ---\n", argv[3]);

		if (write(logfd, line, (size_t)n) < 0) {
			/* the log is best effort; the trainer still runs */
		}
	}
	pid = fork();
	if (pid < 0) {
		snprintf(line, sizeof(line), "exit 127\nfork failed: %s\n", strerror(errno));
		write_atomic(dir, "exit", line);
		return 1;
	}
	if (pid == 0) {
		int devnull = open("/dev/null", O_RDONLY);

		setpgid(0, 0);
		signal(SIGTERM, SIG_DFL);
		signal(SIGINT, SIG_DFL);
		signal(SIGHUP, SIG_DFL);
		signal(SIGPIPE, SIG_DFL);
		sigemptyset(&empty);
		sigprocmask(SIG_SETMASK, &empty, NULL);
		if (devnull >= 0)
			dup2(devnull, 0);
		if (logfd >= 0) {
			dup2(logfd, 1);
			dup2(logfd, 2);
		}
		execvp(argv[5], argv + 5);
		fprintf(stderr, "ckptd-shim: cannot run '%s': %s; check the job's command\n",
			argv[5], strerror(errno));
		_exit(127);
	}
	setpgid(pid, pid); /* as well as in the child: no window where it is ours */
	snprintf(line, sizeof(line), "%d %llu\n", (int)pid, start_time(pid));
	write_atomic(dir, "trainer", line);
	for (;;) {
		pid_t r = waitpid(pid, &status, 0);

		if (r == pid)
			break;
		if (r < 0 && errno != EINTR) {
			status = 127 << 8;
			break;
		}
	}
	if (WIFSIGNALED(status))
		snprintf(line, sizeof(line), "signal %d\n", WTERMSIG(status));
	else
		snprintf(line, sizeof(line), "exit %d\n", WEXITSTATUS(status));
	for (i = 0; i < 3 && write_atomic(dir, "exit", line) < 0; i++)
		usleep(100000);
	return 0;
}
