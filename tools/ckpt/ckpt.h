/* SPDX-License-Identifier: MIT */
/*
 * ckpt.h - internals of the ckpt CLI (SPEC §6), shared by its files:
 *   main.c         global options, dispatch, top-level help
 *   client.c       HTTP to ckptd over its Unix socket (libcurl), socket discovery
 *   daemon.c       `ckpt daemon status|stop`, starting ckptd in the background
 *   run.c, job.c   `ckpt run`, `ckpt submit`; loading job specs (YAML -> JSON)
 *   ops.c          `ckpt ops ...`
 *   metrics.c      `ckpt ops metrics`, sparklines, `ckpt dashboard`
 *   checkpoints.c  `ckpt checkpoints ...`
 *   mount.c        finding the mounted tree, xattrs, .manifest
 *   store_cmds.c   `ckpt ls|show|commit|policy|gc`
 *   diff.c         `ckpt diff`
 *   verify.c       `ckpt verify`
 *   table.c        tables, ages, sizes, times (the operations guide's formats)
 */
#ifndef CKPT_CLI_H
#define CKPT_CLI_H

#include <getopt.h>
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <time.h>

#include <jansson.h>

#include "ckptfs/isotime.h"

/* Exit codes (SPEC §6). */
enum { CKPT_EXIT_OK = 0, CKPT_EXIT_FAIL = 1, CKPT_EXIT_USAGE = 2 };

/* What every subcommand may be told (global options, also accepted after it). */
struct ckpt_ctx {
	const char *socket;    /* --socket / CKPT_SOCKET; NULL = state dir's */
	const char *state_dir; /* --state-dir / CKPT_STATE_DIR; NULL = default */
	const char *mount;     /* --mount / CKPT_MOUNT; NULL = state dir's mnt/ */
	bool json;	       /* --json */
	bool quiet;	       /* -q */
	bool tty;	       /* stdout is a terminal */
	bool err_tty;	       /* stderr is a terminal (progress bars) */
	time_t now;	       /* "now" for ages; CKPT_NOW overrides for reproducible output */
	char sock_buf[4096 + 16];
	char state_buf[4096]; /* the state dir once found (ckpt_state_dir) */
	bool state_resolved;
	char mount_buf[4096 + 16];
};

/* Long options every subcommand accepts; codes start at CKPT_OPT_BASE. */
enum {
	CKPT_OPT_BASE = 0x1000,
	CKPT_OPT_SOCKET = CKPT_OPT_BASE,
	CKPT_OPT_STATE_DIR,
	CKPT_OPT_MOUNT,
	CKPT_OPT_JSON,
	CKPT_OPT_HELP,
	CKPT_OPT_LOCAL, /* first code free for a subcommand's own options */
};
/* clang-format off */
#define CKPT_COMMON_LONGOPTS \
	{"socket", required_argument, NULL, CKPT_OPT_SOCKET}, \
	{"state-dir", required_argument, NULL, CKPT_OPT_STATE_DIR}, \
	{"mount", required_argument, NULL, CKPT_OPT_MOUNT}, \
	{"json", no_argument, NULL, CKPT_OPT_JSON}, \
	{"help", no_argument, NULL, 'h'}, \
	{"quiet", no_argument, NULL, 'q'}
/* clang-format on */

/* Handle a common option (returns 1 when it was one, 0 otherwise). */
int ckpt_common_opt(struct ckpt_ctx *c, int opt, const char *arg);

