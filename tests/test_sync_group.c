/* weft_group: waiting for all, the first failure cancelling the rest, a
 * cancelled or timed-out waiter, reuse, plain threads, many members, bad
 * input. */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include "sync_test_util.h"

static struct weft_event never = WEFT_EVENT_INIT;
static atomic_int finished, saw_cancel;

static void reset_counts(void)
{
	atomic_store(&finished, 0);
	atomic_store(&saw_cancel, 0);
}

static void *nap(void *arg)
{
	ck_assert_int_eq(weft_sleep((intptr_t)arg * WEFT_MSEC), 0);
	atomic_fetch_add(&finished, 1);
	return NULL;
}

/* Waits until cancelled. */
static void *wait_forever(void *arg)
{
	ck_assert_int_eq(weft_event_wait(&never), -ECANCELED);
	atomic_fetch_add(&saw_cancel, 1);
	atomic_fetch_add(&finished, 1);
	return NULL;
}

static void *fail_after(void *arg)
{
	weft_sleep(5 * WEFT_MSEC);
	atomic_fetch_add(&finished, 1);
	return WEFT_ERR_PTR((int)(intptr_t)arg);
}

/* ---- all succeed, then the group is used again -------------------------- */

static void *all_main(void *arg)
{
	struct weft_group g = WEFT_GROUP_INIT(g);
	for (int round = 0; round < 2; round++) {
		reset_counts();
		for (intptr_t i = 0; i < 10; i++)
			ck_assert_int_eq(weft_group_spawn(&g, nap, (void *)i),
					 0);
		ck_assert_int_eq(weft_group_wait(&g), 0);
		ck_assert_int_eq(atomic_load(&finished), 10);
	}
	ck_assert_int_eq(weft_group_wait(&g), 0); /* empty: at once */
	return NULL;
}

START_TEST(waits_for_all)
{
	weft_test_run(all_main, NULL, 2);
}
END_TEST

/* ---- the first failure cancels the rest --------------------------------- */

static void *failure_main(void *arg)
{
	struct weft_group g;
	ck_assert_int_eq(weft_group_init(&g), 0);
	reset_counts();
	for (int i = 0; i < 4; i++)
		ck_assert_int_eq(weft_group_spawn(&g, wait_forever, NULL), 0);
	ck_assert_int_eq(weft_group_spawn(&g, fail_after, (void *)-EIO), 0);
	ck_assert_int_eq(weft_group_wait(&g), -EIO);
	ck_assert_int_eq(atomic_load(&finished), 5);
	ck_assert_int_eq(atomic_load(&saw_cancel), 4);

	/* Only the first failure counts; spawning while the group cancels
	 * is refused. */
	reset_counts();
	ck_assert_int_eq(weft_group_spawn(&g, wait_forever, NULL), 0);
	ck_assert_int_eq(weft_group_spawn(&g, fail_after, (void *)-EPIPE), 0);
	/* Until the failure has cancelled the other (not a fixed sleep:
	 * under ThreadSanitizer 20 ms were sometimes too few). */
	for (int ms = 0; ms < 10000 && !atomic_load(&saw_cancel); ms++)
		ck_assert_int_eq(weft_sleep(WEFT_MSEC), 0);
	ck_assert_int_eq(weft_group_spawn(&g, nap, NULL), -ECANCELED);
	ck_assert_int_eq(weft_group_wait(&g), -EPIPE);
	ck_assert_int_eq(atomic_load(&finished), 2);
	ck_assert_int_eq(weft_group_spawn(&g, nap, NULL), 0); /* usable again */
	ck_assert_int_eq(weft_group_wait(&g), 0);
	return NULL;
}

START_TEST(first_failure_cancels_the_rest)
{
	weft_test_run(failure_main, NULL, 2);
}
END_TEST

/* ---- a waiter cancelled or timed out still waits for its members -------- */

static void *group_owner(void *arg)
{
	struct weft_group g = WEFT_GROUP_INIT(g);
	for (int i = 0; i < 3; i++)
		ck_assert_int_eq(weft_group_spawn(&g, wait_forever, NULL), 0);
	int r = weft_group_wait(&g);
	ck_assert_int_eq(atomic_load(&finished), 3); /* before it returns */
	return (void *)(intptr_t)r;
}

