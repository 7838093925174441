// SPDX-License-Identifier: MIT
/*
 * fuzz_api.c - libFuzzer target for ckptd's HTTP API (docs/api.md): routes,
 * query strings, headers and bodies, through libmicrohttpd and ckptd's own
 * handler (api_daemon with no listener: each request comes on a socketpair
 * handed to it with MHD_add_connection), on ckptd's real state (a SQLite
 * database in a scratch state dir, two operations).
 *
 * The input is a request, written as
 *   METHOD\nURL\nHeader: value\n...\n\nBODY
 * "{op}" and "{op2}" in the URL stand for the ids of the two operations (one
 * PENDING, one COMPLETED); a first line "!" sends it to the TCP listener's
 * handler (token "fuzz-token" required). Host, Connection: close and
 * Content-Length are added.
 *
 * Checked: every request gets one HTTP response; one that says it is JSON
 * has a JSON body, and an error's is {"error": {"code", "message"}}.
 *   tests/fuzz/run-fuzz build/tests/fuzz/fuzz_api tests/fuzz/corpus/api -t 60
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <microhttpd.h>

#include "ckptd_i.h"
#include "fuzz_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

struct ckptd g = {.events_fd = -1, .log_fd = -1, .pid_fd = -1};
static struct MHD_Daemon *d_unix, *d_tcp;
static char ids[2][CKPTD_ID_MAX + 1];
static unsigned runs;

static void seed_ops(void)
{
	static const char *const specs[] = {
		"{\"name\": \"a\", \"model\": \"tiny\", \"hyperparams\": {\"epochs\": 1}}",
		"{\"name\": \"b\", \"schedule\": {\"cron\": \"@daily\"}}"};

	for (int i = 0; i < 2; i++) {
		char err[512] = "";
		struct op *op;
		bool replay;

		FUZZ_CHECK(op_submit(specs[i], strlen(specs[i]), NULL, &op, &replay, err,
				     sizeof(err)) == 0);
		snprintf(ids[i], sizeof(ids[i]), "%s", op->id);
	}
	op_find(ids[1])->status = OP_COMPLETED;
}

/* A fresh database and operations now and then, so that the state stays small. */
static void reset_state(void)
{
	char path[CKPTD_PATH_MAX + 32];

	while (g.ops) {
		struct op *op = g.ops;

		g.ops = op->next;
		op_free(op);
	}
	db_close();
	snprintf(path, sizeof(path), "%s/ckptd.db", g.state_dir);
	unlink(path);
	FUZZ_CHECK(db_open(path) == 0);
	seed_ops();
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	static const char *const subs[] = {"logs", "ops", "notify", "secrets", "mnt", "store"};
	char path[CKPTD_PATH_MAX + 32];

	snprintf(g.state_dir, sizeof(g.state_dir), "%s", fuzz_dir());
	snprintf(g.host, sizeof(g.host), "fuzzhost");
	snprintf(g.store, sizeof(g.store), "%s/store", g.state_dir);
	snprintf(g.mount, sizeof(g.mount), "%s/mnt", g.state_dir);
	snprintf(g.policy_file, sizeof(g.policy_file), "%s/policy.yaml", g.state_dir);
	snprintf(g.sock_path, sizeof(g.sock_path), "%s/ckptd.sock", g.state_dir);
	snprintf(g.token, sizeof(g.token), "fuzz-token");
	g.max_concurrent = 1;
	g.cleanup_interval_s = 86400;
	g.keep_steps = 1000;
	g.mount_mode = 1;
	g.log_fd = open("/dev/null", O_WRONLY | O_CLOEXEC);
	g.events_fd = open("/dev/null", O_WRONLY | O_CLOEXEC);
	g.started = now_s();
	for (size_t i = 0; i < sizeof(subs) / sizeof(subs[0]); i++) {
		snprintf(path, sizeof(path), "%s/%s", g.state_dir, subs[i]);
		FUZZ_CHECK(mkdir(path, 0700) == 0);
	}
	snprintf(path, sizeof(path), "%s/ckptd.db", g.state_dir);
	FUZZ_CHECK(db_open(path) == 0);
	seed_ops();
	d_unix = api_daemon(-1, false);
	d_tcp = api_daemon(-1, true);
	FUZZ_CHECK(d_unix && d_tcp);
	return 0;
}

