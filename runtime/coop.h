/*
 * The cooperative budget: how many I/O calls a task may make in one run
 * (between two picks of its worker's scheduler) before one of them yields
 * first. Tokio's coop budget, for the same reason.
 *
 * A task whose socket calls keep succeeding at once (its peer sends as
 * fast as it reads) never parks, so it never passes through its worker's
 * scheduler. The tasks behind it on that worker wait for as long as the
 * data flows: the monitor rescues those in places other workers may take
 * from (runq.h), moves its yielded tasks and fires its due timers, but
 * not (under io_uring) the completions of its ring, and only after a
 * whole look. With the budget
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
 * as any blocking call of a cancelled task does). In a task on w.
 *
 * The count is the worker's, not the task's: one task runs on a worker
 * at a time, and its run ends with the pick that moves the tick, so a
 * count begun at another tick is another run's. Kept beside the ticks,
 * it touches no line of the task's (an A/B of the two places with
 * bench/floor showed no difference in CPU per request, 1.000-1.004). */
static inline int weft__coop_spend(struct weft_worker *w)
{
	/* Relaxed: the owner is the only writer of its ticks. */
	uint64_t tick = atomic_load_explicit(&w->ticks, memory_order_relaxed);

	if (w->coop_tick != tick) {
		w->coop_tick = tick;
		w->coop_used = 0;
	}
	if (++w->coop_used < WEFT__COOP_BUDGET)
		return 0;
	return weft_yield();
}

#endif
