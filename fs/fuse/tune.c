// SPDX-License-Identifier: MIT
/*
 * tune.c - kernel tuning of the mount that libfuse does not offer: the
 * readahead window of the mount's backing device info (bdi). The kernel
 * starts FUSE mounts at 128 KiB, so a cold sequential read of a checkpoint
 * goes in 128 KiB requests, one or two in flight. Requests are at most 1 MiB
 * (max_pages); a 16 MiB window keeps up to 16 of them in flight, so the
 * loop's threads reply to some while the reader copies out others: with a
 * 1 MiB window a reader and the daemon mostly took turns on the CPUs (a
 * fifth of a cold read from the resident tier was idle time; 16 MiB read
 * it 1.5-2x faster, docs/performance.md).
 *
 * The kernel lowers the window to what the INIT reply said when it processes
 * that reply, so this runs once at the first request after INIT. It needs
 * root (sysfs); without it reads still work, in smaller requests.
 */
#include "ckptfs_i.h"

#include <stdio.h>
#include <string.h>

#define READAHEAD_KB (16u << 10)

static pthread_once_t once = PTHREAD_ONCE_INIT;
static const char *tune_mnt;

/* The mount point as /proc/self/mountinfo writes it (octal escapes). */
static void escape(const char *in, char *out, size_t len)
{
	size_t j = 0;

	for (; *in && j + 5 < len; in++) {
		if (*in == ' ' || *in == '\t' || *in == '\n' || *in == '\\')
			j += (size_t)snprintf(out + j, len - j, "\\%03o", (unsigned char)*in);
		else
			out[j++] = *in;
	}
	out[j] = '\0';
}

static void tune_readahead(void)
{
	char line[8192], want[4096], dev[64] = "", mp[4096], path[128];
	FILE *f;

	escape(tune_mnt, want, sizeof(want));
	f = fopen("/proc/self/mountinfo", "r");
	if (!f)
		return;
	while (fgets(line, sizeof(line), f)) {
		char d[64];

		/* ID PARENT MAJ:MIN ROOT MOUNTPOINT ... - FSTYPE ... */
		if (sscanf(line, "%*s %*s %63s %*s %4095s", d, mp) == 2 && !strcmp(mp, want) &&
		    strstr(line, " - fuse.ckptfs "))
			snprintf(dev, sizeof(dev), "%s", d); /* the last (top) one */
	}
	fclose(f);
	if (!dev[0])
		return;
	snprintf(path, sizeof(path), "/sys/class/bdi/%s/read_ahead_kb", dev);
	f = fopen(path, "w");
	if (!f)
		return;
	fprintf(f, "%u\n", READAHEAD_KB);
	if (fclose(f) != 0)
		cfs_log("could not set %s to %u (reads stay in smaller requests)", path,
			READAHEAD_KB);
}

void cfs_tune_once(struct cfs *c)
{
	tune_mnt = c->opts.mountpoint;
	pthread_once(&once, tune_readahead);
}
