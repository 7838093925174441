/* SPDX-License-Identifier: MIT */
/*
 * be_cpu.c - the CPU backend: matrix products through CBLAS (OpenBLAS), the
 * rest in plain loops with a fixed order of operations. With one OpenBLAS
 * thread (the default, --threads 1) every run with the same inputs gives
 * bitwise the same floats, which is what exact resume needs.
 *
 * Snapshots: snap_begin() hands the copy of params and AdamW state to a
 * copier thread and returns; the next forward/backward (which only reads
 * them) runs meanwhile, and apply() waits for the copy before it writes.
 * So the training loop is held only if the copy takes longer than a
 * forward/backward pass.
 */
#include <cblas.h>
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "trainer_i.h"

struct cpu {
	struct backend be;
	float *p, *g, *mo, *v;
	float **act;	/* act[0] = embedded input [B][in], act[l+1] = tanh output [B][hidden] */
	float *logits;	/* [B][VOCAB]; holds d(loss)/d(logits) after the backward pass */
	float *d0, *d1; /* [B][max(in, hidden)] scratch for gradients of activations */
	/* the snapshot copier */
	pthread_t copier;
	int have_copier, quit;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	float *dst[3];
	uint64_t asked, done; /* copies requested and finished */
	int snap_pending;     /* main thread only: apply() must wait */
};

static const struct tensor *T(const struct model *m, int i)
{
	return &m->t[i];
}

/* Forward pass into c->act and c->logits. */
static void forward(struct cpu *c, const uint8_t *x, int B)
{
	const struct model *m = c->be.m;
	const struct preset *p = m->p;
	const float *emb = c->p + T(m, 0)->off;
	int in = m->in;

	for (int b = 0; b < B; b++)
		for (int k = 0; k < p->ctx; k++)
			memcpy(c->act[0] + (size_t)b * in + (size_t)k * p->dim,
			       emb + (size_t)x[b * p->ctx + k] * p->dim, sizeof(float) * p->dim);
	for (int l = 0; l <= p->layers; l++) {
		const struct tensor *w = T(m, 1 + 2 * l), *bias = T(m, 2 + 2 * l);
		int n = (int)w->shape[1];
		float *out = l == p->layers ? c->logits : c->act[l + 1];

		for (int b = 0; b < B; b++)
			memcpy(out + (size_t)b * n, c->p + bias->off, sizeof(float) * n);
		cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, B, n, in, 1.0f, c->act[l],
			    in, c->p + w->off, n, 1.0f, out, n);
		if (l < p->layers)
			for (size_t k = 0; k < (size_t)B * n; k++)
				out[k] = tanhf(out[k]);
		in = n;
	}
}

/* Cross-entropy of row b; if grad, turn the row into d(mean loss)/d(logits). */
static double xent_row(float *row, int y, int B, int grad)
{
	float mx = row[0];
	double sum = 0, loss;

	for (int k = 1; k < VOCAB; k++)
		mx = row[k] > mx ? row[k] : mx;
	for (int k = 0; k < VOCAB; k++)
		sum += exp((double)(row[k] - mx));
	loss = log(sum) + mx - row[y];
	if (grad) {
		for (int k = 0; k < VOCAB; k++)
			row[k] = (float)(exp((double)(row[k] - mx)) / sum) / (float)B;
		row[y] -= 1.0f / (float)B;
	}
	return loss;
}

