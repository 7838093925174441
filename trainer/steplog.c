/* SPDX-License-Identifier: MIT */
/*
 * steplog.c - opt-in timing log for benchmarks: CKPT_TRAIN_STEP_LOG=PATH.
 *
 * bench/trainer/bench_overhead.py measures what a checkpoint costs the
 * training loop from inside one run: every loop iteration's wall and CPU
 * time, and when each save was handed off, copied and committed. Timestamps
 * taken here (CLOCK_MONOTONIC, in the process) are exact where a listener on
 * the notify socket would add its own scheduling delays on a busy machine.
 * One file for the process: the training loop and the writer thread both
 * append (stdio locks the stream per call), so the state is a file-scope
 * stream rather than a handle passed through the saver.
 *
 * Lines (times in seconds, CLOCK_MONOTONIC):
 *   step N T0 T1 CPU STALL BLOCK EVAL   one loop iteration (see main.c)
 *   save N T                            saver_save() entered (main thread)
 *   copied N T                          the snapshot copy is complete
 *   commit N T WRITE_S                  version N is durable
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "trainer_i.h"

static FILE *steplog_f;

int steplog_open(void)
{
	const char *path = getenv("CKPT_TRAIN_STEP_LOG");

	if (!path || !*path)
		return 0;
	steplog_f = fopen(path, "we");
	if (!steplog_f) {
		fprintf(stderr,
			"ckpt-train: cannot open the step log CKPT_TRAIN_STEP_LOG=%s: %s; "
			"fix the path or unset the variable\n",
			path, strerror(errno));
		return -errno;
	}
	return 0;
}

int steplog_on(void)
{
	return steplog_f != NULL;
}

void steplog_printf(const char *fmt, ...)
{
	va_list ap;

	if (!steplog_f)
		return;
	va_start(ap, fmt);
	vfprintf(steplog_f, fmt, ap);
	va_end(ap);
}

/* Nanosecond-resolution CPU time of the calling thread (getrusage() counts
 * in scheduler ticks on this kernel, too coarse for one step). */
double steplog_cpu_s(void)
{
	struct timespec ts;

	if (clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts) < 0)
		return 0;
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

void steplog_close(void)
{
	if (!steplog_f)
		return;
	if (fclose(steplog_f) != 0)
		fprintf(stderr, "ckpt-train: writing the step log failed: %s\n", strerror(errno));
	steplog_f = NULL;
}
