/* The records of unsent socket attempts alone (drivers/io_uring/unsent.h):
 * owner threads list fds and send them, taking and giving back records
 * as rings come and go; a closer paired with each waits for its owner's
 * fd. A wait must not return while an attempt listed before it began is
 * unsent, and must return once it is sent, whatever else the pool holds
 * (other owners' rounds, rounds past the list's length). */
#include <pthread.h>
#include <stdatomic.h>
#include <time.h>
#include "drivers/io_uring/unsent.h"
#include "test_util.h"

#define PAIRS 3
#define RECYCLE_EVERY 50 /* rounds between a give-back and a take */

struct pair {
	int fd; /* the owner's attempts on it are what its closer waits for */
	long rounds;
	_Atomic long listed, sent, checked; /* the last round that did each */
};

static uint64_t next_random(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

static void pause_us(unsigned us)
{
	struct timespec ts = { 0, (long)us * 1000 };

	nanosleep(&ts, NULL);
}

static void wait_for_round(_Atomic long *v, long round)
{
	while (atomic_load_explicit(v, memory_order_acquire) < round)
		sched_yield();
}

static void *owner(void *arg)
{
	struct pair *p = arg;
	uint64_t rng = (uint64_t)p->fd * 0x9e3779b97f4a7c15u + 1;
	struct weft__unsent *u = weft__unsent_take();

	ck_assert_ptr_nonnull(u);
	for (long k = 1; k <= p->rounds; k++) {
		/* 1 to 20 attempts: past WEFT__UNSENT_FDS now and then. */
		int n = 1 + (int)(next_random(&rng) % 20);
		int at = (int)(next_random(&rng) % (unsigned)n);

		for (int i = 0; i < n; i++)
			weft__unsent_note(u, i == at ? p->fd
						     : (int)(next_random(&rng) %
							     100));
		atomic_store_explicit(&p->listed, k, memory_order_release);
		pause_us((unsigned)(next_random(&rng) % 50));
		atomic_store_explicit(&p->sent, k, memory_order_release);
		weft__unsent_sent(u);
		wait_for_round(&p->checked, k);
		if (k % RECYCLE_EVERY == 0) {
			weft__unsent_give_back(u);
			u = weft__unsent_take();
			ck_assert_ptr_nonnull(u);
		}
	}
	weft__unsent_give_back(u);
	return NULL;
}

static void *closer(void *arg)
{
	struct pair *p = arg;

	for (long k = 1; k <= p->rounds; k++) {
		wait_for_round(&p->listed, k);
		weft__unsent_wait(p->fd, NULL);
		long sent =
			atomic_load_explicit(&p->sent, memory_order_acquire);

		ck_assert_int_eq(sent, k);
		atomic_store_explicit(&p->checked, k, memory_order_release);
	}
	return NULL;
}

START_TEST(wait_outlasts_listed_attempts)
{
	struct pair pairs[PAIRS];
	pthread_t threads[2 * PAIRS];

	for (int i = 0; i < PAIRS; i++) {
		pairs[i] =
			(struct pair){ .fd = 100 + i, .rounds = SCALED(3000) };
		ck_assert_int_eq(pthread_create(&threads[2 * i], NULL, owner,
						&pairs[i]),
				 0);
		ck_assert_int_eq(pthread_create(&threads[2 * i + 1], NULL,
						closer, &pairs[i]),
				 0);
	}
	for (int i = 0; i < 2 * PAIRS; i++)
		pthread_join(threads[i], NULL);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("unsent");
	TCase *tc = tcase_create("unsent");

	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, wait_outlasts_listed_attempts);
	suite_add_tcase(s, tc);
	return weft_test_main(s);
}
