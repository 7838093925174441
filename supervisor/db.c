// SPDX-License-Identifier: MIT
/*
 * db.c - ckptd.db: operations, events, idempotency keys, metric windows and
 * per-step metrics in SQLite (WAL, synchronous=FULL so a committed state change survives a
 * power cut; metrics_tick's steps and progress commit with NORMAL, db_relaxed()). Every state change is one transaction; the resume claim is a
 * single conditional UPDATE so two resumes cannot both win.
 */
#include "ckptd_i.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/*
 * The schema is versioned with PRAGMA user_version: migrations[i] takes a
 * database from version i to i + 1, in one transaction together with the
 * version bump, so a crash mid-migration leaves the previous version whole.
 * Append new migrations at the end; never edit one that has landed (a
 * database somewhere is already past it).
 *
 * Version 0 is what ckptd wrote before versioning existed: migration 1 is that
 * very schema with IF NOT EXISTS, so it creates a fresh database and is a
 * no-op on an old one, which then just gets its version.
 */
static const char *const migrations[] = {
	/* 1: operations, events, metric windows */
	"CREATE TABLE IF NOT EXISTS operations ("
	" id TEXT PRIMARY KEY, project_id TEXT, name TEXT, status INTEGER, stage INTEGER,"
	" spec TEXT, attempt INTEGER, round_start INTEGER, recoveries INTEGER, reason TEXT,"
	" exit_code INTEGER, exit_signal INTEGER, run_dir TEXT, checkpoint TEXT,"
	" resume_from TEXT, pinned TEXT, skip_batches INTEGER, created REAL, updated REAL,"
	" finished REAL, not_before REAL, restart_at REAL, cancel_requested INTEGER,"
	" bad_step INTEGER, bad_since REAL, shim_pid INTEGER, shim_start INTEGER,"
	" trainer_pid INTEGER, step INTEGER, epoch INTEGER, loss REAL, val_loss REAL,"
	" idem_key TEXT UNIQUE, last_seen TEXT);"
	"CREATE TABLE IF NOT EXISTS events ("
	" seq INTEGER PRIMARY KEY AUTOINCREMENT, operation TEXT, body TEXT);"
	"CREATE INDEX IF NOT EXISTS events_op ON events(operation, seq);"
	"CREATE TABLE IF NOT EXISTS metrics ("
	" operation TEXT, start INTEGER, count INTEGER, step INTEGER, loss_sum REAL,"
	" loss_min REAL, loss_max REAL, val_loss REAL, PRIMARY KEY(operation, start));",

	/* 2: cron chains (each operation starts at most one successor, so a
	 * schedule never submits two operations for one fire time), and the
	 * versions that have their checkpoint_committed event (exactly one each),
	 * filled from the events already stored */
	"ALTER TABLE operations ADD COLUMN scheduled_by TEXT;"
	"ALTER TABLE operations ADD COLUMN fire_at REAL;"
	"CREATE UNIQUE INDEX operations_scheduled_by ON operations(scheduled_by);"
	"CREATE TABLE committed_versions ("
	" operation TEXT, path TEXT, PRIMARY KEY(operation, path));"
	"INSERT OR IGNORE INTO committed_versions SELECT operation,"
	" json_extract(body, '$.checkpoint') FROM events"
	" WHERE json_extract(body, '$.event') = 'checkpoint_committed'"
	" AND json_extract(body, '$.checkpoint') IS NOT NULL;"
	"UPDATE operations SET fire_at = not_before"
	" WHERE json_extract(spec, '$.schedule.cron') IS NOT NULL;",
	/* 3: every reported step of the recent history (metrics.c); a step that
	 * a later attempt trains again is a row of its own */
	"CREATE TABLE metric_steps ("
	" operation TEXT NOT NULL, attempt INTEGER NOT NULL, step INTEGER NOT NULL,"
	" epoch INTEGER, loss REAL, val_loss REAL, nonfinite TEXT, time REAL NOT NULL,"
	" PRIMARY KEY(operation, attempt, step)) WITHOUT ROWID;",

	/* 4: the GPUs an operation holds ("0,3", NULL for none) and its place
	 * in the queue for them (NULL: its creation time) */
	"ALTER TABLE operations ADD COLUMN gpus TEXT;"
	"ALTER TABLE operations ADD COLUMN queued REAL;",
};

#define N_MIGRATIONS ((int)(sizeof(migrations) / sizeof(migrations[0])))