static void *timed_owner(void *arg)
{
	struct weft_deadline d;
	ck_assert_int_eq(weft_deadline_enter(&d, 10 * WEFT_MSEC), 0);
	void *r = group_owner(arg);
	weft_deadline_leave(&d);
	return r;
}

static void *waiter_main(void *arg)
{
	weft_task_t t;
	void *r;
	reset_counts();
	ck_assert_int_eq(weft_spawn(&t, group_owner, NULL), 0);
	weft_sleep(10 * WEFT_MSEC);
	ck_assert_int_eq(weft_cancel(t), 0);
	ck_assert_int_eq(weft_join(t, &r), 0);
	ck_assert_int_eq((intptr_t)r, -ECANCELED);
	ck_assert_int_eq(atomic_load(&saw_cancel), 3);

	reset_counts();
	ck_assert_int_eq(weft_spawn(&t, timed_owner, NULL), 0);
	ck_assert_int_eq(weft_join(t, &r), 0);
	ck_assert_int_eq((intptr_t)r, -ETIMEDOUT);
	ck_assert_int_eq(atomic_load(&saw_cancel), 3);
	return NULL;
}

START_TEST(cancelled_waiter_waits_for_members)
{
	weft_test_run(waiter_main, NULL, 2);
}
END_TEST

/* A member that waits on (or shuts down) its own group would wait for
 * itself for good: -EDEADLK, as a join of itself; it waited before. */
static void *self_waiter(void *arg)
{
	struct weft_group *g = arg;

	ck_assert_int_eq(weft_group_wait(g), -EDEADLK);
	ck_assert_int_eq(weft_group_shutdown(g), -EDEADLK);
	atomic_fetch_add(&finished, 1);
	return NULL;
}

static void *self_wait_main(void *arg)
{
	struct weft_group g = WEFT_GROUP_INIT(g);

	(void)arg;
	reset_counts();
	ck_assert_int_eq(weft_group_spawn(&g, self_waiter, &g), 0);
	ck_assert_int_eq(weft_group_spawn(&g, nap, (void *)1), 0);
	ck_assert_int_eq(weft_group_wait(&g), 0);
	ck_assert_int_eq(atomic_load(&finished), 2);
	return NULL;
}

START_TEST(member_waiting_on_its_group)
{
	weft_test_run(self_wait_main, NULL, 2);
}
END_TEST

/* A member failed, then its waiter was cancelled or its deadline passed:
 * the wait says the failure, as asyncio's TaskGroup raises a member's
 * error over its own cancellation (it said -ECANCELED or -ETIMEDOUT, and
 * the failure was lost). COLLECT, so that the failure cancels nobody and
 * the waiter is still waiting when its own end comes. */
static struct weft_group *_Atomic collecting_group;

static void *collecting_owner(void *arg)
{
	struct weft_group g = WEFT_GROUP_INIT_COLLECT(g);
	struct weft_deadline d;
	bool timed = arg != NULL;

	atomic_store(&collecting_group, &g); /* lives until we are cancelled */

	if (timed)
		ck_assert_int_eq(weft_deadline_enter(&d, 100 * WEFT_MSEC), 0);
	ck_assert_int_eq(weft_group_spawn(&g, fail_after, (void *)-EIO), 0);
	ck_assert_int_eq(weft_group_spawn(&g, wait_forever, NULL), 0);
	int r = weft_group_wait(&g);
	ck_assert_int_eq(atomic_load(&saw_cancel), 1); /* before it returns */
	/* The waiter's own end is not lost: its next call says it. */
	ck_assert_int_eq(weft_sleep(WEFT_MSEC),
			 timed ? -ETIMEDOUT : -ECANCELED);
	if (timed)
		weft_deadline_leave(&d);
	return (void *)(intptr_t)r;
}

