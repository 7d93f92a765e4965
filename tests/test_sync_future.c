/* weft_future: a set/wait scenario as an order of events, results, errors,
 * cancellation, callbacks, futures completed by plain threads. */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include "sync_test_util.h"
#include "sync/waitq.h"

/* ---- a future set by one task, awaited by another ----------------------- */

static struct weft_future seed_f = WEFT_FUTURE_INIT;
static atomic_bool seed_waiter_started;

static void seed_cb(struct weft_future *f, void *arg)
{
	void *r;
	ck_assert_int_eq(weft_future_result(f, &r), 0);
	ck_assert_ptr_eq(r, (void *)42);
	log_add(arg);
}

static void *seed_setter(void *arg)
{
	log_add("setter start");
	weft_sleep(10 * WEFT_MSEC);
	/* A worker the OS stalls (a sanitizer build on a busy machine) can
	 * hold the waiter past those 10 ms: the scenario wants it waiting. */
	for (int i = 0; !atomic_load(&seed_waiter_started) && i < 10000; i++)
		weft_sleep(WEFT_MSEC);
	log_add("setter set");
	ck_assert_int_eq(weft_future_set_result(&seed_f, (void *)42), 0);
	log_add("setter end");
	return NULL;
}

static void *seed_waiter(void *arg)
{
	void *r = NULL;
	log_add("waiter start");
	atomic_store(&seed_waiter_started, true);
	ck_assert_int_eq(weft_future_wait(&seed_f, &r), 0);
	ck_assert_ptr_eq(r, (void *)42);
	log_add("waiter got");
	return NULL;
}

static void *seed_main(void *arg)
{
	struct weft_future_cb cb1, cb2;
	weft_task_t a, b;
	log_reset();
	atomic_store(&seed_waiter_started, false);
	weft_future_init(&seed_f);
	ck_assert_int_eq(weft_future_add_callback(&seed_f, &cb1, seed_cb,
						  "cb1"),
			 0);
	ck_assert_int_eq(weft_future_add_callback(&seed_f, &cb2, seed_cb,
						  "cb2"),
			 0);
	ck_assert_int_eq(weft_spawn(&a, seed_waiter, NULL), 0);
	ck_assert_int_eq(weft_spawn(&b, seed_setter, NULL), 0);
	ck_assert_int_eq(weft_join(a, NULL), 0);
	ck_assert_int_eq(weft_join(b, NULL), 0);
	ck_assert_int_eq(log_n, 7);
	ck_assert_int_lt(log_pos("waiter start"), log_pos("setter set"));
	ck_assert_int_lt(log_pos("setter set"), log_pos("cb1"));
	ck_assert_int_lt(log_pos("cb1"), log_pos("cb2"));
	ck_assert_int_lt(log_pos("cb2"), log_pos("setter end"));
	ck_assert_int_lt(log_pos("setter set"), log_pos("waiter got"));
	ck_assert_int_eq(weft_future_done(&seed_f), 1);
	/* Added after completion: runs at once. */
	struct weft_future_cb cb3;
	ck_assert_int_eq(weft_future_add_callback(&seed_f, &cb3, seed_cb,
						  "cb3"),
			 0);
	ck_assert_int_eq(log_pos("cb3"), 7);
	return NULL;
}

START_TEST(future_seed)
{
	weft_test_run(seed_main, NULL, 2);
	weft_test_run(seed_main, NULL, 1);
}
END_TEST

/* ---- outcomes and errors ------------------------------------------------ */

static void *fwaiter(void *arg)
{
	void *r = (void *)-1;
	long e = weft_future_wait(arg, &r);
	return e ? (void *)e : r;
}

static void *timed_fwaiter(void *arg)
{
	struct weft_deadline d;
	ck_assert_int_eq(weft_deadline_enter(&d, TIMED_WAITER_NS), 0);
	void *r = fwaiter(arg);
	weft_deadline_leave(&d);
	return r;
}

static void count_cb(struct weft_future *f, void *arg)
{
	(*(int *)arg)++;
}

