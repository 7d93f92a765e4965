/*
 * A failed Check assertion inside a task, or on a thread other than the
 * one running the suite, ends the program with its message.
 *
 * Without its fork (CK_FORK=no, as the suites run) Check longjmps from a
 * failed assertion to the case's start on the main thread's stack. From a
 * task's stack or another thread that jump abandons a running runtime:
 * the suite's next cases failed for it (weft_run's -EBUSY) and the
 * sanitizers, their stacks swapped under them, crashed on their own checks,
 * sometimes before Check printed the failure that started it all. Every
 * suite links this with -Wl,--wrap=_ck_assert_failed (tests/CMakeLists.txt).
 */
#include <check.h>
#include <stdarg.h>
#include <stdio.h>
#include <unistd.h>

#include "weft.h"

void __real__ck_assert_failed(const char *file, int line, const char *expr, ...)
	__attribute__((noreturn));
void __wrap__ck_assert_failed(const char *file, int line, const char *expr, ...)
	__attribute__((noreturn));

/* Check's own reading of the arguments: a format and its values, then a
 * NULL; or just the NULL, when the expression is the message. */
void __wrap__ck_assert_failed(const char *file, int line, const char *expr, ...)
{
	char msg[4096];
	va_list ap;
	va_start(ap, expr);
	const char *fmt = va_arg(ap, const char *);
	if (fmt)
		vsnprintf(msg, sizeof(msg), fmt, ap);
	else
		snprintf(msg, sizeof(msg), "%s", expr);
	va_end(ap);
	if (gettid() == getpid() && !weft_current().task)
		__real__ck_assert_failed(file, line, msg, NULL);
	fflush(stdout);
	fprintf(stderr, "%s:%d: %s (in %s: the program ends here)\n", file,
		line, msg, weft_current().task ? "a task" : "a thread");
	_exit(1);
}