static int cpu_micro(struct backend *be, const uint8_t *x, const uint8_t *y, int B, double *loss)
{
	struct cpu *c = (struct cpu *)be;
	const struct model *m = be->m;
	const struct preset *p = m->p;
	double sum = 0;
	float *d = c->d0, *dn = c->d1;

	forward(c, x, B);
	for (int b = 0; b < B; b++)
		sum += xent_row(c->logits + (size_t)b * VOCAB, y[b], B, 1);
	*loss = sum / B;

	/* Backward, from the output layer down; gradients accumulate (beta 1). */
	const float *dout = c->logits;
	for (int l = p->layers; l >= 0; l--) {
		const struct tensor *w = T(m, 1 + 2 * l), *bias = T(m, 2 + 2 * l);
		int in = (int)w->shape[0], n = (int)w->shape[1];

		cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, in, n, B, 1.0f, c->act[l], in,
			    dout, n, 1.0f, c->g + w->off, n);
		for (int b = 0; b < B; b++)
			for (int k = 0; k < n; k++)
				c->g[bias->off + k] += dout[(size_t)b * n + k];
		cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, B, in, n, 1.0f, dout, n,
			    c->p + w->off, n, 0.0f, d, in);
		if (l > 0) /* through tanh: d/dz = d/da * (1 - a^2) */
			for (size_t k = 0; k < (size_t)B * in; k++)
				d[k] *= 1.0f - c->act[l][k] * c->act[l][k];
		dout = d;
		float *t = d;
		d = dn;
		dn = t;
	}
	/* dout is now d(loss)/d(embedded input): scatter into embedding rows. */
	float *ge = c->g + T(m, 0)->off;
	for (int b = 0; b < B; b++)
		for (int k = 0; k < p->ctx; k++) {
			float *row = ge + (size_t)x[b * p->ctx + k] * p->dim;
			const float *src = dout + (size_t)b * m->in + (size_t)k * p->dim;

			for (int j = 0; j < p->dim; j++)
				row[j] += src[j];
		}
	return 0;
}

static int cpu_eval(struct backend *be, const uint8_t *x, const uint8_t *y, int B, double *loss_sum)
{
	struct cpu *c = (struct cpu *)be;
	double sum = 0;

	forward(c, x, B);
	for (int b = 0; b < B; b++)
		sum += xent_row(c->logits + (size_t)b * VOCAB, y[b], B, 0);
	*loss_sum = sum;
	return 0;
}

static int cpu_snap_wait(struct backend *be);

static int cpu_apply(struct backend *be, float lr, int64_t t, float gscale)
{
	struct cpu *c = (struct cpu *)be;
	const struct model *m = be->m;
	float b1 = (float)ADAM_B1, b2 = (float)ADAM_B2, eps = (float)ADAM_EPS;
	float bc1 = (float)(1.0 - pow(ADAM_B1, (double)t));
	float bc2 = (float)(1.0 - pow(ADAM_B2, (double)t));

	if (c->snap_pending) { /* the copier may still be reading p, m, v */
		double t0 = now_s();

		cpu_snap_wait(be);
		be->stall_s += now_s() - t0;
		c->snap_pending = 0;
	}
	for (int i = 0; i < m->nt; i++) {
		const struct tensor *ts = T(m, i);
		float wd = ts->decay ? (float)ADAM_WD : 0.0f;

		for (size_t k = ts->off; k < ts->off + ts->n; k++) {
			float g = c->g[k] * gscale;

			c->mo[k] = b1 * c->mo[k] + (1.0f - b1) * g;
			c->v[k] = b2 * c->v[k] + (1.0f - b2) * g * g;
			/* Decoupled weight decay (Loshchilov & Hutter, AdamW). */
			c->p[k] -= lr *
				   ((c->mo[k] / bc1) / (sqrtf(c->v[k] / bc2) + eps) + wd * c->p[k]);
		}
	}
	memset(c->g, 0, m->n * sizeof(float));
	return 0;
}

static void *copier(void *arg)
{
	struct cpu *c = arg;
	size_t sz = c->be.m->n * sizeof(float);

	pthread_mutex_lock(&c->mu);
	for (;;) {
		while (c->done == c->asked && !c->quit)
			pthread_cond_wait(&c->cv, &c->mu);
		if (c->done == c->asked)
			break;
		pthread_mutex_unlock(&c->mu);
		memcpy(c->dst[0], c->p, sz);
		memcpy(c->dst[1], c->mo, sz);
		memcpy(c->dst[2], c->v, sz);
		pthread_mutex_lock(&c->mu);
		c->done = c->asked;
		pthread_cond_broadcast(&c->cv);
	}
	pthread_mutex_unlock(&c->mu);
	return NULL;
}

