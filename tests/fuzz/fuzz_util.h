/* SPDX-License-Identifier: MIT */
/*
 * fuzz_util.h - small helpers shared by the libFuzzer targets: a private
 * scratch directory (removed at exit) for targets whose parser reads a file,
 * and a NUL-terminated copy of the input.
 */
#ifndef CKPTFS_FUZZ_UTIL_H
#define CKPTFS_FUZZ_UTIL_H

#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The contract checks of a target: a failed one is a crash libFuzzer keeps. */
#define FUZZ_CHECK(cond)                                                                           \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);   \
			abort();                                                                   \
		}                                                                                  \
	} while (0)

static char fuzz_dir_path[256];

static void fuzz_dir_cleanup(void)
{
	char cmd[300];

	if (fuzz_dir_path[0]) {
		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", fuzz_dir_path);
		if (system(cmd) != 0)
			fprintf(stderr, "cannot remove %s\n", fuzz_dir_path);
	}
}

/* A directory of this process, on /dev/shm when there is one (no disk I/O). */
static inline const char *fuzz_dir(void)
{
	if (!fuzz_dir_path[0]) {
		const char *base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";

		snprintf(fuzz_dir_path, sizeof(fuzz_dir_path), "%s/ckptfs-fuzz-XXXXXX", base);
		if (!mkdtemp(fuzz_dir_path)) {
			perror("mkdtemp");
			abort();
		}
		atexit(fuzz_dir_cleanup);
	}
	return fuzz_dir_path;
}

/* Write the bytes as file `name` in fuzz_dir(); returns its path (static). */
static inline const char *fuzz_file(const char *name, const void *data, size_t size)
{
	static char path[512];
	int fd;

	snprintf(path, sizeof(path), "%s/%s", fuzz_dir(), name);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0 || (size && write(fd, data, size) != (ssize_t)size)) {
		perror(path);
		abort();
	}
	close(fd);
	return path;
}

/* A NUL-terminated malloc'd copy (free it). */
static inline char *fuzz_str(const uint8_t *data, size_t size)
{
	char *s = malloc(size + 1);

	FUZZ_CHECK(s);
	memcpy(s, data, size);
	s[size] = '\0';
	return s;
}

#endif /* CKPTFS_FUZZ_UTIL_H */
