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
	/* Claimed is fine: the abort finds w linked once it has the lock. */
	WEFT_ASSERT(weft__waiter_state(w) == WEFT__WAITING ||
		    weft__waiter_state(w) == WEFT__ABORTING);
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

int weft__waitq_leave_unlinked(struct weft_waitq *lock, struct weft__waiter *w)
{
	weft__waitq_unlock(lock);
	/* An abort that claimed w runs under the task's wait lock, which
	 * wait_end takes: after it, w holds the abort's reason. */
	weft__wait_end(w);
	return weft__waiter_state(w);
}

int weft__waitq_wait_on(struct weft_waitq *lock, struct weft_waitq *q,
			struct weft__waiter *w)
{
	WEFT_ASSERT(weft__spin_held(&lock->lock));
	/* Settled only by an abort that claimed w and then had the lock
	 * before us (abort_end). Claimed but not settled, w is linked all
	 * the same: the caller may have counted it in (the barrier), and its
	 * abort, waiting for our lock, will find it linked and unlink it. */
	int s = weft__waiter_state(w);
	if (s != WEFT__WAITING && s != WEFT__ABORTING)
		return weft__waitq_leave_unlinked(lock, w);
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

bool weft__waitq_abort_claim(struct weft__waiter *w)
{
	WEFT_ASSERT(!w->group); /* a select's cases have no abort */
	WEFT_DEBUG_ONLY(weft__debug_abort_reached(w, WEFT__ABORT_START));
	int expected = WEFT__WAITING, spins = 0;
	/* Relaxed: the claim only decides who settles w. What the abort does
	 * next is ordered for a notifier that lost by the release store of
	 * abort_settle, which that notifier waits for (wakelist_wake). A
	 * frozen w is the notifier's for a moment: wait for its decision. */
	while (!atomic_compare_exchange_weak_explicit(&w->state, &expected,
						      WEFT__ABORTING,
						      memory_order_relaxed,
						      memory_order_relaxed)) {
		if (expected != WEFT__WAITING && expected != WEFT__FROZEN)
			return false; /* settled */
		if (expected == WEFT__FROZEN)
			weft__spin_backoff(&spins);
		expected = WEFT__WAITING;
	}
	WEFT_DEBUG_ONLY(weft__debug_abort_reached(w, WEFT__ABORT_CLAIMED));
	return true;
}

void weft__waitq_abort_end(struct weft_waitq *lock, struct weft__waiter *w,
			   int reason, bool unlinked)
{
	/* Relaxed: under the lock, as every write of POPPED. */
	bool popped = atomic_load_explicit(&w->state, memory_order_relaxed) ==
		      WEFT__POPPED;
	WEFT_ASSERT(popped || weft__waiter_state(w) == WEFT__ABORTING);
	/* Release, all three: pairs with the acquire of the waiter
	 * (waiter_state) and of a notifier that waits for this
	 * (wakelist_wake), so the abort's touches of the object happen
	 * before either goes on. */
	if (!popped) /* before the unlock: a waiter not yet linked looks */
		atomic_store_explicit(&w->state, reason, memory_order_release);
	weft__waitq_unlock(lock);
	if (popped) /* the notifier wakes w once it sees this */
		atomic_store_explicit(&w->state, reason, memory_order_release);
	else if (unlinked)
		weft__waiter_wake(w);
}

void weft__waitq_abort_on(struct weft_waitq *lock, struct weft_waitq *q,
			  struct weft__waiter *w, int reason,
			  void (*on_unlink)(struct weft_waitq *q))
{
	if (!weft__waitq_abort_claim(w))
		return; /* settled: the object may be gone already */
	weft__waitq_lock(lock);
	bool linked = weft__waitq_linked(q, w);
	if (linked) {
		weft__waitq_remove(q, w);
		if (on_unlink)
			on_unlink(q);
	}
	weft__waitq_abort_end(lock, w, reason, linked);
}

void weft__waitq_abort(struct weft__waiter *w, int reason)
{
	struct weft_waitq *q = w->queue;
	weft__waitq_abort_on(q, q, w, reason, NULL);
}

unsigned weft__waitq_freeze(struct weft_waitq *q)
{
	unsigned claimed = 0;
	for (struct weft__waiter *w = q->head; w; w = w->next) {
		int expected = WEFT__WAITING;
		/* Relaxed, success and failure: the freeze hands nothing
		 * over, and the claim it may meet published nothing read
		 * here; the lock orders the settle or thaw that follows. */
		if (!atomic_compare_exchange_strong_explicit(
			    &w->state, &expected, WEFT__FROZEN,
			    memory_order_relaxed, memory_order_relaxed)) {
			WEFT_ASSERT(expected == WEFT__ABORTING);
			claimed++;
		}
	}
	return claimed;
}

void weft__waitq_thaw(struct weft_waitq *q)
{
	for (struct weft__waiter *w = q->head; w; w = w->next)
		/* Relaxed: a waiting abort only retries its claim. */
		if (atomic_load_explicit(&w->state, memory_order_relaxed) ==
		    WEFT__FROZEN)
			atomic_store_explicit(&w->state, WEFT__WAITING,
					      memory_order_relaxed);
}

/* Onto wl's claimed chain, whose order does not matter. */
static void push_claimed(struct weft__wakelist *wl, struct weft__waiter *w)
{
	w->next = wl->claimed;
	wl->claimed = w;
}

static void append_settled(struct weft__wakelist *wl, struct weft__waiter *w)
{
	w->next = 0;
	if (wl->tail)
		wl->tail->next = w;
	else
		wl->head = w;
	wl->tail = w;
	wl->n++;
}

struct weft__waiter *weft__waitq_settle_one(struct weft_waitq *q, int result,
					    struct weft__wakelist *wl)
{
	struct weft__waiter *w;
	while ((w = weft__waitq_pop(q))) {
		/* Relaxed: a frozen waiter is ours (we froze it under the
		 * lock we hold), and no claim can race the store. */
		if (atomic_load_explicit(&w->state, memory_order_relaxed) ==
		    WEFT__FROZEN) {
			/* Release: the hand-over, as the settle's CAS. */
			atomic_store_explicit(&w->state, result,
					      memory_order_release);
			append_settled(wl, w);
			return w;
		}
		if (weft__waiter_settle(w, result)) {
			append_settled(wl, w);
			return w;
		}
		/* Lost: to an abort that claimed w, which cannot settle it
		 * before it takes the lock we hold; or, for a select's case,
		 * to another case, and the select cleans up after itself.
		 * Relaxed: the failed CAS read the claim already; nothing
		 * the claimer wrote is read here. */
		if (atomic_load_explicit(&w->state, memory_order_relaxed) ==
		    WEFT__ABORTING) {
			/* Relaxed: its abort reads it under our lock. */
			atomic_store_explicit(&w->state, WEFT__POPPED,
					      memory_order_relaxed);
			push_claimed(wl, w);
		}
	}
	return 0;
}

void weft__waitq_settle_n(struct weft_waitq *q, int n, int result,
			  struct weft__wakelist *wl)
{
	while (n-- > 0 && weft__waitq_settle_one(q, result, wl))
		;
}

void weft__waitq_settle_all(struct weft_waitq *q, int result,
			    struct weft__wakelist *wl)
{
	weft__waitq_settle_n(q, 1 << 30, result, wl);
}

/* Wakes the waiters chained from w; reads next first: a woken waiter's
 * stack may vanish. */
static void wake_chain(struct weft__waiter *w)
{
	while (w) {
		struct weft__waiter *next = w->next;
		weft__waiter_wake(w);
		w = next;
	}
}

void weft__wakelist_wake(struct weft__wakelist *wl)
{
	/* Every claimed abort first, before any waiter that might free the
	 * object runs. A claimed waiter stays put until woken, so reading
	 * it here is safe. */
	for (struct weft__waiter *w = wl->claimed; w; w = w->next) {
		int spins = 0;
		/* Acquire: pairs with abort_settle's release store. */
		while (atomic_load_explicit(&w->state, memory_order_acquire) ==
		       WEFT__POPPED)
			weft__spin_backoff(&spins);
	}
	wake_chain(wl->claimed);
	wake_chain(wl->head);
	wl->head = wl->tail = wl->claimed = 0;
}

/* A plain thread's identity for weft__owner_self(): the address of a
 * thread-local, out of line so every caller sees the same one. */
uintptr_t weft__thread_tag(void)
{
	static __thread long thread_tag;
	return (uintptr_t)&thread_tag;
}
