/*
 * The wait-queue: an intrusive FIFO of waiters under a spinlock, the one
 * mechanism under every weft primitive. Layout in <weft/waitq.h>.
 *
 * Invariants:
 *  - head..tail are exactly the linked waiters, each WEFT__WAITING, claimed
 *    by an abort that has yet to take the lock (WEFT__ABORTING), frozen by
 *    the lock's holder (WEFT__FROZEN, below), or being settled by it.
 *  - A waiter leaves the list only under the lock, and is woken only after
 *    it left, so a woken waiter is never touched through q again.
 *  - Notifiers settle linked waiters only under the lock, with a CAS that
 *    races only an abort's claim (below).
 *  - An abort claims its waiter (WEFT__WAITING -> WEFT__ABORTING) before
 *    it touches the object, and touches it only if the claim won: once a
 *    notifier has settled a waiter, another waiter may see the release and
 *    free the object (weft/sync.h), so an abort that lost must not so much
 *    as lock it. A claimed waiter stays claimed until its abort, under the
 *    lock, finds it and ends the wait (weft__waitq_abort_end), one of
 *    three ways: linked, it unlinks it, and wakes it after unlocking; not
 *    linked yet, it settles it before unlocking, so the waiter, which
 *    looks under the lock, leaves without linking; popped by a notifier
 *    (WEFT__POPPED), it settles it after unlocking, its last touch of the
 *    object, and the notifier wakes it.
 *  - A claimed waiter that finds itself not yet settled links itself all
 *    the same: its abort, which has yet to take the lock, unlinks it.
 *  - A notifier that pops a claimed waiter marks it WEFT__POPPED (under
 *    the lock: nothing else changes a claimed state then) and keeps it on
 *    its wake list's claimed chain; after unlocking, weft__wakelist_wake
 *    waits until each such abort has settled its waiter before it wakes
 *    anyone, and then wakes the claimed waiters too. So no waiter returns,
 *    and no releaser returns, while an abort claimed on the object can
 *    still reach it.
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

/* An abort's claim (see the top): true if it won w, which is then the
 * abort's to end with weft__waitq_abort_end. */
bool weft__waitq_abort_claim(struct weft__waiter *w);

/* Ends a claimed abort, called with lock (w's guard) held, which it
 * releases: settles w with reason and wakes it if need be (see the top).
 * unlinked: whether the abort just unlinked w. */
void weft__waitq_abort_end(struct weft_waitq *lock, struct weft__waiter *w,
			   int reason, bool unlinked);

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

/*
 * For a primitive that counts its waiters (the barrier): a waiter claimed
 * by an abort is leaving, though still linked until its abort takes the
 * lock, and no longer counts. Under the lock, weft__waitq_freeze() holds
 * every unclaimed waiter of q back from aborts (WEFT__WAITING ->
 * WEFT__FROZEN; an abort waits until they are settled or thawed), and
 * returns how many were claimed already: the count is then exact until
 * the caller either settles them all (weft__waitq_settle_all settles the
 * frozen and pops the claimed) or thaws them (weft__waitq_thaw), still
 * under the lock.
 */
unsigned weft__waitq_freeze(struct weft_waitq *q);
void weft__waitq_thaw(struct weft_waitq *q);

/* Under the lock. */
void weft__waitq_push(struct weft_waitq *q, struct weft__waiter *w);
void weft__waitq_remove(struct weft_waitq *q, struct weft__waiter *w);
struct weft__waiter *weft__waitq_pop(struct weft_waitq *q);

/* For a caller that found its waiter w settled, or claimed by an abort,
 * before it could be linked: unlocks lock, ends the wait (which waits out
 * the abort) and returns the settled state. */
int weft__waitq_leave_unlinked(struct weft_waitq *lock, struct weft__waiter *w);

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
 * of the critical section, on a wake list: the waiters settled under the
 * lock, chained by ->next, and the claimed ones popped on the way (see the
 * top). Under the lock, weft__waitq_settle_one() pops and settles the
 * oldest waiter and adds it to the list without waking it; the caller may
 * still read and write it (its buffer, say) since it cannot run until
 * woken. After unlocking, weft__wakelist_wake() wakes the list. A popped,
 * settled, unwoken waiter is invisible to aborts (they lose the claim),
 * so this is safe.
 */
struct weft__wakelist {
	struct weft__waiter *head, *tail;
	int n; /* settled ones: head..tail */
	struct weft__waiter *claimed;
};

/* clang-format off */
#define WEFT__WAKELIST_INIT { 0, 0, 0, 0 }
/* clang-format on */

/* Under the lock: settles q's oldest waiter with result onto wl, and
 * returns it (NULL if none is left to settle). */
struct weft__waiter *weft__waitq_settle_one(struct weft_waitq *q, int result,
					    struct weft__wakelist *wl);

/* Under the lock: moves every waiter of q, settled with result, to wl. */
void weft__waitq_settle_all(struct weft_waitq *q, int result,
			    struct weft__wakelist *wl);
/* Under the lock: moves up to n of q's oldest waiters, settled with result,
 * to wl (appending in order). */
void weft__waitq_settle_n(struct weft_waitq *q, int n, int result,
			  struct weft__wakelist *wl);
/* Without the lock: waits out the aborts of wl's claimed waiters, then
 * wakes everything on wl. */
void weft__wakelist_wake(struct weft__wakelist *wl);

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
