/* weft_queue: the seed's scenario, FIFO/LIFO/priority order, bounded puts,
 * direct hand-over, task_done/join, shutdown, cancellation and timeouts,
 * growth of heap storage, caller storage, bad input. */
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>
#include "sync_test_util.h"
#include "sync/waitq.h"
#include "sync/select.h"

/* Waits (yielding) until list q of a queue has n waiters linked. Every
 * list of a weft_queue is guarded by the getters' lock. */
static void wait_queued(struct weft_waitq *lock, struct weft_waitq *q, int n)
{
	for (;;) {
		int k = 0;
		weft__waitq_lock(lock);
		for (struct weft__waiter *w = q->head; w; w = w->next)
			k++;
		weft__waitq_unlock(lock);
		if (k == n)
			return;
		if (weft_sleep(100 * WEFT_USEC) == -EPERM)
			usleep(100); /* a plain thread */
	}
}

/* ---- the seed: one task puts 100, another gets it ----------------------- */

static struct weft_queue seed_q = WEFT_QUEUE_INIT(sizeof(int), 2);

static void *seed_putter(void *arg)
{
	log_add("w1 start");
	int v = 100;
	ck_assert_int_eq(weft_queue_put(&seed_q, &v), 0);
	log_add("w1 end");
	return NULL;
}

static void *seed_getter(void *arg)
{
	log_add("w2 start");
	int x = 0;
	ck_assert_int_eq(weft_queue_get(&seed_q, &x), 0);
	ck_assert_int_eq(x, 100);
	log_add("100");
	log_add("w2 end");
	return NULL;
}

static void *seed_main(void *arg)
{
	weft_task_t a, b;
	log_reset();
	ck_assert_int_eq(weft_spawn(&b, seed_getter, NULL), 0);
	ck_assert_int_eq(weft_spawn(&a, seed_putter, NULL), 0);
	ck_assert_int_eq(weft_join(a, NULL), 0);
	ck_assert_int_eq(weft_join(b, NULL), 0);
	/* worker2 start, worker1 start, worker1 end, 100, worker2 end */
	ck_assert_int_eq(log_n, 5);
	ck_assert_int_lt(log_pos("w1 start"), log_pos("100"));
	ck_assert_int_lt(log_pos("w2 start"), log_pos("100"));
	ck_assert_int_lt(log_pos("w1 start"), log_pos("w1 end"));
	ck_assert_int_lt(log_pos("100"), log_pos("w2 end"));
	ck_assert_int_eq(weft_queue_size(&seed_q), 0);
	return NULL;
}

START_TEST(seed)
{
	weft_test_run(seed_main, NULL, 2);
	weft_test_run(seed_main, NULL, 1);
	ck_assert_int_eq(weft_queue_destroy(&seed_q), 0);
}
END_TEST

/* ---- order of the three kinds ------------------------------------------- */

static int cmp_int(const void *a, const void *b)
{
	int x = *(const int *)a, y = *(const int *)b;
	return (x > y) - (x < y);
}