int db_schema_version(void)
{
	sqlite3_stmt *st;
	int v = -1;

	if (sqlite3_prepare_v2(g.db, "PRAGMA user_version", -1, &st, NULL) != SQLITE_OK)
		return -1;
	if (sqlite3_step(st) == SQLITE_ROW)
		v = sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	return v;
}

static bool db_empty(void)
{
	sqlite3_stmt *st;
	bool empty = false;

	if (sqlite3_prepare_v2(g.db, "SELECT count(*) FROM sqlite_master", -1, &st, NULL) !=
	    SQLITE_OK)
		return false;
	if (sqlite3_step(st) == SQLITE_ROW)
		empty = sqlite3_column_int(st, 0) == 0;
	sqlite3_finalize(st);
	return empty;
}

static int migrate(const char *path)
{
	int have = db_schema_version();
	bool fresh = db_empty();

	if (have < 0) {
		ckptd_log("cannot read the schema version of %s: %s", path, sqlite3_errmsg(g.db));
		return -EIO;
	}
	if (have > N_MIGRATIONS) {
		ckptd_log("the database %s has schema version %d, newer than this ckptd knows "
			  "(%d): it was written by a newer ckptd; run that one, or move the "
			  "database aside to start afresh",
			  path, have, N_MIGRATIONS);
		return -EPROTO;
	}
	for (int v = have; v < N_MIGRATIONS; v++) {
		char *msg = NULL, bump[48];

		snprintf(bump, sizeof(bump), "PRAGMA user_version = %d", v + 1);
		if (sqlite3_exec(g.db, "BEGIN IMMEDIATE", NULL, NULL, &msg) != SQLITE_OK ||
		    sqlite3_exec(g.db, migrations[v], NULL, NULL, &msg) != SQLITE_OK ||
		    sqlite3_exec(g.db, bump, NULL, NULL, &msg) != SQLITE_OK ||
		    sqlite3_exec(g.db, "COMMIT", NULL, NULL, &msg) != SQLITE_OK) {
			ckptd_log("cannot migrate the database %s from schema version %d to %d: "
				  "%s; it is left at version %d",
				  path, v, v + 1, msg ? msg : sqlite3_errmsg(g.db), v);
			sqlite3_free(msg);
			sqlite3_exec(g.db, "ROLLBACK", NULL, NULL, NULL);
			return -EIO;
		}
		if (!fresh)
			ckptd_log("database %s: migrated from schema version %d to %d", path, v,
				  v + 1);
	}
	return 0;
}

int db_open(const char *path)
{
	char *msg = NULL;

	if (sqlite3_open_v2(path, &g.db,
			    SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
			    NULL) != SQLITE_OK) {
		ckptd_log("cannot open the database %s: %s; check the state dir's permissions",
			  path, g.db ? sqlite3_errmsg(g.db) : "out of memory");
		return -EIO;
	}
	sqlite3_busy_timeout(g.db, 5000);
	if (sqlite3_exec(g.db,
			 "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;"
			 " PRAGMA foreign_keys=ON;",
			 NULL, NULL, &msg) != SQLITE_OK) {
		ckptd_log("cannot set up the database %s: %s", path, msg ? msg : "?");
		sqlite3_free(msg);
		return -EIO;
	}
	return migrate(path);
}

void db_close(void)
{
	if (g.db)
		sqlite3_close(g.db);
	g.db = NULL;
}

static int exec(const char *sql)
{
	char *msg = NULL;

	if (sqlite3_exec(g.db, sql, NULL, NULL, &msg) != SQLITE_OK) {
		ckptd_log("database: %s failed: %s", sql, msg ? msg : "?");
		sqlite3_free(msg);
		return -EIO;
	}
	return 0;
}

/* Transactions nest: inside another, db_begin is a savepoint, so work that
 * is its own transaction elsewhere (a batch of steps) can also be part of a
 * larger one (metrics_tick's: every operation's once a second, one fsync). */
static int tx_depth;

static int savepoint(const char *verb, int n)
{
	char sql[48];

	snprintf(sql, sizeof(sql), "%s s%d", verb, n);
	return exec(sql);
}

int db_begin(void)
{
	int ret = tx_depth ? savepoint("SAVEPOINT", tx_depth) : exec("BEGIN IMMEDIATE");

	if (ret == 0)
		tx_depth++;
	return ret;
}

/* On failure the transaction stays open for db_rollback(). */
int db_commit(void)
{
	int ret;

	if (tx_depth > 1) {
		ret = savepoint("RELEASE", tx_depth - 1);
		if (ret == 0)
			tx_depth--;
		return ret;
	}
	ret = exec("COMMIT");
	if (ret == 0)
		tx_depth = 0;
	return ret;
}

