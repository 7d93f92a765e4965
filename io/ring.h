/*
 * A worker's io_uring ring: where its tasks' I/O and its own parking go.
 *
 * Every SQE's user_data is a struct weft__ring_op *; its complete() runs on
 * the owning worker, in the scheduler context, when the CQE is reaped. Only
 * the owning worker submits (SINGLE_ISSUER), so other threads reach a ring
 * through weft__ring_post(), which queues a message the owner runs on its
 * next round and wakes it if it is parked.
 *
 * A task that submits an SQE and then parks is only resumed by its own
 * worker's reap, which runs after the task has switched out: I/O waits need
 * no unlock function.
 */
#ifndef WEFT_IO_RING_H
#define WEFT_IO_RING_H

#include <liburing.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

struct weft__ring_op {
	void (*complete)(struct weft__ring_op *op, int res, unsigned flags);
};

struct weft__ring_msg {
	void (*run)(struct weft__ring_msg *m);
	struct weft__ring_msg *next;
};

struct weft__ring {
	struct io_uring uring;
	int wake_fd;                 /* eventfd other threads write to wake us */
	uint64_t wake_buf;           /* the pending read of wake_fd lands here */
	struct weft__ring_op wake_op;
	bool wake_armed;
	unsigned inflight;           /* submitted ops not yet completed */
	/* For weft_metrics: the owner's ops (not its wake-up reads), each
	 * written by the owner only with a relaxed load and store. */
	_Atomic uint64_t ops_submitted, ops_completed;
	_Atomic(struct weft__ring_msg *) inbox; /* LIFO of posted messages */
	_Atomic bool wake_pending;   /* a write to wake_fd is not consumed yet */
	_Atomic int unparkers;       /* threads inside weft__ring_unpark() */
	_Atomic bool closed;         /* weft__ring_exit() has begun */
};

/* Sets up the ring with the best flags the kernel takes. Returns 0 or
 * -errno; on failure *why says what to tell the user. Owner thread only
 * (the ring is SINGLE_ISSUER when the kernel allows). */
int weft__ring_init(struct weft__ring *r, unsigned entries, const char **why);
/* Tears it down; waits out concurrent weft__ring_unpark() calls, and any
 * unpark after it is a no-op. */
void weft__ring_exit(struct weft__ring *r);

/* The calling worker's ring, or NULL on a plain thread. */
struct weft__ring *weft__ring_current(void);
/* Binds r to the calling worker thread (NULL unbinds). */
void weft__ring_set_current(struct weft__ring *r);

/* A free SQE, submitting the queue first if it is full. Never NULL. The
 * caller sets its user_data to an op. */
struct io_uring_sqe *weft__ring_sqe(struct weft__ring *r);

/* Submits what was prepared this round. Owner only. */
void weft__ring_submit(struct weft__ring *r);

/* Runs posted messages and completes every ready CQE. Returns how many
 * events it handled. Owner only. */
int weft__ring_reap(struct weft__ring *r);

/* Submits, then sleeps until a completion, a wake-up or timeout_ns passes
 * (-1: no timeout), then reaps. Owner only. */
void weft__ring_park(struct weft__ring *r, int64_t timeout_ns);

/* Wakes the owner if parked (any thread). */
void weft__ring_unpark(struct weft__ring *r);

/* Queues m for the owner to run on its next round and wakes it. */
void weft__ring_post(struct weft__ring *r, struct weft__ring_msg *m);

/* Test hook: makes the next weft__ring_init fail with -errno_value
 * (0 disarms). */
void weft__ring_fail_next_init(int errno_value);

#endif
