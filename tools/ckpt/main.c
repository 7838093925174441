// SPDX-License-Identifier: MIT
/*
 * main.c - the ckpt CLI's entry point: global options, the table of
 * subcommands, top-level help, and the helpers every subcommand uses for
 * options and messages.
 */
#include "ckpt.h"

#include <errno.h>
#include <limits.h>
#include <regex.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char usage_text[] =
	"usage: ckpt [--socket PATH] [--state-dir DIR] [--mount DIR] COMMAND [ARGS...]\n"
	"\n"
	"Operations (talk to ckptd):\n"
	"  run JOB.yaml | run [flags] -- CMD ARGS...   submit and follow; Ctrl-C cancels\n"
	"  submit JOB.yaml | --project P --model M ... submit a job, print its id\n"
	"  ops list [--status S] [--resumable]         operations as a table\n"
	"  ops status|resume|cancel|logs|events ID     one operation\n"
	"  ops metrics ID [--csv]                      loss and val_loss per step\n"
	"  dashboard                                   the URL of ckptd's web page\n"
	"  checkpoints show|delete|stats|cleanup       an operation's checkpoints\n"
	"  daemon status|stop                          the ckptd of this state dir\n"
	"\n"
	"The mounted tree (talk to the ckptfs mount):\n"
	"  ls [RUN[/VERSION]]                          runs, versions, files\n"
	"  show RUN/VERSION                            a version's files, hashes, metadata\n"
	"  verify [PATH]                               check every byte against its hash\n"
	"  diff A B                                    what changed between two versions\n"
	"  commit PATH                                 commit an open version\n"
	"  gc                                          remove unreferenced chunks\n"
	"  policy RUN [--keep-last N ...]              show or set a run's retention\n"
	"\n"
	"Global options (also accepted after the command):\n"
	"  --socket PATH     ckptd's socket (default: $CKPT_SOCKET, else STATE_DIR/ckptd.sock)\n"
	"  --state-dir DIR   ckptd's state dir (default: $CKPT_STATE_DIR, else\n"
	"                    $XDG_STATE_HOME/ckptfs, ~/.local/state/ckptfs, /var/lib/ckptfs as "
	"root)\n"
	"  --mount DIR       the ckptfs mount (default: $CKPT_MOUNT, else STATE_DIR/mnt)\n"
	"  --json            machine-readable output (read commands)\n"
	"  -h, --help        help; `ckpt COMMAND --help` for a command\n"
	"  --version         print the version\n"
	"\n"
	"Exit status: 0 ok, 1 failure, 2 usage error. See ckpt(1).\n";

struct ckpt_cmd {
	const char *name;
	int (*fn)(struct ckpt_ctx *c, int argc, char **argv);
};

static const char *const cmd_names[] = {
	"run",	  "submit", "ops",    "checkpoints", "ls",	  "show", "verify", "diff",
	"commit", "gc",	    "policy", "daemon",	     "dashboard", "help", NULL,
};

static const struct ckpt_cmd cmds[] = {
	{"run", cmd_run},
	{"submit", cmd_submit},
	{"ops", cmd_ops},
	{"operations", cmd_ops},
	{"checkpoints", cmd_checkpoints},
	{"ls", cmd_ls},
	{"show", cmd_show},
	{"verify", cmd_verify},
	{"diff", cmd_diff},
	{"commit", cmd_commit},
	{"gc", cmd_gc},
	{"policy", cmd_policy},
	{"daemon", cmd_daemon},
	{"dashboard", cmd_dashboard},
};

void ckpt_err(const char *fmt, ...)
{
	va_list ap;

	fputs("ckpt: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

int ckpt_usage_err(const char *cmd, const char *fmt, ...)
{
	va_list ap;

	fputs("ckpt: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\nTry 'ckpt %s --help' for usage.\n", cmd);
	return CKPT_EXIT_USAGE;
}

int ckpt_bad_opt(const char *cmd, int opt, char **argv)
{
	/* getopt_long already printed its own line; say where to look. */
	(void)opt;
	(void)argv;
	fprintf(stderr, "Try 'ckpt %s --help' for usage.\n", cmd);
	return CKPT_EXIT_USAGE;
}

int ckpt_common_opt(struct ckpt_ctx *c, int opt, const char *arg)
{
	switch (opt) {
	case CKPT_OPT_SOCKET:
		c->socket = arg;
		return 1;
	case CKPT_OPT_STATE_DIR:
		c->state_dir = arg;
		c->state_resolved = false;
		return 1;
	case CKPT_OPT_MOUNT:
		c->mount = arg;
		return 1;
	case CKPT_OPT_JSON:
		c->json = true;
		return 1;
	case 'q':
		c->quiet = true;
		return 1;
	}
	return 0;
}

/* Optimal string alignment distance (Levenshtein plus adjacent swaps),
 * for words as short as command names. */
static size_t edit_distance(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);
	size_t d[32][32];

	if (la >= 32 || lb >= 32)
		return SIZE_MAX;
	for (size_t i = 0; i <= la; i++)
		d[i][0] = i;
	for (size_t j = 0; j <= lb; j++)
		d[0][j] = j;
	for (size_t i = 1; i <= la; i++) {
		for (size_t j = 1; j <= lb; j++) {
			size_t cost = a[i - 1] != b[j - 1], v = d[i - 1][j - 1] + cost;

			if (d[i - 1][j] + 1 < v)
				v = d[i - 1][j] + 1;
			if (d[i][j - 1] + 1 < v)
				v = d[i][j - 1] + 1;
			if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] &&
			    d[i - 2][j - 2] + 1 < v)
				v = d[i - 2][j - 2] + 1;
			d[i][j] = v;
		}
	}
	return d[la][lb];
}

