/* The global queue alone (runtime/inject.h): producers pushing single
 * tasks and lists while consumers pop batches, every task out exactly
 * once and in each producer's order; and its emptiness hint while a drain
 * holds the tasks it took. */
#include <pthread.h>
#include <stdatomic.h>
#include "runtime/inject.h"
#include "runtime/task.h"
#include "test_util.h"

#define PRODUCERS 3
#define CONSUMERS 2
#define BATCH 32

static struct weft_inject q;
static struct weft_task *tasks;
static long per_producer;
static _Atomic int *seen;
static _Atomic long taken;

/* Producer p's tasks are p * per_producer ...; pushed one by one and,
 * every fourth time, as a list of three. */
static void *produce(void *arg)
{
	long p = (long)(intptr_t)arg, base = p * per_producer;

	for (long i = 0; i < per_producer;) {
		if (i % 4 == 3 && i + 3 <= per_producer) {
			struct weft_task *a = &tasks[base + i];
			a->next = &tasks[base + i + 1];
			a->next->next = &tasks[base + i + 2];
			weft__inject_push_list(&q, a, a->next->next);
			i += 3;
		} else {
			weft__inject_push(&q, &tasks[base + i]);
			i++;
		}
	}
	return NULL;
}

static void *consume(void *arg)
{
	long total = PRODUCERS * per_producer;

	(void)arg;
	while (atomic_load(&taken) < total) {
		int n;
		struct weft_task *t = weft__inject_pop(&q, BATCH, &n);
		long last[PRODUCERS] = { -1, -1, -1 };

		for (int i = 0; i < n; i++, t = t->next) {
			long idx = t - tasks, p = idx / per_producer;

			ck_assert_int_eq(atomic_fetch_add(&seen[idx], 1), 0);
			/* A batch has each producer's tasks in push order. */
			ck_assert_int_gt(idx, last[p]);
			last[p] = idx;
		}
		atomic_fetch_add(&taken, n);
	}
	return NULL;
}

START_TEST(every_task_once)
{
	pthread_t th[PRODUCERS + CONSUMERS];
	long total;

	per_producer = SCALED(100000);
	total = PRODUCERS * per_producer;
	tasks = calloc((size_t)total, sizeof(*tasks));
	seen = calloc((size_t)total, sizeof(*seen));
	ck_assert(tasks && seen);
	weft__inject_init(&q);
	for (long i = 0; i < PRODUCERS; i++)
		ck_assert_int_eq(pthread_create(&th[i], NULL, produce,
						(void *)(intptr_t)i),
				 0);
	for (int i = 0; i < CONSUMERS; i++)
		ck_assert_int_eq(pthread_create(&th[PRODUCERS + i], NULL,
						consume, NULL),
				 0);
	for (int i = 0; i < PRODUCERS + CONSUMERS; i++)
		pthread_join(th[i], NULL);
	for (long i = 0; i < total; i++)
		ck_assert_int_eq(atomic_load(&seen[i]), 1);
	ck_assert(weft__inject_empty(&q));
	ck_assert_int_eq(weft__inject_len(&q), 0);
	free(tasks);
	free(seen);
}
END_TEST

/* A drain between taking the pushed tasks and counting them in: the
 * emptiness a worker about to sleep looks at said empty, and the worker
 * left the tasks to the drainer alone. */
static int hint_empty_in_drain = -1;

static void look_during_drain(struct weft_inject *in)
{
	hint_empty_in_drain = weft__inject_empty_for_sleep(in);
}

START_TEST(not_empty_during_drain)
{
	struct weft_task t[3];
	int n;

	weft__inject_init(&q);
	for (int i = 0; i < 3; i++)
		weft__inject_push(&q, &t[i]);
	weft__inject_after_exchange = look_during_drain;
	ck_assert_ptr_eq(weft__inject_pop(&q, 1, &n), &t[0]);
	weft__inject_after_exchange = NULL;
	ck_assert_int_eq(hint_empty_in_drain, 0);
	ck_assert(!weft__inject_empty_for_sleep(&q));
	ck_assert(!weft__inject_empty(&q));
	ck_assert_int_eq(weft__inject_len(&q), 2);
	ck_assert_ptr_eq(weft__inject_pop(&q, 8, &n), &t[1]);
	ck_assert_int_eq(n, 2);
	ck_assert(weft__inject_empty(&q));
	ck_assert(weft__inject_empty_for_sleep(&q));
}
END_TEST

int main(void)
{
	Suite *s = suite_create("inject");
	TCase *tc = tcase_create("inject");

	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, every_task_once);
	tcase_add_test(tc, not_empty_during_drain);
	suite_add_tcase(s, tc);
	return weft_test_main(s);
}
