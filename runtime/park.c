/* Park, yield and ready: see park.h. */
#include "idle.h"
#include "park.h"
#include "runq.h"
#include "self.h"
#include "switch.h"

void weft__park_finish_direct(struct weft_worker *w)
{
	void (*unlock)(void *) = w->direct_unlock;
	w->switching_out = NULL; /* its registers are saved */
	if (unlock) {
		w->direct_unlock = NULL;
		unlock(w->direct_arg);
	}
	/* No spinlock is held across a switch (park's lock was unlocked). */
	WEFT_ASSERT(weft__debug_spins_held() == 0);
}

/* A direct yield's unlock, of its worker's yielded list. */
static void unlock_yielded(void *lock)
{
	weft__spin_unlock(lock);
}

/*
 * The fast path of yield and park: switch straight from w's running task to
 * the next local one (weft__runq_pick, direct). Either leaves an unlock to
 * the next task, whose first act it is, after the switched-out task's
 * registers were saved: a parking one its wait's (all the park protocol
 * needs), a yielding one its yielded list's. A yield takes that lock for
 * its pick, which may take the oldest yielded task, and its own join to
 * the list: one lock for both, and the monitor, which may move the list
 * to other workers (runq.h), finds the task there only once it can run. false: the scheduler must choose, or, for a park,
 * submit the worker's waiting I/O first (weft__driver_round_due). Inlined,
 * with the pick, into park and yield: a call and its register saves are a
 * tenth of a switch.
 */
static inline __attribute__((always_inline)) bool
switch_direct(struct weft_worker *w, enum weft_switch_reason reason,
	      void (*unlock)(void *), void *arg)
{
	/* Relaxed: set before the workers were created (pthread_create
	 * orders it), and not changed while they run. */
	struct weft_runtime *rt =
		atomic_load_explicit(&weft__rt, memory_order_relaxed);
	struct weft_task *t = w->current;
	bool yield = reason == SWITCH_YIELD;
	if (!yield && weft__driver_round_due(w->driver))
		return false; /* its I/O waits for a submit (ring.c) */
	if (yield)
		weft__spin_lock(&w->yielded_lock);
	struct weft_task *next = weft__runq_pick(rt, w, true, yield);
	if (!next) {
		if (yield)
			weft__spin_unlock(&w->yielded_lock);
		return false;
	}
	weft__switch_check_stack(t);
	if (yield) {
		/* Marked in exact mode only: by default the yields the
		 * scheduler requeues (worker.c's run_task) are the
		 * histogram's sample of yields, and this, the fastest path,
		 * pays a load and a branch. */
		weft__latency_mark_exact(t);
		if (weft__runq_append_yielded_locked(w, t))
			weft__monitor_arm(&rt->monitor);
		unlock = unlock_yielded;
		arg = &w->yielded_lock;
	}
	w->direct_unlock = unlock;
	w->direct_arg = arg;
	w->switching_out = t;
	weft__latency_check(&w->stats, next);
	weft__switch_set_current(w, next);
	/* Nothing from before the switch is used after it: the task may
	 * resume on another worker, which the switch returns. */
	weft__park_finish_direct(weft__switch_task_to_task(w, t, next));
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
	weft__park_finish_direct(
		weft__switch_to_scheduler(w, w->current, false));
}

void weft__task_park(void (*unlock)(void *), void *arg)
{
	struct weft_worker *w = weft__self();
	if (!switch_direct(w, SWITCH_PARK, unlock, arg))
		task_suspend(w, SWITCH_PARK, unlock, arg);
}

void weft__worker_yield(struct weft_worker *w)
{
	if (!switch_direct(w, SWITCH_YIELD, NULL, NULL))
		task_suspend(w, SWITCH_YIELD, NULL, NULL);
}

bool weft__spin_worthwhile(void)
{
	struct weft_worker *w = weft__self();
	if (!w)
		return true; /* a plain thread: the holder may run anywhere */
	/* Relaxed: as in switch_direct. */
	struct weft_runtime *rt =
		atomic_load_explicit(&weft__rt, memory_order_relaxed);
	/* Relaxed: own run-next, a heuristic for spinning. */
	return rt->nworkers > 1 &&
	       !atomic_load_explicit(&w->runnext, memory_order_relaxed) &&
	       !weft__deque_len(&w->deque) && !weft__deque_len(&w->woken);
}

void (*weft__ready_after_push)(void);

_Thread_local struct weft_worker *weft__ready_into;

/* A plain thread's wake. Once t is in the global queue a worker may run
 * it to its end, and weft_run may then free rt: weft_run waits for this
 * thread to leave first (weft__task_foreign_quiesce). */
static void ready_from_thread(struct weft_task *t)
{
	/* Numbered per thread for sampling. */
	static _Thread_local uint64_t plain_wakes;

	int phase = weft__foreign_enter();
	struct weft_runtime *rt = atomic_load(&weft__rt);
	weft__latency_mark(t, plain_wakes++);
	/* The monitor's firing for a kept worker: behind what its scheduler
	 * woke before, ahead of what it wakes after, as if it fired them
	 * itself (timer.c); thieves take them oldest first (runq.h). */
	struct weft_worker *into = weft__ready_into;
	weft__inject_push(into ? &into->ready : &rt->inject, t);
	if (__builtin_expect(weft__ready_after_push != NULL, 0))
		weft__ready_after_push();
	weft__notify_work(rt);
	weft__foreign_leave(phase);
}

void weft__task_ready(struct weft_task *t)
{
	struct weft_worker *w = weft__self();
	if (!w) {
		ready_from_thread(t);
		return;
	}
	struct weft_runtime *rt = atomic_load(&weft__rt);
	/* Relaxed: our own tick count (only the owner writes it), a
	 * sampling number. */
	weft__latency_mark(t, atomic_load_explicit(&w->ticks,
						   memory_order_relaxed));
	if (w->current) {
		/* Woken by a running task: t runs next, here, on a warm
		 * cache. Rouse an idle worker only for a burst of wakes: a
		 * pipeline of tasks passing messages runs best on one core,
		 * and a worker roused on every wake (Go's wakep) steals half
		 * of it, so every message crosses cores. If the waker keeps
		 * its worker, the monitor rouses one. */
		if (weft__runq_run_next(w, t, false) != WEFT__DISPLACED_NONE &&
		    weft__deque_len(&w->woken) >= WAKE_BURST)
			weft__notify_work(rt);
		weft__monitor_arm(&rt->monitor);
	} else {
		/* From the scheduler itself (timers, I/O): in order of waking,
		 * open to thieves (runq.h). Once the batch is in, the
		 * scheduler rouses a worker or arms the monitor (worker.c's
		 * share_woken). */
		weft__inject_push(&w->ready, t);
	}
}