static void *kinds_main(void *arg)
{
	static const int in[] = { 5, 1, 4, 1, 5, 9, 2, 6, 5, 3, 5, 8, 9, 7 };
	const int n = sizeof(in) / sizeof(in[0]);
	int out;
	struct weft_queue q;

	ck_assert_int_eq(weft_queue_init(&q, sizeof(int), 0), 0);
	for (int i = 0; i < n; i++)
		ck_assert_int_eq(weft_queue_put(&q, &in[i]), 0);
	ck_assert_int_eq(weft_queue_size(&q), n);
	for (int i = 0; i < n; i++) {
		ck_assert_int_eq(weft_queue_get(&q, &out), 0);
		ck_assert_int_eq(out, in[i]);
	}
	ck_assert_int_eq(weft_queue_try_get(&q, &out), -EAGAIN);
	ck_assert_int_eq(weft_queue_destroy(&q), 0);

	struct weft_queue l = WEFT_LIFO_QUEUE_INIT(sizeof(int), 0);
	for (int i = 0; i < n; i++)
		ck_assert_int_eq(weft_queue_put(&l, &in[i]), 0);
	for (int i = n - 1; i >= 0; i--) {
		ck_assert_int_eq(weft_queue_get(&l, &out), 0);
		ck_assert_int_eq(out, in[i]);
	}
	ck_assert_int_eq(weft_queue_destroy(&l), 0);

	int sorted[sizeof(in) / sizeof(in[0])];
	memcpy(sorted, in, sizeof(in));
	qsort(sorted, (size_t)n, sizeof(int), cmp_int);
	struct weft_queue p = WEFT_PRIORITY_QUEUE_INIT(sizeof(int), 0, cmp_int);
	for (int i = 0; i < n; i++)
		ck_assert_int_eq(weft_queue_put(&p, &in[i]), 0);
	for (int i = 0; i < n; i++) {
		ck_assert_int_eq(weft_queue_get(&p, &out), 0);
		ck_assert_int_eq(out, sorted[i]);
	}
	/* A bigger random heap. */
	unsigned seed = 1;
	for (int i = 0; i < 1000; i++) {
		int v = (int)(rand_r(&seed) % 100);
		ck_assert_int_eq(weft_queue_put(&p, &v), 0);
	}
	int prev = -1;
	for (int i = 0; i < 1000; i++) {
		ck_assert_int_eq(weft_queue_get(&p, &out), 0);
		ck_assert_int_ge(out, prev);
		prev = out;
	}
	ck_assert_int_eq(weft_queue_destroy(&p), 0);
	return NULL;
}

START_TEST(kinds)
{
	weft_test_run(kinds_main, NULL, 1);
}
END_TEST

/* ---- growth: the FIFO ring unwraps when it grows ------------------------ */

struct big {
	uint32_t seq;
	char pad[29];
};

static void *growth_main(void *arg)
{
	struct weft_queue q;
	ck_assert_int_eq(weft_queue_init(&q, sizeof(struct big), 0), 0);
	uint32_t put = 0, got = 0;
	struct big b = { 0 };
	/* Keep the head moving so growth happens while wrapped. */
	for (int round = 0; round < 12; round++) {
		for (int i = 0; i < 1500 * (round + 1); i++) {
			b.seq = put++;
			ck_assert_int_eq(weft_queue_put(&q, &b), 0);
		}
		for (int i = 0; i < 1000 * (round + 1); i++) {
			ck_assert_int_eq(weft_queue_get(&q, &b), 0);
			ck_assert_uint_eq(b.seq, got++);
		}
	}
	while (weft_queue_try_get(&q, &b) == 0)
		ck_assert_uint_eq(b.seq, got++);
	ck_assert_uint_eq(got, put);
	ck_assert_int_eq(weft_queue_destroy(&q), 0);
	return NULL;
}

START_TEST(growth)
{
	weft_test_run(growth_main, NULL, 1);
}
END_TEST

/* ---- bounded: putters wait, in order, and hand over --------------------- */

struct pctx {
	struct weft_queue *q;
	int v;
	bool timed;
};

static void *putter(void *arg)
{
	struct pctx *p = arg;
	struct weft_deadline d;
	if (p->timed)
		ck_assert_int_eq(weft_deadline_enter(&d, TIMED_WAITER_NS), 0);
	long r = weft_queue_put(p->q, &p->v);
	if (p->timed)
		weft_deadline_leave(&d);
	return (void *)r;
}

static void *getter(void *arg)
{
	int v = -1;
	long r = weft_queue_get(arg, &v);
	return (void *)(r ? r : v);
}

static void *timed_getter(void *arg)
{
	struct weft_deadline d;
	ck_assert_int_eq(weft_deadline_enter(&d, TIMED_WAITER_NS), 0);
	void *r = getter(arg);
	weft_deadline_leave(&d);
	return r;
}

