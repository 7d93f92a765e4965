/*
 * Waiting: the one park/wake protocol every blocking call of weft uses.
 *
 * A waiter is a small struct on the waiting caller's stack. Its atomic state
 * starts at WEFT__WAITING and is settled exactly once, by a compare-and-swap,
 * to 0 (notified) or to a negative errno (-ECANCELED, -ETIMEDOUT, or one the
 * primitive chooses). Whoever wins the CAS owns the wake-up; everyone else
 * backs off. This is how notify, cancel and timeout race safely.
 *
 * The caller may be a task or a plain thread; weft__wait_park() hides which.
 *
 * Protocol for a primitive guarded by a lock L (a waitq spinlock, say):
 *
 *   weft__waiter_init(&w, abort_fn);
 *   if ((r = weft__wait_begin(&w)))       // already cancelled / expired
 *           return r;
 *   lock(L);
 *   if (fast path succeeds) { unlock(L); weft__wait_end(&w); return 0; }
 *   if (weft__waiter_state(&w) != WEFT__WAITING) {  // aborted before enqueue
 *           unlock(L); weft__wait_end(&w); return weft__waiter_state(&w);
 *   }
 *   enqueue w, mark it linked;
 *   r = weft__wait_park(&w, unlock_fn, L);  // L released after switch-out
 *   // r is the settled state; weft__wait_end() has been done by park.
 *
 * Invariants:
 *  - A task's registers are saved before L is released (park runs unlock_fn
 *    on the scheduler's stack), so nobody who finds w under L can resume the
 *    task before it has switched out.
 *  - Only the winner of the CAS wakes the waiter, and only while holding L
 *    or after having unlinked w under L. A plain thread waits for the wake
 *    itself (the `released` word), not just the settled state, so w stays
 *    alive until weft__waiter_wake() has finished with it.
 *  - Cancellation and deadlines call w->abort(w, reason) while holding the
 *    task's wait lock, between wait_begin and wait_end, so w is alive then.
 *    abort must: take L; if weft__waiter_settle(w, reason) wins and w is
 *    linked, unlink it and weft__waiter_wake(w); release L. If w was not
 *    linked yet, the waiter sees the settled state before enqueueing.
 *    A wait-queue's abort first checks that w still waits, so that it does
 *    not touch an object that a release may have let go (sync/waitq.h).
 *  - The notifier owns what it hands over: if the notify won, the waiter
 *    succeeded (it holds the lock, has the item, ...).
 *
 * Select (sync/select.c) parks one caller on several primitives at once,
 * with a waiter per case whose `group` is the select's own waiter. Settling
 * a case first settles the group to WEFT__SELECTED: only one case can, so a
 * notifier that loses it settles nothing (it drops the case waiter it
 * popped and serves the next one), and waking a case wakes the group.
 */
#ifndef WEFT_RUNTIME_WAIT_H
#define WEFT_RUNTIME_WAIT_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "debug.h"
#include "park.h"
#include "self.h"

#define WEFT__WAITING 1
#define WEFT__SELECTED 2 /* a select's group waiter: a case won */

struct weft_task;
struct weft__waiter;

typedef void (*weft__abort_fn)(struct weft__waiter *w, int reason);

/* What a wait is for, in weft_dump's words (see dump.c). */
enum weft__wait_kind {
	WEFT__WAIT_OTHER,
	WEFT__WAIT_LOCK,
	WEFT__WAIT_EVENT,
	WEFT__WAIT_COND,
	WEFT__WAIT_SEM,
	WEFT__WAIT_QUEUE_GET,
	WEFT__WAIT_QUEUE_PUT,
	WEFT__WAIT_QUEUE_JOIN,
	WEFT__WAIT_FUTURE,
	WEFT__WAIT_BARRIER,
	WEFT__WAIT_GROUP,
	WEFT__WAIT_JOIN, /* object: the task joined */
	WEFT__WAIT_SLEEP,
	WEFT__WAIT_IO, /* object: the fd; io_op: the io_uring opcode */
	WEFT__WAIT_BLOCKING,
	WEFT__WAIT_SELECT, /* object: the cases; value: how many */
};

