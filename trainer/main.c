/* SPDX-License-Identifier: MIT */
/*
 * main.c - ckpt-train's training loop (SPEC §7): set up, resume, train,
 * evaluate, checkpoint, report over CKPT_NOTIFY_SOCKET, stop cleanly.
 *
 * Exact resume rests on one invariant: at every point where a checkpoint is
 * taken, (params, AdamW m/v, step, epoch, micro-batch, RNG state, epoch
 * seed, early-stopping counters) is the whole state the rest of the run
 * depends on. Evaluations at checkpoints write last_val_loss and lower
 * best_val_loss (the figure people read, and what `best` follows), never
 * the early-stopping counters (es_best_val_loss, bad_epochs): a
 * cancellation save that an uninterrupted run never makes must not change
 * when the run stops.
 */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include <ckptfs/notify.h>

#include "trainer_i.h"

static volatile sig_atomic_t stop_sig;

static void on_signal(int sig)
{
	stop_sig = sig;
}

struct trainer {
	struct opts o;
	const struct preset *p;
	struct model m;
	struct data d;
	struct backend *be;
	struct saver *sv;
	struct rng rng;
	struct tstate st;
	int64_t mbpe;	     /* micro-batches per epoch */
	int64_t total_steps; /* planned optimizer steps */
	char dev_note[320];  /* why this device: " (CUDA_VISIBLE_DEVICES is empty...)" */
	int64_t warmup;
	int64_t saved_step; /* the newest step already committed (or resumed from) */
	/* Blocking time of the last save, completed by the next step's stall. */
	int block_open;
	double block_s, stall0;
	/* This loop iteration's save hand-off and validation seconds (step log). */
	double it_block, it_eval;
	uint8_t *x, *y;
};

/* CPU seconds of the calling thread: with one OpenBLAS thread, the
 * training loop's own work, whatever else runs on the machine. */
