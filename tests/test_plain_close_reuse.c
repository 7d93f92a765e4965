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
#include "test_util.h"

static int old[2];
static char got[8];
static long n;

static void *plain_reader(void *arg)
{
	(void)arg;
	n = weft_recv(old[0], got, sizeof(got), MSG_WAITALL);
	return NULL;
}

static void *reuse_main(void *arg)
{
	int fresh[2], queued = 1;
	pthread_t p;

	(void)arg;
	ck_assert_int_eq(socketpair(AF_UNIX,
				    SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK,
				    0, old),
			 0);
	ck_assert_int_eq(pthread_create(&p, NULL, plain_reader, NULL), 0);
	ck_assert_int_eq(write(old[1], "oooo", 4), 4);
	while (queued) /* the reader took them and polls for the rest */
		ck_assert_int_eq(ioctl(old[0], FIONREAD, &queued), 0);
	ck_assert_int_eq(weft_sleep(100 * WEFT_MSEC), 0);
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
	ck_assert_int_eq(weft_run(reuse_main, NULL, &cfg, NULL), 0);
#else
	(void)cfg;
	(void)reuse_main;
#endif
}
END_TEST

int main(void)
{
	Suite *s = suite_create("plain_close_reuse");
	TCase *tc = tcase_create("core");

	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, plain_call_stays_with_its_file);
	suite_add_tcase(s, tc);
	return weft_test_main(s);
}
