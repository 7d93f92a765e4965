/*
 * A worker thread: its setup, its scheduler loop, its sleep.
 *
 *   pick a local task (runq.h) -> search: steal (steal.h), spinning a
 *   little -> timers and I/O events -> sleep in the I/O driver (driver.h),
 *   among the idle workers (idle.h).
 *
 * Invariants:
 *  - Only this thread runs w's scheduler, and it alone touches the fields
 *    of w that runq.h calls the owner's.
 *  - A parked task's unlock runs here, on the scheduler stack, after
 *    weft__switch saved the task's registers (park.c).
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>

#include "drivers/readiness/pollset.h"
#include "idle.h"
#include "park.h"
#include "runq.h"
#include "stall.h"
#include "steal.h"
#include "switch.h"
#include "task.h"
#include "worker.h"

#define TIMER_CHECK_INTERVAL 16
#define SHARE_BATCH 16       /* woken tasks one worker runs alone */
#define SEARCH_SPINS_RING 48 /* steal rounds before parking, io_uring */

/* Read on every spawn and switch: a line no other global writes. */
struct weft_runtime *_Atomic weft__rt __attribute__((aligned(64)));

/* ---- finding work ------------------------------------------------------- */

/* Under io_uring a searcher keeps looking a little before it parks: a
 * worker asleep in its ring is woken through it (an eventfd write, a
 * read's completion), which costs two system calls and a few
 * microseconds, more than the gap between bursts of work (Go's spinning
 * Ms). 4 rounds instead of 48 cost its closed-loop echo 10% of its
 * throughput (A/B), when its sockets still waited in the ring; since they
 * wait in the poll set, 0 rounds measured the same as 48 in ping_pong and
 * in http at 50k req/s (within the noise), so the rounds stay.
 *
 * Under epoll a searcher looks once and parks, as Tokio's does: an event
 * for any fd wakes whichever worker sleeps as the poller, so nothing waits
 * for a particular worker to wake. Spinning only took CPU from whatever
 * shared the machine: 48 rounds cost a server at partial load a third more
 * CPU per request (http at 50k req/s: 19 against 13 us), and dropping the
 * 4 rounds kept after that cost nothing in the message-passing benchmarks
 * and took off 3% of CPU per request in closed loop and 6-11% at 50-90%
 * load, where the load generator got the CPU back as a lower p99
 * (bench/README.md, tenth session). */
static struct weft_task *find_task(struct weft_runtime *rt,
				   struct weft_worker *w)
{
	struct weft_task *t = weft__runq_pick(rt, w, false, false);
	if (t || !weft__idle_start_search(rt, w))
		return t;
	int spins = w->driver->kind == WEFT_IO_URING ? SEARCH_SPINS_RING : 0;
	for (int spin = 0; spin < spins; spin++) {
		if ((t = weft__steal(rt, w, spin % 16 == 15)))
			return t;
		/* Relaxed: only ends the spin early; the loop below reads
		 * the state seq_cst before the worker sleeps or stops. */
		if (atomic_load_explicit(&rt->state, memory_order_relaxed) ==
		    RT_STOPPING)
			return NULL;
		for (int i = 0; i < 32; i++)
			weft__cpu_relax();
	}
	return weft__steal(rt, w, true);
}

/* ---- running ------------------------------------------------------------ */

/* Gives a task its stack on its first run, unless its struct kept one
 * (task.h). false: it could not have one, and has been finished with
 * -ENOMEM. */
static bool start_task(struct weft_worker *w, struct weft_task *t)
{
	if (weft__task_take_stack(t, t->stack_size, w->stack_cache)) {
		t->result = NULL;
		t->error = -ENOMEM;
		weft__task_finished(w, t);
		return false;
	}
	weft__switch_task_init(t);
	return true;
}

static void task_exited(struct weft_worker *w, struct weft_task *t)
{
	weft__switch_task_exit(t);
	/* Only the run's reference left: finishing recycles the struct (or
	 * a stranger's put does, soon), which keeps the stack for its next
	 * task (task.h). Relaxed: the load orders nothing, it only picks a
	 * path. A 2 that a handle's holder turns into 1 meanwhile sends the
	 * stack back to the pool, as before; a 1 rises only by a stranger's
	 * weft__task_get, whose put then recycles the struct, stack and
	 * all. */
	if (t->stack.pooled &&
	    atomic_load_explicit(&t->refs, memory_order_relaxed) == 1) {
		weft__stack_keep(&t->stack);
	} else {
		weft__stack_free(&t->stack, w->stack_cache);
		t->stack.base = NULL;
	}
	weft__task_finished(w, t);
}

