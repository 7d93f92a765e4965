/* Tasks and plain threads on the same primitives at once, with
 * cancellation from tasks and from plain threads, deadlines, select
 * timeouts and shields: mutual exclusion, conservation of permits and
 * items, callbacks run exactly once, barrier rounds, no waiter left
 * sleeping, only the errors the headers list; and primitives freed by the
 * waiter the release woke while another waiter's abort lands. */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>
#include "sync_test_util.h"
#include "sync/waitq.h"
#include "sync/lock.h"

#define WORKERS 3

static void spin(int n)
{
	for (volatile int i = 0; i < n; i++)
		;
}

/* ---- plain threads, cancellers ------------------------------------------ */

#define MAX_THREADS 8

struct threads {
	pthread_t t[MAX_THREADS];
	int n;
	struct weft_sem done; /* each thread releases it as it ends */
};

struct thread_arg {
	struct threads *th;
	void *(*fn)(void *);
	void *arg;
};

static void *thread_trampoline(void *p)
{
	struct thread_arg a = *(struct thread_arg *)p;
	free(p);
	a.fn(a.arg);
	ck_assert_int_eq(weft_sem_release(&a.th->done), 0);
	return NULL;
}

static void threads_start(struct threads *th, int n, void *(*fn)(void *),
			  void *(*argf)(int i))
{
	th->n = n;
	ck_assert_int_eq(weft_sem_init(&th->done, 0), 0);
	for (int i = 0; i < n; i++) {
		struct thread_arg *a = malloc(sizeof(*a));
		ck_assert_ptr_nonnull(a);
		a->th = th;
		a->fn = fn;
		a->arg = argf(i);
		ck_assert_int_eq(pthread_create(&th->t[i], NULL,
						thread_trampoline, a),
				 0);
	}
}

/* From a task: waits on the semaphore (not blocking a worker), then
 * joins the threads, which have as good as returned. */
static void threads_join(struct threads *th)
{
	for (int i = 0; i < th->n; i++)
		ck_assert_int_eq(weft_sem_acquire(&th->done), 0);
	for (int i = 0; i < th->n; i++)
		ck_assert_int_eq(pthread_join(th->t[i], NULL), 0);
}

static void *idx_arg(int i)
{
	return (void *)(intptr_t)(i + 1000);
}

/* Cancels random victims, from a task or from a plain thread. */
struct canceller {
	weft_task_t *victims;
	int n;
	int every_us;
	int percent;
	int stop;
	long cancels;
	pthread_t thread;
	weft_task_t task;
	bool on_thread;
};

static void *canceller_body(void *arg)
{
	struct canceller *c = arg;
	uint64_t s = c->on_thread ? 0x9e3779b97f4a7c15ull
				  : 88172645463325252ull;
	while (!__atomic_load_n(&c->stop, __ATOMIC_ACQUIRE)) {
		int64_t us =
			(int64_t)(rnd(&s) % (2 * (uint64_t)c->every_us + 1));
		if (c->on_thread)
			usleep((useconds_t)us);
		else
			weft_sleep(us * WEFT_USEC);
		int i = (int)(rnd(&s) % (uint64_t)c->n);
		if ((int)(rnd(&s) % 100) < c->percent &&
		    weft_cancel(c->victims[i]) == 0)
			__atomic_add_fetch(&c->cancels, 1, __ATOMIC_RELAXED);
	}
	return NULL;
}

static void canceller_start(struct canceller *c, bool on_thread)
{
	c->stop = 0;
	c->cancels = 0;
	c->on_thread = on_thread;
	if (on_thread)
		ck_assert_int_eq(pthread_create(&c->thread, NULL,
						canceller_body, c),
				 0);
	else
		ck_assert_int_eq(weft_spawn(&c->task, canceller_body, c), 0);
}

static void canceller_stop(struct canceller *c)
{
	__atomic_store_n(&c->stop, 1, __ATOMIC_RELEASE);
	if (c->on_thread)
		ck_assert_int_eq(pthread_join(c->thread, NULL), 0);
	else
		ck_assert_int_eq(weft_join(c->task, NULL), 0);
}

/* A cancelled task's shield: blocking calls work again in it, and the
 * cancellation comes back after. */
static void after_cancel_check(void)
{
	ck_assert_int_eq(weft_yield(), -ECANCELED);
}

/* ---- lock: tasks and threads, never two inside --------------------------- */

static struct weft_lock m_lock = WEFT_LOCK_INIT;
static int m_inside;
static long m_counter, m_iters;
static long m_done_threads;

static void lock_inside(uint64_t *s, bool task)
{
	ck_assert_int_eq(__atomic_add_fetch(&m_inside, 1, __ATOMIC_RELAXED), 1);
	m_counter++;
	if (rnd(s) % 16 == 0) {
		if (task)
			(void)weft_yield();
		else
			sched_yield();
	} else {
		spin((int)(rnd(s) % 200));
	}
	ck_assert_int_eq(__atomic_sub_fetch(&m_inside, 1, __ATOMIC_RELAXED), 0);
	ck_assert_int_eq(weft_lock_release(&m_lock), 0);
}

/* One acquire by any of four ways: 1 taken, 0 not (timeout), or
 * -ECANCELED. */
static int lock_once(uint64_t *s, bool task)
{
	int mode = (int)(rnd(s) % 4);
	if (!task && mode == 1)
		mode = 0;
	switch (mode) {
	case 0: {
		int r = weft_lock_acquire(&m_lock);
		if (r == -ECANCELED && task)
			return r;
		ck_assert_int_eq(r, 0);
		return 1;
	}
	case 1: {
		struct weft_deadline d;
		ck_assert_int_eq(
			weft_deadline_enter(&d, (int64_t)(rnd(s) % 100 + 1) *
							WEFT_USEC),
			0);
		int r = weft_lock_acquire(&m_lock);
		weft_deadline_leave(&d);
		if (r == -ECANCELED)
			return r;
		if (r == -ETIMEDOUT)
			return 0;
		ck_assert_int_eq(r, 0);
		return 1;
	}
	case 2: {
		struct weft_select_case c[] = {
			WEFT_CASE_LOCK(&m_lock),
			WEFT_CASE_TIMEOUT((int64_t)(rnd(s) % 100) * WEFT_USEC),
		};
		int r = weft_select(c, 2);
		if (r == -ECANCELED && task)
			return r;
		ck_assert_int_ge(r, 0);
		ck_assert_int_eq(c[r].status, 0);
		return r == 0;
	}
	default: {
		int r = weft_lock_try_acquire(&m_lock);
		if (r == -EBUSY)
			return 0;
		ck_assert_int_eq(r, 0);
		return 1;
	}
	}
}

static void *lock_task(void *arg)
{
	uint64_t s = (uintptr_t)arg * 2654435761u + 1;
	long done = 0;
	for (long i = 0; i < m_iters; i++) {
		int r = lock_once(&s, true);
		if (r == -ECANCELED) {
			/* Shielded, it works again: a few more, each of
			 * which must take the lock. */
			struct weft_shield sh;
			ck_assert_int_eq(weft_shield_enter(&sh), 0);
			for (int k = 0; k < 3; k++) {
				ck_assert_int_eq(weft_lock_acquire(&m_lock), 0);
				lock_inside(&s, true);
				done++;
			}
			ck_assert_int_eq(weft_shield_leave(&sh), 0);
			after_cancel_check();
			break;
		}
		if (r) {
			lock_inside(&s, true);
			done++;
		}
	}
	return (void *)done;
}

static void *lock_thread(void *arg)
{
	uint64_t s = (uintptr_t)arg * 0x2545F4914F6CDD1Dull + 7;
	long done = 0;
	for (long i = 0; i < m_iters; i++) {
		if (lock_once(&s, false)) {
			lock_inside(&s, false);
			done++;
		}
	}
	__atomic_add_fetch(&m_done_threads, done, __ATOMIC_RELAXED);
	return NULL;
}

