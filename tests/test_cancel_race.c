/* Cancel and timeout against completion, for the blocking calls outside
 * sync/ (whose races test_sync_race drives): accept, recv, recvfrom, a
 * stream's readexactly, weft_blocking, weft_join and pwrite. A waiter
 * blocks, under a deadline a few microseconds away or none, while a
 * completer task makes its call complete (a connect, a send, a job's
 * start, a child's return, the write itself) and a canceller cancels it,
 * all released at the same instant from different workers. Whoever wins,
 * the books must balance: a waiter that succeeded got exactly what was
 * given, and one that failed with -ECANCELED / -ETIMEDOUT consumed
 * nothing: the connection, byte, datagram or result is still there for
 * the next call, a job never ran, a write never happened. */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <stdatomic.h>
#include <unistd.h>
#include "race_util.h"

#define WORKERS 3
/* How long a check waits for what a successful waiter must not have left,
 * and for what a failed one left (there: long, for a loaded machine). */
#define CHECK_NS (5 * WEFT_MSEC)
#define CHECK_LEFT_NS (5 * WEFT_SEC)
#define CHECK_WAIT(wr) ((wr) >= 0 ? CHECK_NS : CHECK_LEFT_NS)

struct race;

struct race_ops {
	const char *name;
	void (*setup)(struct race *r);
	long (*wait)(struct race *r);     /* the waiter's blocking call */
	void (*complete)(struct race *r); /* the completer's side */
	void (*check)(struct race *r, long wr);
	void (*teardown)(struct race *r);
};

struct race {
	const struct race_ops *ops;
	struct race_line line;
	uint64_t rng;
	int spin_w, spin_n, spin_c;
	int64_t deadline_ns; /* 0: none */
	int lfd;             /* accept: the listener */
	int fds[2];          /* a connected pair */
	struct sockaddr_in addr;
	int file;
	uint64_t value, stored; /* pwrite: this round's and the file's */
	weft_task_t child;
	_Atomic long runs; /* weft_blocking: jobs that ran */
	struct weft_stream st;
	char msg[64];
	int outcomes[3]; /* ok, cancelled, timed out */
};

/* A call under a deadline of ns, in a shield: the checks run in the
 * waiter's round after it may have been cancelled. */
static long within(int64_t ns, long (*fn)(struct race *), struct race *r)
{
	struct weft_shield sh;
	struct weft_deadline d;
	long v;

	ck_assert_int_eq(weft_shield_enter(&sh), 0);
	ck_assert_int_eq(weft_deadline_enter(&d, ns), 0);
	v = fn(r);
	weft_deadline_leave(&d);
	ck_assert_int_eq(weft_shield_leave(&sh), 0);
	return v;
}

/* ---- accept ------------------------------------------------------------- */

static void accept_setup(struct race *r)
{
	socklen_t len = sizeof(r->addr);

	if (r->lfd < 0) {
		r->lfd = weft_tcp_listen("127.0.0.1", 0, 64, 0);
		ck_assert_int_ge(r->lfd, 0);
		ck_assert_int_eq(getsockname(r->lfd,
					     (struct sockaddr *)&r->addr, &len),
				 0);
	}
	r->fds[0] = r->fds[1] = -1;
}

static long accept_wait(struct race *r)
{
	return weft_accept(r->lfd, NULL, NULL);
}

static void accept_complete(struct race *r)
{
	r->fds[1] = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	ck_assert_int_ge(r->fds[1], 0);
	ck_assert_int_eq(weft_connect_addr(r->fds[1],
					   (struct sockaddr *)&r->addr,
					   sizeof(r->addr)),
			 0);
}

static void accept_check(struct race *r, long wr)
{
	long again = within(CHECK_WAIT(wr), accept_wait, r);

	if (wr >= 0) {
		ck_assert_msg(again == -ETIMEDOUT, "accepted, and again: %ld",
			      again);
		weft_close((int)wr);
	} else {
		ck_assert_msg(again >= 0,
			      "accept said %ld, and the connection is "
			      "gone: %ld",
			      wr, again);
		weft_close((int)again);
	}
	weft_close(r->fds[1]);
}

