/* The cooperative budget (runtime/coop.h): a task whose socket calls keep
 * succeeding at once yields now and then, so a task that yielded on the
 * same worker runs while the data still flows. The reader takes a byte a
 * call from a socket filled beforehand; main yields once and must run
 * again before the reader has drained it. Before the budget, main waited
 * until the socket was empty (in a stress test it waited for good: a
 * writer on another worker kept the reader's socket full while two
 * workers slept). One worker, on each socket path. */
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <sys/socket.h>
#include <unistd.h>
#include "weft/io.h"
#include "weft/task.h"
#include "test_util.h"

struct hot {
	int sv[2];
	long filled, taken;
	atomic_bool stop;
};

static void *hot_reader(void *arg)
{
	struct hot *h = arg;
	char c;

	while (!atomic_load(&h->stop)) {
		ck_assert_int_eq(weft_recv(h->sv[0], &c, 1, 0), 1);
		h->taken++;
	}
	return NULL;
}

/* Fills the socket to the brim (unix stream sockets take about 200 KB). */
static long fill(int fd)
{
	char buf[4096] = { 0 };
	long n = 0;
	ssize_t r;

	while ((r = send(fd, buf, sizeof(buf), MSG_DONTWAIT)) > 0)
		n += r;
	ck_assert_int_eq(errno, EAGAIN);
	return n;
}

static void *coop_main(void *arg)
{
	struct hot h = { .taken = 0 };
	weft_task_t reader;

	(void)arg;
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0,
				    h.sv),
			 0);
	h.filled = fill(h.sv[1]);
	ck_assert_int_eq(weft_spawn(&reader, hot_reader, &h), 0);
	ck_assert_int_eq(weft_yield(), 0);
	atomic_store(&h.stop, true);
	/* Wakes a reader that drained it all (before the budget); a full
	 * socket needs no wake. */
	ck_assert(send(h.sv[1], "x", 1, MSG_DONTWAIT) == 1 || errno == EAGAIN);
	ck_assert_int_eq(weft_join(reader, NULL), 0);
	ck_assert_int_gt(h.taken, 0);
	ck_assert_msg(h.taken < h.filled / 4,
		      "main ran again after %ld of %ld calls", h.taken,
		      h.filled);
	ck_assert_int_eq(weft_close(h.sv[0]), 0);
	ck_assert_int_eq(weft_close(h.sv[1]), 0);
	return NULL;
}

START_TEST(hot_reader_yields)
{
	for (enum weft_sock_path p = WEFT_SOCK_AUTO; p <= WEFT_SOCK_SYSCALL;
	     p++) {
		struct weft_config cfg = { .workers = 1, .sockets = p };

		ck_assert_int_eq(weft_run(coop_main, NULL, &cfg, NULL), 0);
	}
}
END_TEST

int main(void)
{
	Suite *s = suite_create("io_coop");
	TCase *tc = tcase_create("coop");

	tcase_add_test(tc, hot_reader_yields);
	suite_add_tcase(s, tc);
	return weft_test_main(s);
}
