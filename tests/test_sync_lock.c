/* weft_lock: the seed's scenario, FIFO hand-over and the yield after it,
 * ownership errors, cancellation and timeouts of waiters, plain threads,
 * bad input. */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <unistd.h>
#include "sync_test_util.h"
#include "sync/waitq.h"

/* ---- the seed: two workers share a lock --------------------------------- */

static struct weft_lock seed_lock = WEFT_LOCK_INIT;
static atomic_int seed_started;

static void *seed_worker(void *arg)
{
	const char **ev = arg; /* start, got, end */
	log_add(ev[0]);
	atomic_fetch_add(&seed_started, 1);
	ck_assert_int_eq(weft_lock_acquire(&seed_lock), 0);
	log_add(ev[1]);
	weft_sleep(30 * WEFT_MSEC);
	/* Both start at once in the seed: on a loaded machine (a sanitizer
	 * build beside other tests) the other may start more than 30 ms
	 * late, so the holder waits for its start. */
	for (int i = 0; atomic_load(&seed_started) < 2 && i < 10000; i++)
		weft_sleep(WEFT_MSEC);
	log_add(ev[2]);
	ck_assert_int_eq(weft_lock_release(&seed_lock), 0);
	return NULL;
}

static void *seed_main(void *arg)
{
	static const char *w1[] = { "w1 start", "w1 got", "w1 end" };
	static const char *w2[] = { "w2 start", "w2 got", "w2 end" };
	weft_task_t a, b;
	log_reset();
	atomic_store(&seed_started, 0);
	ck_assert_int_eq(weft_spawn(&a, seed_worker, w1), 0);
	ck_assert_int_eq(weft_spawn(&b, seed_worker, w2), 0);
	ck_assert_int_eq(weft_join(a, NULL), 0);
	ck_assert_int_eq(weft_join(b, NULL), 0);
	ck_assert_int_eq(log_n, 6);
	const char *first = log_pos("w1 got") < log_pos("w2 got") ? "w1" : "w2";
	const char *second = first[1] == '1' ? "w2" : "w1";
	char fg[16], fe[16], sg[16], se[16], ss[16];
	snprintf(fg, sizeof(fg), "%s got", first);
	snprintf(fe, sizeof(fe), "%s end", first);
	snprintf(sg, sizeof(sg), "%s got", second);
	snprintf(se, sizeof(se), "%s end", second);
	snprintf(ss, sizeof(ss), "%s start", second);
	/* Both start at once; the second gets the lock only after the first
	 * ended: worker2 start, worker2 got lock, worker1 start, worker2 end,
	 * worker1 got lock, worker1 end. */
	ck_assert_int_lt(log_pos(ss), log_pos(fe));
	ck_assert_int_lt(log_pos(fg), log_pos(fe));
	ck_assert_int_lt(log_pos(fe), log_pos(sg));
	ck_assert_int_lt(log_pos(sg), log_pos(se));
	ck_assert_int_eq(weft_lock_locked(&seed_lock), 0);
	return NULL;
}

START_TEST(seed)
{
	weft_test_run(seed_main, NULL, 2);
	weft_test_run(seed_main, NULL, 1);
}
END_TEST

/* ---- FIFO: waiters get the lock in the order they asked ----------------- */

#define FIFO_N 8

struct fifo_ctx {
	struct weft_lock lock;
	int order[FIFO_N];
	int n;
};

struct fifo_arg {
	struct fifo_ctx *c;
	int id;
};

static void *fifo_waiter(void *arg)
{
	struct fifo_arg *a = arg;
	ck_assert_int_eq(weft_lock_acquire(&a->c->lock), 0);
	a->c->order[a->c->n++] = a->id;
	ck_assert_int_eq(weft_lock_release(&a->c->lock), 0);
	return NULL;
}

static void *fifo_main(void *arg)
{
	struct fifo_ctx c = { .lock = WEFT_LOCK_INIT };
	struct fifo_arg args[FIFO_N];
	weft_task_t t[FIFO_N];
	ck_assert_int_eq(weft_lock_acquire(&c.lock), 0);
	for (int i = 0; i < FIFO_N; i++) {
		args[i] = (struct fifo_arg){ &c, i };
		ck_assert_int_eq(weft_spawn(&t[i], fifo_waiter, &args[i]), 0);
		wait_waiters(&c.lock.wq, i + 1);
	}
	/* A newcomer cannot barge past the queue: the lock is handed over,
	 * never free while anyone waits. */
	ck_assert_int_eq(weft_lock_release(&c.lock), 0);
	int r = weft_lock_try_acquire(&c.lock);
	if (r == 0) {
		ck_assert_int_eq(c.n, FIFO_N); /* all done already */
		ck_assert_int_eq(weft_lock_release(&c.lock), 0);
	} else {
		ck_assert_int_eq(r, -EBUSY);
	}
	for (int i = 0; i < FIFO_N; i++)
		ck_assert_int_eq(weft_join(t[i], NULL), 0);
	for (int i = 0; i < FIFO_N; i++)
		ck_assert_int_eq(c.order[i], i);
	ck_assert_int_eq(weft_lock_locked(&c.lock), 0);
	return NULL;
}

