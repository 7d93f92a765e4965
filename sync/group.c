/*
 * weft_group: a set of tasks waited for together (see weft/group.h).
 *
 * Invariants, all under g->lock:
 *  - members lists exactly the running members, running counts them; a
 *    member unlinks itself, last thing before it returns, and its node is
 *    freed then, so a cancel never sees a node of a task that is gone.
 *  - error is set by the first member that fails, and the others are
 *    cancelled then (not with WEFT_GROUP_COLLECT); it changes after that
 *    only while shutting_down, from -ECANCELED to a member's real failure
 *    (outranks). It is the round's: every wait and shutdown in the round
 *    returns it, and the last of them to leave clears it, the group empty
 *    (waiting counts them). A stop and a wait overlap when a plain thread
 *    or another task shuts down a group a task waits on, and both must
 *    say the failure: cleared by the first, it would leave the other 0.
 *    failures counts every failure, for good.
 *  - While shutting_down, no member is added, so the cancel at its start
 *    reaches every member it then waits for. A shutdown and a cancelled
 *    wait both stop the members this way (stop_members).
 * A member's handle is stored before the member can take the lock: the
 * spawner holds it across the spawn.
 */
#include <errno.h>
#include <stdlib.h>

#include "weft/group.h"
#include "lock.h"
#include "../runtime/list.h"
#include "../runtime/task.h"
#include "../runtime/wait.h"

struct weft__group_member {
	struct weft__group_member *next, *prev;
	struct weft_group *group;
	weft_task_t task;
	weft_fn fn;
	void *arg;
};

int weft_group_init(struct weft_group *g)
{
	return weft_group_init_flags(g, 0);
}

int weft_group_init_flags(struct weft_group *g, unsigned flags)
{
	if (!g || (flags & ~WEFT_GROUP_COLLECT))
		return -EINVAL;
	weft_lock_init(&g->lock);
	weft_cond_init(&g->idle, &g->lock);
	g->members = NULL;
	g->running = 0;
	g->error = 0;
	g->flags = flags;
	g->shutting_down = false;
	g->failures = 0;
	g->waiting = 0;
	return 0;
}

/* Whether g went through weft_group_init, and was not moved since: its
 * condition then names its own lock. A zero-filled or copied group is
 * -EINVAL; a wait on it would fail at once, forever, under the lock. */
static bool usable(const struct weft_group *g)
{
	return g && g->idle.lock == &g->lock;
}

static bool collects(const struct weft_group *g)
{
	return g->flags & WEFT_GROUP_COLLECT;
}

/* Under g->lock. */
static void cancel_members(struct weft_group *g)
{
	for (struct weft__group_member *m = g->members; m; m = m->next)
		weft_cancel(m->task);
}

/* Under g->lock: whether failure err is the one g's round reports. The
 * first is, as is a real one while a stop cancels the members, over a
 * -ECANCELED some member reported: asyncio's TaskGroup raises a member's
 * error, never the cancellation it was given. */
static bool outranks(const struct weft_group *g, int err)
{
	return !g->error || (g->shutting_down && g->error == -ECANCELED &&
			     err != -ECANCELED);
}

static void *member_main(void *arg)
{
	struct weft__group_member *m = arg;
	struct weft_group *g = m->group;
	void *r = m->fn(m->arg);
	/* Cancelled or not, the member must account for itself. */
	weft__lock_acquire_uninterruptible(&g->lock);
	weft__list_unlink(g->members, m);
	g->failures += WEFT_IS_ERR(r);
	if (WEFT_IS_ERR(r) && outranks(g, WEFT_PTR_ERR(r))) {
		g->error = WEFT_PTR_ERR(r);
		if (!collects(g))
			cancel_members(g);
	}
	if (--g->running == 0)
		weft_cond_notify_all(&g->idle);
	weft_lock_release(&g->lock);
	free(m);
	return r;
}

/* Under g->lock, the group empty: a wait or a shutdown has its result.
 * The last one ends the round; one still to be served must say the same
 * failure. Calls that came after the round's last member returned wait
 * for that (round_over). */
static void leave_round(struct weft_group *g)
{
	if (--g->waiting == 0) {
		g->error = 0;
		weft_cond_notify_all(&g->idle);
	}
}

/* Under g->lock: lets the waits and shutdowns of a round whose members
 * have all returned leave before the caller (a spawn, wait or shutdown)
 * goes on, so that it starts the next round. Those calls are on their
 * way out: notified, or cancelled and retaking the lock. Had a spawn
 * gone first, they would wait for its member too, say its failure, and a
 * cancelled one would cancel it; a failed round would refuse it. */
static void round_over(struct weft_group *g)
{
	if (g->running || !g->waiting)
		return;
	struct weft_shield s;
	bool shielded = weft_shield_enter(&s) == 0; /* not on a plain thread */
	while (!g->running && g->waiting) {
		int r = weft__cond_wait_as(&g->idle, WEFT__WAIT_GROUP, g);
		(void)r; /* shielded, or a plain thread: it cannot fail */
	}
	if (shielded)
		weft_shield_leave(&s);
}

