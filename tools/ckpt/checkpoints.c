// SPDX-License-Identifier: MIT
/*
 * checkpoints.c - `ckpt checkpoints show|delete|stats|cleanup` (SPEC §6) over
 * ckptd's /api/v1/checkpoints endpoints. `show` prints the operations guide's
 * "Checkpoint Details" block; `delete` asks first on a terminal, because a
 * deleted checkpoint can never be resumed from.
 */
#include "ckpt.h"
#include "render.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char cp_help[] =
	"usage: ckpt checkpoints show ID [--json]\n"
	"       ckpt checkpoints delete ID [--force]\n"
	"       ckpt checkpoints stats [--json]\n"
	"       ckpt checkpoints cleanup --max-age-days N [--json]\n"
	"\n"
	"show     the checkpoint of operation ID: type, time, epoch, losses, learning\n"
	"         rate, where its files are, and how to resume\n"
	"delete   delete operation ID's checkpoints; it can no longer be resumed.\n"
	"         Asks for confirmation on a terminal; --force skips the question\n"
	"stats    how many checkpoints, their size, the stored (deduplicated) bytes\n"
	"cleanup  remove checkpoints older than N days and orphaned artifacts\n"
	"\n"
	"Options: --socket PATH, --state-dir DIR, --json, -f/--force, -h/--help.\n";

/* The version's trainer_state.json, when it is readable here (the mount). */
static json_t *load_tstate(json_t *j)
{
	json_t *cp = ckpt_jget(j, "latest", NULL), *arr = ckpt_jget(j, "checkpoints", NULL);
	char path[4200];
	const char *p;

	if (!json_is_object(cp) && json_is_array(arr))
		cp = json_array_get(arr, 0);
	p = ckpt_jstr(cp, "path");
	if (!p)
		return NULL;
	snprintf(path, sizeof(path), "%s/trainer_state.json", p);
	return json_load_file(path, 0, NULL);
}

static int cp_show(struct ckpt_ctx *c, const char *id)
{
	char path[256], what[200];
	struct ckpt_resp r;
	json_t *j, *op = NULL, *ts;
	int rc;

	snprintf(path, sizeof(path), "/api/v1/checkpoints/%s", id);
	snprintf(what, sizeof(what), "checkpoints of %s", id);
	j = ckpt_api_get(c, what, path, &rc);
	if (!j)
		return rc;
	if (c->json) {
		ckpt_json_print(j);
		json_decref(j);
		return CKPT_EXIT_OK;
	}
	/* The total epochs and whether it can be resumed come from the operation. */
	snprintf(path, sizeof(path), "/api/v1/operations/%s", id);
	ckpt_api(c, "GET", path, NULL, NULL, &r);
	if (r.status == 200 && json_is_object(r.json))
		op = json_incref(r.json);
	ckpt_resp_free(&r);
	ts = load_tstate(j);
	rc = ckpt_render_checkpoint_details(c, id, j, op, ts, stdout) < 0 ? CKPT_EXIT_FAIL
									  : CKPT_EXIT_OK;
	if (rc)
		fprintf(stderr,
			"ckpt: operation %s has no checkpoint: it failed before saving one, "
			"or its checkpoints were deleted or cleaned up.\n",
			id);
	json_decref(ts);
	json_decref(op);
	json_decref(j);
	return rc;
}

static bool confirm(const char *id)
{
	char line[64];

	fprintf(stderr,
		"Delete the checkpoints of %s? The operation can then never be resumed; this "
		"cannot be undone. [y/N] ",
		id);
	fflush(stderr);
	if (!fgets(line, sizeof(line), stdin))
		return false;
	return line[0] == 'y' || line[0] == 'Y';
}

static int cp_delete(struct ckpt_ctx *c, const char *id, bool force)
{
	struct ckpt_resp r;
	char path[256], what[200];
	int rc = CKPT_EXIT_OK;

	if (!force) {
		if (!isatty(STDIN_FILENO)) {
			ckpt_err("refusing to delete the checkpoints of %s without confirmation: "
				 "stdin is not a terminal. Add --force to delete anyway.",
				 id);
			return CKPT_EXIT_USAGE;
		}
		if (!confirm(id)) {
			fprintf(stderr, "Not deleted.\n");
			return CKPT_EXIT_FAIL;
		}
	}
	snprintf(path, sizeof(path), "/api/v1/checkpoints/%s", id);
	snprintf(what, sizeof(what), "deleting the checkpoints of %s", id);
	ckpt_api(c, "DELETE", path, NULL, NULL, &r);
	if (r.status < 200 || r.status >= 300)
		rc = ckpt_api_fail(c, what, &r);
	else if (c->json && r.json)
		ckpt_json_print(r.json);
	else
		printf("Deleted %lld checkpoints of %s; it can no longer be resumed.\n",
		       json_is_integer(ckpt_jget(r.json, "deleted", NULL))
			       ? (long long)json_integer_value(ckpt_jget(r.json, "deleted", NULL))
			       : 0LL,
		       id);
	ckpt_resp_free(&r);
	return rc;
}

static int cp_stats(struct ckpt_ctx *c)
{
	json_t *j;
	int rc;

	j = ckpt_api_get(c, "checkpoint statistics", "/api/v1/checkpoints/stats", &rc);
	if (!j)
		return rc;
	if (c->json)
		ckpt_json_print(j);
	else
		ckpt_render_checkpoint_stats(c, j, stdout);
	json_decref(j);
	return CKPT_EXIT_OK;
}