static void *bounded_main(void *arg)
{
	int storage[2];
	struct weft_queue q;
	struct weft_queue_opts o = { .elem_size = sizeof(int),
				     .capacity = 2,
				     .storage = storage };
	ck_assert_int_eq(weft_queue_init_opts(&q, &o), 0);
	int v = 1, out;
	ck_assert_int_eq(weft_queue_try_put(&q, &v), 0);
	v = 2;
	ck_assert_int_eq(weft_queue_put(&q, &v), 0);
	v = 99;
	ck_assert_int_eq(weft_queue_try_put(&q, &v), -EAGAIN);

	/* Four putters wait; one is cancelled, one times out. */
	struct pctx p[4];
	weft_task_t t[4];
	void *res;
	for (int i = 0; i < 4; i++) {
		p[i] = (struct pctx){ &q, 3 + i, i == 2 };
		ck_assert_int_eq(weft_spawn(&t[i], putter, &p[i]), 0);
		wait_queued(&q.getters, &q.putters, i + 1);
	}
	ck_assert_int_eq(weft_cancel(t[1]), 0);
	ck_assert_int_eq(weft_join(t[1], &res), 0);
	ck_assert_int_eq((long)res, -ECANCELED);
	ck_assert_int_eq(weft_join(t[2], &res), 0);
	ck_assert_int_eq((long)res, -ETIMEDOUT);
	ck_assert_int_eq(weft_queue_size(&q), 2);
	/* 1 2 then 3 and 6 moved in by the gets; 4 and 5 never went in. */
	int want[] = { 1, 2, 3, 6 };
	for (int i = 0; i < 4; i++) {
		ck_assert_int_eq(weft_queue_get(&q, &out), 0);
		ck_assert_int_eq(out, want[i]);
	}
	ck_assert_int_eq(weft_join(t[0], &res), 0);
	ck_assert_int_eq((long)res, 0);
	ck_assert_int_eq(weft_join(t[3], &res), 0);
	ck_assert_int_eq((long)res, 0);

	/* Getters wait; a put hands its item straight to the oldest; a
	 * cancelled or timed-out getter takes nothing. */
	weft_task_t g[3];
	ck_assert_int_eq(weft_spawn(&g[0], getter, &q), 0);
	wait_queued(&q.getters, &q.getters, 1);
	ck_assert_int_eq(weft_spawn(&g[1], timed_getter, &q), 0);
	ck_assert_int_eq(weft_spawn(&g[2], getter, &q), 0);
	wait_queued(&q.getters, &q.getters, 3);
	ck_assert_int_eq(weft_join(g[1], &res), 0);
	ck_assert_int_eq((long)res, -ETIMEDOUT);
	v = 10;
	ck_assert_int_eq(weft_queue_put(&q, &v), 0);
	ck_assert_int_eq(weft_join(g[0], &res), 0);
	ck_assert_int_eq((long)res, 10);
	ck_assert_int_eq(weft_queue_size(&q), 0);
	ck_assert_int_eq(weft_cancel(g[2]), 0);
	ck_assert_int_eq(weft_join(g[2], &res), 0);
	ck_assert_int_eq((long)res, -ECANCELED);
	v = 11;
	ck_assert_int_eq(weft_queue_put(&q, &v), 0);
	ck_assert_int_eq(weft_queue_size(&q), 1);
	ck_assert_int_eq(weft_queue_get(&q, &out), 0);
	ck_assert_int_eq(out, 11);
	ck_assert_int_eq(weft_queue_destroy(&q), 0);
	return NULL;
}

START_TEST(bounded)
{
	weft_test_run(bounded_main, NULL, 2);
}
END_TEST

/* ---- task_done and join ------------------------------------------------- */

