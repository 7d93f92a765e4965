/* Signals as a blocking call: delivery, deliveries before the wait, two
 * tasks on different signals, cancellation and deadlines (and a cancelled
 * leader handing over), the race of a delivery with a cancellation, plain
 * threads, the old disposition restored, bad input; the signals weft
 * takes itself (the dump's, SIGURG for stalls, SIGPIPE while it runs). */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/uio.h>
#include <unistd.h>
#include "test_util.h"

#define WORKERS 4

struct waiter {
	struct weft_signal *sigs;
	int signo;
};

/* Waits that returned, for a test that must not send again before one
 * took its signal. */
static atomic_int waits_done;

static void *wait_task(void *arg)
{
	struct waiter *w = arg;
	int r = weft_signal_wait(w->sigs, &w->signo);

	atomic_fetch_add(&waits_done, 1);
	return (void *)(intptr_t)r;
}

/* Sends signo to the calling thread: its handler has run when this
 * returns, also under ThreadSanitizer, which otherwise runs a handler only
 * once its thread enters a libc call it intercepts (a worker parked in
 * io_uring_enter, or the main thread in weft_run, may never do so). */
static void send_signal(int signo)
{
	ck_assert_int_eq(pthread_kill(pthread_self(), signo), 0);
}

static uint64_t set_of(int a, int b)
{
	return WEFT_SIGNAL(a) | (b ? WEFT_SIGNAL(b) : 0);
}

/* Joins t and checks it returned want (and, for 0, got signo). */
static void expect(weft_task_t t, struct waiter *w, int want, int signo)
{
	void *res;

	ck_assert_int_eq(weft_join(t, &res), 0);
	ck_assert_int_eq((intptr_t)res, want);
	if (!want)
		ck_assert_int_eq(w->signo, signo);
}

static void *delivery_main(void *arg)
{
	uint64_t set = set_of(SIGUSR1, SIGUSR2);
	struct weft_signal sigs;
	struct waiter w = { &sigs, 0 };
	weft_task_t t;

	ck_assert_int_eq(weft_signal_open(&sigs, set), 0);
	/* A task waiting when the signal comes. */
	ck_assert_int_eq(weft_spawn(&t, wait_task, &w), 0);
	weft_sleep(10 * WEFT_MSEC);
	send_signal(SIGUSR2);
	expect(t, &w, 0, SIGUSR2);
	/* Delivered while nobody waits: kept, and two of one kind are one. */
	send_signal(SIGUSR1);
	send_signal(SIGUSR1);
	send_signal(SIGUSR2);
	weft_sleep(10 * WEFT_MSEC);
	ck_assert_int_eq(weft_signal_wait(&sigs, &w.signo), 0);
	ck_assert_int_eq(w.signo, SIGUSR1);
	ck_assert_int_eq(weft_signal_wait(&sigs, &w.signo), 0);
	ck_assert_int_eq(w.signo, SIGUSR2);
#ifndef __SANITIZE_THREAD__
	/* To the process: the kernel picks a thread (the main thread,
	 * waiting in weft_run, here). */
	ck_assert_int_eq(kill(getpid(), SIGUSR1), 0);
	ck_assert_int_eq(weft_signal_wait(&sigs, &w.signo), 0);
	ck_assert_int_eq(w.signo, SIGUSR1);
#endif
	/* Nothing more. */
	struct weft_deadline d;

	ck_assert_int_eq(weft_deadline_enter(&d, 20 * WEFT_MSEC), 0);
	ck_assert_int_eq(weft_signal_wait(&sigs, &w.signo), -ETIMEDOUT);
	weft_deadline_leave(&d);
	ck_assert_int_eq(weft_signal_close(&sigs), 0);
	return NULL;
}

START_TEST(delivery)
{
	weft_test_run(delivery_main, NULL, WORKERS);
}
END_TEST

