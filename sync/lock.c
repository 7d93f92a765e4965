/*
 * weft_lock: a fair mutex for tasks and threads (asyncio.Lock).
 *
 * state is one word: the owner's identity (weft__owner_self(): its task or
 * its thread) with bit 0 set while anyone waits, or 0 when free. So an
 * uncontended acquire is one CAS 0 -> me and a release one CAS me -> 0.
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
 *  - A release frees the lock only with its last touch of l, the fast
 *    CAS: whoever takes the lock next may free l once done with it.
 */
#include <errno.h>

#include "weft/sync.h"
#include "weft/task.h"
#include "waitq.h"
#include "lock.h"
#include "select.h"

#define WAITERS ((uintptr_t)1)

static inline uintptr_t owner_of(uintptr_t state)
{
	return state & ~WAITERS;
}

int weft_lock_init(struct weft_lock *l)
{
	if (!l)
		return -EINVAL;
	l->state = 0;
	weft__waitq_init(&l->wq);
	return 0;
}

/* acquire: pairs with the releasing CAS or store of state (unlock, hand
 * over), so the critical sections before it happen before the caller's. */
static inline uintptr_t load_state(const struct weft_lock *l)
{
	return __atomic_load_n(&l->state, __ATOMIC_ACQUIRE);
}

/* acq_rel: acquire as load_state; release publishes the critical section
 * a release ends to the next acquirer. Failure acquire: the value read
 * may decide (held_by_me, the slow path). */
static inline bool cas_state(struct weft_lock *l, uintptr_t *old, uintptr_t new)
{
	return __atomic_compare_exchange_n(&l->state, old, new, false,
					   __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE);
}

/* The last waiter left: let the owner's fast release work. */
static void lock_unlinked(struct weft_waitq *q)
{
	struct weft_lock *l = weft__container_of(q, struct weft_lock, wq);
	/* Relaxed: the bit publishes no data. Under wq.lock, as every write
	 * of it; an owner that still sees it takes the slow release, which
	 * takes wq.lock and finds the queue empty. */
	if (weft__waitq_empty(q))
		__atomic_fetch_and(&l->state, ~WAITERS, __ATOMIC_RELAXED);
}

static void lock_abort(struct weft__waiter *w, int reason)
{
	weft__waitq_abort_on(w->queue, w->queue, w, reason, lock_unlinked);
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
	struct weft__waiter w;
	int r;

	/* Acquirers spin briefly before queueing: a holder on another worker
	 * usually releases within a few hundred cycles, and a switch costs
	 * more. Only a free, waiterless lock can be taken here. (Spinning
	 * again once queued, for a hand-over, was tried: under the strict
	 * FIFO hand-over two busy workers then alternate the lock across
	 * cores, which measured no faster than parking, and worse on a
	 * loaded machine.) Not when the holder cannot be running: two tasks
	 * on one worker then spun 8 pauses per acquire for nothing. */
	if (!(load_state(l) & WAITERS) && weft__spin_worthwhile()) {
		for (int i = 0; i < 8; i++) {
			uintptr_t s = load_state(l);
			if (s == 0 && cas_state(l, &s, me))
				return 0;
			if (s & WAITERS)
				break;
			weft__cpu_relax();
		}
	}

	weft__waitq_prepare_as(&l->wq, &w, lock_abort, WEFT__WAIT_LOCK, l);
	if (!abortable)
		w.abort = 0;
	w.value = me;
	if (abortable && (r = weft__wait_begin(&w)))
		return r;
	weft__waitq_lock(&l->wq);
	if (abortable && (r = weft__waiter_state(&w)) != WEFT__WAITING) {
		weft__waitq_unlock(&l->wq);
		weft__wait_end(&w);
		return r;
	}
	if (take_or_mark(l, me)) {
		weft__waitq_unlock(&l->wq);
		if (abortable)
			weft__wait_end(&w);
		return 0;
	}
	if (!abortable)
		return weft__waitq_wait_uninterruptible(&l->wq, &w);
	return weft__waitq_wait(&l->wq, &w);
}

