// SPDX-License-Identifier: MIT
/*
 * events.c - the events of SPEC §5: one JSON object per event with time,
 * operation, attempt and reason, stored in ckptd.db (the source of truth for
 * the API) and appended to events.jsonl (for people and log shippers).
 * Callers that change an operation's state emit inside the same transaction,
 * so an event exists exactly when its state change does. A gang's events
 * also carry `host` (this ckptd's) and `rank` (the rank it is about, or
 * null for the whole gang).
 */
#include "ckptd_i.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void event_emit(struct op *op, const char *event, const char *reason, const char *checkpoint,
		int64_t step, int64_t delay_ms, pid_t pid)
{
	event_emit_rank(op, NULL, event, reason, checkpoint, step, delay_ms, pid);
}

void event_emit_rank(struct op *op, const struct rank *r, const char *event, const char *reason,
		     const char *checkpoint, int64_t step, int64_t delay_ms, pid_t pid)
{
	char ts[40], *line;
	int64_t seq = 0;
	json_t *ev;

	iso_time(now_s(), ts, sizeof(ts));
	ev = json_pack("{ss ss si ss}", "time", ts, "operation", op->id, "attempt", op->attempt,
		       "event", event);
	if (!ev)
		return;
	json_object_set_new(ev, "reason", reason && reason[0] ? json_string(reason) : json_null());
	json_object_set_new(ev, "checkpoint",
			    checkpoint && checkpoint[0] ? json_string(checkpoint) : json_null());
	json_object_set_new(ev, "step", step >= 0 ? json_integer(step) : json_null());
	json_object_set_new(ev, "delay_ms", delay_ms >= 0 ? json_integer(delay_ms) : json_null());
	json_object_set_new(ev, "pid", pid > 0 ? json_integer(pid) : json_null());
	if (op->gang) { /* SPEC §9: events name the rank and the host */
		json_object_set_new(ev, "rank", r ? json_integer(r->rank) : json_null());
		json_object_set_new(ev, "host", json_string(g.host));
	}
	if (db_insert_event(ev, &seq) < 0)
		ckptd_log("operation %s: could not store event %s", op->id, event);
	json_object_set_new(ev, "seq", json_integer(seq));
	g.n_events++;
	line = json_dumps(ev, JSON_COMPACT | JSON_PRESERVE_ORDER);
	if (line && g.events_fd >= 0) {
		size_t n = strlen(line);

		line[n] = '\n'; /* replaces the NUL; written with its length */
		if (write(g.events_fd, line, n + 1) < 0)
			ckptd_log("cannot append to events.jsonl; events stay in ckptd.db");
	}
	free(line);
	if (r)
		ckptd_log("operation %s attempt %d rank %d: %s%s%s", op->id, op->attempt, r->rank,
			  event, reason && reason[0] ? ": " : "", reason ? reason : "");
	else
		ckptd_log("operation %s attempt %d: %s%s%s", op->id, op->attempt, event,
			  reason && reason[0] ? ": " : "", reason ? reason : "");
	json_decref(ev);
}
