/* Stealing: see steal.h. */
#include "runq.h"
#include "steal.h"

static uint64_t next_rand(struct weft_worker *w)
{
	w->rng ^= w->rng << 13;
	w->rng ^= w->rng >> 7;
	w->rng ^= w->rng << 17;
	return w->rng;
}

/* A steal of n tasks by w, for weft_metrics. */
static void counted(struct weft_worker *w, uint64_t n)
{
	weft__stat_add(&w->stats.steals, 1);
	weft__stat_add(&w->stats.tasks_stolen, n);
}

/* Steals half of deque d into ours; returns one task to run now. */
static struct weft_task *steal_half(struct weft_deque *d, struct weft_worker *w)
{
	int64_t n = (weft__deque_len(d) + 1) / 2, taken = 0;
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
		taken++;
		if (!first)
			first = x;
		else
			weft__worker_push(w, x);
	}
	if (taken)
		counted(w, (uint64_t)taken);
	return first;
}

/* Moves half of v's ready queue into ours; returns whether it took any. */
static bool steal_ready(struct weft_worker *v, struct weft_worker *w)
{
	int n = weft__runq_steal_ready(v, w);
	if (n)
		counted(w, (uint64_t)n);
	return n;
}

/* v's run-next task, for w: at once if the monitor found v stuck; if it is
 * a spawn, when v is still busy with the same task a moment later. A woken
 * one otherwise stays for v, whose running task will likely park soon. */
static struct weft_task *steal_runnext(struct weft_worker *v,
				       struct weft_worker *w, bool stuck)
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
	counted(w, 1);
	return t;
}

/* v's tasks, as runq.h allows: its deque always; its woken tasks when
 * open; run-next when from_runnext or stuck. */
static struct weft_task *steal_from(struct weft_worker *v,
				    struct weft_worker *w, bool from_runnext)
{
	struct weft_task *t = steal_half(&v->deque, w);
	if (t)
		return t;
	/* Relaxed, here and below: the monitor's mark is a hint; tasks move
	 * only through the deques' and run-next's CAS. */
	bool stuck = atomic_load_explicit(&v->stuck, memory_order_relaxed);
	if (steal_ready(v, w) && (t = weft__runq_take_ready(w)))
		return t; /* our oldest, unless another thief took them */
	if (weft__runq_woken_open(v))
		t = steal_half(&v->woken, w);
	if (!t && (stuck || from_runnext))
		t = steal_runnext(v, w, stuck);
	if (stuck)
		atomic_store_explicit(&v->stuck, false, memory_order_relaxed);
	return t;
}

struct weft_task *weft__steal(struct weft_runtime *rt, struct weft_worker *w,
			      bool from_runnext)
{
	int n = rt->nworkers;
	int start = (int)(next_rand(w) % (uint64_t)n);
	for (int i = 0; i < n; i++) {
		struct weft_worker *v = &rt->workers[(start + i) % n];
		struct weft_task *t;
		if (v != w && (t = steal_from(v, w, from_runnext)))
			return t;
	}
	return weft__runq_pop_global(rt, w);
}

atomic_ulong weft__reliefs;

/* Everything stranded on a stalled v: half of each place, into w's deque
 * (the oldest of each on top: they waited longest), but the ready tasks
 * into w's ready queue, behind its own. */
static void take_stranded(struct weft_worker *v, struct weft_worker *w)
{
	struct weft_task *t;
	/* Relaxed: a count, read by a test after the run's tasks joined. */
	atomic_fetch_add_explicit(&weft__reliefs, 1, memory_order_relaxed);
	if ((t = steal_half(&v->deque, w)))
		weft__worker_push(w, t);
	steal_ready(v, w);
	if ((t = steal_half(&v->woken, w)))
		weft__worker_push(w, t);
	if ((t = steal_runnext(v, w, true)))
		weft__worker_push(w, t);
}

void weft__steal_relieve(struct weft_runtime *rt, struct weft_worker *w)
{
	struct weft_relief *r = &w->relief;
	int n = rt->nworkers;
	if (n < 2)
		return;
	if (r->victim == w->id)
		r->victim = (r->victim + 1) % n;
	struct weft_worker *v = &rt->workers[r->victim];
	/* Relaxed: readings compared, a heuristic; the tasks move only
	 * through the places' own CAS, as for any thief. */
	uint64_t ticks = atomic_load_explicit(&v->ticks, memory_order_relaxed);
	uint64_t now = weft__cycles();
	if (r->seen && ticks == r->ticks) {
		if (weft__tsc_ns(now - r->since) < RELIEF_STALL_NS)
			return; /* not stalled long enough yet */
		take_stranded(v, w);
	}
	if (r->seen && n > 2) { /* it moved, or was relieved: the next */
		r->victim = (r->victim + 1) % n;
		r->seen = false;
		return;
	}
	r->seen = true;
	r->ticks = ticks;
	r->since = now;
}
