// SPDX-License-Identifier: MIT
/*
 * test_gpus.c - ckptd's GPU inventory (supervisor/gpu_inv.c) without a GPU:
 * the driver's /proc tree from fixture dirs written here, NVML's dlopen path
 * failing cleanly (no such library, a library that is not NVML, nvmlInit
 * failing) and working against a stand-in library (fake_nvml.c), the config
 * key, GPU sets as text, and the per-rank share of a set.
 *
 *   test_gpus FAKE_NVML_SO
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "gpu_i.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <ftw.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *fake_nvml;
static struct gpu_inv inv;

static void put(const char *dir, const char *bus, const char *text)
{
	char p[512];
	FILE *f;

	snprintf(p, sizeof(p), "%s/%s", dir, bus);
	assert_int_equal(mkdir(p, 0755), 0);
	if (!text)
		return;
	strcat(p, "/information");
	f = fopen(p, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

static int rm_one(const char *p, const struct stat *st, int type, struct FTW *f)
{
	return remove(p);
}

static char *fixture(void)
{
	static char dir[] = "/tmp/test_gpus_XXXXXX";
	char p[600];

	assert_non_null(mkdtemp(dir));
	/* the driver's layout, out of PCI order on purpose */
	put(dir, "0000:b1:00.0",
	    "Model: \t\t NVIDIA H200\nIRQ:   \t\t 300\nGPU UUID: \t GPU-bbbb\n"
	    "Bus Type: \t PCIe\nDevice Minor: \t 0\nGPU Excluded:\t No\n");
	put(dir, "0000:3b:00.0",
	    "Model: \t\t NVIDIA H100 80GB HBM3\nGPU UUID: \t GPU-aaaa  \nDevice Minor: \t 7\n");
	put(dir, "0000:5e:00.0",
	    "Model: \t\t NVIDIA A100\nGPU UUID: \t GPU-excl\n"
	    "GPU Excluded:\t Yes\n");
	put(dir, "0000:86:00.0", NULL); /* no information file */
	put(dir, "power", NULL);	/* not a PCI bus id */
	snprintf(p, sizeof(p), "%s/registry", dir);
	fclose(fopen(p, "w"));
	return dir;
}

static void test_proc(void **state)
{
	char why[300] = "", *dir = fixture();

	assert_int_equal(gpu_inv_proc(&inv, dir, why, sizeof(why)), 0);
	assert_string_equal(inv.source, "proc");
	assert_int_equal(inv.n, 2);
	assert_int_equal(inv.dev[0].index, 0);
	assert_string_equal(inv.dev[0].uuid, "GPU-aaaa"); /* 3b before b1 */
	assert_string_equal(inv.dev[0].name, "NVIDIA H100 80GB HBM3");
	assert_int_equal(inv.dev[1].index, 1);
	assert_string_equal(inv.dev[1].uuid, "GPU-bbbb");
	assert_string_equal(inv.dev[1].name, "NVIDIA H200");
	assert_int_equal(gpu_inv_proc(&inv, "/nonexistent/gpus", why, sizeof(why)), -ENOENT);
	assert_non_null(strstr(why, "/nonexistent/gpus"));

	/* detect: NVML absent, so /proc; both absent, so none */
	gpu_inv_detect(&inv, "/nonexistent/libnvidia-ml.so.1", dir);
	assert_string_equal(inv.source, "proc");
	assert_int_equal(inv.n, 2);
	assert_non_null(strstr(inv.note, "/nonexistent/libnvidia-ml.so.1"));
	gpu_inv_detect(&inv, "/nonexistent/libnvidia-ml.so.1", "/nonexistent/gpus");
	assert_string_equal(inv.source, "none");
	assert_int_equal(inv.n, 0);
	assert_non_null(strstr(inv.note, "no GPUs found"));
	assert_int_equal(nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS), 0);
}

