// SPDX-License-Identifier: MIT
/*
 * launch.c - start one trainer attempt: the environment of SPEC §4 (secrets
 * resolved only here, into the child's environment), the resolved job spec
 * file, the per-operation notify socket, and the shim (shim.c) that runs the
 * argv without a shell in its own process group. The handshake with the
 * shim (record its pid durably, then let it go) is what makes a ckptd crash
 * at any point leave either no trainer or one that ckptd will find.
 */
#include "ckptd_i.h"

#include "ckptfs/notify.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/xattr.h>
#include <unistd.h>

extern char **environ;

struct envb {
	char **v;
	size_t n, cap;
};

static int env_add(struct envb *e, const char *k, const char *val)
{
	char *s;

	if (e->n + 2 > e->cap) {
		size_t cap = e->cap ? e->cap * 2 : 64;
		char **nv = realloc(e->v, cap * sizeof(*nv));

		if (!nv)
			return -ENOMEM;
		e->v = nv;
		e->cap = cap;
	}
	if (asprintf(&s, "%s=%s", k, val) < 0)
		return -ENOMEM;
	e->v[e->n++] = s;
	e->v[e->n] = NULL;
	return 0;
}

static void env_free(struct envb *e)
{
	for (size_t i = 0; i < e->n; i++) {
		explicit_bzero(e->v[i], strlen(e->v[i])); /* secrets live here */
		free(e->v[i]);
	}
	free(e->v);
}

static void notify_name(const struct op *op, char *buf, size_t len)
{
	struct sockaddr_un sa;

	snprintf(buf, len, "%s/notify/%s", g.state_dir, op->id);
	if (strlen(buf) >= sizeof(sa.sun_path)) {
		/* too long for sun_path: the abstract namespace, unique per state
		 * dir through its inode */
		struct stat st;

		stat(g.state_dir, &st);
		snprintf(buf, len, "@ckptd-%llx-%s", (unsigned long long)st.st_ino, op->id);
	}
}

int notify_open(struct op *op)
{
	char name[CKPTD_PATH_MAX];

	if (op->notify_fd >= 0)
		return 0;
	notify_name(op, name, sizeof(name));
	op->notify_fd = ckpt_notify_listen(name);
	if (op->notify_fd < 0) {
		ckptd_log("operation %s: cannot bind the notify socket %s: %s", op->id, name,
			  strerror(-op->notify_fd));
		return op->notify_fd;
	}
	if (name[0] == '/')
		chmod(name, 0666); /* the trainer may run as another user */
	return 0;
}

/* The operation is over (a resume opens it again): no more datagrams. */
void notify_close(struct op *op)
{
	char name[CKPTD_PATH_MAX];

	if (op->notify_fd < 0)
		return;
	close(op->notify_fd);
	op->notify_fd = -1;
	notify_name(op, name, sizeof(name));
	if (name[0] == '/' && unlink(name) < 0 && errno != ENOENT)
		ckptd_log("operation %s: cannot remove the notify socket %s: %s", op->id, name,
			  strerror(errno));
}

/* The job's retention and metric as the run dir's xattrs (SPEC §2), so
 * ckptfs applies them and keeps `best` by the job's metric. A plain dir has
 * no xattrs: nothing to do. */
static void set_run_policy(const struct op *op)
{
	const struct {
		const char *name;
		long long v;
	} nums[] = {{"user.ckpt.keep_last", op->spec.checkpoint.keep_last},
		    {"user.ckpt.keep_best", op->spec.checkpoint.keep_best},
		    {"user.ckpt.max_age_days", op->spec.checkpoint.max_age_days}};
	char buf[32];

	if (op->spec.checkpoint.metric &&
	    setxattr(op->run_dir, "user.ckpt.metric", op->spec.checkpoint.metric,
		     strlen(op->spec.checkpoint.metric), 0) < 0) {
		if (errno == ENOTSUP)
			return;
		ckptd_log("operation %s: cannot set user.ckpt.metric on %s: %s", op->id,
			  op->run_dir, strerror(errno));
	}
	for (size_t i = 0; i < sizeof(nums) / sizeof(nums[0]); i++) {
		snprintf(buf, sizeof(buf), "%lld", nums[i].v);
		if (setxattr(op->run_dir, nums[i].name, buf, strlen(buf), 0) < 0 &&
		    errno != ENOTSUP)
			ckptd_log("operation %s: cannot set %s on %s: %s", op->id, nums[i].name,
				  op->run_dir, strerror(errno));
	}
}

