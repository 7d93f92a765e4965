/* Cross-worker stress of the primitives with every worker busy, random
 * cancellations (weft_cancel from another task) and deadlines firing all
 * the while: mutual exclusion, semaphore admission, queue delivery
 * (every item exactly once, sums match), events and futures completed by
 * plain threads, conditions; and nothing left waiting at the end. */
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>
#include "sync_test_util.h"
#include "sync/waitq.h"

#define WORKERS 3

/* ---- chaos: cancels random victims now and then ------------------------- */

struct chaos {
	weft_task_t *victims;
	int n;
	int every_us;         /* mean pause between cancels */
	int percent;          /* chance a pick is cancelled */
	bool (*spare)(int i); /* never cancel these */
	volatile int stop;
	long cancels;
};

static void *chaos_task(void *arg)
{
	struct chaos *c = arg;
	uint64_t s = 88172645463325252ull;
	while (!__atomic_load_n(&c->stop, __ATOMIC_ACQUIRE)) {
		weft_sleep(
			(int64_t)(rnd(&s) % (2 * (uint64_t)c->every_us + 1)) *
			WEFT_USEC);
		int i = (int)(rnd(&s) % (uint64_t)c->n);
		if (c->spare && c->spare(i))
			continue;
		if ((int)(rnd(&s) % 100) < c->percent &&
		    weft_cancel(c->victims[i]) == 0)
			c->cancels++;
	}
	return NULL;
}

static void chaos_start(struct chaos *c, weft_task_t *h)
{
	c->stop = 0;
	c->cancels = 0;
	ck_assert_int_eq(weft_spawn(h, chaos_task, c), 0);
}

static void chaos_stop(struct chaos *c, weft_task_t h)
{
	__atomic_store_n(&c->stop, 1, __ATOMIC_RELEASE);
	ck_assert_int_eq(weft_join(h, NULL), 0);
}

/* A deadline some microseconds away, re-armed after it fires. */
static void deadline_random(struct weft_deadline *d, uint64_t *s, int max_us)
{
	ck_assert_int_eq(weft_deadline_enter(
				 d, (int64_t)(rnd(s) % (uint64_t)max_us + 1) *
					    WEFT_USEC),
			 0);
}

/* Evaluates call, a blocking weft call, one time in one_in under a random
 * deadline of up to max_us: the timeouts every stress fires at random. */
#define MAYBE_TIMED(s, one_in, max_us, call)                                   \
	({                                                                     \
		struct weft_deadline d_;                                       \
		bool timed_ = rnd(s) % (one_in) == 0;                          \
		if (timed_)                                                    \
			deadline_random(&d_, (s), (max_us));                   \
		int r_ = (call);                                               \
		if (timed_)                                                    \
			weft_deadline_leave(&d_);                              \
		r_;                                                            \
	})

/* ---- lock: never two inside --------------------------------------------- */

static struct weft_lock s_lock = WEFT_LOCK_INIT;
static int s_inside;
static long s_counter, s_iters;

static void *lock_worker(void *arg)
{
	uint64_t s = (uintptr_t)arg * 2654435761u + 1;
	long done = 0;
	for (long i = 0; i < s_iters; i++) {
		int r = MAYBE_TIMED(&s, 4, 50, weft_lock_acquire(&s_lock));
		if (r == -ECANCELED)
			break;
		if (r == -ETIMEDOUT)
			continue;
		ck_assert_int_eq(r, 0);
		ck_assert_int_eq(__atomic_add_fetch(&s_inside, 1,
						    __ATOMIC_RELAXED),
				 1);
		s_counter++;
		if (rnd(&s) % 16 == 0)
			weft_yield(); /* hold it across a switch */
		__atomic_sub_fetch(&s_inside, 1, __ATOMIC_RELAXED);
		done++;
		ck_assert_int_eq(weft_lock_release(&s_lock), 0);
	}
	return (void *)done;
}

