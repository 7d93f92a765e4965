/* Freed as soon as seen released. A thread that sees an event set or a
 * future done, takes a lock just released or a permit just given, may
 * free the primitive at once (an event on a stack; POSIX allows it for a
 * mutex just unlocked and a semaphore just posted), so the releaser must
 * not touch the primitive after the moment another thread can see the
 * release. Each case stalls the releaser just before the unlock of its
 * last critical section (the unlock hook of runtime/debug.h: WEFT_DEBUG
 * builds only), lets this thread see the release and overwrite the
 * primitive as a reuse would, and checks that nothing the releaser did
 * afterwards reached it. */
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

/* Runs release(obj) on a thread stalled at its first unlock of lock;
 * meanwhile see(obj, how) must see the release, and obj is overwritten;
 * then checks that nothing reached it afterwards, and frees it. */
static void seen_while_releaser_stalls(void *obj, size_t size, unsigned *lock,
				       void *(*release)(void *),
				       void (*see)(void *obj, int how), int how)
{
	pthread_t th;
	arm(lock, 1);
	pthread_create(&th, NULL, release, obj);
	while (!is_stalled())
		sched_yield();
	see(obj, how);
	reuse(obj, size);
	pthread_join(th, NULL);
	disarm();
	check_untouched(obj, size);
	free(obj);
}

/* ---- an event, set with nobody waiting -------------------------------- */

static void *set_event(void *e)
{
	ck_assert_int_eq(weft_event_set(e), 0);
	return NULL;
}

/* how: 0 sees the event set through weft_event_wait, 1 weft_event_is_set. */
static void see_event(void *e, int how)
{
	if (how == 0)
		ck_assert_int_eq(weft_event_wait(e), 0);
	else
		ck_assert_int_eq(weft_event_is_set(e), 1);
}

START_TEST(event_set_then_freed)
{
	struct weft_event *e = malloc(sizeof(*e));
	ck_assert_int_eq(weft_event_init(e), 0);
	seen_while_releaser_stalls(e, sizeof(*e), &e->wq.lock, set_event,
				   see_event, _i);
}
END_TEST

/* ---- a future, completed with nobody waiting ----------------------------- */

static void *complete_future(void *f)
{
	ck_assert_int_eq(weft_future_set_result(f, f), 0);
	return NULL;
}

/* how: 0 sees the future done through weft_future_done, 1 through
 * weft_future_result, 2 through weft_future_wait. */
static void see_future(void *f, int how)
{
	void *res = NULL;
	if (how == 0)
		ck_assert_int_eq(weft_future_done(f), 1);
	else if (how == 1)
		ck_assert_int_eq(weft_future_result(f, &res), 0);
	else
		ck_assert_int_eq(weft_future_wait(f, &res), 0);
	ck_assert_ptr_eq(res, how ? f : NULL);
}

START_TEST(future_done_then_freed)
{
	struct weft_future *f = malloc(sizeof(*f));
	ck_assert_int_eq(weft_future_init(f), 0);
	seen_while_releaser_stalls(f, sizeof(*f), &f->wq.lock, complete_future,
				   see_future, _i);
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
	const struct left_kind *kind;
	void *obj;
	int ready, go, done;
};

/* What differs between the lock and the semaphore. */
struct left_kind {
	size_t size;
	/* Initialises obj and points t at its state and wait queue. */
	void (*init)(struct left *t, void *obj);
	/* The releaser's part before the release (the lock's owning). */
	void (*before)(void *obj);
	int (*release)(void *obj);
	/* This thread's try: 0 once it took what was released. */
	int (*take)(void *obj);
};

static void *release_when_told(void *arg)
{
	struct left *t = arg;
	if (t->kind->before)
		t->kind->before(t->obj);
	__atomic_store_n(&t->ready, 1, __ATOMIC_RELEASE);
	while (!__atomic_load_n(&t->go, __ATOMIC_ACQUIRE))
		sched_yield();
	ck_assert_int_eq(t->kind->release(t->obj), 0);
	__atomic_store_n(&t->done, 1, __ATOMIC_RELEASE);
	return NULL;
}

/* Plays the waiter that leaves; returns whether the releaser took the
 * slow path (else it came too late to see the bit, and the round proves
 * nothing). */
static bool waiter_leaves(struct left *t)
{
	while (!__atomic_load_n(&t->ready, __ATOMIC_ACQUIRE))
		sched_yield();
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

/* Rounds until one drives the releaser's slow path, whose release this
 * thread takes and then overwrites the primitive. */
static void last_waiter_left(const struct left_kind *kind)
{
	bool driven = false;
	for (int round = 0; round < 20 && !driven; round++) {
		void *obj = malloc(kind->size);
		struct left t = { .kind = kind, .obj = obj };
		pthread_t th;
		kind->init(&t, obj);
		pthread_create(&th, NULL, release_when_told, &t);
		if ((driven = waiter_leaves(&t))) {
			while (kind->take(obj))
				sched_yield();
			reuse(obj, kind->size);
		}
		pthread_join(th, NULL);
		disarm();
		if (driven)
			check_untouched(obj, kind->size);
		free(obj);
	}
	ck_assert_msg(driven, "the releaser never took the slow path");
}

static void lock_init(struct left *t, void *obj)
{
	struct weft_lock *l = obj;
	ck_assert_int_eq(weft_lock_init(l), 0);
	t->state = &l->state;
	t->wq = &l->wq;
}

static void lock_own(void *l)
{
	ck_assert_int_eq(weft_lock_acquire(l), 0);
}

static int lock_release(void *l)
{
	return weft_lock_release(l);
}

static int lock_take(void *l)
{
	int r = weft_lock_try_acquire(l);
	if (!r)
		ck_assert_int_eq(weft_lock_release(l), 0);
	return r;
}

START_TEST(lock_released_then_freed)
{
	static const struct left_kind lock = { sizeof(struct weft_lock),
					       lock_init, lock_own,
					       lock_release, lock_take };
	last_waiter_left(&lock);
}
END_TEST

static void sem_init(struct left *t, void *obj)
{
	struct weft_sem *s = obj;
	ck_assert_int_eq(weft_sem_init(s, 0), 0);
	t->state = &s->state;
	t->wq = &s->wq;
}

static int sem_release(void *s)
{
	return weft_sem_release(s);
}

static int sem_take(void *s)
{
	return weft_sem_try_acquire(s);
}

START_TEST(sem_released_then_freed)
{
	static const struct left_kind sem = { sizeof(struct weft_sem), sem_init,
					      NULL, sem_release, sem_take };
	last_waiter_left(&sem);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("sync_release");
	TCase *tc = tcase_create("release");
	tcase_set_timeout(tc, 60);
	tcase_add_loop_test(tc, event_set_then_freed, 0, 2);
	tcase_add_loop_test(tc, future_done_then_freed, 0, 3);
	tcase_add_test(tc, lock_released_then_freed);
	tcase_add_test(tc, sem_released_then_freed);
	suite_add_tcase(s, tc);
	return weft_test_main(s);
}