static void test_nvml_fails_cleanly(void **state)
{
	char why[300] = "";

	inv.n = 5;
	assert_int_equal(gpu_inv_nvml(&inv, "/nonexistent/libnvidia-ml.so.1", why, sizeof(why)),
			 -ENOENT);
	assert_non_null(strstr(why, "/nonexistent/libnvidia-ml.so.1"));
	assert_int_equal(inv.n, 5); /* untouched on failure */
	/* a real library that is not NVML */
	assert_int_equal(gpu_inv_nvml(&inv, "libm.so.6", why, sizeof(why)), -ENOSYS);
	assert_non_null(strstr(why, "has no nvmlInit_v2"));
	setenv("FAKE_NVML_INIT", "9", 1);
	assert_int_equal(gpu_inv_nvml(&inv, fake_nvml, why, sizeof(why)), -EIO);
	assert_non_null(strstr(why, "Driver Not Loaded"));
	unsetenv("FAKE_NVML_INIT");
}

static void test_nvml_stand_in(void **state)
{
	char why[300] = "";

	setenv("FAKE_NVML_COUNT", "3", 1);
	assert_int_equal(gpu_inv_nvml(&inv, fake_nvml, why, sizeof(why)), 0);
	assert_string_equal(inv.source, "nvml");
	assert_int_equal(inv.n, 3);
	for (int i = 0; i < 3; i++) {
		char u[64];

		snprintf(u, sizeof(u), "GPU-fake0000-0000-0000-0000-%012d", i);
		assert_int_equal(inv.dev[i].index, i);
		assert_string_equal(inv.dev[i].uuid, u);
	}
	/* a GPU NVML may not open (cgroups) is not handed out; the others keep
	 * their own index */
	setenv("FAKE_NVML_DENY", "1", 1);
	assert_int_equal(gpu_inv_nvml(&inv, fake_nvml, why, sizeof(why)), 0);
	assert_int_equal(inv.n, 2);
	assert_int_equal(inv.dev[0].index, 0);
	assert_int_equal(inv.dev[1].index, 2);
	assert_non_null(strstr(why, "GPU 1 skipped"));
	unsetenv("FAKE_NVML_DENY");
	gpu_inv_detect(&inv, fake_nvml, "/nonexistent/gpus");
	assert_string_equal(inv.source, "nvml");
	assert_int_equal(inv.n, 3);
	unsetenv("FAKE_NVML_COUNT");
}

static int config(const char *text)
{
	char err[300] = "";
	json_t *v = json_loads(text, JSON_DECODE_ANY, NULL);
	int r;

	assert_non_null(v);
	r = gpu_inv_from_config(&inv, v, err, sizeof(err));
	json_decref(v);
	if (r < 0)
		assert_non_null(strstr(err, "gpus"));
	return r;
}

static void test_config(void **state)
{
	assert_int_equal(config("\"auto\""), 1);
	assert_int_equal(config("0"), 0);
	assert_int_equal(inv.n, 0);
	assert_string_equal(inv.source, "config");
	assert_int_equal(config("[]"), 0);
	assert_int_equal(inv.n, 0);
	assert_int_equal(config("[3, 0, 7]"), 0);
	assert_int_equal(inv.n, 3);
	assert_int_equal(inv.dev[0].index, 3);
	assert_int_equal(inv.dev[2].index, 7);
	assert_int_equal(gpu_inv_find(&inv, 7), 2);
	assert_int_equal(gpu_inv_find(&inv, 1), -1);
	assert_int_equal(config("4"), -EINVAL); /* a count, not a list: ambiguous */
	assert_int_equal(config("[0, 0]"), -EINVAL);
	assert_int_equal(config("[-1]"), -EINVAL);
	assert_int_equal(config("[256]"), -EINVAL);
	assert_int_equal(config("[1.5]"), -EINVAL);
	assert_int_equal(config("[\"GPU-x\"]"), -EINVAL);
	assert_int_equal(config("\"all\""), -EINVAL);
	assert_int_equal(config("null"), -EINVAL);
}