static void *lock_main(void *arg)
{
	(void)arg;
	enum { NT = 12, NTH = 3 };
	weft_task_t t[NT];
	struct threads th;
	struct canceller ct = {
		.victims = t, .n = NT, .every_us = 300, .percent = 30
	};
	struct canceller cc = {
		.victims = t, .n = NT, .every_us = 300, .percent = 30
	};
	m_iters = SCALED(3000);
	m_counter = 0;
	m_done_threads = 0;
	for (long i = 0; i < NT; i++)
		ck_assert_int_eq(weft_spawn(&t[i], lock_task, (void *)i), 0);
	threads_start(&th, NTH, lock_thread, idx_arg);
	canceller_start(&ct, true);
	canceller_start(&cc, false);
	long total = 0;
	for (int i = 0; i < NT; i++) {
		void *r;
		ck_assert_int_eq(weft_join(t[i], &r), 0);
		total += (long)r;
	}
	canceller_stop(&ct);
	canceller_stop(&cc);
	threads_join(&th);
	total += m_done_threads;
	ck_assert_int_eq(m_counter, total);
	ck_assert_int_eq(weft_lock_locked(&m_lock), 0);
	ck_assert_int_eq(waitq_len(&m_lock.wq), 0);
	ck_assert_int_eq(m_lock.state, 0);
	return NULL;
}

START_TEST(lock_tasks_threads)
{
	weft_test_run(lock_main, NULL, WORKERS);
}
END_TEST

/* ---- semaphores: bounded admission, unbounded conservation -------------- */

#define SEM_K 3
static struct weft_sem b_sem = WEFT_BOUNDED_SEM_INIT(SEM_K);
static int b_inside;
/* Unbounded pair: permits released by producers, taken by consumers. */
static struct weft_sem u_sem[2] = { WEFT_SEM_INIT(0), WEFT_SEM_INIT(0) };
static long u_released[2], u_taken[2];
static int u_stop;
static long s_iters;

static void sem_inside(uint64_t *s, bool task)
{
	int k = __atomic_add_fetch(&b_inside, 1, __ATOMIC_RELAXED);
	ck_assert_int_le(k, SEM_K);
	ck_assert_int_ge(k, 1);
	if (rnd(s) % 8 == 0) {
		if (task)
			(void)weft_yield();
		else
			sched_yield();
	}
	__atomic_sub_fetch(&b_inside, 1, __ATOMIC_RELAXED);
	ck_assert_int_eq(weft_sem_release(&b_sem), 0);
}

static int bsem_once(uint64_t *s, bool task)
{
	int mode = (int)(rnd(s) % 4);
	if (!task && mode == 1)
		mode = 0;
	int r;
	switch (mode) {
	case 0:
		r = weft_sem_acquire(&b_sem);
		if (r == -ECANCELED && task)
			return r;
		ck_assert_int_eq(r, 0);
		return 1;
	case 1: {
		struct weft_deadline d;
		ck_assert_int_eq(weft_deadline_enter(&d, (int64_t)(rnd(s) % 80 +
								   1) *
								 WEFT_USEC),
				 0);
		r = weft_sem_acquire(&b_sem);
		weft_deadline_leave(&d);
		if (r == -ECANCELED)
			return r;
		if (r == -ETIMEDOUT)
			return 0;
		ck_assert_int_eq(r, 0);
		return 1;
	}
	case 2: {
		struct weft_select_case c[] = {
			WEFT_CASE_SEM(&b_sem),
			WEFT_CASE_TIMEOUT((int64_t)(rnd(s) % 80) * WEFT_USEC),
		};
		r = weft_select(c, 2);
		if (r == -ECANCELED && task)
			return r;
		ck_assert_int_ge(r, 0);
		ck_assert_int_eq(c[r].status, 0);
		return r == 0;
	}
	default:
		r = weft_sem_try_acquire(&b_sem);
		if (r == -EAGAIN)
			return 0;
		ck_assert_int_eq(r, 0);
		return 1;
	}
}

/* Takes from the unbounded pair: select over both, or one acquire. */
static void usem_once(uint64_t *s, bool task)
{
	int r;
	if (rnd(s) % 2) {
		struct weft_select_case c[] = {
			WEFT_CASE_SEM(&u_sem[0]),
			WEFT_CASE_SEM(&u_sem[1]),
			WEFT_CASE_TIMEOUT((int64_t)(rnd(s) % 50) * WEFT_USEC),
		};
		r = weft_select(c, 3);
		if (r == -ECANCELED && task)
			return;
		ck_assert_int_ge(r, 0);
		ck_assert_int_eq(c[r].status, 0);
		if (r < 2)
			__atomic_add_fetch(&u_taken[r], 1, __ATOMIC_RELAXED);
		return;
	}
	int k = (int)(rnd(s) % 2);
	if (task) {
		struct weft_deadline d;
		ck_assert_int_eq(weft_deadline_enter(&d, (int64_t)(rnd(s) % 50 +
								   1) *
								 WEFT_USEC),
				 0);
		r = weft_sem_acquire(&u_sem[k]);
		weft_deadline_leave(&d);
		if (r == -ECANCELED || r == -ETIMEDOUT)
			return;
	} else {
		r = weft_sem_try_acquire(&u_sem[k]);
		if (r == -EAGAIN)
			return;
	}
	ck_assert_int_eq(r, 0);
	__atomic_add_fetch(&u_taken[k], 1, __ATOMIC_RELAXED);
}

static void *sem_task(void *arg)
{
	uint64_t s = (uintptr_t)arg * 2654435761u + 1;
	long i;
	for (i = 0; i < s_iters; i++) {
		int r = bsem_once(&s, true);
		if (r == -ECANCELED)
			break;
		if (r)
			sem_inside(&s, true);
		usem_once(&s, true);
		if (weft_is_cancelled(weft_current()))
			break;
	}
	return NULL;
}

static void *sem_thread(void *arg)
{
	uint64_t s = (uintptr_t)arg * 0x2545F4914F6CDD1Dull + 7;
	for (long i = 0; i < s_iters; i++) {
		if (bsem_once(&s, false))
			sem_inside(&s, false);
		usem_once(&s, false);
	}
	return NULL;
}

/* Releases the unbounded pair, from a task or a thread. */
static void *usem_producer(void *arg)
{
	uint64_t s = (uintptr_t)arg * 77 + 3;
	while (!__atomic_load_n(&u_stop, __ATOMIC_ACQUIRE)) {
		int k = (int)(rnd(&s) % 2);
		ck_assert_int_eq(weft_sem_release(&u_sem[k]), 0);
		__atomic_add_fetch(&u_released[k], 1, __ATOMIC_RELAXED);
		if (weft_current().task)
			weft_sleep((int64_t)(rnd(&s) % 20) * WEFT_USEC);
		else
			usleep((useconds_t)(rnd(&s) % 20));
	}
	return NULL;
}

static void *sem_main(void *arg)
{
	(void)arg;
	enum { NT = 10, NTH = 3 };
	weft_task_t t[NT], prod;
	struct threads th, pth;
	struct canceller ct = {
		.victims = t, .n = NT, .every_us = 400, .percent = 30
	};
	struct canceller cc = {
		.victims = t, .n = NT, .every_us = 400, .percent = 30
	};
	s_iters = SCALED(3000);
	u_stop = 0;
	for (long i = 0; i < NT; i++)
		ck_assert_int_eq(weft_spawn(&t[i], sem_task, (void *)i), 0);
	threads_start(&th, NTH, sem_thread, idx_arg);
	threads_start(&pth, 1, usem_producer, idx_arg);
	ck_assert_int_eq(weft_spawn(&prod, usem_producer, (void *)5), 0);
	canceller_start(&ct, true);
	canceller_start(&cc, false);
	for (int i = 0; i < NT; i++)
		ck_assert_int_eq(weft_join(t[i], NULL), 0);
	canceller_stop(&ct);
	canceller_stop(&cc);
	threads_join(&th);
	__atomic_store_n(&u_stop, 1, __ATOMIC_RELEASE);
	ck_assert_int_eq(weft_join(prod, NULL), 0);
	threads_join(&pth);

	ck_assert_int_eq(weft_sem_value(&b_sem), SEM_K);
	ck_assert_int_eq(weft_sem_release(&b_sem), -EOVERFLOW);
	ck_assert_int_eq(b_sem.state, (uintptr_t)SEM_K << 1);
	ck_assert_int_eq(waitq_len(&b_sem.wq), 0);
	for (int k = 0; k < 2; k++) {
		ck_assert_int_eq(waitq_len(&u_sem[k].wq), 0);
		ck_assert_int_eq(u_sem[k].state & 1, 0);
		ck_assert_int_eq(u_taken[k] + weft_sem_value(&u_sem[k]),
				 u_released[k]);
	}
	return NULL;
}

