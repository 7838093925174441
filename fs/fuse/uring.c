// SPDX-License-Identifier: MIT
/*
 * uring.c - -o io_uring: FUSE requests over io_uring (Linux 6.14+), under
 * libfuse 3.14's request dispatch (docs/mount.md, "FUSE over io_uring").
 *
 * Over /dev/fuse, a request made on one CPU wakes a loop thread that may sleep
 * on another, and its reply wakes the caller back: two cross-CPU wake-ups per
 * request, most of a small file's cost on a small VM. Over io_uring the kernel
 * keeps one queue per CPU and hands a request made on CPU N to queue N; here
 * each queue has a thread pinned to its CPU, so the round trip stays on one
 * CPU.
 *
 * libfuse 3.14 knows nothing of it. Through fuse_session_custom_io() every
 * read of /dev/fuse and every reply passes here: the INIT request says
 * whether the kernel offers FUSE_OVER_IO_URING, and the INIT reply gets the
 * flag set when the rings could be made; then one thread per CPU registers
 * its queue's entries (a header buffer and a payload buffer each). A request
 * arriving in an entry is laid out as /dev/fuse would have delivered it
 * (header, op header, payload) in front of the payload buffer and given to
 * fuse_session_process_buf(); its reply, found by its unique among the
 * entries, is copied into the entry and committed with the next fetch.
 * Everything else (INIT, interrupts, forgets, notifications, requests the
 * kernel sends before the ring is ready) stays on /dev/fuse and libfuse's
 * loop.
 *
 * A ring thread answers its requests one at a time. A commit writes the
 * mapped pages of the version back first, and the kernel sends those writes
 * from the thread that asked, to that thread's queue: a commit (RENAME,
 * SETXATTR) runs in a thread of its own so that its ring thread stays free.
 */
#include "ckptfs_i.h"

#include <errno.h>
#include <liburing.h>
#include <linux/fuse.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/uio.h>
#include <unistd.h>

/*
 * The kernel's ABI for FUSE over io_uring (include/uapi/linux/fuse.h, 7.42,
 * merged in 6.14); the system's headers here are older.
 */
#define URING_INIT_FLAG (1ull << 41) /* FUSE_OVER_IO_URING, in flags2 */
#define URING_HDR_IN_OUT 128
#define URING_HDR_OP_IN 128
enum { URING_CMD_REGISTER = 1, URING_CMD_COMMIT_AND_FETCH = 2 };

struct uring_ent_in_out {
	uint64_t flags;
	uint64_t commit_id; /* the request's unique: given back at commit */
	uint32_t payload_sz;
	uint32_t padding;
	uint64_t reserved;
};

struct uring_req_header {
	char in_out[URING_HDR_IN_OUT]; /* fuse_in_header / fuse_out_header */
	char op_in[URING_HDR_OP_IN];   /* the first argument: the op's header */
	struct uring_ent_in_out ent;
};

struct uring_cmd_req {
	uint64_t flags;
	uint64_t commit_id;
	uint16_t qid;
	uint8_t padding[6];
};

/* entries per queue: requests one CPU may have in the daemon at once */
#define URING_DEPTH 8
/* in front of each payload buffer: room for the headers of a request */
#define URING_ROOM 4096

struct uring_q;

struct uring_ent {
	struct uring_q *q;
	struct uring_req_header *hdr;
	char *payload;
	struct iovec iov[2];
	/* the unique of the request the daemon holds, 0 when none: the reply
	 * claims the entry by it */
	_Atomic uint64_t unique;
	uint64_t commit_id;
	int cmd;		/* last command sent, to send again on EINTR */
	struct uring_ent *next; /* on the queue's list of replies to commit */
	bool dead;
};

struct uring_q {
	unsigned qid;
	pthread_t thread;
	bool started;
	struct io_uring ring;
	bool ring_ok;
	int efd; /* wakes the thread: a reply from another thread, or stop */
	uint64_t efd_val;
	pthread_mutex_t lock;
	struct uring_ent *done; /* replies made by other threads */
	unsigned long served;	/* requests that came in this queue's entries */
	struct uring_ent ents[URING_DEPTH];
};

enum { U_WAIT_INIT, U_OFF, U_ON };

