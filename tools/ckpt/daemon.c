// SPDX-License-Identifier: MIT
/*
 * daemon.c - `ckpt daemon status|stop`, and starting ckptd in the background
 * when `ckpt run`/`ckpt submit` find none (SPEC §5: zero configuration is
 * enough for a first run). ckptd is looked for beside this executable (the
 * install dir, or the build tree's supervisor/), then in PATH; $CKPTD names it
 * explicitly.
 */
#include "ckpt.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static const char daemon_help[] =
	"usage: ckpt daemon status [--json]\n"
	"       ckpt daemon stop\n"
	"\n"
	"status  say whether the ckptd of this state dir answers on its socket,\n"
	"        with its pid, socket, state dir and health answer\n"
	"stop    ask it to stop (SIGTERM to the pid in STATE_DIR/ckptd.pid) and wait;\n"
	"        running trainers keep running and are re-adopted by the next ckptd\n"
	"\n"
	"Options: --socket PATH, --state-dir DIR, --json, -h/--help.\n";

static bool healthy(struct ckpt_ctx *c, struct ckpt_resp *out)
{
	struct ckpt_resp r;
	bool ok;

	ckpt_api(c, "GET", "/healthz", NULL, NULL, &r);
	ok = r.status >= 200 && r.status < 300;
	if (out)
		*out = r;
	else
		ckpt_resp_free(&r);
	return ok;
}

static int exe_beside(char *out, size_t len, const char *rel)
{
	char self[PATH_MAX], *dir;
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);

	if (n <= 0)
		return -errno;
	self[n] = '\0';
	dir = dirname(self);
	snprintf(out, len, "%s/%s", dir, rel);
	return access(out, X_OK) == 0 ? 0 : -ENOENT;
}

static int find_ckptd(char *out, size_t len)
{
	const char *e = getenv("CKPTD");
	const char *path = getenv("PATH");

	if (e && e[0]) {
		snprintf(out, len, "%s", e);
		return access(out, X_OK) == 0 ? 0 : -ENOENT;
	}
	/* installed side by side, or the build tree (build/tools/ckpt/ckpt and
	 * build/supervisor/ckptd). */
	if (exe_beside(out, len, "ckptd") == 0 ||
	    exe_beside(out, len, "../../supervisor/ckptd") == 0)
		return 0;
	if (!path)
		path = "/usr/local/bin:/usr/bin:/bin";
	while (*path) {
		const char *colon = strchrnul(path, ':');
		snprintf(out, len, "%.*s/ckptd", (int)(colon - path), path);
		if (colon > path && access(out, X_OK) == 0)
			return 0;
		path = *colon ? colon + 1 : colon;
	}
	return -ENOENT;
}

static int mkdir_p(const char *dir)
{
	char buf[PATH_MAX];
	size_t n = strlen(dir);

	if (n >= sizeof(buf))
		return -ENAMETOOLONG;
	memcpy(buf, dir, n + 1);
	for (char *p = buf + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(buf, 0700) < 0 && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	if (mkdir(buf, 0700) < 0 && errno != EEXIST)
		return -errno;
	return 0;
}

int ckpt_daemon_ensure(struct ckpt_ctx *c)
{
	char exe[PATH_MAX], log[PATH_MAX + 16];
	const char *sd;
	pid_t pid;
	int ret;

	if (healthy(c, NULL))
		return 0;
	if (ckpt_socket_explicit(c)) {
		/* We would not know where a new ckptd should put its socket. */
		ckpt_err("no ckptd answers on %s. Start one with 'ckptd --state-dir DIR' and "
			 "point ckpt at DIR/ckptd.sock, or drop --socket/CKPT_SOCKET to let ckpt "
			 "start one.",
			 ckpt_socket_path(c));
		return CKPT_EXIT_FAIL;
	}
	if (find_ckptd(exe, sizeof(exe)) < 0) {
		ckpt_err("no ckptd answers on %s and no ckptd program was found beside ckpt or "
			 "in PATH. Install ckptfs ('meson install') or set CKPTD=/path/to/ckptd.",
			 ckpt_socket_path(c));
		return CKPT_EXIT_FAIL;
	}
	sd = ckpt_state_dir(c);
	ret = mkdir_p(sd);
	if (ret < 0) {
		ckpt_err("cannot create the state dir %s: %s. Pick another with --state-dir.", sd,
			 strerror(-ret));
		return CKPT_EXIT_FAIL;
	}
	/* ckptd writes its own ckptd.log; this catches what it prints before
	 * that (a bad config, say). */
	snprintf(log, sizeof(log), "%s/ckptd.out", sd);
	pid = fork();
	if (pid < 0) {
		ckpt_err("cannot start ckptd: fork: %s", strerror(errno));
		return CKPT_EXIT_FAIL;
	}
	if (pid == 0) {
		int fd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
		int nul = open("/dev/null", O_RDONLY);
		/* Its own session: Ctrl-C in this terminal must not reach it. */
		setsid();
		if (nul >= 0)
			dup2(nul, STDIN_FILENO);
		if (fd >= 0) {
			dup2(fd, STDOUT_FILENO);
			dup2(fd, STDERR_FILENO);
		}
		execl(exe, "ckptd", "--state-dir", sd, (char *)NULL);
		_exit(127);
	}
	fprintf(stderr,
		"ckpt: no ckptd answered on %s; started %s in the background (pid %d, state dir "
		"%s, output in %s). Stop it with 'ckpt daemon stop'.\n",
		ckpt_socket_path(c), exe, (int)pid, sd, log);
	/* Up to 30 s: ckptd opens its database and mounts the store first. */
	for (int i = 0; i < 300; i++) {
		int st;
		if (healthy(c, NULL))
			return 0;
		if (waitpid(pid, &st, WNOHANG) == pid && !(WIFEXITED(st) && WEXITSTATUS(st) == 0)) {
			ckpt_err("ckptd exited (%s %d) before answering; see %s for why.",
				 WIFEXITED(st) ? "status" : "signal",
				 WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st), log);
			return CKPT_EXIT_FAIL;
		}
		usleep(100 * 1000);
	}
	ckpt_err("ckptd (pid %d) did not answer on %s within 30 s; see %s.", (int)pid,
		 ckpt_socket_path(c), log);
	return CKPT_EXIT_FAIL;
}

