// SPDX-License-Identifier: MIT
/*
 * main.c - ckptd: options and config, the state dir (SPEC §5), the pid file
 * lock, the API socket, re-adoption of trainers after a restart, and the one
 * poll loop that drives everything (signals, shims' pidfds, notify sockets,
 * the HTTP server, timers).
 *
 *   ckptd [--config FILE] [--state-dir DIR]
 */
#include "ckptd_i.h"

#include "ckptfs/statedir.h"
#include "ckptfs/yamljson.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <libgen.h>
#include <curl/curl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

struct ckptd g = {.events_fd = -1, .log_fd = -1, .pid_fd = -1};

static void usage(FILE *f)
{
	fprintf(f, "usage: ckptd [--config FILE] [--state-dir DIR]\n"
		   "The checkpoint supervisor: runs trainers, detects faults and restarts them\n"
		   "from the newest good checkpoint. API on STATE_DIR/ckptd.sock (docs/api.md).\n"
		   "State dir: --state-dir, else $CKPT_STATE_DIR, else $XDG_STATE_HOME/ckptfs,\n"
		   "else ~/.local/state/ckptfs (/var/lib/ckptfs for root).\n");
}

static int resolve_state_dir(const char *opt)
{
	int ret = ckpt_state_dir_find(opt, g.state_dir, sizeof(g.state_dir));

	if (ret == -ENAMETOOLONG) {
		fprintf(stderr,
			"ckptd: the state dir path is longer than %zu bytes; use a "
			"shorter --state-dir\n",
			sizeof(g.state_dir) - 1);
		return ret;
	}
	if (ret == -EINVAL) {
		fprintf(stderr, "ckptd: --state-dir is empty; name a directory\n");
		return ret;
	}
	if (ret < 0) {
		fprintf(stderr, "ckptd: cannot find a state dir (no $HOME): set --state-dir or "
				"CKPT_STATE_DIR\n");
		return ret;
	}
	if (mkdir_p(g.state_dir, 0700) < 0) {
		fprintf(stderr, "ckptd: cannot create the state dir %s: %s\n", g.state_dir,
			strerror(errno));
		return -errno;
	}
	{
		char real[CKPTD_PATH_MAX];

		if (realpath(g.state_dir, real))
			snprintf(g.state_dir, sizeof(g.state_dir), "%s", real);
	}
	return 0;
}

static int cfg_str(json_t *v, const char *k, char *dst, size_t len)
{
	if (!json_is_string(v) || !json_string_length(v) || json_string_length(v) >= len) {
		fprintf(stderr, "ckptd: config: %s: must be a non-empty string\n", k);
		return -EINVAL;
	}
	snprintf(dst, len, "%s", json_string_value(v));
	return 0;
}

static int cfg_int(json_t *v, const char *k, int lo, int hi, int *dst)
{
	if (!json_is_integer(v) || json_integer_value(v) < lo || json_integer_value(v) > hi) {
		fprintf(stderr, "ckptd: config: %s: must be an integer between %d and %d\n", k, lo,
			hi);
		return -EINVAL;
	}
	*dst = (int)json_integer_value(v);
	return 0;
}

/*
 * mount_options: what ckptd passes to the ckptfs it starts as `-o OPTS`
 * (resident=2G,verify=first). ckptfs itself checks each option when it
 * mounts; here only that it is one comma-separated word, so that it cannot
 * be taken for another argument.
 */
static int cfg_mount_opts(json_t *v, const char *k)
{
	int ret = cfg_str(v, k, g.mount_opts, sizeof(g.mount_opts));

	if (!ret && (g.mount_opts[0] == '-' || g.mount_opts[strcspn(g.mount_opts, " \t\n")])) {
		fprintf(stderr,
			"ckptd: config: mount_options: must be ckptfs's -o options, comma "
			"separated without spaces (resident=2G,verify=first), got \"%s\"\n",
			g.mount_opts);
		ret = -EINVAL;
	}
	return ret;
}

