/* weft_select, weft_wait_first, weft_as_completed: each kind of case
 * winning, ready cases in order with the others untouched, a notifier
 * skipping a select that already won, cancellation and timeouts consuming
 * nothing, plain threads, bad input, and a conservation stress. */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <unistd.h>
#include "sync_test_util.h"
#include "sync/select.h"
#include "sync/waitq.h"
#include "runtime/task.h"

static long qsize(struct weft_queue *q)
{
	return weft_queue_size(q);
}

/* ---- helpers: do something to a primitive after a delay ----------------- */

struct later {
	int64_t delay;
	struct weft_queue *q;
	uint64_t item;
	struct weft_queue *getq; /* get one item from it */
	struct weft_event *e;
	struct weft_future *f;
	struct weft_sem *s;
	struct weft_lock *l;
};

static void *do_later(void *arg)
{
	struct later *a = arg;
	if (a->l) {
		/* Hold the lock until the select waits for it. Held for a
		 * 5 ms sleep, it could be taken and let go while the main
		 * task's worker was off its CPU, and main's wait to see it
		 * held would never end. */
		ck_assert_int_eq(weft_lock_acquire(a->l), 0);
		wait_waiters(&a->l->wq, 1);
		ck_assert_int_eq(weft_lock_release(a->l), 0);
		return NULL;
	}
	weft_sleep(a->delay);
	if (a->q)
		ck_assert_int_eq(weft_queue_put(a->q, &a->item), 0);
	if (a->getq)
		ck_assert_int_eq(weft_queue_get(a->getq, &a->item), 0);
	if (a->e)
		ck_assert_int_ge(weft_event_set(a->e), 0);
	if (a->f)
		ck_assert_int_eq(weft_future_set_result(a->f, (void *)7), 0);
	if (a->s)
		ck_assert_int_eq(weft_sem_release(a->s), 0);
	return NULL;
}

static weft_task_t spawn_later(struct later *a)
{
	weft_task_t t;
	ck_assert_int_eq(weft_spawn(&t, do_later, a), 0);
	return t;
}

static void *sleeper(void *arg)
{
	weft_sleep((int64_t)(intptr_t)arg);
	return arg;
}

/* ---- each kind of case wins, at once and after waiting ------------------ */

static void *kinds_main(void *arg)
{
	struct weft_queue q1 = WEFT_QUEUE_INIT(sizeof(uint64_t), 0);
	struct weft_queue q2 = WEFT_QUEUE_INIT(sizeof(uint64_t), 0);
	struct weft_queue full = WEFT_QUEUE_INIT(sizeof(uint64_t), 1);
	struct weft_event e = WEFT_EVENT_INIT;
	struct weft_future f;
	struct weft_sem s = WEFT_SEM_INIT(0);
	struct weft_lock l = WEFT_LOCK_INIT;
	uint64_t a = 0, b = 0, x = 5;
	void *res = NULL;
	weft_future_init(&f);
	ck_assert_int_eq(weft_queue_put(&full, &x), 0);

	/* GET after waiting. */
	struct later p = { .delay = 5 * WEFT_MSEC, .q = &q2, .item = 42 };
	weft_task_t t = spawn_later(&p);
	struct weft_select_case c1[] = { WEFT_CASE_GET(&q1, &a),
					 WEFT_CASE_GET(&q2, &b) };
	ck_assert_int_eq(weft_select(c1, 2), 1);
	ck_assert_int_eq(c1[1].status, 0);
	ck_assert_uint_eq(b, 42);
	ck_assert_uint_eq(a, 0);
	ck_assert_int_eq(weft_join(t, NULL), 0);
	ck_assert(weft__waitq_empty(&q1.getters));

	/* PUT: the full queue is skipped, the other takes it. */
	x = 9;
	struct weft_select_case c2[] = { WEFT_CASE_PUT(&full, &x),
					 WEFT_CASE_PUT(&q1, &x) };
	ck_assert_int_eq(weft_select(c2, 2), 1);
	ck_assert_int_eq(qsize(&full), 1);
	ck_assert_int_eq(weft_queue_try_get(&q1, &a), 0);
	ck_assert_uint_eq(a, 9);
	/* PUT after waiting: a getter frees the slot. */
	p = (struct later){ .delay = 5 * WEFT_MSEC, .getq = &full };
	struct weft_select_case c2b[] = { WEFT_CASE_GET(&q1, &a),
					  WEFT_CASE_PUT(&full, &x) };
	t = spawn_later(&p);
	ck_assert_int_eq(weft_select(c2b, 2), 1);
	ck_assert_int_eq(weft_join(t, NULL), 0);
	ck_assert_uint_eq(p.item, 5);
	ck_assert_int_eq(weft_queue_try_get(&full, &a), 0);
	ck_assert_uint_eq(a, 9);

	/* EVENT. */
	p = (struct later){ .delay = 5 * WEFT_MSEC, .e = &e };
	t = spawn_later(&p);
	struct weft_select_case c3[] = { WEFT_CASE_GET(&q1, &a),
					 WEFT_CASE_EVENT(&e) };
	ck_assert_int_eq(weft_select(c3, 2), 1);
	ck_assert_int_eq(weft_join(t, NULL), 0);
	ck_assert(weft__waitq_empty(&q1.getters));

	/* FUTURE: its result is stored. */
	p = (struct later){ .delay = 5 * WEFT_MSEC, .f = &f };
	t = spawn_later(&p);
	struct weft_select_case c4[] = { WEFT_CASE_GET(&q1, &a),
					 WEFT_CASE_FUTURE(&f, &res) };
	ck_assert_int_eq(weft_select(c4, 2), 1);
	ck_assert_int_eq(c4[1].status, 0);
	ck_assert_ptr_eq(res, (void *)7);
	ck_assert_int_eq(weft_join(t, NULL), 0);
	/* A failed future completes the case with its error. */
	weft_future_init(&f);
	weft_future_set_error(&f, -EIO);
	ck_assert_int_eq(weft_select(c4, 2), 1);
	ck_assert_int_eq(c4[1].status, -EIO);

	/* JOIN: the task is joined and its handle consumed. */
	weft_task_t j;
	ck_assert_int_eq(weft_spawn(&j, sleeper,
				    (void *)(intptr_t)(5 * WEFT_MSEC)),
			 0);
	struct weft_select_case c5[] = { WEFT_CASE_GET(&q1, &a),
					 WEFT_CASE_JOIN(j, &res) };
	ck_assert_int_eq(weft_select(c5, 2), 1);
	ck_assert_int_eq(c5[1].status, 0);
	ck_assert_ptr_eq(res, (void *)(intptr_t)(5 * WEFT_MSEC));
	ck_assert_int_eq(weft_join(j, NULL), -ESRCH);
	/* A stale handle completes the case at once with -ESRCH. */
	ck_assert_int_eq(weft_select(c5, 2), 1);
	ck_assert_int_eq(c5[1].status, -ESRCH);

	/* SEM: the released permit goes to the select. */
	p = (struct later){ .delay = 5 * WEFT_MSEC, .s = &s };
	t = spawn_later(&p);
	struct weft_select_case c6[] = { WEFT_CASE_GET(&q1, &a),
					 WEFT_CASE_SEM(&s) };
	ck_assert_int_eq(weft_select(c6, 2), 1);
	ck_assert_int_eq(weft_sem_value(&s), 0);
	ck_assert_int_eq(weft_join(t, NULL), 0);
	ck_assert_uint_eq(s.state, 0); /* no waiters bit left */

	/* LOCK: handed over by the holder, ours on return. */
	p = (struct later){ .l = &l };
	t = spawn_later(&p);
	while (!weft_lock_locked(&l))
		weft_sleep(100 * WEFT_USEC);
	struct weft_select_case c7[] = { WEFT_CASE_GET(&q1, &a),
					 WEFT_CASE_LOCK(&l) };
	ck_assert_int_eq(weft_select(c7, 2), 1);
	ck_assert_int_eq(weft_join(t, NULL), 0);
	ck_assert_int_eq(weft_lock_release(&l), 0);
	ck_assert_int_eq(weft_lock_locked(&l), 0);

	/* TIMEOUT: nothing else touched. */
	int64_t t0 = weft_now();
	struct weft_select_case c8[] = { WEFT_CASE_GET(&q1, &a),
					 WEFT_CASE_SEM(&s),
					 WEFT_CASE_TIMEOUT(5 * WEFT_MSEC) };
	ck_assert_int_eq(weft_select(c8, 3), 2);
	ck_assert_int_eq(c8[2].status, 0);
	ck_assert_int_ge(weft_now() - t0, 5 * WEFT_MSEC);
	ck_assert(weft__waitq_empty(&q1.getters));
	ck_assert(weft__waitq_empty(&s.wq));
	ck_assert_uint_eq(s.state, 0);
	/* A zero timeout polls. */
	struct weft_select_case c9[] = { WEFT_CASE_GET(&q1, &a),
					 WEFT_CASE_TIMEOUT(0) };
	ck_assert_int_eq(weft_select(c9, 2), 1);

	/* A shut-down queue's GET completes with -EPIPE. */
	weft_queue_shutdown(&q1, false);
	ck_assert_int_eq(weft_select(c9, 2), 0);
	ck_assert_int_eq(c9[0].status, -EPIPE);
	weft_queue_destroy(&q1);
	weft_queue_destroy(&q2);
	weft_queue_destroy(&full);
	return NULL;
}