static void *two_main(void *arg)
{
	uint64_t s1 = set_of(SIGUSR1, 0), s2 = set_of(SIGUSR2, 0);
	struct weft_signal a, b;
	struct waiter wa = { &a, 0 }, wb = { &b, 0 };
	weft_task_t ta, tb;

	ck_assert_int_eq(weft_signal_open(&a, s1), 0);
	ck_assert_int_eq(weft_signal_open(&b, s2), 0);
	for (int i = 0; i < 20; i++) {
		ck_assert_int_eq(weft_spawn(&ta, wait_task, &wa), 0);
		ck_assert_int_eq(weft_spawn(&tb, wait_task, &wb), 0);
		weft_sleep(2 * WEFT_MSEC);
		/* Either may be the leader: the other's signal first. */
		send_signal(i & 1 ? SIGUSR1 : SIGUSR2);
		if (i & 1)
			expect(ta, &wa, 0, SIGUSR1);
		else
			expect(tb, &wb, 0, SIGUSR2);
		weft_sleep(2 * WEFT_MSEC);
		send_signal(i & 1 ? SIGUSR2 : SIGUSR1);
		if (i & 1)
			expect(tb, &wb, 0, SIGUSR2);
		else
			expect(ta, &wa, 0, SIGUSR1);
	}
	ck_assert_int_eq(weft_signal_close(&a), 0);
	ck_assert_int_eq(weft_signal_close(&b), 0);
	return NULL;
}

START_TEST(two_tasks_different_signals)
{
	weft_test_run(two_main, NULL, WORKERS);
}
END_TEST

static void *cancel_main(void *arg)
{
	uint64_t set = set_of(SIGUSR1, 0);
	struct weft_signal sigs;
	struct waiter w1 = { &sigs, 0 }, w2 = { &sigs, 0 };
	weft_task_t t1, t2;

	ck_assert_int_eq(weft_signal_open(&sigs, set), 0);
	/* A lone waiter cancelled. */
	ck_assert_int_eq(weft_spawn(&t1, wait_task, &w1), 0);
	weft_sleep(10 * WEFT_MSEC);
	ck_assert_int_eq(weft_cancel(t1), 0);
	expect(t1, &w1, -ECANCELED, 0);
	/* Two waiters: cancelling either (the leader or not) leaves the
	 * other able to receive. */
	for (int i = 0; i < 2; i++) {
		ck_assert_int_eq(weft_spawn(&t1, wait_task, &w1), 0);
		weft_sleep(5 * WEFT_MSEC);
		ck_assert_int_eq(weft_spawn(&t2, wait_task, &w2), 0);
		weft_sleep(5 * WEFT_MSEC);
		ck_assert_int_eq(weft_cancel(i ? t2 : t1), 0);
		expect(i ? t2 : t1, i ? &w2 : &w1, -ECANCELED, 0);
		weft_sleep(5 * WEFT_MSEC);
		send_signal(SIGUSR1);
		expect(i ? t1 : t2, i ? &w1 : &w2, 0, SIGUSR1);
	}
	/* A cancelled task does not wait at all. */
	ck_assert_int_eq(weft_cancel(weft_current()), 0);
	ck_assert_int_eq(weft_signal_wait(&sigs, &w1.signo), -ECANCELED);
	ck_assert_int_eq(weft_signal_close(&sigs), 0);
	return NULL;
}

START_TEST(cancel_while_waiting)
{
	weft_test_run(cancel_main, NULL, WORKERS);
}
END_TEST

/* A delivery racing a cancellation: the wait either takes it or fails
 * having taken nothing, and then the next wait finds it at once. Each
 * order of the two calls, after 0 to 3 yields, so that both outcomes
 * come (under ThreadSanitizer a delivery sent first nearly always won):
 * at least n rounds, and more until both have. */
