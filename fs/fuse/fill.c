// SPDX-License-Identifier: MIT
/*
 * fill.c - with -o resident=SIZE, a version just committed is pushed into
 * the kernel's page cache (FUSE_NOTIFY_STORE) from the resident tier
 * (fs/store/resident.c), so that the trainer that resumes from it after a
 * fault reads at memory speed, through read(2) or mmap alike, and so do all
 * ranks of the host. Files of committed versions keep their page cache
 * across opens (keep_cache, ops_file.c), so the pages stay until the kernel
 * needs the memory; what it evicts is read from the store again, checked.
 *
 * One thread does it after the commit has returned: the commit does not
 * wait, and the writer's next checkpoint does not either. Only chunks that
 * are resident are pushed (no disk read is made for this), only into
 * inodes the kernel knows (the writer's), one chunk per notification;
 * a newer commit of the same run replaces the version being filled.
 *
 * The push is the kernel allocating and copying page-cache pages: seconds
 * of a core for a large checkpoint, right after each commit, which is
 * when a supervisor handles the trainer's reports. A thread of its own
 * does it at the lowest CPU priority (nice 19), so that it takes only
 * what the foreground leaves. What a reader of the file being filled has
 * asked the kernel for already (its READs, cfs_fill_read) is not pushed
 * again: the fill goes on ahead of the reader, so the two
 * share the work instead of both copying the same pages. (The kernel's
 * cache cannot be asked directly without holding a descriptor of the
 * mount open, which would make an unmount during a fill fail with EBUSY.)
 */
#include "ckptfs_i.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#define FILL_QUEUE 64

struct fill_job {
	char run[CKPT_NAME_MAX + 1];
	char ver[CKPT_NAME_MAX + 1];
};

/* The version of a run filled last: its pages are given back once a newer
 * version of the run has been filled. */
struct fill_run {
	char run[CKPT_NAME_MAX + 1];
	char ver[CKPT_NAME_MAX + 1];
};

struct cfs_fill {
	struct cfs *c;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct fill_job q[FILL_QUEUE];
	size_t head, n;
	bool stop;
	char cur[CKPT_NAME_MAX + 1]; /* the run being filled now ("" when none) */
	bool cancel;		     /* a newer version of it came: stop that one */
	pthread_t thread;
	struct fill_run *runs; /* filler thread only */
	size_t nruns;
	/* the inode being pushed now, and the end of the furthest READ of it
	 * the kernel sent since (cfs_fill_read) */
	fuse_ino_t ino;
	uint64_t read_end;
	/* the pusher thread's work: push_f's chunks into push_ino; push_f is
	 * NULL once done (under lock, signalled on push_cond) */
	pthread_t pusher;
	pthread_cond_t push_cond;
	struct ckpt_file *push_f;
	fuse_ino_t push_ino;
	bool push_quit;
};

static struct cfs_fill *filler;

static bool stopping(struct cfs_fill *fl)
{
	bool stop;

	pthread_mutex_lock(&fl->lock);
	stop = fl->stop || fl->cancel;
	pthread_mutex_unlock(&fl->lock);
	return stop;
}

/* Push the resident chunks of f into the kernel's cache of ino. */
static void push_file(struct cfs_fill *fl, struct ckpt_file *f, fuse_ino_t ino)
{
	uint64_t off = 0, next;

	while (!stopping(fl)) {
		struct ckpt_rref r;
		const void *p;
		ssize_t n;

		/* where the chunk at off ends */
		ckpt_file_read_resident(f, off, NULL, NULL, &next);
		if (next == UINT64_MAX)
			break;
		if (next <= __atomic_load_n(&fl->read_end, __ATOMIC_RELAXED)) {
			off = next; /* a reader asked for it: it is in the cache */
			continue;
		}
		/* pushed from the tier itself: the kernel's copy is the only one */
		n = ckpt_file_read_resident(f, off, &p, &r, &next);
		if (n > 0) {
			struct fuse_bufvec bv = FUSE_BUFVEC_INIT((size_t)n);
			int ret;

			bv.buf[0].mem = (void *)p;
			ret = fuse_lowlevel_notify_store(fl->c->se, ino, (off_t)off, &bv, 0);
			ckpt_file_read_release(f, &r);
			if (ret < 0)
				break; /* the kernel forgot the inode, or the mount is going */
		} else if ((n != -ENOENT && n != -ERANGE) || next == UINT64_MAX) {
			break;
		}
		off = next;
	}
}

/*
 * The pusher: the page-cache copies at nice 19 (top of this file). The
 * walk and the stat through the mount stay in the fill thread at the
 * daemon's priority: a stat under way holds the mount, and an unmount
 * then fails with EBUSY, so it must not wait behind everything else.
 */