START_TEST(kinds)
{
	weft_test_run(kinds_main, NULL, 2);
	weft_test_run(kinds_main, NULL, 1);
}
END_TEST

/* ---- several ready at once: the first in order, the rest untouched ------ */

/* Waits until t has returned, without joining it (a sleep would be a guess
 * on a loaded machine). */
static void wait_finished(weft_task_t t)
{
	for (;;) {
		weft__spin_lock(&t.task->join_lock);
		bool done = t.task->join_state & JOIN_DONE;
		weft__spin_unlock(&t.task->join_lock);
		if (done)
			return;
		weft_sleep(100 * WEFT_USEC);
	}
}

static void *ready_main(void *arg)
{
	struct weft_queue q1 = WEFT_QUEUE_INIT(sizeof(uint64_t), 0);
	struct weft_queue q2 = WEFT_QUEUE_INIT(sizeof(uint64_t), 0);
	struct weft_sem s = WEFT_SEM_INIT(1);
	struct weft_lock l = WEFT_LOCK_INIT;
	struct weft_event e = WEFT_EVENT_INIT;
	uint64_t a = 0, b = 0, one = 1, two = 2;
	ck_assert_int_eq(weft_queue_put(&q1, &one), 0);
	ck_assert_int_eq(weft_queue_put(&q2, &two), 0);
	weft_event_set(&e);

	struct weft_select_case c[] = { WEFT_CASE_GET(&q1, &a),
					WEFT_CASE_GET(&q2, &b) };
	ck_assert_int_eq(weft_select(c, 2), 0);
	ck_assert_uint_eq(a, 1);
	ck_assert_uint_eq(b, 0);
	ck_assert_int_eq(qsize(&q2), 1);

	struct weft_select_case d[] = { WEFT_CASE_SEM(&s),
					WEFT_CASE_GET(&q2, &b),
					WEFT_CASE_LOCK(&l) };
	ck_assert_int_eq(weft_select(d, 3), 0);
	ck_assert_int_eq(weft_sem_value(&s), 0);
	ck_assert_int_eq(qsize(&q2), 1);
	ck_assert_int_eq(weft_lock_locked(&l), 0);
	ck_assert_int_eq(weft_select(d, 3), 1); /* sem is taken now */
	ck_assert_uint_eq(b, 2);
	ck_assert_int_eq(weft_lock_locked(&l), 0);
	ck_assert_int_eq(weft_select(d, 3), 2);
	ck_assert_int_eq(weft_lock_locked(&l), 1);
	/* A lock the caller holds is a programming error. */
	ck_assert_int_eq(weft_select(d, 3), -EDEADLK);
	weft_lock_release(&l);
	weft_sem_release(&s);

	/* A finished task and a permit: the join wins, the permit stays. */
	weft_task_t t;
	void *res;
	ck_assert_int_eq(weft_spawn(&t, sleeper, (void *)0), 0);
	wait_finished(t);
	struct weft_select_case j[] = { WEFT_CASE_EVENT(&e),
					WEFT_CASE_JOIN(t, &res),
					WEFT_CASE_SEM(&s) };
	ck_assert_int_eq(weft_select(&j[1], 2), 0);
	ck_assert_int_eq(weft_sem_value(&s), 1);
	ck_assert_int_eq(weft_join(t, NULL), -ESRCH);
	/* A set event before a finished task: the task is not joined. */
	ck_assert_int_eq(weft_spawn(&t, sleeper, (void *)0), 0);
	j[1].task = t;
	ck_assert_int_eq(weft_select(j, 3), 0);
	ck_assert_int_eq(weft_join(t, NULL), 0);
	weft_queue_destroy(&q1);
	weft_queue_destroy(&q2);
	return NULL;
}

START_TEST(ready)
{
	weft_test_run(ready_main, NULL, 2);
}
END_TEST

/*
 * A notifier that finds the case waiter of a select that has already won
 * elsewhere skips it and serves the next waiter. One worker makes it
 * deterministic: the winner stays runnable, its case waiters linked, while
 * the notifier goes on.
 */
struct skip {
	struct weft_queue q;
	struct weft_sem s;
	struct weft_lock l;
	struct weft_event e;
	uint64_t got;
	int idx;
};

static void *skip_selector(void *arg)
{
	struct skip *k = arg;
	uint64_t v;
	struct weft_select_case c[] = { WEFT_CASE_GET(&k->q, &v),
					WEFT_CASE_SEM(&k->s),
					WEFT_CASE_LOCK(&k->l),
					WEFT_CASE_EVENT(&k->e) };
	k->idx = weft_select(c, 4);
	return NULL;
}

static void *skip_getter(void *arg)
{
	struct skip *k = arg;
	return (void *)(intptr_t)weft_queue_get(&k->q, &k->got);
}

static void *skip_main(void *arg)
{
	struct skip k = { .idx = -1 };
	weft_queue_init(&k.q, sizeof(uint64_t), 0);
	weft_sem_init(&k.s, 0);
	weft_lock_init(&k.l);
	weft_event_init(&k.e);
	ck_assert_int_eq(weft_lock_acquire(&k.l), 0);
	weft_task_t sel, get;
	ck_assert_int_eq(weft_spawn(&sel, skip_selector, &k), 0);
	wait_waiters(&k.e.wq, 1);
	ck_assert_int_eq(weft_spawn(&get, skip_getter, &k), 0);
	wait_waiters(&k.q.getters, 2);

	/* The event wins; the selector cannot run before we wait. */
	ck_assert_int_eq(weft_event_set(&k.e), 1);
	uint64_t x = 77;
	ck_assert_int_eq(weft_queue_put(&k.q, &x), 0); /* to the getter */
	ck_assert_int_eq(weft_sem_release(&k.s), 0);   /* kept */
	ck_assert_int_eq(weft_lock_release(&k.l), 0);  /* freed */
	ck_assert_int_eq(weft_join(sel, NULL), 0);
	ck_assert_int_eq(weft_join(get, NULL), 0);
	ck_assert_int_eq(k.idx, 3);
	ck_assert_uint_eq(k.got, 77);
	ck_assert_int_eq(qsize(&k.q), 0);
	ck_assert_int_eq(weft_sem_value(&k.s), 1);
	ck_assert_uint_eq(k.s.state, 2); /* one permit, no waiters bit */
	ck_assert_uint_eq(k.l.state, 0);
	weft_queue_destroy(&k.q);
	return NULL;
}

START_TEST(skip)
{
	weft_test_run(skip_main, NULL, 1);
}
END_TEST

/* ---- cancellation, deadlines: nothing consumed -------------------------- */

struct cancel_ctx {
	struct weft_queue q;
	struct weft_sem s;
	struct weft_lock l;
	uint64_t v;
};

static void *cancel_selector(void *arg)
{
	struct cancel_ctx *c = arg;
	struct weft_select_case cs[] = { WEFT_CASE_GET(&c->q, &c->v),
					 WEFT_CASE_SEM(&c->s),
					 WEFT_CASE_LOCK(&c->l),
					 WEFT_CASE_TIMEOUT(60 * WEFT_SEC) };
	return (void *)(intptr_t)weft_select(cs, 4);
}