void build_resolved_spec(struct op *op)
{
	char path[CKPTD_PATH_MAX + 32];

	snprintf(path, sizeof(path), "%s/ops/%s", g.state_dir, op->id);
	mkdir_p(path, 0700);
	strcat(path, "/job.yaml");
	if (write_file_atomic(path, op->spec_json, strlen(op->spec_json), 0644) < 0)
		ckptd_log("operation %s: cannot write %s", op->id, path);
}

/* ckptd's own values of these never reach a trainer: it gets its set. */
static bool gpu_var(const char *kv)
{
	static const char *const vars[] = {
		"CUDA_VISIBLE_DEVICES=", "NVIDIA_VISIBLE_DEVICES=", "CUDA_DEVICE_ORDER="};

	for (size_t i = 0; i < sizeof(vars) / sizeof(vars[0]); i++)
		if (!strncmp(kv, vars[i], strlen(vars[i])))
			return true;
	return false;
}

static int build_env(struct op *op, struct envb *e, char *err, size_t errlen)
{
	char buf[CKPTD_PATH_MAX + 64], set[GPU_SET_LEN];
	int ret = 0;

	for (char **p = environ; *p && !ret; p++) {
		char *eq = strchr(*p, '=');

		if (!strncmp(*p, "CKPT_", 5) || !eq || gpu_var(*p))
			continue;
		*eq = '\0';
		ret = env_add(e, *p, eq + 1);
		*eq = '=';
	}
	ret = ret ?: env_add(e, "CKPT_RUN_DIR", op->run_dir);
	/* The operation's GPUs, numbered as nvidia-smi numbers them; empty for
	 * a job of 0 GPUs, which CUDA then runs without any (docs/supervisor.md). */
	gpu_set_format(op->gpu_ids, op->gpu_n, set, sizeof(set));
	ret = ret ?: env_add(e, "CUDA_VISIBLE_DEVICES", set);
	ret = ret ?: env_add(e, "NVIDIA_VISIBLE_DEVICES", set);
	ret = ret ?: env_add(e, "CUDA_DEVICE_ORDER", "PCI_BUS_ID");
	if (op->resume_from[0]) {
		ret = ret ?: env_add(e, "CKPT_RESUME_FROM", op->resume_from);
		ret = ret
			      ?: env_add(e, "CKPT_RESTORE_OPTIMIZER",
					 op->spec.recovery.restore_optimizer ? "1" : "0");
		snprintf(buf, sizeof(buf), "%lld", (long long)op->skip_batches);
		ret = ret ?: env_add(e, "CKPT_SKIP_BATCHES", buf);
	}
	notify_name(op, buf, sizeof(buf));
	ret = ret ?: env_add(e, "CKPT_NOTIFY_SOCKET", buf);
	ret = ret ?: env_add(e, "CKPT_OPERATION_ID", op->id);
	snprintf(buf, sizeof(buf), "%d", op->attempt);
	ret = ret ?: env_add(e, "CKPT_ATTEMPT", buf);
	snprintf(buf, sizeof(buf), "%s/ops/%s/job.yaml", g.state_dir, op->id);
	ret = ret ?: env_add(e, "CKPT_JOB", buf);
	for (size_t i = 0; i < op->spec.nsecrets && !ret; i++) {
		char *v = ckpt_secret_resolve(&op->spec.secrets[i], err, errlen);

		if (!v)
			return -EINVAL;
		ret = env_add(e, op->spec.secrets[i].name, v);
		explicit_bzero(v, strlen(v));
		free(v);
	}
	if (ret)
		snprintf(err, errlen, "out of memory building the environment");
	return ret;
}

