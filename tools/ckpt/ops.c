// SPDX-License-Identifier: MIT
/*
 * ops.c - `ckpt ops list|status|resume|cancel|logs|events` (SPEC §6), over
 * ckptd's /api/v1/operations endpoints. The list is the operations guide's
 * table (OPERATION_ID STATUS PROGRESS CHECKPOINT AGE, then a total line);
 * --json prints what ckptd answered.
 */
#include "ckpt.h"
#include "render.h"

#include <ctype.h>
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char ops_help[] =
	"usage: ckpt ops list [--status S] [--resumable] [--json]\n"
	"       ckpt ops status ID [--json]\n"
	"       ckpt ops resume ID\n"
	"       ckpt ops cancel ID\n"
	"       ckpt ops logs ID [--rank K] [--follow] [--json]\n"
	"       ckpt ops events ID [--follow] [--json]\n"
	"       ckpt ops metrics ID [--resolution step|30s|5m|1h] [--csv|--json]\n"
	"\n"
	"list    operations as a table: OPERATION_ID STATUS PROGRESS CHECKPOINT AGE\n"
	"        --status S    only PENDING, RUNNING, RECOVERING, COMPLETED, FAILED or CANCELLED\n"
	"        --resumable   only CANCELLED or FAILED operations that have a checkpoint\n"
	"status  one operation: state, progress, attempt, checkpoint, how to resume\n"
	"resume  restart a CANCELLED or FAILED operation from its checkpoint\n"
	"cancel  stop an operation; the trainer saves a cancellation checkpoint first\n"
	"logs    the trainer's output; --follow keeps printing until the operation ends;\n"
	"        --rank K: rank K's of a gang (default: the first rank on this host)\n"
	"events  submitted, started, detected, checkpoint_selected, ... ; --follow likewise\n"
	"metrics loss and val_loss per step (a table; a sparkline on a terminal);\n"
	"        see 'ckpt ops metrics --help'\n"
	"\n"
	"Options: --socket PATH, --state-dir DIR, --json, -f/--follow, -h/--help.\n";

static const char *const statuses[] = {"PENDING",   "RUNNING", "RECOVERING",
				       "COMPLETED", "FAILED",  "CANCELLED"};

static int ops_list(struct ckpt_ctx *c, const char *status, bool resumable)
{
	char path[256], st[32] = "";
	json_t *j;
	int rc;

	if (status) {
		size_t i, n = strlen(status);
		if (n >= sizeof(st))
			n = sizeof(st) - 1;
		for (i = 0; i < n; i++)
			st[i] = (char)toupper((unsigned char)status[i]);
		st[n] = '\0';
		for (i = 0; i < sizeof(statuses) / sizeof(statuses[0]); i++)
			if (!strcmp(st, statuses[i]))
				break;
		if (i == sizeof(statuses) / sizeof(statuses[0]))
			return ckpt_usage_err("ops list",
					      "--status '%s' is not a state; use one of PENDING, "
					      "RUNNING, RECOVERING, COMPLETED, FAILED, CANCELLED",
					      status);
	}
	snprintf(path, sizeof(path), "/api/v1/operations%s%s%s%s", st[0] || resumable ? "?" : "",
		 st[0] ? "status=" : "", st,
		 resumable ? (st[0] ? "&resumable=true" : "resumable=true") : "");
	j = ckpt_api_get(c, "listing operations", path, &rc);
	if (!j)
		return rc;
	if (c->json)
		ckpt_json_print(j);
	else
		ckpt_render_ops_list(c, j, stdout);
	json_decref(j);
	return CKPT_EXIT_OK;
}

static int ops_status(struct ckpt_ctx *c, const char *id)
{
	char path[256], what[200];
	json_t *j;
	int rc;

	snprintf(path, sizeof(path), "/api/v1/operations/%s", id);
	snprintf(what, sizeof(what), "operation %s", id);
	j = ckpt_api_get(c, what, path, &rc);
	if (!j)
		return rc;
	if (c->json)
		ckpt_json_print(j);
	else
		ckpt_render_op(
			c, ckpt_jget(j, "operation", NULL) ? ckpt_jget(j, "operation", NULL) : j,
			stdout);
	if (!c->json && c->tty)
		ckpt_status_sparkline(c, id, stdout);
	json_decref(j);
	return CKPT_EXIT_OK;
}