/* The next transactions' commits do not wait for the disk (PRAGMA
 * synchronous=NORMAL: in WAL mode the commit is in the log, which the next
 * full commit or checkpoint syncs), until db_relaxed(false). Only between
 * transactions. For what a power cut may take back without harm: the step
 * metrics and progress of metrics_tick, once a second, which otherwise were
 * an fsync a second on the loop that answers the API. A kill -9 of ckptd
 * loses nothing more: the log is in the kernel's page cache. */
int db_relaxed(bool on)
{
	if (tx_depth)
		return -EBUSY;
	return exec(on ? "PRAGMA synchronous=NORMAL" : "PRAGMA synchronous=FULL");
}

void db_rollback(void)
{
	if (tx_depth > 1) {
		savepoint("ROLLBACK TO", tx_depth - 1);
		savepoint("RELEASE", tx_depth - 1);
		tx_depth--;
		return;
	}
	exec("ROLLBACK");
	tx_depth = 0;
}

static void bind_text(sqlite3_stmt *st, int i, const char *s)
{
	if (s && s[0])
		sqlite3_bind_text(st, i, s, -1, SQLITE_TRANSIENT);
	else
		sqlite3_bind_null(st, i);
}

static void bind_real(sqlite3_stmt *st, int i, double v, bool have)
{
	if (have && isfinite(v))
		sqlite3_bind_double(st, i, v);
	else
		sqlite3_bind_null(st, i);
}

static int step_done(sqlite3_stmt *st, const char *what)
{
	int rc = sqlite3_step(st);

	sqlite3_finalize(st);
	if (rc != SQLITE_DONE) {
		ckptd_log("database: %s failed: %s", what, sqlite3_errmsg(g.db));
		return rc == SQLITE_CONSTRAINT ? -EEXIST : -EIO;
	}
	return 0;
}

#define OP_COLS                                                                                    \
	"status=?2, stage=?3, attempt=?4, round_start=?5, recoveries=?6, reason=?7,"               \
	" exit_code=?8, exit_signal=?9, checkpoint=?10, resume_from=?11, pinned=?12,"              \
	" skip_batches=?13, updated=?14, finished=?15, not_before=?16, restart_at=?17,"            \
	" cancel_requested=?18, bad_step=?19, bad_since=?20, shim_pid=?21, shim_start=?22,"        \
	" trainer_pid=?23, step=?24, epoch=?25, loss=?26, val_loss=?27, last_seen=?28,"            \
	" gpus=?29, queued=?30"

static void bind_op(sqlite3_stmt *st, const struct op *op)
{
	sqlite3_bind_text(st, 1, op->id, -1, SQLITE_TRANSIENT);
	sqlite3_bind_int(st, 2, op->status);
	sqlite3_bind_int(st, 3, op->stage);
	sqlite3_bind_int(st, 4, op->attempt);
	sqlite3_bind_int(st, 5, op->round_start);
	sqlite3_bind_int(st, 6, op->recoveries);
	bind_text(st, 7, op->reason);
	sqlite3_bind_int(st, 8, op->exit_code);
	sqlite3_bind_int(st, 9, op->exit_signal);
	bind_text(st, 10, op->checkpoint);
	bind_text(st, 11, op->resume_from);
	bind_text(st, 12, op->pinned);
	sqlite3_bind_int64(st, 13, op->skip_batches);
	sqlite3_bind_double(st, 14, op->updated_at);
	sqlite3_bind_double(st, 15, op->finished_at);
	sqlite3_bind_double(st, 16, op->not_before);
	sqlite3_bind_double(st, 17, op->restart_at);
	sqlite3_bind_int(st, 18, op->cancel_requested);
	sqlite3_bind_int64(st, 19, op->bad_step);
	sqlite3_bind_double(st, 20, op->bad_since);
	/* the first rank's (re-adoption reads every rank's attempt files) */
	sqlite3_bind_int(st, 21, op->nranks ? op->r[0].shim_pid : 0);
	sqlite3_bind_int64(st, 22, op->nranks ? (sqlite3_int64)op->r[0].shim_start : 0);
	sqlite3_bind_int(st, 23, op->nranks ? op->r[0].trainer_pid : 0);
	if (op->have_step)
		sqlite3_bind_int64(st, 24, op->step);
	else
		sqlite3_bind_null(st, 24);
	if (op->have_epoch)
		sqlite3_bind_int64(st, 25, op->epoch);
	else
		sqlite3_bind_null(st, 25);
	bind_real(st, 26, op->loss, op->have_loss);
	bind_real(st, 27, op->val_loss, op->have_val_loss);
	bind_text(st, 28, op->last_seen_version);
	{
		char set[GPU_SET_LEN];

		gpu_set_format(op->gpu_ids, op->gpu_n, set, sizeof(set));
		bind_text(st, 29, set);
	}
	sqlite3_bind_double(st, 30, op->queued_at);
}

