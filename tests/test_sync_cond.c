/* weft_cond: the seed's scenario, notify(n) order, wait_for, errors, and
 * the lock held again after a cancelled or timed-out wait. */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <unistd.h>
#include "sync_test_util.h"
#include "sync/waitq.h"

/* ---- the seed: two waiters, a notifier ---------------------------------- */

static struct weft_lock seed_lock = WEFT_LOCK_INIT;
static struct weft_cond seed_cond = WEFT_COND_INIT(&seed_lock);

static void *seed_waiter(void *arg)
{
	const char **ev = arg;
	ck_assert_int_eq(weft_lock_acquire(&seed_lock), 0);
	ck_assert_int_eq(weft_cond_wait(&seed_cond), 0);
	log_add(ev[0]);
	weft_sleep(10 * WEFT_MSEC);
	log_add(ev[1]);
	ck_assert_int_eq(weft_lock_release(&seed_lock), 0);
	return NULL;
}

static void *seed_notifier(void *arg)
{
	wait_waiters(&seed_cond.wq, 2); /* the seed sleeps 1 s instead */
	ck_assert_int_eq(weft_lock_acquire(&seed_lock), 0);
	log_add("start3");
	weft_sleep(10 * WEFT_MSEC);
	log_add("stop3");
	ck_assert_int_eq(weft_cond_notify_all(&seed_cond), 2);
	ck_assert_int_eq(weft_lock_release(&seed_lock), 0);
	return NULL;
}

static void *seed_main(void *arg)
{
	static const char *w1[] = { "start1", "stop1" };
	static const char *w2[] = { "start2", "stop2" };
	weft_task_t t[3];
	log_reset();
	ck_assert_int_eq(weft_spawn(&t[0], seed_waiter, w1), 0);
	ck_assert_int_eq(weft_spawn(&t[1], seed_waiter, w2), 0);
	ck_assert_int_eq(weft_spawn(&t[2], seed_notifier, NULL), 0);
	for (int i = 0; i < 3; i++)
		ck_assert_int_eq(weft_join(t[i], NULL), 0);
	/* start3 stop3, then each waiter start..stop in turn, holding the
	 * lock: start1 stop1 start2 stop2 (or 2 before 1). */
	ck_assert_int_eq(log_n, 6);
	ck_assert_str_eq(log_ev[0], "start3");
	ck_assert_str_eq(log_ev[1], "stop3");
	ck_assert_int_eq(log_ev[2][5], log_ev[3][4]);
	ck_assert_int_eq(log_ev[4][5], log_ev[5][4]);
	ck_assert_int_ne(log_ev[2][5], log_ev[4][5]);
	ck_assert_int_eq(strncmp(log_ev[2], "start", 5), 0);
	ck_assert_int_eq(strncmp(log_ev[4], "start", 5), 0);
	ck_assert_int_eq(weft_lock_locked(&seed_lock), 0);
	return NULL;
}

START_TEST(seed)
{
	weft_test_run(seed_main, NULL, 2);
	weft_test_run(seed_main, NULL, 1);
}
END_TEST

/* ---- notify(n) wakes the oldest n; cancelled waiters swallow nothing ---- */

struct nctx {
	struct weft_lock lock;
	struct weft_cond cond;
	int woken[8];
	int n;
};

struct narg {
	struct nctx *c;
	int id;
};

static void *notify_waiter(void *arg)
{
	struct narg *a = arg;
	ck_assert_int_eq(weft_lock_acquire(&a->c->lock), 0);
	long r = weft_cond_wait(&a->c->cond);
	/* Held again whatever happened. */
	ck_assert_int_eq(weft_lock_locked(&a->c->lock), 1);
	if (r == 0)
		a->c->woken[a->c->n++] = a->id;
	ck_assert_int_eq(weft_lock_release(&a->c->lock), 0);
	return (void *)r;
}

static void *timed_notify_waiter(void *arg)
{
	struct weft_deadline d;
	ck_assert_int_eq(weft_deadline_enter(&d, TIMED_WAITER_NS), 0);
	void *r = notify_waiter(arg);
	weft_deadline_leave(&d);
	return r;
}

