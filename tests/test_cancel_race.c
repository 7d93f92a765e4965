/* Cancel and timeout against completion, for the blocking calls outside
 * sync/ (whose races test_sync_race drives): accept, recv, recvfrom, a
 * stream's readexactly, weft_blocking, weft_join, pwrite, a signal wait,
 * a send, send_all and a stream's write and flush into a full socket, and
 * a Unix connect to a full backlog. A waiter
 * blocks, under a deadline a few microseconds away or none, while a
 * completer task makes its call complete (a connect, a send, a job's
 * start, a child's return, the write itself) and a canceller cancels it,
 * all released at the same instant from different workers. Whoever wins,
 * the books must balance: a waiter that succeeded got exactly what was
 * given, and one that failed with -ECANCELED / -ETIMEDOUT consumed
 * nothing: the connection, byte, datagram or result is still there for
 * the next call, a job never ran, a write never happened.
 * every_call_refused: every blocking call, in a task cancelled before its
 * first run or past a deadline at entry, fails at once. */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <signal.h>
#include <netdb.h>
#include <pthread.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
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
	struct weft_signal sigs;
	bool sigs_open;
	size_t filled; /* send: bytes that filled the buffer, not read yet */
	size_t ys;     /* send: the waiter's bytes the peer read */
	size_t sent;   /* send_all: what it said it sent */
	struct weft_stream ws; /* stream_write: over fds[0] */
	char path[64];         /* unix connect: the listener's */
	int outcomes[3];       /* ok, cancelled, timed out */
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

/* ---- weft_signal_wait: a delivery against the cancel --------------------- */

static void signal_setup(struct race *r)
{
	if (!r->sigs_open) {
		ck_assert_int_eq(weft_signal_open(&r->sigs,
						  WEFT_SIGNAL(SIGUSR1)),
				 0);
		r->sigs_open = true;
	}
}

static long signal_wait(struct race *r)
{
	int signo = 0;
	int e = weft_signal_wait(&r->sigs, &signo);

	return e ? e : signo;
}

/* To the completer's own thread: its handler has run when this returns,
 * under ThreadSanitizer too (test_io_signal's send_signal says why). */
static void signal_complete(struct race *r)
{
	(void)r;
	ck_assert_int_eq(pthread_kill(pthread_self(), SIGUSR1), 0);
}

static void signal_check(struct race *r, long wr)
{
	long again = within(CHECK_WAIT(wr), signal_wait, r);

	if (wr >= 0) {
		ck_assert_int_eq(wr, SIGUSR1);
		ck_assert_msg(again == -ETIMEDOUT, "taken twice: %ld", again);
	} else {
		ck_assert_msg(again == SIGUSR1,
			      "said %ld, and the delivery is gone: %ld", wr,
			      again);
	}
}

/* ---- send: room made against the cancel --------------------------------- */

static void send_setup(struct race *r)
{
	int sz = 4096;

	pair_setup(r, SOCK_STREAM);
	ck_assert_int_eq(setsockopt(r->fds[0], SOL_SOCKET, SO_SNDBUF, &sz,
				    sizeof(sz)),
			 0);
	r->filled = r->ys = 0;
	while (send(r->fds[0], "f", 1, MSG_DONTWAIT) == 1)
		r->filled++;
	ck_assert_int_eq(errno, EAGAIN);
}

static long send_wait(struct race *r)
{
	return weft_send(r->fds[0], "y", 1, 0);
}

static void send_complete(struct race *r)
{
	char buf[256];
	ssize_t n;

	while ((n = recv(r->fds[1], buf, sizeof(buf), MSG_DONTWAIT)) > 0)
		for (ssize_t i = 0; i < n; i++) {
			if (buf[i] == 'y')
				r->ys++;
			else
				r->filled--;
		}
}

/* The peer's count of the waiter's bytes, after the sender shut down. */
static void ys_after_shutdown(struct race *r)
{
	char buf[4096];
	ssize_t n;

	shutdown(r->fds[0], SHUT_WR);
	while ((n = recv(r->fds[1], buf, sizeof(buf), 0)) > 0)
		for (ssize_t i = 0; i < n; i++) {
			if (buf[i] == 'y')
				r->ys++;
			else
				r->filled--;
		}
	ck_assert_int_eq(r->filled, 0);
}