static void *race_main(void *arg)
{
	uint64_t set = set_of(SIGUSR1, 0);
	struct weft_signal sigs;
	struct waiter w = { &sigs, 0 };
	struct weft_deadline d;
	long n = weft_test_scaled(300, 30), cancelled = 0, i;
	weft_task_t t;
	void *res;

	ck_assert_int_eq(weft_signal_open(&sigs, set), 0);
	for (i = 0; i < 20 * n && (i < n || !cancelled || cancelled == i);
	     i++) {
		ck_assert_int_eq(weft_spawn(&t, wait_task, &w), 0);
		for (long k = 0; k < i % 4; k++)
			weft_yield();
		if (i & 4)
			weft_cancel(t);
		send_signal(SIGUSR1);
		if (!(i & 4))
			weft_cancel(t);
		ck_assert_int_eq(weft_join(t, &res), 0);
		if ((intptr_t)res == -ECANCELED) {
			cancelled++;
			/* The delivery may still be on its way: wait. */
			ck_assert_int_eq(weft_signal_wait(&sigs, &w.signo), 0);
		} else {
			ck_assert_int_eq((intptr_t)res, 0);
		}
		ck_assert_int_eq(w.signo, SIGUSR1);
		/* And it is taken once only. */
		ck_assert_int_eq(weft_deadline_enter(&d, WEFT_MSEC), 0);
		ck_assert_int_eq(weft_signal_wait(&sigs, &w.signo), -ETIMEDOUT);
		weft_deadline_leave(&d);
	}
	ck_assert_int_eq(weft_signal_close(&sigs), 0);
	fprintf(stderr, "delivery vs cancel: %ld of %ld cancelled\n", cancelled,
		i);
	/* Both ends of the race ran, so both books above were checked. */
	ck_assert_int_gt(cancelled, 0);
	ck_assert_int_lt(cancelled, i);
	return NULL;
}

START_TEST(delivery_races_cancel)
{
	weft_test_run(race_main, NULL, WORKERS);
}
END_TEST

static void *thread_waiter(void *arg)
{
	struct waiter *w = arg;
	int r = weft_signal_wait(w->sigs, &w->signo);

	atomic_fetch_add(&waits_done, 1);
	return (void *)(intptr_t)r;
}

/* A plain thread waits (without a runtime, too), beside a task. */
static void *thread_main(void *arg)
{
	uint64_t set = set_of(SIGUSR2, 0);
	struct weft_signal sigs;
	struct waiter w = { &sigs, 0 }, wt = { &sigs, 0 };
	weft_task_t t;
	pthread_t th;
	void *res;

	ck_assert_int_eq(weft_signal_open(&sigs, set), 0);
	atomic_store(&waits_done, 0);
	ck_assert_int_eq(pthread_create(&th, NULL, thread_waiter, &wt), 0);
	ck_assert_int_eq(weft_spawn(&t, wait_task, &w), 0);
	weft_sleep(10 * WEFT_MSEC);
	send_signal(SIGUSR2);
	/* The second only once a waiter took the first: two deliveries of
	 * one kind before either takes one are one (see delivery), and the
	 * other waiter then waited for good. A fixed 10 ms was that wait, too
	 * short for a thread or a task to start under a sanitizer on a busy
	 * machine. */
	for (int i = 0; i < 10000 && !atomic_load(&waits_done); i++)
		weft_sleep(WEFT_MSEC);
	ck_assert_int_eq(atomic_load(&waits_done), 1);
	send_signal(SIGUSR2);
	pthread_join(th, &res);
	ck_assert_int_eq((intptr_t)res, 0);
	ck_assert_int_eq(wt.signo, SIGUSR2);
	expect(t, &w, 0, SIGUSR2);
	ck_assert_int_eq(weft_signal_close(&sigs), 0);
	return NULL;
}

START_TEST(plain_thread)
{
	uint64_t set = set_of(SIGUSR2, 0);
	struct weft_signal sigs;
	int signo = 0;

	weft_test_run(thread_main, NULL, WORKERS);
	/* No runtime at all. */
	ck_assert_int_eq(weft_signal_open(&sigs, set), 0);
	send_signal(SIGUSR2);
	ck_assert_int_eq(weft_signal_wait(&sigs, &signo), 0);
	ck_assert_int_eq(signo, SIGUSR2);
	ck_assert_int_eq(weft_signal_close(&sigs), 0);
}
END_TEST