int weft_lock_acquire(struct weft_lock *l)
{
	if (!l)
		return -EINVAL;
	uintptr_t me = weft__owner_self();
	/* Look first: a CAS that fails costs as much as one that succeeds,
	 * and under contention most would. */
	uintptr_t s = load_state(l);
	if (__builtin_expect(s == 0 && cas_state(l, &s, me), 1))
		return 0;
	if (owner_of(s) == me)
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

/*
 * The owner me saw WAITERS: hands the lock to the oldest waiter. Returns 1
 * if that is a task, else 0. If no waiter is left to take it (all left,
 * or were a select's that had won elsewhere), clears WAITERS and frees
 * the lock with the fast CAS after unlocking wq.lock, never under it: a
 * fast acquirer could take the lock, release it and free it while this
 * releaser still had wq.lock to unlock.
 */
static int release_slow(struct weft_lock *l, uintptr_t me)
{
	struct weft__waiter *w;
	for (;;) {
		weft__waitq_lock(&l->wq);
		if ((w = weft__waitq_settle_one(&l->wq, 0)))
			break;
		/* Relaxed: the bit publishes no data; the CAS orders. */
		__atomic_fetch_and(&l->state, ~WAITERS, __ATOMIC_RELAXED);
		weft__waitq_unlock(&l->wq);
		uintptr_t s = me;
		if (cas_state(l, &s, 0))
			return 0;
		/* A waiter came meanwhile and set WAITERS again. */
	}
	/* Hand over: the lock never becomes free in between. */
	uintptr_t next = (uintptr_t)w->value;
	if (!weft__waitq_empty(&l->wq))
		next |= WAITERS;
	/* release: pairs with later acquire reads of state (the next CAS,
	 * held_by_me). The new owner itself runs after this critical
	 * section through its settle under wq.lock and its wake. */
	__atomic_store_n(&l->state, next, __ATOMIC_RELEASE);
	weft__waitq_unlock(&l->wq);
	bool to_task = w->task != NULL; /* w may vanish once woken */
	weft__waiter_wake(w);
	return to_task;
}

/* 0, 1 if it handed the lock to a waiting task, or -EPERM. */
static inline int release(struct weft_lock *l, uintptr_t me)
{
	/* Look first: with waiters the CAS would fail, and a failed CAS
	 * costs as much as one that succeeds. */
	uintptr_t s = load_state(l);
	if (__builtin_expect(s == me && cas_state(l, &s, 0), 1))
		return 0;
	if (owner_of(s) != me)
		return -EPERM;
	return release_slow(l, me);
}

int weft__lock_release_as(struct weft_lock *l, uintptr_t me)
{
	int r = release(l, me);
	return r < 0 ? r : 0;
}

/*
 * A task that hands the lock over then yields, so the new owner runs at
 * once, here, and the releaser asks again only after it. Without the
 * yield, a releaser that loops back to acquire must queue behind every
 * waiter (FIFO), and so must the next owner after it: a convoy in which
 * every acquire is a park, a wake and a switch, and which never drains.
 * With it, the waiters drain one by one and the lock is soon uncontended
 * again, which is what makes a heavily contended lock cheap. Go's unlock
 * yields to the waiter it hands over to in the same way, in its starvation
 * mode. Order is untouched: the lock went to the oldest waiter.
 */
int weft_lock_release(struct weft_lock *l)
{
	if (!l)
		return -EINVAL;
	int r = release(l, weft__owner_self());
	if (r <= 0)
		return r;
	(void)weft_yield(); /* not in a task, or cancelled: no yield */
	return 0;
}

int weft_lock_locked(const struct weft_lock *l)
{
	if (!l)
		return -EINVAL;
	return load_state(l) != 0;
}

int weft__lock_requeue(struct weft_lock *l, struct weft_waitq *q, int n)
{
	int moved = 0;
	struct weft__waiter *w;
	weft__waitq_lock(&l->wq);
	while (moved < n && (w = weft__waitq_pop(q))) {
		w->queue = &l->wq;
		weft__waitq_push(&l->wq, w);
		moved++;
	}
	/* Relaxed: only the holder (us: its release reads its own write)
	 * and code under wq.lock look at the bit. */
	if (moved)
		__atomic_fetch_or(&l->state, WAITERS, __ATOMIC_RELAXED);
	weft__waitq_unlock(&l->wq);
	return moved;
}

bool weft__lock_held_by_me(const struct weft_lock *l)
{
	return owner_of(load_state(l)) == weft__owner_self();
}

/* ---- for select (select.h) ---------------------------------------------- */

bool weft__lock_take_or_mark_locked(struct weft_lock *l, uintptr_t me)
{
	return take_or_mark(l, me);
}

void weft__lock_unlink(struct weft_lock *l, struct weft__waiter *w)
{
	if (!weft__waitq_linked(&l->wq, w))
		return;
	weft__waitq_remove(&l->wq, w);
	lock_unlinked(&l->wq);
}
