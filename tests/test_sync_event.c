/* weft_event: the seed's scenario, set/clear/wait semantics, foreign
 * threads setting and waiting, cancellation and timeouts, bad input. */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <unistd.h>
#include "sync_test_util.h"
#include "sync/waitq.h"

/* ---- the seed: two workers wait for a third's event --------------------- */

static struct weft_event seed_ev = WEFT_EVENT_INIT;
static atomic_int seed_got;

/* A loaded machine (a sanitizer build beside other tests) may start a
 * task, or run a woken one, more than the seed's sleeps late: the waits
 * below make the seed's order hold whatever the delays, and an event that
 * did not wake both waiters at once still breaks it. */
static void *seed_waiter(void *arg)
{
	const char **ev = arg;
	log_add(ev[0]);
	ck_assert_int_eq(weft_event_wait(&seed_ev), 0);
	log_add(ev[1]);
	atomic_fetch_add(&seed_got, 1);
	weft_sleep(10 * WEFT_MSEC);
	for (int i = 0; atomic_load(&seed_got) < 2 && i < 10000; i++)
		weft_sleep(WEFT_MSEC);
	log_add(ev[2]);
	return NULL;
}

static void *seed_setter(void *arg)
{
	log_add("w3 start");
	weft_sleep(30 * WEFT_MSEC);
	wait_waiters(&seed_ev.wq, 2);
	log_add("w3 end");
	ck_assert_int_ge(weft_event_set(&seed_ev), 0);
	return NULL;
}

static void *seed_main(void *arg)
{
	static const char *w1[] = { "w1 start", "w1 got", "w1 end" };
	static const char *w2[] = { "w2 start", "w2 got", "w2 end" };
	weft_task_t t[3];
	log_reset();
	atomic_store(&seed_got, 0);
	weft_event_clear(&seed_ev);
	ck_assert_int_eq(weft_spawn(&t[0], seed_waiter, w1), 0);
	ck_assert_int_eq(weft_spawn(&t[1], seed_waiter, w2), 0);
	ck_assert_int_eq(weft_spawn(&t[2], seed_setter, NULL), 0);
	for (int i = 0; i < 3; i++)
		ck_assert_int_eq(weft_join(t[i], NULL), 0);
	ck_assert_int_eq(log_n, 8);
	/* worker2 start, worker3 start, worker1 start, worker3 end, worker2
	 * got event, worker1 got event, worker2 end, worker1 end */
	int end3 = log_pos("w3 end");
	ck_assert_int_lt(log_pos("w1 start"), end3);
	ck_assert_int_lt(log_pos("w2 start"), end3);
	ck_assert_int_lt(end3, log_pos("w1 got"));
	ck_assert_int_lt(end3, log_pos("w2 got"));
	/* Both got it before either finished its 10 ms. */
	ck_assert_int_lt(log_pos("w1 got"), log_pos("w2 end"));
	ck_assert_int_lt(log_pos("w2 got"), log_pos("w1 end"));
	ck_assert_int_eq(weft_event_is_set(&seed_ev), 1);
	return NULL;
}

START_TEST(seed)
{
	weft_test_run(seed_main, NULL, 2);
	weft_test_run(seed_main, NULL, 1);
}
END_TEST

/* ---- semantics ---------------------------------------------------------- */

static void *waiter(void *arg)
{
	return (void *)(long)weft_event_wait(arg);
}

static void *timed_waiter(void *arg)
{
	struct weft_deadline d;
	ck_assert_int_eq(weft_deadline_enter(&d, TIMED_WAITER_NS), 0);
	long r = weft_event_wait(arg);
	weft_deadline_leave(&d);
	return (void *)r;
}