static void *push_main(void *arg)
{
	struct cfs_fill *fl = arg;

	setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), 19);
	pthread_setname_np(pthread_self(), "ckptfs-push"); /* t_resident.sh finds it */
	pthread_mutex_lock(&fl->lock);
	for (;;) {
		while (!fl->push_f && !fl->push_quit)
			pthread_cond_wait(&fl->push_cond, &fl->lock);
		if (fl->push_quit)
			break;
		pthread_mutex_unlock(&fl->lock);
		push_file(fl, fl->push_f, fl->push_ino);
		pthread_mutex_lock(&fl->lock);
		fl->push_f = NULL;
		pthread_cond_broadcast(&fl->push_cond);
	}
	pthread_mutex_unlock(&fl->lock);
	return NULL;
}

/* The resident chunks of one file into the kernel's cache of ino. */
static void fill_file(struct cfs_fill *fl, const struct fill_job *j, const char *rel,
		      fuse_ino_t ino)
{
	struct cfs *c = fl->c;
	struct ckpt_file *f;
	struct stat st;
	char *mp;

	if (ckpt_file_open(c->store, j->run, j->ver, rel, O_RDONLY, 0, &f) < 0)
		return;
	/*
	 * The kernel set the file's mtime itself at each direct write; at the
	 * next attributes from ckptfs it would see another mtime and drop the
	 * file's cache (auto_inval_data). So first make it take ckptfs's
	 * attributes (a stat through the mount, answered by the loop's
	 * threads), then fill.
	 */
	__atomic_store_n(&fl->read_end, 0, __ATOMIC_RELAXED);
	__atomic_store_n(&fl->ino, ino, __ATOMIC_RELEASE);
	fuse_lowlevel_notify_inval_inode(c->se, ino, -1, 0);
	if (asprintf(&mp, "%s/%s/%s/%s", c->opts.mountpoint, j->run, j->ver, rel) >= 0) {
		stat(mp, &st);
		free(mp);
	}
	pthread_mutex_lock(&fl->lock);
	fl->push_f = f;
	fl->push_ino = ino;
	pthread_cond_broadcast(&fl->push_cond);
	while (fl->push_f)
		pthread_cond_wait(&fl->push_cond, &fl->lock);
	pthread_mutex_unlock(&fl->lock);
	__atomic_store_n(&fl->ino, 0, __ATOMIC_RELAXED);
	ckpt_file_close(f);
}

typedef void file_fn(struct cfs_fill *fl, const struct fill_job *j, const char *rel,
		     fuse_ino_t ino);

/* fn for every file of the version the kernel has an inode for, depth
 * first (looked up now: the kernel may have dropped and remade an inode). */
static void walk(struct cfs_fill *fl, const struct fill_job *j, const char *rel, int depth,
		 file_fn *fn)
{
	struct cfs *c = fl->c;
	char **names;
	size_t n;

	if (depth > 64 || ckpt_node_list(c->store, j->run, j->ver, rel, &names, &n) < 0)
		return;
	for (size_t i = 0; i < n && !stopping(fl); i++) {
		struct ckpt_node_stat st;
		char *sub, *full;

		if (asprintf(&sub, "%s%s%s", rel, rel[0] ? "/" : "", names[i]) < 0)
			break;
		if (ckpt_node_stat(c->store, j->run, j->ver, sub, &st) == 0) {
			if (st.type == CKPT_NODE_DIR) {
				walk(fl, j, sub, depth + 1, fn);
			} else if (st.type == CKPT_NODE_FILE &&
				   asprintf(&full, "%s/%s/%s", j->run, j->ver, sub) >= 0) {
				fuse_ino_t ino = cfs_nodes_find(c->nodes, full);

				if (ino)
					fn(fl, j, sub, ino);
				free(full);
			}
		}
		free(sub);
	}
	ckpt_strv_free(names, n);
}

/* The kernel's copy of one file goes (the pages of an older version). */
static void drop_file(struct cfs_fill *fl, const struct fill_job *j, const char *rel,
		      fuse_ino_t ino)
{
	(void)j;
	(void)rel;
	fuse_lowlevel_notify_inval_inode(fl->c->se, ino, 0, 0);
}

/*
 * Job j's version is filled: the version of its run filled before goes
 * from the kernel's cache (which would otherwise keep every version's pages
 * until memory runs short, crowding out everything else on the host). A
 * reader of it reads from the store again.
 */
static void retire_older(struct cfs_fill *fl, const struct fill_job *j)
{
	struct fill_run *r = NULL;

	for (size_t i = 0; i < fl->nruns; i++)
		if (!strcmp(fl->runs[i].run, j->run))
			r = &fl->runs[i];
	if (!r) {
		struct fill_run *v = realloc(fl->runs, (fl->nruns + 1) * sizeof(*v));

		if (!v)
			return;
		fl->runs = v;
		r = &fl->runs[fl->nruns++];
		snprintf(r->run, sizeof(r->run), "%s", j->run);
		r->ver[0] = '\0';
	}
	if (r->ver[0] && strcmp(r->ver, j->ver)) {
		struct fill_job old = *j;

		snprintf(old.ver, sizeof(old.ver), "%s", r->ver);
		walk(fl, &old, "", 0, drop_file);
	}
	snprintf(r->ver, sizeof(r->ver), "%s", j->ver);
}

