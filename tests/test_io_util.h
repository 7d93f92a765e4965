/* Helpers for the I/O suites: loopback listeners, patterns, exact reads. */
#ifndef WEFT_TESTS_TEST_IO_UTIL_H
#define WEFT_TESTS_TEST_IO_UTIL_H

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include "test_util.h"
#include "runtime/task.h"

/* A TCP listener on 127.0.0.1 and an ephemeral port, stored in *port. */
static inline int io_listen(uint16_t *port)
{
	int fd = weft_tcp_listen("127.0.0.1", 0, 0, 0);

	ck_assert_int_ge(fd, 0);
	ck_assert_int_gt(weft_local_port(fd), 0);
	*port = (uint16_t)weft_local_port(fd);
	return fd;
}

/* A connected loopback TCP pair, from a task. */
struct pair {
	int a, b; /* a: the client end, b: the accepted end */
};

static inline struct pair tcp_pair(void)
{
	uint16_t port;
	int lfd = io_listen(&port);
	struct pair p;

	p.a = weft_connect("127.0.0.1", port);
	ck_assert_int_ge(p.a, 0);
	p.b = weft_accept(lfd, NULL, NULL);
	ck_assert_int_ge(p.b, 0);
	weft_close(lfd);
	return p;
}

/* The test pattern: byte i of stream `seed`. */
static inline uint8_t io_pattern(uint64_t seed, uint64_t i)
{
	uint64_t x = (i >> 3) * 0x9e3779b97f4a7c15ull + seed;

	x ^= x >> 29;
	x *= 0xbf58476d1ce4e5b9ull;
	x ^= x >> 32;
	return (uint8_t)(x >> ((i & 7) * 8));
}

static inline void io_fill(uint8_t *buf, size_t len, uint64_t seed,
			   uint64_t off)
{
	for (size_t i = 0; i < len; i++)
		buf[i] = io_pattern(seed, off + i);
}

/* Receives exactly len bytes; returns len, 0 at EOF before any, or -errno. */
static inline ssize_t io_recv_exact(int fd, void *buf, size_t len)
{
	size_t got = 0;

	while (got < len) {
		ssize_t r = weft_recv(fd, (char *)buf + got, len - got, 0);

		if (r < 0)
			return r;
		if (r == 0)
			return got ? -EPIPE : 0;
		got += (size_t)r;
	}
	return (ssize_t)len;
}

/* Raises the soft descriptor limit to at least n (or the hard limit). */
static inline void io_raise_nofile(rlim_t n)
{
	struct rlimit rl;

	getrlimit(RLIMIT_NOFILE, &rl);
	if (rl.rlim_cur < n) {
		rl.rlim_cur = n < rl.rlim_max ? n : rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
}

/* Open descriptors of the process, to check that a suite leaks none. */
static inline int io_count_fds(void)
{
	int n = 0;

	for (int fd = 0; fd < 65536; fd++)
		if (fcntl(fd, F_GETFD) >= 0)
			n++;
	return n;
}

/* Runs the suite, then fails it if descriptors leaked. */
static inline int io_test_main(Suite *s)
{
	int before = io_count_fds(), r = weft_test_main(s),
	    after = io_count_fds();

	if (after != before) {
		fprintf(stderr, "%d descriptors leaked\n", after - before);
		r = EXIT_FAILURE;
	}
	return r;
}

/* How late a timed wake-up may be before a test calls it wrong: generous,
 * since the suites share small machines with other jobs, and sanitizers
 * slow every switch. Typical lateness is well under a millisecond. */
#define IO_SLACK_MS (WEFT_TEST_SCALE >= 100 ? 100 : 500)

/* Milliseconds elapsed since t0 (a weft_now() value). */
static inline long io_ms_since(int64_t t0)
{
	return (long)((weft_now() - t0) / WEFT_MSEC);
}

/* Whether task t waits for an fd's readiness in the poll set now, which
 * any worker may harvest: past its attempt, the recv(2) or the SQE its
 * worker's next round submits (io/call.h). fdready's wait is the I/O wait
 * whose data is the fd's record; an io_uring attempt's has none. t must
 * not end meanwhile. */
static inline bool io_waits_for_ready(weft_task_t t)
{
	struct weft__waiter *w;
	bool ready;

	weft__spin_lock(&t.task->wait_lock);
	w = t.task->waiting;
	ready = w && w->kind == WEFT__WAIT_IO && w->data;
	weft__spin_unlock(&t.task->wait_lock);
	return ready;
}

/* Waits (sleeping, in a task) until t waits for readiness, for up to
 * ten seconds; fails the test after that. */
static inline void io_await_ready_wait(weft_task_t t)
{
	for (int i = 0; i < 10000; i++) {
		if (io_waits_for_ready(t))
			return;
		ck_assert_int_eq(weft_sleep(WEFT_MSEC), 0);
	}
	ck_abort_msg("a task never waited for readiness in 10 s");
}

/* Waits (sleeping, in a task) until the blocking pool has busy threads
 * and queued jobs, for up to ten seconds; fails the test after that. Not
 * a sleep of a set time: a loaded machine may take a while to start a
 * pool thread (20 ms was too short under ThreadSanitizer). */
static inline void io_await_pool(uint64_t busy, uint64_t queued)
{
	struct weft_metrics m = { .blocking_busy = 0 };

	for (int i = 0; i < 10000; i++) {
		ck_assert_int_eq(weft_metrics(&m), 0);
		if (m.blocking_busy == busy && m.blocking_queued == queued)
			return;
		weft_sleep(WEFT_MSEC);
	}
	ck_abort_msg("pool: %d busy, %d queued", (int)m.blocking_busy,
		     (int)m.blocking_queued);
}

/* Takes one of the failures still owed by a test's stand-in for a libc
 * call (a test defining connect or send over glibc's): true if *left was
 * above 0, which it lowers by one. */
static inline bool io_take_failure(atomic_int *left)
{
	int n = atomic_load(left);

	while (n > 0)
		if (atomic_compare_exchange_weak(left, &n, n - 1))
			return true;
	return false;
}

/* Whether thread tid (of this process) sleeps, for a test whose plain
 * thread's call sleeps only in its wait. */
static inline bool io_thread_sleeps(int tid)
{
	char path[64], stat[256], *s;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/self/task/%d/stat", tid);
	ck_assert_ptr_nonnull(f = fopen(path, "r"));
	ck_assert_ptr_nonnull(fgets(stat, sizeof(stat), f));
	fclose(f);
	ck_assert_ptr_nonnull(s = strrchr(stat, ')'));
	return s[2] == 'S';
}

#endif
