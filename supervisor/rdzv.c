// SPDX-License-Identifier: MIT
/*
 * rdzv.c - a gang across hosts (resources.rdzv, SPEC §9, docs/ranks.md
 * "Many hosts"): each host's ckptd runs its own ranks and agrees with the
 * others through etcd (etcd.c) under /ckpt/JOB/:
 *
 *   hosts/K      {"host","op","pid"}  under host K's lease: K is alive
 *   gen          {"gen","reason","bad_step","bad_since","by"}  the attempt
 *                the gang is in; raised by one only, by compare-and-swap
 *   ready/A/K    {"host","port","addr"}  under K's lease: K has stopped its
 *                ranks of attempt A-1 and waits to start attempt A (node 0
 *                adds the MASTER_PORT it found free and its address)
 *   plan/A       {"resume","port","addr","delay_ms","note"} or {"fail"}:
 *                how every host starts attempt A; created once, by whichever
 *                host first sees every host ready (or the wait time out)
 *   done/K       host K's ranks all exited 0
 *
 * A detection on a host raises gen to attempt+1; every host hears it (the
 * watch), stops its ranks, writes ready/A/K; the plan picks one checkpoint
 * for everyone. A host whose lease expires (its ckptd died) is a detection
 * for the others, who then wait for it to come back (gang_timeout_s). When
 * etcd cannot be reached, ranks go on; restarts wait until it is back.
 */
#include "ckptd_i.h"
#include "etcd_i.h"
#include "rdzv_key.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct rdzv {
	struct etcd e;
	struct etcd_watch *w;
	char prefix[100];
	int nodes, node;
	int64_t lease;
	double next_keepalive, next_refresh;
	bool reg;	  /* hosts/K is under the current lease */
	bool down;	  /* the last call failed (logged once per outage) */
	int64_t ready_at; /* the attempt whose ready/A/K is under the lease */
	double wait_since;
	/* etcd's state at the last refresh */
	int64_t gen, gen_rev, gen_bad_step;
	double gen_bad_since;
	char gen_reason[512];
	unsigned char *alive, *ready, *done;
	char (*names)[64];
	int port0;
	char addr0[64];
	bool plan;
	char plan_fail[600], plan_resume[CKPTD_PATH_MAX], plan_addr[64], plan_note[600];
	int plan_port;
	int64_t plan_delay;
	/* a raise of gen still to make (etcd was unreachable) */
	int64_t want_gen, want_bad_step;
	double want_bad_since;
	char want_reason[512];
	char waiting[300];
	bool resuming; /* ckpt ops resume: past the attempt whose plan failed */
};

static bool rdzv_parse(const struct op *op, char *host, size_t hl, int *port, char *job, size_t jl)
{
	return op->spec.resources.rdzv &&
	       ckpt_rdzv_parse(op->spec.resources.rdzv, host, hl, port, job, jl) == 0;
}

/* The run dir a gang's hosts share: MOUNT/JOB. */
void rdzv_run_dir(const struct op *op, char *buf, size_t len)
{
	char host[256], job[72];
	int port;

	if (rdzv_parse(op, host, sizeof(host), &port, job, sizeof(job)))
		snprintf(buf, len, "%s/%s", g.mount, job);
}

int rdzv_open(struct op *op)
{
	struct rdzv *z;
	char host[256], job[72];
	int port, n;

	if (op->rz || !rdzv_parse(op, host, sizeof(host), &port, job, sizeof(job)))
		return 0;
	n = (int)(op->spec.resources.nodes > 0 ? op->spec.resources.nodes : 1);
	z = calloc(1, sizeof(*z));
	if (!z)
		return -ENOMEM;
	z->alive = calloc((size_t)n, 1);
	z->ready = calloc((size_t)n, 1);
	z->done = calloc((size_t)n, 1);
	z->names = calloc((size_t)n, sizeof(*z->names));
	if (!z->alive || !z->ready || !z->done || !z->names || etcd_init(&z->e, host, port)) {
		free(z->alive);
		free(z->ready);
		free(z->done);
		free(z->names);
		free(z);
		return -ENOMEM;
	}
	z->nodes = n;
	z->node = (int)op->spec.resources.node_rank;
	snprintf(z->prefix, sizeof(z->prefix), "/ckpt/%s/", job);
	op->rz = z;
	return 0;
}

