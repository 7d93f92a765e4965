/* The records of unsent socket attempts alone (drivers/io_uring/unsent.h):
 * owner threads list fds and send them, taking and giving back records
 * as rings come and go; a closer paired with each waits for its owner's
 * fd. A wait must not return while an attempt listed before it began is
 * unsent, and must return once it is sent, whatever else the pool holds
 * (other owners' rounds, rounds past the list's length). */
#include <errno.h>
#include <fcntl.h>
#include <liburing.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include "drivers/io_uring/ring.h"
#include "drivers/io_uring/unsent.h"
#include "test_util.h"

#define PAIRS 3
#define RECYCLE_EVERY 50 /* rounds between a give-back and a take */

struct pair {
	int fd; /* the owner's attempts on it are what its closer waits for */
	long rounds;
	_Atomic long listed, sent, checked; /* the last round that did each */
};

static uint64_t next_random(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

static void pause_us(unsigned us)
{
	struct timespec ts = { 0, (long)us * 1000 };

	nanosleep(&ts, NULL);
}

static void wait_for_round(_Atomic long *v, long round)
{
	while (atomic_load_explicit(v, memory_order_acquire) < round)
		sched_yield();
}

static void *owner(void *arg)
{
	struct pair *p = arg;
	uint64_t rng = (uint64_t)p->fd * 0x9e3779b97f4a7c15u + 1;
	struct weft__unsent *u = weft__unsent_take();

	ck_assert_ptr_nonnull(u);
	for (long k = 1; k <= p->rounds; k++) {
		/* 1 to 20 attempts: past WEFT__UNSENT_FDS now and then. */
		int n = 1 + (int)(next_random(&rng) % 20);
		int at = (int)(next_random(&rng) % (unsigned)n);

		for (int i = 0; i < n; i++)
			weft__unsent_note(u, i == at ? p->fd
						     : (int)(next_random(&rng) %
							     100));
		atomic_store_explicit(&p->listed, k, memory_order_release);
		pause_us((unsigned)(next_random(&rng) % 50));
		atomic_store_explicit(&p->sent, k, memory_order_release);
		weft__unsent_sent(u);
		wait_for_round(&p->checked, k);
		if (k % RECYCLE_EVERY == 0) {
			weft__unsent_give_back(u);
			u = weft__unsent_take();
			ck_assert_ptr_nonnull(u);
		}
	}
	weft__unsent_give_back(u);
	return NULL;
}

static void *closer(void *arg)
{
	struct pair *p = arg;

	for (long k = 1; k <= p->rounds; k++) {
		wait_for_round(&p->listed, k);
		weft__unsent_wait(p->fd, NULL);
		long sent =
			atomic_load_explicit(&p->sent, memory_order_acquire);

		ck_assert_int_eq(sent, k);
		atomic_store_explicit(&p->checked, k, memory_order_release);
	}
	return NULL;
}

START_TEST(wait_outlasts_listed_attempts)
{
	struct pair pairs[PAIRS];
	pthread_t threads[2 * PAIRS];

	for (int i = 0; i < PAIRS; i++) {
		pairs[i] =
			(struct pair){ .fd = 100 + i, .rounds = SCALED(3000) };
		ck_assert_int_eq(pthread_create(&threads[2 * i], NULL, owner,
						&pairs[i]),
				 0);
		ck_assert_int_eq(pthread_create(&threads[2 * i + 1], NULL,
						closer, &pairs[i]),
				 0);
	}
	for (int i = 0; i < 2 * PAIRS; i++)
		pthread_join(threads[i], NULL);
}
END_TEST

/*
 * An io_uring operation on fd (a file read, weft_io_submit) is not an
 * attempt: weft_close on another thread aborts it, and its worker turns
 * it into a NOP if it was not submitted. But the worker runs the messages
 * posted to it, then submits: an abort posted in between, and a close
 * after it, would let the op's SQE reach whatever file took fd's number.
 * The test holds the worker in that submit, as the OS may, while a plain
 * thread closes fd and puts a new pipe, holding a byte, at its number; a
 * close that waits out the submit under way sees the hold end at 300 ms.
 */
enum { HOLD_IDLE, HOLD_PREPARED, HOLD_HELD, HOLD_REUSED };

static _Atomic int hold = HOLD_IDLE;

static int held_submit(struct io_uring *ring)
{
	int prepared = HOLD_PREPARED;

	if (atomic_compare_exchange_strong(&hold, &prepared, HOLD_HELD))
		for (int ms = 0; ms < 300 && atomic_load(&hold) != HOLD_REUSED;
		     ms++)
			usleep(1000);
	return io_uring_submit(ring);
}

struct reuse {
	int fd;     /* the old pipe's read end, which the op reads */
	int new_rd; /* the new pipe's read end (also put at fd) */
	char byte;  /* the op's buffer */
	int closed; /* weft_close's result */
};

static void prep_read_byte(struct io_uring_sqe *sqe, void *arg)
{
	struct reuse *u = arg;

	io_uring_prep_read(sqe, u->fd, &u->byte, 1, 0);
	atomic_store(&hold, HOLD_PREPARED);
}

static void *read_task(void *arg)
{
	struct reuse *u = arg;

	return (void *)(intptr_t)weft_io_submit(u->fd, prep_read_byte, u);
}

static void *closer_thread(void *arg)
{
	struct reuse *u = arg;
	int p[2];

	/* Until the worker holds the submit: the op has begun, its SQE is
	 * in the ring. (The prep runs before the op begins, on an SQE set
	 * aside: a close then would come before the call, not during it.) */
	while (atomic_load(&hold) != HOLD_HELD)
		usleep(100);
	u->closed = weft_close(u->fd);
	ck_assert_int_eq(pipe2(p, O_NONBLOCK | O_CLOEXEC), 0);
	ck_assert_int_eq(dup2(p[0], u->fd), u->fd);
	ck_assert_int_eq(write(p[1], "x", 1), 1);
	close(p[1]);
	u->new_rd = p[0];
	atomic_store(&hold, HOLD_REUSED);
	return NULL;
}

static void *reuse_main(void *arg)
{
	struct reuse u = { 0 };
	int old[2];
	char c;
	void *res;
	weft_task_t t;
	pthread_t th;

	(void)arg;
	if (weft_io_driver() != WEFT_IO_URING)
		return NULL; /* no ring: weft_io_submit is -EOPNOTSUPP */
	ck_assert_int_eq(pipe2(old, O_CLOEXEC), 0);
	u.fd = old[0];
	atomic_store(&hold, HOLD_IDLE);
	weft__ring_submit_fn = held_submit;
	ck_assert_int_eq(pthread_create(&th, NULL, closer_thread, &u), 0);
	ck_assert_int_eq(weft_spawn(&t, read_task, &u), 0);
	ck_assert_int_eq(weft_join(t, &res), 0);
	ck_assert_int_eq(pthread_join(th, NULL), 0);
	weft__ring_submit_fn = io_uring_submit;
	ck_assert_int_eq(u.closed, 0);
	/* The read was aborted, and the new pipe's byte is still there. */
	ck_assert_int_eq((intptr_t)res, -EBADF);
	ck_assert_int_eq(read(u.new_rd, &c, 1), 1);
	close(u.fd);
	close(u.new_rd);
	close(old[1]);
	return NULL;
}

START_TEST(close_outlasts_unsubmitted_op)
{
	weft_test_run(reuse_main, NULL, 1);
}
END_TEST

/*
 * An attempt of this worker's own on fd (a send of another task's, on the
 * ring) waits in its SQ when a task of the same worker closes fd:
 * weft_close submits the worker's ring first, so the send reaches fd's
 * file. If the kernel refuses that submit (io_uring_enter short of memory:
 * -EAGAIN), the send stays in the SQ, and weft_close must not let it go
 * out after the close, to whatever file took fd's number meanwhile: here
 * a new socket, put at fd's number (if the close freed it) before the
 * worker submits again.
 */
static _Atomic bool refusing;

static int refusing_submit(struct io_uring *ring)
{
	if (atomic_load(&refusing))
		return -EAGAIN; /* the kernel took none of the SQEs */
	return io_uring_submit(ring);
}

static void *nothing(void *arg)
{
	return arg;
}

static void *send_old(void *arg)
{
	weft_task_t filler;

	/* A task ready behind this one: the send then goes on the ring,
	 * to share the round (io/call.h). */
	ck_assert_int_eq(weft_spawn(&filler, nothing, NULL), 0);
	weft_detach(filler);
	return (void *)(intptr_t)weft_send(*(int *)arg, "old", 3, 0);
}

static void *own_attempt_main(void *arg)
{
	int old[2], new[2], fd;
	struct weft__ring *r = weft__ring_current();
	weft_task_t sender;
	void *sent;
	char buf[8];

	(void)arg;
	if (!r || weft_sock_path() != WEFT_SOCK_RING)
		return NULL; /* epoll: no ring, so nothing waits in one */
	ck_assert_int_eq(socketpair(AF_UNIX,
				    SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
				    0, old),
			 0);
	fd = old[0];
	atomic_store(&refusing, true);
	weft__ring_submit_fn = refusing_submit;
	ck_assert_int_eq(weft_spawn(&sender, send_old, &fd), 0);
	while (!io_uring_sq_ready(&r->uring)) /* the send is in the SQ */
		ck_assert_int_eq(weft_yield(), 0);
	ck_assert_int_eq(weft_close(fd), 0);
	ck_assert_int_eq(socketpair(AF_UNIX,
				    SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
				    0, new),
			 0);
	/* Given fd's number if the close freed it, as another thread's
	 * accept could take it; the send's attempt under way keeps it
	 * (weft_close in weft/io.h). */
	if (new[0] != fd && fcntl(fd, F_GETFD) < 0) {
		ck_assert_int_eq(dup2(new[0], fd), fd);
		close(new[0]);
		new[0] = fd;
	}
	atomic_store(&refusing, false);
	ck_assert_int_eq(weft_join(sender, &sent), 0);
	weft__ring_submit_fn = io_uring_submit;
	/* The send failed as one after the close; the new socket's peer
	 * got nothing. */
	ck_assert_int_eq((intptr_t)sent, -EBADF);
	ck_assert_int_eq(read(new[1], buf, sizeof(buf)), -1);
	ck_assert_int_eq(errno, EAGAIN);
	close(new[0]);
	close(new[1]);
	close(old[1]);
	return NULL;
}

START_TEST(close_outlasts_refused_own_submit)
{
	struct weft_config cfg = { .workers = 1, .sockets = WEFT_SOCK_RING };

	ck_assert_int_eq(weft_run(own_attempt_main, NULL, &cfg, NULL), 0);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("unsent");
	TCase *tc = tcase_create("unsent");

	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, wait_outlasts_listed_attempts);
	tcase_add_test(tc, close_outlasts_unsubmitted_op);
	tcase_add_test(tc, close_outlasts_refused_own_submit);
	suite_add_tcase(s, tc);
	return weft_test_main(s);
}