static void *notify_main(void *arg)
{
	struct nctx c = { .lock = WEFT_LOCK_INIT };
	struct narg a[6];
	weft_task_t t[6];
	void *res;
	ck_assert_int_eq(weft_cond_init(&c.cond, &c.lock), 0);
	for (int i = 0; i < 6; i++) {
		a[i] = (struct narg){ &c, i };
		ck_assert_int_eq(weft_spawn(&t[i],
					    i == 4 ? timed_notify_waiter
						   : notify_waiter,
					    &a[i]),
				 0);
		wait_waiters(&c.cond.wq, i + 1);
	}
	/* 1 is cancelled, 4 times out: both return with the lock held. */
	ck_assert_int_eq(weft_cancel(t[1]), 0);
	ck_assert_int_eq(weft_join(t[1], &res), 0);
	ck_assert_int_eq((long)res, -ECANCELED);
	ck_assert_int_eq(weft_join(t[4], &res), 0);
	ck_assert_int_eq((long)res, -ETIMEDOUT);

	ck_assert_int_eq(weft_cond_notify(&c.cond, 1), -EPERM); /* no lock */
	ck_assert_int_eq(weft_lock_acquire(&c.lock), 0);
	ck_assert_int_eq(weft_cond_notify(&c.cond, 2), 2);
	ck_assert_int_eq(weft_lock_release(&c.lock), 0);
	ck_assert_int_eq(weft_join(t[0], &res), 0);
	ck_assert_int_eq(weft_join(t[2], &res), 0);
	/* The oldest two still waiting (they re-take the lock in any
	 * order). */
	ck_assert_int_eq(c.woken[0] + c.woken[1], 0 + 2);
	ck_assert_int_eq(c.woken[0] * c.woken[1], 0);
	ck_assert_int_eq(weft_lock_acquire(&c.lock), 0);
	ck_assert_int_eq(weft_cond_notify(&c.cond, 0), 0);
	ck_assert_int_eq(weft_cond_notify_all(&c.cond), 2);
	ck_assert_int_eq(weft_cond_notify_all(&c.cond), 0);
	ck_assert_int_eq(weft_lock_release(&c.lock), 0);
	ck_assert_int_eq(weft_join(t[3], &res), 0);
	ck_assert_int_eq(weft_join(t[5], &res), 0);
	ck_assert_int_eq(c.n, 4);
	ck_assert_int_eq(c.woken[2] + c.woken[3], 3 + 5);
	ck_assert_int_eq(c.woken[2] * c.woken[3], 3 * 5);
	return NULL;
}

START_TEST(notify_order)
{
	weft_test_run(notify_main, NULL, 2);
}
END_TEST

/* ---- notify_all hands the lock back oldest first ------------------------ */

/* Waiters that each acquire, wait, record, release; a notifier that
 * acquires, notifies every waiter, releases. They must record in the order
 * they waited: 0, 1, 2, 3 (newest first, 3 2 1 0, before the fix). */
#define ORDER_N 4

struct octx {
	struct weft_lock lock;
	struct weft_cond cond;
	int order[ORDER_N], n;
};

static void order_wait(struct octx *c, int id)
{
	ck_assert_int_eq(weft_lock_acquire(&c->lock), 0);
	ck_assert_int_eq(weft_cond_wait(&c->cond), 0);
	c->order[c->n++] = id;
	ck_assert_int_eq(weft_lock_release(&c->lock), 0);
}

static struct octx octx;

static void *order_task(void *arg)
{
	order_wait(&octx, (int)(intptr_t)arg);
	return NULL;
}

static void *order_thread(void *arg)
{
	order_wait(&octx, (int)(intptr_t)arg);
	return NULL;
}

/* Waiters on plain threads or tasks; notify(n) first, then notify_all. */
static void order_round(bool threads, int n)
{
	memset(&octx, 0, sizeof(octx));
	ck_assert_int_eq(weft_lock_init(&octx.lock), 0);
	ck_assert_int_eq(weft_cond_init(&octx.cond, &octx.lock), 0);
	weft_task_t t[ORDER_N];
	pthread_t th[ORDER_N];
	for (int i = 0; i < ORDER_N; i++) {
		void *id = (void *)(intptr_t)i;
		if (threads)
			ck_assert_int_eq(pthread_create(&th[i], NULL,
							order_thread, id),
					 0);
		else
			ck_assert_int_eq(weft_spawn(&t[i], order_task, id), 0);
		wait_waiters(&octx.cond.wq, i + 1);
	}
	ck_assert_int_eq(weft_lock_acquire(&octx.lock), 0);
	if (n)
		ck_assert_int_eq(weft_cond_notify(&octx.cond, n), n);
	ck_assert_int_eq(weft_cond_notify_all(&octx.cond), ORDER_N - n);
	ck_assert_int_eq(weft_lock_release(&octx.lock), 0);
	for (int i = 0; i < ORDER_N; i++) {
		if (threads)
			pthread_join(th[i],
				     NULL); /* blocks a worker: briefly */
		else
			ck_assert_int_eq(weft_join(t[i], NULL), 0);
	}
	ck_assert_int_eq(octx.n, ORDER_N);
	for (int i = 0; i < ORDER_N; i++)
		ck_assert_int_eq(octx.order[i], i);
}

