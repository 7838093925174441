// SPDX-License-Identifier: MIT
/*
 * ops.c - operations and their state machine (SPEC §5):
 *
 *   PENDING -> RUNNING -> COMPLETED
 *                 |  ^
 *                 v  |            (detected -> checkpoint_selected -> client_created)
 *              RECOVERING -> FAILED (exhausted, exit 78, no checkpoint)
 *   any live state -> CANCELLED;  CANCELLED/FAILED -> (resume) -> RUNNING
 *
 * Detection (exit, hang, NaN/Inf, loss spike, CORRUPTED=1, a checkpoint that
 * fails verification) leads to a recovery: stop the process group, pick a
 * good checkpoint, back off, relaunch. Every state change is saved with its
 * event in one transaction.
 */
#include "ckptd_i.h"

#include "ckptfs/cron.h"
#include "ckptfs/notify.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

enum det_kind { DET_EXIT, DET_HANG, DET_NAN, DET_SPIKE, DET_CORRUPTED, DET_VERIFY };

static void recover_after_stop(struct op *op);
static void stopped(struct op *op);

/* Sets one of an operation's heap strings to a copy of src; on ENOMEM it
 * keeps the old value. */
int op_set_str(char **dst, const char *src)
{
	char *n;

	if (*dst && !strcmp(*dst, src))
		return 0;
	n = strdup(src);
	if (!n)
		return -ENOMEM;
	free(*dst);
	*dst = n;
	return 0;
}

struct op *op_new(void)
{
	struct op *op = calloc(1, sizeof(*op));

	if (!op)
		return NULL;
	op->vcache = versions_cache_new();
	if (!op->vcache || op_set_str(&op->run_dir, "") || op_set_str(&op->checkpoint, "") ||
	    op_set_str(&op->resume_from, "") || op_set_str(&op->pinned, "")) {
		op_free(op);
		return NULL;
	}
	op->exit_code = -1;
	op->exit_signal = -1;
	op->bad_step = -1;
	return op;
}

void op_free(struct op *op)
{
	if (!op)
		return;
	ranks_free(op);
	rdzv_free(op);
	ckpt_jobspec_free(&op->spec);
	free(op->spec_json);
	free(op->gpu_ids);
	metrics_free(op);
	free(op->run_dir);
	free(op->checkpoint);
	free(op->resume_from);
	free(op->pinned);
	versions_cache_free(op->vcache);
	free(op);
}

void op_link(struct op *op)
{
	struct op **p = &g.ops;

	while (*p)
		p = &(*p)->next;
	*p = op;
}

struct op *op_find(const char *id)
{
	for (struct op *op = g.ops; op; op = op->next)
		if (!strcmp(op->id, id))
			return op;
	return NULL;
}

/* The resolved spec as stored: kept in memory while the operation is live,
 * read from ckptd.db for a finished one (a history of finished operations
 * held 1.3 KB of it each, for GET of one and a resume). NULL when the
 * database has none. */
const char *op_spec_json(struct op *op)
{
	if (!op->spec_json)
		op->spec_json = db_op_spec(op->id);
	return op->spec_json;
}

/* A finished operation's spec text goes (op->spec keeps what it says). */
void op_spec_drop(struct op *op)
{
	if (op_live(op))
		return;
	free(op->spec_json);
	op->spec_json = NULL;
}

int op_load_spec(struct op *op, char *err, size_t errlen)
{
	int ret;

	ckpt_jobspec_free(&op->spec);
	ret = ckpt_jobspec_init(&op->spec);
	if (ret)
		return ret;
	ret = ckpt_jobspec_apply_json(&op->spec, op->spec_json, strlen(op->spec_json), err, errlen);
	if (!ret)
		ret = ckpt_jobspec_validate(&op->spec, err, errlen);
	op->ring_len = op->spec.recovery.loss_spike.window;
	if ((ranks_setup(op) < 0 || (!ret && rdzv_open(op) < 0)) && !ret) {
		snprintf(err, errlen, "out of memory");
		ret = -ENOMEM;
	}
	return ret;
}

/* Save the op and, in the same transaction, one event. */
static void transition(struct op *op, const char *event, const char *reason, const char *cp,
		       int64_t step, int64_t delay_ms, pid_t pid)
{
	bool tx = db_begin() == 0;

	op->updated_at = now_s();
	db_save_op(op);
	if (event)
		event_emit(op, event, reason, cp, step, delay_ms, pid);
	if (tx && db_commit() < 0)
		db_rollback();
}

static int count_slots(void)
{
	int n = 0;

	for (struct op *o = g.ops; o; o = o->next)
		n += o->slot;
	return n;
}

/* SIGTERM/SIGKILL to every rank's process group that is still running. */
static void stop_group(struct op *op, int sig)
{
	ranks_signal(op, sig);
}

static bool shim_alive(const struct rank *r)
{
	return r->shim_pid > 0 && r->shim_start && proc_start_time(r->shim_pid) == r->shim_start;
}

/* Run a hook (argv, no shell) in the background; its end is collected by
 * hooks_reap() and its failure logged and swallowed (seed: callbacks must
 * not cascade). */
void run_hook(struct op *op, char **argv, const char *what, const char *old_pid,
	      const char *new_pid)
{
	char logf[CKPTD_PATH_MAX], att[16];
	struct hook *h;
	pid_t pid;

	if (!argv || !argv[0])
		return;
	snprintf(logf, sizeof(logf), "%s/logs/%s.log", g.state_dir, op->id);
	snprintf(att, sizeof(att), "%d", op->attempt);
	pid = fork();
	if (pid < 0) {
		ckptd_log("operation %s: cannot fork the %s hook: %s; ignored", op->id, what,
			  strerror(errno));
		return;
	}
	if (pid == 0) {
		int fd = open(logf, O_WRONLY | O_CREAT | O_APPEND, 0600);
		sigset_t empty;

		sigemptyset(&empty);
		sigprocmask(SIG_SETMASK, &empty, NULL);
		setsid();
		child_limits();
		if (fd >= 0) {
			dup2(fd, 1);
			dup2(fd, 2);
		}
		fd = open("/dev/null", O_RDONLY);
		if (fd >= 0)
			dup2(fd, 0);
		syscall(SYS_close_range, 3, ~0u, 0);
		setenv("CKPT_HOOK", what, 1);
		setenv("CKPT_OPERATION_ID", op->id, 1);
		setenv("CKPT_ATTEMPT", att, 1);
		setenv("CKPT_REASON", op->reason, 1);
		setenv("CKPT_STATUS", status_name(op->status), 1);
		setenv("CKPT_RESUME_FROM", op->resume_from, 1);
		setenv("CKPT_OLD_PID", old_pid ? old_pid : "", 1);
		setenv("CKPT_NEW_PID", new_pid ? new_pid : "", 1);
		execvp(argv[0], argv);
		fprintf(stderr, "ckptd: cannot run the %s hook '%s': %s\n", what, argv[0],
			strerror(errno));
		_exit(127);
	}
	h = calloc(1, sizeof(*h));
	if (!h)
		return;
	h->pid = pid;
	h->deadline = now_s() + (double)op->spec.recovery.hook_timeout_s;
	snprintf(h->what, sizeof(h->what), "%s", what);
	snprintf(h->op, sizeof(h->op), "%s", op->id);
	h->next = g.hooks;
	g.hooks = h;
}

