// SPDX-License-Identifier: MIT
/*
 * ranks.c - the processes of an attempt. A plain job has one; a gang
 * (resources.procs_per_node, SPEC §9) has one rank per local process, each
 * under its own shim, in its own process group, with its own notify socket,
 * attempt files and log (docs/ranks.md):
 *
 *   plain job   ops/OP/attempt-N/{shim,trainer,exit}   logs/OP.log   notify/OP
 *   gang rank K ops/OP/attempt-N/rank-K/{...}           logs/OP.log (K = the
 *               lowest rank here), else logs/OP.rank-K.log           notify/OP.rK
 *
 * The gang lives and dies together: ops.c stops every rank when one fails,
 * and recovers once every rank has ended.
 */
#include "ckptd_i.h"

#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

/* (Re)build op->r for the op's spec; keeps nothing of a previous set. */
int ranks_setup(struct op *op)
{
	int n = (int)ckpt_jobspec_local_ranks(&op->spec);
	int64_t base = op->spec.resources.node_rank * n;

	ranks_free(op);
	op->r = calloc((size_t)n, sizeof(*op->r));
	if (!op->r)
		return -ENOMEM;
	op->nranks = n;
	op->gang = ckpt_jobspec_gang(&op->spec);
	for (int i = 0; i < n; i++) {
		struct rank *r = &op->r[i];

		r->rank = (int)base + i;
		r->local = i;
		r->pidfd = -1;
		r->notify_fd = -1;
		r->exit_code = -1;
		r->exit_signal = -1;
		/* r->ring: from the first loss of an attempt until the operation
		 * ends (spike_check, ranks_end) */
	}
	return 0;
}

/* The operation has ended: what only an attempt needs goes (a long history
 * of finished operations holds no moving averages). */
void ranks_end(struct op *op)
{
	for (int i = 0; i < op->nranks; i++) {
		free(op->r[i].ring);
		op->r[i].ring = NULL;
		op->r[i].ring_pos = op->r[i].ring_count = 0;
		op->r[i].ring_sum = 0;
	}
}

void ranks_free(struct op *op)
{
	for (int i = 0; i < op->nranks; i++) {
		struct rank *r = &op->r[i];

		if (r->pidfd >= 0)
			close(r->pidfd);
		if (r->notify_fd >= 0)
			close(r->notify_fd);
		free(r->ring);
	}
	free(op->r);
	op->r = NULL;
	op->nranks = 0;
}

void rank_dir(const struct op *op, const struct rank *r, char *buf, size_t len)
{
	if (op->gang)
		snprintf(buf, len, "%s/ops/%s/attempt-%d/rank-%d", g.state_dir, op->id, op->attempt,
			 r->rank);
	else
		snprintf(buf, len, "%s/ops/%s/attempt-%d", g.state_dir, op->id, op->attempt);
}

void rank_log(const struct op *op, const struct rank *r, char *buf, size_t len)
{
	if (!op->gang || r == &op->r[0])
		snprintf(buf, len, "%s/logs/%s.log", g.state_dir, op->id);
	else
		snprintf(buf, len, "%s/logs/%s.rank-%d.log", g.state_dir, op->id, r->rank);
}

void rank_notify_name(const struct op *op, const struct rank *r, char *buf, size_t len)
{
	struct sockaddr_un sa;
	char suffix[16] = "";

	if (op->gang)
		snprintf(suffix, sizeof(suffix), ".r%d", r->rank);
	snprintf(buf, len, "%s/notify/%s%s", g.state_dir, op->id, suffix);
	if (strlen(buf) >= sizeof(sa.sun_path)) {
		/* too long for sun_path: the abstract namespace, unique per state
		 * dir through its inode */
		struct stat st;

		stat(g.state_dir, &st);
		snprintf(buf, len, "@ckptd-%llx-%s%s", (unsigned long long)st.st_ino, op->id,
			 suffix);
	}
}

