/*
 * Timers: a min-heap per worker, keyed by absolute time, of tasks whose
 * current wait has a deadline. The heap's worker fires them in its loop and
 * parks no longer than its nearest timer. Each task has one timer node
 * (struct weft_timer, in the task), since it waits for one thing at a time:
 * a million sleepers cost a heap slot (8 bytes) each, no allocation.
 *
 * Invariants:
 *  - t->timer.owner is the worker whose heap holds t, or NULL; it and
 *    t->timer.index change only under that worker's timer_lock.
 *  - A timer is armed on the worker the task runs on, but disarmed by the
 *    task wherever it wakes: disarm takes the owner's lock, re-checking the
 *    owner, so a timer is never left behind.
 *  - Firing happens outside the heap lock, under the task's wait_lock, and
 *    only if the wait it was armed for (timer.seq) is still the current one.
 */
#include <errno.h>
#include <stdlib.h>
#include <time.h>

#include "task.h"
#include "worker.h"

#define FIRE_BATCH 64

int64_t weft_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * WEFT_SEC + ts.tv_nsec;
}

static void heap_set(struct weft_worker *w, int64_t i, struct weft_task *t)
{
	w->heap[i] = t;
	t->timer.index = i;
}

static void sift_up(struct weft_worker *w, int64_t i)
{
	struct weft_task *t = w->heap[i];
	while (i > 0) {
		int64_t p = (i - 1) / 2;
		if (w->heap[p]->timer.at <= t->timer.at)
			break;
		heap_set(w, i, w->heap[p]);
		i = p;
	}
	heap_set(w, i, t);
}

static void sift_down(struct weft_worker *w, int64_t i)
{
	struct weft_task *t = w->heap[i];
	for (;;) {
		int64_t c = 2 * i + 1;
		if (c >= w->heap_len)
			break;
		if (c + 1 < w->heap_len &&
		    w->heap[c + 1]->timer.at < w->heap[c]->timer.at)
			c++;
		if (t->timer.at <= w->heap[c]->timer.at)
			break;
		heap_set(w, i, w->heap[c]);
		i = c;
	}
	heap_set(w, i, t);
}

static void heap_remove(struct weft_worker *w, int64_t i)
{
	int64_t len = w->heap_len - 1;
	struct weft_task *last = w->heap[len];
	/* Atomic: the scheduler peeks at heap_len without the lock. */
	__atomic_store_n(&w->heap_len, len, __ATOMIC_RELAXED);
	if (i < len) {
		heap_set(w, i, last);
		sift_down(w, i);
		sift_up(w, last->timer.index);
	}
}

int weft__timer_arm(struct weft_task *t, int64_t at, uint64_t seq)
{
	struct weft_worker *w = weft__self();
	weft__spin_lock(&w->timer_lock);
	if (w->heap_len == w->heap_cap) {
		int64_t cap = w->heap_cap ? w->heap_cap * 2 : 256;
		struct weft_task **h = realloc(w->heap, (size_t)cap * sizeof(*h));
		if (!h) {
			weft__spin_unlock(&w->timer_lock);
			return -ENOMEM;
		}
		w->heap = h;
		w->heap_cap = cap;
	}
	t->timer.at = at;
	t->timer.seq = seq;
	w->heap[w->heap_len] = t;
	t->timer.index = w->heap_len;
	__atomic_store_n(&w->heap_len, w->heap_len + 1, __ATOMIC_RELAXED);
	sift_up(w, t->timer.index);
	atomic_store_explicit(&t->timer.owner, w, memory_order_release);
	weft__spin_unlock(&w->timer_lock);
	return 0;
}

void weft__timer_disarm(struct weft_task *t)
{
	for (;;) {
		struct weft_worker *w = atomic_load_explicit(
			&t->timer.owner, memory_order_acquire);
		if (!w)
			return;
		weft__spin_lock(&w->timer_lock);
		if (atomic_load_explicit(&t->timer.owner,
					 memory_order_relaxed) == w) {
			heap_remove(w, t->timer.index);
			t->timer.index = -1;
			atomic_store_explicit(&t->timer.owner, NULL,
					      memory_order_relaxed);
			weft__spin_unlock(&w->timer_lock);
			return;
		}
		weft__spin_unlock(&w->timer_lock);
	}
}