static double thread_cpu_s(void)
{
	struct rusage ru;

	if (getrusage(RUSAGE_THREAD, &ru) < 0)
		return 0;
	return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
	       (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1e-6;
}

static const char *corpus_path(void)
{
	if (access(CKPT_TRAIN_CORPUS_INSTALLED, R_OK) == 0)
		return CKPT_TRAIN_CORPUS_INSTALLED;
	return CKPT_TRAIN_CORPUS_SOURCE;
}

static double schedule(const struct trainer *t, int64_t s)
{
	double lr = t->o.lr, frac;

	if (strcmp(t->o.sched, "constant") == 0)
		return lr;
	if (s < t->warmup)
		return lr * (double)(s + 1) / (double)t->warmup;
	frac = (double)(s - t->warmup) /
	       (double)(t->total_steps - t->warmup > 0 ? t->total_steps - t->warmup : 1);
	if (frac > 1)
		frac = 1;
	if (strcmp(t->o.sched, "linear") == 0)
		return lr * (1 - frac);
	return lr * 0.5 * (1 + cos(M_PI * frac));
}

/* Fail on a backend error: a corrupting device error was already reported
 * by the backend with CORRUPTED=1/REASON=. */
static int backend_failed(int ret, const char *what)
{
	fprintf(stderr, "ckpt-train: %s failed: %s\n", what, strerror(-ret));
	return be_cuda_corrupted() ? TRAIN_EXIT_CORRUPT : TRAIN_EXIT_FAIL;
}

static int evaluate(struct trainer *t, double *val)
{
	double sum = 0, s;
	int B = (int)t->o.batch_size, ret;

	for (size_t i = 0; i < t->d.n_val_ex; i += (size_t)B) {
		int n = (int)(t->d.n_val_ex - i < (size_t)B ? t->d.n_val_ex - i : (size_t)B);

		data_val_batch(&t->d, i, n, t->x, t->y);
		ret = t->be->eval(t->be, t->x, t->y, n, &s);
		if (ret < 0)
			return ret;
		sum += s;
	}
	*val = sum / (double)t->d.n_val_ex;
	return 0;
}

/* A save holds the loop in saver_save() and, if the snapshot copy is not
 * done by then, in the next optimizer step: report the sum. */
static void close_blocking(struct trainer *t)
{
	double s;

	if (!t->block_open)
		return;
	s = t->block_s + (t->be->stall_s - t->stall0);
	t->block_open = 0;
	saver_note_blocking(t->sv, s);
	fprintf(stderr, "ckpt-train: save step %" PRId64 " (%s) blocking_s=%.6f\n", t->saved_step,
		t->o.sync_save ? "sync" : "async", s);
}

static int save(struct trainer *t, const char *reason, int wait)
{
	int ret;

	if (t->saved_step == t->st.step)
		return 0;
	/* val_loss metadata is only ever the loss of these very weights. */
	if (t->o.ckpt_eval && t->st.last_val_step != t->st.step) {
		double e0 = now_s();

		ret = evaluate(t, &t->st.last_val_loss);
		if (ret < 0)
			return ret;
		t->st.last_val_step = t->st.step;
		if (t->st.last_val_loss < t->st.best_val_loss)
			t->st.best_val_loss = t->st.last_val_loss;
		t->it_eval += now_s() - e0;
	}
	for (int i = 0; i < 4; i++)
		t->st.rng[i] = t->rng.s[i];
	snprintf(t->st.reason, sizeof(t->st.reason), "%s", reason);
	close_blocking(t);
	t->stall0 = t->be->stall_s;
	ret = saver_save(t->sv, &t->st, &t->block_s);
	t->it_block += t->block_s;
	if (ret < 0)
		fprintf(stderr, "ckpt-train: an earlier checkpoint failed (%s); training goes on\n",
			strerror(-ret));
	t->saved_step = t->st.step;
	t->block_open = 1;
	if (wait) {
		ret = saver_wait(t->sv);
		close_blocking(t);
		return ret;
	}
	return 0;
}

static int resume(struct trainer *t, const char *dir, float *p, float **mo, float **v)
{
	char path[4096], err[1024];
	const char *ro = getenv("CKPT_RESTORE_OPTIMIZER");
	int restore_opt = !(ro && strcmp(ro, "0") == 0), ret;
	struct tstate s;

	ckpt_notifyf("SAVING=1\nSTATUS=loading checkpoint %s", dir);
	snprintf(path, sizeof(path), "%s/trainer_state.json", dir);
	ret = tstate_load(path, &s, err, sizeof(err));
	if (ret == -EPROTO) {
		fprintf(stderr, "ckpt-train: cannot resume: %s\n", err);
		return TRAIN_EXIT_CONFIG;
	}
	if (ret < 0)
		goto bad;
	if (strcmp(s.preset, t->p->name) != 0) {
		fprintf(stderr,
			"ckpt-train: cannot resume: %s holds a '%s' model but --model is "
			"'%s'; pass --model %s\n",
			dir, s.preset, t->p->name, s.preset);
		return TRAIN_EXIT_CONFIG;
	}
	snprintf(path, sizeof(path), "%s/model.safetensors", dir);
	{
		const char *pre[] = {""};
		float *dst[] = {p};

		ret = st_read(path, &t->m, pre, dst, 1, err, sizeof(err));
		if (ret < 0)
			goto bad;
	}
	if (restore_opt) {
		const char *pre[] = {"exp_avg.", "exp_avg_sq."};
		float *dst[2];

		*mo = malloc(t->m.n * sizeof(float));
		*v = malloc(t->m.n * sizeof(float));
		if (!*mo || !*v)
			return TRAIN_EXIT_FAIL;
		dst[0] = *mo;
		dst[1] = *v;
		snprintf(path, sizeof(path), "%s/optimizer.safetensors", dir);
		ret = st_read(path, &t->m, pre, dst, 2, err, sizeof(err));
		if (ret < 0)
			goto bad;
	}
	t->st.step = s.step;
	t->st.epoch = s.epoch;
	/* The data position is kept in examples, so a changed batch size still
	 * resumes at the right place (rounded down to a whole batch). */
	t->st.micro_batch = s.micro_batch * s.batch_size / t->o.batch_size;
	t->st.epoch_seed = s.epoch_seed;
	t->st.best_val_loss = s.best_val_loss;
	t->st.es_best_val_loss = s.es_best_val_loss;
	t->st.bad_epochs = s.bad_epochs;
	t->st.last_val_loss = s.last_val_loss;
	t->st.last_val_step = s.last_val_step;
	t->st.loss = s.loss;
	t->st.lr = s.lr;
	memcpy(t->rng.s, s.rng, sizeof(t->rng.s));
	t->saved_step = s.step;
	fprintf(stderr,
		"ckpt-train: resumed from %s at step %" PRId64 ", epoch %" PRId64
		" (optimizer state %s)\n",
		dir, s.step, s.epoch, restore_opt ? "restored" : "fresh");
	ckpt_notifyf("SAVING=0\nSTEP=%" PRId64, s.step);
	return 0;
bad:
	fprintf(stderr, "ckpt-train: cannot resume from %s: %s\n", dir, err);
	ckpt_notifyf("SAVING=0\nSTATUS=cannot resume from %s", dir);
	return TRAIN_EXIT_FAIL;
}

static void next_epoch(struct trainer *t)
{
	t->st.epoch++;
	t->st.micro_batch = 0;
	t->st.epoch_seed = rng_next(&t->rng);
	data_shuffle(&t->d, t->st.epoch_seed);
}

static int setup(struct trainer *t)
{
	const char *from = getenv("CKPT_RESUME_FROM"), *skip = getenv("CKPT_SKIP_BATCHES"), *cvd;
	float *p = NULL, *mo = NULL, *v = NULL;
	char err[1024];
	int B = (int)t->o.batch_size, ret;
	bool no_gpu;

	t->p = preset_find(t->o.model);
	model_layout(&t->m, t->p);
	ret = data_load(&t->d, t->o.dataset ? t->o.dataset : corpus_path(), t->p->ctx, err,
			sizeof(err));
	if (ret < 0) {
		fprintf(stderr, "ckpt-train: %s\n", err);
		return TRAIN_EXIT_CONFIG;
	}
	t->mbpe = (int64_t)(t->d.n_ex / (size_t)B);
	if (t->mbpe / t->o.grad_accum < 1) {
		fprintf(stderr,
			"ckpt-train: the dataset has %zu training examples, fewer than one "
			"step of batch %d x accumulation %" PRId64 "; use a larger dataset\n",
			t->d.n_ex, B, t->o.grad_accum);
		return TRAIN_EXIT_CONFIG;
	}
	t->total_steps = t->mbpe / t->o.grad_accum * t->o.epochs;
	if (t->o.max_steps && t->o.max_steps < t->total_steps)
		t->total_steps = t->o.max_steps;
	t->warmup = t->total_steps / 10 < 100 ? t->total_steps / 10 : 100;
	if (t->warmup < 1)
		t->warmup = 1;

	/* CUDA_VISIBLE_DEVICES set but empty: this process was given no GPU (ckptd
	 * does that for resources.gpus: 0), so CUDA is not even asked. */
	cvd = getenv("CUDA_VISIBLE_DEVICES");
	no_gpu = cvd && !cvd[0];
	if (no_gpu && strcmp(t->o.device, "cuda") == 0) {
		fprintf(stderr,
			"ckpt-train: --device cuda: CUDA_VISIBLE_DEVICES is empty, so this "
			"process may use no GPU (ckptd runs a job of resources.gpus: 0 so); "
			"ask for resources.gpus: 1 or more, or use --device auto or cpu\n");
		return TRAIN_EXIT_CONFIG;
	}
	if (strcmp(t->o.device, "cpu") == 0 ||
	    (strcmp(t->o.device, "auto") == 0 && (no_gpu || !be_cuda_available()))) {
		ret = be_cpu_create(&t->m, B, t->o.threads, &t->be);
		snprintf(t->dev_note, sizeof(t->dev_note), "%s",
			 strcmp(t->o.device, "auto")
				 ? ""
				 : (no_gpu ? " (CUDA_VISIBLE_DEVICES is empty: no GPU given)"
					   : " (no usable CUDA device)"));
	} else {
		char desc[256];

		if (!be_cuda_available()) {
			fprintf(stderr,
				"ckpt-train: --device cuda: no usable CUDA device here%s%s; "
				"use --device cpu or auto\n",
				cvd ? " with CUDA_VISIBLE_DEVICES=" : "", cvd ? cvd : "");
			return TRAIN_EXIT_CONFIG;
		}
		ret = be_cuda_create(&t->m, B, &t->be);
		if (ret < 0)
			return be_cuda_corrupted() ? TRAIN_EXIT_CORRUPT : TRAIN_EXIT_FAIL;
		be_cuda_describe(desc, sizeof(desc));
		snprintf(t->dev_note, sizeof(t->dev_note), " (%s; CUDA_VISIBLE_DEVICES=%s)", desc,
			 cvd ? cvd : "unset: every GPU");
	}
	if (ret < 0) {
		fprintf(stderr,
			"ckpt-train: cannot set up the %s backend for '%s' (%zu parameters): "
			"%s\n",
			t->o.device, t->p->name, t->m.n, strerror(-ret));
		return TRAIN_EXIT_FAIL;
	}
	t->x = malloc((size_t)B * (size_t)t->p->ctx);
	t->y = malloc((size_t)B);
	p = malloc(t->m.n * sizeof(float));
	if (!t->x || !t->y || !p) {
		free(p);
		return TRAIN_EXIT_FAIL;
	}

	/* Fresh state, then overwritten by the checkpoint when resuming. */
	t->st.format_version = TRAIN_FORMAT_VERSION;
	snprintf(t->st.preset, sizeof(t->st.preset), "%s", t->p->name);
	t->st.batch_size = B;
	t->st.grad_accum = t->o.grad_accum;
	t->st.seed = t->o.seed;
	t->st.best_val_loss = INFINITY;
	t->st.es_best_val_loss = INFINITY;
	t->st.last_val_loss = NAN;
	t->st.last_val_step = -1;
	t->st.loss = NAN;
	t->saved_step = -1;
	rng_seed(&t->rng, t->o.seed);
	model_init(&t->m, p, &t->rng);
	t->st.epoch_seed = rng_next(&t->rng);
	if (from && *from) {
		ret = resume(t, from, p, &mo, &v);
		if (ret) {
			free(p);
			free(mo);
			free(v);
			return ret;
		}
	}
	ret = t->be->load(t->be, p, mo, v);
	free(p);
	free(mo);
	free(v);
	if (ret < 0)
		return backend_failed(ret, "loading the parameters onto the device");
	if (skip && *skip) {
		char *end;
		long long n = strtoll(skip, &end, 10);

		if (*end || n < 0) {
			fprintf(stderr, "ckpt-train: CKPT_SKIP_BATCHES=%s is not a count\n", skip);
			return TRAIN_EXIT_CONFIG;
		}
		/* Skipped batches are consumed, not trained on (loss-spike rollback). */
		t->st.micro_batch += n;
		while (t->st.micro_batch + t->o.grad_accum > t->mbpe) {
			int64_t over = t->st.micro_batch - t->mbpe;

			next_epoch(t);
			t->st.micro_batch = over > 0 ? over : 0;
		}
		fprintf(stderr, "ckpt-train: skipped %lld batches\n", n);
	}
	data_shuffle(&t->d, t->st.epoch_seed);
	ret = saver_create(t->be, &t->m, t->o.run_dir, t->o.sync_save, &t->sv);
	return ret < 0 ? TRAIN_EXIT_FAIL : 0;
}

/* The injected faults that happen right after step `step`. */
static void inject_after_step(struct trainer *t, int64_t step)
{
	if (inject_due(&t->o, INJ_CRASH, step)) {
		fprintf(stderr, "ckpt-train: injected crash after step %" PRId64 " (SIGKILL)\n",
			step);
		raise(SIGKILL); /* like kill -9 or an OOM kill: no cleanup, no checkpoint */
	}
	if (inject_due(&t->o, INJ_HANG, step)) {
		fprintf(stderr, "ckpt-train: injected hang after step %" PRId64 "\n", step);
		/* Silent from now on; a signal ends it without a checkpoint, as
		 * the default action would end a stuck process. */
		while (!stop_sig)
			pause();
		_exit(128 + stop_sig);
	}
}

static int epoch_end(struct trainer *t, int *stop)
{
	double val, e0 = now_s();
	int ret = evaluate(t, &val);

	if (ret < 0)
		return backend_failed(ret, "validation");
	t->it_eval += now_s() - e0;
	t->st.last_val_loss = val;
	t->st.last_val_step = t->st.step;
	if (val < t->st.best_val_loss)
		t->st.best_val_loss = val;
	if (val < t->st.es_best_val_loss) {
		t->st.es_best_val_loss = val;
		t->st.bad_epochs = 0;
	} else {
		t->st.bad_epochs++;
	}
	printf("epoch %" PRId64 " step %" PRId64 " val_loss %.6f best %.6f\n", t->st.epoch + 1,
	       t->st.step, val, t->st.best_val_loss);
	ckpt_notifyf("EPOCH=%" PRId64 "\nVAL_LOSS=%.9g\nSTEP=%" PRId64, t->st.epoch + 1, val,
		     t->st.step);
	if (t->st.bad_epochs >= t->o.patience) {
		printf("early stopping: no improvement for %" PRId64 " epochs\n", t->st.bad_epochs);
		*stop = 1;
	}
	next_epoch(t);
	if (t->st.epoch >= t->o.epochs)
		*stop = 1;
	if (t->o.ckpt_every_epochs && t->st.epoch % t->o.ckpt_every_epochs == 0) {
		ret = save(t, "epoch", 0);
		if (ret < 0)
			return backend_failed(ret, "checkpoint snapshot");
	}
	return 0;
}

static int train(struct trainer *t)
{
	int B = (int)t->o.batch_size, ret, stop = 0;
	int64_t every = t->o.ckpt_every_steps, log_every = t->total_steps / 20;

	if (log_every < 1)
		log_every = 1;
	while (!stop && t->st.step < t->total_steps) {
		double loss = 0, l, lr = schedule(t, t->st.step);
		double it0 = now_s(), cpu0 = steplog_on() ? steplog_cpu_s() : 0;
		double stall0 = t->be->stall_s;

		if (stop_sig)
			return -EINTR;
		t->it_block = t->it_eval = 0;
		for (int64_t a = 0; a < t->o.grad_accum; a++) {
			data_batch(&t->d, t->st.micro_batch++, B, t->x, t->y);
			ret = t->be->micro(t->be, t->x, t->y, B, &l);
			if (ret < 0)
				return backend_failed(ret, "training step");
			loss += l;
		}
		loss /= (double)t->o.grad_accum;
		if (inject_due(&t->o, INJ_NAN, t->st.step + 1))
			loss = NAN;
		if (!isfinite(loss)) {
			fprintf(stderr, "ckpt-train: loss is %f at step %" PRId64 "; stopping\n",
				loss, t->st.step + 1);
			ckpt_notifyf("STEP=%" PRId64 "\nLOSS=%f\nCORRUPTED=1\nREASON=training loss "
				     "is %f at step %" PRId64,
				     t->st.step + 1, loss, loss, t->st.step + 1);
			saver_wait(t->sv); /* what was committed before is still good */
			return TRAIN_EXIT_CORRUPT;
		}
		ret = t->be->apply(t->be, (float)lr, t->st.step + 1, 1.0f / (float)t->o.grad_accum);
		if (ret < 0)
			return backend_failed(ret, "optimizer step");
		close_blocking(t);
		t->st.step++;
		t->st.lr = lr;
		t->st.loss = loss;
		if (inject_due(&t->o, INJ_SPIKE, t->st.step))
			loss *= 100; /* reported only: the weights stay as they are */
		ckpt_notifyf("STEP=%" PRId64 "\nLOSS=%.9g", t->st.step, loss);
		/* Step 1 too: where the loss starts (ln 256 = 5.545 is chance). */
		if (t->st.step % log_every == 0 || t->st.step == 1)
			printf("step %" PRId64 " loss %.6f lr %.3g\n", t->st.step, loss, lr);
		inject_after_step(t, t->st.step);
		if (t->st.micro_batch + t->o.grad_accum > t->mbpe) {
			ret = epoch_end(t, &stop);
			if (ret)
				return ret;
		}
		if (every && t->st.step % every == 0) {
			ret = save(t, "periodic", 0);
			if (ret < 0)
				return backend_failed(ret, "checkpoint snapshot");
		}
		/* The whole iteration, so that the logged steps tile the run. */
		if (steplog_on())
			steplog_printf("step %" PRId64 " %.6f %.6f %.6f %.6f %.6f %.6f\n",
				       t->st.step, it0, now_s(), steplog_cpu_s() - cpu0,
				       t->be->stall_s - stall0, t->it_block, t->it_eval);
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct trainer t;
	struct sigaction sa;
	int ret;

	setvbuf(stdout, NULL, _IOLBF, 0);
	memset(&t, 0, sizeof(t));
	ret = opts_parse(&t.o, argc, argv);
	if (ret) {
		opts_free(&t.o);
		return ret < 0 ? 0 : ret;
	}
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);

	ret = steplog_open() < 0 ? TRAIN_EXIT_CONFIG : setup(&t);
	if (ret)
		goto out;
	fprintf(stderr,
		"ckpt-train: model %s (%zu parameters, %.1f MiB with AdamW state) on %s%s; "
		"%" PRId64 " steps planned, %s saves into %s\n",
		t.p->name, t.m.n, 3.0 * (double)t.m.n * 4 / (1 << 20), t.be->name, t.dev_note,
		t.total_steps, t.o.sync_save ? "sync" : "async", t.o.run_dir);
	ckpt_notifyf("READY=1\nSTATUS=training %s on %s", t.p->name, t.be->name);

	int64_t step0 = t.st.step;
	double t0 = now_s(), c0 = thread_cpu_s();
	ret = train(&t);
	double train_s = now_s() - t0, train_cpu = thread_cpu_s() - c0;
	if (ret == -EINTR) {
		/* SIGTERM/SIGINT: a cancellation checkpoint, then exit 0. */
		ckpt_notifyf("STOPPING=1\nSTATUS=cancelled by signal %d", (int)stop_sig);
		fprintf(stderr, "ckpt-train: signal %d: saving a cancellation checkpoint\n",
			(int)stop_sig);
		saver_wait(t.sv);
		ret = save(&t, "cancel", 1) < 0 ? TRAIN_EXIT_FAIL : 0;
		goto out;
	}
	if (ret)
		goto out;
	ret = save(&t, "final", 1);
	if (ret < 0) {
		ret = TRAIN_EXIT_FAIL;
		goto out;
	}
	ret = saver_wait(t.sv) < 0 ? TRAIN_EXIT_FAIL : 0;
	ckpt_notifyf("STOPPING=1\nSTATUS=finished at step %" PRId64, t.st.step);
	/* steps/s of the training loop (without setup and the final save). */
	printf("done: step %" PRId64 " epoch %" PRId64 " loss %.6f val_loss %.6f train_s %.3f "
	       "train_cpu_s %.3f steps_per_s %.4f\n",
	       t.st.step, t.st.epoch, t.st.loss, t.st.last_val_loss, train_s, train_cpu,
	       train_s > 0 ? (double)(t.st.step - step0) / train_s : 0.0);
out:
	if (t.sv) {
		saver_wait(t.sv);
		close_blocking(&t);
		saver_report(t.sv);
		saver_destroy(t.sv);
	}
	if (t.be)
		t.be->destroy(t.be);
	data_free(&t.d);
	free(t.x);
	free(t.y);
	opts_free(&t.o);
	steplog_close();
	return ret;
}