static void *consumer(void *arg)
{
	struct weft_queue *q = arg;
	int v;
	while (weft_queue_get(q, &v) == 0) {
		weft_sleep(100 * WEFT_USEC);
		ck_assert_int_eq(weft_queue_task_done(q), 0);
	}
	return NULL;
}

static void *joiner(void *arg)
{
	return (void *)(long)weft_queue_join(arg);
}

static void *join_main(void *arg)
{
	struct weft_queue q = WEFT_QUEUE_INIT(sizeof(int), 4);
	void *res;
	ck_assert_int_eq(weft_queue_join(&q), 0); /* nothing put */
	ck_assert_int_eq(weft_queue_task_done(&q), -EINVAL);
	weft_task_t c[2], j;
	for (int i = 0; i < 2; i++)
		ck_assert_int_eq(weft_spawn(&c[i], consumer, &q), 0);
	for (int i = 0; i < 50; i++)
		ck_assert_int_eq(weft_queue_put(&q, &i), 0);
	/* A joiner that times out leaves the others waiting. */
	ck_assert_int_eq(weft_spawn(&j, joiner, &q), 0);
	ck_assert_int_eq(weft_cancel(j), 0);
	ck_assert_int_eq(weft_join(j, &res), 0);
	ck_assert((long)res == -ECANCELED || (long)res == 0);
	ck_assert_int_eq(weft_queue_join(&q), 0);
	ck_assert_int_eq(weft_queue_size(&q), 0);
	ck_assert_int_eq(weft_queue_task_done(&q), -EINVAL);
	ck_assert_int_eq(weft_queue_shutdown(&q, false), 0);
	for (int i = 0; i < 2; i++)
		ck_assert_int_eq(weft_join(c[i], NULL), 0);
	ck_assert_int_eq(weft_queue_destroy(&q), 0);
	return NULL;
}

START_TEST(task_done_join)
{
	weft_test_run(join_main, NULL, 2);
}
END_TEST

/* ---- shutdown ----------------------------------------------------------- */

static void *shutdown_main(void *arg)
{
	struct weft_queue q = WEFT_QUEUE_INIT(sizeof(int), 2);
	int v = 1, out;
	void *res;
	weft_task_t g[2], p[2];

	/* Waiting getters wake with -EPIPE. */
	for (int i = 0; i < 2; i++)
		ck_assert_int_eq(weft_spawn(&g[i], getter, &q), 0);
	wait_queued(&q.getters, &q.getters, 2);
	ck_assert_int_eq(weft_queue_shutdown(&q, false), 0);
	for (int i = 0; i < 2; i++) {
		ck_assert_int_eq(weft_join(g[i], &res), 0);
		ck_assert_int_eq((long)res, -EPIPE);
	}
	ck_assert_int_eq(weft_queue_put(&q, &v), -EPIPE);
	ck_assert_int_eq(weft_queue_try_put(&q, &v), -EPIPE);
	ck_assert_int_eq(weft_queue_get(&q, &out), -EPIPE);
	ck_assert_int_eq(weft_queue_shutdown(&q, false), 0); /* twice */
	ck_assert_int_eq(weft_queue_destroy(&q), 0);

	/* Waiting putters wake with -EPIPE; get drains, then -EPIPE. */
	struct weft_queue q2 = WEFT_QUEUE_INIT(sizeof(int), 2);
	struct pctx pc[2] = { { &q2, 7, false }, { &q2, 8, false } };
	for (v = 1; v <= 2; v++)
		ck_assert_int_eq(weft_queue_put(&q2, &v), 0);
	for (int i = 0; i < 2; i++)
		ck_assert_int_eq(weft_spawn(&p[i], putter, &pc[i]), 0);
	wait_queued(&q2.getters, &q2.putters, 2);
	ck_assert_int_eq(weft_queue_shutdown(&q2, false), 0);
	for (int i = 0; i < 2; i++) {
		ck_assert_int_eq(weft_join(p[i], &res), 0);
		ck_assert_int_eq((long)res, -EPIPE);
	}
	ck_assert_int_eq(weft_queue_get(&q2, &out), 0);
	ck_assert_int_eq(out, 1);
	ck_assert_int_eq(weft_queue_try_get(&q2, &out), 0);
	ck_assert_int_eq(out, 2);
	ck_assert_int_eq(weft_queue_get(&q2, &out), -EPIPE);
	ck_assert_int_eq(weft_queue_try_get(&q2, &out), -EPIPE);
	ck_assert_int_eq(weft_queue_destroy(&q2), 0);

	/* Immediate: the rest is dropped and counted done; join returns. */
	struct weft_queue q3 = WEFT_QUEUE_INIT(sizeof(int), 0);
	for (v = 0; v < 5; v++)
		ck_assert_int_eq(weft_queue_put(&q3, &v), 0);
	weft_task_t j;
	ck_assert_int_eq(weft_spawn(&j, joiner, &q3), 0);
	wait_queued(&q3.getters, &q3.joiners, 1);
	ck_assert_int_eq(weft_queue_shutdown(&q3, true), 0);
	ck_assert_int_eq(weft_join(j, &res), 0);
	ck_assert_int_eq((long)res, 0);
	ck_assert_int_eq(weft_queue_size(&q3), 0);
	ck_assert_int_eq(weft_queue_get(&q3, &out), -EPIPE);
	ck_assert_int_eq(weft_queue_destroy(&q3), 0);
	return NULL;
}