int db_save_op(const struct op *op)
{
	sqlite3_stmt *st;

	if (sqlite3_prepare_v2(g.db, "UPDATE operations SET " OP_COLS " WHERE id=?1", -1, &st,
			       NULL) != SQLITE_OK) {
		ckptd_log("database: prepare failed: %s", sqlite3_errmsg(g.db));
		return -EIO;
	}
	bind_op(st, op);
	return step_done(st, "saving an operation");
}

int db_insert_op(const struct op *op, const char *idem_key)
{
	sqlite3_stmt *st;
	int ret;

	if (sqlite3_prepare_v2(
		    g.db,
		    "INSERT INTO operations (id, project_id, name, spec, run_dir, created,"
		    " idem_key, scheduled_by, fire_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
		    -1, &st, NULL) != SQLITE_OK)
		return -EIO;
	sqlite3_bind_text(st, 1, op->id, -1, SQLITE_TRANSIENT);
	bind_text(st, 2, op->spec.project_id);
	bind_text(st, 3, op->spec.name);
	bind_text(st, 4, op->spec_json);
	bind_text(st, 5, op->run_dir);
	sqlite3_bind_double(st, 6, op->created_at);
	bind_text(st, 7, idem_key);
	bind_text(st, 8, op->scheduled_by);
	bind_real(st, 9, op->fire_at, op->fire_at > 0);
	ret = step_done(st, "inserting an operation");
	return ret ? ret : db_save_op(op);
}

int db_find_idem(const char *key, char *id, size_t len)
{
	sqlite3_stmt *st;
	int ret = -ENOENT;

	if (sqlite3_prepare_v2(g.db, "SELECT id FROM operations WHERE idem_key=?1", -1, &st,
			       NULL) != SQLITE_OK)
		return -EIO;
	sqlite3_bind_text(st, 1, key, -1, SQLITE_TRANSIENT);
	if (sqlite3_step(st) == SQLITE_ROW) {
		snprintf(id, len, "%s", (const char *)sqlite3_column_text(st, 0));
		ret = 0;
	}
	sqlite3_finalize(st);
	return ret;
}

/* The stored spec of operation `id` (malloc'ed), or NULL. */
char *db_op_spec(const char *id)
{
	sqlite3_stmt *st;
	char *s = NULL;

	if (sqlite3_prepare_v2(g.db, "SELECT spec FROM operations WHERE id=?1", -1, &st, NULL) !=
	    SQLITE_OK)
		return NULL;
	sqlite3_bind_text(st, 1, id, -1, SQLITE_TRANSIENT);
	if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_text(st, 0))
		s = strdup((const char *)sqlite3_column_text(st, 0));
	sqlite3_finalize(st);
	return s;
}

static void col_text(sqlite3_stmt *st, int i, char *dst, size_t len)
{
	const unsigned char *s = sqlite3_column_text(st, i);

	snprintf(dst, len, "%s", s ? (const char *)s : "");
}

static void col_str(sqlite3_stmt *st, int i, char **dst)
{
	const unsigned char *s = sqlite3_column_text(st, i);

	op_set_str(dst, s ? (const char *)s : "");
}