static int cpu_snap_begin(struct backend *be, float *p, float *mo, float *v)
{
	struct cpu *c = (struct cpu *)be;

	if (!c->have_copier) {
		sigset_t all, old;
		int ret;

		sigfillset(&all);
		pthread_sigmask(SIG_BLOCK, &all, &old);
		ret = pthread_create(&c->copier, NULL, copier, c);
		pthread_sigmask(SIG_SETMASK, &old, NULL);
		if (ret)
			return -ret;
		c->have_copier = 1;
	}
	pthread_mutex_lock(&c->mu);
	c->dst[0] = p;
	c->dst[1] = mo;
	c->dst[2] = v;
	c->asked++;
	pthread_cond_broadcast(&c->cv);
	pthread_mutex_unlock(&c->mu);
	c->snap_pending = 1;
	return 0;
}

static int cpu_snap_wait(struct backend *be)
{
	struct cpu *c = (struct cpu *)be;

	pthread_mutex_lock(&c->mu);
	while (c->done != c->asked)
		pthread_cond_wait(&c->cv, &c->mu);
	pthread_mutex_unlock(&c->mu);
	return 0;
}

static int cpu_load(struct backend *be, const float *p, const float *mo, const float *v)
{
	struct cpu *c = (struct cpu *)be;
	size_t sz = be->m->n * sizeof(float);

	memcpy(c->p, p, sz);
	if (mo)
		memcpy(c->mo, mo, sz);
	else
		memset(c->mo, 0, sz);
	if (v)
		memcpy(c->v, v, sz);
	else
		memset(c->v, 0, sz);
	memset(c->g, 0, sz);
	return 0;
}

static void *cpu_host_alloc(struct backend *be, size_t bytes)
{
	return malloc(bytes);
}

static void cpu_host_free(struct backend *be, void *ptr)
{
	free(ptr);
}

static void cpu_destroy(struct backend *be)
{
	struct cpu *c = (struct cpu *)be;

	if (!c)
		return;
	if (c->have_copier) {
		pthread_mutex_lock(&c->mu);
		c->quit = 1;
		pthread_cond_broadcast(&c->cv);
		pthread_mutex_unlock(&c->mu);
		pthread_join(c->copier, NULL);
	}
	pthread_mutex_destroy(&c->mu);
	pthread_cond_destroy(&c->cv);
	free(c->p);
	free(c->g);
	free(c->mo);
	free(c->v);
	if (c->act)
		for (int l = 0; l <= be->m->p->layers; l++)
			free(c->act[l]);
	free(c->act);
	free(c->logits);
	free(c->d0);
	free(c->d1);
	free(c);
}

int be_cpu_create(const struct model *m, int max_b, int threads, struct backend **out)
{
	struct cpu *c = calloc(1, sizeof(*c));
	const struct preset *p = m->p;
	size_t wide = (size_t)(m->in > p->hidden ? m->in : p->hidden);

	if (!c)
		return -ENOMEM;
	pthread_mutex_init(&c->mu, NULL);
	pthread_cond_init(&c->cv, NULL);
	c->be = (struct backend){
		.name = "cpu",
		.m = m,
		.max_b = max_b,
		.micro = cpu_micro,
		.eval = cpu_eval,
		.apply = cpu_apply,
		.snap_begin = cpu_snap_begin,
		.snap_wait = cpu_snap_wait,
		.load = cpu_load,
		.host_alloc = cpu_host_alloc,
		.host_free = cpu_host_free,
		.destroy = cpu_destroy,
	};
	openblas_set_num_threads(threads);
	c->p = calloc(m->n, sizeof(float));
	c->g = calloc(m->n, sizeof(float));
	c->mo = calloc(m->n, sizeof(float));
	c->v = calloc(m->n, sizeof(float));
	c->act = calloc((size_t)p->layers + 1, sizeof(*c->act));
	c->logits = malloc((size_t)max_b * VOCAB * sizeof(float));
	c->d0 = malloc((size_t)max_b * wide * sizeof(float));
	c->d1 = malloc((size_t)max_b * wide * sizeof(float));
	if (!c->p || !c->g || !c->mo || !c->v || !c->act || !c->logits || !c->d0 || !c->d1)
		goto nomem;
	for (int l = 0; l <= p->layers; l++) {
		c->act[l] = malloc((size_t)max_b * (l ? p->hidden : m->in) * sizeof(float));
		if (!c->act[l])
			goto nomem;
	}
	*out = &c->be;
	return 0;
nomem:
	cpu_destroy(&c->be);
	return -ENOMEM;
}
