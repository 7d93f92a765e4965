/* weft_getaddrinfo: numeric addresses in place, names (localhost only: no
 * network) on the blocking pool, many at once, cancellation and deadlines
 * while queued, lookups given up on while they run, errors, plain
 * threads. */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "test_io_util.h"
#include "io/resolve.h"
#include "runtime/blocking.h"

#define WORKERS 4

static const struct addrinfo stream_hints = { .ai_family = AF_UNSPEC,
					      .ai_socktype = SOCK_STREAM };

/* Every address of the list is a loopback one with port. */
static int check_loopback(struct addrinfo *ai, uint16_t port)
{
	int n = 0;

	for (; ai; ai = ai->ai_next, n++) {
		if (ai->ai_family == AF_INET) {
			struct sockaddr_in *in = (void *)ai->ai_addr;

			ck_assert_int_eq(ntohl(in->sin_addr.s_addr),
					 INADDR_LOOPBACK);
			ck_assert_int_eq(ntohs(in->sin_port), port);
		} else {
			struct sockaddr_in6 *in6 = (void *)ai->ai_addr;

			ck_assert_int_eq(ai->ai_family, AF_INET6);
			ck_assert(IN6_IS_ADDR_LOOPBACK(&in6->sin6_addr));
			ck_assert_int_eq(ntohs(in6->sin6_port), port);
		}
	}
	return n;
}

static void resolve_ok(const char *host, const char *service, uint16_t port)
{
	struct addrinfo *ai;

	ck_assert_int_eq(weft_getaddrinfo(host, service, &stream_hints, &ai),
			 0);
	ck_assert_int_gt(check_loopback(ai, port), 0);
	freeaddrinfo(ai);
}

/* getaddrinfo's errors mapped as the header says, the same in place (a
 * plain thread) and on the blocking pool (a task, for names): its EAI_*
 * codes are negative, and were taken for -errno on the pool (an unknown
 * service came back -ENOEXEC, a bad family -ENXIO). */
static void gai_errors(void)
{
	struct addrinfo h = { .ai_socktype = SOCK_STREAM }, *ai = NULL;

	ck_assert_int_eq(weft_getaddrinfo("localhost", "no-such-svc", &h, &ai),
			 -ENOENT);
	h.ai_family = 12345;
	ck_assert_int_eq(weft_getaddrinfo("localhost", "http", &h, &ai),
			 -EINVAL);
	h.ai_family = AF_UNSPEC;
	h.ai_flags = 0x40000000; /* no such flag */
	ck_assert_int_eq(weft_getaddrinfo("localhost", "http", &h, &ai),
			 -EINVAL);
}

static void *basics_main(void *arg)
{
	struct addrinfo *ai = (void *)1, h = stream_hints;

	resolve_ok("127.0.0.1", "8080", 8080); /* in place */
	resolve_ok("::1", "8080", 8080);
	resolve_ok("localhost", "8080", 8080); /* on the pool */
	resolve_ok("localhost", NULL, 0);
	resolve_ok("127.0.0.1", "http", 80); /* a service name: pool */
	/* NULL hints: getaddrinfo's defaults. */
	ck_assert_int_eq(weft_getaddrinfo("127.0.0.1", "7", NULL, &ai), 0);
	ck_assert_int_gt(check_loopback(ai, 7), 0);
	freeaddrinfo(ai);
	/* Errors, none needing the network. */
	h.ai_flags = AI_NUMERICSERV;
	ck_assert_int_eq(weft_getaddrinfo("127.0.0.1", "http", &h, &ai),
			 -ENOENT);
	h = stream_hints;
	h.ai_flags = AI_NUMERICHOST;
	ck_assert_int_eq(weft_getaddrinfo("localhost", "80", &h, &ai), -ENOENT);
	h = stream_hints;
	h.ai_family = AF_INET6;
	ck_assert_int_lt(weft_getaddrinfo("127.0.0.1", "80", &h, &ai), 0);
	h = stream_hints;
	h.ai_socktype = 12345;
	ck_assert_int_eq(weft_getaddrinfo("127.0.0.1", "80", &h, &ai), -EINVAL);
	ck_assert_int_eq(weft_getaddrinfo("", "80", &h, &ai), -ENOENT);
	ck_assert_int_eq(weft_getaddrinfo(NULL, NULL, &h, &ai), -EINVAL);
	ck_assert_int_eq(weft_getaddrinfo("localhost", "80", &h, NULL),
			 -EINVAL);
	gai_errors();
	/* The wildcard. */
	h = stream_hints;
	h.ai_flags = AI_PASSIVE;
	ck_assert_int_eq(weft_getaddrinfo(NULL, "0", &h, &ai), 0);
	ck_assert_ptr_nonnull(ai);
	freeaddrinfo(ai);
	return NULL;
}

