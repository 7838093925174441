// SPDX-License-Identifier: MIT
/*
 * backend.c - which backend a store name means: rados://POOL[/NS][?...] is
 * a Ceph RADOS pool, anything else a directory.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "backend_i.h"

int sb_open(const char *where, const struct ckpt_store_opts *opts, struct sb **out, char *err,
	    size_t errlen)
{
	if (!strncmp(where, "rados://", 8)) {
#ifdef CKPT_HAVE_RADOS
		return rados_sb_open(where, opts, out, err, errlen);
#else
		snprintf(err, errlen,
			 "%s: this ckptfs was built without RADOS support (librados); use a "
			 "store directory, or a build with librados-dev installed",
			 where);
		return -EPROTONOSUPPORT;
#endif
	}
	return dir_open(where, opts, out, err, errlen);
}