static void *cancel_main(void *arg)
{
	struct cancel_ctx c;
	weft_queue_init(&c.q, sizeof(uint64_t), 0);
	weft_sem_init(&c.s, 0);
	weft_lock_init(&c.l);
	ck_assert_int_eq(weft_lock_acquire(&c.l), 0);
	weft_task_t t;
	void *res;
	ck_assert_int_eq(weft_spawn(&t, cancel_selector, &c), 0);
	wait_waiters(&c.s.wq, 1);
	ck_assert_int_eq(weft_cancel(t), 0);
	ck_assert_int_eq(weft_join(t, &res), 0);
	ck_assert_int_eq((intptr_t)res, -ECANCELED);
	/* Unlinked everywhere: what comes now stays. */
	ck_assert(weft__waitq_empty(&c.q.getters));
	ck_assert(weft__waitq_empty(&c.s.wq));
	ck_assert(weft__waitq_empty(&c.l.wq));
	uint64_t x = 3;
	ck_assert_int_eq(weft_queue_put(&c.q, &x), 0);
	weft_sem_release(&c.s);
	ck_assert_int_eq(qsize(&c.q), 1);
	ck_assert_int_eq(weft_sem_value(&c.s), 1);
	ck_assert_int_eq(weft_lock_release(&c.l), 0);
	ck_assert_uint_eq(c.l.state, 0);
	ck_assert_int_eq(weft_queue_try_get(&c.q, &x), 0);
	ck_assert_int_eq(weft_sem_try_acquire(&c.s), 0);

	/* A deadline scope shorter than the timeout case: -ETIMEDOUT. */
	struct weft_deadline d;
	struct weft_select_case cs[] = { WEFT_CASE_GET(&c.q, &c.v),
					 WEFT_CASE_SEM(&c.s),
					 WEFT_CASE_TIMEOUT(60 * WEFT_SEC) };
	ck_assert_int_eq(weft_deadline_enter(&d, 5 * WEFT_MSEC), 0);
	ck_assert_int_eq(weft_select(cs, 3), -ETIMEDOUT);
	weft_deadline_leave(&d);
	/* Longer than it: the timeout case wins. */
	cs[2].timeout = 5 * WEFT_MSEC;
	ck_assert_int_eq(weft_deadline_enter(&d, 60 * WEFT_SEC), 0);
	ck_assert_int_eq(weft_select(cs, 3), 2);
	weft_deadline_leave(&d);
	ck_assert(weft__waitq_empty(&c.q.getters));
	ck_assert_uint_eq(c.s.state, 0);

	/* Cancelled already: a ready case still completes, else -ECANCELED
	 * before anything is linked. */
	weft_sem_release(&c.s);
	ck_assert_int_eq(weft_cancel(weft_current()), 0);
	ck_assert_int_eq(weft_select(cs, 3), 1);
	ck_assert_int_eq(weft_select(cs, 3), -ECANCELED);
	ck_assert(weft__waitq_empty(&c.s.wq));
	weft_queue_destroy(&c.q);
	return NULL;
}

START_TEST(cancel)
{
	weft_test_run(cancel_main, NULL, 2);
}
END_TEST

/*
 * Notify against cancel, against a deadline, and against another notifier:
 * a put, a release or a lock hand-over races a cancellation, the expiry of
 * the selector's deadline, or a second notifier on another case. Whatever
 * wins, exactly one case completed or none did: an item or permit not got
 * is still there, a lock not handed over is free.
 */
enum { BY_CANCEL, BY_DEADLINE, BY_NOTIFY };

struct race {
	struct weft_queue q, q2;
	struct weft_sem s;
	struct weft_lock l;
	uint64_t v;
	weft_task_t sel;
	int abort_by;
	int64_t deadline;
	atomic_int ready, go;
};

static void *race_selector(void *arg)
{
	struct race *r = arg;
	struct weft_select_case c[] = { WEFT_CASE_GET(&r->q, &r->v),
					WEFT_CASE_SEM(&r->s),
					WEFT_CASE_LOCK(&r->l),
					WEFT_CASE_GET(&r->q2, &r->v) };
	struct weft_deadline d;
	if (r->abort_by == BY_DEADLINE)
		ck_assert_int_eq(weft_deadline_enter_at(&d, r->deadline), 0);
	int i = weft_select(c, 4);
	if (r->abort_by == BY_DEADLINE)
		weft_deadline_leave(&d);
	if (i == 2)
		ck_assert_int_eq(weft_lock_release(&r->l), 0);
	return (void *)(intptr_t)i;
}

/* The other side of the race, on a plain thread so that it truly runs
 * beside the notifier: cancels the selector, or puts into q2. */
static void *race_other(void *arg)
{
	struct race *r = arg;
	atomic_store(&r->ready, 1);
	while (!atomic_load(&r->go))
		;
	if (r->abort_by == BY_CANCEL) {
		weft_cancel(r->sel);
	} else if (r->abort_by == BY_NOTIFY) {
		uint64_t x = 1000;
		ck_assert_int_eq(weft_queue_put(&r->q2, &x), 0);
	}
	return NULL;
}

/* Whether what `kind` handed over is still there (and takes it back). */
static bool left_over(struct race *r, int kind)
{
	uint64_t x;
	switch (kind) {
	case 0:
		return weft_queue_try_get(&r->q, &x) == 0;
	case 1:
		return weft_sem_try_acquire(&r->s) == 0;
	default:
		return true; /* a lock always ends free: checked apart */
	}
}

static void *race_main(void *arg)
{
	long rounds = SCALED(3000);
	struct race r;
	weft_queue_init(&r.q, sizeof(uint64_t), 0);
	weft_queue_init(&r.q2, sizeof(uint64_t), 0);
	weft_sem_init(&r.s, 0);
	weft_lock_init(&r.l);
	uint64_t seed = 0x9e3779b97f4a7c15ull;
	int outcomes[5] = { 0 };
	for (long i = 0; i < rounds; i++) {
		int kind = (int)(i % 3);
		r.abort_by = (int)(i / 3 % 3);
		seed ^= seed << 13, seed ^= seed >> 7, seed ^= seed << 17;
		r.deadline = weft_now() + 100 * WEFT_USEC +
			     (int64_t)(seed % 200) * WEFT_USEC;
		atomic_store(&r.go, 0);
		atomic_store(&r.ready, 0);
		ck_assert_int_eq(weft_lock_acquire(&r.l), 0);
		ck_assert_int_eq(weft_spawn(&r.sel, race_selector, &r), 0);
		if (r.abort_by != BY_DEADLINE)
			wait_waiters(&r.l.wq, 1);
		pthread_t o;
		ck_assert_int_eq(pthread_create(&o, NULL, race_other, &r), 0);
		while (!atomic_load(&r.ready))
			;
		if (r.abort_by == BY_DEADLINE)
			while (weft_now() < r.deadline - 20 * WEFT_USEC)
				;
		atomic_store(&r.go, 1);
		/* A random head start for the other side: both orders. */
		for (int k = (int)(seed >> 20) % 512; k > 0; k--)
			weft__cpu_relax();
		uint64_t x = (uint64_t)i;
		if (kind == 0)
			ck_assert_int_eq(weft_queue_put(&r.q, &x), 0);
		else if (kind == 1)
			weft_sem_release(&r.s);
		ck_assert_int_eq(weft_lock_release(&r.l), 0);
		void *res;
		ck_assert_int_eq(weft_join(r.sel, &res), 0);
		pthread_join(o, NULL);
		int got = (int)(intptr_t)res;
		bool left = left_over(&r, kind);
		bool left2 = weft_queue_try_get(&r.q2, &x) == 0;
		if (got < 0) {
			ck_assert(got == -ECANCELED || got == -ETIMEDOUT);
			ck_assert(left);
			ck_assert(r.abort_by != BY_NOTIFY || left2);
			outcomes[4]++;
		} else if (got == 3) {
			ck_assert_int_eq(r.abort_by, BY_NOTIFY);
			ck_assert(left);
			ck_assert(!left2);
			ck_assert_uint_eq(r.v, 1000);
			outcomes[3]++;
		} else {
			/* The lock, released just after, may have won over a
			 * handed item or permit: then that stays. */
			ck_assert(got == kind || got == 2);
			ck_assert(got == 2 ? left : !left || kind == 2);
			if (got == 0)
				ck_assert_uint_eq(r.v, (uint64_t)i);
			ck_assert(r.abort_by != BY_NOTIFY || left2);
			outcomes[got]++;
		}
		ck_assert(weft__waitq_empty(&r.q.getters));
		ck_assert(weft__waitq_empty(&r.q2.getters));
		ck_assert_uint_eq(r.s.state, 0);
		ck_assert_uint_eq(r.l.state, 0);
	}
	fprintf(stderr, "select race: got %d/%d/%d/%d, none %d\n", outcomes[0],
		outcomes[1], outcomes[2], outcomes[3], outcomes[4]);
	weft_queue_destroy(&r.q);
	weft_queue_destroy(&r.q2);
	return NULL;
}