static int cp_cleanup(struct ckpt_ctx *c, long long days)
{
	struct ckpt_resp r;
	char path[128];
	int rc = CKPT_EXIT_OK;

	char what[96];
	struct ckpt_busy *busy;

	snprintf(path, sizeof(path), "/api/v1/checkpoints/cleanup?max_age_days=%lld", days);
	snprintf(what, sizeof(what), "Cleaning up checkpoints older than %lld days", days);
	busy = ckpt_busy_start(c, what);
	ckpt_api(c, "POST", path, NULL, NULL, &r);
	ckpt_busy_end(busy);
	if (r.status < 200 || r.status >= 300) {
		rc = ckpt_api_fail(c, "cleaning up checkpoints", &r);
	} else if (c->json && r.json) {
		ckpt_json_print(r.json);
	} else {
		json_t *n = ckpt_jget(r.json, "removed_checkpoints", NULL);
		json_t *o = ckpt_jget(r.json, "removed_orphans", NULL);
		json_t *b = ckpt_jget(r.json, "freed_bytes", NULL);
		char fb[32] = "0 B";
		if (json_is_integer(b))
			ckpt_fmt_bytes(fb, sizeof(fb), (uint64_t)json_integer_value(b));
		printf("Cleanup (older than %lld days): %lld checkpoints and %lld orphaned run "
		       "dirs removed, %s freed.\n",
		       days, json_is_integer(n) ? (long long)json_integer_value(n) : 0LL,
		       json_is_integer(o) ? (long long)json_integer_value(o) : 0LL, fb);
	}
	ckpt_resp_free(&r);
	return rc;
}

int cmd_checkpoints(struct ckpt_ctx *c, int argc, char **argv)
{
	enum { O_MAXAGE = CKPT_OPT_LOCAL };
	static const struct option lo[] = {
		CKPT_COMMON_LONGOPTS,
		{"force", no_argument, NULL, 'f'},
		{"max-age-days", required_argument, NULL, O_MAXAGE},
		{NULL, 0, NULL, 0},
	};
	const char *sub, *id = NULL, *maxage = NULL;
	bool force = false;
	int opt;

	while ((opt = getopt_long(argc, argv, "hqf", lo, NULL)) != -1) {
		if (ckpt_common_opt(c, opt, optarg))
			continue;
		switch (opt) {
		case 'h':
			fputs(cp_help, stdout);
			return CKPT_EXIT_OK;
		case 'f':
			force = true;
			break;
		case O_MAXAGE:
			maxage = optarg;
			break;
		default:
			return ckpt_bad_opt("checkpoints", opt, argv);
		}
	}
	if (optind >= argc)
		return ckpt_usage_err("checkpoints",
				      "say what to do: show, delete, stats or cleanup");
	sub = argv[optind++];
	if (!strcmp(sub, "stats") || !strcmp(sub, "cleanup")) {
		if (optind < argc)
			return ckpt_usage_err("checkpoints",
					      "'checkpoints %s' takes no argument, "
					      "got '%s'",
					      sub, argv[optind]);
		if (force)
			return ckpt_usage_err("checkpoints",
					      "--force goes with 'checkpoints delete'");
		if (!strcmp(sub, "stats")) {
			if (maxage)
				return ckpt_usage_err("checkpoints", "--max-age-days goes with "
								     "'checkpoints cleanup'");
			return cp_stats(c);
		}
		if (!maxage)
			return ckpt_usage_err("checkpoints",
					      "'checkpoints cleanup' needs --max-age-days N (the "
					      "default policy is 30)");
		long long d = ckpt_parse_count("checkpoints", "--max-age-days", maxage, 36500);
		if (d < 0)
			return CKPT_EXIT_USAGE;
		return cp_cleanup(c, d);
	}
	if (strcmp(sub, "show") && strcmp(sub, "delete")) {
		static const char *const subs[] = {"show", "delete", "stats", "cleanup", NULL};
		char dym[64];

		return ckpt_usage_err("checkpoints",
				      "'%s' is not a checkpoints command.%s Use show, "
				      "delete, stats or cleanup.",
				      sub, ckpt_did_you_mean(dym, sizeof(dym), sub, subs));
	}
	if (maxage)
		return ckpt_usage_err("checkpoints",
				      "--max-age-days goes with 'checkpoints cleanup'");
	if (optind >= argc)
		return ckpt_usage_err("checkpoints",
				      "'checkpoints %s' needs an operation id (see "
				      "'ckpt ops list --resumable')",
				      sub);
	id = argv[optind++];
	if (optind < argc)
		return ckpt_usage_err("checkpoints", "unexpected argument '%s' after the id",
				      argv[optind]);
	if (!ckpt_id_valid(id))
		return ckpt_usage_err("checkpoints",
				      "'%s' is not an operation id; ids look like "
				      "op_training_20261122_100000_1a2b3c (see 'ckpt ops list')",
				      id);
	if (!strcmp(sub, "show")) {
		if (force)
			return ckpt_usage_err("checkpoints",
					      "--force goes with 'checkpoints delete'");
		return cp_show(c, id);
	}
	return cp_delete(c, id, force);
}
