/*
 * Idle workers: who sleeps, who searches (after Tokio's idle.rs).
 *
 * A worker with nothing to run first searches (steals), if fewer than half
 * the awake workers search (so 2 of 3 may), so that a burst of wake-ups
 * does not stampede.
 * A searcher that finds work and was the last searcher wakes one sleeper to
 * keep looking. A producer wakes a sleeper only when nobody is searching.
 *
 * No lost wake-up: a producer publishes work, issues a seq_cst fence and
 * reads `searching` and `sleeping`; a worker going to sleep decrements
 * `searching` and increments `sleeping` with seq_cst RMWs, issues a seq_cst
 * fence, then re-checks every queue. One of the two sees the other (the
 * store-buffering pattern, forbidden between two seq_cst fences; the RMWs
 * alone would not keep the re-check's relaxed loads after them on ARM).
 * A worker barred from searching whose re-check finds work sleeps all the
 * same while a worker searches: it is a producer of what it saw, and reads
 * `searching` after a fence as a producer does (weft__idle_searcher_covers).
 * The producer's fence (not an RMW, which would make every spawn write
 * this shared line) orders only atomics, so ThreadSanitizer's blindness to
 * fences hides no race on plain data: the tasks themselves are handed over
 * through the queues' release/acquire.
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
	int *sleepers; /* ids of sleeping workers, under mu */
	int nsleepers;
};

struct weft_runtime;
struct weft_worker;

/* Wakes a worker to look for work, unless one is already looking or none
 * sleeps. Returns whether it woke one. */
bool weft__notify_work(struct weft_runtime *rt);

/* w, out of local work, becomes a searcher if another worker is awake and
 * fewer than half the awake workers search; false: it should not. true if
 * it already searched. */
bool weft__idle_start_search(struct weft_runtime *rt, struct weft_worker *w);

/* Searcher w found work: if it was the last searcher, another is woken to
 * keep looking. */
void weft__idle_end_search(struct weft_runtime *rt, struct weft_worker *w);

/* w stops searching, if it was, and joins the sleepers. The caller then
 * re-checks every queue before it sleeps (the no-lost-wake-up rule). */
void weft__idle_enter(struct weft_runtime *rt, struct weft_worker *w);

/* w, barred from searching (weft__idle_start_search said no), found work
 * in its re-check after weft__idle_enter: whether it may sleep anyway.
 * Yes while a worker searches: that work is not its own (its own places
 * were empty, and only it fills them), it may not steal it, and the
 * searchers answer for it, as they do for a producer's that saw them
 * (notify_work). Spinning through the park path until they took it only
 * took a CPU from them. */
bool weft__idle_searcher_covers(struct weft_runtime *rt);

/* w leaves the sleepers, unless a notifier took it out already; returns
 * whether one had (the worker was unparked, for weft_metrics). */
bool weft__idle_leave(struct weft_runtime *rt, struct weft_worker *w);

#endif
