/* weft_sem: the seed's scenario, FIFO permits, bounded over-release,
 * cancellation and timeouts consume no permit, bad input. */
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <unistd.h>
#include "sync_test_util.h"
#include "sync/waitq.h"

/* ---- the seed: Semaphore(2) lets both workers in at once ---------------- */

static struct weft_sem seed_sem;
static long seed_permits;
static atomic_int seed_entered;

static void *seed_worker(void *arg)
{
	const char **ev = arg;
	ck_assert_int_eq(weft_sem_acquire(&seed_sem), 0);
	log_add(ev[0]);
	atomic_fetch_add(&seed_entered, 1);
	weft_sleep(20 * WEFT_MSEC);
	/* With a permit each, hold ours until the other worker is in too:
	 * on a loaded machine (a sanitizer build beside other tests) it may
	 * start more than 20 ms late, and its start would then follow our
	 * end. A semaphore that let only one in fails the order after 10 s.
	 * Counted as they enter, not while inside: the second in, once the
	 * first had left, waited those 10 s every time. */
	for (int i = 0; atomic_load(&seed_entered) < seed_permits && i < 10000;
	     i++)
		weft_sleep(WEFT_MSEC);
	log_add(ev[1]);
	ck_assert_int_eq(weft_sem_release(&seed_sem), 0);
	return NULL;
}

static void run_seed(long permits)
{
	static const char *w1[] = { "w1 start", "w1 end" };
	static const char *w2[] = { "w2 start", "w2 end" };
	weft_task_t a, b;
	log_reset();
	atomic_store(&seed_entered, 0);
	seed_permits = permits;
	ck_assert_int_eq(weft_sem_init(&seed_sem, permits), 0);
	ck_assert_int_eq(weft_spawn(&a, seed_worker, w1), 0);
	ck_assert_int_eq(weft_spawn(&b, seed_worker, w2), 0);
	ck_assert_int_eq(weft_join(a, NULL), 0);
	ck_assert_int_eq(weft_join(b, NULL), 0);
	ck_assert_int_eq(log_n, 4);
	ck_assert_int_eq(weft_sem_value(&seed_sem), permits);
}

static void *seed_main(void *arg)
{
	/* worker2 start, worker1 start, worker2 end, worker1 end */
	run_seed(2);
	ck_assert_int_eq(strstr(log_ev[0], "start") != NULL, 1);
	ck_assert_int_eq(strstr(log_ev[1], "start") != NULL, 1);
	/* With one permit they take turns. */
	run_seed(1);
	ck_assert_int_eq(log_ev[0][1], log_ev[1][1]);
	ck_assert_int_eq(log_ev[2][1], log_ev[3][1]);
	return NULL;
}

START_TEST(seed)
{
	weft_test_run(seed_main, NULL, 2);
	weft_test_run(seed_main, NULL, 1);
}
END_TEST

/* ---- FIFO, cancellation, timeouts --------------------------------------- */

struct fctx {
	struct weft_sem sem;
	int order[8];
	int n;
	pthread_mutex_t mu;
};

struct farg {
	struct fctx *c;
	int id;
	bool timed;
};

static void *fifo_waiter(void *arg)
{
	struct farg *a = arg;
	struct weft_deadline d;
	if (a->timed)
		ck_assert_int_eq(weft_deadline_enter(&d, TIMED_WAITER_NS), 0);
	long r = weft_sem_acquire(&a->c->sem);
	if (a->timed)
		weft_deadline_leave(&d);
	if (r == 0) {
		pthread_mutex_lock(&a->c->mu);
		a->c->order[a->c->n++] = a->id;
		pthread_mutex_unlock(&a->c->mu);
	}
	return (void *)r;
}