struct uring {
	struct cfs *c;
	int fd;
	_Atomic int state;
	uint64_t init_unique;
	bool offered; /* the kernel's INIT has FUSE_OVER_IO_URING */
	unsigned nq;
	size_t payload_sz, ent_sz;
	struct uring_q *qs;
	_Atomic bool stopping;
	/* commits running in threads of their own */
	pthread_mutex_t off_lock;
	pthread_cond_t off_cond;
	unsigned off_running;
};

static struct uring *U;
static __thread struct uring_q *this_q; /* in a ring thread: its queue */

/* The kernel's queues: one per possible CPU (num_possible_cpus()). */
static unsigned possible_cpus(void)
{
	FILE *f = fopen("/sys/devices/system/cpu/possible", "r");
	unsigned a, b, n = 0;
	int c;

	if (!f)
		return (unsigned)sysconf(_SC_NPROCESSORS_CONF);
	while (fscanf(f, "%u", &a) == 1) {
		b = a;
		c = fgetc(f);
		if (c == '-' && fscanf(f, "%u", &b) == 1)
			c = fgetc(f);
		if (b + 1 > n)
			n = b + 1;
		if (c != ',')
			break;
	}
	fclose(f);
	return n ? n : 1;
}

/* ---- submissions (the ring thread only) ---------------------------------- */

static void prep_cmd(struct uring_q *q, struct uring_ent *e, int cmd)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&q->ring);
	struct uring_cmd_req *r;

	/* the ring has a slot for every entry and the eventfd */
	if (!sqe) {
		cfs_log("io_uring: queue %u has no free submission slot", q->qid);
		return;
	}
	memset(sqe, 0, 2 * sizeof(*sqe));
	sqe->opcode = IORING_OP_URING_CMD;
	sqe->flags = IOSQE_FIXED_FILE;
	sqe->fd = 0;
	sqe->cmd_op = (uint32_t)cmd;
	if (cmd == URING_CMD_REGISTER) {
		sqe->addr = (uintptr_t)e->iov;
		sqe->len = 2;
	}
	r = (struct uring_cmd_req *)sqe->cmd;
	r->qid = (uint16_t)q->qid;
	r->commit_id = cmd == URING_CMD_COMMIT_AND_FETCH ? e->commit_id : 0;
	io_uring_sqe_set_data(sqe, e);
	e->cmd = cmd;
}

static void prep_efd(struct uring_q *q)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&q->ring);

	if (!sqe)
		return;
	io_uring_prep_read(sqe, q->efd, &q->efd_val, sizeof(q->efd_val), 0);
	io_uring_sqe_set_data(sqe, &q->efd_val);
}

/* ---- replies ------------------------------------------------------------- */

static struct uring_ent *claim_in(struct uring_q *q, uint64_t unique)
{
	for (unsigned i = 0; i < URING_DEPTH; i++) {
		uint64_t u = unique;

		if (atomic_compare_exchange_strong(&q->ents[i].unique, &u, 0))
			return &q->ents[i];
	}
	return NULL;
}

/* The entry holding request `unique`, taken from the table; NULL when the
 * request came through /dev/fuse. */
static struct uring_ent *claim(uint64_t unique)
{
	struct uring_ent *e;

	if (this_q) {
		e = claim_in(this_q, unique);
		if (e)
			return e;
	}
	for (unsigned i = 0; i < U->nq; i++) {
		if (&U->qs[i] == this_q)
			continue;
		e = claim_in(&U->qs[i], unique);
		if (e)
			return e;
	}
	return NULL;
}

static void commit(struct uring_ent *e)
{
	struct uring_q *q = e->q;
	uint64_t one = 1;

	if (this_q == q) {
		prep_cmd(q, e, URING_CMD_COMMIT_AND_FETCH);
		return;
	}
	/* only the ring thread touches its ring: hand the entry over */
	pthread_mutex_lock(&q->lock);
	e->next = q->done;
	q->done = e;
	pthread_mutex_unlock(&q->lock);
	if (write(q->efd, &one, sizeof(one)) < 0) {
		/* an eventfd write fails only on overflow: it is awake anyway */
	}
}

