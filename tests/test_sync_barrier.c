/* weft_barrier: rounds (nobody passes early, indices 0..n-1 once), a
 * leaving waiter, abort, reset, timeouts, bad input. */
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <string.h>
#include <unistd.h>
#include "sync_test_util.h"
#include "sync/waitq.h"

/* ---- barrier ------------------------------------------------------------ */

#define PARTIES 4

static struct weft_barrier bar = WEFT_BARRIER_INIT(PARTIES);
static int bar_phase[PARTIES];

static void *bar_worker(void *arg)
{
	long id = (long)arg;
	int seen = 0;
	for (int round = 0; round < 20; round++) {
		__atomic_store_n(&bar_phase[id], round, __ATOMIC_RELAXED);
		int r = weft_barrier_wait(&bar);
		ck_assert_int_ge(r, 0);
		ck_assert_int_lt(r, PARTIES);
		seen |= 1 << r;
		/* Everyone reached this round before anyone passed. */
		for (int i = 0; i < PARTIES; i++)
			ck_assert_int_ge(__atomic_load_n(&bar_phase[i],
							 __ATOMIC_RELAXED),
					 round);
		if (round % 3 == 0)
			weft_yield();
		int r2 = weft_barrier_wait(&bar); /* nobody races ahead */
		ck_assert_int_ge(r2, 0);
	}
	return (void *)(long)seen;
}

static void *bwaiter(void *arg)
{
	return (void *)(long)weft_barrier_wait(arg);
}

static void *barrier_main(void *arg)
{
	weft_task_t t[PARTIES];
	void *res;
	for (long i = 0; i < PARTIES; i++)
		ck_assert_int_eq(weft_spawn(&t[i], bar_worker, (void *)i), 0);
	for (int i = 0; i < PARTIES; i++)
		ck_assert_int_eq(weft_join(t[i], &res), 0);
	ck_assert_int_eq(weft_barrier_n_waiting(&bar), 0);

	/* Each round hands out indices 0..n-1 once. */
	struct weft_barrier b;
	ck_assert_int_eq(weft_barrier_init(&b, 3), 0);
	ck_assert_int_eq(weft_spawn(&t[0], bwaiter, &b), 0);
	ck_assert_int_eq(weft_spawn(&t[1], bwaiter, &b), 0);
	wait_waiters(&b.wq, 2);
	ck_assert_int_eq(weft_barrier_n_waiting(&b), 2);
	int mine = weft_barrier_wait(&b);
	ck_assert_int_eq(mine, 2);
	long sum = mine;
	for (int i = 0; i < 2; i++) {
		ck_assert_int_eq(weft_join(t[i], &res), 0);
		sum += (long)res;
	}
	ck_assert_int_eq(sum, 0 + 1 + 2);

	/* A cancelled waiter leaves; the others still need 3 parties. */
	ck_assert_int_eq(weft_spawn(&t[0], bwaiter, &b), 0);
	ck_assert_int_eq(weft_spawn(&t[1], bwaiter, &b), 0);
	wait_waiters(&b.wq, 2);
	ck_assert_int_eq(weft_cancel(t[1]), 0);
	ck_assert_int_eq(weft_join(t[1], &res), 0);
	ck_assert_int_eq((long)res, -ECANCELED);
	ck_assert_int_eq(weft_barrier_n_waiting(&b), 1);
	/* reset wakes it with -EPIPE and leaves b usable. */
	ck_assert_int_eq(weft_barrier_reset(&b), 1);
	ck_assert_int_eq(weft_join(t[0], &res), 0);
	ck_assert_int_eq((long)res, -EPIPE);
	ck_assert_int_eq(weft_barrier_broken(&b), 0);

	/* abort breaks it until reset. */
	ck_assert_int_eq(weft_spawn(&t[0], bwaiter, &b), 0);
	wait_waiters(&b.wq, 1);
	ck_assert_int_eq(weft_barrier_abort(&b), 1);
	ck_assert_int_eq(weft_join(t[0], &res), 0);
	ck_assert_int_eq((long)res, -EPIPE);
	ck_assert_int_eq(weft_barrier_broken(&b), 1);
	ck_assert_int_eq(weft_barrier_wait(&b), -EPIPE);
	ck_assert_int_eq(weft_barrier_reset(&b), 0);
	ck_assert_int_eq(weft_barrier_broken(&b), 0);

	/* One party: never waits. Timeout: leaves. */
	struct weft_barrier one = WEFT_BARRIER_INIT(1);
	ck_assert_int_eq(weft_barrier_wait(&one), 0);
	ck_assert_int_eq(weft_barrier_wait(&one), 0);
	struct weft_deadline d;
	ck_assert_int_eq(weft_deadline_enter(&d, 2 * WEFT_MSEC), 0);
	ck_assert_int_eq(weft_barrier_wait(&b), -ETIMEDOUT);
	weft_deadline_leave(&d);
	ck_assert_int_eq(weft_barrier_n_waiting(&b), 0);

	ck_assert_int_eq(weft_barrier_init(&b, 0), -EINVAL);
	/* A wait's index past INT_MAX would read as an errno. */
	ck_assert_int_eq(weft_barrier_init(&b, (unsigned)INT_MAX + 1), -EINVAL);
	struct weft_barrier huge = WEFT_BARRIER_INIT((unsigned)INT_MAX + 1);
	ck_assert_int_eq(weft_barrier_wait(&huge), -EINVAL);
	ck_assert_int_eq(weft_barrier_init(NULL, 1), -EINVAL);
	ck_assert_int_eq(weft_barrier_wait(NULL), -EINVAL);
	ck_assert_int_eq(weft_barrier_abort(NULL), -EINVAL);
	ck_assert_int_eq(weft_barrier_reset(NULL), -EINVAL);
	ck_assert_int_eq(weft_barrier_n_waiting(NULL), -EINVAL);
	ck_assert_int_eq(weft_barrier_broken(NULL), -EINVAL);
	struct weft_barrier zero = { 0 };
	ck_assert_int_eq(weft_barrier_wait(&zero), -EINVAL);
	return NULL;
}

