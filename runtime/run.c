/*
 * weft_run: asyncio.run for C. Brings the workers up, runs main as a task,
 * joins it from this (plain) thread, then shuts down:
 *   DRAINING  every live task is cancelled; we wait until none is left
 *             (tasks spawned now start cancelled);
 *   STOPPING  workers leave their loops; threads are joined; all is freed.
 */
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dump_signal.h"
#include "overflow.h"
#include "run.h"
#include "task.h"
#include "cpus.h"
#include "self.h"
#include "sigclaim.h"
#include "worker.h"
#include "blocking.h"
#include "driver.h"

static int config_workers(const struct weft_config *cfg, int *out)
{
	long n = cfg ? cfg->workers : 0;
	if (n < 0 || n > WEFT_WORKERS_MAX)
		return -EINVAL;
	if (!n) {
		const char *env = getenv("WEFT_WORKERS");
		if (env && *env) {
			char *end;
			n = strtol(env, &end, 10);
			if (*end || n < 1 || n > WEFT_WORKERS_MAX)
				return -EINVAL;
		}
	}
	if (!n) {
		/* One a CPU this process may use (cpus.h), up to the most
		 * there may be: task ids and the monitor's looks are sized for
		 * WEFT_WORKERS_MAX. */
		n = weft__cpus_default();
		if (n > WEFT_WORKERS_MAX)
			n = WEFT_WORKERS_MAX;
	}
	*out = n > 0 ? (int)n : 1;
	return 0;
}

static int config_check(const struct weft_config *cfg, struct weft_runtime *rt)
{
	int r = config_workers(cfg, &rt->nworkers);
	if (r)
		return r;
	rt->stack_size = cfg && cfg->stack_size ? cfg->stack_size
						: WEFT_STACK_DEFAULT;
	if (rt->stack_size < WEFT_STACK_MIN || rt->stack_size > WEFT_STACK_MAX)
		return -EINVAL;
	if (cfg && (cfg->blocking_threads < 0 ||
		    (unsigned)cfg->fp_modes > WEFT_FP_PER_TASK))
		return -EINVAL;
	rt->fp_per_task = cfg && cfg->fp_modes == WEFT_FP_PER_TASK;
	int crowding = weft__crowd_config(cfg);
	if (crowding < 0)
		return crowding;
	rt->crowd.enabled = crowding;
	return weft__driver_choose(cfg, &rt->io, &rt->sock_on_ring,
				   &rt->io_may_fall_back);
}

static void free_runtime(struct weft_runtime *rt)
{
	for (int i = 0; rt->workers && i < rt->nworkers; i++) {
		struct weft_worker *w = &rt->workers[i];
		weft__task_cache_free(w->task_cache);
		weft__stack_cache_free(w->stack_cache);
		weft__timers_free(w);
		if (w->driver)
			weft__driver_free(w->driver);
		if (w->dropped_driver)
			weft__driver_free(w->dropped_driver);
	}
	free(rt->workers);
	free(rt->idle.sleepers);
	pthread_mutex_destroy(&rt->idle.mu);
	pthread_mutex_destroy(&rt->mu);
	pthread_cond_destroy(&rt->cv);
	weft__stack_pool_exit();
	free(rt);
}

static struct weft_runtime *new_runtime(const struct weft_config *cfg, int *err)
{
	struct weft_runtime *rt = calloc(1, sizeof(*rt));
	if (!rt) {
		*err = -ENOMEM;
		return NULL;
	}
	pthread_mutex_init(&rt->mu, NULL);
	pthread_cond_init(&rt->cv, NULL);
	pthread_mutex_init(&rt->idle.mu, NULL);
	weft__inject_init(&rt->inject);
	/* Not running until run() spawns main: till then a plain thread's
	 * spawn is refused (it wants RT_RUNNING), so a start that fails
	 * after rt is published leaves no task that nobody awaits. */
	atomic_init(&rt->state, RT_DRAINING);
	atomic_init(&rt->next_id, 1);
	/* Here, not when the monitor starts: the workers, started first,
	 * may arm it already (an fd in the poll set from an earlier run). */
	atomic_init(&rt->monitor.state, MON_IDLE);
	*err = config_check(cfg, rt);
	if (!*err) {
		/* aligned_alloc wants a multiple of the alignment. */
		size_t sz = sizeof(struct weft_worker) * (size_t)rt->nworkers;
		rt->workers = aligned_alloc(64, (sz + 63) & ~(size_t)63);
		rt->idle.sleepers = calloc((size_t)rt->nworkers, sizeof(int));
		if (rt->workers)
			memset(rt->workers, 0, sz);
		if (!rt->workers || !rt->idle.sleepers)
			*err = -ENOMEM;
	}
	if (*err) {
		free_runtime(rt);
		return NULL;
	}
	for (int i = 0; i < rt->nworkers; i++) {
		struct weft_worker *w = &rt->workers[i];
		w->id = i;
		w->rng = 0x9e3779b97f4a7c15ULL * (uint64_t)(i + 1);
		weft__deque_init(&w->deque);
		weft__deque_init(&w->woken);
		weft__inject_init(&w->ready);
		weft__timers_init(w);
		w->task_cache = weft__task_cache_new();
		w->stack_cache = weft__stack_cache_new();
		if (!w->task_cache || !w->stack_cache)
			*err = -ENOMEM;
	}
	weft__stack_pool_init();
	if (*err) {
		free_runtime(rt);
		return NULL;
	}
	return rt;
}

