/*
 * Where a runnable task lives, and who may take it from there.
 *
 * A runnable task that is not running is in exactly one of six places:
 *
 *   1. A worker's run-next slot (w->runnext): the task the running task
 *      woke or spawned last, to run next on a warm cache. Filled by the
 *      owner only. Others take it when the monitor marked the worker stuck
 *      or a busy worker found it stalled (steal.h), or, if it holds a
 *      spawn, when a searcher's slower look finds the owner still on the
 *      same task a moment later (steal.c).
 *   2. A worker's deque (w->deque): tasks spawned, and tasks moved here
 *      from the other places. The owner pushes and takes at one end; any
 *      worker steals half from the other, at any time.
 *   3. A worker's woken deque (w->woken): tasks that ran before, moved
 *      out of the run-next slot by a later wake or spawn of the running
 *      task (a spawn the slot held goes to the deque). Not the deque,
 *      where the spawns that followed went over them: a tree of spawns
 *      kept a task that a tree task woke there (test_task's
 *      woken_by_tree_not_starved_by_it, 2,200-2,800 tree tasks late).
 *      The owner takes them after its deque, newest first, and the
 *      oldest at the global queue's turn. Others take them only
 *      in a burst (WAKE_BURST or more), once the monitor marked the worker
 *      stuck (weft__runq_woken_open), or when a busy worker found it
 *      stalled.
 *   4. A worker's ready queue (w->ready, inject.h): tasks its scheduler
 *      woke (I/O events and completions, timers; and the monitor, the
 *      sleepers it fires while a task keeps the worker), first in first
 *      out; behind them, the woken tasks of a batch it took from the
 *      global queue or stole from another's ready queue. Only tasks that
 *      ran before: a direct switch takes from it.
 *      When its deques run dry, or a streak of run-next picks ends, the
 *      owner runs the oldest; at the global queue's turn too, first on
 *      every other turn. One at a time, never moved to its own deque,
 *      where spawns would go over them. Any worker moves half of it to
 *      its own at any time.
 *      Open to thieves because I/O is where a worker stalls: preempted by
 *      the OS, or busy, it would hold every connection it had polled (in
 *      loaded A/B runs of the epoll driver's echo server, the client-side
 *      turn p99 fell from 190 to 134-138 once they were open, Tokio's
 *      figure in the same runs). First in first out because a deque's
 *      owner end is last in first out: a connection woken early would
 *      wait while later ones overtook it again and again. Open, but
 *      not offered: a batch of up to 16 rouses no idle worker
 *      and arms the monitor instead (worker.c's share_woken): moving
 *      tasks to another core cost a server more than it gained.
 *   5. A worker's yielded list (w->yielded_head): tasks that yielded, first
 *      in first out as asyncio runs them. The owner's: it takes the
 *      oldest at the global queue's turn once it waited YIELD_ROUND_MAX
 *      picks, and when its other places run dry it moves half a deque of
 *      them to its deque, where thieves can take them. Open, but not
 *      offered: the move rouses no idle worker and arms the monitor
 *      instead, which rouses one if they still wait at its next look (a
 *      contended lock's hand-overs gather its tasks here, and a worker
 *      roused to steal them makes the lock cross cores). A direct switch
 *      (park.c) takes the oldest only while no worker idles or searches,
 *      as they could not take it. Thieves
 *      never take from it, but the monitor empties it into the global
 *      queue when the list waited a whole period behind one task that
 *      keeps the worker (computes, or blocks in a system call): nothing
 *      else would run them until that task gives the worker back. Every
 *      change is under w->yielded_lock, uncontended but for that rescue.
 *   6. The global queue (rt->inject): tasks spawned or woken off the
 *      workers, and the overflow of full deques. Any worker takes a batch,
 *      when its own places are empty and every GLOBAL_QUEUE_INTERVAL-th
 *      pick, so that it is never starved. It runs the first; the woken
 *      among the rest go to its ready queue and the spawns on top of its
 *      deque. On that turn Go and Tokio take one task, and spawns here go
 *      before older tasks in the deque (100 tasks spawned in order from a
 *      plain thread ran 0-16, 32-63, 17-31 on one worker). But the batch
 *      is what drains a spawner's overflow while it keeps its deque full:
 *      with one task a turn, a task spawning 200,000 on one worker had
 *      97,899 of them pending at once, where spawn_backpressure's bound is
 *      300. Woken tasks do not go on the deque: the running task's spawns
 *      would go over them, and a tree of spawns kept them under for as
 *      long as it grew (test_task's
 *      woken_from_a_thread_not_starved_by_spawning_tree).
 *
 * Or it runs, on one worker (w->current), or it is parked, in nobody's
 * hands but the waiter protocol's (wait.h).
 *
 * Why woken tasks stay with the waker (places 1 and 3): a task woken by a
 * running task, unlike a spawn, rouses no idle worker: the waker usually
 * parks soon, and the woken task then runs on the same warm core. Rousing
 * a worker on every wake (Go's wakep) makes it steal the tasks of a
 * message-passing pipeline and bounce the pipeline's cache lines between
 * cores on every message. For the same reason other workers, even awake
 * ones, leave them alone unless they are a burst or the worker is stuck. A
 * waker that keeps its worker instead arms the monitor (monitor.h), which
 * marks the worker stuck if they wait all its period. A spawn that puts
 * a task in the deque (or the global queue) rouses a worker at once, and
 * the deque is always open to thieves; one into an empty run-next slot
 * arms the monitor as a wake does (task.c).
 *
 * Invariants:
 *  - A task is in at most one place at a time.
 *  - A parked task is made runnable only through weft__task_ready(), and
 *    only after it switched out (park.c). A yielding task joins the
 *    yielded list only after it switched out too, as the monitor may move
 *    it to another worker from there.
 *  - Places 1, 3, 4 and 5 are filled only by their owner (the worker whose
 *    task, or whose scheduler, wakes the task), but for the sleepers the
 *    monitor wakes into a kept worker's ready queue (monitor.h); 2 is
 *    pushed only by its owner.
 *  - A yielded list that is not empty has the monitor armed, or a look of
 *    the monitor saw it (monitor.h's no lost arming).
 *  - Place 4 holds only tasks that ran (weft__task_ran): a direct switch
 *    takes from it and cannot start a task (weft__runq_take_ready checks
 *    it in debug builds).
 */