int db_load_ops(void)
{
	sqlite3_stmt *st;
	int rc;

	if (sqlite3_prepare_v2(
		    g.db,
		    "SELECT id, status, stage, spec, attempt, round_start, recoveries,"
		    " reason, exit_code, exit_signal, run_dir, checkpoint, resume_from,"
		    " pinned, skip_batches, created, updated, finished, not_before,"
		    " restart_at, cancel_requested, bad_step, bad_since, shim_pid,"
		    " shim_start, trainer_pid, step, epoch, loss, val_loss, last_seen,"
		    " scheduled_by, fire_at, gpus, queued FROM operations ORDER BY created",
		    -1, &st, NULL) != SQLITE_OK)
		return -EIO;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct op *op = op_new();
		int ids[GPU_MAX], nids = 0;
		char err[512];

		if (!op)
			break;
		col_text(st, 0, op->id, sizeof(op->id));
		op->status = (enum op_status)sqlite3_column_int(st, 1);
		op->stage = (enum op_stage)sqlite3_column_int(st, 2);
		op->spec_json =
			strdup(sqlite3_column_text(st, 3) ? (const char *)sqlite3_column_text(st, 3)
							  : "{}");
		op->attempt = sqlite3_column_int(st, 4);
		op->round_start = sqlite3_column_int(st, 5);
		op->recoveries = sqlite3_column_int(st, 6);
		col_text(st, 7, op->reason, sizeof(op->reason));
		op->exit_code = sqlite3_column_int(st, 8);
		op->exit_signal = sqlite3_column_int(st, 9);
		col_str(st, 10, &op->run_dir);
		col_str(st, 11, &op->checkpoint);
		col_str(st, 12, &op->resume_from);
		col_str(st, 13, &op->pinned);
		op->skip_batches = sqlite3_column_int64(st, 14);
		op->created_at = sqlite3_column_double(st, 15);
		op->updated_at = sqlite3_column_double(st, 16);
		op->finished_at = sqlite3_column_double(st, 17);
		op->not_before = sqlite3_column_double(st, 18);
		op->restart_at = sqlite3_column_double(st, 19);
		op->cancel_requested = sqlite3_column_int(st, 20);
		op->bad_step = sqlite3_column_int64(st, 21);
		op->bad_since = sqlite3_column_double(st, 22);
		op->have_step = sqlite3_column_type(st, 26) != SQLITE_NULL;
		op->step = sqlite3_column_int64(st, 26);
		op->have_epoch = sqlite3_column_type(st, 27) != SQLITE_NULL;
		op->epoch = sqlite3_column_int64(st, 27);
		op->have_loss = sqlite3_column_type(st, 28) != SQLITE_NULL;
		op->loss = sqlite3_column_double(st, 28);
		op->have_val_loss = sqlite3_column_type(st, 29) != SQLITE_NULL;
		op->val_loss = sqlite3_column_double(st, 29);
		col_text(st, 30, op->last_seen_version, sizeof(op->last_seen_version));
		col_text(st, 31, op->scheduled_by, sizeof(op->scheduled_by));
		op->fire_at = sqlite3_column_double(st, 32);
		if (gpu_set_parse((const char *)sqlite3_column_text(st, 33), ids, GPU_MAX, &nids) <
		    0) {
			ckptd_log("operation %s: its stored GPU set '%s' is not valid; it holds "
				  "none",
				  op->id, (const char *)sqlite3_column_text(st, 33));
			nids = 0;
		}
		gpus_hold(op, ids, nids);
		op->queued_at = sqlite3_column_type(st, 34) == SQLITE_NULL
					? op->created_at
					: sqlite3_column_double(st, 34);
		if (op_load_spec(op, err, sizeof(err))) {
			ckptd_log("operation %s: its stored spec no longer loads (%s); marking it "
				  "FAILED",
				  op->id, err);
			op->status = OP_FAILED;
			snprintf(op->reason, sizeof(op->reason), "stored spec invalid: %.400s",
				 err);
		}
		op_spec_drop(op);
		op_link(op);
	}
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? 0 : -EIO;
}

int db_delete_op(const char *id)
{
	sqlite3_stmt *st;

	if (sqlite3_prepare_v2(g.db, "DELETE FROM operations WHERE id=?1", -1, &st, NULL) !=
	    SQLITE_OK)
		return -EIO;
	sqlite3_bind_text(st, 1, id, -1, SQLITE_TRANSIENT);
	return step_done(st, "deleting an operation");
}

/* The state check and the change are one statement: exactly one of two
 * concurrent resumes (even from two processes) sees a changed row. */
int db_resume_claim(const char *id)
{
	sqlite3_stmt *st;
	int rc;

	if (sqlite3_prepare_v2(g.db,
			       "UPDATE operations SET status=?2, updated=?3 WHERE id=?1 AND"
			       " status IN (?4, ?5) AND checkpoint IS NOT NULL",
			       -1, &st, NULL) != SQLITE_OK)
		return -EIO;
	sqlite3_bind_text(st, 1, id, -1, SQLITE_TRANSIENT);
	sqlite3_bind_int(st, 2, OP_PENDING);
	sqlite3_bind_double(st, 3, now_s());
	sqlite3_bind_int(st, 4, OP_CANCELLED);
	sqlite3_bind_int(st, 5, OP_FAILED);
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE)
		return -EIO;
	return sqlite3_changes(g.db) == 1 ? 0 : -EBUSY;
}

