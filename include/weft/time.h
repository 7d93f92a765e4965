/* weft time: sleeping, the clock, deadlines. Part of <weft.h>. */
#ifndef WEFT_TIME_H
#define WEFT_TIME_H

#include <stdint.h>
#include "weft/must_check.h"

#ifdef __cplusplus
extern "C" {
#endif

#define WEFT_USEC 1000LL
#define WEFT_MSEC 1000000LL
#define WEFT_SEC 1000000000LL

/* Monotonic clock in nanoseconds. */
int64_t weft_now(void);

/* Sleeps for ns nanoseconds (asyncio.sleep); ns <= 0 yields once, and a
 * sleep past the clock's range (INT64_MAX) lasts until cancelled. Returns 0,
 * -ECANCELED, -ETIMEDOUT if an enclosing deadline comes first (or had
 * passed when it was called, even for ns <= 0), -ENOMEM (no memory for its
 * timer), -EPERM outside a task (use nanosleep there). A sleep that ends at
 * the deadline's very instant returns 0: the call's own time wins a tie,
 * as a select's timeout case does (the rule under struct weft_deadline). */
int weft_sleep(int64_t ns);

/* Sleeps until the absolute weft_now() time at (no drift in periodic
 * loops). Tasks that slept on one worker to the same time wake in the
 * order they slept; each worker keeps its own timers, so across workers
 * a busy one may fire its due timers a little after an idle one. But
 * while a task keeps their worker, a busy worker that takes over what
 * waits there (to run it sooner) may run a batch of them, up to 32, before
 * the rest of one it took before. Returns as weft_sleep. */
int weft_sleep_until(int64_t at);

/* A deadline scope (asyncio.timeout, Trio's move_on_at): between enter and
 * leave every blocking call of the task returns -ETIMEDOUT once the deadline
 * has passed. Scopes nest; the earliest deadline applies. The scope lives in
 * the caller's frame and must be left in LIFO order; it needs no
 * initialising, and one task at a time may be inside it.
 *
 * Ties: a call with a time of its own (a sleep's end, a select's timeout
 * case) that comes at the same instant as the deadline completes as if it
 * came first: the sleep returns 0, the select its timeout case, as in
 * Tokio, whose timeout(d, sleep(d)) polls the inner future first and so
 * sees the sleep complete. */
struct weft_deadline {
	int64_t at;    /* absolute weft_now() time */
	int64_t outer; /* the deadline in force before this scope */
	struct weft_deadline *prev; /* the enclosing scope */
	/* Weft's own: which task is inside the scope, checked by enter. */
	void *task;
	uintptr_t check;
};

/* Enters a scope expiring ns from now. Returns 0, -EINVAL (NULL d, or d
 * entered and not left yet, by this task or by another), -EPERM outside a
 * task. */
WEFT_MUST_CHECK int weft_deadline_enter(struct weft_deadline *d, int64_t ns);
/* Enters a scope expiring at the absolute time at (weft_now()'s clock).
 * Returns as weft_deadline_enter. */
WEFT_MUST_CHECK int weft_deadline_enter_at(struct weft_deadline *d, int64_t at);
/* Leaves the scope. Returns 1 if the deadline had passed, 0 if not,
 * -EINVAL if d is not the innermost scope, -EPERM outside a task. */
int weft_deadline_leave(struct weft_deadline *d);

#ifdef __cplusplus
}
#endif
#endif