static void *failure_first_main(void *arg)
{
	for (intptr_t timed = 0; timed < 2; timed++) {
		weft_task_t t;
		void *r;

		reset_counts();
		ck_assert_int_eq(weft_spawn(&t, collecting_owner,
					    (void *)timed),
				 0);
		if (!timed) {
			/* Until the group has the failure (not a fixed
			 * sleep); the owner waits for the other member till
			 * we cancel it. */
			struct weft_group *g;
			while (!(g = atomic_load(&collecting_group)))
				ck_assert_int_eq(weft_sleep(WEFT_MSEC), 0);
			for (int ms = 0; ms < 10000 && !weft_group_failures(g);
			     ms++)
				ck_assert_int_eq(weft_sleep(WEFT_MSEC), 0);
			ck_assert_int_eq(weft_cancel(t), 0);
		}
		atomic_store(&collecting_group, NULL);
		ck_assert_int_eq(weft_join(t, &r), 0);
		ck_assert_int_eq((intptr_t)r, -EIO);
	}
	return NULL;
}

START_TEST(failure_comes_before_the_waiters_cancel)
{
	weft_test_run(failure_first_main, NULL, 2);
}
END_TEST

/* A member fails for real while a stop cancels it (its cleanup failed,
 * say): the wait says that failure, as asyncio's TaskGroup raises a
 * member's error over the cancellation of its waiter; a member that
 * reports the stop's cancellation as its failure, before it, does not
 * hide it. The wait said -ETIMEDOUT, the shutdown -ECANCELED, and the
 * -EIO was lost. */
static void *cancel_as_failure(void *arg)
{
	(void)arg;
	return WEFT_ERR_PTR(weft_event_wait(&never));
}

static void *fails_when_stopped(void *arg)
{
	struct weft_shield s;

	(void)arg;
	ck_assert_int_eq(weft_event_wait(&never), -ECANCELED);
	/* After cancel_as_failure has reported. */
	ck_assert_int_eq(weft_shield_enter(&s), 0);
	ck_assert_int_eq(weft_sleep(20 * WEFT_MSEC), 0);
	ck_assert_int_eq(weft_shield_leave(&s), 0);
	return WEFT_ERR_PTR(-EIO);
}

static void *stop_failure_main(void *arg)
{
	struct weft_group g = WEFT_GROUP_INIT(g);
	struct weft_deadline d;

	(void)arg;
	for (int shutdown = 0; shutdown < 2; shutdown++) {
		ck_assert_int_eq(weft_group_spawn(&g, cancel_as_failure, NULL),
				 0);
		ck_assert_int_eq(weft_group_spawn(&g, fails_when_stopped, NULL),
				 0);
		ck_assert_int_eq(weft_sleep(5 * WEFT_MSEC), 0);
		if (shutdown) {
			ck_assert_int_eq(weft_group_shutdown(&g), -EIO);
			continue;
		}
		ck_assert_int_eq(weft_deadline_enter(&d, 5 * WEFT_MSEC), 0);
		ck_assert_int_eq(weft_group_wait(&g), -EIO);
		weft_deadline_leave(&d);
	}
	ck_assert_int_eq(weft_group_failures(&g), 4);
	return NULL;
}

START_TEST(failure_during_the_stop_wins)
{
	weft_test_run(stop_failure_main, NULL, 2);
}
END_TEST

/* A member that spawns after the waiter's cancel reached it (shielded, it
 * goes on) must be refused, as during weft_group_shutdown: a member added
 * then would not be cancelled, and the waiter would wait for it. */
static atomic_int late_spawn;

static void *late_child(void *arg)
{
	weft_sleep(300 * WEFT_MSEC); /* long, unless cancelled */
	atomic_fetch_add(&finished, 1);
	return NULL;
}

static void *late_spawner(void *arg)
{
	struct weft_shield s;
	ck_assert_int_eq(weft_shield_enter(&s), 0);
	/* Until the owner, timed out, has cancelled us. */
	for (int i = 0; i < 5000 && weft_is_cancelled(weft_current()) != 1; i++)
		weft_sleep(WEFT_MSEC);
	atomic_store(&late_spawn, weft_group_spawn(arg, late_child, NULL));
	weft_shield_leave(&s);
	return NULL;
}