START_TEST(fifo)
{
	weft_test_run(fifo_main, NULL, 2);
	weft_test_run(fifo_main, NULL, 4);
}
END_TEST

/* ---- a hand-over yields to the new owner -------------------------------- */

static struct weft_lock yield_lock = WEFT_LOCK_INIT;

static void *yield_waiter(void *arg)
{
	ck_assert_int_eq(weft_lock_acquire(&yield_lock), 0);
	log_add("waiter got it");
	ck_assert_int_eq(weft_lock_release(&yield_lock), 0);
	return NULL;
}

/* One worker, so the order is exact: the releaser runs on only after the
 * task it handed the lock to; a cancelled releaser does not yield. */
static void *handover_main(void *arg)
{
	bool cancelled = arg != NULL;
	weft_task_t t;
	log_reset();
	ck_assert_int_eq(weft_lock_acquire(&yield_lock), 0);
	ck_assert_int_eq(weft_spawn(&t, yield_waiter, NULL), 0);
	wait_waiters(&yield_lock.wq, 1);
	if (cancelled)
		ck_assert_int_eq(weft_cancel(weft_current()), 0);
	ck_assert_int_eq(weft_lock_release(&yield_lock), 0);
	log_add("releaser went on");
	if (cancelled) {
		ck_assert_int_lt(log_pos("releaser went on"), 1);
		struct weft_shield sh;
		ck_assert_int_eq(weft_shield_enter(&sh), 0);
		ck_assert_int_eq(weft_join(t, NULL), 0);
		ck_assert_int_eq(weft_shield_leave(&sh), 0);
	} else {
		ck_assert_int_lt(log_pos("waiter got it"),
				 log_pos("releaser went on"));
		ck_assert_int_eq(weft_join(t, NULL), 0);
	}
	ck_assert_int_eq(weft_lock_locked(&yield_lock), 0);
	return NULL;
}

START_TEST(handover_yields)
{
	weft_test_run(handover_main, NULL, 1);
	weft_test_run(handover_main, (void *)1, 1);
}
END_TEST

/* ---- ownership and bad input -------------------------------------------- */

static struct weft_lock own_lock = WEFT_LOCK_INIT;

static void *try_release(void *arg)
{
	return (void *)(long)weft_lock_release(&own_lock);
}

static void *errors_main(void *arg)
{
	struct weft_lock l;
	ck_assert_int_eq(weft_lock_init(&l), 0);
	ck_assert_int_eq(weft_lock_release(&l), -EPERM);
	ck_assert_int_eq(weft_lock_locked(&l), 0);
	ck_assert_int_eq(weft_lock_try_acquire(&l), 0);
	ck_assert_int_eq(weft_lock_locked(&l), 1);
	ck_assert_int_eq(weft_lock_try_acquire(&l), -EBUSY);
	ck_assert_int_eq(weft_lock_acquire(&l), -EDEADLK);
	ck_assert_int_eq(weft_lock_release(&l), 0);
	ck_assert_int_eq(weft_lock_release(&l), -EPERM);

	/* Another task cannot release our lock. */
	ck_assert_int_eq(weft_lock_acquire(&own_lock), 0);
	weft_task_t t;
	void *res;
	ck_assert_int_eq(weft_spawn(&t, try_release, NULL), 0);
	ck_assert_int_eq(weft_join(t, &res), 0);
	ck_assert_int_eq((long)res, -EPERM);
	ck_assert_int_eq(weft_lock_locked(&own_lock), 1);
	ck_assert_int_eq(weft_lock_release(&own_lock), 0);

	ck_assert_int_eq(weft_lock_init(NULL), -EINVAL);
	ck_assert_int_eq(weft_lock_acquire(NULL), -EINVAL);
	ck_assert_int_eq(weft_lock_try_acquire(NULL), -EINVAL);
	ck_assert_int_eq(weft_lock_release(NULL), -EINVAL);
	ck_assert_int_eq(weft_lock_locked(NULL), -EINVAL);
	return NULL;
}

START_TEST(errors)
{
	weft_test_run(errors_main, NULL, 2);
	/* A plain thread owns it too. */
	struct weft_lock l = WEFT_LOCK_INIT;
	ck_assert_int_eq(weft_lock_acquire(&l), 0);
	ck_assert_int_eq(weft_lock_release(&l), 0);
	ck_assert_int_eq(weft_lock_release(&l), -EPERM);
}
END_TEST

/* ---- cancellation and timeouts take nothing ----------------------------- */

