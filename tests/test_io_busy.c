/*
 * I/O on a worker that never goes idle.
 *
 * One worker, and a task that yields until the I/O task is done: the
 * fd's readiness, the messages posted to the worker and its queued
 * submissions must still be handled on its scheduler rounds, not only
 * when it parks. If a round missed the work, the yielding task would spin
 * forever and the test would time out.
 *
 * Two workers, one kept by a task that never yields: a connection whose
 * task waited on the kept worker must still be served, by the other.
 *
 * And an fd that is not open, however large its number: -EBADF.
 */
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>
#include "test_io_util.h"

struct busy {
	int fd;            /* the receiving end */
	_Atomic bool done; /* the I/O task has its result */
	ssize_t res;       /* weft_recv's result */
	char byte;
	weft_task_t io;
};

static void *recv_task(void *arg)
{
	struct busy *b = arg;

	b->res = weft_recv(b->fd, &b->byte, 1, 0);
	atomic_store(&b->done, true);
	return NULL;
}

/* Keeps the worker busy until the I/O task is done. */
static void *spin_task(void *arg)
{
	struct busy *b = arg;

	while (!atomic_load(&b->done))
		weft_yield();
	return NULL;
}

static void pause_ms(int ms)
{
	struct timespec ts = { 0, ms * 1000000L };

	nanosleep(&ts, NULL);
}

struct helper {
	struct busy *b;
	int peer; /* write here, or -1 to cancel the I/O task instead */
};

/* A plain thread: acts once both tasks have started and the worker is
 * busy. */
static void *helper_thread(void *arg)
{
	struct helper *h = arg;

	pause_ms(50);
	if (h->peer >= 0)
		ck_assert_int_eq(write(h->peer, "x", 1), 1);
	else
		ck_assert_int_eq(weft_cancel(h->b->io), 0);
	return NULL;
}

static void run_busy(struct busy *b, int peer)
{
	struct helper h = { b, peer };
	weft_task_t spin;
	pthread_t th;

	ck_assert_int_eq(weft_spawn(&b->io, recv_task, b), 0);
	ck_assert_int_eq(weft_spawn(&spin, spin_task, b), 0);
	ck_assert_int_eq(pthread_create(&th, NULL, helper_thread, &h), 0);
	ck_assert_int_eq(weft_join(spin, NULL), 0);
	ck_assert_int_eq(weft_join(b->io, NULL), 0);
	ck_assert_int_eq(pthread_join(th, NULL), 0);
}

/* The recv is submitted by a round of the busy worker, and its completion
 * (deferred by the kernel until the ring is entered) reaped by another. */
static void *completion_main(void *arg)
{
	struct busy b = { 0 };
	int sv[2];

	(void)arg;
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	b.fd = sv[0];
	run_busy(&b, sv[1]);
	ck_assert_int_eq(b.res, 1);
	ck_assert_int_eq(b.byte, 'x');
	weft_close(sv[0]);
	close(sv[1]);
	return NULL;
}

START_TEST(completion_while_busy)
{
	weft_test_run(completion_main, NULL, 1);
}
END_TEST

/* A plain thread cancels the recv: the cancellation reaches the worker as
 * a posted message, which a busy round must run. */
static void *cancel_main(void *arg)
{
	struct busy b = { 0 };
	int sv[2];

	(void)arg;
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	b.fd = sv[0];
	run_busy(&b, -1);
	ck_assert_int_eq(b.res, -ECANCELED);
	weft_close(sv[0]);
	close(sv[1]);
	return NULL;
}

START_TEST(cancel_while_busy)
{
	weft_test_run(cancel_main, NULL, 1);
}
END_TEST

struct kept {
	int fd, peer;
	_Atomic int reader_worker; /* -1 until the reader is about to wait */
	_Atomic bool got;
};

static void *kept_reader(void *arg)
{
	struct kept *k = arg;
	char c;

	atomic_store(&k->reader_worker, weft_worker_id());
	ck_assert_int_eq(weft_recv(k->fd, &c, 1, 0), 1);
	atomic_store(&k->got, true);
	return NULL;
}

/* Starts a reader and lets it wait; if it waits on this task's worker,
 * sends it a byte and keeps the worker, without yielding, until the reader
 * has it or 5 s passed. Returns whether the two shared a worker. */