START_TEST(barrier)
{
	weft_test_run(barrier_main, NULL, 2);
	weft_test_run(barrier_main, NULL, 1);
}
END_TEST

/* ---- what needs no wait happens in a cancelled task too ----------------- */

/* The arrival that completes a round, and one at a broken barrier, need
 * no wait: a cancelled task passes, or hears -EPIPE (weft/sync.h). */
static void *party(void *arg)
{
	return (void *)(intptr_t)weft_barrier_wait(arg);
}

static void *no_wait_main(void *arg)
{
	struct weft_barrier one, two, broken;
	weft_task_t t;
	void *res;

	ck_assert_int_eq(weft_barrier_init(&one, 1), 0);
	ck_assert_int_eq(weft_barrier_init(&two, 2), 0);
	ck_assert_int_eq(weft_barrier_init(&broken, 2), 0);
	ck_assert_int_eq(weft_barrier_abort(&broken), 0);
	ck_assert_int_eq(weft_spawn(&t, party, &two), 0);
	while (weft_barrier_n_waiting(&two) != 1)
		ck_assert_int_eq(weft_yield(), 0);
	ck_assert_int_eq(weft_cancel(weft_current()), 0);
	ck_assert_int_eq(weft_barrier_wait(&one), 0);
	ck_assert_int_eq(weft_barrier_wait(&two), 1); /* the last of two */
	ck_assert_int_eq(weft_barrier_wait(&broken), -EPIPE);
	ck_assert_int_eq(weft_barrier_wait(&one), 0); /* again */
	struct weft_shield s;
	ck_assert_int_eq(weft_shield_enter(&s), 0);
	ck_assert_int_eq(weft_join(t, &res), 0);
	weft_shield_leave(&s);
	ck_assert_int_eq((intptr_t)res, 0);
	return NULL;
}

START_TEST(no_wait_when_cancelled)
{
	weft_test_run(no_wait_main, NULL, 2);
}
END_TEST

/* ---- rounds back to back, and the last one in resets ------------------- */

/* Parties wait round after round, and the one that arrived first resets
 * the barrier once it is through (threading's "if i == 0" idiom). On one
 * worker the releaser comes straight back before the others have run:
 * it must be held at the entrance until the round has drained, not
 * counted into the next round, where the reset broke it (-EPIPE). */
#define ROUNDS_PARTIES 3

static struct weft_barrier rounds_bar = WEFT_BARRIER_INIT(ROUNDS_PARTIES);
static int rounds_n;

static void *rounds_party(void *arg)
{
	for (int i = 0; i < rounds_n; i++) {
		int r = weft_barrier_wait(&rounds_bar);
		ck_assert_int_ge(r, 0);
		if (r == 0)
			ck_assert_int_eq(weft_barrier_reset(&rounds_bar), 0);
	}
	return NULL;
}

static void *rounds_main(void *arg)
{
	rounds_n = (int)weft_test_scaled(2000, 100);
	weft_task_t t[ROUNDS_PARTIES];
	for (int i = 0; i < ROUNDS_PARTIES; i++)
		ck_assert_int_eq(weft_spawn(&t[i], rounds_party, NULL), 0);
	struct weft_deadline d;
	ck_assert_int_eq(weft_deadline_enter(&d, 60 * WEFT_SEC),
			 0); /* a stuck round: fail */
	for (int i = 0; i < ROUNDS_PARTIES; i++)
		ck_assert_int_eq(weft_join(t[i], NULL), 0);
	weft_deadline_leave(&d);
	ck_assert_int_eq(weft_barrier_n_waiting(&rounds_bar), 0);
	return NULL;
}