static void *outcomes_main(void *arg)
{
	struct weft_future f;
	void *r;
	weft_task_t t[3];
	ck_assert_int_eq(weft_future_init(&f), 0);
	ck_assert_int_eq(weft_future_done(&f), 0);
	ck_assert_int_eq(weft_future_result(&f, &r), -EAGAIN);
	for (int i = 0; i < 2; i++)
		ck_assert_int_eq(weft_spawn(&t[i], fwaiter, &f), 0);
	ck_assert_int_eq(weft_spawn(&t[2], timed_fwaiter, &f), 0);
	wait_waiters(&f.wq, 3);
	ck_assert_int_eq(weft_join(t[2], &r), 0);
	ck_assert_int_eq((long)r, -ETIMEDOUT);
	ck_assert_int_eq(weft_cancel(t[1]), 0);
	ck_assert_int_eq(weft_join(t[1], &r), 0);
	ck_assert_int_eq((long)r, -ECANCELED);
	ck_assert_int_eq(weft_future_done(&f), 0); /* waiters left */
	ck_assert_int_eq(weft_future_set_error(&f, -EIO), 0);
	ck_assert_int_eq(weft_join(t[0], &r), 0);
	ck_assert_int_eq((long)r, -EIO);
	ck_assert_int_eq(weft_future_set_result(&f, NULL), -EINVAL);
	ck_assert_int_eq(weft_future_set_error(&f, -EIO), -EINVAL);
	ck_assert_int_eq(weft_future_cancel(&f), -EINVAL);
	ck_assert_int_eq(weft_future_wait(&f, &r), -EIO);
	ck_assert_int_eq(weft_future_result(&f, &r), -EIO);

	/* Cancel: waiters get -ECANCELED; callbacks run once. */
	int calls = 0;
	struct weft_future_cb cb, cb2;
	ck_assert_int_eq(weft_future_init(&f), 0);
	ck_assert_int_eq(weft_future_add_callback(&f, &cb, count_cb, &calls),
			 0);
	ck_assert_int_eq(weft_future_add_callback(&f, &cb2, count_cb, &calls),
			 0);
	ck_assert_int_eq(weft_future_remove_callback(&f, &cb2), 0);
	ck_assert_int_eq(weft_future_remove_callback(&f, &cb2), -ENOENT);
	ck_assert_int_eq(weft_spawn(&t[0], fwaiter, &f), 0);
	wait_waiters(&f.wq, 1);
	ck_assert_int_eq(weft_future_cancel(&f), 0);
	ck_assert_int_eq(weft_future_cancel(&f), -EINVAL);
	ck_assert_int_eq(weft_join(t[0], &r), 0);
	ck_assert_int_eq((long)r, -ECANCELED);
	ck_assert_int_eq(calls, 1);
	ck_assert_int_eq(weft_future_done(&f), 1);

	/* Result NULL pointer is allowed; errors must be negative. */
	ck_assert_int_eq(weft_future_init(&f), 0);
	ck_assert_int_eq(weft_future_set_error(&f, 0), -EINVAL);
	ck_assert_int_eq(weft_future_set_error(&f, 5), -EINVAL);
	ck_assert_int_eq(weft_future_set_error(&f, -4096), -EINVAL);
	ck_assert_int_eq(weft_future_set_result(&f, (void *)7), 0);
	ck_assert_int_eq(weft_future_wait(&f, NULL), 0);
	ck_assert_int_eq(weft_future_wait(&f, &r), 0);
	ck_assert_ptr_eq(r, (void *)7);

	ck_assert_int_eq(weft_future_init(NULL), -EINVAL);
	ck_assert_int_eq(weft_future_set_result(NULL, NULL), -EINVAL);
	ck_assert_int_eq(weft_future_set_error(NULL, -EIO), -EINVAL);
	ck_assert_int_eq(weft_future_cancel(NULL), -EINVAL);
	ck_assert_int_eq(weft_future_wait(NULL, &r), -EINVAL);
	ck_assert_int_eq(weft_future_result(NULL, &r), -EINVAL);
	ck_assert_int_eq(weft_future_done(NULL), -EINVAL);
	ck_assert_int_eq(weft_future_add_callback(NULL, &cb, count_cb, NULL),
			 -EINVAL);
	ck_assert_int_eq(weft_future_add_callback(&f, NULL, count_cb, NULL),
			 -EINVAL);
	ck_assert_int_eq(weft_future_add_callback(&f, &cb, NULL, NULL),
			 -EINVAL);
	ck_assert_int_eq(weft_future_remove_callback(NULL, &cb), -EINVAL);
	ck_assert_int_eq(weft_future_remove_callback(&f, NULL), -EINVAL);

	/* A callback added twice before it ran would cut off the ones after
	 * it: refused, and every callback runs once. */
	calls = 0;
	ck_assert_int_eq(weft_future_init(&f), 0);
	ck_assert_int_eq(weft_future_add_callback(&f, &cb, count_cb, &calls),
			 0);
	ck_assert_int_eq(weft_future_add_callback(&f, &cb2, count_cb, &calls),
			 0);
	ck_assert_int_eq(weft_future_add_callback(&f, &cb, count_cb, &calls),
			 -EINVAL);
	ck_assert_int_eq(weft_future_add_callback(&f, &cb2, count_cb, &calls),
			 -EINVAL);
	ck_assert_int_eq(weft_future_set_result(&f, NULL), 0);
	ck_assert_int_eq(calls, 2);
	/* Once it ran, it may be added again (to a done future: runs now). */
	ck_assert_int_eq(weft_future_add_callback(&f, &cb, count_cb, &calls),
			 0);
	ck_assert_int_eq(calls, 3);

	/* A cancelled task waiting on a pending future. */
	ck_assert_int_eq(weft_future_init(&f), 0);
	ck_assert_int_eq(weft_cancel(weft_current()), 0);
	ck_assert_int_eq(weft_future_wait(&f, &r), -ECANCELED);
	ck_assert_int_eq(weft_future_set_result(&f, (void *)1), 0);
	ck_assert_int_eq(weft_future_wait(&f, &r), 0); /* done: no wait */
	return NULL;
}

