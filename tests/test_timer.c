/* Timers (runtime/timer.c) as tasks see them: sleep accuracy and ordering,
 * deadlines on sleeps, and a hundred thousand concurrent sleepers. */
#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include "test_io_util.h"

static void *accuracy_main(void *arg)
{
	static const long ms[] = { 1, 5, 20, 50, 120 };
	int64_t worst = 0;

	for (size_t i = 0; i < sizeof(ms) / sizeof(ms[0]); i++) {
		int64_t t0 = weft_now();

		ck_assert_int_eq(weft_sleep(ms[i] * WEFT_MSEC), 0);
		int64_t el = weft_now() - t0;
		ck_assert_msg(el >= ms[i] * WEFT_MSEC, "slept %lld ns < %ld ms",
			      (long long)el, ms[i]);
		ck_assert_msg(el < (ms[i] + IO_SLACK_MS) * WEFT_MSEC,
			      "slept %lld ns for %ld ms", (long long)el, ms[i]);
		if (el - ms[i] * WEFT_MSEC > worst)
			worst = el - ms[i] * WEFT_MSEC;
	}
	fprintf(stderr, "sleeps woke at most %lld us late\n",
		(long long)(worst / WEFT_USEC));
	/* Zero and negative durations yield and return at once. */
	ck_assert_int_eq(weft_sleep(0), 0);
	ck_assert_int_eq(weft_sleep(-5), 0);
	return NULL;
}

START_TEST(accuracy)
{
	weft_test_run(accuracy_main, NULL, 2);
}
END_TEST

/* ---- ordering ------------------------------------------------------------ */

#define ORDER_N 30
/* Sanitizers can stall a worker for milliseconds. */
#define ORDER_GAP_MS (WEFT_TEST_SCALE >= 100 ? 20 : 50)

struct order {
	atomic_int next;
	int64_t base; /* every sleeper counts from here, whenever it starts */
	int woke[ORDER_N];
};

struct sleeper {
	struct order *o;
	int i;
};

static void *order_sleeper(void *arg)
{
	struct sleeper *s = arg;

	/* Spawned in reverse: sleeper i wakes i gaps after the base. */
	int64_t at = s->o->base + (int64_t)s->i * ORDER_GAP_MS * WEFT_MSEC;

	ck_assert_int_gt(at, weft_now());
	ck_assert_int_eq(weft_sleep(at - weft_now()), 0);
	ck_assert_int_ge(weft_now(), at);
	s->o->woke[atomic_fetch_add(&s->o->next, 1)] = s->i;
	return NULL;
}

static void *order_main(void *arg)
{
	/* Starting 50 tasks takes a while under sanitizers. */
	struct order o = { .next = 0,
			   .base = weft_now() +
				   (WEFT_TEST_SCALE >= 100 ? 50 : 500) *
					   WEFT_MSEC };
	struct sleeper s[ORDER_N];
	weft_task_t t[ORDER_N];

	for (int i = ORDER_N - 1; i >= 0; i--) {
		s[i] = (struct sleeper){ &o, i };
		ck_assert_int_eq(weft_spawn(&t[i], order_sleeper, &s[i]), 0);
	}
	for (int i = 0; i < ORDER_N; i++)
		ck_assert_int_eq(weft_join(t[i], NULL), 0);
	/* A gap apart, they wake in order. Timers live on each worker's own
	 * heap, so a worker thread the OS preempts for longer than a gap can
	 * let a neighbour pass: allow arg such swaps, no more. */
	int inversions = 0;
	for (int i = 1; i < ORDER_N; i++)
		if (o.woke[i] < o.woke[i - 1])
			inversions++;
	/* A worker that wakes later than a gap fires several timers at once,
	 * and those resume through the run-next slot, last first: the gap is
	 * wide so that only a badly overloaded machine sees that. */
	fprintf(stderr, "%d workers: %d sleepers out of order\n",
		weft_workers(), inversions);
	ck_assert_int_le(inversions, (int)(intptr_t)arg);
	return NULL;
}

START_TEST(ordering)
{
	/* One worker has one heap: only a stall longer than a gap (a badly
	 * overloaded machine) lets two timers fire together. */
	weft_test_run(order_main, (void *)1, 1);
	weft_test_run(order_main, (void *)2, 2);
}
END_TEST

