/*
 * weft_sem: a counting semaphore (asyncio.Semaphore, BoundedSemaphore).
 *
 * state is one word: the free permits shifted left by one, with bit 0 set
 * while anyone waits. Uncontended acquire and release are one CAS each.
 *
 * Invariants:
 *  - WAITERS is set exactly when wq is non-empty; it changes only under
 *    wq.lock (set by a waiter about to link, cleared by whoever empties wq).
 *  - WAITERS set  =>  no free permits. Permits are added only by the
 *    fast release's CAS, which fails while WAITERS is set; a release that
 *    finds a waiter hands its permit straight to the oldest one. So a new
 *    acquirer never overtakes a waiter (FIFO), and permits are never lost
 *    or doubled: each release either adds one or settles one waiter with 0.
 *  - An aborted waiter was unlinked under wq.lock and took no permit.
 *  - A release adds a permit only with its last touch of s, the fast CAS:
 *    whoever takes the permit may free s at once.
 */
#include <errno.h>

#include "weft/sync.h"
#include "waitq.h"
#include "select.h"

#define WAITERS ((uintptr_t)1)
#define ONE ((uintptr_t)2)
/* Set in state only by a static initialiser given a count out of
 * 0..WEFT_SEM_MAX (a negative one, say; WEFT__SEM_STATE): permits << 1
 * never reaches it. */
#define OUT_OF_RANGE (~(UINTPTR_MAX >> 1))

static int init(struct weft_sem *s, long value, bool bounded)
{
	if (!s || value < 0 || value > WEFT_SEM_MAX)
		return -EINVAL;
	s->state = (uintptr_t)value << 1;
	s->bound = bounded ? (uintptr_t)value + 1 : 0;
	weft__waitq_init(&s->wq);
	return 0;
}

int weft_sem_init(struct weft_sem *s, long value)
{
	return init(s, value, false);
}

int weft_sem_init_bounded(struct weft_sem *s, long value)
{
	return init(s, value, true);
}

/* acq_rel: a permit taken acquires what its releaser did before giving
 * it (release). Failure acquire: the caller decides by the value. */
static inline bool cas_state(struct weft_sem *s, uintptr_t *old, uintptr_t new)
{
	return __atomic_compare_exchange_n(&s->state, old, new, false,
					   __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE);
}

int weft_sem_try_acquire(struct weft_sem *s)
{
	if (!s)
		return -EINVAL;
	/* relaxed: a first guess; the acq_rel CAS decides and orders. */
	uintptr_t v = __atomic_load_n(&s->state, __ATOMIC_RELAXED);
	if (__builtin_expect(v & OUT_OF_RANGE, 0))
		return -EINVAL;
	while (v >= ONE)
		if (cas_state(s, &v, v - ONE))
			return 0;
	return -EAGAIN;
}

/* The last waiter left: releases take the fast path again. */
static void sem_unlinked(struct weft_waitq *q)
{
	struct weft_sem *s = weft__container_of(q, struct weft_sem, wq);
	/* relaxed: the bit publishes no data. Under wq.lock; a release
	 * that still sees it takes the slow path, under that lock. */
	if (weft__waitq_empty(q))
		__atomic_fetch_and(&s->state, ~WAITERS, __ATOMIC_RELAXED);
}

static void sem_abort(struct weft__waiter *w, int reason)
{
	weft__waitq_abort_on(w->queue, w->queue, w, reason, sem_unlinked);
}

void weft__sem_unlink(struct weft_sem *s, struct weft__waiter *w)
{
	if (!weft__waitq_linked(&s->wq, w))
		return;
	weft__waitq_remove(&s->wq, w);
	sem_unlinked(&s->wq);
}

bool weft__sem_take_or_mark(struct weft_sem *s)
{
	/* relaxed: a first guess; the acq_rel CAS decides and orders. */
	uintptr_t v = __atomic_load_n(&s->state, __ATOMIC_RELAXED);
	for (;;) {
		if (v >= ONE) { /* a permit is free */
			if (cas_state(s, &v, v - ONE))
				return true;
			continue;
		}
		if (v & WAITERS || cas_state(s, &v, WAITERS))
			return false;
	}
}

