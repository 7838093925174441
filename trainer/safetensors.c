/* SPDX-License-Identifier: MIT */
/*
 * safetensors.c - write and read safetensors files
 * (https://huggingface.co/docs/safetensors): an 8-byte little-endian header
 * length, a JSON header mapping each tensor name to its dtype, shape and
 * data_offsets (relative to the data section), an optional __metadata__ map
 * of strings, the header padded with spaces to a multiple of 8 bytes, then
 * the raw little-endian data.
 */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "trainer_i.h"

#if __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "safetensors data is little-endian; this writer copies floats as they are in memory"
#endif

/* A header larger than this is not one we wrote (the format caps it at 100 MB). */
#define ST_MAX_HEADER (100u << 20)

int st_write(int fd, const struct model *m, const struct st_block *blocks, int nblocks,
	     const char *const *meta, int nmeta)
{
	json_t *h = json_object(), *md;
	char name[64], *txt = NULL;
	size_t off = 0, hlen, pad;
	uint64_t le;
	int ret = -ENOMEM;

	if (!h)
		return -ENOMEM;
	if (nmeta) {
		md = json_object();
		for (int i = 0; md && i < nmeta; i++)
			json_object_set_new(md, meta[2 * i], json_string(meta[2 * i + 1]));
		if (!md || json_object_set_new(h, "__metadata__", md) < 0)
			goto out;
	}
	for (int b = 0; b < nblocks; b++)
		for (int i = 0; i < m->nt; i++) {
			const struct tensor *t = &m->t[i];
			size_t bytes = t->n * sizeof(float);
			json_t *e = json_pack("{s:s, s:[]}", "dtype", "F32", "shape");

			if (!e)
				goto out;
			for (int k = 0; k < t->ndim; k++)
				json_array_append_new(json_object_get(e, "shape"),
						      json_integer(t->shape[k]));
			json_object_set_new(
				e, "data_offsets",
				json_pack("[I, I]", (json_int_t)off, (json_int_t)(off + bytes)));
			off += bytes;
			snprintf(name, sizeof(name), "%s%s", blocks[b].prefix, t->name);
			if (json_object_set_new(h, name, e) < 0)
				goto out;
		}
	txt = json_dumps(h, JSON_COMPACT | JSON_PRESERVE_ORDER);
	if (!txt)
		goto out;
	hlen = strlen(txt);
	pad = (8 - hlen % 8) % 8;
	{
		char *padded = realloc(txt, hlen + pad + 1);

		if (!padded)
			goto out;
		txt = padded;
		memset(txt + hlen, ' ', pad);
		hlen += pad;
	}
	le = (uint64_t)hlen; /* little-endian host, checked above */
	{
		struct dwriter w;

		dw_init(&w, fd);
		ret = dw_write(&w, &le, sizeof(le));
		if (!ret)
			ret = dw_write(&w, txt, hlen);
		for (int b = 0; !ret && b < nblocks; b++)
			ret = dw_write(&w, blocks[b].data, m->n * sizeof(float));
		int fin = dw_finish(&w);

		if (!ret)
			ret = fin;
	}
out:
	free(txt);
	json_decref(h);
	return ret;
}

static int pread_all(int fd, void *buf, size_t len, off_t off)
{
	char *p = buf;

	while (len) {
		ssize_t n = pread(fd, p, len, off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			return -EIO;
		p += n;
		off += n;
		len -= (size_t)n;
	}
	return 0;
}

static int check_tensor(json_t *e, const struct tensor *t, uint64_t data_len, uint64_t *start,
			const char **why)
{
	json_t *shape = json_object_get(e, "shape"), *offs = json_object_get(e, "data_offsets");
	const char *dtype = json_string_value(json_object_get(e, "dtype"));
	json_int_t a, b;

	if (!dtype || strcmp(dtype, "F32") != 0)
		return *why = "dtype is not F32", -EINVAL;
	if (!json_is_array(shape) || json_array_size(shape) != (size_t)t->ndim)
		return *why = "shape has the wrong rank", -EINVAL;
	for (int k = 0; k < t->ndim; k++)
		if (json_integer_value(json_array_get(shape, (size_t)k)) != t->shape[k])
			return *why = "shape differs from this model preset", -EINVAL;
	if (!json_is_array(offs) || json_array_size(offs) != 2)
		return *why = "data_offsets is not a pair", -EINVAL;
	a = json_integer_value(json_array_get(offs, 0));
	b = json_integer_value(json_array_get(offs, 1));
	if (a < 0 || b < a || (uint64_t)b > data_len || (uint64_t)(b - a) != t->n * sizeof(float))
		return *why = "data_offsets out of range or of the wrong size", -EINVAL;
	*start = (uint64_t)a;
	return 0;
}

int st_read(const char *path, const struct model *m, const char *const *prefixes, float *const *dst,
	    int nblocks, char *err, size_t errlen)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC), ret = -EINVAL;
	char *hdr = NULL, name[64];
	const char *why = "";
	uint64_t hlen, data_len;
	json_t *h = NULL;
	json_error_t je;
	struct stat st;

	if (fd < 0) {
		ret = -errno;
		snprintf(err, errlen, "cannot open %s: %s", path, strerror(errno));
		return ret;
	}
	if (fstat(fd, &st) < 0 || pread_all(fd, &hlen, 8, 0) < 0) {
		snprintf(err, errlen, "cannot read %s", path);
		ret = -EIO;
		goto out;
	}
	if (hlen > ST_MAX_HEADER || 8 + hlen > (uint64_t)st.st_size) {
		snprintf(err, errlen, "%s: header length %llu does not fit the file", path,
			 (unsigned long long)hlen);
		goto out;
	}
	data_len = (uint64_t)st.st_size - 8 - hlen;
	hdr = malloc(hlen + 1);
	if (!hdr) {
		ret = -ENOMEM;
		goto out;
	}
	ret = pread_all(fd, hdr, hlen, 8);
	if (ret < 0) {
		snprintf(err, errlen, "cannot read the header of %s", path);
		goto out;
	}
	h = json_loadb(hdr, hlen, 0, &je);
	if (!json_is_object(h)) {
		snprintf(err, errlen, "%s: header is not a JSON object (%s)", path, je.text);
		ret = -EINVAL;
		goto out;
	}
	ret = -EINVAL;
	for (int b = 0; b < nblocks; b++)
		for (int i = 0; i < m->nt; i++) {
			uint64_t start;
			json_t *e;

			snprintf(name, sizeof(name), "%s%s", prefixes[b], m->t[i].name);
			e = json_object_get(h, name);
			if (!e) {
				snprintf(err, errlen, "%s: tensor %s is missing", path, name);
				goto out;
			}
			if (check_tensor(e, &m->t[i], data_len, &start, &why) < 0) {
				snprintf(err, errlen, "%s: tensor %s: %s", path, name, why);
				goto out;
			}
			if (pread_all(fd, dst[b] + m->t[i].off, m->t[i].n * sizeof(float),
				      (off_t)(8 + hlen + start)) < 0) {
				snprintf(err, errlen, "%s: cannot read tensor %s", path, name);
				ret = -EIO;
				goto out;
			}
		}
	ret = 0;
out:
	json_decref(h);
	free(hdr);
	close(fd);
	return ret;
}