/* ---- recv --------------------------------------------------------------- */

static void pair_setup(struct race *r, int type)
{
	ck_assert_int_eq(socketpair(AF_UNIX, type | SOCK_CLOEXEC, 0, r->fds),
			 0);
}

static void recv_setup(struct race *r)
{
	pair_setup(r, SOCK_STREAM);
}

static long recv_wait(struct race *r)
{
	char c = 0;
	long n = weft_recv(r->fds[0], &c, 1, 0);

	return n == 1 ? c : n;
}

static void recv_complete(struct race *r)
{
	ck_assert_int_eq(weft_send(r->fds[1], "x", 1, 0), 1);
}

/* What wr says of the one byte or datagram sent: got, or left queued. */
static void one_check(struct race *r, long wr, long again)
{
	if (wr >= 0) {
		ck_assert_int_eq(wr, 'x');
		ck_assert_msg(again == -ETIMEDOUT, "received twice: %ld",
			      again);
	} else {
		ck_assert_msg(again == 'x', "said %ld, and it is gone: %ld", wr,
			      again);
	}
}

static void recv_check(struct race *r, long wr)
{
	one_check(r, wr, within(CHECK_WAIT(wr), recv_wait, r));
}

static void pair_teardown(struct race *r)
{
	weft_close(r->fds[0]);
	weft_close(r->fds[1]);
}

/* ---- recvfrom ----------------------------------------------------------- */

static void recvfrom_setup(struct race *r)
{
	pair_setup(r, SOCK_DGRAM);
}

static long recvfrom_wait(struct race *r)
{
	struct sockaddr_storage from;
	socklen_t len = sizeof(from);
	char c = 0;
	long n = weft_recvfrom(r->fds[0], &c, 1, 0, (struct sockaddr *)&from,
			       &len);

	return n == 1 ? c : n;
}

static void recvfrom_complete(struct race *r)
{
	ck_assert_int_eq(weft_sendto(r->fds[1], "x", 1, 0, NULL, 0), 1);
}

static void recvfrom_check(struct race *r, long wr)
{
	one_check(r, wr, within(CHECK_WAIT(wr), recvfrom_wait, r));
}

/* ---- a stream's readexactly: half the message, then the rest ------------- */

static void stream_setup(struct race *r)
{
	pair_setup(r, SOCK_STREAM);
	ck_assert_int_eq(weft_stream_init(&r->st, r->fds[0], 0), 0);
	for (size_t i = 0; i < sizeof(r->msg); i++)
		r->msg[i] = (char)('a' + (rnd(&r->rng) % 26));
	/* The first half is there before the waiter reads. */
	ck_assert_int_eq(weft_send(r->fds[1], r->msg, sizeof(r->msg) / 2, 0),
			 sizeof(r->msg) / 2);
}

static long stream_wait(struct race *r)
{
	char got[sizeof(r->msg)];
	long n = weft_stream_readexactly(&r->st, got, sizeof(got));

	if (n == (long)sizeof(got) && memcmp(got, r->msg, sizeof(got)))
		return -EILSEQ;
	return n;
}

static void stream_complete(struct race *r)
{
	size_t half = sizeof(r->msg) / 2;

	ck_assert_int_eq(weft_send(r->fds[1], r->msg + half, half, 0),
			 (ssize_t)half);
}

static void stream_check(struct race *r, long wr)
{
	long again = within(CHECK_WAIT(wr), stream_wait, r);

	if (wr >= 0) {
		ck_assert_int_eq(wr, sizeof(r->msg));
		ck_assert_msg(again == -ETIMEDOUT, "read twice: %ld", again);
		ck_assert_int_eq(weft_stream_buffered(&r->st), 0);
	} else {
		ck_assert_msg(again == (long)sizeof(r->msg),
			      "said %ld, then read %ld", wr, again);
	}
}

static void stream_teardown(struct race *r)
{
	weft_stream_destroy(&r->st);
	pair_teardown(r);
}

/* ---- weft_blocking: the job's start against the cancel ------------------ */

