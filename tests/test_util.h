/* Shared helpers for weft's Check suites. */
#ifndef WEFT_TESTS_TEST_UTIL_H
#define WEFT_TESTS_TEST_UTIL_H

#include <check.h>
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include "weft.h"

#ifndef WEFT_TEST_SCALE
#define WEFT_TEST_SCALE 100
#endif

/* A stress size scaled for the preset: n at 100%, never below lo. */
static inline long weft_test_scaled(long n, long lo)
{
	const char *env = getenv("WEFT_TEST_SCALE");
	long pct = env ? atol(env) : WEFT_TEST_SCALE;
	long v = n * pct / 100;
	return v < lo ? lo : v;
}
#define SCALED(n) weft_test_scaled((n), 1)

/* errno as a task reads it: in a call of its own, as docs/concepts.md asks
 * (errno). In the task's function the compiler may reuse &errno computed
 * before a weft call, on the thread the task ran on then (clang does). */
static __attribute__((noinline, unused)) int task_errno(void)
{
	return errno;
}

/* xorshift64: a cheap random stream, one state per thread or task. */
static inline uint64_t rnd(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

/* The deadline of a waiter that a test expects to time out while it waits
 * for other waiters to queue up behind it: long enough that they all do,
 * even under a sanitizer on a busy machine, or the test would wait for a
 * queue that lost its timed waiter. */
#define TIMED_WAITER_NS ((WEFT_TEST_SCALE >= 100 ? 300 : 3000) * WEFT_MSEC)

/* The deadline of a call a test expects to end at once, or on an event a
 * few milliseconds away: there only so that a lost wake-up fails the test
 * instead of hanging it. Generous, as a sanitizer's build or valgrind on a
 * busy machine can hold a task up for a second, and a call past its
 * deadline says so before its attempt (weft/io.h). */
#define HANG_NS (10 * WEFT_SEC)

/* Starts the hang watchdog (tests/watchdog.c). */
void weft_test_watchdog(void);

/* Runs a Check suite and returns the process exit status. */
static inline int weft_test_main(Suite *s)
{
	weft_test_watchdog();
	SRunner *sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

/* fork(2) for a test: the parent alone checks that it worked. A child
 * must not call Check (ck_assert and the like) at all: another thread of
 * the parent may hold Check's lock at the fork, and the child would wait
 * for it for ever, before any alarm() it set could end it. */
static inline pid_t weft_test_fork(void)
{
	pid_t pid = fork();

	if (pid < 0)
		ck_abort_msg("fork: %s", strerror(errno));
	return pid;
}

/* Waits for the child pid and returns its status; after limit_ms it is
 * taken for hung: killed, and the test fails saying what hung. (Not
 * alarm() in the child: Check's SIGALRM handler kills the process
 * group.) */
static inline int weft_test_wait_child(pid_t pid, int limit_ms,
				       const char *what)
{
	int status;
	pid_t done;

	for (int ms = 0; (done = waitpid(pid, &status, WNOHANG)) == 0; ms++) {
		if (ms == limit_ms) {
			kill(pid, SIGKILL);
			waitpid(pid, &status, 0);
			ck_abort_msg("%s", what);
		}
		usleep(1000);
	}
	ck_assert_int_eq(done, pid);
	return status;
}

/* Runs fn inside a fresh runtime configured by cfg; checks it worked. */
static inline void *weft_test_run_with(weft_fn fn, void *arg,
				       const struct weft_config *cfg)
{
	void *res = NULL;
	ck_assert_int_eq(weft_run(fn, arg, cfg, &res), 0);
	return res;
}

/* weft_test_run_with the given workers. */
static inline void *weft_test_run(weft_fn fn, void *arg, int workers)
{
	struct weft_config cfg = { .workers = workers };
	return weft_test_run_with(fn, arg, &cfg);
}

/* weft_test_run with crowding off, for a test that checks that queued work
 * spreads to an idle worker: a crowded runtime keeps it on one on purpose
 * (runtime/crowd.h), and a machine loaded by the other tests crowds it. */
static inline void *weft_test_run_spread(weft_fn fn, void *arg, int workers)
{
	struct weft_config cfg = { .workers = workers,
				   .crowding = WEFT_CROWDING_OFF };
	return weft_test_run_with(fn, arg, &cfg);
}

#endif