static void *semantics_main(void *arg)
{
	struct weft_event e;
	weft_task_t t[4];
	void *res;
	ck_assert_int_eq(weft_event_init(&e), 0);
	ck_assert_int_eq(weft_event_is_set(&e), 0);
	ck_assert_int_eq(weft_event_set(&e), 0); /* nobody woken */
	ck_assert_int_eq(weft_event_is_set(&e), 1);
	ck_assert_int_eq(weft_event_wait(&e), 0); /* set: at once */
	ck_assert_int_eq(weft_event_set(&e), 0);  /* twice is fine */
	ck_assert_int_eq(weft_event_clear(&e), 0);
	ck_assert_int_eq(weft_event_is_set(&e), 0);

	/* set wakes all; a cancelled or timed-out waiter leaves. */
	for (int i = 0; i < 3; i++)
		ck_assert_int_eq(weft_spawn(&t[i], waiter, &e), 0);
	ck_assert_int_eq(weft_spawn(&t[3], timed_waiter, &e), 0);
	wait_waiters(&e.wq, 4);
	ck_assert_int_eq(weft_join(t[3], &res), 0);
	ck_assert_int_eq((long)res, -ETIMEDOUT);
	ck_assert_int_eq(weft_cancel(t[2]), 0);
	ck_assert_int_eq(weft_join(t[2], &res), 0);
	ck_assert_int_eq((long)res, -ECANCELED);
	wait_waiters(&e.wq, 2);
	ck_assert_int_eq(weft_event_set(&e), 2);
	for (int i = 0; i < 2; i++) {
		ck_assert_int_eq(weft_join(t[i], &res), 0);
		ck_assert_int_eq((long)res, 0);
	}
	/* A cancelled task does not wait, but a set event still returns. */
	ck_assert_int_eq(weft_event_clear(&e), 0);
	ck_assert_int_eq(weft_cancel(weft_current()), 0);
	ck_assert_int_eq(weft_event_wait(&e), -ECANCELED);
	ck_assert_int_eq(weft_event_set(&e), 0);
	ck_assert_int_eq(weft_event_wait(&e), 0);

	ck_assert_int_eq(weft_event_init(NULL), -EINVAL);
	ck_assert_int_eq(weft_event_set(NULL), -EINVAL);
	ck_assert_int_eq(weft_event_clear(NULL), -EINVAL);
	ck_assert_int_eq(weft_event_wait(NULL), -EINVAL);
	ck_assert_int_eq(weft_event_is_set(NULL), -EINVAL);
	return NULL;
}

START_TEST(semantics)
{
	weft_test_run(semantics_main, NULL, 2);
}
END_TEST

/* ---- a set between the waiter's check and its lock ---------------------- */

/* The waiter found the event clear lock-free; the whole set runs before it
 * takes wq's lock (window_open): it must see the flag there, not link
 * itself after the set found nobody to wake. Its deadline bounds the
 * wait that would follow. */
static void set_by_hand(void *arg)
{
	struct weft_event *e = arg;

	/* weft_event_set's work, with its lock held and no waiter linked. */
	__atomic_store_n(&e->set, 1, __ATOMIC_RELEASE);
}

static void *window_waiter(void *arg)
{
	struct weft_deadline d;

	ck_assert_int_eq(weft_deadline_enter(&d, HANG_NS), 0);
	long r = weft_event_wait(arg);
	weft_deadline_leave(&d);
	return (void *)r;
}

static void *set_in_window_main(void *arg)
{
	struct weft_event e;
	struct window win = { .q = &e.wq, .other = set_by_hand, .arg = &e };
	weft_task_t t;
	void *res;

	ck_assert_int_eq(weft_event_init(&e), 0);
	window_open(&win, &t, window_waiter, &e);
	ck_assert_int_eq(weft_join(t, &res), 0);
	ck_assert(window_close(&win));
	ck_assert_int_eq((long)res, 0);
	ck_assert_ptr_null(e.wq.head);
	return NULL;
}

START_TEST(set_in_window)
{
	weft_test_run(set_in_window_main, NULL, 1);
	weft_test_run(set_in_window_main, NULL, 2);
}
END_TEST

/* ---- foreign threads: setting for tasks, waiting for tasks -------------- */

static struct weft_event to_tasks = WEFT_EVENT_INIT;
static struct weft_event to_thread = WEFT_EVENT_INIT;

static void *foreign_setter(void *arg)
{
	wait_waiters(&to_tasks.wq, 16);
	weft_event_set(&to_tasks);
	/* And a plain thread waits for a task's set. */
	ck_assert_int_eq(weft_event_wait(&to_thread), 0);
	return NULL;
}

static void *foreign_main(void *arg)
{
	weft_task_t t[16];
	pthread_t th;
	for (int i = 0; i < 16; i++)
		ck_assert_int_eq(weft_spawn(&t[i], waiter, &to_tasks), 0);
	pthread_create(&th, NULL, foreign_setter, NULL);
	for (int i = 0; i < 16; i++) {
		void *res;
		ck_assert_int_eq(weft_join(t[i], &res), 0);
		ck_assert_int_eq((long)res, 0);
	}
	weft_sleep(5 * WEFT_MSEC);
	weft_event_set(&to_thread);
	pthread_join(th, NULL);
	return NULL;
}

START_TEST(foreign)
{
	weft_test_run(foreign_main, NULL, 2);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("sync_event");
	TCase *tc = tcase_create("event");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, seed);
	tcase_add_test(tc, semantics);
	tcase_add_test(tc, set_in_window);
	tcase_add_test(tc, foreign);
	suite_add_tcase(s, tc);
	return weft_test_main(s);
}
