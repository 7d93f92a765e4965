/*
 * weft_barrier: wait until n parties arrive (asyncio.Barrier).
 *
 * Invariants:
 *  - count == the number of linked waiters, under wq.lock; it stays below
 *    parties: the arrival that would make it parties releases everyone
 *    (settling them with 0 under the lock) and resets it to 0 in the same
 *    critical section, so the next round starts at once and a fast task
 *    cannot slip into the round it just left.
 *  - A waiter that is cancelled or times out leaves: it is unlinked and
 *    count drops, so the others still wait for parties arrivals.
 *  - abort/reset settle every waiter with -EPIPE; while broken, nobody is
 *    ever linked.
 */
#include <errno.h>

#include "weft/sync.h"
#include "waitq.h"

int weft_barrier_init(struct weft_barrier *b, unsigned parties)
{
	if (!b || !parties)
		return -EINVAL;
	b->parties = parties;
	b->count = 0;
	b->broken = false;
	weft__waitq_init(&b->wq);
	return 0;
}

/* An aborted waiter no longer counts as arrived. */
static void barrier_unlinked(struct weft_waitq *q)
{
	struct weft_barrier *b = weft__container_of(q, struct weft_barrier,
						    wq);
	__atomic_store_n(&b->count, b->count - 1, __ATOMIC_RELAXED);
}

static void barrier_abort(struct weft__waiter *w, int reason)
{
	weft__waitq_abort_on(w->queue, w->queue, w, reason, barrier_unlinked);
}

int weft_barrier_wait(struct weft_barrier *b)
{
	if (!b || !b->parties)
		return -EINVAL;
	struct weft__waiter w;
	int r;
	weft__waitq_prepare(&b->wq, &w, barrier_abort);
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
	unsigned index = b->count;
	if (index + 1 == b->parties) {
		struct weft__wakelist wl = WEFT__WAKELIST_INIT;
		weft__waitq_settle_all(&b->wq, 0, &wl);
		__atomic_store_n(&b->count, 0, __ATOMIC_RELAXED);
		weft__waitq_unlock(&b->wq);
		weft__wait_end(&w);
		weft__wakelist_wake(&wl);
		return (int)index;
	}
	__atomic_store_n(&b->count, index + 1, __ATOMIC_RELAXED);
	w.value = index;
	r = weft__waitq_wait(&b->wq, &w);
	return r ? r : (int)w.value;
}

static int wake_all(struct weft_barrier *b, bool broken)
{
	if (!b)
		return -EINVAL;
	struct weft__wakelist wl = WEFT__WAKELIST_INIT;
	weft__waitq_lock(&b->wq);
	weft__waitq_settle_all(&b->wq, -EPIPE, &wl);
	__atomic_store_n(&b->count, 0, __ATOMIC_RELAXED);
	__atomic_store_n(&b->broken, broken, __ATOMIC_RELAXED);
	weft__waitq_unlock(&b->wq);
	weft__wakelist_wake(&wl);
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
	return (int)__atomic_load_n(&b->count, __ATOMIC_RELAXED);
}

int weft_barrier_broken(const struct weft_barrier *b)
{
	if (!b)
		return -EINVAL;
	return __atomic_load_n(&b->broken, __ATOMIC_RELAXED);
}
