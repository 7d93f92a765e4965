/*
 * The runtime's side of weft_metrics: per-worker counters and the sampled
 * scheduling-latency histogram (see include/weft/metrics.h).
 *
 * Invariants:
 *  - Only the owning worker writes its struct weft__worker_stats, with a
 *    relaxed load and a relaxed store (no read-modify-write: no lock
 *    prefix, and the line stays in the owner's cache); readers on other
 *    threads load relaxed. A reader needs no ordering with anything else:
 *    each counter is read for its own value.
 *  - t->ready_at is 0 unless the transition that made t runnable was
 *    sampled; it is written before t is published to a run queue and read
 *    by the worker that took t from there (the queue's release/acquire
 *    orders the two), and reset by that worker. So it is 0 while t runs.
 *  - Exact mode (weft__latency_mask == 0): every transition that makes a
 *    task runnable marks it (spawn, wake, yield, direct or not), and every
 *    run that task_runs counts checks it, so each run finds a mark and the
 *    histogram's total equals task_runs once no task is between the two.
 *
 * The clock is the time-stamp counter, read inline (no call: a call on the
 * switch path would make the compiler save more registers on every
 * switch, not only on sampled ones), converted to nanoseconds with a
 * factor weft_run measures against CLOCK_MONOTONIC as it starts. The
 * counter is invariant and synchronised across cores on the x86-64 CPUs
 * weft supports (constant_tsc, nonstop_tsc); a negative difference, from
 * a core whose counter lags, counts as under 2 ns.
 */
#ifndef WEFT_RUNTIME_METRICS_H
#define WEFT_RUNTIME_METRICS_H

#include <stdatomic.h>
#include <stdint.h>
#include "cycles.h"

#include "weft/metrics.h"
#include "weft/task.h"
#include "weft/time.h"

struct __attribute__((aligned(64))) weft__worker_stats {
	_Atomic uint64_t task_runs; /* the scheduler's runs and direct
					* switches: counted apart from ticks,
					* which also count empty picks, so a
					* reader never sees a round it cannot
					* classify yet */
	_Atomic uint64_t steals, tasks_stolen;
	_Atomic uint64_t parks, unparks;
	_Atomic uint64_t shares; /* for tests: woken batches it offered to an
				  * idle worker (worker.c's share_woken) */
	_Atomic uint64_t latency[WEFT_LATENCY_BUCKETS];
};

/* Adds n to an owner-written counter: a relaxed load and store do an
 * add's work, as only the owner writes it. Relaxed: readers take each
 * counter as a gauge (metrics.c says where an order matters). */
static inline void weft__stat_add(_Atomic uint64_t *c, uint64_t n)
{
	atomic_store_explicit(c,
			      atomic_load_explicit(c, memory_order_relaxed) + n,
			      memory_order_relaxed);
}

/* A test's hook, called by every metrics reader between its reads of a
 * worker's completed and submitted I/O counts: a test that has an
 * operation submitted and completed meanwhile can check that no reading
 * counts it completed only. */
extern void (*weft__metrics_io_hook)(void);

/* Nanoseconds per time-stamp-counter tick, times 2^32. Set by
 * weft__latency_start() before the workers start (pthread_create
 * orders it before their reads), read-only afterwards. */
extern uint64_t weft__tsc_mult;

/* Which runnable transitions are timed: those whose number (any
 * per-worker sequence the caller has at hand) has no bit of the mask set.
 * WEFT_LATENCY_SAMPLE - 1 by default, 0 in exact mode: every one. Set by
 * weft__latency_start() before weft__rt is published and the workers are
 * created (the seq_cst store and pthread_create order it before every
 * read), read-only while the runtime runs. */
extern uint64_t weft__latency_mask;

/* The histogram's mode from cfg and $WEFT_LATENCY, as a mask: >= 0, or
 * -EINVAL for a bad mode. */
int64_t weft__latency_config(const struct weft_config *cfg);

/* Sets the mask and measures weft__tsc_mult (about 20 us). */
void weft__latency_start(uint64_t mask);

/* Marks t runnable for the histogram if the transition numbered count is
 * sampled. One test and a predictable branch when it is not. */
#define weft__latency_mark(t, count)                                           \
	do {                                                                   \
		if (__builtin_expect((weft__latency_mask & (count)) == 0, 0))  \
			(t)->ready_at = (int64_t)weft__cycles();               \
	} while (0)

/* Marks t runnable in exact mode only: for the transitions too frequent
 * to number (direct yields), sampled otherwise by their slower kin. */
#define weft__latency_mark_exact(t)                                            \
	do {                                                                   \
		if (__builtin_expect(weft__latency_mask == 0, 0))              \
			(t)->ready_at = (int64_t)weft__cycles();               \
	} while (0)

/* About to run t: if it was marked, counts how long it waited in s's
 * histogram, and clears the mark. One compare when not marked. */
#define weft__latency_check(s, t)                                              \
	do {                                                                   \
		if (__builtin_expect((t)->ready_at != 0, 0)) {                 \
			/* read again: the compare stays one instruction */    \
			weft__latency_count(                                   \
				(s), *(volatile int64_t *)&(t)->ready_at);     \
			(t)->ready_at = 0;                                     \
		}                                                              \
	} while (0)

/* A duration in time-stamp-counter ticks, in nanoseconds. */
static inline uint64_t weft__tsc_ns(uint64_t ticks)
{
	return (uint64_t)(((unsigned __int128)ticks * weft__tsc_mult) >> 32);
}

static inline void weft__latency_count(struct weft__worker_stats *s,
				       int64_t ready_at)
{
	int64_t ticks = (int64_t)weft__cycles() - ready_at;
	uint64_t ns = ticks > 0 ? weft__tsc_ns((uint64_t)ticks) : 0;
	int b = ns < 2 ? 0 : 63 - __builtin_clzll(ns);
	if (b >= WEFT_LATENCY_BUCKETS)
		b = WEFT_LATENCY_BUCKETS - 1;
	weft__stat_add(&s->latency[b], 1);
}

#endif
