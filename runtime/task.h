/*
 * The task: a stackful coroutine and everything the runtime keeps about it.
 *
 * Lifetime: task structs come from slabs that live as long as the process
 * (a plain thread may still hold a handle, or be inside weft_join, when
 * weft_run returns), so a stale handle never points at unmapped memory; a
 * handle is checked by the run it came from and by its generation, which
 * changes each time the struct is recycled after a handle to its task was
 * made (none made, none to stale). A task that is never joined
 * nor detached keeps its struct, as leaked memory would. The runtime
 * itself is freed only once no plain thread is inside weft_spawn_opts. A task
 * holds two references at spawn: its own run, and its handle (none when
 * spawned detached). Finishing drops one, joining or detaching the other;
 * the last drop recycles the struct.
 *
 * Stacks: t->stack is the task's, from its first run (t->ctx.sp set) to
 * its end. A task that ends with no handle left is recycled at once, and
 * its struct keeps the stack for the struct's next task, which takes it if
 * it asks for the same size (else spawn returns it to the stack pool):
 * that spares both a trip through the stack pool. So a free struct, or one
 * spawned but not yet run, may hold a stack; t->ctx.sp, NULL from spawn
 * to the first run, is what says whether the task ran. A new run drops
 * what the structs kept (weft__task_run_begin): the stack pool was freed.
 *
 * Strangers: a struct is reached without a reference by a timer entry that
 * fires after its wait ended (a worker or the monitor pops a batch of due
 * entries, then fires them one by one: meanwhile the task may be woken by
 * something else, end, and its struct be respawned), by a stale handle,
 * and by shutdown's sweep over the slabs. So:
 *  - structs are type-stable: never freed while a runtime could reach them;
 *  - a stranger reads the atomics (gen, alive, timer.armed), and under
 *    wait_lock the fields it guards, checking there that the wait it came
 *    for (wait_seq, which only grows, across recycling too) or the handle
 *    (gen) is still current; under join_lock it checks gen and leaves;
 *  - so the fields wait_lock guards change only under it, spawn included:
 *    recycling resets them under the lock (task_recycle) and spawn never
 *    writes them. A plain store in spawn raced with a late fire (tsan);
 *  - the sweep cancels the struct's current generation, which does not
 *    change if the task made no handle: a sweep that meets the struct as
 *    it is recycled may cancel its next task, which was spawned while the
 *    runtime drains, to be cancelled anyway.
 *
 * Locks (spinlocks, never held across a switch):
 *   wait_lock guards waiting/wait_seq/wait_since/wait_until/shield:
 *     cancellation and deadline timers call waiting->abort under it, so
 *     the waiter is alive meanwhile.
 *   join_lock guards join_state/joiner/result.
 * Order: a wait_lock may be held while taking a join_lock, a primitive's
 * lock or a timer heap lock, never the other way round.
 */
#ifndef WEFT_RUNTIME_TASK_H
#define WEFT_RUNTIME_TASK_H

#include <errno.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "weft/task.h"
#include "weft/time.h"
#include "context.h"
#include "spinlock.h"
#include "stack.h"
#include "timer.h"
#include "wait.h"

struct weft_worker;

enum {
	JOIN_DONE = 1,     /* the task has returned */
	JOIN_DETACHED = 2, /* nobody will join */
	JOIN_CLAIMED = 4,  /* a joiner has claimed the result */
	JOIN_TAKEN = 8,    /* a joiner took it: every handle is consumed */
};

struct weft_task {
	struct weft_ctx ctx;
	struct weft_task *next; /* run queues and free lists */
	weft_fn fn;
	void *arg;
	void *result;
	int error;               /* -ENOMEM if it never got a stack */
	struct weft_stack stack; /* see "Stacks" above */
	size_t stack_size;       /* what spawn asked for */
	_Atomic uint64_t gen;
	_Atomic int refs;
	_Atomic bool alive; /* spawned and not yet finished */
	_Atomic bool cancelled;

	unsigned join_lock;
	unsigned join_state;
	bool handle_made; /* by spawn or weft_current: its recycling changes
			   * gen, and a joiner may come (task_recycle) */
	struct weft__waiter *joiner;

	unsigned wait_lock;
	struct weft__waiter *waiting;
	uint64_t wait_seq;
	int64_t wait_since; /* for weft_dump: the time-stamp
					* counter when the wait began */
	int64_t wait_until; /* and its deadline (weft_now) */
	const char *doing;  /* for weft_dump: the user's call its waits are
			     * in ("recv"), or NULL (see wait.h) */
	int doing_fd;       /* and the fd it works on, or -1: for a wait
			     * that does not hold it (the blocking pool's) */

	int64_t deadline;            /* the innermost scope's, or INT64_MAX */
	struct weft_deadline *scope; /* innermost scope */
	struct weft_shield *shield;  /* innermost shield: set and cleared
					* under wait_lock, read there by
					* cancel (and by the task itself) */
	struct weft_timer timer;

	uint64_t id;
	char name[WEFT_NAME_MAX];
	const void *spawn_site; /* the caller of weft_spawn */
	int64_t ready_at;       /* a sampled runnable time, or 0 (see
					* metrics.h) */
	uint64_t yielded_tick;  /* its worker's ticks as it joined the
				 * yielded list (runq.h) */
#ifdef WEFT_TSAN
	void *tsan_fiber;
#endif
#ifdef WEFT_ASAN
	void *asan_fake_stack;
#endif
};

#define WEFT_NO_DEADLINE INT64_MAX

/* weft__task_park() and weft__task_ready(), the scheduler's side of
 * waiting, are declared in park.h. */

