/* SPDX-License-Identifier: MIT */
/*
 * trainer_i.h - ckpt-train's internal interfaces (SPEC §7).
 *
 * The trainer is split into small modules, each with one prefix:
 *   preset_   model presets (preset.c)
 *   opts_     command line, environment and job spec (opts.c)
 *   rng_      the RNG whose state goes into trainer_state.json (rng.c)
 *   data_     the corpus, the train/validation split and batching (data.c)
 *   model_    the parameter layout shared by every backend (model.c)
 *   be_       compute backends: CPU (be_cpu.c) and CUDA (be_cuda.cu)
 *   st_       safetensors files (safetensors.c)
 *   tstate_   trainer_state.json (tstate.c)
 *   saver_    writing and committing a checkpoint version, async (saver.c)
 *   inject_   fault injection (inject.c)
 *   steplog_  opt-in timing log for the benchmarks (steplog.c)
 * main.c drives the training loop.
 */
#ifndef CKPT_TRAINER_I_H
#define CKPT_TRAINER_I_H

#include <stddef.h>
#include <stdint.h>

/* trainer_state.json's format; another version is refused (exit 78). */
#define TRAIN_FORMAT_VERSION 1

/* Exit codes (documented in docs/trainer.md). */
#define TRAIN_EXIT_OK 0
#define TRAIN_EXIT_FAIL 1    /* I/O, CUDA or other runtime failure */
#define TRAIN_EXIT_CORRUPT 3 /* NaN/Inf loss or an uncorrectable device error */
#define TRAIN_EXIT_CONFIG 78 /* EX_CONFIG: bad flags, preset, job, checkpoint format */

#define VOCAB 256 /* byte tokens */

/* ---- presets ---- */
struct preset {
	const char *name;
	int ctx;    /* context window, tokens */
	int dim;    /* embedding width */
	int hidden; /* hidden width */
	int layers; /* hidden layers (>= 1) */
};

const struct preset *preset_find(const char *name);
/* "tiny, small, base, large" */
const char *preset_list(void);

/* ---- options ---- */
enum inject_kind { INJ_NAN, INJ_CRASH, INJ_HANG, INJ_SPIKE };

struct inject {
	enum inject_kind kind;
	int64_t step;
	int attempt; /* 0 = any attempt */
};

#define MAX_INJECT 8

struct opts {
	const char *model;
	char *dataset;
	int64_t epochs;
	int64_t max_steps; /* 0 = no limit */
	int64_t batch_size;
	double lr;
	uint64_t seed;
	int64_t ckpt_every_steps;  /* 0 = off */
	int64_t ckpt_every_epochs; /* 0 = off */
	int64_t grad_accum;
	int64_t patience;
	char sched[16]; /* cosine | linear | constant */
	char device[8]; /* auto | cpu | cuda */
	int sync_save;
	int ckpt_eval; /* validate at step checkpoints (for val_loss metadata) */
	int threads;   /* OpenBLAS threads; 1 keeps CPU results bitwise reproducible */
	char *run_dir;
	char *job_model; /* storage for a model name read from the job spec */
	struct inject inj[MAX_INJECT];
	int ninj;
	int attempt; /* CKPT_ATTEMPT, 1 when unset */
};

/* Parse argv (and CKPT_JOB / --job). Prints the error and returns
 * TRAIN_EXIT_CONFIG on bad input, -1 after --help, 0 on success. */
int opts_parse(struct opts *o, int argc, char **argv);
void opts_free(struct opts *o);
int inject_parse(const char *s, struct inject *out, char *err, size_t errlen);
/* The injection of `kind` due at `step` for this attempt, or NULL. */
const struct inject *inject_due(const struct opts *o, enum inject_kind kind, int64_t step);

/* ---- RNG: xoshiro256** (Blackman & Vigna), seeded with splitmix64 ---- */
struct rng {
	uint64_t s[4];
};
void rng_seed(struct rng *r, uint64_t seed);
uint64_t rng_next(struct rng *r);
/* Uniform float in [-1, 1). */
float rng_sym(struct rng *r);