void rdzv_free(struct op *op)
{
	struct rdzv *z = op->rz;

	if (!z)
		return;
	etcd_watch_stop(z->w);
	etcd_close(&z->e);
	free(z->alive);
	free(z->ready);
	free(z->done);
	free(z->names);
	free(z);
	op->rz = NULL;
}

int rdzv_fd(const struct op *op)
{
	return op->rz && op->rz->w ? etcd_watch_fd(op->rz->w) : -1;
}

/* KEY(buf, z, "hosts/%lld", node): the gang's key, under its prefix */
#define KEY(buf, z, fmt, ...) snprintf(buf, sizeof(buf), "%s" fmt, (z)->prefix, __VA_ARGS__)

/* One call failed: say so once per outage. */
static int down(struct op *op, int ret)
{
	struct rdzv *z = op->rz;

	if (!z->down)
		ckptd_log("operation %s: %s; the ranks keep running, a restart of the gang waits "
			  "until etcd answers again",
			  op->id, z->e.err);
	z->down = true;
	return ret;
}

static int up(struct op *op)
{
	if (op->rz->down)
		ckptd_log("operation %s: etcd at %s answers again", op->id, op->rz->e.base);
	op->rz->down = false;
	return 0;
}

/* hosts/K under the lease; `claim`: only if no other host has it (1 put,
 * 0 taken). */
static int put_host(struct op *op, bool claim)
{
	struct rdzv *z = op->rz;
	json_t *o = json_pack("{ss ss si}", "host", g.host, "op", op->id, "pid", (int)getpid());
	char k[200], *v = json_dumps(o, JSON_COMPACT);
	int ret;

	json_decref(o);
	KEY(k, z, "hosts/%lld", (long long)z->node);
	if (!v)
		return -ENOMEM;
	ret = claim ? etcd_put_if(&z->e, k, 0, v, z->lease) : etcd_put(&z->e, k, v, z->lease);
	free(v);
	return ret;
}

/* The lease, hosts/K under it, and the watch. */
static int ensure_registered(struct op *op, double now)
{
	struct rdzv *z = op->rz;
	int64_t ttl = 0;
	int ret;

	if (z->lease && now >= z->next_keepalive) {
		ret = etcd_keepalive(&z->e, z->lease, &ttl);
		if (ret)
			return down(op, ret);
		z->next_keepalive = now + (double)g.rdzv_ttl_s / 3.0;
		if (ttl <= 0) {
			ckptd_log("operation %s: etcd lease %lld of node %d expired; registering "
				  "again",
				  op->id, (long long)z->lease, z->node);
			z->lease = 0;
		}
	}
	if (!z->lease) {
		z->reg = false;
		z->ready_at = 0;
		ret = etcd_grant(&z->e, g.rdzv_ttl_s, &z->lease);
		if (ret)
			return down(op, ret);
		z->next_keepalive = now + (double)g.rdzv_ttl_s / 3.0;
	}
	if (!z->reg) {
		ret = put_host(op, false);
		if (ret < 0)
			return down(op, ret);
		z->reg = true;
	}
	if (!z->w)
		z->w = etcd_watch_start(&z->e, z->prefix);
	return up(op);
}

static int64_t jint(json_t *o, const char *k, int64_t dflt)
{
	json_t *v = json_object_get(o, k);

	return json_is_integer(v) ? json_integer_value(v) : dflt;
}

static void jstr(json_t *o, const char *k, char *buf, size_t len)
{
	const char *s = json_string_value(json_object_get(o, k));

	snprintf(buf, len, "%s", s ? s : "");
}

