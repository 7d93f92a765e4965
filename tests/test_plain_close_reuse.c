/*
 * weft_close's doc (weft/io.h): a call that may wait "never reaches a file
 * that took the number after it began, in a task or on a plain thread".
 * A plain thread's call was not counted in the fd's record (io/call.c's
 * weft__plain_try tries, polls, tries again): a MSG_WAITALL receive on a
 * non-blocking socket that got part of its bytes and waits in poll(2)
 * when a task weft_closes the socket, whose number a new socket takes at
 * once, took the rest from the new socket: a mix of two connections in
 * one call. Its attempts after a poll are counted now.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "weft/io.h"
#include "weft/task.h"
#include "weft/time.h"
#include <liburing.h>

#include "test_io_util.h"
#include "drivers/readiness/fdready.h"

static int old[2];
static char got[8];
static long n;
static atomic_int reader_tid;

static void *plain_reader(void *arg)
{
	atomic_store(&reader_tid, (int)gettid());
	n = weft_recv(old[0], got, sizeof(got), (int)(intptr_t)arg);
	return NULL;
}

/* arg: the reader's flags. A WAITALL peek (MSG_PEEK too) waits in poll(2)
 * beside an epoll set of its own (io/call.c), which alone would lose fd's
 * registration at the close and never wake. */
static void *reuse_main(void *arg)
{
	int fresh[2], queued = !((intptr_t)arg & MSG_PEEK), tid;
	int64_t until = weft_now() + HANG_NS;
	pthread_t p;

	atomic_store(&reader_tid, 0);
	ck_assert_int_eq(socketpair(AF_UNIX,
				    SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK,
				    0, old),
			 0);
	ck_assert_int_eq(pthread_create(&p, NULL, plain_reader, arg), 0);
	ck_assert_int_eq(write(old[1], "oooo", 4), 4);
	while (queued) /* the reader took them and polls for the rest */
		ck_assert_int_eq(ioctl(old[0], FIONREAD, &queued), 0);
	/* A peek leaves them: it sleeps in its wait for the rest. */
	while (!(tid = atomic_load(&reader_tid)) || !io_thread_sleeps(tid)) {
		ck_assert_msg(weft_now() < until, "the reader never waited");
		ck_assert_int_eq(weft_sleep(WEFT_MSEC), 0);
	}
	ck_assert_int_eq(weft_close(old[0]), 0);
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0,
				    fresh),
			 0);
	ck_assert_int_eq(fresh[0], old[0]); /* the number was free */
	ck_assert_int_eq(write(fresh[1], "FFFF", 4), 4);
	/* The old peer's byte wakes the reader's poll (on the old file). */
	ck_assert_int_eq(write(old[1], "o", 1), 1);
	ck_assert_int_eq(pthread_join(p, NULL), 0);
	close(fresh[0]);
	close(fresh[1]);
	close(old[1]);
	ck_assert_msg(n < 0 || !memchr(got, 'F', (size_t)n),
		      "one call got %ld bytes: %.8s", n, got);
	return NULL;
}

START_TEST(plain_call_stays_with_its_file)
{
	struct weft_config cfg = { .workers = 1, .io = WEFT_IO_EPOLL };

	/* ThreadSanitizer sees no order between the reader's first recv(2),
	 * which the queue's emptying shows over, and the close: it would
	 * report them. */
#ifndef __SANITIZE_THREAD__
	ck_assert_int_eq(weft_run(reuse_main, (void *)(intptr_t)MSG_WAITALL,
				  &cfg, NULL),
			 0);
	ck_assert_int_eq(weft_run(reuse_main,
				  (void *)(intptr_t)(MSG_WAITALL | MSG_PEEK),
				  &cfg, NULL),
			 0);
#else
	(void)cfg;
	(void)reuse_main;
#endif
}
END_TEST

/*
 * weft_close's doc: once a close is left to a call still in its attempt,
 * "until then weft's calls on it say -EBADF". A plain thread's call was
 * not told: its first attempt went to the number, which still held the
 * closed socket, and took its byte (and its later attempts, counted, put
 * the close off further); nor was a call that tries once (MSG_DONTWAIT),
 * in a task or not, nor a plain thread's weft_wait_fd (poll(2) of it).
 * Here a task's attempt holds the number (the hook's TRYING moment), the
 * task closes it there and bytes come for the old socket; a plain
 * thread's weft_wait_fd and receives, and the task's own MSG_DONTWAIT
 * one, then must say -EBADF.
 */
static int closing_fd = -1, closing_peer;
static long plain_wait, plain_once, plain_got, task_once;

static void *plain_calls(void *arg)
{
	char c;

	(void)arg;
	plain_wait = weft_wait_fd(closing_fd, WEFT_READABLE);
	plain_once = weft_recv(closing_fd, &c, 1, MSG_DONTWAIT);
	plain_got = weft_recv(closing_fd, &c, 1, 0);
	return NULL;
}

