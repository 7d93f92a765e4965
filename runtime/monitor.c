/* The monitor thread: see monitor.h. */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <time.h>

#include "weft/task.h"
#include "drivers/readiness/pollset.h"
#include "futex.h"
#include "idle.h"
#include "park.h"
#include "runq.h"
#include "task.h"
#include "timer.h"
#include "worker.h"

/* The first look comes soon after arming (unless the monitor disarmed
 * just before: REARM_WARM_NS); while tasks keep waiting but
 * never stuck, the looks back off to PERIOD_MAX, so a monitor that has
 * nothing to rescue costs next to nothing. It disarms only after several
 * looks found nothing waiting: a pipeline whose run-next slot is empty
 * half the time would otherwise re-arm it, a futex wake on the waker's
 * path, thousands of times a second. */
#define PERIOD_MIN_NS (100 * 1000)
#define PERIOD_MAX_NS (2 * 1000 * 1000)
#define LOOKS_BEFORE_BACKOFF 8
/* A monitor armed again within this of its disarm resumes the period it
 * had backed off to, not PERIOD_MIN: a server at partial load leaves the
 * poll set and re-arms it every few milliseconds, and restarting at
 * 0.1 ms each time made 2,000 looks a second, 5% of such a server's CPU
 * (bench/README.md, thirty-second session). A task stranded then waits up
 * to two looks at the longest period, as one woken while the looks are
 * backed off always has. */
#define REARM_WARM_NS (10 * 1000 * 1000)
#define IDLE_LOOKS_BEFORE_DISARM 8
/* A worker whose first timer is due within this has timers waiting: the
 * monitor stays armed for them. Two periods, so that once it wakes for a
 * timer it has looked once, at the longest period, before the timer is
 * due, and fires it at the next look if a task keeps its worker. */
#define TIMER_SOON_NS (2 * PERIOD_MAX_NS)

struct look {
	struct weft_task *runnext;
	int64_t queued, woken, woken_top;
	long ready;   /* tasks in its ready queue (inject.h's gauge) */
	bool timers;  /* its first timer is due soon */
	bool yielded; /* its yielded list holds a task */
	bool marked;  /* this look marked it stuck */
	uint64_t ticks;
};

void weft__monitor_arm_slow(struct weft_monitor *m)
{
	int idle = MON_IDLE;
	if (atomic_compare_exchange_strong(&m->state, &idle, MON_ARMED))
		weft__futex_wake(&m->state, 1);
}

/* Counts a rescue for weft_metrics: only this thread writes the count,
 * so weft__stat_add's relaxed load and store add; readers take it as a
 * gauge, ordered by nothing. */
static void intervened(struct weft_monitor *m)
{
	weft__stat_add(&m->interventions, 1);
}

/*
 * Marks w stuck; marked_before: the last look marked it too. A stuck
 * episode is one rescue, however many looks see it: it goes on while
 * every look marks the worker and nobody took the mark off in between (a
 * thief that took its tasks, or the worker out of work: steal.c,
 * worker.c). With every other worker busy nobody takes it, and each look
 * a tenth of a millisecond apart counted one more (test_monitor
 * interventions_count_stuck_once). A mark taken off was acted on, and a
 * mark after it is a new rescue; a look that found the worker not stuck
 * ends the episode, though the mark may stay (nobody took it): a later
 * stall is a new one.
 */
static void mark_stuck(struct weft_monitor *m, struct weft_worker *w,
		       bool marked_before)
{
	if (!atomic_exchange(&w->stuck, true) || !marked_before)
		intervened(m);
}

/* When w's first timer is due (WEFT_NO_DEADLINE: none): the count read
 * seq_cst, the first under the heap's lock (monitor.h: no lost arming). */
static int64_t first_timer(struct weft_worker *w)
{
	return weft__timers_armed(&w->timers) ? weft__timers_first(w)
					      : WEFT_NO_DEADLINE;
}

bool weft__monitor_keeps_yielded;

