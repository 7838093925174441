/* SPDX-License-Identifier: MIT */
/*
 * ckptd_i.h - the supervisor's internals: the daemon state, operations and
 * the functions the supervisor/ files share. ckptd is single-threaded: one
 * poll loop (main.c) drives the HTTP server (api.c, libmicrohttpd in external
 * epoll mode), the notify sockets, the shims' pidfds and every timer, so no
 * state needs a lock.
 */
#ifndef CKPTD_I_H
#define CKPTD_I_H

#include "ckptfs/isotime.h"
#include "ckptfs/jobspec.h"
#include "gpu_i.h"

#include <jansson.h>
#include <sqlite3.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>
#include <time.h>

#define CKPTD_ID_MAX 64
#define CKPTD_PATH_MAX 4096

enum op_status {
	OP_PENDING,
	OP_RUNNING,
	OP_RECOVERING,
	OP_COMPLETED,
	OP_FAILED,
	OP_CANCELLED,
};

/* Where a RECOVERING operation is. Stored, so a restarted ckptd goes on. */
enum op_stage {
	STAGE_NONE,
	STAGE_STOPPING,	      /* old trainer group got SIGTERM; waiting for its exit */
	STAGE_QUEUED,	      /* waiting for one of max_concurrent recovery slots */
	STAGE_BACKOFF,	      /* checkpoint chosen; waiting until restart_at */
	STAGE_LAUNCHING,      /* attempt number bumped; shim being started */
	STAGE_STOPPING_FINAL, /* like STOPPING, then FAILED without a retry (a
			       * rank exited 78 while others ran) */
	STAGE_RENDEZVOUS,     /* a gang across hosts (rdzv.c): waiting for every
			       * host, then for the plan of the next attempt */
};

/* One checkpoint version as found in a run dir. */
struct version {
	char name[256];
	char path[CKPTD_PATH_MAX];
	char state[16];	    /* committed | incomplete | corrupt | open | retired */
	int64_t seq;	    /* commit order (xattr) or an mtime-derived order */
	int64_t step;	    /* -1 when unknown */
	int64_t epoch;	    /* -1 when unknown */
	double val_loss;    /* NAN when unknown */
	double committed;   /* unix seconds */
	int64_t size_bytes; /* -1 until asked for */
	bool xattrs;	    /* ckptfs said (its xattrs), not the plain-dir convention */
};

/* The validators of a plain version (versions.c): its dir's dev, ino, mtime
 * and ctime, its trainer_state.json's inode, size, mtime and ctime (ts_*:
 * -1 when absent). What was read from the version holds while they do. */
struct version_stamp {
	dev_t dev;
	ino_t ino, ts_ino;
	int64_t mtime, ctime, ts_size, ts_mtime, ts_ctime;
};

/* What version_get_memo() read of one plain version (path_hash 0: none). */
struct version_memo {
	uint64_t path_hash;
	struct version_stamp at;
	char state[16];
	int64_t seq, step, epoch;
	double val_loss, committed;
};

/* One rank of the running attempt: one process under its own shim, with its
 * own notify socket and detection state (docs/ranks.md). A plain job has
 * exactly one; a gang has resources.procs_per_node on this host. */
struct rank {
	int rank;  /* RANK: node_rank * procs_per_node + local */
	int local; /* LOCAL_RANK */
	pid_t shim_pid, trainer_pid, trainer_pgid;
	uint64_t shim_start;
	int pidfd, notify_fd;
	bool ended;		    /* its shim reported the end of this attempt */
	int exit_code, exit_signal; /* -1 when none */
	double last_report;
	bool saving;
	int64_t step;
	double loss;
	bool have_step, have_loss;
	/* loss-spike moving average (op->ring_len entries) */
	double *ring;
	int64_t ring_pos, ring_count;
	double ring_sum;
};

/* What the stats count of one run dir (cleanup.c): its committed versions,
 * their bytes, the oldest one's commit time; and the run dir's stat when it
 * was counted, while `valid` says the count still holds for that stat. */
struct run_summary {
	int64_t committed, size_bytes;
	double oldest; /* 0: none */
	bool valid;
	dev_t dev;
	ino_t ino;
	int64_t mtime_ns, ctime_ns;
	/* a live operation's plain run: kept until then (now_s()) while no
	 * cached version was seen changed (g.n_version_changes) */
	double live_until;
	uint64_t changes;
};

