/*
 * Idle workers: who sleeps, who searches (after Tokio's idle.rs).
 *
 * A worker with nothing to run first searches (steals); at most half the
 * awake workers search at once, so a burst of wake-ups does not stampede.
 * A searcher that finds work and was the last searcher wakes one sleeper to
 * keep looking. A producer wakes a sleeper only when nobody is searching.
 *
 * No lost wake-up: a producer publishes work, issues a seq_cst fence and
 * reads `searching` and `sleeping`; a worker going to sleep decrements
 * `searching` and increments `sleeping` with seq_cst RMWs, then re-checks
 * every queue. One of the two sees the other. The fence (not an RMW, which
 * would make every spawn write this shared line) orders only atomics, so
 * ThreadSanitizer's blindness to fences hides no race on plain data: the
 * tasks themselves are handed over through the queues' release/acquire.
 */
#ifndef WEFT_RUNTIME_IDLE_H
#define WEFT_RUNTIME_IDLE_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

struct weft_idle {
	_Atomic int searching;
	_Atomic int sleeping;
	pthread_mutex_t mu;
	int *sleepers;    /* ids of sleeping workers, under mu */
	int nsleepers;
};

#endif
