// SPDX-License-Identifier: MIT
/*
 * jobspec_yaml.c - turn a YAML document into a jansson tree, so that YAML job
 * specs and JSON API bodies share one validator (jobspec.c).
 *
 * Plain scalars are typed by the YAML 1.2 core schema (null, true/false,
 * integers in decimal, 0x hex and 0o octal, floats, .inf/.nan); quoted
 * scalars are always strings. See yamljson.h for how .inf/.nan are held. Duplicate
 * keys, non-scalar keys, more than one document and alias bombs are
 * rejected: a spec is small, so a hard node budget is the simple defence.
 */
#include "jobspec_i.h"
#include "ckptfs/yamljson.h"

#include <errno.h>
#include <math.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#define YAML_MAX_NODES 20000
#define YAML_MAX_DEPTH 32

struct conv {
	yaml_document_t *doc;
	unsigned nodes;
	char *err;
	size_t errlen;
	const char *origin;
};

static int match(const char *re, const char *s)
{
	regex_t r;
	int ok;

	if (regcomp(&r, re, REG_EXTENDED | REG_NOSUB) != 0)
		return 0;
	ok = regexec(&r, s, 0, NULL, 0) == 0;
	regfree(&r);
	return ok;
}

static json_t *scalar_to_json(const yaml_node_t *n)
{
	const char *s = (const char *)n->data.scalar.value;

	if (n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
		return json_stringn(s, n->data.scalar.length);
	if (!s[0] || !strcmp(s, "~") || !strcmp(s, "null") || !strcmp(s, "Null") ||
	    !strcmp(s, "NULL"))
		return json_null();
	if (!strcmp(s, "true") || !strcmp(s, "True") || !strcmp(s, "TRUE"))
		return json_true();
	if (!strcmp(s, "false") || !strcmp(s, "False") || !strcmp(s, "FALSE"))
		return json_false();
	if (match("^[-+]?[0-9]+$", s)) {
		char *end;
		long long v;

		errno = 0;
		v = strtoll(s, &end, 10);
		if (errno == 0 && !*end)
			return json_integer(v);
		return json_real(strtod(s, NULL)); /* too big for 64 bits */
	}
	if (match("^0x[0-9a-fA-F]+$", s) || match("^0o[0-7]+$", s)) {
		unsigned long long v;

		errno = 0;
		v = strtoull(s + 2, NULL, s[1] == 'x' ? 16 : 8);
		if (errno == 0 && v <= INT64_MAX)
			return json_integer((json_int_t)v);
		return json_real((double)v); /* too big for 64 bits */
	}
	if (match("^[-+]?(\\.[0-9]+|[0-9]+(\\.[0-9]*)?)([eE][-+]?[0-9]+)?$", s))
		return json_real(strtod(s, NULL));
	if (match("^[-+]?\\.(inf|Inf|INF)$", s))
		return json_pack("{ss}", CKPT_YAML_FLOAT_KEY, s[0] == '-' ? "-.inf" : ".inf");
	if (match("^\\.(nan|NaN|NAN)$", s))
		return json_pack("{ss}", CKPT_YAML_FLOAT_KEY, ".nan");
	return json_stringn(s, n->data.scalar.length);
}

bool ckpt_json_number(const json_t *v, double *out)
{
	const char *f;

	if (json_is_number(v)) {
		*out = json_number_value(v);
		return true;
	}
	if (!json_is_object(v) || json_object_size(v) != 1 ||
	    !(f = json_string_value(json_object_get(v, CKPT_YAML_FLOAT_KEY))))
		return false;
	if (!strcmp(f, ".nan"))
		*out = NAN;
	else if (!strcmp(f, ".inf"))
		*out = INFINITY;
	else if (!strcmp(f, "-.inf"))
		*out = -INFINITY;
	else
		return false;
	return true;
}

static json_t *node_to_json(struct conv *c, yaml_node_t *n, int depth)
{
	json_t *out = NULL;

	if (!n)
		return json_null();
	if (++c->nodes > YAML_MAX_NODES || depth > YAML_MAX_DEPTH) {
		snprintf(c->err, c->errlen,
			 "%s: document too large or too deeply nested (limit %d nodes, depth %d)",
			 c->origin, YAML_MAX_NODES, YAML_MAX_DEPTH);
		return NULL;
	}
	switch (n->type) {
	case YAML_SCALAR_NODE:
		out = scalar_to_json(n);
		break;
	case YAML_SEQUENCE_NODE: {
		yaml_node_item_t *it;

		out = json_array();
		for (it = n->data.sequence.items.start; out && it < n->data.sequence.items.top;
		     it++) {
			json_t *v = node_to_json(c, yaml_document_get_node(c->doc, *it), depth + 1);

			if (!v || json_array_append_new(out, v)) {
				json_decref(out);
				return NULL;
			}
		}
		break;
	}
	case YAML_MAPPING_NODE: {
		yaml_node_pair_t *p;

		out = json_object();
		for (p = n->data.mapping.pairs.start; out && p < n->data.mapping.pairs.top; p++) {
			yaml_node_t *k = yaml_document_get_node(c->doc, p->key);
			json_t *v;
			const char *key;

			if (!k || k->type != YAML_SCALAR_NODE) {
				snprintf(c->err, c->errlen,
					 "%s: line %zu: a mapping key must be a plain name",
					 c->origin, k ? k->start_mark.line + 1 : 0);
				json_decref(out);
				return NULL;
			}
			key = (const char *)k->data.scalar.value;
			if (strlen(key) != k->data.scalar.length) {
				snprintf(c->err, c->errlen,
					 "%s: line %zu: a key contains a NUL byte", c->origin,
					 k->start_mark.line + 1);
				json_decref(out);
				return NULL;
			}
			if (json_object_get(out, key)) {
				snprintf(c->err, c->errlen, "%s: line %zu: duplicate key '%.64s'",
					 c->origin, k->start_mark.line + 1, key);
				json_decref(out);
				return NULL;
			}
			v = node_to_json(c, yaml_document_get_node(c->doc, p->value), depth + 1);
			if (!v || json_object_set_new(out, key, v)) {
				json_decref(out);
				return NULL;
			}
		}
		break;
	}
	default:
		break;
	}
	if (!out && !c->err[0])
		snprintf(c->err, c->errlen, "%s: out of memory", c->origin);
	return out;
}

json_t *jobspec_yaml_parse(const char *text, size_t len, const char *origin, char *err,
			   size_t errlen)
{
	yaml_parser_t parser;
	yaml_document_t doc, extra;
	struct conv c = {.err = err, .errlen = errlen, .origin = origin};
	json_t *out = NULL;

	err[0] = '\0';
	if (len > CKPT_JOBSPEC_MAX_BYTES) {
		snprintf(err, errlen, "%s: too large (%zu bytes; the limit is %u)", origin, len,
			 CKPT_JOBSPEC_MAX_BYTES);
		return NULL;
	}
	if (memchr(text, '\0', len)) {
		snprintf(err, errlen, "%s: contains a NUL byte; a job spec is UTF-8 text", origin);
		return NULL;
	}
	if (!yaml_parser_initialize(&parser)) {
		snprintf(err, errlen, "%s: out of memory", origin);
		return NULL;
	}
	yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
	if (!yaml_parser_load(&parser, &doc)) {
		snprintf(err, errlen, "%s: line %zu column %zu: %s%s%s", origin,
			 parser.problem_mark.line + 1, parser.problem_mark.column + 1,
			 parser.problem ? parser.problem : "invalid YAML",
			 parser.context ? " " : "", parser.context ? parser.context : "");
		yaml_parser_delete(&parser);
		return NULL;
	}
	c.doc = &doc;
	if (!yaml_document_get_root_node(&doc)) {
		snprintf(err, errlen, "%s: empty document; a job spec is a mapping of keys",
			 origin);
		goto out;
	}
	out = node_to_json(&c, yaml_document_get_root_node(&doc), 0);
	if (!out)
		goto out;
	if (!yaml_parser_load(&parser, &extra)) {
		snprintf(err, errlen, "%s: line %zu column %zu: %s", origin,
			 parser.problem_mark.line + 1, parser.problem_mark.column + 1,
			 parser.problem ? parser.problem : "invalid YAML");
		json_decref(out);
		out = NULL;
		goto out;
	}
	if (yaml_document_get_root_node(&extra)) {
		snprintf(err, errlen, "%s: more than one YAML document; give one job spec", origin);
		json_decref(out);
		out = NULL;
	}
	yaml_document_delete(&extra);
out:
	yaml_document_delete(&doc);
	yaml_parser_delete(&parser);
	return out;
}

json_t *ckpt_yaml_to_json(const char *text, size_t len, const char *origin, char *err,
			  size_t errlen)
{
	return jobspec_yaml_parse(text, len, origin, err, errlen);
}