static void run_task(struct weft_runtime *rt, struct weft_worker *w,
		     struct weft_task *t)
{
	weft__latency_check(&w->stats, t); /* a run, even one that fails */
	bool fresh = !weft__task_ran(t);
	if (fresh && !start_task(w, t))
		return;
	weft__switch_set_current(w, t);
	weft__switch_to_task(w, t, fresh);
	t = w->current; /* direct yields may have switched to others */
	weft__switch_set_current(w, NULL);
	weft__switch_check_stack(t);
	switch (w->reason) {
	case SWITCH_PARK:
		if (w->after_switch)
			w->after_switch(w->after_arg);
		break;
	case SWITCH_YIELD:
		/* Every one: the direct switch declines one pick in
		 * GLOBAL_QUEUE_INTERVAL, whose yields land here, a sample of
		 * about that rate of a busy worker's yields (metrics.h). */
		t->ready_at = (int64_t)weft__cycles();
		weft__runq_append_yielded(rt, w, t);
		break;
	case SWITCH_EXIT:
		task_exited(w, t);
		break;
	}
	/* No spinlock is held across a switch (park's lock was unlocked). */
	WEFT_ASSERT(weft__debug_spins_held() == 0);
}

/* After the scheduler woke tasks (I/O, timers): whether an idle worker is
 * roused to take some. Once per batch, not per task: a sleeper roused for
 * every wake-up costs more than it takes.
 *
 * A batch of up to SHARE_BATCH runs here, in order, on a warm cache, and
 * the monitor watches in case one of its tasks keeps the worker, as for a
 * task's wake (park.c). Rousing a worker for every batch of two or more
 * (Tokio's should_notify_others after its driver's poll) moved a tenth of
 * an epoll server's requests to the other core, each with its stack's hot
 * lines (the likely cost; this VM counts no cache misses). Keeping the
 * batch served 6-9% more requests at 3-5% less CPU each and a 10-23%
 * lower p99 (bench/README.md, tenth session); under io_uring, once its
 * sockets waited in the poll set too, 15% more requests at 8% less CPU
 * each and a 16% lower p99 (eleventh session). */
static void share_woken(struct weft_runtime *rt, struct weft_worker *w)
{
	long n = weft__inject_len(&w->ready);

	if (w->searching || n < 2)
		return;
	if (n > SHARE_BATCH && !weft__crowded(&rt->crowd)) {
		weft__stat_add(&w->stats.shares, 1);
		weft__notify_work(rt);
	} else {
		weft__monitor_arm(&rt->monitor);
	}
}

/* Whether interval ticks passed since *at, and if so moves *at to tick.
 * Counted from the last time, not as a multiple of interval: the
 * scheduler sees only some ticks (a direct switch passes it by), and while
 * two tasks hand the worker to each other it saw one every
 * GLOBAL_QUEUE_INTERVAL (61, the harvest interval's own prime), the same
 * remainder every time, so the poll set went unharvested for as long as
 * they ran. 16 bits are enough: a direct pick declines the global queue's
 * turn, so the scheduler sees at least one tick in every
 * GLOBAL_QUEUE_INTERVAL. */
static bool since(uint64_t tick, uint16_t *at, unsigned interval)
{
	if ((uint16_t)((uint16_t)tick - *at) < interval)
		return false;
	*at = (uint16_t)tick;
	return true;
}

/* Fires w's due timers, whose sleepers wake into its ready queue (park.c),
 * behind those the monitor woke there while a task kept w (monitor.h): due
 * earlier, they run first (test_timer's monitor_fires_earlier_first).
 * Returns the time to the next timer (-1: none). */
static int64_t fire_timers(struct weft_worker *w)
{
	bool fired;
	return weft__timers_run(w, &fired);
}

/* Submissions and I/O events, timers and a look at a stalled worker now
 * and then: once per task run. */
static void maintain(struct weft_runtime *rt, struct weft_worker *w,
		     uint64_t tick)
{
	weft__driver_poll(w->driver, since(tick, &w->harvested_at,
					   WEFT__HARVEST_INTERVAL));
	if (since(tick, &w->timers_checked_at, TIMER_CHECK_INTERVAL))
		fire_timers(w); /* an empty heap returns at once */
	share_woken(rt, w);
	if (tick - w->relief.at >= RELIEF_INTERVAL) {
		w->relief.at = tick;
		weft__steal_relieve(rt, w);
	}
}

/* ---- sleeping ----------------------------------------------------------- */

void weft__worker_unpark(struct weft_worker *w)
{
	weft__driver_unpark(w->driver);
}

/* Whether a worker falling asleep may sleep as the poll set's poller:
 * while crowded (crowd.h), only the last one to, so readiness wakes no
 * second worker while one runs. Read after weft__idle_enter counted this
 * one (seq_cst, both): of two workers falling asleep together, the second
 * to count reads both counts, so a set with fds always has its poller
 * once every worker sleeps. uncounted: 1 for a guess before it counted
 * itself (the reap's, which only skips a look on it). */
static bool may_poll(struct weft_runtime *rt, int uncounted)
{
	return !weft__crowded(&rt->crowd) ||
	       atomic_load(&rt->idle.sleeping) + uncounted >= rt->nworkers;
}