static bool keep_beside_reader(struct kept *k)
{
	weft_task_t reader;
	bool shared;

	atomic_store(&k->reader_worker, -1);
	atomic_store(&k->got, false);
	ck_assert_int_eq(weft_spawn(&reader, kept_reader, k), 0);
	while (atomic_load(&k->reader_worker) < 0)
		weft_yield();
	/* Until the reader's worker finished its first attempt (under
	 * io_uring, an SQE its next round submits) and the reader waits for
	 * readiness: the wait this test is about. A task that keeps a worker
	 * before that round strands the attempts its worker holds, as it
	 * strands the tasks queued there (call.h). Not a 10 ms sleep: a
	 * worker preempted that long under a sanitizer on a busy machine
	 * may not have made that round, and the byte would wait the 5 s. */
	io_await_ready_wait(reader);
	shared = atomic_load(&k->reader_worker) == weft_worker_id();
	ck_assert_int_eq(write(k->peer, "x", 1), 1);
	for (int64_t until = weft_now() + 5 * WEFT_SEC;
	     shared && !atomic_load(&k->got) && weft_now() < until;)
		;
	if (shared)
		ck_assert_msg(atomic_load(&k->got),
			      "the kept worker's connection waited 5 s");
	ck_assert_int_eq(weft_join(reader, NULL), 0);
	return shared;
}

static void *kept_main(void *arg)
{
	struct kept k;
	int sv[2], shared = 0;

	(void)arg;
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	k.fd = sv[0];
	k.peer = sv[1];
	for (int i = 0; i < 50 && shared < 3; i++)
		shared += keep_beside_reader(&k);
	ck_assert_int_ge(shared, 1);
	weft_close(sv[0]);
	close(sv[1]);
	return NULL;
}

START_TEST(kept_worker_strands_no_connection)
{
	weft_test_run(kept_main, NULL, 2);
}
END_TEST

/*
 * An fd number past the readiness table's 2M that is not open: a task's
 * call said -EMFILE, as if weft ran out of room, where recv(2) and a plain
 * thread's call say -EBADF. And an fd opened before RLIMIT_NOFILE was
 * lowered below it is still open and works.
 */
static void expect_ebadf(int fd)
{
	struct iovec iov = { &(char){ 0 }, 1 };
	char c = 0;

	ck_assert_int_eq(weft_recv(fd, &c, 1, 0), -EBADF);
	ck_assert_int_eq(weft_send(fd, &c, 1, 0), -EBADF);
	ck_assert_int_eq(weft_readv(fd, &iov, 1), -EBADF);
	ck_assert_int_eq(weft_writev(fd, &iov, 1), -EBADF);
}

static const int bad_fds[] = { 1 << 30, INT_MAX, 2048 * 1024, 2048 * 1024 - 1,
			       100000 };

static void *bad_fd_main(void *arg)
{
	int sv[2], high = (int)(intptr_t)arg;
	struct rlimit rl, low;
	char c = 0;

	for (size_t i = 0; i < sizeof(bad_fds) / sizeof(bad_fds[0]); i++)
		expect_ebadf(bad_fds[i]);
	/* Open, above the soft limit now: a call on it works. */
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	ck_assert_int_eq(dup2(sv[0], high), high);
	ck_assert_int_eq(getrlimit(RLIMIT_NOFILE, &rl), 0);
	low = rl;
	low.rlim_cur = 64;
	ck_assert_int_eq(setrlimit(RLIMIT_NOFILE, &low), 0);
	ck_assert_int_eq(weft_send(high, "y", 1, 0), 1);
	ck_assert_int_eq(weft_recv(sv[1], &c, 1, 0), 1);
	ck_assert_int_eq(weft_send(sv[1], "z", 1, 0), 1);
	ck_assert_int_eq(weft_recv(high, &c, 1, 0), 1);
	ck_assert_int_eq(c, 'z');
	ck_assert_int_eq(setrlimit(RLIMIT_NOFILE, &rl), 0);
	weft_close(high);
	weft_close(sv[0]);
	weft_close(sv[1]);
	return NULL;
}

START_TEST(fd_not_open_is_ebadf)
{
	struct rlimit rl;
	char c = 0;

	/* What the system call says. */
	for (size_t i = 0; i < sizeof(bad_fds) / sizeof(bad_fds[0]); i++) {
		ck_assert_int_eq(recv(bad_fds[i], &c, 1, 0), -1);
		ck_assert_int_eq(errno, EBADF);
		expect_ebadf(bad_fds[i]); /* a plain thread's call */
	}
	ck_assert_int_eq(getrlimit(RLIMIT_NOFILE, &rl), 0);
	if (rl.rlim_cur < 200)
		return;
	weft_test_run(bad_fd_main, (void *)(intptr_t)(rl.rlim_cur - 1), 2);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("io_busy");
	TCase *tc = tcase_create("busy");

	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, completion_while_busy);
	tcase_add_test(tc, cancel_while_busy);
	tcase_add_test(tc, kept_worker_strands_no_connection);
	tcase_add_test(tc, fd_not_open_is_ebadf);
	suite_add_tcase(s, tc);
	return weft_test_main(s);
}