START_TEST(old_disposition_and_bad_input)
{
	uint64_t set = set_of(SIGUSR1, 0), bad = set_of(SIGUSR1, SIGKILL);
	struct weft_signal a, b;
	struct sigaction old;
	int signo;

	signal(SIGUSR1, SIG_IGN);
	ck_assert_int_eq(weft_signal_open(&a, set), 0);
	ck_assert_int_eq(weft_signal_open(&b, set), 0);
	ck_assert_int_eq(weft_signal_close(&a), 0);
	sigaction(SIGUSR1, NULL, &old);
	ck_assert(old.sa_handler != SIG_IGN); /* b still catches it */
	ck_assert_int_eq(weft_signal_close(&b), 0);
	sigaction(SIGUSR1, NULL, &old);
	ck_assert(old.sa_handler == SIG_IGN);
	signal(SIGUSR1, SIG_DFL);

	ck_assert_int_eq(weft_signal_close(&b), -EINVAL);
	ck_assert_int_eq(weft_signal_wait(&b, &signo), -EINVAL);
	ck_assert_int_eq(weft_signal_open(&a, bad), -EINVAL);
	bad = set_of(SIGSEGV, 0);
	ck_assert_int_eq(weft_signal_open(&a, bad), -EINVAL);
	bad = 0;
	ck_assert_int_eq(weft_signal_open(&a, bad), -EINVAL);
	ck_assert_int_eq(weft_signal_open(NULL, set), -EINVAL);
	ck_assert_int_eq(weft_signal_open(&a, WEFT_SIGNAL(SIGSTOP)), -EINVAL);
	ck_assert_int_eq(weft_signal_close(NULL), -EINVAL);
	ck_assert_int_eq(weft_signal_open(&a, set), 0);
	ck_assert_int_eq(weft_signal_wait(&a, NULL), -EINVAL);
	ck_assert_int_eq(weft_signal_close(&a), 0);
}
END_TEST

static void programs_handler(int signo)
{
	(void)signo;
}

/* A handler the program installs while a registration is open is the
 * program's: the last close put the action it found back over it. */
START_TEST(programs_handler_outlives_close)
{
	struct weft_signal a;
	struct sigaction now;

	signal(SIGUSR1, SIG_IGN);
	ck_assert_int_eq(weft_signal_open(&a, set_of(SIGUSR1, 0)), 0);
	signal(SIGUSR1, programs_handler);
	ck_assert_int_eq(weft_signal_close(&a), 0);
	sigaction(SIGUSR1, NULL, &now);
	ck_assert(now.sa_handler == programs_handler);
	signal(SIGUSR1, SIG_DFL);
}
END_TEST

/*
 * A delivery already there is taken at once, even in a cancelled task, as
 * by every call that can complete without waiting (weft/sync.h). The wait
 * took its internal lock as a cancellable call, so while another waiter
 * held it the cancelled task failed with -ECANCELED, the delivery there.
 * Made to happen here on one worker: a plain thread leads (reads the
 * eventfd) and a task follows (waits on the condition); the delivery wakes
 * the leader, whose notify hands the lock to the follower, which cannot
 * run before the taker yields.
 */
static void *taken_when_cancelled(void *arg)
{
	struct weft_signal mine, follows, leads;
	struct waiter wf = { &follows, 0 }, wl = { &leads, 0 };
	struct weft_shield sh;
	weft_task_t t;
	pthread_t th;
	int signo = 0;
	void *res;

	(void)arg;
	ck_assert_int_eq(weft_signal_open(&mine, set_of(SIGUSR1, 0)), 0);
	ck_assert_int_eq(weft_signal_open(&follows, set_of(SIGUSR2, 0)), 0);
	ck_assert_int_eq(weft_signal_open(&leads, set_of(SIGWINCH, 0)), 0);
	ck_assert_int_eq(pthread_create(&th, NULL, thread_waiter, &wl), 0);
	weft_sleep(20 * WEFT_MSEC);
	ck_assert_int_eq(weft_spawn(&t, wait_task, &wf), 0);
	weft_sleep(20 * WEFT_MSEC);
	ck_assert_int_eq(weft_cancel(weft_current()), 0);
	send_signal(SIGUSR1);
	/* Keep the worker (no weft call) while the leader hands over. */
	for (int64_t end = weft_now() + 50 * WEFT_MSEC; weft_now() < end;)
		;
	ck_assert_int_eq(weft_signal_wait(&mine, &signo), 0);
	ck_assert_int_eq(signo, SIGUSR1);
	/* The rest: the follower cancelled (joined in a shield, as this
	 * task is cancelled), the leader given its own signal. */
	ck_assert_int_eq(weft_shield_enter(&sh), 0);
	ck_assert_int_eq(weft_cancel(t), 0);
	expect(t, &wf, -ECANCELED, 0);
	weft_shield_leave(&sh);
	send_signal(SIGWINCH); /* handled here, not in a read (tsan) */
	ck_assert_int_eq(pthread_join(th, &res), 0);
	ck_assert_int_eq((intptr_t)res, 0);
	ck_assert_int_eq(wl.signo, SIGWINCH);
	ck_assert_int_eq(weft_signal_close(&mine), 0);
	ck_assert_int_eq(weft_signal_close(&follows), 0);
	ck_assert_int_eq(weft_signal_close(&leads), 0);
	return NULL;
}