#ifndef WEFT_RUNTIME_RUNQ_H
#define WEFT_RUNTIME_RUNQ_H

#include <stdatomic.h>
#include <stdbool.h>

#include "debug.h"
#include "monitor.h"
#include "self.h"
#include "spinlock.h"
#include "task.h"
#include "worker.h"

#define GLOBAL_QUEUE_INTERVAL 61 /* prime, as Go's: the global queue's turn */
#define RUNNEXT_STREAK_MAX 32    /* then the deques get a turn */
#define WAKE_BURST 8             /* woken tasks queued before help is roused */

/* Pushes to w's deque, spilling half of it to the global queue when full.
 * Owner only. */
void weft__worker_push(struct weft_worker *w, struct weft_task *t);

/* Internal test interface, not API: if set, called by a worker that took
 * n tasks from queue q, before it puts the rest in its own places. */
extern void (*weft__runq_after_pop)(struct weft_inject *q, int n);

/* Takes a batch from the global queue: returns the first; of the rest,
 * those that ran go to w's ready queue and the spawns to its deque, each
 * in order. NULL if it was empty. */
struct weft_task *weft__runq_pop_global(struct weft_runtime *rt,
					struct weft_worker *w);

/* The global queue's turn, every GLOBAL_QUEUE_INTERVAL-th pick of the
 * scheduler: returns the task to run (the global queue's oldest or the
 * ready queue's, turn about), and puts the oldest woken task and the
 * oldest yielded task, if it waited a round, behind it. NULL if all were
 * empty. Out of line: the pick it is part of is inlined into park and
 * yield, and runs it once in 61. */
struct weft_task *weft__runq_global_turn(struct weft_runtime *rt,
					 struct weft_worker *w);

/* Moves up to half a deque of w's yielded tasks to its deque and returns
 * the oldest, or NULL if the monitor took them all meanwhile. */
struct weft_task *weft__runq_requeue_yielded(struct weft_runtime *rt,
					     struct weft_worker *w);

/* Whether w, about to sleep, would find a task it may take after all. */
bool weft__runq_any_work(struct weft_runtime *rt, struct weft_worker *w);

/* Whether other workers may take v's woken tasks: a burst, or v stuck. */
static inline bool weft__runq_woken_open(struct weft_worker *v)
{
	/* Relaxed: a hint for thieves; what they take they take by CAS. */
	return atomic_load_explicit(&v->stuck, memory_order_relaxed) ||
	       weft__deque_len(&v->woken) >= WAKE_BURST;
}

