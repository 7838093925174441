// SPDX-License-Identifier: MIT
/*
 * opts.c - the command line: `ckptfs STORE MOUNT [-f] [-o opt,...]`.
 * ckptfs's own -o options are taken out here; the rest (allow_other, ro,
 * fsname, max_idle_threads, ...) go on to libfuse.
 */
#include "ckptfs_i.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum {
	KEY_VERIFY,
	KEY_WRITE_BUFFER,
	KEY_ODIRECT,
	KEY_CHUNK_SIZE,
	KEY_OPEN_CACHE,
	KEY_RESIDENT,
	KEY_KERNEL_PERM,
	KEY_IO_URING,
};

struct raw {
	struct cfs_opts *o;
	int nonopt;
	int bad;
	unsigned autocommit, keep_last, keep_best, max_age_days;
};

#define RAW(t, f)                                                                                  \
	{                                                                                          \
		t, offsetof(struct raw, f), 0                                                      \
	}

static const struct fuse_opt spec[] = {
	RAW("autocommit=%u", autocommit),
	RAW("keep_last=%u", keep_last),
	RAW("keep_best=%u", keep_best),
	RAW("max_age_days=%u", max_age_days),
	FUSE_OPT_KEY("verify=", KEY_VERIFY),
	FUSE_OPT_KEY("write_buffer=", KEY_WRITE_BUFFER),
	FUSE_OPT_KEY("odirect=", KEY_ODIRECT),
	FUSE_OPT_KEY("chunk_size=", KEY_CHUNK_SIZE),
	FUSE_OPT_KEY("open_cache=", KEY_OPEN_CACHE),
	FUSE_OPT_KEY("resident=", KEY_RESIDENT),
	FUSE_OPT_KEY("io_uring", KEY_IO_URING),
	/* libfuse's, kept for it: other users reach the mount, or the
	 * kernel's checks were asked for (perm.c) */
	FUSE_OPT_KEY("allow_other", KEY_KERNEL_PERM),
	FUSE_OPT_KEY("allow_root", KEY_KERNEL_PERM),
	FUSE_OPT_KEY("default_permissions", KEY_KERNEL_PERM),
	FUSE_OPT_END,
};

int cfs_parse_size(const char *s, size_t *out)
{
	unsigned long long x;
	char *end;
	int shift = 0;

	errno = 0;
	x = strtoull(s, &end, 10);
	if (errno || end == s || s[0] == '-')
		return -EINVAL;
	switch (*end) {
	case 'k':
	case 'K':
		shift = 10;
		end++;
		break;
	case 'm':
	case 'M':
		shift = 20;
		end++;
		break;
	case 'g':
	case 'G':
		shift = 30;
		end++;
		break;
	case 't':
	case 'T':
		shift = 40;
		end++;
		break;
	default:
		break;
	}
	if (*end == 'i' && shift)
		end++;
	if ((*end == 'B' || *end == 'b') && end[1] == '\0')
		end++;
	if (*end || (shift && x > (~0ull >> shift)))
		return -EINVAL;
	*out = (size_t)(x << shift);
	return 0;
}

static int proc(void *data, const char *arg, int key, struct fuse_args *outargs)
{
	struct raw *r = data;
	const char *v = strchr(arg, '=');

	switch (key) {
	case FUSE_OPT_KEY_NONOPT:
		if (r->nonopt++ == 0) {
			r->o->store_dir = strdup(arg);
			return 0;
		}
		if (r->nonopt == 2)
			return 1; /* the mount point, for fuse_parse_cmdline */
		fprintf(stderr,
			"ckptfs: unexpected argument '%s'; usage: ckptfs STORE MOUNT "
			"[-f] [-o opt,...]\n",
			arg);
		r->bad = 1;
		return -1;
	case KEY_VERIFY:
		v++;
		if (!strcmp(v, "always"))
			r->o->verify = CKPT_VERIFY_ALWAYS;
		else if (!strcmp(v, "first"))
			r->o->verify = CKPT_VERIFY_FIRST;
		else if (!strcmp(v, "off"))
			r->o->verify = CKPT_VERIFY_OFF;
		else {
			fprintf(stderr, "ckptfs: -o verify=%s: expected always, first or off\n", v);
			r->bad = 1;
			return -1;
		}
		return 0;
	case KEY_ODIRECT:
		v++;
		if (!strcmp(v, "on"))
			r->o->direct_io = CKPT_DIRECT_ON;
		else if (!strcmp(v, "off"))
			r->o->direct_io = CKPT_DIRECT_OFF;
		else {
			fprintf(stderr, "ckptfs: -o odirect=%s: expected on or off\n", v);
			r->bad = 1;
			return -1;
		}
		return 0;
	case KEY_OPEN_CACHE:
		v++;
		if (!strcmp(v, "auto"))
			r->o->open_cache = CFS_OPEN_CACHE_AUTO;
		else if (!strcmp(v, "on"))
			r->o->open_cache = CFS_OPEN_CACHE_ON;
		else if (!strcmp(v, "off"))
			r->o->open_cache = CFS_OPEN_CACHE_OFF;
		else {
			fprintf(stderr, "ckptfs: -o open_cache=%s: expected auto, on or off\n", v);
			r->bad = 1;
			return -1;
		}
		return 0;
	case KEY_CHUNK_SIZE:
		if (cfs_parse_size(v + 1, &r->o->chunk_size) < 0 || r->o->chunk_size < 4096 ||
		    r->o->chunk_size > (64u << 20)) {
			fprintf(stderr,
				"ckptfs: -o chunk_size=%s: expected a size from 4K to 64M, "
				"such as 1M or 4M\n",
				v + 1);
			r->bad = 1;
			return -1;
		}
		return 0;
	case KEY_RESIDENT:
		if (cfs_parse_size(v + 1, &r->o->resident) < 0) {
			fprintf(stderr,
				"ckptfs: -o resident=%s: expected a size such as 2G, or 0 "
				"(off)\n",
				v + 1);
			r->bad = 1;
			return -1;
		}
		return 0;
	case KEY_IO_URING:
		r->o->io_uring = true;
		return 0;
	case KEY_KERNEL_PERM:
		r->o->kernel_perm = true;
		return 1;
	case KEY_WRITE_BUFFER:
		if (cfs_parse_size(v + 1, &r->o->write_buffer) < 0 || !r->o->write_buffer) {
			fprintf(stderr,
				"ckptfs: -o write_buffer=%s: expected a size such as "
				"64M or 1G\n",
				v + 1);
			r->bad = 1;
			return -1;
		}
		return 0;
	default:
		return 1;
	}
}