static void *late_main(void *arg)
{
	struct weft_group g = WEFT_GROUP_INIT(g);
	struct weft_deadline d;
	reset_counts();
	atomic_store(&late_spawn, 1);
	ck_assert_int_eq(weft_group_spawn(&g, late_spawner, &g), 0);
	ck_assert_int_eq(weft_deadline_enter(&d, 10 * WEFT_MSEC), 0);
	ck_assert_int_eq(weft_group_wait(&g), -ETIMEDOUT);
	weft_deadline_leave(&d);
	ck_assert_int_eq(atomic_load(&late_spawn), -ECANCELED);
	ck_assert_int_eq(atomic_load(&finished), 0);
	/* Usable again afterwards. */
	ck_assert_int_eq(weft_group_spawn(&g, nap, NULL), 0);
	ck_assert_int_eq(weft_group_wait(&g), 0);
	return NULL;
}

START_TEST(no_members_join_a_cancelled_wait)
{
	weft_test_run(late_main, NULL, 2);
}
END_TEST

/* ---- two stops at once ------------------------------------------------- */

/* One shutdown (s1) waits for a member that ignores it; a second stop (s2)
 * starts meanwhile and is served first when the member has gone, with a
 * spawner queued behind it and s1 behind both (the group's lock is handed
 * over in that order). s2 ending its stop must not end s1's: the spawn
 * was let in, and s1 waited for a member nobody cancelled. Since s2 and
 * the spawn came once the round's member had returned, they now let s1
 * leave first: s2 stops an empty group, and the spawn starts the next
 * round, which s1, gone, does not wait for. */
static struct weft_event overlap_gate = WEFT_EVENT_INIT;
static struct weft_event overlap_never = WEFT_EVENT_INIT;

static void *overlap_member(void *arg)
{
	struct weft_shield s;
	ck_assert_int_eq(weft_shield_enter(&s), 0);
	ck_assert_int_eq(weft_event_wait(&overlap_gate), 0);
	weft_shield_leave(&s);
	return NULL;
}

static void *overlap_late(void *arg)
{
	/* Until cancelled: only a stop that reached it ends it. */
	int r = weft_event_wait(&overlap_never);
	return (void *)(intptr_t)r;
}

static void *overlap_stop(void *arg)
{
	return (void *)(intptr_t)weft_group_shutdown(arg);
}

static void *overlap_spawn(void *arg)
{
	return (void *)(intptr_t)weft_group_spawn(arg, overlap_late, NULL);
}

static void *overlap_main(void *arg)
{
	struct weft_group g = WEFT_GROUP_INIT_COLLECT(g);
	weft_task_t s1, s2, x;
	void *res;

	ck_assert_int_eq(weft_event_init(&overlap_gate), 0);
	ck_assert_int_eq(weft_group_spawn(&g, overlap_member, NULL), 0);
	ck_assert_int_eq(weft_spawn(&s1, overlap_stop, &g), 0);
	wait_waiters(&g.idle.wq, 1);
	wait_waiters(&overlap_gate.wq, 1);
	/* Hold the group's lock while the member comes to account for
	 * itself, then s2, then the spawner: they queue in that order. */
	ck_assert_int_eq(weft_lock_acquire(&g.lock), 0);
	ck_assert_int_eq(weft_event_set(&overlap_gate), 1);
	wait_waiters(&g.lock.wq, 1);
	ck_assert_int_eq(weft_spawn(&s2, overlap_stop, &g), 0);
	wait_waiters(&g.lock.wq, 2);
	ck_assert_int_eq(weft_spawn(&x, overlap_spawn, &g), 0);
	wait_waiters(&g.lock.wq, 3);
	ck_assert_int_eq(weft_lock_release(&g.lock), 0);
	ck_assert_int_eq(weft_join(s2, &res), 0);
	ck_assert_int_eq((intptr_t)res, 0);
	ck_assert_int_eq(weft_join(x, &res), 0);
	ck_assert_int_eq((intptr_t)res, 0); /* the next round's member */
	/* s1 is over, not waiting for it (a deadline fails, not hangs). */
	struct weft_deadline d;
	ck_assert_int_eq(weft_deadline_enter(&d, 10 * WEFT_SEC), 0);
	int joined = weft_join(s1, &res);
	weft_deadline_leave(&d);
	ck_assert_int_eq(joined, 0);
	ck_assert_int_eq((intptr_t)res, 0);
	ck_assert_int_eq(weft_group_running(&g), 1);
	/* Its member reports its cancellation as a failure. */
	ck_assert_int_eq(weft_group_shutdown(&g), -ECANCELED);
	/* And the group takes members again once both stops are over. */
	ck_assert_int_eq(weft_group_spawn(&g, nap, NULL), 0);
	ck_assert_int_eq(weft_group_wait(&g), 0);
	return NULL;
}