/* ---- deadlines and cancellation of sleeps -------------------------------- */

static void *long_sleep(void *arg)
{
	return (void *)(intptr_t)weft_sleep(INT64_MAX); /* until cancelled */
}

static void *deadline_main(void *arg)
{
	struct weft_deadline d;
	int64_t t0 = weft_now();
	weft_task_t t;
	void *res;

	ck_assert_int_eq(weft_deadline_enter(&d, 20 * WEFT_MSEC), 0);
	ck_assert_int_eq(weft_sleep(10 * WEFT_SEC), -ETIMEDOUT);
	ck_assert_int_eq(weft_deadline_leave(&d), 1);
	ck_assert_int_ge(io_ms_since(t0), 19);
	ck_assert_int_lt(io_ms_since(t0), 20 + IO_SLACK_MS);

	/* A sleep shorter than the deadline is a plain success. */
	ck_assert_int_eq(weft_deadline_enter(&d, 10 * WEFT_SEC), 0);
	ck_assert_int_eq(weft_sleep(WEFT_MSEC), 0);
	ck_assert_int_eq(weft_deadline_leave(&d), 0);

	/* Durations past the clock's range saturate, never wrap into the
	 * past: an endless sleep still meets the deadline, an endless
	 * deadline bounds nothing. */
	ck_assert_int_eq(weft_deadline_enter(&d, 20 * WEFT_MSEC), 0);
	ck_assert_int_eq(weft_sleep(INT64_MAX), -ETIMEDOUT);
	ck_assert_int_eq(weft_deadline_leave(&d), 1);
	ck_assert_int_eq(weft_deadline_enter(&d, INT64_MAX), 0);
	ck_assert_int_eq(weft_sleep(WEFT_MSEC), 0);
	ck_assert_int_eq(weft_deadline_leave(&d), 0);

	ck_assert_int_eq(weft_spawn(&t, long_sleep, NULL), 0);
	weft_sleep(5 * WEFT_MSEC);
	t0 = weft_now();
	ck_assert_int_eq(weft_cancel(t), 0);
	ck_assert_int_eq(weft_join(t, &res), 0);
	ck_assert_int_eq((intptr_t)res, -ECANCELED);
	ck_assert_int_lt(io_ms_since(t0), IO_SLACK_MS);
	return NULL;
}

START_TEST(deadline)
{
	weft_test_run(deadline_main, NULL, 2);
}
END_TEST

START_TEST(plain_thread)
{
	ck_assert_int_eq(weft_sleep(WEFT_MSEC), -EPERM);
}
END_TEST

/* ---- a hundred thousand sleepers ----------------------------------------- */

static atomic_long woke_ok;

static void *many_sleeper(void *arg)
{
	/* Spread over 0..99 ms so the timer structure sees churn. */
	if (weft_sleep((int64_t)((intptr_t)arg % 100) * WEFT_MSEC +
		       WEFT_MSEC) == 0)
		atomic_fetch_add(&woke_ok, 1);
	return NULL;
}

static void *many_main(void *arg)
{
	long n = SCALED(100000);
	weft_task_t *t = malloc((size_t)n * sizeof(*t));
	struct weft_spawn_opts opts = { .stack_size = WEFT_STACK_MIN };
	int64_t t0 = weft_now();

	atomic_store(&woke_ok, 0);
	for (long i = 0; i < n; i++)
		ck_assert_int_eq(weft_spawn_opts(&t[i], many_sleeper,
						 (void *)(intptr_t)i, &opts),
				 0);
	for (long i = 0; i < n; i++)
		ck_assert_int_eq(weft_join(t[i], NULL), 0);
	ck_assert_int_eq(atomic_load(&woke_ok), n);
	fprintf(stderr, "%ld sleepers in %ld ms\n", n, io_ms_since(t0));
	free(t);
	return NULL;
}

START_TEST(many_sleepers)
{
	weft_test_run(many_main, NULL, 0);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("timer");
	TCase *tc = tcase_create("sleep");

	tcase_set_timeout(tc, 600);
	tcase_add_test(tc, accuracy);
	tcase_add_test(tc, ordering);
	tcase_add_test(tc, deadline);
	tcase_add_test(tc, plain_thread);
	tcase_add_test(tc, many_sleepers);
	suite_add_tcase(s, tc);
	return io_test_main(s);
}
