/*
 * weft_cond: a condition variable over a weft_lock (asyncio.Condition).
 *
 * Invariants:
 *  - A waiter links itself on wq while still holding the lock, and only
 *    then releases it (with wq.lock held, lock order wq.lock -> lock.wq).
 *    A notifier must hold the lock, so it either ran before the waiter
 *    took the lock or finds the waiter linked: no lost wake-up.
 *  - notify(n) settles n linked waiters; aborted ones were unlinked first,
 *    so a cancelled waiter never swallows a notification, and a notified
 *    waiter returns 0 even if its cancellation came a moment later.
 *  - Whatever happens, the waiter re-takes the lock before returning,
 *    ignoring cancellation for that (as asyncio.Condition.wait does).
 */
#include <errno.h>

#include "weft/sync.h"
#include "waitq.h"
#include "lock.h"

int weft_cond_init(struct weft_cond *c, struct weft_lock *lock)
{
	if (!c || !lock)
		return -EINVAL;
	c->lock = lock;
	weft__waitq_init(&c->wq);
	return 0;
}

int weft_cond_wait(struct weft_cond *c)
{
	return weft__cond_wait_as(c, WEFT__WAIT_COND, c);
}

int weft__cond_wait_as(struct weft_cond *c, int kind, const void *object)
{
	if (!c || !c->lock)
		return -EINVAL;
	struct weft_lock *l = c->lock;
	uintptr_t me = weft__owner_self();
	if (!weft__lock_held_by_me(l))
		return -EPERM;

	struct weft__waiter w;
	int r;
	weft__waitq_prepare_as(&c->wq, &w, 0, (enum weft__wait_kind)kind,
			       object);
	if ((r = weft__wait_begin(&w)))
		return r; /* the lock was never released */
	weft__waitq_lock(&c->wq);
	if ((r = weft__waiter_state(&w)) != WEFT__WAITING) {
		weft__waitq_unlock(&c->wq);
		weft__wait_end(&w);
		return r;
	}
	weft__waitq_push(&c->wq, &w);
	weft__lock_release_as(l, me);
	r = weft__wait_park(&w, weft__waitq_unlock_cb, &c->wq);
	weft__lock_acquire_uninterruptible(l);
	return r;
}

int weft_cond_wait_for(struct weft_cond *c, bool (*pred)(void *arg),
		       void *arg)
{
	if (!c || !pred)
		return -EINVAL;
	while (!pred(arg)) {
		int r = weft_cond_wait(c);
		if (r)
			return r;
	}
	return 0;
}

int weft_cond_notify(struct weft_cond *c, int n)
{
	if (!c || !c->lock || n < 0)
		return -EINVAL;
	if (!weft__lock_held_by_me(c->lock))
		return -EPERM;
	struct weft__wakelist wl = WEFT__WAKELIST_INIT;
	weft__waitq_lock(&c->wq);
	weft__waitq_settle_n(&c->wq, n, 0, &wl);
	weft__waitq_unlock(&c->wq);
	weft__wakelist_wake(&wl);
	return wl.n;
}

int weft_cond_notify_all(struct weft_cond *c)
{
	return weft_cond_notify(c, 1 << 30);
}