START_TEST(overlapping_stops)
{
	weft_test_run(overlap_main, NULL, 1);
	weft_test_run(overlap_main, NULL, 2);
}
END_TEST

/* ---- a wait and a shutdown at once ------------------------------------- */

/* A task waits on a group while a shutdown (from a plain thread, or from
 * another task) stops it, either first; a member fails during the round.
 * Both calls say the failure, as every Wait of Go's errgroup returns its
 * error: the failure went to the one that took the group's lock first and
 * the other said 0. */
static struct weft_event both_gate = WEFT_EVENT_INIT;

/* Shielded, so the stop does not end it early: fails once let go. */
static void *fails_when_let_go(void *arg)
{
	struct weft_shield s;

	(void)arg;
	ck_assert_int_eq(weft_shield_enter(&s), 0);
	ck_assert_int_eq(weft_event_wait(&both_gate), 0);
	ck_assert_int_eq(weft_shield_leave(&s), 0);
	return WEFT_ERR_PTR(-EIO);
}

static void *both_wait(void *arg)
{
	return (void *)(intptr_t)weft_group_wait(arg);
}

static void *both_shutdown(void *arg)
{
	return (void *)(intptr_t)weft_group_shutdown(arg);
}

static void *both_main(void *arg)
{
	for (int order = 0; order < 4; order++) {
		struct weft_group g = WEFT_GROUP_INIT(g);
		bool wait_first = order & 1, from_thread = order & 2;
		weft_task_t waiter, stopper;
		pthread_t th;
		void *wr, *sr;

		ck_assert_int_eq(weft_event_init(&both_gate), 0);
		ck_assert_int_eq(weft_group_spawn(&g, fails_when_let_go, NULL),
				 0);
		ck_assert_int_eq(weft_group_spawn(&g, wait_forever, NULL), 0);
		wait_waiters(&both_gate.wq, 1); /* shielded, at the gate */
		for (int k = 1; k <= 2; k++) {
			if (wait_first == (k == 1))
				ck_assert_int_eq(weft_spawn(&waiter, both_wait,
							    &g),
						 0);
			else if (from_thread)
				ck_assert_int_eq(pthread_create(&th, NULL,
								both_shutdown,
								&g),
						 0);
			else
				ck_assert_int_eq(weft_spawn(&stopper,
							    both_shutdown, &g),
						 0);
			wait_waiters(&g.idle.wq, k);
		}
		ck_assert_int_eq(weft_event_set(&both_gate), 1);
		ck_assert_int_eq(weft_join(waiter, &wr), 0);
		if (from_thread)
			ck_assert_int_eq(pthread_join(th, &sr), 0);
		else
			ck_assert_int_eq(weft_join(stopper, &sr), 0);
		ck_assert_msg((intptr_t)wr == -EIO && (intptr_t)sr == -EIO,
			      "order %d: wait %d, shutdown %d, want -EIO both",
			      order, (int)(intptr_t)wr, (int)(intptr_t)sr);
		/* The round is over: the next starts clean. */
		ck_assert_int_eq(weft_group_spawn(&g, nap, NULL), 0);
		ck_assert_int_eq(weft_group_wait(&g), 0);
		ck_assert_int_eq(weft_group_shutdown(&g), 0);
	}
	return NULL;
}

START_TEST(wait_and_shutdown_both_say_the_failure)
{
	weft_test_run(both_main, NULL, 1);
	weft_test_run(both_main, NULL, 2);
}
END_TEST

/* ---- a new round does not start under the last one's waiters ----------- */

static struct weft_event straggle_gate, straggle_late;
static int straggle_late_said = 1;

static void *straggle_member(void *arg)
{
	(void)arg;
	ck_assert_int_eq(weft_event_wait(&straggle_gate), 0);
	return NULL;
}

static void *straggle_late_member(void *arg)
{
	(void)arg;
	straggle_late_said = weft_event_wait(&straggle_late);
	return NULL;
}

static void *straggle_spawn(void *arg)
{
	return (void *)(intptr_t)weft_group_spawn(arg, straggle_late_member,
						  NULL);
}

