/*
 * Workers: the threads that run tasks, and the runtime they share.
 *
 * Each worker owns four of the places a runnable task can be (runq.h: a
 * run-next slot, a deque of spawned tasks, a deque of woken ones, a list of
 * yielded ones), an I/O driver (driver.h), a timer heap (timer.h), and
 * caches of free task structs and stacks. Its thread runs the scheduler loop of
 * worker.c: pick a task (runq.h), else steal (steal.h), else sleep among
 * the idle workers (idle.h).
 */
#ifndef WEFT_RUNTIME_WORKER_H
#define WEFT_RUNTIME_WORKER_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "context.h"
#include "crowd.h"
#include "deque.h"
#include "driver.h"
#include "idle.h"
#include "inject.h"
#include "metrics.h"
#include "monitor.h"
#include "timer.h"

struct weft_task;
struct weft_task_cache;
struct weft_stack_cache;

/* Why a task switched back to its scheduler. */
enum weft_switch_reason { SWITCH_PARK, SWITCH_YIELD, SWITCH_EXIT };

struct __attribute__((aligned(64))) weft_worker {
	/* Places 2 and 3 of runq.h, which says who may take from each. */
	struct weft_deque deque;      /* spawned and requeued */
	struct weft_deque woken;      /* woken while run-next was taken */
	_Atomic bool stuck;           /* set by the monitor, reset by
					  * thieves and by the worker idling */
	_Atomic bool runnext_spawned; /* run-next holds a spawn, not a wake */
	/* The low bits of the tick of maintain's last harvest and timer
	 * look (worker.c's since): in what was a hole, as every scheduler
	 * pass reads them. */
	uint16_t harvested_at, timers_checked_at;
	_Atomic(struct weft_task *) runnext; /* place 1 of runq.h */
	_Atomic uint64_t ticks; /* tasks run so far; thieves read it */
	/* The running task's cooperative budget (coop.h), on the line of
	 * the ticks it is checked against. */
	uint64_t coop_tick; /* the tick its run began at */
	unsigned coop_used; /* its I/O calls since */
	uint64_t spawned;   /* for task ids */
	int id;
	bool searching;
	bool sleeping;         /* in the idle set, under idle.mu */
	bool turn_ready_first; /* at the next global queue's turn */
	int runnext_streak;    /* run-next picks in a row */
	int global_countdown;  /* picks until the global queue's turn */
	uint64_t rng;
	struct weft_relief {    /* looks at other workers: steal.h */
		uint64_t at;    /* own ticks at the last look */
		uint64_t ticks; /* the victim's ticks, unmoved since */
		uint64_t since; /* weft__cycles() */
		int victim;
		bool seen; /* ticks is the victim's */
	} relief;
	/* Place 5 of runq.h: tasks that yielded, oldest first. Filled and
	 * taken by the owner, emptied by the monitor when a task keeps the
	 * worker; changed only under yielded_lock (a spinlock), head read
	 * without it as a hint. */
	unsigned yielded_lock;
	_Atomic(struct weft_task *) yielded_head;
	struct weft_task *yielded_tail;
	/* Place 4 of runq.h: tasks the scheduler woke (I/O, timers). */
	struct weft_inject ready;

	struct weft_ctx sched_ctx;
	struct weft_task *current;
	enum weft_switch_reason reason;
	void (*after_switch)(void *); /* for the scheduler, after a park */
	void *after_arg;
	void (*direct_unlock)(
		void *); /* for the next task, after a direct one */
	void *direct_arg;
	/* The task a direct switch saves, from just before current names
	 * the next one until the next one runs: an overflow while its
	 * registers go onto its stack is its own (overflow.c). */
	struct weft_task *switching_out;

	struct weft__driver *driver; /* made and closed by the worker,
					  * freed by weft_run */
	/* Its io_uring driver, closed, when weft_run started the workers
	 * again on epoll (run.c): freed with the runtime. */
	struct weft__driver *dropped_driver;
	struct weft_timer_heap timers;

	/* Tasks counted here, by this worker only: an RMW on its own line,
	 * not on one every worker shares (see weft__live_tasks, run.h). */
	_Atomic uint64_t tasks_spawned, tasks_finished;

	struct weft__worker_stats stats; /* lines of their own */

	struct weft_task_cache *task_cache;
	struct weft_stack_cache *stack_cache;
	pthread_t thread;
	pid_t tid; /* for the monitor's reading of its schedstat (crowd.h) */
	/* SIGURG blocked on its thread by the stall capture's handler, until
	 * a pick unblocks it again (stall.h's weft__stall_unmask); whether
	 * the handler left the program's SIGURG for that pick to send on
	 * (ThreadSanitizer builds only: stall.c's pass_on); and when a pick
	 * last found one pending (0: never). */
	_Atomic bool urg_masked;
	_Atomic bool urg_owed;
	int64_t urg_tried_at;
	void *altstack;
	const void *stack_bottom; /* the scheduler's own stack */
	size_t stack_size;
#ifdef WEFT_TSAN
	void *tsan_fiber;
#endif
};

enum { RT_RUNNING, RT_DRAINING, RT_STOPPING };

struct weft_runtime {
	int nworkers;
	enum weft_io_kind io;  /* the workers' driver */
	bool sock_on_ring;     /* io_uring: socket attempts are SQEs */
	bool io_may_fall_back; /* auto chose io_uring: epoll if refused */
	bool fp_per_task;      /* cfg.fp_modes is WEFT_FP_PER_TASK */
	struct weft_worker *workers;
	size_t stack_size;
	struct weft_inject inject;
	struct weft_idle idle;
	struct weft_monitor monitor;
	struct weft__crowd crowd;
	_Atomic int state;
	/* Tasks spawned off the workers; the workers count theirs, and every
	 * task's finish (tasks finish on workers), in struct weft_worker. */
	_Atomic uint64_t foreign_spawned;
	_Atomic uint64_t next_id;

	pthread_mutex_t mu; /* guards the fields below */
	pthread_cond_t cv;
	int started; /* workers that came up */
	int init_error;
	const char *init_why;
	int go; /* 1: workers run, -1: they exit */
	bool all_done;
};

extern struct weft_runtime *_Atomic weft__rt;

/* The scheduler loop of a worker thread. */
void *weft__worker_main(void *arg);

/* Wakes w from its sleep in weft__worker_main (idle.c rouses it). */
void weft__worker_unpark(struct weft_worker *w);

#endif
