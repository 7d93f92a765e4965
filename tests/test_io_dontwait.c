/* A call with MSG_DONTWAIT (one attempt) in a cancelled task, or one past
 * its deadline, says -ECANCELED / -ETIMEDOUT with nothing moved, as every
 * socket call in a task does (weft/io.h), whether its attempt is the
 * system call or an SQE on the worker's ring (io/call.h): before, the
 * system call moved the bytes and the ring refused. A task ready behind
 * the caller puts the attempt on the ring. */
#include <errno.h>
#include <sys/socket.h>
#include <unistd.h>
#include "weft/io.h"
#include "weft/task.h"
#include "weft/time.h"
#include "test_util.h"

struct out {
	long recv_cancelled, send_cancelled, recv_expired;
	long peer_got;
};

static void *nothing(void *arg)
{
	return arg;
}

/* A detached task ready behind the caller. */
static void filler(void)
{
	ck_assert_int_eq(weft_spawn(NULL, nothing, NULL), 0);
}

static void *body(void *arg)
{
	struct out *o = arg;
	int sv[2];
	char buf[8];
	struct weft_deadline d;

	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0,
				    sv),
			 0);
	ck_assert_int_eq(write(sv[1], "abc", 3), 3);

	/* A deadline already passed. */
	ck_assert_int_eq(weft_deadline_enter_at(&d, weft_now() - 1), 0);
	filler();
	o->recv_expired = weft_recv(sv[0], buf, 1, MSG_DONTWAIT);
	(void)weft_deadline_leave(&d);

	ck_assert_int_eq(weft_cancel(weft_current()), 0);
	filler();
	o->recv_cancelled = weft_recv(sv[0], buf, sizeof(buf), MSG_DONTWAIT);
	filler();
	o->send_cancelled = weft_send(sv[0], "xyz", 3, MSG_DONTWAIT);
	o->peer_got = read(sv[1], buf, sizeof(buf));
	close(sv[0]);
	close(sv[1]);
	return NULL;
}

static struct out run(enum weft_sock_path p)
{
	struct weft_config cfg = { .workers = 1, .sockets = p };
	struct out o = { 0 };

	ck_assert_int_eq(weft_run(body, &o, &cfg, NULL), 0);
	return o;
}

static void check(struct out o)
{
	ck_assert_int_eq(o.recv_expired, -ETIMEDOUT);
	ck_assert_int_eq(o.recv_cancelled, -ECANCELED);
	ck_assert_int_eq(o.send_cancelled, -ECANCELED);
	ck_assert_int_eq(o.peer_got, -1); /* nothing sent: EAGAIN */
}

START_TEST(dontwait_cancelled_on_every_path)
{
	check(run(WEFT_SOCK_SYSCALL));
	check(run(WEFT_SOCK_RING));
}
END_TEST

int main(void)
{
	Suite *s = suite_create("io_dontwait");
	TCase *tc = tcase_create("io_dontwait");

	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, dontwait_cancelled_on_every_path);
	suite_add_tcase(s, tc);
	return weft_test_main(s);
}