int weft_group_spawn(struct weft_group *g, weft_fn fn, void *arg)
{
	if (!usable(g) || !fn)
		return -EINVAL;
	struct weft__group_member *m = malloc(sizeof(*m));
	if (!m)
		return -ENOMEM;
	*m = (struct weft__group_member){ .group = g, .fn = fn, .arg = arg };
	weft__lock_acquire_uninterruptible(&g->lock);
	round_over(g);
	bool refused = g->shutting_down || (g->error && !collects(g));
	/* Its stack taken now: a member that got none at its first run
	 * would never run member_main, and never account for itself. */
	int r = refused ? -ECANCELED
			: weft__spawn_with_stack(&m->task, member_main, m);
	if (!r) {
		weft_detach(m->task); /* the handle stays good for cancel */
		weft__list_push_front(g->members, m);
		g->running++;
	}
	weft_lock_release(&g->lock);
	if (r)
		free(m);
	return r;
}

int weft_group_cancel(struct weft_group *g)
{
	if (!usable(g))
		return -EINVAL;
	weft__lock_acquire_uninterruptible(&g->lock);
	cancel_members(g);
	weft_lock_release(&g->lock);
	return 0;
}

/* Under g->lock: until the group is empty, whatever the caller's state. */
static void wait_idle_shielded(struct weft_group *g)
{
	struct weft_shield s;
	bool shielded = weft_shield_enter(&s) == 0; /* not on a plain thread */
	while (g->running) {
		int r = weft__cond_wait_as(&g->idle, WEFT__WAIT_GROUP, g);
		(void)r; /* shielded, or a plain thread: it cannot fail */
	}
	if (shielded)
		weft_shield_leave(&s);
}

/* Under g->lock: cancels every member and waits until all have returned.
 * Spawns are refused meanwhile: a member added after the cancel (by a
 * member that shields itself, say) would run on uncancelled, and the wait
 * would last as long as it does. */
static void stop_members(struct weft_group *g)
{
	/* Stops overlap (a shutdown, a cancelled wait): the first one owns
	 * the flag and clears it. One that came later and is served first
	 * when the group empties must not clear it under the first, which
	 * would then wait for whatever was spawned in between, uncancelled.
	 * The first clears it only once empty, and the others are either
	 * served before it or right after it (moved by the same notify). */
	bool first = !g->shutting_down;
	g->shutting_down = true;
	cancel_members(g);
	wait_idle_shielded(g);
	if (first)
		g->shutting_down = false;
}

/* Under g->lock: whether the caller is one of g's running members, which
 * a wait or a shutdown would wait for, itself among them, for good (as a
 * join of itself, or an acquire of a lock it holds, it is -EDEADLK). */
static bool caller_is_member(const struct weft_group *g)
{
	weft_task_t me = weft_current();

	for (struct weft__group_member *m = g->members; me.task && m;
	     m = m->next)
		if (m->task.task == me.task && m->task.gen == me.gen)
			return true;
	return false;
}

int weft_group_wait(struct weft_group *g)
{
	if (!usable(g))
		return -EINVAL;
	weft__lock_acquire_uninterruptible(&g->lock);
	if (caller_is_member(g)) {
		weft_lock_release(&g->lock);
		return -EDEADLK;
	}
	round_over(g);
	g->waiting++;
	int r = 0;
	while (g->running && !r)
		r = weft__cond_wait_as(&g->idle, WEFT__WAIT_GROUP, g);
	if (r) {
		/* Cancelled, timed out, or no memory for the deadline's timer
		 * (-ENOMEM: the deadline cannot be kept, and returning now
		 * would leave them running): the members go too, and are
		 * waited for, since they may use this stack. A failure that
		 * came first is what the wait says, as asyncio's TaskGroup
		 * lets a member's error win over its waiter's cancellation
		 * (which weft keeps: the waiter's next call says it again);
		 * so is a real one during the stop. Not the -ECANCELED the
		 * stop gave a member, which it may report as its failure. */
		bool failed = g->error;
		stop_members(g);
		if (failed || (g->error && g->error != -ECANCELED))
			r = g->error;
	} else {
		r = g->error;
	}
	leave_round(g);
	weft_lock_release(&g->lock);
	return r;
}

int weft_group_shutdown(struct weft_group *g)
{
	int r;

	if (!usable(g))
		return -EINVAL;
	weft__lock_acquire_uninterruptible(&g->lock);
	if (caller_is_member(g)) {
		weft_lock_release(&g->lock);
		return -EDEADLK;
	}
	round_over(g);
	g->waiting++;
	stop_members(g);
	r = g->error;
	leave_round(g);
	weft_lock_release(&g->lock);
	return r;
}

int weft_group_running(struct weft_group *g)
{
	int n;

	if (!usable(g))
		return -EINVAL;
	weft__lock_acquire_uninterruptible(&g->lock);
	n = g->running;
	weft_lock_release(&g->lock);
	return n;
}

long weft_group_failures(struct weft_group *g)
{
	long n;

	if (!usable(g))
		return -EINVAL;
	weft__lock_acquire_uninterruptible(&g->lock);
	n = g->failures;
	weft_lock_release(&g->lock);
	return n;
}
