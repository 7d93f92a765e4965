/* WEFT_DEBUG's assertions fire: each misuse runs in a forked child, which
 * must die of SIGABRT in a debug build (and live without one, where the
 * assertions cost nothing and check nothing). */
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>
#include "runtime/spinlock.h"
#include "runtime/wait.h"
#include "test_util.h"

#ifdef WEFT_DEBUG
#define EXPECT_ABORT 1
#else
#define EXPECT_ABORT 0
#endif

/* Runs fn in a child; true if it died of SIGABRT. */
static bool aborts(void (*fn)(void))
{
	fflush(NULL);
	pid_t pid = weft_test_fork();
	if (!pid) {
		fclose(stderr); /* the expected report is noise here */
		fn();
		_exit(0);
	}
	int st;
	ck_assert_int_eq(waitpid(pid, &st, 0), pid);
	return WIFSIGNALED(st) && WTERMSIG(st) == SIGABRT;
}

static unsigned lock;

static void unlock_unheld(void)
{
	weft__spin_unlock(&lock);
}

static void unlock_others(void)
{
	__atomic_store_n(&lock, 12345u, __ATOMIC_RELAXED); /* someone's */
	weft__spin_unlock(&lock);
}

static void relock(void)
{
	weft__spin_lock(&lock);
	weft__spin_lock(&lock); /* would spin for ever */
}

static void settle_to_waiting(void)
{
	struct weft__waiter w;
	weft__waiter_init(&w, NULL);
	weft__waiter_settle(&w, WEFT__WAITING);
}

static void wake_unsettled(void)
{
	struct weft__waiter w;
	weft__waiter_init(&w, NULL);
	weft__waiter_wake(&w);
}

static void ok(void)
{
	weft__spin_lock(&lock);
	weft__spin_unlock(&lock);
}

START_TEST(assertions)
{
	ck_assert(!aborts(ok));
	ck_assert_int_eq(aborts(unlock_unheld), EXPECT_ABORT);
	ck_assert_int_eq(aborts(unlock_others), EXPECT_ABORT);
	ck_assert_int_eq(aborts(settle_to_waiting), EXPECT_ABORT);
	if (EXPECT_ABORT) { /* without the checks these hang */
		ck_assert(aborts(relock));
		ck_assert(aborts(wake_unsettled));
	}
}
END_TEST

int main(void)
{
	Suite *s = suite_create("debug");
	TCase *tc = tcase_create("debug");
	tcase_add_test(tc, assertions);
	suite_add_tcase(s, tc);
	return weft_test_main(s);
}
