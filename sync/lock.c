/*
 * weft_lock: a fair mutex for tasks and threads (asyncio.Lock).
 *
 * state is one word: the owner's identity (weft__owner_self(): its task or
 * its thread, 8-byte aligned) with bit 0 (WAITERS) set while anyone waits
 * and bit 1 (HANDED) while an owner that was handed the lock asleep has not
 * run yet; 0 when free. So an uncontended acquire is one CAS 0 -> me and a
 * release one CAS me -> 0.
 *
 * Invariants:
 *  - state == 0  <=>  the lock is free; then nobody waits.
 *  - WAITERS is set only under wq.lock and while the lock is held, and it
 *    is set exactly when wq is non-empty (checked under wq.lock: the last
 *    waiter to leave, by hand-over or abort, clears it).
 *  - While WAITERS is set, state changes only under wq.lock: the fast
 *    release CAS fails on the bit and takes the slow path. So a release
 *    with waiters hands the lock over directly (state = waiter's identity)
 *    and it never becomes free in between: FIFO, nobody barges, nobody
 *    starves.
 *  - A waiter that was handed the lock (notified, 0) owns it, even if a
 *    cancellation raced in; an aborted waiter was unlinked and took nothing.
 *  - A queued waiter may still be spinning (not parked); it is then settled
 *    but not woken, and notices by itself. Whether it parked is decided
 *    under wq.lock, where the waker reads it.
 */
#include <errno.h>

#include "weft/sync.h"
#include "waitq.h"
#include "lock.h"
#include "runtime/task.h"

#define WAITERS ((uintptr_t)1)
#define HANDED ((uintptr_t)2) /* owner was handed it parked: not running */
#define OWNER(s) ((s) & ~(WAITERS | HANDED))

int weft_lock_init(struct weft_lock *l)
{
	if (!l)
		return -EINVAL;
	l->state = 0;
	weft__waitq_init(&l->wq);
	return 0;
}

static inline uintptr_t load_state(const struct weft_lock *l)
{
	return __atomic_load_n(&l->state, __ATOMIC_ACQUIRE);
}

static inline bool cas_state(struct weft_lock *l, uintptr_t *old,
			     uintptr_t new)
{
	return __atomic_compare_exchange_n(&l->state, old, new, false,
					   __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE);
}

/* A lock waiter spins a little after queueing before it parks: a holder
 * running on another worker usually hands over sooner than a park and
 * wake would take. parked tells a waker (under wq.lock) whether it must
 * wake the waiter or just settle it. */
struct lock_waiter {
	struct weft__waiter w;
	bool parked;
};

#define SPIN_FREE 8     /* pauses polling a free lock before queueing */
#define SPIN_QUEUED 50 /* pauses polling for a hand-over once queued */

static void lock_abort(struct weft__waiter *w, int reason)
{
	struct weft_lock *l = weft__container_of(w->queue, struct weft_lock,
						 wq);
	weft__waitq_lock(&l->wq);
	if (weft__waiter_settle(w, reason) && weft__waitq_linked(&l->wq, w)) {
		weft__waitq_remove(&l->wq, w);
		/* The last waiter left: let the owner's fast release work. */
		if (weft__waitq_empty(&l->wq))
			__atomic_fetch_and(&l->state, ~WAITERS,
					   __ATOMIC_RELAXED);
		/* A spinning waiter sees its state by itself. */
		if (weft__container_of(w, struct lock_waiter, w)->parked)
			weft__waiter_wake(w);
	}
	weft__waitq_unlock(&l->wq);
}

/*
 * Under wq.lock: takes the lock if free, else marks it contended. Returns
 * true if the caller now owns it.
 */
static bool take_or_mark(struct weft_lock *l, uintptr_t me)
{
	uintptr_t s = load_state(l);
	for (;;) {
		if (s == 0) {
			if (cas_state(l, &s, me))
				return true;
		} else if (s & WAITERS) {
			return false;
		} else if (cas_state(l, &s, s | WAITERS)) {
			return false;
		}
	}
}

