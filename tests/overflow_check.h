/* The stack-overflow check test_task and test_stack share: a task named
 * "deep-recursion" runs fn in a child process, which must die of a signal
 * after weft's one-line report naming the task. */
#ifndef WEFT_TESTS_OVERFLOW_CHECK_H
#define WEFT_TESTS_OVERFLOW_CHECK_H

#include <stdint.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include "test_util.h"

static int recurse(int n)
{
	volatile char buf[512];
	buf[0] = (char)n;
	return n > 0 ? recurse(n - 1) + buf[0] : 0;
}

static void *overflow_body(void *arg)
{
	return (void *)(intptr_t)recurse(1 << 20);
}

static weft_fn overflow_fn;

static void *overflow_main(void *arg)
{
	weft_task_t t;
	struct weft_spawn_opts o = { .name = "deep-recursion" };
	if (weft_spawn_opts(&t, overflow_fn, NULL, &o))
		return NULL;
	return (void *)(intptr_t)weft_join(t, NULL); /* never: it crashes */
}

/* Runs fn in a task of a child process, after before() there (NULL:
 * nothing); expects the overflow report to contain want. */
static void expect_overflow(weft_fn fn, void (*before)(void), const char *want)
{
	int fds[2];
	ck_assert_int_eq(pipe(fds), 0);
	pid_t pid = fork();
	if (pid == 0) {
		dup2(fds[1], 2);
		if (before)
			before();
		struct weft_config c = { .workers = 1 };
		overflow_fn = fn;
		_exit(weft_run(overflow_main, NULL, &c, NULL) ? 2 : 0);
	}
	close(fds[1]);
	char buf[512] = { 0 };
	ssize_t n = read(fds[0], buf, sizeof(buf) - 1);
	int status;
	waitpid(pid, &status, 0);
	close(fds[0]);
	ck_assert(n > 0);
	ck_assert_msg(strstr(buf, "task 'deep-recursion'") && strstr(buf, want),
		      "got: %s", buf);
	ck_assert(WIFSIGNALED(status));
}

#endif
