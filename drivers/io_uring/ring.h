/*
 * The io_uring driver: one ring per worker, where its tasks' I/O and its
 * own parking go (the driver interface is runtime/driver.h).
 *
 * A socket's readiness is not waited for here but in the runtime's poll
 * set (drivers/readiness/pollset.h), which any worker may harvest; its
 * transfers are system calls, or, where those cost more (io/call.h),
 * non-blocking attempts on the ring that complete when their round is
 * submitted. The ring also carries files, weft_io_submit's operations and
 * the worker's own parking. A socket's wait stays out of it because a
 * request that waits in the kernel completes only through the thread that
 * submitted it (the kernel posts its completion from that thread's task
 * work, and DEFER_TASKRUN even waits until it enters the kernel), so a
 * worker descheduled by the OS, or kept by a long-running task, would
 * strand every connection it had a recv out for.
 *
 * Every SQE's user_data is a struct weft__ring_op *; its complete() runs on
 * the owning worker, in the scheduler context, when the CQE is reaped. Only
 * the owning worker submits (SINGLE_ISSUER), so other threads reach a ring
 * through weft__driver_post(), which queues a message the owner runs on its
 * next round and wakes it if it is parked.
 *
 * A task that submits an SQE and then parks is only resumed by its own
 * worker's reap, which runs after the task has switched out: I/O waits need
 * no unlock function.
 */
#ifndef WEFT_DRIVERS_IO_URING_RING_H
#define WEFT_DRIVERS_IO_URING_RING_H

#include <liburing.h>
#include <stdbool.h>
#include <stdint.h>

#include "runtime/driver.h"
#include "runtime/self.h"
#include "unsent.h"

struct weft__ring_op {
	void (*complete)(struct weft__ring_op *op, int res, unsigned flags);
};

struct weft__ring {
	struct weft__driver base; /* first: a driver is a ring */
	struct io_uring uring;
	uint64_t wake_buf; /* the pending read of wake_fd lands here */
	struct weft__ring_op wake_op;
	bool wake_armed;
	bool woken; /* the wake-up read completed since reap_ring ran the
		     * inbox (ring.c) */
	struct weft__ring_op pollset_op; /* a poll of the poll set's fd */
	bool pollset_armed;
	_Atomic bool in_set; /* sleeping in the poll set itself (ring.c) */
	struct weft__unsent *unsent; /* its socket attempts not yet submitted */
	/* Odd while the owner submits (ring.c), for weft_close (op.h).
	 * Written by the owner only. */
	_Atomic uint64_t submits;
};

/* The calling worker's ring, or NULL on a plain thread or under epoll. */
static inline struct weft__ring *weft__ring_current(void)
{
	struct weft__driver *d = weft__driver_current();

	return d && d->kind == WEFT_IO_URING ? (struct weft__ring *)d : NULL;
}

/* 0 if the kernel lets this thread enter ring, else the enter's -errno.
 * A seccomp profile may allow io_uring_setup and refuse io_uring_enter
 * (EPERM): every submit then fails, and a worker's get_sqe, or its park,
 * would retry for ever while the first file call waited. An enter that
 * submits nothing and waits for nothing costs one system call, at setup
 * only: the probe, every worker's ring and a plain thread's own ring
 * (op.c) check it. */
int weft__ring_enter_err(struct io_uring *ring);

/* A free SQE, submitting the queue first if it is full (and completing
 * CQEs meanwhile if the kernel refuses that submit: ring.c). Never NULL.
 * The caller sets its user_data to an op. Owner only. */
struct io_uring_sqe *weft__ring_sqe(struct weft__ring *r);

/* Submits the SQEs that wait for r's next round, now. Owner only. */
void weft__ring_submit(struct weft__ring *r);

/* Internal test interface, not API: how a worker submits its ring
 * (io_uring_submit), so that a test can hold a worker in its submit, as
 * the OS may deschedule it there. */
extern int (*weft__ring_submit_fn)(struct io_uring *ring);

/* Internal test interface, not API: how a worker sets its ring up
 * (io_uring_queue_init_params; not the probe's), so that a test can refuse
 * a worker's ring, as a locked-memory limit may, after the probe's small
 * one was granted. */
extern int (*weft__ring_setup_fn)(unsigned entries, struct io_uring *ring,
				  struct io_uring_params *p);

#endif