static pid_t read_pid(struct ckpt_ctx *c, char *pidfile, size_t len)
{
	char buf[32] = "", comm[64] = "", p[64];
	FILE *f;
	long v;

	snprintf(pidfile, len, "%s/ckptd.pid", ckpt_state_dir(c));
	f = fopen(pidfile, "r");
	if (!f)
		return -1;
	if (!fgets(buf, sizeof(buf), f))
		buf[0] = '\0';
	fclose(f);
	v = strtol(buf, NULL, 10);
	if (v <= 1)
		return -1;
	/* A stale pid file may name a reused pid: check it is a ckptd. */
	snprintf(p, sizeof(p), "/proc/%ld/comm", v);
	f = fopen(p, "r");
	if (!f)
		return -1;
	if (!fgets(comm, sizeof(comm), f))
		comm[0] = '\0';
	fclose(f);
	return strncmp(comm, "ckptd", 5) == 0 ? (pid_t)v : -1;
}

/* The inventory: each GPU and who holds it, then the queue for them. */
static void print_gpus(json_t *g)
{
	json_t *devs = ckpt_jget(g, "devices", NULL), *q = ckpt_jget(g, "queue", NULL), *d;
	const char *src = ckpt_jstr(g, "source");
	size_t i;

	if (!json_is_object(g))
		return;
	printf("  %-17s %lld (%s), %lld free\n", "gpus",
	       (long long)json_integer_value(ckpt_jget(g, "count", NULL)), src ? src : "?",
	       (long long)json_integer_value(ckpt_jget(g, "free", NULL)));
	json_array_foreach(devs, i, d)
	{
		const char *op = ckpt_jstr(d, "operation"), *name = ckpt_jstr(d, "name");
		char label[32];

		snprintf(label, sizeof(label), "GPU %lld",
			 (long long)json_integer_value(ckpt_jget(d, "index", NULL)));
		printf("    %-15s %s%s%s\n", label, op ? op : "free", name ? "  " : "",
		       name ? name : "");
	}
	json_array_foreach(q, i, d)
	{
		long long n = (long long)json_integer_value(ckpt_jget(d, "gpus", NULL));
		const char *op = ckpt_jstr(d, "operation");

		printf("    %-15s %s (%lld GPU%s)\n", i ? "" : "waiting", op ? op : "?", n,
		       n == 1 ? "" : "s");
	}
}