/* Read every key of the gang; what matters is about attempt `a`. */
static int refresh(struct op *op, int64_t a)
{
	struct rdzv *z = op->rz;
	struct etcd_kv *kv = NULL;
	size_t n = 0, pl = strlen(z->prefix);
	int ret = etcd_range(&z->e, z->prefix, &kv, &n);

	if (ret)
		return down(op, ret);
	up(op);
	memset(z->alive, 0, (size_t)z->nodes);
	memset(z->ready, 0, (size_t)z->nodes);
	memset(z->done, 0, (size_t)z->nodes);
	z->gen = 0;
	z->gen_rev = 0;
	z->plan = false;
	for (size_t i = 0; i < n; i++) {
		const char *k = kv[i].key + pl;
		json_t *o = json_loads(kv[i].value, 0, NULL);
		struct rdzv_key rk;
		enum rdzv_key_kind kind = rdzv_key_parse(k, &rk);

		if (!o)
			continue;
		if (kind == RDZV_KEY_GEN) {
			z->gen = jint(o, "gen", 0);
			z->gen_rev = kv[i].mod_rev;
			z->gen_bad_step = jint(o, "bad_step", -1);
			z->gen_bad_since = json_number_value(json_object_get(o, "bad_since"));
			jstr(o, "reason", z->gen_reason, sizeof(z->gen_reason));
		} else if (kind == RDZV_KEY_HOST && rk.node < z->nodes) {
			z->alive[rk.node] = 1;
			jstr(o, "host", z->names[rk.node], sizeof(z->names[rk.node]));
		} else if (kind == RDZV_KEY_DONE && rk.node < z->nodes) {
			z->done[rk.node] = 1;
		} else if (kind == RDZV_KEY_READY && rk.attempt == a && rk.node < z->nodes) {
			z->ready[rk.node] = 1;
			if (rk.node == 0) {
				z->port0 = (int)jint(o, "port", 0);
				jstr(o, "addr", z->addr0, sizeof(z->addr0));
			}
		} else if (kind == RDZV_KEY_PLAN && rk.attempt == a) {
			z->plan = true;
			jstr(o, "fail", z->plan_fail, sizeof(z->plan_fail));
			jstr(o, "resume", z->plan_resume, sizeof(z->plan_resume));
			jstr(o, "addr", z->plan_addr, sizeof(z->plan_addr));
			jstr(o, "note", z->plan_note, sizeof(z->plan_note));
			z->plan_port = (int)jint(o, "port", 0);
			z->plan_delay = jint(o, "delay_ms", 0);
		}
		json_decref(o);
	}
	etcd_kvs_free(kv, n);
	return 0;
}

/* Raise gen to z->want_gen (compare-and-swap on its revision): one host
 * wins, the others find it raised already. */
static int raise_gen(struct op *op)
{
	struct rdzv *z = op->rz;
	char k[200], *v;
	json_t *o;
	int ret;

	for (int tries = 0; tries < 5; tries++) {
		if (z->gen >= z->want_gen) {
			z->want_gen = 0;
			return 0;
		}
		o = json_pack("{sI ss sI sf si}", "gen", (json_int_t)z->want_gen, "reason",
			      z->want_reason, "bad_step", (json_int_t)z->want_bad_step, "bad_since",
			      z->want_bad_since, "by", z->node);
		v = json_dumps(o, JSON_COMPACT);
		json_decref(o);
		KEY(k, z, "%s", "gen");
		ret = v ? etcd_put_if(&z->e, k, z->gen_rev, v, 0) : -ENOMEM;
		free(v);
		if (ret < 0)
			return down(op, ret);
		if (ret == 1) {
			z->gen = z->want_gen;
			z->want_gen = 0;
			return 0;
		}
		ret = refresh(op, op->attempt + 1);
		if (ret)
			return ret;
	}
	return -EAGAIN;
}

/* A detection here: the whole gang restarts into attempt+1. */
void rdzv_fault(struct op *op, const char *reason, int64_t bad_step, double bad_since)
{
	struct rdzv *z = op->rz;

	if (!z || z->want_gen > op->attempt)
		return;
	z->want_gen = op->attempt + 1;
	z->want_bad_step = bad_step;
	z->want_bad_since = bad_since;
	snprintf(z->want_reason, sizeof(z->want_reason), "%s", reason);
	if (refresh(op, op->attempt + 1) == 0)
		raise_gen(op);
}

/* Wait for every host to be ready for attempt op->attempt+1, then start
 * it as the plan says. The caller has stopped every local rank. */
void rdzv_join(struct op *op)
{
	struct rdzv *z = op->rz;

	z->wait_since = now_s();
	z->waiting[0] = '\0';
	if (z->want_gen <= op->attempt) {
		z->want_gen = op->attempt + 1;
		z->want_bad_step = op->bad_step;
		z->want_bad_since = op->bad_since;
		snprintf(z->want_reason, sizeof(z->want_reason), "%s",
			 op->attempt ? op->reason : "the gang starts");
	}
	op->stage = STAGE_RENDEZVOUS;
	z->next_refresh = 0;
}

