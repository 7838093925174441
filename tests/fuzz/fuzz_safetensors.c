// SPDX-License-Identifier: MIT
/*
 * fuzz_safetensors.c - libFuzzer target for ckpt-train's safetensors reader
 * (st_read: model.safetensors and optimizer.safetensors of a checkpoint, read
 * on resume), with the `tiny` preset's layout.
 *
 * An input that starts with '{' is the JSON header: the file is its length
 * (8 bytes, little-endian), the header, then room for two blocks of tensor
 * data, so that a well-formed header reads. Any other input is the whole
 * file (the length word and what follows it).
 *
 * Checked: a refusal says why; what is read, written back with st_write and
 * read again, gives the same floats, bit for bit.
 *   tests/fuzz/run-fuzz build/tests/fuzz/fuzz_safetensors tests/fuzz/corpus/safetensors -t 60
 */
#include <fcntl.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fuzz_util.h"
#include "trainer_i.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct model m;
static float *a[2], *b[2], *fill;

static void setup(void)
{
	if (m.p)
		return;
	model_layout(&m, preset_find("tiny"));
	for (int i = 0; i < 2; i++) {
		a[i] = calloc(m.n, sizeof(float));
		b[i] = calloc(m.n, sizeof(float));
		FUZZ_CHECK(a[i] && b[i]);
	}
	fill = malloc(2 * m.n * sizeof(float));
	FUZZ_CHECK(fill);
	for (size_t i = 0; i < 2 * m.n; i++)
		fill[i] = (float)i * 0.25f - 3.0f;
	if (getenv("FUZZ_ST_SEED")) { /* print the header st_write makes, for the seeds */
		const char *meta[] = {"format", "pt"};
		struct st_block bl[2] = {{"exp_avg.", fill}, {"exp_avg_sq.", fill + m.n}};
		const char *p = fuzz_file("seed.safetensors", "", 0);
		int fd = open(p, O_WRONLY | O_TRUNC);
		uint64_t hlen;
		char hdr[65536];

		FUZZ_CHECK(fd >= 0 &&
			   st_write(fd, &m, bl, atoi(getenv("FUZZ_ST_SEED")), meta, 1) == 0);
		close(fd);
		fd = open(p, O_RDONLY);
		FUZZ_CHECK(pread(fd, &hlen, 8, 0) == 8 && hlen < sizeof(hdr));
		FUZZ_CHECK(pread(fd, hdr, hlen, 8) == (ssize_t)hlen);
		fwrite(hdr, 1, hlen, stdout);
		close(fd);
	}
}

/* Read with 1 block ("", as model.safetensors) or 2 (the optimizer's). */
static void one(const char *path, int nblocks)
{
	static const char *const pre1[] = {""}, *const pre2[] = {"exp_avg.", "exp_avg_sq."};
	const char *const *pre = nblocks == 1 ? pre1 : pre2;
	char err[1024] = "";
	int ret = st_read(path, &m, pre, a, nblocks, err, sizeof(err));
	struct st_block bl[2];
	const char *p2;
	int fd;

	if (ret < 0) {
		FUZZ_CHECK(err[0]);
		return;
	}
	for (int i = 0; i < nblocks; i++)
		bl[i] = (struct st_block){pre[i], a[i]};
	p2 = fuzz_file("again.safetensors", "", 0);
	fd = open(p2, O_WRONLY | O_TRUNC | O_CLOEXEC);
	FUZZ_CHECK(fd >= 0 && st_write(fd, &m, bl, nblocks, NULL, 0) == 0);
	close(fd);
	FUZZ_CHECK(st_read(p2, &m, pre, b, nblocks, err, sizeof(err)) == 0);
	for (int i = 0; i < nblocks; i++)
		FUZZ_CHECK(!memcmp(a[i], b[i], m.n * sizeof(float)));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *path;

	setup();
	if (size && data[0] == '{') {
		size_t dl = 2 * m.n * sizeof(float), len = 8 + size + dl;
		uint8_t *f = malloc(len);
		uint64_t hlen = size;

		FUZZ_CHECK(f);
		memcpy(f, &hlen, 8);
		memcpy(f + 8, data, size);
		memcpy(f + 8 + size, fill, dl);
		path = fuzz_file("in.safetensors", f, len);
		free(f);
	} else {
		path = fuzz_file("in.safetensors", data, size);
	}
	one(path, 1);
	one(path, 2);
	return 0;
}
