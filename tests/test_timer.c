/* Timers (runtime/timer.c) as tasks see them: sleep accuracy and ordering,
 * deadlines on sleeps, and a hundred thousand concurrent sleepers. */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "test_io_util.h"
#include "runtime/steal.h"
#include "runtime/task.h"
#include "runtime/worker.h"
#include "sync_test_util.h"
#include "test_preps.h"

/* Sleeps ms and returns how long that took, which is never less. A
 * deadline far past it turns a sleep that never ends into a failure. */
static int64_t timed_sleep(long ms)
{
	struct weft_deadline d;
	int64_t t0 = weft_now();

	ck_assert_int_eq(weft_deadline_enter(&d, (ms + 10000) * WEFT_MSEC), 0);
	ck_assert_int_eq(weft_sleep(ms * WEFT_MSEC), 0);
	ck_assert_int_eq(weft_deadline_leave(&d), 0);
	int64_t el = weft_now() - t0;
	ck_assert_msg(el >= ms * WEFT_MSEC, "slept %lld ns < %ld ms",
		      (long long)el, ms);
	return el;
}

/* A loaded machine may preempt the worker past a sleep's end (122 ms for
 * 20 once): a sleep is late only if it is on every try. */
#define ACCURACY_TRIES 3

static void *accuracy_main(void *arg)
{
	static const long ms[] = { 1, 5, 20, 50, 120 };
	int64_t worst = 0;

	for (size_t i = 0; i < sizeof(ms) / sizeof(ms[0]); i++) {
		int64_t late = (ms[i] + IO_SLACK_MS) * WEFT_MSEC,
			el = INT64_MAX;

		for (int try = 0; try < ACCURACY_TRIES && el >= late; try++) {
			int64_t e = timed_sleep(ms[i]);
			el = e < el ? e : el;
		}
		ck_assert_msg(el < late, "slept %lld ns for %ld ms, %d times",
			      (long long)el, ms[i], ACCURACY_TRIES);
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
	atomic_bool late; /* a sleeper began after its time */
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

	/* A loaded machine may start a sleeper past its time: it then wakes
	 * at once, in no order, and the round is run again. */
	if (at <= weft_now())
		atomic_store(&s->o->late, true);
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
	if (atomic_load(&o.late))
		return NULL; /* a sleeper began late: the round is run again */
	/* A gap apart, they wake in order. Timers live on each worker's own
	 * heap, so a worker thread the OS preempts for longer than a gap can
	 * let a neighbour pass: allow arg such swaps, no more. */
	int inversions = 0;
	for (int i = 1; i < ORDER_N; i++)
		if (o.woke[i] < o.woke[i - 1])
			inversions++;
	/* A worker that wakes later than a gap fires several timers at once:
	 * they resume in order through its ready queue, but another worker
	 * may steal some of them and run them first. The gap is wide so that
	 * only a badly overloaded machine sees that. */
	fprintf(stderr, "%d workers: %d sleepers out of order\n",
		weft_workers(), inversions);
	return (void *)(intptr_t)(inversions <= (int)(intptr_t)arg);
}

/* Runs order_main until a round in which every sleeper began in time and
 * no more than swaps woke out of order. As for accuracy's sleeps, out of
 * order only if it is so in every round: a sleeper woke before one due
 * earlier only if that one woke a gap late, and a loaded machine can keep
 * a worker off its CPU that long more than swaps times in a round (3
 * where 2 are allowed: ThreadSanitizer on a loaded 2-CPU machine). */
static void order_rounds(intptr_t swaps, int workers)
{
	bool ok = false;

	for (int round = 0; round < 5 && !ok; round++)
		ok = weft_test_run(order_main, (void *)swaps, workers);
	ck_assert_msg(ok,
		      "more than %d sleepers out of order, or one begun late, "
		      "in 5 rounds",
		      (int)swaps);
}

START_TEST(ordering)
{
	/* One worker has one heap: only a stall longer than a gap (a badly
	 * overloaded machine) lets two timers fire together. */
	order_rounds(1, 1);
	order_rounds(2, 2);
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

	/* Late only if it is on every try, as in accuracy_main: one
	 * preemption of the worker can outlast the slack. */
	for (int try = 1;; try++) {
		t0 = weft_now();
		ck_assert_int_eq(weft_deadline_enter(&d, 20 * WEFT_MSEC), 0);
		ck_assert_int_eq(weft_sleep(10 * WEFT_SEC), -ETIMEDOUT);
		ck_assert_int_eq(weft_deadline_leave(&d), 1);
		ck_assert_int_ge(io_ms_since(t0), 19);
		if (io_ms_since(t0) < 20 + IO_SLACK_MS)
			break;
		ck_assert_msg(try < ACCURACY_TRIES,
			      "the deadline ended the sleep after %ld ms, %d "
			      "times",
			      io_ms_since(t0), ACCURACY_TRIES);
	}

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

	/* The same for a cancel's wake: slow only if it is on every try. */
	for (int try = 1;; try++) {
		ck_assert_int_eq(weft_spawn(&t, long_sleep, NULL), 0);
		weft_sleep(5 * WEFT_MSEC);
		t0 = weft_now();
		ck_assert_int_eq(weft_cancel(t), 0);
		ck_assert_int_eq(weft_join(t, &res), 0);
		ck_assert_int_eq((intptr_t)res, -ECANCELED);
		if (io_ms_since(t0) < IO_SLACK_MS)
			break;
		ck_assert_msg(
			try < ACCURACY_TRIES,
			"the cancelled sleep ended after %ld ms, %d times",
			io_ms_since(t0), ACCURACY_TRIES);
	}
	return NULL;
}

START_TEST(deadline)
{
	weft_test_run(deadline_main, NULL, 2);
}
END_TEST

/* ---- a sleep and a deadline at one instant ------------------------------- */

/* time.h's tie rule: a sleep that ends at the deadline's very instant
 * returns 0, as a select's timeout case due then wins (test_sync_select's
 * timeout_ties_deadline); a deadline before it, by however little, is a
 * timeout, and so is one that had passed when the sleep was called. */
static void *tie_main(void *arg)
{
	struct weft_task *self = weft__task_current();
	struct weft_deadline d;
	int64_t at;

	/* The tie needs the call made before at. A loaded machine can
	 * preempt the task for the 20 ms between reading the clock and the
	 * call, which then finds the deadline passed: a timeout by the rule
	 * above, taken without a wait (wait_seq, which each wait that
	 * begins bumps, stays), and no tie at all. That round is run again;
	 * a sleep that waited must return 0. */
	for (int round = 1;; round++) {
		at = weft_now() + 20 * WEFT_MSEC;
		ck_assert_int_eq(weft_deadline_enter_at(&d, at), 0);
		uint64_t waits = self->wait_seq;
		int r = weft_sleep_until(at);
		ck_assert_int_ge(weft_now(), at);
		ck_assert_int_eq(weft_deadline_leave(&d), 1);
		if (r == 0)
			break;
		ck_assert_msg(r == -ETIMEDOUT && self->wait_seq == waits,
			      "the sleep to the deadline's instant returned %d "
			      "after a wait",
			      r);
		ck_assert_msg(round < 5, "5 rounds called the sleep late");
	}

	at = weft_now() + 20 * WEFT_MSEC;
	ck_assert_int_eq(weft_deadline_enter_at(&d, at), 0);
	ck_assert_int_eq(weft_sleep_until(at + 1), -ETIMEDOUT);
	ck_assert_int_eq(weft_deadline_leave(&d), 1);

	at = weft_now() - 1;
	ck_assert_int_eq(weft_deadline_enter_at(&d, at), 0);
	ck_assert_int_eq(weft_sleep_until(at), -ETIMEDOUT);
	ck_assert_int_eq(weft_deadline_leave(&d), 1);
	return NULL;
}

START_TEST(sleep_ties_deadline)
{
	weft_test_run(tie_main, NULL, 1);
}
END_TEST

/* ---- one scope, one task inside it at a time ----------------------------- */

/*
 * A struct weft_deadline entered again before it is left would be
 * corrupted: the second enter overwrites its links, and the first task's
 * leave then grafts the second's chain onto its own. So a second enter is
 * refused, by the same task or another. A: an outer scope, then d, in a
 * struct filled with garbage as an uninitialised one may be; B tries d
 * while A is inside. A's scope must be whole: its deadline ends its sleep,
 * its leave finds it passed and the outer scope next.
 */
struct shared_scope {
	struct weft_deadline d;
	struct weft_event inside, tried, left;
	int r;
};

static void *scope_intruder(void *arg)
{
	struct shared_scope *s = arg;

	ck_assert_int_eq(weft_event_wait(&s->inside), 0);
	s->r = weft_deadline_enter(&s->d, 60 * WEFT_SEC);
	if (!s->r)
		weft_deadline_leave(&s->d);
	ck_assert_int_ge(weft_event_set(&s->tried), 0);
	ck_assert_int_eq(weft_event_wait(&s->left), 0);
	/* Left by A now: B may enter it. */
	ck_assert_int_eq(weft_deadline_enter(&s->d, 60 * WEFT_SEC), 0);
	ck_assert_int_eq(weft_deadline_leave(&s->d), 0);
	return NULL;
}

static void *scope_main(void *arg)
{
	struct shared_scope s;
	struct weft_deadline outer;
	weft_task_t b;

	memset(&s.d, 0xa5, sizeof(s.d));
	ck_assert_int_eq(weft_event_init(&s.inside), 0);
	ck_assert_int_eq(weft_event_init(&s.tried), 0);
	ck_assert_int_eq(weft_event_init(&s.left), 0);
	ck_assert_int_eq(weft_spawn(&b, scope_intruder, &s), 0);
	ck_assert_int_eq(weft_deadline_enter(&outer, 60 * WEFT_SEC), 0);
	ck_assert_int_eq(weft_deadline_enter(&s.d, 300 * WEFT_MSEC), 0);
	ck_assert_int_eq(weft_deadline_enter(&s.d, WEFT_SEC), -EINVAL);
	ck_assert_int_ge(weft_event_set(&s.inside), 0);
	/* Shielded from d's 300 ms, which are the sleep's below: B, on the
	 * other worker, may take longer to answer on a loaded machine, and
	 * the wait would time out. Past by then, d still ends the sleep. */
	struct weft_shield sh;
	ck_assert_int_eq(weft_shield_enter(&sh), 0);
	ck_assert_int_eq(weft_event_wait(&s.tried), 0);
	ck_assert_int_eq(weft_shield_leave(&sh), 0);
	ck_assert_int_eq(s.r, -EINVAL);
	ck_assert_int_eq(weft_sleep(60 * WEFT_SEC), -ETIMEDOUT);
	ck_assert_int_eq(weft_deadline_leave(&s.d), 1);
	ck_assert_int_eq(weft_deadline_leave(&outer), 0);
	/* Left, it may be entered again. */
	ck_assert_int_eq(weft_deadline_enter(&s.d, 60 * WEFT_SEC), 0);
	ck_assert_int_eq(weft_deadline_leave(&s.d), 0);
	ck_assert_int_ge(weft_event_set(&s.left), 0);
	ck_assert_int_eq(weft_join(b, NULL), 0);
	return NULL;
}

START_TEST(scope_one_task)
{
	weft_test_run(scope_main, NULL, 2);
}
END_TEST

/* ---- a timer far ahead leaves the monitor asleep ------------------------ */

/*
 * The monitor looks at the workers while one has a timer due soon (it
 * fires those of a worker a task keeps); an entry an hour ahead, here a
 * disarmed one that stays in its heap until then, must not keep it
 * looking. Counted over 200 ms, with nothing else to watch: the main task
 * keeps its worker in a plain sleep, arming nothing.
 */
static void *far_sleeper(void *arg)
{
	return (void *)(intptr_t)weft_sleep(3600 * WEFT_SEC);
}

static uint64_t monitor_wakeups(void)
{
	return atomic_load(&atomic_load(&weft__rt)->monitor.wakeups);
}

static void *far_main(void *arg)
{
	weft_task_t t;
	void *res;

	ck_assert_int_eq(weft_spawn(&t, far_sleeper, NULL), 0);
	while (!atomic_load(&t.task->timer.armed))
		ck_assert_int_eq(weft_yield(), 0);
	ck_assert_int_eq(weft_cancel(t), 0);
	ck_assert_int_eq(weft_join(t, &res), 0);
	ck_assert_int_eq((intptr_t)res, -ECANCELED);
	/* The monitor the arm woke settles: it looks a few times, finds
	 * nothing to watch and disarms. Waited for, not slept on: a monitor
	 * thread kept off its CPU on a loaded machine may take longer than
	 * a set sleep (50 ms, before), and its last looks would be counted
	 * below. One that never disarms is counted all the same, after 2 s. */
	for (int i = 0;
	     i < 2000 &&
	     atomic_load(&atomic_load(&weft__rt)->monitor.state) != MON_IDLE;
	     i++)
		usleep(1000);
	uint64_t before = monitor_wakeups();
	usleep(200 * 1000);
	int woke = (int)(monitor_wakeups() - before);
	fprintf(stderr, "monitor woke %d times in 200 ms\n", woke);
	ck_assert_int_lt(woke, 5); /* looking every 2 ms: 100 */
	return NULL;
}

START_TEST(far_timer_monitor_sleeps)
{
	weft_test_run(far_main, NULL, 2);
}
END_TEST

/*
 * A timer due at the clock's very end (a sleep until INT64_MAX - 1) is the
 * one a worker parks for. With an operation in its ring, an io_uring
 * worker parks in the ring, handing the kernel the time to that timer; a
 * kernel that adds it to its own, later, clock reading without saturating
 * (Linux 6.1's io_cqring_wait) wraps into the past and returns at once,
 * and the worker would spin, park after park. Counted on one worker over
 * 100 ms, while the main task waits for a plain thread and another task's
 * io_uring timeout (no such op under epoll) is in the ring.
 */
static void *end_sleeper(void *arg)
{
	return (void *)(intptr_t)weft_sleep_until(INT64_MAX - 1);
}

static void *ring_holder(void *arg)
{
	struct __kernel_timespec ts = { .tv_sec = 10 };

	return (void *)(intptr_t)weft_io_submit(-1, prep_timeout, &ts);
}

static void *set_later(void *arg)
{
	usleep(100 * 1000);
	ck_assert_int_ge(weft_event_set(arg), 0);
	return NULL;
}

static void *end_main(void *arg)
{
	struct weft_worker_metrics before, after;
	struct weft_event e;
	weft_task_t sleeper, holder;
	pthread_t th;
	void *res;

	ck_assert_int_eq(weft_event_init(&e), 0);
	ck_assert_int_eq(weft_spawn(&sleeper, end_sleeper, NULL), 0);
	ck_assert_int_eq(weft_spawn(&holder, ring_holder, NULL), 0);
	while (!atomic_load(&sleeper.task->timer.armed))
		ck_assert_int_eq(weft_yield(), 0);
	ck_assert_int_eq(weft_yield(), 0); /* the holder submits */
	ck_assert_int_eq(weft_worker_metrics(0, &before), 0);
	ck_assert_int_eq(pthread_create(&th, NULL, set_later, &e), 0);
	ck_assert_int_eq(weft_event_wait(&e), 0);
	ck_assert_int_eq(weft_worker_metrics(0, &after), 0);
	pthread_join(th, NULL);
	ck_assert_uint_lt(after.parks - before.parks, 50);
	ck_assert_int_eq(weft_cancel(sleeper), 0);
	ck_assert_int_eq(weft_join(sleeper, &res), 0);
	ck_assert_int_eq((intptr_t)res, -ECANCELED);
	weft_cancel(holder); /* ended already under epoll */
	ck_assert_int_eq(weft_join(holder, &res), 0);
	ck_assert_int_eq((intptr_t)res, weft_io_driver() == WEFT_IO_EPOLL
						? -EOPNOTSUPP
						: -ECANCELED);
	return NULL;
}

START_TEST(timer_at_clock_end_parks_little)
{
	weft_test_run(end_main, NULL, 1);
}
END_TEST

/* ---- a timer popped for one wait fires after the next began ------------- */

/*
 * A worker pops a due timer (taking it from the task), then fires it under
 * the task's wait_lock, and only if the wait it was armed for is still the
 * task's current one (its seq). Between the pop and the fire the task may
 * be notified, end that wait and begin another: firing then would time
 * out a wait that has no deadline. Forced: A and B wait on one worker with
 * the same deadline, so one pop takes both; a thread holds the lock of A's
 * event, so the worker stops in A's abort, before B's fire; meanwhile the
 * thread sets B's event and B, on the other worker, begins a second wait.
 * When the thread lets the worker go, B's old timer must leave the second
 * wait alone.
 */
struct stale_fire {
	int64_t at;
	struct weft_event e1, e2, e3;
	weft_task_t b;
	struct weft_task *ta, *tb; /* published for the thread */
	long a_res, b_first, b_second;
	bool hit;
};

static void *stale_b(void *arg)
{
	struct stale_fire *s = arg;
	struct weft_deadline d;

	ck_assert_int_eq(weft_deadline_enter_at(&d, s->at), 0);
	s->b_first = weft_event_wait(&s->e2);
	weft_deadline_leave(&d);
	ck_assert_int_eq(weft_deadline_enter(&d, 2 * WEFT_SEC),
			 0); /* bounds a bug's hang */
	s->b_second = weft_event_wait(&s->e3);
	weft_deadline_leave(&d);
	return NULL;
}

static void *stale_a(void *arg)
{
	struct stale_fire *s = arg;
	struct weft_deadline d;

	/* B runs next on this worker once A parks: their timers share
	 * the heap (checked, by the timers' owner, before relying on it). */
	ck_assert_int_eq(weft_spawn(&s->b, stale_b, s), 0);
	__atomic_store_n(&s->tb, s->b.task, __ATOMIC_RELEASE);
	ck_assert_int_eq(weft_deadline_enter_at(&d, s->at), 0);
	s->a_res = weft_event_wait(&s->e1);
	weft_deadline_leave(&d);
	return NULL;
}

static bool has_waiter(struct weft_waitq *q)
{
	weft__waitq_lock(q);
	bool r = q->head != NULL;
	weft__waitq_unlock(q);
	return r;
}

/* Polls ok(arg) every 100 us for up to ms. */
static bool poll_for(bool (*ok)(void *arg), void *arg, int ms)
{
	for (int i = 0; i < ms * 10; i++) {
		if (ok(arg))
			return true;
		usleep(100);
	}
	return false;
}

static bool both_waiting(void *arg)
{
	struct stale_fire *s = arg;

	return __atomic_load_n(&s->tb, __ATOMIC_ACQUIRE) &&
	       has_waiter(&s->e1.wq) && has_waiter(&s->e2.wq);
}

static bool both_popped(void *arg)
{
	struct stale_fire *s = arg;

	return !atomic_load(&s->ta->timer.armed) &&
	       !atomic_load(&s->tb->timer.armed);
}

static bool b_waits_again(void *arg)
{
	struct stale_fire *s = arg;

	return has_waiter(&s->e3.wq);
}

static void *stale_thread(void *arg)
{
	struct stale_fire *s = arg;

	if (!poll_for(both_waiting, s, 2000) ||
	    atomic_load(&s->ta->timer.owner) !=
		    atomic_load(&s->tb->timer.owner))
		goto out; /* not on one heap: both just time out */
	weft__waitq_lock(&s->e1.wq);
	if (poll_for(both_popped, s, 2000)) {
		/* The worker spins in A's abort; B's entry waits to fire. */
		ck_assert_int_eq(weft_event_set(&s->e2), 1);
		s->hit = poll_for(b_waits_again, s, 2000);
	}
	weft__waitq_unlock(&s->e1.wq);
	usleep(20000); /* the worker fires B's old timer */
out:
	ck_assert_int_ge(weft_event_set(&s->e3), 0);
	return NULL;
}

static void *stale_main(void *arg)
{
	bool hit = false;

	for (int round = 0; round < 10 && !hit; round++) {
		struct stale_fire s = { .at = weft_now() + 50 * WEFT_MSEC };
		weft_task_t a;
		pthread_t th;

		ck_assert_int_eq(weft_event_init(&s.e1), 0);
		ck_assert_int_eq(weft_event_init(&s.e2), 0);
		ck_assert_int_eq(weft_event_init(&s.e3), 0);
		ck_assert_int_eq(weft_spawn(&a, stale_a, &s), 0);
		s.ta = a.task;
		ck_assert_int_eq(pthread_create(&th, NULL, stale_thread, &s),
				 0);
		ck_assert_int_eq(weft_join(a, NULL), 0);
		ck_assert_int_eq(weft_join(s.b, NULL), 0);
		ck_assert_int_eq(pthread_join(th, NULL), 0);
		ck_assert_int_eq(s.a_res, -ETIMEDOUT);
		if (!s.hit)
			continue;
		hit = true;
		ck_assert_int_eq(s.b_first, 0);
		ck_assert_int_eq(s.b_second, 0);
	}
	ck_assert_msg(hit, "never stopped a worker between pop and fire");
	return NULL;
}

START_TEST(stale_fire_ignored)
{
	weft_test_run(stale_main, NULL, 2);
}
END_TEST

/* ---- ties the monitor fires for a kept worker ---------------------------- */

/*
 * The monitor fires the due timers of a worker that a task keeps (its
 * sleepers wake on other workers). Timers pop in batches of 64, each
 * fired outside the heap's lock, so once the keeping task let go the
 * worker's own firing could take the second batch while the monitor still
 * fired the first: sleepers of one worker with one deadline then woke out
 * of the order they slept in (time.h). Forced: M keeps worker Wm, X keeps
 * the other, and SPLIT_N tasks wait on Wm to one time: the first to arm
 * on an event under a deadline, the rest in sleeps. A thread holds the
 * event's lock, so the monitor stops in the first one's abort; M then
 * lets go, and, before the fix, Wm fired the second batch itself, whose
 * sleepers woke before the whole first one (the first armed woke 37th).
 * The thread lets the monitor go once one woke, or after 300 ms.
 */
#define SPLIT_N 100 /* more than timer.c's FIRE_BATCH: two pops */

static struct {
	int64_t at;
	struct weft_event ev;
	int worker;                      /* M's: Wm */
	atomic_int keeper;               /* X's worker, -1 until it runs */
	atomic_int armed, strays;        /* tasks armed, strays among them */
	atomic_int woken;                /* tasks woken */
	struct weft_task *_Atomic first; /* the one that waits on ev */
	atomic_bool stop, held;
	atomic_int order[SPLIT_N]; /* arming ranks, in waking order */
} split;

static void *split_keeper(void *arg) /* X */
{
	int64_t end = weft_now() + 10 * WEFT_SEC;

	(void)arg;
	atomic_store(&split.keeper, weft__self()->id);
	while (!atomic_load(&split.stop) &&
	       atomic_load(&split.woken) < SPLIT_N && weft_now() < end)
		weft__cpu_relax();
	return NULL;
}

static int split_wait_event(void)
{
	struct weft_deadline d;

	atomic_store(&split.first, weft__task_current());
	ck_assert_int_eq(weft_deadline_enter_at(&d, split.at), 0);
	int r = weft_event_wait(&split.ev);

	weft_deadline_leave(&d);
	return r == -ETIMEDOUT ? 0 : r;
}

static void *split_sleeper(void *arg)
{
	(void)arg;
	/* A stray: not on Wm, or begun too late to arm a timer. */
	if (weft__self()->id != split.worker || weft_now() >= split.at)
		atomic_fetch_add(&split.strays, 1);
	/* Ranked as armed: the sleepers run one at a time on Wm. */
	int rank = atomic_fetch_add(&split.armed, 1);
	int r = rank ? weft_sleep_until(split.at) : split_wait_event();

	atomic_store(&split.order[atomic_fetch_add(&split.woken, 1)], rank);
	return (void *)(intptr_t)r;
}

static bool split_all_wait(void *arg)
{
	(void)arg;
	return atomic_load(&split.armed) == SPLIT_N && has_waiter(&split.ev.wq);
}

static bool split_first_popped(void *arg)
{
	(void)arg;
	return !atomic_load(&atomic_load(&split.first)->timer.armed);
}

static bool split_one_woke(void *arg)
{
	(void)arg;
	return atomic_load(&split.woken) > 0;
}

static void *split_thread(void *arg)
{
	(void)arg;
	if (poll_for(split_all_wait, NULL, 2000)) {
		weft__waitq_lock(&split.ev.wq);
		/* M keeps Wm: the monitor pops the first batch, and stops
		 * in the first one's abort. */
		if (poll_for(split_first_popped, NULL, 2000)) {
			atomic_store(&split.held, true);
			poll_for(split_one_woke, NULL, 300);
		}
		weft__waitq_unlock(&split.ev.wq);
	}
	atomic_store(&split.held, true); /* M's spin ends */
	return NULL;
}

/* Spins, keeping the worker, until *flag. */
static void split_spin(atomic_bool *flag)
{
	while (!atomic_load(flag))
		weft__cpu_relax();
}

static bool split_keeper_elsewhere(void)
{
	int64_t end = weft_now() + 2 * WEFT_SEC;

	while (atomic_load(&split.keeper) < 0 && weft_now() < end)
		weft__cpu_relax();
	return atomic_load(&split.keeper) >= 0 &&
	       atomic_load(&split.keeper) != weft__self()->id;
}

/* One try; returns whether the scene was set (then it checked the order). */
static void *split_main(void *arg)
{
	weft_task_t x, s[SPLIT_N];
	pthread_t th;
	bool scene;

	(void)arg;
	atomic_store(&split.keeper, -1);
	ck_assert_int_eq(weft_event_init(&split.ev), 0);
	split.worker = weft__self()->id;
	ck_assert_int_eq(weft_spawn(&x, split_keeper, NULL), 0);
	scene = split_keeper_elsewhere();
	split.at = weft_now() +
		   (WEFT_TEST_SCALE >= 100 ? 100 : 1000) * WEFT_MSEC;
	for (int i = 0; i < SPLIT_N; i++)
		ck_assert_int_eq(weft_spawn(&s[i], split_sleeper, NULL), 0);
	ck_assert_int_eq(pthread_create(&th, NULL, split_thread, NULL), 0);
	while (atomic_load(&split.armed) < SPLIT_N)
		ck_assert_int_eq(weft_yield(), 0);
	scene = scene && !atomic_load(&split.strays) &&
		weft__self()->id == split.worker;
	split_spin(&split.held);
	for (int i = 0; i < SPLIT_N; i++) {
		void *r;

		ck_assert_int_eq(weft_join(s[i], &r), 0);
		ck_assert_int_eq((intptr_t)r, 0);
	}
	atomic_store(&split.stop, true);
	ck_assert_int_eq(weft_join(x, NULL), 0);
	ck_assert_int_eq(pthread_join(th, NULL), 0);
	/* The first armed wakes first. Not the whole order: the monitor's
	 * wakes go through the global queue, whose batches a worker's turn
	 * for it (runq.h) may run before the rest of an earlier one. */
	ck_assert_msg(!scene || split.order[0] == 0,
		      "the task armed %d woke first", split.order[0]);
	return (void *)scene;
}

START_TEST(monitor_fires_ties_in_order)
{
	bool scene = false;

	for (int tries = 0; !scene && tries < 5; tries++) {
		memset(&split, 0, sizeof(split));
		scene = weft_test_run(split_main, NULL, 2) != NULL;
	}
	ck_assert_msg(scene, "the scene was never set");
}
END_TEST

/*
 * The same monitor, with sleepers due one after the other: A waits on Wm
 * to ta, B to tb, 20 ms later. M keeps Wm until the monitor fired A and B
 * is due, then lets go: Wm runs some short tasks, and between them fires
 * B itself. Before the fix the monitor put A in the global queue, which a
 * worker takes after its ready queue, where B went: B woke first, unless
 * the global queue's turn (every 61 picks) came before, so the scene is
 * played EARLIER_ROUNDS times (B first in 2 to 3 rounds of 10 before).
 */
#define EARLIER_ROUNDS 20
#define EARLIER_SHORT 16 /* short tasks: Wm checks its timers once */

static struct {
	int64_t ta, tb;
	atomic_int n;
	atomic_bool b_first;
} earlier;

static void *earlier_sleeper(void *arg)
{
	int r = weft_sleep_until(arg ? earlier.tb : earlier.ta);

	if (!atomic_fetch_add(&earlier.n, 1))
		atomic_store(&earlier.b_first, arg != NULL);
	return (void *)(intptr_t)r;
}

static void *earlier_short(void *arg)
{
	return arg;
}

/* Whether t's timer is armed in worker id's heap. */
static bool armed_on(struct weft_task *t, int id)
{
	struct weft_runtime *rt = atomic_load(&weft__rt);

	return atomic_load(&t->timer.armed) &&
	       atomic_load(&t->timer.owner) == &rt->workers[id];
}

/* One round; returns whether the scene was set (then it checked). */
static void *earlier_main(void *arg)
{
	weft_task_t x, a, b, f[EARLIER_SHORT];
	int me = weft__self()->id;

	(void)arg;
	atomic_store(&split.keeper, -1);
	ck_assert_int_eq(weft_spawn(&x, split_keeper, NULL), 0);
	bool scene = split_keeper_elsewhere();
	earlier.ta = weft_now() +
		     (WEFT_TEST_SCALE >= 100 ? 100 : 500) * WEFT_MSEC;
	earlier.tb = earlier.ta + 20 * WEFT_MSEC;
	ck_assert_int_eq(weft_spawn(&a, earlier_sleeper, NULL), 0);
	ck_assert_int_eq(weft_spawn(&b, earlier_sleeper, &b), 0);
	while (weft_now() < earlier.ta &&
	       !(armed_on(a.task, me) && armed_on(b.task, me)))
		ck_assert_int_eq(weft_yield(), 0);
	scene = scene && armed_on(a.task, me) && armed_on(b.task, me) &&
		weft__self()->id == me;
	/* Keeps Wm until the monitor fired A and B is due. */
	while ((atomic_load(&a.task->timer.armed) ||
		weft_now() <= earlier.tb) &&
	       weft_now() < earlier.tb + 2 * WEFT_SEC)
		weft__cpu_relax();
	scene = scene && !atomic_load(&earlier.n);
	for (int i = 0; i < EARLIER_SHORT; i++)
		ck_assert_int_eq(weft_spawn(&f[i], earlier_short, NULL), 0);
	ck_assert_int_eq(weft_join(a, NULL), 0);
	ck_assert_int_eq(weft_join(b, NULL), 0);
	for (int i = 0; i < EARLIER_SHORT; i++)
		ck_assert_int_eq(weft_join(f[i], NULL), 0);
	atomic_store(&split.stop, true);
	ck_assert_int_eq(weft_join(x, NULL), 0);
	ck_assert_msg(!scene || !atomic_load(&earlier.b_first),
		      "B, due 20 ms after A, woke first");
	return (void *)scene;
}

START_TEST(monitor_fires_earlier_first)
{
	int scenes = 0;

	for (int round = 0; round < EARLIER_ROUNDS; round++) {
		memset(&split, 0, sizeof(split));
		memset(&earlier, 0, sizeof(earlier));
		scenes += weft_test_run(earlier_main, NULL, 2) != NULL;
	}
	ck_assert_msg(scenes, "the scene was never set");
}
END_TEST

/*
 * Ties the monitor fires, more than a worker takes from the global queue
 * at once (runq.c's INJECT_BATCH, 32): TIES_N tasks sleep on Wm to one
 * time while X keeps the other worker, Wo; X lets go, and M keeps Wm
 * until every sleeper woke, so the monitor fires them all into the global
 * queue and Wo alone runs them, one after another. They must wake in the
 * order they slept (time.h). Wo took them 32 at a time, and its global
 * queue's turn (every 61 picks) put the next 32 on top of the rest of the
 * batch before in its deque: they ran first (the task armed 64 woke
 * 58th).
 */
#define TIES_N 200

static struct {
	int64_t at;
	int worker; /* Wm */
	atomic_int armed, strays, woken;
	atomic_int order[TIES_N]; /* arming ranks, in waking order */
} ties;

static void *ties_sleeper(void *arg)
{
	(void)arg;
	if (weft__self()->id != ties.worker || weft_now() >= ties.at)
		atomic_fetch_add(&ties.strays, 1);
	/* Ranked as armed: the sleepers run one at a time on Wm. */
	int rank = atomic_fetch_add(&ties.armed, 1);
	int r = weft_sleep_until(ties.at);
	int k = atomic_fetch_add(&ties.woken, 1);

	atomic_store(&ties.order[k], rank);
	return (void *)(intptr_t)r;
}

/* One try; returns whether the scene was set (then it checked). */
static void *ties_main(void *arg)
{
	weft_task_t x, s[TIES_N];
	unsigned long reliefs = atomic_load(&weft__reliefs);
	bool scene;

	(void)arg;
	atomic_store(&split.keeper, -1);
	ties.worker = weft__self()->id;
	ck_assert_int_eq(weft_spawn(&x, split_keeper, NULL), 0);
	scene = split_keeper_elsewhere();
	ties.at = weft_now() +
		  (WEFT_TEST_SCALE >= 100 ? 100 : 1000) * WEFT_MSEC;
	for (int i = 0; i < TIES_N; i++)
		ck_assert_int_eq(weft_spawn(&s[i], ties_sleeper, NULL), 0);
	while (atomic_load(&ties.armed) < TIES_N)
		ck_assert_int_eq(weft_yield(), 0);
	scene = scene && !atomic_load(&ties.strays) &&
		weft__self()->id == ties.worker;
	atomic_store(&split.stop, true); /* X lets Wo go */
	int64_t end = ties.at + 5 * WEFT_SEC;
	while (atomic_load(&ties.woken) < TIES_N && weft_now() < end)
		weft__cpu_relax();
	/* A busy worker takes over the tasks of one it saw stalled for
	 * RELIEF_STALL_NS (steal.h), its ready queue's too, onto the top of
	 * its deque, over the rest of what it took before: not the order
	 * this proves (time.h says what holds then). So a run in which a
	 * relief was taken sets no scene; under the sanitizers, whose wakes
	 * are slow, one may never be set. */
	scene = scene && atomic_load(&ties.woken) == TIES_N &&
		atomic_load(&weft__reliefs) == reliefs;
	for (int i = 0; i < TIES_N; i++) {
		void *r;

		ck_assert_int_eq(weft_join(s[i], &r), 0);
		ck_assert_int_eq((intptr_t)r, 0);
	}
	ck_assert_int_eq(weft_join(x, NULL), 0);
	for (int i = 0; scene && i < TIES_N; i++)
		ck_assert_msg(ties.order[i] == i,
			      "the task armed %d woke %d-th", ties.order[i], i);
	return (void *)scene;
}

START_TEST(monitor_fires_many_ties_in_order)
{
	bool scene = false;

	for (int tries = 0; !scene && tries < 5; tries++) {
		memset(&split, 0, sizeof(split));
		memset(&ties, 0, sizeof(ties));
		scene = weft_test_run(ties_main, NULL, 2) != NULL;
	}
	ck_assert_msg(scene || WEFT_TEST_SCALE < 100,
		      "the scene was never set");
}
END_TEST

/* ---- compaction keeps the live timers ----------------------------------- */

/*
 * A wait that ends before its deadline leaves its timer in the heap, stale,
 * until it comes due or the heap, full and more than half stale, is
 * compacted. Compaction must keep the live timers: a sleeper whose entry
 * it dropped would never wake. One worker, one heap: COMPACT_WAITERS waits
 * with a far deadline end at once (their entries stale), then sleepers
 * fill the heap and push it past full, so it compacts under them.
 */
#define COMPACT_WAITERS 2000 /* > runtime/timer.c's COMPACT_MIN, below */
#define COMPACT_SLEEPERS 100 /* a cap of 2048, so fills it and more */

static struct weft_event compact_ev, compact_done;
static atomic_int compact_woke;

static void *compact_waiter(void *arg)
{
	struct weft_deadline d;

	ck_assert_int_eq(weft_deadline_enter(&d, 3600 * WEFT_SEC),
			 0); /* far: only armed */
	ck_assert_int_eq(weft_event_wait(&compact_ev), 0);
	weft_deadline_leave(&d);
	return NULL;
}

static void *compact_sleeper(void *arg)
{
	ck_assert_int_eq(weft_sleep(20 * WEFT_MSEC), 0);
	if (atomic_fetch_add(&compact_woke, 1) + 1 == COMPACT_SLEEPERS)
		ck_assert_int_ge(weft_event_set(&compact_done), 0);
	return NULL;
}

/* The bound on the sleepers, kept off the heap under test: a dropped
 * entry of main's would hang it rather than fail. 10 s for their 20 ms:
 * a sleeper whose entry was dropped never wakes, and a loaded machine
 * under a sanitizer should not count as one. */
static void *compact_watchdog(void *arg)
{
	for (int i = 0;
	     i < 10000 && atomic_load(&compact_woke) < COMPACT_SLEEPERS; i++)
		usleep(1000);
	ck_assert_int_ge(weft_event_set(&compact_done), 0);
	return NULL;
}

static void *compact_main(void *arg)
{
	static weft_task_t t[COMPACT_WAITERS];
	struct weft_spawn_opts opts = { .stack_size = WEFT_STACK_MIN };
	pthread_t dog;

	atomic_store(&compact_woke, 0);
	ck_assert_int_eq(weft_event_init(&compact_ev), 0);
	ck_assert_int_eq(weft_event_init(&compact_done), 0);
	for (int i = 0; i < COMPACT_WAITERS; i++)
		ck_assert_int_eq(weft_spawn_opts(&t[i], compact_waiter, NULL,
						 &opts),
				 0);
	wait_waiters(&compact_ev.wq, COMPACT_WAITERS);
	ck_assert_int_eq(weft_event_set(&compact_ev), COMPACT_WAITERS);
	for (int i = 0; i < COMPACT_WAITERS; i++)
		ck_assert_int_eq(weft_join(t[i], NULL), 0);
	/* Their entries are stale now; the sleepers' arms compact. */
	for (int i = 0; i < COMPACT_SLEEPERS; i++)
		ck_assert_int_eq(weft_spawn_opts(&t[i], compact_sleeper, NULL,
						 &opts),
				 0);
	ck_assert_int_eq(pthread_create(&dog, NULL, compact_watchdog, NULL), 0);
	ck_assert_int_eq(weft_event_wait(&compact_done), 0);
	int woke = atomic_load(&compact_woke);
	ck_assert_int_eq(woke, COMPACT_SLEEPERS);
	for (int i = 0; i < COMPACT_SLEEPERS; i++)
		ck_assert_int_eq(weft_join(t[i], NULL), 0);
	ck_assert_int_eq(pthread_join(dog, NULL), 0);
	return NULL;
}

START_TEST(compaction_keeps_live)
{
	weft_test_run(compact_main, NULL, 1);
}
END_TEST

/* ---- a wait whose timer cannot be armed was never seen ----------------- */

/*
 * weft__wait_begin_until publishes the task's wait, where cancellation
 * finds it and calls its abort, and arms its timer. When the arm fails
 * (-ENOMEM: the heap cannot grow) the call returns at once, so no abort
 * may have seen the wait: an abort may leave the waiter work to do first
 * (an io_uring operation's posts a cancellation to its ring, holding the
 * operation, which lives in the frame the failed call returns from: a
 * later operation there was cancelled by it, even in a shield). Forced,
 * on one worker with a full heap: the waiting task keeps the worker until
 * a thread holds the heap's lock; the thread then cancels the task while
 * it is in the arm, and lets the arm go on with realloc failing.
 *
 * realloc fails once when asked (fail_realloc.h); not under a sanitizer.
 */
#include "fail_realloc.h"
#ifdef CAN_FAIL_REALLOC

struct unarmed {
	struct weft_worker *w; /* the one worker */
	weft_task_t task;
	atomic_bool ready, locked;
	atomic_int aborts;
	int r;
};

static struct unarmed unarmed;

static void unarmed_abort(struct weft__waiter *w, int reason)
{
	atomic_fetch_add(&unarmed.aborts, 1);
	weft__waiter_settle(w, reason);
}

static void *unarmed_waiter(void *arg)
{
	struct weft__waiter w;

	/* Keeps the worker until the thread holds the heap's lock: the
	 * worker must not be the one waiting for it, in its timer check. */
	atomic_store(&unarmed.ready, true);
	while (!atomic_load(&unarmed.locked))
		usleep(100);
	weft__waiter_init(&w, unarmed_abort);
	unarmed.r = weft__wait_begin_until(&w, weft_now() + 3600 * WEFT_SEC);
	if (!unarmed.r)
		weft__wait_end(&w);
	return NULL;
}

static void *unarmed_cancel(void *arg)
{
	/* -ESRCH if it waited for the wait_lock and the task ended meanwhile. */
	int r = weft_cancel(unarmed.task);

	ck_assert(r == 0 || r == -ESRCH);
	return NULL;
}

static void *unarmed_thread(void *arg)
{
	pthread_t c;

	while (!atomic_load(&unarmed.ready))
		usleep(100);
	weft__spin_lock(&unarmed.w->timers.lock);
	atomic_store(&unarmed.locked, true);
	/* The task reaches the heap's lock. It arms holding its wait_lock,
	 * under which a cancel sets its flag: once it holds it, the cancel
	 * below comes after its check of the flag, however late it runs.
	 * Waited for, not slept on (50 ms before): with the worker kept off
	 * its CPU that long the cancel would come first, and the begin say
	 * -ECANCELED. At most 5 s: a wait published before its arm need not
	 * hold the lock there. */
	for (int i = 0;
	     i < 50000 &&
	     !__atomic_load_n(&unarmed.task.task->wait_lock, __ATOMIC_ACQUIRE);
	     i++)
		usleep(100);
	/* On another thread: it may wait for the task's wait_lock. */
	ck_assert_int_eq(pthread_create(&c, NULL, unarmed_cancel, NULL), 0);
	usleep(50000); /* the cancellation aborts the wait, if it sees it */
	atomic_store(&fail_realloc, true);
	weft__spin_unlock(&unarmed.w->timers.lock);
	ck_assert_int_eq(pthread_join(c, NULL), 0);
	return NULL;
}

static void *hour_sleeper(void *arg)
{
	return (void *)(intptr_t)weft_sleep(3600 * WEFT_SEC);
}

/* Whether w's heap is full: its next arm grows it. */
static bool heap_full(struct weft_worker *w)
{
	weft__spin_lock(&w->timers.lock);
	bool full = w->timers.cap && w->timers.len == w->timers.cap;
	weft__spin_unlock(&w->timers.lock);
	return full;
}

static void *unarmed_main(void *arg)
{
	static weft_task_t s[1024];
	int n = 0;
	pthread_t th;
	void *res;

	unarmed.w = weft__self();
	/* Sleepers, one armed at a time, until the heap is full. */
	while (!heap_full(unarmed.w)) {
		ck_assert_int_lt(n, 1024);
		ck_assert_int_eq(weft_spawn(&s[n++], hour_sleeper, NULL), 0);
		while (!atomic_load(&s[n - 1].task->timer.armed))
			ck_assert_int_eq(weft_yield(), 0);
	}
	ck_assert_int_eq(weft_spawn(&unarmed.task, unarmed_waiter, NULL), 0);
	ck_assert_int_eq(pthread_create(&th, NULL, unarmed_thread, NULL), 0);
	ck_assert_int_eq(weft_join(unarmed.task, NULL), 0);
	ck_assert_int_eq(pthread_join(th, NULL), 0);
	ck_assert_msg(!atomic_load(&fail_realloc), "the arm did not grow");
	ck_assert_int_eq(unarmed.r, -ENOMEM);
	int aborts = atomic_load(&unarmed.aborts);
	ck_assert_msg(!aborts, "an abort saw the wait that never began");
	for (int i = 0; i < n; i++) {
		ck_assert_int_eq(weft_cancel(s[i]), 0);
		ck_assert_int_eq(weft_join(s[i], &res), 0);
		ck_assert_int_eq((intptr_t)res, -ECANCELED);
	}
	return NULL;
}
#endif /* CAN_FAIL_REALLOC */

START_TEST(unarmed_wait_unseen)
{
#ifdef CAN_FAIL_REALLOC
	weft_test_run(unarmed_main, NULL, 1);
#endif
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
	tcase_add_test(tc, timer_at_clock_end_parks_little);
	tcase_add_test(tc, sleep_ties_deadline);
	tcase_add_test(tc, scope_one_task);
	tcase_add_test(tc, far_timer_monitor_sleeps);
	tcase_add_test(tc, stale_fire_ignored);
	tcase_add_test(tc, monitor_fires_ties_in_order);
	tcase_add_test(tc, monitor_fires_earlier_first);
	tcase_add_test(tc, monitor_fires_many_ties_in_order);
	tcase_add_test(tc, compaction_keeps_live);
	tcase_add_test(tc, unarmed_wait_unseen);
	tcase_add_test(tc, plain_thread);
	tcase_add_test(tc, many_sleepers);
	suite_add_tcase(s, tc);
	return io_test_main(s);
}
