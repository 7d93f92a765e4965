/*
 * Who is running: the worker this thread is, and the task it runs.
 *
 * Both are read through calls the optimiser may not merge or hoist: a task
 * may resume on another thread, and a thread-local address computed before
 * a switch would then name the old thread's worker.
 */
#ifndef WEFT_RUNTIME_SELF_H
#define WEFT_RUNTIME_SELF_H

struct weft_worker;
struct weft_task;

/* The worker the caller runs on, or NULL on a plain thread. */
struct weft_worker *weft__self(void);

/* The running task, or NULL on a plain thread or in a scheduler. */
struct weft_task *weft__task_current(void);

/* The worker thread w starts (w) or stops (NULL) being the caller. */
void weft__self_set(struct weft_worker *w);

#endif
