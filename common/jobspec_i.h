/* SPDX-License-Identifier: MIT */
/*
 * jobspec_i.h - internals shared by the jobspec*.c files of libckptcommon.
 */
#ifndef CKPTFS_JOBSPEC_I_H
#define CKPTFS_JOBSPEC_I_H

#include "ckptfs/jobspec.h"

#include <jansson.h>

/* Parse YAML (or JSON) text into a jansson tree; NULL with err set. */
json_t *jobspec_yaml_parse(const char *text, size_t len, const char *origin, char *err,
			   size_t errlen);

/* Overlay a parsed tree on *js; -EINVAL with err "ORIGIN: PATH: reason". */
int jobspec_apply_tree(struct ckpt_jobspec *js, json_t *root, const char *origin, char *err,
		       size_t errlen);

#endif /* CKPTFS_JOBSPEC_I_H */