struct op {
	struct op *next;
	char id[CKPTD_ID_MAX];
	struct ckpt_jobspec spec;
	char *spec_json; /* resolved spec as stored (secrets as references); NULL
			  * once it finished (op_spec_json() reads it back) */
	enum op_status status;
	enum op_stage stage;
	int attempt;	 /* launches so far; CKPT_ATTEMPT of the current one */
	int round_start; /* first attempt of this round (submission or resume) */
	int recoveries;	 /* recoveries done, for the API */
	char reason[512];
	int exit_code, exit_signal; /* -1 when none */
	/* paths on the heap, never NULL ("" when none; set with op_set_str):
	 * ckptd holds every operation of its history, and four PATH_MAX
	 * buffers were most of the 19 KiB of each */
	char *run_dir;
	char *checkpoint; /* newest good version, "" when none */
	char *resume_from;
	char *pinned;
	int64_t skip_batches;
	double created_at, updated_at, finished_at, not_before, restart_at;
	double queued_at; /* place in the queue for GPUs: submission or resume */
	/* the GPUs it holds (indices), from its start until it ends, across
	 * recoveries; gpu_n is 0 when it holds none. On the heap (gpus_hold):
	 * an array of GPU_MAX was 1 KiB of every operation of the history */
	int *gpu_ids;
	int gpu_n;
	bool cancel_requested;
	bool slot; /* holds a recovery slot */
	/* corruption window for checkpoint selection */
	int64_t bad_step; /* versions with step >= bad_step are skipped; -1 none */
	double bad_since; /* versions committed at or after are skipped; 0 none */

	/* the running attempt: its ranks (one for a plain job), whose progress
	 * (step, loss, ...) is rank 0's (the lowest rank on this host) */
	struct rank *r;
	int nranks;
	bool gang;	      /* resources.nodes/procs_per_node: the torchrun environment */
	int master_port;      /* MASTER_PORT of the current attempt */
	char master_addr[64]; /* MASTER_ADDR: node 0's (rdzv), else 127.0.0.1 */
	struct rdzv *rz;      /* a gang across hosts (resources.rdzv); else NULL */
	double stop_deadline, next_poll;
	bool killed, dirty;
	int64_t step, epoch;
	double loss, val_loss;
	bool have_step, have_epoch, have_loss, have_val_loss;
	int64_t ring_len; /* loss_spike.window */
	/* current 30 s metrics window */
	int64_t win_start, win_count, win_step;
	double win_sum, win_min, win_max, win_val;
	bool win_have_val;
	char last_seen_version[256];
	/* cron: the operation whose start submitted this one, and this one's
	 * fire time (0 when not scheduled) */
	char scheduled_by[CKPTD_ID_MAX];
	double fire_at;
	/* per-step history, rates, save timing (metrics.c); NULL until a report */
	struct op_metrics *mx;
	struct run_summary sum;	     /* run_summary() */
	struct ckpt_hmap *vcache;    /* what its versions' files said (versions.c) */
	struct version_memo cp_memo; /* its checkpoint's, once it finished (op_to_json) */
};

struct hook {
	struct hook *next;
	pid_t pid;
	double deadline;
	char what[64];
	char op[CKPTD_ID_MAX];
};

struct ckptd {
	char state_dir[CKPTD_PATH_MAX];
	char host[256]; /* this host's name in events and rank lists (config `host`) */
	char sock_path[CKPTD_PATH_MAX];
	char store[CKPTD_PATH_MAX];
	char mount[CKPTD_PATH_MAX];
	char ckptfs_bin[CKPTD_PATH_MAX];
	char mount_opts[1024]; /* config mount_options: ckptfs -o OPTS when ckptd mounts */
	char policy_file[CKPTD_PATH_MAX];
	char shim_bin[CKPTD_PATH_MAX];
	char token[256];
	int mount_mode; /* 0 auto, 1 never */
	bool mounted_by_us, ckptfs_mount;
	int max_concurrent;
	int listen_tcp;
	struct gpu_inv gpu;  /* fixed for ckptd's lifetime */
	bool gpu_configured; /* config `gpus:` given: no detection */
	double cleanup_interval_s, next_cleanup;
	double started;
	uint64_t nofile_soft; /* RLIMIT_NOFILE soft limit ckptd started with; 0 unchanged */
	sqlite3 *db;
	int events_fd, log_fd, pid_fd;
	struct op *ops;
	struct hook *hooks;
	bool stopping;
	struct MHD_Daemon *httpd, *httpd_tcp;
	int tcp_port;	    /* the TCP listener's port once it listens (dashboard) */
	int64_t keep_steps; /* per-step metrics kept per operation (metrics_keep_steps) */
	int64_t rdzv_ttl_s; /* etcd lease of each host of a gang (rdzv_ttl_s) */
	/* counters for /metrics */
	uint64_t n_events, n_recoveries, n_datagrams, n_rejected, n_rejected_checkpoint;
	uint64_t n_detect[8];
	uint64_t n_version_reads;   /* versions read from run dirs (versions.c) */
	uint64_t n_version_changes; /* cached versions found changed in place (versions.c) */
};

