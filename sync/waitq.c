/*
 * The wait-queue: see waitq.h for the protocol and its invariants.
 *
 * The list (runtime/list.h) is doubly linked through the waiters, which
 * live on the waiting callers' stacks, so linking and unlinking allocate
 * nothing. prev is NULL for the head and for an unlinked waiter, which is
 * what weft__waitq_linked() tells apart.
 */
#include <errno.h>

#include "waitq.h"
#include "runtime/task.h"

void weft__waitq_init(struct weft_waitq *q)
{
	q->lock = 0;
	q->head = q->tail = 0;
}

void weft__waitq_unlock_cb(void *q)
{
	weft__waitq_unlock(q);
}

void weft__waitq_push(struct weft_waitq *q, struct weft__waiter *w)
{
	WEFT_ASSERT(!weft__waitq_linked(q, w));
	WEFT_ASSERT(weft__waiter_state(w) == WEFT__WAITING);
	weft__list_push_back(q->head, q->tail, w);
	/* w->queue was set by prepare: aborts read it without the lock. */
}

void weft__waitq_remove(struct weft_waitq *q, struct weft__waiter *w)
{
	weft__list_remove(q->head, q->tail, w);
}

struct weft__waiter *weft__waitq_pop(struct weft_waitq *q)
{
	struct weft__waiter *w = q->head;
	if (w)
		weft__waitq_remove(q, w);
	return w;
}

int weft__waitq_wait_on(struct weft_waitq *lock, struct weft_waitq *q,
			struct weft__waiter *w)
{
	WEFT_ASSERT(weft__spin_held(&lock->lock));
	int r = weft__waiter_state(w);
	if (r != WEFT__WAITING) {
		/* An abort settled w before it could be linked. */
		weft__waitq_unlock(lock);
		weft__wait_end(w);
		return r;
	}
	weft__waitq_push(q, w);
	return weft__wait_park(w, weft__waitq_unlock_cb, lock);
}

int weft__waitq_wait_uninterruptible(struct weft_waitq *q,
				     struct weft__waiter *w)
{
	/* Not begun: no cancellation or deadline can reach w, and the
	 * park's wait_end has nothing to undo. */
	WEFT_ASSERT(weft__spin_held(&q->lock) && !w->abort);
	weft__waitq_push(q, w);
	return weft__wait_park(w, weft__waitq_unlock_cb, q);
}

bool weft__waitq_abort_wanted(struct weft__waiter *w)
{
	WEFT_DEBUG_ONLY(weft__debug_abort_reached(w, WEFT__ABORT_START));
	WEFT_ASSERT(w->task && weft__spin_held(&w->task->wait_lock));
	/* Relaxed: our caller took the wait lock (an acquire), which orders
	 * this after a release that read the lock before (see the top). */
	if (atomic_load_explicit(&w->state, memory_order_relaxed) !=
	    WEFT__WAITING)
		return false; /* settled: its release may have let go */
	WEFT_DEBUG_ONLY(weft__debug_abort_reached(w, WEFT__ABORT_LOCKING));
	return true;
}

void weft__waitq_abort_on(struct weft_waitq *lock, struct weft_waitq *q,
			  struct weft__waiter *w, int reason,
			  void (*on_unlink)(struct weft_waitq *q))
{
	if (!weft__waitq_abort_wanted(w))
		return;
	weft__waitq_lock(lock);
	if (weft__waiter_settle_locked(w, reason) && weft__waitq_linked(q, w)) {
		weft__waitq_remove(q, w);
		if (on_unlink)
			on_unlink(q);
		weft__waiter_wake(w);
	}
	/* Not linked yet: the waiter sees the state under the lock. */
	weft__waitq_unlock(lock);
}

void weft__waitq_abort(struct weft__waiter *w, int reason)
{
	struct weft_waitq *q = w->queue;
	weft__waitq_abort_on(q, q, w, reason, NULL);
}

struct weft__waiter *weft__waitq_settle_one(struct weft_waitq *q, int result)
{
	struct weft__waiter *w;
	while ((w = weft__waitq_pop(q)))
		if (weft__waiter_settle_locked(w, result))
			return w;
	return 0;
}

void weft__waitq_settle_n(struct weft_waitq *q, int n, int result,
			  struct weft__wakelist *wl)
{
	struct weft__waiter *w;
	while (n-- > 0 && (w = weft__waitq_settle_one(q, result))) {
		w->next = 0;
		if (wl->tail)
			wl->tail->next = w;
		else
			wl->head = w;
		wl->tail = w;
		wl->n++;
	}
}

void weft__waitq_settle_all(struct weft_waitq *q, int result,
			    struct weft__wakelist *wl)
{
	weft__waitq_settle_n(q, 1 << 30, result, wl);
}

void weft__wakelist_wake_some(struct weft__wakelist *wl)
{
	for (struct weft__waiter *w = wl->head; w; w = w->next) {
		/* A plain thread has no abort but its select's timeout,
		 * which takes the case locks: the drop-at-once rule does
		 * not cover a select's primitives (select.h). */
		if (!w->task)
			continue;
		/* acq_rel, a read that writes nothing new (see the top):
		 * release hands our settle to an abort that takes the lock
		 * after; acquire pairs with the unlock of one before. */
		if (__atomic_fetch_add(&w->task->wait_lock, 0,
				       __ATOMIC_ACQ_REL))
			weft__spin_wait_free(&w->task->wait_lock);
	}
	weft__wakelist_wake_unguarded(wl);
}

void weft__wakelist_wake_unguarded(struct weft__wakelist *wl)
{
	struct weft__waiter *w = wl->head;
	while (w) {
		/* Read next first: a woken waiter's stack may vanish. */
		struct weft__waiter *next = w->next;
		weft__waiter_wake(w);
		w = next;
	}
	wl->head = wl->tail = 0;
}

/* A plain thread's identity for weft__owner_self(): the address of a
 * thread-local, out of line so every caller sees the same one. */
uintptr_t weft__thread_tag(void)
{
	static __thread long thread_tag;
	return (uintptr_t)&thread_tag;
}