START_TEST(future_outcomes)
{
	weft_test_run(outcomes_main, NULL, 2);
}
END_TEST

/* ---- futures completed by plain threads --------------------------------- */

#define NFUT 64

static struct weft_future ffut[NFUT];

static void *completer(void *arg)
{
	for (long i = 0; i < NFUT; i++) {
		if (i % 3 == 0)
			usleep(50);
		weft_future_set_result(&ffut[i], (void *)(i + 1));
	}
	return NULL;
}

static void *foreign_main(void *arg)
{
	weft_task_t t[NFUT];
	pthread_t th;
	for (int i = 0; i < NFUT; i++) {
		weft_future_init(&ffut[i]);
		ck_assert_int_eq(weft_spawn(&t[i], fwaiter, &ffut[i]), 0);
	}
	pthread_create(&th, NULL, completer, NULL);
	for (long i = 0; i < NFUT; i++) {
		void *r;
		ck_assert_int_eq(weft_join(t[i], &r), 0);
		ck_assert_int_eq((long)r, i + 1);
	}
	pthread_join(th, NULL);
	/* And a plain thread waits for a task's completion. */
	weft_future_init(&ffut[0]);
	pthread_create(&th, NULL, fwaiter, &ffut[0]);
	weft_sleep(2 * WEFT_MSEC);
	weft_future_set_result(&ffut[0], (void *)99);
	void *r;
	pthread_join(th, &r);
	ck_assert_int_eq((long)r, 99);
	return NULL;
}

START_TEST(future_foreign)
{
	weft_test_run(foreign_main, NULL, 2);
}
END_TEST

/* ---- done only for the callbacks while they run ------------------------ */

/* A plain thread completes f; its callback, seeing f done, holds on until
 * the main task has looked. The task must see f pending, and its wait
 * must not return before the callback has: a waiter that returned then
 * could free f and the callback's node under it. */
struct slow_cb {
	struct weft_future f;
	struct weft_future_cb cb;
	atomic_int started, looked, finished;
};

