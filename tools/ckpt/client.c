// SPDX-License-Identifier: MIT
/*
 * client.c - ckpt's side of ckptd's HTTP API (SPEC §5): finding the state dir
 * and the socket the way ckptd does, one request over the Unix socket with
 * libcurl (CURLOPT_UNIX_SOCKET_PATH), and turning failures into sentences
 * that say what to do.
 */
#include "ckpt.h"

#include "ckptfs/statedir.h"

#include <errno.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <curl/curl.h>

/* The state dir, found as ckptd finds it (ckptfs/statedir.h). Without one
 * nothing can be done, so a failure ends ckpt here with the reason. */
const char *ckpt_state_dir(struct ckpt_ctx *c)
{
	int ret;

	if (c->state_resolved)
		return c->state_buf;
	ret = ckpt_state_dir_find(c->state_dir, c->state_buf, sizeof(c->state_buf));
	if (ret == -EINVAL) {
		ckpt_err("--state-dir is empty; name a directory.");
		exit(CKPT_EXIT_USAGE);
	}
	if (ret == -ENAMETOOLONG) {
		ckpt_err("the state dir path is longer than %zu bytes; use a shorter --state-dir.",
			 sizeof(c->state_buf) - 1);
		exit(CKPT_EXIT_USAGE);
	}
	if (ret < 0) {
		ckpt_err("cannot find a state dir (no $HOME); set --state-dir or CKPT_STATE_DIR.");
		exit(CKPT_EXIT_FAIL);
	}
	c->state_resolved = true;
	return c->state_buf;
}

bool ckpt_socket_explicit(const struct ckpt_ctx *c)
{
	const char *e = getenv("CKPT_SOCKET");

	return c->socket || (e && e[0]);
}

const char *ckpt_socket_path(struct ckpt_ctx *c)
{
	const char *e;

	if (c->socket)
		return c->socket;
	if ((e = getenv("CKPT_SOCKET")) && e[0])
		return e;
	/* Not cached in c->socket: that field means "named explicitly". */
	snprintf(c->sock_buf, sizeof(c->sock_buf), "%s/ckptd.sock", ckpt_state_dir(c));
	return c->sock_buf;
}

void ckpt_client_global_init(void)
{
	curl_global_init(CURL_GLOBAL_DEFAULT);
}

void ckpt_client_global_cleanup(void)
{
	curl_global_cleanup();
}

/* X-Next-Offset: where the next read of a log continues. */
static size_t on_header(char *p, size_t sz, size_t n, void *arg)
{
	struct ckpt_resp *r = arg;
	size_t len = sz * n;
	static const char name[] = "x-next-offset:";

	if (len > sizeof(name) && strncasecmp(p, name, sizeof(name) - 1) == 0) {
		char buf[32];
		size_t vl = len - (sizeof(name) - 1);
		if (vl >= sizeof(buf))
			vl = sizeof(buf) - 1;
		memcpy(buf, p + sizeof(name) - 1, vl);
		buf[vl] = '\0';
		r->next_offset = strtoll(buf, NULL, 10);
	}
	return len;
}

static size_t on_body(char *p, size_t sz, size_t n, void *arg)
{
	struct ckpt_resp *r = arg;
	size_t add = sz * n;
	char *b = realloc(r->body, r->len + add + 1);

	if (!b)
		return 0; /* makes curl fail the transfer with CURLE_WRITE_ERROR */
	memcpy(b + r->len, p, add);
	r->len += add;
	b[r->len] = '\0';
	r->body = b;
	return add;
}

char *ckpt_urlenc(const char *s)
{
	static const char hex[] = "0123456789ABCDEF";
	char *o = malloc(strlen(s) * 3 + 1), *p = o;

	if (!o)
		abort();
	for (; *s; s++) {
		unsigned char ch = (unsigned char)*s;
		if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
		    (ch >= '0' && ch <= '9') || strchr("-_.~", ch)) {
			*p++ = (char)ch;
		} else {
			*p++ = '%';
			*p++ = hex[ch >> 4];
			*p++ = hex[ch & 15];
		}
	}
	*p = '\0';
	return o;
}

