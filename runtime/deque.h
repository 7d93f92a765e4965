/*
 * The Chase-Lev work-stealing deque, fixed capacity, with the C11 orderings
 * of Lê, Pop, Cohen and Zappa Nardelli (PPoPP 2013).
 *
 * The owner pushes and takes at the bottom; thieves steal at the top. The
 * fences of the paper are folded into the accesses they order (a release
 * store of bottom in push, seq_cst bottom/top accesses in take and steal)
 * because ThreadSanitizer does not model atomic_thread_fence. On x86-64
 * that is not the paper's code (gcc 12 and clang 14, objdump): push is the
 * same (plain movs), but take's seq_cst store of bottom is one xchg where
 * the paper's store and fence are a mov and an mfence (gcc: lock or), and
 * steal's loads of top and bottom are two plain movs with no fence between
 * them where the paper has one: x86's seq_cst mapping fences on the store
 * side only (take's xchg), and x86 never reorders two loads.
 *
 * Invariants:
 *  - top only grows, and only by a successful CAS (a thief, or the owner
 *    taking the last element); bottom is written only by the owner.
 *  - Slots [top, bottom) hold the queued tasks; a slot is overwritten only
 *    after top has moved past it, so a thief whose CAS on top succeeds read
 *    a task nobody else got.
 *  - Capacity is fixed: push fails when full and the caller spills to the
 *    global queue, so there is no array to grow or reclaim.
 */
#ifndef WEFT_RUNTIME_DEQUE_H
#define WEFT_RUNTIME_DEQUE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#define WEFT_DEQUE_CAP 256

struct weft_task;

struct weft_deque {
	_Atomic int64_t top;
	char pad0[64 - sizeof(int64_t)];
	_Atomic int64_t bottom;
	/* The owner's last reading of top, a lower bound (top only grows):
	 * a push re-reads top, a line the thieves write, only when this says
	 * the deque may be full. */
	int64_t top_seen;
	char pad1[64 - 2 * sizeof(int64_t)];
	_Atomic(struct weft_task *) buf[WEFT_DEQUE_CAP];
};

void weft__deque_init(struct weft_deque *d);
/* Owner only. false if full. */
bool weft__deque_push(struct weft_deque *d, struct weft_task *t);
/* Owner only. NULL if empty. */
struct weft_task *weft__deque_take(struct weft_deque *d);

#define WEFT_STEAL_EMPTY ((struct weft_task *)0)
#define WEFT_STEAL_RETRY ((struct weft_task *)1)
/* Any thread. A task, EMPTY, or RETRY when it lost a race. */
struct weft_task *weft__deque_steal(struct weft_deque *d);

/* Owner only: true if a push would fail. */
bool weft__deque_full(struct weft_deque *d);

/* Approximate length, for heuristics only. Relaxed: a caller that acts on
 * it takes a task through take or steal, which order what they hand over;
 * one that must not miss a push (the idle re-check) fences first (idle.c). */
static inline int64_t weft__deque_len(struct weft_deque *d)
{
	int64_t b = atomic_load_explicit(&d->bottom, memory_order_relaxed);
	int64_t t = atomic_load_explicit(&d->top, memory_order_relaxed);
	return b > t ? b - t : 0;
}

/* The index of the oldest task: it moves when that task leaves. For
 * heuristics only (the monitor's): relaxed, it orders nothing. */
static inline int64_t weft__deque_top(struct weft_deque *d)
{
	return atomic_load_explicit(&d->top, memory_order_relaxed);
}

#endif
