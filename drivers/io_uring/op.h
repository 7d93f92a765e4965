/*
 * One I/O operation of a task: submit an SQE on the worker's ring, park,
 * wake with the CQE's result. The file calls of weft are built on this, and
 * weft_io_submit() exposes it. A socket transfer, which never waits in the
 * kernel, is an attempt (below), where it is not a system call (io/call.h).
 *
 *   struct weft__io io;
 *   struct io_uring_sqe *sqe;
 *   int r;
 *
 *   if (!weft__ring_current())
 *           return the blocking system call;
 *   if (!(sqe = weft__io_begin(&io, fd, &r)))
 *           return r;                    // cancelled / expired already
 *   io_uring_prep_recv(sqe, fd, buf, len, 0);
 *   return weft__io_wait(&io, sqe);      // cqe->res, or the abort reason
 *
 * Between begin and wait nothing may park: the op is published (to
 * cancellation, deadlines and weft_close) as soon as begin returns.
 *
 * Invariants:
 *  - io lives on the task's stack and the kernel may write into buffers there
 *    until the CQE arrives, so the waiter is settled only by the op's own
 *    completion path, never by an abort. An abort (cancel, deadline, close)
 *    records its reason and posts io->cancel_msg to the owning ring, which
 *    submits IORING_OP_ASYNC_CANCEL for the op.
 *  - io->refs counts what still refers to io from outside the task: 1 for
 *    the CQE, +1 while cancel_msg is posted. The waiter is notified when it
 *    drops to 0, so io outlives both the CQE and the message. An abort takes
 *    its reference only while refs > 0 (CAS): once 0, the task is being
 *    woken and io must not be touched again.
 *  - cqe_done is read and written on the owning worker only (the CQE's
 *    complete() and the message's run() both run there).
 *  - An op aborted before its SQE was submitted is withdrawn: the owner,
 *    which runs posted messages before it submits, turns the SQE into a
 *    NOP, and the op fails with the abort's reason. Its fd is never looked
 *    up, which matters for weft_close: it closes the fd at once, and the
 *    kernel looks up an SQE's fd only when it is submitted, so a later
 *    submit would reach whatever file took the fd's number meanwhile.
 *    The message may come too late for that (posted after the owner ran
 *    its messages, before it submits; or behind a submit of a full SQ),
 *    so every submit of the owner's first withdraws the ops in its SQ
 *    whose abort is recorded (reason), and weft_close, before it closes,
 *    waits out a submit under way (weft__io_abort_sync): ring.c's
 *    submits count is odd from before that look until the kernel took
 *    the SQEs. Both sides put a seq_cst fence between their write
 *    (reason; submits) and their read (submits; reason), so either the
 *    submit sees the reason or the closer sees the submit under way.
 *  - Registered ops sit on their fd's stripe of the fd table from begin until
 *    wait returns; weft_close() aborts them with -EBADF under the stripe
 *    lock, so it only ever sees live ops.
 */
#ifndef WEFT_DRIVERS_IO_URING_OP_H
#define WEFT_DRIVERS_IO_URING_OP_H

#include <errno.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include "runtime/wait.h"
#include "ring.h"

struct weft__io {
	struct weft__ring_op op; /* the SQE's user_data */
	struct weft__waiter w;
	struct weft__ring *ring; /* the ring it was submitted on */
	struct weft__driver_msg cancel_msg;
	_Atomic int refs;   /* see above */
	_Atomic int reason; /* first abort reason, 0 if none */
	_Atomic int post;   /* POST_NONE, then _BUSY, then _DONE (op.c) */
	bool cqe_done;      /* owner-only */
	bool withdrawn;     /* owner-only: its SQE became a NOP, unsubmitted */
	struct io_uring_sqe *sqe;     /* the SQE, until submitted */
	int res;                      /* cqe->res */
	int fd;                       /* registered fd, or -1 */
	struct weft__io *next, *prev; /* on its fd table stripe */
};