static void park_worker(struct weft_runtime *rt, struct weft_worker *w)
{
	int64_t next_timer = fire_timers(w);
	weft__driver_reap(w->driver, may_poll(rt, 1));
	if (weft__runq_has_yielded(w) || weft__runq_has_local(w)) {
		share_woken(rt, w);
		return; /* timers or completions made work */
	}
	/* Out of work, so not stuck, whatever the monitor saw before.
	 * Relaxed: stuck is a hint for thieves and the monitor, who take
	 * tasks by CAS or under locks, never through it. */
	atomic_store_explicit(&w->stuck, false, memory_order_relaxed);
	bool barred = !w->searching; /* find_task's search was refused */
	weft__idle_enter(rt, w);
	if ((weft__runq_any_work(rt, w) &&
	     !(barred && weft__idle_searcher_covers(rt))) ||
	    atomic_load(&rt->state) == RT_STOPPING) {
		weft__idle_leave(rt, w);
		return;
	}
	weft__stat_add(&w->stats.parks, 1);
	/* A SIGURG of the program's the handler left to this thread to send
	 * on (ThreadSanitizer: stall.c's pass_on) would wait for its wake.
	 * Relaxed: set by a signal handler on this thread. */
	if (atomic_load_explicit(&w->urg_owed, memory_order_relaxed))
		weft__stall_unmask(w);
	weft__driver_park(w->driver, next_timer, may_poll(rt, 0));
	/* The poller left the poll set: the monitor harvests it if nobody
	 * does (monitor.h). */
	weft__pollset_left();
	if (weft__idle_leave(rt, w)) /* else timers or I/O woke us */
		weft__stat_add(&w->stats.unparks, 1);
	/* Woken for our first timer, or after it came due: fire it before
	 * the search that follows, whose steal may take a task that keeps
	 * this worker while the sleeper waits, until the monitor fires it
	 * into the global queue, where no worker may be free to take it. */
	fire_timers(w);
	share_woken(rt, w);
}

/* ---- the thread --------------------------------------------------------- */

/* The stack weft's signal handlers run on (SA_ONSTACK): a task's overflow
 * is a SIGSEGV on a full stack, which without one the kernel cannot
 * deliver, and kills the process unreported; the dump and stall handlers
 * interrupt tasks near the end of theirs. So a worker without one does not
 * run: 0, or -ENOMEM (weft_run fails, as for any start-up allocation). */
static int setup_altstack(struct weft_worker *w)
{
	size_t size = SIGSTKSZ * 4;

	w->altstack = malloc(size);
	if (!w->altstack)
		return -ENOMEM;
	if (sigaltstack(&(stack_t){ .ss_sp = w->altstack, .ss_size = size },
			NULL)) {
		int r = -errno; /* -ENOMEM: smaller than the kernel needs */
		free(w->altstack);
		w->altstack = NULL;
		return r;
	}
	return 0;
}

static void teardown_altstack(struct weft_worker *w)
{
	stack_t ss = { .ss_flags = SS_DISABLE };
	sigaltstack(&ss, NULL);
	free(w->altstack);
	w->altstack = NULL;
}

static int worker_setup(struct weft_runtime *rt, struct weft_worker *w,
			const char **why)
{
	/* Named for top, perf and gdb: weft-w0, weft-w1, ... */
	char name[16];
	snprintf(name, sizeof(name), "weft-w%d", w->id);
	pthread_setname_np(pthread_self(), name);
	w->tid = gettid(); /* read after worker_started's lock: crowd.c */
	int r = setup_altstack(w);
	if (r)
		return r;
	struct weft__driver *d = weft__driver_new(rt->io, &r, why);
	if (!d) {
		teardown_altstack(w);
		return r;
	}
	d->sock_on_ring = rt->sock_on_ring;
	/* release: weft_metrics, on any thread, may read it before the
	 * workers are up (metrics.c). */
	__atomic_store_n(&w->driver, d, __ATOMIC_RELEASE);
	pthread_attr_t a;
	if (pthread_getattr_np(pthread_self(), &a) == 0) {
		void *lo;
		pthread_attr_getstack(&a, &lo, &w->stack_size);
		w->stack_bottom = lo;
		pthread_attr_destroy(&a);
	}
	weft__switch_scheduler_init(w);
	weft__stall_worker_init();
	return 0;
}

static void worker_teardown(struct weft_worker *w)
{
	teardown_altstack(w);
	weft__driver_close(w->driver); /* weft_run frees it */
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
	weft__self_set(w);
	if (!worker_started(rt, err, why)) {
		weft__stall_worker_exit(w);
		weft__self_set(NULL);
		if (!err)
			worker_teardown(w);
		return NULL;
	}
	for (;;) {
		struct weft_task *t = find_task(rt, w);
		if (t) {
			if (w->searching)
				weft__idle_end_search(rt, w);
			/* relaxed: set by a signal handler on this thread. */
			if (__builtin_expect(
				    atomic_load_explicit(&w->urg_masked,
							 memory_order_relaxed),
				    0))
				weft__stall_unmask(w);
			weft__stat_add(&w->stats.task_runs, 1);
			run_task(rt, w, t);
			/* Relaxed: our own tick count. */
			maintain(rt, w,
				 atomic_load_explicit(&w->ticks,
						      memory_order_relaxed));
			continue;
		}
		if (atomic_load(&rt->state) == RT_STOPPING)
			break;
		park_worker(rt, w);
	}
	weft__stall_worker_exit(w);
	weft__self_set(NULL);
	worker_teardown(w);
	return NULL;
}