static int ops_post(struct ckpt_ctx *c, const char *id, const char *verb)
{
	struct ckpt_resp r;
	char path[256], what[200];
	int rc = CKPT_EXIT_OK;

	snprintf(path, sizeof(path), "/api/v1/operations/%s/%s", id, verb);
	snprintf(what, sizeof(what), "%s %s", strcmp(verb, "cancel") ? "resuming" : "cancelling",
		 id);
	ckpt_api(c, "POST", path, NULL, NULL, &r);
	if (r.status < 200 || r.status >= 300) {
		rc = ckpt_api_fail(c, what, &r);
	} else if (c->json && r.json) {
		ckpt_json_print(r.json);
	} else if (!strcmp(verb, "cancel")) {
		printf("Cancelling %s: the trainer saves a cancellation checkpoint and stops.\n"
		       "Resume later with: ckpt ops resume %s\n",
		       id, id);
	} else {
		json_t *op = ckpt_jget(r.json, "operation", NULL);
		json_t *cp = ckpt_jget(op ? op : r.json, "checkpoint", NULL);
		char cps[256];
		ckpt_render_checkpoint_cell(cp, cps, sizeof(cps));
		printf("Resuming %s%s%s.\nFollow it with: ckpt ops logs %s --follow\n", id,
		       strcmp(cps, "-") ? " from " : "", strcmp(cps, "-") ? cps : "", id);
	}
	ckpt_resp_free(&r);
	return rc;
}

static bool op_finished(struct ckpt_ctx *c, const char *id, char *status, size_t len)
{
	char path[256];
	struct ckpt_resp r;
	bool done = false;

	snprintf(path, sizeof(path), "/api/v1/operations/%s", id);
	ckpt_api(c, "GET", path, NULL, NULL, &r);
	if (r.status == 200 && r.json) {
		json_t *op = ckpt_jget(r.json, "operation", NULL);
		const char *s = ckpt_jstr(op ? op : r.json, "status");
		if (s) {
			snprintf(status, len, "%s", s);
			done = !strcmp(s, "COMPLETED") || !strcmp(s, "FAILED") ||
			       !strcmp(s, "CANCELLED");
		}
	}
	ckpt_resp_free(&r);
	return done;
}

/* New trainer output since cur->logs (a byte offset; X-Next-Offset moves it). */
static int follow_logs(struct ckpt_ctx *c, const char *id, struct ckpt_cursor *cur, bool follow)
{
	struct ckpt_resp r;
	char path[300], what[200];
	int rc = 0;

	snprintf(path, sizeof(path), "/api/v1/operations/%s/logs?offset=%lld", id, cur->logs);
	if (cur->has_rank)
		snprintf(path + strlen(path), sizeof(path) - strlen(path), "&rank=%d", cur->rank);
	snprintf(what, sizeof(what), "logs of %s", id);
	ckpt_api(c, "GET", path, NULL, NULL, &r);
	if (r.status != 200) {
		rc = ckpt_api_fail(c, what, &r);
		ckpt_resp_free(&r);
		return rc;
	}
	if (c->json && !follow) {
		json_t *j =
			json_pack("{s:s,s:I,s:I,s:s%}", "operation", id, "offset",
				  (json_int_t)cur->logs, "next_offset",
				  (json_int_t)(r.next_offset >= 0 ? r.next_offset
								  : cur->logs + (long long)r.len),
				  "text", r.body ? r.body : "", r.len);
		ckpt_json_print(j);
		json_decref(j);
	} else if (r.len) {
		fwrite(r.body, 1, r.len, stdout);
	}
	cur->logs = r.next_offset >= 0 ? r.next_offset : cur->logs + (long long)r.len;
	ckpt_resp_free(&r);
	return 0;
}

/* New events since cur->events (a seq: the API's after=SEQ). */
static int follow_events(struct ckpt_ctx *c, const char *id, struct ckpt_cursor *cur, bool follow,
			 bool prefix)
{
	char path[300], what[200];
	json_t *j, *items, *it;
	size_t i;
	int rc;

	snprintf(path, sizeof(path), "/api/v1/operations/%s/events?after=%lld", id, cur->events);
	snprintf(what, sizeof(what), "events of %s", id);
	j = ckpt_api_get(c, what, path, &rc);
	if (!j)
		return rc;
	items = json_is_array(j) ? j : ckpt_jget(j, "events", NULL);
	if (c->json && !follow)
		ckpt_json_print(j);
	json_array_foreach(items, i, it)
	{
		json_t *seq = ckpt_jget(it, "seq", NULL);
		if (c->json && follow) {
			/* JSON lines, like events.jsonl */
			char *s = json_dumps(it, JSON_COMPACT | JSON_PRESERVE_ORDER);
			if (s)
				puts(s);
			free(s);
		} else if (!c->json) {
			if (prefix)
				fputs("--> ", stdout);
			ckpt_render_event(c, it, stdout);
		}
		if (json_is_integer(seq) && json_integer_value(seq) > cur->events)
			cur->events = json_integer_value(seq);
	}
	json_decref(j);
	return 0;
}

int ckpt_follow(struct ckpt_ctx *c, const char *id, bool events, bool logs, bool follow,
		struct ckpt_cursor *cur, volatile sig_atomic_t *stop, int stop_above)
{
	char status[32] = "";
	int rc, last_round = 0;

