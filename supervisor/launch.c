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
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

/*
 * resources.nice, in the child between fork and exec (async-signal-safe
 * calls only): the process's nice, which the shim's trainer inherits, and
 * the nice of the autogroup of the session setsid() has just made. On a
 * kernel with autogroup (sched_autogroup_enabled, the default of most
 * distributions) CPU time is shared between sessions first: a trainer's own
 * nice only ranks it inside its session, where it is alone, and 8 trainers
 * spinning the CPUs got 8/9 of them against ckptd's whole session whatever
 * nice they had (docs/performance.md, the soak). Without autogroup the file
 * does not exist and the process's nice is all there is. The kernel lets a
 * user (not root) change an autogroup's nice once per 100 ms across the
 * host: EAGAIN is retried for up to 2 s.
 */
static void child_nice(int nice)
{
	char num[4] = {0};
	int fd;

	if (nice <= 0)
		return;
	setpriority(PRIO_PROCESS, 0, nice);
	num[0] = (char)(nice >= 10 ? '0' + nice / 10 : '0' + nice);
	num[1] = (char)(nice >= 10 ? '0' + nice % 10 : '\n');
	num[2] = (char)(nice >= 10 ? '\n' : '\0');
	fd = open("/proc/self/autogroup", O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return;
	for (int i = 0; i < 100; i++) {
		struct timespec ts = {0, 20 * 1000 * 1000};

		if (write(fd, num, strlen(num)) >= 0 || errno != EAGAIN)
			break;
		nanosleep(&ts, NULL);
	}
	close(fd);
}

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

int notify_open(struct op *op, struct rank *r)
{
	char name[CKPTD_PATH_MAX];

	if (r->notify_fd >= 0)
		return 0;
	rank_notify_name(op, r, name, sizeof(name));
	r->notify_fd = ckpt_notify_listen(name);
	if (r->notify_fd < 0) {
		int ret = r->notify_fd;

		ckptd_log("operation %s: cannot bind the notify socket %s: %s", op->id, name,
			  strerror(-ret));
		r->notify_fd = -1;
		return ret;
	}
	if (name[0] == '/')
		chmod(name, 0666); /* the trainer may run as another user */
	return 0;
}

/* The operation is over (a resume opens it again): no more datagrams. */
void notify_close(struct op *op)
{
	char name[CKPTD_PATH_MAX];

	for (int i = 0; i < op->nranks; i++) {
		struct rank *r = &op->r[i];

		if (r->notify_fd < 0)
			continue;
		close(r->notify_fd);
		r->notify_fd = -1;
		rank_notify_name(op, r, name, sizeof(name));
		if (name[0] == '/' && unlink(name) < 0 && errno != ENOENT)
			ckptd_log("operation %s: cannot remove the notify socket %s: %s", op->id,
				  name, strerror(errno));
	}
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
	if (!op_spec_json(op) ||
	    write_file_atomic(path, op->spec_json, strlen(op->spec_json), 0644) < 0)
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

/*
 * The torchrun environment of a gang's rank (torch.distributed.run 1.13 as
 * Debian ships it; tests/supervisor/test_ranks.py diffs the two). What is
 * deliberately not the same, and why, is in docs/ranks.md:
 * TORCHELASTIC_USE_AGENT_STORE is not set (there is no agent store: rank 0
 * serves the c10d store on MASTER_PORT, as without an agent), MASTER_PORT is
 * a port ckptd found free, TORCHELASTIC_RUN_ID is the operation (or the
 * rdzv job), TORCHELASTIC_ERROR_FILE is in the rank's attempt dir.
 */
static int torchrun_env(struct op *op, struct rank *r, struct envb *e)
{
	const int64_t world = ckpt_jobspec_world(&op->spec), local = op->nranks;
	const int64_t nodes = op->spec.resources.nodes > 0 ? op->spec.resources.nodes : 1;
	char buf[CKPTD_PATH_MAX + 64], job[72] = "", host[256];
	int ret = 0, port;
	const struct {
		const char *k;
		long long v;
	} nums[] = {
		{"RANK", r->rank},
		{"LOCAL_RANK", r->local},
		{"WORLD_SIZE", world},
		{"LOCAL_WORLD_SIZE", local},
		{"GROUP_RANK", op->spec.resources.node_rank},
		{"GROUP_WORLD_SIZE", nodes},
		{"ROLE_RANK", r->rank},
		{"ROLE_WORLD_SIZE", world},
		{"MASTER_PORT", op->master_port},
		{"TORCHELASTIC_RESTART_COUNT", op->attempt - op->round_start},
		{"TORCHELASTIC_MAX_RESTARTS", op->spec.recovery.max_attempts - 1},
	};

	for (size_t i = 0; i < sizeof(nums) / sizeof(nums[0]) && !ret; i++) {
		snprintf(buf, sizeof(buf), "%lld", nums[i].v);
		ret = env_add(e, nums[i].k, buf);
	}
	ret = ret ?: env_add(e, "ROLE_NAME", "default");
	ret = ret ?: env_add(e, "MASTER_ADDR", op->master_addr[0] ? op->master_addr : "127.0.0.1");
	if (op->spec.resources.rdzv)
		ckpt_rdzv_parse(op->spec.resources.rdzv, host, sizeof(host), &port, job,
				sizeof(job));
	ret = ret ?: env_add(e, "TORCHELASTIC_RUN_ID", job[0] ? job : op->id);
	rank_dir(op, r, buf, CKPTD_PATH_MAX);
	strcat(buf, "/error.json");
	ret = ret ?: env_add(e, "TORCHELASTIC_ERROR_FILE", buf);
	/* as torchrun: one OpenMP thread per rank unless the user says */
	if (!getenv("OMP_NUM_THREADS") && local > 1)
		ret = ret ?: env_add(e, "OMP_NUM_THREADS", "1");
	if (!getenv("NCCL_ASYNC_ERROR_HANDLING"))
		ret = ret ?: env_add(e, "NCCL_ASYNC_ERROR_HANDLING", "1");
	return ret;
}

/* Variables ckptd sets itself: a value in ckptd's own environment would be
 * a second copy (a ckptd started under torchrun, or by a job's hook). */
static bool ours(const char *kv, bool gang)
{
	static const char *const torchrun[] = {
		"RANK=",       "LOCAL_RANK=",	    "WORLD_SIZE=",  "LOCAL_WORLD_SIZE=",
		"GROUP_RANK=", "GROUP_WORLD_SIZE=", "ROLE_RANK=",   "ROLE_WORLD_SIZE=",
		"ROLE_NAME=",  "MASTER_ADDR=",	    "MASTER_PORT=", "TORCHELASTIC_",
	};

	if (!strncmp(kv, "CKPT_", 5))
		return true;
	for (size_t i = 0; gang && i < sizeof(torchrun) / sizeof(torchrun[0]); i++)
		if (!strncmp(kv, torchrun[i], strlen(torchrun[i])))
			return true;
	return false;
}

static int build_env(struct op *op, struct rank *r, struct envb *e, char *err, size_t errlen)
{
	char buf[CKPTD_PATH_MAX + 64], set[GPU_SET_LEN];
	int ret = 0;

	for (char **p = environ; *p && !ret; p++) {
		char *eq = strchr(*p, '=');

		if (ours(*p, op->gang) || !eq || gpu_var(*p))
			continue;
		*eq = '\0';
		ret = env_add(e, *p, eq + 1);
		*eq = '=';
	}
	ret = ret ?: env_add(e, "CKPT_RUN_DIR", op->run_dir);
	/* The operation's GPUs, numbered as nvidia-smi numbers them; empty for
	 * a job of 0 GPUs, which CUDA then runs without any (docs/supervisor.md). */
	gpu_set_format(op->gpu_ids, op->gpu_n, set, sizeof(set));
	if (op->gang) {
		/* a gang's rank: its share of the set, by LOCAL_RANK (gpu_i.h) */
		int first = 0, count = 0;

		if (gpu_share(op->gpu_n, r->local, op->nranks, &first, &count) == 0)
			gpu_set_format(op->gpu_ids + first, count, set, sizeof(set));
	}
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
	rank_notify_name(op, r, buf, sizeof(buf));
	ret = ret ?: env_add(e, "CKPT_NOTIFY_SOCKET", buf);
	ret = ret ?: env_add(e, "CKPT_OPERATION_ID", op->id);
	snprintf(buf, sizeof(buf), "%d", op->attempt);
	ret = ret ?: env_add(e, "CKPT_ATTEMPT", buf);
	snprintf(buf, sizeof(buf), "%s/ops/%s/job.yaml", g.state_dir, op->id);
	ret = ret ?: env_add(e, "CKPT_JOB", buf);
	if (op->gang && !ret)
		ret = torchrun_env(op, r, e);
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

/* Fork rank r's shim, waiting for its go byte on *go_w. Returns 0 or
 * -errno with op->reason set. */
static int start_shim(struct op *op, struct rank *r, const char *adir, int *go_w)
{
	char logf[CKPTD_PATH_MAX], att[16], err[512] = "";
	struct envb env = {0};
	const char **args = NULL;
	int go[2] = {-1, -1}, ret;
	size_t argc = 0;
	pid_t pid;

	rank_log(op, r, logf, sizeof(logf));
	snprintf(att, sizeof(att), "%d", op->attempt);
	ret = notify_open(op, r);
	if (ret < 0) {
		snprintf(op->reason, sizeof(op->reason), "cannot bind the notify socket: %s",
			 strerror(-ret));
		return ret;
	}
	ret = build_env(op, r, &env, err, sizeof(err));
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
		child_nice((int)op->spec.resources.nice);
		if (dup2(go[0], 3) < 0)
			_exit(126);
		syscall(SYS_close_range, 4, ~0u, 0);
		execve(g.shim_bin, (char *const *)args, env.v);
		_exit(126);
	}
	r->shim_pid = pid;
	r->shim_start = proc_start_time(pid);
	r->trainer_pid = 0;
	r->trainer_pgid = 0;
	*go_w = go[1];
	go[1] = -1;
out:
	if (go[0] >= 0)
		close(go[0]);
	if (go[1] >= 0)
		close(go[1]);
	free(args);
	env_free(&env);
	return ret;
}

/*
 * Start attempt op->attempt: every rank of this host. The caller has saved
 * the bumped attempt with stage LAUNCHING; on success the op is RUNNING with
 * the shims' pids stored. Each rank's shim file is written durably and the db
 * row saved before any shim gets its go byte, so a ckptd that dies in
 * between leaves either nothing started (every shim sees EOF) or ranks it
 * finds again. Returns 0 or -errno with op->reason set.
 */
int launch_attempt(struct op *op)
{
	char adir[CKPTD_PATH_MAX], shimf[CKPTD_PATH_MAX + 16], line[64];
	int *go = calloc((size_t)op->nranks, sizeof(int)), ret = 0, port;

	if (!go)
		return -ENOMEM;
	for (int i = 0; i < op->nranks; i++)
		go[i] = -1;
	snprintf(adir, sizeof(adir), "%s/ops/%s/attempt-%d", g.state_dir, op->id, op->attempt);
	rm_rf(adir); /* a half-made attempt dir from a ckptd that died before the go */
	if ((ret = mkdir_p(adir, 0700)) < 0 || (ret = mkdir_p(op->run_dir, 0755)) < 0) {
		snprintf(op->reason, sizeof(op->reason), "cannot create %s: %s",
			 ret ? adir : op->run_dir, strerror(-ret));
		goto out;
	}
	set_run_policy(op);
	build_resolved_spec(op);
	if (op->gang && !op->rz) { /* across hosts: node 0's, from the plan (rdzv.c) */
		port = pick_free_port();
		if (port < 0) {
			ret = port;
			snprintf(op->reason, sizeof(op->reason),
				 "cannot find a free port for MASTER_PORT: %s", strerror(-ret));
			goto out;
		}
		op->master_port = port;
	}
	for (int i = 0; i < op->nranks && !ret; i++) {
		struct rank *r = &op->r[i];

		rank_dir(op, r, adir, sizeof(adir));
		if ((ret = mkdir_p(adir, 0700)) < 0) {
			snprintf(op->reason, sizeof(op->reason), "cannot create %s: %s", adir,
				 strerror(-ret));
			break;
		}
		ret = start_shim(op, r, adir, &go[i]);
		if (ret)
			break;
		snprintf(shimf, sizeof(shimf), "%s/shim", adir);
		snprintf(line, sizeof(line), "%d %llu\n", (int)r->shim_pid,
			 (unsigned long long)r->shim_start);
		write_file_atomic(shimf, line, strlen(line), 0644);
	}
	if (ret) {
		/* no go byte: every shim started exits, and nothing runs */
		for (int i = 0; i < op->nranks; i++)
			if (go[i] >= 0)
				kill(op->r[i].shim_pid, SIGKILL);
		goto out;
	}
	op->status = OP_RUNNING;
	op->stage = STAGE_NONE;
	op->killed = false;
	op->updated_at = now_s();
	op->exit_code = -1;
	op->exit_signal = -1;
	op->reason[0] = '\0';
	for (int i = 0; i < op->nranks; i++) {
		rank_reset(op, &op->r[i]);
		op->r[i].exit_code = op->r[i].exit_signal = -1;
	}
	ret = db_save_op(op);
	if (ret) {
		for (int i = 0; i < op->nranks; i++)
			kill(op->r[i].shim_pid, SIGKILL);
		snprintf(op->reason, sizeof(op->reason), "cannot record the launch in ckptd.db");
		goto out;
	}
	for (int i = 0; i < op->nranks; i++) {
		struct rank *r = &op->r[i];

		if (write(go[i], "g", 1) != 1)
			ret = -errno;
		r->pidfd = (int)syscall(SYS_pidfd_open, r->shim_pid, 0);
	}
out:
	for (int i = 0; i < op->nranks; i++)
		if (go[i] >= 0)
			close(go[i]);
	free(go);
	return ret;
}