/* ckptd's own config (YAML), strict like job specs. */
static int load_config(const char *path, bool required)
{
	char err[512], *text, tok[CKPTD_PATH_MAX] = "";
	size_t len = 0;
	const char *k;
	json_t *root, *v;
	int ret = 0, iv;

	text = read_file(path, 1 << 20, &len);
	if (!text) {
		if (!required)
			return 0;
		fprintf(stderr, "ckptd: cannot read the config %s: %s\n", path, strerror(errno));
		return -errno;
	}
	root = ckpt_yaml_to_json(text, len, path, err, sizeof(err));
	free(text);
	if (!root) {
		fprintf(stderr, "ckptd: %s\n", err);
		return -EINVAL;
	}
	if (!json_is_object(root)) {
		fprintf(stderr, "ckptd: %s: the config must be a mapping of keys\n", path);
		json_decref(root);
		return -EINVAL;
	}
	json_object_foreach(root, k, v)
	{
		if (!strcmp(k, "store"))
			ret = cfg_str(v, k, g.store, sizeof(g.store));
		else if (!strcmp(k, "mount"))
			ret = cfg_str(v, k, g.mount, sizeof(g.mount));
		else if (!strcmp(k, "ckptfs"))
			ret = cfg_str(v, k, g.ckptfs_bin, sizeof(g.ckptfs_bin));
		else if (!strcmp(k, "mount_options"))
			ret = cfg_mount_opts(v, k);
		else if (!strcmp(k, "policy"))
			ret = cfg_str(v, k, g.policy_file, sizeof(g.policy_file));
		else if (!strcmp(k, "token_file"))
			ret = cfg_str(v, k, tok, sizeof(tok));
		else if (!strcmp(k, "host"))
			ret = cfg_str(v, k, g.host, sizeof(g.host));
		else if (!strcmp(k, "mount_ckptfs")) {
			char m[16];

			ret = cfg_str(v, k, m, sizeof(m));
			if (!ret && strcmp(m, "auto") && strcmp(m, "never")) {
				fprintf(stderr,
					"ckptd: config: mount_ckptfs: must be auto or never\n");
				ret = -EINVAL;
			}
			g.mount_mode = !strcmp(m, "never");
		} else if (!strcmp(k, "max_concurrent"))
			ret = cfg_int(v, k, 1, 1000, &g.max_concurrent);
		else if (!strcmp(k, "listen_tcp"))
			ret = cfg_int(v, k, 0, 65535, &g.listen_tcp);
		else if (!strcmp(k, "metrics_keep_steps")) {
			ret = cfg_int(v, k, 10, 100000000, &iv);
			g.keep_steps = iv;
		} else if (!strcmp(k, "rdzv_ttl_s")) {
			ret = cfg_int(v, k, 1, 3600, &iv);
			g.rdzv_ttl_s = iv;
		} else if (!strcmp(k, "cleanup_interval_s")) {
			ret = cfg_int(v, k, 60, 365 * 86400, &iv);
			g.cleanup_interval_s = iv;
		} else if (!strcmp(k, "gpus")) {
			ret = gpu_inv_from_config(&g.gpu, v, err, sizeof(err));
			if (ret < 0)
				fprintf(stderr, "ckptd: config: %s\n", err);
			g.gpu_configured = ret == 0;
			ret = ret < 0 ? ret : 0;
		} else {
			fprintf(stderr,
				"ckptd: %s: %s: unknown key (known: store, mount, mount_ckptfs, "
				"mount_options, ckptfs, policy, max_concurrent, listen_tcp, "
				"token_file, "
				"cleanup_interval_s, metrics_keep_steps, gpus, host, rdzv_ttl_s)\n",
				path, k);
			ret = -EINVAL;
		}
		if (ret)
			break;
	}
	json_decref(root);
	if (!ret && g.listen_tcp > 0 && !tok[0]) {
		fprintf(stderr,
			"ckptd: %s: listen_tcp is set but token_file is not: the TCP port would "
			"answer no one (or anyone); write a token into a file only you can read "
			"(chmod 600) and name it with token_file\n",
			path);
		return -EINVAL;
	}
	if (!ret && tok[0]) {
		struct stat st;
		char *t;

		if (stat(tok, &st) < 0) {
			fprintf(stderr, "ckptd: cannot read token_file %s: %s\n", tok,
				strerror(errno));
			return -EINVAL;
		}
		if (st.st_mode & 077) {
			fprintf(stderr,
				"ckptd: token_file %s is readable or writable by group or others "
				"(mode %04o): anyone who reads it can drive ckptd; run chmod 600 "
				"%s\n",
				tok, (unsigned)(st.st_mode & 07777), tok);
			return -EINVAL;
		}
		t = read_file(tok, sizeof(g.token) - 1, NULL);
		if (!t) {
			fprintf(stderr, "ckptd: cannot read token_file %s: %s\n", tok,
				strerror(errno));
			return -EINVAL;
		}
		t[strcspn(t, "\r\n")] = '\0';
		snprintf(g.token, sizeof(g.token), "%s", t);
		free(t);
		if (!g.token[0]) {
			fprintf(stderr, "ckptd: token_file %s is empty; write a token into it\n",
				tok);
			return -EINVAL;
		}
	}
	return ret;
}