static struct weft_lock cl = WEFT_LOCK_INIT;

static void *cancel_waiter(void *arg)
{
	return (void *)(long)weft_lock_acquire(&cl);
}

static void *timeout_waiter(void *arg)
{
	struct weft_deadline d;
	ck_assert_int_eq(weft_deadline_enter(&d, TIMED_WAITER_NS), 0);
	long r = weft_lock_acquire(&cl);
	weft_deadline_leave(&d);
	return (void *)r;
}

static void *cancel_main(void *arg)
{
	weft_task_t a, b, c;
	void *res;
	ck_assert_int_eq(weft_lock_acquire(&cl), 0);
	ck_assert_int_eq(weft_spawn(&a, cancel_waiter, NULL), 0);
	wait_waiters(&cl.wq, 1);
	ck_assert_int_eq(weft_spawn(&b, timeout_waiter, NULL), 0);
	ck_assert_int_eq(weft_spawn(&c, cancel_waiter, NULL), 0);
	wait_waiters(&cl.wq, 3);
	ck_assert_int_eq(weft_cancel(a), 0);
	ck_assert_int_eq(weft_join(a, &res), 0);
	ck_assert_int_eq((long)res, -ECANCELED);
	ck_assert_int_eq(weft_join(b, &res), 0);
	ck_assert_int_eq((long)res, -ETIMEDOUT);
	wait_waiters(&cl.wq, 1);
	/* c is next, and the only one. */
	ck_assert_int_eq(weft_lock_release(&cl), 0);
	ck_assert_int_eq(weft_join(c, &res), 0);
	ck_assert_int_eq((long)res, 0);
	/* c ended holding it: released by nobody, owned by a dead task. */
	ck_assert_int_eq(weft_lock_locked(&cl), 1);
	ck_assert_int_eq(weft_lock_release(&cl), -EPERM);
	weft_lock_init(&cl);

	/* The last waiter leaving makes the fast release work again. */
	ck_assert_int_eq(weft_lock_acquire(&cl), 0);
	ck_assert_int_eq(weft_spawn(&a, cancel_waiter, NULL), 0);
	wait_waiters(&cl.wq, 1);
	ck_assert_int_eq(weft_cancel(a), 0);
	ck_assert_int_eq(weft_join(a, &res), 0);
	ck_assert_int_eq((long)res, -ECANCELED);
	ck_assert_uint_eq(cl.state & 1, 0);
	ck_assert_int_eq(weft_lock_release(&cl), 0);
	ck_assert_int_eq(weft_lock_locked(&cl), 0);
	return NULL;
}

START_TEST(cancel_timeout)
{
	weft_test_run(cancel_main, NULL, 2);
}
END_TEST

/* ---- plain threads and tasks contend ------------------------------------ */

static struct weft_lock mix_lock = WEFT_LOCK_INIT;
static long mix_counter;
static int mix_inside;

static void mix_inc(void)
{
	ck_assert_int_eq(weft_lock_acquire(&mix_lock), 0);
	ck_assert_int_eq(__atomic_add_fetch(&mix_inside, 1, __ATOMIC_RELAXED),
			 1);
	mix_counter++;
	__atomic_sub_fetch(&mix_inside, 1, __ATOMIC_RELAXED);
	ck_assert_int_eq(weft_lock_release(&mix_lock), 0);
}

static long mix_iters;

static void *mix_thread(void *arg)
{
	for (long i = 0; i < mix_iters; i++)
		mix_inc();
	return NULL;
}

static void *mix_task(void *arg)
{
	for (long i = 0; i < mix_iters; i++) {
		mix_inc();
		if (i % 64 == 0)
			weft_yield();
	}
	return NULL;
}

static void *mix_main(void *arg)
{
	pthread_t th[2];
	weft_task_t t[8];
	for (int i = 0; i < 2; i++)
		pthread_create(&th[i], NULL, mix_thread, NULL);
	for (int i = 0; i < 8; i++)
		ck_assert_int_eq(weft_spawn(&t[i], mix_task, NULL), 0);
	for (int i = 0; i < 8; i++)
		ck_assert_int_eq(weft_join(t[i], NULL), 0);
	for (int i = 0; i < 2; i++)
		pthread_join(th[i], NULL);
	ck_assert_int_eq(mix_counter, 10 * mix_iters);
	return NULL;
}

START_TEST(plain_threads)
{
	mix_iters = SCALED(20000);
	mix_counter = 0;
	weft_test_run(mix_main, NULL, 2);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("sync_lock");
	TCase *tc = tcase_create("lock");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, seed);
	tcase_add_test(tc, fifo);
	tcase_add_test(tc, handover_yields);
	tcase_add_test(tc, errors);
	tcase_add_test(tc, cancel_timeout);
	tcase_add_test(tc, plain_threads);
	suite_add_tcase(s, tc);
	return weft_test_main(s);
}
