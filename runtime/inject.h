/*
 * A first-in first-out queue of tasks that any thread may push to and any
 * worker take from: the global injection queue (tasks spawned or woken
 * outside the workers, and the overflow of full deques), and each worker's
 * ready queue (tasks its scheduler woke: runq.h).
 *
 * Producers never block each other for long: a push is one CAS onto a
 * Treiber stack (any number of foreign threads may push at once). Workers
 * consume under a spinlock only among themselves: the first to find the FIFO
 * side empty swaps the whole stack out and reverses it, so the queue stays
 * first-in first-out. The stack is only ever emptied by an exchange, never
 * popped one element at a time, so there is no ABA problem.
 */
#ifndef WEFT_RUNTIME_INJECT_H
#define WEFT_RUNTIME_INJECT_H

#include <stdatomic.h>
#include <stdbool.h>

struct weft_task;

struct weft_inject {
	_Atomic(struct weft_task *) incoming; /* Treiber stack, newest first */
	_Atomic long incoming_len; /* for weft_metrics: on the line the push
				     * writes anyway */
	char pad[64 - sizeof(void *) - sizeof(long)];
	unsigned lock;                 /* consumers only; a spinlock */
	struct weft_task *head, *tail; /* FIFO side, under lock */
	_Atomic long fifo_len;
	_Atomic bool draining; /* set by a drain, under lock (inject.c) */
};

void weft__inject_init(struct weft_inject *q);
/* Pushes the list first..last (linked through ->next). */
void weft__inject_push_list(struct weft_inject *q, struct weft_task *first,
			    struct weft_task *last);
void weft__inject_push(struct weft_inject *q, struct weft_task *t);
/* Pops up to max tasks as a list (linked through ->next); NULL if empty. */
struct weft_task *weft__inject_pop(struct weft_inject *q, int max, int *n);
/* A hint, for whether a pop is worth its lock. */
bool weft__inject_empty(struct weft_inject *q);
/* Whether q is empty for a worker deciding to sleep: also not while a
 * drain holds the tasks it took. */
bool weft__inject_empty_for_sleep(struct weft_inject *q);
/* Internal test interface, not API: if set, called by a drain between
 * its exchange of the pushed stack and its count of the tasks taken. */
extern void (*weft__inject_after_exchange)(struct weft_inject *q);
/* Tasks queued, for weft_metrics: a moment's count, not a snapshot. */
long weft__inject_len(struct weft_inject *q);

#endif
