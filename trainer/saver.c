/* SPDX-License-Identifier: MIT */
/*
 * saver.c - write a checkpoint version and commit it by rename, in the
 * background by default.
 *
 * The durability dance (as in Redis rdbSave): write each file into
 * RUN/step-NNNNNNNN.tmp/, fsync it, fsync the directory, rename it to
 * RUN/step-NNNNNNNN, fsync RUN. On ckptfs the rename is the commit; on a
 * plain directory the fsyncs make it durable.
 *
 * Async saves: saver_save() copies the state into host buffers (on CUDA the
 * backend starts the device-to-host copy on its own stream) and hands them to
 * one writer thread. At most one save is in flight: the next saver_save()
 * waits for the previous one to be durable before it reuses the buffers, so
 * a snapshot is never overwritten while it is being written.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <ckptfs/notify.h>

#include "trainer_i.h"

struct saver {
	struct backend *be;
	const struct model *m;
	char run_dir[PATH_MAX];
	int run_fd;
	int sync;
	float *p, *mo, *v; /* the snapshot */
	struct tstate st;
	pthread_t thread;
	int have_thread;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int pending; /* a snapshot is waiting for or being written */
	int quit;
	int result; /* of the last finished save, until saver_save/saver_wait returns it */
	int64_t last_step;
	/* figures for saver_report() and the benchmark */
	int nsaves;
	double block_total, block_max, write_total;
	double writer_cpu; /* CPU seconds of the writer thread (async) */
};

static int write_file(int dfd, const char *name, struct saver *sv, int kind)
{
	int fd = openat(dfd, name, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644), ret;

	if (fd < 0)
		return -errno;
	if (kind == 0) {
		struct st_block b = {"", sv->p};
		char step[32], epoch[32];
		const char *meta[] = {"format", "pt", "preset", sv->m->p->name,
				      "step",	step, "epoch",	epoch};

		snprintf(step, sizeof(step), "%" PRId64, sv->st.step);
		snprintf(epoch, sizeof(epoch), "%" PRId64, sv->st.epoch);
		ret = st_write(fd, sv->m, &b, 1, meta, 4);
	} else if (kind == 1) {
		struct st_block b[2] = {{"exp_avg.", sv->mo}, {"exp_avg_sq.", sv->v}};
		char t[32];
		const char *meta[] = {"optimizer", "AdamW", "step", t};

		snprintf(t, sizeof(t), "%" PRId64, sv->st.step);
		ret = st_write(fd, sv->m, b, 2, meta, 2);
	} else {
		char *txt = tstate_dump(&sv->st);

		ret = txt ? write_all(fd, txt, strlen(txt)) : -ENOMEM;
		free(txt);
	}
	if (!ret && fsync(fd) < 0)
		ret = -errno; /* never retried: after EIO the page cache may lie */
	if (close(fd) < 0 && !ret)
		ret = -errno;
	return ret;
}