static void fire(struct weft_task *t, uint64_t seq)
{
	weft__spin_lock(&t->wait_lock);
	struct weft__waiter *w = t->waiting;
	if (w && t->wait_seq == seq && w->abort)
		w->abort(w, -ETIMEDOUT);
	weft__spin_unlock(&t->wait_lock);
}

int64_t weft__timers_run(struct weft_worker *w)
{
	struct weft_task *due[FIRE_BATCH];
	uint64_t seqs[FIRE_BATCH];
	int64_t now = weft_now();
	for (;;) {
		int n = 0;
		int64_t wait = -1;
		weft__spin_lock(&w->timer_lock);
		while (w->heap_len && n < FIRE_BATCH) {
			struct weft_task *t = w->heap[0];
			if (t->timer.at > now) {
				wait = t->timer.at - now;
				break;
			}
			heap_remove(w, 0);
			t->timer.index = -1;
			atomic_store_explicit(&t->timer.owner, NULL,
					      memory_order_relaxed);
			seqs[n] = t->timer.seq;
			due[n++] = t;
		}
		weft__spin_unlock(&w->timer_lock);
		for (int i = 0; i < n; i++)
			fire(due[i], seqs[i]);
		if (n < FIRE_BATCH)
			return wait;
	}
}

void weft__timers_free(struct weft_worker *w)
{
	free(w->heap);
	w->heap = NULL;
	w->heap_len = w->heap_cap = 0;
}

/* ---- sleeping ----------------------------------------------------------- */

/* A sleeper is linked nowhere but its own little lock: "linked" means it
 * has committed to parking, after which only the abort may wake it. */
struct sleeper {
	struct weft__waiter w;
	unsigned lock;
	bool linked;
};

static void sleep_unlock(void *s)
{
	weft__spin_unlock(&((struct sleeper *)s)->lock);
}

static void sleep_abort(struct weft__waiter *w, int reason)
{
	struct sleeper *s = (struct sleeper *)w;
	weft__spin_lock(&s->lock);
	if (s->linked)
		weft__waiter_notify(w, reason);
	else
		weft__waiter_settle(w, reason);
	weft__spin_unlock(&s->lock);
}

int weft_sleep(int64_t ns)
{
	struct weft_task *t = weft__task_current();
	if (!t)
		return -EPERM;
	if (ns <= 0)
		return weft_yield();
	struct sleeper s = { .lock = 0, .linked = false };
	weft__waiter_init(&s.w, sleep_abort);
	int r = weft__wait_begin_until(&s.w, weft_now() + ns);
	if (r)
		return r;
	weft__spin_lock(&s.lock);
	if (weft__waiter_state(&s.w) != WEFT__WAITING) {
		weft__spin_unlock(&s.lock);
		weft__wait_end(&s.w);
		r = weft__waiter_state(&s.w);
	} else {
		s.linked = true;
		r = weft__wait_park(&s.w, sleep_unlock, &s);
	}
	/* Our own timer ending the sleep is success; the scope's deadline
	 * ending it is a timeout. */
	if (r == -ETIMEDOUT && t->deadline > weft_now())
		r = 0;
	return r;
}

/* ---- deadline scopes ---------------------------------------------------- */

int weft_deadline_enter_at(struct weft_deadline *d, int64_t at)
{
	struct weft_task *t = weft__task_current();
	if (!t || !d)
		return t ? -EINVAL : -EPERM;
	d->at = at;
	d->outer = t->deadline;
	d->prev = t->scope;
	t->scope = d;
	if (at < t->deadline)
		t->deadline = at;
	return 0;
}

int weft_deadline_enter(struct weft_deadline *d, int64_t ns)
{
	return weft_deadline_enter_at(d, weft_now() + ns);
}

int weft_deadline_leave(struct weft_deadline *d)
{
	struct weft_task *t = weft__task_current();
	if (!t)
		return -EPERM;
	if (!d || t->scope != d)
		return -EINVAL;
	t->deadline = d->outer;
	t->scope = d->prev;
	return weft_now() >= d->at;
}