/* A waiter cancelled just before its round ends still has to take the
 * group's lock again; a spawn that got the lock first, every member of
 * the round returned and the other waiter told so, used to start the next
 * round under it: the cancelled waiter's stop then cancelled the new
 * member, and the other waiter, told the group was empty, waited for that
 * member too (it would say that member's failure). The spawn now lets the
 * round's waiters leave first. The test holds the group's lock to line
 * them up on it: the member, the spawn, then the cancelled waiter. */
static void *straggle_main(void *arg)
{
	struct weft_group g = WEFT_GROUP_INIT(g);
	weft_task_t a, b, n;
	void *ra, *rb, *rn;

	(void)arg;
	ck_assert_int_eq(weft_event_init(&straggle_gate), 0);
	ck_assert_int_eq(weft_event_init(&straggle_late), 0);
	ck_assert_int_eq(weft_group_spawn(&g, straggle_member, NULL), 0);
	ck_assert_int_eq(weft_spawn(&a, both_wait, &g), 0);
	ck_assert_int_eq(weft_spawn(&b, both_wait, &g), 0);
	wait_waiters(&g.idle.wq, 2);
	wait_waiters(&straggle_gate.wq, 1);

	ck_assert_int_eq(weft_lock_acquire(&g.lock), 0);
	ck_assert_int_eq(weft_event_set(&straggle_gate), 1);
	wait_waiters(&g.lock.wq, 1); /* the member, to account for itself */
	ck_assert_int_eq(weft_spawn(&n, straggle_spawn, &g), 0);
	wait_waiters(&g.lock.wq, 2);
	ck_assert_int_eq(weft_cancel(b), 0);
	wait_waiters(&g.lock.wq, 3); /* b, off the condition */
	ck_assert_int_eq(weft_lock_release(&g.lock), 0);

	ck_assert_int_eq(weft_join(n, &rn), 0);
	ck_assert_int_eq((int)(intptr_t)rn, 0);
	ck_assert_int_eq(weft_join(b, &rb), 0);
	ck_assert_int_eq((int)(intptr_t)rb, -ECANCELED);
	ck_assert_int_eq(weft_join(a, &ra), 0); /* not waiting for the new */
	ck_assert_int_eq((int)(intptr_t)ra, 0);
	ck_assert_int_ge(weft_event_set(&straggle_late), 0);
	ck_assert_int_eq(weft_group_wait(&g), 0);
	ck_assert_int_eq(straggle_late_said, 0); /* not cancelled */
	return NULL;
}

START_TEST(new_round_waits_for_the_last_waiters)
{
	weft_test_run(straggle_main, NULL, 1);
	weft_test_run(straggle_main, NULL, 2);
}
END_TEST

/* ---- cancel, plain threads, bad input ----------------------------------- */

static struct weft_group shared = WEFT_GROUP_INIT(shared);

static void *thread_body(void *arg)
{
	for (int i = 0; i < 5; i++)
		ck_assert_int_eq(weft_group_spawn(&shared, nap, (void *)1), 0);
	return NULL;
}

static void *misc_main(void *arg)
{
	reset_counts();
	struct weft_group g = WEFT_GROUP_INIT(g);
	for (int i = 0; i < 3; i++)
		ck_assert_int_eq(weft_group_spawn(&g, wait_forever, NULL), 0);
	weft_sleep(5 * WEFT_MSEC);
	ck_assert_int_eq(weft_group_cancel(&g), 0);
	ck_assert_int_eq(weft_group_wait(&g), 0); /* cancelled, not failed */
	ck_assert_int_eq(atomic_load(&saw_cancel), 3);

	/* Plain threads spawn into a group a task waits on. */
	reset_counts();
	pthread_t th[2];
	for (int i = 0; i < 2; i++)
		pthread_create(&th[i], NULL, thread_body, NULL);
	for (int i = 0; i < 2; i++)
		pthread_join(th[i], NULL);
	ck_assert_int_eq(weft_group_wait(&shared), 0);
	ck_assert_int_eq(atomic_load(&finished), 10);

	ck_assert_int_eq(weft_group_init(NULL), -EINVAL);
	ck_assert_int_eq(weft_group_spawn(NULL, nap, NULL), -EINVAL);
	ck_assert_int_eq(weft_group_spawn(&g, NULL, NULL), -EINVAL);
	ck_assert_int_eq(weft_group_cancel(NULL), -EINVAL);
	ck_assert_int_eq(weft_group_wait(NULL), -EINVAL);
	return NULL;
}

