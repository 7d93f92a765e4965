/* weft_metrics: reads the counters every worker keeps (see metrics.h). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "metrics.h"
#include "timer.h"
#include "worker.h"
#include "blocking.h"
#include "debug.h"
#include "task.h"

uint64_t weft__tsc_mult;
uint64_t weft__latency_mask = WEFT_LATENCY_SAMPLE - 1;

int64_t weft__latency_config(const struct weft_config *cfg)
{
	enum weft_latency_mode mode = cfg ? cfg->latency : WEFT_LATENCY_DEFAULT;
	if (mode == WEFT_LATENCY_DEFAULT) {
		const char *env = getenv("WEFT_LATENCY");
		if (!env || !*env || !strcmp(env, "sampled"))
			mode = WEFT_LATENCY_SAMPLED;
		else if (!strcmp(env, "exact"))
			mode = WEFT_LATENCY_EXACT;
		else
			return -EINVAL;
	}
	if (mode == WEFT_LATENCY_SAMPLED)
		return WEFT_LATENCY_SAMPLE - 1;
	if (mode == WEFT_LATENCY_EXACT)
		return 0;
	return -EINVAL;
}

/* The clock and the counter at one moment: the clock read between two
 * counter reads, the counter taken halfway, the closest of three tries.
 * A thread that loses its CPU between the two reads (a preemption on a
 * busy machine) pairs times milliseconds apart, and that one pair at
 * either end of the calibration skewed the factor for the whole run,
 * by thousands of times (test_observe
 * latency_calibration_survives_a_delay). */
static void read_both(int64_t *t, uint64_t *c)
{
	uint64_t best = 0;

	for (int i = 0; i < 3; i++) {
		uint64_t a = weft__cycles();
		int64_t now = weft_now();
		uint64_t b = weft__cycles();
		if (i == 0 || b - a < best) {
			best = b - a;
			*t = now;
			*c = a + (b - a) / 2;
		}
	}
}

void weft__latency_start(uint64_t mask)
{
	weft__latency_mask = mask;
	int64_t t0, t1;
	uint64_t c0, c1;
	read_both(&t0, &c0);
	do
		read_both(&t1, &c1);
	while (t1 - t0 < 20000 || c1 == c0);
	weft__tsc_mult =
		(uint64_t)((((unsigned __int128)(t1 - t0)) << 32) / (c1 - c0));
}

/* A counter, relaxed: each is a gauge on its own. Where two must be read
 * in an order (read_io; the finished tasks in weft_metrics), the first
 * is an acquire load, and this one comes after it. */
static uint64_t load(_Atomic uint64_t *c)
{
	return atomic_load_explicit(c, memory_order_relaxed);
}

static uint64_t depth(int64_t n)
{
	return n > 0 ? (uint64_t)n : 0;
}

void (*weft__metrics_io_hook)(void);

/* The driver's I/O counts. Completions before submissions: the owner counts
 * an operation submitted before it counts it completed, and publishes the
 * completions with a release store, so with this acquire load every
 * operation counted completed here is counted submitted next:
 * io_completed <= io_submitted, and io_in_flight counts every operation in
 * flight throughout. Read the other way, one submitted and completed
 * between the two reads counted as completed only, and io_in_flight read
 * low by one for each. */
static void read_io(struct weft__driver *d, struct weft_worker_metrics *m)
{
	m->io_completed =
		atomic_load_explicit(&d->ops_completed, memory_order_acquire);
	/* acquire: pairs with the test's release store of the hook. */
	void (*hook)(void) =
		__atomic_load_n(&weft__metrics_io_hook, __ATOMIC_ACQUIRE);
	if (hook)
		hook();
	m->io_submitted = load(&d->ops_submitted);
	WEFT_ASSERT(m->io_completed <= m->io_submitted);
	m->io_in_flight = m->io_submitted - m->io_completed;
}

/* w's figures but tasks_finished, which the callers read each in the order
 * it needs. */
static void read_worker(struct weft_worker *w, struct weft_worker_metrics *m)
{
	struct weft__worker_stats *s = &w->stats;
	memset(m, 0, sizeof(*m));
	m->tasks_spawned = load(&w->tasks_spawned);
	m->task_runs = load(&s->task_runs);
	m->steals = load(&s->steals);
	m->tasks_stolen = load(&s->tasks_stolen);
	m->parks = load(&s->parks);
	m->unparks = load(&s->unparks);
	/* relaxed: a gauge; the task in the slot is not read. */
	m->runnext_depth =
		atomic_load_explicit(&w->runnext, memory_order_relaxed) != NULL;
	m->local_depth =
		depth(weft__deque_len(&w->deque) + weft__inject_len(&w->ready));
	m->woken_depth = depth(weft__deque_len(&w->woken));
	/* acquire: pairs with the worker's store once its driver is made.
	 * weft__rt is published before the workers make theirs, so a reader
	 * during start-up (or of a worker whose setup failed) finds none. */
	struct weft__driver *d = __atomic_load_n(&w->driver, __ATOMIC_ACQUIRE);
	if (d)
		read_io(d, m);
	/* relaxed: two gauges, len and stale, read apart; depth() clamps
	 * what their race leaves below 0. */
	m->timers_armed = depth(
		weft__timers_pending(&w->timers) -
		atomic_load_explicit(&w->timers.stale, memory_order_relaxed));
	for (int i = 0; i < WEFT_LATENCY_BUCKETS; i++)
		m->latency_ns[i] = load(&s->latency[i]);
}