/* Publishes io and returns a fresh SQE on the caller's ring, or NULL with
 * *err = -ECANCELED / -ETIMEDOUT, or -EBADF while a weft_close of fd waits
 * for the calls under way on it (weft__fdready_closing). fd >= 0
 * registers io under fd. A task only: call weft__ring_current() first. */
struct io_uring_sqe *weft__io_begin(struct weft__io *io, int fd, int *err);

/* Tags sqe with io, parks until the CQE (and any cancel message) is handled
 * and returns cqe->res; if the abort cancelled it (-ECANCELED, -EINTR), the
 * abort's reason. A failure of the op's own is returned as it is. */
int weft__io_wait(struct weft__io *io, struct io_uring_sqe *sqe);

/* Aborts io with reason (any thread, while io is published): records the
 * reason and has the owning ring cancel the op in the kernel. */
void weft__io_abort(struct weft__io *io, int reason);

/* weft_close, after weft__io_abort and before it closes the fd: returns
 * once io's SQE can no longer be submitted without the abort withdrawing
 * it. Waits for another aborter to record its reason and for a submit
 * under way, never for a round. While io is published. */
void weft__io_abort_sync(struct weft__io *io);

/* Every submit of the owner's, first: turns the ops in r's SQ whose abort
 * is recorded into NOPs. Owner only. */
void weft__io_withdraw_aborted(struct weft__ring *r);

/*
 * An attempt: an op the kernel answers while it submits it, never waiting
 * there (a socket transfer with MSG_DONTWAIT, which io_uring completes
 * with -EAGAIN rather than arming a poll). The task parks until its
 * worker's next submit and reap, its next pass through the scheduler (a
 * task that keeps the worker meanwhile delays it: the price of the
 * batch), so none of weft__io's machinery is needed:
 *  - nothing aborts it: a cancellation or deadline that lands meanwhile
 *    is met by the call's next wait (the caller checks before it begins);
 *  - it is not in the fd table: a cancel SQE behind it could not stop it
 *    either. Instead weft_close has it reach the old file: it submits its
 *    own worker's waiting SQEs before it closes, and waits for another
 *    worker's round if an attempt on the fd waits there (unsent.h);
 *  - no wait is published, so weft_dump shows the task as runnable, which
 *    it is once its worker comes round.
 *
 * Invariant: the CQE is the only thing that refers to the attempt or wakes
 * its task, and it completes on the ring's owner, the worker the task
 * parked on, after the task switched out.
 */
struct weft__attempt {
	struct weft__ring_op op; /* the SQE's user_data */
	struct weft_task *task;
	int res;
};

/* Returns a fresh SQE on the calling task's ring for a, an attempt on fd
 * (listed in the ring's unsent attempts until it is submitted). */
struct io_uring_sqe *weft__attempt_begin(struct weft__attempt *a, int fd);

/* Tags the prepared sqe with a, parks until its CQE and returns its
 * result. */
int weft__attempt_wait(struct weft__attempt *a, struct io_uring_sqe *sqe);

/* weft_close on r's owner, before it closes fd, when r's submit was just
 * refused: r's attempts on fd still in its SQ fail with -EBADF when they
 * are submitted, as after the close, rather than reach whatever file
 * takes fd's number meanwhile. Owner only. */
void weft__attempt_drop_fd(struct weft__ring *r, int fd);

/* Internal test interface, not API: how a plain thread's private ring is
 * submitted (io_uring_submit), so that a test can make it fail as a
 * refused io_uring_enter does, leaving the SQE in the SQ. */
extern int (*weft__private_submit)(struct io_uring *ring);

/* Internal test interface, not API: how many private rings plain threads
 * have made (each holds a descriptor until the process exits; see op.c), so
 * that a test counting descriptors can tell them from a leak. */
int weft__io_thread_rings(void);

#endif