static void *count_run(void *arg)
{
	struct race *r = arg;

	atomic_fetch_add(&r->runs, 1);
	return (void *)(intptr_t)7;
}

static void blocking_setup(struct race *r)
{
	atomic_store(&r->runs, 0);
}

static long blocking_wait(struct race *r)
{
	void *res = NULL;
	int e = weft_blocking(count_run, r, &res);

	return e ? e : (long)(intptr_t)res;
}

static void blocking_complete(struct race *r)
{
	(void)r; /* the pool thread is the completer */
}

static void blocking_check(struct race *r, long wr)
{
	/* A job that started is waited for; one that did not never runs. */
	if (wr >= 0) {
		ck_assert_int_eq(wr, 7);
		ck_assert_int_eq(atomic_load(&r->runs), 1);
	} else {
		ck_assert_msg(atomic_load(&r->runs) == 0,
			      "said %ld, and the job ran", wr);
	}
}

/* ---- weft_join: the child's return against the cancel ------------------- */

static void *child_main(void *arg)
{
	struct race *r = arg;

	race_arrive(&r->line);
	race_spin(r->spin_n);
	return (void *)(intptr_t)42;
}

static void join_setup(struct race *r)
{
	ck_assert_int_eq(weft_spawn(&r->child, child_main, r), 0);
}

static long join_wait(struct race *r)
{
	void *res = NULL;
	int e = weft_join(r->child, &res);

	return e ? e : (long)(intptr_t)res;
}

static void join_complete(struct race *r)
{
	(void)r; /* the child is the completer */
}

static void join_check(struct race *r, long wr)
{
	void *res = NULL;
	int e = weft_join(r->child, &res);

	if (wr >= 0) {
		ck_assert_int_eq(wr, 42);
		ck_assert_int_eq(e, -ESRCH);
	} else {
		ck_assert_msg(e == 0 && res == (void *)(intptr_t)42,
			      "join said %ld, then %d", wr, e);
	}
}

/* ---- pwrite: the write against the cancel ------------------------------- */

static void pwrite_setup(struct race *r)
{
	char path[] = "/tmp/weft_cancel_race_XXXXXX";

	if (r->file < 0) {
		r->file = mkstemp(path);
		ck_assert_int_ge(r->file, 0);
		unlink(path);
		r->stored = 0;
		ck_assert_int_eq(pwrite(r->file, &r->stored, 8, 0), 8);
	}
	r->value = r->stored + 1;
}

static long pwrite_wait(struct race *r)
{
	return weft_pwrite(r->file, &r->value, 8, 0);
}

static void pwrite_complete(struct race *r)
{
	(void)r; /* the kernel (or the pool) is the completer */
}

static void pwrite_check(struct race *r, long wr)
{
	uint64_t now = 0;

	ck_assert_int_eq(pread(r->file, &now, 8, 0), 8);
	if (wr >= 0) {
		ck_assert_int_eq(wr, 8);
		ck_assert_msg(now == r->value, "wrote 8, file has %llu",
			      (unsigned long long)now);
	} else {
		ck_assert_msg(now == r->stored,
			      "said %ld, and the file has %llu (was %llu)", wr,
			      (unsigned long long)now,
			      (unsigned long long)r->stored);
	}
	r->stored = now;
}

static void nothing(struct race *r)
{
	(void)r;
}

static const struct race_ops ops[] = {
	{ "accept", accept_setup, accept_wait, accept_complete, accept_check,
	  nothing },
	{ "recv", recv_setup, recv_wait, recv_complete, recv_check,
	  pair_teardown },
	{ "recvfrom", recvfrom_setup, recvfrom_wait, recvfrom_complete,
	  recvfrom_check, pair_teardown },
	{ "readexactly", stream_setup, stream_wait, stream_complete,
	  stream_check, stream_teardown },
	{ "blocking", blocking_setup, blocking_wait, blocking_complete,
	  blocking_check, nothing },
	{ "join", join_setup, join_wait, join_complete, join_check, nothing },
	{ "pwrite", pwrite_setup, pwrite_wait, pwrite_complete, pwrite_check,
	  nothing },
};

