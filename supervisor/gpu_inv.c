// SPDX-License-Identifier: MIT
/*
 * gpu_inv.c - which GPUs this host has: from NVML (libnvidia-ml.so.1, opened
 * with dlopen so ckptd builds and runs on hosts without the driver), else
 * from the driver's /proc/driver/nvidia/gpus/, else none; or the list the
 * config gives. Also GPU sets as text and the per-rank share of a set.
 *
 * Indices are PCI bus order, as nvidia-smi shows them: NVML enumerates in
 * that order, and the /proc entries are named by PCI bus id, so sorting the
 * names gives it too.
 */
#include "gpu_i.h"

#include <ctype.h>
#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The few NVML entry points used, by their documented C ABI (nvml.h):
 * every call returns nvmlReturn_t, 0 being NVML_SUCCESS. */
typedef int nvml_ret;
typedef void *nvml_dev;

#define NVML_UUID_LEN 96 /* NVML_DEVICE_UUID_V2_BUFFER_SIZE */
#define NVML_NAME_LEN 96 /* NVML_DEVICE_NAME_V2_BUFFER_SIZE */

struct nvml {
	nvml_ret (*init)(void);
	nvml_ret (*shutdown)(void);
	nvml_ret (*count)(unsigned *);
	nvml_ret (*by_index)(unsigned, nvml_dev *);
	nvml_ret (*uuid)(nvml_dev, char *, unsigned);
	nvml_ret (*name)(nvml_dev, char *, unsigned);
	const char *(*errstr)(nvml_ret);
};

static void inv_reset(struct gpu_inv *inv, const char *source)
{
	inv->n = 0;
	snprintf(inv->source, sizeof(inv->source), "%s", source);
	inv->note[0] = '\0';
}

static const char *nvml_why(const struct nvml *f, nvml_ret r)
{
	const char *s = f->errstr ? f->errstr(r) : NULL;

	return s ? s : "unknown error";
}

int gpu_inv_nvml(struct gpu_inv *inv, const char *lib, char *why, size_t len)
{
	static const char *const names[] = {
		"nvmlInit_v2",		 "nvmlShutdown",
		"nvmlDeviceGetCount_v2", "nvmlDeviceGetHandleByIndex_v2",
		"nvmlDeviceGetUUID",	 "nvmlDeviceGetName"};
	struct nvml f = {0};
	void **slots[] = {(void **)&f.init,	(void **)&f.shutdown, (void **)&f.count,
			  (void **)&f.by_index, (void **)&f.uuid,     (void **)&f.name};
	unsigned n = 0;
	void *h;
	nvml_ret r;
	int ret = 0;

	h = dlopen(lib, RTLD_NOW | RTLD_LOCAL);
	if (!h) {
		const char *e = dlerror();

		snprintf(why, len, "%s", e ? e : lib);
		return -ENOENT;
	}
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		*slots[i] = dlsym(h, names[i]);
		if (!*slots[i]) {
			snprintf(why, len, "%s has no %s: not NVML, or one too old", lib, names[i]);
			dlclose(h);
			return -ENOSYS;
		}
	}
	*(void **)&f.errstr = dlsym(h, "nvmlErrorString");
	r = f.init();
	if (r != 0) {
		snprintf(why, len, "%s: nvmlInit_v2 failed: %s (%d)", lib, nvml_why(&f, r), r);
		dlclose(h);
		return -EIO;
	}
	r = f.count(&n);
	if (r != 0) {
		snprintf(why, len, "%s: nvmlDeviceGetCount_v2 failed: %s (%d)", lib,
			 nvml_why(&f, r), r);
		ret = -EIO;
		goto out;
	}
	inv_reset(inv, "nvml");
	if (n > GPU_MAX)
		n = GPU_MAX;
	for (unsigned i = 0; i < n; i++) {
		struct gpu_dev *d = &inv->dev[inv->n];
		char uuid[NVML_UUID_LEN] = "", name[NVML_NAME_LEN] = "";
		nvml_dev dev = NULL;

		r = f.by_index(i, &dev);
		if (r != 0) {
			/* e.g. NVML_ERROR_NO_PERMISSION for a GPU cgroups hide: CUDA does
			 * not see it either, so it is not ours to hand out */
			snprintf(why, len, "%s: GPU %u skipped: %s (%d)", lib, i, nvml_why(&f, r),
				 r);
			continue;
		}
		if (f.uuid(dev, uuid, sizeof(uuid)) != 0)
			uuid[0] = '\0';
		if (f.name(dev, name, sizeof(name)) != 0)
			name[0] = '\0';
		d->index = (int)i;
		snprintf(d->uuid, sizeof(d->uuid), "%s", uuid);
		snprintf(d->name, sizeof(d->name), "%s", name);
		inv->n++;
	}