/* Whether `path` of operation `id` has its checkpoint_committed event (a
 * read, so the poller costs no write transaction when nothing is new). */
bool db_committed_known(const char *id, const char *path)
{
	sqlite3_stmt *st;
	bool known;

	if (sqlite3_prepare_v2(g.db,
			       "SELECT 1 FROM committed_versions WHERE operation=?1 AND path=?2",
			       -1, &st, NULL) != SQLITE_OK)
		return false;
	sqlite3_bind_text(st, 1, id, -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(st, 2, path, -1, SQLITE_TRANSIENT);
	known = sqlite3_step(st) == SQLITE_ROW;
	sqlite3_finalize(st);
	return known;
}

/* Record that `path` of operation `id` has its checkpoint_committed event:
 * 1 when it is new (emit the event in the same transaction), 0 when it had
 * one already. */
int db_mark_committed(const char *id, const char *path)
{
	sqlite3_stmt *st;
	int ret;

	if (sqlite3_prepare_v2(g.db,
			       "INSERT OR IGNORE INTO committed_versions (operation, path)"
			       " VALUES (?1, ?2)",
			       -1, &st, NULL) != SQLITE_OK)
		return -EIO;
	sqlite3_bind_text(st, 1, id, -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(st, 2, path, -1, SQLITE_TRANSIENT);
	ret = step_done(st, "recording a committed version");
	return ret < 0 ? ret : sqlite3_changes(g.db) == 1;
}

int db_insert_event(json_t *ev, int64_t *seq)
{
	sqlite3_stmt *st;
	char *body;
	int rc;

	if (sqlite3_prepare_v2(g.db, "INSERT INTO events (operation, body) VALUES (?1, ?2)", -1,
			       &st, NULL) != SQLITE_OK)
		return -EIO;
	body = json_dumps(ev, JSON_COMPACT);
	sqlite3_bind_text(st, 1, json_string_value(json_object_get(ev, "operation")), -1,
			  SQLITE_TRANSIENT);
	sqlite3_bind_text(st, 2, body ? body : "{}", -1, SQLITE_TRANSIENT);
	free(body);
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE)
		return -EIO;
	*seq = sqlite3_last_insert_rowid(g.db);
	return 0;
}

json_t *db_events(const char *id, int64_t after, int64_t limit)
{
	sqlite3_stmt *st;
	json_t *arr = json_array();

	if (sqlite3_prepare_v2(g.db,
			       "SELECT seq, body FROM events WHERE operation=?1 AND seq>?2"
			       " ORDER BY seq LIMIT ?3",
			       -1, &st, NULL) != SQLITE_OK)
		return arr;
	sqlite3_bind_text(st, 1, id, -1, SQLITE_TRANSIENT);
	sqlite3_bind_int64(st, 2, after);
	sqlite3_bind_int64(st, 3, limit);
	while (sqlite3_step(st) == SQLITE_ROW) {
		json_t *e = json_loads((const char *)sqlite3_column_text(st, 1), 0, NULL);

		if (!e)
			continue;
		json_object_set_new(e, "seq", json_integer(sqlite3_column_int64(st, 0)));
		json_array_append_new(arr, e);
	}
	sqlite3_finalize(st);
	return arr;
}

int db_metrics_flush(const struct op *op)
{
	sqlite3_stmt *st;

	if (op->win_count == 0 && !op->win_have_val)
		return 0;
	if (sqlite3_prepare_v2(
		    g.db, "INSERT OR REPLACE INTO metrics VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
		    -1, &st, NULL) != SQLITE_OK)
		return -EIO;
	sqlite3_bind_text(st, 1, op->id, -1, SQLITE_TRANSIENT);
	sqlite3_bind_int64(st, 2, op->win_start);
	sqlite3_bind_int64(st, 3, op->win_count);
	sqlite3_bind_int64(st, 4, op->win_step);
	bind_real(st, 5, op->win_sum, op->win_count > 0);
	bind_real(st, 6, op->win_min, op->win_count > 0);
	bind_real(st, 7, op->win_max, op->win_count > 0);
	bind_real(st, 8, op->win_val, op->win_have_val);
	return step_done(st, "saving a metrics window");
}

/* One window of an answer: stored ones summed, and the one in memory. */
struct window {
	int64_t start, count, step;
	double sum, min, max, val;
	bool have_val;
};

static json_t *window_json(const struct window *w)
{
	char ts[40];
	json_t *o;

	iso_time((double)w->start, ts, sizeof(ts));
	o = json_pack("{ss sI sI}", "start", ts, "count", (json_int_t)w->count, "step",
		      (json_int_t)w->step);
	if (w->count > 0) {
		json_object_set_new(o, "loss_mean", json_real(w->sum / (double)w->count));
		json_object_set_new(o, "loss_min", json_real(w->min));
		json_object_set_new(o, "loss_max", json_real(w->max));
	} else {
		json_object_set_new(o, "loss_mean", json_null());
		json_object_set_new(o, "loss_min", json_null());
		json_object_set_new(o, "loss_max", json_null());
	}
	json_object_set_new(o, "val_loss", w->have_val ? json_real(w->val) : json_null());
	return o;
}

/* Windows of `res` seconds, aggregated from the stored 30 s ones and the
 * current 30 s window in memory, which is newer than any stored one and
 * stands for its stored copy (an answer writes nothing: a read of a running
 * operation's metrics was a transaction with an fsync). */
json_t *db_metrics(const struct op *op, int res)
{
	bool cur = op->win_count > 0 || op->win_have_val;
	struct window w, last = {0};
	bool have_last = false;
	sqlite3_stmt *st;
	json_t *arr = json_array();

	if (sqlite3_prepare_v2(
		    g.db,
		    "SELECT (start / ?2) * ?2 AS s, SUM(count), MAX(step), SUM(loss_sum),"
		    " MIN(loss_min), MAX(loss_max),"
		    " (SELECT m2.val_loss FROM metrics m2 WHERE m2.operation=?1 AND"
		    "  m2.start / ?2 = m.start / ?2 AND m2.val_loss IS NOT NULL AND m2.start != ?3"
		    "  ORDER BY m2.start DESC LIMIT 1)"
		    " FROM metrics m WHERE operation=?1 AND start != ?3 GROUP BY s ORDER BY s",
		    -1, &st, NULL) != SQLITE_OK)
		return arr;
	sqlite3_bind_text(st, 1, op->id, -1, SQLITE_TRANSIENT);
	sqlite3_bind_int(st, 2, res);
	/* without a window in memory, the stored one of its start stays */
	sqlite3_bind_int64(st, 3, cur ? op->win_start : INT64_MIN);
	while (sqlite3_step(st) == SQLITE_ROW) {
		w = (struct window){
			.start = sqlite3_column_int64(st, 0),
			.count = sqlite3_column_int64(st, 1),
			.step = sqlite3_column_int64(st, 2),
			.sum = sqlite3_column_double(st, 3),
			.min = sqlite3_column_double(st, 4),
			.max = sqlite3_column_double(st, 5),
			.have_val = sqlite3_column_type(st, 6) != SQLITE_NULL,
			.val = sqlite3_column_double(st, 6),
		};
		if (have_last)
			json_array_append_new(arr, window_json(&last));
		last = w;
		have_last = true;
	}
	sqlite3_finalize(st);
	if (cur) {
		int64_t s = op->win_start / res * res;

		if (have_last && last.start != s) {
			json_array_append_new(arr, window_json(&last));
			have_last = false;
		}
		if (!have_last) {
			last = (struct window){.start = s, .step = op->win_step};
			have_last = true;
		}
		/* the stored windows' losses count only where they have any */
		if (op->win_count > 0) {
			last.min = last.count > 0 ? fmin(last.min, op->win_min) : op->win_min;
			last.max = last.count > 0 ? fmax(last.max, op->win_max) : op->win_max;
			last.sum += op->win_sum;
			last.count += op->win_count;
		}
		if (op->win_step > last.step)
			last.step = op->win_step;
		if (op->win_have_val) {
			last.val = op->win_val;
			last.have_val = true;
		}
	}
	if (have_last)
		json_array_append_new(arr, window_json(&last));
	return arr;
}

/* A batch of reported steps in one transaction (one fsync, not one per
 * step). A step reported twice by one attempt (LOSS, then VAL_LOSS) is one
 * row: the later report fills in what the earlier one lacked. */
int db_steps_write(const char *id, const struct step_point *p, size_t n)
{
	sqlite3_stmt *st;
	int ret = 0;

	if (n == 0)
		return 0;
	if (db_begin() < 0)
		return -EIO;
	if (sqlite3_prepare_v2(
		    g.db,
		    "INSERT INTO metric_steps VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)"
		    " ON CONFLICT(operation, attempt, step) DO UPDATE SET"
		    " epoch=COALESCE(excluded.epoch, epoch), loss=COALESCE(excluded.loss, loss),"
		    " val_loss=COALESCE(excluded.val_loss, val_loss),"
		    " nonfinite=COALESCE(excluded.nonfinite, nonfinite), time=excluded.time",
		    -1, &st, NULL) != SQLITE_OK) {
		ckptd_log("database: prepare failed: %s", sqlite3_errmsg(g.db));
		db_rollback();
		return -EIO;
	}
	for (size_t i = 0; i < n && !ret; i++) {
		sqlite3_reset(st);
		sqlite3_bind_text(st, 1, id, -1, SQLITE_TRANSIENT);
		sqlite3_bind_int(st, 2, p[i].attempt);
		sqlite3_bind_int64(st, 3, p[i].step);
		if (p[i].have_epoch)
			sqlite3_bind_int64(st, 4, p[i].epoch);
		else
			sqlite3_bind_null(st, 4);
		bind_real(st, 5, p[i].loss, p[i].have_loss);
		bind_real(st, 6, p[i].val_loss, p[i].have_val_loss);
		bind_text(st, 7, p[i].nonfinite);
		sqlite3_bind_double(st, 8, p[i].time);
		if (sqlite3_step(st) != SQLITE_DONE) {
			ckptd_log("database: saving step metrics of %s failed: %s", id,
				  sqlite3_errmsg(g.db));
			ret = -EIO;
		}
	}
	sqlite3_finalize(st);
	if (ret || db_commit() < 0) {
		db_rollback();
		return -EIO;
	}
	return 0;
}

int db_steps_prune(const char *id, int64_t upto_step)
{
	sqlite3_stmt *st;

	if (sqlite3_prepare_v2(g.db, "DELETE FROM metric_steps WHERE operation=?1 AND step<=?2", -1,
			       &st, NULL) != SQLITE_OK)
		return -EIO;
	sqlite3_bind_text(st, 1, id, -1, SQLITE_TRANSIENT);
	sqlite3_bind_int64(st, 2, upto_step);
	return step_done(st, "pruning step metrics");
}

/* Steps in report order (attempt, then step). after_attempt < 0: every step
 * above after_step; else the steps after the cursor (after_attempt,
 * after_step), which is how a follower sees a later attempt train steps
 * again. */
int db_steps_query(const char *id, int64_t after_attempt, int64_t after_step,
		   int (*cb)(void *arg, const struct step_point *p), void *arg)
{
	sqlite3_stmt *st;
	int rc = SQLITE_DONE, ret = 0;

	if (sqlite3_prepare_v2(g.db,
			       "SELECT attempt, step, epoch, loss, val_loss, nonfinite, time"
			       " FROM metric_steps WHERE operation=?1 AND"
			       " (CASE WHEN ?2 < 0 THEN step > ?3"
			       "  ELSE attempt > ?2 OR (attempt = ?2 AND step > ?3) END)"
			       " ORDER BY attempt, step",
			       -1, &st, NULL) != SQLITE_OK) {
		ckptd_log("database: prepare failed: %s", sqlite3_errmsg(g.db));
		return -EIO;
	}
	sqlite3_bind_text(st, 1, id, -1, SQLITE_TRANSIENT);
	sqlite3_bind_int64(st, 2, after_attempt);
	sqlite3_bind_int64(st, 3, after_step);
	while (!ret && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct step_point p = {0};
		const unsigned char *nf = sqlite3_column_text(st, 5);

		p.attempt = sqlite3_column_int(st, 0);
		p.step = sqlite3_column_int64(st, 1);
		p.have_epoch = sqlite3_column_type(st, 2) != SQLITE_NULL;
		p.epoch = sqlite3_column_int64(st, 2);
		p.have_loss = sqlite3_column_type(st, 3) != SQLITE_NULL;
		p.loss = sqlite3_column_double(st, 3);
		p.have_val_loss = sqlite3_column_type(st, 4) != SQLITE_NULL;
		p.val_loss = sqlite3_column_double(st, 4);
		snprintf(p.nonfinite, sizeof(p.nonfinite), "%s", nf ? (const char *)nf : "");
		p.time = sqlite3_column_double(st, 6);
		ret = cb(arg, &p);
	}
	if (!ret && rc != SQLITE_DONE)
		ret = -EIO;
	sqlite3_finalize(st);
	return ret;
}