static void *lock_main(void *arg)
{
	int n = 32;
	weft_task_t t[32], ch;
	struct chaos c = {
		.victims = t, .n = n, .every_us = 200, .percent = 30
	};
	s_iters = SCALED(4000);
	s_counter = 0;
	for (long i = 0; i < n; i++)
		ck_assert_int_eq(weft_spawn(&t[i], lock_worker, (void *)i), 0);
	chaos_start(&c, &ch);
	long total = 0;
	for (int i = 0; i < n; i++) {
		void *r;
		ck_assert_int_eq(weft_join(t[i], &r), 0);
		total += (long)r;
	}
	chaos_stop(&c, ch);
	ck_assert_int_eq(s_counter, total);
	ck_assert_int_eq(weft_lock_locked(&s_lock), 0);
	ck_assert_int_eq(waitq_len(&s_lock.wq), 0);
	return NULL;
}

START_TEST(lock_stress)
{
	weft_test_run(lock_main, NULL, WORKERS);
}
END_TEST

/* ---- semaphore: never more than k inside -------------------------------- */

#define SEM_K 3
static struct weft_sem s_sem = WEFT_BOUNDED_SEM_INIT(SEM_K);
static int s_sem_inside;

static void *sem_worker(void *arg)
{
	uint64_t s = (uintptr_t)arg * 2654435761u + 7;
	for (long i = 0; i < s_iters; i++) {
		int r = MAYBE_TIMED(&s, 4, 50, weft_sem_acquire(&s_sem));
		if (r == -ECANCELED)
			break;
		if (r == -ETIMEDOUT)
			continue;
		ck_assert_int_eq(r, 0);
		int in = __atomic_add_fetch(&s_sem_inside, 1, __ATOMIC_RELAXED);
		ck_assert_int_le(in, SEM_K);
		if (rnd(&s) % 8 == 0)
			weft_yield();
		__atomic_sub_fetch(&s_sem_inside, 1, __ATOMIC_RELAXED);
		ck_assert_int_eq(weft_sem_release(&s_sem), 0);
	}
	return NULL;
}

static void *sem_main(void *arg)
{
	int n = 32;
	weft_task_t t[32], ch;
	struct chaos c = {
		.victims = t, .n = n, .every_us = 200, .percent = 30
	};
	s_iters = SCALED(4000);
	for (long i = 0; i < n; i++)
		ck_assert_int_eq(weft_spawn(&t[i], sem_worker, (void *)i), 0);
	chaos_start(&c, &ch);
	for (int i = 0; i < n; i++)
		ck_assert_int_eq(weft_join(t[i], NULL), 0);
	chaos_stop(&c, ch);
	/* No permit lost or doubled. */
	ck_assert_int_eq(weft_sem_value(&s_sem), SEM_K);
	ck_assert_int_eq(weft_sem_release(&s_sem), -EOVERFLOW);
	ck_assert_int_eq(waitq_len(&s_sem.wq), 0);
	return NULL;
}

START_TEST(sem_stress)
{
	weft_test_run(sem_main, NULL, WORKERS);
}
END_TEST

/* ---- queues: every item delivered exactly once -------------------------- */

#define PRODUCERS 6
#define CONSUMERS 6
#define THREADS 2

static struct weft_queue *qs_q;
static long qs_per;           /* items per producer */
static unsigned char *qs_put; /* [producer * qs_per + seq]: put ok */
static unsigned char *qs_got; /* times received */
static long qs_sum_put, qs_sum_got;

static void got_item(uint64_t v)
{
	long idx = (long)(v >> 32) * qs_per + (long)(v & 0xffffffff);
	__atomic_add_fetch(&qs_got[idx], 1, __ATOMIC_RELAXED);
	__atomic_add_fetch(&qs_sum_got, (long)v, __ATOMIC_RELAXED);
}

static void put_item(uint64_t v)
{
	long idx = (long)(v >> 32) * qs_per + (long)(v & 0xffffffff);
	qs_put[idx] = 1;
	__atomic_add_fetch(&qs_sum_put, (long)v, __ATOMIC_RELAXED);
}