/* Takes the oldest of w's ready tasks (place 4), NULL if there were none.
 * One, not a batch for the deque: there the running task's next spawns
 * went over the rest, which waited as long as it and its spawns kept the
 * deque filled (test_task's woken_with_the_spawner_not_starved). Owner
 * only. */
struct weft_task *weft__runq_take_ready(struct weft_worker *w);

/* Moves half of v's ready tasks to w's ready queue, in order, behind
 * w's own; returns how many. */
int weft__runq_steal_ready(struct weft_worker *v, struct weft_worker *w);

/* Whether w has a task in its run-next slot, deques or ready queue. */
static inline bool weft__runq_has_local(struct weft_worker *w)
{
	return atomic_load(&w->runnext) || weft__deque_len(&w->deque) ||
	       weft__deque_len(&w->woken) || !weft__inject_empty(&w->ready);
}

/* Whether w's yielded list holds a task: a hint, as the monitor may empty
 * it at any time. Relaxed: whoever takes looks again under the lock. */
static inline bool weft__runq_has_yielded(struct weft_worker *w)
{
	return atomic_load_explicit(&w->yielded_head, memory_order_relaxed);
}

/* Appends t, which yielded, to w's yielded list, whose lock the caller
 * holds. Owner only. Returns whether the list was empty: its first task
 * arms the monitor, which reads the head under the lock
 * (weft__runq_yielded_locked), as a heap's first timer (monitor.h's no
 * lost arming). */
static inline bool weft__runq_append_yielded_locked(struct weft_worker *w,
						    struct weft_task *t)
{
	WEFT_ASSERT(weft__self() == w && weft__spin_held(&w->yielded_lock));
	struct weft_task *tail = w->yielded_tail;
	t->next = NULL;
	/* Relaxed: our own tick count (only the owner writes it). */
	t->yielded_tick = atomic_load_explicit(&w->ticks, memory_order_relaxed);
	w->yielded_tail = t;
	if (tail)
		tail->next = t;
	else /* relaxed: under the lock, which orders every change */
		atomic_store_explicit(&w->yielded_head, t,
				      memory_order_relaxed);
	return !tail;
}

/* The same, taking the lock: t switched out to the scheduler. */
static inline void weft__runq_append_yielded(struct weft_runtime *rt,
					     struct weft_worker *w,
					     struct weft_task *t)
{
	weft__spin_lock(&w->yielded_lock);
	bool first = weft__runq_append_yielded_locked(w, t);
	weft__spin_unlock(&w->yielded_lock);
	if (first)
		weft__monitor_arm(&rt->monitor);
}

/* Whether w's yielded list holds a task, read under its lock: the
 * monitor's look, after it set IDLE. A yield whose lock came first is
 * seen; one whose lock came after reads the state after the IDLE (the
 * lock orders them), so it arms the monitor. Any thread. */
static inline bool weft__runq_yielded_locked(struct weft_worker *w)
{
	weft__spin_lock(&w->yielded_lock);
	/* Relaxed: under the lock. */
	bool any = atomic_load_explicit(&w->yielded_head, memory_order_relaxed);
	weft__spin_unlock(&w->yielded_lock);
	return any;
}

/* Takes the oldest of w's yielded tasks, or NULL if the monitor took
 * them all meanwhile. Owner only; held: the caller holds the list's lock
 * (a direct yield's pick, park.c), else it is taken here. */
static inline __attribute__((always_inline)) struct weft_task *
weft__runq_pop_yielded(struct weft_worker *w, bool held)
{
	if (!held)
		weft__spin_lock(&w->yielded_lock);
	/* Relaxed: under the lock, which orders every change. */
	struct weft_task *t =
		atomic_load_explicit(&w->yielded_head, memory_order_relaxed);
	if (t) {
		atomic_store_explicit(&w->yielded_head, t->next,
				      memory_order_relaxed);
		if (!t->next)
			w->yielded_tail = NULL;
	}
	if (!held)
		weft__spin_unlock(&w->yielded_lock);
	return t;
}

/* A yielded task waits at most this many picks of its worker for the
 * tasks that were ahead of it (a full deque's worth), then takes the
 * global queue's next turn (weft__runq_pick). */
#define YIELD_ROUND_MAX WEFT_DEQUE_CAP

