/* SPDX-License-Identifier: MIT */
/*
 * model.c - the parameter layout every backend shares: one flat float32
 * array holding, in order, the embedding, each hidden layer's weight and
 * bias, and the output layer. One flat array makes a snapshot three
 * memcpys (params, m, v) and a safetensors data section one write.
 *
 * The model: bytes x[ctx] -> embedding rows concatenated (ctx*dim) ->
 * `layers` x (affine + tanh) of width `hidden` -> affine to 256 logits ->
 * softmax cross-entropy against the next byte.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "trainer_i.h"

static void add(struct model *m, const char *name, int ndim, int64_t r, int64_t c, int decay)
{
	struct tensor *t = &m->t[m->nt++];

	snprintf(t->name, sizeof(t->name), "%s", name);
	t->ndim = ndim;
	t->shape[0] = r;
	t->shape[1] = c;
	t->n = (size_t)r * (size_t)(ndim == 2 ? c : 1);
	t->off = m->n;
	t->decay = decay;
	m->n += t->n;
}

void model_layout(struct model *m, const struct preset *p)
{
	char name[24];
	int in;

	memset(m, 0, sizeof(*m));
	m->p = p;
	m->in = p->ctx * p->dim;
	add(m, "embed", 2, VOCAB, p->dim, 1);
	in = m->in;
	for (int l = 0; l < p->layers; l++) {
		snprintf(name, sizeof(name), "h%d.weight", l);
		add(m, name, 2, in, p->hidden, 1);
		snprintf(name, sizeof(name), "h%d.bias", l);
		add(m, name, 1, p->hidden, 0, 0);
		in = p->hidden;
	}
	add(m, "out.weight", 2, in, VOCAB, 1);
	add(m, "out.bias", 1, VOCAB, 0, 0);
}

void model_init(const struct model *m, float *params, struct rng *r)
{
	for (int i = 0; i < m->nt; i++) {
		const struct tensor *t = &m->t[i];
		float scale;

		if (t->ndim == 1) {
			memset(params + t->off, 0, t->n * sizeof(float));
			continue;
		}
		/* Embedding rows ~U(-1,1); weights ~U(-1/sqrt(fan_in), ...). */
		scale = i == 0 ? 1.0f : 1.0f / sqrtf((float)t->shape[0]);
		for (size_t k = 0; k < t->n; k++)
			params[t->off + k] = scale * rng_sym(r);
	}
}