START_TEST(pending_taken_when_cancelled)
{
	weft_test_run(taken_when_cancelled, NULL, 1);
}
END_TEST

/* Opened twice, a registration counted its signals twice, and one close
 * left weft's handler installed for good (a second open of another set
 * left the first set's). */
START_TEST(open_twice)
{
	struct weft_signal a;
	struct sigaction now;

	ck_assert_int_eq(weft_signal_open(&a, set_of(SIGUSR1, 0)), 0);
	ck_assert_int_eq(weft_signal_open(&a, set_of(SIGUSR1, 0)), -EBUSY);
	ck_assert_int_eq(weft_signal_open(&a, set_of(SIGUSR2, 0)), -EBUSY);
	ck_assert_int_eq(weft_signal_close(&a), 0);
	ck_assert_int_eq(weft_signal_close(&a), -EINVAL);
	sigaction(SIGUSR1, NULL, &now);
	ck_assert(now.sa_handler == SIG_DFL);
	sigaction(SIGUSR2, NULL, &now);
	ck_assert(now.sa_handler == SIG_DFL);
}
END_TEST

/*
 * The runtime's dump signal and a registration of the same signal each
 * installed a handler over the other and put back what they found: a
 * registration opened during the run was left with the default action
 * (SIGUSR1 then killed the process), and one opened before lost every
 * delivery to the dump. One signal has one owner in weft: the second is
 * refused with -EBUSY. And a fault's signal as dump signal made a crash
 * an endless loop of dumps: refused with -EINVAL.
 */
static void *open_dump_signal(void *arg)
{
	struct weft_signal s;

	(void)arg;
	ck_assert_int_eq(weft_signal_open(&s, set_of(SIGUSR1, 0)), -EBUSY);
	ck_assert_int_eq(weft_signal_open(&s, set_of(SIGUSR2, 0)), 0);
	ck_assert_int_eq(weft_signal_close(&s), 0);
	return NULL;
}

static void *never_runs(void *arg)
{
	(void)arg;
	ck_abort_msg("weft_run should have refused");
	return NULL;
}

static void *stalls_on(void *arg)
{
	struct weft_signal s;

	(void)arg;
	ck_assert_int_eq(weft_signal_open(&s, set_of(SIGURG, 0)), -EBUSY);
	return NULL;
}

START_TEST(one_owner_per_signal)
{
	struct weft_config cfg = { .workers = 2, .dump_signal = SIGUSR1 };
	struct weft_signal s;
	struct sigaction now;

	ck_assert_int_eq(weft_run(open_dump_signal, NULL, &cfg, NULL), 0);
	sigaction(SIGUSR1, NULL, &now);
	ck_assert(now.sa_handler == SIG_DFL);

	ck_assert_int_eq(weft_signal_open(&s, set_of(SIGUSR1, 0)), 0);
	ck_assert_int_eq(weft_run(never_runs, NULL, &cfg, NULL), -EBUSY);
	sigaction(SIGUSR1, NULL, &now);
	ck_assert(now.sa_handler != SIG_DFL); /* still the registration's */
	send_signal(SIGUSR1);
	int signo;
	ck_assert_int_eq(weft_signal_wait(&s, &signo), 0);
	ck_assert_int_eq(signo, SIGUSR1);
	ck_assert_int_eq(weft_signal_close(&s), 0);

	cfg.dump_signal = SIGSEGV;
	ck_assert_int_eq(weft_run(never_runs, NULL, &cfg, NULL), -EINVAL);
	cfg.dump_signal = 32; /* glibc's own: sigaction refuses it */
	ck_assert_int_eq(weft_run(never_runs, NULL, &cfg, NULL), -EINVAL);

	cfg.dump_signal = 0;
	cfg.stall_threshold_ns = 100 * WEFT_MSEC;
	ck_assert_int_eq(weft_run(stalls_on, NULL, &cfg, NULL), 0);
}
END_TEST