static void *q_producer(void *arg)
{
	uint64_t id = (uintptr_t)arg, s = id * 7919 + 3;
	for (long i = 0; i < qs_per; i++) {
		uint64_t v = id << 32 | (uint64_t)i;
		int r = MAYBE_TIMED(&s, 4, 100,
				    rnd(&s) % 8 ? weft_queue_put(qs_q, &v)
						: weft_queue_try_put(qs_q, &v));
		if (r == 0)
			put_item(v);
		else if (r == -ECANCELED)
			break;
		else
			ck_assert(r == -ETIMEDOUT || r == -EAGAIN);
	}
	return NULL;
}

static struct weft_sem qs_threads_done = WEFT_SEM_INIT(0);

static void *q_thread_producer(void *arg)
{
	uint64_t id = (uintptr_t)arg;
	for (long i = 0; i < qs_per; i++) {
		uint64_t v = id << 32 | (uint64_t)i;
		ck_assert_int_eq(weft_queue_put(qs_q, &v), 0);
		put_item(v);
	}
	/* A task must not block its worker in pthread_join: tell it. */
	ck_assert_int_eq(weft_sem_release(&qs_threads_done), 0);
	return NULL;
}

static void *q_consumer(void *arg)
{
	uint64_t s = (uintptr_t)arg * 31 + 5;
	for (;;) {
		uint64_t v;
		int r = MAYBE_TIMED(&s, 4, 100,
				    rnd(&s) % 8 ? weft_queue_get(qs_q, &v)
						: weft_queue_try_get(qs_q, &v));
		if (r == 0) {
			got_item(v);
			weft_queue_task_done(qs_q);
		} else if (r == -EPIPE || r == -ECANCELED) {
			break;
		} else {
			ck_assert(r == -ETIMEDOUT || r == -EAGAIN);
			if (r == -EAGAIN)
				weft_yield();
		}
	}
	return NULL;
}

/* Consumer 0 and producers are spared by chaos? Consumer 0 only: someone
 * must keep draining so the plain-thread producers finish. */
static bool spare_first_consumer(int i)
{
	return i == PRODUCERS;
}

static void run_queue(struct weft_queue *q)
{
	weft_task_t t[PRODUCERS + CONSUMERS], ch;
	pthread_t th[THREADS];
	long items = (PRODUCERS + THREADS) * qs_per;
	qs_q = q;
	qs_put = calloc((size_t)items, 1);
	qs_got = calloc((size_t)items, 1);
	qs_sum_put = qs_sum_got = 0;
	struct chaos c = { .victims = t,
			   .n = PRODUCERS + CONSUMERS,
			   .every_us = 300,
			   .percent = 25,
			   .spare = spare_first_consumer };
	for (long i = 0; i < PRODUCERS; i++)
		ck_assert_int_eq(weft_spawn(&t[i], q_producer, (void *)i), 0);
	for (long i = 0; i < CONSUMERS; i++)
		ck_assert_int_eq(weft_spawn(&t[PRODUCERS + i], q_consumer,
					    (void *)i),
				 0);
	for (long i = 0; i < THREADS; i++)
		pthread_create(&th[i], NULL, q_thread_producer,
			       (void *)(PRODUCERS + i));
	chaos_start(&c, &ch);
	for (int i = 0; i < PRODUCERS; i++)
		ck_assert_int_eq(weft_join(t[i], NULL), 0);
	for (int i = 0; i < THREADS; i++)
		ck_assert_int_eq(weft_sem_acquire(&qs_threads_done), 0);
	for (int i = 0; i < THREADS; i++)
		pthread_join(th[i], NULL); /* they are done */
	chaos_stop(&c, ch);
	ck_assert_int_eq(weft_queue_shutdown(q, false), 0);
	for (int i = 0; i < CONSUMERS; i++)
		ck_assert_int_eq(weft_join(t[PRODUCERS + i], NULL), 0);
	/* Cancelled consumers may have left items: drain them. */
	uint64_t v;
	while (weft_queue_try_get(q, &v) == 0) {
		got_item(v);
		weft_queue_task_done(q);
	}
	for (long i = 0; i < items; i++)
		ck_assert_msg(qs_got[i] == qs_put[i], "item %ld put %d got %d",
			      i, qs_put[i], qs_got[i]);
	ck_assert_int_eq(qs_sum_put, qs_sum_got);
	ck_assert_int_eq(weft_queue_join(q), 0); /* all marked done */
	ck_assert_int_eq(waitq_len(&q->getters), 0);
	weft__waitq_lock(&q->getters); /* it guards every list */
	ck_assert_ptr_null(q->putters.head);
	weft__waitq_unlock(&q->getters);
	ck_assert_int_eq(weft_queue_destroy(q), 0);
	free(qs_put);
	free(qs_got);
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return (x > y) - (x < y);
}