START_TEST(queue_shutdown)
{
	weft_test_run(shutdown_main, NULL, 2);
}
END_TEST

/* ---- a put (get) between the getter's (putter's) try and its lock ------ */

/* The getter found the queue empty lock-free (the putter found it full);
 * the other side's whole call runs before it takes the queue's lock
 * (window_open), as weft_queue_put (get) does it under that lock. The
 * waiter must find the item (the room) there, not wait beside it. Its
 * deadline bounds the wait that would follow. */
struct qwin {
	struct weft_queue q;
	uint64_t item; /* what the waiter got or put */
};

static void put_in_window(void *arg)
{
	struct qwin *c = arg;
	struct weft__waiter *wake = NULL;
	uint64_t v = 7;

	ck_assert_int_eq(weft__queue_put_locked(&c->q, &v, &wake), 0);
	ck_assert_ptr_null(wake); /* nobody waited yet */
}

static void get_in_window(void *arg)
{
	struct qwin *c = arg;
	struct weft__waiter *wake = NULL;
	uint64_t v = 0;

	ck_assert_int_eq(weft__queue_get_locked(&c->q, &v, &wake), 0);
	ck_assert_uint_eq(v, 1);
	ck_assert_ptr_null(wake);
}

static void *window_getter(void *arg)
{
	struct qwin *c = arg;
	struct weft_deadline d;

	ck_assert_int_eq(weft_deadline_enter(&d, HANG_NS), 0);
	long r = weft_queue_get(&c->q, &c->item);
	weft_deadline_leave(&d);
	return (void *)r;
}

static void *window_putter(void *arg)
{
	struct qwin *c = arg;
	struct weft_deadline d;

	ck_assert_int_eq(weft_deadline_enter(&d, HANG_NS), 0);
	long r = weft_queue_put(&c->q, &c->item);
	weft_deadline_leave(&d);
	return (void *)r;
}

