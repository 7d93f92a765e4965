/* Waiting: the park/wake protocol of wait.h. */
#include <errno.h>
#include "cycles.h"

#include "futex.h"
#include "task.h"
#include "self.h"
#include "worker.h"

void weft__waiter_wake_thread(struct weft__waiter *w)
{
	/* A plain thread leaves once released is set: touch w no more.
	 * Release: pairs with the acquire in wait_park_thread, so the
	 * settle and the hand-over before it are visible when it leaves. */
	atomic_store_explicit(&w->released, 1, memory_order_release);
	weft__futex_wake(&w->released, 1);
}

bool weft__waiter_notify(struct weft__waiter *w, int result)
{
	if (!weft__waiter_settle(w, result))
		return false;
	weft__waiter_wake(w);
	return true;
}

int weft__wait_begin_until(struct weft__waiter *w, int64_t until)
{
	struct weft_task *t = w->task;
	if (!t)
		return 0; /* plain threads have no cancellation or deadlines */
	int64_t at = until < t->deadline ? until : t->deadline;
	/* Cancellation first, as weft__wait_check (concepts.md: a cancelled
	 * task's calls that have to wait return -ECANCELED). The task reads
	 * its own flag and shield: a cancel landing meanwhile is concurrent. */
	if (weft__deadline_passed(t))
		return weft__cancel_in_force(t) ? -ECANCELED : -ETIMEDOUT;
	weft__wait_lock(t);
	if (weft__cancel_in_force(t)) {
		weft__spin_unlock(&t->wait_lock);
		return -ECANCELED;
	}
	/* Armed before the wait is published, under the lock (task.h's lock
	 * order allows the heap's): if the arm fails, no abort has seen the
	 * wait. One may have acted on it for the waiter to finish (an io_uring
	 * op's abort posts a cancellation holding the op, which lives in the
	 * caller's frame), and a failed begin returns at once. A timer that
	 * fires before the wait is published waits for the lock, then finds
	 * it. */
	uint64_t seq = t->wait_seq + 1;
	if (at != WEFT_NO_DEADLINE && weft__timer_arm(t, at, seq)) {
		weft__spin_unlock(&t->wait_lock);
		return -ENOMEM;
	}
	t->wait_seq = seq;
	t->waiting = w;
	t->wait_since =
		(int64_t)weft__cycles(); /* inline, no call: metrics.h */
	t->wait_until = at;
	weft__spin_unlock(&t->wait_lock);
	return 0;
}

void weft__wait_end(struct weft__waiter *w)
{
	struct weft_task *t = w->task;
	if (!t)
		return;
	weft__wait_lock(t);
	t->waiting = NULL;
	weft__spin_unlock(&t->wait_lock);
	/* Relaxed: the task armed the timer itself (before, on whichever
	 * worker: a resume orders it); 0 means a firing worker cleared it, and
	 * disarm would find nothing either. A stale nonzero only costs the
	 * call, which re-checks with an exchange. */
	if (atomic_load_explicit(&t->timer.armed, memory_order_relaxed))
		weft__timer_disarm(t);
}

int weft__wait_park_thread(struct weft__waiter *w, void (*unlock)(void *),
			   void *arg)
{
	if (unlock)
		unlock(arg);
	/* Acquire: pairs with the release in waiter_wake_thread. */
	while (!atomic_load_explicit(&w->released, memory_order_acquire))
		weft__futex_wait(&w->released, 0, 0);
	return weft__waiter_state(w);
}

bool weft__doing_begin_fd(const char *call, int fd)
{
	struct weft_task *t = weft__task_current();
	if (!t || t->doing)
		return false;
	t->doing = call;
	t->doing_fd = fd;
	return true;
}

bool weft__doing_begin(const char *call)
{
	return weft__doing_begin_fd(call, -1);
}

void weft__doing_end(bool named)
{
	if (named)
		weft__task_current()->doing = NULL;
}