START_TEST(rounds_back_to_back)
{
	weft_test_run(rounds_main, NULL, 1);
}
END_TEST

/* ---- a waiter that leaves gives its index back -------------------------- */

/* Indices are unique in a round, whoever left it (asyncio's documentation
 * promises "different for each task"; its count-based index repeats one,
 * CPython gh-155233): the "if index == 0" housekeeping idiom needs an index
 * 0 in every round, and only one. A (index 0) leaves, cancelled or timed
 * out, while B (index 1) waits; C then arrives and the caller completes the
 * round: B, C and the caller get 0, 1 and 2, in the order they arrived.
 *
 * A timed out: its deadline runs from its wait, and main must see A and
 * then B waiting before it fires. A loaded host that kept main off its CPU
 * for longer (a worker preempted) let A leave first, and main waited for
 * ever for a waiter that had left. Such an attempt proves nothing: it is
 * made again, the deadline doubled. */
static int64_t timed_ns;
static atomic_int timed_left;

static void *timed_party(void *arg)
{
	struct weft_deadline d;
	ck_assert_int_eq(weft_deadline_enter(&d, timed_ns), 0);
	int r = weft_barrier_wait(arg);
	weft_deadline_leave(&d);
	atomic_store(&timed_left, 1);
	return (void *)(intptr_t)r;
}

/* Until q has n waiters (true), or the timed party left before (false). */
static bool waiters_before_a_leaves(struct weft_waitq *q, int n)
{
	while (waitq_len(q) != n) {
		if (atomic_load(&timed_left))
			return false;
		ck_assert_int_eq(weft_sleep(100 * WEFT_USEC), 0);
	}
	return true;
}

static void *index_given_back_main(void *arg)
{
	bool by_deadline = arg != NULL;
	struct weft_barrier b;
	weft_task_t a, bt, c;
	void *res;

	atomic_store(&timed_left, 0);
	for (timed_ns = 20 * WEFT_MSEC;; timed_ns *= 2) {
		ck_assert_int_lt(timed_ns, 60 * WEFT_SEC);
		ck_assert_int_eq(weft_barrier_init(&b, 3), 0);
		ck_assert_int_eq(weft_spawn(&a,
					    by_deadline ? timed_party : party,
					    &b),
				 0);
		if (!waiters_before_a_leaves(&b.wq, 1)) {
			ck_assert_int_eq(weft_join(a, NULL), 0);
			atomic_store(&timed_left, 0);
			continue;
		}
		ck_assert_int_eq(weft_spawn(&bt, party, &b), 0);
		if (waiters_before_a_leaves(&b.wq, 2))
			break;
		ck_assert_int_eq(weft_join(a, NULL), 0);
		ck_assert_int_eq(weft_cancel(bt), 0);
		ck_assert_int_eq(weft_join(bt, &res), 0);
		ck_assert_int_eq((intptr_t)res, -ECANCELED);
		atomic_store(&timed_left, 0);
	}
	if (!by_deadline)
		ck_assert_int_eq(weft_cancel(a), 0);
	ck_assert_int_eq(weft_join(a, &res), 0);
	ck_assert_int_eq((intptr_t)res, by_deadline ? -ETIMEDOUT : -ECANCELED);
	ck_assert_int_eq(weft_barrier_n_waiting(&b), 1);
	ck_assert_int_eq(weft_spawn(&c, party, &b), 0);
	wait_waiters(&b.wq, 2);
	int mine = weft_barrier_wait(&b);
	ck_assert_int_eq(weft_join(bt, &res), 0);
	int ib = (int)(intptr_t)res;
	ck_assert_int_eq(weft_join(c, &res), 0);
	int ic = (int)(intptr_t)res;
	ck_assert_msg(ib == 0 && ic == 1 && mine == 2,
		      "indices B %d, C %d, caller %d: expected 0, 1, 2", ib, ic,
		      mine);
	return NULL;
}

START_TEST(index_given_back_by_a_leaver)
{
	weft_test_run(index_given_back_main, NULL, 2);
	weft_test_run(index_given_back_main, NULL, 1);
	weft_test_run(index_given_back_main, (void *)1, 2);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("sync_barrier");
	TCase *tc = tcase_create("barrier");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, barrier);
	tcase_add_test(tc, rounds_back_to_back);
	tcase_add_test(tc, no_wait_when_cancelled);
	tcase_add_test(tc, index_given_back_by_a_leaver);
	suite_add_tcase(s, tc);
	return weft_test_main(s);
}
