// SPDX-License-Identifier: MIT
/*
 * dir_prefetch.c - read-ahead across chunk files. The kernel's readahead stops
 * at the end of each chunk file, and opening a chunk whose inode is not
 * cached is a synchronous disk read, so a cold sequential read would wait
 * for the disk twice per chunk. Readers queue the chunks they will need
 * next; PF_THREADS threads open them and POSIX_FADV_WILLNEED their data, so
 * inode reads and data reads overlap with the reader's work. Hints only:
 * they do not go through the I/O seam and their errors are ignored.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dir_i.h"

#define PF_THREADS 8
#define PF_QUEUE 256

struct pf_item {
	uint8_t h[CHUNK_HASH_LEN];
	uint32_t len;
};

struct dir_prefetch {
	struct dir_sb *d;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct pf_item q[PF_QUEUE];
	size_t head, n;
	bool stop;
	pthread_t th[PF_THREADS];
	int nth;
};

static void *pf_main(void *arg)
{
	struct dir_prefetch *p = arg;

	for (;;) {
		char rel[CHUNK_HEX_LEN + 4];
		struct pf_item it;
		int fd;

		pthread_mutex_lock(&p->lock);
		while (!p->n && !p->stop)
			pthread_cond_wait(&p->cond, &p->lock);
		if (p->stop) {
			pthread_mutex_unlock(&p->lock);
			return NULL;
		}
		it = p->q[p->head];
		p->head = (p->head + 1) % PF_QUEUE;
		p->n--;
		pthread_mutex_unlock(&p->lock);
		dir_chunk_relpath(it.h, rel);
		fd = openat(p->d->chunkfd, rel, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			continue;
		posix_fadvise(fd, 0, it.len, POSIX_FADV_WILLNEED);
		close(fd);
	}
}

int dir_prefetch_start(struct dir_sb *d, struct dir_prefetch **out)
{
	struct dir_prefetch *p = calloc(1, sizeof(*p));

	if (!p)
		return -ENOMEM;
	p->d = d;
	pthread_mutex_init(&p->lock, NULL);
	pthread_cond_init(&p->cond, NULL);
	for (; p->nth < PF_THREADS; p->nth++)
		if (pthread_create(&p->th[p->nth], NULL, pf_main, p))
			break;
	*out = p;
	return 0;
}

void dir_prefetch_stop(struct dir_prefetch *p)
{
	if (!p)
		return;
	pthread_mutex_lock(&p->lock);
	p->stop = true;
	pthread_cond_broadcast(&p->cond);
	pthread_mutex_unlock(&p->lock);
	for (int i = 0; i < p->nth; i++)
		pthread_join(p->th[i], NULL);
	pthread_mutex_destroy(&p->lock);
	pthread_cond_destroy(&p->cond);
	free(p);
}

/* Queue a chunk for read-ahead; when the queue is full the hint is dropped. */
void dir_prefetch_queue(struct dir_prefetch *p, const uint8_t *h, uint32_t len)
{
	if (!p || !p->nth)
		return;
	pthread_mutex_lock(&p->lock);
	if (p->n < PF_QUEUE) {
		struct pf_item *it = &p->q[(p->head + p->n) % PF_QUEUE];

		memcpy(it->h, h, CHUNK_HASH_LEN);
		it->len = len;
		p->n++;
	}
	pthread_cond_broadcast(&p->cond);
	pthread_mutex_unlock(&p->lock);
}