static void *fifo_main(void *arg)
{
	struct fctx c = { .mu = PTHREAD_MUTEX_INITIALIZER };
	struct farg a[6];
	weft_task_t t[6];
	void *res;
	ck_assert_int_eq(weft_sem_init(&c.sem, 0), 0);
	for (int i = 0; i < 6; i++) {
		a[i] = (struct farg){ &c, i, i == 3 };
		ck_assert_int_eq(weft_spawn(&t[i], fifo_waiter, &a[i]), 0);
		wait_waiters(&c.sem.wq, i + 1);
	}
	ck_assert_int_eq(weft_sem_try_acquire(&c.sem), -EAGAIN);
	ck_assert_int_eq(weft_cancel(t[1]), 0);
	ck_assert_int_eq(weft_join(t[1], &res), 0);
	ck_assert_int_eq((long)res, -ECANCELED);
	ck_assert_int_eq(weft_join(t[3], &res), 0);
	ck_assert_int_eq((long)res, -ETIMEDOUT);
	/* No permit was taken by them; four waiters are left. */
	ck_assert_int_eq(weft_sem_value(&c.sem), 0);
	/* Each release goes to the oldest waiter left. */
	int want[] = { 0, 2, 4, 5 };
	for (int i = 0; i < 4; i++) {
		ck_assert_int_eq(weft_sem_release(&c.sem), 0);
		ck_assert_int_eq(weft_join(t[want[i]], &res), 0);
		ck_assert_int_eq((long)res, 0);
	}
	for (int i = 0; i < 4; i++)
		ck_assert_int_eq(c.order[i], want[i]);
	ck_assert_int_eq(weft_sem_value(&c.sem), 0);
	ck_assert_uint_eq(c.sem.state, 0); /* no waiters bit left */
	ck_assert_int_eq(weft_sem_release(&c.sem), 0);
	ck_assert_int_eq(weft_sem_value(&c.sem), 1);
	return NULL;
}

START_TEST(fifo)
{
	weft_test_run(fifo_main, NULL, 2);
}
END_TEST

/* ---- bounded, errors ---------------------------------------------------- */

static void *errors_main(void *arg)
{
	struct weft_sem s;
	ck_assert_int_eq(weft_sem_init_bounded(&s, 2), 0);
	ck_assert_int_eq(weft_sem_release(&s), -EOVERFLOW);
	ck_assert_int_eq(weft_sem_acquire(&s), 0);
	ck_assert_int_eq(weft_sem_acquire(&s), 0);
	ck_assert_int_eq(weft_sem_try_acquire(&s), -EAGAIN);
	ck_assert_int_eq(weft_sem_value(&s), 0);
	ck_assert_int_eq(weft_sem_release(&s), 0);
	ck_assert_int_eq(weft_sem_release(&s), 0);
	ck_assert_int_eq(weft_sem_release(&s), -EOVERFLOW);
	ck_assert_int_eq(weft_sem_value(&s), 2);

	struct weft_sem z = WEFT_BOUNDED_SEM_INIT(0);
	ck_assert_int_eq(weft_sem_release(&z), -EOVERFLOW);
	struct weft_sem u = WEFT_SEM_INIT(0);
	ck_assert_int_eq(weft_sem_release(&u), 0);
	ck_assert_int_eq(weft_sem_release(&u), 0);
	ck_assert_int_eq(weft_sem_value(&u), 2);

	ck_assert_int_eq(weft_sem_init(&s, -1), -EINVAL);
	ck_assert_int_eq(weft_sem_init(&s, WEFT_SEM_MAX + 1), -EINVAL);
	ck_assert_int_eq(weft_sem_init(NULL, 1), -EINVAL);
	ck_assert_int_eq(weft_sem_init_bounded(NULL, 1), -EINVAL);
	ck_assert_int_eq(weft_sem_acquire(NULL), -EINVAL);
	ck_assert_int_eq(weft_sem_try_acquire(NULL), -EINVAL);
	ck_assert_int_eq(weft_sem_release(NULL), -EINVAL);
	ck_assert_int_eq(weft_sem_value(NULL), -EINVAL);
	ck_assert_int_eq(weft_sem_init(&s, WEFT_SEM_MAX), 0);
	ck_assert_int_eq(weft_sem_release(&s), -EOVERFLOW);

	/* Cancelled: no permit taken even when one would wait. */
	ck_assert_int_eq(weft_sem_init(&s, 0), 0);
	ck_assert_int_eq(weft_cancel(weft_current()), 0);
	ck_assert_int_eq(weft_sem_acquire(&s), -ECANCELED);
	ck_assert_int_eq(weft_sem_release(&s), 0);
	ck_assert_int_eq(weft_sem_value(&s), 1);
	return NULL;
}

