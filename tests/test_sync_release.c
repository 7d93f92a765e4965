/* Freed as soon as seen released. A thread that sees an event set, takes
 * a lock just released or a permit just given may free the primitive at
 * once (an event on a stack; POSIX allows it for a mutex just unlocked and
 * a semaphore just posted), so the releaser must not touch the primitive
 * after the moment another thread can see the release. Each case stalls
 * the releaser just before the unlock of its last critical section (the
 * unlock hook of runtime/debug.h: WEFT_DEBUG builds only), lets this
 * thread see the release and overwrite the primitive as a reuse would,
 * and checks that nothing the releaser did afterwards reached it. */
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>
#include "test_util.h"
#include "runtime/debug.h"
#include "sync/waitq.h"

#define STALL_US 50000
#define REUSED 0xa5

/* The releaser's stall: at the stall_at-th unlock of target. */
static unsigned *target;
static int stall_at, unlocks, stalled;

static void stall_hook(unsigned *l)
{
	if (l != target)
		return;
	/* Counted under target itself, so plainly. */
	if (++unlocks != stall_at)
		return;
	/* release: the releaser's work so far, for the test's look. */
	__atomic_store_n(&stalled, 1, __ATOMIC_RELEASE);
	usleep(STALL_US);
}

static void arm(unsigned *l, int at)
{
	target = l;
	stall_at = at;
	unlocks = 0;
	stalled = 0;
	/* release: publishes target and stall_at to the hook's acquire. */
	__atomic_store_n(&weft__debug_unlock_hook, stall_hook,
			 __ATOMIC_RELEASE);
}

static void disarm(void)
{
	__atomic_store_n(&weft__debug_unlock_hook, NULL, __ATOMIC_RELEASE);
}

static bool is_stalled(void)
{
	return __atomic_load_n(&stalled, __ATOMIC_ACQUIRE);
}

static void reuse(void *p, size_t n)
{
	memset(p, REUSED, n);
}

static void check_untouched(const void *p, size_t n)
{
	const unsigned char *b = p;
	for (size_t i = 0; i < n; i++)
		ck_assert_msg(b[i] == REUSED,
			      "byte %zu written after the release was seen", i);
}

/* ---- an event, set with nobody waiting -------------------------------- */

static void *set_event(void *e)
{
	ck_assert_int_eq(weft_event_set(e), 0);
	return NULL;
}

/* _i: 0 sees the event set through weft_event_wait, 1 weft_event_is_set. */
START_TEST(event_set_then_freed)
{
	struct weft_event *e = malloc(sizeof(*e));
	pthread_t th;
	ck_assert_int_eq(weft_event_init(e), 0);
	arm(&e->wq.lock, 1);
	pthread_create(&th, NULL, set_event, e);
	while (!is_stalled())
		sched_yield();
	if (_i == 0)
		ck_assert_int_eq(weft_event_wait(e), 0);
	else
		ck_assert_int_eq(weft_event_is_set(e), 1);
	reuse(e, sizeof(*e));
	pthread_join(th, NULL);
	disarm();
	check_untouched(e, sizeof(*e));
	free(e);
}
END_TEST

/* ---- a lock and a semaphore whose last waiter left --------------------- */

/*
 * The releaser sees the WAITERS bit and takes the slow path, whose waiter
 * has left by the time it gets the wait queue's lock. The test plays that
 * waiter: it holds the queue's lock with the bit set, lets the releaser
 * in, and leaves as the last aborted waiter does (clears the bit, unlocks:
 * the first unlock). The releaser's own unlock is the second.
 */
struct left {
	uintptr_t *state; /* the primitive's state word, bit 0 WAITERS */
	struct weft_waitq *wq;
	int (*release)(void *obj);
	void *obj;
	int go, done;
};

static void *release_when_told(void *arg)
{
	struct left *t = arg;
	while (!__atomic_load_n(&t->go, __ATOMIC_ACQUIRE))
		sched_yield();
	ck_assert_int_eq(t->release(t->obj), 0);
	__atomic_store_n(&t->done, 1, __ATOMIC_RELEASE);
	return NULL;
}

/* Runs one round; returns whether the releaser took the slow path (else
 * it came too late to see the bit, and the round proves nothing). */
static bool waiter_leaves(struct left *t)
{
	arm(&t->wq->lock, 2);
	weft__waitq_lock(t->wq);
	__atomic_fetch_or(t->state, 1, __ATOMIC_RELAXED);
	__atomic_store_n(&t->go, 1, __ATOMIC_RELEASE);
	usleep(20000); /* the releaser sees the bit and spins on the lock */
	__atomic_fetch_and(t->state, ~(uintptr_t)1, __ATOMIC_RELAXED);
	weft__waitq_unlock(t->wq);
	while (!is_stalled())
		if (__atomic_load_n(&t->done, __ATOMIC_ACQUIRE))
			return false;
	return true;
}

static int release_lock(void *l)
{
	return weft_lock_release(l);
}

static void *own_then_release(void *arg)
{
	struct left *t = arg;
	ck_assert_int_eq(weft_lock_acquire(t->obj), 0);
	return release_when_told(arg);
}

START_TEST(lock_released_then_freed)
{
	bool driven = false;
	for (int round = 0; round < 20 && !driven; round++) {
		struct weft_lock *l = malloc(sizeof(*l));
		ck_assert_int_eq(weft_lock_init(l), 0);
		struct left t = { &l->state, &l->wq, release_lock, l, 0, 0 };
		pthread_t th;
		pthread_create(&th, NULL, own_then_release, &t);
		while (!__atomic_load_n(&l->state, __ATOMIC_ACQUIRE))
			sched_yield();
		if ((driven = waiter_leaves(&t))) {
			while (weft_lock_try_acquire(l))
				sched_yield();
			ck_assert_int_eq(weft_lock_release(l), 0);
			reuse(l, sizeof(*l));
		}
		pthread_join(th, NULL);
		disarm();
		if (driven)
			check_untouched(l, sizeof(*l));
		free(l);
	}
	ck_assert_msg(driven, "the releaser never took the slow path");
}
END_TEST

static int release_sem(void *s)
{
	return weft_sem_release(s);
}

START_TEST(sem_released_then_freed)
{
	bool driven = false;
	for (int round = 0; round < 20 && !driven; round++) {
		struct weft_sem *s = malloc(sizeof(*s));
		ck_assert_int_eq(weft_sem_init(s, 0), 0);
		struct left t = { &s->state, &s->wq, release_sem, s, 0, 0 };
		pthread_t th;
		pthread_create(&th, NULL, release_when_told, &t);
		if ((driven = waiter_leaves(&t))) {
			while (weft_sem_try_acquire(s))
				sched_yield();
			reuse(s, sizeof(*s));
		}
		pthread_join(th, NULL);
		disarm();
		if (driven)
			check_untouched(s, sizeof(*s));
		free(s);
	}
	ck_assert_msg(driven, "the releaser never took the slow path");
}
END_TEST

int main(void)
{
	Suite *s = suite_create("sync_release");
	TCase *tc = tcase_create("release");
	tcase_set_timeout(tc, 60);
	tcase_add_loop_test(tc, event_set_then_freed, 0, 2);
	tcase_add_test(tc, lock_released_then_freed);
	tcase_add_test(tc, sem_released_then_freed);
	suite_add_tcase(s, tc);
	return weft_test_main(s);
}
