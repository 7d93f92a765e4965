/*
 * The scheduler: each worker thread runs this loop.
 *
 *   run-next slot -> own deque -> own woken deque -> (every 61st pick)
 *   the global queue -> tasks that yielded -> global queue -> steal half
 *   from a random victim -> timers and I/O events -> park in the driver.
 *
 * Invariants:
 *  - A task is in at most one place at a time: running on one worker, or in
 *    one run-next slot, deque, yielded list or the global queue, or parked
 *    (in nobody's hands but the waiter protocol's).
 *  - A parked task is made runnable only through weft__task_ready(), and
 *    only after it switched out: park's unlock function runs here, on the
 *    scheduler stack, after weft__switch saved the task's registers.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "task.h"
#include "worker.h"

#define GLOBAL_QUEUE_INTERVAL 61 /* prime, as Go's: the global queue's turn */
#define RUNNEXT_STREAK_MAX 32    /* then the deques get a turn */
#define INJECT_BATCH 32
#define TIMER_CHECK_INTERVAL 16
#define SEARCH_SPINS 48          /* ~5-15 us of looking before parking */
#define WAKE_BURST 8             /* woken tasks queued before help is roused */

/* Read on every spawn and switch: a line no other global writes. */
struct weft_runtime *_Atomic weft__rt __attribute__((aligned(64)));

static __thread struct weft_worker *tls_self;

__attribute__((noinline)) struct weft_worker *weft__self(void)
{
	struct weft_worker *w = tls_self;
	/* Opaque to the optimiser: never treat this call as pure. */
	__asm__ volatile("" : "+r"(w) : : "memory");
	return w;
}

/* The same TLS read, one call instead of two on the sync primitives' paths
 * (each acquire, release and wait asks who is running). */
__attribute__((noinline)) struct weft_task *weft__task_current(void)
{
	struct weft_worker *w = tls_self;
	__asm__ volatile("" : "+r"(w) : : "memory");
	return w ? w->current : NULL;
}

/* ---- switching ---------------------------------------------------------- */

static void switch_to_task(struct weft_worker *w, struct weft_task *t)
{
#ifdef WEFT_TSAN
	__tsan_switch_to_fiber(t->tsan_fiber, 0);
#endif
#ifdef WEFT_ASAN
	void *fake = NULL;
	__sanitizer_start_switch_fiber(&fake, t->stack.base, t->stack.size);
#endif
	weft__switch(&w->sched_ctx, &t->ctx, w);
#ifdef WEFT_ASAN
	__sanitizer_finish_switch_fiber(fake, NULL, NULL);
#endif
}

/* From a task to its worker's scheduler. When it returns the task has been
 * resumed, perhaps by another worker: the one it returns. */
static struct weft_worker *switch_to_scheduler(struct weft_worker *w,
					       struct weft_task *t,
					       bool exiting)
{
#ifdef WEFT_TSAN
	__tsan_switch_to_fiber(w->tsan_fiber, 0);
#endif
#ifdef WEFT_ASAN
	__sanitizer_start_switch_fiber(exiting ? NULL : &t->asan_fake_stack,
				       w->stack_bottom, w->stack_size);
#endif
	w = weft__switch(&t->ctx, &w->sched_ctx, w);
#ifdef WEFT_ASAN
	__sanitizer_finish_switch_fiber(t->asan_fake_stack, NULL, NULL);
#endif
	(void)exiting;
	return w;
}

/* Task to task, skipping the scheduler: the fast paths of yield and park.
 * Returns the worker that later resumes from. */