int weft_sem_acquire(struct weft_sem *s)
{
	int r = weft_sem_try_acquire(s);
	if (r != -EAGAIN)
		return r;

	struct weft__waiter w;
	weft__waitq_prepare_as(&s->wq, &w, sem_abort, WEFT__WAIT_SEM, s);
	if ((r = weft__wait_begin(&w)))
		return r;
	weft__waitq_lock(&s->wq);
	if ((r = weft__waiter_state(&w)) != WEFT__WAITING) {
		weft__waitq_unlock(&s->wq);
		weft__wait_end(&w);
		return r;
	}
	if (weft__sem_take_or_mark(s)) { /* a permit came back meanwhile */
		weft__waitq_unlock(&s->wq);
		weft__wait_end(&w);
		return 0;
	}
	/* An abort now has to take wq.lock, so it finds w linked. */
	return weft__waitq_wait(&s->wq, &w);
}

/* The fast release: adds a permit, within max, while nobody waits.
 * Returns 0, -EOVERFLOW, or 1 if WAITERS is set (release_slow's case). */
static inline int add_permit(struct weft_sem *s, uintptr_t max)
{
	/* relaxed: a first guess; the acq_rel CAS decides and orders. */
	uintptr_t v = __atomic_load_n(&s->state, __ATOMIC_RELAXED);
	while (!(v & WAITERS)) {
		if ((v >> 1) >= max)
			return v & OUT_OF_RANGE ? -EINVAL : -EOVERFLOW;
		if (cas_state(s, &v, v + ONE))
			return 0;
	}
	return 1;
}

/*
 * WAITERS was seen: hands the permit to the oldest waiter. If no waiter is
 * left to take it (all left, or were a select's that had won elsewhere),
 * clears WAITERS and adds the permit with the fast CAS after unlocking
 * wq.lock, never under it: a fast acquirer could take the permit and free
 * s while this releaser still had wq.lock to unlock.
 */
static int release_slow(struct weft_sem *s, uintptr_t max)
{
	int r;
	do {
		weft__waitq_lock(&s->wq);
		struct weft__waiter *w = weft__waitq_settle_one(&s->wq, 0);
		/* None left, or the last one leaves now. release: pairs with
		 * the acq_rel CAS of the next fast release or acquire that
		 * sees the bit clear. */
		if (weft__waitq_empty(&s->wq))
			__atomic_fetch_and(&s->state, ~WAITERS,
					   __ATOMIC_RELEASE);
		weft__waitq_unlock(&s->wq);
		if (w) {
			weft__waiter_wake(w);
			return 0;
		}
	} while ((r = add_permit(s, max)) > 0); /* a waiter came again */
	return r;
}

/* The most permits s may hold: bound - 1, or WEFT_SEM_MAX if unbounded
 * (bound 0 wraps past it). A bound past WEFT_SEM_MAX + 1 is a static
 * initialiser's given a count out of range: capped, it is below the
 * OUT_OF_RANGE state, which add_permit then refuses with -EINVAL (as the
 * bound, n + 1 of a negative n, it let releases add permits to that state
 * until it wrapped to a valid one). */
static inline uintptr_t max_permits(const struct weft_sem *s)
{
	uintptr_t max = s->bound - 1;
	return max < (uintptr_t)WEFT_SEM_MAX ? max : (uintptr_t)WEFT_SEM_MAX;
}

int weft_sem_release(struct weft_sem *s)
{
	if (!s)
		return -EINVAL;
	uintptr_t max = max_permits(s);
	if (max == 0)
		return -EOVERFLOW; /* a bounded semaphore of 0 never gives */
	int r = add_permit(s, max);
	return r > 0 ? release_slow(s, max) : r;
}

long weft_sem_value(const struct weft_sem *s)
{
	if (!s)
		return -EINVAL;
	/* acquire: pairs with the releases' RMWs; a snapshot. */
	uintptr_t v = __atomic_load_n(&s->state, __ATOMIC_ACQUIRE);
	return v & OUT_OF_RANGE ? -EINVAL : (long)(v >> 1);
}
