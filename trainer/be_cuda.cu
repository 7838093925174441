/* SPDX-License-Identifier: MIT */
/*
 * be_cuda.cu - the CUDA backend: cuBLAS SGEMM for the matrix products, our
 * own kernels for the rest (embedding, tanh, softmax cross-entropy, bias
 * and embedding gradients, AdamW).
 *
 * Determinism: every kernel here reduces in a fixed order (no atomics: the
 * embedding gradient is gathered per (row, column) rather than scattered),
 * and cuBLAS gives bitwise-identical results run to run on the same GPU
 * model with atomics off (its default). So a resumed run repeats the
 * uninterrupted one bit for bit on the same GPU; CPU and GPU agree only to
 * rounding (see docs/gpu.md for the tolerance).
 *
 * Errors: every CUDA and cuBLAS call is checked. Errors that leave device
 * memory untrustworthy (uncorrectable ECC, and the "sticky" errors after
 * which the context is unusable) are reported with CORRUPTED=1/REASON= so
 * that the supervisor does not trust a checkpoint taken after them.
 *
 * Async snapshots: snap_begin() queues the device-to-host copies of params
 * and AdamW state into pinned buffers on a second stream, after an event on
 * the compute stream; the next optimizer step waits for the copies to end,
 * so forward and backward overlap with the copy and nothing it reads
 * changes under it.
 *
 * NOTE: written and compiled without a GPU in the session; see docs/gpu.md
 * for the commands that check it on one.
 */
#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

extern "C" {
#include <ckptfs/notify.h>

#include "trainer_i.h"
}

static int corrupted;

static int is_corrupting(cudaError_t e)
{
	switch (e) {
	case cudaErrorECCUncorrectable:
	case cudaErrorIllegalAddress:
	case cudaErrorHardwareStackError:
	case cudaErrorIllegalInstruction:
	case cudaErrorMisalignedAddress:
	case cudaErrorInvalidPc:
	case cudaErrorLaunchFailure:
		return 1;
	default:
		return 0;
	}
}

static int cuda_fail(cudaError_t e, const char *what, int line)
{
	fprintf(stderr, "ckpt-train: CUDA error in %s (be_cuda.cu:%d): %s: %s\n", what, line,
		cudaGetErrorName(e), cudaGetErrorString(e));
	if (is_corrupting(e)) {
		corrupted = 1;
		ckpt_notifyf("CORRUPTED=1\nREASON=CUDA %s in %s: device state cannot be trusted",
			     cudaGetErrorName(e), what);
	} else {
		ckpt_notifyf("STATUS=CUDA %s in %s", cudaGetErrorName(e), what);
	}
	return -EIO;
}