static void slow_callback(struct weft_future *f, void *arg)
{
	struct slow_cb *c = arg;
	void *res = NULL;

	/* The completer's callback sees f done. */
	ck_assert_int_eq(weft_future_done(f), 1);
	ck_assert_int_eq(weft_future_result(f, &res), 0);
	ck_assert_ptr_eq(res, (void *)7);
	ck_assert_int_eq(weft_future_wait(f, &res), 0);
	atomic_store(&c->started, 1);
	/* Until the main task has looked, for up to 30 s: were the bound
	 * short, a main task the OS kept off its CPU past it would see f
	 * done, or a late callback run already. */
	for (int i = 0; i < 30000 && !atomic_load(&c->looked); i++)
		usleep(1000);
	usleep(20000); /* the waiter, if it returned early, has by now */
	atomic_store(&c->finished, 1);
}

static void *complete_slowly(void *arg)
{
	struct slow_cb *c = arg;

	ck_assert_int_eq(weft_future_set_result(&c->f, (void *)7), 0);
	return NULL;
}

/* A plain thread completes c->f; returns it once slow_callback runs. */
static pthread_t complete_in_callback(struct slow_cb *c)
{
	pthread_t th;

	ck_assert_int_eq(weft_future_add_callback(&c->f, &c->cb, slow_callback,
						  c),
			 0);
	ck_assert_int_eq(pthread_create(&th, NULL, complete_slowly, c), 0);
	while (!atomic_load(&c->started))
		ck_assert_int_eq(weft_sleep(WEFT_MSEC), 0);
	return th;
}

static void *callbacks_first_main(void *arg)
{
	struct slow_cb c = { .f = WEFT_FUTURE_INIT };
	pthread_t th;
	void *res = NULL;

	th = complete_in_callback(&c);
	ck_assert_int_eq(weft_future_done(&c.f), 0);
	ck_assert_int_eq(weft_future_result(&c.f, &res), -EAGAIN);
	atomic_store(&c.looked, 1);
	ck_assert_int_eq(weft_future_wait(&c.f, &res), 0);
	ck_assert_int_eq(atomic_load(&c.finished), 1);
	ck_assert_ptr_eq(res, (void *)7);
	ck_assert_int_eq(pthread_join(th, NULL), 0);
	return NULL;
}

START_TEST(future_done_after_callbacks)
{
	weft_test_run(callbacks_first_main, NULL, 2);
}
END_TEST

/* A callback added while another task or thread runs f's callbacks is one
 * more of them: it runs on the completer, after those, and sees f done.
 * Run at once on the adder, to whom f is still pending, it would see
 * weft_future_result say -EAGAIN. */
struct late_cb {
	struct weft_future_cb cb;
	pthread_t ran_on;
	int result;
	void *res;
	atomic_int ran;
};

static void late_callback(struct weft_future *f, void *arg)
{
	struct late_cb *l = arg;

	l->ran_on = pthread_self();
	l->result = weft_future_result(f, &l->res);
	atomic_store(&l->ran, 1);
}

static void *late_add_main(void *arg)
{
	struct slow_cb c = { .f = WEFT_FUTURE_INIT };
	struct late_cb l = { .result = 1 };
	pthread_t th;
	void *res = NULL;

	th = complete_in_callback(&c);
	ck_assert_int_eq(weft_future_add_callback(&c.f, &l.cb, late_callback,
						  &l),
			 0);
	/* Not run yet, so still removable, and not addable twice. */
	ck_assert_int_eq(atomic_load(&l.ran), 0);
	ck_assert_int_eq(weft_future_add_callback(&c.f, &l.cb, late_callback,
						  &l),
			 -EINVAL);
	atomic_store(&c.looked, 1);
	ck_assert_int_eq(weft_future_wait(&c.f, &res), 0);
	ck_assert_int_eq(atomic_load(&l.ran), 1);
	ck_assert(pthread_equal(l.ran_on, th));
	ck_assert_int_eq(l.result, 0);
	ck_assert_ptr_eq(l.res, (void *)7);
	ck_assert_int_eq(pthread_join(th, NULL), 0);
	return NULL;
}

START_TEST(callback_added_while_others_run)
{
	weft_test_run(late_add_main, NULL, 2);
}
END_TEST

/* ---- adding a callback does not walk the list ---------------------------- */

/* Callbacks check they run in the order added (arg: the position). */
static long in_order_next;

