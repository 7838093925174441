// SPDX-License-Identifier: MIT
/*
 * job.c - job specs on the client side: a YAML (or JSON) file becomes the
 * JSON document the API takes (SPEC §5: "JSON accepted by the API"), and
 * `--set key.path=value` overrides land in it. Only what the user wrote is
 * sent: ckptd applies the layers below it (built-in defaults, the project
 * policy file) and validates the result (unknown keys, types, ranges), so a
 * spec means the same whether it comes from ckpt or from curl. YAML is read
 * by the project's one YAML reader (include/ckptfs/yamljson.h).
 */
#include "ckpt.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "ckptfs/yamljson.h"

/* Job specs are small; ckptd refuses bodies over 1 MiB anyway. */
#define JOB_MAX_BYTES (1u << 20)

json_t *ckpt_yaml_scalar(const char *s, bool quoted)
{
	char err[256];
	json_t *j;

	if (quoted || !s[0])
		return json_string(s);
	/* A value is a one-line YAML document: 1e-4, true, [python3, t.py], text. */
	j = ckpt_yaml_to_json(s, strlen(s), "--set", err, sizeof(err));
	return j ? j : json_string(s);
}

static char *read_all(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *buf;
	size_t n;

	if (!f)
		return NULL;
	buf = malloc(JOB_MAX_BYTES + 1);
	if (!buf)
		abort();
	n = fread(buf, 1, JOB_MAX_BYTES + 1, f);
	if (ferror(f) || n > JOB_MAX_BYTES) {
		errno = ferror(f) ? EIO : EFBIG;
		fclose(f);
		free(buf);
		return NULL;
	}
	fclose(f);
	buf[n] = '\0';
	*len = n;
	return buf;
}

json_t *ckpt_job_load(const char *path)
{
	char err[512], *text;
	size_t len = 0, i;
	json_t *j;

	text = read_all(path, &len);
	if (!text) {
		ckpt_err("cannot read job spec %s: %s. Check the path.", path,
			 errno == EFBIG ? "larger than 1 MiB" : strerror(errno));
		return NULL;
	}
	for (i = 0; i < len && strchr(" \t\r\n", text[i]); i++)
		;
	if (i < len && text[i] == '{') {
		/* JSON is YAML too, but jansson is stricter (no trailing commas,
		 * no duplicate keys) and its messages are better for JSON. */
		json_error_t je;
		j = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je);
		if (!j)
			ckpt_err("%s: bad JSON at line %d, column %d: %s.", path, je.line,
				 je.column, je.text);
	} else {
		j = ckpt_yaml_to_json(text, len, path, err, sizeof(err));
		if (!j)
			ckpt_err("%s. Fix the job spec and try again.", err);
	}
	free(text);
	if (j && !json_is_object(j)) {
		ckpt_err("%s: a job spec is a mapping (key: value lines), not a list or a scalar.",
			 path);
		json_decref(j);
		j = NULL;
	}
	return j;
}

int ckpt_job_set(json_t *job, const char *assign)
{
	const char *eq = strchr(assign, '=');
	char *key, *dot, *k;
	json_t *o = job;
	int ret = 0;

	if (!eq || eq == assign) {
		ckpt_err("--set wants key=value (e.g. hyperparams.lr=1e-4), not '%s'", assign);
		return -EINVAL;
	}
	key = strndup(assign, (size_t)(eq - assign));
	if (!key)
		abort();
	k = key;
	/* Walk (and create) the mappings named by the dotted path. */
	while ((dot = strchr(k, '.'))) {
		json_t *next;
		*dot = '\0';
		if (!k[0])
			goto bad;
		next = json_object_get(o, k);
		if (!next) {
			next = json_object();
			json_object_set_new(o, k, next);
		} else if (!json_is_object(next)) {
			ckpt_err("--set %s: '%s' is not a mapping in the job spec", assign, k);
			ret = -EINVAL;
			goto out;
		}
		o = next;
		k = dot + 1;
	}
	if (!k[0])
		goto bad;
	json_object_set_new(o, k, ckpt_yaml_scalar(eq + 1, false));
	goto out;
bad:
	ckpt_err("--set %s: empty key in the path; write e.g. hyperparams.lr=1e-4", assign);
	ret = -EINVAL;
out:
	free(key);
	return ret;
}
