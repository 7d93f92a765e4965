/* The monitor thread: see monitor.h. */
#include <pthread.h>
#include <time.h>

#include "weft/task.h"
#include "drivers/readiness/pollset.h"
#include "futex.h"
#include "idle.h"
#include "timer.h"
#include "worker.h"

/* The first look comes soon after arming; while tasks keep waiting but
 * never stuck, the looks back off to PERIOD_MAX, so a monitor that has
 * nothing to rescue costs next to nothing. It disarms only after several
 * looks found nothing waiting: a pipeline whose run-next slot is empty
 * half the time would otherwise re-arm it, a futex wake on the waker's
 * path, thousands of times a second. */
#define PERIOD_MIN_NS (100 * 1000)
#define PERIOD_MAX_NS (2 * 1000 * 1000)
#define LOOKS_BEFORE_BACKOFF 8
#define IDLE_LOOKS_BEFORE_DISARM 8

struct look {
	struct weft_task *runnext;
	int64_t queued, woken, woken_top, timers;
	uint64_t ticks;
};

void weft__monitor_arm_slow(struct weft_monitor *m)
{
	int idle = MON_IDLE;
	if (atomic_compare_exchange_strong(&m->state, &idle, MON_ARMED))
		weft__futex_wake(&m->state, 1);
}

/* Counts a rescue for weft_metrics: only this thread writes the count. */
static void intervened(struct weft_monitor *m)
{
	weft__stat_add(&m->interventions, 1);
}

/* One look at every worker. Returns how many had tasks or timers waiting;
 * marks a worker stuck (and sets *stuck) if it had the same tasks waiting
 * as last time behind a task that ran all along (its tick count did not
 * move), or the same oldest woken task while it ran others. Sets *queued
 * if a worker's deque held tasks at both looks, though it ran on: they
 * are open to thieves, and an idle worker would take some. The due timers
 * of a worker kept by one task are fired from here: their tasks go to the
 * global queue. */
static int look_at_workers(struct weft_runtime *rt, struct look *last,
			   bool *stuck, bool *queued)
{
	int busy = 0;
	for (int i = 0; i < rt->nworkers; i++) {
		struct weft_worker *w = &rt->workers[i];
		/* Lengths and tops are relaxed readings: a heuristic that
		 * only decides when to mark and rouse. The run-next slot and
		 * the timer count are read seq_cst, for the arming protocol
		 * (monitor.h). */
		struct look now = { atomic_load(&w->runnext),
				    weft__deque_len(&w->deque),
				    weft__deque_len(&w->woken),
				    weft__deque_top(&w->woken),
				    weft__timers_armed(&w->timers),
				    atomic_load(&w->ticks) };
		bool still = now.ticks == last[i].ticks;
		bool queued_both = now.queued && last[i].queued;
		if (now.runnext || now.queued || now.woken || now.timers)
			busy++;
		if (queued_both)
			*queued = true;
		if ((still &&
		     ((now.runnext && now.runnext == last[i].runnext) ||
		      queued_both)) ||
		    (now.woken && last[i].woken &&
		     now.woken_top == last[i].woken_top)) {
			atomic_store(&w->stuck, true);
			*stuck = true;
			intervened(&rt->monitor);
		}
		if (still && now.timers && last[i].timers) {
			weft__timers_run(w);
			intervened(&rt->monitor);
		}
		last[i] = now;
	}
	return busy;
}

/* One look at the poll set: if no worker sleeps in it and none harvested
 * it since the last look (the one that left it keeps its worker, say),
 * harvest it here; the tasks it wakes go to the global queue and rouse an
 * idle worker (park.c). Go's sysmon polls the network when nobody has for
 * 10 ms; this looks once a period, 0.1-2 ms. Returns whether the set is
 * unattended, which keeps the monitor armed. */