/* Starts the threads and waits for each to set up its driver. Returns 0,
 * the error of a thread that could not start, or the first worker's setup
 * error. */
static int launch_workers(struct weft_runtime *rt, int *started)
{
	int r = 0;
	for (*started = 0; *started < rt->nworkers; (*started)++) {
		struct weft_worker *w = &rt->workers[*started];
		if ((r = -pthread_create(&w->thread, NULL, weft__worker_main,
					 w)))
			break;
	}
	pthread_mutex_lock(&rt->mu);
	while (rt->started < *started)
		pthread_cond_wait(&rt->cv, &rt->mu);
	if (!r)
		r = rt->init_error;
	pthread_mutex_unlock(&rt->mu);
	return r;
}

/* Tells the workers waiting in worker_started to run (1) or leave (-1). */
static void tell_workers(struct weft_runtime *rt, int go)
{
	pthread_mutex_lock(&rt->mu);
	rt->go = go;
	pthread_cond_broadcast(&rt->cv);
	pthread_mutex_unlock(&rt->mu);
}

/*
 * Auto chose io_uring on the probe's small ring, and a worker's own ring
 * was refused (weft__driver_unusable): every worker starts again on epoll,
 * as if the probe had failed, since all must run the same driver. The
 * ones that came up leave, closing their rings. Their drivers are kept
 * until free_runtime: weft_worker_metrics, on any thread, may be reading
 * one now (metrics.c).
 */
static int restart_on_epoll(struct weft_runtime *rt, int *started)
{
	tell_workers(rt, -1);
	for (int i = 0; i < *started; i++) {
		struct weft_worker *w = &rt->workers[i];
		pthread_join(w->thread, NULL);
		w->dropped_driver = w->driver;
		/* relaxed: NULL publishes nothing to a metrics reader. */
		__atomic_store_n(&w->driver, NULL, __ATOMIC_RELAXED);
	}
	pthread_mutex_lock(&rt->mu);
	rt->started = 0;
	rt->init_error = 0;
	rt->init_why = NULL; /* silently, as after a failed probe */
	rt->go = 0;
	pthread_mutex_unlock(&rt->mu);
	rt->io = WEFT_IO_EPOLL;
	rt->sock_on_ring = false;
	weft__driver_set_kind(WEFT_IO_EPOLL, false);
	return launch_workers(rt, started);
}

/* Starts the threads; waits for each to set up its driver. */
static int start_workers(struct weft_runtime *rt, int *started)
{
	int r = launch_workers(rt, started);

	/* Every thread started: r is a worker's driver setup's. */
	if (r && rt->io_may_fall_back && *started == rt->nworkers &&
	    weft__driver_unusable(r))
		r = restart_on_epoll(rt, started);
	tell_workers(rt, r ? -1 : 1);
	if (rt->init_why) /* driver setup failed: say why, in one line */
		fprintf(stderr, "weft: %s\n", rt->init_why);
	/* Refused by policy (the sysctl, seccomp, an LSM's EACCES) is
	 * unavailable, as weft__driver_unusable takes it: -ENOSYS. */
	return r == -EPERM || r == -EACCES ? -ENOSYS : r;
}

static void stop_workers(struct weft_runtime *rt, int started)
{
	weft__monitor_stop(rt); /* it wakes workers: stop it first */
	atomic_store(&rt->state, RT_STOPPING);
	/* Workers told not to go have left; a worker that failed setup has
	 * no driver. A closed one ignores the unpark. */
	for (int i = 0; rt->go > 0 && i < started; i++)
		weft__driver_unpark(rt->workers[i].driver);
	for (int i = 0; i < started; i++)
		pthread_join(rt->workers[i].thread, NULL);
}

/*
 * The counters only grow, and a task is counted spawned before it can be
 * counted finished. Reading every finished count before any spawned count
 * gives finished <= spawned, equal only if at some instant between the two
 * passes every task spawned so far had finished, and none was spawned
 * until the second pass: then none was left, since only a task or a
 * foreign thread can spawn.
 */
int64_t weft__live_tasks(struct weft_runtime *rt)
{
	uint64_t finished = 0;
	for (int i = 0; i < rt->nworkers; i++)
		finished += atomic_load(&rt->workers[i].tasks_finished);
	uint64_t spawned = atomic_load(&rt->foreign_spawned);
	for (int i = 0; i < rt->nworkers; i++)
		spawned += atomic_load(&rt->workers[i].tasks_spawned);
	return (int64_t)(spawned - finished);
}

static void cancel_one(struct weft_task *t, void *unused)
{
	weft__task_cancel(t);
}

