/*
 * A worker's io_uring ring: see ring.h.
 *
 * Setup asks for the flags that suit one ring per worker thread, dropping
 * them one by one for older kernels:
 *   SINGLE_ISSUER   only the owner submits (true by construction);
 *   DEFER_TASKRUN   completions run only when the owner asks (reap or
 *                   park), never interrupting it: batched, and cheaper;
 *   COOP_TASKRUN    the fallback: no IPI to post a completion;
 *   TASKRUN_FLAG    the kernel flags IORING_SQ_TASKRUN when completion work
 *                   waits, so reap enters the kernel only then. Without it a
 *                   worker busy with tasks that never submit would not see
 *                   its completions until it parks;
 *   SUBMIT_ALL      a bad SQE does not stop the rest of the batch;
 *   CQSIZE          a CQ of 8x the SQ, as a worker may have far more ops in
 *                   flight than it submits in one round (overflow is still
 *                   handled: reap flushes it).
 *
 * Wake-ups: other threads write the eventfd whose read the owner keeps
 * armed while parked. wake_pending collapses concurrent wake-ups into one
 * write until the owner consumes it.
 *
 * Invariants:
 *  - wake_pending is 1 from the unparker's exchange until the owner's wake
 *    completion exchanges it back; a write to wake_fd is outstanding the
 *    whole time, so a skipped write never loses a wake-up. The owner's
 *    exchange (acq_rel) reads every skipped unparker's exchange, so it sees
 *    what they published before unparking.
 *  - weft__ring_exit sets closed, then waits for unparkers to reach 0, both
 *    sequentially consistent against the unparker's increment-then-check:
 *    either the unparker sees closed and does not write, or exit sees it
 *    and waits, so wake_fd is never written after (or while) it is closed.
 */
#include <errno.h>
#include <poll.h>
#include <sched.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "ring.h"
#include "../runtime/valgrind.h"

#define CQ_FACTOR 8

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
		return "io_uring is not available in this kernel (Linux 5.11 or "
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
	atomic_exchange_explicit(&r->wake_pending, false, memory_order_acq_rel);
}

/* Tries the helpful flags first, then fewer, as older kernels refuse them. */
static int setup(struct weft__ring *r, unsigned entries)
{
	static const unsigned tries[] = {
		IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN |
			IORING_SETUP_TASKRUN_FLAG | IORING_SETUP_SUBMIT_ALL |
			IORING_SETUP_CQSIZE,
		IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_COOP_TASKRUN |
			IORING_SETUP_TASKRUN_FLAG | IORING_SETUP_SUBMIT_ALL |
			IORING_SETUP_CQSIZE,
		IORING_SETUP_COOP_TASKRUN | IORING_SETUP_TASKRUN_FLAG |
			IORING_SETUP_CQSIZE,
		IORING_SETUP_CQSIZE,
		0,
	};
	int err = -EINVAL;

	for (size_t i = 0; i < sizeof(tries) / sizeof(tries[0]); i++) {
		struct io_uring_params p;

		memset(&p, 0, sizeof(p));
		p.flags = tries[i];
		p.cq_entries = entries * CQ_FACTOR;
		err = io_uring_queue_init_params(entries, &r->uring, &p);
		if (err != -EINVAL)
			return err;
	}
	return err;
}

int weft__ring_init(struct weft__ring *r, unsigned entries, const char **why)
{
	int err;

	memset(r, 0, sizeof(*r));
	r->wake_fd = -1;
	atomic_init(&r->inbox, NULL);
	atomic_init(&r->wake_pending, false);
	atomic_init(&r->unparkers, 0);
	atomic_init(&r->closed, false);
	err = atomic_exchange(&fail_next_init, 0);
	err = err ? -err : setup(r, entries);
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
	return 0;
}

void weft__ring_exit(struct weft__ring *r)
{
	atomic_store(&r->closed, true);
	while (atomic_load(&r->unparkers))
		sched_yield();
	io_uring_queue_exit(&r->uring);
	close(r->wake_fd);
	r->wake_fd = -1;
}

