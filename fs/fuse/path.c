// SPDX-License-Identifier: MIT
/*
 * path.c - what a path in the mount names (SPEC §2): the root, .stats, a run,
 * its latest/best links, a version, its .manifest, or a path inside it.
 */
#include "ckptfs_i.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* Copy the component at *s (up to '/' or the end) into out; advance *s. */
static int take_component(const char **s, char *out)
{
	const char *end = strchr(*s, '/');
	size_t len = end ? (size_t)(end - *s) : strlen(*s);

	if (len == 0)
		return -EINVAL;
	if (len > CKPT_NAME_MAX)
		return -ENAMETOOLONG;
	memcpy(out, *s, len);
	out[len] = '\0';
	*s += len;
	if (**s == '/')
		(*s)++;
	return 0;
}

int cfs_path_parse(const char *path, struct cfs_path *p)
{
	const char *s;
	int ret;

	memset(p, 0, sizeof(*p));
	p->full = strdup(path);
	if (!p->full)
		return -ENOMEM;
	p->rel = "";
	s = p->full;
	if (*s == '\0') {
		p->kind = CFS_ROOT;
		return 0;
	}
	ret = take_component(&s, p->run);
	if (ret < 0)
		goto fail;
	if (*s == '\0') {
		p->kind = strcmp(p->run, ".stats") == 0 ? CFS_STATS : CFS_RUN;
		return 0;
	}
	if (strcmp(p->run, ".stats") == 0) {
		ret = -ENOTDIR;
		goto fail;
	}
	ret = take_component(&s, p->ver);
	if (ret < 0)
		goto fail;
	if (*s == '\0') {
		if (strcmp(p->ver, "latest") == 0)
			p->kind = CFS_LATEST;
		else if (strcmp(p->ver, "best") == 0)
			p->kind = CFS_BEST;
		else
			p->kind = CFS_VERSION;
		return 0;
	}
	p->rel = s;
	p->kind = strcmp(s, ".manifest") == 0 ? CFS_MANIFEST : CFS_NODE;
	return 0;
fail:
	cfs_path_free(p);
	return ret;
}

void cfs_path_free(struct cfs_path *p)
{
	free(p->full);
	p->full = NULL;
}

int cfs_path_join(const char *parent, const char *name, char **out)
{
	size_t pl = strlen(parent), nl = strlen(name);
	char *s;

	if (nl > CKPT_NAME_MAX)
		return -ENAMETOOLONG;
	if (nl == 0 || strchr(name, '/'))
		return -EINVAL;
	s = malloc(pl + nl + 2);
	if (!s)
		return -ENOMEM;
	if (pl) {
		memcpy(s, parent, pl);
		s[pl] = '/';
		memcpy(s + pl + 1, name, nl + 1);
	} else {
		memcpy(s, name, nl + 1);
	}
	*out = s;
	return 0;
}
