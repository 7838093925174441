// SPDX-License-Identifier: MIT
/*
 * notify_parse.c - strict parser for trainer reports (SPEC §4).
 *
 * Grammar of one datagram (sd_notify wire format, made strict):
 *
 *   datagram = line *( "\n" line ) [ "\n" ]
 *   line     = key "=" value
 *   key      = [A-Z] *[A-Z0-9_]      (at most 64 bytes)
 *   value    = UTF-8 without control characters (tab allowed in text values)
 *
 * Known keys have typed values (see the table below); a known key given twice
 * is an error because the report would be ambiguous. Unknown but well-formed
 * keys are counted and ignored, so trainers may send more than we understand.
 * Every rejection names what was wrong.
 */
#include "ckptfs/notify.h"
#include "ckptfs/utf8.h"

#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define KEY_MAX 64

enum vtype { V_ONE, V_BOOL, V_COUNT, V_REAL, V_PATH, V_TEXT };

struct key_desc {
	const char *name;
	unsigned bit;
	enum vtype type;
};

static const struct key_desc keys[] = {
	{"READY", CKPT_R_READY, V_ONE},	       {"STEP", CKPT_R_STEP, V_COUNT},
	{"EPOCH", CKPT_R_EPOCH, V_COUNT},      {"LOSS", CKPT_R_LOSS, V_REAL},
	{"VAL_LOSS", CKPT_R_VAL_LOSS, V_REAL}, {"CHECKPOINT", CKPT_R_CHECKPOINT, V_PATH},
	{"SAVING", CKPT_R_SAVING, V_BOOL},     {"CORRUPTED", CKPT_R_CORRUPTED, V_BOOL},
	{"REASON", CKPT_R_REASON, V_TEXT},     {"STATUS", CKPT_R_STATUS, V_TEXT},
	{"WATCHDOG", CKPT_R_WATCHDOG, V_ONE},  {"STOPPING", CKPT_R_STOPPING, V_ONE},
};

static int reject(const char **why, const char *reason, int err)
{
	if (why)
		*why = reason;
	return err;
}

