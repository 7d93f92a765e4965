/* The signal handlers weft_run installs for its run (SIGSEGV for overflow
 * reports, the dump signal, SIGURG for stall reports) and what it leaves
 * when it returns; the dump signal's names. */
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include "test_util.h"

static void programs_handler(int sig)
{
	(void)sig;
}

typedef void (*handler_t)(int);

/* The signal's handler now (for SA_SIGINFO too: the same field). */
static handler_t handler_of(int sig)
{
	struct sigaction now;

	ck_assert_int_eq(sigaction(sig, NULL, &now), 0);
	return now.sa_handler;
}

/* Run in the main task: weft's handler for the signal (arg) is there, and
 * the program puts its own in its place. */
static void *take_signal(void *arg)
{
	int sig = (int)(intptr_t)arg;
	struct sigaction sa = { .sa_handler = programs_handler };

	ck_assert(handler_of(sig) != SIG_DFL);
	sigemptyset(&sa.sa_mask);
	ck_assert_int_eq(sigaction(sig, &sa, NULL), 0);
	return NULL;
}

/*
 * A handler the program installs while weft_run runs is the program's to
 * keep: weft_run put back the action it had found at its start over it
 * (SIGSEGV, the dump signal, SIGURG), and the program lost its handler.
 */
static void expect_kept(int sig, struct weft_config *cfg)
{
	struct sigaction before, dfl = { .sa_handler = SIG_DFL };

	sigemptyset(&dfl.sa_mask);
	/* A sanitizer's SIGSEGV handler is there before: put back after. */
	ck_assert_int_eq(sigaction(sig, &dfl, &before), 0);
	ck_assert_int_eq(weft_run(take_signal, (void *)(intptr_t)sig, cfg,
				  NULL),
			 0);
	handler_t kept = handler_of(sig);
	sigaction(sig, &before, NULL);
	ck_assert_msg(kept == programs_handler,
		      "signal %d: the program's handler is gone", sig);
}

START_TEST(program_keeps_its_sigsegv)
{
	struct weft_config cfg = { .workers = 1 };

	expect_kept(SIGSEGV, &cfg);
}
END_TEST

START_TEST(program_keeps_its_dump_signal)
{
	struct weft_config cfg = { .workers = 1, .dump_signal = SIGUSR2 };

	expect_kept(SIGUSR2, &cfg);
}
END_TEST

START_TEST(program_keeps_its_sigurg)
{
	/* Stall reports need two workers; none comes in this run. */
	struct weft_config cfg = { .workers = 2,
				   .stall_threshold_ns = 60 * WEFT_SEC };

	expect_kept(SIGURG, &cfg);
}
END_TEST

/* Left alone, each handler gives way to the action from before. */
static void *nothing(void *arg)
{
	return arg;
}

START_TEST(actions_from_before_come_back)
{
	struct weft_config cfg = { .workers = 2,
				   .dump_signal = SIGUSR2,
				   .stall_threshold_ns = 60 * WEFT_SEC };
	static const int sigs[] = { SIGSEGV, SIGUSR2, SIGURG };
	struct sigaction before[3], dfl = { .sa_handler = SIG_DFL };

	sigemptyset(&dfl.sa_mask);
	for (int i = 0; i < 3; i++)
		sigaction(sigs[i], &dfl, &before[i]);
	ck_assert_int_eq(weft_run(nothing, NULL, &cfg, NULL), 0);
	for (int i = 0; i < 3; i++) {
		handler_t now = handler_of(sigs[i]);
		sigaction(sigs[i], &before[i], NULL);
		ck_assert_msg(now == SIG_DFL,
			      "signal %d: weft's handler stayed", sigs[i]);
	}
}
END_TEST

/*
 * $WEFT_DUMP_SIGNAL names real-time signals as kill(1) and glibc count
 * them, from SIGRTMIN (34 under glibc) and SIGRTMAX; the kernel's first
 * two (32, 33) are glibc's own and refused, by number or by name.
 */
static void *check_installed(void *arg)
{
	ck_assert(handler_of((int)(intptr_t)arg) != SIG_DFL);
	return NULL;
}

static int run_with_env(const char *name, int want)
{
	struct weft_config cfg = { .workers = 1 };

	setenv("WEFT_DUMP_SIGNAL", name, 1);
	int r = weft_run(check_installed, (void *)(intptr_t)want, &cfg, NULL);
	unsetenv("WEFT_DUMP_SIGNAL");
	return r;
}

START_TEST(realtime_dump_signal_names)
{
	static const struct {
		const char *name;
		int offset; /* from SIGRTMIN, or SIGRTMAX if from_max */
		bool from_max;
	} good[] = {
		{ "SIGRTMIN", 0, false },   { "RTMIN", 0, false },
		{ "SIGRTMIN+3", 3, false }, { "SIGRTMAX", 0, true },
		{ "RTMAX-2", -2, true },
	};
	for (size_t i = 0; i < sizeof(good) / sizeof(*good); i++) {
		int sig = (good[i].from_max ? SIGRTMAX : SIGRTMIN) +
			  good[i].offset;
		ck_assert_msg(run_with_env(good[i].name, sig) == 0, "%s",
			      good[i].name);
		ck_assert(handler_of(sig) == SIG_DFL);
	}
	static const char *const bad[] = {
		"32",          "33",         "SIGRTMIN-1", "SIGRTMAX+1",
		"SIGRTMIN+",   "SIGRTMIN+x", "SIGRTMIN3",  "SIGRTMIN+-1",
		"SIGRTMIN+99", "RTMAX-99",   "SIGRT",      "SIGRTMAX-",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++)
		ck_assert_msg(run_with_env(bad[i], 0) == -EINVAL, "%s", bad[i]);
	for (int sig = 32; sig < SIGRTMIN; sig++) {
		struct weft_config cfg = { .workers = 1, .dump_signal = sig };
		ck_assert_int_eq(weft_run(nothing, NULL, &cfg, NULL), -EINVAL);
	}
}
END_TEST

int main(void)
{
	Suite *s = suite_create("sig_restore");
	TCase *tc = tcase_create("sig_restore");
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, program_keeps_its_sigsegv);
	tcase_add_test(tc, program_keeps_its_dump_signal);
	tcase_add_test(tc, program_keeps_its_sigurg);
	tcase_add_test(tc, actions_from_before_come_back);
	tcase_add_test(tc, realtime_dump_signal_names);
	suite_add_tcase(s, tc);
	return weft_test_main(s);
}
