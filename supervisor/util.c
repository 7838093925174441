// SPDX-License-Identifier: MIT
/*
 * util.c - small helpers of ckptd: clocks and ISO times, files written
 * durably, /proc start times (to tell a live pid from a reused one), the
 * daemon log, operation ids and states.
 */
#include "ckptd_i.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

int64_t ts_ns(const struct timespec *t)
{
	return (int64_t)t->tv_sec * 1000000000 + t->tv_nsec;
}

double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

void iso_time(double t, char *buf, size_t len)
{
	ckpt_iso_format(buf, len, ckpt_iso_ns(t), CKPT_ISO_MS);
}

/* In a forked child before exec: the open file limit ckptd was started with
 * (main.c raises its own), so a trainer sees what its user set. */
void child_limits(void)
{
	struct rlimit rl;

	if (g.nofile_soft && getrlimit(RLIMIT_NOFILE, &rl) == 0) {
		rl.rlim_cur = g.nofile_soft;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
}

int mkdir_p(const char *path, mode_t mode)
{
	char buf[CKPTD_PATH_MAX];
	size_t n = strlen(path);

	if (n >= sizeof(buf))
		return -ENAMETOOLONG;
	memcpy(buf, path, n + 1);
	for (char *p = buf + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(buf, mode) < 0 && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	if (mkdir(buf, mode) < 0 && errno != EEXIST)
		return -errno;
	return 0;
}

/* The rdbSave dance: temp file, write, fsync, rename, fsync the directory. */
int write_file_atomic(const char *path, const char *data, size_t len, mode_t mode)
{
	char tmp[CKPTD_PATH_MAX + 16], dir[CKPTD_PATH_MAX];
	int fd, dfd, ret = 0;
	size_t off = 0;
	char *slash;

	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
	if (fd < 0)
		return -errno;
	while (off < len) {
		ssize_t n = write(fd, data + off, len - off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			ret = -errno;
			goto fail;
		}
		off += (size_t)n;
	}
	if (fsync(fd) < 0) {
		ret = -errno;
		goto fail;
	}
	close(fd);
	if (rename(tmp, path) < 0) {
		ret = -errno;
		unlink(tmp);
		return ret;
	}
	snprintf(dir, sizeof(dir), "%s", path);
	slash = strrchr(dir, '/');
	if (slash) {
		*slash = '\0';
		dfd = open(dir[0] ? dir : "/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (dfd >= 0) {
			fsync(dfd);
			close(dfd);
		}
	}
	return 0;
fail:
	close(fd);
	unlink(tmp);
	return ret;
}

char *read_file(const char *path, size_t max, size_t *len)
{
	char *buf;
	size_t got = 0;
	int fd;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return NULL;
	buf = malloc(max + 1);
	if (!buf) {
		close(fd);
		return NULL;
	}
	while (got < max) {
		ssize_t n = read(fd, buf + got, max - got);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	close(fd);
	buf[got] = '\0';
	if (len)
		*len = got;
	return buf;
}

/* Field 22 of /proc/PID/stat: start time in clock ticks since boot. With the
 * pid it names one process for the machine's uptime. 0 when gone. */
uint64_t proc_start_time(pid_t pid)
{
	char path[64], *buf, *p;
	unsigned long long st = 0;
	int field = 2;

	if (pid <= 0)
		return 0;
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	buf = read_file(path, 4096, NULL);
	if (!buf)
		return 0;
	p = strrchr(buf, ')'); /* comm may hold spaces and parentheses */
	if (p && p[1] == ' ' && p[2] != 'Z' && p[2] != 'X') {
		for (p++; *p && field < 22; p++)
			if (*p == ' ')
				field++;
		if (field == 22)
			st = strtoull(p, NULL, 10);
	}
	free(buf);
	return st;
}

int rm_rf(const char *path)
{
	struct stat st;
	DIR *d;
	struct dirent *e;
	int ret = 0;

	if (lstat(path, &st) < 0)
		return errno == ENOENT ? 0 : -errno;
	if (!S_ISDIR(st.st_mode))
		return unlink(path) < 0 ? -errno : 0;
	d = opendir(path);
	if (!d)
		return -errno;
	while ((e = readdir(d))) {
		char sub[CKPTD_PATH_MAX];

		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		if ((size_t)snprintf(sub, sizeof(sub), "%s/%s", path, e->d_name) >= sizeof(sub))
			continue;
		if (rm_rf(sub) < 0 && !ret)
			ret = -errno;
	}
	closedir(d);
	if (rmdir(path) < 0 && errno != ENOENT)
		ret = -errno;
	return ret;
}

int64_t du_bytes(const char *path)
{
	struct stat st;
	DIR *d;
	struct dirent *e;
	int64_t sum = 0;

	if (lstat(path, &st) < 0)
		return 0;
	if (!S_ISDIR(st.st_mode))
		return S_ISREG(st.st_mode) ? (int64_t)st.st_size : 0;
	d = opendir(path);
	if (!d)
		return 0;
	while ((e = readdir(d))) {
		char sub[CKPTD_PATH_MAX];

		if (e->d_name[0] == '.' &&
		    (!e->d_name[1] || !strcmp(e->d_name, "..") || !strcmp(e->d_name, ".manifest")))
			continue;
		if ((size_t)snprintf(sub, sizeof(sub), "%s/%s", path, e->d_name) < sizeof(sub))
			sum += du_bytes(sub);
	}
	closedir(d);
	return sum;
}

void ckptd_log(const char *fmt, ...)
{
	char line[2048], ts[40];
	va_list ap;
	int n;

	iso_time(now_s(), ts, sizeof(ts));
	n = snprintf(line, sizeof(line), "%s ckptd[%d]: ", ts, (int)getpid());
	va_start(ap, fmt);
	vsnprintf(line + n, sizeof(line) - (size_t)n - 1, fmt, ap);
	va_end(ap);
	n = (int)strlen(line);
	line[n++] = '\n';
	if (write(STDERR_FILENO, line, (size_t)n) < 0) {
		/* nothing to do: stderr may be closed when daemonised */
	}
	if (g.log_fd >= 0 && write(g.log_fd, line, (size_t)n) < 0) {
		/* likewise */
	}
}

/* op_<kind>_YYYYMMDD_HHMMSS_<6 hex> */
bool valid_op_id(const char *id)
{
	const char *p = id;
	int i;

	if (strncmp(p, "op_", 3))
		return false;
	p += 3;
	for (i = 0; islower((unsigned char)p[i]); i++)
		;
	if (i == 0 || i > 16 || p[i] != '_')
		return false;
	p += i + 1;
	for (i = 0; i < 8; i++)
		if (!isdigit((unsigned char)p[i]))
			return false;
	if (p[8] != '_')
		return false;
	p += 9;
	for (i = 0; i < 6; i++)
		if (!isdigit((unsigned char)p[i]))
			return false;
	if (p[6] != '_')
		return false;
	p += 7;
	for (i = 0; i < 6; i++)
		if (!isdigit((unsigned char)p[i]) && !(p[i] >= 'a' && p[i] <= 'f'))
			return false;
	return p[6] == '\0';
}

static const char *const status_names[] = {"PENDING",	"RUNNING", "RECOVERING",
					   "COMPLETED", "FAILED",  "CANCELLED"};

const char *status_name(enum op_status s)
{
	return status_names[s];
}

int status_parse(const char *s, enum op_status *out)
{
	for (int i = 0; i < 6; i++)
		if (!strcasecmp(s, status_names[i])) {
			*out = (enum op_status)i;
			return 0;
		}
	return -EINVAL;
}