extern struct ckptd g;

/* util.c */
/* Not older than this, a file's timestamps cannot tell a change made now
 * from the next one (file times come from a coarse clock): what was read
 * from it is not kept (run_summary, the version cache), as git does not
 * trust a racily clean index entry. */
#define RACY_NS ((int64_t)2000000000)
int64_t ts_ns(const struct timespec *t);
double now_s(void);
void iso_time(double t, char *buf, size_t len);
void child_limits(void);
int mkdir_p(const char *path, mode_t mode);
int write_file_atomic(const char *path, const char *data, size_t len, mode_t mode);
char *read_file(const char *path, size_t max, size_t *len);
uint64_t proc_start_time(pid_t pid);
int rm_rf(const char *path);
int64_t du_bytes(const char *path);
void ckptd_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
bool valid_op_id(const char *id);
const char *status_name(enum op_status s);
int status_parse(const char *s, enum op_status *out);

/* db.c */
int db_open(const char *path);
int db_schema_version(void);
void db_close(void);
int db_begin(void);
int db_commit(void);
void db_rollback(void);
int db_relaxed(bool on);
int db_save_op(const struct op *op);
int db_insert_op(const struct op *op, const char *idem_key);
int db_find_idem(const char *key, char *id, size_t len);
char *db_op_spec(const char *id);
int db_load_ops(void);
int db_delete_op(const char *id);
int db_resume_claim(const char *id);
bool db_committed_known(const char *id, const char *path);
int db_mark_committed(const char *id, const char *path);
json_t *db_events(const char *id, int64_t after, int64_t limit);
int db_insert_event(json_t *ev, int64_t *seq);
int db_metrics_flush(const struct op *op);
json_t *db_metrics(const struct op *op, int res);
/* One reported step (metrics.c buffers them and writes them in batches). */
struct step_point {
	int attempt;
	int64_t step, epoch;
	double loss, val_loss, time;
	bool have_epoch, have_loss, have_val_loss;
	char nonfinite[32]; /* "loss=nan,val_loss=inf" for values JSON cannot hold */
};
int db_steps_write(const char *id, const struct step_point *p, size_t n);
int db_steps_prune(const char *id, int64_t upto_step);
int db_steps_query(const char *id, int64_t after_attempt, int64_t after_step,
		   int (*cb)(void *arg, const struct step_point *p), void *arg);

/* metrics.c: every reported step (besides the 30 s windows of db.c), the
 * trainer gauges and the commit-time histogram of /metrics */
struct ckpt_report;
void metrics_report(struct op *op, const struct ckpt_report *r);
int metrics_flush(struct op *op);
void metrics_tick(double now, double *next);
void metrics_free(struct op *op);
char *metrics_steps_body(struct op *op, int64_t after_attempt, int64_t after_step, size_t *len);
void metrics_prom(FILE *f);
void store_bytes(int64_t *logical, int64_t *stored, int64_t plain);

/* dashboard.c: the page at / (web/, embedded at build time) */
struct MHD_Connection;
bool dashboard_path(const char *url);
int dashboard_serve(struct MHD_Connection *c, const char *url, const char *method);
int dashboard_open(char *err, size_t errlen);
json_t *dashboard_info(void);

/* events.c: `rank` names the rank the event is about (NULL: none, or a
 * plain job); events of gangs also carry `host`. */
void event_emit(struct op *op, const char *event, const char *reason, const char *checkpoint,
		int64_t step, int64_t delay_ms, pid_t pid);
void event_emit_rank(struct op *op, const struct rank *r, const char *event, const char *reason,
		     const char *checkpoint, int64_t step, int64_t delay_ms, pid_t pid);

/* versions.c */
struct ckpt_hmap;
int versions_list(const char *run_dir, struct version **out, size_t *n);
int versions_list_cached(const char *run_dir, struct ckpt_hmap *cache, struct version **out,
			 size_t *n);
int version_get(const char *run_dir, struct ckpt_hmap *cache, const char *path, struct version *v);
int version_get_memo(const char *run_dir, struct version_memo *m, const char *path,
		     struct version *v);
int64_t version_size(struct ckpt_hmap *cache, const struct version *v);
struct ckpt_hmap *versions_cache_new(void);
void versions_cache_clear(struct ckpt_hmap *m);
void versions_cache_free(struct ckpt_hmap *m);
int version_verify(const struct version *v, char *why, size_t len);
int64_t version_step(const char *path);
void version_pin(const char *path, bool pin);
bool is_mountpoint(const char *path);