/* ckpt ops resume, on every host: the gang starts again after the attempt
 * that failed (whose plan says so), from the newest complete version. */
void rdzv_resume(struct op *op)
{
	rdzv_join(op);
	op->rz->resuming = true;
}

static int put_plan(struct op *op, int64_t a, json_t *o)
{
	struct rdzv *z = op->rz;
	char k[200], *v = json_dumps(o, JSON_COMPACT);
	int ret;

	json_decref(o);
	KEY(k, z, "plan/%lld", (long long)a);
	ret = v ? etcd_put_if(&z->e, k, 0, v, 0) : -ENOMEM;
	free(v);
	if (ret < 0)
		return down(op, ret);
	return refresh(op, a);
}

static void missing(const struct rdzv *z, const unsigned char *have, char *buf, size_t len)
{
	size_t n = 0;

	buf[0] = '\0';
	for (int i = 0; i < z->nodes && n + 80 < len; i++)
		if (!have[i])
			n += (size_t)snprintf(buf + n, len - n, "%snode %d%s%s%s", n ? ", " : "", i,
					      z->names[i][0] ? " (" : "", z->names[i],
					      z->names[i][0] ? ")" : "");
}

/* A version of the run dir by its name (each host has the shared tree at
 * its own mount; each resolves the name in its own run dir); any other
 * path (strategy specific) as it is. */
static const char *version_name(const struct op *op, const char *path)
{
	size_t n = strlen(op->run_dir);

	if (!strncmp(path, op->run_dir, n) && path[n] == '/' && !strchr(path + n + 1, '/'))
		return path + n + 1;
	return path;
}

/* In STAGE_RENDEZVOUS: be ready, plan when every host is, start by plan. */
static void rendezvous(struct op *op, double now, double *next)
{
	struct rdzv *z = op->rz;
	int64_t a = op->attempt + 1;
	char k[200], *v, why[700];
	int ready = 0;

	if (z->gen > a) {
		/* the gang went on without this host (it was down): catch up */
		ckptd_log("operation %s: the gang is at attempt %lld; joining it", op->id,
			  (long long)z->gen);
		op->attempt = (int)z->gen - 1;
		a = z->gen;
		refresh(op, a);
	}
	if (z->resuming && z->plan && z->plan_fail[0]) {
		/* the attempt that failed stays failed: the next one resumes */
		z->resuming = false;
		op->attempt++;
		op->round_start = op->attempt + 1;
		a++;
		rdzv_join(op);
		snprintf(z->want_reason, sizeof(z->want_reason), "resumed (ckpt ops resume)");
		if (refresh(op, a))
			return;
	}
	z->resuming = false;
	if (z->want_gen && raise_gen(op) < 0)
		return;
	if (z->ready_at != a) {
		json_t *o = json_pack("{ss}", "host", g.host);

		if (z->node == 0) {
			int port = pick_free_port();

			json_object_set_new(o, "port", json_integer(port > 0 ? port : 0));
			json_object_set_new(
				o, "addr",
				json_string(z->e.local_ip[0] ? z->e.local_ip : "127.0.0.1"));
		}
		v = json_dumps(o, JSON_COMPACT);
		json_decref(o);
		KEY(k, z, "ready/%lld/%lld", (long long)a, (long long)z->node);
		if (!v || etcd_put(&z->e, k, v, z->lease) < 0) {
			free(v);
			down(op, -EIO);
			return;
		}
		free(v);
		z->ready_at = a;
		if (refresh(op, a))
			return;
	}
	for (int i = 0; i < z->nodes; i++)
		ready += z->ready[i];
	for (int i = 0; i < z->nodes && !z->plan; i++)
		if (z->done[i] && !z->ready[i]) {
			/* its ranks exited 0: it will not start another attempt */
			snprintf(why, sizeof(why),
				 "%s; node %d (%s) has completed, so the gang cannot restart "
				 "without it",
				 op->reason[0] ? op->reason : "the gang restarts", i, z->names[i]);
			if (put_plan(op, a, json_pack("{ss}", "fail", why)))
				return;
		}
	if (!z->plan && ready == z->nodes) {
		char cp[CKPTD_PATH_MAX] = "", note[600] = "", fail[700] = "";
		int64_t delay = 0;
		json_t *o;

		if (op_gang_choose(op, z->gen_bad_step, z->gen_bad_since, cp, sizeof(cp), note,
				   sizeof(note), &delay, fail, sizeof(fail)) < 0)
			o = json_pack("{ss}", "fail", fail);
		else
			/* by version name: each host has the shared tree at its own
			 * mount, so the path is each host's run dir + the name */
			o = json_pack("{ss si ss sI ss}", "resume", version_name(op, cp), "port",
				      z->port0, "addr", z->addr0[0] ? z->addr0 : "127.0.0.1",
				      "delay_ms", (json_int_t)delay, "note", note);
		if (put_plan(op, a, o))
			return;
	} else if (!z->plan && now - z->wait_since >= (double)op->spec.recovery.gang_timeout_s) {
		char m[300];

		missing(z, z->ready, m, sizeof(m));
		snprintf(why, sizeof(why),
			 "%s did not come back within recovery.gang_timeout_s (%lld s); start "
			 "its ckptd again, then ckpt ops resume on every host",
			 m, (long long)op->spec.recovery.gang_timeout_s);
		if (put_plan(op, a, json_pack("{ss}", "fail", why)))
			return;
	}
	if (z->plan) {
		char cp[CKPTD_PATH_MAX + 300] = "";

		if (z->plan_resume[0] && strchr(z->plan_resume, '/'))
			snprintf(cp, sizeof(cp), "%s", z->plan_resume); /* a specific path */
		else if (z->plan_resume[0])
			snprintf(cp, sizeof(cp), "%s/%s", op->run_dir, z->plan_resume);
		z->waiting[0] = '\0';
		if (z->plan_fail[0])
			op_fail(op, z->plan_fail);
		else
			op_gang_start(op, cp, z->plan_port, z->plan_addr, z->plan_delay,
				      z->plan_note);
		return;
	}
	missing(z, z->ready, why, sizeof(why));
	snprintf(k, sizeof(k),
		 "waiting for %.150s of the gang (attempt %lld; %d of %d hosts "
		 "ready)",
		 why, (long long)a, ready, z->nodes);
	if (strcmp(k, z->waiting)) {
		snprintf(z->waiting, sizeof(z->waiting), "%s", k);
		op_gang_waiting(op, k);
	}
	if (z->wait_since + (double)op->spec.recovery.gang_timeout_s < *next)
		*next = z->wait_since + (double)op->spec.recovery.gang_timeout_s;
}