/*
 * With one worker there is no monitor and so no stall report, yet the
 * stall reports took SIGURG and a registration of it was refused with
 * -EBUSY. And a dump signal of SIGURG with stall reports on failed
 * weft_run with -EBUSY, which weft/task.h promises only for a dump signal
 * an open registration holds: the dump keeps it, and the reports come
 * without frames.
 */
static void *urg_free(void *arg)
{
	struct weft_signal s;

	(void)arg;
	ck_assert_int_eq(weft_signal_open(&s, set_of(SIGURG, 0)), 0);
	ck_assert_int_eq(weft_signal_close(&s), 0);
	return NULL;
}

static void count_stall(const struct weft_stall *st, void *arg)
{
	ck_assert_int_eq(st->nframes, 0); /* SIGURG is the dump's */
	atomic_fetch_add((_Atomic int *)arg, 1);
}

static void *stall_without_frames(void *arg)
{
	_Atomic int *reports = arg;
	struct weft_signal s;
	int64_t end = weft_now() + 30 * WEFT_SEC;

	ck_assert_int_eq(weft_signal_open(&s, set_of(SIGURG, 0)), -EBUSY);
	while (!atomic_load(reports) && weft_now() < end)
		; /* keeps the worker: a stall */
	return NULL;
}

START_TEST(sigurg_only_when_stalls_reported)
{
	struct weft_config cfg = { .workers = 1,
				   .stall_threshold_ns = 20 * WEFT_MSEC };
	struct sigaction now;
	_Atomic int reports = 0;

	ck_assert_int_eq(weft_run(urg_free, NULL, &cfg, NULL), 0);

	cfg.workers = 2;
	cfg.dump_signal = SIGURG;
	cfg.on_stall = count_stall;
	cfg.on_stall_arg = &reports;
	ck_assert_int_eq(weft_run(stall_without_frames, &reports, &cfg, NULL),
			 0);
	ck_assert_int_ge(atomic_load(&reports), 1);
	sigaction(SIGURG, NULL, &now);
	ck_assert(now.sa_handler == SIG_DFL);
}
END_TEST

/*
 * A write to a pipe whose reader is gone raised SIGPIPE, whose default
 * action killed the process, where a send on a socket (MSG_NOSIGNAL)
 * returns -EPIPE. While weft_run runs it returns -EPIPE too; the default
 * comes back after, and an action the program set is left alone.
 */
static _Atomic int pipe_handled;

static void on_pipe(int signo)
{
	(void)signo;
	atomic_fetch_add(&pipe_handled, 1);
}

/* A pipe whose read end is closed: its write end. */
static int broken_pipe(void)
{
	int p[2];

	ck_assert_int_eq(pipe(p), 0);
	close(p[0]);
	return p[1];
}

static void *write_broken_pipe(void *arg)
{
	struct iovec iov = { "x", 1 };
	struct weft_stream st;
	int fd = broken_pipe();

	(void)arg;
	ck_assert_int_eq(weft_writev(fd, &iov, 1), -EPIPE);
	ck_assert_int_eq(write(fd, "x", 1), -1); /* the process's, too */
	ck_assert_int_eq(errno, EPIPE);
	ck_assert_int_eq(weft_stream_init(&st, fd, 0), 0);
	ck_assert_int_eq(weft_stream_write(&st, "x", 1), 1);
	ck_assert_int_eq(weft_stream_flush(&st), -EPIPE);
	ck_assert_int_eq(weft_stream_close(&st, 0), -EPIPE);
	return NULL;
}