static void usage(void)
{
	printf("usage: ckptfs STORE MOUNT [-f] [-o opt,...]\n"
	       "Mount the checkpoint store in directory STORE on MOUNT (creates the store\n"
	       "when STORE is empty or missing). See docs/mount.md.\n\n"
	       "ckptfs options:\n"
	       "    -o autocommit=SECONDS  commit an open version idle that long (0 = off)\n"
	       "    -o verify=MODE         check chunk hashes on every read from the store:\n"
	       "                           first (default) or always (the same), or off\n"
	       "    -o write_buffer=SIZE   bytes of writes in flight (default 64M)\n"
	       "    -o odirect=on|off      chunk reads and writes bypass the page cache\n"
	       "                           (O_DIRECT; default on, see docs/performance.md)\n"
	       "    -o chunk_size=SIZE     size of new chunks (default 1M; 4K to 64M)\n"
	       "    -o open_cache=MODE     files of open versions and the kernel page cache:\n"
	       "                           auto (default: write-only opens bypass it, opens\n"
	       "                           that can read use it, so shared mmap works), on\n"
	       "                           (every open uses it) or off (none does; shared\n"
	       "                           mmap of a file being written fails with ENODEV)\n"
	       "    -o resident=SIZE       keep the newest SIZE bytes written in memory and\n"
	       "                           fill the kernel's page cache with each version\n"
	       "                           at commit (restore at memory speed; default 0: off)\n"
	       "    -o io_uring            requests over io_uring, one queue per CPU, where\n"
	       "                           the kernel offers it (Linux 6.14+, fuse module\n"
	       "                           parameter enable_uring=Y; else /dev/fuse)\n"
	       "    -o keep_last=N, keep_best=N, max_age_days=N\n"
	       "                           retention for runs that set none (0 = no limit)\n\n");
}

int cfs_opts_parse(struct fuse_args *args, struct cfs_opts *o, struct fuse_cmdline_opts *co)
{
	struct raw r = {.o = o};

	memset(o, 0, sizeof(*o));
	memset(co, 0, sizeof(*co));
	o->verify = CKPT_VERIFY_FIRST;
	/* O_DIRECT chunk writes won every write+commit round through the
	 * mount (docs/performance.md); the store falls back where unsupported. */
	o->direct_io = CKPT_DIRECT_ON;
	if (fuse_opt_parse(args, &r, spec, proc) < 0 || r.bad)
		return -1;
	o->autocommit_s = r.autocommit;
	o->retention.keep_last = r.keep_last;
	o->retention.keep_best = r.keep_best;
	o->retention.max_age_days = r.max_age_days;
	if (fuse_parse_cmdline(args, co) < 0)
		return -1;
	if (co->show_help) {
		usage();
		fuse_cmdline_help();
		fuse_lowlevel_help();
		return 1;
	}
	if (co->show_version) {
		printf("ckptfs %s (store format %d)\n", CKPTFS_VERSION, CKPT_STORE_FORMAT);
		fuse_lowlevel_version();
		return 1;
	}
	if (!o->store_dir || !co->mountpoint) {
		fprintf(stderr,
			"ckptfs: missing %s; usage: ckptfs STORE MOUNT [-f] [-o opt,...] "
			"(ckptfs --help lists the options)\n",
			o->store_dir ? "the mount point" : "the store directory and mount point");
		return -1;
	}
	o->mountpoint = co->mountpoint;
	co->mountpoint = NULL;
	return 0;
}

void cfs_opts_free(struct cfs_opts *o)
{
	free(o->store_dir);
	free(o->mountpoint);
}
