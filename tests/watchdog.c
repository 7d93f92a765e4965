/*
 * A suite that outlives its ctest timeout is killed without a word: which
 * case hung, and where, is lost. The watchdog, a thread every suite starts
 * in weft_test_main when ctest gives the timeout (WEFT_TEST_TIMEOUT, in
 * seconds: native builds without a sanitizer, tests/CMakeLists.txt),
 * writes at nine tenths of it a dump of weft's tasks (if a runtime runs)
 * and gdb's backtrace of every thread, its children's too, then ends
 * the program.
 */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "tests/test_util.h"

static void *watch(void *arg)
{
	long secs = (long)(intptr_t)arg;
	char cmd[512];
	struct timespec end;

	clock_gettime(CLOCK_MONOTONIC, &end);
	end.tv_sec += secs;
	while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &end, NULL))
		;
	fprintf(stderr,
		"watchdog: the suite still runs after %ld s; its tasks and "
		"threads:\n",
		secs);
	int r = weft_dump(2);
	if (r)
		fprintf(stderr, "watchdog: no dump (%d)\n", r);
	/* Its children's too: a forked child that never ends keeps its
	 * parent in waitpid (one stuck on a lock copied held at the fork). */
	snprintf(cmd, sizeof(cmd),
		 "for p in %d $(cat /proc/%d/task/*/children 2>/dev/null); do "
		 "echo \"watchdog: process $p\"; "
		 "gdb -p $p -batch -ex 'thread apply all bt' 2>/dev/null "
		 "</dev/null; done 1>&2",
		 (int)getpid(), (int)getpid());
	if (system(cmd))
		fprintf(stderr, "watchdog: no gdb backtraces\n");
	_exit(124);
}

void weft_test_watchdog(void)
{
	const char *env = getenv("WEFT_TEST_TIMEOUT");
	long secs = env ? atol(env) * 9 / 10 : 0;
	sigset_t all, old;
	pthread_t th;

	if (secs <= 0)
		return;
	/* Every signal blocked in the watchdog (it inherits the mask): the
	 * suites' process-directed signals go to their own threads. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	if (!pthread_create(&th, NULL, watch, (void *)secs))
		pthread_detach(th);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
}