int ckpt_api(struct ckpt_ctx *c, const char *method, const char *path, json_t *body,
	     const char *idem_key, struct ckpt_resp *r)
{
	struct curl_slist *hdrs = NULL;
	char url[2048], hdr[512], *payload = NULL;
	CURL *h;
	CURLcode cc;
	int ret = 0;

	memset(r, 0, sizeof(*r));
	r->next_offset = -1;
	h = curl_easy_init();
	if (!h) {
		snprintf(r->err, sizeof(r->err), "could not set up libcurl");
		return -ENOMEM;
	}
	/* The host part is ignored on a Unix socket; "localhost" keeps Host: sane. */
	snprintf(url, sizeof(url), "http://localhost%s", path);
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_UNIX_SOCKET_PATH, ckpt_socket_path(c));
	curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, r);
	curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(h, CURLOPT_HEADERDATA, r);
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, 5L);
	curl_easy_setopt(h, CURLOPT_TIMEOUT, 60L);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_USERAGENT, "ckpt/" CKPTFS_VERSION);
	hdrs = curl_slist_append(hdrs, "Accept: application/json");
	if (body) {
		payload = json_dumps(body, JSON_COMPACT | JSON_PRESERVE_ORDER);
		hdrs = curl_slist_append(hdrs, "Content-Type: application/json");
		curl_easy_setopt(h, CURLOPT_POSTFIELDS, payload ? payload : "{}");
	} else if (strcmp(method, "POST") == 0 || strcmp(method, "PUT") == 0) {
		curl_easy_setopt(h, CURLOPT_POSTFIELDS, "");
	}
	if (idem_key) {
		snprintf(hdr, sizeof(hdr), "Idempotency-Key: %s", idem_key);
		hdrs = curl_slist_append(hdrs, hdr);
	}
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);

	cc = curl_easy_perform(h);
	if (cc != CURLE_OK) {
		snprintf(r->err, sizeof(r->err), "%s", curl_easy_strerror(cc));
		ret = cc == CURLE_COULDNT_CONNECT ? -ECONNREFUSED : -EIO;
		if (access(ckpt_socket_path(c), F_OK) < 0)
			ret = -ENOENT;
		goto out;
	}
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &r->status);
	if (r->body && r->len) {
		json_error_t je;
		r->json = json_loadb(r->body, r->len, 0, &je);
	}
out:
	curl_slist_free_all(hdrs);
	curl_easy_cleanup(h);
	free(payload);
	return ret;
}

void ckpt_resp_free(struct ckpt_resp *r)
{
	json_decref(r->json);
	free(r->body);
	r->json = NULL;
	r->body = NULL;
}

int ckpt_api_fail(struct ckpt_ctx *c, const char *what, const struct ckpt_resp *r)
{
	json_t *e;
	const char *code = NULL, *msg = NULL;

	if (r->status == 0) {
		ckpt_err("%s: no ckptd answers on %s (%s).", what, ckpt_socket_path(c), r->err);
		fprintf(stderr,
			"Start it with 'ckptd --state-dir %s' (or 'ckpt run', which starts "
			"one), or name the right socket with --socket or CKPT_SOCKET.\n",
			ckpt_state_dir(c));
		return CKPT_EXIT_FAIL;
	}
	e = json_object_get(r->json, "error");
	if (json_is_object(e)) {
		code = ckpt_jstr(e, "code");
		msg = ckpt_jstr(e, "message");
	}
	if (!msg)
		msg = r->body && r->len && r->len < 300 ? r->body : "no details in the answer";
	ckpt_err("%s: %s (HTTP %ld%s%s).", what, msg, r->status, code ? ", " : "",
		 code ? code : "");
	if (r->status == 404)
		fputs("List what exists with 'ckpt ops list'.\n", stderr);
	else if (r->status == 409)
		fputs("Check its state with 'ckpt ops status ID'; only CANCELLED or FAILED "
		      "operations with a checkpoint can be resumed.\n",
		      stderr);
	else if (r->status == 503 && !(code && !strcmp(code, "rdzv_unreachable")))
		fputs("ckptd is stopping or starting; try again in a moment.\n", stderr);
	else if (r->status >= 500)
		fprintf(stderr, "This is ckptd's fault; its log is in %s.\n", ckpt_state_dir(c));
	return CKPT_EXIT_FAIL;
}

json_t *ckpt_api_get(struct ckpt_ctx *c, const char *what, const char *path, int *rc)
{
	struct ckpt_resp r;
	json_t *j;

	ckpt_api(c, "GET", path, NULL, NULL, &r);
	if (r.status < 200 || r.status >= 300) {
		*rc = ckpt_api_fail(c, what, &r);
		ckpt_resp_free(&r);
		return NULL;
	}
	if (!r.json) {
		ckpt_err("%s: ckptd answered HTTP %ld but not with JSON; is %s really ckptd's "
			 "socket?",
			 what, r.status, ckpt_socket_path(c));
		ckpt_resp_free(&r);
		*rc = CKPT_EXIT_FAIL;
		return NULL;
	}
	j = r.json;
	r.json = NULL;
	ckpt_resp_free(&r);
	*rc = 0;
	return j;
}