/* ---- data ---- */
struct data {
	uint8_t *bytes;
	size_t len;
	size_t n_train; /* bytes [0, n_train) are the training split */
	int ctx;
	uint32_t *perm;	 /* this epoch's order of training examples */
	size_t n_ex;	 /* training examples (one per target byte) */
	size_t n_val_ex; /* validation examples used per evaluation */
};

/* Load the corpus at `path`; the last 10% is the validation split. */
int data_load(struct data *d, const char *path, int ctx, char *err, size_t errlen);
void data_free(struct data *d);
/* Shuffle the training examples for an epoch with its seed. */
void data_shuffle(struct data *d, uint64_t epoch_seed);
/* Fill x[B][ctx], y[B] with micro-batch `mb` of the current epoch. */
void data_batch(const struct data *d, int64_t mb, int B, uint8_t *x, uint8_t *y);
/* Validation examples [first, first+B). */
void data_val_batch(const struct data *d, size_t first, int B, uint8_t *x, uint8_t *y);

/* ---- model layout: every parameter in one flat float array ---- */
#define MODEL_MAX_TENSORS 64

struct tensor {
	char name[24];
	int ndim;
	int64_t shape[2];
	size_t off; /* in floats, into the flat array */
	size_t n;
	int decay; /* AdamW weight decay applies (matrices and embedding) */
};

struct model {
	const struct preset *p;
	int in; /* ctx * dim */
	struct tensor t[MODEL_MAX_TENSORS];
	int nt;
	size_t n; /* floats */
};

void model_layout(struct model *m, const struct preset *p);
/* Deterministic initialisation from the RNG. */
void model_init(const struct model *m, float *params, struct rng *r);

/* AdamW hyperparameters (fixed; documented in docs/trainer.md). */
#define ADAM_B1 0.9
#define ADAM_B2 0.999
#define ADAM_EPS 1e-8
#define ADAM_WD 0.01

/* ---- backends ---- */
struct backend {
	const char *name;
	const struct model *m;
	int max_b;
	double stall_s; /* seconds apply() waited for a snapshot copy (host side) */
	/* Forward + backward on one micro-batch; gradients accumulate. *loss is
	 * the batch's mean cross-entropy. */
	int (*micro)(struct backend *be, const uint8_t *x, const uint8_t *y, int B, double *loss);
	/* Forward only: *loss_sum is the summed cross-entropy of B examples. */
	int (*eval)(struct backend *be, const uint8_t *x, const uint8_t *y, int B,
		    double *loss_sum);
	/* AdamW step t (1-based) with gradients scaled by gscale, then zero them. */
	int (*apply)(struct backend *be, float lr, int64_t t, float gscale);
	/* Start copying params/m/v into host buffers from host_alloc(); the
	 * copy is complete after snap_wait(). The backend makes sure the next
	 * apply() does not modify what is still being copied. */
	int (*snap_begin)(struct backend *be, float *p, float *mo, float *v);
	int (*snap_wait)(struct backend *be);
	/* Replace params (and m, v; NULL = zeros). */
	int (*load)(struct backend *be, const float *p, const float *mo, const float *v);
	void *(*host_alloc)(struct backend *be, size_t bytes);
	void (*host_free)(struct backend *be, void *ptr);
	void (*destroy)(struct backend *be);
};

int be_cpu_create(const struct model *m, int max_b, int threads, struct backend **out);
/* 1 when a CUDA device is usable, 0 when not (or built without CUDA). */
int be_cuda_available(void);
/* Creates the CUDA backend; on failure prints why and returns -errno. */
int be_cuda_create(const struct model *m, int max_b, struct backend **out);
/* Whether the last CUDA error means corrupted device state (ECC etc.). */
int be_cuda_corrupted(void);
/* "NVIDIA H200, GPU-<uuid>" for the device in use (CUDA device 0: the first
 * of CUDA_VISIBLE_DEVICES), for the log line that says where training runs. */
void be_cuda_describe(char *buf, size_t len);