/* A bounded semaphore stays within its bound when a waiter leaves (here,
 * is cancelled) while two releases race: one release finds the waiter
 * gone and keeps its permit, the other may take the fast path meanwhile.
 * Each round: the one permit is held, a task waits, it is cancelled while
 * two plain threads release (one release too many unless the waiter got a
 * permit first). Permits are conserved and never exceed 1. */
#define BOUND_ROUNDS SCALED(3000)

struct bound_case {
	struct weft_sem s;
	atomic_int go;
	atomic_int ok; /* releases that returned 0 */
};

static void *bound_releaser(void *arg)
{
	struct bound_case *c = arg;

	while (!atomic_load(&c->go))
		;
	if (weft_sem_release(&c->s) == 0)
		atomic_fetch_add(&c->ok, 1);
	return NULL;
}

static void *bound_waiter(void *arg)
{
	return (void *)(intptr_t)weft_sem_acquire(arg);
}

static void *bound_main(void *arg)
{
	struct bound_case *c = arg;

	for (long i = 0; i < BOUND_ROUNDS; i++) {
		pthread_t th[2];
		weft_task_t w;
		void *res;

		ck_assert_int_eq(weft_sem_init_bounded(&c->s, 1), 0);
		ck_assert_int_eq(weft_sem_acquire(&c->s), 0);
		atomic_store(&c->go, 0);
		atomic_store(&c->ok, 0);
		ck_assert_int_eq(weft_spawn(&w, bound_waiter, &c->s), 0);
		wait_waiters(&c->s.wq, 1); /* it waits: the race is with it */
		for (int k = 0; k < 2; k++)
			ck_assert_int_eq(pthread_create(&th[k], NULL,
							bound_releaser, c),
					 0);
		atomic_store(&c->go, 1);
		weft_cancel(w);
		for (int k = 0; k < 2; k++)
			pthread_join(th[k], NULL);
		ck_assert_int_eq(weft_join(w, &res), 0);
		long held = (intptr_t)res == 0; /* the waiter took one */
		long value = weft_sem_value(&c->s);
		ck_assert_int_le(value, 1);
		ck_assert_int_eq(value, atomic_load(&c->ok) - held);
	}
	return NULL;
}

START_TEST(bound_kept_when_waiter_leaves)
{
	static struct bound_case c;

	weft_test_run(bound_main, &c, 2);
}
END_TEST

START_TEST(errors)
{
	weft_test_run(errors_main, NULL, 2);
}
END_TEST

/* ---- a release between the acquirer's try and its lock ----------------- */

/* The acquirer found no permit lock-free; a release, on the fast path as
 * nobody waits yet, runs before the acquirer takes wq's lock (window_open).
 * The acquirer must take that permit there, not wait beside it. Its
 * deadline bounds the wait that would follow. */
static void release_in_window(void *arg)
{
	ck_assert_int_eq(weft_sem_release(arg), 0);
}

static void *window_acquirer(void *arg)
{
	struct weft_deadline d;

	ck_assert_int_eq(weft_deadline_enter(&d, HANG_NS), 0);
	long r = weft_sem_acquire(arg);
	weft_deadline_leave(&d);
	return (void *)r;
}

static void *window_main(void *arg)
{
	struct weft_sem s;
	struct window win = { .q = &s.wq,
			      .other = release_in_window,
			      .arg = &s };
	weft_task_t t;
	void *res;

	ck_assert_int_eq(weft_sem_init(&s, 0), 0);
	window_open(&win, &t, window_acquirer, &s);
	ck_assert_int_eq(weft_join(t, &res), 0);
	ck_assert(window_close(&win));
	ck_assert_int_eq((long)res, 0);
	ck_assert_int_eq(weft_sem_value(&s), 0);
	ck_assert_ptr_null(s.wq.head);
	return NULL;
}

START_TEST(release_before_wait)
{
	weft_test_run(window_main, NULL, 1);
	weft_test_run(window_main, NULL, 2);
}
END_TEST

/* ---- a static initialiser out of range ---------------------------------- */

