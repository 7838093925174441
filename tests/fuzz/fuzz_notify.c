// SPDX-License-Identifier: MIT
/*
 * fuzz_notify.c - libFuzzer target for the notify parser. Built when clang is
 * present (tests/meson.build); run with:
 *   build/tests/fuzz_notify -max_total_time=60 tests/fuzz/corpus/notify
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "ckptfs/notify.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ckpt_report r;
	const char *why = NULL;
	int ret = ckpt_notify_parse((const char *)data, size, &r, &why);

	/* The contract: accepted, or rejected with a reason. */
	if (ret < 0 && !why)
		__builtin_trap();
	if (ret == 0 && (r.have & CKPT_R_CHECKPOINT) && r.checkpoint[0] != '/')
		__builtin_trap();
	return 0;
}