struct weft__waiter {
	_Atomic int state;      /* WEFT__WAITING, then the settled result */
	_Atomic int released;   /* plain threads: set by the wake, last touch */
	struct weft_task *task; /* the waiting task (set by init); NULL for
				   * a plain thread */
	weft__abort_fn abort;   /* see above; NULL: not abortable */
	struct weft__waiter *next, *prev;
	void *queue;    /* the owning queue while linked, else NULL */
	void *data;     /* the primitive's payload */
	uint64_t value; /* the primitive's scalar payload */
	struct weft__waiter *group; /* a select's case: the select's waiter,
				     * settled first (see above); else NULL */
	/* For weft_dump, which reads them under the task's wait_lock while
	 * the wait is published (when it began and its deadline are in the
	 * task): kind and object are set by init, before publication; io_op
	 * once the SQE is prepared (atomic: it may be set after). */
	unsigned char kind; /* enum weft__wait_kind */
	_Atomic unsigned char io_op;
	const void *object; /* the primitive waited on */
};

/* Initialises w for the calling task (or plain thread), waiting for kind
 * on object (what weft_dump shows). */
static inline void weft__waiter_init_as(struct weft__waiter *w,
					weft__abort_fn abort,
					enum weft__wait_kind kind,
					const void *object)
{
	atomic_init(&w->state, WEFT__WAITING);
	atomic_init(&w->released, 0);
	w->task = weft__task_current();
	w->abort = abort;
	w->next = w->prev = NULL;
	w->queue = NULL;
	w->data = NULL;
	w->value = 0;
	w->group = NULL;
	w->kind = (unsigned char)kind;
	atomic_init(&w->io_op, 0);
	w->object = object;
}

/*
 * The user's call that the calling task's waits are in, for weft_dump: an
 * I/O call under epoll waits for readiness, a stream's readline in a recv,
 * a signal wait on a cond or an fd; the dump names the call instead ("recv
 * on fd 7", "stream readline on fd 5"). The outermost call names it. call
 * is a string literal.
 *
 *   bool named = weft__doing_begin("recv");
 *   ...waits...
 *   weft__doing_end(named);
 *
 * The task writes t->doing; weft_dump reads it under t's wait_lock while a
 * wait is published, and weft__wait_begin/end take that lock: the set
 * before the first wait_begin and the clear after the last wait_end are
 * ordered with the dump's read by it.
 */
bool weft__doing_begin(const char *call);
void weft__doing_end(bool named);
/* The same for a call on fd whose waits may not hold it: a file call under
 * epoll waits in the blocking pool, whose wait names its job, and the dump
 * then shows "read on fd 7" as io_uring's operation does. fd -1: none yet
 * (an open). */
bool weft__doing_begin_fd(const char *call, int fd);

static inline void weft__waiter_init(struct weft__waiter *w,
				     weft__abort_fn abort)
{
	weft__waiter_init_as(w, abort, WEFT__WAIT_OTHER, NULL);
}

/* Acquire: pairs with the release of the settle that won (CAS or
 * settle_locked), so the waiter sees what its notifier handed over. */
static inline int weft__waiter_state(struct weft__waiter *w)
{
	return atomic_load_explicit(&w->state, memory_order_acquire);
}

/* A select's case may be settled only by whoever settles its group. The
 * group is settled by notifiers under different locks, hence a CAS even
 * where the case itself is settled under its lock. acq_rel orders nothing
 * the select relies on (it reads what the winner handed over after its
 * wake, and under that case's lock again); it keeps the claim no weaker
 * than any other settle. So does the acquire of a lost CAS, after which
 * the loser only backs off. */
static inline bool weft__waiter_claim_group(struct weft__waiter *w)
{
	int expected = WEFT__WAITING;
	return !w->group || atomic_compare_exchange_strong_explicit(
				    &w->group->state, &expected, WEFT__SELECTED,
				    memory_order_acq_rel, memory_order_acquire);
}

