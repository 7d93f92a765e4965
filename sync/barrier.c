/*
 * weft_barrier: wait until n parties arrive (asyncio.Barrier).
 *
 * A round fills (waiters on wq, count of them), then drains: the arrival
 * that makes it parties releases everyone, and the round drains until each
 * released waiter has returned. A caller that comes back while the round
 * drains waits on held, outside the round, as asyncio's entrance does;
 * the last one out lets them in, and they arrive in the next round.
 *
 * Invariants (all under wq.lock, which guards held too):
 *  - count == the number of waiters linked on wq; it stays below parties:
 *    the arrival that would make it parties settles them all with 0 and
 *    resets it to 0 in the same critical section.
 *  - draining == the released waiters not yet out; while it is non-zero
 *    nobody joins wq (newcomers wait on held), and when the last one out
 *    takes it to 0 it settles every held waiter with ENTER.
 *  - A waiter settled 0 has passed: nothing can break it afterwards.
 *  - Indices are handed out as a round completes, not on arrival: each
 *    waiter's is its place on wq (arrival order), the completing caller's
 *    is count. So they are 0..parties-1 once each even when waiters left
 *    the round (an index taken from count on arrival would repeat one and
 *    skip another: asyncio's does, CPython gh-155233).
 *  - A waiter that is cancelled or times out leaves: it is unlinked (from
 *    wq, count drops; from held, nothing else changes).
 *  - reset settles wq's waiters with -EPIPE and leaves held and draining
 *    alone; abort also settles held's: while broken, nobody is linked.
 *
 * count and broken are stored atomically, relaxed, only so that the
 * unlocked snapshots (n_waiting, broken) are not races: every reader that
 * acts on them holds the lock, whose release/acquire orders them.
 */
#include <errno.h>
#include <limits.h>

#include "weft/sync.h"
#include "waitq.h"

/* A held waiter's settled state: the round has drained, try again. */
#define ENTER 2

/* Whether parties can be counted: a wait returns an index below it as
 * an int, which past INT_MAX would read as a negative errno. */
static bool parties_ok(unsigned parties)
{
	return parties && parties <= INT_MAX;
}

int weft_barrier_init(struct weft_barrier *b, unsigned parties)
{
	if (!b || !parties_ok(parties))
		return -EINVAL;
	b->parties = parties;
	b->count = 0;
	b->draining = 0;
	b->broken = false;
	weft__waitq_init(&b->wq);
	weft__waitq_init(&b->held);
	return 0;
}

/* w->data is the list w waits on: &b->wq or &b->held (NULL: none yet). */
static void barrier_abort(struct weft__waiter *w, int reason)
{
	if (!weft__waitq_abort_wanted(w))
		return;
	struct weft_barrier *b =
		weft__container_of(w->queue, struct weft_barrier, wq);
	weft__waitq_lock(&b->wq);
	struct weft_waitq *q = w->data ? w->data : &b->wq; /* set under it */
	if (weft__waiter_settle_locked(w, reason) && weft__waitq_linked(q, w)) {
		weft__waitq_remove(q, w);
		/* relaxed: under the lock (see the top). */
		if (q == &b->wq)
			__atomic_store_n(&b->count, b->count - 1,
					 __ATOMIC_RELAXED);
		weft__waiter_wake(w);
	}
	weft__waitq_unlock(&b->wq);
}

/* Under the lock: one released waiter is out; the last lets the held in. */
static void leave(struct weft_barrier *b, struct weft__wakelist *wl)
{
	if (--b->draining == 0)
		weft__waitq_settle_all(&b->held, ENTER, wl);
}

/* Under the lock, which it releases: the caller completes the round (w:
 * its wait, ended here; NULL if it began none). Returns the caller's
 * index, the last. */
static int release(struct weft_barrier *b, struct weft__waiter *w)
{
	struct weft__wakelist wl = WEFT__WAKELIST_INIT;
	/* Each waiter's index, read after its wake: written before the
	 * settle, whose release store its acquire (wait_park) pairs with. */
	unsigned index = 0;
	for (struct weft__waiter *x = b->wq.head; x; x = x->next)
		x->value = index++;
	weft__waitq_settle_all(&b->wq, 0, &wl);
	/* relaxed: under the lock (see the top). */
	__atomic_store_n(&b->count, 0, __ATOMIC_RELAXED);
	b->draining = (unsigned)wl.n + 1; /* the caller is out at once */
	leave(b, &wl);
	weft__waitq_unlock(&b->wq);
	if (w)
		weft__wait_end(w);
	weft__wakelist_wake_unguarded(&wl);
	return (int)index;
}

