/* The Chase-Lev deque: see deque.h for the orderings and invariants. */
#include <stddef.h>

#include "deque.h"

#define MASK (WEFT_DEQUE_CAP - 1)

void weft__deque_init(struct weft_deque *d)
{
	atomic_init(&d->top, 0);
	atomic_init(&d->bottom, 0);
	d->top_seen = 0;
	for (int i = 0; i < WEFT_DEQUE_CAP; i++)
		atomic_init(&d->buf[i], NULL);
}

bool weft__deque_full(struct weft_deque *d)
{
	/* Relaxed: bottom is written by the owner only, which this is. */
	int64_t b = atomic_load_explicit(&d->bottom, memory_order_relaxed);
	if (b - d->top_seen < WEFT_DEQUE_CAP)
		return false;
	/* Acquire, pairing with the release half of a thief's seq_cst CAS on
	 * top: the thief read its slot before its CAS, so that read happens
	 * before the push that overwrites the slot. */
	d->top_seen = atomic_load_explicit(&d->top, memory_order_acquire);
	return b - d->top_seen >= WEFT_DEQUE_CAP;
}

bool weft__deque_push(struct weft_deque *d, struct weft_task *t)
{
	if (weft__deque_full(d))
		return false;
	/* Relaxed: only the owner writes bottom. */
	int64_t b = atomic_load_explicit(&d->bottom, memory_order_relaxed);
	/* Relaxed: published by the release store of bottom below. */
	atomic_store_explicit(&d->buf[b & MASK], t, memory_order_relaxed);
	/* Release: publishes the slot, and the task it points to, to thieves,
	 * whose seq_cst load of bottom acquires it. */
	atomic_store_explicit(&d->bottom, b + 1, memory_order_release);
	return true;
}

struct weft_task *weft__deque_take(struct weft_deque *d)
{
	/* Relaxed: only the owner writes bottom. */
	int64_t b = atomic_load_explicit(&d->bottom, memory_order_relaxed) - 1;
	/* seq_cst store then seq_cst load: the paper's store; fence; load. A
	 * thief either sees the smaller bottom or we see its larger top. */
	atomic_store_explicit(&d->bottom, b, memory_order_seq_cst);
	int64_t t = atomic_load_explicit(&d->top, memory_order_seq_cst);
	if (t > b) { /* empty */
		/* Relaxed: restores the value thieves may already have read;
		 * no slot changes with it, so it publishes nothing. */
		atomic_store_explicit(&d->bottom, b + 1, memory_order_relaxed);
		return NULL;
	}
	/* Relaxed: the owner wrote this slot itself; thieves only read. */
	struct weft_task *x =
		atomic_load_explicit(&d->buf[b & MASK], memory_order_relaxed);
	if (t == b) { /* the last one: race the thieves for it */
		/* A lost CAS only drops x, reading nothing: relaxed. */
		if (!atomic_compare_exchange_strong_explicit(
			    &d->top, &t, t + 1, memory_order_seq_cst,
			    memory_order_relaxed))
			x = NULL;
		/* Relaxed: as in the empty case; top moved past the slot
		 * (seq_cst CAS), which is what thieves decide by. */
		atomic_store_explicit(&d->bottom, b + 1, memory_order_relaxed);
	}
	return x;
}

struct weft_task *weft__deque_steal(struct weft_deque *d)
{
	int64_t t = atomic_load_explicit(&d->top, memory_order_seq_cst);
	int64_t b = atomic_load_explicit(&d->bottom, memory_order_seq_cst);
	if (t >= b)
		return WEFT_STEAL_EMPTY;
	/* Relaxed: the seq_cst load of bottom above acquired the push that
	 * filled the slot; if the slot was reused meanwhile, top moved, and
	 * the CAS below fails (relaxed: it reads nothing) and discards x. */
	struct weft_task *x =
		atomic_load_explicit(&d->buf[t & MASK], memory_order_relaxed);
	if (!atomic_compare_exchange_strong_explicit(&d->top, &t, t + 1,
						     memory_order_seq_cst,
						     memory_order_relaxed))
		return WEFT_STEAL_RETRY;
	return x;
}