static void *order_main(void *arg)
{
	for (int round = 0; round < 20; round++) {
		order_round(false, 0);
		order_round(false, 2);
		order_round(true, 0);
	}
	return NULL;
}

START_TEST(notify_all_oldest_first)
{
	weft_test_run(order_main, NULL, 1);
	weft_test_run(order_main, NULL, 2);
}
END_TEST

/* ---- an abort after notify finds the waiter moved: it returns 0 ------- */

/*
 * notify moves the waiter onto the lock's queue, unsettled; until the
 * notifier releases the lock, a cancellation or the waiter's deadline may
 * still come. It must leave the waiter alone (it was notified): settled
 * there with the abort's reason, the lock's hand-over would skip it and
 * nothing would wake it again. Driven deterministically: the notifier
 * cancels the waiter, or lets its deadline pass, while holding the lock.
 */
struct moved {
	struct weft_lock lock;
	struct weft_cond cond;
	struct weft_event done;
	int64_t deadline_ns; /* 0: none */
	atomic_int left;     /* the waiter returned from its wait */
};

static void *moved_waiter(void *arg)
{
	struct moved *m = arg;
	struct weft_deadline d;
	long r;

	if (m->deadline_ns)
		ck_assert_int_eq(weft_deadline_enter(&d, m->deadline_ns), 0);
	ck_assert_int_eq(weft_lock_acquire(&m->lock), 0);
	r = weft_cond_wait(&m->cond);
	atomic_store(&m->left, 1);
	ck_assert_int_eq(weft_lock_locked(&m->lock), 1);
	ck_assert_int_eq(weft_lock_release(&m->lock), 0);
	if (m->deadline_ns)
		weft_deadline_leave(&d);
	ck_assert_int_ge(weft_event_set(&m->done), 0);
	return (void *)r;
}

/* Until the waiter waits on m's condition (true), or it left, its
 * deadline passed first (false). */
static bool waits_before_it_leaves(struct moved *m)
{
	while (waitq_len(&m->cond.wq) != 1) {
		if (atomic_load(&m->left))
			return false;
		ck_assert_int_eq(weft_sleep(100 * WEFT_USEC), 0);
	}
	return true;
}

/* The deadline runs from before the waiter's wait, and the notify must
 * come first: on a loaded host that keeps this task off its CPU for
 * longer, the deadline ends the wait and the notify finds nobody (or the
 * wait for the waiter never ends), as with the fixed 20 ms it had. Such an
 * attempt proves nothing: it is made again, the deadline doubled. */
static void moved_round(bool cancel)
{
	struct weft_deadline d;
	struct moved m;
	weft_task_t t;
	void *res;

	for (int64_t ns = 20 * WEFT_MSEC;; ns *= 2) {
		ck_assert_int_lt(ns, 60 * WEFT_SEC);
		m = (struct moved){ .lock = WEFT_LOCK_INIT,
				    .deadline_ns = cancel ? 0 : ns };
		ck_assert_int_eq(weft_cond_init(&m.cond, &m.lock), 0);
		ck_assert_int_eq(weft_event_init(&m.done), 0);
		ck_assert_int_eq(weft_spawn(&t, moved_waiter, &m), 0);
		if (waits_before_it_leaves(&m)) {
			ck_assert_int_eq(weft_lock_acquire(&m.lock), 0);
			if (weft_cond_notify(&m.cond, 1) == 1)
				break;
			ck_assert_int_eq(weft_lock_release(&m.lock), 0);
		}
		ck_assert_int_eq(weft_join(t, &res), 0);
		ck_assert_int_eq((long)res, -ETIMEDOUT);
	}
	ck_assert_ptr_eq(m.cond.wq.head, NULL); /* moved to the lock's */
	if (cancel)
		ck_assert_int_eq(weft_cancel(t), 0);
	else /* holding the lock past the waiter's deadline */
		ck_assert_int_eq(weft_sleep(3 * m.deadline_ns), 0);
	ck_assert_int_eq(weft_lock_release(&m.lock), 0);
	/* Bounded: a waiter nothing wakes fails here, not by hanging (10 s:
	 * only a failing run waits it out). */
	ck_assert_int_eq(weft_deadline_enter(&d, 10 * WEFT_SEC), 0);
	ck_assert_int_eq(weft_event_wait(&m.done), 0);
	weft_deadline_leave(&d);
	ck_assert_int_eq(weft_join(t, &res), 0);
	ck_assert_int_eq((long)res, 0);
	ck_assert_int_eq(weft_lock_locked(&m.lock), 0);
}