static void close_then_plain_calls(int fd, enum weft__fdready_moment at)
{
	pthread_t p;
	char c;

	if (fd != closing_fd || at != WEFT__FDREADY_TRYING)
		return;
	ck_assert_int_eq(weft_close(fd), 0); /* left to our attempt */
	/* Two: without the fix each plain receive takes one. */
	ck_assert_int_eq(write(closing_peer, "xy", 2), 2);
	ck_assert_int_eq(pthread_create(&p, NULL, plain_calls, NULL), 0);
	ck_assert_int_eq(pthread_join(p, NULL), 0);
	task_once = weft_recv(fd, &c, 1, MSG_DONTWAIT);
	closing_fd = -1;
}

static void *closing_main(void *arg)
{
	int sv[2];
	char c;

	(void)arg;
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv),
			 0);
	closing_fd = sv[0];
	closing_peer = sv[1];
	weft__fdready_hook = close_then_plain_calls;
	long r = weft_recv(sv[0], &c, 1, 0);
	weft__fdready_hook = NULL;
	ck_assert_int_eq(closing_fd, -1); /* the hook ran */
	ck_assert_msg(plain_wait == -EBADF && plain_once == -EBADF &&
			      plain_got == -EBADF && task_once == -EBADF,
		      "plain: wait %ld, once %ld, recv %ld; task: once %ld "
		      "(-EBADF wanted)",
		      plain_wait, plain_once, plain_got, task_once);
	ck_assert_int_eq(r, 1); /* the attempt took a byte */
	ck_assert_int_eq(fcntl(sv[0], F_GETFD), -1); /* and closed after */
	close(sv[1]);
	return NULL;
}

START_TEST(plain_call_on_a_closing_fd)
{
	weft_test_run(closing_main, NULL, 1);
}
END_TEST

/*
 * The same for the calls that act on the socket at once: weft_shutdown
 * and weft_local_port went to the number, which still held the closed
 * socket, and shut its sending side (the peer read an end of file from a
 * socket weft had closed for the caller) or said its port; so did a
 * plain thread's weft_io_submit naming fd. A plain thread's calls and a
 * task's, while a task's attempt holds the number.
 */
static long plain_shut, plain_port, plain_submit, task_shut, task_port;

static void prep_shut_wr(struct io_uring_sqe *sqe, void *arg)
{
	io_uring_prep_shutdown(sqe, *(int *)arg, SHUT_WR);
}

static void *plain_now_calls(void *arg)
{
	int fd = closing_fd;

	(void)arg;
	plain_shut = weft_shutdown(fd, SHUT_WR);
	plain_port = weft_local_port(fd);
	/* The escape hatch's op names fd too (on the thread's own ring). */
	plain_submit = weft_io_submit(fd, prep_shut_wr, &fd);
	return NULL;
}

static void close_then_now_calls(int fd, enum weft__fdready_moment at)
{
	pthread_t p;

	if (fd != closing_fd || at != WEFT__FDREADY_TRYING)
		return;
	ck_assert_int_eq(weft_close(fd), 0); /* left to our attempt */
	ck_assert_int_eq(pthread_create(&p, NULL, plain_now_calls, NULL), 0);
	ck_assert_int_eq(pthread_join(p, NULL), 0);
	task_shut = weft_shutdown(fd, SHUT_WR);
	task_port = weft_local_port(fd);
	closing_fd = -1;
}

static void *closing_now_main(void *arg)
{
	struct pair p = tcp_pair();
	char c;

	(void)arg;
	closing_fd = p.b;
	weft__fdready_hook = close_then_now_calls;
	long r = weft_recv(p.b, &c, 1, 0);
	weft__fdready_hook = NULL;
	ck_assert_int_eq(closing_fd, -1); /* the hook ran */
	ck_assert_msg(plain_shut == -EBADF && plain_port == -EBADF &&
			      plain_submit == -EBADF && task_shut == -EBADF &&
			      task_port == -EBADF,
		      "plain: shutdown %ld, local_port %ld, io_submit %ld; "
		      "task: shutdown %ld, local_port %ld (-EBADF wanted)",
		      plain_shut, plain_port, plain_submit, task_shut,
		      task_port);
	ck_assert_int_eq(r, -EBADF); /* nothing came; its wait saw the close */
	ck_assert_int_eq(fcntl(p.b, F_GETFD), -1); /* and closed after */
	weft_close(p.a);
	return NULL;
}

START_TEST(shutdown_on_a_closing_fd)
{
	weft_test_run(closing_now_main, NULL, 1);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("plain_close_reuse");
	TCase *tc = tcase_create("core");

	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, plain_call_stays_with_its_file);
	tcase_add_test(tc, plain_call_on_a_closing_fd);
	tcase_add_test(tc, shutdown_on_a_closing_fd);
	suite_add_tcase(s, tc);
	return weft_test_main(s);
}