out:
	f.shutdown();
	dlclose(h);
	return ret;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* "Key:   value" of the driver's information file, trimmed. */
static bool info_field(const char *line, const char *key, char *out, size_t len)
{
	size_t k = strlen(key), n;

	if (strncmp(line, key, k) || line[k] != ':')
		return false;
	line += k + 1;
	while (*line == ' ' || *line == '\t')
		line++;
	n = strcspn(line, "\r\n");
	while (n && (line[n - 1] == ' ' || line[n - 1] == '\t'))
		n--;
	snprintf(out, len, "%.*s", (int)n, line);
	return true;
}

/* A directory name that is a PCI bus id, DDDD:BB:DD.F in hex. */
static bool pci_bus_id(const char *s)
{
	static const char pat[] = "xxxx:xx:xx.x";

	if (strlen(s) != sizeof(pat) - 1)
		return false;
	for (size_t i = 0; pat[i]; i++)
		if (pat[i] == 'x' ? !isxdigit((unsigned char)s[i]) : s[i] != pat[i])
			return false;
	return true;
}

int gpu_inv_proc(struct gpu_inv *inv, const char *dir, char *why, size_t len)
{
	char **ids = NULL, path[4200], line[512];
	size_t nids = 0, cap = 0;
	struct dirent *de;
	DIR *d;
	int ret = 0;

	d = opendir(dir);
	if (!d) {
		ret = -errno;
		snprintf(why, len, "%s: %s", dir, strerror(errno));
		return ret;
	}
	while ((de = readdir(d))) {
		if (!pci_bus_id(de->d_name))
			continue;
		if (nids == cap) {
			char **n = realloc(ids, (cap = cap ? cap * 2 : 16) * sizeof(*n));

			if (!n) {
				ret = -ENOMEM;
				goto out;
			}
			ids = n;
		}
		ids[nids] = strdup(de->d_name);
		if (!ids[nids]) {
			ret = -ENOMEM;
			goto out;
		}
		nids++;
	}
	qsort(ids, nids, sizeof(*ids), cmp_str); /* fixed-width hex: PCI bus order */
	inv_reset(inv, "proc");
	for (size_t i = 0; i < nids && inv->n < GPU_MAX; i++) {
		struct gpu_dev *dv = &inv->dev[inv->n];
		bool excluded = false;
		char v[96];
		FILE *f;

		snprintf(path, sizeof(path), "%s/%s/information", dir, ids[i]);
		f = fopen(path, "re");
		if (!f) {
			snprintf(why, len, "%s: %s; GPU skipped", path, strerror(errno));
			continue;
		}
		dv->uuid[0] = dv->name[0] = '\0';
		while (fgets(line, sizeof(line), f)) {
			info_field(line, "Model", dv->name, sizeof(dv->name));
			info_field(line, "GPU UUID", dv->uuid, sizeof(dv->uuid));
			/* the driver keeps these from CUDA: not ours to hand out */
			if ((info_field(line, "GPU Excluded", v, sizeof(v)) ||
			     info_field(line, "Blacklisted", v, sizeof(v))) &&
			    !strcasecmp(v, "yes"))
				excluded = true;
		}
		fclose(f);
		if (excluded) {
			snprintf(why, len, "%s: the driver excludes GPU %s; skipped", dir, ids[i]);
			continue;
		}
		dv->index = inv->n; /* CUDA, in PCI order, numbers what it can use */
		inv->n++;
	}
out:
	for (size_t i = 0; i < nids; i++)
		free(ids[i]);
	free(ids);
	closedir(d);
	return ret;
}