/* One try; *again if it was held until the last round drained. A broken
 * barrier, and the arrival that completes a round, need no wait, so
 * they are settled before one begins: in a cancelled task, or past a
 * deadline, they still say -EPIPE and pass (weft/sync.h). */
static int wait_once(struct weft_barrier *b, bool *again)
{
	struct weft__waiter w;
	int r;
	weft__waitq_lock(&b->wq);
	if (b->broken) {
		weft__waitq_unlock(&b->wq);
		return -EPIPE;
	}
	if (!b->draining && b->count + 1 == b->parties)
		return release(b, NULL);
	weft__waitq_unlock(&b->wq);
	weft__waitq_prepare_as(&b->wq, &w, barrier_abort, WEFT__WAIT_BARRIER,
			       b);
	if ((r = weft__wait_begin(&w)))
		return r;
	weft__waitq_lock(&b->wq);
	if (b->broken || (r = weft__waiter_state(&w)) != WEFT__WAITING) {
		if (b->broken)
			r = -EPIPE;
		weft__waitq_unlock(&b->wq);
		weft__wait_end(&w);
		return r;
	}
	if (b->draining) {
		w.data = &b->held;
		r = weft__waitq_wait_on(&b->wq, &b->held, &w);
		*again = r == ENTER;
		return r;
	}
	if (b->count + 1 == b->parties)
		return release(b, &w);
	/* relaxed: under the lock (see the top). */
	__atomic_store_n(&b->count, b->count + 1, __ATOMIC_RELAXED);
	w.data = &b->wq;
	if ((r = weft__waitq_wait(&b->wq, &w)))
		return r;
	struct weft__wakelist wl = WEFT__WAKELIST_INIT;
	weft__waitq_lock(&b->wq);
	leave(b, &wl);
	weft__waitq_unlock(&b->wq);
	weft__wakelist_wake_unguarded(&wl);
	return (int)w.value;
}

int weft_barrier_wait(struct weft_barrier *b)
{
	if (!b || !parties_ok(b->parties))
		return -EINVAL;
	bool again;
	int r;
	do {
		again = false;
		r = wait_once(b, &again);
	} while (again);
	return r;
}

static int wake_all(struct weft_barrier *b, bool broken)
{
	if (!b)
		return -EINVAL;
	struct weft__wakelist wl = WEFT__WAKELIST_INIT;
	weft__waitq_lock(&b->wq);
	weft__waitq_settle_all(&b->wq, -EPIPE, &wl);
	if (broken)
		weft__waitq_settle_all(&b->held, -EPIPE, &wl);
	/* relaxed, both: under the lock (see the top). */
	__atomic_store_n(&b->count, 0, __ATOMIC_RELAXED);
	__atomic_store_n(&b->broken, broken, __ATOMIC_RELAXED);
	weft__waitq_unlock(&b->wq);
	weft__wakelist_wake_unguarded(&wl);
	return wl.n;
}

int weft_barrier_abort(struct weft_barrier *b)
{
	return wake_all(b, true);
}

int weft_barrier_reset(struct weft_barrier *b)
{
	return wake_all(b, false);
}

int weft_barrier_n_waiting(const struct weft_barrier *b)
{
	if (!b)
		return -EINVAL;
	/* relaxed: a snapshot for the caller, publishing nothing; count is
	 * written under the wait queue's lock, atomically only so that
	 * this unlocked read is not a race. */
	return (int)__atomic_load_n(&b->count, __ATOMIC_RELAXED);
}

int weft_barrier_broken(const struct weft_barrier *b)
{
	if (!b)
		return -EINVAL;
	/* relaxed: as n_waiting's, a snapshot of a flag written under the
	 * lock. */
	return __atomic_load_n(&b->broken, __ATOMIC_RELAXED);
}