static int worker_metrics(struct weft_runtime *rt, int worker,
			  struct weft_worker_metrics *m)
{
	if (!rt)
		return -ESRCH;
	if (!m || worker < 0 || worker >= rt->nworkers)
		return -EINVAL;
	read_worker(&rt->workers[worker], m);
	/* One worker's spawns and finishes count different tasks: no order. */
	m->tasks_finished = load(&rt->workers[worker].tasks_finished);
	return 0;
}

/* Both readers run between weft__foreign_enter and _leave, as a spawn
 * from a plain thread: an exporter thread cannot know when weft_run is
 * about to return, and weft_run frees the runtime only after it
 * unpublished it and waited for them (test_observe
 * metrics_during_shutdown read freed memory before). */
int weft_worker_metrics(int worker, struct weft_worker_metrics *m)
{
	int phase = weft__foreign_enter();
	int r = worker_metrics(atomic_load(&weft__rt), worker, m);
	weft__foreign_leave(phase);
	return r;
}

/* Adds a worker's figures to the runtime-wide sums, tasks_finished
 * excepted (weft_metrics reads those first). */
static void add_worker(struct weft_metrics *m,
		       const struct weft_worker_metrics *w)
{
	m->tasks_spawned += w->tasks_spawned;
	m->task_runs += w->task_runs;
	m->steals += w->steals;
	m->tasks_stolen += w->tasks_stolen;
	m->worker_parks += w->parks;
	m->worker_unparks += w->unparks;
	m->runnext_depth += w->runnext_depth;
	m->local_depth += w->local_depth;
	m->woken_depth += w->woken_depth;
	m->io_submitted += w->io_submitted;
	m->io_completed += w->io_completed;
	m->io_in_flight += w->io_in_flight;
	m->timers_armed += w->timers_armed;
	for (int i = 0; i < WEFT_LATENCY_BUCKETS; i++)
		m->latency_ns[i] += w->latency_ns[i];
}

static int metrics(struct weft_runtime *rt, struct weft_metrics *m)
{
	if (!rt)
		return -ESRCH;
	if (!m)
		return -EINVAL;
	memset(m, 0, sizeof(*m));
	m->version = WEFT_METRICS_VERSION;
	m->workers = rt->nworkers;
	/* Every finish before any spawn, as weft__live_tasks: a task counted
	 * finished here was counted spawned before it ran, so the spawns read
	 * next include it: finished <= spawned, and alive counts every task
	 * alive between the two passes, the reader among them. Summed worker
	 * by worker, a task spawned after its spawner's count was read and
	 * finished on a worker read later counted as finished only, and alive
	 * could say 0 to the task reading it. Acquire: pairs with the
	 * finisher's seq_cst add, which follows the spawn's. */
	for (int i = 0; i < rt->nworkers; i++)
		m->tasks_finished +=
			atomic_load_explicit(&rt->workers[i].tasks_finished,
					     memory_order_acquire);
	/* Spawns off the workers; the workers' own come with add_worker. */
	m->tasks_spawned = load(&rt->foreign_spawned);
	for (int i = 0; i < rt->nworkers; i++) {
		struct weft_worker_metrics w;
		read_worker(&rt->workers[i], &w);
		add_worker(m, &w);
	}
	m->tasks_alive = m->tasks_spawned > m->tasks_finished
				 ? m->tasks_spawned - m->tasks_finished
				 : 0;
	m->global_depth = depth(weft__inject_len(&rt->inject));
	weft__blocking_stats(&m->blocking_threads, &m->blocking_busy,
			     &m->blocking_queued);
	m->monitor_interventions = load(&rt->monitor.interventions);
	m->stall_reports = load(&rt->monitor.stall.reports);
	m->crowded = weft__crowded(&rt->crowd);
	m->crowd_changes = load(&rt->crowd.changes);
	return 0;
}

int weft_metrics(struct weft_metrics *m)
{
	int phase = weft__foreign_enter(); /* as weft_worker_metrics */
	int r = metrics(atomic_load(&weft__rt), m);
	weft__foreign_leave(phase);
	return r;
}