START_TEST(race)
{
	weft_test_run(race_main, NULL, 2);
}
END_TEST

/* ---- plain threads ------------------------------------------------------ */

struct thread_ctx {
	struct weft_queue q;
	atomic_int phase;
	int idx;
	uint64_t v;
	int64_t waited;
};

static void *thread_selector(void *arg)
{
	struct thread_ctx *c = arg;
	struct weft_select_case cs[] = { WEFT_CASE_GET(&c->q, &c->v),
					 WEFT_CASE_TIMEOUT(5 * WEFT_MSEC) };
	int64_t t0 = weft_now();
	ck_assert_int_eq(weft_select(cs, 2), 1); /* the timeout */
	c->waited = weft_now() - t0;
	atomic_store(&c->phase, 1);
	cs[1].timeout = 60 * WEFT_SEC;
	c->idx = weft_select(cs, 2); /* a task puts */
	return NULL;
}

static void *thread_main(void *arg)
{
	struct thread_ctx c = { .idx = -1 };
	weft_queue_init(&c.q, sizeof(uint64_t), 0);
	pthread_t th;
	ck_assert_int_eq(pthread_create(&th, NULL, thread_selector, &c), 0);
	while (!atomic_load(&c.phase))
		weft_sleep(WEFT_MSEC);
	wait_waiters(&c.q.getters, 1);
	uint64_t x = 11;
	ck_assert_int_eq(weft_queue_put(&c.q, &x), 0);
	pthread_join(th, NULL);
	ck_assert_int_ge(c.waited, 5 * WEFT_MSEC);
	ck_assert_int_eq(c.idx, 0);
	ck_assert_uint_eq(c.v, 11);
	weft_queue_destroy(&c.q);
	return NULL;
}

START_TEST(thread)
{
	weft_test_run(thread_main, NULL, 2);
}
END_TEST

/* A plain thread's own timeout against a put: the thread settles its select
 * itself when the timeout expires, racing the putter's claim. Every item
 * put is got exactly once. */
struct thread_race {
	struct weft_queue q;
	long n;
	long got;
	atomic_int done;
};

static void *thread_racer(void *arg)
{
	struct thread_race *c = arg;
	uint64_t v, want = 0;
	while (!atomic_load(&c->done) || weft_queue_size(&c->q) > 0) {
		struct weft_select_case cs[] = {
			WEFT_CASE_GET(&c->q, &v),
			WEFT_CASE_TIMEOUT(20 * WEFT_USEC),
		};
		int i = weft_select(cs, 2);
		ck_assert(i == 0 || i == 1);
		if (i == 0) {
			ck_assert_uint_eq(v, want++); /* none lost, in order */
			c->got++;
		}
	}
	return NULL;
}

static void *thread_race_main(void *arg)
{
	struct thread_race c = { .n = SCALED(20000) };
	weft_queue_init(&c.q, sizeof(uint64_t), 0);
	pthread_t th;
	ck_assert_int_eq(pthread_create(&th, NULL, thread_racer, &c), 0);
	uint64_t seed = 12345;
	for (uint64_t i = 0; i < (uint64_t)c.n; i++) {
		ck_assert_int_eq(weft_queue_put(&c.q, &i), 0);
		seed ^= seed << 13, seed ^= seed >> 7, seed ^= seed << 17;
		if (seed % 4 == 0)
			weft_sleep((int64_t)(seed >> 40) % 40 * WEFT_USEC);
	}
	atomic_store(&c.done, 1);
	pthread_join(th, NULL);
	ck_assert_int_eq(c.got, c.n);
	weft_queue_destroy(&c.q);
	return NULL;
}

START_TEST(thread_race)
{
	weft_test_run(thread_race_main, NULL, 2);
}
END_TEST

/* ---- wait_first, as_completed ------------------------------------------- */

static struct weft_event first_ev[12];

static void *wait_event(void *arg)
{
	int i = (int)(intptr_t)arg;
	ck_assert_int_eq(weft_event_wait(&first_ev[i]), 0);
	return arg;
}

static void *first_main(void *arg)
{
	enum { N = 12 };
	weft_task_t t[N];
	int order[N] = { 5, 3, 9, 0, 11, 7, 1, 10, 2, 8, 4, 6 };
	int by_order[N];
	for (int i = 0; i < N; i++) {
		weft_event_init(&first_ev[i]);
		by_order[order[i]] = i;
		ck_assert_int_eq(weft_spawn(&t[i], wait_event,
					    (void *)(intptr_t)i),
				 0);
	}
	/* Let the tasks end one by one, in `order`: each next() must yield
	 * the one that ended, whether it ends before or while we wait. */
	struct weft_as_completed it;
	ck_assert_int_eq(weft_as_completed_init(&it, t, N), 0);
	void *res;
	int st = 1, i, k = 0;
	for (;;) {
		if (k < N)
			weft_event_set(&first_ev[by_order[k]]);
		if (k % 2)
			weft_sleep(WEFT_MSEC); /* ended before we look */
		if ((i = weft_as_completed_next(&it, &res, &st)) < 0)
			break;
		ck_assert_int_eq(order[i], k++);
		ck_assert_ptr_eq(res, (void *)(intptr_t)i);
		ck_assert_int_eq(st, 0);
		ck_assert_ptr_null(t[i].task);
	}
	ck_assert_int_eq(i, -ENOENT);
	ck_assert_int_eq(k, N);
	ck_assert_int_eq(weft_wait_first(t, N, NULL, NULL), -ENOENT);

	/* Cancelled while waiting: nothing joined, the handles still
	 * valid. A deadline likewise. The tasks end when their events are
	 * set, after the deadline's wait: tasks that slept a second could
	 * end first on a loaded host, and the wait would join one. */
	for (int j = 0; j < 3; j++) {
		weft_event_init(&first_ev[j]);
		ck_assert_int_eq(weft_spawn(&t[j], wait_event,
					    (void *)(intptr_t)j),
				 0);
	}
	struct weft_deadline d;
	ck_assert_int_eq(weft_deadline_enter(&d, 5 * WEFT_MSEC), 0);
	ck_assert_int_eq(weft_wait_first(t, 3, NULL, NULL), -ETIMEDOUT);
	weft_deadline_leave(&d);
	for (int j = 0; j < 3; j++)
		weft_event_set(&first_ev[j]);
	int w = weft_wait_first(t, 3, NULL, &st);
	ck_assert(w >= 0 && w < 3);
	ck_assert_ptr_null(t[w].task);
	for (int j = 0; j < 3; j++)
		if (j != w)
			ck_assert_int_eq(weft_join(t[j], NULL), 0);
	ck_assert_int_eq(weft_wait_first(NULL, 3, NULL, NULL), -EINVAL);
	ck_assert_int_eq(weft_wait_first(t, 0, NULL, NULL), -EINVAL);
	weft_task_t self = weft_current();
	ck_assert_int_eq(weft_wait_first(&self, 1, NULL, NULL), -EDEADLK);
	ck_assert_int_eq(weft_as_completed_init(NULL, t, 1), -EINVAL);
	return NULL;
}

START_TEST(first)
{
	weft_test_run(first_main, NULL, 2);
}
END_TEST

/* Many tasks through wait_first: more than its on-stack cases. */
static void *first_many_main(void *arg)
{
	int n = (int)SCALED(300);
	weft_task_t *t = calloc((size_t)n, sizeof(*t));
	for (int i = 0; i < n; i++)
		ck_assert_int_eq(weft_spawn(&t[i], sleeper,
					    (void *)(intptr_t)((i % 7) *
							       WEFT_MSEC)),
				 0);
	int seen = 0;
	struct weft_as_completed it;
	weft_as_completed_init(&it, t, n);
	while (weft_as_completed_next(&it, NULL, NULL) >= 0)
		seen++;
	ck_assert_int_eq(seen, n);
	free(t);
	return NULL;
}

START_TEST(first_many)
{
	weft_test_run(first_many_main, NULL, 0);
}
END_TEST

/* A slot as_completed cannot join (its handle went stale: another caller
 * joined the task; or the task is detached) is yielded once, with what
 * weft_join says in its status, and the iteration goes on, as asyncio's
 * as_completed yields every awaitable once. It used to say -ESRCH at that
 * slot on every call, so the documented loop stopped there and the tasks
 * behind it were never yielded. */
/* Static: the detached waiter may still touch it after first_stale_main
 * returns. */
static struct weft_event detached_go = WEFT_EVENT_INIT;

static void *wait_on(void *event)
{
	ck_assert_int_eq(weft_event_wait(event), 0);
	return NULL;
}

