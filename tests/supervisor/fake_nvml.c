// SPDX-License-Identifier: MIT
/*
 * fake_nvml.c - a stand-in for libnvidia-ml.so.1 with the few entry points
 * ckptd's gpu_inv.c uses, by NVML's documented C ABI, so that the dlopen
 * path runs on a machine without an NVIDIA driver. It is NOT NVML: whether
 * ckptd reads the real one right is checked on a GPU machine
 * (docs/supervisor.md, the ckptd-gpus_host test).
 *
 *   FAKE_NVML_COUNT=N     devices (default 2)
 *   FAKE_NVML_INIT=ERR    nvmlInit_v2 returns ERR (e.g. 9, driver not loaded)
 *   FAKE_NVML_DENY=I      nvmlDeviceGetHandleByIndex_v2(I) returns 4 (no permission)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int nvmlInit_v2(void);
int nvmlShutdown(void);
int nvmlDeviceGetCount_v2(unsigned *n);
int nvmlDeviceGetHandleByIndex_v2(unsigned i, void **dev);
int nvmlDeviceGetUUID(void *dev, char *buf, unsigned len);
int nvmlDeviceGetName(void *dev, char *buf, unsigned len);
const char *nvmlErrorString(int r);

static int envint(const char *k, int def)
{
	const char *v = getenv(k);

	return v && *v ? atoi(v) : def;
}

int nvmlInit_v2(void)
{
	return envint("FAKE_NVML_INIT", 0);
}

int nvmlShutdown(void)
{
	return 0;
}

int nvmlDeviceGetCount_v2(unsigned *n)
{
	*n = (unsigned)envint("FAKE_NVML_COUNT", 2);
	return 0;
}

int nvmlDeviceGetHandleByIndex_v2(unsigned i, void **dev)
{
	if ((int)i == envint("FAKE_NVML_DENY", -1))
		return 4; /* NVML_ERROR_NO_PERMISSION */
	*dev = (void *)(unsigned long)(i + 1);
	return 0;
}

int nvmlDeviceGetUUID(void *dev, char *buf, unsigned len)
{
	snprintf(buf, len, "GPU-fake0000-0000-0000-0000-%012lu", (unsigned long)dev - 1);
	return 0;
}

int nvmlDeviceGetName(void *dev, char *buf, unsigned len)
{
	snprintf(buf, len, "Fake GPU %lu", (unsigned long)dev - 1);
	return 0;
}

const char *nvmlErrorString(int r)
{
	return r == 9 ? "Driver Not Loaded" : r == 4 ? "Insufficient Permissions" : "Unknown Error";
}