/* Append s[0..n) to the buffer, with {op} and {op2} replaced. */
static void add(char **b, size_t *len, size_t *cap, const char *s, size_t n, int subst)
{
	for (size_t i = 0; i < n; i++) {
		const char *r = NULL;
		size_t rl = 1, skip = 0;

		if (subst && i + 4 <= n && !memcmp(s + i, "{op}", 4))
			r = ids[0], skip = 3;
		else if (subst && i + 5 <= n && !memcmp(s + i, "{op2}", 5))
			r = ids[1], skip = 4;
		if (r)
			rl = strlen(r);
		if (*len + rl + 1 > *cap) {
			*cap = (*len + rl + 1) * 2;
			*b = realloc(*b, *cap);
			FUZZ_CHECK(*b);
		}
		memcpy(*b + *len, r ? r : s + i, rl);
		*len += rl;
		i += skip;
	}
}

/* The text of input line `*p` (no CR, no NUL), advancing past its '\n'. */
static size_t line(const char **p, const char *end, const char **out)
{
	const char *nl = memchr(*p, '\n', (size_t)(end - *p));
	size_t n = nl ? (size_t)(nl - *p) : (size_t)(end - *p);

	*out = *p;
	*p = nl ? nl + 1 : end;
	return n;
}

static int clean(const char *s, size_t n)
{
	return !memchr(s, '\r', n) && !memchr(s, '\0', n);
}

/* "Name: value" with a name of token characters: anything else (a folded
 * line, an empty name) would change the framing of the request we send,
 * and two answers to what libmicrohttpd then reads as two requests are its
 * parser's business, not the handler's. */
static int header_ok(const char *h, size_t n)
{
	const char *colon = memchr(h, ':', n);

	if (!colon || colon == h || !clean(h, n))
		return 0;
	for (const char *c = h; c < colon; c++)
		if (*c <= ' ' || *c >= 0x7f || strchr("()<>@,;:\\\"/[]?={}", *c))
			return 0;
	return 1;
}

/* Whether header line h (n bytes, no NUL after them) starts with name. Not
 * strncasecmp alone: libFuzzer's hook of it reads n bytes of both strings
 * whatever they hold, past the input's end (a SEGV in the harness). */
static int named(const char *h, size_t n, const char *name)
{
	size_t l = strlen(name);

	return n >= l && !strncasecmp(h, name, l);
}

/* Check the response: one status line; a JSON body where it says JSON. */
static void check_response(char *r, size_t n, int head)
{
	char *hdr_end = strstr(r, "\r\n\r\n"), *ct;
	int status;

	FUZZ_CHECK(n > 12 && !strncmp(r, "HTTP/1.", 7));
	status = atoi(r + 9);
	FUZZ_CHECK(status >= 100 && status < 600);
	FUZZ_CHECK(hdr_end);
	*hdr_end = '\0';
	ct = strcasestr(r, "\r\nContent-Type: application/json");
	if (ct && !head && status != 204 && status != 304) {
		json_error_t je;
		json_t *j = json_loads(hdr_end + 4, 0, &je);

		if (!j) {
			fprintf(stderr, "a JSON response that is not JSON (%s):\n%s\n", je.text,
				hdr_end + 4);
			abort();
		}
		if (status >= 400) {
			json_t *e = json_object_get(j, "error");

			FUZZ_CHECK(json_is_string(json_object_get(e, "code")));
			FUZZ_CHECK(json_is_string(json_object_get(e, "message")));
		}
		json_decref(j);
	}
}

static unsigned connections(struct MHD_Daemon *d)
{
	const union MHD_DaemonInfo *i = MHD_get_daemon_info(d, MHD_DAEMON_INFO_CURRENT_CONNECTIONS);

	return i ? i->num_connections : 0;
}