/* One ckptd per state dir: an flock on ckptd.pid, which also holds our pid. */
static int take_pid_file(void)
{
	char path[CKPTD_PATH_MAX + 16], buf[32];
	int n;

	snprintf(path, sizeof(path), "%s/ckptd.pid", g.state_dir);
	g.pid_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (g.pid_fd < 0) {
		fprintf(stderr, "ckptd: cannot open %s: %s\n", path, strerror(errno));
		return -errno;
	}
	if (flock(g.pid_fd, LOCK_EX | LOCK_NB) < 0) {
		n = (int)pread(g.pid_fd, buf, sizeof(buf) - 1, 0);
		buf[n > 0 ? n : 0] = '\0';
		buf[strcspn(buf, "\n")] = '\0';
		fprintf(stderr,
			"ckptd: another ckptd (pid %s) already runs on %s; stop it with `ckpt "
			"daemon stop` or use another --state-dir\n",
			buf[0] ? buf : "?", g.state_dir);
		return -EBUSY;
	}
	n = snprintf(buf, sizeof(buf), "%d\n", (int)getpid());
	if (ftruncate(g.pid_fd, 0) < 0 || pwrite(g.pid_fd, buf, (size_t)n, 0) != n)
		return -errno;
	return 0;
}

static int listen_unix(void)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	mode_t old;
	int fd;

	snprintf(g.sock_path, sizeof(g.sock_path), "%s/ckptd.sock", g.state_dir);
	if (strlen(g.sock_path) >= sizeof(sa.sun_path)) {
		ckptd_log("the socket path %s is longer than %zu bytes; use a shorter --state-dir",
			  g.sock_path, sizeof(sa.sun_path) - 1);
		return -ENAMETOOLONG;
	}
	strcpy(sa.sun_path, g.sock_path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -errno;
	unlink(g.sock_path); /* stale: we hold the pid lock */
	old = umask(0177);   /* born 0600: no window where others may connect */
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		int e = errno;

		umask(old);
		close(fd);
		ckptd_log("cannot bind %s: %s", g.sock_path, strerror(e));
		return -e;
	}
	umask(old);
	chmod(g.sock_path, 0600);
	/* SOMAXCONN (the kernel caps it at net.core.somaxconn): a burst of
	 * clients waits in the queue instead of getting EAGAIN */
	if (listen(fd, SOMAXCONN) < 0) {
		close(fd);
		return -errno;
	}
	return fd;
}

/* Every API client, attempt (pidfd, notify socket) and hook holds an fd:
 * take the hard limit, not the 1024 a login shell hands down. Trainers and
 * hooks get the limit ckptd was started with (child_limits()). */
static void raise_fd_limit(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		g.nofile_soft = rl.rlim_cur;
		rl.rlim_cur = rl.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
			ckptd_log("cannot raise the open file limit: %s", strerror(errno));
	}
}

static void find_shim(void)
{
	char self[CKPTD_PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);

	if (n > 0) {
		self[n] = '\0';
		snprintf(g.shim_bin, sizeof(g.shim_bin), "%s/ckptd-shim", dirname(self));
	}
	if (access(g.shim_bin, X_OK) != 0)
		ckptd_log("ckptd-shim not found at %s; install it next to ckptd", g.shim_bin);
}

static void reap_children(void)
{
	int status;
	pid_t pid;

	while ((pid = waitpid(-1, &status, WNOHANG)) > 0)
		hooks_reap(pid, status);
}