/* Whether t has run: its first run sets ctx.sp (its start), and only the
 * scheduler starts a task (worker.c), as it gives it a stack. Not for t
 * while it runs. */
static inline bool weft__task_ran(const struct weft_task *t)
{
	return t->ctx.sp != NULL;
}

/* Called by w's scheduler once t has returned and switched out. */
void weft__task_finished(struct weft_worker *w, struct weft_task *t);

/* Takes t->wait_lock, first in the lock order: the caller holds no other
 * spinlock. */
static inline void weft__wait_lock(struct weft_task *t)
{
	WEFT_ASSERT(weft__debug_spins_held() == 0);
	weft__spin_lock(&t->wait_lock);
}

/* Whether t's blocking calls fail with -ECANCELED now: it was cancelled
 * and is not inside a shield. The task itself, or under t->wait_lock.
 * Relaxed: under the lock, cancel's store was made under it too; without
 * it, a hint (weft__wait_check below). */
static inline bool weft__cancel_in_force(struct weft_task *t)
{
	return atomic_load_explicit(&t->cancelled, memory_order_relaxed) &&
	       !t->shield;
}

/* Whether t's innermost deadline has passed (a clock read only if it has
 * one). The task itself. */
static inline bool weft__deadline_passed(const struct weft_task *t)
{
	return t->deadline != WEFT_NO_DEADLINE && t->deadline <= weft_now();
}

/*
 * Whether the calling task t (NULL: a plain thread) may not start a
 * blocking call: -ECANCELED or -ETIMEDOUT as weft__wait_begin would say,
 * else 0. Without the wait lock, for a call that tries its operation
 * before it publishes a wait (the epoll path): a cancellation or deadline
 * that lands after this look finds no wait to abort, and the call, if it
 * then waits, meets it in weft__wait_begin. The task reads its own shield
 * (only it sets one) and the cancelled flag (relaxed: a hint that the
 * locked check in wait_begin makes exact before any wait).
 */
static inline int weft__wait_check(struct weft_task *t)
{
	if (!t)
		return 0;
	if (weft__cancel_in_force(t))
		return -ECANCELED;
	if (weft__deadline_passed(t))
		return -ETIMEDOUT;
	return 0;
}

/* Sets the cancelled flag and aborts the task's current wait. */
void weft__task_cancel(struct weft_task *t);

/* Recycles the task structs of a worker cache or the global pool. */
struct weft_task_cache;
struct weft_task_cache *weft__task_cache_new(void);
void weft__task_cache_free(struct weft_task_cache *c);
/* weft_run's side of the lifetime rules above: a new run number (handles
 * of earlier runs go stale, and the stacks free structs kept are dropped:
 * before any worker starts, after the stack pool's init), and waiting out
 * the plain threads between weft__foreign_enter and _leave. */
void weft__task_run_begin(void);
void weft__task_foreign_quiesce(void);
/* Around a plain thread's use of the runtime that a task may not outlast
 * (a spawn, a wake: the woken task may end, and weft_run free the runtime,
 * before the waker is done with it). enter returns what leave takes. */
int weft__foreign_enter(void);
void weft__foreign_leave(int phase);
/* Tests only: called by a plain thread's spawn once it found the runtime
 * running, before it counts its task. */
extern void (*weft__spawn_foreign_hook)(void);
/* Calls fn(t, arg) on every live task (shutdown cancellation, weft_dump).
 * No lock is held meanwhile: fn sees t as a stranger (see above). */
void weft__task_for_each_alive(void (*fn)(struct weft_task *, void *),
			       void *arg);

/* A reference for a stranger, so that the struct is not recycled while it
 * reads what spawn wrote (id, name, spawn_site): false if t is free. Drop
 * it with weft__task_put(), which recycles t if it was the last. */
bool weft__task_get(struct weft_task *t);
void weft__task_put(struct weft_task *t);

/* Gives t a stack of size unless its struct kept one (see "Stacks"):
 * 0, or -ENOMEM with t holding none. At a task's first run, or at its
 * spawn (weft__spawn_with_stack). */
static inline int weft__task_take_stack(struct weft_task *t, size_t size,
					struct weft_stack_cache *k)
{
	if (t->stack.base || !weft__stack_alloc(&t->stack, size, k))
		return 0;
	t->stack.base = NULL;
	return -ENOMEM;
}

/* weft_spawn(out, fn, arg) with the task's stack taken now, not at its
 * first run: -ENOMEM if there is none, and then nothing was spawned. A
 * task that gets no stack at its first run ends without running fn (its
 * join says -ENOMEM); for one whose fn must run, a group's member that
 * accounts for itself there, that is here instead, where its spawner can
 * still undo what it counted. */
int weft__spawn_with_stack(weft_task_t *out, weft_fn fn, void *arg);

/* weft_run's main: weft_spawn_opts named "main", whose join claim is
 * out's from the start, so that no call main's tasks make on its handle
 * (weft_current()'s) takes its end from weft_run: weft_join and
 * weft_detach there say -EINVAL, as for any task being joined. Only
 * weft__join_main joins it. */
int weft__spawn_main(weft_task_t *out, weft_fn fn, void *arg);
/* weft_join by the holder of the claim weft__spawn_main gave. */
int weft__join_main(weft_task_t h, void **result);

/* Internal test interface, not API: if set, called by weft_is_cancelled
 * between the handle's lookup and the read of the flag, so that a test
 * can recycle the task's struct there, as another thread may. */
extern void (*weft__is_cancelled_after_lookup)(void);

#endif
