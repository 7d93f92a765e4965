/*
 * Timers: the deadlines of tasks' current waits, in a min-heap per worker
 * (see timer.c for how they fire and how disarming works).
 */
#ifndef WEFT_RUNTIME_TIMER_H
#define WEFT_RUNTIME_TIMER_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

struct weft_task;
struct weft_worker;

/* A task's one timer: it waits for one thing at a time. */
struct weft_timer {
	_Atomic uint64_t armed; /* seq of its live heap entry, or 0 */
	_Atomic(struct weft_worker *) owner; /* the heap last armed in */
};

/* A heap entry, by value (see timer.c). */
struct weft_timer_entry {
	int64_t at;
	uint64_t order;
	struct weft_task *task;
	uint64_t seq;
};

/* A worker's timers. Its fields change only under lock; len is also read
 * without it, as a hint (atomically). */
struct weft_timer_heap {
	unsigned lock;                    /* a spinlock */
	struct weft_timer_entry *entries; /* min-heap by (at, order) */
	int64_t len, cap;
	_Atomic int64_t stale; /* disarmed entries still in it */
	uint64_t order;        /* ties between equal deadlines */
	/* Held by whoever fires the heap's due timers, across all its
	 * batches (timer.c says why); a mutex, as firing takes the tasks'
	 * wait_locks, first in the spinlocks' order. */
	pthread_mutex_t firing;
};

/* weft_now() + ns, saturated at WEFT_NO_DEADLINE (INT64_MAX): a time
 * past the end of the clock is none. Any thread. */
int64_t weft__from_now(int64_t ns);

/* Arms t's timer in the caller's worker's heap: at the absolute time at,
 * it aborts t's wait number seq with -ETIMEDOUT. Under t's wait_lock,
 * before that wait is published (wait.c). 0 or -ENOMEM. */
int weft__timer_arm(struct weft_task *t, int64_t at, uint64_t seq);
/* Disarms t's timer, if armed. */
void weft__timer_disarm(struct weft_task *t);
/* Fires w's due timers; returns the time to the next one (-1: none).
 * *fired: whether it fired any (a disarmed entry's is none). */
int64_t weft__timers_run(struct weft_worker *w, bool *fired);
/* Whether w's heap holds any entry (a hint, without its lock): relaxed,
 * as set_len stores it (arm's seq_cst store is for weft__timers_armed
 * below); a caller that acts on it takes the lock
 * (timers_run), weft_metrics shows it as a gauge. */
static inline int64_t weft__timers_pending(struct weft_timer_heap *h)
{
	return __atomic_load_n(&h->len, __ATOMIC_RELAXED);
}
/* The same count read seq_cst, for the monitor's side of the no-lost-arming
 * rule (monitor.h) against weft__timer_arm's seq_cst store. */
static inline int64_t weft__timers_armed(struct weft_timer_heap *h)
{
	return __atomic_load_n(&h->len, __ATOMIC_SEQ_CST);
}
/* When w's first entry is due, stale or not (WEFT_NO_DEADLINE: none). Under
 * the heap's lock: the monitor's side of the no-lost-arming rule for an
 * arm that makes a new first (monitor.h). */
int64_t weft__timers_first(struct weft_worker *w);
void weft__timers_init(struct weft_worker *w);
void weft__timers_free(struct weft_worker *w);

#endif
