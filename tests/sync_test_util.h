/* Shared by the sync suites: an event log to assert orders on, a random
 * stream, the waiters a queue has and a wait for them to queue up, and a
 * way to run the other party's call in the window before a waiter takes
 * its queue's lock. */
#ifndef WEFT_TESTS_SYNC_TEST_UTIL_H
#define WEFT_TESTS_SYNC_TEST_UTIL_H

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>
#include "test_util.h"
#include "sync/waitq.h"
#include "runtime/task.h"

/* ---- an event log, asserted on afterwards ------------------------------- */

static pthread_mutex_t log_mu = PTHREAD_MUTEX_INITIALIZER;
static const char *log_ev[64];
static int log_n;

static __attribute__((unused)) void log_reset(void)
{
	log_n = 0;
}

static __attribute__((unused)) void log_add(const char *ev)
{
	pthread_mutex_lock(&log_mu);
	ck_assert_int_lt(log_n, 64);
	log_ev[log_n++] = ev;
	pthread_mutex_unlock(&log_mu);
}

static __attribute__((unused)) int log_pos(const char *ev)
{
	for (int i = 0; i < log_n; i++)
		if (!strcmp(log_ev[i], ev))
			return i;
	ck_abort_msg("event '%s' not logged", ev);
	return -1;
}

/* How many waiters q has linked now. */
static __attribute__((unused)) int waitq_len(struct weft_waitq *q)
{
	int k = 0;

	weft__waitq_lock(q);
	for (struct weft__waiter *w = q->head; w; w = w->next)
		k++;
	weft__waitq_unlock(q);
	return k;
}

/* Waits (yielding, or sleeping on a plain thread) until q has n waiters
 * linked. */
static __attribute__((unused)) void wait_waiters(struct weft_waitq *q, int n)
{
	for (;;) {
		if (waitq_len(q) == n)
			return;
		if (weft_sleep(100 * WEFT_USEC) == -EPERM)
			usleep(100); /* a plain thread */
	}
}

/* ---- forcing the window before a waiter takes its queue's lock ---------- */

/*
 * A blocking call tries its primitive (lock-free, or under the waitq lock
 * it then drops), begins its wait, then takes the waitq lock and must try
 * again there: the other party may have run entirely in between. That
 * window is a few dozen instructions wide, so hoping the scheduler hits it
 * proves nothing. A plain thread holds q's lock there until the task has
 * begun its wait (t->waiting, under t->wait_lock), so the task is at or
 * spinning on q's lock; then it runs `other` under q's lock, as the other
 * party's call would run, and unlocks.
 *
 * A call that tries lock-free: the thread holds q's lock from before the
 * task starts. One that tries under q's lock (after_try): the thread holds
 * the task's wait_lock from before it starts, so the task stops in
 * wait_begin after its try; the thread then takes q's lock and lets the
 * task go on. Whether the task was past its try (and not stuck before it
 * on q's lock) shows in its beginning the wait while q's lock is held:
 * `hit`. after_try needs one worker, so the task cannot start before the
 * thread holds its wait_lock.
 *
 * The task bounds its wait by HANG_NS (test_util.h), which a missed
 * notification would leave it in. Not less: while the thread holds the
 * window the task spins on q's lock, and a deadline the monitor fired
 * meanwhile (the thread kept off its CPU on a loaded host) would end the
 * wait with -ETIMEDOUT once the thread let go.
 */
struct window {
	struct weft_waitq *q;
	void (*other)(void *arg); /* under q's lock, by the thread */
	void *arg;
	bool after_try;
	bool hit; /* the task began its wait while the thread held q's lock */
	pthread_t th;
	int held;                 /* the thread holds its first lock */
	struct weft_task *waiter; /* published by window_open */
};

/* Whether t began a wait; polls for up to ms. */
static __attribute__((unused)) bool window_begun(struct weft_task *t, int ms)
{
	for (int i = 0; i < ms * 10; i++) {
		weft__spin_lock(&t->wait_lock);
		bool begun = t->waiting != NULL;
		weft__spin_unlock(&t->wait_lock);
		if (begun)
			return true;
		usleep(100);
	}
	return false;
}

static __attribute__((unused)) void *window_holder(void *arg)
{
	struct window *win = arg;
	struct weft_task *t;

	if (!win->after_try) {
		weft__waitq_lock(win->q);
		__atomic_store_n(&win->held, 1, __ATOMIC_RELEASE);
	}
	while (!(t = __atomic_load_n(&win->waiter, __ATOMIC_ACQUIRE)))
		sched_yield();
	if (win->after_try) {
		weft__spin_lock(&t->wait_lock);
		__atomic_store_n(&win->held, 1, __ATOMIC_RELEASE);
		usleep(20000); /* the task tries, then stops at wait_begin */
		weft__waitq_lock(win->q);
		weft__spin_unlock(&t->wait_lock);
	}
	win->hit = window_begun(t, 2000);
	win->other(win->arg);
	weft__waitq_unlock(win->q);
	return NULL;
}

/* Spawns fn(arg) with the window held by a thread as above; the caller
 * joins *t and then window_close(). fn's first act must be the blocking
 * call. */
static __attribute__((unused)) void
window_open(struct window *win, weft_task_t *t, weft_fn fn, void *arg)
{
	win->held = 0;
	win->hit = false;
	win->waiter = NULL;
	ck_assert_int_eq(pthread_create(&win->th, NULL, window_holder, win), 0);
	if (win->after_try) {
		ck_assert_int_eq(weft_workers(), 1);
		ck_assert_int_eq(weft_spawn(t, fn, arg), 0);
		__atomic_store_n(&win->waiter, t->task, __ATOMIC_RELEASE);
		/* Not weft_yield: t must not run before the thread holds
		 * its wait_lock. */
		while (!__atomic_load_n(&win->held, __ATOMIC_ACQUIRE))
			sched_yield();
		return;
	}
	while (!__atomic_load_n(&win->held, __ATOMIC_ACQUIRE))
		weft_yield();
	ck_assert_int_eq(weft_spawn(t, fn, arg), 0);
	__atomic_store_n(&win->waiter, t->task, __ATOMIC_RELEASE);
}

/* Joins the thread; returns whether the task was in the window (after_try
 * may miss it on a loaded machine: then the round proved nothing). */
static __attribute__((unused)) bool window_close(struct window *win)
{
	ck_assert_int_eq(pthread_join(win->th, NULL), 0);
	return win->hit;
}

#endif