const char *ckpt_did_you_mean(char *buf, size_t len, const char *word, const char *const *cands)
{
	size_t wl = strlen(word), max = wl <= 4 ? 1 : 2, best = SIZE_MAX;
	const char *pick = NULL, *prefix = NULL;
	int nbest = 0, nprefix = 0;

	for (const char *const *c = cands; *c; c++) {
		size_t dist = edit_distance(word, *c);

		if (dist < best) {
			best = dist;
			pick = *c;
			nbest = 1;
		} else if (dist == best) {
			nbest++;
		}
		if (wl >= 2 && strncmp(*c, word, wl) == 0) {
			prefix = *c;
			nprefix++;
		}
	}
	if (!(best <= max && nbest == 1)) {
		pick = nprefix == 1 ? prefix : NULL;
	}
	if (pick)
		snprintf(buf, len, " Did you mean '%s'?", pick);
	else if (len)
		buf[0] = '\0';
	return buf;
}

long long ckpt_parse_count(const char *cmd, const char *opt, const char *val, long long max)
{
	char *end;
	long long v;

	errno = 0;
	v = strtoll(val, &end, 10);
	if (errno || end == val || *end || v < 0 || v > max) {
		ckpt_usage_err(cmd, "%s wants a whole number from 0 to %lld, not '%s'", opt, max,
			       val);
		return -1;
	}
	return v;
}

bool ckpt_id_valid(const char *id)
{
	/* The same pattern ckptd checks (docs/api.md, "Ids"): checking here too
	 * gives a usage error before any request is made. */
	regex_t rx;
	bool ok;

	if (strlen(id) > 128 ||
	    regcomp(&rx, "^op_[a-z]+_[0-9]{8}_[0-9]{6}_[0-9a-f]{6}$", REG_EXTENDED | REG_NOSUB))
		return false;
	ok = regexec(&rx, id, 0, NULL, 0) == 0;
	regfree(&rx);
	return ok;
}

static void ctx_init(struct ckpt_ctx *c)
{
	const char *now = getenv("CKPT_NOW");

	memset(c, 0, sizeof(*c));
	c->tty = isatty(STDOUT_FILENO);
	c->err_tty = isatty(STDERR_FILENO);
	c->now = time(NULL);
	/* CKPT_NOW (ISO 8601 UTC) fixes "now" so that ages in the output are
	 * reproducible (golden tests, documentation). */
	if (now && now[0]) {
		int64_t ns;

		if (ckpt_iso_parse(now, &ns) == 0)
			c->now = (time_t)(ns / CKPT_NS_PER_S);
		else
			ckpt_err("ignoring CKPT_NOW='%s': not an ISO 8601 UTC time", now);
	}
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		CKPT_COMMON_LONGOPTS,
		{"version", no_argument, NULL, 'V'},
		{NULL, 0, NULL, 0},
	};
	static char prog[64];
	struct ckpt_ctx ctx;
	bool help = false;
	int opt, ret;

	ctx_init(&ctx);
	/* '+': stop at the command; its own options are its own. */
	while ((opt = getopt_long(argc, argv, "+hqV", longopts, NULL)) != -1) {
		if (ckpt_common_opt(&ctx, opt, optarg))
			continue;
		switch (opt) {
		case 'h':
			fputs(usage_text, stdout);
			return CKPT_EXIT_OK;
		case 'V':
			printf("ckpt %s\n", CKPTFS_VERSION);
			return CKPT_EXIT_OK;
		default:
			fputs("Try 'ckpt --help' for usage.\n", stderr);
			return CKPT_EXIT_USAGE;
		}
	}
	if (optind >= argc) {
		fputs(usage_text, stderr);
		return CKPT_EXIT_USAGE;
	}
	if (strcmp(argv[optind], "help") == 0) {
		/* `ckpt help CMD [SUB]` is `ckpt CMD [SUB] --help`. */
		if (optind + 1 >= argc || !strcmp(argv[optind + 1], "help")) {
			fputs(usage_text, stdout);
			return CKPT_EXIT_OK;
		}
		optind++;
		help = true;
	}
	for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
		char **av = NULL;

		if (strcmp(argv[optind], cmds[i].name))
			continue;
		if (help) {
			/* argv[optind..argc-1] then --help: one more slot, as the
			 * subcommand parses argv[0..argc-1]. */
			av = calloc((size_t)(argc - optind) + 2, sizeof(*av));
			if (!av)
				return CKPT_EXIT_FAIL;
			memcpy(av, argv + optind, (size_t)(argc - optind) * sizeof(*av));
			av[argc - optind] = "--help";
			argc = argc - optind + 1;
			argv = av;
			optind = 0;
		}
		ckpt_client_global_init();
		/* The subcommand parses argv[optind..] with its own getopt pass. */
		argc -= optind;
		argv += optind;
		/* getopt prefixes its messages with argv[0]: "ckpt ops: ..." */
		snprintf(prog, sizeof(prog), "ckpt %s", argv[0]);
		argv[0] = prog;
		optind = 0; /* reset getopt (GNU: 0 also re-reads GETOPT env) */
		ret = cmds[i].fn(&ctx, argc, argv);
		ckpt_client_global_cleanup();
		free(av);
		return ret;
	}
	{
		char dym[64];

		ckpt_err("'%s' is not a ckpt command.%s", argv[optind],
			 ckpt_did_you_mean(dym, sizeof(dym), argv[optind], cmd_names));
	}
	fputs("Commands: run submit ops checkpoints ls show verify diff commit gc policy daemon "
	      "dashboard.\n"
	      "Try 'ckpt --help' for usage.\n",
	      stderr);
	return CKPT_EXIT_USAGE;
}