static void reply_err(struct uring_ent *e, uint64_t unique, int err)
{
	struct fuse_out_header *oh = (struct fuse_out_header *)e->hdr->in_out;

	oh->len = sizeof(*oh);
	oh->error = err;
	oh->unique = unique;
	e->hdr->ent.payload_sz = 0;
	commit(e);
}

/* libfuse's reply to a request that came in entry e */
static ssize_t reply_ring(struct uring_ent *e, const struct iovec *iov, int count)
{
	struct fuse_out_header oh = *(struct fuse_out_header *)iov[0].iov_base;
	size_t len = 0;

	for (int i = 1; i < count; i++) {
		if (len + iov[i].iov_len > U->payload_sz) {
			cfs_log("io_uring: a reply of %zu bytes or more does not fit the "
				"entry's %zu; answered with EIO",
				len + iov[i].iov_len, U->payload_sz);
			reply_err(e, oh.unique, -EIO);
			errno = EINVAL;
			return -1;
		}
		memcpy(e->payload + len, iov[i].iov_base, iov[i].iov_len);
		len += iov[i].iov_len;
	}
	oh.len = (uint32_t)(sizeof(oh) + len);
	memcpy(e->hdr->in_out, &oh, sizeof(oh));
	e->hdr->ent.payload_sz = (uint32_t)len;
	commit(e);
	return (ssize_t)(sizeof(oh) + len);
}

/* ---- requests ------------------------------------------------------------ */

struct offload {
	struct uring_ent *e;
	struct fuse_buf buf;
};

static void *offload_main(void *arg)
{
	struct offload *o = arg;

	fuse_session_process_buf(U->c->se, &o->buf);
	free(o);
	pthread_mutex_lock(&U->off_lock);
	if (--U->off_running == 0)
		pthread_cond_broadcast(&U->off_cond);
	pthread_mutex_unlock(&U->off_lock);
	return NULL;
}

/* A commit may wait for requests of the kernel's: not on the ring thread. */
static bool offload(struct uring_ent *e, const struct fuse_buf *buf)
{
	struct offload *o = malloc(sizeof(*o));
	pthread_attr_t attr;
	pthread_t t;
	int ret;

	if (!o)
		return false;
	o->e = e;
	o->buf = *buf;
	pthread_mutex_lock(&U->off_lock);
	U->off_running++;
	pthread_mutex_unlock(&U->off_lock);
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	ret = pthread_create(&t, &attr, offload_main, o);
	pthread_attr_destroy(&attr);
	if (ret == 0)
		return true;
	free(o);
	pthread_mutex_lock(&U->off_lock);
	U->off_running--;
	pthread_mutex_unlock(&U->off_lock);
	return false;
}

static void handle_request(struct uring_q *q, struct uring_ent *e)
{
	struct fuse_in_header in;
	struct fuse_buf buf;
	size_t psz = e->hdr->ent.payload_sz, oplen;
	char *start;

	memcpy(&in, e->hdr->in_out, sizeof(in));
	e->commit_id = e->hdr->ent.commit_id;
	/* the kernel's len counts every argument: what is not in the payload
	 * is the op header */
	if (in.len < sizeof(in) + psz || psz > U->payload_sz ||
	    in.len - sizeof(in) - psz > URING_HDR_OP_IN) {
		cfs_log("io_uring: request %llu (opcode %u) of %u bytes with %zu of "
			"payload is malformed; answered with EIO",
			(unsigned long long)in.unique, in.opcode, in.len, psz);
		reply_err(e, in.unique, -EIO);
		return;
	}
	oplen = in.len - sizeof(in) - psz;
	start = e->payload - oplen - sizeof(in);
	memcpy(start, &in, sizeof(in));
	memcpy(start + sizeof(in), e->hdr->op_in, oplen);
	atomic_store(&e->unique, in.unique);
	q->served++;

	memset(&buf, 0, sizeof(buf));
	buf.mem = start;
	buf.size = in.len;
	if ((in.opcode == FUSE_RENAME || in.opcode == FUSE_RENAME2 || in.opcode == FUSE_SETXATTR) &&
	    offload(e, &buf))
		return;
	fuse_session_process_buf(U->c->se, &buf);
	/* requests that get no reply still owe the kernel a commit */
	if (claim_in(q, in.unique) == e)
		reply_err(e, in.unique, 0);
}

