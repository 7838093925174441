// SPDX-License-Identifier: MIT
/*
 * rados_direct - the direct path bench_rados.sh compares ckptfs with: the
 * bytes of FILE as 16 MiB objects PREFIX.0, PREFIX.1, ... written (put) or
 * read back (get) with librados' asynchronous calls, P operations in
 * flight, from one process. Prints the MB/s.
 *   rados_direct CONF POOL PREFIX FILE P put|get
 */
#include <errno.h>
#include <fcntl.h>
#include <rados/librados.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define OBJ (16u << 20)

static double now(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
	rados_t cl;
	rados_ioctx_t io;
	struct stat st;
	int fd, p, ret;
	bool put;
	char *map, *rbuf;
	size_t n, i, next = 0, done = 0;
	rados_completion_t *c;
	size_t *slot_obj;
	double t0;

	if (argc != 7) {
		fprintf(stderr, "usage: rados_direct CONF POOL PREFIX FILE P put|get\n");
		return 2;
	}
	p = atoi(argv[5]);
	put = !strcmp(argv[6], "put");
	fd = open(argv[4], O_RDONLY);
	if (fd < 0 || fstat(fd, &st) < 0 || p < 1) {
		perror(argv[4]);
		return 1;
	}
	n = ((size_t)st.st_size + OBJ - 1) / OBJ;
	map = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_SHARED | MAP_POPULATE, fd, 0);
	rbuf = malloc((size_t)p * OBJ);
	c = calloc((size_t)p, sizeof(*c));
	slot_obj = calloc((size_t)p, sizeof(*slot_obj));
	if (map == MAP_FAILED || !rbuf || !c || !slot_obj)
		return 1;
	if ((ret = rados_create(&cl, NULL)) < 0 || (ret = rados_conf_read_file(cl, argv[1])) < 0 ||
	    (ret = rados_connect(cl)) < 0 || (ret = rados_ioctx_create(cl, argv[2], &io)) < 0) {
		fprintf(stderr, "rados_direct: %s\n", strerror(-ret));
		return 1;
	}
	t0 = now();
	while (done < n) {
		for (int s = 0; s < p; s++) {
			char oid[256];
			size_t len;

			if (c[s]) {
				if (!rados_aio_is_complete(c[s]))
					continue;
				ret = rados_aio_get_return_value(c[s]);
				rados_aio_release(c[s]);
				c[s] = NULL;
				if (ret < 0) {
					fprintf(stderr, "rados_direct: object %zu: %s\n",
						slot_obj[s], strerror(-ret));
					return 1;
				}
				done++;
			}
			if (next == n)
				continue;
			i = next++;
			slot_obj[s] = i;
			len = i == n - 1 ? (size_t)st.st_size - i * OBJ : OBJ;
			snprintf(oid, sizeof(oid), "%s.%zu", argv[3], i);
			rados_aio_create_completion2(NULL, NULL, &c[s]);
			ret = put ? rados_aio_write_full(io, oid, c[s], map + i * OBJ, len)
				  : rados_aio_read(io, oid, c[s], rbuf + (size_t)s * OBJ, len, 0);
			if (ret < 0) {
				fprintf(stderr, "rados_direct: %s\n", strerror(-ret));
				return 1;
			}
		}
		usleep(200);
	}
	printf("%.0f\n", (double)st.st_size / 1e6 / (now() - t0));
	rados_ioctx_destroy(io);
	rados_shutdown(cl);
	return 0;
}
