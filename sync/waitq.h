/*
 * The wait-queue: an intrusive FIFO of waiters under a spinlock, the one
 * mechanism under every weft primitive. Layout in <weft/waitq.h>.
 *
 * Invariants:
 *  - head..tail are exactly the linked waiters, each with queue == q, all
 *    still WEFT__WAITING or being settled by whoever holds q's lock.
 *  - A waiter leaves the list only under q's lock, and is woken only after
 *    it left, so a woken waiter is never touched through q again.
 */
#ifndef WEFT_SYNC_WAITQ_H
#define WEFT_SYNC_WAITQ_H

#include <stdbool.h>
#include "weft/waitq.h"
#include "../runtime/wait.h"

void weft__waitq_init(struct weft_waitq *q);
void weft__waitq_lock(struct weft_waitq *q);
void weft__waitq_unlock(struct weft_waitq *q);
/* For weft__wait_park(): unlocks the queue passed as arg. */
void weft__waitq_unlock_cb(void *q);

static inline bool weft__waitq_empty(const struct weft_waitq *q)
{
	return q->head == 0;
}

/* Under the lock. */
void weft__waitq_push(struct weft_waitq *q, struct weft__waiter *w);
void weft__waitq_push_front(struct weft_waitq *q, struct weft__waiter *w);
void weft__waitq_remove(struct weft_waitq *q, struct weft__waiter *w);
struct weft__waiter *weft__waitq_pop(struct weft_waitq *q);

/*
 * Blocks the caller on q. Call with q locked; returns with it unlocked.
 * w must be initialised (weft__waiter_init with weft__waitq_abort, or an
 * abort of the primitive's own that ends in weft__waitq_abort) and begun
 * (weft__wait_begin). If w was settled before it could be linked, returns
 * that state without blocking. Returns the settled state: 0 when notified,
 * else the negative errno it was aborted with.
 */
int weft__waitq_wait(struct weft_waitq *q, struct weft__waiter *w);

/* The standard abort for waiters on a waitq: unlink and wake if it wins. */
void weft__waitq_abort(struct weft__waiter *w, int reason);

/* Under the lock: pops waiters until one is notified with result; returns
 * it (already woken: do not touch it afterwards unless you copied what you
 * need before), or NULL if none was waiting. Waiters are settled only by
 * their queue's lock holder, so the first popped always wins; the loop is
 * defensive. */
struct weft__waiter *weft__waitq_notify_one(struct weft_waitq *q, int result);

/* Under the lock: notifies every waiter with result; returns how many. */
int weft__waitq_notify_all(struct weft_waitq *q, int result);

#endif