static void take_done(struct uring_q *q)
{
	struct uring_ent *e;

	pthread_mutex_lock(&q->lock);
	e = q->done;
	q->done = NULL;
	pthread_mutex_unlock(&q->lock);
	while (e) {
		struct uring_ent *next = e->next;

		prep_cmd(q, e, URING_CMD_COMMIT_AND_FETCH);
		e = next;
	}
}

static void handle_cqe(struct uring_q *q, struct io_uring_cqe *cqe, bool *registered)
{
	void *data = io_uring_cqe_get_data(cqe);
	struct uring_ent *e = data;
	int res = cqe->res;

	if (data == &q->efd_val) {
		if (!atomic_load(&U->stopping)) {
			take_done(q);
			prep_efd(q);
		}
		return;
	}
	if (res == 0) {
		*registered = true;
		handle_request(q, e);
		return;
	}
	if (res == -EINTR || res == -EAGAIN) {
		prep_cmd(q, e, e->cmd);
		return;
	}
	e->dead = true;
	/* ENOTCONN: unmounted; the kernel tore the queue down */
	if (res != -ENOTCONN && e->cmd == URING_CMD_REGISTER && !*registered)
		cfs_log("io_uring: queue %u: the kernel refused its entries: %s", q->qid,
			strerror(-res));
	else if (res != -ENOTCONN)
		cfs_log("io_uring: queue %u: a commit failed: %s", q->qid, strerror(-res));
}

static void *ring_main(void *arg)
{
	struct uring_q *q = arg;
	struct io_uring_cqe *cqe;
	bool registered = false;
	char name[16];
	cpu_set_t set;
	int ret;

	this_q = q;
	snprintf(name, sizeof(name), "ckptfs-ring%u", q->qid);
	pthread_setname_np(pthread_self(), name);
	CPU_ZERO(&set);
	CPU_SET(q->qid, &set);
	/* a CPU that is not online now: the thread runs anywhere */
	sched_setaffinity(0, sizeof(set), &set);
	for (unsigned i = 0; i < URING_DEPTH; i++)
		prep_cmd(q, &q->ents[i], URING_CMD_REGISTER);
	prep_efd(q);
	while (!atomic_load(&U->stopping)) {
		unsigned head, n = 0;

		ret = io_uring_submit_and_wait(&q->ring, 1);
		if (ret < 0 && ret != -EINTR && ret != -EAGAIN && ret != -EBUSY) {
			cfs_log("io_uring: queue %u stops: %s", q->qid, strerror(-ret));
			break;
		}
		io_uring_for_each_cqe(&q->ring, head, cqe)
		{
			handle_cqe(q, cqe, &registered);
			n++;
		}
		io_uring_cq_advance(&q->ring, n);
	}
	return NULL;
}

/* ---- start and stop ------------------------------------------------------ */

static int queue_init(struct uring_q *q, unsigned qid)
{
	struct io_uring_params p;
	int ret;

	q->qid = qid;
	q->efd = eventfd(0, EFD_CLOEXEC);
	if (q->efd < 0)
		return -errno;
	pthread_mutex_init(&q->lock, NULL);
	memset(&p, 0, sizeof(p));
	p.flags = IORING_SETUP_SQE128;
	ret = io_uring_queue_init_params(URING_DEPTH + 1, &q->ring, &p);
	if (ret < 0)
		return ret;
	q->ring_ok = true;
	ret = io_uring_register_files(&q->ring, &U->fd, 1);
	if (ret < 0)
		return ret;
	for (unsigned i = 0; i < URING_DEPTH; i++) {
		struct uring_ent *e = &q->ents[i];
		char *m = mmap(NULL, U->ent_sz, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
			       -1, 0);

		if (m == MAP_FAILED)
			return -errno;
		e->q = q;
		e->hdr = (struct uring_req_header *)m;
		e->payload = m + URING_ROOM;
		e->iov[0].iov_base = e->hdr;
		e->iov[0].iov_len = sizeof(*e->hdr);
		e->iov[1].iov_base = e->payload;
		e->iov[1].iov_len = U->payload_sz;
	}
	return 0;
}