START_TEST(basics)
{
	gai_errors(); /* a plain thread's lookup, in place */
	weft_test_run(basics_main, NULL, WORKERS);
}
END_TEST

static void *resolve_task(void *arg)
{
	resolve_ok("localhost", "443", 443);
	return NULL;
}

static void *many_main(void *arg)
{
	long n = weft_test_scaled(200, 20);
	weft_task_t *t = calloc((size_t)n, sizeof(*t));

	for (long i = 0; i < n; i++)
		ck_assert_int_eq(weft_spawn(&t[i], resolve_task, NULL), 0);
	for (long i = 0; i < n; i++)
		ck_assert_int_eq(weft_join(t[i], NULL), 0);
	free(t);
	return NULL;
}

START_TEST(many_at_once)
{
	weft_test_run(many_main, NULL, WORKERS);
}
END_TEST

static struct weft_event release = WEFT_EVENT_INIT;

/* Holds the pool's one thread until release is set. */
static void *hold_pool(void *arg)
{
	ck_assert_int_eq(weft_event_wait(&release), 0);
	return NULL;
}

static void *occupy(void *arg)
{
	ck_assert_int_eq(weft_blocking(hold_pool, NULL, NULL), 0);
	return NULL;
}

static void *lookup_task(void *arg)
{
	struct addrinfo *ai = NULL;
	int r = weft_getaddrinfo("localhost", "1", &stream_hints, &ai);

	ck_assert_ptr_null(ai);
	return (void *)(intptr_t)r;
}

/* With the one pool thread busy, lookups queue: a cancelled one and a
 * timed-out one return at once, and the pool never runs them. */
static void *queued_main(void *arg)
{
	struct weft_deadline d;
	struct addrinfo *ai;
	weft_task_t holder, t;
	void *res;

	weft_event_clear(&release);
	ck_assert_int_eq(weft_spawn(&holder, occupy, NULL), 0);
	io_await_pool(1, 0);
	ck_assert_int_eq(weft_spawn(&t, lookup_task, NULL), 0);
	io_await_pool(1, 1);
	ck_assert_int_eq(weft_cancel(t), 0);
	ck_assert_int_eq(weft_join(t, &res), 0);
	ck_assert_int_eq((intptr_t)res, -ECANCELED);
	ck_assert_int_eq(weft_deadline_enter(&d, 10 * WEFT_MSEC), 0);
	ck_assert_int_eq(weft_getaddrinfo("localhost", "1", &stream_hints, &ai),
			 -ETIMEDOUT);
	weft_deadline_leave(&d);
	weft_event_set(&release);
	ck_assert_int_eq(weft_join(holder, NULL), 0);
	resolve_ok("localhost", "1", 1);
	/* In place needs no pool, even for a cancelled task: it never
	 * blocks. A lookup does. */
	weft_cancel(weft_current());
	resolve_ok("127.0.0.1", "1", 1);
	ck_assert_int_eq(weft_getaddrinfo("localhost", "1", &stream_hints, &ai),
			 -ECANCELED);
	return NULL;
}

START_TEST(cancel_and_deadline_while_queued)
{
	struct weft_config cfg = { .workers = WORKERS, .blocking_threads = 1 };

	ck_assert_int_eq(weft_run(queued_main, NULL, &cfg, NULL), 0);
}
END_TEST

/* ---- a lookup given up on while it runs --------------------------------- */

static atomic_int slow_started, slow_release, slow_returned;

