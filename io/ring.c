/* A worker's io_uring ring: see ring.h. */
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "ring.h"

static __thread struct weft__ring *current;
static _Atomic int fail_next_init;

struct weft__ring *weft__ring_current(void)
{
	return current;
}

void weft__ring_set_current(struct weft__ring *r)
{
	current = r;
}

void weft__ring_fail_next_init(int errno_value)
{
	atomic_store(&fail_next_init, errno_value);
}

static const char *explain(int err)
{
	switch (err) {
	case -EPERM:
		return "io_uring is not permitted here (sysctl "
		       "kernel.io_uring_disabled, or a seccomp profile such as "
		       "a container's): allow io_uring to run weft";
	case -ENOSYS:
		return "io_uring is not available in this kernel (Linux 5.19 or "
		       "newer is needed)";
	case -ENOMEM:
		return "cannot set up io_uring: out of memory or locked-memory "
		       "limit (ulimit -l)";
	default:
		return "cannot set up io_uring";
	}
}

static void wake_complete(struct weft__ring_op *op, int res, unsigned flags)
{
	struct weft__ring *r = (struct weft__ring *)((char *)op -
				offsetof(struct weft__ring, wake_op));
	r->wake_armed = false;
	(void)res;
	(void)flags;
}

/* Tries the helpful flags first, then fewer, as older kernels refuse them. */
static int setup(struct weft__ring *r, unsigned entries)
{
	static const unsigned tries[] = {
		IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_COOP_TASKRUN |
			IORING_SETUP_SUBMIT_ALL,
		IORING_SETUP_COOP_TASKRUN,
		0,
	};
	int err = -EINVAL;
	for (size_t i = 0; i < sizeof(tries) / sizeof(tries[0]); i++) {
		struct io_uring_params p;
		memset(&p, 0, sizeof(p));
		p.flags = tries[i];
		err = io_uring_queue_init_params(entries, &r->uring, &p);
		if (err != -EINVAL)
			return err;
	}
	return err;
}

int weft__ring_init(struct weft__ring *r, unsigned entries, const char **why)
{
	memset(r, 0, sizeof(*r));
	r->wake_fd = -1;
	int err = atomic_exchange(&fail_next_init, 0);
	if (err) {
		err = -err;
	} else {
		err = setup(r, entries);
	}
	if (err) {
		*why = explain(err);
		return err;
	}
	r->wake_fd = eventfd(0, EFD_CLOEXEC);
	if (r->wake_fd < 0) {
		err = -errno;
		io_uring_queue_exit(&r->uring);
		*why = "cannot create an eventfd for waking workers";
		return err;
	}
	r->wake_op.complete = wake_complete;
	atomic_init(&r->inbox, NULL);
	return 0;
}

void weft__ring_exit(struct weft__ring *r)
{
	io_uring_queue_exit(&r->uring);
	close(r->wake_fd);
}

struct io_uring_sqe *weft__ring_sqe(struct weft__ring *r)
{
	struct io_uring_sqe *sqe;
	while (!(sqe = io_uring_get_sqe(&r->uring)))
		io_uring_submit(&r->uring);
	return sqe;
}

void weft__ring_submit(struct weft__ring *r)
{
	if (io_uring_sq_ready(&r->uring))
		io_uring_submit(&r->uring);
}

static int run_inbox(struct weft__ring *r)
{
	struct weft__ring_msg *m = atomic_exchange_explicit(
		&r->inbox, NULL, memory_order_acquire);
	struct weft__ring_msg *fifo = NULL;
	int n = 0;
	while (m) { /* the inbox is newest-first */
		struct weft__ring_msg *next = m->next;
		m->next = fifo;
		fifo = m;
		m = next;
	}
	while (fifo) {
		struct weft__ring_msg *next = fifo->next;
		fifo->run(fifo);
		fifo = next;
		n++;
	}
	return n;
}

int weft__ring_reap(struct weft__ring *r)
{
	int n = 0;
	if (atomic_load_explicit(&r->inbox, memory_order_relaxed))
		n += run_inbox(r);
	struct io_uring_cqe *cqe;
	unsigned head, seen = 0;
	io_uring_for_each_cqe(&r->uring, head, cqe) {
		struct weft__ring_op *op = io_uring_cqe_get_data(cqe);
		seen++;
		if (op)
			op->complete(op, cqe->res, cqe->flags);
	}
	io_uring_cq_advance(&r->uring, seen);
	return n + (int)seen;
}

void weft__ring_park(struct weft__ring *r, int64_t timeout_ns)
{
	if (!r->wake_armed) {
		struct io_uring_sqe *sqe = weft__ring_sqe(r);
		io_uring_prep_read(sqe, r->wake_fd, &r->wake_buf,
				   sizeof(r->wake_buf), 0);
		io_uring_sqe_set_data(sqe, &r->wake_op);
		r->wake_armed = true;
	}
	struct io_uring_cqe *cqe;
	if (timeout_ns >= 0) {
		struct __kernel_timespec ts = {
			.tv_sec = timeout_ns / 1000000000,
			.tv_nsec = timeout_ns % 1000000000,
		};
		io_uring_submit_and_wait_timeout(&r->uring, &cqe, 1, &ts, NULL);
	} else {
		io_uring_submit_and_wait(&r->uring, 1);
	}
	weft__ring_reap(r);
}

void weft__ring_unpark(struct weft__ring *r)
{
	uint64_t one = 1;
	ssize_t n = write(r->wake_fd, &one, sizeof(one));
	(void)n; /* EAGAIN means a wake-up is pending already */
}

void weft__ring_post(struct weft__ring *r, struct weft__ring_msg *m)
{
	struct weft__ring_msg *top = atomic_load_explicit(&r->inbox,
							  memory_order_relaxed);
	do
		m->next = top;
	while (!atomic_compare_exchange_weak_explicit(
		&r->inbox, &top, m, memory_order_release, memory_order_relaxed));
	weft__ring_unpark(r);
}