static void *fill_main(void *arg)
{
	struct cfs_fill *fl = arg;

	pthread_setname_np(pthread_self(), "ckptfs-fill");
	pthread_mutex_lock(&fl->lock);
	for (;;) {
		struct fill_job j;
		bool stop;

		while (!fl->n && !fl->stop)
			pthread_cond_wait(&fl->cond, &fl->lock);
		if (fl->stop)
			break;
		j = fl->q[fl->head];
		fl->head = (fl->head + 1) % FILL_QUEUE;
		fl->n--;
		snprintf(fl->cur, sizeof(fl->cur), "%s", j.run);
		fl->cancel = false;
		pthread_mutex_unlock(&fl->lock);
		walk(fl, &j, "", 0, fill_file);
		pthread_mutex_lock(&fl->lock);
		stop = fl->stop;
		pthread_mutex_unlock(&fl->lock);
		if (!stop) /* stopped for a newer version too: this one's pages go next */
			retire_older(fl, &j);
		pthread_mutex_lock(&fl->lock);
		fl->cur[0] = '\0';
		fl->cancel = false;
	}
	pthread_mutex_unlock(&fl->lock);
	return NULL;
}

int cfs_fill_start(struct cfs *c)
{
	struct cfs_fill *fl;
	int ret;

	if (!c->opts.resident)
		return 0;
	fl = calloc(1, sizeof(*fl));
	if (!fl)
		return -ENOMEM;
	fl->c = c;
	pthread_mutex_init(&fl->lock, NULL);
	pthread_cond_init(&fl->cond, NULL);
	pthread_cond_init(&fl->push_cond, NULL);
	ret = pthread_create(&fl->pusher, NULL, push_main, fl);
	if (!ret) {
		ret = pthread_create(&fl->thread, NULL, fill_main, fl);
		if (ret) {
			pthread_mutex_lock(&fl->lock);
			fl->push_quit = true;
			pthread_cond_broadcast(&fl->push_cond);
			pthread_mutex_unlock(&fl->lock);
			pthread_join(fl->pusher, NULL);
		}
	}
	if (ret) {
		pthread_cond_destroy(&fl->push_cond);
		pthread_cond_destroy(&fl->cond);
		pthread_mutex_destroy(&fl->lock);
		free(fl);
		return -ret;
	}
	filler = fl;
	return 0;
}

void cfs_fill_stop(struct cfs *c)
{
	struct cfs_fill *fl = filler;

	(void)c;
	if (!fl)
		return;
	pthread_mutex_lock(&fl->lock);
	fl->stop = true;
	pthread_cond_broadcast(&fl->cond);
	pthread_mutex_unlock(&fl->lock);
	pthread_join(fl->thread, NULL);
	/* the fill thread waits for each push: the pusher is idle now */
	pthread_mutex_lock(&fl->lock);
	fl->push_quit = true;
	pthread_cond_broadcast(&fl->push_cond);
	pthread_mutex_unlock(&fl->lock);
	pthread_join(fl->pusher, NULL);
	pthread_cond_destroy(&fl->push_cond);
	pthread_mutex_destroy(&fl->lock);
	pthread_cond_destroy(&fl->cond);
	free(fl->runs);
	free(fl);
	filler = NULL;
}

void cfs_fill_queue(struct cfs *c, const char *run, const char *ver)
{
	struct cfs_fill *fl = filler;

	(void)c;
	if (!fl)
		return;
	pthread_mutex_lock(&fl->lock);
	/* only the newest version of a run is worth the work: an older one
	 * still waiting is dropped, one being filled is stopped */
	for (size_t i = 0, k = 0, n = fl->n; i < n; i++) {
		struct fill_job *j = &fl->q[(fl->head + i) % FILL_QUEUE];

		if (!strcmp(j->run, run)) {
			fl->n--;
			continue;
		}
		fl->q[(fl->head + k++) % FILL_QUEUE] = *j;
	}
	if (!strcmp(fl->cur, run))
		fl->cancel = true;
	if (fl->n < FILL_QUEUE) {
		struct fill_job *j = &fl->q[(fl->head + fl->n) % FILL_QUEUE];

		snprintf(j->run, sizeof(j->run), "%s", run);
		snprintf(j->ver, sizeof(j->ver), "%s", ver);
		fl->n++;
		pthread_cond_signal(&fl->cond);
	}
	pthread_mutex_unlock(&fl->lock);
}

void cfs_fill_read(fuse_ino_t ino, uint64_t off, size_t size)
{
	struct cfs_fill *fl = filler;
	uint64_t end = off + size, cur;

	if (!fl || __atomic_load_n(&fl->ino, __ATOMIC_ACQUIRE) != ino)
		return;
	cur = __atomic_load_n(&fl->read_end, __ATOMIC_RELAXED);
	while (cur < end && !__atomic_compare_exchange_n(&fl->read_end, &cur, end, true,
							 __ATOMIC_RELAXED, __ATOMIC_RELAXED))
		;
}
