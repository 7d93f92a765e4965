/*
 * Crowding: whether the workers keep their load on as few of themselves
 * as carry it, because the machine has no CPU to spare for more.
 *
 * Spreading woken tasks over the workers (a big batch shared, queued tasks
 * offered to an idle worker, any sleeping worker the poll set's poller)
 * pays where each worker has a CPU of its own. Where the CPUs are taken (a
 * load generator, another service, a container's share), each more
 * runnable worker is one more thread waiting for a CPU, and those waits
 * are the tail: two epoll workers beside a load generator on two CPUs
 * each waited for a CPU a third of the time, and one worker alone served
 * 16% more at half the p99 (bench/README.md, twenty-seventh session).
 *
 * The signal is the workers' own: the time they were runnable but not on
 * a CPU (the kernel's schedstat run delay, per thread), as a share of the
 * time they were runnable at all. The monitor reads it (crowd.c):
 *
 *   spread -> crowded   the workers waited CROWD_WAIT_PCT of their
 *                       runnable time over a window of CROWD_WINDOW_NS
 *   crowded -> spread   a probe: half a CPU was idle and ours since the
 *                       last look, looked at once per backoff, from
 *                       CROWD_BACKOFF_MIN_NS
 *
 * Idle and ours: idle on the host (/proc/stat), and left of the process's
 * share, its CPUs (the monitor's affinity mask, which it has from
 * weft_run's caller, and the cgroup's CPU limit, read at start) less the
 * CPU time it used. A container limited to one CPU on an idle host so
 * never probes. A probe that crowds again within CROWD_SETTLE_NS doubles
 * the backoff, up to CROWD_BACKOFF_MAX_NS, for what the share misses
 * (another process of the cgroup, a limit changed later); a spread that
 * lasts resets it.
 *
 * Idle CPU alone cannot be the signal: spread workers sleep between their
 * harvests, so the crowded machine above showed 11-15% of a CPU idle; nor
 * can waits alone undo crowding, as they vanish once it works (twenty-
 * eighth session).
 *
 * While crowded:
 *  - only the last worker to fall asleep sleeps as the poll set's poller
 *    (worker.c's may_poll), so readiness wakes no second worker while one runs;
 *  - a woken batch is never shared (worker.c's share_woken);
 *  - the monitor rouses nobody for tasks merely queued (monitor.c).
 * Nothing else changes: a spawn still wakes a sleeper (idle.h), a stuck
 * worker's tasks are still rescued and an unattended poll set harvested
 * (monitor.h), so no task waits for a worker that does not come.
 *
 * Without schedstat (a kernel without CONFIG_SCHED_INFO) the runtime never
 * crowds; without /proc/stat, once crowded it stays so.
 *
 * Only under epoll. Under io_uring a socket's operations complete on the
 * ring of the worker that submitted them, which keeps a server's load on
 * one worker already (its closed-loop p99 was Tokio's 0.44); crowding
 * there changed nothing in closed loop, and one open-loop run in five at
 * 90% load fell behind for good (p99 298 ms), its one worker saturated
 * with no idle CPU to probe with (bench/README.md, twenty-ninth session).
 */
#ifndef WEFT_RUNTIME_CROWD_H
#define WEFT_RUNTIME_CROWD_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#define CROWD_WINDOW_NS (20 * 1000 * 1000)
/* The idle monitor reads less often: a sleep it ends costs the machine
 * more than a look the armed one makes anyway. */
#define CROWD_IDLE_WINDOW_NS (100 * 1000 * 1000)
#define CROWD_WAIT_PCT 20
#define CROWD_BACKOFF_MIN_NS (100 * 1000 * 1000)
#define CROWD_BACKOFF_MAX_NS (6400LL * 1000 * 1000)
#define CROWD_SETTLE_NS (1000LL * 1000 * 1000)

/* Cumulative readings, in nanoseconds: the workers' summed time on a CPU
 * and runnable off one; read only while crowded (0 otherwise), the
 * machine's idle CPU time (-1: unreadable) and the process's CPU time.
 * And the CPUs of the process's share (0: unknown). */
struct weft__crowd_sample {
	uint64_t run, wait;
	int64_t idle, used;
	double cpus;
};

struct weft__crowd {
	/* Read relaxed by workers and the monitor: a policy hint, ordering
	 * no data. Written by the monitor only. */
	_Atomic bool on;
	_Atomic uint64_t changes; /* for weft_metrics; monitor only */
	bool enabled;             /* cfg.crowding and schedstat allow it */
	int *fds;                 /* each worker's schedstat */
	int nfds;
	int stat_fd;       /* /proc/stat, or -1 */
	int64_t idle_base; /* its idle ticks at start, or -1 */
	double limit;      /* the cgroup's CPU limit in CPUs, 0: none */
	/* The controller (weft__crowd_step): the monitor's alone. */
	int64_t next;      /* when it next decides */
	int64_t since;     /* its last reading: the window's start */
	int64_t spread_at; /* when it last spread */
	int64_t backoff;
	struct weft__crowd_sample last;
};

struct weft_runtime;
struct weft_config;

/* From cfg and $WEFT_CROWDING: whether the runtime may crowd (1, the
 * default, or 0), or -EINVAL. weft_run keeps it in rt->crowd.enabled. */
int weft__crowd_config(const struct weft_config *cfg);

/* Opens each worker's schedstat and /proc/stat for the monitor, once the
 * workers run (their thread ids are known) and before the monitor does.
 * Returns 0 or -ENOMEM; a file that will not open only leaves crowding
 * off (or sticky, above). */
int weft__crowd_start(struct weft_runtime *rt);
void weft__crowd_stop(struct weft_runtime *rt);

/* The monitor's look, at any period: reads and decides once a window.
 * Monitor thread only. */
void weft__crowd_look(struct weft_runtime *rt, int64_t now);

/* The decision on one sample, at now: no I/O, only c's controller state
 * and s, so tests drive it with made-up readings. Returns whether it
 * changed c->on. */
bool weft__crowd_step(struct weft__crowd *c, int64_t now,
		      const struct weft__crowd_sample *s);

/* Whether the crowding state is on: one relaxed load (see the field). */
static inline bool weft__crowded(struct weft__crowd *c)
{
	return atomic_load_explicit(&c->on, memory_order_relaxed);
}

#endif