static int daemon_status(struct ckpt_ctx *c)
{
	struct ckpt_resp r;
	char pidfile[PATH_MAX + 16];
	pid_t pid = read_pid(c, pidfile, sizeof(pidfile));
	bool ok;

	ckpt_api(c, "GET", "/api/v1/daemon", NULL, NULL, &r);
	ok = r.status == 200 && json_is_object(r.json);
	if (c->json) {
		json_t *j = ok ? json_incref(r.json) : json_object();
		json_object_set_new(j, "running", json_boolean(ok));
		if (!ok) {
			json_object_set_new(j, "socket", json_string(ckpt_socket_path(c)));
			json_object_set_new(j, "state_dir", json_string(ckpt_state_dir(c)));
		}
		ckpt_json_print(j);
		json_decref(j);
	} else if (ok) {
		static const char *keys[] = {"pid",	"version",  "state_dir",
					     "socket",	"mount",    "mounted_by_ckptd",
					     "started", "uptime_s", "operations"};
		printf("ckptd is running\n");
		for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
			json_t *v = json_object_get(r.json, keys[i]);
			char *s;
			if (!v || json_is_null(v))
				continue;
			s = json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT | JSON_PRESERVE_ORDER);
			printf("  %-17s %s\n", keys[i],
			       json_is_string(v) ? json_string_value(v) : s);
			free(s);
		}
		print_gpus(ckpt_jget(r.json, "gpus", NULL));
	} else if (r.status) {
		ckpt_api_fail(c, "asking ckptd for its status", &r);
	} else {
		printf("ckptd is not running (nothing answers on %s: %s)\n", ckpt_socket_path(c),
		       r.err);
		if (pid > 0)
			printf("  but pid %d from %s is a ckptd: it may be starting or stuck\n",
			       (int)pid, pidfile);
		printf("Start it with 'ckptd --state-dir %s', or let 'ckpt run' start it.\n",
		       ckpt_state_dir(c));
	}
	ckpt_resp_free(&r);
	return ok ? CKPT_EXIT_OK : CKPT_EXIT_FAIL;
}

static bool gone(pid_t pid, struct ckpt_ctx *c)
{
	if (pid > 0)
		return kill(pid, 0) < 0 && errno == ESRCH;
	return !healthy(c, NULL);
}

static int daemon_stop(struct ckpt_ctx *c)
{
	char pidfile[PATH_MAX + 16];
	pid_t pid = read_pid(c, pidfile, sizeof(pidfile));
	struct ckpt_resp r;

	/* The API first (it works with --socket alone); the pid file second. */
	ckpt_api(c, "POST", "/api/v1/daemon/stop", NULL, NULL, &r);
	if (r.status >= 200 && r.status < 300) {
		json_t *p = ckpt_jget(r.json, "pid", NULL);
		if (pid <= 0 && json_is_integer(p))
			pid = (pid_t)json_integer_value(p);
	} else if (r.status == 0 && pid <= 0) {
		ckpt_resp_free(&r);
		printf("ckptd is not running (nothing answers on %s); nothing to stop\n",
		       ckpt_socket_path(c));
		return CKPT_EXIT_OK;
	} else if (pid <= 0) {
		int rc = ckpt_api_fail(c, "stopping ckptd", &r);
		ckpt_resp_free(&r);
		return rc;
	} else if (kill(pid, SIGTERM) < 0) {
		ckpt_resp_free(&r);
		ckpt_err("cannot signal ckptd (pid %d): %s. Are you its owner? Try as that user.",
			 (int)pid, strerror(errno));
		return CKPT_EXIT_FAIL;
	}
	ckpt_resp_free(&r);
	for (int i = 0; i < 300; i++) {
		if (gone(pid, c)) {
			printf("ckptd stopped; running trainers keep running and the next ckptd "
			       "re-adopts them\n");
			return CKPT_EXIT_OK;
		}
		usleep(100 * 1000);
	}
	ckpt_err("ckptd%s is still running 30 s after being asked to stop; see its log in %s%s",
		 pid > 0 ? "" : " (pid unknown)", ckpt_state_dir(c),
		 pid > 0 ? ", or kill -9 it (trainers survive that)." : ".");
	return CKPT_EXIT_FAIL;
}

int cmd_daemon(struct ckpt_ctx *c, int argc, char **argv)
{
	static const struct option lo[] = {CKPT_COMMON_LONGOPTS, {NULL, 0, NULL, 0}};
	int opt;

	while ((opt = getopt_long(argc, argv, "hq", lo, NULL)) != -1) {
		if (ckpt_common_opt(c, opt, optarg))
			continue;
		if (opt == 'h') {
			fputs(daemon_help, stdout);
			return CKPT_EXIT_OK;
		}
		return ckpt_bad_opt("daemon", opt, argv);
	}
	if (optind >= argc)
		return ckpt_usage_err("daemon", "say what to do: 'ckpt daemon status' or 'ckpt "
						"daemon stop'");
	if (optind + 1 < argc)
		return ckpt_usage_err("daemon", "unexpected argument '%s'", argv[optind + 1]);
	if (!strcmp(argv[optind], "status"))
		return daemon_status(c);
	if (!strcmp(argv[optind], "stop"))
		return daemon_stop(c);
	{
		static const char *const subs[] = {"status", "stop", NULL};
		char dym[64];

		return ckpt_usage_err(
			"daemon", "'%s' is not a daemon command.%s Use status or stop.",
			argv[optind], ckpt_did_you_mean(dym, sizeof(dym), argv[optind], subs));
	}
}
