/* Where a runnable task lives: the owner's moves between places (runq.h). */
#include "idle.h"
#include "inject.h"
#include "runq.h"

#define INJECT_BATCH 32

void weft__worker_push(struct weft_worker *w, struct weft_task *t)
{
	WEFT_ASSERT(weft__self() == w); /* the deque's owner end */
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

void (*weft__runq_after_pop)(struct weft_inject *q, int n);

/* Up to max tasks from q, as a list; NULL if it was empty. */
static struct weft_task *pop_list(struct weft_inject *q, int max, int *n)
{
	struct weft_task *first = weft__inject_pop(q, max, n);
	if (first && __builtin_expect(weft__runq_after_pop != NULL, 0))
		weft__runq_after_pop(q, *n);
	return first;
}

/* Offers tasks w took from the global queue and put in its own places,
 * as any producer offers what it publishes (idle.h). A worker that went
 * to sleep between the pop and the pushes saw them in neither place, and
 * would sleep on while the task w runs, if long, keeps w (Go's wakep
 * after a grab from its global queue). A searcher's end of search offers
 * them already. */
static void offer_taken(struct weft_runtime *rt, struct weft_worker *w)
{
	if (!w->searching)
		weft__notify_work(rt);
}

struct weft_task *weft__runq_pop_global(struct weft_runtime *rt,
					struct weft_worker *w)
{
	int n;
	struct weft_task *t = pop_list(&rt->inject, INJECT_BATCH, &n);
	if (!t || !t->next)
		return t;
	/* The rest behind the tasks ahead of them: those that ran in the
	 * ready queue, in order, in one push (it holds only tasks that ran:
	 * a direct switch takes from it, and only the scheduler starts a
	 * task); the spawns on the deque, the oldest on top (the owner's end
	 * takes the last pushed first). */
	struct weft_task *woken = NULL, *woken_last = NULL;
	struct weft_task *spawns[INJECT_BATCH];
	int k = 0;
	for (struct weft_task *x = t->next; x; x = x->next) {
		if (!weft__task_ran(x))
			spawns[k++] = x;
		else if (woken_last)
			woken_last = woken_last->next = x;
		else
			woken = woken_last = x;
	}
	if (woken)
		weft__inject_push_list(&w->ready, woken, woken_last);
	while (k > 0)
		weft__worker_push(w, spawns[--k]);
	offer_taken(rt, w);
	return t;
}

struct weft_task *weft__runq_take_ready(struct weft_worker *w)
{
	int n;
	struct weft_task *t = weft__inject_pop(&w->ready, 1, &n);
	WEFT_ASSERT(!t || weft__task_ran(t)); /* a direct switch may take it */
	return t;
}

/* The global queue's oldest task or the oldest ready task, the ready queue
 * first on every other turn. The other picks reach the ready queue only
 * once the deques run dry, and tasks that keep the deque filled (each
 * spawning the next) would leave a sleeper or a connection woken there,
 * and the woken rest of each batch taken from the global queue, waiting
 * as long as they went on, with no thief to take them while every worker
 * was as busy. Turn about, as a plain thread may keep the global queue
 * filled and a server's scheduler its ready queue. Run now, not moved to
 * the deque, where the next spawn would go over it. */
static struct weft_task *turn_take(struct weft_runtime *rt,
				   struct weft_worker *w)
{
	struct weft_task *t = NULL;
	bool ready_first = w->turn_ready_first;
	w->turn_ready_first = !ready_first;
	if (ready_first && !weft__inject_empty(&w->ready))
		t = weft__runq_take_ready(w);
	if (!t)
		t = weft__runq_pop_global(rt, w);
	if (!t && !weft__inject_empty(&w->ready))
		t = weft__runq_take_ready(w);
	return t;
}

/* Puts x, which ran before, in w's ready queue behind the turn's task:
 * not on top of the deque, where the spawns of the task that runs first
 * went over it, and a tree of spawns kept it under (the oldest woken
 * task 2,200-2,800 tree tasks late, a yield 2,500: test_task's
 * woken_by_tree_not_starved_by_it and
 * yielder_not_starved_by_spawning_tree). The ready queue is taken first
 * at every other turn, and the monitor watches it (runq.h). */
static void ready_behind(struct weft_runtime *rt, struct weft_worker *w,
			 struct weft_task *x)
{
	weft__inject_push(&w->ready, x);
	weft__monitor_arm(&rt->monitor);
}

/* Of t, the turn's task, and y, a yielded task whose turn came, returns
 * the one to run now. A t that ran before runs, and y waits behind it
 * (ready_behind). A spawn that never ran goes to the deque instead, where
 * spawns wait, offered as the global queue's batch is (offer_taken),
 * and y runs: putting y behind it made a spawner that yielded on a full
 * deque (bench/spawn_many) spawn 12% slower (bench/README.md,
 * fifty-fourth session). */
static struct weft_task *turn_run_yielded(struct weft_runtime *rt,
					  struct weft_worker *w,
					  struct weft_task *t,
					  struct weft_task *y)
{
	if (!t)
		return y;
	if (weft__task_ran(t)) {
		ready_behind(rt, w, y);
		return t;
	}
	weft__worker_push(w, t);
	offer_taken(rt, w);
	return y;
}

struct weft_task *weft__runq_global_turn(struct weft_runtime *rt,
					 struct weft_worker *w)
{
	struct weft_task *t = turn_take(rt, w);
	/* The oldest woken task's turn too, so that the k-th oldest waits k
	 * turns at most. The owner takes that deque newest first, and a task
	 * woken under others waited for as long as each take found a newer
	 * one: three tasks in a ring, one waking two each round, kept a task
	 * there for good on a worker of its own, with no streak of run-next
	 * picks to end (test_task's woken_not_starved_by_ring). Taken from
	 * the thieves' end, as a thief would (on a lost race a thief took
	 * it). */
	struct weft_task *o = weft__deque_len(&w->woken)
				      ? weft__deque_steal(&w->woken)
				      : WEFT_STEAL_EMPTY;
	if (o == WEFT_STEAL_RETRY)
		o = NULL;
	if (o && t)
		ready_behind(rt, w, o);
	else if (o)
		t = o;
	/* The oldest yielded task's turn too, once it waited a round. The
	 * other places come first in every pick, and a worker whose picks
	 * keep finding one of them (spawns in its deque, joiners woken into
	 * its ready queue) never reached the yielded list: its tasks waited
	 * as long as that work went on. Asyncio's sleep(0) waits one round
	 * of the tasks ready before it; here up to YIELD_ROUND_MAX picks, so
	 * that a spawner that yields on a full deque (task.c) still lets the
	 * deque's tasks run first, and then at most this interval per task
	 * ahead of it in the list. Relaxed: our own tick count. */
	struct weft_task *y =
		weft__runq_has_yielded(w)
			? weft__runq_pop_yielded_due(
				  w, atomic_load_explicit(&w->ticks,
							  memory_order_relaxed))
			: NULL;
	return y ? turn_run_yielded(rt, w, t, y) : t;
}

int weft__runq_steal_ready(struct weft_worker *v, struct weft_worker *w)
{
	long half = (weft__inject_len(&v->ready) + 1) / 2;
	int n = 0;
	struct weft_task *first =
		half ? pop_list(&v->ready,
				half < INJECT_BATCH ? (int)half : INJECT_BATCH,
				&n)
		     : NULL;
	if (first) {
		struct weft_task *last = first;
		while (last->next)
			last = last->next;
		weft__inject_push_list(&w->ready, first, last);
	}
	return n;
}

/* Up to half a deque at a time, so it never spills: the oldest last, so the
 * owner's end takes them oldest first (round-robin), and thieves can take
 * them meanwhile. */
struct weft_task *weft__runq_requeue_yielded(struct weft_runtime *rt,
					     struct weft_worker *w)
{
	WEFT_ASSERT(weft__self() == w);
	struct weft_task *rest[WEFT_DEQUE_CAP / 2 - 1];
	int n = 0;
	weft__spin_lock(&w->yielded_lock);
	/* Relaxed: under the lock, which orders every change. */
	struct weft_task *oldest =
		atomic_load_explicit(&w->yielded_head, memory_order_relaxed);
	struct weft_task *t = oldest ? oldest->next : NULL;
	while (t && n < WEFT_DEQUE_CAP / 2 - 1) {
		rest[n++] = t;
		t = t->next;
	}
	if (oldest) {
		/* Relaxed: under the lock, as the load above. */
		atomic_store_explicit(&w->yielded_head, t,
				      memory_order_relaxed);
		if (!t)
			w->yielded_tail = NULL;
	}
	weft__spin_unlock(&w->yielded_lock);
	for (int i = n - 1; i >= 0; i--)
		weft__worker_push(w, rest[i]);
	/* More than two moved: open to thieves, but not offered, as a small
	 * woken batch is (worker.c's share_woken). Rousing an idle worker here
	 * on every requeue made it steal a contended lock's tasks, whose
	 * hand-overs had gathered them on this worker, and bounce the lock's
	 * line between cores: bench/mutex ran at 33 ns an operation, 16 ns
	 * without (bench/README.md, eighteenth session). The monitor rouses
	 * one if they are still waiting at its next look (monitor.h). An
	 * arming lost to a disarm that read the deque before our pushes
	 * (relaxed lengths) costs no task: this worker runs them all, and its
	 * next requeue arms again. */
	if (n > 1)
		weft__monitor_arm(&rt->monitor);
	return oldest;
}

int weft__runq_rescue_yielded(struct weft_runtime *rt, struct weft_worker *w)
{
	weft__spin_lock(&w->yielded_lock);
	/* Relaxed: under the lock, which orders every change. */
	struct weft_task *first =
		atomic_load_explicit(&w->yielded_head, memory_order_relaxed);
	struct weft_task *last = w->yielded_tail;
	atomic_store_explicit(&w->yielded_head, NULL, memory_order_relaxed);
	w->yielded_tail = NULL;
	weft__spin_unlock(&w->yielded_lock);
	if (!first)
		return 0;
	int n = 1;
	for (struct weft_task *t = first; t != last; t = t->next)
		n++;
	weft__inject_push_list(&rt->inject, first, last);
	return n;
}

/* What a searcher may take (see steal.c), checked after it joined the idle
 * set, so that a notify it missed while searching is not lost. */
bool weft__runq_any_work(struct weft_runtime *rt, struct weft_worker *w)
{
	if (!weft__inject_empty_for_sleep(&rt->inject) ||
	    atomic_load(&w->runnext))
		return true;
	for (int i = 0; i < rt->nworkers; i++) {
		struct weft_worker *v = &rt->workers[i];
		if (weft__deque_len(&v->deque) ||
		    !weft__inject_empty_for_sleep(&v->ready) ||
		    (v != w && weft__runq_woken_open(v)))
			return true;
	}
	return false;
}