/* ---- safetensors ---- */
/* Write tensors t[0..nt) whose data lies contiguous in `data` (in order),
 * with optional __metadata__ pairs meta[0..2*nmeta). Name prefix applies to
 * every tensor name ("" or "m." ...). Several blocks may go in one file. */
struct st_block {
	const char *prefix;
	const float *data;
};
int st_write(int fd, const struct model *m, const struct st_block *blocks, int nblocks,
	     const char *const *meta, int nmeta);
/* Read and check every tensor of the layout (with prefix per block) into
 * the block's buffer. err says what was wrong. */
int st_read(const char *path, const struct model *m, const char *const *prefixes, float *const *dst,
	    int nblocks, char *err, size_t errlen);

/* ---- trainer_state.json ---- */
struct tstate {
	int format_version;
	char preset[16];
	int64_t step;	     /* optimizer steps done */
	int64_t epoch;	     /* epochs completed */
	int64_t micro_batch; /* data position: micro-batches consumed this epoch */
	int64_t batch_size;  /* to convert the data position on resume */
	int64_t grad_accum;
	uint64_t rng[4];
	uint64_t epoch_seed;
	double best_val_loss; /* lowest of every validation, epoch end or checkpoint; INFINITY = none */
	double es_best_val_loss; /* lowest at an epoch end: what early stopping compares with */
	int64_t bad_epochs;	 /* epochs without improvement (early stopping) */
	double last_val_loss;	 /* NAN = none yet */
	int64_t last_val_step;	 /* the step it was measured at, -1 = none */
	double lr;		 /* learning rate of the last step */
	double loss;		 /* training loss of the last step */
	uint64_t seed;
	char reason[16]; /* periodic | epoch | cancel | final */
};

/* Serialise into a malloc'd string. */
char *tstate_dump(const struct tstate *s);
/* Parse; format_version mismatch returns -EPROTO with err set. */
int tstate_load(const char *path, struct tstate *s, char *err, size_t errlen);

/* ---- saver ---- */
struct saver;
int saver_create(struct backend *be, const struct model *m, const char *run_dir, int sync,
		 struct saver **out);
/* Snapshot the state and commit it as step-NNNNNNNN (in the background
 * unless sync). Blocks while an earlier save is still in flight. *blocked
 * gets the seconds it held the caller. Returns
 * 0 or -errno (a failure of an earlier async save is returned here too). */
int saver_save(struct saver *sv, const struct tstate *s, double *blocked);
/* Wait for the save in flight; returns its result. */
int saver_wait(struct saver *sv);
/* Last step committed (-1 = none). */
int64_t saver_last_step(struct saver *sv);
/* Account one save's total blocking time (saver_save + the stall of the
 * next optimizer step) for saver_report(). */
void saver_note_blocking(struct saver *sv, double s);
/* Print the blocking/write time summary to stderr. */
void saver_report(struct saver *sv);
void saver_destroy(struct saver *sv);

/* ---- dwrite: O_DIRECT streaming where the filesystem allows it ---- */
struct dwriter {
	int fd;
	int direct;
	char *buf; /* aligned staging buffer */
	size_t used;
};
void dw_init(struct dwriter *w, int fd);
int dw_write(struct dwriter *w, const void *data, size_t len);
/* Write what is staged; frees the buffer. Always call it, also after an error. */
int dw_finish(struct dwriter *w);

/* ---- steplog: per-iteration and per-save times (CKPT_TRAIN_STEP_LOG) ---- */
/* Open the log named by CKPT_TRAIN_STEP_LOG, if set: 0 or -errno (printed). */
int steplog_open(void);
int steplog_on(void);
/* Append to the log; does nothing when it is off. Thread-safe. */
void steplog_printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* CPU seconds of the calling thread, at clock_gettime() resolution. */
double steplog_cpu_s(void);
void steplog_close(void);

/* ---- util ---- */
int write_all(int fd, const void *buf, size_t len);
double now_s(void);

#endif /* CKPT_TRAINER_I_H */