static void test_sets(void **state)
{
	int ids[GPU_MAX], n = -1, big[GPU_MAX];
	char s[GPU_SET_LEN];

	assert_int_equal(gpu_set_parse("", ids, GPU_MAX, &n), 0);
	assert_int_equal(n, 0);
	assert_int_equal(gpu_set_parse(NULL, ids, GPU_MAX, &n), 0);
	assert_int_equal(gpu_set_parse("4,0,17", ids, GPU_MAX, &n), 0);
	assert_int_equal(n, 3);
	assert_int_equal(ids[2], 17);
	gpu_set_format(ids, n, s, sizeof(s));
	assert_string_equal(s, "4,0,17");
	gpu_set_format(ids, 0, s, sizeof(s));
	assert_string_equal(s, "");
	static const char *const bad[] = {"a",	 "1,", ",1",   "1,,2", "1,1",
					  "256", "-1", "1 ,2", "0x1"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(gpu_set_parse(bad[i], ids, GPU_MAX, &n), -EINVAL);
	assert_int_equal(gpu_set_parse("1,2,3", ids, 2, &n), -EINVAL); /* more than max */
	/* the largest set fits GPU_SET_LEN */
	for (int i = 0; i < GPU_MAX; i++)
		big[i] = GPU_MAX - 1 - i;
	gpu_set_format(big, GPU_MAX, s, sizeof(s));
	assert_int_equal(gpu_set_parse(s, ids, GPU_MAX, &n), 0);
	assert_int_equal(n, GPU_MAX);
	assert_int_equal(ids[GPU_MAX - 1], 0);
}

static void test_share(void **state)
{
	int f, c;

	assert_int_equal(gpu_share(8, 1, 4, &f, &c), 0);
	assert_int_equal(f, 2);
	assert_int_equal(c, 2);
	assert_int_equal(gpu_share(5, 0, 2, &f, &c), 0); /* 5 over 2: 3 then 2 */
	assert_true(f == 0 && c == 3);
	assert_int_equal(gpu_share(5, 1, 2, &f, &c), 0);
	assert_true(f == 3 && c == 2);
	assert_int_equal(gpu_share(2, 3, 4, &f, &c), 0); /* fewer GPUs than ranks: shared */
	assert_true(f == 1 && c == 1);
	assert_int_equal(gpu_share(0, 0, 2, &f, &c), 0);
	assert_int_equal(c, 0);
	assert_int_equal(gpu_share(4, 4, 4, &f, &c), -EINVAL);
	assert_int_equal(gpu_share(4, -1, 4, &f, &c), -EINVAL);
	assert_int_equal(gpu_share(4, 0, 0, &f, &c), -EINVAL);
	/* n >= ranks: the shares tile the set, each GPU to exactly one rank, in
	 * rank order, sizes differing by at most one */
	for (int n = 1; n <= 16; n++)
		for (int r = 1; r <= n; r++) {
			int next = 0, lo = n, hi = 0;

			for (int k = 0; k < r; k++) {
				assert_int_equal(gpu_share(n, k, r, &f, &c), 0);
				assert_int_equal(f, next);
				next += c;
				lo = c < lo ? c : lo;
				hi = c > hi ? c : hi;
			}
			assert_int_equal(next, n);
			assert_true(hi - lo <= 1);
		}
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_proc),	      cmocka_unit_test(test_nvml_fails_cleanly),
		cmocka_unit_test(test_nvml_stand_in), cmocka_unit_test(test_config),
		cmocka_unit_test(test_sets),	      cmocka_unit_test(test_share),
	};

	if (argc != 2) {
		fprintf(stderr, "usage: test_gpus FAKE_NVML_SO\n");
		return 2;
	}
	fake_nvml = argv[1];
	return cmocka_run_group_tests(tests, NULL, NULL);
}
