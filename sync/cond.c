/*
 * weft_cond: a condition variable over a weft_lock (asyncio.Condition).
 *
 * Invariants:
 *  - A waiter links itself on wq while still holding the lock, and only
 *    then releases it (with wq.lock held, lock order wq.lock -> lock.wq).
 *    A notifier must hold the lock, so it either ran before the waiter
 *    took the lock or finds the waiter linked: no lost wake-up.
 *  - notify(n) moves n linked waiters, oldest first, onto the lock's queue
 *    (the notifier holds the lock), unsettled: the lock is handed to them
 *    in that order when released, and that hand-over (0) wakes each. So
 *    they re-take the lock in the order they waited, as asyncio's do, on
 *    any number of workers. (Woken at once, they would race for the lock
 *    in the order the scheduler ran them: newest first, run-next and the
 *    woken deque being LIFO.)
 *  - w->queue says where w is; it changes only under wq.lock. Aborts
 *    settle w only while it is on wq, and are unlinked first, so a
 *    cancelled waiter never swallows a notification; a moved waiter is
 *    notified, ignores aborts and returns 0, as asyncio.Condition.wait
 *    does when its cancellation comes a moment after the notification.
 *  - Whatever happens, the waiter holds the lock again before returning:
 *    by hand-over if notified, else re-taken ignoring cancellation.
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

static void cond_abort(struct weft__waiter *w, int reason)
{
	if (!weft__waitq_abort_wanted(w))
		return;
	struct weft_cond *c = w->data;
	weft__waitq_lock(&c->wq);
	if (w->queue == &c->wq && weft__waiter_settle_locked(w, reason) &&
	    weft__waitq_linked(&c->wq, w)) {
		weft__waitq_remove(&c->wq, w);
		weft__waiter_wake(w);
	}
	/* Not linked yet: the waiter sees the state under wq.lock. Moved to
	 * the lock's queue: notified, nothing to abort. */
	weft__waitq_unlock(&c->wq);
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
	weft__waitq_prepare_as(&c->wq, &w, cond_abort,
			       (enum weft__wait_kind)kind, object);
	w.data = c;
	w.value = me; /* the owner to hand the lock to (lock.c) */
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
	if (r) /* aborted on wq: not notified, not handed the lock */
		weft__lock_acquire_uninterruptible(l);
	return r;
}

int weft_cond_wait_for(struct weft_cond *c, bool (*pred)(void *arg), void *arg)
{
	/* Checked before pred runs, as weft_cond_wait would: pred must see
	 * the lock held, so a true pred does not excuse a missing lock. */
	if (!c || !c->lock || !pred)
		return -EINVAL;
	if (!weft__lock_held_by_me(c->lock))
		return -EPERM;
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
	weft__waitq_lock(&c->wq);
	int moved = weft__lock_requeue(c->lock, &c->wq, n);
	weft__waitq_unlock(&c->wq);
	return moved;
}

int weft_cond_notify_all(struct weft_cond *c)
{
	return weft_cond_notify(c, 1 << 30);
}