static bool look_at_poll_set(struct weft_monitor *m, uint64_t *last)
{
	bool unattended = weft__pollset_unattended();
	if (unattended && weft__pollset_harvests() == *last &&
	    weft__pollset_harvest(0, false) > 0)
		intervened(m);
	*last = weft__pollset_harvests();
	return unattended;
}

/* Nothing to watch: disarm, unless a wake filled a slot or the poller
 * left the poll set meanwhile. */
static void disarm(struct weft_runtime *rt, struct weft_monitor *m,
		   struct look *last)
{
	int armed = MON_ARMED;
	if (!atomic_compare_exchange_strong(&m->state, &armed, MON_IDLE))
		return; /* stopping */
	/* The looks below read the timer counts seq_cst: a relaxed load
	 * could pass this CAS's store on ARM. In the single order of seq_cst
	 * operations a timer armed (timer.c's seq_cst store of len) after
	 * this CAS reads IDLE and arms again; one armed before it is seen.
	 * (Not a fence: ThreadSanitizer does not model one.) */
	bool stuck = false, queued = false;
	if (look_at_workers(rt, last, &stuck, &queued) ||
	    weft__pollset_unattended()) {
		armed = MON_IDLE;
		atomic_compare_exchange_strong(&m->state, &armed, MON_ARMED);
	}
}

static void *monitor_main(void *arg)
{
	struct weft_runtime *rt = arg;
	struct weft_monitor *m = &rt->monitor;
	struct look last[WEFT_WORKERS_MAX] = { { 0 } };
	uint64_t last_harvests = 0;
	long period = PERIOD_MIN_NS;
	int calm = 0, idle = 0;
	for (;;) {
		int s = atomic_load(&m->state);
		if (s == MON_STOP)
			break;
		long stall_period = weft__stall_period(rt);
		if (s == MON_IDLE) {
			/* Stall reports want a look now and then, armed or
			 * not: a task spinning alone arms nothing. */
			weft__futex_wait(&m->state, MON_IDLE,
					 stall_period > 0 ? stall_period : 0);
			weft__stall_check(rt);
			period = PERIOD_MIN_NS;
			calm = idle = 0;
			continue;
		}
		weft__futex_wait(&m->state, MON_ARMED,
				 stall_period > 0 && stall_period < period
					 ? stall_period
					 : period);
		weft__stall_check(rt);
		bool stuck = false, queued = false;
		int busy = look_at_workers(rt, last, &stuck, &queued);
		busy += look_at_poll_set(m, &last_harvests);
		idle = busy ? 0 : idle + 1;
		if (stuck) {
			weft__notify_work(rt);
			period = PERIOD_MIN_NS;
			calm = 0;
			continue;
		}
		/* Queued tasks are not stuck: their worker runs them in
		 * turn. A roused worker shares them, and the looks back off
		 * meanwhile. */
		if (queued && weft__notify_work(rt))
			intervened(m);
		if (idle >= IDLE_LOOKS_BEFORE_DISARM) {
			disarm(rt, m, last);
			idle = 0;
		} else if (++calm >= LOOKS_BEFORE_BACKOFF &&
			   period < PERIOD_MAX_NS) {
			period *= 2;
			calm = 0;
		}
	}
	return NULL;
}

int weft__monitor_start(struct weft_runtime *rt)
{
	struct weft_monitor *m = &rt->monitor;
	atomic_init(&m->state, MON_IDLE);
	if (rt->nworkers < 2)
		return 0; /* nobody to rescue a stuck task anyway */
	int r = -pthread_create(&m->thread, NULL, monitor_main, rt);
	m->started = !r;
	if (!r) /* named before weft_run goes on: top, perf and gdb see it */
		pthread_setname_np(m->thread, "weft-monitor");
	return r;
}

void weft__monitor_stop(struct weft_runtime *rt)
{
	struct weft_monitor *m = &rt->monitor;
	if (!m->started)
		return;
	atomic_store(&m->state, MON_STOP);
	weft__futex_wake(&m->state, 1);
	pthread_join(m->thread, NULL);
	m->started = false;
}