static void *queue_main(void *arg)
{
	struct weft_queue q;
	qs_per = SCALED(20000);
	ck_assert_int_eq(weft_queue_init(&q, sizeof(uint64_t), 8), 0);
	run_queue(&q);
	ck_assert_int_eq(weft_queue_init(&q, sizeof(uint64_t), 0), 0);
	run_queue(&q);
	qs_per = SCALED(5000);
	struct weft_queue_opts o = { .elem_size = sizeof(uint64_t),
				     .capacity = 4,
				     .kind = WEFT_QUEUE_LIFO };
	ck_assert_int_eq(weft_queue_init_opts(&q, &o), 0);
	run_queue(&q);
	o.kind = WEFT_QUEUE_PRIORITY;
	o.cmp = cmp_u64;
	o.capacity = 16;
	ck_assert_int_eq(weft_queue_init_opts(&q, &o), 0);
	run_queue(&q);
	return NULL;
}

START_TEST(queue_stress)
{
	weft_test_run(queue_main, NULL, WORKERS);
}
END_TEST

/* ---- events and futures completed by plain threads ---------------------- */

#define EV_N 16

static struct weft_event ev[EV_N];
static struct weft_future fut[EV_N];
static int ev_round;

static void *ev_waiter(void *arg)
{
	long i = (long)arg;
	uint64_t s = (uint64_t)i * 977 + 1;
	int r = MAYBE_TIMED(&s, 3, 300,
			    i % 2 ? weft_event_wait(&ev[i / 2 % EV_N])
				  : weft_future_wait(&fut[i / 2 % EV_N], NULL));
	ck_assert(r == 0 || r == -ECANCELED || r == -ETIMEDOUT);
	if (r == 0 && i % 2)
		ck_assert_int_eq(weft_event_is_set(&ev[i / 2 % EV_N]), 1);
	return NULL;
}

static void *ev_setter(void *arg)
{
	for (int i = 0; i < EV_N; i++) {
		usleep(20);
		weft_event_set(&ev[i]);
		weft_future_set_result(&fut[i], (void *)1);
	}
	return NULL;
}

static void *event_main(void *arg)
{
	int n = 256;
	weft_task_t *t = malloc(sizeof(*t) * (size_t)n), ch;
	long rounds = SCALED(40);
	for (ev_round = 0; ev_round < rounds; ev_round++) {
		for (int i = 0; i < EV_N; i++) {
			weft_event_init(&ev[i]);
			weft_future_init(&fut[i]);
		}
		struct chaos c = {
			.victims = t, .n = n, .every_us = 20, .percent = 50
		};
		for (long i = 0; i < n; i++)
			ck_assert_int_eq(weft_spawn(&t[i], ev_waiter,
						    (void *)i),
					 0);
		chaos_start(&c, &ch);
		pthread_t th;
		pthread_create(&th, NULL, ev_setter, NULL);
		for (int i = 0; i < n; i++)
			ck_assert_int_eq(weft_join(t[i], NULL), 0);
		pthread_join(th, NULL);
		chaos_stop(&c, ch);
		for (int i = 0; i < EV_N; i++) {
			ck_assert_int_eq(waitq_len(&ev[i].wq), 0);
			ck_assert_int_eq(waitq_len(&fut[i].wq), 0);
		}
	}
	free(t);
	return NULL;
}

