/*
 * Workers: the threads that run tasks, and the runtime they share.
 *
 * Each worker owns a Chase-Lev deque of spawned tasks, a run-next slot for
 * the task its running task woke or spawned last (message-passing locality:
 * that task runs next, on a warm cache), a second deque for the woken tasks
 * that slot displaced, a FIFO of tasks that yielded or were woken by timers
 * and I/O, an I/O driver (driver.h), a timer heap, and caches of free task structs
 * and stacks.
 */
#ifndef WEFT_RUNTIME_WORKER_H
#define WEFT_RUNTIME_WORKER_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "context.h"
#include "deque.h"
#include "idle.h"
#include "inject.h"
#include "monitor.h"
#include "driver.h"

struct weft_task;
struct weft_timer_entry;
struct weft_task_cache;
struct weft_stack_cache;

/* Why a task switched back to its scheduler. */
enum weft_switch_reason { SWITCH_PARK, SWITCH_YIELD, SWITCH_EXIT };

struct __attribute__((aligned(64))) weft_worker {
	struct weft_deque deque;         /* spawned and requeued: any may steal */
	/* Tasks woken by the running task while run-next was taken. Others
	 * take them (and a woken run-next task) only in a burst, or once the
	 * monitor found this worker stuck: a pipeline of tasks passing
	 * messages stays on one warm core (see monitor.h). */
	struct weft_deque woken;
	_Atomic bool stuck;              /* set by the monitor, reset by
					  * thieves and by the worker idling */
	_Atomic bool runnext_spawned;    /* run-next holds a spawn, not a wake */
	_Atomic(struct weft_task *) runnext;
	_Atomic uint64_t ticks;          /* tasks run so far; thieves read it */
	uint64_t spawned;                /* for task ids */
	int id;
	bool searching;
	bool sleeping;                   /* in the idle set, under idle.mu */
	int runnext_streak;              /* run-next picks in a row */
	int global_countdown;            /* picks until the global queue's turn */
	uint64_t rng;
	/* Tasks that yielded or that the scheduler itself woke (timers, I/O
	 * completions), first-in first-out as asyncio wakes them. Private;
	 * moved to the deque in batches when it runs dry. */
	struct weft_task *fifo_head, *fifo_tail;

	struct weft_ctx sched_ctx;
	struct weft_task *current;
	enum weft_switch_reason reason;
	void (*after_switch)(void *);    /* for the scheduler, after a park */
	void *after_arg;
	void (*direct_unlock)(void *);   /* for the next task, after a direct one */
	void *direct_arg;

	struct weft__driver *driver;     /* made and freed by the worker */
	unsigned timer_lock;
	struct weft_timer_entry *heap;   /* timer min-heap by at */
	int64_t heap_len, heap_cap;
	_Atomic int64_t heap_stale;      /* disarmed entries still in it */
	uint64_t timer_order;            /* ties between equal deadlines */

	/* Tasks counted here, by this worker only: an RMW on its own line,
	 * not on one every worker shares (see weft__live_tasks). */
	_Atomic uint64_t tasks_spawned, tasks_finished;

	struct weft_task_cache *task_cache;
	struct weft_stack_cache *stack_cache;
	pthread_t thread;
	void *altstack;
	const void *stack_bottom;        /* the scheduler's own stack */
	size_t stack_size;
#ifdef WEFT_TSAN
	void *tsan_fiber;
#endif
};

enum { RT_RUNNING, RT_DRAINING, RT_STOPPING };

struct weft_runtime {
	int nworkers;
	enum weft_io_kind io;            /* the workers' driver */
	struct weft_worker *workers;
	size_t stack_size;
	struct weft_inject inject;
	struct weft_idle idle;
	struct weft_monitor monitor;
	_Atomic int state;
	/* Tasks spawned and finished off the workers; the workers count
	 * theirs in struct weft_worker. */
	_Atomic uint64_t foreign_spawned, foreign_finished;
	_Atomic uint64_t next_id;

	pthread_mutex_t mu;              /* guards the fields below */
	pthread_cond_t cv;
	int started;                     /* workers that came up */
	int init_error;
	const char *init_why;
	int go;                          /* 1: workers run, -1: they exit */
	bool all_done;
};

extern struct weft_runtime *_Atomic weft__rt;

/* The worker the caller runs on, or NULL. Not inlinable: a task may resume
 * on another thread, and the compiler must not reuse a thread-local address
 * computed before a switch. */
struct weft_worker *weft__self(void);

/* Pushes to the worker's deque, spilling half of it to the global queue
 * when full. Owner only. */
void weft__worker_push(struct weft_worker *w, struct weft_task *t);

/* Puts t in the run-next slot of w, whose running task spawned it (then the
 * task there before goes to the deque) or woke it (to the woken deque).
 * Returns true if a task was there before. */
bool weft__worker_run_next(struct weft_worker *w, struct weft_task *t,
			   bool spawned);

/* Yields w's running task: it goes to the back of w's FIFO. */
void weft__worker_yield(struct weft_worker *w);

/* The scheduler loop of a worker thread. */
void *weft__worker_main(void *arg);

/* Tasks spawned and not yet finished. Exact only once it reads 0 (see
 * run.c), which is all shutdown needs. */
int64_t weft__live_tasks(struct weft_runtime *rt);

/* Wakes a worker to look for work, unless one is already looking. */
void weft__notify_work(struct weft_runtime *rt);

/* Timers: see timer.c. */
int weft__timer_arm(struct weft_task *t, int64_t at, uint64_t seq);
void weft__timer_disarm(struct weft_task *t);
/* Fires due timers; returns the time to the next one (-1: none). */
int64_t weft__timers_run(struct weft_worker *w);
void weft__timers_free(struct weft_worker *w);

#endif