#define CK(call)                                                                                   \
	do {                                                                                       \
		cudaError_t e_ = (call);                                                           \
		if (e_ != cudaSuccess)                                                             \
			return cuda_fail(e_, #call, __LINE__);                                     \
	} while (0)

/* A kernel launch: check the launch, then (cheaply) any sticky error. */
#define CKL(what)                                                                                  \
	do {                                                                                       \
		cudaError_t e_ = cudaGetLastError();                                               \
		if (e_ != cudaSuccess)                                                             \
			return cuda_fail(e_, what, __LINE__);                                      \
	} while (0)

#define CB(call)                                                                                   \
	do {                                                                                       \
		cublasStatus_t s_ = (call);                                                        \
		if (s_ != CUBLAS_STATUS_SUCCESS) {                                                 \
			cudaError_t e_ = cudaGetLastError();                                       \
			if (e_ != cudaSuccess)                                                     \
				return cuda_fail(e_, #call, __LINE__);                             \
			fprintf(stderr, "ckpt-train: cuBLAS error %d in %s (be_cuda.cu:%d)\n",     \
				(int)s_, #call, __LINE__);                                         \
			ckpt_notifyf("STATUS=cuBLAS error %d", (int)s_);                           \
			return -EIO;                                                               \
		}                                                                                  \
	} while (0)

struct gpu {
	struct backend be;
	cudaStream_t s, copy_s;
	cudaEvent_t ready, copied;
	int snap_pending; /* main thread only: apply() must wait for `copied` */
	cublasHandle_t h;
	float *p, *g, *mo, *v;
	float **act; /* host array of device pointers, as in be_cpu.c */
	float *logits, *d0, *d1, *row_loss;
	double *loss;
	uint8_t *x, *y;
};

static unsigned blocks(size_t n, unsigned t)
{
	return (unsigned)((n + t - 1) / t);
}

__global__ void k_embed(const float *emb, const uint8_t *x, float *out, int B, int ctx, int dim)
{
	size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
	size_t n = (size_t)B * ctx * dim;

	if (i < n) {
		size_t tok = i / dim, j = i % dim;

		out[i] = emb[(size_t)x[tok] * dim + j];
	}
}

__global__ void k_bias_fill(float *out, const float *bias, int B, int n)
{
	size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;

	if (i < (size_t)B * n)
		out[i] = bias[i % n];
}

__global__ void k_tanh(float *a, size_t n)
{
	size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;

	if (i < n)
		a[i] = tanhf(a[i]);
}

__global__ void k_tanh_back(float *d, const float *a, size_t n)
{
	size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;

	if (i < n)
		d[i] *= 1.0f - a[i] * a[i];
}

/* One block of VOCAB threads per row; tree reductions in a fixed order. */
__global__ void k_xent(float *logits, const uint8_t *y, float *row_loss, int B, int grad)
{
	__shared__ float mx[VOCAB];
	__shared__ double sum[VOCAB];
	int b = blockIdx.x, k = threadIdx.x;
	float *row = logits + (size_t)b * VOCAB;
	float z = row[k];

	mx[k] = z;
	__syncthreads();
	for (int s = VOCAB / 2; s > 0; s >>= 1) {
		if (k < s)
			mx[k] = fmaxf(mx[k], mx[k + s]);
		__syncthreads();
	}
	double e = exp((double)(z - mx[0]));
	sum[k] = e;
	__syncthreads();
	for (int s = VOCAB / 2; s > 0; s >>= 1) {
		if (k < s)
			sum[k] += sum[k + s];
		__syncthreads();
	}
	if (k == y[b])
		row_loss[b] = (float)(log(sum[0]) + mx[0] - z);
	if (grad)
		row[k] = (float)(e / sum[0]) / (float)B - (k == y[b] ? 1.0f / (float)B : 0.0f);
}

__global__ void k_loss_sum(const float *row_loss, int B, double *out)
{
	double s = 0;

	for (int b = 0; b < B; b++)
		s += row_loss[b];
	*out = s;
}

__global__ void k_bias_grad(float *g, const float *d, int B, int n)
{
	int k = blockIdx.x * blockDim.x + threadIdx.x;

	if (k < n) {
		float s = 0;

		for (int b = 0; b < B; b++)
			s += d[(size_t)b * n + k];
		g[k] += s;
	}
}

/* Gather rather than scatter: deterministic, no atomics. */
__global__ void k_embed_grad(float *g, const float *d, const uint8_t *x, int B, int ctx, int dim)
{
	size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;

	if (i < (size_t)VOCAB * dim) {
		int v = (int)(i / dim), j = (int)(i % dim);
		float s = 0;

		for (int t = 0; t < B * ctx; t++)
			if (x[t] == v)
				s += d[(size_t)t * dim + j];
		g[i] += s;
	}
}

__global__ void k_adamw(float *p, float *g, float *m, float *v, size_t n, float lr, float b1,
			float b2, float eps, float wd, float bc1, float bc2, float gscale)
{
	size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;

	if (i < n) {
		float gi = g[i] * gscale;

		m[i] = b1 * m[i] + (1.0f - b1) * gi;
		v[i] = b2 * v[i] + (1.0f - b2) * gi * gi;
		p[i] -= lr * ((m[i] / bc1) / (sqrtf(v[i] / bc2) + eps) + wd * p[i]);
		g[i] = 0.0f;
	}
}

/* Row-major C[M][N] = alpha op(A) op(B) + beta C through column-major cuBLAS:
 * compute C^T = op(B)^T op(A)^T. */
static cublasStatus_t gemm_rm(cublasHandle_t h, bool ta, bool tb, int M, int N, int K, float alpha,
			      const float *A, int lda, const float *B, int ldb, float beta,
			      float *C, int ldc)
{
	return cublasSgemm(h, tb ? CUBLAS_OP_T : CUBLAS_OP_N, ta ? CUBLAS_OP_T : CUBLAS_OP_N, N, M,
			   K, &alpha, B, ldb, A, lda, &beta, C, ldc);
}

static int forward(struct gpu *c, const uint8_t *x, const uint8_t *y, int B)
{
	const struct model *m = c->be.m;
	const struct preset *p = m->p;
	int in = m->in;

	CK(cudaMemcpyAsync(c->x, x, (size_t)B * p->ctx, cudaMemcpyHostToDevice, c->s));
	CK(cudaMemcpyAsync(c->y, y, (size_t)B, cudaMemcpyHostToDevice, c->s));
	k_embed<<<blocks((size_t)B * in, 256), 256, 0, c->s>>>(c->p + m->t[0].off, c->x, c->act[0],
							       B, p->ctx, p->dim);
	CKL("embedding kernel");
	for (int l = 0; l <= p->layers; l++) {
		const struct tensor *w = &m->t[1 + 2 * l], *bias = &m->t[2 + 2 * l];
		int n = (int)w->shape[1];
		float *out = l == p->layers ? c->logits : c->act[l + 1];

		k_bias_fill<<<blocks((size_t)B * n, 256), 256, 0, c->s>>>(out, c->p + bias->off, B,
									  n);
		CKL("bias kernel");
		CB(gemm_rm(c->h, false, false, B, n, in, 1.0f, c->act[l], in, c->p + w->off, n,
			   1.0f, out, n));
		if (l < p->layers) {
			k_tanh<<<blocks((size_t)B * n, 256), 256, 0, c->s>>>(out, (size_t)B * n);
			CKL("tanh kernel");
		}
		in = n;
	}
	return 0;
}

static int read_loss(struct gpu *c, const float *row_loss, int B, double *out)
{
	k_loss_sum<<<1, 1, 0, c->s>>>(row_loss, B, c->loss);
	CKL("loss kernel");
	CK(cudaMemcpyAsync(out, c->loss, sizeof(double), cudaMemcpyDeviceToHost, c->s));
	CK(cudaStreamSynchronize(c->s));
	return 0;
}

static int gpu_micro(struct backend *be, const uint8_t *x, const uint8_t *y, int B, double *loss)
{
	struct gpu *c = (struct gpu *)be;
	const struct model *m = be->m;
	const struct preset *p = m->p;
	float *d = c->d0, *dn = c->d1;
	const float *dout = c->logits;
	int ret = forward(c, x, y, B);

	if (ret < 0)
		return ret;
	k_xent<<<B, VOCAB, 0, c->s>>>(c->logits, c->y, c->row_loss, B, 1);
	CKL("cross-entropy kernel");
	for (int l = p->layers; l >= 0; l--) {
		const struct tensor *w = &m->t[1 + 2 * l], *bias = &m->t[2 + 2 * l];
		int in = (int)w->shape[0], n = (int)w->shape[1];

		CB(gemm_rm(c->h, true, false, in, n, B, 1.0f, c->act[l], in, dout, n, 1.0f,
			   c->g + w->off, n));
		k_bias_grad<<<blocks((size_t)n, 256), 256, 0, c->s>>>(c->g + bias->off, dout, B, n);
		CKL("bias gradient kernel");
		CB(gemm_rm(c->h, false, true, B, in, n, 1.0f, dout, n, c->p + w->off, n, 0.0f, d,
			   in));
		if (l > 0) {
			k_tanh_back<<<blocks((size_t)B * in, 256), 256, 0, c->s>>>(d, c->act[l],
										   (size_t)B * in);
			CKL("tanh gradient kernel");
		}
		dout = d;
		float *t = d;
		d = dn;
		dn = t;
	}
	k_embed_grad<<<blocks((size_t)VOCAB * p->dim, 256), 256, 0, c->s>>>(
		c->g + m->t[0].off, dout, c->x, B, p->ctx, p->dim);
	CKL("embedding gradient kernel");
	ret = read_loss(c, c->row_loss, B, loss);
	*loss /= B;
	return ret;
}

static int gpu_eval(struct backend *be, const uint8_t *x, const uint8_t *y, int B, double *loss_sum)
{
	struct gpu *c = (struct gpu *)be;
	int ret = forward(c, x, y, B);

	if (ret < 0)
		return ret;
	k_xent<<<B, VOCAB, 0, c->s>>>(c->logits, c->y, c->row_loss, B, 0);
	CKL("cross-entropy kernel");
	return read_loss(c, c->row_loss, B, loss_sum);
}

static int gpu_apply(struct backend *be, float lr, int64_t t, float gscale)
{
	struct gpu *c = (struct gpu *)be;
	const struct model *m = be->m;
	float bc1 = (float)(1.0 - pow(ADAM_B1, (double)t));
	float bc2 = (float)(1.0 - pow(ADAM_B2, (double)t));

	if (c->snap_pending) { /* the snapshot copy must finish before we write */
		/* Ordered on the device: the host does not wait, so stall_s stays 0. */
		CK(cudaStreamWaitEvent(c->s, c->copied, 0));
		c->snap_pending = 0;
	}
	for (int i = 0; i < m->nt; i++) {
		const struct tensor *ts = &m->t[i];

		k_adamw<<<blocks(ts->n, 256), 256, 0, c->s>>>(
			c->p + ts->off, c->g + ts->off, c->mo + ts->off, c->v + ts->off, ts->n, lr,
			(float)ADAM_B1, (float)ADAM_B2, (float)ADAM_EPS,
			ts->decay ? (float)ADAM_WD : 0.0f, bc1, bc2, gscale);
		CKL("AdamW kernel");
	}
	return 0;
}

static int gpu_snap_begin(struct backend *be, float *p, float *mo, float *v)
{
	struct gpu *c = (struct gpu *)be;
	size_t sz = be->m->n * sizeof(float);

	CK(cudaEventRecord(c->ready, c->s));
	CK(cudaStreamWaitEvent(c->copy_s, c->ready, 0));
	CK(cudaMemcpyAsync(p, c->p, sz, cudaMemcpyDeviceToHost, c->copy_s));
	CK(cudaMemcpyAsync(mo, c->mo, sz, cudaMemcpyDeviceToHost, c->copy_s));
	CK(cudaMemcpyAsync(v, c->v, sz, cudaMemcpyDeviceToHost, c->copy_s));
	CK(cudaEventRecord(c->copied, c->copy_s));
	c->snap_pending = 1;
	return 0;
}

static int gpu_snap_wait(struct backend *be)
{
	struct gpu *c = (struct gpu *)be;

	CK(cudaEventSynchronize(c->copied));
	return 0;
}

static int gpu_load(struct backend *be, const float *p, const float *mo, const float *v)
{
	struct gpu *c = (struct gpu *)be;
	size_t sz = be->m->n * sizeof(float);

	CK(cudaMemcpy(c->p, p, sz, cudaMemcpyHostToDevice));
	if (mo)
		CK(cudaMemcpy(c->mo, mo, sz, cudaMemcpyHostToDevice));
	else
		CK(cudaMemset(c->mo, 0, sz));
	if (v)
		CK(cudaMemcpy(c->v, v, sz, cudaMemcpyHostToDevice));
	else
		CK(cudaMemset(c->v, 0, sz));
	CK(cudaMemset(c->g, 0, sz));
	/* cudaMemcpy from pageable memory may return before the DMA is done, and
	 * the legacy stream does not order our non-blocking streams: wait here. */
	CK(cudaDeviceSynchronize());
	return 0;
}

static void *gpu_host_alloc(struct backend *be, size_t bytes)
{
	void *ptr = NULL;
	cudaError_t e = cudaMallocHost(&ptr, bytes);

	if (e != cudaSuccess) {
		cuda_fail(e, "cudaMallocHost (pinned snapshot buffer)", __LINE__);
		return NULL;
	}
	return ptr;
}

static void gpu_host_free(struct backend *be, void *ptr)
{
	cudaFreeHost(ptr);
}

static void gpu_destroy(struct backend *be)
{
	struct gpu *c = (struct gpu *)be;

	if (!c)
		return;
	if (c->s)
		cudaStreamSynchronize(c->s);
	if (c->copy_s)
		cudaStreamSynchronize(c->copy_s);
	if (c->h)
		cublasDestroy(c->h);
	cudaFree(c->p);
	cudaFree(c->g);
	cudaFree(c->mo);
	cudaFree(c->v);
	if (c->act)
		for (int l = 0; l <= be->m->p->layers; l++)
			cudaFree(c->act[l]);
	free(c->act);
	cudaFree(c->logits);
	cudaFree(c->d0);
	cudaFree(c->d1);
	cudaFree(c->row_loss);
	cudaFree(c->loss);
	cudaFree(c->x);
	cudaFree(c->y);
	if (c->ready)
		cudaEventDestroy(c->ready);
	if (c->copied)
		cudaEventDestroy(c->copied);
	if (c->s)
		cudaStreamDestroy(c->s);
	if (c->copy_s)
		cudaStreamDestroy(c->copy_s);
	free(c);
}

static int setup(struct gpu *c, const struct model *m, int max_b)
{
	const struct preset *p = m->p;
	size_t wide = (size_t)(m->in > p->hidden ? m->in : p->hidden), sz = m->n * sizeof(float);

	CK(cudaStreamCreateWithFlags(&c->s, cudaStreamNonBlocking));
	CK(cudaStreamCreateWithFlags(&c->copy_s, cudaStreamNonBlocking));
	CK(cudaEventCreateWithFlags(&c->ready, cudaEventDisableTiming));
	CK(cudaEventCreateWithFlags(&c->copied, cudaEventDisableTiming));
	CB(cublasCreate(&c->h));
	CB(cublasSetStream(c->h, c->s));
	/* Plain FP32 (no TF32) and no atomics: reproducible results. */
	CB(cublasSetMathMode(c->h, CUBLAS_DEFAULT_MATH));
	CB(cublasSetAtomicsMode(c->h, CUBLAS_ATOMICS_NOT_ALLOWED));
	CK(cudaMalloc((void **)&c->p, sz));
	CK(cudaMalloc((void **)&c->g, sz));
	CK(cudaMalloc((void **)&c->mo, sz));
	CK(cudaMalloc((void **)&c->v, sz));
	c->act = (float **)calloc((size_t)p->layers + 1, sizeof(*c->act));
	if (!c->act)
		return -ENOMEM;
	for (int l = 0; l <= p->layers; l++)
		CK(cudaMalloc((void **)&c->act[l],
			      (size_t)max_b * (l ? p->hidden : m->in) * sizeof(float)));
	CK(cudaMalloc((void **)&c->logits, (size_t)max_b * VOCAB * sizeof(float)));
	CK(cudaMalloc((void **)&c->d0, (size_t)max_b * wide * sizeof(float)));
	CK(cudaMalloc((void **)&c->d1, (size_t)max_b * wide * sizeof(float)));
	CK(cudaMalloc((void **)&c->row_loss, (size_t)max_b * sizeof(float)));
	CK(cudaMalloc((void **)&c->loss, sizeof(double)));
	CK(cudaMalloc((void **)&c->x, (size_t)max_b * p->ctx));
	CK(cudaMalloc((void **)&c->y, (size_t)max_b));
	return 0;
}

extern "C" int be_cuda_available(void)
{
	int n = 0;
	cudaError_t e = cudaGetDeviceCount(&n);

	if (e != cudaSuccess) {
		cudaGetLastError(); /* not sticky: clear it */
		return 0;
	}
	return n > 0;
}

extern "C" int be_cuda_create(const struct model *m, int max_b, struct backend **out)
{
	struct gpu *c = (struct gpu *)calloc(1, sizeof(*c));
	int ret;

	if (!c)
		return -ENOMEM;
	c->be.name = "cuda";
	c->be.m = m;
	c->be.max_b = max_b;
	c->be.micro = gpu_micro;
	c->be.eval = gpu_eval;
	c->be.apply = gpu_apply;
	c->be.snap_begin = gpu_snap_begin;
	c->be.snap_wait = gpu_snap_wait;
	c->be.load = gpu_load;
	c->be.host_alloc = gpu_host_alloc;
	c->be.host_free = gpu_host_free;
	c->be.destroy = gpu_destroy;
	ret = setup(c, m, max_b);
	if (ret < 0) {
		fprintf(stderr,
			"ckpt-train: cannot set up the CUDA backend for '%s' (%zu "
			"parameters)\n",
			m->p->name, m->n);
		gpu_destroy(&c->be);
		return ret;
	}
	*out = &c->be;
	return 0;
}

extern "C" void be_cuda_describe(char *buf, size_t len)
{
	cudaDeviceProp p;
	const unsigned char *u;
	int dev = 0;

	if (cudaGetDevice(&dev) != cudaSuccess || cudaGetDeviceProperties(&p, dev) != cudaSuccess) {
		cudaGetLastError();
		snprintf(buf, len, "device %d (no properties)", dev);
		return;
	}
	/* the UUID as nvidia-smi -L prints it */
	u = (const unsigned char *)p.uuid.bytes;
	snprintf(buf, len,
		 "%s, GPU-%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
		 p.name, u[0], u[1], u[2], u[3], u[4], u[5], u[6], u[7], u[8], u[9], u[10], u[11],
		 u[12], u[13], u[14], u[15]);
}

extern "C" int be_cuda_corrupted(void)
{
	return corrupted;
}