static void *first_stale_main(void *arg)
{
	enum { N = 4 };
	weft_task_t t[N], copy;
	int want[N] = { 0, -ESRCH, 0, -EINVAL };
	void *res;
	int st, i, seen = 0;

	ck_assert_int_eq(weft_spawn(&t[0], sleeper,
				    (void *)(intptr_t)(20 * WEFT_MSEC)),
			 0);
	ck_assert_int_eq(weft_spawn(&t[1], sleeper, (void *)0), 0);
	ck_assert_int_eq(weft_spawn(&t[2], sleeper,
				    (void *)(intptr_t)(5 * WEFT_MSEC)),
			 0);
	/* The detached task must outlive the loop: once it ends, its handle is
	 * stale and says -ESRCH, not -EINVAL (a 5 ms sleep ended first under
	 * ThreadSanitizer in CI). */
	ck_assert_int_eq(weft_spawn(&t[3], wait_on, &detached_go), 0);
	copy = t[1];
	ck_assert_int_eq(weft_join(copy, NULL), 0); /* t[1] goes stale */
	copy = t[3];
	ck_assert_int_eq(weft_detach(copy), 0);

	struct weft_as_completed it;
	ck_assert_int_eq(weft_as_completed_init(&it, t, N), 0);
	while ((i = weft_as_completed_next(&it, &res, &st)) >= 0) {
		ck_assert_int_lt(i, N);
		ck_assert_int_eq(st, want[i]);
		if (st)
			ck_assert_ptr_null(res);
		ck_assert_ptr_null(t[i].task);
		seen |= 1 << i;
	}
	ck_assert_int_eq(i, -ENOENT);
	ck_assert_int_eq(seen, (1 << N) - 1);
	ck_assert_int_ge(weft_event_set(&detached_go), 0);
	return NULL;
}

START_TEST(first_stale)
{
	weft_test_run(first_stale_main, NULL, 2);
}
END_TEST

/* ---- bad input ---------------------------------------------------------- */

static void *bad_main(void *arg)
{
	struct weft_queue q = WEFT_QUEUE_INIT(sizeof(uint64_t), 0);
	uint64_t v;
	struct weft_select_case c[] = { WEFT_CASE_GET(&q, &v) };
	ck_assert_int_eq(weft_select(NULL, 1), -EINVAL);
	ck_assert_int_eq(weft_select(c, 0), -EINVAL);
	ck_assert_int_eq(weft_select(c, WEFT_SELECT_MAX + 1), -EINVAL);
	c[0].item = NULL;
	ck_assert_int_eq(weft_select(c, 1), -EINVAL);
	struct weft_select_case k[] = { { .kind = 99 } };
	ck_assert_int_eq(weft_select(k, 1), -EINVAL);
	struct weft_select_case n[] = { WEFT_CASE_SEM(NULL) };
	ck_assert_int_eq(weft_select(n, 1), -EINVAL);
	/* A semaphore's static initialiser given a count out of range: the
	 * select says so, as weft_sem_acquire does, and takes no permit. */
	struct weft_sem neg = WEFT_SEM_INIT(-1);
	struct weft_select_case ns[] = { WEFT_CASE_SEM(&neg) };
	ck_assert_int_eq(weft_select(ns, 1), -EINVAL);
	struct weft_select_case to[] = { WEFT_CASE_TIMEOUT(-1) };
	ck_assert_int_eq(weft_select(to, 1), -EINVAL);
	struct weft_select_case me[] = { WEFT_CASE_JOIN(weft_current(), NULL) };
	ck_assert_int_eq(weft_select(me, 1), -EDEADLK);
	return NULL;
}

START_TEST(bad)
{
	weft_test_run(bad_main, NULL, 1);
}
END_TEST

/* A LOCK case on a lock the caller holds fails the select with -EDEADLK
 * when its turn comes, as weft_lock_acquire fails and as a JOIN case on the
 * caller itself does: a ready case after it is not taken, a 0 timeout after
 * it does not poll. A case before it that completes at once still wins
 * (cases after it are not looked at, as for -EINVAL). */
static void *held_lock_main(void *arg)
{
	struct weft_queue q = WEFT_QUEUE_INIT(sizeof(uint64_t), 0);
	struct weft_lock l = WEFT_LOCK_INIT;
	uint64_t v = 0, one = 1;

	ck_assert_int_eq(weft_lock_acquire(&l), 0);
	ck_assert_int_eq(weft_lock_acquire(&l), -EDEADLK);
	ck_assert_int_eq(weft_queue_put(&q, &one), 0);

	struct weft_select_case c[] = { WEFT_CASE_LOCK(&l),
					WEFT_CASE_GET(&q, &v) };
	ck_assert_int_eq(weft_select(c, 2), -EDEADLK);
	ck_assert_int_eq(qsize(&q), 1);
	ck_assert_uint_eq(v, 0);
	struct weft_select_case j[] = { WEFT_CASE_JOIN(weft_current(), NULL),
					WEFT_CASE_GET(&q, &v) };
	ck_assert_int_eq(weft_select(j, 2), -EDEADLK);
	ck_assert_int_eq(qsize(&q), 1);
	struct weft_select_case t[] = { WEFT_CASE_LOCK(&l),
					WEFT_CASE_TIMEOUT(0) };
	ck_assert_int_eq(weft_select(t, 2), -EDEADLK);

	struct weft_select_case g[] = { WEFT_CASE_GET(&q, &v),
					WEFT_CASE_LOCK(&l) };
	ck_assert_int_eq(weft_select(g, 2), 0);
	ck_assert_uint_eq(v, 1);
	ck_assert_int_eq(weft_lock_release(&l), 0);
	weft_queue_destroy(&q);
	return NULL;
}

START_TEST(held_lock)
{
	weft_test_run(held_lock_main, NULL, 1);
}
END_TEST

/* ---- stress: conservation across all workers ---------------------------- */

#define PERMITS 3

struct stress {
	struct weft_queue q[2];
	struct weft_sem s[2];
	struct weft_lock l;
	struct weft_event stop;
	long items;         /* put in total */
	atomic_uchar *seen; /* per item: times got */
	atomic_long got;
	atomic_int in_sem[2];
	int in_lock; /* only under l */
	atomic_long sem_wins, lock_wins, cancels, timeouts;
	weft_task_t *tasks;
	int ntasks;
};

static void record(struct stress *s, uint64_t v)
{
	ck_assert_uint_lt(v, (uint64_t)s->items);
	ck_assert_int_eq(atomic_fetch_add(&s->seen[v], 1), 0);
	atomic_fetch_add(&s->got, 1);
}

/* Consumers: take items, or a permit, or the lock, until stop; some
 * selects run under a short deadline. */
static void *consumer(void *arg)
{
	struct stress *s = arg;
	uint64_t seed = (uint64_t)(uintptr_t)&seed | 1, v;
	for (;;) {
		struct weft_select_case c[] = {
			WEFT_CASE_EVENT(&s->stop), WEFT_CASE_GET(&s->q[0], &v),
			WEFT_CASE_SEM(&s->s[0]),   WEFT_CASE_GET(&s->q[1], &v),
			WEFT_CASE_SEM(&s->s[1]),   WEFT_CASE_LOCK(&s->l),
		};
		struct weft_deadline d;
		bool timed = rnd(&seed) % 4 == 0;
		if (timed)
			ck_assert_int_eq(weft_deadline_enter(
						 &d,
						 (int64_t)(rnd(&seed) % 200) *
							 WEFT_USEC),
					 0);
		int i = weft_select(c, 6);
		if (timed)
			weft_deadline_leave(&d);
		if (i == -ETIMEDOUT) {
			atomic_fetch_add(&s->timeouts, 1);
			continue;
		}
		if (i == -ECANCELED) {
			atomic_fetch_add(&s->cancels, 1);
			return NULL;
		}
		ck_assert_int_ge(i, 0);
		ck_assert_int_eq(c[i].status, 0);
		switch (i) {
		case 0:
			return NULL; /* stop */
		case 1:
		case 3:
			record(s, v);
			break;
		case 2:
		case 4: {
			/* Hold the permit a while, so others wait for it. */
			int k = i / 2 - 1;
			int in = atomic_fetch_add(&s->in_sem[k], 1);
			ck_assert_int_lt(in, PERMITS);
			atomic_fetch_add(&s->sem_wins, 1);
			weft_sleep((int64_t)(rnd(&seed) % 100) * WEFT_USEC);
			atomic_fetch_sub(&s->in_sem[k], 1);
			ck_assert_int_eq(weft_sem_release(&s->s[k]), 0);
			break;
		}
		default:
			ck_assert_int_eq(s->in_lock++, 0);
			atomic_fetch_add(&s->lock_wins, 1);
			weft_yield();
			s->in_lock--;
			ck_assert_int_eq(weft_lock_release(&s->l), 0);
		}
	}
}

