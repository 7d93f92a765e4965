/*
 * The monitor: a thread that rescues run-next tasks stuck behind a task
 * that keeps its worker, and fd events that nobody harvests (two of the
 * jobs of Go's sysmon).
 *
 * A task woken by a running task stays on the waker's worker, where other
 * workers take it only in a burst or once the monitor marked that worker
 * stuck (runq.h: who may take a runnable task, and why). A waker that keeps
 * running (computes, spins, blocks in a system call) would strand it, so
 * each such wake arms the monitor.
 *
 * While armed, the monitor looks at every worker once a period. A worker
 * whose tick count has not moved since the last look, and whose run-next
 * slot holds the same task or whose deque or ready queue held tasks both
 * times, is stuck; so is one whose oldest woken task waited all period
 * while it ran others. The monitor marks it and rouses an idle worker,
 * whose search then steals those tasks (steal.c). A worker whose deque
 * or ready queue held tasks at two looks, though it ran on, is not
 * stuck, but the monitor rouses an idle worker for those too: they are
 * open to thieves and offered to none (runq.h).
 * It also fires the due timers of a worker kept by one task all period,
 * so that task's sleepers wake on time on other workers (into that
 * worker's ready queue, whose tasks thieves take oldest first, and which
 * the worker, once free, runs in order: its own later firing queues
 * behind them), and moves that
 * worker's yielded tasks to the global queue, where any worker takes
 * them (a yielded list is its owner's: runq.h). Once no worker
 * has tasks waiting, yielded or a timer due soon (TIMER_SOON_NS) it
 * disarms and
 * sleeps until a wake or a new first timer of a heap arms it, or the first
 * timer it saw is soon: a timer far ahead, live or disarmed, costs no
 * looks until then.
 *
 * The ready queue is watched for the tasks a worker's scheduler woke just
 * before it picked a task that keeps it: thieves may take them, but none
 * is roused for a batch of up to 16 (worker.c's share_woken). A batch of
 * two or more arms the monitor. One task arms nothing: it runs next,
 * unless a run-next or woken task goes first, whose wake armed the
 * monitor, or a task from the deque or the global queue, which were
 * offered to the idle workers (idle.h: a sleeper's re-check sees them).
 *
 * The poll set (drivers/readiness/pollset.h) has a poller while a worker
 * sleeps in it. The poller that wakes leaves it, arming the monitor; until
 * a worker sleeps there again, the monitor harvests the set whenever no
 * worker did for a whole period, so a task that keeps the worker that
 * left strands no connection whose events nobody else would look for.
 *
 * It reads the crowding signal (crowd.h) at each look, and while idle
 * every CROWD_IDLE_WINDOW_NS if a worker is awake; while the runtime is
 * crowded it rouses nobody for tasks that are merely queued.
 *
 * No lost arming: a waker fills the slot (or the poller leaves the set,
 * or the first fd joins it, or a task arms a timer: timer.c's store of
 * the heap's length), then reads the state (seq_cst both); the monitor
 * sets IDLE, then reads every slot, timer count, the poller role and
 * whether an fd joined (seq_cst all). One of them sees
 * the other. Deque lengths are outside the rule: an arming lost
 * there costs no task (runq.c's requeue). So are ready queue lengths, but
 * for the task a pick left behind when it took a run-next task, which the
 * monitor reads after the slot: a look that finds the slot emptied by
 * that pick (its seq_cst exchange) sees the push that came before it, and
 * the wake that filled the slot armed the monitor. A heap's first timer
 * the monitor reads under the heap's lock after setting IDLE: an arm whose
 * lock came first is seen, and one whose lock came after reads the state
 * after the IDLE (the lock orders them), so a new first arms the monitor.
 * An arm that is not its heap's first needs not: a first at or before it
 * was seen, or armed the monitor itself. A yielded list's head is read
 * under its lock the same way, and its first task arms (runq.h). A first
 * seen leaves once due (the monitor woke before) or compacted away (it
 * wakes early, for nothing).
 */
#ifndef WEFT_RUNTIME_MONITOR_H
#define WEFT_RUNTIME_MONITOR_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "stall.h"

enum { MON_IDLE, MON_ARMED, MON_STOP };

struct weft_monitor {
	_Atomic int state;              /* a futex word */
	_Atomic uint64_t interventions; /* for weft_metrics; monitor only */
	_Atomic uint64_t wakeups;       /* for tests: its sleeps that ended */
	_Atomic uint64_t offers; /* for tests: looks that offered queued tasks
				  * to an idle worker (its queued rule) */
	struct weft__stall_watch stall;
	bool started;
	pthread_t thread;
	struct look *last; /* per worker: what the last look saw */
};

struct weft_runtime;

/* Starts the monitor of rt (not needed, so not started, with one worker). */
int weft__monitor_start(struct weft_runtime *rt);
void weft__monitor_stop(struct weft_runtime *rt);

void weft__monitor_arm_slow(struct weft_monitor *m);

/* For tests that hold a task in a kept worker's yielded list on purpose
 * (to see what else rescues its neighbours): while set, the monitor does
 * not look at yielded lists, so they neither keep it armed nor are
 * moved. Set only between runs. */
extern bool weft__monitor_keeps_yielded;

/* How long the armed monitor sleeps between looks (monitor.c says why).
 * Only the monitor thread touches it; a test drives it on made-up times. */
struct weft_monitor_pace {
	long period;         /* ns until the next look */
	int calm;            /* calm looks since a change or a wake */
	int64_t disarmed_at; /* when it last disarmed (weft_now) */
};

void weft__monitor_pace_init(struct weft_monitor_pace *p);
/* The idle monitor woke at now; timer_soon: it armed itself for a timer. */
void weft__monitor_pace_woke(struct weft_monitor_pace *p, int64_t now,
			     bool timer_soon);
/* After an armed look: stuck if it marked a worker stuck. */
void weft__monitor_pace_looked(struct weft_monitor_pace *p, bool stuck);
void weft__monitor_pace_disarmed(struct weft_monitor_pace *p, int64_t now);

/* After a wake left a task in a run-next slot: make sure the monitor
 * watches. One load of a line that stays unwritten while it is armed. */
static inline void weft__monitor_arm(struct weft_monitor *m)
{
	if (atomic_load(&m->state) == MON_IDLE)
		weft__monitor_arm_slow(m);
}

#endif