static bool key_valid(const char *k, size_t n)
{
	if (n == 0 || n > KEY_MAX || k[0] < 'A' || k[0] > 'Z')
		return false;
	for (size_t i = 1; i < n; i++) {
		char c = k[i];
		if (!((c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_'))
			return false;
	}
	return true;
}

/* Decimal, no sign, no leading zeros beyond "0", fits int64. */
static bool parse_count(const char *v, size_t n, int64_t *out)
{
	int64_t x = 0;

	if (n == 0 || n > 19 || (n > 1 && v[0] == '0'))
		return false;
	for (size_t i = 0; i < n; i++) {
		if (v[i] < '0' || v[i] > '9')
			return false;
		if (x > (INT64_MAX - (v[i] - '0')) / 10)
			return false;
		x = x * 10 + (v[i] - '0');
	}
	*out = x;
	return true;
}

/* A finite decimal/exponent number, or nan / inf / -inf in any case. */
static bool parse_real(const char *v, size_t n, double *out)
{
	char tmp[64], *end;

	if (n == 0 || n >= sizeof(tmp))
		return false;
	memcpy(tmp, v, n);
	tmp[n] = '\0';
	/* strtod also takes hex floats and "nan(...)": allow only the plain forms. */
	for (size_t i = 0; i < n; i++) {
		char c = tmp[i];
		if (!((c >= '0' && c <= '9') || c == '.' || c == '-' || c == '+' || c == 'e' ||
		      c == 'E' || c == 'n' || c == 'N' || c == 'a' || c == 'A' || c == 'i' ||
		      c == 'I' || c == 'f' || c == 'F' || c == 't' || c == 'T' || c == 'y' ||
		      c == 'Y'))
			return false;
	}
	if (strpbrk(tmp, "nNiI")) {
		const char *s = tmp + (tmp[0] == '-' || tmp[0] == '+');
		if (strcasecmp(s, "nan") == 0)
			*out = NAN;
		else if (strcasecmp(s, "inf") == 0 || strcasecmp(s, "infinity") == 0)
			*out = tmp[0] == '-' ? -INFINITY : INFINITY;
		else
			return false;
		return true;
	}
	errno = 0;
	*out = strtod(tmp, &end);
	return end == tmp + n && end != tmp && errno != ERANGE;
}

/* No control characters, except tab in free text. */
static bool text_clean(const char *v, size_t n, bool allow_tab)
{
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)v[i];
		if ((c < 0x20 && !(allow_tab && c == '\t')) || c == 0x7f)
			return false;
	}
	return true;
}

static int parse_value(const struct key_desc *d, const char *v, size_t n, struct ckpt_report *r,
		       const char **why)
{
	int64_t cnt;
	double real;

	switch (d->type) {
	case V_ONE:
		if (n != 1 || v[0] != '1')
			return reject(why, "value must be 1 (READY, WATCHDOG, STOPPING)", -EBADMSG);
		return 0;
	case V_BOOL:
		if (n != 1 || (v[0] != '0' && v[0] != '1'))
			return reject(why, "value must be 0 or 1 (SAVING, CORRUPTED)", -EBADMSG);
		if (d->bit == CKPT_R_SAVING)
			r->saving = v[0] - '0';
		else
			r->corrupted = v[0] - '0';
		return 0;
	case V_COUNT:
		if (!parse_count(v, n, &cnt))
			return reject(why, "STEP/EPOCH must be a non-negative decimal integer",
				      -EBADMSG);
		if (d->bit == CKPT_R_STEP)
			r->step = cnt;
		else
			r->epoch = cnt;
		return 0;
	case V_REAL:
		if (!parse_real(v, n, &real))
			return reject(why, "LOSS/VAL_LOSS must be a decimal number, nan or inf",
				      -EBADMSG);
		if (d->bit == CKPT_R_LOSS)
			r->loss = real;
		else
			r->val_loss = real;
		return 0;
	case V_PATH:
		if (n == 0 || v[0] != '/')
			return reject(why, "CHECKPOINT must be an absolute path", -EBADMSG);
		if (n > CKPT_NOTIFY_TEXT_MAX)
			return reject(why, "CHECKPOINT path is too long", -EBADMSG);
		if (!text_clean(v, n, false))
			return reject(why, "CHECKPOINT contains a control character", -EBADMSG);
		memcpy(r->checkpoint, v, n);
		r->checkpoint[n] = '\0';
		return 0;
	case V_TEXT:
		if (n > CKPT_NOTIFY_TEXT_MAX)
			return reject(why, "REASON/STATUS text is too long", -EBADMSG);
		if (!text_clean(v, n, true))
			return reject(why, "REASON/STATUS contains a control character", -EBADMSG);
		memcpy(d->bit == CKPT_R_REASON ? r->reason : r->status, v, n);
		(d->bit == CKPT_R_REASON ? r->reason : r->status)[n] = '\0';
		return 0;
	}
	return reject(why, "internal: unknown value type", -EBADMSG);
}

int ckpt_notify_parse(const char *buf, size_t len, struct ckpt_report *r, const char **why)
{
	size_t pos = 0;

	memset(r, 0, sizeof(*r));
	if (why)
		*why = NULL;
	if (!buf || len == 0)
		return reject(why, "empty datagram", -EBADMSG);
	if (len > CKPT_NOTIFY_MAX)
		return reject(why, "datagram larger than 4096 bytes", -EMSGSIZE);
	if (memchr(buf, '\0', len))
		return reject(why, "datagram contains a NUL byte", -EBADMSG);
	if (!ckpt_utf8_valid(buf, len))
		return reject(why, "datagram is not valid UTF-8", -EBADMSG);
	/* One trailing newline is allowed (sd_notify senders often add it). */
	if (buf[len - 1] == '\n')
		len--;
	if (len == 0)
		return reject(why, "datagram has no KEY=VALUE line", -EBADMSG);

	while (pos <= len) {
		const char *line = buf + pos;
		const char *nl = memchr(line, '\n', len - pos);
		size_t n = nl ? (size_t)(nl - line) : len - pos;
		const char *eq = memchr(line, '=', n);
		const struct key_desc *d = NULL;
		size_t klen;
		int ret;

		if (n == 0)
			return reject(why, "empty line", -EBADMSG);
		if (!eq)
			return reject(why, "line without '=' (expected KEY=VALUE)", -EBADMSG);
		klen = (size_t)(eq - line);
		if (!key_valid(line, klen))
			return reject(why,
				      "bad key: keys are A-Z, 0-9 and _, start with a letter, "
				      "at most 64 bytes",
				      -EBADMSG);
		for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
			if (strlen(keys[i].name) == klen && memcmp(keys[i].name, line, klen) == 0)
				d = &keys[i];
		if (!d) {
			if (!text_clean(eq + 1, n - klen - 1, true))
				return reject(why, "value contains a control character", -EBADMSG);
			r->unknown_keys++;
		} else {
			if (r->have & d->bit)
				return reject(why, "the same key appears twice", -EBADMSG);
			ret = parse_value(d, eq + 1, n - klen - 1, r, why);
			if (ret < 0)
				return ret;
			r->have |= d->bit;
		}
		pos += n + 1;
	}
	if (r->have == 0 && r->unknown_keys == 0)
		return reject(why, "datagram has no KEY=VALUE line", -EBADMSG);
	return 0;
}