/* Producers put their share through a select over both queues, retrying
 * an item whose select timed out (it was then not put). */
struct prod {
	struct stress *s;
	long from, to;
};

static void *producer(void *arg)
{
	struct prod *p = arg;
	uint64_t seed = (uint64_t)p->from * 2654435761u | 1;
	for (long n = p->from; n < p->to;) {
		uint64_t v = (uint64_t)n;
		struct weft_select_case c[] = {
			WEFT_CASE_PUT(&p->s->q[0], &v),
			WEFT_CASE_PUT(&p->s->q[1], &v),
		};
		struct weft_deadline d;
		ck_assert_int_eq(weft_deadline_enter(&d, (int64_t)(rnd(&seed) %
								   500) *
								 WEFT_USEC),
				 0);
		int i = weft_select(c, 2);
		weft_deadline_leave(&d);
		if (i == -ETIMEDOUT)
			continue;
		ck_assert_int_ge(i, 0);
		ck_assert_int_eq(c[i].status, 0);
		n++;
	}
	return NULL;
}

/* Cancels consumers at random while the producers run. */
static void *canceller(void *arg)
{
	struct stress *s = arg;
	uint64_t seed = 88172645463325252ull;
	for (int k = 0; k < s->ntasks / 4; k++) {
		weft_cancel(s->tasks[rnd(&seed) % (uint64_t)s->ntasks]);
		weft_sleep((int64_t)(rnd(&seed) % 300) * WEFT_USEC);
	}
	return NULL;
}

static void *stress_main(void *arg)
{
	struct stress s = { 0 };
	int ncons = (int)weft_test_scaled(1000, 50);
	int nprod = 8;
	s.items = weft_test_scaled(100000, 5000);
	s.seen = calloc((size_t)s.items, 1);
	s.tasks = calloc((size_t)ncons, sizeof(*s.tasks));
	s.ntasks = ncons;
	for (int k = 0; k < 2; k++) {
		weft_queue_init(&s.q[k], sizeof(uint64_t), 16);
		weft_sem_init(&s.s[k], PERMITS);
	}
	weft_lock_init(&s.l);
	weft_event_init(&s.stop);
	for (int i = 0; i < ncons; i++)
		ck_assert_int_eq(weft_spawn(&s.tasks[i], consumer, &s), 0);
	struct prod p[8];
	weft_task_t pt[8], ct;
	for (int i = 0; i < nprod; i++) {
		p[i] = (struct prod){ &s, s.items * i / nprod,
				      s.items * (i + 1) / nprod };
		ck_assert_int_eq(weft_spawn(&pt[i], producer, &p[i]), 0);
	}
	ck_assert_int_eq(weft_spawn(&ct, canceller, &s), 0);
	for (int i = 0; i < nprod; i++)
		ck_assert_int_eq(weft_join(pt[i], NULL), 0);
	ck_assert_int_eq(weft_join(ct, NULL), 0);
	weft_event_set(&s.stop);
	for (int i = 0; i < ncons; i++)
		ck_assert_int_eq(weft_join(s.tasks[i], NULL), 0);
	/* What the consumers left behind is still in the queues. */
	uint64_t v;
	for (int k = 0; k < 2; k++)
		while (weft_queue_try_get(&s.q[k], &v) == 0)
			record(&s, v);
	ck_assert_int_eq(atomic_load(&s.got), s.items);
	for (long i = 0; i < s.items; i++)
		ck_assert_int_eq(s.seen[i], 1);
	for (int k = 0; k < 2; k++) {
		ck_assert_int_eq(weft_sem_value(&s.s[k]), PERMITS);
		ck_assert_uint_eq(s.s[k].state, PERMITS << 1);
		ck_assert(weft__waitq_empty(&s.q[k].getters));
		ck_assert(weft__waitq_empty(&s.q[k].putters));
		weft_queue_destroy(&s.q[k]);
	}
	ck_assert_uint_eq(s.l.state, 0);
	ck_assert_int_gt(atomic_load(&s.sem_wins), 0);
	ck_assert_int_gt(atomic_load(&s.lock_wins), 0);
	fprintf(stderr,
		"select stress: %ld items, %d consumers: %ld permit "
		"and %ld lock wins, %ld cancelled, %ld timed out\n",
		s.items, ncons, atomic_load(&s.sem_wins),
		atomic_load(&s.lock_wins), atomic_load(&s.cancels),
		atomic_load(&s.timeouts));
	free(s.seen);
	free(s.tasks);
	return NULL;
}

/* A get and a put on one queue in one select: the select's put must never
 * hand its item to its own get waiting on that queue (or its get free a
 * slot for its own put), which completed both cases, reported one, and
 * woke the select's own running task. The window: both cases fail the
 * unlocked first try, the queue changes, then the locked pass links the
 * first case and completes the second. A producer and a consumer thread
 * keep a queue of one slot changing under the selecting task; every item
 * put must be got exactly once. */
#define SAME_Q_ROUNDS SCALED(200000)

struct same_q {
	struct weft_queue q;
	atomic_ullong put_sum, got_sum;
	atomic_bool done;
};

static void *same_q_producer(void *arg)
{
	struct same_q *c = arg;

	for (uint64_t v = 1; !atomic_load(&c->done); v += 2)
		if (weft_queue_put(&c->q, &v) == 0)
			atomic_fetch_add(&c->put_sum, v);
	return NULL;
}

static void *same_q_consumer(void *arg)
{
	struct same_q *c = arg;
	uint64_t v;

	while (weft_queue_get(&c->q, &v) == 0)
		atomic_fetch_add(&c->got_sum, v);
	return NULL;
}

static void *same_q_main(void *arg)
{
	struct same_q *c = arg;
	pthread_t prod, cons;

	ck_assert_int_eq(pthread_create(&prod, NULL, same_q_producer, c), 0);
	ck_assert_int_eq(pthread_create(&cons, NULL, same_q_consumer, c), 0);
	for (long i = 0; i < SAME_Q_ROUNDS; i++) {
		uint64_t in = 2 * (uint64_t)i + 2, out = 0;
		struct weft_select_case cs[] = {
			WEFT_CASE_PUT(&c->q, &in),
			WEFT_CASE_GET(&c->q, &out),
		};
		if (i & 1) { /* both orders */
			struct weft_select_case t = cs[0];
			cs[0] = cs[1];
			cs[1] = t;
		}
		int k = weft_select(cs, 2);
		ck_assert_int_ge(k, 0);
		ck_assert_int_eq(cs[k].status, 0);
		if (cs[k].kind == WEFT_SELECT_PUT)
			atomic_fetch_add(&c->put_sum, in);
		else
			atomic_fetch_add(&c->got_sum, out);
	}
	atomic_store(&c->done, true);
	ck_assert_int_eq(pthread_join(prod, NULL), 0);
	ck_assert_int_eq(weft_queue_shutdown(&c->q, false), 0);
	ck_assert_int_eq(pthread_join(cons, NULL), 0);
	ck_assert_uint_eq(atomic_load(&c->put_sum), atomic_load(&c->got_sum));
	return NULL;
}

START_TEST(same_queue_get_put)
{
	struct same_q c = { .put_sum = 0, .got_sum = 0, .done = false };

	ck_assert_int_eq(weft_queue_init(&c.q, sizeof(uint64_t), 1), 0);
	weft_test_run(same_q_main, &c, 2);
	weft_queue_destroy(&c.q);
}
END_TEST

/* The same window, driven: a queue of one slot, full when the put is
 * tried, emptied before the get is tried, and refilled before the locked
 * pass. There the put links its waiter, and the get takes the new item,
 * which frees the slot: the put must not be handed it. */
static struct weft_queue *window_q;

static bool window_put_first;

static void change_between_tries(int i)
{
	uint64_t v = 7;

	if ((i == 0) == window_put_first)
		ck_assert_int_eq(weft_queue_try_get(window_q, &v), 0);
	else
		ck_assert_int_eq(weft_queue_try_put(window_q, &v), 0);
}

/* The mirror: empty when the get is tried, filled before the put is
 * tried, emptied before the locked pass. There the get links its waiter,
 * and the put stores its item: it must not hand it to the get. */