START_TEST(cancel_threads_and_bad_input)
{
	weft_test_run(misc_main, NULL, 2);
	struct weft_group g = WEFT_GROUP_INIT(g);
	ck_assert_int_eq(weft_group_spawn(&g, nap, NULL), -ESHUTDOWN);
	ck_assert_int_eq(weft_group_wait(&g), 0);
}
END_TEST

/* A group that was never initialised (zero-filled, a common C idiom) or
 * was copied after init is -EINVAL for every call. A wait on one used to
 * fail at once, forever, holding the group's lock: weft_group_wait then
 * spun and its members could never finish. */
static void *uninit_main(void *arg)
{
	static struct weft_group zeroed;
	struct weft_group g = WEFT_GROUP_INIT(g), copy;

	ck_assert_int_eq(weft_group_spawn(&zeroed, nap, NULL), -EINVAL);
	ck_assert_int_eq(weft_group_wait(&zeroed), -EINVAL);
	ck_assert_int_eq(weft_group_shutdown(&zeroed), -EINVAL);
	ck_assert_int_eq(weft_group_cancel(&zeroed), -EINVAL);
	ck_assert_int_eq(weft_group_running(&zeroed), -EINVAL);
	ck_assert_int_eq(weft_group_failures(&zeroed), -EINVAL);
	memcpy(&copy, &g, sizeof(g));
	ck_assert_int_eq(weft_group_spawn(&copy, nap, NULL), -EINVAL);
	ck_assert_int_eq(weft_group_wait(&copy), -EINVAL);
	ck_assert_int_eq(weft_group_spawn(&g, nap, NULL), 0);
	ck_assert_int_eq(weft_group_wait(&g), 0);
	return NULL;
}

START_TEST(uninitialised_group)
{
	weft_test_run(uninit_main, NULL, 2);
}
END_TEST

/* ---- many members, failing at random, across workers -------------------- */

static atomic_long many_ran;

static void *many_member(void *arg)
{
	atomic_fetch_add(&many_ran, 1);
	if ((intptr_t)arg % 997 == 996)
		return WEFT_ERR_PTR(-EIO);
	weft_yield();
	return NULL;
}

static void *many_main(void *arg)
{
	long n = SCALED(20000);
	struct weft_group g = WEFT_GROUP_INIT(g);
	atomic_store(&many_ran, 0);
	long spawned = 0;
	for (intptr_t i = 0; i < n; i++) {
		int r = weft_group_spawn(&g, many_member, (void *)i);
		ck_assert(r == 0 || r == -ECANCELED);
		spawned += r == 0;
	}
	int r = weft_group_wait(&g);
	ck_assert(r == 0 || r == -EIO);
	ck_assert_int_eq(r, n >= 997 ? -EIO : 0);
	ck_assert_int_eq(atomic_load(&many_ran), spawned);
	return NULL;
}

START_TEST(many_members)
{
	weft_test_run(many_main, NULL, 0);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("sync_group");
	TCase *tc = tcase_create("group");
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, waits_for_all);
	tcase_add_test(tc, first_failure_cancels_the_rest);
	tcase_add_test(tc, cancelled_waiter_waits_for_members);
	tcase_add_test(tc, failure_comes_before_the_waiters_cancel);
	tcase_add_test(tc, failure_during_the_stop_wins);
	tcase_add_test(tc, member_waiting_on_its_group);
	tcase_add_test(tc, no_members_join_a_cancelled_wait);
	tcase_add_test(tc, cancel_threads_and_bad_input);
	tcase_add_test(tc, many_members);
	tcase_add_test(tc, uninitialised_group);
	tcase_add_test(tc, overlapping_stops);
	tcase_add_test(tc, wait_and_shutdown_both_say_the_failure);
	tcase_add_test(tc, new_round_waits_for_the_last_waiters);
	suite_add_tcase(s, tc);
	return weft_test_main(s);
}