static void send_check(struct race *r, long wr)
{
	if (wr < 0) /* nothing sent; a send now must get through */
		ck_assert_int_eq(within(CHECK_LEFT_NS, send_wait, r), 1);
	ys_after_shutdown(r);
	ck_assert_msg(r->ys == 1, "said %ld; the peer got %zu", wr, r->ys);
}

/* ---- send_all and a stream's write: room made against the cancel -------- */

/* Fits in the room one drain makes (SO_SNDBUF 4096, doubled). */
#define ALL_LEN 2000

static char all_buf[ALL_LEN];

static long send_all_wait(struct race *r)
{
	r->sent = 0;
	long n = weft_send_all(r->fds[0], all_buf, ALL_LEN, 0, &r->sent);

	ck_assert_msg(n < 0 || (size_t)n == r->sent, "said %ld, sent %zu", n,
		      r->sent);
	return n;
}

static void send_all_check(struct race *r, long wr)
{
	ys_after_shutdown(r);
	if (wr >= 0)
		ck_assert_int_eq(wr, ALL_LEN);
	ck_assert_msg(r->ys == r->sent, "said %ld, sent %zu; the peer got %zu",
		      wr, r->sent, r->ys);
}

static void stream_write_setup(struct race *r)
{
	send_setup(r);
	ck_assert_int_eq(weft_stream_init(&r->ws, r->fds[0], 0), 0);
}

/* The write buffers it (it fits); the flush sends it. */
static long stream_write_wait(struct race *r)
{
	long n = weft_stream_write(&r->ws, all_buf, ALL_LEN);

	return n < 0 ? n : weft_stream_flush(&r->ws);
}

static long stream_flush(struct race *r)
{
	return weft_stream_flush(&r->ws);
}

static void stream_write_check(struct race *r, long wr)
{
	/* Taken whole either way: what was not sent goes with a flush. */
	if (wr >= 0)
		ck_assert_int_eq(wr, 0);
	send_complete(r); /* room for what is unsent */
	ck_assert_int_eq(within(CHECK_LEFT_NS, stream_flush, r), 0);
	ck_assert_int_eq(weft_stream_unsent(&r->ws), 0);
	ys_after_shutdown(r);
	ck_assert_msg(r->ys == ALL_LEN, "said %ld; the peer got %zu of %d", wr,
		      r->ys, ALL_LEN);
}

static void stream_write_teardown(struct race *r)
{
	weft_stream_destroy(&r->ws);
	pair_teardown(r);
}

/* ---- a Unix connect to a full backlog: room made against the cancel ----- */

static void uconn_setup(struct race *r)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };

	if (r->lfd < 0) {
		snprintf(r->path, sizeof(r->path), "@weft_cr_%d", getpid());
		r->lfd = weft_unix_listen(r->path, 0);
		ck_assert_int_ge(r->lfd, 0);
	}
	/* Fill the backlog: a plain connect(2) that does not wait. */
	memcpy(sa.sun_path + 1, r->path + 1, strlen(r->path) - 1);
	r->fds[1] =
		socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	ck_assert_int_ge(r->fds[1], 0);
	ck_assert_int_eq(connect(r->fds[1], (struct sockaddr *)&sa,
				 (socklen_t)(offsetof(struct sockaddr_un,
						      sun_path) +
					     strlen(r->path))),
			 0);
	r->fds[0] = -1;
}

static long uconn_wait(struct race *r)
{
	return weft_unix_connect(r->path);
}

static void uconn_complete(struct race *r)
{
	r->fds[0] = weft_accept(r->lfd, NULL, NULL);
	ck_assert_int_ge(r->fds[0], 0);
}

