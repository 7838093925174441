// SPDX-License-Identifier: MIT
/*
 * fuzz_jobspec.c - libFuzzer target for the job spec (SPEC §5). The input is
 * a spec document, read twice: as the API's JSON body (built-in defaults,
 * ckpt_jobspec_apply_json, ckpt_jobspec_validate: what ckptd's submit does)
 * and as a YAML file (ckpt_jobspec_apply_yaml, as `ckpt run job.yaml`).
 * Checked: a refusal says why; an accepted spec's JSON form (what ckptd
 * stores) is accepted again and gives the same JSON (a fixed point), and any
 * schedule.cron in it parses.
 *   tests/fuzz/run-fuzz build/tests/fuzz/fuzz_jobspec tests/fuzz/corpus/jobspec -t 60
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ckptfs/cron.h"
#include "ckptfs/jobspec.h"
#include "fuzz_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The stored form of an accepted spec must be accepted again, unchanged. */
static void round_trip(const struct ckpt_jobspec *js)
{
	char *a = ckpt_jobspec_to_json(js), *b, err[1024] = "";
	struct ckpt_jobspec again;

	FUZZ_CHECK(a);
	FUZZ_CHECK(ckpt_jobspec_init(&again) == 0);
	if (ckpt_jobspec_apply_json(&again, a, strlen(a), err, sizeof(err)) != 0 ||
	    ckpt_jobspec_validate(&again, err, sizeof(err)) != 0) {
		fprintf(stderr, "the stored form is refused: %s\n%s\n", err, a);
		abort();
	}
	b = ckpt_jobspec_to_json(&again);
	FUZZ_CHECK(b);
	if (strcmp(a, b)) {
		fprintf(stderr, "not a fixed point:\n%s\n%s\n", a, b);
		abort();
	}
	if (js->schedule.cron) {
		struct ckpt_cron c;

		FUZZ_CHECK(ckpt_cron_parse(js->schedule.cron, &c, err, sizeof(err)) == 0);
	}
	free(a);
	free(b);
	ckpt_jobspec_free(&again);
}

static void one(const uint8_t *data, size_t size, int yaml)
{
	struct ckpt_jobspec js;
	char err[1024] = "";
	int ret;

	FUZZ_CHECK(ckpt_jobspec_init(&js) == 0);
	if (yaml)
		ret = ckpt_jobspec_apply_yaml(&js, (const char *)data, size, "fuzz.yaml", err,
					      sizeof(err));
	else
		ret = ckpt_jobspec_apply_json(&js, (const char *)data, size, err, sizeof(err));
	if (ret == 0)
		ret = ckpt_jobspec_validate(&js, err, sizeof(err));
	if (ret) {
		FUZZ_CHECK(ret < 0 && err[0]);
		FUZZ_CHECK(memchr(err, '\0', sizeof(err)));
	} else {
		round_trip(&js);
	}
	ckpt_jobspec_free(&js);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	one(data, size, 0);
	one(data, size, 1);
	return 0;
}