static void *mirror_main(void *arg)
{
	struct weft_queue q;
	uint64_t in = 9, out = 0, left = 0;

	ck_assert_int_eq(weft_queue_init(&q, sizeof(uint64_t), 1), 0);
	struct weft_select_case cs[] = {
		WEFT_CASE_GET(&q, &out),
		WEFT_CASE_PUT(&q, &in),
	};
	window_q = &q;
	window_put_first = false;
	weft__select_after_try = change_between_tries;
	int k = weft_select(cs, 2);
	weft__select_after_try = NULL;
	ck_assert_int_eq(k, 1);
	ck_assert_int_eq(cs[1].status, 0);
	ck_assert_uint_eq(out, 0); /* the get took nothing */
	ck_assert_int_eq(weft_queue_try_get(&q, &left), 0);
	ck_assert_uint_eq(left, 9);
	weft_sleep(WEFT_MSEC);
	ck_assert_int_eq(weft_queue_destroy(&q), 0);
	return NULL;
}

static void *window_main(void *arg)
{
	struct weft_queue q;
	uint64_t first = 5, in = 9, out = 0, left = 0;

	ck_assert_int_eq(weft_queue_init(&q, sizeof(uint64_t), 1), 0);
	ck_assert_int_eq(weft_queue_put(&q, &first), 0);
	struct weft_select_case cs[] = {
		WEFT_CASE_PUT(&q, &in),
		WEFT_CASE_GET(&q, &out),
	};
	window_q = &q;
	window_put_first = true;
	weft__select_after_try = change_between_tries;
	int k = weft_select(cs, 2);
	weft__select_after_try = NULL;
	ck_assert_int_eq(k, 1);
	ck_assert_int_eq(cs[1].status, 0);
	ck_assert_uint_eq(out, 7);
	/* Only the get completed: the put left nothing in the queue. */
	ck_assert_int_eq(weft_queue_size(&q), 0);
	ck_assert_int_eq(weft_queue_try_get(&q, &left), -EAGAIN);
	/* And the task did not wake itself: it parks and wakes as usual. */
	weft_sleep(WEFT_MSEC);
	ck_assert_int_eq(weft_queue_destroy(&q), 0);
	return NULL;
}

START_TEST(same_queue_window)
{
	weft_test_run(mirror_main, NULL, 1);
	weft_test_run(window_main, NULL, 1);
}
END_TEST

/*
 * A select of timeout cases only has no case lock, so nothing orders a
 * cancellation with the select's linking and parking. A plain thread
 * cancels the selector as soon as its wait is published, after a delay
 * growing by round, so that some cancellations land while its thousands
 * of cases are being linked: each select must still return -ECANCELED (a
 * wake-up lost there left it parked for good: its 10 s timer then loses
 * to the settled cancellation).
 */
struct tonly {
	struct weft_select_case c[WEFT_SELECT_MAX];
	_Atomic(struct weft_task *) task;
	weft_task_t t;
	int delay_us;
};

static void *tonly_selector(void *arg)
{
	struct tonly *x = arg;

	return (void *)(intptr_t)weft_select(x->c, WEFT_SELECT_MAX);
}

static void *tonly_canceller(void *arg)
{
	struct tonly *x = arg;
	struct weft_task *t;
	bool begun = false;

	while (!(t = atomic_load(&x->task)))
		sched_yield();
	while (!begun) {
		weft__spin_lock(&t->wait_lock);
		begun = t->waiting != NULL;
		weft__spin_unlock(&t->wait_lock);
		/* The lock free a while: taken back at once, it starved the
		 * selector's wait_begin of it (a lock with no fairness) until
		 * some other thread happened to preempt this one. */
		for (int i = 0; !begun && i < 64; i++)
			weft__cpu_relax();
	}
	int64_t until = weft_now() + x->delay_us * WEFT_USEC;
	while (weft_now() < until)
		;
	ck_assert_int_eq(weft_cancel(x->t), 0);
	return NULL;
}

static void *tonly_main(void *arg)
{
	struct tonly *x = malloc(sizeof(*x));

	ck_assert_ptr_nonnull(x);
	for (int round = 0; round < 200; round++) {
		struct weft_deadline d;
		pthread_t th;
		void *res;

		for (int i = 0; i < WEFT_SELECT_MAX; i++)
			x->c[i] = (struct weft_select_case)WEFT_CASE_TIMEOUT(
				10 * WEFT_SEC);
		atomic_store(&x->task, NULL);
		x->delay_us = round % 16;
		ck_assert_int_eq(pthread_create(&th, NULL, tonly_canceller, x),
				 0);
		ck_assert_int_eq(weft_spawn(&x->t, tonly_selector, x), 0);
		atomic_store(&x->task, x->t.task);
		ck_assert_int_eq(weft_deadline_enter(&d, 5 * WEFT_SEC), 0);
		int r = weft_join(x->t, &res);
		weft_deadline_leave(&d);
		ck_assert_msg(r == 0, "round %d: the cancelled select hangs",
			      round);
		ck_assert_int_eq((intptr_t)res, -ECANCELED);
		ck_assert_int_eq(pthread_join(th, NULL), 0);
	}
	free(x);
	return NULL;
}

START_TEST(timeouts_only_cancelled)
{
	weft_test_run(tonly_main, NULL, 2);
}
END_TEST

START_TEST(stress)
{
	weft_test_run(stress_main, NULL, 0);
}
END_TEST

/* ---- a timeout case and a deadline at one instant ----------------------- */

/*
 * time.h's tie rule: a timeout case due at the very instant of the
 * enclosing deadline wins, as a sleep to that instant returns 0
 * (test_timer's tie). The hook puts the deadline at the instant the select
 * computed for its timeout, as the wait begins; with `late` it also spins
 * past that instant there, so the wait's begin, not the timer, finds the
 * deadline passed: the same tie, met earlier.
 */
static struct weft_deadline tie_scope;
static bool tie_late;

static void tie_at_timeout(int64_t until)
{
	ck_assert_int_eq(weft_deadline_enter_at(&tie_scope, until), 0);
	while (tie_late && weft_now() < until)
		;
}

static void *tie_main(void *arg)
{
	struct weft_event e;
	struct weft_select_case cs[] = { WEFT_CASE_EVENT(&e),
					 WEFT_CASE_TIMEOUT(20 * WEFT_MSEC) };

	ck_assert_int_eq(weft_event_init(&e), 0);
	weft__select_before_wait = tie_at_timeout;
	for (int late = 0; late < 2; late++) {
		tie_late = late;
		cs[1].status = -1;
		ck_assert_int_eq(weft_select(cs, 2), 1);
		ck_assert_int_eq(cs[1].status, 0);
		ck_assert_int_eq(weft_deadline_leave(&tie_scope), 1);
		ck_assert(weft__waitq_empty(&e.wq));
	}
	/* A deadline before the timeout, by however little, wins. */
	weft__select_before_wait = NULL;
	ck_assert_int_eq(weft_deadline_enter(&tie_scope, 20 * WEFT_MSEC), 0);
	cs[1].timeout = 20 * WEFT_MSEC + 1;
	ck_assert_int_eq(weft_select(cs, 2), -ETIMEDOUT);
	ck_assert_int_eq(weft_deadline_leave(&tie_scope), 1);
	return NULL;
}

START_TEST(timeout_ties_deadline)
{
	weft_test_run(tie_main, NULL, 1);
}
END_TEST

/*
 * A deadline strictly before the timeout case wins even when the select
 * comes to look only once both have passed: its wait began before the
 * deadline, then the select was held up before it linked its cases (its
 * worker preempted, or, here, a plain thread holding a case's lock, as one
 * preempted inside weft_event_set would). Its timer, armed for the
 * deadline on a worker busy with that very select, has not fired yet, so
 * linking meets the timeout due and the deadline passed: the deadline came
 * first, and the select must say -ETIMEDOUT, as a sleep does
 * (test_timer's tie), not complete its timeout case. One worker: no
 * monitor fires the timer meanwhile.
 */
struct late_link {
	struct weft_event e;
	int64_t deadline;
	atomic_bool held;
};

static void *late_link_holder(void *arg)
{
	struct late_link *l = arg;

	weft__spin_lock(&l->e.wq.lock);
	atomic_store(&l->held, true);
	/* Past the deadline and the timeout case (a millisecond after it,
	 * plus the time the task takes to compute it), with room. */
	while (weft_now() < l->deadline + 50 * WEFT_MSEC)
		usleep(1000);
	weft__spin_unlock(&l->e.wq.lock);
	return NULL;
}