/* Messages. All go to stderr and start with "ckpt: ". */
void ckpt_err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* A usage error for `cmd`: prints the message and a pointer to --help; returns 2. */
int ckpt_usage_err(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The message for an unknown option / missing argument that getopt saw. */
int ckpt_bad_opt(const char *cmd, int opt, char **argv);

/* " Did you mean 'status'?" when `word` is a typo of one of `cands`
 * (NULL-terminated): one candidate within an edit distance of 2 (1 for
 * words of up to 4 letters; a swap of two letters is one edit), or the one
 * candidate it is a prefix of. Otherwise "". Returns buf. */
const char *ckpt_did_you_mean(char *buf, size_t len, const char *word, const char *const *cands);

/* Parse a non-negative integer option value; prints a usage error and returns -1 on junk. */
long long ckpt_parse_count(const char *cmd, const char *opt, const char *val, long long max);
/* Operation ids as ckptd makes them: op_KIND_YYYYMMDD_HHMMSS_xxxxxx. */
bool ckpt_id_valid(const char *id);

/* ---- state dir, socket (client.c) ---- */
const char *ckpt_state_dir(struct ckpt_ctx *c);
const char *ckpt_socket_path(struct ckpt_ctx *c);
/* True when the socket was named explicitly (--socket / CKPT_SOCKET). */
bool ckpt_socket_explicit(const struct ckpt_ctx *c);

/* ---- HTTP (client.c) ---- */
struct ckpt_resp {
	long status;  /* HTTP status; 0 when ckptd could not be reached */
	json_t *json; /* parsed body, or NULL */
	char *body;   /* raw body, NUL-terminated */
	size_t len;
	long long next_offset; /* X-Next-Offset, -1 when absent */
	char err[512];	       /* transport error when status == 0 */
};
/* One request. body may be NULL. Returns 0 when an HTTP answer came back
 * (any status), -ECONNREFUSED/-ENOENT/... when ckptd could not be reached. */
int ckpt_api(struct ckpt_ctx *c, const char *method, const char *path, json_t *body,
	     const char *idem_key, struct ckpt_resp *r);
void ckpt_resp_free(struct ckpt_resp *r);
/* Report a failed request to the user ("what, why, what to do"); returns 1. */
int ckpt_api_fail(struct ckpt_ctx *c, const char *what, const struct ckpt_resp *r);
/* GET path; on any failure report it and return NULL. */
json_t *ckpt_api_get(struct ckpt_ctx *c, const char *what, const char *path, int *rc);
/* URL-encode `s` into a new string. */
char *ckpt_urlenc(const char *s);
void ckpt_client_global_init(void);
void ckpt_client_global_cleanup(void);

/* ---- daemon.c ---- */
/* Make sure a ckptd answers; start one in the background if none does (and
 * say so on stderr). Returns 0 or 1 (after printing why). */
int ckpt_daemon_ensure(struct ckpt_ctx *c);
int cmd_daemon(struct ckpt_ctx *c, int argc, char **argv);

/* ---- job.c ---- */
/* Load a job spec file (YAML or JSON) as JSON; on error prints it, returns NULL. */
json_t *ckpt_job_load(const char *path);
/* Apply one --set key.path=value (value parsed as a YAML scalar). */
int ckpt_job_set(json_t *job, const char *assign);
/* A YAML scalar as JSON (null, bool, integer, real or string). */
json_t *ckpt_yaml_scalar(const char *s, bool quoted);

/* ---- subcommands ---- */
int cmd_run(struct ckpt_ctx *c, int argc, char **argv);
int cmd_submit(struct ckpt_ctx *c, int argc, char **argv);
int cmd_ops(struct ckpt_ctx *c, int argc, char **argv);
int cmd_checkpoints(struct ckpt_ctx *c, int argc, char **argv);
int cmd_ls(struct ckpt_ctx *c, int argc, char **argv);
int cmd_show(struct ckpt_ctx *c, int argc, char **argv);
int cmd_verify(struct ckpt_ctx *c, int argc, char **argv);
int cmd_diff(struct ckpt_ctx *c, int argc, char **argv);
int cmd_commit(struct ckpt_ctx *c, int argc, char **argv);
int cmd_gc(struct ckpt_ctx *c, int argc, char **argv);
int cmd_policy(struct ckpt_ctx *c, int argc, char **argv);
int cmd_dashboard(struct ckpt_ctx *c, int argc, char **argv);

/* ---- metrics.c ---- */
/* `ckpt ops metrics ID ...` (argv[0] is "metrics"'s caller, its options follow). */
int ckpt_ops_metrics(struct ckpt_ctx *c, int argc, char **argv);
/* The "Loss:" sparkline line of `ckpt ops status` (prints nothing without losses). */
void ckpt_status_sparkline(struct ckpt_ctx *c, const char *id, FILE *f);
/* `n` values (NAN = none) as at most `width` block characters. */
void ckpt_sparkline(FILE *f, const double *v, size_t n, int width);

/* Print an operation's events and/or logs once, or follow them until the
 * operation ends or *stop exceeds stop_above (ops.c; used by run). The cursor
 * carries the positions from one call to the next. */
struct ckpt_cursor {
	long long events, logs;
	bool has_rank; /* logs of this rank of a gang, else its first here */
	int rank;
};
int ckpt_follow(struct ckpt_ctx *c, const char *id, bool events, bool logs, bool follow,
		struct ckpt_cursor *cur, volatile sig_atomic_t *stop, int stop_above);

/* ---- mount.c ---- */
/* The mounted tree's root; NULL (after printing why and what to do) when the
 * store is not mounted there. */
const char *ckpt_mount_root(struct ckpt_ctx *c);
/* Resolve a user's PATH (RUN, RUN/VERSION, an absolute/relative path into the
 * mount) to a filesystem path; NULL after printing why. */
char *ckpt_mount_resolve(struct ckpt_ctx *c, const char *arg);
/* getxattr as a NUL-terminated string; NULL with errno set when absent. */
char *ckpt_xattr_get(const char *path, const char *name);
/* The .manifest of a version directory, parsed; NULL after printing why. */
json_t *ckpt_manifest_load(const char *vdir);
/* True when `path` is a version directory (has user.ckpt.state). */
bool ckpt_is_version(const char *path);
/* What a path in the mount is. */
enum ckpt_kind { CKPT_K_ROOT, CKPT_K_RUN, CKPT_K_VERSION, CKPT_K_OTHER };
enum ckpt_kind ckpt_path_kind(const char *path);
/* The last component of a path. */
const char *ckpt_basename(const char *p);
/* getopt for commands with only the common options: returns optind, or
 * -1000 after printing help, or -(exit code) on a bad option. */
int ckpt_simple_opts(struct ckpt_ctx *c, const char *cmd, const char *help, int argc, char **argv);
/* The exit code for a negative ckpt_simple_opts() answer. */
static inline int ckpt_opts_rc(int r)
{
	return r == -1000 ? CKPT_EXIT_OK : -r;
}
/* The regular files of a manifest: a new array of objects with "path",
 * "size", "xxh128" and (when listed) "chunks": [[hex, len], ...]. */
json_t *ckpt_manifest_files(json_t *m);
/* The symlinks of a manifest (type "symlink"), and one's target: its bytes
 * into buf (no NUL), the length, or -1 (none, too long, bad hex). */
json_t *ckpt_manifest_symlinks(json_t *m);
int ckpt_link_target(json_t *f, char *buf, size_t len);

/* ---- table.c ---- */
/* "2d", "3h", "5m", "12s" (the guide's AGE column). */
void ckpt_fmt_age_short(char *buf, size_t len, time_t now, time_t t);
/* "2 days", "3 hours", "1 minute" (the guide's "Age:" line). */
void ckpt_fmt_age_long(char *buf, size_t len, time_t now, time_t t);
/* "1.5 GiB", "512 B" */
void ckpt_fmt_bytes(char *buf, size_t len, uint64_t n);
/* A number as the guide prints it (0.28, 0.001, 3e-05): %g with enough digits. */
void ckpt_fmt_num(char *buf, size_t len, double v);

/* A simple left-aligned text table: each column at least its minimum width,
 * and always 2 spaces wider than its longest cell. */
struct ckpt_table {
	size_t ncols, nrows, cap;
	const char **head;
	const int *minw;
	char **cells; /* nrows * ncols, owned */
};
void ckpt_table_init(struct ckpt_table *t, size_t ncols, const char **head, const int *minw);
void ckpt_table_add(struct ckpt_table *t, ...); /* ncols strings */
void ckpt_table_print(struct ckpt_table *t, FILE *f);
void ckpt_table_free(struct ckpt_table *t);

/* json helpers: the first of the keys that is present (NULL-terminated list). */
json_t *ckpt_jget(json_t *o, ...) __attribute__((sentinel));
/* A string field or NULL. */
const char *ckpt_jstr(json_t *o, const char *key);
/* Dump JSON (indented, key order preserved) to stdout with a newline. */
void ckpt_json_print(json_t *j);

/* A progress bar on stderr when it is a TTY. */
void ckpt_progress(struct ckpt_ctx *c, const char *what, uint64_t done, uint64_t total);
void ckpt_progress_end(struct ckpt_ctx *c);

/* For work that reports no fraction (gc through the mount is one setxattr,
 * cleanup one request): on a TTY stderr, "WHAT  | 3 s" at once and then
 * redrawn by a thread several times a second with the time spent, until
 * ckpt_busy_end() clears the line. Nothing otherwise, or with -q/--json. */
struct ckpt_busy;
struct ckpt_busy *ckpt_busy_start(struct ckpt_ctx *c, const char *what);
void ckpt_busy_end(struct ckpt_busy *b);

#endif /* CKPT_CLI_H */