/* One look at every worker. Returns how many had tasks or timers waiting
 * (due soon), and lowers *first to the earliest worker's first timer;
 * marks a worker stuck (and sets *stuck) if it had the same tasks waiting
 * as last time behind a task that ran all along (its tick count did not
 * move: in run-next, its deque or its ready queue), or the same oldest
 * woken task while it ran others. Sets *queued if a worker's deque or
 * ready queue held tasks at both looks, though it ran on: they are open to
 * thieves, and an idle worker would take some. The due timers of a worker
 * kept by one task are fired from here, and its yielded tasks moved
 * (runq.h): both go to the global queue, and a move sets *stuck too, so
 * that the caller rouses a worker for them. */
static int look_at_workers(struct weft_runtime *rt, struct look *last,
			   bool *stuck, bool *queued, int64_t *first)
{
	int busy = 0;
	int64_t clock = 0;
	for (int i = 0; i < rt->nworkers; i++) {
		struct weft_worker *w = &rt->workers[i];
		int64_t at = first_timer(w);
		if (at != WEFT_NO_DEADLINE && !clock)
			clock = weft_now();
		if (at < *first)
			*first = at;
		/* Lengths and tops are relaxed readings: a heuristic that
		 * only decides when to mark and rouse. The run-next slot and
		 * the timers are read for the arming protocol (monitor.h). */
		struct look now = { atomic_load(&w->runnext),
				    weft__deque_len(&w->deque),
				    weft__deque_len(&w->woken),
				    weft__deque_top(&w->woken),
				    0,
				    at != WEFT_NO_DEADLINE &&
					    at <= clock + TIMER_SOON_NS,
				    !weft__monitor_keeps_yielded &&
					    weft__runq_yielded_locked(w),
				    false,
				    atomic_load(&w->ticks) };
		/* Read after the run-next slot (an initializer's loads are in
		 * no order): a look that read the slot emptied by the pick
		 * (its seq_cst exchange) sees the tasks the scheduler queued
		 * before that pick, whose push came first on the owner. So
		 * the wake that filled the slot, which armed us, covers them
		 * too (monitor.h). Otherwise a gauge, as the lengths above: a
		 * drain caught between its two counts shows its tasks twice,
		 * or not at all, for that look. */
		now.ready = weft__inject_len(&w->ready);
		bool still = now.ticks == last[i].ticks;
		/* Its ready queue counts as its deque: a worker takes its
		 * ready tasks one at a time (runq.h), where it once moved
		 * them to the deque. */
		bool queued_both = (now.queued || now.ready) &&
				   (last[i].queued || last[i].ready);
		if (now.runnext || now.queued || now.woken || now.ready ||
		    now.timers || now.yielded)
			busy++;
		if (queued_both)
			*queued = true;
		/* Queued tasks behind a task that keeps the worker: only the
		 * owner's pick takes them (ticks), thieves take them at any
		 * time but none is roused for a batch of up to 16 ready ones
		 * (worker.c's share_woken), so queued at both looks without a
		 * tick is stuck. */
		if ((still &&
		     ((now.runnext && now.runnext == last[i].runnext) ||
		      queued_both)) ||
		    (now.woken && last[i].woken &&
		     now.woken_top == last[i].woken_top)) {
			mark_stuck(&rt->monitor, w, last[i].marked);
			now.marked = true;
			*stuck = true;
		}
		/* Only while a task runs: a worker asleep, or between its
		 * tasks, fires its own timers as it wakes or picks. Firing a
		 * sleeper's into the global queue raced its own wake-up,
		 * which found its heap emptied and stole a task that kept it
		 * while the sleeper waited for a free worker (test_sched
		 * own_timer_before_steal). Relaxed: a hint; a stale NULL
		 * defers the firing one look, a stale task fires as before. */
		if (still && now.timers && last[i].timers &&
		    __atomic_load_n(&w->current, __ATOMIC_RELAXED)) {
			bool fired;
			weft__ready_into = w;
			weft__timers_run(w, &fired);
			weft__ready_into = NULL;
			/* A rescue only if it fired one: its first timer is
			 * due soon, not always now, and a stale entry fires
			 * nothing (test_monitor
			 * interventions_count_rescues_only). */
			if (fired)
				intervened(&rt->monitor);
		}
		/* Yielded tasks behind a task that kept the worker all
		 * period: thieves never look there, so they go to the global
		 * queue, and the caller rouses a worker (as for stuck). */
		if (still && now.yielded && last[i].yielded &&
		    weft__runq_rescue_yielded(rt, w)) {
			*stuck = true;
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
 * left the poll set meanwhile. Returns when the first timer is due
 * (WEFT_NO_DEADLINE: none), which the idle monitor wakes for. */
static int64_t disarm(struct weft_runtime *rt, struct weft_monitor *m,
		      struct look *last)
{
	int64_t first = WEFT_NO_DEADLINE;
	int armed = MON_ARMED;
	if (!atomic_compare_exchange_strong(&m->state, &armed, MON_IDLE))
		return first; /* stopping */
	/* The looks below read the timer counts seq_cst: a relaxed load
	 * could pass this CAS's store on ARM. In the single order of seq_cst
	 * operations a timer armed (timer.c's seq_cst store of len) after
	 * this CAS reads IDLE and arms again; one armed before it is seen.
	 * (Not a fence: ThreadSanitizer does not model one.) */
	bool stuck = false, queued = false;
	if (look_at_workers(rt, last, &stuck, &queued, &first) ||
	    weft__pollset_unattended()) {
		armed = MON_IDLE;
		atomic_compare_exchange_strong(&m->state, &armed, MON_ARMED);
	}
	if (stuck) /* yielded tasks it moved to the global queue */
		weft__notify_work(rt);
	return first;
}

/* How long the idle monitor sleeps (0: until woken): until its next stall
 * look, until the first timer is soon, and while a worker is awake, until
 * its next reading of the crowding signal (crowd.h): a load of tasks that
 * wake nobody arms nothing. */
static int64_t idle_wait(struct weft_runtime *rt, long stall_period,
			 int64_t first)
{
	int64_t ns = stall_period > 0 ? stall_period : 0;
	if (rt->crowd.enabled &&
	    atomic_load(&rt->idle.sleeping) < rt->nworkers &&
	    (!ns || ns > CROWD_IDLE_WINDOW_NS))
		ns = CROWD_IDLE_WINDOW_NS;
	if (first != WEFT_NO_DEADLINE) {
		/* Compared before subtracted: a timer armed at a time long
		 * past (near INT64_MIN) must not overflow. 0 would be no
		 * limit. */
		int64_t now = weft_now();
		int64_t t = first > now + TIMER_SOON_NS
				    ? first - TIMER_SOON_NS - now
				    : 1;
		if (!ns || t < ns)
			ns = t;
	}
	return ns;
}

/* Whether the idle monitor's first timer is soon: it arms itself, and
 * looks at the longest period (the timer's worker fires it, unless a
 * task keeps that worker). */
static bool timer_soon(struct weft_monitor *m, int64_t first)
{
	int idle = MON_IDLE;
	return first != WEFT_NO_DEADLINE &&
	       first <= weft_now() + TIMER_SOON_NS &&
	       atomic_compare_exchange_strong(&m->state, &idle, MON_ARMED);
}

/* ---- the pace of the looks (monitor.h) ---------------------------------- */

void weft__monitor_pace_init(struct weft_monitor_pace *p)
{
	*p = (struct weft_monitor_pace){ .period = PERIOD_MIN_NS };
}

/* The period is kept over a disarm for REARM_WARM_NS; a monitor armed for
 * a timer looks at the longest one (TIMER_SOON_NS). */
void weft__monitor_pace_woke(struct weft_monitor_pace *p, int64_t now,
			     bool timer_soon)
{
	if (timer_soon)
		p->period = PERIOD_MAX_NS;
	else if (now - p->disarmed_at >= REARM_WARM_NS)
		p->period = PERIOD_MIN_NS;
	p->calm = 0;
}

/* A stuck worker brings the looks back to the shortest period; calm looks
 * back them off, doubling every LOOKS_BEFORE_BACKOFF up to PERIOD_MAX
 * (capped there: 0.1 ms doubled five times overshoots it). */
void weft__monitor_pace_looked(struct weft_monitor_pace *p, bool stuck)
{
	if (stuck) {
		p->period = PERIOD_MIN_NS;
		p->calm = 0;
	} else if (++p->calm >= LOOKS_BEFORE_BACKOFF &&
		   p->period < PERIOD_MAX_NS) {
		p->period = p->period < PERIOD_MAX_NS / 2 ? p->period * 2
							  : PERIOD_MAX_NS;
		p->calm = 0;
	}
}

void weft__monitor_pace_disarmed(struct weft_monitor_pace *p, int64_t now)
{
	p->disarmed_at = now;
}

/* ---- the thread ---------------------------------------------------------- */

static void *monitor_main(void *arg)
{
	struct weft_runtime *rt = arg;
	struct weft_monitor *m = &rt->monitor;
	/* Named for top, perf and gdb by itself, as every weft thread is:
	 * glibc names another thread by opening its /proc comm file without
	 * O_CLOEXEC, which a program started meanwhile would inherit. */
	pthread_setname_np(pthread_self(), "weft-monitor");
	/* On the heap: WEFT_WORKERS_MAX looks are 56 KiB, more than a
	 * thread's whole stack where RLIMIT_STACK (glibc's default for
	 * threads) is set that low. */
	struct look *last = m->last;
	uint64_t last_harvests = 0;
	int64_t first = WEFT_NO_DEADLINE; /* the idle monitor's first timer */
	struct weft_monitor_pace pace;
	weft__monitor_pace_init(&pace);
	int idle = 0;
	for (;;) {
		int s = atomic_load(&m->state);
		if (s == MON_STOP)
			break;
		long stall_period = weft__stall_period(rt);
		if (s == MON_IDLE) {
			/* Stall reports want a look now and then, armed or
			 * not: a task spinning alone arms nothing. */
			weft__futex_wait(&m->state, MON_IDLE,
					 idle_wait(rt, stall_period, first));
			/* Relaxed (weft__stat_add): only this thread writes
			 * it; a test reads it as a gauge. */
			weft__stat_add(&m->wakeups, 1);
			weft__stall_check(rt);
			int64_t now = weft_now();
			weft__crowd_look(rt, now);
			weft__monitor_pace_woke(&pace, now,
						timer_soon(m, first));
			idle = 0;
			continue;
		}
		weft__futex_wait(&m->state, MON_ARMED,
				 stall_period > 0 && stall_period < pace.period
					 ? stall_period
					 : pace.period);
		weft__stat_add(&m->wakeups, 1); /* as above */
		weft__stall_check(rt);
		bool stuck = false, queued = false;
		int64_t ignored = WEFT_NO_DEADLINE;
		int busy = look_at_workers(rt, last, &stuck, &queued, &ignored);
		busy += look_at_poll_set(m, &last_harvests);
		idle = busy ? 0 : idle + 1;
		int64_t now = weft_now();
		weft__crowd_look(rt, now);
		if (stuck) {
			weft__notify_work(rt);
			weft__monitor_pace_looked(&pace, true);
			continue;
		}
		/* Queued tasks are not stuck: their worker runs them in
		 * turn. A roused worker shares them, and the looks back off
		 * meanwhile; unless the runtime is crowded (crowd.h), where
		 * it would only wait for a CPU. */
		if (queued && !weft__crowded(&rt->crowd)) {
			weft__stat_add(&m->offers, 1); /* as wakeups */
			if (weft__notify_work(rt))
				intervened(m);
		}
		if (idle >= IDLE_LOOKS_BEFORE_DISARM) {
			weft__monitor_pace_disarmed(&pace, now);
			first = disarm(rt, m, last);
			idle = 0;
		} else {
			weft__monitor_pace_looked(&pace, false);
		}
	}
	return NULL;
}

int weft__monitor_start(struct weft_runtime *rt)
{
	struct weft_monitor *m = &rt->monitor;
	if (rt->nworkers < 2)
		return 0; /* nobody to rescue a stuck task anyway */
	m->last = calloc((size_t)rt->nworkers, sizeof(*m->last));
	if (!m->last)
		return -ENOMEM;
	int r = weft__crowd_start(rt);
	if (!r) {
		r = -pthread_create(&m->thread, NULL, monitor_main, rt);
		if (r)
			weft__crowd_stop(rt);
	}
	if (r) {
		free(m->last);
		m->last = NULL;
	}
	m->started = !r;
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
	weft__crowd_stop(rt);
	free(m->last);
	m->last = NULL;
	m->started = false;
}