void hooks_reap(pid_t pid, int status)
{
	for (struct hook **p = &g.hooks; *p; p = &(*p)->next) {
		struct hook *h = *p;

		if (h->pid != pid)
			continue;
		if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
			ckptd_log("operation %s: the %s hook %s %d; ignored", h->op, h->what,
				  WIFEXITED(status) ? "exited with status" : "was killed by signal",
				  WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
		else
			ckptd_log("operation %s: the %s hook ran", h->op, h->what);
		*p = h->next;
		free(h);
		return;
	}
}

static void hooks_tick(double now)
{
	for (struct hook *h = g.hooks; h; h = h->next)
		if (h->deadline && now >= h->deadline) {
			ckptd_log("operation %s: the %s hook ran past its timeout; killed", h->op,
				  h->what);
			kill(-h->pid, SIGKILL);
			h->deadline = 0;
		}
}

static void finish(struct op *op, enum op_status st, const char *event, const char *reason)
{
	if (op->pinned[0]) {
		version_pin(op->pinned, false);
		op_set_str(&op->pinned, "");
	}
	op_refresh_checkpoint(op);
	op->status = st;
	op->stage = STAGE_NONE;
	op->slot = false;
	gpus_release(op); /* the one place an operation gives its GPUs back */
	op->finished_at = now_s();
	for (int i = 0; i < op->nranks; i++)
		op->r[i].trainer_pid = op->r[i].trainer_pgid = 0;
	if (reason && reason != op->reason)
		snprintf(op->reason, sizeof(op->reason), "%s", reason);
	if (st == OP_COMPLETED || st == OP_CANCELLED)
		op->cancel_requested = false;
	notify_close(op);
	rdzv_end(op);
	db_metrics_flush(op);
	/* its step buffer and rates go with its trainer (a resume starts them
	 * afresh): a long history of finished operations holds none */
	if (metrics_flush(op) == 0)
		metrics_free(op);
	ranks_end(op);
	versions_cache_clear(op->vcache);
	transition(op, event, reason, op->checkpoint, op->have_step ? op->step : -1, -1, 0);
	op_spec_drop(op);
	if (st == OP_FAILED)
		run_hook(op, op->spec.recovery.on_failure, "on_failure", NULL, NULL);
}

static void fail_op(struct op *op, const char *reason)
{
	finish(op, OP_FAILED, "failed", reason);
}

void op_fail(struct op *op, const char *reason)
{
	fail_op(op, reason);
}

/* Something is wrong with rank `r` of the running attempt (of a gang: of
 * any rank): say so, stop every rank; the recovery begins once all have
 * ended. `final`: no retry after the stop (a rank exited 78). */
static void detect(struct op *op, struct rank *r, enum det_kind kind, const char *why,
		   int64_t bad_step, bool final)
{
	char reason[sizeof(op->reason)];

	if (r)
		g.n_detect[kind]++;
	if (op->gang && r)
		snprintf(reason, sizeof(reason), "rank %d on %s: %s", r->rank, g.host, why);
	else
		snprintf(reason, sizeof(reason), "%s", why);
	op->status = OP_RECOVERING;
	op->stage = final ? STAGE_STOPPING_FINAL : STAGE_STOPPING;
	snprintf(op->reason, sizeof(op->reason), "%s", reason);
	op->bad_step = bad_step;
	op->bad_since = kind == DET_EXIT || kind == DET_HANG ? 0 : now_s();
	op->skip_batches = kind == DET_SPIKE ? op->spec.recovery.loss_spike.skip_batches : 0;
	/* a gang across hosts: every host restarts (rdzv.c); r is NULL when
	 * the fault was another host's */
	if (r && !final)
		rdzv_fault(op, reason, op->bad_step, op->bad_since);
	if (!ranks_all_ended(op)) {
		/* SPEC §5: SIGTERM, grace_s, then SIGKILL (ops_tick), to every
		 * rank. A trainer finishes an in-flight save of a good step; one
		 * that knows its state is poisoned should exit without a
		 * cancellation save (any such save is skipped at selection
		 * anyway). */
		stop_group(op, SIGTERM);
		op->killed = true;
		op->stop_deadline = now_s() + (double)op->spec.recovery.grace_s;
	}
	op->updated_at = now_s();
	if (db_begin() == 0) {
		db_save_op(op);
		event_emit_rank(op, op->gang ? r : NULL, "detected", reason, NULL,
				r && r->have_step ? r->step : (op->have_step ? op->step : -1), -1,
				r ? r->trainer_pid : 0);
		if (db_commit() < 0)
			db_rollback();
	}
	if (ranks_all_ended(op))
		stopped(op);
}

/* Pick the version to resume from, newest good first (or best by metric),
 * skipping corrupt/incomplete ones and those inside the corruption window,
 * verifying the choice. Returns 0 with path filled or -ENOENT. */
static int choose_checkpoint(struct op *op, char *path, size_t len, char *note, size_t notelen)
{
	struct version *vs = NULL;
	size_t n = 0, skipped = 0, *order = NULL;
	int ret = -ENOENT;
	bool best = op->spec.recovery.strategy == CKPT_STRATEGY_BEST;
	bool maxm = op->spec.checkpoint.metric && strstr(op->spec.checkpoint.metric, ":max");
	char why[512] = "";

	note[0] = '\0';
	if (op->spec.recovery.strategy == CKPT_STRATEGY_SPECIFIC) {
		struct version v = {0};

		snprintf(v.path, sizeof(v.path), "%s", op->spec.recovery.specific_path);
		if (version_verify(&v, why, sizeof(why)) == 0) {
			snprintf(path, len, "%s", v.path);
			snprintf(note, notelen, "strategy specific");
			return 0;
		}
		snprintf(note, notelen, "the specific checkpoint failed: %.400s", why);
		return -ENOENT;
	}
	if (versions_list(op->run_dir, &vs, &n) < 0)
		return -ENOENT;
	order = calloc(n + 1, sizeof(*order));
	for (size_t i = 0; order && i < n; i++)
		order[i] = i;
	if (best && order) /* stable selection sort by metric; n is small */
		for (size_t i = 0; i < n; i++)
			for (size_t j = i + 1; j < n; j++) {
				double a = vs[order[i]].val_loss, b = vs[order[j]].val_loss;
				bool swap =
					isnan(a) ? !isnan(b) : !isnan(b) && (maxm ? b > a : b < a);

				if (swap) {
					size_t t = order[i];

					order[i] = order[j];
					order[j] = t;
				}
			}
	for (size_t k = 0; order && k < n; k++) {
		struct version *v = &vs[order[k]];

		if (strcmp(v->state, "committed")) {
			if (strcmp(v->state, "open")) {
				ckptd_log("operation %s: skipping %s: it is %s", op->id, v->path,
					  v->state);
				skipped++;
			}
			continue;
		}
		/* After the fault began: by training step when both are known (an
		 * async save snapshotted before the fault may commit after it),
		 * else by commit time. */
		if (op->bad_step >= 0 && v->step >= 0) {
			if (v->step >= op->bad_step) {
				skipped++;
				continue;
			}
		} else if (op->bad_since > 0 && v->committed >= op->bad_since) {
			skipped++;
			continue;
		}
		if (version_verify(v, why, sizeof(why)) < 0) {
			ckptd_log("operation %s: skipping %s: %s", op->id, v->path, why);
			skipped++;
			continue;
		}
		snprintf(path, len, "%s", v->path);
		ret = 0;
		break;
	}
	snprintf(note, notelen, "strategy %s%s", best ? "best" : "latest",
		 skipped ? ", skipped versions after the fault or failing verification" : "");
	free(order);
	free(vs);
	return ret;
}

static int64_t backoff_ms(const struct op *op, int n)
{
	int64_t d = op->spec.recovery.backoff_ms;

	for (int i = 1; i < n && d < op->spec.recovery.max_backoff_ms; i++)
		d *= 2;
	return d < op->spec.recovery.max_backoff_ms ? d : op->spec.recovery.max_backoff_ms;
}

static void select_checkpoint(struct op *op)
{
	char cp[CKPTD_PATH_MAX] = "", note[600], reason[700];
	int n = op->attempt - op->round_start + 1;
	int64_t delay;

	op->slot = true;
	if (choose_checkpoint(op, cp, sizeof(cp), note, sizeof(note)) < 0) {
		if (!op->spec.recovery.from_scratch) {
			snprintf(reason, sizeof(reason),
				 "%s; no good checkpoint to resume from (%s); set "
				 "recovery.from_scratch: true to restart from the beginning",
				 op->reason, note);
			fail_op(op, reason);
			return;
		}
		cp[0] = '\0';
		snprintf(note + strlen(note), sizeof(note) - strlen(note),
			 "; none found: restarting from scratch");
	}
	delay = backoff_ms(op, n);
	op_set_str(&op->resume_from, cp);
	op->stage = STAGE_BACKOFF;
	op->restart_at = now_s() + (double)delay / 1000.0;
	transition(op, "checkpoint_selected", note, cp, version_step(cp), delay, 0);
}

static void recover_after_stop(struct op *op)
{
	int failed = op->attempt - op->round_start + 1;
	char reason[700];

	for (int i = 0; i < op->nranks; i++)
		op->r[i].trainer_pid = op->r[i].trainer_pgid = 0;
	if (!op->spec.recovery.enabled) {
		snprintf(reason, sizeof(reason),
			 "%s; recovery is disabled (recovery.enabled: false)", op->reason);
		fail_op(op, reason);
		return;
	}
	if (failed >= op->spec.recovery.max_attempts) {
		snprintf(reason, sizeof(reason), "%s; %d of %lld attempts used", op->reason, failed,
			 (long long)op->spec.recovery.max_attempts);
		op->stage = STAGE_NONE;
		transition(op, "exhausted", reason, NULL, -1, -1, 0);
		fail_op(op, reason);
		return;
	}
	if (op->rz) { /* the hosts of the gang choose together */
		rdzv_join(op);
		transition(op, NULL, NULL, NULL, -1, -1, 0);
		return;
	}
	if (count_slots() >= g.max_concurrent) {
		op->stage = STAGE_QUEUED;
		transition(op, NULL, NULL, NULL, -1, -1, 0);
		return;
	}
	select_checkpoint(op);
}

static void reset_runtime(struct op *op)
{
	op->killed = false;
	op->stop_deadline = 0;
	for (int i = 0; i < op->nranks; i++)
		rank_reset(op, &op->r[i]);
	op->next_poll = now_s() + (double)op->spec.recovery.poll_interval_ms / 1000.0;
}

/* Start the next attempt; `event` is started, client_created or resumed. */
static void relaunch(struct op *op, const char *event)
{
	char old[16], new[16];
	int prev = op->r[0].trainer_pid;

	if (op->pinned[0] && strcmp(op->pinned, op->resume_from))
		version_pin(op->pinned, false);
	if (op->resume_from[0]) {
		version_pin(op->resume_from, true);
		op_set_str(&op->pinned, op->resume_from);
	}
	op->attempt++;
	op->stage = STAGE_LAUNCHING;
	op->bad_step = -1;
	op->bad_since = 0;
	transition(op, NULL, NULL, NULL, -1, -1, 0);
	reset_runtime(op);
	if (launch_attempt(op) < 0) {
		char reason[600];

		snprintf(reason, sizeof(reason), "cannot start the trainer: %s", op->reason);
		fail_op(op, reason);
		return;
	}
	if (!strcmp(event, "client_created")) {
		op->recoveries++;
		g.n_recoveries++;
	}
	op->slot = false;
	transition(op, event, op->resume_from[0] ? "resuming" : "fresh start", op->resume_from,
		   version_step(op->resume_from), -1, op->r[0].shim_pid);
	if (!strcmp(event, "client_created")) {
		snprintf(old, sizeof(old), "%d", prev);
		snprintf(new, sizeof(new), "%d", op->r[0].shim_pid);
		run_hook(op, op->spec.recovery.on_recovery, "on_recovery", old, new);
	}
}

void op_refresh_checkpoint(struct op *op)
{
	struct version *vs = NULL;
	size_t n = 0;

	if (versions_list(op->run_dir, &vs, &n) < 0)
		return;
	op_set_str(&op->checkpoint, "");
	for (size_t i = 0; i < n; i++)
		if (!strcmp(vs[i].state, "committed")) {
			op_set_str(&op->checkpoint, vs[i].path);
			break;
		}
	free(vs);
}

/* The one place a checkpoint_committed event is emitted: at most once per
 * version (committed_versions in ckptd.db, marked in the same transaction as
 * the event). Returns 1 when the event was emitted. */
static int checkpoint_event(struct op *op, const char *path, int64_t step, const char *reason)
{
	int r;

	if (db_committed_known(op->id, path))
		return 0;
	if (db_begin() < 0)
		return -EIO;
	r = db_mark_committed(op->id, path);
	if (r == 1) {
		op->updated_at = now_s();
		db_save_op(op);
		event_emit(op, "checkpoint_committed", reason, path, step, -1, 0);
		op->sum.live_until = 0; /* the stats count it from now on */
	}
	if (r < 0 || db_commit() < 0) {
		db_rollback();
		return -EIO;
	}
	return r;
}

/* Every committed version of the run dir that has no checkpoint_committed
 * event yet gets one, oldest first: the poller, the end of an attempt (a
 * trainer's last report may come after the fault was detected, when reports
 * no longer count) and a ckptd restart (commits made while ckptd was down)
 * all come here. With `newest`, op->checkpoint follows the newest committed
 * version (the poller; not during a recovery, where the newest may be inside
 * the fault window). Returns 0, or a versions_list error. */
static int reconcile_versions(struct op *op, const char *reason, bool newest)
{
	struct version *vs = NULL;
	size_t n = 0;
	int r;

	r = versions_list_cached(op->run_dir, op->vcache, &vs, &n);
	if (r < 0)
		return r;
	for (size_t i = n; i-- > 0;) {
		if (strcmp(vs[i].state, "committed"))
			continue;
		if (newest) {
			snprintf(op->last_seen_version, sizeof(op->last_seen_version), "%s",
				 vs[i].name);
			op_set_str(&op->checkpoint, vs[i].path);
		}
		checkpoint_event(op, vs[i].path, vs[i].step, reason);
	}
	free(vs);
	return 0;
}

/* The checkpoint poller: new versions become checkpoint_committed events; an
 * unreadable run dir a poll_error (and the poller keeps going). */
static void poll_versions(struct op *op)
{
	int r = reconcile_versions(op, "found by the poller", true);

	if (r < 0 && r != -ENOENT) { /* ENOENT: no version written yet */
		char reason[CKPTD_PATH_MAX + 64];

		snprintf(reason, sizeof(reason), "cannot read %s: %s", op->run_dir, strerror(-r));
		transition(op, "poll_error", reason, NULL, -1, -1, 0);
	}
}

/* An attempt ended: what it committed after its last report counts too. */
static void reconcile_attempt_end(struct op *op)
{
	char reason[96];

	snprintf(reason, sizeof(reason), "found in the run dir when attempt %d ended", op->attempt);
	reconcile_versions(op, reason, false);
}

static void exit_reason(int code, int sig, char *buf, size_t len)
{
	if (sig > 0)
		snprintf(buf, len, "killed by signal %d (%s)", sig,
			 sigabbrev_np(sig) ? sigabbrev_np(sig) : "?");
	else if (code >= 0)
		snprintf(buf, len, "exit status %d", code);
	else
		snprintf(buf, len, "the trainer ended without a recorded status");
}

/* Every rank of the attempt has ended while the operation was being
 * stopped after a detection: recover, or fail (STOPPING_FINAL). */
static void stopped(struct op *op)
{
	if (op->stage == STAGE_STOPPING_FINAL) {
		fail_op(op, op->reason);
		return;
	}
	recover_after_stop(op);
}

void op_on_shim_exit(struct op *op, struct rank *r)
{
	char path[CKPTD_PATH_MAX + 32], *buf, reason[300];
	int code = -1, sig = -1, v;

	if (r->pidfd >= 0) {
		close(r->pidfd);
		r->pidfd = -1;
	}
	/* the trainer's last datagrams may still be queued behind its exit */
	if (r->notify_fd >= 0 && op->status == OP_RUNNING && !op->cancel_requested)
		op_on_notify(op, r);
	rank_dir(op, r, path, CKPTD_PATH_MAX);
	strcat(path, "/exit");
	buf = read_file(path, 256, NULL);
	if (buf && sscanf(buf, "exit %d", &v) == 1)
		code = v;
	else if (buf && sscanf(buf, "signal %d", &v) == 1)
		sig = v;
	free(buf);
	if (code < 0 && sig < 0) { /* the shim died: make sure nothing of the group lingers */
		rank_read_trainer(op, r);
		if (r->trainer_pgid > 0)
			kill(-r->trainer_pgid, SIGKILL);
	}
	r->exit_code = code;
	r->exit_signal = sig;
	r->ended = true;
	r->shim_pid = 0;
	r->shim_start = 0;
	/* the operation's exit: the first rank that failed, else the last's */
	if (!op->gang || (op->exit_code <= 0 && op->exit_signal <= 0)) {
		op->exit_code = code;
		op->exit_signal = sig;
	}
	exit_reason(code, sig, reason, sizeof(reason));
	if (!ranks_all_ended(op)) {
		/* a gang: one rank's failure stops them all; a rank that exits 0
		 * waits for the others (torchrun: done when all are) */
		if (op->status == OP_RUNNING && !op->cancel_requested && code != 0)
			detect(op, r, DET_EXIT,
			       code == 78 ? "exit status 78 (EX_CONFIG): not retried" : reason, -1,
			       code == 78);
		else if (op->status == OP_RUNNING && !op->cancel_requested)
			ckptd_log("operation %s: rank %d exited 0; waiting for the other ranks",
				  op->id, r->rank);
		return;
	}
	reconcile_attempt_end(op);
	if (op->cancel_requested) {
		char rr[400];

		snprintf(rr, sizeof(rr), "cancelled (%s)", reason);
		finish(op, OP_CANCELLED, "cancelled", rr);
		return;
	}
	if (op->status == OP_RECOVERING &&
	    (op->stage == STAGE_STOPPING || op->stage == STAGE_STOPPING_FINAL)) {
		stopped(op);
		return;
	}
	if (op->status != OP_RUNNING)
		return;
	if (code == 0) {
		finish(op, OP_COMPLETED, "completed", "exit status 0");
		return;
	}
	if (code == 78 && !op->gang) {
		fail_op(op, "exit status 78 (EX_CONFIG): not retried");
		return;
	}
	detect(op, r, DET_EXIT, code == 78 ? "exit status 78 (EX_CONFIG): not retried" : reason, -1,
	       code == 78);
}

/* Each rank's loss against its own moving average (ranks see different
 * data; one rank's spike is the gang's). */
static void spike_check(struct op *op, struct rank *r, double loss)
{
	const double f = op->spec.recovery.loss_spike.factor;
	char reason[200];

	if (!r->ring && op->ring_len > 0) /* ranks_end() freed it, or never made */
		r->ring = calloc((size_t)op->ring_len, sizeof(double));

	if (f > 0 && r->ring && r->ring_count >= op->ring_len) {
		double avg = r->ring_sum / (double)r->ring_count;

		if (avg > 0 && loss > f * avg) {
			int64_t s = r->have_step ? r->step : 0;

			snprintf(reason, sizeof(reason),
				 "loss spike at step %lld: %g > %g x moving average %g",
				 (long long)s, loss, f, avg);
			detect(op, r, DET_SPIKE, reason,
			       s - op->spec.recovery.loss_spike.rollback_steps + 1, false);
			return;
		}
	}
	if (r->ring) {
		if (r->ring_count == op->ring_len)
			r->ring_sum -= r->ring[r->ring_pos];
		else
			r->ring_count++;
		r->ring[r->ring_pos] = loss;
		r->ring_sum += loss;
		r->ring_pos = (r->ring_pos + 1) % op->ring_len;
	}
}

static void metrics_add(struct op *op, const struct ckpt_report *r)
{
	int64_t w = (int64_t)now_s() / 30 * 30;

	if (w != op->win_start) {
		db_metrics_flush(op);
		op->win_start = w;
		op->win_count = 0;
		op->win_sum = 0;
		op->win_have_val = false;
	}
	if (op->have_step)
		op->win_step = op->step;
	/* a NaN/Inf loss is a detection, not a value: it would poison the sum */
	if (r->have & CKPT_R_LOSS && isfinite(r->loss)) {
		if (op->win_count == 0 || r->loss < op->win_min)
			op->win_min = r->loss;
		if (op->win_count == 0 || r->loss > op->win_max)
			op->win_max = r->loss;
		op->win_sum += r->loss;
		op->win_count++;
	}
	if (r->have & CKPT_R_VAL_LOSS) {
		op->win_val = r->val_loss;
		op->win_have_val = true;
	}
}

/* A CHECKPOINT= report names a version of this operation's own run dir and
 * nothing else: resolved (symlinks, "..") it must be RUN_DIR/NAME, and NAME
 * a committed version there. Fills `v` with the version as listed (its
 * canonical path RUN_DIR/NAME). -EPERM: outside the run dir; -ENOENT: not a
 * committed version (yet, or any more). */
static int report_version(const struct op *op, const char *path, struct version *v, char *why,
			  size_t len)
{
	char rd[CKPTD_PATH_MAX], rp[CKPTD_PATH_MAX];
	struct version *vs = NULL;
	size_t n = 0, k;
	const char *name;
	int ret = -ENOENT;

	if (path[0] != '/') {
		snprintf(why, len, "'%.300s' is not an absolute path", path);
		return -EPERM;
	}
	if (!realpath(op->run_dir, rd)) {
		snprintf(why, len, "the run dir %s: %s", op->run_dir, strerror(errno));
		return -ENOENT;
	}
	if (!realpath(path, rp)) {
		snprintf(why, len, "'%.300s': %s", path, strerror(errno));
		return -ENOENT;
	}
	k = strlen(rd);
	if (strncmp(rp, rd, k) || rp[k] != '/' || !rp[k + 1] || strchr(rp + k + 1, '/')) {
		snprintf(why, len,
			 "'%.300s' (%.300s) is not a version of this operation's run dir %s", path,
			 rp, op->run_dir);
		return -EPERM;
	}
	name = rp + k + 1;
	if (versions_list_cached(op->run_dir, op->vcache, &vs, &n) < 0)
		n = 0;
	for (size_t i = 0; i < n; i++) {
		if (strcmp(vs[i].name, name))
			continue;
		if (!strcmp(vs[i].state, "committed")) {
			*v = vs[i];
			ret = 0;
		} else {
			snprintf(why, len, "%s is %s, not committed", vs[i].path, vs[i].state);
		}
		break;
	}
	if (ret && !why[0])
		snprintf(why, len, "%s/%s is not a checkpoint version", op->run_dir, name);
	free(vs);
	return ret;
}

static void on_checkpoint_report(struct op *op, struct rank *rk, const char *path, bool stopping)
{
	struct version v;
	char why[CKPTD_PATH_MAX] = "", reason[CKPTD_PATH_MAX + 64];
	int ret;

	ret = report_version(op, path, &v, why, sizeof(why));
	if (ret < 0) {
		/* never recorded: only the run's own committed versions are
		 * checkpoints of this operation (a version retired or replaced
		 * before this report was read lands here too) */
		g.n_rejected++;
		g.n_rejected_checkpoint++;
		ckptd_log("operation %s: rejected the report CHECKPOINT=%.300s: %s", op->id, path,
			  why);
		return;
	}
	if (v.step < 0 && rk->have_step)
		v.step = rk->step;
	ret = version_verify(&v, why, sizeof(why));
	if (ret == -ENOENT) {
		/* gone or not complete (retired by retention, replaced): not a
		 * fault; checkpoint selection checks versions again anyway */
		ckptd_log("operation %s: reported checkpoint: %s; ignored", op->id, why);
		return;
	}
	if (ret < 0 && stopping) {
		/* a trainer being cancelled: not recorded, and no detection */
		ckptd_log("operation %s: reported checkpoint failed verification: %s; ignored "
			  "(the operation is being cancelled)",
			  op->id, why);
		return;
	}
	if (ret < 0) {
		snprintf(reason, sizeof(reason), "reported checkpoint failed verification: %s",
			 why);
		detect(op, rk, DET_VERIFY, reason, rk->have_step ? rk->step : -1, false);
		return;
	}
	op_set_str(&op->checkpoint, v.path);
	snprintf(op->last_seen_version, sizeof(op->last_seen_version), "%s", v.name);
	checkpoint_event(op, v.path, v.step, "reported by the trainer");
}

/* Datagrams of rank rk. Each rank's reports feed its own detection (hang,
 * NaN/Inf, spike, CORRUPTED=1, checkpoints); the operation's progress and
 * metrics are the first rank's (rank 0 of the gang on its host). */
void op_on_notify(struct op *op, struct rank *rk)
{
	bool first = rk == &op->r[0];
	struct ckpt_report r;
	bool stopping;
	const char *why;
	pid_t pid;
	int ret;

	for (;;) {
		char reason[CKPT_NOTIFY_TEXT_MAX + 100];

		ret = ckpt_notify_recv(rk->notify_fd, &r, &why, &pid);
		if (ret == -EAGAIN || ret == -EWOULDBLOCK)
			return;
		if (ret == -EBADMSG || ret == -EMSGSIZE) {
			g.n_rejected++;
			continue;
		}
		if (ret < 0)
			return;
		g.n_datagrams++;
		if (op->status != OP_RUNNING || rk->ended)
			continue;
		/* A trainer being cancelled still reports the steps it finishes
		 * and its cancellation checkpoint (so progress and checkpoint
		 * agree); only its detections no longer count. */
		stopping = op->cancel_requested;
		rank_read_trainer(op, rk);
		if (pid > 0 && rk->trainer_pgid > 0 && getpgid(pid) != rk->trainer_pgid &&
		    pid != rk->trainer_pid)
			continue; /* not from this rank's process group */
		rk->last_report = now_s();
		op->dirty = true;
		if (r.have & CKPT_R_SAVING)
			rk->saving = r.saving;
		if (r.have & CKPT_R_STEP) {
			rk->step = r.step;
			rk->have_step = true;
		}
		if (first && (r.have & CKPT_R_STEP)) {
			op->step = r.step;
			op->have_step = true;
		}
		if (first && (r.have & CKPT_R_EPOCH)) {
			op->epoch = r.epoch;
			op->have_epoch = true;
		}
		if (first) {
			metrics_add(op, &r);
			metrics_report(op, &r);
		}
		if (stopping) {
			if (r.have & CKPT_R_LOSS) {
				rk->loss = r.loss;
				rk->have_loss = true;
			}
			if (r.have & CKPT_R_CHECKPOINT)
				on_checkpoint_report(op, rk, r.checkpoint, true);
			continue;
		}
		if (r.have & CKPT_R_CORRUPTED && r.corrupted) {
			snprintf(reason, sizeof(reason), "the trainer reported corruption: %s",
				 r.have & CKPT_R_REASON ? r.reason : "(no reason given)");
			detect(op, rk, DET_CORRUPTED, reason, rk->have_step ? rk->step : -1, false);
			return;
		}
		if ((r.have & CKPT_R_LOSS && !isfinite(r.loss)) ||
		    (r.have & CKPT_R_VAL_LOSS && !isfinite(r.val_loss))) {
			double bad =
				r.have & CKPT_R_LOSS && !isfinite(r.loss) ? r.loss : r.val_loss;

			snprintf(reason, sizeof(reason), "%s is %s at step %lld",
				 r.have & CKPT_R_LOSS && !isfinite(r.loss) ? "loss" : "val_loss",
				 isnan(bad) ? "nan"
				 : bad > 0  ? "inf"
					    : "-inf",
				 rk->have_step ? (long long)rk->step : -1LL);
			detect(op, rk, DET_NAN, reason, rk->have_step ? rk->step : 0, false);
			return;
		}
		if (r.have & CKPT_R_LOSS) {
			rk->loss = r.loss;
			rk->have_loss = true;
			if (first) {
				op->loss = r.loss;
				op->have_loss = true;
			}
			spike_check(op, rk, r.loss);
			if (op->status != OP_RUNNING)
				return;
		}
		if (first && (r.have & CKPT_R_VAL_LOSS)) {
			op->val_loss = r.val_loss;
			op->have_val_loss = true;
		}
		if (r.have & CKPT_R_CHECKPOINT) {
			on_checkpoint_report(op, rk, r.checkpoint, false);
			if (op->status != OP_RUNNING)
				return;
		}
	}
}

/* The next scheduled occurrence of a cron operation: a new PENDING copy. */
static void schedule_next(struct op *op);

/* rdzv.c heard that the gang restarts (another host's fault, or a host
 * gone): stop the ranks here as after a detection of our own. */
void op_gang_restart(struct op *op, const char *reason, int64_t bad_step, double bad_since)
{
	if (op->status != OP_RUNNING)
		return;
	detect(op, NULL, DET_EXIT, reason, bad_step, false);
	op->bad_since = bad_since;
}

/* The plan of the next attempt, made by one host for all: the checkpoint
 * (the same selection as one host's, with the fault window of the host
 * that raised the attempt) and the backoff. -ENOENT with `fail` set when
 * there is nothing to resume from and no from_scratch. */
int op_gang_choose(struct op *op, int64_t bad_step, double bad_since, char *path, size_t len,
		   char *note, size_t notelen, int64_t *delay_ms, char *fail, size_t faillen)
{
	int64_t sb = op->bad_step;
	double ss = op->bad_since;
	int ret;

	op->bad_step = bad_step;
	op->bad_since = bad_since;
	ret = op->attempt ? choose_checkpoint(op, path, len, note, notelen) : -ENOENT;
	op->bad_step = sb;
	op->bad_since = ss;
	*delay_ms = op->attempt ? backoff_ms(op, op->attempt - op->round_start + 1) : 0;
	if (!op->attempt) { /* the first start: what the operation was given */
		snprintf(path, len, "%s", op->resume_from);
		snprintf(note, notelen, "the gang starts");
		return 0;
	}
	if (ret < 0 && !op->spec.recovery.from_scratch) {
		snprintf(fail, faillen,
			 "%s; no good checkpoint to resume from (%s); set recovery.from_scratch: "
			 "true to restart from the beginning",
			 op->reason, note);
		return ret;
	}
	if (ret < 0) {
		path[0] = '\0';
		snprintf(note + strlen(note), notelen - strlen(note),
			 "; none found: restarting from scratch");
	}
	return 0;
}

/* Every host is ready: start as the plan says, after its backoff. */
void op_gang_start(struct op *op, const char *resume, int port, const char *addr, int64_t delay_ms,
		   const char *note)
{
	op_set_str(&op->resume_from, resume);
	snprintf(op->master_addr, sizeof(op->master_addr), "%s", addr);
	op->master_port = port;
	op->stage = STAGE_BACKOFF;
	op->restart_at = now_s() + (double)delay_ms / 1000.0;
	op->reason[0] = '\0';
	if (op->status == OP_PENDING)
		transition(op, NULL, NULL, NULL, -1, -1, 0);
	else
		transition(op, "checkpoint_selected", note, resume, version_step(resume), delay_ms,
			   0);
}

void op_gang_waiting(struct op *op, const char *reason)
{
	if (op->status == OP_PENDING)
		snprintf(op->reason, sizeof(op->reason), "%s", reason);
	ckptd_log("operation %s: %s", op->id, reason);
	transition(op, NULL, NULL, NULL, -1, -1, 0);
}

static void start_pending(struct op *op)
{
	op->round_start = op->attempt + 1;
	if (op->spec.schedule.cron)
		schedule_next(op);
	if (op->rz) { /* every host of the gang first */
		rdzv_join(op);
		transition(op, NULL, NULL, NULL, -1, -1, 0);
		return;
	}
	relaunch(op, op->resume_from[0] ? "resumed" : "started");
}

static void plural_gpus(char *buf, size_t len, int64_t n)
{
	snprintf(buf, len, "%lld GPU%s", (long long)n, n == 1 ? "" : "s");
}

/*
 * The queue: due PENDING operations start in queue order (gpus_queue), each
 * once its GPUs are free. First come, first served: one that does not fit
 * holds back those behind it that need GPUs, so a stream of small jobs
 * cannot starve a big one; a job of 0 GPUs never waits. The reason of a
 * waiting one says what it waits for ("waiting for 4 GPUs; 2 free").
 */
static void schedule_pending(double now)
{
	const struct op *head = NULL; /* the first one that waits */
	struct op **q = NULL;
	size_t n = gpus_queue(now, &q);

	for (size_t i = 0; i < n && !g.stopping; i++) {
		struct op *op = q[i];
		int64_t want = op->spec.resources.gpus;
		char reason[sizeof(op->reason)], w[32], h[32];

		if (op->status != OP_PENDING || op->stage != STAGE_NONE)
			continue; /* a gang across hosts waiting for them (rdzv.c) */
		if (gpus_check(want, reason, sizeof(reason)) < 0) {
			/* the inventory shrank since it was submitted */
			fail_op(op, reason);
			continue;
		}
		if (want == 0 || op->gpu_n == want || (!head && gpus_take(op) == 0)) {
			start_pending(op);
			continue;
		}
		plural_gpus(w, sizeof(w), want);
		if (head) {
			plural_gpus(h, sizeof(h), head->spec.resources.gpus);
			snprintf(
				reason, sizeof(reason),
				"waiting for %s; %d free, but %s, ahead in the queue, waits for %s",
				w, gpus_free(), head->id, h);
		} else {
			snprintf(reason, sizeof(reason), "waiting for %s; %d free", w, gpus_free());
			head = op;
		}
		if (strcmp(reason, op->reason)) {
			snprintf(op->reason, sizeof(op->reason), "%s", reason);
			transition(op, NULL, NULL, NULL, -1, -1, 0);
		}
	}
	free(q);
}

/* Whether a due PENDING operation other than `self` waits for GPUs. */
static bool others_wait(const struct op *self, double now)
{
	for (const struct op *op = g.ops; op; op = op->next)
		if (op != self && op->status == OP_PENDING && op->not_before <= now &&
		    op->spec.resources.gpus > op->gpu_n)
			return true;
	return false;
}

/* Hang detection, per rank: no report for heartbeat_timeout_s, the timer
 * paused while that rank is saving. True when a hang was detected. */
static bool hang_check(struct op *op, double now, double hb, double *next)
{
	char reason[200];

	if (hb <= 0)
		return false;
	for (int i = 0; i < op->nranks; i++) {
		struct rank *r = &op->r[i];

		if (r->saving || r->ended)
			continue;
		if (now - r->last_report > hb) {
			snprintf(reason, sizeof(reason),
				 "hang: no report for %.0f s (heartbeat_timeout_s %lld)",
				 now - r->last_report,
				 (long long)op->spec.recovery.heartbeat_timeout_s);
			detect(op, r, DET_HANG, reason, -1, false);
			return true;
		}
		if (r->last_report + hb + 0.01 < *next)
			*next = r->last_report + hb + 0.01;
	}
	return false;
}

void ops_tick(double now, double *next)
{
#define NEXT(t)                                                                                    \
	do {                                                                                       \
		if ((t) > 0 && (t) < *next)                                                        \
			*next = (t);                                                               \
	} while (0)
	size_t nops = 0;

	schedule_pending(now);
	for (struct op *op = g.ops; op; op = op->next)
		nops++;
	/* Only the operations that exist now: one started here may submit the
	 * next run of its schedule (appended to the list), which waits for the
	 * next tick. */
	for (struct op *op = g.ops; op && nops--; op = op->next) {
		if (op->rz &&
		    (op->status == OP_PENDING || op->status == OP_RUNNING ||
		     op->status == OP_RECOVERING) &&
		    !(op->status == OP_PENDING && op->stage == STAGE_NONE))
			rdzv_tick(op, now, next);
		switch (op->status) {
		case OP_PENDING:
			if (op->stage == STAGE_BACKOFF) { /* a gang across hosts, by plan */
				if (now >= op->restart_at && !g.stopping)
					relaunch(op, op->resume_from[0] ? "resumed" : "started");
				else
					NEXT(op->restart_at);
			} else if (op->not_before > now)
				NEXT(op->not_before);
			break;
		case OP_RUNNING: {
			double hb = (double)op->spec.recovery.heartbeat_timeout_s;

			if (op->cancel_requested || op->killed) {
				if (op->stop_deadline && now >= op->stop_deadline) {
					stop_group(op, SIGKILL);
					op->stop_deadline = 0;
				}
				NEXT(op->stop_deadline);
				break;
			}
			if (hang_check(op, now, hb, next))
				break;
			if (now >= op->next_poll) {
				poll_versions(op);
				op->next_poll =
					now + (double)op->spec.recovery.poll_interval_ms / 1000;
			}
			NEXT(op->next_poll);
			/* progress (step, loss; op->dirty) is saved by metrics_tick
			 * once a second with the step metrics, in one transaction:
			 * a trainer reports many times a second; status changes are
			 * saved where they happen */
			break;
		}
		case OP_RECOVERING:
			if (op->stage == STAGE_STOPPING || op->stage == STAGE_STOPPING_FINAL) {
				if (op->stop_deadline && now >= op->stop_deadline) {
					stop_group(op, SIGKILL);
					op->stop_deadline = 0;
				}
				NEXT(op->stop_deadline);
			} else if (op->stage == STAGE_QUEUED) {
				if (count_slots() < g.max_concurrent)
					select_checkpoint(op);
			} else if (op->stage == STAGE_BACKOFF) {
				if (now >= op->restart_at && !g.stopping)
					relaunch(op, "client_created");
				else
					NEXT(op->restart_at);
			}
			break;
		default:
			break;
		}
	}
	hooks_tick(now);
	for (struct hook *h = g.hooks; h; h = h->next)
		NEXT(h->deadline);
#undef NEXT
}

static void random_hex(char *buf, size_t n)
{
	unsigned char r[8] = {0};

	if (getrandom(r, sizeof(r), 0) < 0) {
		for (size_t i = 0; i < sizeof(r); i++)
			r[i] = (unsigned char)(rand() & 0xff);
	}
	for (size_t i = 0; i < n / 2; i++)
		sprintf(buf + 2 * i, "%02x", r[i]);
}

static void new_id(char *id, size_t len)
{
	char hex[8], stamp[CKPT_ISO_LEN];

	ckpt_iso_format(stamp, sizeof(stamp), (int64_t)time(NULL) * CKPT_NS_PER_S, CKPT_ISO_ID);
	do {
		random_hex(hex, 6);
		snprintf(id, len, "op_training_%s_%.6s", stamp, hex);
	} while (op_find(id));
}

/* Inline secret values go to a 0600 file; the spec keeps a file reference,
 * so no value is ever stored in ckptd.db. */
static int stash_secrets(struct op *op, char *err, size_t errlen)
{
	for (size_t i = 0; i < op->spec.nsecrets; i++) {
		struct ckpt_secret *s = &op->spec.secrets[i];
		char dir[CKPTD_PATH_MAX], path[CKPTD_PATH_MAX + 200];

		if (s->env) {
			if (!getenv(s->env)) {
				snprintf(
					err, errlen,
					"secrets.%s: environment variable %s is not set in ckptd's "
					"environment; export it before starting ckptd, or use "
					"{file: "
					"PATH}",
					s->name, s->env);
				return -EINVAL;
			}
			continue;
		}
		if (!s->value)
			continue;
		snprintf(dir, sizeof(dir), "%s/secrets/%s", g.state_dir, op->id);
		mkdir_p(dir, 0700);
		snprintf(path, sizeof(path), "%s/%s", dir, s->name);
		if (write_file_atomic(path, s->value, strlen(s->value), 0600) < 0) {
			snprintf(err, errlen, "secrets.%s: cannot store it under %s", s->name, dir);
			return -EIO;
		}
		explicit_bzero(s->value, strlen(s->value));
		free(s->value);
		s->value = NULL;
		s->file = strdup(path);
	}
	return 0;
}

/* A new operation from a body (a submission) or a stored spec (the next run
 * of a schedule, whose fire time comes after `after`). */
static struct op *make_op(const char *spec_json_in, const char *body, size_t len, double after,
			  char *err, size_t errlen, int *ret)
{
	struct op *op = op_new();

	*ret = -ENOMEM;
	if (!op)
		return NULL;
	*ret = ckpt_jobspec_init(&op->spec);
	if (*ret)
		goto fail;
	/* The built-in default is 1 GPU on a host that has GPUs, none on one
	 * that has none: a job that does not ask is not refused there. */
	if (g.gpu.n == 0)
		op->spec.resources.gpus = 0;
	if (spec_json_in) {
		*ret = ckpt_jobspec_apply_json(&op->spec, spec_json_in, strlen(spec_json_in), err,
					       errlen);
	} else {
		if (g.policy_file[0] && access(g.policy_file, F_OK) == 0) {
			*ret = ckpt_jobspec_apply_file(&op->spec, g.policy_file, err, errlen);
			if (*ret) {
				*ret = -EIO; /* the daemon's file, not the client's fault */
				goto fail;
			}
		}
		*ret = ckpt_jobspec_apply_json(&op->spec, body, len, err, errlen);
	}
	if (!*ret)
		*ret = ckpt_jobspec_validate(&op->spec, err, errlen);
	if (!*ret)
		*ret = gpus_check(op->spec.resources.gpus, err, errlen);
	if (*ret)
		goto fail;
	new_id(op->id, sizeof(op->id));
	*ret = stash_secrets(op, err, errlen);
	if (*ret)
		goto fail;
	op->spec_json = ckpt_jobspec_to_json(&op->spec);
	if (!op->spec_json) {
		*ret = -ENOMEM;
		goto fail;
	}
	{
		char rd[CKPTD_PATH_MAX + CKPTD_ID_MAX];

		snprintf(rd, sizeof(rd), "%s/%s", g.mount, op->id);
		if (op_set_str(&op->run_dir, rd)) {
			*ret = -ENOMEM;
			goto fail;
		}
	}
	op->created_at = op->updated_at = now_s();
	op->status = OP_PENDING;
	op->not_before = op->created_at;
	if (op->spec.schedule.cron) {
		struct ckpt_cron c;
		char why[200];
		time_t t = -1;

		if (ckpt_cron_parse(op->spec.schedule.cron, &c, why, sizeof(why)) == 0)
			t = ckpt_cron_next(
				&c, (time_t)(after > op->created_at ? after : op->created_at));
		if (t < 0) {
			snprintf(err, errlen,
				 "schedule.cron: '%s' has no fire time in the next 5 years (a day "
				 "of month that none of its months has, like 31 in February?); "
				 "check the day-of-month and month fields",
				 op->spec.schedule.cron);
			*ret = -EINVAL;
			goto fail;
		}
		op->not_before = op->fire_at = (double)t;
	}
	op->queued_at = op->not_before;
	*ret = op_load_spec(op, err, errlen);
	if (*ret)
		goto fail;
	if (op->rz) { /* the hosts of a gang share one run dir, and etcd */
		char rd[CKPTD_PATH_MAX];

		snprintf(rd, sizeof(rd), "%s", op->run_dir);
		rdzv_run_dir(op, rd, sizeof(rd));
		if (op_set_str(&op->run_dir, rd)) {
			*ret = -ENOMEM;
			goto fail;
		}
		*ret = rdzv_check(op, err, errlen);
		if (*ret)
			goto fail;
	}
	return op;
fail:
	op_free(op);
	return NULL;
}

int op_submit(const char *body, size_t len, const char *idem, struct op **out, bool *replay,
	      char *err, size_t errlen)
{
	char id[CKPTD_ID_MAX];
	struct op *op;
	int ret;

	*replay = false;
	if (idem && db_find_idem(idem, id, sizeof(id)) == 0 && (op = op_find(id))) {
		*replay = true;
		*out = op;
		return 0;
	}
	op = make_op(NULL, body, len, 0, err, errlen, &ret);
	if (!op)
		return ret;
	if (db_begin() < 0 || db_insert_op(op, idem) < 0) {
		db_rollback();
		op_free(op);
		snprintf(err, errlen, "cannot store the operation in ckptd.db");
		return -EIO;
	}
	event_emit(op, "submitted", op->spec.schedule.cron ? "scheduled by cron" : NULL, NULL, -1,
		   -1, 0);
	if (db_commit() < 0) {
		op_free(op);
		snprintf(err, errlen, "cannot store the operation in ckptd.db");
		return -EIO;
	}
	op_link(op);
	*out = op;
	return 0;
}

/* Each operation of a schedule submits at most one successor (the unique
 * scheduled_by in ckptd.db holds even across a crash between this and the
 * start), for the first fire time after both now and its own: fire times
 * missed while ckptd was down are skipped, not caught up one by one. */
static void schedule_next(struct op *op)
{
	char err[512];
	struct op *n;
	int ret;

	for (n = g.ops; n; n = n->next)
		if (!strcmp(n->scheduled_by, op->id))
			return; /* scheduled already */
	if (!op_spec_json(op)) {
		ckptd_log("operation %s: the schedule ends: its spec is not in the database",
			  op->id);
		return;
	}
	n = make_op(op->spec_json, NULL, 0, op->fire_at, err, sizeof(err), &ret);
	if (!n) {
		ckptd_log("operation %s: the schedule ends: cannot schedule the next run: %s",
			  op->id, err);
		return;
	}
	snprintf(n->scheduled_by, sizeof(n->scheduled_by), "%s", op->id);
	if (db_begin() < 0 || db_insert_op(n, NULL) < 0) {
		db_rollback();
		ckptd_log("operation %s: cannot store the next run of its schedule", op->id);
		op_free(n);
		return;
	}
	event_emit(n, "submitted", "scheduled by cron", NULL, -1, -1, 0);
	if (db_commit() < 0) {
		db_rollback();
		op_free(n);
		return;
	}
	op_link(n);
}

int op_cancel(struct op *op)
{
	switch (op->status) {
	case OP_PENDING:
		finish(op, OP_CANCELLED, "cancelled", "cancelled before it started");
		return 0;
	case OP_RECOVERING:
		if (op->stage != STAGE_STOPPING) {
			finish(op, OP_CANCELLED, "cancelled", "cancelled during recovery");
			return 0;
		}
		op->cancel_requested = true;
		transition(op, NULL, NULL, NULL, -1, -1, 0);
		return 0;
	case OP_RUNNING:
		op->cancel_requested = true;
		stop_group(op, SIGTERM);
		op->stop_deadline = now_s() + (double)op->spec.recovery.grace_s;
		transition(op, NULL, NULL, NULL, -1, -1, 0);
		return 0;
	default:
		return -EBUSY;
	}
}

int op_resume(struct op *op, char *err, size_t errlen)
{
	char cp[CKPTD_PATH_MAX], note[600];
	enum op_status prev = op->status;
	int ret;

	if (op->status != OP_CANCELLED && op->status != OP_FAILED) {
		snprintf(err, errlen,
			 "operation %s is %s; only CANCELLED or FAILED operations "
			 "with a checkpoint can be resumed",
			 op->id, status_name(op->status));
		return -EBUSY;
	}
	if (gpus_check(op->spec.resources.gpus, err, errlen) < 0)
		return -EBUSY;
	ret = db_resume_claim(op->id);
	if (ret == -EBUSY) {
		snprintf(err, errlen, "operation %s is being resumed already or has no checkpoint",
			 op->id);
		return -EBUSY;
	}
	if (ret < 0) {
		snprintf(err, errlen, "cannot update ckptd.db");
		return ret;
	}
	op->bad_step = -1;
	op->bad_since = 0;
	if (choose_checkpoint(op, cp, sizeof(cp), note, sizeof(note)) < 0) {
		op->status = prev;
		transition(op, NULL, NULL, NULL, -1, -1, 0);
		snprintf(err, errlen, "no checkpoint to resume from (%s)", note);
		return -EBUSY;
	}
	op_set_str(&op->resume_from, cp);
	op->status = OP_PENDING;
	op->cancel_requested = false;
	op->finished_at = 0;
	op->skip_batches = 0;
	op->reason[0] = '\0';
	op->not_before = 0;
	op->round_start = op->attempt + 1;
	/* at the end of the queue: it starts now only if nothing waits ahead */
	op->queued_at = now_s();
	if (op->rz) { /* every host resumes it; they start together (rdzv.c) */
		rdzv_resume(op);
		transition(op, NULL, NULL, NULL, -1, -1, 0);
		return 0;
	}
	if (op->spec.resources.gpus == 0 ||
	    (!others_wait(op, op->queued_at) && gpus_take(op) == 0)) {
		relaunch(op, "resumed");
		return 0;
	}
	transition(op, NULL, NULL, NULL, -1, -1, 0);
	schedule_pending(op->queued_at); /* its reason says what it waits for */
	return 0;
}

/* After a ckptd restart: find each live attempt's shim again (pid + start
 * time), or collect the exit it recorded while ckptd was down. */
void op_adopt(struct op *op)
{
	char path[CKPTD_PATH_MAX + 32], *buf;
	int alive = 0, pid0 = 0;

	if (op->rz && op->stage == STAGE_BACKOFF)
		op->stage = STAGE_RENDEZVOUS; /* the plan (and its port) is in etcd */
	if (op->rz && op->stage == STAGE_RENDEZVOUS)
		rdzv_join(op);
	if (op->status == OP_RECOVERING && op->stage == STAGE_BACKOFF)
		op->slot = true;
	/* what the trainer committed while no ckptd watched */
	if (op->status == OP_RUNNING || op->status == OP_RECOVERING)
		reconcile_versions(op, "found at restart: committed while ckptd was down",
				   op->status == OP_RUNNING);
	if (!(op->status == OP_RUNNING ||
	      (op->status == OP_RECOVERING &&
	       (op->stage == STAGE_STOPPING || op->stage == STAGE_STOPPING_FINAL ||
		op->stage == STAGE_LAUNCHING))))
		return;
	for (int i = 0; i < op->nranks; i++) {
		struct rank *r = &op->r[i];
		unsigned long long st = 0;
		int pid = 0;

		rank_dir(op, r, path, CKPTD_PATH_MAX);
		strcat(path, "/shim");
		buf = read_file(path, 128, NULL);
		if (!buf || sscanf(buf, "%d %llu", &pid, &st) != 2) {
			free(buf);
			/* ckptd died before every shim was recorded: no go byte was
			 * sent, so nothing started */
			ckptd_log("operation %s: attempt %d never started; starting it again",
				  op->id, op->attempt);
			op->attempt--;
			op->status = OP_RECOVERING;
			op->stage = STAGE_BACKOFF;
			op->restart_at = now_s();
			op->slot = true;
			if (op->rz) { /* again by the plan in etcd */
				op->slot = false;
				rdzv_join(op);
			}
			transition(op, NULL, NULL, NULL, -1, -1, 0);
			return;
		}
		free(buf);
		r->shim_pid = pid;
		r->shim_start = st;
	}
	reset_runtime(op);
	for (int i = 0; i < op->nranks; i++) {
		struct rank *r = &op->r[i];

		notify_open(op, r);
		rank_read_trainer(op, r);
		if (shim_alive(r)) {
			r->pidfd = (int)syscall(SYS_pidfd_open, r->shim_pid, 0);
			alive++;
			if (!pid0)
				pid0 = r->shim_pid;
		}
	}
	if (alive) {
		ckptd_log("operation %s: re-adopted attempt %d (%d of %d rank%s alive; first "
			  "shim %d, trainer %d)",
			  op->id, op->attempt, alive, op->nranks, op->nranks == 1 ? "" : "s",
			  op->r[0].shim_pid, op->r[0].trainer_pid);
		if (op->status == OP_RECOVERING && op->stage == STAGE_LAUNCHING) {
			op->status = OP_RUNNING;
			op->stage = STAGE_NONE;
			transition(op, op->resume_from[0] ? "client_created" : "started",
				   "re-adopted after a ckptd restart", op->resume_from, -1, -1,
				   pid0);
		} else if (op->stage == STAGE_STOPPING || op->stage == STAGE_STOPPING_FINAL ||
			   op->cancel_requested) {
			stop_group(op, SIGTERM);
			op->killed = true;
			op->stop_deadline = now_s() + (double)op->spec.recovery.grace_s;
		}
	} else {
		ckptd_log("operation %s: attempt %d ended while ckptd was down; collecting its "
			  "exit",
			  op->id, op->attempt);
		if (op->status == OP_RECOVERING && op->stage == STAGE_LAUNCHING) {
			op->status = OP_RUNNING;
			op->stage = STAGE_NONE;
		}
	}
	/* the ranks that ended while ckptd was down: as if seen live */
	for (int i = 0; i < op->nranks; i++)
		if (op->r[i].pidfd < 0 && !op->r[i].ended)
			op_on_shim_exit(op, &op->r[i]);
}

/* {"cron", "fire_time": this run's, "next_fire": when the schedule fires
 * next (this one while it waits, else its successor's while that waits)},
 * or null for an operation without a schedule. */
static json_t *schedule_json(const struct op *op)
{
	const struct op *next = NULL;
	char ft[40], nf[40];

	if (!op->spec.schedule.cron)
		return json_null();
	if (op->status == OP_PENDING && op->fire_at > 0)
		next = op;
	for (const struct op *n = g.ops; !next && n; n = n->next)
		if (!strcmp(n->scheduled_by, op->id) && n->status == OP_PENDING)
			next = n;
	iso_time(op->fire_at, ft, sizeof(ft));
	if (next)
		iso_time(next->fire_at, nf, sizeof(nf));
	return json_pack("{ss so so}", "cron", op->spec.schedule.cron, "fire_time",
			 op->fire_at > 0 ? json_string(ft) : json_null(), "next_fire",
			 next ? json_string(nf) : json_null());
}

bool op_live(const struct op *op)
{
	return op->status == OP_PENDING || op->status == OP_RUNNING || op->status == OP_RECOVERING;
}

bool op_resumable(const struct op *op)
{
	return (op->status == OP_CANCELLED || op->status == OP_FAILED) && op->checkpoint[0];
}

json_t *op_to_json(struct op *op, bool with_spec)
{
	char c[40], u[40], f[40];
	json_t *o, *prog, *cp = json_null();
	bool resumable;

	iso_time(op->created_at, c, sizeof(c));
	iso_time(op->updated_at, u, sizeof(u));
	iso_time(op->finished_at, f, sizeof(f));
	prog = json_pack("{so so si}", "step", op->have_step ? json_integer(op->step) : json_null(),
			 "epoch", op->have_epoch ? json_integer(op->epoch) : json_null(), "epochs",
			 (int)op->spec.hyperparams.epochs);
	if (op->status == OP_COMPLETED)
		json_object_set_new(prog, "percent", json_real(100.0));
	else if (op->have_epoch && op->spec.hyperparams.epochs > 0)
		json_object_set_new(
			prog, "percent",
			json_real(100.0 * (double)op->epoch / (double)op->spec.hyperparams.epochs));
	else
		json_object_set_new(prog, "percent", json_null());
	json_object_set_new(prog, "loss",
			    op->have_loss && isfinite(op->loss) ? json_real(op->loss)
								: json_null());
	json_object_set_new(prog, "val_loss",
			    op->have_val_loss && isfinite(op->val_loss) ? json_real(op->val_loss)
									: json_null());
	if (op->checkpoint[0]) {
		const char *name = strrchr(op->checkpoint, '/');
		struct version v;

		cp = json_pack("{ss ss}", "version", name ? name + 1 : op->checkpoint, "path",
			       op->checkpoint);
		json_object_set_new(cp, "step", json_null());
		json_object_set_new(cp, "epoch", json_null());
		json_object_set_new(cp, "committed", json_null());
		/* that one version only: a list of operations would read every
		 * version of every run; a finished one's from its memo */
		if ((op_live(op) ? version_get(op->run_dir, op->vcache, op->checkpoint, &v)
				 : version_get_memo(op->run_dir, &op->cp_memo, op->checkpoint,
						    &v)) == 0) {
			char t[40];

			iso_time(v.committed, t, sizeof(t));
			if (v.step >= 0)
				json_object_set_new(cp, "step", json_integer(v.step));
			if (v.epoch >= 0)
				json_object_set_new(cp, "epoch", json_integer(v.epoch));
			json_object_set_new(cp, "committed", json_string(t));
		}
	}
	resumable = op_resumable(op);
	o = json_pack("{ss ss ss ss si sI si so so so sb sb ss ss ss}", "id", op->id, "project_id",
		      op->spec.project_id ? op->spec.project_id : "", "name",
		      op->spec.name ? op->spec.name : "", "status", status_name(op->status),
		      "attempt", op->attempt, "max_attempts",
		      (json_int_t)op->spec.recovery.max_attempts, "recoveries", op->recoveries,
		      "progress", prog, "checkpoint", cp, "pid",
		      op->nranks && op->r[0].trainer_pid > 0 ? json_integer(op->r[0].trainer_pid)
							     : json_null(),
		      "resumable", resumable, "cancel_requested", op->cancel_requested, "run_dir",
		      op->run_dir, "created", c, "updated", u);
	json_object_set_new(o, "gpus", gpus_of(op));
	if (op->gang) {
		json_object_set_new(o, "world_size", json_integer(ckpt_jobspec_world(&op->spec)));
		json_object_set_new(o, "node_rank", json_integer(op->spec.resources.node_rank));
		json_object_set_new(o, "host", json_string(g.host));
		json_object_set_new(o, "ranks", ranks_json(op));
	}
	json_object_set_new(o, "reason", op->reason[0] ? json_string(op->reason) : json_null());
	if (op->exit_signal > 0)
		json_object_set_new(o, "exit", json_pack("{si}", "signal", op->exit_signal));
	else if (op->exit_code >= 0)
		json_object_set_new(o, "exit", json_pack("{si}", "code", op->exit_code));
	else
		json_object_set_new(o, "exit", json_null());
	json_object_set_new(o, "finished", op->finished_at > 0 ? json_string(f) : json_null());
	json_object_set_new(o, "schedule", schedule_json(op));
	if (with_spec) {
		const char *sj = op_spec_json(op);
		json_t *spec = sj ? json_loads(sj, 0, NULL) : NULL;

		json_object_set_new(o, "spec", spec ? spec : json_null());
		op_spec_drop(op);
	}
	return o;
}
