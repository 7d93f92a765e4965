/* UDP datagrams and Unix domain stream sockets. */
#include <errno.h>
#include <pthread.h>
#include <netinet/in.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>
#include "test_io_util.h"

static uint16_t port_of(int fd)
{
	struct sockaddr_in6 sa; /* port at the same offset as sockaddr_in's */
	socklen_t len = sizeof(sa);

	ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
	return ntohs(sa.sin6_port);
}

struct udp_echo {
	int fd;
	int count;
};

static void *udp_echo(void *arg)
{
	struct udp_echo *e = arg;
	char buf[2048];

	for (int i = 0; i < e->count; i++) {
		struct sockaddr_storage from;
		socklen_t flen = sizeof(from);
		ssize_t n = weft_recvfrom(e->fd, buf, sizeof(buf), 0,
					  (struct sockaddr *)&from, &flen);

		ck_assert_int_ge(n, 0);
		ck_assert_int_eq(weft_sendto(e->fd, buf, (size_t)n, 0,
					     (struct sockaddr *)&from, flen),
				 n);
	}
	return NULL;
}

static void udp_round_trips(const char *host, int family)
{
	int srv = weft_udp_bind(host, 0), cl = weft_udp_bind(host, 0);
	struct udp_echo e = { .fd = srv, .count = (int)SCALED(200) };
	struct sockaddr_storage to;
	socklen_t tolen;
	weft_task_t t;

	ck_assert_int_ge(srv, 0);
	ck_assert_int_ge(cl, 0);
	memset(&to, 0, sizeof(to));
	if (family == AF_INET) {
		struct sockaddr_in *s = (struct sockaddr_in *)&to;
		s->sin_family = AF_INET;
		s->sin_port = htons(port_of(srv));
		s->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		tolen = sizeof(*s);
	} else {
		struct sockaddr_in6 *s = (struct sockaddr_in6 *)&to;
		s->sin6_family = AF_INET6;
		s->sin6_port = htons(port_of(srv));
		s->sin6_addr = in6addr_loopback;
		tolen = sizeof(*s);
	}
	ck_assert_int_eq(weft_spawn(&t, udp_echo, &e), 0);
	for (int i = 0; i < e.count; i++) {
		uint8_t out[1200], in[1500];
		size_t len = 1 + (size_t)(i * 97 % 1200);
		struct sockaddr_storage from;
		socklen_t flen = sizeof(from);

		io_fill(out, len, (uint64_t)i, 0);
		ck_assert_int_eq(weft_sendto(cl, out, len, 0,
					     (struct sockaddr *)&to, tolen),
				 (ssize_t)len);
		ck_assert_int_eq(weft_recvfrom(cl, in, sizeof(in), 0,
					       (struct sockaddr *)&from, &flen),
				 (ssize_t)len);
		ck_assert_int_eq(memcmp(in, out, len), 0);
		ck_assert_int_eq(flen, tolen);
		ck_assert_int_eq(memcmp(&from, &to, tolen), 0);
	}
	ck_assert_int_eq(weft_join(t, NULL), 0);
	weft_close(srv);
	weft_close(cl);
}

static void *sendto_huge_len(void *arg)
{
	struct sockaddr_storage to = { .ss_family = AF_INET };
	return (void *)(intptr_t)weft_sendto((int)(intptr_t)arg, "x", 1, 0,
					     (struct sockaddr *)&to, 1000000);
}

/* MSG_WAITALL has no effect on a datagram socket (recv(2)): a receive
 * takes one datagram, however short, and never glues the next ones to it
 * (it waited for more datagrams to fill len). */
