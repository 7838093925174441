/* SPDX-License-Identifier: MIT */
/*
 * gpu_i.h - the host's GPU inventory (gpu_inv.c) and the GPU sets ckptd
 * hands to operations. Nothing here touches ckptd's state, so a unit test
 * links gpu_inv.c alone (tests/supervisor/test_gpus.c).
 *
 * A GPU is named by its index in PCI bus order, the index nvidia-smi shows;
 * ckptd starts trainers with CUDA_DEVICE_ORDER=PCI_BUS_ID so that CUDA
 * numbers them the same way, and CUDA_VISIBLE_DEVICES lists those indices.
 */
#ifndef CKPTD_GPU_I_H
#define CKPTD_GPU_I_H

#include <jansson.h>
#include <stddef.h>

#define GPU_MAX 256 /* indices 0 .. GPU_MAX - 1 */
/* A set as text: at most GPU_MAX indices of up to 3 digits, comma separated */
#define GPU_SET_LEN (GPU_MAX * 4 + 1)

struct gpu_dev {
	int index;     /* PCI bus order, as nvidia-smi numbers them */
	char uuid[96]; /* "GPU-..." or "" when unknown (a configured list) */
	char name[96]; /* "NVIDIA H200" or "" */
};

struct gpu_inv {
	int n;
	struct gpu_dev dev[GPU_MAX];
	char source[8]; /* config | nvml | proc | none */
	char note[512]; /* how detection went, for the log and the API */
};

/* The default places to look; tests override them (gpu_inv_detect). */
#define GPU_NVML_LIB "libnvidia-ml.so.1"
#define GPU_PROC_DIR "/proc/driver/nvidia/gpus"

/* NVML through dlopen(lib): 0 with inv filled (source nvml), or -errno with
 * why set (the library is absent, is not NVML, or nvmlInit fails). */
int gpu_inv_nvml(struct gpu_inv *inv, const char *lib, char *why, size_t len);
/* dir/BUS_ID/information files of the NVIDIA driver: 0 with inv filled
 * (source proc), -ENOENT when there is no such dir, or -errno with why. */
int gpu_inv_proc(struct gpu_inv *inv, const char *dir, char *why, size_t len);
/* NVML, else /proc, else none; inv->note says which and why. Never fails. */
void gpu_inv_detect(struct gpu_inv *inv, const char *nvml_lib, const char *proc_dir);
/* The config key `gpus`: "auto" (returns 1: detect), 0 or [] (none), or a
 * list of distinct indices. 0 with inv filled (source config), 1 for auto,
 * -EINVAL with err set. */
int gpu_inv_from_config(struct gpu_inv *inv, json_t *v, char *err, size_t len);
int gpu_inv_find(const struct gpu_inv *inv, int index);

/* Sets of indices <-> "0,3,4" (what CUDA_VISIBLE_DEVICES gets). */
void gpu_set_format(const int *ids, int n, char *out, size_t len);
/* -EINVAL for anything but distinct indices 0..GPU_MAX-1 ("" is the empty set). */
int gpu_set_parse(const char *s, int *ids, int max, int *n);

/*
 * The share of local rank `rank` of `nranks` processes started for one
 * operation holding `ids` (n GPUs): with n >= nranks a contiguous block, the
 * first n % nranks ranks getting one more (8 GPUs, 4 ranks: rank 1 gets
 * ids[2..3]); with 0 < n < nranks rank r shares ids[r % n] with the others
 * that land on it; with n == 0 nothing (CPU). Writes *first and *count (the
 * share is ids[first .. first + count - 1]); -EINVAL for a bad rank.
 * For `--nproc-per-node` (a gang of ranks): each rank's CUDA_VISIBLE_DEVICES
 * is its share, by LOCAL_RANK.
 */
int gpu_share(int n, int rank, int nranks, int *first, int *count);

#endif /* CKPTD_GPU_I_H */
