/*
 * The wait-queue: an intrusive FIFO of waiters under a spinlock, the one
 * mechanism under every weft primitive. Layout in <weft/waitq.h>.
 *
 * Invariants:
 *  - head..tail are exactly the linked waiters, all still WEFT__WAITING or
 *    being settled by whoever holds the guarding lock.
 *  - A waiter leaves the list only under the lock, and is woken only after
 *    it left, so a woken waiter is never touched through q again.
 *  - Linked waiters are settled only under the lock (notifiers and aborts
 *    both take it), so a notifier that pops a waiter always wins, and a
 *    settle there is a load and a store (weft__waiter_settle_locked).
 *  - An abort touches the object only after it saw its waiter still
 *    waiting (weft__waitq_abort_wanted), under the waiter's task's wait
 *    lock. A release that wakes several waiters, one of whom may free the
 *    object at once (weft/sync.h), reads each of their tasks' wait locks
 *    with a read-modify-write after unlocking, and waits while one is held,
 *    before it wakes anyone (weft__wakelist_wake). The lock word orders
 *    the two: if the release's read-modify-write comes first, the abort's
 *    taking of the lock acquires the settle made before it and the abort
 *    backs off; if the abort's comes first, the release sees the lock held
 *    and waits until the abort, done with the object, lets it go. A
 *    release that hands over to one waiter needs neither: only that
 *    waiter may free the object, and it returns after its own abort
 *    (wait_end takes the same wait lock), so lock, semaphore and queue
 *    hand-overs pay nothing; nor does the barrier, which may be dropped
 *    only once every caller has returned.
 *
 * Refinement of runtime/wait.h for waitq waiters: w->queue names the list
 * from weft__waitq_prepare() until the wait ends, not only while linked,
 * because an abort that fires before the waiter is linked must still find
 * the lock to take. Whether w is linked is weft__waitq_linked(). The lock
 * guarding a list is its own `lock` field unless a primitive guards several
 * lists with one lock (the queue); it then passes its own abort.
 */
#ifndef WEFT_SYNC_WAITQ_H
#define WEFT_SYNC_WAITQ_H

#include <stdbool.h>
#include <stddef.h>
#include "weft/waitq.h"
#include "../runtime/list.h"
#include "../runtime/spinlock.h"
#include "../runtime/wait.h"

void weft__waitq_init(struct weft_waitq *q);

/* The list's spinlock (runtime/spinlock.h). */
static inline void weft__waitq_lock(struct weft_waitq *q)
{
	weft__spin_lock(&q->lock);
}

static inline void weft__waitq_unlock(struct weft_waitq *q)
{
	weft__spin_unlock(&q->lock);
}

/*
 * For a caller that saw, without taking q's lock, a state published under
 * it (an event set, a future done): returns once the publisher has left
 * the lock. The publisher's unlock is its last touch of the object, and
 * the caller may free the object as soon as it returns (an event on a
 * stack, say), as POSIX allows for a semaphore just posted or a mutex
 * just unlocked. Linux's completion_done() waits out its lock the same
 * way. The publisher locked before it published, so once the caller has
 * seen the state (acquire), the lock word it reads is the publisher's
 * mark or a later value: free means the publisher, and anyone after it,
 * has left. Never call it holding q's lock.
 */
static inline void weft__waitq_quiesce(const struct weft_waitq *q)
{
	/* acquire: pairs with the publisher's release unlock, so that its
	 * writes under the lock (after the state the caller saw: the
	 * queue's links, say) happen before the caller's reuse. */
	if (__builtin_expect(__atomic_load_n(&q->lock, __ATOMIC_ACQUIRE), 0))
		weft__spin_wait_free(&q->lock);
}

/* For weft__wait_park(): unlocks the queue passed as arg. */
void weft__waitq_unlock_cb(void *q);

static inline bool weft__waitq_empty(const struct weft_waitq *q)
{
	return q->head == 0;
}

/* Under the lock: whether w is on q. */
static inline bool weft__waitq_linked(const struct weft_waitq *q,
				      const struct weft__waiter *w)
{
	return w->prev || q->head == w;
}

/* The standard abort for waiters on a waitq: unlink and wake if it wins. */
void weft__waitq_abort(struct weft__waiter *w, int reason);

/* Every waitq abort's first step, before it touches the object: whether
 * w still waits (see the top). */
bool weft__waitq_abort_wanted(struct weft__waiter *w);

/* Initialises w to wait on q with abort (weft__waitq_abort if NULL), for
 * kind on object (what weft_dump shows). Call before weft__wait_begin. */