/* WEFT_SEM_INIT cannot check its count, as weft_sem_init does: a negative
 * one (asyncio.Semaphore(-1) is a ValueError) or one past WEFT_SEM_MAX
 * leaves the top bit of state set, and the calls must then say -EINVAL.
 * They handed out permits without end before (-1 read as 2^63 - 1 of
 * them), and release said -EOVERFLOW, value LONG_MAX. Releases, however
 * many, must not make such a semaphore usable either. The blocking
 * acquire comes last: on a semaphore taken for a valid empty one it
 * would wait for good, where the checks before it fail. */
static void check_out_of_range(struct weft_sem *s)
{
	ck_assert_int_eq(weft_sem_value(s), -EINVAL);
	ck_assert_int_eq(weft_sem_try_acquire(s), -EINVAL);
	for (int i = 0; i < 3; i++)
		ck_assert_int_eq(weft_sem_release(s), -EINVAL);
	ck_assert_int_eq(weft_sem_value(s), -EINVAL);
	ck_assert_int_eq(weft_sem_try_acquire(s), -EINVAL);
	ck_assert_int_eq(weft_sem_acquire(s), -EINVAL);
}

START_TEST(static_init_out_of_range)
{
	struct weft_sem neg = WEFT_SEM_INIT(-1);
	struct weft_sem neg2 = WEFT_SEM_INIT(-1000);
	struct weft_sem big = WEFT_SEM_INIT(WEFT_SEM_MAX + 1);
	struct weft_sem bneg = WEFT_BOUNDED_SEM_INIT(-1);
	struct weft_sem bbig = WEFT_BOUNDED_SEM_INIT(WEFT_SEM_MAX + 1);
	check_out_of_range(&neg);
	check_out_of_range(&neg2);
	check_out_of_range(&big);
	check_out_of_range(&bneg);
	check_out_of_range(&bbig);
	/* Counts whose shift drops the top bit: LONG_MIN << 1 is 0 (read as
	 * a valid empty semaphore), and -WEFT_SEM_MAX - 2 shifted read as
	 * WEFT_SEM_MAX permits. And bounded ones whose bound, n + 1, bounded
	 * nothing: releases added permits until state wrapped to a valid 0. */
	struct weft_sem min = WEFT_SEM_INIT(LONG_MIN);
	struct weft_sem wrap = WEFT_SEM_INIT(-WEFT_SEM_MAX - 2);
	struct weft_sem bneg2 = WEFT_BOUNDED_SEM_INIT(-2);
	struct weft_sem bmin = WEFT_BOUNDED_SEM_INIT(LONG_MIN);
	check_out_of_range(&min);
	check_out_of_range(&wrap);
	check_out_of_range(&bneg2);
	check_out_of_range(&bmin);

	/* The extremes in range work. */
	struct weft_sem max = WEFT_SEM_INIT(WEFT_SEM_MAX);
	ck_assert_int_eq(weft_sem_value(&max), WEFT_SEM_MAX);
	ck_assert_int_eq(weft_sem_release(&max), -EOVERFLOW);
	ck_assert_int_eq(weft_sem_try_acquire(&max), 0);
	ck_assert_int_eq(weft_sem_release(&max), 0);
	struct weft_sem bmax = WEFT_BOUNDED_SEM_INIT(WEFT_SEM_MAX);
	ck_assert_int_eq(weft_sem_try_acquire(&bmax), 0);
	ck_assert_int_eq(weft_sem_release(&bmax), 0);
	ck_assert_int_eq(weft_sem_release(&bmax), -EOVERFLOW);
	struct weft_sem zero = WEFT_SEM_INIT(0);
	ck_assert_int_eq(weft_sem_try_acquire(&zero), -EAGAIN);
	ck_assert_int_eq(weft_sem_release(&zero), 0);
	ck_assert_int_eq(weft_sem_value(&zero), 1);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("sync_sem");
	TCase *tc = tcase_create("sem");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, seed);
	tcase_add_test(tc, fifo);
	tcase_add_test(tc, errors);
	tcase_add_test(tc, bound_kept_when_waiter_leaves);
	tcase_add_test(tc, release_before_wait);
	tcase_add_test(tc, static_init_out_of_range);
	suite_add_tcase(s, tc);
	return weft_test_main(s);
}