static int acquire_slow(struct weft_lock *l, uintptr_t me, bool abortable)
{
	struct lock_waiter lw;
	struct weft__waiter *w = &lw.w;
	int r;

	/* Only a free, waiterless lock can be taken here (no barging). */
	for (int i = 0; i < SPIN_FREE; i++) {
		uintptr_t s = load_state(l);
		if (s == 0 && cas_state(l, &s, me))
			return 0;
		if (s & (WAITERS | HANDED))
			break;
		__builtin_ia32_pause();
	}

	weft__waitq_prepare(&l->wq, w, lock_abort);
	lw.parked = false;
	w->value = me;
	if (!abortable) {
		/* Not begun: no cancellation or deadline reaches w. */
		w->abort = 0;
		w->task = weft__task_current();
	} else if ((r = weft__wait_begin(w))) {
		return r;
	}
	weft__waitq_lock(&l->wq);
	if ((r = weft__waiter_state(w)) != WEFT__WAITING) {
		weft__waitq_unlock(&l->wq);
		goto out;
	}
	if (take_or_mark(l, me)) {
		weft__waitq_unlock(&l->wq);
		r = 0;
		goto out;
	}
	weft__waitq_push(&l->wq, w);
	/* Spin for a hand-over only if the holder may be running elsewhere:
	 * with one worker it cannot be, unless it is a plain thread. */
	if (!w->task || weft_workers() > 1) {
		weft__waitq_unlock(&l->wq);
		for (int i = 0; i < SPIN_QUEUED; i++) {
			if ((r = weft__waiter_state(w)) != WEFT__WAITING)
				goto out;
			/* An owner that is not running will not hand over
			 * soon (it may even wait for this worker). */
			if (load_state(l) & HANDED)
				break;
			__builtin_ia32_pause();
		}
		weft__waitq_lock(&l->wq);
		if ((r = weft__waiter_state(w)) != WEFT__WAITING) {
			weft__waitq_unlock(&l->wq);
			goto out;
		}
	}
	lw.parked = true;
	r = weft__wait_park(w, weft__waitq_unlock_cb, &l->wq);
	if (r == 0) /* running now */
		__atomic_fetch_and(&l->state, ~HANDED, __ATOMIC_RELAXED);
	return r;
out:
	if (abortable)
		weft__wait_end(w);
	return r;
}

int weft_lock_acquire(struct weft_lock *l)
{
	if (!l)
		return -EINVAL;
	uintptr_t me = weft__owner_self();
	uintptr_t s = 0;
	if (__builtin_expect(cas_state(l, &s, me), 1))
		return 0;
	if (OWNER(s) == me)
		return -EDEADLK;
	return acquire_slow(l, me, true);
}

void weft__lock_acquire_uninterruptible(struct weft_lock *l)
{
	uintptr_t me = weft__owner_self();
	uintptr_t s = 0;
	if (cas_state(l, &s, me))
		return;
	acquire_slow(l, me, false);
}

int weft_lock_try_acquire(struct weft_lock *l)
{
	if (!l)
		return -EINVAL;
	uintptr_t s = 0;
	return cas_state(l, &s, weft__owner_self()) ? 0 : -EBUSY;
}

static void release_slow(struct weft_lock *l)
{
	struct weft__waiter *w;
	bool wake = false;
	weft__waitq_lock(&l->wq);
	while ((w = weft__waitq_pop(&l->wq))) {
		/* Hand over: the lock never becomes free in between. The new
		 * owner is stored before it is settled, since a spinning
		 * waiter runs on the moment it sees its state. */
		wake = weft__container_of(w, struct lock_waiter, w)->parked;
		uintptr_t next = (uintptr_t)w->value;
		if (!weft__waitq_empty(&l->wq))
			next |= WAITERS;
		if (wake)
			next |= HANDED;
		__atomic_store_n(&l->state, next, __ATOMIC_RELEASE);
		/* Linked waiters are settled only under wq.lock: this wins. */
		if (weft__waiter_settle(w, 0))
			break;
		wake = false;
	}
	if (!w) /* every waiter was aborted meanwhile */
		__atomic_store_n(&l->state, 0, __ATOMIC_RELEASE);
	weft__waitq_unlock(&l->wq);
	if (wake)
		weft__waiter_wake(w);
}

int weft__lock_release_as(struct weft_lock *l, uintptr_t me)
{
	uintptr_t s = me;
	if (__builtin_expect(cas_state(l, &s, 0), 1))
		return 0;
	if (OWNER(s) != me)
		return -EPERM;
	release_slow(l);
	return 0;
}

int weft_lock_release(struct weft_lock *l)
{
	if (!l)
		return -EINVAL;
	return weft__lock_release_as(l, weft__owner_self());
}

int weft_lock_locked(const struct weft_lock *l)
{
	if (!l)
		return -EINVAL;
	return load_state(l) != 0;
}

bool weft__lock_held_by_me(const struct weft_lock *l)
{
	return OWNER(load_state(l)) == weft__owner_self();
}
