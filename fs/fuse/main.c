// SPDX-License-Identifier: MIT
/*
 * main.c - the ckptfs daemon: parse the command line, open (or create) the
 * store, mount, serve with the multi-threaded session loop, and unmount
 * cleanly on SIGTERM/SIGINT/SIGHUP or `fusermount3 -u` / `umount`.
 *
 * Without -f the daemon forks before it opens the store (the store's threads
 * would not survive a later fork) and the parent exits only when the mount is
 * ready, with the child's status, so `mount -t fuse.ckptfs` and fstab see
 * errors.
 */
#include "ckptfs_i.h"
#include "ckptfs/isotime.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

/* In the background: syslog, or the regular file stderr was (log_file) */
static bool log_syslog, log_file;

void cfs_log(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	if (log_syslog) {
		vsyslog(LOG_INFO, fmt, ap);
	} else if (log_file) {
		/* one write(2) a line, as ckptd's own lines in the same file */
		char line[1400], ts[CKPT_ISO_LEN];
		struct timespec now;
		int n;

		clock_gettime(CLOCK_REALTIME, &now);
		ckpt_iso_format(ts, sizeof(ts), (int64_t)now.tv_sec * CKPT_NS_PER_S + now.tv_nsec,
				CKPT_ISO_MS);
		n = snprintf(line, sizeof(line), "%s ckptfs[%d]: ", ts, (int)getpid());
		n += vsnprintf(line + n, sizeof(line) - (size_t)n - 1, fmt, ap);
		if (n > (int)sizeof(line) - 2)
			n = (int)sizeof(line) - 2;
		line[n++] = '\n';
		if (write(STDERR_FILENO, line, (size_t)n) < 0) {
			/* nowhere else to say it */
		}
	} else {
		fputs("ckptfs: ", stderr);
		vfprintf(stderr, fmt, ap);
		fputc('\n', stderr);
	}
	va_end(ap);
}

/* The store's lines go where the daemon's go. */
static void store_line(const char *line)
{
	cfs_log("%s", line);
}

static void cfs_init(void *userdata, struct fuse_conn_info *conn)
{
	/* 1 MiB writes: libfuse sizes max_pages from max_write (capped by its
	 * buffer, 1 MiB + header in 3.14). */
	conn->max_write = CFS_MAX_WRITE;
	conn->max_background = 64;
	conn->congestion_threshold = 48;
	/* Our replies are built in memory; splice would only add copies. */
	conn->want &= ~(FUSE_CAP_SPLICE_READ | FUSE_CAP_SPLICE_WRITE | FUSE_CAP_SPLICE_MOVE);
	/* Write-through keeps write errors at write(2), as SPEC §3 asks. */
	conn->want &= ~FUSE_CAP_WRITEBACK_CACHE;
	/* The kernel clears S_ISUID/S_ISGID on writes and truncates by
	 * non-owners (and knows who has CAP_FSETID): it sends the mode change
	 * as a setattr. */
	conn->want &= ~FUSE_CAP_HANDLE_KILLPRIV;
	if (conn->capable & FUSE_CAP_PARALLEL_DIROPS)
		conn->want |= FUSE_CAP_PARALLEL_DIROPS;
}

const struct fuse_lowlevel_ops cfs_ops = {
	.init = cfs_init,
	.lookup = cfs_op_lookup,
	.forget = cfs_op_forget,
	.forget_multi = cfs_op_forget_multi,
	.getattr = cfs_op_getattr,
	.setattr = cfs_op_setattr,
	.readlink = cfs_op_readlink,
	.mkdir = cfs_op_mkdir,
	.mknod = cfs_op_mknod,
	.symlink = cfs_op_symlink,
	.link = cfs_op_link,
	.unlink = cfs_op_unlink,
	.rmdir = cfs_op_rmdir,
	.rename = cfs_op_rename,
	.open = cfs_op_open,
	.read = cfs_op_read,
	.write = cfs_op_write,
	.flush = cfs_op_flush,
	.release = cfs_op_release,
	.fsync = cfs_op_fsync,
	.fallocate = cfs_op_fallocate,
	.opendir = cfs_op_opendir,
	.readdir = cfs_op_readdir,
	.readdirplus = cfs_op_readdirplus,
	.releasedir = cfs_op_releasedir,
	.statfs = cfs_op_statfs,
	.setxattr = cfs_op_setxattr,
	.getxattr = cfs_op_getxattr,
	.listxattr = cfs_op_listxattr,
	.removexattr = cfs_op_removexattr,
	.access = cfs_op_access,
	.create = cfs_op_create,
};

/* fsname shows in mount(8) and /proc/mounts; commas would split options.
 * default_permissions where other users may reach the mount (perm.c). */