/* ---- the round ---------------------------------------------------------- */

static void *waiter(void *arg)
{
	struct race *r = arg;
	struct weft_deadline d;
	long v;

	race_arrive(&r->line);
	race_spin(r->spin_w);
	if (r->deadline_ns)
		ck_assert_int_eq(weft_deadline_enter(&d, r->deadline_ns), 0);
	v = r->ops->wait(r);
	if (r->deadline_ns)
		weft_deadline_leave(&d);
	return (void *)(intptr_t)v;
}

static void *completer(void *arg)
{
	struct race *r = arg;

	race_arrive(&r->line);
	race_spin(r->spin_n);
	r->ops->complete(r);
	return NULL;
}

static void round_once(struct race *r)
{
	struct race_canceller ca = { &r->line, 0, { 0 } };
	weft_task_t w, n, c;
	void *wv;
	long wr;
	int tasks = 2;
	bool cancel = rnd(&r->rng) % 3 != 0;

	race_line_reset(&r->line);
	r->spin_w = (int)(rnd(&r->rng) % 2000);
	r->spin_n = (int)(rnd(&r->rng) % 2000);
	r->spin_c = (int)(rnd(&r->rng) % 2000);
	r->deadline_ns = rnd(&r->rng) % 2 ? 0 : (int64_t)(rnd(&r->rng) % 30000);
	if (!cancel && !r->deadline_ns)
		r->deadline_ns = 1 + (int64_t)(rnd(&r->rng) % 30000);
	r->ops->setup(r);
	if (r->ops->complete == join_complete)
		tasks++; /* the child arrives too */
	ck_assert_int_eq(weft_spawn(&w, waiter, r), 0);
	ck_assert_int_eq(weft_spawn(&n, completer, r), 0);
	ca.spin = r->spin_c;
	ca.victim = w;
	if (cancel) {
		ck_assert_int_eq(weft_spawn(&c, race_cancel, &ca), 0);
		tasks++;
	}
	race_release(&r->line, tasks);
	ck_assert_int_eq(weft_join(w, &wv), 0);
	ck_assert_int_eq(weft_join(n, NULL), 0);
	if (cancel)
		ck_assert_int_eq(weft_join(c, NULL), 0);
	wr = (long)(intptr_t)wv;
	ck_assert_msg(wr >= 0 || wr == -ECANCELED || wr == -ETIMEDOUT,
		      "%s: waiter said %ld", r->ops->name, wr);
	ck_assert_msg(wr != -ECANCELED || cancel, "%s: cancelled unasked",
		      r->ops->name);
	ck_assert_msg(wr != -ETIMEDOUT || r->deadline_ns,
		      "%s: timed out with no deadline", r->ops->name);
	r->outcomes[wr >= 0 ? 0 : wr == -ECANCELED ? 1 : 2]++;
	r->ops->check(r, wr);
	r->ops->teardown(r);
}

static void *race_main(void *arg)
{
	const struct race_ops *o = arg;
	struct race *r = calloc(1, sizeof(*r));
	long rounds = weft_test_scaled(1500, 100);

	ck_assert_ptr_nonnull(r);
	r->ops = o;
	r->rng = 0x9e3779b97f4a7c15ull ^ (uintptr_t)o;
	r->lfd = r->file = -1;
	for (long i = 0; i < rounds; i++)
		round_once(r);
	fprintf(stderr, "%-12s ok %5d cancelled %5d timed out %5d\n", o->name,
		r->outcomes[0], r->outcomes[1], r->outcomes[2]);
	if (r->lfd >= 0)
		weft_close(r->lfd);
	if (r->file >= 0)
		close(r->file);
	free(r);
	return NULL;
}

START_TEST(cancel_races_completion)
{
	weft_test_run(race_main, (void *)&ops[_i], WORKERS);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("cancel_race");
	TCase *tc = tcase_create("core");

	tcase_set_timeout(tc, 600);
	tcase_add_loop_test(tc, cancel_races_completion, 0,
			    (int)(sizeof(ops) / sizeof(ops[0])));
	suite_add_tcase(s, tc);
	return weft_test_main(s);
}
