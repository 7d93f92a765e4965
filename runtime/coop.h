/*
 * The cooperative budget: how many I/O calls a task may make in one run
 * (between two picks of its worker's scheduler) before one of them yields
 * first. Tokio's coop budget, for the same reason.
 *
 * A task whose socket calls keep succeeding at once (its peer sends as
 * fast as it reads) never parks, so it never passes through its worker's
 * scheduler. The tasks behind it on that worker wait for as long as the
 * data flows: the monitor rescues those in places other workers may take
 * from (runq.h), and fires its due timers, but not the yielded list,
 * which is the owner's alone, nor (under io_uring) the completions of its
 * ring. With the budget
 * such a loop yields every WEFT__COOP_BUDGET calls, a few hundred
 * nanoseconds in tens of microseconds of calls; a task that waits now and
 * then never meets it.
 *
 * A run is told by the worker's tick count (runq.h's weft__runq_pick),
 * which every pick moves: a task that parks, yields or moves to another
 * worker starts a new one.
 */
#ifndef WEFT_RUNTIME_COOP_H
#define WEFT_RUNTIME_COOP_H

#include <stdatomic.h>

#include "self.h"
#include "task.h"
#include "weft/task.h"

#define WEFT__COOP_BUDGET 128 /* Tokio's */

/* Before a task's I/O call: 0, or after the task's budget ran out, its
 * yield's result (0, or -ECANCELED: the call fails without its attempt,
 * as any blocking call of a cancelled task does). On a worker only. */
static inline int weft__coop_spend(struct weft_worker *w)
{
	struct weft_task *t = w->current;
	/* Relaxed: the owner is the only writer of its ticks. */
	uint64_t tick = atomic_load_explicit(&w->ticks, memory_order_relaxed);

	if (!t)
		return 0;
	if (t->coop_tick != tick) {
		t->coop_tick = tick;
		t->coop_used = 0;
	}
	if (++t->coop_used < WEFT__COOP_BUDGET)
		return 0;
	return weft_yield();
}

#endif