/* A new attempt starts (or an old one is re-adopted): fresh detection state. */
void rank_reset(struct op *op, struct rank *r)
{
	r->saving = false;
	r->ended = false;
	r->ring_pos = r->ring_count = 0;
	r->ring_sum = 0;
	r->last_report = now_s();
	r->have_step = r->have_loss = false;
	(void)op;
}

void rank_read_trainer(const struct op *op, struct rank *r)
{
	char path[CKPTD_PATH_MAX + 32], *buf;
	int pid = 0;

	if (r->trainer_pgid > 0)
		return;
	rank_dir(op, r, path, CKPTD_PATH_MAX);
	strcat(path, "/trainer");
	buf = read_file(path, 128, NULL);
	if (buf && sscanf(buf, "%d", &pid) == 1 && pid > 0) {
		r->trainer_pid = pid;
		r->trainer_pgid = pid; /* the shim puts it in its own group */
	}
	free(buf);
}

/* Every rank's process group that has not ended gets `sig`. */
void ranks_signal(struct op *op, int sig)
{
	for (int i = 0; i < op->nranks; i++) {
		struct rank *r = &op->r[i];

		if (r->ended)
			continue;
		rank_read_trainer(op, r);
		if (r->trainer_pgid > 0 && kill(-r->trainer_pgid, sig) < 0 && errno != ESRCH)
			ckptd_log("operation %s: kill(-%d, %d) of rank %d failed: %s", op->id,
				  r->trainer_pgid, sig, r->rank, strerror(errno));
	}
}

bool ranks_all_ended(const struct op *op)
{
	for (int i = 0; i < op->nranks; i++)
		if (!op->r[i].ended)
			return false;
	return true;
}

bool ranks_any_alive(const struct op *op)
{
	return !ranks_all_ended(op);
}

struct rank *rank_find(struct op *op, int rank)
{
	for (int i = 0; i < op->nranks; i++)
		if (op->r[i].rank == rank)
			return &op->r[i];
	return NULL;
}

/* A TCP port free on this host now, for MASTER_PORT (as torchrun's
 * standalone mode does: bind port 0, read it back, let it go). */
int pick_free_port(void)
{
	struct sockaddr_in sa = {.sin_family = AF_INET};
	socklen_t len = sizeof(sa);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), port = -1;

	if (fd < 0)
		return -errno;
	sa.sin_addr.s_addr = htonl(INADDR_ANY);
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 &&
	    getsockname(fd, (struct sockaddr *)&sa, &len) == 0)
		port = ntohs(sa.sin_port);
	else
		port = -errno;
	close(fd);
	return port;
}

/* For the API: each rank's host, pid, step and last report. */
json_t *ranks_json(const struct op *op)
{
	json_t *a = json_array();

	for (int i = 0; i < op->nranks; i++) {
		const struct rank *r = &op->r[i];
		bool live = op->status == OP_RUNNING || op->status == OP_RECOVERING;
		char t[40];
		json_t *o, *ex = json_null();

		iso_time(r->last_report, t, sizeof(t));
		if (r->exit_signal > 0)
			ex = json_pack("{si}", "signal", r->exit_signal);
		else if (r->exit_code >= 0)
			ex = json_pack("{si}", "code", r->exit_code);
		o = json_pack("{si si ss ss}", "rank", r->rank, "local_rank", r->local, "host",
			      g.host, "state",
			      !live	    ? "stopped"
			      : r->ended    ? "exited"
			      : r->saving   ? "saving"
			      : r->shim_pid ? "running"
					    : "starting");
		json_object_set_new(o, "pid",
				    live && !r->ended && r->trainer_pid > 0
					    ? json_integer(r->trainer_pid)
					    : json_null());
		json_object_set_new(o, "step", r->have_step ? json_integer(r->step) : json_null());
		json_object_set_new(o, "last_report",
				    live && r->last_report > 0 ? json_string(t) : json_null());
		json_object_set_new(o, "exit", ex);
		json_array_append_new(a, o);
	}
	return a;
}
