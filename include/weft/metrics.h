/*
 * weft metrics: counters and gauges of a running runtime, runtime-wide and
 * per worker (Go's runtime/metrics, Tokio's RuntimeMetrics). Part of
 * <weft.h>.
 *
 * Counters only grow while a runtime runs; gauges are a moment's value.
 * Each worker writes its own counters, on cache lines of their own, with
 * plain relaxed stores; a reader gets relaxed atomic loads: every value is
 * one the counter really had, but the fields are not one snapshot.
 * weft_metrics reads every finish before any spawn, so tasks_finished <=
 * tasks_spawned, and tasks_alive counts every task alive at a moment of
 * the call (a task reading it counts itself); one worker's tasks_spawned
 * and tasks_finished count different tasks. Both calls read a worker's
 * completed I/O before its submitted, so io_completed <= io_submitted and
 * io_in_flight counts every operation in flight throughout the call.
 *
 * Stability: fields are never removed or reordered; new ones are appended
 * and raise WEFT_METRICS_VERSION, which a reader finds in .version. That
 * is a promise to source code: weft_metrics fills the struct of the
 * headers libweft was built with, so a program must be built against the
 * headers of the libweft it runs with (README: no ABI promise before 1.0).
 */
#ifndef WEFT_METRICS_H
#define WEFT_METRICS_H

#include <stdint.h>

#include "weft/must_check.h"

#ifdef __cplusplus
extern "C" {
#endif

#define WEFT_METRICS_VERSION 2

/*
 * The scheduling-latency histogram: the time from a task becoming runnable
 * (spawned, woken, yielded) to it running, as Go's /sched/latencies. Bucket
 * 0 counts latencies under 2 ns, bucket i (1 <= i < 39) those in
 * [2^i, 2^(i+1)) ns, bucket 39 everything from 2^39 ns (about 9 minutes).
 *
 * Two modes, chosen at weft_run (cfg.latency, or $WEFT_LATENCY=sampled or
 * exact; see weft/task.h):
 *
 * Sampled, the default: spawns and wakes are timed one in
 * WEFT_LATENCY_SAMPLE, numbered per worker (the wakes a plain thread
 * makes per plain thread, the spawns plain threads make by task number,
 * runtime-wide); yields the scheduler requeues are all timed, and they
 * are the sample of yields (about one yield in 61 of a busy worker,
 * those that give the global queue its turn): the yields
 * that switch straight to the next task are not. So the total is a part
 * of task_runs, about 1/64 for spawns, wakes and a busy worker's yields,
 * up to about 1/4 for yields while other workers idle (the scheduler then
 * requeues them where the idle can steal them), and the shape is the
 * distribution. Go samples too: its /sched/latencies tracks
 * one goroutine transition in eight. Timing every one is not affordable
 * by default: a read of the CPU's counter (RDTSC) costs 10 to 40 cycles,
 * as much as a whole task switch; measured on an AMD EPYC, timing every
 * run took bench/switch from 18.9 to 42.6 ns a switch (callgrind: +10%
 * instructions only), against weft's 3% budget for observability.
 *
 * Exact (WEFT_LATENCY_EXACT): every transition that makes a task runnable
 * is timed, spawns, wakes (by tasks, plain threads, timers, I/O, cancels)
 * and every yield, so once no task is runnable or running but the reader
 * the histogram's total equals task_runs, per worker and summed. It costs
 * two clock reads per switch: for tests and for measuring, not for
 * production (docs/concepts.md gives the measured cost).
 */
#define WEFT_LATENCY_BUCKETS 40
#define WEFT_LATENCY_SAMPLE 64

struct weft_worker_metrics {
	uint64_t tasks_spawned;  /* counter: by tasks running here */
	uint64_t tasks_finished; /* counter: tasks that returned here */
	uint64_t task_runs;      /* counter: switches into a task */
	uint64_t steals;         /* counter: successful steals by this worker */
	uint64_t tasks_stolen;   /* counter: tasks those steals took */
	uint64_t parks;          /* counter: times it slept for want of work */
	uint64_t unparks;        /* counter: of those, ended by a notify */
	uint64_t runnext_depth;  /* gauge: 0 or 1 */
	uint64_t local_depth;    /* gauge: spawned, requeued, and woken by
				   * its I/O and timers */
	uint64_t woken_depth;    /* gauge: woken tasks behind run-next */
	uint64_t io_submitted;   /* counter: io_uring operations submitted
				   * (a file call's operation,
				   * weft_io_submit's, and a socket
				   * call's attempts on the ring:
				   * weft_sock_path(); epoll: 0) */
	uint64_t io_completed;   /* counter: of those, completed */
	uint64_t io_in_flight;   /* gauge: submitted - completed */
	uint64_t timers_armed;   /* gauge: live entries of its timer heap */
	uint64_t latency_ns[WEFT_LATENCY_BUCKETS]; /* histogram, see above */
};

struct weft_metrics {
	int version; /* WEFT_METRICS_VERSION */
	int workers;
	/* Sums over the workers, and tasks spawned / finished off them. */
	uint64_t tasks_spawned;
	uint64_t tasks_finished;
	uint64_t tasks_alive; /* gauge: spawned - finished */
	uint64_t task_runs;
	uint64_t steals;
	uint64_t tasks_stolen;
	uint64_t worker_parks;
	uint64_t worker_unparks;
	uint64_t runnext_depth;
	uint64_t local_depth;
	uint64_t woken_depth;
	uint64_t global_depth; /* gauge: the global queue */
	uint64_t io_submitted;
	uint64_t io_completed;
	uint64_t io_in_flight;
	uint64_t timers_armed;
	uint64_t blocking_threads; /* gauge: threads of the blocking pool,
				    * those starting included */
	uint64_t blocking_busy;    /* gauge: of those, running a job or
				    * starting (started for a job) */
	uint64_t blocking_queued;  /* gauge: jobs waiting for a thread */
	/* counter: the monitor's rescues (a worker found kept by one task
	 * while others wait: marked stuck, once however many looks find it
	 * so, or its due timers fired) */
	uint64_t monitor_interventions;
	uint64_t stall_reports; /* counter: see cfg.stall_threshold_ns */
	uint64_t latency_ns[WEFT_LATENCY_BUCKETS]; /* summed histogram */
	/* Version 2. gauge: 1 while the workers keep their load on few of
	 * themselves, the machine having no CPU to spare (cfg.crowding) */
	uint64_t crowded;
	uint64_t crowd_changes; /* counter: into and out of that state */
};

/* Fills m with the running runtime's metrics. Any thread, at any time: an
 * exporter thread may read on while weft_run returns, and gets -ESRCH once
 * it has. Returns 0, -EINVAL (NULL), -ESRCH (no runtime); a failed call
 * writes nothing to m, so its result must be checked (WEFT_MUST_CHECK). */
WEFT_MUST_CHECK int weft_metrics(struct weft_metrics *m);

/* The same for one worker, 0 <= worker < weft_workers(). Returns 0,
 * -EINVAL (NULL or no such worker), -ESRCH (no runtime); writes nothing
 * to m then. */
WEFT_MUST_CHECK int weft_worker_metrics(int worker,
					struct weft_worker_metrics *m);

#ifdef __cplusplus
}
#endif
#endif