static void in_order(struct weft_future *f, void *arg)
{
	ck_assert_int_eq((long)arg, in_order_next);
	in_order_next++;
}

/* A page's worth of callbacks added behind one on a page made unreadable:
 * an add that walked the list for its duplicate check (n adds: n^2/2
 * steps) faults on that first node. Duplicates are still refused once it
 * is readable again. */
START_TEST(add_callback_no_walk)
{
	long page = sysconf(_SC_PAGESIZE);
	char *mem = mmap(NULL, 2 * (size_t)page, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	struct weft_future_cb *first = (void *)mem,
			      *rest = (void *)(mem + page);
	long n = page / (long)sizeof(*rest);
	struct weft_future f;

	ck_assert_ptr_ne(mem, MAP_FAILED);
	ck_assert_int_eq(weft_future_init(&f), 0);
	in_order_next = 0;
	ck_assert_int_eq(weft_future_add_callback(&f, first, in_order, 0), 0);
	ck_assert_int_eq(weft_future_add_callback(&f, &rest[0], in_order,
						  (void *)1),
			 0);
	/* The head unreadable; the tail, which an add links to, is not. */
	ck_assert_int_eq(mprotect(mem, (size_t)page, PROT_NONE), 0);
	for (long i = 1; i < n; i++)
		ck_assert_int_eq(weft_future_add_callback(&f, &rest[i],
							  in_order,
							  (void *)(i + 1)),
				 0);
	ck_assert_int_eq(mprotect(mem, (size_t)page, PROT_READ | PROT_WRITE),
			 0);
	ck_assert_int_eq(weft_future_add_callback(&f, first, in_order, 0),
			 -EINVAL);
	ck_assert_int_eq(weft_future_add_callback(&f, &rest[n / 2], in_order,
						  0),
			 -EINVAL);
	ck_assert_int_eq(weft_future_add_callback(&f, &rest[n - 1], in_order,
						  0),
			 -EINVAL);
	ck_assert_int_eq(weft_future_set_result(&f, NULL), 0);
	ck_assert_int_eq(in_order_next, n + 1);
	ck_assert_int_eq(munmap(mem, 2 * (size_t)page), 0);
}
END_TEST

/* A node left on a future that was dropped without completing, then
 * initialised again at the same address, remembers that future: it is not
 * on the new one's list, so adding it there succeeds. */
START_TEST(add_callback_after_abandoned_future)
{
	struct weft_future f;
	struct weft_future_cb cb;
	int calls = 0;

	ck_assert_int_eq(weft_future_init(&f), 0);
	ck_assert_int_eq(weft_future_add_callback(&f, &cb, count_cb, &calls),
			 0);
	ck_assert_int_eq(weft_future_init(&f), 0); /* dropped, made anew */
	ck_assert_int_eq(weft_future_remove_callback(&f, &cb), -ENOENT);
	ck_assert_int_eq(weft_future_add_callback(&f, &cb, count_cb, &calls),
			 0);
	ck_assert_int_eq(weft_future_set_result(&f, NULL), 0);
	ck_assert_int_eq(calls, 1);
}
END_TEST

/* While a plain thread runs f's callbacks (the first one holds on until
 * the main task has looked), the ones not run yet are still f's: added
 * again they are refused, and removed they do not run. Before, the
 * completer had taken them all off f's list at once: one added again was
 * linked anew, ran twice, and cut off those behind it. */
static void *readd_while_running_main(void *arg)
{
	struct slow_cb c = { .f = WEFT_FUTURE_INIT };
	struct weft_future_cb b, d, e;
	int b_calls = 0, d_calls = 0, e_calls = 0;
	pthread_t th;
	void *res = NULL;

	ck_assert_int_eq(weft_future_add_callback(&c.f, &c.cb, slow_callback,
						  &c),
			 0);
	ck_assert_int_eq(weft_future_add_callback(&c.f, &b, count_cb, &b_calls),
			 0);
	ck_assert_int_eq(weft_future_add_callback(&c.f, &d, count_cb, &d_calls),
			 0);
	ck_assert_int_eq(weft_future_add_callback(&c.f, &e, count_cb, &e_calls),
			 0);
	ck_assert_int_eq(pthread_create(&th, NULL, complete_slowly, &c), 0);
	while (!atomic_load(&c.started))
		ck_assert_int_eq(weft_sleep(WEFT_MSEC), 0);
	ck_assert_int_eq(weft_future_add_callback(&c.f, &b, count_cb, &b_calls),
			 -EINVAL);
	ck_assert_int_eq(weft_future_add_callback(&c.f, &d, count_cb, &d_calls),
			 -EINVAL);
	ck_assert_int_eq(weft_future_remove_callback(&c.f, &d), 0);
	atomic_store(&c.looked, 1);
	ck_assert_int_eq(weft_future_wait(&c.f, &res), 0);
	ck_assert_int_eq(b_calls, 1);
	ck_assert_int_eq(d_calls, 0);
	ck_assert_int_eq(e_calls, 1);
	ck_assert_int_eq(pthread_join(th, NULL), 0);
	return NULL;
}

START_TEST(callbacks_not_run_yet_stay_on_the_list)
{
	weft_test_run(readd_while_running_main, NULL, 2);
}
END_TEST

/* Two tasks wait for one future. The first back has seen it done, so it
 * may drop the future at once (weft/sync.h), as it may an event: here it
 * overwrites it as a reuse would. The other, woken by the same completion,
 * must not read the future after its wake: it gets its outcome from the
 * completer. Before, it read f's state and result after waking, and
 * returned the reuse's bytes as an error. One worker runs both woken tasks
 * in turn, so the second always runs after the first has dropped f. */
#define DROP_REUSED 0xa5

struct drop_ctx {
	struct weft_future f;
	atomic_int back; /* waiters returned */
};

static void *drop_waiter(void *arg)
{
	struct drop_ctx *c = arg;
	void *res = NULL;
	int r = weft_future_wait(&c->f, &res);
	if (atomic_fetch_add(&c->back, 1) == 0)
		memset(&c->f, DROP_REUSED, sizeof(c->f)); /* dropped, reused */
	return r ? WEFT_ERR_PTR(r) : res;
}

static void *dropped_by_first_waiter_main(void *arg)
{
	(void)arg;
	for (int outcome = 0; outcome < 3; outcome++) {
		struct drop_ctx c = { .back = 0 };
		weft_task_t a, b;
		void *ra = NULL, *rb = NULL, *want;

		ck_assert_int_eq(weft_future_init(&c.f), 0);
		ck_assert_int_eq(weft_spawn(&a, drop_waiter, &c), 0);
		ck_assert_int_eq(weft_spawn(&b, drop_waiter, &c), 0);
		wait_waiters(&c.f.wq, 2);
		if (outcome == 0) {
			want = (void *)42;
			ck_assert_int_eq(weft_future_set_result(&c.f, want), 0);
		} else if (outcome == 1) {
			want = WEFT_ERR_PTR(-EIO);
			ck_assert_int_eq(weft_future_set_error(&c.f, -EIO), 0);
		} else {
			want = WEFT_ERR_PTR(-ECANCELED);
			ck_assert_int_eq(weft_future_cancel(&c.f), 0);
		}
		ck_assert_int_eq(weft_join(a, &ra), 0);
		ck_assert_int_eq(weft_join(b, &rb), 0);
		ck_assert_ptr_eq(ra, want);
		ck_assert_ptr_eq(rb, want);
	}
	return NULL;
}

START_TEST(dropped_by_first_waiter)
{
	weft_test_run(dropped_by_first_waiter_main, NULL, 1);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("sync_future");
	TCase *tc = tcase_create("future");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, future_seed);
	tcase_add_test(tc, future_outcomes);
	tcase_add_test(tc, future_foreign);
	tcase_add_test(tc, future_done_after_callbacks);
	tcase_add_test(tc, callback_added_while_others_run);
	tcase_add_test(tc, add_callback_no_walk);
	tcase_add_test(tc, add_callback_after_abandoned_future);
	tcase_add_test(tc, callbacks_not_run_yet_stay_on_the_list);
	tcase_add_test(tc, dropped_by_first_waiter);
	suite_add_tcase(s, tc);
	return weft_test_main(s);
}