START_TEST(event_future_stress)
{
	weft_test_run(event_main, NULL, WORKERS);
}
END_TEST

/* ---- condition: a bounded buffer, lock held on every return ------------- */

static struct weft_lock c_lock = WEFT_LOCK_INIT;
static struct weft_cond c_nonempty = WEFT_COND_INIT(&c_lock);
static struct weft_cond c_nonfull = WEFT_COND_INIT(&c_lock);
static long c_items, c_taken, c_produced;

static bool has_items(void *arg)
{
	return c_items > 0;
}

static bool has_room(void *arg)
{
	return c_items < 4;
}

static void *cond_worker(void *arg)
{
	long id = (long)arg;
	uint64_t s = (uint64_t)id * 131 + 9;
	bool producer = id % 2;
	for (long i = 0; i < s_iters; i++) {
		int r = weft_lock_acquire(&c_lock);
		if (r) {
			ck_assert_int_eq(r, -ECANCELED); /* and not held */
			break;
		}
		r = MAYBE_TIMED(&s, 4, 100,
				weft_cond_wait_for(
					producer ? &c_nonfull : &c_nonempty,
					producer ? has_room : has_items, NULL));
		/* Held in every case. */
		ck_assert_int_eq(__atomic_add_fetch(&s_inside, 1,
						    __ATOMIC_RELAXED),
				 1);
		if (r == 0) {
			if (producer) {
				c_items++;
				c_produced++;
				weft_cond_notify(&c_nonempty, 1);
			} else {
				c_items--;
				c_taken++;
				weft_cond_notify(&c_nonfull, 1);
			}
		} else {
			ck_assert(r == -ECANCELED || r == -ETIMEDOUT);
		}
		__atomic_sub_fetch(&s_inside, 1, __ATOMIC_RELAXED);
		ck_assert_int_eq(weft_lock_release(&c_lock), 0);
		if (r == -ECANCELED)
			break;
	}
	return NULL;
}

static void *cond_main(void *arg)
{
	int n = 16;
	weft_task_t t[16], ch;
	struct chaos c = {
		.victims = t, .n = n, .every_us = 300, .percent = 20
	};
	s_iters = SCALED(2000);
	s_inside = 0;
	for (long i = 0; i < n; i++)
		ck_assert_int_eq(weft_spawn(&t[i], cond_worker, (void *)i), 0);
	chaos_start(&c, &ch);
	/* Producers or consumers may be left waiting for the other side once
	 * it is gone: time-box the run, then cancel everyone. */
	weft_sleep((SCALED(300) + 50) * WEFT_MSEC);
	chaos_stop(&c, ch);
	for (int i = 0; i < n; i++)
		weft_cancel(t[i]);
	for (int i = 0; i < n; i++)
		ck_assert_int_eq(weft_join(t[i], NULL), 0);
	ck_assert_int_eq(c_produced - c_taken, c_items);
	ck_assert_int_ge(c_items, 0);
	ck_assert_int_le(c_items, 4);
	ck_assert_int_eq(weft_lock_locked(&c_lock), 0);
	ck_assert_int_eq(waitq_len(&c_nonempty.wq), 0);
	ck_assert_int_eq(waitq_len(&c_nonfull.wq), 0);
	ck_assert_int_eq(waitq_len(&c_lock.wq), 0);
	return NULL;
}

START_TEST(cond_stress)
{
	weft_test_run(cond_main, NULL, WORKERS);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("sync_stress");
	TCase *tc = tcase_create("stress");
	tcase_set_timeout(tc, 300);
	tcase_add_test(tc, lock_stress);
	tcase_add_test(tc, sem_stress);
	tcase_add_test(tc, queue_stress);
	tcase_add_test(tc, event_future_stress);
	tcase_add_test(tc, cond_stress);
	suite_add_tcase(s, tc);
	return weft_test_main(s);
}