static inline void weft__waitq_prepare_as(struct weft_waitq *q,
					  struct weft__waiter *w,
					  weft__abort_fn abort,
					  enum weft__wait_kind kind,
					  const void *object)
{
	weft__waiter_init_as(w, abort ? abort : weft__waitq_abort, kind,
			     object);
	w->queue = q;
}

static inline void weft__waitq_prepare(struct weft_waitq *q,
				       struct weft__waiter *w,
				       weft__abort_fn abort)
{
	weft__waitq_prepare_as(q, w, abort, WEFT__WAIT_OTHER, NULL);
}

/* Under the lock. */
void weft__waitq_push(struct weft_waitq *q, struct weft__waiter *w);
void weft__waitq_remove(struct weft_waitq *q, struct weft__waiter *w);
struct weft__waiter *weft__waitq_pop(struct weft_waitq *q);

/* Blocks the caller on list q, guarded by the lock of waitq lock (another
 * waitq's, for primitives that guard several lists with one lock). Call
 * with lock locked; returns with it unlocked. w must be prepared on q
 * (weft__waitq_prepare) and begun (weft__wait_begin). If w was settled
 * before it could be linked, returns that state without blocking. Returns
 * the settled state: 0 when notified, else the negative errno it was
 * aborted with. */
int weft__waitq_wait_on(struct weft_waitq *lock, struct weft_waitq *q,
			struct weft__waiter *w);

/* The same for a list guarded by its own lock. */
static inline int weft__waitq_wait(struct weft_waitq *q, struct weft__waiter *w)
{
	return weft__waitq_wait_on(q, q, w);
}

/* The body of every abort, for a list q guarded by lock: takes lock, and
 * if settling w with reason wins and w is linked, unlinks it, calls
 * on_unlink(q) (when not NULL: the primitive's bookkeeping for a waiter
 * that left, still under the lock) and wakes it. */
void weft__waitq_abort_on(struct weft_waitq *lock, struct weft_waitq *q,
			  struct weft__waiter *w, int reason,
			  void (*on_unlink)(struct weft_waitq *q));

/*
 * Deferred wake-ups, to keep wake-ups (which may kick another worker) out
 * of the critical section. Under the lock, weft__waitq_settle_one() pops
 * and settles the oldest waiter without waking it; the caller may still
 * read and write it (its buffer, say) since it cannot run until woken.
 * After unlocking, wake it with weft__waiter_wake(). A popped, settled,
 * unwoken waiter is invisible to aborts (they lose the CAS and find it
 * unlinked), so this is safe.
 */
struct weft__waiter *weft__waitq_settle_one(struct weft_waitq *q, int result);

/* A list of settled waiters to wake after unlocking, chained by ->next. */
struct weft__wakelist {
	struct weft__waiter *head, *tail;
	int n;
};

/* clang-format off */
#define WEFT__WAKELIST_INIT { 0, 0, 0 }
/* clang-format on */

/* Under the lock: moves every waiter of q, settled with result, to wl. */
void weft__waitq_settle_all(struct weft_waitq *q, int result,
			    struct weft__wakelist *wl);
/* Under the lock: moves up to n of q's oldest waiters, settled with result,
 * to wl (appending in order). */
void weft__waitq_settle_n(struct weft_waitq *q, int n, int result,
			  struct weft__wakelist *wl);
/* weft__wakelist_wake's body, out of line, for a list not empty. */
void weft__wakelist_wake_some(struct weft__wakelist *wl);

/* Wakes everything on wl at once, without waiting out aborts: for a
 * primitive that may be dropped only once every caller has returned (the
 * barrier, whose released callers count themselves out after their
 * waits), where an abort's caller has not. */
void weft__wakelist_wake_unguarded(struct weft__wakelist *wl);

/* Without the lock: waits out the aborts that may still reach the object
 * (see the top), then wakes everything on wl. Inline: most calls have
 * nobody to wake. */
static inline void weft__wakelist_wake(struct weft__wakelist *wl)
{
	if (wl->head)
		weft__wakelist_wake_some(wl);
}

/* Waits on q without being abortable (cancellation and deadlines are
 * ignored): for re-taking a lock that must be held on return. Call with q
 * locked and w prepared (abort NULL); returns with q unlocked. */
int weft__waitq_wait_uninterruptible(struct weft_waitq *q,
				     struct weft__waiter *w);

uintptr_t weft__thread_tag(void);

/* The caller's identity as a lock owner: its task, or its thread when not
 * in a task. Never 0, low bit clear. */
static inline uintptr_t weft__owner_self(void)
{
	struct weft_task *t = weft__task_current();
	return t ? (uintptr_t)t : weft__thread_tag();
}

#endif