/* A whole response: headers, and the body its Content-Length gives. */
static int complete(char *r, size_t n, int head)
{
	char *end, *cl;
	size_t hl;
	int ret;

	r[n] = '\0';
	end = strstr(r, "\r\n\r\n");
	if (!end)
		return 0;
	hl = (size_t)(end - r) + 4;
	if (head)
		return 1;
	*end = '\0';
	cl = strcasestr(r, "\r\nContent-Length:");
	ret = cl && n >= hl + strtoul(cl + 17, NULL, 10);
	*end = '\r';
	return ret;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *p = (const char *)data, *end = p + size, *m, *u, *h;
	size_t ml, ul, hl, len = 0, cap = 0, rlen = 0, rcap = 1 << 16;
	static const char fixed[] = " HTTP/1.1\r\nHost: ckptd\r\nConnection: close\r\n";
	char *req = NULL, *resp, clen[64];
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	struct MHD_Daemon *d = d_unix;
	int sv[2], eof = 0, head;

	if (++runs % 2000 == 0)
		reset_state();
	ml = line(&p, end, &m);
	if (ml == 1 && m[0] == '!') {
		d = d_tcp;
		ml = line(&p, end, &m);
	}
	ul = line(&p, end, &u);
	if (!ml || !ul || !clean(m, ml) || !clean(u, ul) || memchr(m, ' ', ml) ||
	    memchr(u, ' ', ul))
		return 0;
	head = ml == 4 && !memcmp(m, "HEAD", 4);
	add(&req, &len, &cap, m, ml, 0);
	add(&req, &len, &cap, " ", 1, 0);
	add(&req, &len, &cap, u, ul, 1);
	add(&req, &len, &cap, fixed, strlen(fixed), 0);
	while (p < end && (hl = line(&p, end, &h)) > 0) {
		if (!header_ok(h, hl) || named(h, hl, "content-length") ||
		    named(h, hl, "transfer-encoding") || named(h, hl, "connection") ||
		    named(h, hl, "expect"))
			continue;
		add(&req, &len, &cap, h, hl, 0);
		add(&req, &len, &cap, "\r\n", 2, 0);
	}
	snprintf(clen, sizeof(clen), "Content-Length: %zu\r\n\r\n", (size_t)(end - p));
	add(&req, &len, &cap, clen, strlen(clen), 0);
	add(&req, &len, &cap, p, (size_t)(end - p), 0);

	FUZZ_CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
	FUZZ_CHECK(MHD_add_connection(d, sv[1], (struct sockaddr *)&sa, sizeof(sa)) == MHD_YES);
	FUZZ_CHECK(fcntl(sv[0], F_SETFL, O_NONBLOCK) == 0);
	resp = malloc(rcap);
	FUZZ_CHECK(resp);
	for (size_t off = 0; off < len;) {
		ssize_t w = write(sv[0], req + off, len - off);

		if (w > 0)
			off += (size_t)w;
		else
			FUZZ_CHECK(w < 0 && errno == EAGAIN);
		MHD_run(d);
	}
	for (int i = 0; i < 100000 && !eof && !complete(resp, rlen, head); i++) {
		ssize_t r;

		MHD_run(d);
		while ((r = read(sv[0], resp + rlen, rcap - rlen - 1)) > 0) {
			rlen += (size_t)r;
			if (rlen + 1 == rcap) {
				rcap *= 2;
				resp = realloc(resp, rcap);
				FUZZ_CHECK(resp);
			}
		}
		if (r == 0)
			eof = 1;
		else
			FUZZ_CHECK(errno == EAGAIN);
	}
	if (!complete(resp, rlen, head)) {
		fprintf(stderr, "no whole response; got %zu bytes: %.*s\n", rlen, (int)rlen, resp);
		abort();
	}
	close(sv[0]);
	/* the connection ends on ckptd's side too (no connection is left over) */
	for (int i = 0; i < 1000 && connections(d); i++)
		MHD_run(d);
	FUZZ_CHECK(connections(d) == 0);
	resp[rlen] = '\0';
	check_response(resp, rlen, head);
	free(resp);
	free(req);
	g.stopping = false; /* after POST /api/v1/daemon/stop */
	return 0;
}