/* While the ranks run: a raised gen, or a host gone, restarts this host's
 * ranks too. */
static void running(struct op *op)
{
	struct rdzv *z = op->rz;
	char why[700], m[300];

	if (op->killed || op->cancel_requested)
		return;
	if (z->gen > op->attempt) {
		snprintf(why, sizeof(why), "the gang restarts: %s", z->gen_reason);
		op_gang_restart(op, why, z->gen_bad_step, z->gen_bad_since);
		return;
	}
	for (int i = 0; i < z->nodes; i++)
		z->ready[i] = z->alive[i] || z->done[i];
	for (int i = 0; i < z->nodes; i++)
		if (!z->ready[i]) {
			missing(z, z->ready, m, sizeof(m));
			snprintf(why, sizeof(why),
				 "%s is gone: its ckptd's etcd lease (rdzv_ttl_s %lld) expired", m,
				 (long long)g.rdzv_ttl_s);
			op_gang_restart(op, why, -1, 0);
			rdzv_fault(op, why, -1, 0);
			return;
		}
}

static void act(struct op *op, double now, double *next)
{
	if (op->stage == STAGE_RENDEZVOUS)
		rendezvous(op, now, next);
	else if (op->status == OP_RUNNING)
		running(op);
	else if (op->rz->want_gen)
		raise_gen(op);
}

void rdzv_tick(struct op *op, double now, double *next)
{
	struct rdzv *z = op->rz;

	if (!z)
		return;
	if (ensure_registered(op, now) < 0) {
		if (now + 1.0 < *next)
			*next = now + 1.0; /* try again in a second */
		return;
	}
	if (now >= z->next_refresh) {
		/* the watch wakes the loop at once; this is the fallback */
		z->next_refresh = now + 1.0;
		if (refresh(op, op->attempt + 1) == 0)
			act(op, now, next);
	}
	if (z->next_refresh < *next)
		*next = z->next_refresh;
	if (z->next_keepalive < *next)
		*next = z->next_keepalive;
}