/* Settles w to result; true if this call won. */
static inline bool weft__waiter_settle(struct weft__waiter *w, int result)
{
	WEFT_ASSERT(result != WEFT__WAITING); /* settled is never waiting */
	if (!weft__waiter_claim_group(w))
		return false;
	int expected = WEFT__WAITING;
	/* acq_rel: release hands over to the waiter (waiter_state); acquire
	 * orders a loser after the winner, whose hand-over it must not
	 * repeat. */
	return atomic_compare_exchange_strong_explicit(&w->state, &expected,
						       result,
						       memory_order_acq_rel,
						       memory_order_acquire);
}

/* The same, for a waiter every settle of which happens under one lock that
 * the caller holds (a wait-queue's: notifiers and aborts alike): nobody can
 * race, so a load and a store do the CAS's work without its cost. (A
 * select's case is such a waiter; only its group claim is a CAS.) */
static inline bool weft__waiter_settle_locked(struct weft__waiter *w,
					      int result)
{
	WEFT_ASSERT(result != WEFT__WAITING);
	/* Relaxed load: every writer holds the lock we hold. Release store:
	 * pairs with the waiter's acquire in waiter_state, which takes no
	 * lock before reading what we hand over. */
	if (atomic_load_explicit(&w->state, memory_order_relaxed) !=
		    WEFT__WAITING ||
	    !weft__waiter_claim_group(w))
		return false;
	atomic_store_explicit(&w->state, result, memory_order_release);
	return true;
}

void weft__waiter_wake_thread(struct weft__waiter *w);

/* Resumes a settled, parked waiter: the task becomes runnable (on the
 * caller's worker's run-next slot when called from a worker), or the plain
 * thread is woken. Call only after winning weft__waiter_settle(). */
static inline void weft__waiter_wake(struct weft__waiter *w)
{
	WEFT_ASSERT(weft__waiter_state(w) != WEFT__WAITING);
	if (w->group)
		w = w->group;
	if (w->task)
		weft__task_ready(w->task);
	else
		weft__waiter_wake_thread(w);
}

/* settle + wake in one; true if it won. Reading w->task after the CAS is
 * safe: a settled waiter stays parked (a task) or waits for released (a
 * plain thread) until the wake. */
bool weft__waiter_notify(struct weft__waiter *w, int result);

/* Publishes w as the caller's current wait, and arms a timer that wakes it
 * with -ETIMEDOUT at the absolute time until (weft_sleep uses it) or at the
 * scope's deadline, whichever is earlier. Returns 0, or -ECANCELED /
 * -ETIMEDOUT if the task is already cancelled / past its deadline, or
 * -ENOMEM if the timer cannot be armed (then no abort has seen w, and
 * there is nothing to end). */
int weft__wait_begin_until(struct weft__waiter *w, int64_t until);

/* The same with only the scope's deadline. */
static inline int weft__wait_begin(struct weft__waiter *w)
{
	return weft__wait_begin_until(w, INT64_MAX);
}

/* Unpublishes w and disarms its deadline; after it no abort touches w. */
void weft__wait_end(struct weft__waiter *w);

int weft__wait_park_thread(struct weft__waiter *w, void (*unlock)(void *),
			   void *arg);

/* Parks until w is settled, running unlock(arg) once the caller can no
 * longer be resumed too early (on the scheduler stack for a task; at once
 * for a plain thread). Then ends the wait and returns the settled state. */
static inline int weft__wait_park(struct weft__waiter *w,
				  void (*unlock)(void *), void *arg)
{
	if (!w->task)
		return weft__wait_park_thread(w, unlock, arg);
	weft__task_park(unlock, arg);
	int r = weft__waiter_state(w);
	WEFT_ASSERT(r != WEFT__WAITING); /* only a settled waiter is woken */
	weft__wait_end(w);
	return r;
}

#endif