START_TEST(sem_tasks_threads)
{
	weft_test_run(sem_main, NULL, WORKERS);
}
END_TEST

/* ---- queues: every item put is got exactly once, or dropped ------------- */

#define QP_TASKS 4
#define QP_THREADS 2
#define QC_TASKS 4
#define QC_THREADS 2
#define QPRODUCERS (QP_TASKS + QP_THREADS)

static struct weft_queue *mq;
static struct weft_event mq_stop; /* consumers' select: stop waiting */
static long mq_per;
static unsigned char *mq_put, *mq_got;
static int mq_taskdone_errors;
static bool mq_immediate;

static uint64_t item_of(long p, long seq)
{
	return (uint64_t)p << 32 | (uint64_t)seq;
}

static long id_of(uint64_t v)
{
	long p = (long)(v >> 32), seq = (long)(v & 0xffffffffu);
	ck_assert_int_lt(p, QPRODUCERS);
	ck_assert_int_lt(seq, mq_per);
	return p * mq_per + seq;
}

static void got(uint64_t v)
{
	long id = id_of(v);
	ck_assert_int_eq(__atomic_add_fetch(&mq_got[id], 1, __ATOMIC_RELAXED),
			 1);
	if (weft_queue_task_done(mq))
		__atomic_add_fetch(&mq_taskdone_errors, 1, __ATOMIC_RELAXED);
}

/* One put by one of several ways: 0 put, 1 not put (may retry), -EPIPE
 * or -ECANCELED: stop. */
static int put_once(uint64_t *s, uint64_t v, bool task)
{
	int mode = (int)(rnd(s) % 4), r;
	if (!task && mode == 1)
		mode = 0;
	switch (mode) {
	case 0:
		r = weft_queue_put(mq, &v);
		break;
	case 1: {
		struct weft_deadline d;
		ck_assert_int_eq(
			weft_deadline_enter(&d, (int64_t)(rnd(s) % 100 + 1) *
							WEFT_USEC),
			0);
		r = weft_queue_put(mq, &v);
		weft_deadline_leave(&d);
		if (r == -ETIMEDOUT)
			return 1;
		break;
	}
	case 2: {
		struct weft_select_case c[] = {
			WEFT_CASE_PUT(mq, &v),
			WEFT_CASE_TIMEOUT((int64_t)(rnd(s) % 100) * WEFT_USEC),
		};
		r = weft_select(c, 2);
		if (r == 1) {
			ck_assert_int_eq(c[1].status, 0);
			return 1;
		}
		if (r == 0)
			r = c[0].status;
		break;
	}
	default:
		r = weft_queue_try_put(mq, &v);
		if (r == -EAGAIN)
			return 1;
	}
	if (r == -EPIPE || (task && r == -ECANCELED))
		return r;
	ck_assert_int_eq(r, 0);
	__atomic_store_n(&mq_put[id_of(v)], 1, __ATOMIC_RELAXED);
	return 0;
}

static void producer(long p, bool task)
{
	uint64_t s = (uint64_t)p * 2654435761u + 11;
	for (long seq = 0; seq < mq_per;) {
		int r = put_once(&s, item_of(p, seq), task);
		if (r < 0)
			return;
		if (r == 0)
			seq++;
	}
}

static void *producer_task(void *arg)
{
	producer((long)(intptr_t)arg, true);
	return NULL;
}

static void *producer_thread(void *arg)
{
	producer((long)(intptr_t)arg - 1000 + QP_TASKS, false);
	return NULL;
}

/* One get: 0 got, 1 nothing, -EPIPE or -ECANCELED: stop. */
static int get_once(uint64_t *s, bool task)
{
	uint64_t v;
	int mode = (int)(rnd(s) % 4), r;
	if (!task && mode == 1)
		mode = 0;
	switch (mode) {
	case 0:
		r = weft_queue_get(mq, &v);
		break;
	case 1: {
		struct weft_deadline d;
		ck_assert_int_eq(
			weft_deadline_enter(&d, (int64_t)(rnd(s) % 100 + 1) *
							WEFT_USEC),
			0);
		r = weft_queue_get(mq, &v);
		weft_deadline_leave(&d);
		if (r == -ETIMEDOUT)
			return 1;
		break;
	}
	case 2: {
		struct weft_select_case c[] = {
			WEFT_CASE_GET(mq, &v),
			WEFT_CASE_EVENT(&mq_stop),
			WEFT_CASE_TIMEOUT((int64_t)(rnd(s) % 100) * WEFT_USEC),
		};
		r = weft_select(c, 3);
		if (r == -ECANCELED && task)
			return r;
		ck_assert_int_ge(r, 0);
		if (r == 2) {
			ck_assert_int_eq(c[2].status, 0);
			return 1;
		}
		if (r == 1)
			return -EPIPE; /* told to stop */
		if (r == 0)
			r = c[0].status;
		break;
	}
	default:
		r = weft_queue_try_get(mq, &v);
		if (r == -EAGAIN)
			return 1;
	}
	if (r == -EPIPE || (task && r == -ECANCELED))
		return r;
	ck_assert_int_eq(r, 0);
	got(v);
	return 0;
}

static void consumer(long c, bool task)
{
	uint64_t s = (uint64_t)c * 0x2545F4914F6CDD1Dull + 5;
	for (;;)
		if (get_once(&s, task) < 0)
			return;
}

static void *consumer_task(void *arg)
{
	consumer((long)(intptr_t)arg, true);
	return NULL;
}

static void *consumer_thread(void *arg)
{
	consumer((long)(intptr_t)arg, false);
	return NULL;
}

/* Joins now and then under a deadline; a join that returns 0 saw every
 * item put so far done. */
static void *joiner_task(void *arg)
{
	(void)arg;
	for (;;) {
		struct weft_deadline d;
		ck_assert_int_eq(weft_deadline_enter(&d, 200 * WEFT_USEC), 0);
		int r = weft_queue_join(mq);
		weft_deadline_leave(&d);
		if (r == -ECANCELED)
			return NULL;
		ck_assert(r == 0 || r == -ETIMEDOUT);
		if (weft_yield() == -ECANCELED)
			return NULL;
	}
}

static void *shutdown_thread(void *arg)
{
	usleep((useconds_t)(uintptr_t)arg);
	ck_assert_int_eq(weft_queue_shutdown(mq, mq_immediate), 0);
	return NULL;
}

