/*
 * fdready's tcp flag, read lock-free by a call's note_transfer after a
 * transfer, and written under the record's lock by do_register when the
 * fd's number is registered again (weft_close, or a new fd of weft's of
 * that number, let the old registration go). Nothing orders the two:
 * under ThreadSanitizer this is a data race unless the flag is atomic.
 *
 * Task A (main) makes a call on a registered TCP socket whose attempt
 * first has weft let the number go (weft__fdready_fresh, as for a new fd
 * of weft's of that number; weft_close does the same but also close(2)s,
 * which ThreadSanitizer takes for a race with A's recv(2)), then receives
 * a short read: note_transfer reads the flag. A then spins on a relaxed
 * flag, making no release. Task B, on the other worker, makes a weft call
 * on the fd, whose registration (do_register) writes the flag. The
 * relaxed flags only sequence the two in time: they order nothing for
 * the sanitizer. No ck_assert between A's read and B's write: Check's
 * mark_point takes a mutex, an edge from one to the other. Without
 * ThreadSanitizer the test only checks that nothing breaks.
 */
#include <errno.h>
#include <netinet/in.h>
#include <stdatomic.h>
#include <sys/socket.h>
#include <unistd.h>

#include "drivers/readiness/fdready.h"
#include "test_util.h"
#include "test_io_util.h"

static atomic_int b_running, a_read, b_done;
static int victim = -1, peer = -1;
static long a_got, b_sent, b_got;

static void spin_relaxed(atomic_int *flag)
{
	/* relaxed: a sequence in time only, no happens-before edge. */
	while (!atomic_load_explicit(flag, memory_order_relaxed))
		;
}

/* The attempt: the number is let go (the call began before), then a
 * short recv. */
static long forget_then_recv(int fd, void *buf)
{
	weft__fdready_fresh(fd);
	return recv(fd, buf, 64, MSG_DONTWAIT);
}

static void *task_b(void *arg)
{
	char c;

	(void)arg;
	atomic_store_explicit(&b_running, 1, memory_order_relaxed);
	spin_relaxed(&a_read);
	b_sent = send(peer, "y", 1, 0);
	/* Registered again: do_register writes rec->tcp, unordered with
	 * A's read. Checked by A, after b_done. */
	b_got = weft_recv(victim, &c, 1, 0);
	/* release: A closes the socket after it (acquire). */
	atomic_store_explicit(&b_done, 1, memory_order_release);
	return NULL;
}

static void *main_a(void *arg)
{
	struct pair p = tcp_pair();
	char buf[64] = "0123456789";

	(void)arg;
	victim = p.b;
	peer = p.a;
	/* Registers the socket (A writes the flag, before B exists). */
	ck_assert_int_eq(send(peer, "x", 1, 0), 1);
	ck_assert_int_eq(weft_recv(victim, buf, 1, 0), 1);
	ck_assert_int_eq(weft_spawn(NULL, task_b, NULL), 0);
	/* This worker stays on this task: the other one takes b. */
	spin_relaxed(&b_running);
	ck_assert_int_eq(send(peer, buf, 10, 0), 10);
	/* Short (10 of 64) on TCP: note_transfer reads rec->tcp. */
	a_got = weft__fdready_call(victim, WEFT__READ, forget_then_recv, buf,
				   64, "recv");
	atomic_store_explicit(&a_read, 1, memory_order_relaxed);
	while (!atomic_load_explicit(&b_done, memory_order_acquire))
		;
	ck_assert_int_eq(a_got, 10);
	ck_assert_int_eq(b_sent, 1);
	ck_assert_int_eq(b_got, 1);
	weft_close(victim);
	weft_close(peer);
	return NULL;
}

START_TEST(tcp_flag_reregistered)
{
	struct weft_config cfg = { .workers = 2, .io = WEFT_IO_EPOLL };

	ck_assert_int_eq(weft_run(main_a, NULL, &cfg, NULL), 0);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("fdready_tcp_race");
	TCase *tc = tcase_create("core");

	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, tcp_flag_reregistered);
	suite_add_tcase(s, tc);
	return weft_test_main(s);
}