/*
 * Start attempt op->attempt. The caller has saved the bumped attempt with
 * stage LAUNCHING; on success the op is RUNNING with the shim's pid stored.
 * Returns 0 or -errno with op->reason set.
 */
int launch_attempt(struct op *op)
{
	char adir[CKPTD_PATH_MAX], logf[CKPTD_PATH_MAX], att[16], shimf[CKPTD_PATH_MAX + 16];
	char line[64], err[512] = "";
	struct envb env = {0};
	const char **args = NULL;
	int go[2] = {-1, -1}, ret;
	size_t argc = 0;
	pid_t pid;

	snprintf(adir, sizeof(adir), "%s/ops/%s/attempt-%d", g.state_dir, op->id, op->attempt);
	snprintf(logf, sizeof(logf), "%s/logs/%s.log", g.state_dir, op->id);
	snprintf(att, sizeof(att), "%d", op->attempt);
	rm_rf(adir); /* a half-made attempt dir from a ckptd that died before the go */
	if ((ret = mkdir_p(adir, 0700)) < 0 || (ret = mkdir_p(op->run_dir, 0755)) < 0) {
		snprintf(op->reason, sizeof(op->reason), "cannot create %s: %s", ret ? adir : "",
			 strerror(-ret));
		return ret;
	}
	set_run_policy(op);
	build_resolved_spec(op);
	ret = notify_open(op);
	if (ret < 0) {
		snprintf(op->reason, sizeof(op->reason), "cannot bind the notify socket: %s",
			 strerror(-ret));
		return ret;
	}
	ret = build_env(op, &env, err, sizeof(err));
	if (ret) {
		snprintf(op->reason, sizeof(op->reason), "%s", err);
		goto out;
	}
	for (char **a = op->spec.command; *a; a++)
		argc++;
	args = calloc(argc + 6, sizeof(*args));
	if (!args) {
		ret = -ENOMEM;
		goto out;
	}
	args[0] = "ckptd-shim";
	args[1] = adir;
	args[2] = logf;
	args[3] = att;
	args[4] = "--";
	for (size_t i = 0; i < argc; i++)
		args[5 + i] = op->spec.command[i];
	if (pipe2(go, O_CLOEXEC) < 0) {
		ret = -errno;
		goto out;
	}
	pid = fork();
	if (pid < 0) {
		ret = -errno;
		snprintf(op->reason, sizeof(op->reason), "fork failed: %s", strerror(errno));
		goto out;
	}
	if (pid == 0) {
		sigset_t empty;

		sigemptyset(&empty);
		sigprocmask(SIG_SETMASK, &empty, NULL);
		setsid();
		child_limits();
		if (dup2(go[0], 3) < 0)
			_exit(126);
		syscall(SYS_close_range, 4, ~0u, 0);
		execve(g.shim_bin, (char *const *)args, env.v);
		_exit(126);
	}
	close(go[0]);
	go[0] = -1;
	op->shim_pid = pid;
	op->shim_start = proc_start_time(pid);
	op->trainer_pid = 0;
	op->trainer_pgid = 0;
	snprintf(shimf, sizeof(shimf), "%s/shim", adir);
	snprintf(line, sizeof(line), "%d %llu\n", (int)pid, (unsigned long long)op->shim_start);
	write_file_atomic(shimf, line, strlen(line), 0644);
	op->status = OP_RUNNING;
	op->stage = STAGE_NONE;
	op->killed = false;
	op->saving = false;
	op->last_report = now_s();
	op->updated_at = op->last_report;
	op->exit_code = -1;
	op->exit_signal = -1;
	op->reason[0] = '\0';
	ret = db_save_op(op);
	if (ret) {
		/* no go byte: the shim exits and nothing runs */
		kill(pid, SIGKILL);
		snprintf(op->reason, sizeof(op->reason), "cannot record the launch in ckptd.db");
		goto out;
	}
	if (write(go[1], "g", 1) != 1)
		ret = -errno;
	op->pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
out:
	if (go[0] >= 0)
		close(go[0]);
	if (go[1] >= 0)
		close(go[1]);
	free(args);
	env_free(&env);
	return ret;
}