static void *program_ignores_pipe(void *arg)
{
	(void)arg;
	signal(SIGPIPE, SIG_IGN); /* the program's: kept */
	return write_broken_pipe(NULL);
}

/* A registration of SIGPIPE opened before weft_run and closed while it
 * runs puts back the default it found: writes must still get -EPIPE. */
static void *close_pipe_registration(void *arg)
{
	struct iovec iov = { "x", 1 };
	int fd = broken_pipe(), signo;

	ck_assert_int_eq(weft_writev(fd, &iov, 1), -EPIPE);
	ck_assert_int_eq(weft_signal_wait(arg, &signo), 0);
	ck_assert_int_eq(signo, SIGPIPE);
	ck_assert_int_eq(weft_signal_close(arg), 0);
	ck_assert_int_eq(weft_writev(fd, &iov, 1), -EPIPE);
	close(fd);
	return NULL;
}

/* And one opened while weft_run runs and closed after it returned puts
 * back weft_run's action, which must give way to the default. */
static void *open_pipe_registration(void *arg)
{
	ck_assert_int_eq(weft_signal_open(arg, set_of(SIGPIPE, 0)), 0);
	return NULL;
}

START_TEST(broken_pipe_is_epipe)
{
	struct sigaction now, mine = { .sa_handler = on_pipe };
	struct weft_signal s;

	signal(SIGPIPE, SIG_DFL);
	ck_assert_int_eq(weft_run(write_broken_pipe, NULL, NULL, NULL), 0);
	sigaction(SIGPIPE, NULL, &now);
	ck_assert(now.sa_handler == SIG_DFL);
	/* Twice: the second weft_run finds the default again. */
	ck_assert_int_eq(weft_run(write_broken_pipe, NULL, NULL, NULL), 0);
	sigaction(SIGPIPE, NULL, &now);
	ck_assert(now.sa_handler == SIG_DFL);

	/* Set by the program while weft_run runs: kept. */
	ck_assert_int_eq(weft_run(program_ignores_pipe, NULL, NULL, NULL), 0);
	sigaction(SIGPIPE, NULL, &now);
	ck_assert(now.sa_handler == SIG_IGN);

	/* Set by the program before: kept, and its handler runs. */
	sigemptyset(&mine.sa_mask);
	sigaction(SIGPIPE, &mine, NULL);
	ck_assert_int_eq(weft_run(write_broken_pipe, NULL, NULL, NULL), 0);
	ck_assert_int_ge(atomic_load(&pipe_handled), 3);
	sigaction(SIGPIPE, NULL, &now);
	ck_assert(now.sa_handler == on_pipe);

	signal(SIGPIPE, SIG_DFL);
	ck_assert_int_eq(weft_signal_open(&s, set_of(SIGPIPE, 0)), 0);
	ck_assert_int_eq(weft_run(close_pipe_registration, &s, NULL, NULL), 0);
	sigaction(SIGPIPE, NULL, &now);
	ck_assert(now.sa_handler == SIG_DFL);

	ck_assert_int_eq(weft_run(open_pipe_registration, &s, NULL, NULL), 0);
	ck_assert_int_eq(weft_signal_close(&s), 0);
	sigaction(SIGPIPE, NULL, &now);
	ck_assert(now.sa_handler == SIG_DFL);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("io_signal");
	TCase *tc = tcase_create("signal");

	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, delivery);
	tcase_add_test(tc, two_tasks_different_signals);
	tcase_add_test(tc, cancel_while_waiting);
	tcase_add_test(tc, delivery_races_cancel);
	tcase_add_test(tc, plain_thread);
	tcase_add_test(tc, old_disposition_and_bad_input);
	tcase_add_test(tc, programs_handler_outlives_close);
	tcase_add_test(tc, pending_taken_when_cancelled);
	tcase_add_test(tc, open_twice);
	tcase_add_test(tc, one_owner_per_signal);
	tcase_add_test(tc, sigurg_only_when_stalls_reported);
	tcase_add_test(tc, broken_pipe_is_epipe);
	suite_add_tcase(s, tc);
	return weft_test_main(s);
}