static struct io_uring_sqe *get_sqe(struct weft__ring *r)
{
	struct io_uring_sqe *sqe;

	while (!(sqe = io_uring_get_sqe(&r->uring)))
		io_uring_submit(&r->uring);
	return sqe;
}

/* Adds n to an owner-written counter (see ring.h). */
static void count(_Atomic uint64_t *c, uint64_t n)
{
	atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed)
				      + n, memory_order_relaxed);
}

struct io_uring_sqe *weft__ring_sqe(struct weft__ring *r)
{
	count(&r->ops_submitted, 1);
	return get_sqe(r);
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
	struct io_uring_cqe *cqe;
	unsigned head, seen = 0, ops = 0;
	int n = 0;

	if (atomic_load_explicit(&r->inbox, memory_order_relaxed))
		n += run_inbox(r);
	/* Completion work the kernel left for us, or CQEs that overflowed
	 * the CQ: one enter runs / flushes them. */
	if (IO_URING_READ_ONCE(*r->uring.sq.kflags) &
	    (IORING_SQ_TASKRUN | IORING_SQ_CQ_OVERFLOW))
		io_uring_get_events(&r->uring);
	io_uring_for_each_cqe(&r->uring, head, cqe) {
		struct weft__ring_op *op = io_uring_cqe_get_data(cqe);

		seen++;
		ops += op && op != &r->wake_op &&
		       !(cqe->flags & IORING_CQE_F_MORE);
		if (op)
			op->complete(op, cqe->res, cqe->flags);
	}
	io_uring_cq_advance(&r->uring, seen);
	if (ops)
		count(&r->ops_completed, ops);
	return n + (int)seen;
}

/*
 * Valgrind runs one thread at a time and takes io_uring_enter for a call
 * that never blocks, so a worker waiting in it would stall every thread.
 * Under valgrind, wait in poll(2), which it knows blocks, on the ring (for
 * completions) and the wake-up eventfd, then let the kernel post what it
 * deferred.
 */
static void park_in_poll(struct weft__ring *r, int64_t timeout_ns)
{
	struct pollfd p[2] = {
		{ .fd = r->uring.ring_fd, .events = POLLIN },
		{ .fd = r->wake_fd, .events = POLLIN },
	};
	/* Deferred completions need us to enter the kernel before the ring
	 * shows them: look again at least every 10 ms. */
	int ms = timeout_ns < 0 || timeout_ns > 10000000
			 ? 10 : (int)((timeout_ns + 999999) / 1000000);
	io_uring_submit(&r->uring);
	poll(p, 2, ms);
	io_uring_get_events(&r->uring);
}

void weft__ring_park(struct weft__ring *r, int64_t timeout_ns)
{
	struct io_uring_cqe *cqe;

	if (!r->wake_armed) {
		struct io_uring_sqe *sqe = get_sqe(r);

		io_uring_prep_read(sqe, r->wake_fd, &r->wake_buf,
				   sizeof(r->wake_buf), 0);
		io_uring_sqe_set_data(sqe, &r->wake_op);
		r->wake_armed = true;
	}
	if (WEFT_UNDER_VALGRIND()) {
		park_in_poll(r, timeout_ns);
	} else if (timeout_ns >= 0) {
		/* Needs IORING_FEAT_EXT_ARG (5.11), or liburing would queue
		 * a timeout SQE of its own with a user_data not ours. */
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

	atomic_fetch_add(&r->unparkers, 1);
	if (!atomic_load(&r->closed) &&
	    !atomic_exchange_explicit(&r->wake_pending, true,
				      memory_order_acq_rel)) {
		ssize_t n = write(r->wake_fd, &one, sizeof(one));

		(void)n; /* EAGAIN: the counter is full, a wake-up is pending */
	}
	atomic_fetch_sub_explicit(&r->unparkers, 1, memory_order_release);
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
