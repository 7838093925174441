// SPDX-License-Identifier: MIT
/*
 * rdzv_key.c - a gang's key names, parsed strictly (rdzv_key.h): what
 * another host wrote into etcd is outside input, and sscanf's "%lld" took
 * signs, spaces, leading zeros and numbers past LLONG_MAX (undefined).
 */
#include "rdzv_key.h"

#include <stdbool.h>
#include <string.h>

/* A number at *p as "%lld" writes one >= 0; *p moves past it. */
static bool num(const char **p, int64_t *v)
{
	const char *s = *p;
	int64_t x = 0;
	size_t n = 0;

	while (s[n] >= '0' && s[n] <= '9') {
		if (n == 18)
			return false;
		x = x * 10 + (s[n] - '0');
		n++;
	}
	if (!n || (n > 1 && s[0] == '0'))
		return false;
	*v = x;
	*p = s + n;
	return true;
}

static bool prefixed(const char **p, const char *word)
{
	size_t n = strlen(word);

	if (strncmp(*p, word, n))
		return false;
	*p += n;
	return true;
}

enum rdzv_key_kind rdzv_key_parse(const char *k, struct rdzv_key *out)
{
	const char *p = k;

	out->attempt = out->node = -1;
	if (!strcmp(k, "gen"))
		return RDZV_KEY_GEN;
	if (prefixed(&p, "hosts/"))
		return num(&p, &out->node) && !*p ? RDZV_KEY_HOST : RDZV_KEY_OTHER;
	if (prefixed(&p, "done/"))
		return num(&p, &out->node) && !*p ? RDZV_KEY_DONE : RDZV_KEY_OTHER;
	if (prefixed(&p, "plan/"))
		return num(&p, &out->attempt) && !*p ? RDZV_KEY_PLAN : RDZV_KEY_OTHER;
	if (prefixed(&p, "ready/"))
		return num(&p, &out->attempt) && *p++ == '/' && num(&p, &out->node) && !*p
			       ? RDZV_KEY_READY
			       : RDZV_KEY_OTHER;
	return RDZV_KEY_OTHER;
}