/* Seconds on CLOCK_MONOTONIC. */
static double mono_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* A resolver for which slow.invalid answers (127.0.0.1, so that the
 * job's discard has a list to free) only once the test releases it, or
 * after 30 s by the clock (a signal cuts usleep short: under valgrind a
 * count of sleeps ran out at once): one whose DNS server is dead. */
static int slow_gai(const char *host, const char *service,
		    const struct addrinfo *hints, struct addrinfo **res)
{
	double t0 = mono_s();
	int rc;

	if (!host || strcmp(host, "slow.invalid"))
		return getaddrinfo(host, service, hints, res);
	atomic_fetch_add(&slow_started, 1);
	while (!atomic_load(&slow_release) && mono_s() - t0 < 30)
		usleep(1000);
	rc = getaddrinfo("127.0.0.1", service, hints, res);
	atomic_fetch_add(&slow_returned, 1);
	return rc;
}

static void *slow_lookup(void *arg)
{
	struct addrinfo *ai = NULL;
	int r = weft_getaddrinfo("slow.invalid", "1", &stream_hints, &ai);

	(void)arg;
	ck_assert_ptr_null(ai);
	return (void *)(intptr_t)r;
}

/* A lookup with a deadline long enough for the pool to start it however
 * slow the machine (valgrind took over 10 ms; a tsan build on a host
 * loaded twelve deep, whose pool thread may wait seconds for a CPU, is
 * given 5 s): the test counts on both lookups having started. */
static void *timed_slow_lookup(void *arg)
{
	struct weft_deadline d;
	void *r;

	ck_assert_int_eq(weft_deadline_enter(&d, 5 * WEFT_SEC), 0);
	r = slow_lookup(arg);
	weft_deadline_leave(&d);
	return r;
}

/* Two lookups given up on while the resolver runs them: one times out,
 * one is cancelled. Both return at once; main returns with them still
 * running. */
static void *give_up_main(void *arg)
{
	weft_task_t timed, cancelled;
	void *res;

	(void)arg;
	ck_assert_int_eq(weft_spawn(&timed, timed_slow_lookup, NULL), 0);
	ck_assert_int_eq(weft_spawn(&cancelled, slow_lookup, NULL), 0);
	for (int i = 0; i < 10000 && atomic_load(&slow_started) < 2; i++)
		weft_sleep(WEFT_MSEC);
	ck_assert_int_eq(atomic_load(&slow_started), 2);
	ck_assert_int_eq(weft_cancel(cancelled), 0);
	ck_assert_int_eq(weft_join(cancelled, &res), 0);
	ck_assert_int_eq((intptr_t)res, -ECANCELED);
	ck_assert_int_eq(weft_join(timed, &res), 0);
	ck_assert_int_eq((intptr_t)res, -ETIMEDOUT);
	return NULL;
}

/* weft_run does not wait for a lookup nobody waits for (Go's exit does
 * not): it returned with both still in the resolver, which then end
 * detached and free their answers (the leak checks of the asan preset
 * and valgrind see it). It waited for them, for a dead DNS server's
 * timeouts. */
START_TEST(given_up_lookup_does_not_hold_up_run)
{
	atomic_store(&slow_started, 0);
	atomic_store(&slow_release, 0);
	atomic_store(&slow_returned, 0);
	/* release: slow_gai reads the counters reset above. */
	__atomic_store_n(&weft__resolve_hook, slow_gai, __ATOMIC_RELEASE);
	weft_test_run(give_up_main, NULL, WORKERS);
	ck_assert_int_eq(atomic_load(&slow_returned), 0);
	ck_assert_int_eq(weft__blocking_orphans(), 2);
	/* A runtime started meanwhile has a pool of its own. */
	weft_test_run(basics_main, NULL, WORKERS);
	atomic_store(&slow_release, 1);
	for (int i = 0; i < 10000 && weft__blocking_orphans(); i++)
		usleep(1000);
	ck_assert_int_eq(weft__blocking_orphans(), 0);
	ck_assert_int_eq(atomic_load(&slow_returned), 2);
	__atomic_store_n(&weft__resolve_hook, NULL, __ATOMIC_RELEASE);
}
END_TEST

static void *thread_lookup(void *arg)
{
	resolve_ok("localhost", "22", 22);
	return NULL;
}

START_TEST(plain_thread)
{
	pthread_t th;

	ck_assert_int_eq(pthread_create(&th, NULL, thread_lookup, NULL), 0);
	pthread_join(th, NULL);
	resolve_ok("127.0.0.1", "22", 22);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("io_resolve");
	TCase *tc = tcase_create("resolve");

	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, basics);
	tcase_add_test(tc, many_at_once);
	tcase_add_test(tc, cancel_and_deadline_while_queued);
	tcase_add_test(tc, given_up_lookup_does_not_hold_up_run);
	tcase_add_test(tc, plain_thread);
	suite_add_tcase(s, tc);
	return weft_test_main(s);
}