static void *moved_main(void *arg)
{
	moved_round(true);
	moved_round(false);
	return NULL;
}

START_TEST(abort_after_notify)
{
	weft_test_run(moved_main, NULL, 1);
	weft_test_run(moved_main, NULL, 2);
}
END_TEST

/* ---- wait_for, errors --------------------------------------------------- */

static struct weft_lock wf_lock = WEFT_LOCK_INIT;
static struct weft_cond wf_cond = WEFT_COND_INIT(&wf_lock);
static int wf_value;

static bool wf_ready(void *arg)
{
	return wf_value >= (long)arg;
}

static void *wf_waiter(void *arg)
{
	ck_assert_int_eq(weft_lock_acquire(&wf_lock), 0);
	long r = weft_cond_wait_for(&wf_cond, wf_ready, arg);
	ck_assert_int_ge(wf_value, r ? 0 : (long)arg);
	ck_assert_int_eq(weft_lock_release(&wf_lock), 0);
	return (void *)r;
}

static void *errors_main(void *arg)
{
	weft_task_t t;
	void *res;
	ck_assert_int_eq(weft_spawn(&t, wf_waiter, (void *)5), 0);
	for (int i = 0; i < 5; i++) {
		weft_sleep(WEFT_MSEC);
		ck_assert_int_eq(weft_lock_acquire(&wf_lock), 0);
		wf_value++;
		weft_cond_notify_all(&wf_cond);
		ck_assert_int_eq(weft_lock_release(&wf_lock), 0);
	}
	ck_assert_int_eq(weft_join(t, &res), 0);
	ck_assert_int_eq((long)res, 0);

	struct weft_lock l = WEFT_LOCK_INIT;
	struct weft_cond c;
	ck_assert_int_eq(weft_cond_init(&c, &l), 0);
	ck_assert_int_eq(weft_cond_wait(&c), -EPERM);
	ck_assert_int_eq(weft_cond_wait_for(&c, wf_ready, (void *)100), -EPERM);
	ck_assert_int_eq(weft_cond_notify_all(&c), -EPERM);
	ck_assert_int_eq(weft_cond_init(NULL, &l), -EINVAL);
	ck_assert_int_eq(weft_cond_init(&c, NULL), -EINVAL);
	ck_assert_int_eq(weft_cond_wait(NULL), -EINVAL);
	ck_assert_int_eq(weft_cond_wait_for(&c, NULL, NULL), -EINVAL);
	/* A true pred changes nothing: it would run without the lock, or
	 * with no lock at all (a zero-filled cond). */
	ck_assert_int_eq(weft_cond_wait_for(&c, wf_ready, (void *)0), -EPERM);
	struct weft_cond zeroed = { 0 };
	ck_assert_int_eq(weft_cond_wait_for(&zeroed, wf_ready, (void *)0),
			 -EINVAL);
	ck_assert_int_eq(weft_cond_notify(NULL, 1), -EINVAL);
	ck_assert_int_eq(weft_lock_acquire(&l), 0);
	ck_assert_int_eq(weft_cond_notify(&c, -1), -EINVAL);
	/* Already cancelled: fails at once, the lock still held. */
	ck_assert_int_eq(weft_cancel(weft_current()), 0);
	ck_assert_int_eq(weft_cond_wait(&c), -ECANCELED);
	ck_assert_int_eq(weft_lock_release(&l), 0);
	return NULL;
}

START_TEST(errors)
{
	weft_test_run(errors_main, NULL, 2);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("sync_cond");
	TCase *tc = tcase_create("cond");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, seed);
	tcase_add_test(tc, notify_order);
	tcase_add_test(tc, notify_all_oldest_first);
	tcase_add_test(tc, abort_after_notify);
	tcase_add_test(tc, errors);
	suite_add_tcase(s, tc);
	return weft_test_main(s);
}
