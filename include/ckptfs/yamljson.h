/* SPDX-License-Identifier: MIT */
/*
 * yamljson.h - read a YAML (or JSON) document into a jansson tree, with the
 * YAML 1.2 core schema for plain scalars. The job spec model uses it; so may
 * any YAML config file (ckptd's --config). Needs yaml_dep and jansson_dep.
 */
#ifndef CKPTFS_YAMLJSON_H
#define CKPTFS_YAMLJSON_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

/* NULL with err = "ORIGIN: line L column C: reason" on a bad document.
 * Plain scalars: null/~, true/false, integers (also 0x1F and 0o17), floats,
 * .inf/-.inf/.nan (any of YAML's spellings). */
json_t *ckpt_yaml_to_json(const char *text, size_t len, const char *origin, char *err,
			  size_t errlen);

/* JSON has no infinities and no NaN (jansson refuses them), so YAML's .inf,
 * -.inf and .nan become {"!!float": ".inf" | "-.inf" | ".nan"}: a number to
 * ckpt_json_number, which validators use, so they reject it as out of range
 * like any other number. The form survives a trip through JSON (ckpt sends
 * a YAML spec to ckptd as JSON). */
#define CKPT_YAML_FLOAT_KEY "!!float"

/* A JSON number, or one of the non-finite forms above: true and *out. */
bool ckpt_json_number(const json_t *v, double *out);

#endif /* CKPTFS_YAMLJSON_H */