/* Returns whether the round hit the window. */
static bool window_round(bool get)
{
	struct qwin c = { .item = 2 };
	struct window win = { .q = &c.q.getters, /* the queue's one lock */
			      .other = get ? put_in_window : get_in_window,
			      .arg = &c,
			      .after_try = true }; /* tries under the lock */
	uint64_t v = 1;
	weft_task_t t;
	void *res;

	ck_assert_int_eq(weft_queue_init(&c.q, sizeof(uint64_t), 1), 0);
	if (!get)
		ck_assert_int_eq(weft_queue_put(&c.q, &v), 0); /* full */
	window_open(&win, &t, get ? window_getter : window_putter, &c);
	ck_assert_int_eq(weft_join(t, &res), 0);
	bool hit = window_close(&win);
	ck_assert_int_eq((long)res, 0);
	ck_assert_ptr_null(c.q.getters.head);
	ck_assert_ptr_null(c.q.putters.head);
	if (get) {
		ck_assert_uint_eq(c.item, 7);
		ck_assert_int_eq(weft_queue_size(&c.q), 0);
	} else {
		ck_assert_int_eq(weft_queue_try_get(&c.q, &v), 0);
		ck_assert_uint_eq(v, 2);
	}
	ck_assert_int_eq(weft_queue_destroy(&c.q), 0);
	return hit;
}

static void *window_main(void *arg)
{
	for (int get = 0; get < 2; get++) {
		int round = 0;

		while (!window_round(get) && ++round < 5)
			;
		ck_assert_int_lt(round, 5);
	}
	return NULL;
}

START_TEST(other_side_before_wait)
{
	weft_test_run(window_main, NULL, 1);
}
END_TEST

/* ---- bad input ---------------------------------------------------------- */

static void *errors_main(void *arg)
{
	struct weft_queue q;
	int v = 0;
	struct weft_queue_opts o = { .elem_size = 0 };
	ck_assert_int_eq(weft_queue_init(&q, 0, 1), -EINVAL);
	ck_assert_int_eq(weft_queue_init(NULL, 4, 1), -EINVAL);
	ck_assert_int_eq(weft_queue_init_opts(&q, &o), -EINVAL);
	ck_assert_int_eq(weft_queue_init_opts(&q, NULL), -EINVAL);
	o = (struct weft_queue_opts){ .elem_size = 4,
				      .kind = WEFT_QUEUE_PRIORITY };
	ck_assert_int_eq(weft_queue_init_opts(&q, &o), -EINVAL); /* no cmp */
	o = (struct weft_queue_opts){ .elem_size = 4, .storage = &v };
	ck_assert_int_eq(weft_queue_init_opts(&q, &o), -EINVAL); /* unbounded */
	o = (struct weft_queue_opts){ .elem_size = 4, .kind = 7 };
	ck_assert_int_eq(weft_queue_init_opts(&q, &o), -EINVAL);
	o = (struct weft_queue_opts){ .elem_size = SIZE_MAX / 2,
				      .capacity = 4 };
	ck_assert_int_eq(weft_queue_init_opts(&q, &o), -EINVAL);

	ck_assert_int_eq(weft_queue_init(&q, sizeof(int), 1), 0);
	ck_assert_int_eq(weft_queue_put(NULL, &v), -EINVAL);
	ck_assert_int_eq(weft_queue_put(&q, NULL), -EINVAL);
	ck_assert_int_eq(weft_queue_get(&q, NULL), -EINVAL);
	ck_assert_int_eq(weft_queue_get(NULL, &v), -EINVAL);
	ck_assert_int_eq(weft_queue_try_put(NULL, &v), -EINVAL);
	ck_assert_int_eq(weft_queue_try_get(NULL, &v), -EINVAL);
	ck_assert_int_eq(weft_queue_size(NULL), -EINVAL);
	ck_assert_int_eq(weft_queue_task_done(NULL), -EINVAL);
	ck_assert_int_eq(weft_queue_join(NULL), -EINVAL);
	ck_assert_int_eq(weft_queue_shutdown(NULL, false), -EINVAL);
	ck_assert_int_eq(weft_queue_destroy(NULL), -EINVAL);
	struct weft_queue zero = { 0 }; /* never initialised: elem_size 0 */
	ck_assert_int_eq(weft_queue_put(&zero, &v), -EINVAL);
	ck_assert_int_eq(weft_queue_get(&zero, &v), -EINVAL);
	/* A priority queue from the static initialiser without a comparator
	 * has nothing to order by: refused, where a put crashed before. */
	struct weft_queue nocmp =
		WEFT_PRIORITY_QUEUE_INIT(sizeof(int), 8, NULL);
	for (int i = 0; i < 2; i++) {
		ck_assert_int_eq(weft_queue_put(&nocmp, &v), -EINVAL);
		ck_assert_int_eq(weft_queue_try_put(&nocmp, &v), -EINVAL);
	}
	ck_assert_int_eq(weft_queue_get(&nocmp, &v), -EINVAL);
	ck_assert_int_eq(weft_queue_try_get(&nocmp, &v), -EINVAL);
	struct weft_select_case put_case = { .kind = WEFT_SELECT_PUT,
					     .queue = &nocmp,
					     .item = &v };
	ck_assert_int_eq(weft_select(&put_case, 1), -EINVAL);

	/* A getter waiting makes destroy refuse. */
	weft_task_t g;
	ck_assert_int_eq(weft_spawn(&g, getter, &q), 0);
	wait_queued(&q.getters, &q.getters, 1);
	ck_assert_int_eq(weft_queue_destroy(&q), -EBUSY);
	ck_assert_int_eq(weft_queue_put(&q, &v), 0);
	ck_assert_int_eq(weft_join(g, NULL), 0);
	ck_assert_int_eq(weft_queue_destroy(&q), 0);
	/* Cancelled: put and get fail at once only when they would wait. */
	ck_assert_int_eq(weft_queue_init(&q, sizeof(int), 1), 0);
	ck_assert_int_eq(weft_cancel(weft_current()), 0);
	ck_assert_int_eq(weft_queue_put(&q, &v), 0);
	ck_assert_int_eq(weft_queue_put(&q, &v), -ECANCELED);
	ck_assert_int_eq(weft_queue_size(&q), 1);
	ck_assert_int_eq(weft_queue_get(&q, &v), 0);
	ck_assert_int_eq(weft_queue_get(&q, &v), -ECANCELED);
	ck_assert_int_eq(weft_queue_join(&q), -ECANCELED);
	ck_assert_int_eq(weft_queue_destroy(&q), 0);
	return NULL;
}