static void uconn_check(struct race *r, long wr)
{
	/* The filler was accepted; the waiter's connection is in the backlog
	 * iff it said so. A connection that must be there gets the long wait
	 * (CHECK_WAIT's, the other way round): under CHECK_NS, a check
	 * preempted for 5 ms before its accept's attempt would time out with
	 * the connection there. */
	long again = within(wr >= 0 ? CHECK_LEFT_NS : CHECK_NS, accept_wait, r);

	if (wr >= 0) {
		ck_assert_msg(again >= 0,
			      "connected, and nothing to accept: %ld", again);
		weft_close((int)again);
		weft_close((int)wr);
	} else {
		ck_assert_msg(again == -ETIMEDOUT,
			      "said %ld, and a connection came: %ld", wr,
			      again);
	}
	weft_close(r->fds[0]);
	weft_close(r->fds[1]);
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
	{ "signal", signal_setup, signal_wait, signal_complete, signal_check,
	  nothing },
	{ "send", send_setup, send_wait, send_complete, send_check,
	  pair_teardown },
	{ "send_all", send_setup, send_all_wait, send_complete, send_all_check,
	  pair_teardown },
	{ "stream_write", stream_write_setup, stream_write_wait, send_complete,
	  stream_write_check, stream_write_teardown },
	{ "unix_connect", uconn_setup, uconn_wait, uconn_complete, uconn_check,
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
	memset(all_buf, 'y', sizeof(all_buf));
	for (long i = 0; i < rounds; i++)
		round_once(r);
	fprintf(stderr, "%-12s ok %5d cancelled %5d timed out %5d\n", o->name,
		r->outcomes[0], r->outcomes[1], r->outcomes[2]);
	if (r->lfd >= 0)
		weft_close(r->lfd);
	if (r->file >= 0)
		close(r->file);
	if (r->sigs_open)
		weft_signal_close(&r->sigs);
	free(r);
	return NULL;
}

START_TEST(cancel_races_completion)
{
	weft_test_run(race_main, (void *)&ops[_i], WORKERS);
}
END_TEST

/* ---- every blocking call, refused before it waits ---------------------- */

/* What each call would wait for, none of which comes: a lock held, a
 * semaphore at 0, an empty queue and a full one, a socket with nothing
 * to read and one with no room, ... */
struct stuck {
	struct weft_lock lock, held;
	struct weft_cond cond;
	struct weft_sem sem;
	struct weft_event ev;
	struct weft_barrier bar;
	struct weft_future fut;
	struct weft_queue empty, full, unfinished;
	uint64_t qbuf;
	weft_task_t child;
	struct weft_group g;
	int lfd, rd[2], wr[2], file;
	struct sockaddr_in addr;
	struct weft_stream rs, ws;
	struct weft_signal sigs;
	char fifo[64];
	int mode;
};

enum { M_CANCELLED, M_PASSED, M_NESTED, M_SHIELD_PASSED, M_MODES };

static void *blocked_child(void *arg)
{
	struct stuck *s = arg;

	return (void *)(intptr_t)weft_event_wait(&s->ev);
}

static void *noop_job(void *arg)
{
	return arg;
}

#define REFUSED(call, want)                                                    \
	do {                                                                   \
		long got_ = (long)(call);                                      \
		ck_assert_msg(got_ == (want), "mode %d: %s said %ld", s->mode, \
			      #call, got_);                                    \
	} while (0)

static void all_calls(struct stuck *s, long want)
{
	char c = 0;
	struct iovec iov = { &c, 1 };
	void *res;
	uint64_t item = 1;
	struct sockaddr_storage from;
	socklen_t fl = sizeof(from);
	struct weft_select_case ev_case[] = { WEFT_CASE_EVENT(&s->ev) };
	struct addrinfo *ai = NULL;
	const char *line;
	int signo;

	REFUSED(weft_lock_acquire(&s->held), want);
	REFUSED(weft_sem_acquire(&s->sem), want);
	REFUSED(weft_event_wait(&s->ev), want);
	REFUSED(weft_barrier_wait(&s->bar), want);
	REFUSED(weft_future_wait(&s->fut, &res), want);
	REFUSED(weft_queue_get(&s->empty, &item), want);
	REFUSED(weft_queue_put(&s->full, &item), want);
	REFUSED(weft_queue_join(&s->unfinished), want);
	REFUSED(weft_select(ev_case, 1), want);
	REFUSED(weft_join(s->child, &res), want);
	REFUSED(weft_wait_first(&s->child, 1, &res, NULL), want);
	REFUSED(weft_sleep(WEFT_SEC), want);
	REFUSED(weft_blocking(noop_job, NULL, &res), want);
	REFUSED(weft_getaddrinfo("weft.invalid", "80", NULL, &ai), want);
	REFUSED(weft_accept(s->lfd, NULL, NULL), want);
	REFUSED(weft_connect("127.0.0.1", ntohs(s->addr.sin_port)), want);
	REFUSED(weft_recv(s->rd[0], &c, 1, 0), want);
	REFUSED(weft_recvfrom(s->rd[0], &c, 1, 0, (struct sockaddr *)&from,
			      &fl),
		want);
	REFUSED(weft_readv(s->rd[0], &iov, 1), want);
	REFUSED(weft_send(s->wr[0], "z", 1, 0), want);
	REFUSED(weft_send_all(s->wr[0], "z", 1, 0, NULL), want);
	REFUSED(weft_sendto(s->wr[0], "z", 1, 0, NULL, 0), want);
	REFUSED(weft_writev(s->wr[0], &iov, 1), want);
	REFUSED(weft_wait_fd(s->rd[0], WEFT_READABLE), want);
	REFUSED(weft_open(s->fifo, O_RDONLY, 0), want);
	/* File calls that would not wait say it too, writing nothing. */
	REFUSED(weft_pread(s->file, &c, 1, 0), want);
	REFUSED(weft_pwrite(s->file, "w", 1, 0), want);
	REFUSED(weft_fsync(s->file, 0), want);
	REFUSED(weft_stream_read(&s->rs, &c, 1), want);
	REFUSED(weft_stream_readline(&s->rs, &line), want);
	REFUSED(weft_stream_readexactly(&s->rs, &c, 1), want);
	REFUSED(weft_signal_wait(&s->sigs, &signo), want);
	/* The group's wait stops its member (it waits on ev) first. */
	ck_assert_int_eq(weft_group_spawn(&s->g, blocked_child, s), 0);
	REFUSED(weft_group_wait(&s->g), want);
	ck_assert_int_eq(weft_group_running(&s->g), 0);
	/* The cond last: its lock is taken (free: it does not wait), and
	 * stays held whatever the wait says. */
	ck_assert_int_eq(weft_lock_acquire(&s->lock), 0);
	REFUSED(weft_cond_wait(&s->cond), want);
	ck_assert_int_eq(weft_lock_locked(&s->lock), 1);
	ck_assert_int_eq(weft_lock_release(&s->lock), 0);
}

static void *refuse_task(void *arg)
{
	struct stuck *s = arg;
	struct weft_deadline d, inner;
	struct weft_shield sh;

	switch (s->mode) {
	case M_CANCELLED: /* cancelled before its first run */
		all_calls(s, -ECANCELED);
		break;
	case M_PASSED:
		ck_assert_int_eq(weft_deadline_enter(&d, -1), 0);
		all_calls(s, -ETIMEDOUT);
		weft_deadline_leave(&d);
		break;
	case M_NESTED: /* an outer scope far off, the inner one passed */
		ck_assert_int_eq(weft_deadline_enter(&d, 60 * WEFT_SEC), 0);
		ck_assert_int_eq(weft_deadline_enter_at(&inner, weft_now() - 1),
				 0);
		all_calls(s, -ETIMEDOUT);
		weft_deadline_leave(&inner);
		weft_deadline_leave(&d);
		break;
	case M_SHIELD_PASSED: /* cancelled, shielded, a passed scope inside */
		ck_assert_int_eq(weft_shield_enter(&sh), 0);
		ck_assert_int_eq(weft_deadline_enter(&d, 0), 0);
		all_calls(s, -ETIMEDOUT);
		weft_deadline_leave(&d);
		ck_assert_int_eq(weft_shield_leave(&sh), 0);
		break;
	}
	return NULL;
}

static void stuck_setup(struct stuck *s)
{
	socklen_t len = sizeof(s->addr);
	int sz = 4096;

	weft_lock_init(&s->lock);
	weft_lock_init(&s->held);
	ck_assert_int_eq(weft_lock_acquire(&s->held), 0);
	weft_cond_init(&s->cond, &s->lock);
	weft_sem_init(&s->sem, 0);
	weft_event_init(&s->ev);
	weft_barrier_init(&s->bar, 2);
	weft_future_init(&s->fut);
	ck_assert_int_eq(weft_group_init(&s->g), 0);
	ck_assert_int_eq(weft_queue_init(&s->empty, 8, 1), 0);
	ck_assert_int_eq(weft_queue_init(&s->full, 8, 1), 0);
	ck_assert_int_eq(weft_queue_put(&s->full, &s->qbuf), 0);
	ck_assert_int_eq(weft_queue_init(&s->unfinished, 8, 1), 0);
	ck_assert_int_eq(weft_queue_put(&s->unfinished, &s->qbuf), 0);
	ck_assert_int_eq(weft_spawn(&s->child, blocked_child, s), 0);
	s->lfd = weft_tcp_listen("127.0.0.1", 0, 64, 0);
	ck_assert_int_ge(s->lfd, 0);
	ck_assert_int_eq(getsockname(s->lfd, (struct sockaddr *)&s->addr, &len),
			 0);
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0,
				    s->rd),
			 0);
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0,
				    s->wr),
			 0);
	ck_assert_int_eq(setsockopt(s->wr[0], SOL_SOCKET, SO_SNDBUF, &sz,
				    sizeof(sz)),
			 0);
	while (send(s->wr[0], "f", 1, MSG_DONTWAIT) == 1)
		;
	ck_assert_int_eq(weft_stream_init(&s->rs, s->rd[0], 0), 0);
	ck_assert_int_eq(weft_signal_open(&s->sigs, WEFT_SIGNAL(SIGUSR2)), 0);
	snprintf(s->fifo, sizeof(s->fifo), "/tmp/weft_refuse_%d", getpid());
	unlink(s->fifo);
	ck_assert_int_eq(mkfifo(s->fifo, 0600), 0);
	s->file = open("/tmp", O_RDWR | O_TMPFILE | O_CLOEXEC, 0600);
	ck_assert_int_ge(s->file, 0);
	ck_assert_int_eq(pwrite(s->file, "f", 1, 0), 1);
}

