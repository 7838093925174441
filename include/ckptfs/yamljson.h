/* SPDX-License-Identifier: MIT */
/*
 * yamljson.h - read a YAML (or JSON) document into a jansson tree, with the
 * YAML 1.2 core schema for plain scalars. The job spec model uses it; so may
 * any YAML config file (ckptd's --config). Needs yaml_dep and jansson_dep.
 */
#ifndef CKPTFS_YAMLJSON_H
#define CKPTFS_YAMLJSON_H

#include <jansson.h>
#include <stddef.h>

/* NULL with err = "ORIGIN: line L column C: reason" on a bad document. */
json_t *ckpt_yaml_to_json(const char *text, size_t len, const char *origin, char *err,
			  size_t errlen);

#endif /* CKPTFS_YAMLJSON_H */
