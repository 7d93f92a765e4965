/* Lifetimes: task structs reached by timers after their task ended, and
 * runtimes started while another runs, handles kept from a previous run,
 * plain threads that spawn and join while weft_run shuts down. */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <unistd.h>
#include "test_util.h"

/* ---- a timer firing at a task that ended and was respawned -------------- */

/*
 * A worker pops a batch of due timers, then fires them one by one. Each
 * round here puts a batch of sleepers due at the same instant and cancels
 * them, last first, at that instant: a cancelled sleeper ends, is joined
 * and its struct respawned while a worker or the monitor is still firing
 * the batch's earlier entries, so a late fire finds a struct that belongs
 * to a new task. Under ThreadSanitizer that was a race with the respawn.
 */
#define BATCH 64
#ifdef __SANITIZE_THREAD__
#define RECYCLE_SECONDS 15
#else
#define RECYCLE_SECONDS 2
#endif

static int64_t batch_at;
static atomic_int asleep;

static void *batch_sleeper(void *arg)
{
	atomic_fetch_add(&asleep, 1);
	weft_sleep_until(batch_at); /* 0 or -ECANCELED: either is fine */
	return NULL;
}

static void *noop(void *arg)
{
	return arg;
}

static void *recycle_main(void *arg)
{
	int64_t end = weft_now() + RECYCLE_SECONDS * WEFT_SEC;
	weft_task_t t[BATCH];
	unsigned seed = 1;
	int64_t setup = 10 * WEFT_MSEC;
	while (weft_now() < end) {
		/* Cancel from 64 us before to 191 us after the batch is
		 * due: around when a worker or the monitor fires it. */
		int64_t lag = ((int64_t)(rand_r(&seed) % 256) - 64) * WEFT_USEC;
		/* Due a little after all are asleep, by how long the last
		 * round took to get there. */
		int64_t t0 = weft_now();
		batch_at = t0 + 2 * setup;
		for (int i = 0; i < BATCH; i++)
			ck_assert_int_eq(weft_spawn(&t[i], batch_sleeper, NULL), 0);
		while (atomic_load(&asleep) < BATCH)
			weft_yield();
		atomic_store(&asleep, 0);
		setup = weft_now() - t0;
		while (weft_now() < batch_at + lag)
			; /* keep this worker: its timers go to the monitor */
		for (int i = BATCH - 1; i >= 0; i--)
			ck_assert_int_eq(weft_cancel(t[i]), 0);
		for (int i = BATCH - 1; i >= 0; i--) {
			ck_assert_int_eq(weft_join(t[i], NULL), 0);
			/* Respawns t[i]'s struct, the last one freed here. */
			ck_assert_int_eq(weft_spawn(NULL, noop, NULL), 0);
		}
	}
	return NULL;
}

START_TEST(timer_fires_at_recycled_task)
{
	weft_test_run(recycle_main, NULL, 2);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("lifecycle");
	TCase *tc = tcase_create("lifecycle");
	tcase_set_timeout(tc, 600);
	tcase_add_test(tc, timer_fires_at_recycled_task);
	suite_add_tcase(s, tc);
	return weft_test_main(s);
}