static void stuck_teardown(struct stuck *s)
{
	void *res;
	char c = 0;

	weft_event_set(&s->ev);
	ck_assert_int_eq(weft_join(s->child, &res), 0);
	weft_lock_release(&s->held);
	weft_queue_destroy(&s->empty);
	weft_queue_destroy(&s->full);
	weft_queue_destroy(&s->unfinished);
	weft_signal_close(&s->sigs);
	weft_stream_destroy(&s->rs);
	weft_close(s->lfd);
	weft_close(s->rd[0]);
	weft_close(s->rd[1]);
	weft_close(s->wr[0]);
	weft_close(s->wr[1]);
	unlink(s->fifo);
	ck_assert_int_eq(pread(s->file, &c, 1, 0), 1);
	ck_assert_msg(c == 'f', "a refused pwrite wrote %c", c);
	close(s->file);
}

static void *refuse_main(void *arg)
{
	struct stuck *s = calloc(1, sizeof(*s));
	weft_task_t t;

	(void)arg;
	ck_assert_ptr_nonnull(s);
	stuck_setup(s);
	for (s->mode = 0; s->mode < M_MODES; s->mode++) {
		ck_assert_int_eq(weft_spawn(&t, refuse_task, s), 0);
		if (s->mode == M_CANCELLED || s->mode == M_SHIELD_PASSED)
			ck_assert_int_eq(weft_cancel(t), 0);
		ck_assert_int_eq(weft_join(t, NULL), 0);
	}
	stuck_teardown(s);
	free(s);
	return NULL;
}

/* Cancelled before its first run, past a deadline at entry, past an inner
 * scope's inside an outer one, past a scope inside a shield of a
 * cancelled task: every blocking call says so at once, waiting for
 * nothing. */
START_TEST(every_call_refused)
{
	weft_test_run(refuse_main, NULL, WORKERS);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("cancel_race");
	TCase *tc = tcase_create("core");

	tcase_set_timeout(tc, 600);
	tcase_add_loop_test(tc, cancel_races_completion, 0,
			    (int)(sizeof(ops) / sizeof(ops[0])));
	tcase_add_test(tc, every_call_refused);
	suite_add_tcase(s, tc);
	return weft_test_main(s);
}