void rdzv_on_watch(struct op *op, double now, double *next)
{
	struct rdzv *z = op->rz;

	if (!z || !z->w)
		return;
	etcd_watch_drain(z->w);
	if (refresh(op, op->attempt + 1) == 0)
		act(op, now, next);
}

/* The operation ended here. COMPLETED: done/K, so the others do not take
 * this host for lost; FAILED or CANCELLED: the others stop too (gen raised,
 * a plan that fails). Then the lease goes, and with it hosts/K. */
void rdzv_end(struct op *op)
{
	struct rdzv *z = op->rz;
	char k[200], why[700];

	if (!z)
		return;
	if (op->status == OP_COMPLETED) {
		KEY(k, z, "done/%lld", (long long)z->node);
		if (etcd_put(&z->e, k, "{}", 0) < 0)
			down(op, -EIO);
	} else if (refresh(op, op->attempt + 1) == 0 && !(z->gen > op->attempt && z->plan)) {
		snprintf(why, sizeof(why), "node %d (%s) ended the gang: %s", z->node, g.host,
			 op->reason);
		rdzv_fault(op, why, -1, 0);
		put_plan(op, z->gen > op->attempt ? z->gen : op->attempt + 1,
			 json_pack("{ss}", "fail", why));
	}
	if (z->lease && etcd_revoke(&z->e, z->lease) < 0)
		down(op, -EIO);
	z->lease = 0;
	z->reg = false;
	etcd_watch_stop(z->w);
	z->w = NULL;
}

/* At submit: etcd answers, and node K of the job is not another
 * operation's. A job whose earlier gang is over (no host alive) starts
 * anew: its keys are removed. */
int rdzv_check(struct op *op, char *err, size_t errlen)
{
	struct rdzv *z = op->rz;
	struct etcd_kv *kv = NULL;
	size_t n = 0, pl;
	bool alive = false;
	int ret;

	if (!z)
		return 0;
	ret = etcd_range(&z->e, z->prefix, &kv, &n);
	if (ret) {
		snprintf(err, errlen,
			 "resources.rdzv: %s; start etcd there (etcd-server), or give the address "
			 "of the gang's etcd: --rdzv etcd://HOST:PORT/JOB",
			 z->e.err);
		return -EHOSTUNREACH;
	}
	pl = strlen(z->prefix);
	for (size_t i = 0; i < n; i++) {
		struct rdzv_key rk;

		if (rdzv_key_parse(kv[i].key + pl, &rk) != RDZV_KEY_HOST)
			continue;
		alive = true;
		if (rk.node == z->node) {
			snprintf(err, errlen,
				 "resources.node_rank: node %lld of the gang %.64s is taken (%s); "
				 "give each host its own --node-rank, or wait %lld s for the lease "
				 "of a ckptd that died to expire",
				 (long long)rk.node, z->prefix, kv[i].value,
				 (long long)g.rdzv_ttl_s);
			ret = -EINVAL;
		}
	}
	etcd_kvs_free(kv, n);
	if (!ret && !alive && n > 0) {
		ckptd_log("rdzv %s: no host of an earlier gang is alive; its keys are removed",
			  z->prefix);
		ret = etcd_delete_prefix(&z->e, z->prefix);
	}
	/* claim node K now, atomically: two submissions for one node cannot
	 * both pass this check */
	if (!ret)
		ret = etcd_grant(&z->e, g.rdzv_ttl_s, &z->lease);
	if (!ret) {
		z->next_keepalive = now_s() + (double)g.rdzv_ttl_s / 3.0;
		ret = put_host(op, true);
		if (ret == 0) {
			snprintf(
				err, errlen,
				"resources.node_rank: node %d of the gang %.64s was taken just now "
				"by another submission; give each host its own --node-rank",
				z->node, z->prefix);
			return -EINVAL;
		}
		z->reg = ret == 1;
		ret = ret == 1 ? 0 : ret;
	}
	if (ret && ret != -EINVAL) {
		snprintf(err, errlen, "resources.rdzv: %s", z->e.err);
		ret = -EHOSTUNREACH;
	}
	return ret;
}