static int add_mount_opts(struct fuse_args *args, const char *store, bool kernel_perm)
{
	char *o;
	int ret;
	size_t i, j;

	o = malloc(strlen(store) * 2 + 64);
	if (!o)
		return -1;
	j = (size_t)sprintf(
		o, "-o%ssubtype=ckptfs,fsname=", kernel_perm ? "default_permissions," : "");
	for (i = 0; store[i]; i++) {
		if (store[i] == ',' || store[i] == '\\')
			o[j++] = '\\';
		o[j++] = store[i];
	}
	o[j] = '\0';
	ret = fuse_opt_add_arg(args, o);
	free(o);
	return ret;
}

/* The store directory, made when missing (one level, like mkdir); a
 * rados:// URL as it is. */
static char *store_path(const char *dir)
{
	char *abs;

	if (!strncmp(dir, "rados://", 8))
		return strdup(dir);
	if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
		fprintf(stderr,
			"ckptfs: cannot create the store directory %s: %s; create it or "
			"pick another path\n",
			dir, strerror(errno));
		return NULL;
	}
	abs = realpath(dir, NULL);
	if (!abs)
		fprintf(stderr, "ckptfs: cannot resolve the store directory %s: %s\n", dir,
			strerror(errno));
	return abs;
}

/*
 * Another host changed the shared store (the store has loaded it): drop what
 * the kernel caches of those names, so that a commit, a deletion or a new
 * run shows here at once rather than when the entries time out.
 */
static pthread_mutex_t notify_lock = PTHREAD_MUTEX_INITIALIZER;
static bool notify_on; /* the session is mounted */

static void inval_names(struct cfs *c, const char *run, const char *version)
{
	fuse_ino_t ino;

	if (!run[0]) {
		fuse_lowlevel_notify_inval_inode(c->se, FUSE_ROOT_ID, 0, 0);
		return;
	}
	ino = cfs_nodes_find(c->nodes, run);
	if (version) {
		if (ino)
			fuse_lowlevel_notify_inval_entry(c->se, ino, version, strlen(version));
		return;
	}
	fuse_lowlevel_notify_inval_entry(c->se, FUSE_ROOT_ID, run, strlen(run));
	if (!ino)
		return;
	fuse_lowlevel_notify_inval_inode(c->se, ino, 0, 0);
	fuse_lowlevel_notify_inval_entry(c->se, ino, "latest", 6);
	fuse_lowlevel_notify_inval_entry(c->se, ino, "best", 4);
}

static void store_changed(void *arg, const char *run, const char *version)
{
	pthread_mutex_lock(&notify_lock);
	if (notify_on)
		inval_names(arg, run, version);
	pthread_mutex_unlock(&notify_lock);
}

static void notify_set(bool on)
{
	pthread_mutex_lock(&notify_lock);
	notify_on = on;
	pthread_mutex_unlock(&notify_lock);
}

/* Fork; the parent waits for the child's word and exits with it. */
static int background(int *notify_fd)
{
	int pfd[2];
	pid_t pid;
	char st = 1;

	if (pipe(pfd) < 0) {
		perror("ckptfs: pipe");
		return -1;
	}
	pid = fork();
	if (pid < 0) {
		perror("ckptfs: fork");
		return -1;
	}
	if (pid > 0) {
		close(pfd[1]);
		if (read(pfd[0], &st, 1) != 1)
			st = 1;
		_exit(st);
	}
	close(pfd[0]);
	setsid();
	*notify_fd = pfd[1];
	return 0;
}

static void detach(int notify_fd)
{
	int fd = open("/dev/null", O_RDWR);
	struct stat st;
	char ok = 0;

	if (chdir("/") < 0) {
		/* not fatal: only keeps a directory busy */
	}
	/* a stderr that is a regular file (ckptd starts the daemon with its
	 * ckptd.log there) keeps the log; a terminal or a pipe goes */
	log_file = fstat(STDERR_FILENO, &st) == 0 && S_ISREG(st.st_mode);
	if (fd >= 0) {
		dup2(fd, 0);
		dup2(fd, 1);
		if (!log_file)
			dup2(fd, 2);
		if (fd > 2)
			close(fd);
	}
	if (!log_file) {
		openlog("ckptfs", LOG_PID, LOG_DAEMON);
		log_syslog = true;
	}
	if (write(notify_fd, &ok, 1) != 1) {
		/* the parent is gone; nothing to tell */
	}
	close(notify_fd);
}

static int serve(struct cfs *c, struct fuse_cmdline_opts *co)
{
	struct fuse_loop_config *lc;
	int ret;

	if (co->singlethread)
		return fuse_session_loop(c->se);
	lc = fuse_loop_cfg_create();
	if (!lc)
		return -1;
	fuse_loop_cfg_set_clone_fd(lc, co->clone_fd);
	/* libfuse leaves these at -1 when -o max_idle_threads / max_threads
	 * are not given, and complains when they are passed on as they are. */
	if (co->max_idle_threads <= 100000)
		fuse_loop_cfg_set_idle_threads(lc, co->max_idle_threads);
	if (co->max_threads && co->max_threads <= 100000)
		fuse_loop_cfg_set_max_threads(lc, co->max_threads);
	ret = fuse_session_loop_mt(c->se, lc);
	fuse_loop_cfg_destroy(lc);
	return ret;
}