/* Cancels every task left and waits until all have returned. A finisher
 * that sees DRAINING checks the count under mu (weft__task_finished). */
static void drain(struct weft_runtime *rt)
{
	atomic_store(&rt->state, RT_DRAINING);
	/* From now on plain threads cannot spawn: count the ones that could. */
	weft__task_foreign_quiesce();
	weft__task_for_each_alive(cancel_one, NULL);
	pthread_mutex_lock(&rt->mu);
	/* A finisher that saw DRAINING before the quiesce may have counted
	 * none left while a plain thread's spawn, past its check of the
	 * state, had not yet counted its task: that all_done is stale. From
	 * here on only tasks spawn, so a count of none stays none. */
	rt->all_done = false;
	while (!rt->all_done && weft__live_tasks(rt) != 0)
		pthread_cond_wait(&rt->cv, &rt->mu);
	pthread_mutex_unlock(&rt->mu);
}

/* Set while a weft_run owns the process's runtime: the stack pool, the
 * overflow handler and weft__rt are its alone until it clears this. Taken
 * first, so a second weft_run touches nothing, not even to check cfg. */
static atomic_bool run_claimed;

static int run(weft_fn main, void *arg, const struct weft_config *cfg,
	       void **result);

/*
 * fork(2) while a run runs. The child has one thread, the caller's, and
 * copies of the runtime's state, but the poll set, the rings and their
 * mappings are one with the parent's: a task's call that parked there
 * would drive them, taking the parent's events and completions (its I/O
 * stalls) or waiting for ever. So the child has no runtime: its thread is
 * a plain thread, even inside a task's function, whose calls make the
 * blocking system call, spawns fail (-ESHUTDOWN) and weft_run too
 * (-EBUSY). It is for exec(2) or _exit(2); a task's function must not
 * return there.
 */
static void fork_child(void)
{
	if (!atomic_load(&weft__rt))
		return;
	weft__self_set(NULL);
	atomic_store(&weft__rt, NULL);
	weft__driver_set_kind(WEFT_IO_AUTO, false);
}

static void at_fork_once(void)
{
	pthread_atfork(NULL, NULL, fork_child);
}

int weft_run(weft_fn main, void *arg, const struct weft_config *cfg,
	     void **result)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;

	if (!main)
		return -EINVAL;
	pthread_once(&once, at_fork_once);
	if (weft__self() || atomic_exchange(&run_claimed, true))
		return -EBUSY;
	int err = run(main, arg, cfg, result);
	atomic_store(&run_claimed, false);
	return err;
}

static int run(weft_fn main, void *arg, const struct weft_config *cfg,
	       void **result)
{
	int dump_signal = weft__dump_signal_config(cfg);
	if (dump_signal < 0)
		return dump_signal;
	int64_t stall = weft__stall_config(cfg);
	if (stall < 0)
		return (int)stall;
	int64_t latency_mask = weft__latency_config(cfg);
	if (latency_mask < 0)
		return (int)latency_mask;
	int err;
	struct weft_runtime *rt = new_runtime(cfg, &err);
	if (!rt)
		return err;
	weft__task_run_begin();
	/* Before rt is published: whoever finds rt sees the mask. */
	weft__latency_start((uint64_t)latency_mask);
	/* Before rt is published: a plain thread may spawn once it finds
	 * rt, and its spawn reads the flag. */
	weft__fp_per_task = rt->fp_per_task;
	atomic_store(&weft__rt, rt);
	int started;
	weft__driver_set_kind(rt->io, rt->sock_on_ring);
	weft__overflow_install();
	/* A write to a pipe whose reader is gone: -EPIPE, as from a socket
	 * (MSG_NOSIGNAL), not death by SIGPIPE; see weft/task.h. */
	weft__sig_quiet_pipe(true);
	err = weft__stall_start(rt, stall, cfg, dump_signal);
	if (!err)
		err = start_workers(rt, &started);
	else
		started = 0;
	if (!err)
		err = weft__monitor_start(rt);
	if (!err)
		err = weft__blocking_start(cfg ? cfg->blocking_threads : 0);
	if (!err)
		err = weft__dump_signal_start(dump_signal);
	if (!err) {
		weft_task_t main_task;
		/* Nothing can fail now but main's spawn, and drain() ends
		 * whatever plain threads spawn from here on. */
		atomic_store(&rt->state, RT_RUNNING);
		err = weft__spawn_main(&main_task, main, arg);
		if (!err)
			err = weft__join_main(main_task, result);
		drain(rt);
	}
	weft__dump_signal_stop(); /* it dumps the runtime: stop it first */
	stop_workers(rt, started);
	weft__stall_stop(rt); /* after the monitor, which reports them */
	weft__blocking_stop();
	weft__driver_set_kind(WEFT_IO_AUTO, false);
	weft__overflow_remove();
	weft__sig_quiet_pipe(false);
	atomic_store(&weft__rt, NULL);
	weft__task_foreign_quiesce(); /* a spawner may still read rt */
	weft__fp_per_task = false;    /* nobody reads it now */
	free_runtime(rt);
	return err;
}
