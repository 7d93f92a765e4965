/*
 * The three switches of a worker, each told to the sanitizers: scheduler to
 * task, task to scheduler, and task to task (the direct switch of park.c).
 * context.h has the bare switch; this file adds what ThreadSanitizer (one
 * fiber per task and per scheduler) and AddressSanitizer (the stack being
 * left and the one being entered) must hear of each, and the check of a
 * task's stack each time it switches out.
 *
 * Inline: the direct switch is a few dozen instructions, and a call and its
 * register saves would be a tenth of it.
 */
#ifndef WEFT_RUNTIME_SWITCH_H
#define WEFT_RUNTIME_SWITCH_H

#include <stdbool.h>

#include "context.h"
#include "task.h"
#include "worker.h"

/* The owner reads w->current plainly; weft_dump reads it from other
 * threads, relaxed (it needs the value only), so every store is atomic:
 * the same instruction as a plain store. */
static inline void weft__switch_set_current(struct weft_worker *w,
					    struct weft_task *t)
{
	__atomic_store_n(&w->current, t, __ATOMIC_RELAXED);
}

/* Scheduler to task: returns once the task has switched back (perhaps
 * after direct switches to others: w->current says who). fresh: t has not
 * run, so nothing returns past its first frame and the jump suits
 * (context.h). */
static inline void weft__switch_to_task(struct weft_worker *w,
					struct weft_task *t, bool fresh)
{
#ifdef WEFT_TSAN
	__tsan_switch_to_fiber(t->tsan_fiber, 0);
#endif
#ifdef WEFT_ASAN
	void *fake = NULL;
	__sanitizer_start_switch_fiber(&fake, t->stack.base, t->stack.size);
#endif
	if (fresh)
		weft__switch_jump(&w->sched_ctx, &t->ctx, w);
	else
		weft__switch(&w->sched_ctx, &t->ctx, w);
#ifdef WEFT_ASAN
	__sanitizer_finish_switch_fiber(fake, NULL, NULL);
#endif
}

/* From a task to its worker's scheduler. When it returns the task has been
 * resumed, perhaps by another worker: the one it returns. An exiting task
 * never resumes, and the scheduler it goes to loops: the jump suits
 * (context.h). */
static inline struct weft_worker *
weft__switch_to_scheduler(struct weft_worker *w, struct weft_task *t,
			  bool exiting)
{
#ifdef WEFT_TSAN
	__tsan_switch_to_fiber(w->tsan_fiber, 0);
#endif
#ifdef WEFT_ASAN
	__sanitizer_start_switch_fiber(exiting ? NULL : &t->asan_fake_stack,
				       w->stack_bottom, w->stack_size);
#endif
	if (exiting)
		weft__switch_jump(&t->ctx, &w->sched_ctx, w);
	else
		w = weft__switch(&t->ctx, &w->sched_ctx, w);
#ifdef WEFT_ASAN
	__sanitizer_finish_switch_fiber(t->asan_fake_stack, NULL, NULL);
#endif
	return w;
}

/* Task to task, skipping the scheduler: the fast paths of yield and park.
 * Returns the worker that later resumes from. */
static inline struct weft_worker *
weft__switch_task_to_task(struct weft_worker *w, struct weft_task *from,
			  struct weft_task *to)
{
#ifdef WEFT_TSAN
	__tsan_switch_to_fiber(to->tsan_fiber, 0);
#endif
#ifdef WEFT_ASAN
	__sanitizer_start_switch_fiber(&from->asan_fake_stack, to->stack.base,
				       to->stack.size);
#endif
	w = weft__switch(&from->ctx, &to->ctx, w);
#ifdef WEFT_ASAN
	__sanitizer_finish_switch_fiber(from->asan_fake_stack, NULL, NULL);
#endif
	return w;
}

/* A task that got its stack: its context and its sanitizer fiber. */
static inline void weft__switch_task_init(struct weft_task *t)
{
	weft__ctx_init(&t->ctx, t->stack.base + t->stack.size, t);
#ifdef WEFT_TSAN
	t->tsan_fiber = __tsan_create_fiber(0);
	__tsan_set_fiber_name(t->tsan_fiber, t->name);
#endif
#ifdef WEFT_ASAN
	t->asan_fake_stack = NULL;
#endif
}

/* A task that returned: its fiber goes (its stack is the caller's). */
static inline void weft__switch_task_exit(struct weft_task *t)
{
#ifdef WEFT_TSAN
	__tsan_destroy_fiber(t->tsan_fiber);
	t->tsan_fiber = NULL;
#endif
	(void)t;
}

/* The scheduler's own fiber, taken by the worker thread at its start. */
static inline void weft__switch_scheduler_init(struct weft_worker *w)
{
#ifdef WEFT_TSAN
	w->tsan_fiber = __tsan_get_current_fiber();
#endif
	(void)w;
}

__attribute__((noreturn)) void weft__report_smashed_stack(struct weft_task *t);

/* After a task switched out: abort with its name if it overflowed. */
static inline void weft__switch_check_stack(struct weft_task *t)
{
	if (weft__stack_smashed(&t->stack))
		weft__report_smashed_stack(t);
}

/* Where a new task starts (from weft__task_trampoline). */
__attribute__((noreturn)) void weft__task_entry(struct weft_task *t);

#endif