	for (;;) {
		bool done = follow && op_finished(c, id, status, sizeof(status));
		if (logs && (rc = follow_logs(c, id, cur, follow)))
			return rc;
		if (events && (rc = follow_events(c, id, cur, follow, logs)))
			return rc;
		fflush(stdout);
		if (!follow || (stop && *stop > stop_above))
			break;
		/* Read once more after the end so that the last lines are not lost. */
		if (done && last_round++)
			break;
		if (!done)
			usleep(300 * 1000);
	}
	return CKPT_EXIT_OK;
}

int cmd_ops(struct ckpt_ctx *c, int argc, char **argv)
{
	enum { O_STATUS = CKPT_OPT_LOCAL, O_RESUMABLE, O_RANK };
	static const struct option lo[] = {
		CKPT_COMMON_LONGOPTS,
		{"status", required_argument, NULL, O_STATUS},
		{"resumable", no_argument, NULL, O_RESUMABLE},
		{"rank", required_argument, NULL, O_RANK},
		{"follow", no_argument, NULL, 'f'},
		{NULL, 0, NULL, 0},
	};
	const char *status = NULL, *sub, *id;
	bool resumable = false, follow = false;
	int opt, rank = -1;

	/* `ops metrics` has options of its own (metrics.c) */
	for (int i = 1; i < argc && argv[i][0] == '-'; i++)
		if (!strcmp(argv[i], "--socket") || !strcmp(argv[i], "--state-dir") ||
		    !strcmp(argv[i], "--mount"))
			i++;
		else if (i + 1 < argc && !strcmp(argv[i + 1], "metrics")) {
			memmove(argv + i + 1, argv + i + 2, (size_t)(argc - i - 2) * sizeof(*argv));
			return ckpt_ops_metrics(c, argc - 1, argv);
		}
	if (argc > 1 && !strcmp(argv[1], "metrics"))
		return ckpt_ops_metrics(c, argc - 1, argv + 1);
	while ((opt = getopt_long(argc, argv, "hqf", lo, NULL)) != -1) {
		if (ckpt_common_opt(c, opt, optarg))
			continue;
		switch (opt) {
		case 'h':
			fputs(ops_help, stdout);
			return CKPT_EXIT_OK;
		case O_STATUS:
			status = optarg;
			break;
		case O_RESUMABLE:
			resumable = true;
			break;
		case O_RANK:
			rank = (int)ckpt_parse_count("ops", "--rank", optarg, 1 << 20);
			if (rank < 0)
				return CKPT_EXIT_USAGE;
			break;
		case 'f':
			follow = true;
			break;
		default:
			return ckpt_bad_opt("ops", opt, argv);
		}
	}
	if (optind >= argc)
		return ckpt_usage_err("ops", "say what to do: list, status, resume, cancel, logs, "
					     "events or metrics");
	sub = argv[optind++];
	if (!strcmp(sub, "list")) {
		if (optind < argc)
			return ckpt_usage_err("ops", "'ops list' takes no argument, got '%s'",
					      argv[optind]);
		if (follow)
			return ckpt_usage_err("ops",
					      "--follow goes with 'ops logs' or 'ops events'");
		return ops_list(c, status, resumable);
	}
	if (strcmp(sub, "status") && strcmp(sub, "resume") && strcmp(sub, "cancel") &&
	    strcmp(sub, "logs") && strcmp(sub, "events")) {
		static const char *const subs[] = {"list", "status", "resume",	"cancel",
						   "logs", "events", "metrics", NULL};
		char dym[64];

		return ckpt_usage_err("ops",
				      "'%s' is not an ops command.%s Use list, status, resume, "
				      "cancel, logs, events or metrics.",
				      sub, ckpt_did_you_mean(dym, sizeof(dym), sub, subs));
	}
	if (status || resumable)
		return ckpt_usage_err("ops", "--status and --resumable go with 'ops list'");
	if (optind >= argc)
		return ckpt_usage_err("ops", "'ops %s' needs an operation id (see 'ckpt ops list')",
				      sub);
	id = argv[optind++];
	if (optind < argc)
		return ckpt_usage_err("ops", "unexpected argument '%s' after the id", argv[optind]);
	if (!ckpt_id_valid(id))
		return ckpt_usage_err("ops",
				      "'%s' is not an operation id; ids look like "
				      "op_training_20261122_100000_1a2b3c (see 'ckpt ops list')",
				      id);
	if (follow && strcmp(sub, "logs") && strcmp(sub, "events"))
		return ckpt_usage_err("ops", "--follow goes with 'ops logs' or 'ops events'");
	if (rank >= 0 && strcmp(sub, "logs"))
		return ckpt_usage_err("ops", "--rank goes with 'ops logs'");
	if (!strcmp(sub, "status"))
		return ops_status(c, id);
	if (!strcmp(sub, "resume") || !strcmp(sub, "cancel"))
		return ops_post(c, id, sub);
	struct ckpt_cursor cur = {0, 0, rank >= 0, rank};
	return ckpt_follow(c, id, !strcmp(sub, "events"), !strcmp(sub, "logs"), follow, &cur, NULL,
			   0);
}