static void queues_free(void)
{
	for (unsigned i = 0; i < U->nq; i++) {
		struct uring_q *q = &U->qs[i];

		if (q->ring_ok)
			io_uring_queue_exit(&q->ring);
		for (unsigned j = 0; j < URING_DEPTH; j++)
			if (q->ents[j].hdr)
				munmap(q->ents[j].hdr, U->ent_sz);
		if (q->efd > 0)
			close(q->efd);
		pthread_mutex_destroy(&q->lock);
	}
	free(U->qs);
	U->qs = NULL;
	U->nq = 0;
}

/* The rings, before the INIT reply announces them (a failure here leaves
 * the mount on /dev/fuse). */
static int queues_make(const struct fuse_init_out *o)
{
	size_t page = (size_t)sysconf(_SC_PAGESIZE);
	unsigned n = possible_cpus();
	int ret;

	/* the kernel's ring->max_payload_sz */
	U->payload_sz = o->max_write;
	if (U->payload_sz < 8192)
		U->payload_sz = 8192; /* FUSE_MIN_READ_BUFFER */
	if ((size_t)o->max_pages * page > U->payload_sz)
		U->payload_sz = (size_t)o->max_pages * page;
	U->ent_sz = URING_ROOM + ((U->payload_sz + page - 1) & ~(page - 1));
	U->qs = calloc(n, sizeof(*U->qs));
	if (!U->qs)
		return -ENOMEM;
	U->nq = n;
	for (unsigned i = 0; i < n; i++)
		U->qs[i].efd = -1;
	for (unsigned i = 0; i < n; i++) {
		ret = queue_init(&U->qs[i], i);
		if (ret < 0)
			return ret;
	}
	return 0;
}

/*
 * The ring was announced but cannot be served: a REGISTER for a queue that
 * does not exist makes the kernel drop io_uring for this connection, and the
 * requests it holds back until the ring is ready go through /dev/fuse.
 */
static void give_up(void)
{
	struct io_uring_params p;
	struct io_uring_sqe *sqe;
	struct io_uring_cqe *cqe;
	struct uring_cmd_req *r;
	struct io_uring ring;
	struct iovec iov[2];

	memset(&p, 0, sizeof(p));
	p.flags = IORING_SETUP_SQE128;
	if (io_uring_queue_init_params(1, &ring, &p) < 0)
		return;
	/* the kernel checks the queue before the buffers */
	iov[0] = U->qs[0].ents[0].iov[0];
	iov[1] = U->qs[0].ents[0].iov[1];
	sqe = io_uring_get_sqe(&ring);
	if (!sqe) {
		io_uring_queue_exit(&ring);
		return;
	}
	memset(sqe, 0, 2 * sizeof(*sqe));
	sqe->opcode = IORING_OP_URING_CMD;
	sqe->fd = U->fd;
	sqe->cmd_op = URING_CMD_REGISTER;
	sqe->addr = (uintptr_t)iov;
	sqe->len = 2;
	r = (struct uring_cmd_req *)sqe->cmd;
	r->qid = UINT16_MAX;
	if (io_uring_submit_and_wait(&ring, 1) >= 0 && io_uring_peek_cqe(&ring, &cqe) == 0)
		io_uring_cqe_seen(&ring, cqe);
	io_uring_queue_exit(&ring);
}

static ssize_t init_reply(int fd, struct iovec *iov, int count)
{
	struct fuse_init_out *o = count > 1 ? iov[1].iov_base : NULL;
	struct fuse_out_header *oh = iov[0].iov_base;
	unsigned started = 0;
	ssize_t res;
	int ret;

	atomic_store(&U->state, U_OFF);
	if (oh->error || !o || iov[1].iov_len < offsetof(struct fuse_init_out, flags2) + 4)
		return writev(fd, iov, count);
	if (!U->offered || !(o->flags & FUSE_INIT_EXT)) {
		cfs_log("-o io_uring: the kernel does not offer FUSE over io_uring (it "
			"needs Linux 6.14 or later and "
			"/sys/module/fuse/parameters/enable_uring set to Y); requests go "
			"through /dev/fuse");
		return writev(fd, iov, count);
	}
	ret = queues_make(o);
	if (ret < 0) {
		cfs_log("-o io_uring: cannot set up the rings: %s; requests go through "
			"/dev/fuse",
			strerror(-ret));
		queues_free();
		return writev(fd, iov, count);
	}
	o->flags2 |= (uint32_t)(URING_INIT_FLAG >> 32);
	res = writev(fd, iov, count);
	if (res < 0)
		return res;
	atomic_store(&U->state, U_ON);
	for (unsigned i = 0; i < U->nq; i++) {
		if (pthread_create(&U->qs[i].thread, NULL, ring_main, &U->qs[i]) != 0)
			break;
		U->qs[i].started = true;
		started++;
	}
	if (started < U->nq) {
		cfs_log("-o io_uring: cannot start the ring threads; requests go through "
			"/dev/fuse");
		give_up();
	} else {
		cfs_log("io_uring: %u queues of %d entries, %zu bytes of payload each", U->nq,
			URING_DEPTH, U->payload_sz);
	}
	return res;
}