static void *shutdown_arg(int i)
{
	(void)i;
	return (void *)(uintptr_t)(WEFT_TEST_SCALE >= 100 ? 20000 : 60000);
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

/* how: 0 run to the end, then shut down and drain; 1 shut down (not
 * immediate) by a plain thread mid-run; 2 immediate, mid-run. */
static void run_queue(struct weft_queue *q, int how)
{
	weft_task_t pt[QP_TASKS], ctk[QC_TASKS], jt;
	weft_task_t victims[QP_TASKS + QC_TASKS + 1];
	struct threads pth, cth, sth;
	struct canceller cc = { .victims = victims,
				.n = QP_TASKS + QC_TASKS + 1,
				.every_us = 500,
				.percent = 25 };
	struct canceller ct = cc;

	mq = q;
	mq_immediate = how == 2;
	mq_per = SCALED(2000);
	mq_put = calloc((size_t)(QPRODUCERS * mq_per), 1);
	mq_got = calloc((size_t)(QPRODUCERS * mq_per), 1);
	mq_taskdone_errors = 0;
	ck_assert_int_eq(weft_event_init(&mq_stop), 0);

	for (long i = 0; i < QC_TASKS; i++)
		ck_assert_int_eq(weft_spawn(&ctk[i], consumer_task, (void *)i),
				 0);
	threads_start(&cth, QC_THREADS, consumer_thread, idx_arg);
	for (long i = 0; i < QP_TASKS; i++)
		ck_assert_int_eq(weft_spawn(&pt[i], producer_task, (void *)i),
				 0);
	threads_start(&pth, QP_THREADS, producer_thread, idx_arg);
	ck_assert_int_eq(weft_spawn(&jt, joiner_task, NULL), 0);
	memcpy(victims, pt, sizeof(pt));
	memcpy(victims + QP_TASKS, ctk, sizeof(ctk));
	victims[QP_TASKS + QC_TASKS] = jt;
	canceller_start(&cc, false);
	canceller_start(&ct, true);
	if (how)
		threads_start(&sth, 1, shutdown_thread, shutdown_arg);

	for (int i = 0; i < QP_TASKS; i++)
		ck_assert_int_eq(weft_join(pt[i], NULL), 0);
	threads_join(&pth); /* consumer threads never stop: they drain */
	canceller_stop(&cc);
	canceller_stop(&ct);
	if (how)
		threads_join(&sth);
	/* Every producer is done: stop the consumers and drain. */
	ck_assert_int_eq(weft_queue_shutdown(q, false), 0);
	ck_assert_int_ge(weft_event_set(&mq_stop), 0);
	for (int i = 0; i < QC_TASKS; i++)
		ck_assert_int_eq(weft_join(ctk[i], NULL), 0);
	threads_join(&cth);
	uint64_t v;
	int r;
	while ((r = weft_queue_try_get(q, &v)) == 0)
		got(v);
	ck_assert_int_eq(r, -EPIPE);
	ck_assert_int_eq(weft_cancel(jt), 0);
	ck_assert_int_eq(weft_join(jt, NULL), 0);

	long nput = 0, ngot = 0;
	for (long id = 0; id < QPRODUCERS * mq_per; id++) {
		ck_assert_int_le(mq_got[id], mq_put[id]);
		if (!mq_immediate)
			ck_assert_int_eq(mq_got[id], mq_put[id]);
		nput += mq_put[id];
		ngot += mq_got[id];
	}
	ck_assert_int_eq(mq_taskdone_errors, 0);
	/* Everything put was marked done or dropped: join returns at once. */
	{
		struct weft_deadline d;
		ck_assert_int_eq(weft_deadline_enter(&d, 5 * WEFT_SEC), 0);
		ck_assert_int_eq(weft_queue_join(q), 0);
		weft_deadline_leave(&d);
	}
	ck_assert_int_eq(q->unfinished, 0);
	ck_assert_int_eq(weft_queue_task_done(q), -EINVAL);
	ck_assert_int_eq(weft_queue_size(q), 0);
	ck_assert_int_eq(waitq_len(&q->getters), 0);
	ck_assert_int_eq(waitq_len(&q->putters), 0);
	ck_assert_int_eq(waitq_len(&q->joiners), 0);
	ck_assert_int_eq(waitq_len(&mq_stop.wq), 0);
	ck_assert_int_eq(weft_queue_destroy(q), 0);
	(void)nput;
	(void)ngot;
	free(mq_put);
	free(mq_got);
}

static void *queue_main(void *arg)
{
	int how = (int)(intptr_t)arg;
	struct weft_queue q;
	for (int kind = 0; kind < 3; kind++)
		for (size_t cap = 0; cap <= 4; cap += 3) {
			struct weft_queue_opts o = { .elem_size = 8,
						     .capacity = cap,
						     .kind = kind,
						     .cmp = cmp_u64 };
			ck_assert_int_eq(weft_queue_init_opts(&q, &o), 0);
			run_queue(&q, how);
		}
	return NULL;
}

START_TEST(queue_tasks_threads)
{
	weft_test_run(queue_main, (void *)(intptr_t)_i, WORKERS);
}
END_TEST

/* ---- futures: callbacks added and removed while it completes ------------ */

#define FP 6 /* participants: 3 tasks, 3 threads */

struct fround {
	struct weft_future *f;
	int ran[FP][2];     /* runs of each participant's two callbacks */
	int added[FP][2];   /* add returned 0 */
	int removed[FP][2]; /* remove returned 0 */
	int go;
	struct weft_barrier start; /* participants and the completer */
	int completer_thread;
};

static struct fround fr;

static void fcb(struct weft_future *f, void *arg)
{
	(void)f;
	int *ran = arg;
	ck_assert_int_eq(__atomic_add_fetch(ran, 1, __ATOMIC_RELAXED), 1);
}

static void fparticipant(int p, bool task)
{
	uint64_t s = (uint64_t)p * 31 +
		     (uint64_t)__atomic_load_n(&fr.go, __ATOMIC_RELAXED);
	struct weft_future_cb cb[2];
	int r = weft_barrier_wait(&fr.start);
	ck_assert_int_ge(r, 0);
	for (int k = 0; k < 2; k++) {
		spin((int)(rnd(&s) % 2000));
		ck_assert_int_eq(weft_future_add_callback(fr.f, &cb[k], fcb,
							  &fr.ran[p][k]),
				 0);
		fr.added[p][k] = 1;
	}
	/* Remove one, maybe, while the completer runs them. */
	int k = (int)(rnd(&s) % 2);
	spin((int)(rnd(&s) % 2000));
	r = weft_future_remove_callback(fr.f, &cb[k]);
	ck_assert(r == 0 || r == -ENOENT);
	fr.removed[p][k] = r == 0;
	/* Wait for f: by wait, or by select with a timeout. */
	void *res = NULL;
	if (rnd(&s) % 2) {
		ck_assert_int_eq(weft_future_wait(fr.f, &res), 0);
	} else {
		for (;;) {
			struct weft_select_case c[] = {
				WEFT_CASE_FUTURE(fr.f, &res),
				WEFT_CASE_TIMEOUT((int64_t)(rnd(&s) % 30) *
						  WEFT_USEC),
			};
			r = weft_select(c, 2);
			ck_assert_int_ge(r, 0);
			if (r == 0) {
				ck_assert_int_eq(c[0].status, 0);
				break;
			}
		}
	}
	ck_assert_ptr_eq(res, &fr);
	/* Done for us: every callback not removed has run (cb is on our
	 * stack, so it must be over). */
	for (int j = 0; j < 2; j++)
		ck_assert_int_eq(__atomic_load_n(&fr.ran[p][j],
						 __ATOMIC_RELAXED),
				 !fr.removed[p][j]);
	(void)task;
}

static void *fpart_task(void *arg)
{
	fparticipant((int)(intptr_t)arg, true);
	return NULL;
}

static void *fpart_thread(void *arg)
{
	fparticipant((int)(intptr_t)arg - 1000 + 3, false);
	return NULL;
}

static void *fcomplete(void *arg)
{
	(void)arg;
	ck_assert_int_ge(weft_barrier_wait(&fr.start), 0);
	spin(500 + (int)(__atomic_load_n(&fr.go, __ATOMIC_RELAXED) % 5) * 700);
	ck_assert_int_eq(weft_future_set_result(fr.f, &fr), 0);
	return NULL;
}

static void *future_main(void *arg)
{
	(void)arg;
	long rounds = SCALED(1500);
	for (long round = 0; round < rounds; round++) {
		weft_task_t t[3], comp = { 0 };
		struct threads th, cth = { .n = 0 };
		struct weft_future *f = malloc(sizeof(*f));
		ck_assert_ptr_nonnull(f);
		memset(&fr, 0, sizeof(fr));
		ck_assert_int_eq(weft_future_init(f), 0);
		fr.f = f;
		fr.go = (int)round;
		ck_assert_int_eq(weft_barrier_init(&fr.start, FP + 1), 0);
		for (long i = 0; i < 3; i++)
			ck_assert_int_eq(weft_spawn(&t[i], fpart_task,
						    (void *)i),
					 0);
		threads_start(&th, 3, fpart_thread, idx_arg);
		if (round % 2)
			ck_assert_int_eq(weft_spawn(&comp, fcomplete, NULL), 0);
		else
			threads_start(&cth, 1, fcomplete, idx_arg);
		for (int i = 0; i < 3; i++)
			ck_assert_int_eq(weft_join(t[i], NULL), 0);
		threads_join(&th);
		if (round % 2)
			ck_assert_int_eq(weft_join(comp, NULL), 0);
		else
			threads_join(&cth);
		for (int p = 0; p < FP; p++)
			for (int k = 0; k < 2; k++)
				ck_assert_int_eq(fr.ran[p][k],
						 !fr.removed[p][k]);
		ck_assert_int_eq(waitq_len(&f->wq), 0);
		ck_assert_ptr_null(f->cbs);
		memset(f, 0xa5, sizeof(*f));
		free(f);
	}
	return NULL;
}

START_TEST(future_callbacks_tasks_threads)
{
	weft_test_run(future_main, NULL, WORKERS);
}
END_TEST

/* ---- barrier: rounds of tasks and threads; then cancels, resets, abort -- */

#define BT 3
#define BTH 2
#define BPARTIES (BT + BTH)

static struct weft_barrier mb;
static long b_rounds;
static long *b_phase;    /* [party]: the round it arrived for */
static unsigned *b_seen; /* [round]: bitmask of arrival indices */

static void barrier_party(int p, bool task)
{
	for (long r = 0; r < b_rounds; r++) {
		__atomic_store_n(&b_phase[p], r, __ATOMIC_RELAXED);
		int i = weft_barrier_wait(&mb);
		ck_assert_int_ge(i, 0);
		ck_assert_int_lt(i, BPARTIES);
		unsigned bit = 1u << i;
		ck_assert_int_eq(__atomic_fetch_or(&b_seen[r], bit,
						   __ATOMIC_RELAXED) &
					 bit,
				 0);
		/* Everyone arrived for round r: nobody is behind. */
		for (int q = 0; q < BPARTIES; q++)
			ck_assert_int_ge(__atomic_load_n(&b_phase[q],
							 __ATOMIC_RELAXED),
					 r);
		if (task && r % 7 == 0)
			(void)weft_yield();
	}
}

static void *bparty_task(void *arg)
{
	barrier_party((int)(intptr_t)arg, true);
	return NULL;
}

static void *bparty_thread(void *arg)
{
	barrier_party((int)(intptr_t)arg - 1000 + BT, false);
	return NULL;
}

/* Chaos phase: tasks wait under deadlines, get cancelled; a plain thread
 * resets and, at the end, aborts. Only listed errors; nobody hangs. */
static int bchaos_stop;

static void *bchaos_task(void *arg)
{
	uint64_t s = (uintptr_t)arg * 99 + 1;
	for (;;) {
		int r;
		if (rnd(&s) % 2) {
			struct weft_deadline d;
			ck_assert_int_eq(weft_deadline_enter(
						 &d,
						 (int64_t)(rnd(&s) % 300 + 1) *
							 WEFT_USEC),
					 0);
			r = weft_barrier_wait(&mb);
			weft_deadline_leave(&d);
		} else {
			r = weft_barrier_wait(&mb);
		}
		if (r == -ECANCELED)
			return NULL;
		if (r == -EPIPE && weft_barrier_broken(&mb) == 1)
			return NULL;
		ck_assert(r == -ETIMEDOUT || r == -EPIPE ||
			  (r >= 0 && r < BPARTIES));
	}
}

static void *bchaos_thread(void *arg)
{
	(void)arg;
	for (;;) {
		int r = weft_barrier_wait(&mb);
		if (r == -EPIPE && weft_barrier_broken(&mb) == 1)
			return NULL;
		ck_assert(r == -EPIPE || (r >= 0 && r < BPARTIES));
	}
}

static void *bresetter(void *arg)
{
	(void)arg;
	uint64_t s = 12345;
	while (!__atomic_load_n(&bchaos_stop, __ATOMIC_ACQUIRE)) {
		usleep((useconds_t)(rnd(&s) % 300));
		ck_assert_int_ge(weft_barrier_reset(&mb), 0);
	}
	ck_assert_int_ge(weft_barrier_abort(&mb), 0);
	return NULL;
}

static void *barrier_main(void *arg)
{
	(void)arg;
	weft_task_t t[BT];
	struct threads th;
	b_rounds = SCALED(3000);
	b_phase = calloc(BPARTIES, sizeof(*b_phase));
	b_seen = calloc((size_t)b_rounds, sizeof(*b_seen));
	ck_assert_int_eq(weft_barrier_init(&mb, BPARTIES), 0);
	for (long i = 0; i < BT; i++)
		ck_assert_int_eq(weft_spawn(&t[i], bparty_task, (void *)i), 0);
	threads_start(&th, BTH, bparty_thread, idx_arg);
	for (int i = 0; i < BT; i++)
		ck_assert_int_eq(weft_join(t[i], NULL), 0);
	threads_join(&th);
	for (long r = 0; r < b_rounds; r++)
		ck_assert_int_eq(b_seen[r], (1u << BPARTIES) - 1);
	ck_assert_int_eq(weft_barrier_n_waiting(&mb), 0);
	ck_assert_int_eq(waitq_len(&mb.wq), 0);
	ck_assert_int_eq(waitq_len(&mb.held), 0);
	ck_assert_int_eq(mb.draining, 0);

	/* Chaos. */
	enum { CT = 6, CTH = 2 };
	weft_task_t ct[CT];
	struct threads cth, rth;
	struct canceller cc = {
		.victims = ct, .n = CT, .every_us = 500, .percent = 20
	};
	struct canceller ctc = cc;
	bchaos_stop = 0;
	ck_assert_int_eq(weft_barrier_init(&mb, 4), 0);
	for (long i = 0; i < CT; i++)
		ck_assert_int_eq(weft_spawn(&ct[i], bchaos_task, (void *)i), 0);
	threads_start(&cth, CTH, bchaos_thread, idx_arg);
	canceller_start(&cc, false);
	canceller_start(&ctc, true);
	threads_start(&rth, 1, bresetter, idx_arg);
	weft_sleep(WEFT_TEST_SCALE >= 100 ? 300 * WEFT_MSEC : 600 * WEFT_MSEC);
	__atomic_store_n(&bchaos_stop, 1, __ATOMIC_RELEASE);
	threads_join(&rth);
	canceller_stop(&cc);
	canceller_stop(&ctc);
	for (int i = 0; i < CT; i++)
		ck_assert_int_eq(weft_join(ct[i], NULL), 0);
	threads_join(&cth);
	ck_assert_int_eq(weft_barrier_n_waiting(&mb), 0);
	ck_assert_int_eq(waitq_len(&mb.wq), 0);
	ck_assert_int_eq(waitq_len(&mb.held), 0);
	ck_assert_int_eq(mb.draining, 0);
	free(b_phase);
	free(b_seen);
	return NULL;
}

START_TEST(barrier_tasks_threads)
{
	weft_test_run(barrier_main, NULL, WORKERS);
}
END_TEST

/* ---- event: a set landing on select timeouts and deadlines -------------- */

#define EW_TASKS 6
#define EW_THREADS 2

static struct weft_event *ew_ev;
static int64_t ew_at;     /* when the setter sets, about */
static int ew_outcome[3]; /* event, timeout, deadline */

static void ew_wait(uint64_t *s, bool task)
{
	int64_t off = (int64_t)(rnd(s) % 200) - 100; /* us around ew_at */
	int64_t left = ew_at + off * WEFT_USEC - weft_now();
	if (left < 0)
		left = 0;
	struct weft_select_case c[] = {
		WEFT_CASE_EVENT(ew_ev),
		WEFT_CASE_TIMEOUT(left),
	};
	struct weft_deadline d;
	bool timed = task && rnd(s) % 2;
	if (timed)
		ck_assert_int_eq(weft_deadline_enter_at(&d, weft_now() + left),
				 0);
	int r = weft_select(c, 2);
	if (timed)
		weft_deadline_leave(&d);
	if (r >= 0) {
		ck_assert_int_eq(c[r].status, 0);
		__atomic_add_fetch(&ew_outcome[r], 1, __ATOMIC_RELAXED);
		if (r == 1)
			/* timed out: the event comes anyway; wait for it,
			 * no waiter may be left sleeping once it is set */
			ck_assert_int_eq(weft_event_wait(ew_ev), 0);
	} else {
		ck_assert_int_eq(r, -ETIMEDOUT);
		ck_assert(timed);
		__atomic_add_fetch(&ew_outcome[2], 1, __ATOMIC_RELAXED);
		ck_assert_int_eq(weft_event_wait(ew_ev), 0);
	}
}

static void *ew_task(void *arg)
{
	uint64_t s = (uintptr_t)arg * 2654435761u + (uint64_t)weft_now();
	ew_wait(&s, true);
	return NULL;
}

static void *ew_thread(void *arg)
{
	uint64_t s = (uintptr_t)arg * 7919 + (uint64_t)weft_now();
	ew_wait(&s, false);
	return NULL;
}

static void *ew_setter(void *arg)
{
	(void)arg;
	while (weft_now() < ew_at)
		;
	ck_assert_int_ge(weft_event_set(ew_ev), 0);
	return NULL;
}

static void *event_main(void *arg)
{
	(void)arg;
	long rounds = SCALED(400);
	for (long round = 0; round < rounds; round++) {
		weft_task_t t[EW_TASKS];
		struct threads th, sth;
		ew_ev = malloc(sizeof(*ew_ev));
		ck_assert_ptr_nonnull(ew_ev);
		ck_assert_int_eq(weft_event_init(ew_ev), 0);
		ew_at = weft_now() + 300 * WEFT_USEC;
		for (long i = 0; i < EW_TASKS; i++)
			ck_assert_int_eq(weft_spawn(&t[i], ew_task, (void *)i),
					 0);
		threads_start(&th, EW_THREADS, ew_thread, idx_arg);
		threads_start(&sth, 1, ew_setter, idx_arg);
		for (int i = 0; i < EW_TASKS; i++)
			ck_assert_int_eq(weft_join(t[i], NULL), 0);
		threads_join(&th);
		threads_join(&sth);
		ck_assert_int_eq(waitq_len(&ew_ev->wq), 0);
		memset(ew_ev, 0xa5, sizeof(*ew_ev));
		free(ew_ev);
	}
	return NULL;
}

START_TEST(event_select_timeout_ties)
{
	weft_test_run(event_main, NULL, WORKERS);
}
END_TEST

/* ---- freed by the waiter the release woke, as another's abort lands ----- */

enum { FK_EVENT, FK_LOCK, FK_SEM, FK_FUTURE, FK_KINDS };

struct fobj {
	int kind;
	union {
		struct weft_event e;
		struct weft_lock l;
		struct weft_sem s;
		struct weft_future f;
	};
	int ready; /* the doomed task and the freer wait */
	int freer_waiting;
	bool freer_thread;
};

static int fobj_wait(struct fobj *o)
{
	switch (o->kind) {
	case FK_EVENT:
		return weft_event_wait(&o->e);
	case FK_LOCK: {
		int r = weft_lock_acquire(&o->l);
		if (!r)
			ck_assert_int_eq(weft_lock_release(&o->l), 0);
		return r;
	}
	case FK_SEM:
		return weft_sem_acquire(&o->s);
	default:
		return weft_future_wait(&o->f, NULL);
	}
}

static void fobj_release(struct fobj *o)
{
	switch (o->kind) {
	case FK_EVENT:
		ck_assert_int_ge(weft_event_set(&o->e), 0);
		break;
	case FK_LOCK:
		ck_assert_int_eq(weft_lock_release(&o->l), 0);
		break;
	case FK_SEM:
		ck_assert_int_eq(weft_sem_release(&o->s), 0);
		break;
	default:
		ck_assert_int_eq(weft_future_set_result(&o->f, NULL), 0);
	}
}

static struct weft_waitq *fobj_wq(struct fobj *o)
{
	switch (o->kind) {
	case FK_EVENT:
		return &o->e.wq;
	case FK_LOCK:
		return &o->l.wq;
	case FK_SEM:
		return &o->s.wq;
	default:
		return &o->f.wq;
	}
}

/* Waits; when it gets through, frees o at once. */
static void *freer(void *arg)
{
	struct fobj *o = arg;
	int r = fobj_wait(o);
	ck_assert_int_eq(r, 0);
	memset(o, 0x5a, sizeof(*o));
	free(o);
	return NULL;
}

/* Waits and is cancelled about when the release lands; the lock and sem
 * versions hand to the oldest, the freer, so this one queues behind. */
static void *doomed(void *arg)
{
	struct fobj *o = arg;
	int r = fobj_wait(o);
	ck_assert(r == -ECANCELED || r == 0);
	return (void *)(intptr_t)r;
}

struct frelease {
	struct fobj *o;
	weft_task_t victim;
	int spins;
};

static void *freleaser(void *arg)
{
	struct frelease *fr2 = arg;
	spin(fr2->spins);
	fobj_release(fr2->o);
	return NULL;
}

static void *fcanceller(void *arg)
{
	struct frelease *fr2 = arg;
	spin(fr2->spins);
	weft_cancel(fr2->victim);
	return NULL;
}

static struct frelease *fr_cur_rel, *fr_cur_can;
static void *fr_rel_arg(int i)
{
	(void)i;
	return fr_cur_rel;
}
static void *fr_can_arg(int i)
{
	(void)i;
	return fr_cur_can;
}

/* A lock or semaphore's only waiter, a task cancelled from a plain thread
 * as the permit or the lock is handed to it: if it got it, it frees the
 * object at once; else the caller does, after the releaser returned. */
static void *handed_freer(void *arg)
{
	struct fobj *o = arg;
	int r = o->kind == FK_LOCK ? weft_lock_acquire(&o->l)
				   : weft_sem_acquire(&o->s);
	if (r == -ECANCELED)
		return (void *)0;
	ck_assert_int_eq(r, 0);
	memset(o, 0x5a, sizeof(*o));
	free(o);
	return (void *)1;
}

static void fobj_init(struct fobj *o, int kind)
{
	o->kind = kind;
	switch (kind) {
	case FK_EVENT:
		ck_assert_int_eq(weft_event_init(&o->e), 0);
		break;
	case FK_LOCK:
		ck_assert_int_eq(weft_lock_init(&o->l), 0);
		break;
	case FK_SEM:
		ck_assert_int_eq(weft_sem_init(&o->s, 0), 0);
		break;
	default:
		ck_assert_int_eq(weft_future_init(&o->f), 0);
	}
}

/* Releases o from this task, or from a plain thread (not a lock: its
 * holder, this task, must release it). */
static void release_somewhere(struct fobj *o, uint64_t *s)
{
	if (o->kind == FK_LOCK || rnd(s) % 2) {
		fobj_release(o);
		return;
	}
	struct frelease rel = { .o = o, .spins = 0 };
	fr_cur_rel = &rel;
	struct threads rth;
	threads_start(&rth, 1, freleaser, fr_rel_arg);
	threads_join(&rth);
}

static void handed_round(int kind, uint64_t *s)
{
	struct fobj *o = calloc(1, sizeof(*o));
	ck_assert_ptr_nonnull(o);
	fobj_init(o, kind);
	struct weft_waitq *wq = fobj_wq(o);
	weft_task_t ft;
	if (kind == FK_LOCK)
		ck_assert_int_eq(weft_lock_try_acquire(&o->l), 0);
	ck_assert_int_eq(weft_spawn(&ft, handed_freer, o), 0);
	while (waitq_len(wq) < 1)
		weft_yield();
	struct frelease can = { .o = o,
				.victim = ft,
				.spins = (int)(rnd(s) % 3000) };
	fr_cur_can = &can;
	struct threads cth;
	threads_start(&cth, 1, fcanceller, fr_can_arg);
	spin((int)(rnd(s) % 3000));
	release_somewhere(o, s);
	threads_join(&cth);
	void *r;
	ck_assert_int_eq(weft_join(ft, &r), 0);
	if (!r) { /* cancelled: it took nothing, nobody waits */
		if (kind == FK_SEM)
			ck_assert_int_eq(weft_sem_value(&o->s), 1);
		else
			ck_assert_int_eq(weft_lock_locked(&o->l), 0);
		ck_assert_int_eq(waitq_len(wq), 0);
		memset(o, 0x5a, sizeof(*o));
		free(o);
	}
}

/* An event or a future: every waiter is woken by the release, one frees
 * it at once while the other's cancellation (from a plain thread) lands. */
static void woken_round(int kind, bool freer_thread, uint64_t *s)
{
	struct fobj *o = calloc(1, sizeof(*o));
	ck_assert_ptr_nonnull(o);
	fobj_init(o, kind);
	weft_task_t ft = { 0 }, dt;
	pthread_t fthr;
	struct weft_waitq *wq = fobj_wq(o);
	if (freer_thread)
		ck_assert_int_eq(pthread_create(&fthr, NULL, freer, o), 0);
	else
		ck_assert_int_eq(weft_spawn(&ft, freer, o), 0);
	while (waitq_len(wq) < 1)
		weft_yield();
	ck_assert_int_eq(weft_spawn(&dt, doomed, o), 0);
	while (waitq_len(wq) < 2)
		weft_yield();
	struct frelease can = { .o = o,
				.victim = dt,
				.spins = (int)(rnd(s) % 3000) };
	fr_cur_can = &can;
	struct threads cth;
	threads_start(&cth, 1, fcanceller, fr_can_arg);
	spin((int)(rnd(s) % 3000));
	release_somewhere(o, s); /* o may be gone once it returns */
	threads_join(&cth);
	if (freer_thread)
		ck_assert_int_eq(pthread_join(fthr, NULL), 0);
	else
		ck_assert_int_eq(weft_join(ft, NULL), 0);
	ck_assert_int_eq(weft_join(dt, NULL), 0);
}

static void *free_main(void *arg)
{
	(void)arg;
	uint64_t s = 0xdeadbeef;
	long rounds = SCALED(300);
	for (long i = 0; i < rounds; i++) {
		woken_round(FK_EVENT, i % 2, &s);
		woken_round(FK_FUTURE, i % 2, &s);
		handed_round(FK_SEM, &s);
		handed_round(FK_LOCK, &s);
	}
	return NULL;
}

START_TEST(freed_after_release_mixed)
{
	weft_test_run(free_main, NULL, WORKERS);
}
END_TEST

/* ---- condition: tasks and threads, notify one and all, cancels -------- */

static struct weft_lock c_lock = WEFT_LOCK_INIT;
static struct weft_cond c_items = WEFT_COND_INIT(&c_lock);
static struct weft_cond c_room = WEFT_COND_INIT(&c_lock);
static long c_count, c_made, c_taken, c_target;
static int c_holders;
#define C_CAP 4

static bool has_item(void *arg)
{
	(void)arg;
	return c_count > 0 || c_taken + c_count >= c_target;
}

static bool has_room(void *arg)
{
	(void)arg;
	return c_count < C_CAP || c_made >= c_target;
}

static void c_check_held(void)
{
	ck_assert(weft__lock_held_by_me(&c_lock));
	ck_assert_int_eq(__atomic_add_fetch(&c_holders, 1, __ATOMIC_RELAXED),
			 1);
	__atomic_sub_fetch(&c_holders, 1, __ATOMIC_RELAXED);
}

/* role 0 consumer, 1 producer. Returns when the target is met or the
 * task is cancelled. */
static void cond_party(int role, bool task, uint64_t *s)
{
	for (;;) {
		int r = weft_lock_acquire(&c_lock);
		if (r == -ECANCELED && task)
			return;
		ck_assert_int_eq(r, 0);
		c_check_held();
		struct weft_deadline d;
		bool timed = task && rnd(s) % 3 == 0;
		if (timed)
			ck_assert_int_eq(weft_deadline_enter(
						 &d,
						 (int64_t)(rnd(s) % 100 + 1) *
							 WEFT_USEC),
					 0);
		r = weft_cond_wait_for(role ? &c_room : &c_items,
				       role ? has_room : has_item, NULL);
		if (timed)
			weft_deadline_leave(&d);
		/* The lock is held again, whatever happened. */
		c_check_held();
		if (r) {
			ck_assert(task && (r == -ECANCELED || r == -ETIMEDOUT));
			ck_assert_int_eq(weft_lock_release(&c_lock), 0);
			if (r == -ECANCELED)
				return;
			continue;
		}
		bool over;
		if (role) {
			over = c_made >= c_target;
			if (!over) {
				c_made++;
				c_count++;
			}
		} else {
			over = c_count == 0;
			if (!over) {
				c_count--;
				c_taken++;
			}
		}
		ck_assert_int_le(c_count, C_CAP);
		ck_assert_int_ge(c_count, 0);
		/* Wake the other side: one, or all; and all when over, so
		 * nobody is left waiting on a target already met. */
		bool all = over || c_made >= c_target || rnd(s) % 4 == 0;
		struct weft_cond *other = role ? &c_items : &c_room;
		ck_assert_int_ge(all ? weft_cond_notify_all(other)
				     : weft_cond_notify(other, 1),
				 0);
		if (over)
			ck_assert_int_ge(weft_cond_notify_all(role ? &c_room
								   : &c_items),
					 0);
		ck_assert_int_eq(weft_lock_release(&c_lock), 0);
		if (over)
			return;
	}
}

static void *cond_task(void *arg)
{
	uint64_t s = (uintptr_t)arg * 2654435761u + 3;
	cond_party((int)((uintptr_t)arg % 2), true, &s);
	return NULL;
}

static void *cond_thread(void *arg)
{
	uint64_t s = (uintptr_t)arg * 7 + 1;
	cond_party((int)((uintptr_t)arg % 2), false, &s);
	return NULL;
}

static void *cond_main(void *arg)
{
	(void)arg;
	enum { NT = 10, NTH = 4 };
	weft_task_t t[NT];
	struct threads th;
	struct canceller cc = {
		.victims = t, .n = NT, .every_us = 500, .percent = 20
	};
	struct canceller ct = cc;
	c_target = SCALED(20000);
	c_count = c_made = c_taken = 0;
	for (long i = 0; i < NT; i++)
		ck_assert_int_eq(weft_spawn(&t[i], cond_task, (void *)i), 0);
	/* The threads, which cannot be cancelled, finish the job: two of
	 * each role. */
	threads_start(&th, NTH, cond_thread, idx_arg);
	canceller_start(&cc, false);
	canceller_start(&ct, true);
	threads_join(&th);
	canceller_stop(&cc);
	canceller_stop(&ct);
	for (int i = 0; i < NT; i++)
		ck_assert_int_eq(weft_join(t[i], NULL), 0);
	ck_assert_int_eq(c_made, c_target);
	ck_assert_int_eq(c_taken + c_count, c_made);
	ck_assert_int_eq(c_count, 0);
	ck_assert_int_eq(weft_lock_locked(&c_lock), 0);
	ck_assert_int_eq(waitq_len(&c_lock.wq), 0);
	ck_assert_int_eq(waitq_len(&c_items.wq), 0);
	ck_assert_int_eq(waitq_len(&c_room.wq), 0);
	return NULL;
}

START_TEST(cond_tasks_threads)
{
	weft_test_run(cond_main, NULL, WORKERS);
}
END_TEST

/* ---- one select over a queue, a semaphore, a lock and an event ---------- */

static struct weft_queue x_q = WEFT_QUEUE_INIT(sizeof(uint64_t), 2);
static struct weft_sem x_sem = WEFT_SEM_INIT(0);
static struct weft_lock x_lock = WEFT_LOCK_INIT;
static struct weft_event x_stop = WEFT_EVENT_INIT;
static long x_put, x_got, x_rel, x_took, x_locked, x_inside;
static long x_iters;

static void *x_taker(void *arg)
{
	uint64_t s = (uintptr_t)arg * 2654435761u + 9;
	bool task = weft_current().task != NULL;
	for (;;) {
		uint64_t v;
		struct weft_select_case c[] = {
			WEFT_CASE_GET(&x_q, &v),
			WEFT_CASE_SEM(&x_sem),
			WEFT_CASE_LOCK(&x_lock),
			WEFT_CASE_EVENT(&x_stop),
			WEFT_CASE_TIMEOUT((int64_t)(rnd(&s) % 60) * WEFT_USEC),
		};
		/* Rotate which comes first, but keep the timeout last. */
		int rot = (int)(rnd(&s) % 4);
		struct weft_select_case d[5];
		int map[5];
		for (int i = 0; i < 4; i++) {
			d[i] = c[(i + rot) % 4];
			map[i] = (i + rot) % 4;
		}
		d[4] = c[4];
		map[4] = 4;
		struct weft_deadline dl;
		bool timed = task && rnd(&s) % 4 == 0;
		if (timed)
			ck_assert_int_eq(weft_deadline_enter(
						 &dl,
						 (int64_t)(rnd(&s) % 60 + 1) *
							 WEFT_USEC),
					 0);
		int r = weft_select(d, 5);
		if (timed)
			weft_deadline_leave(&dl);
		if (r == -ECANCELED && task)
			return NULL;
		if (r == -ETIMEDOUT && timed)
			continue;
		ck_assert_int_ge(r, 0);
		int st = d[r].status;
		switch (map[r]) {
		case 0:
			if (st == -EPIPE)
				continue;
			ck_assert_int_eq(st, 0);
			__atomic_add_fetch(&x_got, 1, __ATOMIC_RELAXED);
			/* the item must have been put: checked by the sums */
			break;
		case 1:
			ck_assert_int_eq(st, 0);
			__atomic_add_fetch(&x_took, 1, __ATOMIC_RELAXED);
			break;
		case 2:
			ck_assert_int_eq(st, 0);
			ck_assert_int_eq(__atomic_add_fetch(&x_inside, 1,
							    __ATOMIC_RELAXED),
					 1);
			x_locked++;
			spin((int)(rnd(&s) % 300));
			__atomic_sub_fetch(&x_inside, 1, __ATOMIC_RELAXED);
			ck_assert_int_eq(weft_lock_release(&x_lock), 0);
			break;
		case 3:
			ck_assert_int_eq(st, 0);
			return NULL;
		default:
			ck_assert_int_eq(st, 0);
		}
	}
}

/* Feeds the queue and the semaphore, and takes the lock itself now and
 * then (so that the lock case has to wait). */
static void *x_feeder(void *arg)
{
	uint64_t s = (uintptr_t)arg * 31 + 17;
	bool task = weft_current().task != NULL;
	for (long i = 0; i < x_iters; i++) {
		uint64_t v = i;
		switch (rnd(&s) % 3) {
		case 0: {
			int r = weft_queue_put(&x_q, &v);
			if (r == -ECANCELED && task)
				return NULL;
			ck_assert_int_eq(r, 0);
			__atomic_add_fetch(&x_put, 1, __ATOMIC_RELAXED);
			break;
		}
		case 1:
			ck_assert_int_eq(weft_sem_release(&x_sem), 0);
			__atomic_add_fetch(&x_rel, 1, __ATOMIC_RELAXED);
			break;
		default: {
			int r = weft_lock_acquire(&x_lock);
			if (r == -ECANCELED && task)
				return NULL;
			ck_assert_int_eq(r, 0);
			ck_assert_int_eq(__atomic_add_fetch(&x_inside, 1,
							    __ATOMIC_RELAXED),
					 1);
			x_locked++;
			if (task)
				(void)weft_yield();
			else
				sched_yield();
			__atomic_sub_fetch(&x_inside, 1, __ATOMIC_RELAXED);
			ck_assert_int_eq(weft_lock_release(&x_lock), 0);
		}
		}
	}
	return NULL;
}

static void *select_main(void *arg)
{
	(void)arg;
	enum { NT = 8, NF = 2, NTH = 2, NFTH = 1 };
	weft_task_t t[NT], f[NF];
	struct threads th, fth;
	struct canceller cc = {
		.victims = t, .n = NT, .every_us = 400, .percent = 25
	};
	struct canceller ct = cc;
	x_iters = SCALED(6000);
	for (long i = 0; i < NT; i++)
		ck_assert_int_eq(weft_spawn(&t[i], x_taker, (void *)i), 0);
	threads_start(&th, NTH, x_taker, idx_arg);
	for (long i = 0; i < NF; i++)
		ck_assert_int_eq(weft_spawn(&f[i], x_feeder, (void *)i), 0);
	threads_start(&fth, NFTH, x_feeder, idx_arg);
	canceller_start(&cc, false);
	canceller_start(&ct, true);
	for (int i = 0; i < NF; i++)
		ck_assert_int_eq(weft_join(f[i], NULL), 0);
	threads_join(&fth);
	canceller_stop(&cc);
	canceller_stop(&ct);
	ck_assert_int_ge(weft_event_set(&x_stop), 0);
	for (int i = 0; i < NT; i++)
		ck_assert_int_eq(weft_join(t[i], NULL), 0);
	threads_join(&th);
	uint64_t v;
	while (weft_queue_try_get(&x_q, &v) == 0)
		x_got++;
	ck_assert_int_eq(x_got, x_put);
	ck_assert_int_eq(x_took + weft_sem_value(&x_sem), x_rel);
	ck_assert_int_eq(weft_lock_locked(&x_lock), 0);
	ck_assert_int_eq(x_lock.state, 0);
	ck_assert_int_eq(x_sem.state & 1, 0);
	ck_assert_int_eq(waitq_len(&x_lock.wq), 0);
	ck_assert_int_eq(waitq_len(&x_sem.wq), 0);
	ck_assert_int_eq(waitq_len(&x_q.getters), 0);
	ck_assert_int_eq(waitq_len(&x_q.putters), 0);
	ck_assert_int_eq(waitq_len(&x_stop.wq), 0);
	ck_assert_int_eq(weft_queue_destroy(&x_q), 0);
	return NULL;
}

START_TEST(select_tasks_threads)
{
	weft_test_run(select_main, NULL, WORKERS);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("sync_mixed");
	TCase *tc = tcase_create("mixed");
	tcase_set_timeout(tc, 600);
	tcase_add_test(tc, lock_tasks_threads);
	tcase_add_test(tc, sem_tasks_threads);
	tcase_add_loop_test(tc, queue_tasks_threads, 0, 3);
	tcase_add_test(tc, future_callbacks_tasks_threads);
	tcase_add_test(tc, barrier_tasks_threads);
	tcase_add_test(tc, event_select_timeout_ties);
	tcase_add_test(tc, freed_after_release_mixed);
	tcase_add_test(tc, cond_tasks_threads);
	tcase_add_test(tc, select_tasks_threads);
	suite_add_tcase(s, tc);
	return weft_test_main(s);
}