/* Remove a .tmp version left by a crash (files only: we never make subdirs). */
static int remove_stale(int run_fd, const char *name)
{
	int fd = openat(run_fd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	DIR *d;
	struct dirent *e;

	if (fd < 0)
		return -errno;
	d = fdopendir(fd);
	if (!d) {
		close(fd);
		return -errno;
	}
	while ((e = readdir(d)))
		if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
			unlinkat(fd, e->d_name, 0);
	closedir(d);
	return unlinkat(run_fd, name, AT_REMOVEDIR) < 0 ? -errno : 0;
}

static void set_meta(int dfd, const char *key, const char *val)
{
	char name[64];

	snprintf(name, sizeof(name), "user.ckpt.meta.%s", key);
	if (fsetxattr(dfd, name, val, strlen(val), 0) < 0 && errno != ENOTSUP &&
	    errno != EOPNOTSUPP)
		fprintf(stderr, "ckpt-train: warning: cannot set %s on the checkpoint: %s\n", name,
			strerror(errno));
}

static int commit_version(struct saver *sv, char *final, size_t flen)
{
	char name[64], tmp[96], buf[64];
	int dfd = -1, ret;
	static const char *const files[] = {"model.safetensors", "optimizer.safetensors",
					    "trainer_state.json"};

	snprintf(name, sizeof(name), "step-%08" PRId64, sv->st.step);
	snprintf(tmp, sizeof(tmp), "%s.tmp", name);
	if (mkdirat(sv->run_fd, tmp, 0755) < 0) {
		if (errno != EEXIST || remove_stale(sv->run_fd, tmp) < 0) {
			/* Could not clear it (e.g. kept by the filesystem): use our own name. */
			snprintf(tmp, sizeof(tmp), "%s.tmp.%d", name, (int)getpid());
			remove_stale(sv->run_fd, tmp);
		}
		if (mkdirat(sv->run_fd, tmp, 0755) < 0) {
			ret = -errno;
			fprintf(stderr, "ckpt-train: cannot create %s/%s: %s\n", sv->run_dir, tmp,
				strerror(errno));
			return ret;
		}
	}
	dfd = openat(sv->run_fd, tmp, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0) {
		ret = -errno;
		goto fail;
	}
	for (int k = 0; k < 3; k++) {
		ret = write_file(dfd, files[k], sv, k);
		if (ret < 0) {
			fprintf(stderr, "ckpt-train: writing %s/%s/%s failed: %s\n", sv->run_dir,
				tmp, files[k], strerror(-ret));
			goto fail;
		}
	}
	/* Metadata before the rename, so that ckptfs records it in the commit. */
	snprintf(buf, sizeof(buf), "%" PRId64, sv->st.step);
	set_meta(dfd, "step", buf);
	snprintf(buf, sizeof(buf), "%" PRId64, sv->st.epoch);
	set_meta(dfd, "epoch", buf);
	if (isfinite(sv->st.last_val_loss) && sv->st.last_val_step == sv->st.step) {
		snprintf(buf, sizeof(buf), "%.9g", sv->st.last_val_loss);
		set_meta(dfd, "val_loss", buf);
	}
	if (fsync(dfd) < 0) {
		ret = -errno;
		goto fail;
	}
	close(dfd);
	dfd = -1;
	snprintf(final, flen, "%s", name);
	/* A committed version of this name may exist (a previous attempt got
	 * further); committed versions are immutable, so take the next free name. */
	for (int i = 2; renameat(sv->run_fd, tmp, sv->run_fd, final) < 0; i++) {
		if ((errno != EEXIST && errno != ENOTEMPTY) || i > 99) {
			ret = -errno;
			goto fail;
		}
		snprintf(final, flen, "%s-r%d", name, i);
	}
	if (fsync(sv->run_fd) < 0) {
		ret = -errno;
		fprintf(stderr, "ckpt-train: fsync of %s failed: %s\n", sv->run_dir,
			strerror(errno));
		return ret;
	}
	return 0;
fail:
	if (dfd >= 0)
		close(dfd);
	fprintf(stderr, "ckpt-train: checkpoint step %" PRId64 " in %s failed: %s\n", sv->st.step,
		sv->run_dir, strerror(-ret));
	remove_stale(sv->run_fd, tmp);
	return ret;
}

static int do_save(struct saver *sv)
{
	char final[96];
	double t0 = now_s();
	int ret;

	ckpt_notifyf("SAVING=1");
	ret = sv->be->snap_wait(sv->be);
	steplog_printf("copied %" PRId64 " %.6f\n", sv->st.step, now_s());
	if (!ret)
		ret = commit_version(sv, final, sizeof(final));
	if (!ret) {
		double t1 = now_s();

		steplog_printf("commit %" PRId64 " %.6f %.6f\n", sv->st.step, t1, t1 - t0);
		pthread_mutex_lock(&sv->mu);
		sv->last_step = sv->st.step;
		pthread_mutex_unlock(&sv->mu);
		/* No STEP= here: training has moved on, and progress must not go back. */
		ckpt_notifyf("CHECKPOINT=%s/%s\nSAVING=0", sv->run_dir, final);
		fprintf(stderr, "ckpt-train: checkpoint %s/%s committed (%s) write_s=%.6f\n",
			sv->run_dir, final, sv->st.reason, now_s() - t0);
	} else {
		ckpt_notifyf("SAVING=0\nSTATUS=checkpoint at step %" PRId64 " failed: %s",
			     sv->st.step, strerror(-ret));
	}
	sv->write_total += now_s() - t0;
	return ret;
}

static void *writer(void *arg)
{
	struct saver *sv = arg;

	/* Background I/O should take CPU from training only when it is idle
	 * (Linux nice values are per thread). Failure just leaves it at 0. */
	setpriority(PRIO_PROCESS, (id_t)gettid(), 10);
	pthread_mutex_lock(&sv->mu);
	for (;;) {
		while (!sv->pending && !sv->quit)
			pthread_cond_wait(&sv->cv, &sv->mu);
		if (!sv->pending)
			break;
		pthread_mutex_unlock(&sv->mu);
		int ret = do_save(sv);
		struct rusage ru;

		pthread_mutex_lock(&sv->mu);
		if (getrusage(RUSAGE_THREAD, &ru) == 0)
			sv->writer_cpu = (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
					 (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1e-6;
		sv->result = ret;
		sv->pending = 0;
		pthread_cond_broadcast(&sv->cv);
	}
	pthread_mutex_unlock(&sv->mu);
	return NULL;
}

int saver_create(struct backend *be, const struct model *m, const char *run_dir, int sync,
		 struct saver **out)
{
	struct saver *sv = calloc(1, sizeof(*sv));
	size_t sz = m->n * sizeof(float);
	sigset_t all, old;
	int ret;

	if (!sv)
		return -ENOMEM;
	sv->be = be;
	sv->m = m;
	sv->sync = sync;
	sv->last_step = -1;
	sv->run_fd = -1;
	pthread_mutex_init(&sv->mu, NULL);
	pthread_cond_init(&sv->cv, NULL);
	if (mkdir(run_dir, 0755) < 0 && errno != EEXIST) {
		ret = -errno;
		fprintf(stderr, "ckpt-train: cannot create run directory %s: %s\n", run_dir,
			strerror(errno));
		goto fail;
	}
	if (!realpath(run_dir, sv->run_dir) ||
	    (sv->run_fd = open(sv->run_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0) {
		ret = -errno;
		fprintf(stderr, "ckpt-train: cannot open run directory %s: %s\n", run_dir,
			strerror(errno));
		goto fail;
	}
	sv->p = be->host_alloc(be, sz);
	sv->mo = be->host_alloc(be, sz);
	sv->v = be->host_alloc(be, sz);
	if (!sv->p || !sv->mo || !sv->v) {
		ret = -ENOMEM;
		fprintf(stderr,
			"ckpt-train: cannot allocate %zu MiB of host memory for the "
			"checkpoint snapshot\n",
			3 * sz >> 20);
		goto fail;
	}
	/* Touch the pages now, so the first save does not page-fault them in. */
	memset(sv->p, 0, sz);
	memset(sv->mo, 0, sz);
	memset(sv->v, 0, sz);
	if (!sync) {
		/* Signals are for the training loop, not the writer. */
		sigfillset(&all);
		pthread_sigmask(SIG_BLOCK, &all, &old);
		ret = -pthread_create(&sv->thread, NULL, writer, sv);
		pthread_sigmask(SIG_SETMASK, &old, NULL);
		if (ret < 0)
			goto fail;
		sv->have_thread = 1;
	}
	*out = sv;
	return 0;
fail:
	saver_destroy(sv);
	return ret;
}

int saver_save(struct saver *sv, const struct tstate *s, double *blocked)
{
	double t0 = now_s(), dt;
	int ret, earlier;

	steplog_printf("save %" PRId64 " %.6f\n", s->step, t0);
	pthread_mutex_lock(&sv->mu);
	while (sv->pending)
		pthread_cond_wait(&sv->cv, &sv->mu);
	earlier = sv->result;
	sv->result = 0;
	pthread_mutex_unlock(&sv->mu);

	sv->st = *s;
	ret = sv->be->snap_begin(sv->be, sv->p, sv->mo, sv->v);
	if (ret < 0)
		return ret;
	if (sv->sync) {
		ret = do_save(sv);
	} else {
		pthread_mutex_lock(&sv->mu);
		sv->pending = 1;
		pthread_cond_broadcast(&sv->cv);
		pthread_mutex_unlock(&sv->mu);
	}
	dt = now_s() - t0;
	*blocked = dt;
	sv->nsaves++;
	return ret < 0 ? ret : earlier;
}

int saver_wait(struct saver *sv)
{
	int ret;

	pthread_mutex_lock(&sv->mu);
	while (sv->pending)
		pthread_cond_wait(&sv->cv, &sv->mu);
	ret = sv->result;
	sv->result = 0;
	pthread_mutex_unlock(&sv->mu);
	return ret;
}

int64_t saver_last_step(struct saver *sv)
{
	int64_t s;

	pthread_mutex_lock(&sv->mu);
	s = sv->last_step;
	pthread_mutex_unlock(&sv->mu);
	return s;
}

void saver_note_blocking(struct saver *sv, double s)
{
	sv->block_total += s;
	if (s > sv->block_max)
		sv->block_max = s;
}

void saver_report(struct saver *sv)
{
	fprintf(stderr,
		"ckpt-train: saves=%d mode=%s blocking_total_s=%.6f blocking_max_s=%.6f "
		"write_total_s=%.6f writer_cpu_s=%.3f\n",
		sv->nsaves, sv->sync ? "sync" : "async", sv->block_total, sv->block_max,
		sv->write_total, sv->writer_cpu);
}

void saver_destroy(struct saver *sv)
{
	if (!sv)
		return;
	if (sv->have_thread) {
		pthread_mutex_lock(&sv->mu);
		sv->quit = 1;
		pthread_cond_broadcast(&sv->cv);
		pthread_mutex_unlock(&sv->mu);
		pthread_join(sv->thread, NULL);
	}
	if (sv->p)
		sv->be->host_free(sv->be, sv->p);
	if (sv->mo)
		sv->be->host_free(sv->be, sv->mo);
	if (sv->v)
		sv->be->host_free(sv->be, sv->v);
	if (sv->run_fd >= 0)
		close(sv->run_fd);
	pthread_mutex_destroy(&sv->mu);
	pthread_cond_destroy(&sv->cv);
	free(sv);
}
