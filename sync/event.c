/*
 * weft_event: a flag tasks wait on (asyncio.Event).
 *
 * Invariants:
 *  - set changes only under wq.lock; waiters are linked only under wq.lock
 *    after seeing set == 0 there. So set() finds every waiter that could
 *    have missed the flag, and a waiter arriving after set() sees it.
 *  - set() settles all waiters with 0 under the lock, then wakes them after
 *    unlocking; a waiter that was notified returns 0 even if a cancel
 *    raced in. A waiter aborted first was unlinked and is not counted.
 *  - Whoever sees the flag without the lock waits out set()'s unlock
 *    before returning (weft__waitq_quiesce): the caller may free e then.
 */
#include <errno.h>

#include "weft/sync.h"
#include "waitq.h"

int weft_event_init(struct weft_event *e)
{
	if (!e)
		return -EINVAL;
	e->set = 0;
	weft__waitq_init(&e->wq);
	return 0;
}

int weft_event_set(struct weft_event *e)
{
	if (!e)
		return -EINVAL;
	struct weft__wakelist wl = WEFT__WAKELIST_INIT;
	weft__waitq_lock(&e->wq);
	/* release: pairs with the lock-free acquire loads in is_set and
	 * wait's fast path, so a task that sees the event set also sees
	 * what the setter wrote before setting it. */
	__atomic_store_n(&e->set, 1, __ATOMIC_RELEASE);
	weft__waitq_settle_all(&e->wq, 0, &wl);
	weft__waitq_unlock(&e->wq);
	weft__wakelist_wake(&wl);
	return wl.n;
}

int weft_event_clear(struct weft_event *e)
{
	if (!e)
		return -EINVAL;
	weft__waitq_lock(&e->wq);
	/* relaxed: clearing publishes nothing; waiters read set under the
	 * lock, which orders it, and a lock-free reader that still sees 1
	 * saw a set that happened (asyncio's clear is no barrier either). */
	__atomic_store_n(&e->set, 0, __ATOMIC_RELAXED);
	weft__waitq_unlock(&e->wq);
	return 0;
}

int weft_event_is_set(const struct weft_event *e)
{
	if (!e)
		return -EINVAL;
	/* acquire: pairs with set's release store. */
	if (!__atomic_load_n(&e->set, __ATOMIC_ACQUIRE))
		return 0;
	weft__waitq_quiesce(&e->wq);
	return 1;
}

int weft_event_wait(struct weft_event *e)
{
	if (!e)
		return -EINVAL;
	/* acquire: pairs with set's release store (the fast path returns
	 * without the lock). */
	if (__atomic_load_n(&e->set, __ATOMIC_ACQUIRE)) {
		weft__waitq_quiesce(&e->wq);
		return 0;
	}
	struct weft__waiter w;
	int r;
	weft__waitq_prepare_as(&e->wq, &w, 0, WEFT__WAIT_EVENT, e);
	if ((r = weft__wait_begin(&w)))
		return r;
	weft__waitq_lock(&e->wq);
	if (e->set) {
		weft__waitq_unlock(&e->wq);
		weft__wait_end(&w);
		return 0;
	}
	return weft__waitq_wait(&e->wq, &w);
}