static void *late_link_main(void *arg)
{
	struct late_link l = { .held = false };
	struct weft_deadline d;
	pthread_t th;

	ck_assert_int_eq(weft_event_init(&l.e), 0);
	l.deadline = weft_now() + 20 * WEFT_MSEC;
	struct weft_select_case cs[] = { WEFT_CASE_EVENT(&l.e),
					 WEFT_CASE_TIMEOUT(21 * WEFT_MSEC) };
	ck_assert_int_eq(pthread_create(&th, NULL, late_link_holder, &l), 0);
	while (!atomic_load(&l.held))
		;
	ck_assert_int_eq(weft_deadline_enter_at(&d, l.deadline), 0);
	int r = weft_select(cs, 2);
	ck_assert_int_eq(weft_deadline_leave(&d), 1);
	ck_assert_int_eq(pthread_join(th, NULL), 0);
	ck_assert_int_eq(r, -ETIMEDOUT);
	ck_assert(weft__waitq_empty(&l.e.wq));
	return NULL;
}

START_TEST(deadline_before_timeout_seen_late)
{
	weft_test_run(late_link_main, NULL, 1);
}
END_TEST

/* A stale handle whose task's struct was reused for the caller itself
 * (the task joined, its struct recycled into the next spawn: the
 * caller) is a stale handle: weft_join says -ESRCH, and so must a JOIN
 * case (its status) and as_completed (which yields the slot and goes on).
 * The select compared the handle's struct with the caller's before it
 * looked at the generation, and said -EDEADLK: as_completed's loop then
 * stopped at that slot for good. */
struct reuse {
	weft_task_t stale; /* a handle joined before the collector spawned */
	int join, select, status, first, next, next_status, left;
};

static void *returns_at_once(void *arg)
{
	return arg;
}

static void *reuse_collector(void *arg)
{
	struct reuse *r = arg;
	weft_task_t live;

	if (weft_current().task != r->stale.task)
		return NULL; /* not reused this time: the caller tries again */
	r->join = weft_join(r->stale, NULL);
	struct weft_select_case c[] = { WEFT_CASE_JOIN(r->stale, NULL) };
	r->select = weft_select(c, 1);
	r->status = c[0].status;
	weft_task_t one[1] = { r->stale };
	r->first = weft_wait_first(one, 1, NULL, NULL);
	ck_assert_int_eq(weft_spawn(&live, sleeper,
				    (void *)(intptr_t)WEFT_MSEC),
			 0);
	weft_task_t t[2] = { r->stale, live };
	struct weft_as_completed it;
	ck_assert_int_eq(weft_as_completed_init(&it, t, 2), 0);
	r->next = weft_as_completed_next(&it, NULL, &r->next_status);
	while (weft_as_completed_next(&it, NULL, NULL) >= 0)
		;
	r->left = it.left;
	if (t[1].task)
		ck_assert_int_eq(weft_join(t[1], NULL), 0);
	return (void *)1;
}

static void *stale_self_main(void *arg)
{
	for (int tries = 0; tries < 100; tries++) {
		struct reuse r = { .join = 1 };
		weft_task_t b, c;
		void *reused;

		ck_assert_int_eq(weft_spawn(&b, returns_at_once, NULL), 0);
		r.stale = b;
		ck_assert_int_eq(weft_join(b, NULL), 0); /* b goes stale */
		ck_assert_int_eq(weft_spawn(&c, reuse_collector, &r), 0);
		ck_assert_int_eq(weft_join(c, &reused), 0);
		if (!reused)
			continue;
		ck_assert_msg(r.join == -ESRCH && r.select == 0 &&
				      r.status == -ESRCH && r.first == -ESRCH &&
				      r.next == 0 && r.next_status == -ESRCH &&
				      r.left == 0,
			      "join %d; select %d status %d; wait_first %d; "
			      "as_completed_next %d status %d, %d left",
			      r.join, r.select, r.status, r.first, r.next,
			      r.next_status, r.left);
		return NULL;
	}
	ck_abort_msg("no spawn reused a joined task's struct");
	return NULL;
}

START_TEST(stale_handle_of_self)
{
	weft_test_run(stale_self_main, NULL, 1);
}
END_TEST

/*
 * The mirror of deadline_before_timeout_seen_late: the timeout case is due
 * before the deadline, counted from when the call began (select.h), and
 * the select is held up before it has even tried its cases (a plain
 * thread holds the queue's lock, which the GET case's try takes). Once it
 * gets past, both have passed; the timeout came first, so the timeout case
 * wins, as a sleep of that length begun then returns 0. The select timed
 * its cases from after its tries instead: its timeout case was due 2 ms
 * after the lock was let go, past the deadline, and it said -ETIMEDOUT.
 *
 * With a set event after the timeout case, the timeout still wins: it was
 * due before its try, so it is ready in array order. The tries took only a
 * timeout of 0 at once, and the event, tried next, won.
 */
struct late_try {
	struct weft_queue q;
	_Atomic int64_t deadline; /* 0 until the task took it */
	atomic_bool held;
};

static void *late_try_holder(void *arg)
{
	struct late_try *l = arg;
	int64_t deadline;

	weft__spin_lock(&l->q.getters.lock);
	atomic_store(&l->held, true);
	while (!(deadline = atomic_load(&l->deadline)))
		usleep(100);
	/* Past the deadline, and so past the timeout case, with room. */
	while (weft_now() < deadline + 40 * WEFT_MSEC)
		usleep(1000);
	weft__spin_unlock(&l->q.getters.lock);
	return NULL;
}

static void *late_try_main(void *arg)
{
	int n = (int)(intptr_t)arg; /* 3: with the set event */
	struct late_try l = { .deadline = 0, .held = false };
	struct weft_deadline d;
	struct weft_event set = WEFT_EVENT_INIT;
	pthread_t th;
	uint64_t v = 0;

	ck_assert_int_eq(weft_queue_init(&l.q, sizeof(uint64_t), 0), 0);
	ck_assert_int_eq(weft_event_set(&set), 0);
	struct weft_select_case cs[] = { WEFT_CASE_GET(&l.q, &v),
					 WEFT_CASE_TIMEOUT(2 * WEFT_MSEC),
					 WEFT_CASE_EVENT(&set) };
	ck_assert_int_eq(pthread_create(&th, NULL, late_try_holder, &l), 0);
	while (!atomic_load(&l.held))
		;
	/* The timeout case is due 2 ms after the select begins, so the
	 * deadline's margin must outlast a preemption between here and
	 * there: wider under the sanitizers. */
	int64_t deadline = weft_now() +
			   (WEFT_TEST_SCALE >= 100 ? 20 : 200) * WEFT_MSEC;
	ck_assert_int_eq(weft_deadline_enter_at(&d, deadline), 0);
	atomic_store(&l.deadline, deadline);
	int r = weft_select(cs, n);
	ck_assert_int_eq(weft_deadline_leave(&d), 1);
	ck_assert_int_eq(pthread_join(th, NULL), 0);
	ck_assert_int_eq(r, 1);
	ck_assert_int_eq(cs[1].status, 0);
	ck_assert(weft__waitq_empty(&l.q.getters));
	ck_assert_int_eq(weft_queue_destroy(&l.q), 0);
	return NULL;
}

START_TEST(timeout_before_deadline_tried_late)
{
	weft_test_run(late_try_main, (void *)(intptr_t)2, 1);
	weft_test_run(late_try_main, (void *)(intptr_t)3, 1);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("sync_select");
	TCase *tc = tcase_create("select");
	tcase_set_timeout(tc, 300);
	tcase_add_test(tc, kinds);
	tcase_add_test(tc, ready);
	tcase_add_test(tc, skip);
	tcase_add_test(tc, cancel);
	tcase_add_test(tc, race);
	tcase_add_test(tc, thread);
	tcase_add_test(tc, thread_race);
	tcase_add_test(tc, first);
	tcase_add_test(tc, first_many);
	tcase_add_test(tc, first_stale);
	tcase_add_test(tc, bad);
	tcase_add_test(tc, held_lock);
	tcase_add_test(tc, stress);
	tcase_add_test(tc, same_queue_get_put);
	tcase_add_test(tc, same_queue_window);
	tcase_add_test(tc, timeouts_only_cancelled);
	tcase_add_test(tc, timeout_ties_deadline);
	tcase_add_test(tc, deadline_before_timeout_seen_late);
	tcase_add_test(tc, stale_handle_of_self);
	tcase_add_test(tc, timeout_before_deadline_tried_late);
	suite_add_tcase(s, tc);
	return weft_test_main(s);
}