static int main_loop(int sfd)
{
	struct pollfd *pfds = NULL;
	struct op **owners = NULL;
	struct rank **ranks = NULL;
	size_t cap = 0;

	while (!g.stopping) {
		double now = now_s(), next = now + 1.0;
		int64_t mt;
		size_t n = 0, nops = 0;
		int timeout, r;

		ops_tick(now, &next);
		metrics_tick(now, &next);
		if (g.next_cleanup && now >= g.next_cleanup) {
			cleanup_run(-1, NULL);
			g.next_cleanup = now + g.cleanup_interval_s;
		}
		for (struct op *op = g.ops; op; op = op->next)
			nops += (size_t)op->nranks;
		if (cap < nops * 3 + 4) {
			cap = nops * 3 + 16;
			pfds = realloc(pfds, cap * sizeof(*pfds));
			owners = realloc(owners, cap * sizeof(*owners));
			ranks = realloc(ranks, cap * sizeof(*ranks));
			if (!pfds || !owners || !ranks)
				return -ENOMEM;
		}
		pfds[n] = (struct pollfd){.fd = sfd, .events = POLLIN};
		owners[n++] = NULL;
		pfds[n] = (struct pollfd){.fd = api_epoll_fd(g.httpd), .events = POLLIN};
		owners[n++] = NULL;
		pfds[n] = (struct pollfd){.fd = api_epoll_fd(g.httpd_tcp), .events = POLLIN};
		owners[n++] = NULL;
		for (struct op *op = g.ops; op; op = op->next) {
			if (rdzv_fd(op) >= 0) { /* a gang across hosts: etcd's watch */
				pfds[n] = (struct pollfd){.fd = rdzv_fd(op), .events = POLLIN};
				ranks[n] = NULL;
				owners[n++] = op;
			}
			for (int k = 0; k < op->nranks; k++) {
				struct rank *rk = &op->r[k];

				if (rk->pidfd >= 0) {
					pfds[n] =
						(struct pollfd){.fd = rk->pidfd, .events = POLLIN};
					ranks[n] = rk;
					owners[n++] = op;
				}
				if (rk->notify_fd >= 0) {
					pfds[n] = (struct pollfd){.fd = rk->notify_fd,
								  .events = POLLIN};
					ranks[n] = rk;
					owners[n++] = op;
				}
			}
		}
		timeout = (int)((next - now_s()) * 1000.0);
		if (timeout < 0)
			timeout = 0;
		mt = api_timeout_ms();
		if (mt >= 0 && mt < timeout)
			timeout = (int)mt;
		r = poll(pfds, n, timeout);
		if (r < 0 && errno != EINTR)
			return -errno;
		if (r > 0 && pfds[0].revents) {
			struct signalfd_siginfo si;

			while (read(sfd, &si, sizeof(si)) == sizeof(si)) {
				if (si.ssi_signo == SIGCHLD)
					reap_children();
				else if (si.ssi_signo == SIGTERM || si.ssi_signo == SIGINT)
					g.stopping = true;
			}
		}
		/* a handler may close another rank's descriptors (the gang's last
		 * exit finishes the operation): each fd is checked against its
		 * rank's current ones before it is handled */
		for (size_t i = 3; r > 0 && i < n; i++) {
			struct op *op = owners[i];
			struct rank *rk = ranks[i];

			if (!pfds[i].revents)
				continue;
			if (!rk) {
				if (pfds[i].fd == rdzv_fd(op))
					rdzv_on_watch(op, now_s(), &next);
				continue;
			}
			if (pfds[i].fd == rk->pidfd)
				op_on_shim_exit(op, rk);
			else if (pfds[i].fd == rk->notify_fd)
				op_on_notify(op, rk);
		}
		api_run();
	}
	free(pfds);
	free(owners);
	free(ranks);
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {{"config", required_argument, NULL, 'c'},
					     {"state-dir", required_argument, NULL, 's'},
					     {"help", no_argument, NULL, 'h'},
					     {"version", no_argument, NULL, 'V'},
					     {NULL, 0, NULL, 0}};
	const char *config = NULL, *state = NULL;
	char path[CKPTD_PATH_MAX + 32];
	sigset_t mask;
	int c, ret, ufd, sfd;

	while ((c = getopt_long(argc, argv, "c:s:hV", opts, NULL)) != -1) {
		switch (c) {
		case 'c':
			config = optarg;
			break;
		case 's':
			state = optarg;
			break;
		case 'h':
			usage(stdout);
			return 0;
		case 'V':
			printf("ckptd %s\n", CKPTFS_VERSION);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind != argc) {
		usage(stderr);
		return 2;
	}
	if (resolve_state_dir(state) < 0)
		return 1;
	g.max_concurrent = 1;
	g.cleanup_interval_s = 86400;
	g.keep_steps = 100000;
	g.rdzv_ttl_s = 10;
	if (gethostname(g.host, sizeof(g.host)) < 0 || !g.host[0])
		snprintf(g.host, sizeof(g.host), "localhost");
	snprintf(g.store, sizeof(g.store), "%s/store", g.state_dir);
	snprintf(g.mount, sizeof(g.mount), "%s/mnt", g.state_dir);
	snprintf(g.policy_file, sizeof(g.policy_file), "%s/policy.yaml", g.state_dir);
	if (config)
		ret = load_config(config, true);
	else {
		snprintf(path, sizeof(path), "%s/config.yaml", g.state_dir);
		ret = load_config(path, false);
	}
	if (ret)
		return 2;
	if (take_pid_file() < 0)
		return 1;
	snprintf(path, sizeof(path), "%s/ckptd.log", g.state_dir);
	g.log_fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
	snprintf(path, sizeof(path), "%s/events.jsonl", g.state_dir);
	g.events_fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
	{
		static const char *const subs[] = {"logs", "ops", "notify", "secrets"};

		for (size_t i = 0; i < 4; i++) {
			snprintf(path, sizeof(path), "%s/%s", g.state_dir, subs[i]);
			mkdir_p(path, 0700);
		}
	}
	g.started = now_s();
	find_shim();
	raise_fd_limit();
	gpus_init();

	sigemptyset(&mask);
	sigaddset(&mask, SIGCHLD);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGHUP);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	signal(SIGPIPE, SIG_IGN);
	sfd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
	/* before any thread (etcd's watches, rdzv.c) and with the signals
	 * above blocked, which every thread inherits */
	curl_global_init(CURL_GLOBAL_DEFAULT);

	snprintf(path, sizeof(path), "%s/ckptd.db", g.state_dir);
	umask(077); /* the database and its WAL: owner only */
	if (db_open(path) < 0)
		return 1;
	umask(022);
	mount_ensure();
	if (db_load_ops() < 0) {
		ckptd_log("cannot read the operations from %s", path);
		return 1;
	}
	for (struct op *op = g.ops; op; op = op->next)
		op_adopt(op);
	gpus_adopt();
	ufd = listen_unix();
	if (ufd < 0 || api_start(ufd) < 0)
		return 1;
	g.next_cleanup = g.started + g.cleanup_interval_s;
	ckptd_log("ckptd %s started on %s (state dir %s, tree %s)", CKPTFS_VERSION, g.sock_path,
		  g.state_dir, g.mount);
	ret = main_loop(sfd);

	/* Clean shutdown: trainers keep running under their shims; the next
	 * ckptd re-adopts them. */
	ckptd_log("stopping; %s", "trainers keep running and will be re-adopted");
	for (struct op *op = g.ops; op; op = op->next) {
		db_metrics_flush(op);
		metrics_flush(op);
		if (op->status == OP_RUNNING)
			db_save_op(op);
	}
	api_stop();
	unlink(g.sock_path);
	while (g.ops) {
		struct op *op = g.ops;

		g.ops = op->next;
		op_free(op);
	}
	while (g.hooks) {
		struct hook *h = g.hooks;

		g.hooks = h->next;
		free(h);
	}
	db_close();
	close(sfd);
	if (g.events_fd >= 0)
		close(g.events_fd);
	snprintf(path, sizeof(path), "%s/ckptd.pid", g.state_dir);
	unlink(path);
	close(g.pid_fd);
	if (g.log_fd >= 0)
		close(g.log_fd);
	return ret < 0 ? 1 : 0;
}