static void udp_waitall(void)
{
	int srv = weft_udp_bind("127.0.0.1", 0),
	    cl = weft_udp_bind("127.0.0.1", 0);
	struct sockaddr_in to = { .sin_family = AF_INET,
				  .sin_port = htons(port_of(srv)),
				  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	struct weft_deadline d;
	char buf[8];

	ck_assert_int_ge(srv, 0);
	ck_assert_int_ge(cl, 0);
	for (int i = 0; i < 2; i++)
		ck_assert_int_eq(weft_sendto(cl, i ? "cd" : "ab", 2, 0,
					     (struct sockaddr *)&to,
					     sizeof(to)),
				 2);
	ck_assert_int_eq(weft_deadline_enter(&d, WEFT_SEC), 0);
	ck_assert_int_eq(weft_recv(srv, buf, sizeof(buf), MSG_WAITALL), 2);
	ck_assert_int_eq(memcmp(buf, "ab", 2), 0);
	ck_assert_int_eq(weft_recv(srv, buf, sizeof(buf), MSG_WAITALL), 2);
	ck_assert_int_eq(memcmp(buf, "cd", 2), 0);
	weft_deadline_leave(&d);
	weft_close(srv);
	weft_close(cl);
}

static void *udp_main(void *arg)
{
	char buf[8];
	struct weft_deadline d;

	udp_round_trips("127.0.0.1", AF_INET);
	int probe = socket(AF_INET6, SOCK_DGRAM, 0);
	if (probe >= 0) {
		close(probe);
		udp_round_trips("::1", AF_INET6);
	}

	/* A datagram recv times out like any other call. */
	int fd = weft_udp_bind("127.0.0.1", 0);
	ck_assert_int_eq(weft_deadline_enter(&d, 10 * WEFT_MSEC), 0);
	ck_assert_int_eq(weft_recvfrom(fd, buf, sizeof(buf), 0, NULL, NULL),
			 -ETIMEDOUT);
	weft_deadline_leave(&d);
	/* Truncation and bad input. */
	ck_assert_int_eq(weft_sendto(fd, "x", 1, 0, NULL, 0), -EDESTADDRREQ);
	ck_assert_int_eq(weft_recvfrom(fd, NULL, 4, 0, NULL, NULL), -EFAULT);
	socklen_t l = 4;
	ck_assert_int_eq(weft_recvfrom(fd, buf, 4, 0, NULL, &l), -EINVAL);
	ck_assert_int_eq(weft_recvfrom(-1, buf, 4, 0, NULL, NULL), -EBADF);
	ck_assert_int_eq(weft_sendto(-1, buf, 4, 0, NULL, 0), -EBADF);
	ck_assert_int_eq(weft_connect_addr(fd, NULL, 0), -EFAULT);
	/* An address length no address has: -EINVAL from a task and from a
	 * plain thread alike (the ring said -EFAULT). */
	struct sockaddr_storage to = { .ss_family = AF_INET };
	ck_assert_int_eq(weft_sendto(fd, "x", 1, 0, (struct sockaddr *)&to,
				     1000000),
			 -EINVAL);
	pthread_t th;
	void *r;
	ck_assert_int_eq(pthread_create(&th, NULL, sendto_huge_len,
					(void *)(intptr_t)fd),
			 0);
	pthread_join(th, &r);
	ck_assert_int_eq((int)(intptr_t)r, -EINVAL);
	weft_close(fd);
	udp_waitall();
	return NULL;
}

START_TEST(udp)
{
	weft_test_run(udp_main, NULL, 2);
}
END_TEST

/* ---- Unix domain sockets ------------------------------------------------- */

static void *unix_echo_one(void *arg)
{
	int lfd = *(int *)arg, fd = weft_accept(lfd, NULL, NULL);
	char buf[4096];
	ssize_t n;

	ck_assert_int_ge(fd, 0);
	while ((n = weft_recv(fd, buf, sizeof(buf), 0)) > 0)
		ck_assert_int_eq(weft_send_all(fd, buf, (size_t)n, 0, NULL), n);
	weft_close(fd);
	return NULL;
}

static void unix_round_trip(const char *path)
{
	int lfd = weft_unix_listen(path, 0);
	weft_task_t t;
	char buf[64];

	ck_assert_int_ge(lfd, 0);
	ck_assert_int_eq(weft_spawn(&t, unix_echo_one, &lfd), 0);
	int fd = weft_unix_connect(path);
	ck_assert_int_ge(fd, 0);
	for (int i = 0; i < 100; i++) {
		int len = snprintf(buf, sizeof(buf), "message %d", i);
		char in[64];

		ck_assert_int_eq(weft_send(fd, buf, (size_t)len, 0), len);
		ck_assert_int_eq(io_recv_exact(fd, in, (size_t)len), len);
		ck_assert_int_eq(memcmp(in, buf, (size_t)len), 0);
	}
	weft_close(fd);
	ck_assert_int_eq(weft_join(t, NULL), 0);
	weft_close(lfd);
}

static void *unix_main(void *arg)
{
	char path[64], abstract[64], longp[200];
	struct stat st;

	snprintf(path, sizeof(path), "/tmp/weft-test-%d.sock", (int)getpid());
	unlink(path);
	unix_round_trip(path);
	/* The file is left behind; listening again replaces it. */
	ck_assert_int_eq(stat(path, &st), 0);
	unix_round_trip(path);
	/* But a live listener is not stolen. */
	int lfd = weft_unix_listen(path, 0);
	ck_assert_int_ge(lfd, 0);
	ck_assert_int_eq(weft_unix_listen(path, 0), -EADDRINUSE);
	weft_close(lfd);
	unlink(path);

	snprintf(abstract, sizeof(abstract), "@weft-test-%d", (int)getpid());
	unix_round_trip(abstract);

	ck_assert_int_eq(weft_unix_connect(path), -ENOENT);
	memset(longp, 'a', sizeof(longp) - 1);
	longp[sizeof(longp) - 1] = 0;
	ck_assert_int_eq(weft_unix_listen(longp, 0), -ENAMETOOLONG);
	ck_assert_int_eq(weft_unix_connect(longp), -ENAMETOOLONG);
	ck_assert_int_eq(weft_unix_listen(NULL, 0), -EFAULT);
	ck_assert_int_eq(weft_unix_connect(""), -EINVAL);
	return NULL;
}

/* A listener whose backlog is full: its socket says EAGAIN to a connect,
 * and nothing signals when it has room (the connecting socket is writable
 * already, so the call waited for an edge that never came). The connect
 * tries again until the listener accepts. */
struct full_case {
	int lfd;
	int filled[64];
	int nfilled;
};

static void *drain_later(void *arg)
{
	struct full_case *c = arg;

	weft_sleep(100 * WEFT_MSEC);
	for (int i = 0; i < c->nfilled + 1; i++) {
		int fd = weft_accept(c->lfd, NULL, NULL);
		ck_assert_int_ge(fd, 0);
		weft_close(fd);
	}
	return NULL;
}

static void *full_main(void *arg)
{
	char path[64];
	struct full_case c = { 0 };
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	struct weft_deadline d;
	weft_task_t drainer;

	snprintf(path, sizeof(path), "@weft-full-%d", (int)getpid());
	c.lfd = weft_unix_listen(path, 1);
	ck_assert_int_ge(c.lfd, 0);
	sun.sun_path[0] = 0;
	memcpy(sun.sun_path + 1, path + 1, strlen(path) - 1);
	socklen_t len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) +
				    strlen(path));
	for (; c.nfilled < 64; c.nfilled++) {
		int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0);
		ck_assert_int_ge(fd, 0);
		if (connect(fd, (struct sockaddr *)&sun, len)) {
			ck_assert_int_eq(errno, EAGAIN);
			close(fd);
			break;
		}
		c.filled[c.nfilled] = fd;
	}
	ck_assert_int_lt(c.nfilled, 64);
	ck_assert_int_eq(weft_spawn(&drainer, drain_later, &c), 0);
	int64_t t0 = weft_now();
	ck_assert_int_eq(weft_deadline_enter(&d, 5 * WEFT_SEC), 0);
	int fd = weft_unix_connect(path);
	ck_assert_int_eq(weft_deadline_leave(&d), 0);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_lt(weft_now() - t0, 2 * WEFT_SEC);
	ck_assert_int_eq(weft_join(drainer, NULL), 0);
	weft_close(fd);
	for (int i = 0; i < c.nfilled; i++)
		close(c.filled[i]);
	weft_close(c.lfd);
	return NULL;
}

START_TEST(unix_backlog_full)
{
	weft_test_run(full_main, NULL, 2);
}
END_TEST

START_TEST(unix_stream)
{
	weft_test_run(unix_main, NULL, 2);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("io_udp_unix");
	TCase *tc = tcase_create("udp_unix");

	tcase_set_timeout(tc, 600);
	tcase_add_test(tc, udp);
	tcase_add_test(tc, unix_stream);
	tcase_add_test(tc, unix_backlog_full);
	suite_add_tcase(s, tc);
	return io_test_main(s);
}
