/* SPDX-License-Identifier: MIT */
/* be_cuda_none.c - stands in for be_cuda.cu in builds without CUDA (-Dcuda=disabled). */
#include <errno.h>
#include <stdio.h>

#include "trainer_i.h"

int be_cuda_available(void)
{
	return 0;
}

int be_cuda_create(const struct model *m, int max_b, struct backend **out)
{
	fprintf(stderr, "ckpt-train: this ckpt-train was built without CUDA (nvcc, cudart or "
			"cuBLAS not found, or -Dcuda=disabled); rebuild with -Dcuda=enabled or use "
			"--device cpu\n");
	return -ENODEV;
}

int be_cuda_corrupted(void)
{
	return 0;
}

void be_cuda_describe(char *buf, size_t len)
{
	snprintf(buf, len, "no CUDA in this build");
}
