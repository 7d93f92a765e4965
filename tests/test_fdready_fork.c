/*
 * fork(2) while a socket call's attempt is under way on another worker.
 * The attempt counts in its fd record's running (fdready.c), and the
 * child gets a copy of that count, but not the thread that would take it
 * back to 0: in the child (a plain thread, task.h) weft_close saw a call
 * in progress, left close(2) to it, returned 0, and the descriptor stayed
 * open for good (a child that closes the parent's sockets before exec
 * kept them, and every later weft_close of the number said -EBADF).
 *
 * Task R receives on a socket; the hook holds its attempt (TRYING, after
 * the count) until main, on the other worker, has forked. The child
 * weft_closes the socket and checks that the number is free.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "drivers/readiness/fdready.h"
#include "weft/io.h"
#include "weft/task.h"
#include "test_util.h"

static atomic_int in_attempt, forked;
static int victim = -1;

static void hold_attempt(int fd, enum weft__fdready_moment at)
{
	if (fd != victim || at != WEFT__FDREADY_TRYING)
		return;
	atomic_store(&in_attempt, 1);
	while (!atomic_load(&forked))
		;
}

static void *reader(void *arg)
{
	char c;

	(void)arg;
	return (void *)(intptr_t)weft_recv(victim, &c, 1, 0);
}

/* In the child: 0 if weft_close freed the number. */
static int child(void)
{
	int r = weft_close(victim);

	if (r)
		return 1;
	if (fcntl(victim, F_GETFD) >= 0)
		return 2; /* still open: the close was left to nobody */
	return errno == EBADF ? 0 : 3;
}

static void *fork_main(void *arg)
{
	int sv[2], status;
	weft_task_t r;
	void *got;
	pid_t pid;

	(void)arg;
	atomic_store(&in_attempt, 0);
	atomic_store(&forked, 0);
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv),
			 0);
	victim = sv[0];
	ck_assert_int_eq(write(sv[1], "x", 1), 1);
	weft__fdready_hook = hold_attempt;
	ck_assert_int_eq(weft_spawn(&r, reader, NULL), 0);
	/* This worker stays on main: the other one takes the reader. */
	while (!atomic_load(&in_attempt))
		;
	pid = fork();
	if (!pid)
		_exit(child());
	atomic_store(&forked, 1);
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert_int_eq(weft_join(r, &got), 0);
	weft__fdready_hook = NULL;
	ck_assert_int_eq((intptr_t)got, 1);
	ck_assert_int_eq(weft_close(sv[0]), 0);
	ck_assert_int_eq(weft_close(sv[1]), 0);
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
		      "child: status %#x", status);
	return NULL;
}

START_TEST(close_in_child_of_attempt)
{
	struct weft_config cfg = { .workers = 2, .io = WEFT_IO_EPOLL };

	ck_assert_int_eq(weft_run(fork_main, NULL, &cfg, NULL), 0);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("fdready_fork");
	TCase *tc = tcase_create("core");

	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, close_in_child_of_attempt);
	suite_add_tcase(s, tc);
	return weft_test_main(s);
}