void gpu_inv_detect(struct gpu_inv *inv, const char *nvml_lib, const char *proc_dir)
{
	char nv[300] = "", pr[300] = "";
	int r;

	if (gpu_inv_nvml(inv, nvml_lib, nv, sizeof(nv)) == 0) {
		snprintf(inv->note, sizeof(inv->note), "%d GPU%s from NVML (%s)%s%s", inv->n,
			 inv->n == 1 ? "" : "s", nvml_lib, nv[0] ? "; " : "", nv);
		return;
	}
	r = gpu_inv_proc(inv, proc_dir, pr, sizeof(pr));
	if (r == 0) {
		snprintf(inv->note, sizeof(inv->note), "%d GPU%s from %s (NVML: %.200s)%s%.200s",
			 inv->n, inv->n == 1 ? "" : "s", proc_dir, nv, pr[0] ? "; " : "", pr);
		return;
	}
	inv_reset(inv, "none");
	snprintf(inv->note, sizeof(inv->note), "no GPUs found (NVML: %.200s; %.200s)", nv, pr);
}

int gpu_inv_find(const struct gpu_inv *inv, int index)
{
	for (int i = 0; i < inv->n; i++)
		if (inv->dev[i].index == index)
			return i;
	return -1;
}

int gpu_inv_from_config(struct gpu_inv *inv, json_t *v, char *err, size_t len)
{
	static const char want[] = "must be auto, 0 (no GPUs) or a list of distinct GPU "
				   "indices as nvidia-smi numbers them, e.g. [0, 1, 2, 3]";
	size_t i;
	json_t *e;

	if (json_is_string(v) && !strcmp(json_string_value(v), "auto"))
		return 1;
	inv_reset(inv, "config");
	if (json_is_integer(v) && json_integer_value(v) == 0) {
		snprintf(inv->note, sizeof(inv->note), "no GPUs (config gpus: 0)");
		return 0;
	}
	if (!json_is_array(v)) {
		snprintf(err, len, "gpus: %s", want);
		return -EINVAL;
	}
	json_array_foreach(v, i, e)
	{
		json_int_t x = json_is_integer(e) ? json_integer_value(e) : -1;

		if (x < 0 || x >= GPU_MAX) {
			snprintf(err, len, "gpus[%zu]: must be an integer index 0-%d; the key %s",
				 i, GPU_MAX - 1, want);
			return -EINVAL;
		}
		if (gpu_inv_find(inv, (int)x) >= 0) {
			snprintf(err, len, "gpus[%zu]: GPU %d is listed twice", i, (int)x);
			return -EINVAL;
		}
		inv->dev[inv->n].index = (int)x;
		inv->dev[inv->n].uuid[0] = inv->dev[inv->n].name[0] = '\0';
		inv->n++;
	}
	snprintf(inv->note, sizeof(inv->note), "%d GPU%s from the config", inv->n,
		 inv->n == 1 ? "" : "s");
	return 0;
}

void gpu_set_format(const int *ids, int n, char *out, size_t len)
{
	size_t off = 0;

	if (len)
		out[0] = '\0';
	for (int i = 0; i < n && off < len; i++) {
		int w = snprintf(out + off, len - off, "%s%d", i ? "," : "", ids[i]);

		if (w < 0)
			break;
		off += (size_t)w;
	}
}

int gpu_set_parse(const char *s, int *ids, int max, int *n)
{
	*n = 0;
	if (!s || !*s)
		return 0;
	for (;;) {
		char *end;
		long v;

		if (!isdigit((unsigned char)*s))
			return -EINVAL;
		v = strtol(s, &end, 10);
		if (v >= GPU_MAX || *n >= max)
			return -EINVAL;
		for (int i = 0; i < *n; i++)
			if (ids[i] == v)
				return -EINVAL;
		ids[(*n)++] = (int)v;
		if (!*end)
			return 0;
		if (*end != ',')
			return -EINVAL;
		s = end + 1;
	}
}

int gpu_share(int n, int rank, int nranks, int *first, int *count)
{
	if (n < 0 || nranks < 1 || rank < 0 || rank >= nranks)
		return -EINVAL;
	if (n == 0) {
		*first = *count = 0;
	} else if (n < nranks) {
		*first = rank % n;
		*count = 1;
	} else {
		int base = n / nranks, extra = n % nranks;

		*count = base + (rank < extra);
		*first = rank * base + (rank < extra ? rank : extra);
	}
	return 0;
}