int main(int argc, char **argv)
{
	struct fuse_args args = FUSE_ARGS_INIT(argc, argv);
	struct fuse_cmdline_opts co;
	struct ckpt_store_opts so;
	struct cfs c;
	struct timespec now;
	char err[512] = "";
	char *store = NULL;
	int ret, status = 1, notify_fd = -1;

	memset(&c, 0, sizeof(c));
	ret = cfs_opts_parse(&args, &c.opts, &co);
	if (ret != 0) {
		status = ret > 0 ? 0 : 2;
		goto out_args;
	}
	store = store_path(c.opts.store_dir);
	if (!store || add_mount_opts(&args, store, c.opts.kernel_perm) < 0)
		goto out_args;
	if (!co.foreground && background(&notify_fd) < 0)
		goto out_args;

	memset(&so, 0, sizeof(so));
	so.verify = c.opts.verify;
	so.inflight_bytes = c.opts.write_buffer;
	so.direct_io = c.opts.direct_io;
	so.chunk_size = c.opts.chunk_size;
	so.resident_bytes = c.opts.resident;
	so.create = true;
	/* `umount` returns before the old daemon has closed the store */
	so.lock_wait_ms = 10000;
	so.retention = c.opts.retention;
	so.changed = store_changed;
	so.changed_arg = &c;
	ckpt_store_set_log(store_line);
	ret = ckpt_store_open_err(store, &so, &c.store, err, sizeof(err));
	if (ret < 0) {
		fprintf(stderr, "ckptfs: cannot open the store in %s: %s\n", store,
			err[0] ? err : strerror(-ret));
		goto out_args;
	}
	c.nodes = cfs_nodes_new();
	if (!c.nodes)
		goto out_store;
	clock_gettime(CLOCK_REALTIME, &now);
	c.mount_ns = (int64_t)now.tv_sec * 1000000000 + now.tv_nsec;
	c.uid = getuid();
	c.gid = getgid();
	c.singlethread = co.singlethread;

	c.se = fuse_session_new(&args, &cfs_ops, sizeof(cfs_ops), &c);
	if (!c.se)
		goto out_nodes;
	if (fuse_set_signal_handlers(c.se) != 0)
		goto out_session;
	if (fuse_session_mount(c.se, c.opts.mountpoint) != 0) {
		fprintf(stderr,
			"ckptfs: cannot mount on %s (is it an existing directory, and "
			"is /dev/fuse usable?)\n",
			c.opts.mountpoint);
		goto out_signals;
	}
	if (c.opts.io_uring && co.singlethread)
		cfs_log("-o io_uring is not used with -s (its rings are threads of their own)");
	else if (c.opts.io_uring && cfs_uring_setup(&c) < 0)
		cfs_log("-o io_uring: libfuse refused the custom I/O; requests go through "
			"/dev/fuse");
	notify_set(true);
	ret = cfs_track_start(&c);
	if (ret < 0) {
		fprintf(stderr, "ckptfs: cannot start the autocommit thread: %s\n", strerror(-ret));
		goto out_unmount;
	}
	ret = cfs_fill_start(&c);
	if (ret < 0) {
		fprintf(stderr, "ckptfs: cannot start the resident tier's thread: %s\n",
			strerror(-ret));
		cfs_track_stop(&c);
		goto out_unmount;
	}
	if (notify_fd >= 0) {
		detach(notify_fd);
		notify_fd = -1;
	}
	cfs_log("mounted %s on %s", store, c.opts.mountpoint);
	ret = serve(&c, &co);
	/* A signal ends the loop with its number: a clean unmount too. */
	status = ret < 0 ? 1 : 0;
	cfs_track_stop(&c);
	cfs_log("unmounting %s", c.opts.mountpoint);
out_unmount:
	notify_set(false);
	fuse_session_unmount(c.se);
	cfs_uring_stop();
	/* after the unmount: a stat of the filler's through the mount, which
	 * no loop thread answers now, has failed (fill.c) */
	cfs_fill_stop(&c);
out_signals:
	fuse_remove_signal_handlers(c.se);
out_session:
	fuse_session_destroy(c.se);
out_nodes:
	cfs_files_close_all();
	cfs_nodes_free(c.nodes);
out_store:
	ckpt_store_close(c.store);
out_args:
	if (notify_fd >= 0) {
		char st = (char)(status ? status : 1);

		if (write(notify_fd, &st, 1) != 1) {
			/* the parent is gone */
		}
		close(notify_fd);
	}
	free(store);
	cfs_opts_free(&c.opts);
	fuse_opt_free_args(&args);
	if (log_syslog)
		closelog();
	return status;
}