static struct weft_worker *switch_task_to_task(struct weft_worker *w,
					       struct weft_task *from,
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

static void report_smashed_stack(struct weft_task *t);

static void fifo_append(struct weft_worker *w, struct weft_task *t)
{
	t->next = NULL;
	if (w->fifo_tail)
		w->fifo_tail->next = t;
	else
		w->fifo_head = t;
	w->fifo_tail = t;
}

/* The owner's own queues: run-next first, for a warm cache, but after
 * RUNNEXT_STREAK_MAX run-next picks in a row the deques get a turn: two
 * tasks waking each other would otherwise keep the tasks behind them
 * waiting for good. Only the owner fills run-next, so one look tells
 * whether it is worth the exchange, now and after the deques. */
static inline __attribute__((always_inline)) struct weft_task *
take_local(struct weft_worker *w)
{
	struct weft_task *t;
	bool next = atomic_load_explicit(&w->runnext, memory_order_relaxed);
	if (next && w->runnext_streak < RUNNEXT_STREAK_MAX &&
	    (t = atomic_exchange(&w->runnext, NULL))) {
		w->runnext_streak++;
		return t;
	}
	w->runnext_streak = 0;
	if (weft__deque_len(&w->deque) && (t = weft__deque_take(&w->deque)))
		return t;
	if (weft__deque_len(&w->woken) && (t = weft__deque_take(&w->woken)))
		return t;
	return next ? atomic_exchange(&w->runnext, NULL) : NULL;
}

/* The owner's next local task for a direct switch: run-next, the deques, or
 * (only while no worker idles, as they could not take it from there) the
 * oldest yielded task. NULL when the scheduler must choose. */
static inline __attribute__((always_inline)) struct weft_task *
next_direct(struct weft_runtime *rt, struct weft_worker *w)
{
	struct weft_task *t = take_local(w);
	if (t) {
		if (t->stack.base)
			return t;
		weft__worker_push(w, t); /* never ran: the scheduler starts it */
		return NULL;
	}
	t = w->fifo_head;
	if (!t || atomic_load_explicit(&rt->idle.sleeping, memory_order_relaxed) ||
	    atomic_load_explicit(&rt->idle.searching, memory_order_relaxed))
		return NULL;
	w->fifo_head = t->next;
	if (!t->next)
		w->fifo_tail = NULL;
	return t;
}

/* Runs what the task that switched straight to us left to do: the unlock
 * of its park, now that its registers are saved. Every point where a task
 * resumes calls it, with the worker it resumed on. */
static void finish_direct_switch(struct weft_worker *w)
{
	void (*unlock)(void *) = w->direct_unlock;
	if (unlock) {
		w->direct_unlock = NULL;
		unlock(w->direct_arg);
	}
}

/*
 * The fast path of yield and park: switch straight from w's running task to
 * the next local one, one switch instead of two through the scheduler. A
 * yielding task joins the FIFO; a parking one leaves its unlock to the next
 * task, whose first act it is, after the parked task's registers were
 * saved: all the park protocol needs (Go's gopark runs it on g0). Every
 * GLOBAL_QUEUE_INTERVAL picks (global_countdown) the scheduler chooses
 * instead, so the global queue, I/O and timers get their turn. false: the
 * scheduler must choose. Inlined, with next_direct, into park and yield:
 * a call and its register saves are a tenth of a switch.
 */
static inline __attribute__((always_inline)) bool
switch_direct(struct weft_worker *w, enum weft_switch_reason reason,
	      void (*unlock)(void *), void *arg)
{
	struct weft_runtime *rt = atomic_load_explicit(&weft__rt,
						       memory_order_relaxed);
	struct weft_task *t = w->current, *next;
	if (w->global_countdown <= 1 || !(next = next_direct(rt, w)))
		return false;
	w->global_countdown--;
	uint64_t tick = atomic_load_explicit(&w->ticks, memory_order_relaxed);
	if (weft__stack_smashed(&t->stack))
		report_smashed_stack(t);
	atomic_store_explicit(&w->ticks, tick + 1, memory_order_relaxed);
	if (reason == SWITCH_YIELD) {
		fifo_append(w, t);
	} else {
		w->direct_unlock = unlock;
		w->direct_arg = arg;
	}
	w->current = next;
	/* Nothing from before the switch is used after it: the task may
	 * resume on another worker, which the switch returns. */
	finish_direct_switch(switch_task_to_task(w, t, next));
	return true;
}

/* Switches the running task out to its scheduler, which then handles the
 * reason (and runs unlock(arg) for SWITCH_PARK). */
static __attribute__((noinline)) void
task_suspend(struct weft_worker *w, enum weft_switch_reason reason,
	     void (*unlock)(void *), void *arg)
{
	w->reason = reason;
	w->after_switch = unlock;
	w->after_arg = arg;
	finish_direct_switch(switch_to_scheduler(w, w->current, false));
}

void weft__task_park(void (*unlock)(void *), void *arg)
{
	struct weft_worker *w = weft__self();
	if (!switch_direct(w, SWITCH_PARK, unlock, arg))
		task_suspend(w, SWITCH_PARK, unlock, arg);
}

bool weft__spin_worthwhile(void)
{
	struct weft_worker *w = weft__self();
	if (!w)
		return true; /* a plain thread: the holder may run anywhere */
	struct weft_runtime *rt = atomic_load_explicit(&weft__rt,
						       memory_order_relaxed);
	return rt->nworkers > 1 &&
	       !atomic_load_explicit(&w->runnext, memory_order_relaxed) &&
	       !weft__deque_len(&w->deque) && !weft__deque_len(&w->woken);
}

void weft__worker_yield(struct weft_worker *w)
{
	if (!switch_direct(w, SWITCH_YIELD, NULL, NULL))
		task_suspend(w, SWITCH_YIELD, NULL, NULL);
}

/* Where a new task starts (from weft__task_trampoline). */
__attribute__((noreturn)) void weft__task_entry(struct weft_task *t);
void weft__task_entry(struct weft_task *t)
{
#ifdef WEFT_ASAN
	__sanitizer_finish_switch_fiber(NULL, NULL, NULL);
#endif
	t->result = t->fn(t->arg);
	struct weft_worker *w = weft__self();
	w->reason = SWITCH_EXIT;
	w->after_switch = NULL;
	switch_to_scheduler(w, t, true);
	__builtin_unreachable();
}

/* ---- making tasks runnable ---------------------------------------------- */

void weft__worker_push(struct weft_worker *w, struct weft_task *t)
{
	if (weft__deque_push(&w->deque, t))
		return;
	/* Full: move the older half to the global queue, as Tokio does. */
	struct weft_task *first = NULL, *last = NULL;
	for (int i = 0; i < WEFT_DEQUE_CAP / 2; i++) {
		struct weft_task *x = weft__deque_steal(&w->deque);
		if (x == WEFT_STEAL_EMPTY)
			break;
		if (x == WEFT_STEAL_RETRY)
			continue;
		x->next = NULL;
		if (last)
			last->next = x;
		else
			first = x;
		last = x;
	}
	struct weft_runtime *rt = atomic_load(&weft__rt);
	if (first)
		weft__inject_push_list(&rt->inject, first, last);
	if (!weft__deque_push(&w->deque, t))
		weft__inject_push(&rt->inject, t);
}

static inline bool run_next(struct weft_worker *w, struct weft_task *t,
			    bool spawned)
{
	atomic_store_explicit(&w->runnext_spawned, spawned,
			      memory_order_relaxed);
	/* seq_cst: the monitor's arming protocol (monitor.h). */
	t = atomic_exchange(&w->runnext, t);
	if (t && (spawned || !weft__deque_push(&w->woken, t)))
		weft__worker_push(w, t);
	return t != NULL;
}

bool weft__worker_run_next(struct weft_worker *w, struct weft_task *t,
			   bool spawned)
{
	return run_next(w, t, spawned);
}

void weft__task_ready(struct weft_task *t)
{
	struct weft_runtime *rt = atomic_load(&weft__rt);
	struct weft_worker *w = weft__self();
	if (!w) {
		weft__inject_push(&rt->inject, t);
		weft__notify_work(rt);
	} else if (w->current) {
		/* Woken by a running task: t runs next, here, on a warm
		 * cache. Rouse an idle worker only for a burst of wakes: a
		 * pipeline of tasks passing messages runs best on one core,
		 * and a worker roused on every wake (Go's wakep) steals half
		 * of it, so every message crosses cores. If the waker keeps
		 * its worker, the monitor rouses one. */
		if (run_next(w, t, false) &&
		    weft__deque_len(&w->woken) >= WAKE_BURST)
			weft__notify_work(rt);
		weft__monitor_arm(&rt->monitor);
	} else {
		/* From the scheduler itself (timers, I/O): in order of waking.
		 * requeue_fifo tells the idle when it makes them stealable. */
		fifo_append(w, t);
	}
}

/* ---- idle workers ------------------------------------------------------- */

void weft__notify_work(struct weft_runtime *rt)
{
	struct weft_idle *idle = &rt->idle;
	/* Pairs with the sleeper's RMW on `searching` (see idle.h). */
	atomic_thread_fence(memory_order_seq_cst);
	if (atomic_load_explicit(&idle->searching, memory_order_relaxed) ||
	    !atomic_load_explicit(&idle->sleeping, memory_order_relaxed))
		return;
	pthread_mutex_lock(&idle->mu);
	if (!idle->nsleepers ||
	    atomic_load_explicit(&idle->searching, memory_order_relaxed)) {
		pthread_mutex_unlock(&idle->mu);
		return;
	}
	struct weft_worker *w = &rt->workers[idle->sleepers[--idle->nsleepers]];
	w->sleeping = false;
	w->searching = true; /* woken to search */
	atomic_fetch_sub(&idle->sleeping, 1);
	atomic_fetch_add(&idle->searching, 1);
	pthread_mutex_unlock(&idle->mu);
	weft__driver_unpark(w->driver);
}

static bool start_search(struct weft_runtime *rt, struct weft_worker *w)
{
	if (w->searching)
		return true;
	int s = atomic_load(&rt->idle.searching);
	int awake = rt->nworkers - atomic_load(&rt->idle.sleeping);
	if (2 * s >= awake)
		return false;
	atomic_fetch_add(&rt->idle.searching, 1);
	w->searching = true;
	return true;
}

/* Found work: if we were the last searcher, wake another to keep looking. */
static void end_search(struct weft_runtime *rt, struct weft_worker *w)
{
	w->searching = false;
	if (atomic_fetch_sub(&rt->idle.searching, 1) == 1)
		weft__notify_work(rt);
}

/* ---- finding work ------------------------------------------------------- */

static uint64_t next_rand(struct weft_worker *w)
{
	w->rng ^= w->rng << 13;
	w->rng ^= w->rng >> 7;
	w->rng ^= w->rng << 17;
	return w->rng;
}

static struct weft_task *pop_global(struct weft_runtime *rt,
				    struct weft_worker *w)
{
	int n;
	struct weft_task *first = weft__inject_pop(&rt->inject, INJECT_BATCH, &n);
	if (!first)
		return NULL;
	/* Keep the rest in FIFO order: push newest first, the deque's owner
	 * end takes the last pushed first. */
	struct weft_task *rest = first->next, *stack[INJECT_BATCH];
	int k = 0;
	for (; rest; rest = rest->next)
		stack[k++] = rest;
	while (k > 0)
		weft__worker_push(w, stack[--k]);
	return first;
}

/* FIFO tasks go back in the deque once it ran dry, up to half a deque
 * at a time so it never spills: the oldest last, so the owner's end takes
 * them oldest first (round-robin), and thieves can take them meanwhile. */
static struct weft_task *requeue_fifo(struct weft_runtime *rt,
				      struct weft_worker *w)
{
	struct weft_task *batch[WEFT_DEQUE_CAP / 2];
	int n = 0;
	while (w->fifo_head && n < WEFT_DEQUE_CAP / 2) {
		batch[n++] = w->fifo_head;
		w->fifo_head = w->fifo_head->next;
	}
	if (!w->fifo_head)
		w->fifo_tail = NULL;
	for (int i = n - 1; i > 0; i--)
		weft__worker_push(w, batch[i]);
	if (n > 2)
		weft__notify_work(rt);
	return batch[0];
}

/* Steals half of deque d into ours; returns one task to run now. */
static struct weft_task *steal_half(struct weft_deque *d,
				    struct weft_worker *w)
{
	int64_t n = (weft__deque_len(d) + 1) / 2;
	struct weft_task *first = NULL;
	for (int64_t i = 0, retries = 0; i < n;) {
		struct weft_task *x = weft__deque_steal(d);
		if (x == WEFT_STEAL_EMPTY)
			break;
		if (x == WEFT_STEAL_RETRY) {
			if (++retries > 8)
				break;
			continue;
		}
		i++;
		if (!first)
			first = x;
		else
			weft__worker_push(w, x);
	}
	return first;
}

/* v's run-next task: at once if the monitor found v stuck; if it is a
 * spawn, when v is still busy with the same task a moment later. A woken
 * one otherwise stays for v, whose running task will likely park soon. */
static struct weft_task *steal_runnext(struct weft_worker *v, bool stuck)
{
	struct weft_task *t = atomic_load(&v->runnext);
	if (!t || (!stuck && !atomic_load(&v->runnext_spawned)))
		return NULL;
	if (!stuck) {
		uint64_t ticks = atomic_load(&v->ticks);
		for (int i = 0; i < 200; i++)
			weft__cpu_relax();
		if (atomic_load(&v->ticks) != ticks)
			return NULL;
	}
	if (!atomic_compare_exchange_strong(&v->runnext, &t, NULL))
		return NULL;
	return t;
}

static bool is_stuck(struct weft_worker *v)
{
	return atomic_load_explicit(&v->stuck, memory_order_relaxed);
}

/* Whether other workers may take v's woken tasks: a burst, or v stuck. */
static bool woken_open(struct weft_worker *v)
{
	return is_stuck(v) || weft__deque_len(&v->woken) >= WAKE_BURST;
}

/* v's tasks, as the rules of struct weft_worker allow: its deque always;
 * its woken tasks when woken_open; run-next when from_runnext (the
 * searcher's occasional slower look) or stuck. */
static struct weft_task *steal_from(struct weft_worker *v,
				    struct weft_worker *w, bool from_runnext)
{
	struct weft_task *t = steal_half(&v->deque, w);
	if (t)
		return t;
	bool stuck = is_stuck(v);
	if (woken_open(v))
		t = steal_half(&v->woken, w);
	if (!t && (stuck || from_runnext))
		t = steal_runnext(v, stuck);
	if (stuck)
		atomic_store_explicit(&v->stuck, false, memory_order_relaxed);
	return t;
}

static struct weft_task *steal_work(struct weft_runtime *rt,
				    struct weft_worker *w, bool from_runnext)
{
	int n = rt->nworkers;
	int start = (int)(next_rand(w) % (uint64_t)n);
	for (int i = 0; i < n; i++) {
		struct weft_worker *v = &rt->workers[(start + i) % n];
		struct weft_task *t;
		if (v != w && (t = steal_from(v, w, from_runnext)))
			return t;
	}
	return pop_global(rt, w);
}

static struct weft_task *find_local(struct weft_runtime *rt,
				    struct weft_worker *w)
{
	uint64_t tick = atomic_load_explicit(&w->ticks, memory_order_relaxed);
	atomic_store_explicit(&w->ticks, tick + 1, memory_order_relaxed);
	struct weft_task *t;
	if (--w->global_countdown <= 0) {
		w->global_countdown = GLOBAL_QUEUE_INTERVAL;
		if ((t = pop_global(rt, w)))
			return t;
	}
	if ((t = take_local(w)))
		return t;
	if (w->fifo_head)
		return requeue_fifo(rt, w);
	return pop_global(rt, w);
}

/* A searcher keeps looking a little before it parks: parking and being
 * woken cost two system calls and a few microseconds, more than the gap
 * between bursts of work (Go's spinning Ms, Tokio's searching state). */
static struct weft_task *find_task(struct weft_runtime *rt,
				   struct weft_worker *w)
{
	struct weft_task *t = find_local(rt, w);
	if (t || !start_search(rt, w))
		return t;
	for (int spin = 0; spin < SEARCH_SPINS; spin++) {
		if ((t = steal_work(rt, w, spin % 16 == 15)))
			return t;
		if (atomic_load_explicit(&rt->state, memory_order_relaxed) ==
		    RT_STOPPING)
			return NULL;
		for (int i = 0; i < 32; i++)
			weft__cpu_relax();
	}
	return steal_work(rt, w, true);
}

/* ---- running ------------------------------------------------------------ */

static void report_smashed_stack(struct weft_task *t)
{
	fprintf(stderr,
		"weft: task '%s' (id %llu) overflowed its %zu-byte stack\n",
		t->name, (unsigned long long)t->id, t->stack.size);
	abort();
}

/* Gives a task its stack on its first run. false: it could not have one,
 * and has been finished with -ENOMEM. */
static bool start_task(struct weft_worker *w, struct weft_task *t)
{
	if (weft__stack_alloc(&t->stack, t->stack_size, w->stack_cache)) {
		t->stack.base = NULL;
		t->error = -ENOMEM;
		weft__task_finished(t);
		return false;
	}
	weft__ctx_init(&t->ctx, t->stack.base + t->stack.size, t);
#ifdef WEFT_TSAN
	t->tsan_fiber = __tsan_create_fiber(0);
	__tsan_set_fiber_name(t->tsan_fiber, t->name);
#endif
#ifdef WEFT_ASAN
	t->asan_fake_stack = NULL;
#endif
	return true;
}

static void task_exited(struct weft_worker *w, struct weft_task *t)
{
#ifdef WEFT_TSAN
	__tsan_destroy_fiber(t->tsan_fiber);
	t->tsan_fiber = NULL;
#endif
	weft__stack_free(&t->stack, w->stack_cache);
	t->stack.base = NULL;
	weft__task_finished(t);
}

static void run_task(struct weft_worker *w, struct weft_task *t)
{
	if (!t->stack.base && !start_task(w, t))
		return;
	w->current = t;
	switch_to_task(w, t);
	t = w->current; /* direct yields may have switched to others */
	w->current = NULL;
	if (weft__stack_smashed(&t->stack))
		report_smashed_stack(t);
	switch (w->reason) {
	case SWITCH_PARK:
		if (w->after_switch)
			w->after_switch(w->after_arg);
		break;
	case SWITCH_YIELD:
		fifo_append(w, t);
		break;
	case SWITCH_EXIT:
		task_exited(w, t);
		break;
	}
}

/* Submissions and I/O events, timers now and then: once per task run. */
static void maintain(struct weft_worker *w, uint64_t tick)
{
	weft__driver_poll(w->driver, tick);
	if (tick % TIMER_CHECK_INTERVAL == 0 &&
	    __atomic_load_n(&w->heap_len, __ATOMIC_RELAXED))
		weft__timers_run(w);
}

/* ---- parking ------------------------------------------------------------ */

/* Whether a worker about to sleep would find work after all: what a
 * searcher may take (see steal_from), checked after it joined the idle
 * set, so that a notify it missed while searching is not lost. */
static bool any_work(struct weft_runtime *rt, struct weft_worker *w)
{
	if (!weft__inject_empty(&rt->inject) || atomic_load(&w->runnext))
		return true;
	for (int i = 0; i < rt->nworkers; i++) {
		struct weft_worker *v = &rt->workers[i];
		if (weft__deque_len(&v->deque) || (v != w && woken_open(v)))
			return true;
	}
	return false;
}

static void leave_idle_set(struct weft_runtime *rt, struct weft_worker *w)
{
	pthread_mutex_lock(&rt->idle.mu);
	if (w->sleeping) {
		for (int i = 0; i < rt->idle.nsleepers; i++) {
			if (rt->idle.sleepers[i] == w->id) {
				rt->idle.sleepers[i] =
					rt->idle.sleepers[--rt->idle.nsleepers];
				break;
			}
		}
		w->sleeping = false;
		atomic_fetch_sub(&rt->idle.sleeping, 1);
	}
	pthread_mutex_unlock(&rt->idle.mu);
}

static void park_worker(struct weft_runtime *rt, struct weft_worker *w)
{
	int64_t next_timer = weft__timers_run(w);
	weft__driver_reap(w->driver);
	if (w->fifo_head || weft__deque_len(&w->deque) ||
	    weft__deque_len(&w->woken) || atomic_load(&w->runnext))
		return; /* timers or completions made work */
	if (w->searching) {
		w->searching = false;
		atomic_fetch_sub(&rt->idle.searching, 1);
	}
	/* Out of work, so not stuck, whatever the monitor saw before. */
	atomic_store_explicit(&w->stuck, false, memory_order_relaxed);
	pthread_mutex_lock(&rt->idle.mu);
	w->sleeping = true;
	rt->idle.sleepers[rt->idle.nsleepers++] = w->id;
	atomic_fetch_add(&rt->idle.sleeping, 1);
	pthread_mutex_unlock(&rt->idle.mu);
	if (any_work(rt, w) || atomic_load(&rt->state) == RT_STOPPING) {
		leave_idle_set(rt, w);
		return;
	}
	weft__driver_park(w->driver, next_timer);
	leave_idle_set(rt, w); /* no-op if a notifier took us out */
}

/* ---- the thread --------------------------------------------------------- */

static int worker_setup(struct weft_runtime *rt, struct weft_worker *w,
			const char **why)
{
	int r;
	w->driver = weft__driver_new(rt->io, &r, why);
	if (!w->driver)
		return r;
	weft__driver_set_current(w->driver);
	w->altstack = malloc(SIGSTKSZ * 4);
	if (w->altstack) {
		stack_t ss = { .ss_sp = w->altstack, .ss_size = SIGSTKSZ * 4 };
		sigaltstack(&ss, NULL);
	}
	pthread_attr_t a;
	if (pthread_getattr_np(pthread_self(), &a) == 0) {
		void *lo;
		pthread_attr_getstack(&a, &lo, &w->stack_size);
		w->stack_bottom = lo;
		pthread_attr_destroy(&a);
	}
#ifdef WEFT_TSAN
	w->tsan_fiber = __tsan_get_current_fiber();
#endif
	return 0;
}

static void worker_teardown(struct weft_worker *w)
{
	stack_t ss = { .ss_flags = SS_DISABLE };
	sigaltstack(&ss, NULL);
	free(w->altstack);
	weft__driver_set_current(NULL);
	weft__driver_free(w->driver);
}

/* Reports setup to weft_run and waits for it to say go (or stop). */
static bool worker_started(struct weft_runtime *rt, int err, const char *why)
{
	pthread_mutex_lock(&rt->mu);
	if (err && !rt->init_error) {
		rt->init_error = err;
		rt->init_why = why;
	}
	rt->started++;
	pthread_cond_broadcast(&rt->cv);
	while (!rt->go)
		pthread_cond_wait(&rt->cv, &rt->mu);
	bool go = rt->go > 0 && !err;
	pthread_mutex_unlock(&rt->mu);
	return go;
}

void *weft__worker_main(void *arg)
{
	struct weft_worker *w = arg;
	struct weft_runtime *rt = atomic_load(&weft__rt);
	const char *why = NULL;
	int err = worker_setup(rt, w, &why);
	tls_self = w;
	if (!worker_started(rt, err, why)) {
		tls_self = NULL;
		if (!err)
			worker_teardown(w);
		return NULL;
	}
	for (;;) {
		struct weft_task *t = find_task(rt, w);
		if (t) {
			if (w->searching)
				end_search(rt, w);
			run_task(w, t);
			maintain(w, atomic_load_explicit(&w->ticks,
							 memory_order_relaxed));
			continue;
		}
		if (atomic_load(&rt->state) == RT_STOPPING)
			break;
		park_worker(rt, w);
	}
	tls_self = NULL;
	worker_teardown(w);
	return NULL;
}