static ssize_t hook_read(int fd, void *buf, size_t len, void *userdata)
{
	ssize_t n = read(fd, buf, len);
	const struct fuse_in_header *in = buf;
	const struct fuse_init_in *ii = (const void *)(in + 1);

	if (n >= (ssize_t)(sizeof(*in) + offsetof(struct fuse_init_in, flags2) + 4) &&
	    in->opcode == FUSE_INIT && atomic_load(&U->state) == U_WAIT_INIT) {
		U->init_unique = in->unique;
		U->offered = (ii->flags & FUSE_INIT_EXT) &&
			     ((uint64_t)ii->flags2 << 32 & URING_INIT_FLAG);
	}
	return n;
}

static ssize_t hook_writev(int fd, struct iovec *iov, int count, void *userdata)
{
	const struct fuse_out_header *oh = iov[0].iov_base;
	struct uring_ent *e;

	switch (atomic_load(&U->state)) {
	case U_ON:
		if (oh->unique && (e = claim(oh->unique)))
			return reply_ring(e, iov, count);
		break;
	case U_WAIT_INIT:
		if (oh->unique == U->init_unique)
			return init_reply(fd, iov, count);
		break;
	default:
		break;
	}
	return writev(fd, iov, count);
}

int cfs_uring_setup(struct cfs *c)
{
	static const struct fuse_custom_io io = {
		.read = hook_read,
		.writev = hook_writev,
	};
	int ret;

	U = calloc(1, sizeof(*U));
	if (!U)
		return -ENOMEM;
	U->c = c;
	U->fd = fuse_session_fd(c->se);
	pthread_mutex_init(&U->off_lock, NULL);
	pthread_cond_init(&U->off_cond, NULL);
	ret = fuse_session_custom_io(c->se, &io, U->fd);
	if (ret < 0) {
		free(U);
		U = NULL;
	}
	return ret;
}

void cfs_uring_stop(void)
{
	uint64_t one = 1;

	if (!U)
		return;
	/* the commits running on their own first: they may need the rings */
	pthread_mutex_lock(&U->off_lock);
	while (U->off_running)
		pthread_cond_wait(&U->off_cond, &U->off_lock);
	pthread_mutex_unlock(&U->off_lock);
	/* libfuse calls the hooks until the session is destroyed: replies go
	 * to /dev/fuse from now on (the kernel has torn the ring down, or
	 * does when the rings close) */
	atomic_store(&U->state, U_OFF);
	atomic_store(&U->stopping, true);
	for (unsigned i = 0; i < U->nq; i++) {
		if (!U->qs[i].started)
			continue;
		if (write(U->qs[i].efd, &one, sizeof(one)) < 0) {
			/* overflow: it is awake */
		}
		pthread_join(U->qs[i].thread, NULL);
	}
	if (U->nq) {
		char per[256] = "";
		size_t len = 0;
		unsigned long all = 0;

		for (unsigned i = 0; i < U->nq; i++) {
			all += U->qs[i].served;
			if (len < sizeof(per))
				len += (size_t)snprintf(per + len, sizeof(per) - len, "%s%lu",
							i ? " " : "", U->qs[i].served);
		}
		cfs_log("io_uring: %lu requests came over the rings (per queue: %s)", all, per);
	}
	/* closing the rings cancels the entries the kernel still holds */
	queues_free();
}
