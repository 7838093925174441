// SPDX-License-Identifier: MIT
/*
 * fuzz_tstate.c - libFuzzer target for ckpt-train's trainer_state.json
 * reader (tstate_load, read on resume). The input is the file.
 *
 * Checked: a refusal says why; an accepted state written back with
 * tstate_dump reads again into the same state, and its dump is a fixed point.
 *   tests/fuzz/run-fuzz build/tests/fuzz/fuzz_tstate tests/fuzz/corpus/tstate -t 60
 */
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_util.h"
#include "trainer_i.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Equal, where NaN equals NaN. */
static int same(double x, double y)
{
	return (isnan(x) && isnan(y)) || x == y;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *path = fuzz_file("trainer_state.json", data, size);
	struct tstate s, t;
	char err[1024] = "", *d1, *d2;

	if (tstate_load(path, &s, err, sizeof(err)) < 0) {
		FUZZ_CHECK(err[0]);
		return 0;
	}
	FUZZ_CHECK(s.step >= 0 && s.epoch >= 0 && s.micro_batch >= 0 && s.batch_size > 0);
	d1 = tstate_dump(&s);
	FUZZ_CHECK(d1);
	path = fuzz_file("trainer_state.json", d1, strlen(d1));
	if (tstate_load(path, &t, err, sizeof(err)) < 0) {
		fprintf(stderr, "the dump is refused: %s\n%s\n", err, d1);
		abort();
	}
	FUZZ_CHECK(!strcmp(s.preset, t.preset) && s.step == t.step && s.epoch == t.epoch);
	FUZZ_CHECK(s.micro_batch == t.micro_batch && s.batch_size == t.batch_size);
	FUZZ_CHECK(s.grad_accum == t.grad_accum && s.bad_epochs == t.bad_epochs);
	FUZZ_CHECK(s.last_val_step == t.last_val_step && s.seed == t.seed);
	FUZZ_CHECK(!memcmp(s.rng, t.rng, sizeof(s.rng)) && s.epoch_seed == t.epoch_seed);
	FUZZ_CHECK(same(s.best_val_loss, t.best_val_loss));
	FUZZ_CHECK(same(s.es_best_val_loss, t.es_best_val_loss));
	FUZZ_CHECK(same(s.last_val_loss, t.last_val_loss) && same(s.lr, t.lr));
	FUZZ_CHECK(same(s.loss, t.loss));
	d2 = tstate_dump(&t);
	FUZZ_CHECK(d2);
	if (strcmp(d1, d2)) {
		fprintf(stderr, "not a fixed point:\n%s\n%s\n", d1, d2);
		abort();
	}
	free(d1);
	free(d2);
	return 0;
}