/* The oldest of w's yielded tasks if it joined the list YIELD_ROUND_MAX
 * or more ticks before tick, else NULL. Owner only. */
static inline struct weft_task *
weft__runq_pop_yielded_due(struct weft_worker *w, uint64_t tick)
{
	weft__spin_lock(&w->yielded_lock);
	/* Relaxed: under the lock, which orders every change. */
	struct weft_task *old =
		atomic_load_explicit(&w->yielded_head, memory_order_relaxed);
	struct weft_task *t = old && tick - old->yielded_tick >= YIELD_ROUND_MAX
				      ? weft__runq_pop_yielded(w, true)
				      : NULL;
	weft__spin_unlock(&w->yielded_lock);
	return t;
}

/* Moves every task of w's yielded list to the global queue, oldest first,
 * and returns how many: the monitor's rescue, while a task keeps w. */
int weft__runq_rescue_yielded(struct weft_runtime *rt, struct weft_worker *w);

/* Where weft__runq_run_next put the task the run-next slot held. */
enum weft__displaced {
	WEFT__DISPLACED_NONE,     /* the slot was empty */
	WEFT__DISPLACED_TO_DEQUE, /* a spawn, or the woken deque was full */
	WEFT__DISPLACED_TO_WOKEN, /* it ran before: the woken deque */
};

/* Puts t in the run-next slot of w, whose running task spawned or woke it
 * (spawned), and the task there before in the woken deque if it ran
 * before, else (a spawn) in the deque. Owner only. */
static inline enum weft__displaced
weft__runq_run_next(struct weft_worker *w, struct weft_task *t, bool spawned)
{
	WEFT_ASSERT(weft__self() == w);
	/* Relaxed: a hint for thieves (steal.c), which take the task itself
	 * by CAS on runnext, ordered by the exchange below. */
	atomic_store_explicit(&w->runnext_spawned, spawned,
			      memory_order_relaxed);
	/* seq_cst: the monitor's arming protocol (monitor.h); its release
	 * half publishes the task to a thief's CAS, its acquire half the
	 * task it displaces. */
	t = atomic_exchange(&w->runnext, t);
	if (!t)
		return WEFT__DISPLACED_NONE;
	if (weft__task_ran(t) && weft__deque_push(&w->woken, t))
		return WEFT__DISPLACED_TO_WOKEN;
	weft__worker_push(w, t);
	return WEFT__DISPLACED_TO_DEQUE;
}

/* Places 1 to 3, the owner's own: run-next first, for a warm cache, but
 * after RUNNEXT_STREAK_MAX run-next picks in a row every other place of
 * the owner's gets a turn: the deques, then the ready queue (by returning
 * NULL: weft__runq_pick takes it), then the oldest yielded task. Two tasks
 * waking each other would otherwise keep the tasks behind them waiting
 * for good while every other worker sleeps: the deques', and, before the
 * ready queue and the yielded list had their turn, the tasks this
 * worker's scheduler woke (a connection's, a sleeper's) and those that
 * yielded. The yielded task is taken here, not moved to the deque with
 * half the list as the scheduler does (weft__runq_requeue_yielded): there
 * idle workers would steal them, and a contended lock's tasks, which
 * gather in the list, would bounce its line between cores (bench/mutex
 * ran 4.9 times slower). Only the owner fills run-next, the ready queue
 * (but for the monitor's wakes while a task keeps it, which a look that
 * misses them leaves for the next pick) and the yielded list, so one look
 * tells whether each is worth taking. */
static inline __attribute__((always_inline)) struct weft_task *
weft__runq_take_local(struct weft_worker *w, bool yielded_held)
{
	WEFT_ASSERT(weft__self() == w);
	struct weft_task *t;
	/* Relaxed: a peek by the only filler; the exchange takes (acquire). */
	bool next = atomic_load_explicit(&w->runnext, memory_order_relaxed);
	if (next && w->runnext_streak < RUNNEXT_STREAK_MAX &&
	    (t = atomic_exchange(&w->runnext, NULL))) {
		w->runnext_streak++;
		return t;
	}
	if (!(weft__deque_len(&w->deque) &&
	      (t = weft__deque_take(&w->deque))) &&
	    !(weft__deque_len(&w->woken) &&
	      (t = weft__deque_take(&w->woken)))) {
		/* The streak stays over until the pick takes a ready task. */
		if (next && !weft__inject_empty(&w->ready))
			return NULL;
		t = next && weft__runq_has_yielded(w)
			    ? weft__runq_pop_yielded(w, yielded_held)
			    : NULL;
		if (!t && next)
			t = atomic_exchange(&w->runnext, NULL);
	}
	w->runnext_streak = 0;
	return t;
}