START_TEST(errors)
{
	weft_test_run(errors_main, NULL, 2);
}
END_TEST

/* A join with nothing unfinished needs no wait: a cancelled task gets 0;
 * with an item unfinished it must wait, and so hears -ECANCELED. */
static void *join_now_main(void *arg)
{
	struct weft_queue q = WEFT_QUEUE_INIT(sizeof(int), 4);
	int v = 1;

	ck_assert_int_eq(weft_cancel(weft_current()), 0);
	ck_assert_int_eq(weft_queue_join(&q), 0);
	ck_assert_int_eq(weft_queue_put(&q, &v), 0); /* room: no wait */
	ck_assert_int_eq(weft_queue_join(&q), -ECANCELED);
	ck_assert_int_eq(weft_queue_get(&q, &v), 0);
	ck_assert_int_eq(weft_queue_task_done(&q), 0);
	ck_assert_int_eq(weft_queue_join(&q), 0);
	ck_assert_int_eq(weft_queue_destroy(&q), 0);
	return NULL;
}

START_TEST(join_with_nothing_unfinished)
{
	weft_test_run(join_now_main, NULL, 1);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("sync_queue");
	TCase *tc = tcase_create("queue");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, seed);
	tcase_add_test(tc, join_with_nothing_unfinished);
	tcase_add_test(tc, kinds);
	tcase_add_test(tc, growth);
	tcase_add_test(tc, bounded);
	tcase_add_test(tc, task_done_join);
	tcase_add_test(tc, queue_shutdown);
	tcase_add_test(tc, other_side_before_wait);
	tcase_add_test(tc, errors);
	suite_add_tcase(s, tc);
	return weft_test_main(s);
}
