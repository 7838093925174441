/* SPDX-License-Identifier: MIT */
/*
 * preset.c - model presets, from CI-fast `tiny` to `large` (over 1 GiB of
 * weights + AdamW state: ~102 M parameters x 3 float32 arrays = 1.22 GB).
 */
#include <string.h>

#include "trainer_i.h"

static const struct preset presets[] = {
	{"tiny", 8, 16, 64, 1},
	{"small", 16, 32, 256, 2},
	{"base", 32, 64, 1024, 3},
	{"large", 16, 256, 4096, 6},
};

const struct preset *preset_find(const char *name)
{
	for (size_t i = 0; i < sizeof(presets) / sizeof(presets[0]); i++)
		if (strcmp(presets[i].name, name) == 0)
			return &presets[i];
	return NULL;
}

const char *preset_list(void)
{
	return "tiny, small, base, large";
}