/* The oldest yielded task, for a direct switch: only while no worker idles
 * or searches, as they could not take it from here. */
static inline __attribute__((always_inline)) struct weft_task *
weft__runq_take_yielded_direct(struct weft_runtime *rt, struct weft_worker *w,
			       bool yielded_held)
{
	/* Relaxed: a heuristic; a stale count only keeps a yielded task on
	 * this busy worker one more round. */
	if (!weft__runq_has_yielded(w) ||
	    atomic_load_explicit(&rt->idle.sleeping, memory_order_relaxed) ||
	    atomic_load_explicit(&rt->idle.searching, memory_order_relaxed))
		return NULL;
	return weft__runq_pop_yielded(w, yielded_held);
}

/*
 * The owner's next task, the one place the pick order is written: every
 * GLOBAL_QUEUE_INTERVAL-th pick the global queue (if empty, the oldest
 * ready task), the oldest woken task and the oldest yielded task, if it
 * waited a round, first, then its run-next slot and deques, its ready
 * queue, its yielded list, the global queue; after RUNNEXT_STREAK_MAX
 * run-next picks in a row, run-next comes after the deques, the ready
 * queue and the yielded list, once.
 *
 * For a direct switch (direct: park or yield switching straight to the next
 * task) it declines, returning NULL so that the scheduler chooses, when it
 * is the global queue's turn (the scheduler then also runs I/O and timers),
 * when the next task never ran (the scheduler gives it a stack), and when
 * only yielded tasks remain and some worker idles (the scheduler moves
 * them to the deque, where idle workers can take them). Otherwise it is the
 * scheduler's pick, which stealing follows when it returns NULL. Inlined
 * into park and yield. Each pick counts a tick (the monitor and thieves
 * read them) and brings the global queue's turn nearer. yielded_held: the
 * caller holds w's yielded list's lock (a direct yield's).
 */
static inline __attribute__((always_inline)) struct weft_task *
weft__runq_pick(struct weft_runtime *rt, struct weft_worker *w, bool direct,
		bool yielded_held)
{
	struct weft_task *t = NULL;
	if (w->global_countdown <= 1) {
		if (direct)
			return NULL;
		w->global_countdown = GLOBAL_QUEUE_INTERVAL + 1;
		t = weft__runq_global_turn(rt, w);
	}
	int streak = w->runnext_streak;
	if (!t && (t = weft__runq_take_local(w, yielded_held)) && direct &&
	    !weft__task_ran(t)) {
		/* It never ran: the scheduler gives it a stack. And takes
		 * it: the streak take_local ended for it is put back, or
		 * the scheduler's pick, finding it over, took run-next
		 * again, and a spawn in the deque behind two tasks waking
		 * each other waited until a global queue's turn fell on a
		 * streak's end (900 rounds of the pair, not 16: test_task's
		 * spawn_not_starved_by_runnext). */
		w->runnext_streak = streak;
		weft__worker_push(w, t);
		return NULL;
	}
	/* Woken: they all ran before. A streak that take_local ended for
	 * them is over once one is taken (it reset the count itself for
	 * everything else it returned NULL for). */
	if (!t && !weft__inject_empty(&w->ready) &&
	    (t = weft__runq_take_ready(w)))
		w->runnext_streak = 0;
	if (!t && direct &&
	    !(t = weft__runq_take_yielded_direct(rt, w, yielded_held)))
		return NULL;
	if (!t && weft__runq_has_yielded(w))
		t = weft__runq_requeue_yielded(rt, w);
	if (!t)
		t = weft__runq_pop_global(rt, w);
	w->global_countdown--;
	/* Relaxed: only the owner writes ticks; the monitor and thieves
	 * compare two readings, a heuristic that orders nothing. */
	uint64_t tick = atomic_load_explicit(&w->ticks, memory_order_relaxed);
	atomic_store_explicit(&w->ticks, tick + 1, memory_order_relaxed);
	if (t && direct) /* the scheduler counts its own runs, stolen too */
		weft__stat_add(&w->stats.task_runs, 1);
	return t;
}

#endif