/* ranks.c */
int ranks_setup(struct op *op);
void ranks_free(struct op *op);
void ranks_end(struct op *op);
void rank_dir(const struct op *op, const struct rank *r, char *buf, size_t len);
void rank_log(const struct op *op, const struct rank *r, char *buf, size_t len);
void rank_notify_name(const struct op *op, const struct rank *r, char *buf, size_t len);
void rank_reset(struct op *op, struct rank *r);
void rank_read_trainer(const struct op *op, struct rank *r);
void ranks_signal(struct op *op, int sig);
bool ranks_all_ended(const struct op *op);
bool ranks_any_alive(const struct op *op);
struct rank *rank_find(struct op *op, int rank);
int pick_free_port(void);
json_t *ranks_json(const struct op *op);

/* launch.c */
int launch_attempt(struct op *op);
int notify_open(struct op *op, struct rank *r);
void notify_close(struct op *op);
void build_resolved_spec(struct op *op);

/* ops.c */
struct op *op_find(const char *id);
struct op *op_new(void);
int op_set_str(char **dst, const char *src);
void op_free(struct op *op);
void op_link(struct op *op);
int op_load_spec(struct op *op, char *err, size_t errlen);
const char *op_spec_json(struct op *op);
void op_spec_drop(struct op *op);
void ops_tick(double now, double *next);
void op_on_shim_exit(struct op *op, struct rank *r);
void op_on_notify(struct op *op, struct rank *r);
int op_cancel(struct op *op);
int op_resume(struct op *op, char *err, size_t errlen);
void op_adopt(struct op *op);
void op_refresh_checkpoint(struct op *op);
json_t *op_to_json(struct op *op, bool with_spec);
bool op_resumable(const struct op *op);
bool op_live(const struct op *op);
int op_submit(const char *body, size_t len, const char *idem, struct op **out, bool *replay,
	      char *err, size_t errlen);
void hooks_reap(pid_t pid, int status);
void run_hook(struct op *op, char **argv, const char *what, const char *old_pid,
	      const char *new_pid);
int cleanup_run(int64_t max_age_days, json_t **result);
json_t *checkpoints_stats(void);
json_t *checkpoints_of(struct op *op);
const struct run_summary *run_summary(struct op *op);
void runs_summary(int64_t *committed, int64_t *size_bytes, double *oldest);

/* ops.c, for rdzv.c: a gang across hosts */
void op_fail(struct op *op, const char *reason);
void op_gang_restart(struct op *op, const char *reason, int64_t bad_step, double bad_since);
int op_gang_choose(struct op *op, int64_t bad_step, double bad_since, char *path, size_t len,
		   char *note, size_t notelen, int64_t *delay_ms, char *fail, size_t faillen);
void op_gang_start(struct op *op, const char *resume, int port, const char *addr, int64_t delay_ms,
		   const char *note);
void op_gang_waiting(struct op *op, const char *reason);

/* rdzv.c: a gang across hosts, through etcd (docs/ranks.md "Many hosts") */
int rdzv_open(struct op *op);
void rdzv_free(struct op *op);
void rdzv_run_dir(const struct op *op, char *buf, size_t len);
int rdzv_check(struct op *op, char *err, size_t errlen);
int rdzv_fd(const struct op *op);
void rdzv_tick(struct op *op, double now, double *next);
void rdzv_on_watch(struct op *op, double now, double *next);
void rdzv_fault(struct op *op, const char *reason, int64_t bad_step, double bad_since);
void rdzv_join(struct op *op);
void rdzv_resume(struct op *op);
void rdzv_end(struct op *op);

/* gpus.c */
void gpus_init(void);
int gpus_free(void);
int gpus_check(int64_t want, char *err, size_t errlen);
int gpus_take(struct op *op);
int gpus_hold(struct op *op, const int *ids, int n);
void gpus_release(struct op *op);
void gpus_adopt(void);
size_t gpus_queue(double now, struct op ***out);
json_t *gpus_json(void);
json_t *gpus_of(const struct op *op);

/* api.c */
struct MHD_Daemon *api_daemon(int fd, bool tcp);
int api_start(int unix_fd);
int api_tcp_start(int port);
void api_stop(void);
int api_epoll_fd(struct MHD_Daemon *d);
struct MHD_Response;
int api_queue(struct MHD_Connection *c, unsigned status, struct MHD_Response *r);
void api_run(void);
int64_t api_timeout_ms(void);

/* mount.c */
int mount_ensure(void);

#endif /* CKPTD_I_H */
