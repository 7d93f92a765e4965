/*
 * How a task leaves its worker and comes back: park, yield and ready, the
 * scheduler's side of waiting (wait.h).
 *
 * Park and yield switch straight to the owner's next task when there is one
 * (the direct switch: one switch instead of two through the scheduler),
 * else to the scheduler. A parking task's unlock runs once its registers
 * are saved: on the scheduler's stack, or first thing in the task switched
 * to directly (Go's gopark runs it on g0).
 */
#ifndef WEFT_RUNTIME_PARK_H
#define WEFT_RUNTIME_PARK_H

#include <stdbool.h>

struct weft_task;
struct weft_worker;

/* Switches the current task out; unlock(arg) runs once its registers are
 * saved. The task runs again only after someone passes it to
 * weft__task_ready. */
void weft__task_park(void (*unlock)(void *), void *arg);

/* Makes a parked or new task runnable: on the caller's worker's run-next
 * slot when a task of it wakes t, on its yielded list when its scheduler
 * does (timers, I/O), on the global queue from a plain thread (runq.h). */
void weft__task_ready(struct weft_task *t);

/* While set, the calling plain thread's wakes go to this worker's ready
 * queue, not to the global queue: the monitor sets it as it fires the due
 * timers of a worker that a task keeps (monitor.c). */
extern _Thread_local struct weft_worker *weft__ready_into;

/* Internal test interface, not API: if set, called by a plain thread's
 * wake between its push onto the global queue and its notify, where the
 * thread may be preempted. */
extern void (*weft__ready_after_push)(void);

/* Yields w's running task: it goes to the back of w's yielded list. */
void weft__worker_yield(struct weft_worker *w);

/* Whether spinning a little before parking could pay: only if another
 * worker may be running the holder, and no task here waits to run (it may
 * be the holder itself, woken into our run-next slot). Go's canSpin. */
bool weft__spin_worthwhile(void);

/* Runs what a task that switched straight to the caller left to do (the
 * unlock of its park). Every point where a task resumes calls it, with the
 * worker it resumed on. */
void weft__park_finish_direct(struct weft_worker *w);

#endif
