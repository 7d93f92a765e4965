/* The Chase-Lev deque alone: one owner pushing and taking, several thieves
 * stealing; every item must come out exactly once. */
#include <pthread.h>
#include <stdatomic.h>
#include "runtime/deque.h"
#include "test_util.h"

#define THIEVES 3

static struct weft_deque dq;
static long nitems;
static _Atomic int *seen;
static atomic_bool done;

static void record(struct weft_task *x)
{
	long i = (long)(uintptr_t)x - 16;
	ck_assert(i >= 0 && i < nitems);
	ck_assert_int_eq(atomic_fetch_add(&seen[i], 1), 0);
}

static void *thief(void *arg)
{
	long got = 0;
	while (!atomic_load(&done) || weft__deque_len(&dq)) {
		struct weft_task *x = weft__deque_steal(&dq);
		if (x == WEFT_STEAL_EMPTY || x == WEFT_STEAL_RETRY)
			continue;
		record(x);
		got++;
	}
	return (void *)got;
}

START_TEST(owner_alone)
{
	weft__deque_init(&dq);
	ck_assert_ptr_null(weft__deque_take(&dq));
	ck_assert_ptr_eq(weft__deque_steal(&dq), WEFT_STEAL_EMPTY);
	for (uintptr_t i = 16; i < 16 + WEFT_DEQUE_CAP; i++)
		ck_assert(weft__deque_push(&dq, (struct weft_task *)i));
	ck_assert(!weft__deque_push(&dq, (struct weft_task *)99));
	/* The owner takes LIFO, thieves FIFO. */
	ck_assert_ptr_eq(weft__deque_take(&dq),
			 (struct weft_task *)(16 + WEFT_DEQUE_CAP - 1));
	ck_assert_ptr_eq(weft__deque_steal(&dq), (struct weft_task *)16);
	ck_assert_int_eq(weft__deque_len(&dq), WEFT_DEQUE_CAP - 2);
}
END_TEST

START_TEST(every_item_once)
{
	nitems = SCALED(400000);
	seen = calloc((size_t)nitems, sizeof(*seen));
	weft__deque_init(&dq);
	atomic_store(&done, false);
	pthread_t th[THIEVES];
	for (int i = 0; i < THIEVES; i++)
		pthread_create(&th[i], NULL, thief, NULL);
	long taken = 0;
	for (long i = 0; i < nitems; i++) {
		struct weft_task *x = (struct weft_task *)(uintptr_t)(i + 16);
		while (!weft__deque_push(&dq, x)) {
			struct weft_task *y = weft__deque_take(&dq);
			if (y) {
				record(y);
				taken++;
			}
		}
		if (i % 3 == 0) { /* the owner takes too, racing thieves */
			struct weft_task *y = weft__deque_take(&dq);
			if (y) {
				record(y);
				taken++;
			}
		}
	}
	struct weft_task *y;
	while ((y = weft__deque_take(&dq))) {
		record(y);
		taken++;
	}
	atomic_store(&done, true);
	long stolen = 0;
	for (int i = 0; i < THIEVES; i++) {
		void *g;
		pthread_join(th[i], &g);
		stolen += (long)g;
	}
	ck_assert_int_eq(taken + stolen, nitems);
	for (long i = 0; i < nitems; i++)
		ck_assert_int_eq(atomic_load(&seen[i]), 1);
	free(seen);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("deque");
	TCase *tc = tcase_create("deque");
	tcase_set_timeout(tc, 600);
	tcase_add_test(tc, owner_alone);
	tcase_add_test(tc, every_item_once);
	suite_add_tcase(s, tc);
	return weft_test_main(s);
}
