/* UDP datagrams and Unix domain stream sockets. */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <netinet/in.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <unistd.h>
#include "test_io_util.h"

#if __has_include(<valgrind/memcheck.h>)
#include <valgrind/memcheck.h>
#else
#define VALGRIND_MAKE_MEM_UNDEFINED(p, n) ((void)(p), (void)(n))
#define VALGRIND_MAKE_MEM_DEFINED(p, n) ((void)(p), (void)(n))
#define VALGRIND_GET_VBITS(p, v, n) ((void)(p), (void)(v), (void)(n), 0)
#endif

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
	ck_assert_int_eq(weft_deadline_enter(&d, HANG_NS), 0);
	ck_assert_int_eq(weft_recv(srv, buf, sizeof(buf), MSG_WAITALL), 2);
	ck_assert_int_eq(memcmp(buf, "ab", 2), 0);
	ck_assert_int_eq(weft_recv(srv, buf, sizeof(buf), MSG_WAITALL), 2);
	ck_assert_int_eq(memcmp(buf, "cd", 2), 0);
	weft_deadline_leave(&d);
	weft_close(srv);
	weft_close(cl);
}

/* As recvfrom(2): with no address, fromlen is not used (it said
 * -EINVAL); an address without a length is the kernel's -EFAULT, and
 * takes nothing. From a task and from a plain thread (fd is bound to
 * 127.0.0.1 and sends to itself). */
static void *recvfrom_fromlen_unused(void *arg)
{
	int fd = (int)(intptr_t)arg;
	struct sockaddr_in to = { .sin_family = AF_INET,
				  .sin_port = htons(port_of(fd)),
				  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	struct sockaddr_storage from;
	socklen_t l = 4;
	char buf[8];

	for (int i = 0; i < 2; i++)
		ck_assert_int_eq(weft_sendto(fd, "xyz", 3, 0,
					     (struct sockaddr *)&to,
					     sizeof(to)),
				 3);
	ck_assert_int_eq(weft_recvfrom(fd, buf, sizeof(buf), 0, NULL, &l), 3);
	ck_assert_int_eq(memcmp(buf, "xyz", 3), 0);
	ck_assert_int_eq(l, 4); /* not written */
	ck_assert_int_eq(weft_recvfrom(fd, buf, sizeof(buf), 0,
				       (struct sockaddr *)&from, NULL),
			 -EFAULT);
	ck_assert_int_eq(weft_recvfrom(fd, buf, sizeof(buf), 0, NULL, &l), 3);
	return NULL;
}

static void udp_fromlen_unused(int fd)
{
	pthread_t th;

	recvfrom_fromlen_unused((void *)(intptr_t)fd);
	ck_assert_int_eq(pthread_create(&th, NULL, recvfrom_fromlen_unused,
					(void *)(intptr_t)fd),
			 0);
	pthread_join(th, NULL);
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
	udp_fromlen_unused(fd);
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

/* A receive with MSG_TRUNC returns the datagram's full length, longer than
 * the buffer; the bytes past the buffer are the caller's, untouched, and
 * under valgrind they stay as memcheck knew them: weft tells it what a
 * receive through io_uring filled, and told it the whole length (which
 * would also hide overruns into those bytes). The guard is undefined to memcheck
 * before the receive and must still be after it. One worker on the ring
 * path, with a task queued, so that the receive is a ring attempt. */
static void *nothing(void *arg)
{
	return arg;
}

/* Whether memcheck takes all n bytes at p as undefined (true off
 * valgrind, which cannot say). */
static bool still_undefined(const void *p, size_t n)
{
	unsigned char vbits[64];

	ck_assert_uint_le(n, sizeof(vbits));
	if (VALGRIND_GET_VBITS(p, vbits, n) != 1)
		return true;
	for (size_t i = 0; i < n; i++)
		if (vbits[i] != 0xff)
			return false;
	return true;
}

static void *trunc_main(void *arg)
{
	int srv = weft_udp_bind("127.0.0.1", 0),
	    cl = weft_udp_bind("127.0.0.1", 0);
	struct sockaddr_in to = { .sin_family = AF_INET,
				  .sin_port = htons(port_of(srv)),
				  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	uint8_t dgram[64], region[64]; /* the buffer, then the guard */
	const size_t len = 8;
	struct weft_metrics m0, m1;

	ck_assert_int_ge(srv, 0);
	ck_assert_int_ge(cl, 0);
	io_fill(dgram, sizeof(dgram), 5, 0);
	ck_assert_int_eq(weft_metrics(&m0), 0);
	for (int i = 0; i < 2; i++) { /* weft_recv, then weft_recvfrom */
		ssize_t n;

		memset(region, 0xa5, sizeof(region));
		VALGRIND_MAKE_MEM_UNDEFINED(region + len, sizeof(region) - len);
		ck_assert_int_eq(weft_sendto(cl, dgram, sizeof(dgram), 0,
					     (struct sockaddr *)&to,
					     sizeof(to)),
				 (ssize_t)sizeof(dgram));
		ck_assert_int_eq(weft_spawn(NULL, nothing, NULL), 0);
		n = i ? weft_recvfrom(srv, region, len, MSG_TRUNC, NULL, NULL)
		      : weft_recv(srv, region, len, MSG_TRUNC);
		ck_assert_int_eq(n, (ssize_t)sizeof(dgram));
		ck_assert_msg(still_undefined(region + len,
					      sizeof(region) - len),
			      "bytes past the buffer marked defined (%s)",
			      i ? "recvfrom" : "recv");
		VALGRIND_MAKE_MEM_DEFINED(region + len, sizeof(region) - len);
		ck_assert_int_eq(memcmp(region, dgram, len), 0);
		for (size_t k = len; k < sizeof(region); k++)
			ck_assert_uint_eq(region[k], 0xa5);
	}
	ck_assert_int_eq(weft_metrics(&m1), 0);
	/* The receives went through the ring where there is one. */
	if (weft_sock_path() == WEFT_SOCK_RING)
		ck_assert_uint_ge(m1.io_submitted - m0.io_submitted, 2);
	weft_close(srv);
	weft_close(cl);
	return NULL;
}

START_TEST(udp_trunc)
{
	struct weft_config cfg = { .workers = 1, .sockets = WEFT_SOCK_RING };

	ck_assert_int_eq(weft_run(trunc_main, NULL, &cfg, NULL), 0);
}
END_TEST

/* ---- an empty datagram -------------------------------------------------- */

/* weft_send of nothing on a connected datagram socket sends an empty
 * datagram, as send(2) does and as weft_sendto did (it sent none: a
 * keep-alive or an empty answer never went out). A receive of it says 0,
 * and the datagram after it comes next. */
static void *empty_main(void *arg)
{
	int srv = weft_udp_bind("127.0.0.1", 0),
	    cl = weft_udp_bind("127.0.0.1", 0);
	struct sockaddr_in to = { .sin_family = AF_INET,
				  .sin_port = htons(port_of(srv)),
				  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	char b[8];

	(void)arg;
	ck_assert_int_ge(srv, 0);
	ck_assert_int_ge(cl, 0);
	ck_assert_int_eq(weft_connect_addr(cl, (struct sockaddr *)&to,
					   sizeof(to)),
			 0);
	ck_assert_int_eq(weft_send(cl, NULL, 0, 0), 0);
	ck_assert_int_eq(weft_send(cl, b, 0, 0), 0);
	ck_assert_int_eq(weft_send(cl, "x", 1, 0), 1);
	ck_assert_int_eq(weft_recvfrom(srv, b, sizeof(b), 0, NULL, NULL), 0);
	ck_assert_int_eq(weft_recvfrom(srv, b, sizeof(b), 0, NULL, NULL), 0);
	ck_assert_int_eq(weft_recvfrom(srv, b, sizeof(b), 0, NULL, NULL), 1);
	ck_assert_int_eq(b[0], 'x');
	ck_assert_int_eq(weft_send(-1, NULL, 0, 0), -EBADF);
	ck_assert_int_eq(weft_send(cl, NULL, 1, 0), -EFAULT);
	weft_close(srv);
	weft_close(cl);
	return NULL;
}

START_TEST(udp_empty_datagram)
{
	weft_test_run(empty_main, NULL, 2);
	empty_main(NULL); /* a plain thread */
}
END_TEST

/* ---- every receive call ------------------------------------------------ */

/* The receive calls, one signature: the two problems below were found in
 * weft_recvfrom, and weft_recv and weft_readv wait the same way. */
typedef ssize_t (*recv_fn)(int fd, void *buf, size_t len, int flags);

static ssize_t via_recvfrom(int fd, void *buf, size_t len, int flags)
{
	return weft_recvfrom(fd, buf, len, flags, NULL, NULL);
}

static ssize_t via_recv(int fd, void *buf, size_t len, int flags)
{
	return weft_recv(fd, buf, len, flags);
}

/* readv takes no flags: only for a flags of 0. */
static ssize_t via_readv(int fd, void *buf, size_t len, int flags)
{
	struct iovec iov = { .iov_base = buf, .iov_len = len };

	ck_assert_int_eq(flags, 0);
	return weft_readv(fd, &iov, 1);
}

/* A receive on a plain thread, and what it said once it returned. */
static struct {
	recv_fn rx;
	int fd, flags;
	atomic_long said;
	atomic_bool done;
} plain;

static void *plain_recv(void *arg)
{
	char b[8];

	(void)arg;
	atomic_store(&plain.said,
		     (long)plain.rx(plain.fd, b, sizeof(b), plain.flags));
	atomic_store(&plain.done, true);
	return NULL;
}

/* Starts rx(fd, ..., flags) on the plain thread *th and gives it
 * HANG_NS: returns whether it returned (one that spins or waits has not,
 * and the caller ends it, which fails the test). Not a second: under
 * valgrind (tests/valgrind.cmake) on a busy host, a thread that returns
 * at once may not have in a second, and would be ended as one that
 * spins. */
static bool plain_recv_returns(pthread_t *th, recv_fn rx, int fd, int flags)
{
	int64_t until = weft_now() + HANG_NS;

	plain.rx = rx;
	plain.fd = fd;
	plain.flags = flags;
	atomic_store(&plain.done, false);
	ck_assert_int_eq(pthread_create(th, NULL, plain_recv, NULL), 0);
	while (!atomic_load(&plain.done) && weft_now() < until)
		weft_sleep(WEFT_MSEC);
	return atomic_load(&plain.done);
}

/* ---- the error queue ---------------------------------------------------- */

/* recvmsg(2) with MSG_ERRQUEUE never waits: an empty error queue says
 * EAGAIN, whatever the data queue holds. weft_recvfrom and weft_recv
 * waited for readability instead: a task until its deadline (or for
 * good), and a plain thread on a socket weft made (non-blocking) spun in
 * its poll and retry loop for as long as a datagram was queued, at 100%
 * CPU. */
static void *errq_main(void *arg)
{
	static const int one = 1;
	recv_fn rx = (recv_fn)arg;
	int srv = weft_udp_bind("127.0.0.1", 0),
	    cl = weft_udp_bind("127.0.0.1", 0),
	    gone = weft_udp_bind("127.0.0.1", 0);
	struct sockaddr_in to = { .sin_family = AF_INET,
				  .sin_port = htons(port_of(srv)),
				  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) },
			   dead = to;
	struct weft_deadline d;
	pthread_t th;
	char b[8];

	ck_assert_int_ge(srv, 0);
	ck_assert_int_ge(cl, 0);
	ck_assert_int_ge(gone, 0);
	dead.sin_port = htons(port_of(gone));
	ck_assert_int_eq(weft_close(gone), 0);
	ck_assert_int_eq(setsockopt(srv, IPPROTO_IP, IP_RECVERR, &one,
				    sizeof(one)),
			 0);
	/* Bounded: a call that waits ends with -ETIMEDOUT. */
	ck_assert_int_eq(weft_deadline_enter(&d, HANG_NS), 0);
	ck_assert_int_eq(rx(srv, b, sizeof(b), MSG_ERRQUEUE), -EAGAIN);
	ck_assert_int_eq(weft_sendto(cl, "x", 1, 0, (struct sockaddr *)&to,
				     sizeof(to)),
			 1);
	ck_assert_int_eq(rx(srv, b, sizeof(b), MSG_ERRQUEUE), -EAGAIN);
	weft_deadline_leave(&d);
	/* A plain thread, the datagram still queued. One that spins ends
	 * once an error is queued: a datagram to a closed port comes back as
	 * ICMP port unreachable. */
	if (!plain_recv_returns(&th, rx, srv, MSG_ERRQUEUE))
		ck_assert_int_eq(weft_sendto(srv, "y", 1, 0,
					     (struct sockaddr *)&dead,
					     sizeof(dead)),
				 1);
	pthread_join(th, NULL);
	ck_assert_int_eq(atomic_load(&plain.said), -EAGAIN);
	/* The datagram is still there, and an error, once queued, is read
	 * from the queue. */
	ck_assert_int_eq(rx(srv, b, sizeof(b), 0), 1);
	ck_assert_int_eq(b[0], 'x');
	ck_assert_int_eq(weft_sendto(srv, "z", 1, 0, (struct sockaddr *)&dead,
				     sizeof(dead)),
			 1);
	ck_assert_int_eq(weft_deadline_enter(&d, 5 * WEFT_SEC), 0);
	ck_assert_int_eq(weft_wait_fd(srv, WEFT_READABLE), WEFT_READABLE);
	ck_assert_int_eq(rx(srv, b, sizeof(b), MSG_ERRQUEUE), 1);
	weft_deadline_leave(&d);
	weft_close(srv);
	weft_close(cl);
	return NULL;
}

START_TEST(udp_errqueue_never_waits)
{
	weft_test_run(errq_main, (void *)via_recvfrom, 2);
}
END_TEST

START_TEST(recv_errqueue_never_waits)
{
	weft_test_run(errq_main, (void *)via_recv, 2);
}
END_TEST

/* ---- a read side shut down ---------------------------------------------- */

/* A datagram socket whose read side is shut down (shutdown(2) SHUT_RD, the
 * usual way to wake a thread blocked in its recvfrom) polls readable with
 * nothing queued: a blocking recvfrom(2) then says 0, a non-blocking one
 * EAGAIN. weft_recvfrom, weft_recv and weft_readv took the EAGAIN for
 * "wait": a task waited for an edge that never came (until its deadline),
 * and a plain thread on a socket weft made spun in poll(2) and retried at
 * 100% CPU. The same for a Unix datagram or seqpacket socket. */
static recv_fn shut_recv;

static void *shut_task(void *arg)
{
	char b[8];

	return (void *)(intptr_t)shut_recv((int)(intptr_t)arg, b, sizeof(b), 0);
}

/* A connected pair of kind (SOCK_DGRAM over UDP when family is AF_INET,
 * else a Unix socketpair of that type), non-blocking as weft makes its
 * own: fd[0] receives, fd[1] sends to it. */
static void dgram_pair(int family, int type, int fd[2])
{
	struct sockaddr_in a = { .sin_family = AF_INET,
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK) },
			   b = a;

	if (family == AF_UNIX) {
		ck_assert_int_eq(socketpair(AF_UNIX,
					    type | SOCK_NONBLOCK | SOCK_CLOEXEC,
					    0, fd),
				 0);
		return;
	}
	fd[0] = weft_udp_bind("127.0.0.1", 0);
	fd[1] = weft_udp_bind("127.0.0.1", 0);
	ck_assert_int_ge(fd[0], 0);
	ck_assert_int_ge(fd[1], 0);
	a.sin_port = htons(port_of(fd[1]));
	b.sin_port = htons(port_of(fd[0]));
	ck_assert_int_eq(weft_connect_addr(fd[0], (struct sockaddr *)&a,
					   sizeof(a)),
			 0);
	ck_assert_int_eq(weft_connect_addr(fd[1], (struct sockaddr *)&b,
					   sizeof(b)),
			 0);
}

static void shut_one(recv_fn rx, int family, int type)
{
	struct weft_deadline d;
	weft_task_t t;
	pthread_t th;
	int fd[2];
	void *res;
	char b[8];

	dgram_pair(family, type, fd);
	shut_recv = rx;
	/* A task waiting in the receive is woken by the shutdown. */
	ck_assert_int_eq(weft_spawn(&t, shut_task, (void *)(intptr_t)fd[0]), 0);
	weft_sleep(20 * WEFT_MSEC);
	ck_assert_int_eq(weft_shutdown(fd[0], SHUT_RD), 0);
	ck_assert_int_eq(weft_deadline_enter(&d, HANG_NS), 0);
	ck_assert_int_eq(weft_join(t, &res), 0);
	weft_deadline_leave(&d);
	ck_assert_int_eq((intptr_t)res, 0);
	/* One that comes after it says 0 at once; MSG_DONTWAIT what
	 * recv(2) says: EAGAIN, but 0 on a seqpacket socket. */
	ck_assert_int_eq(weft_deadline_enter(&d, HANG_NS), 0);
	ck_assert_int_eq(rx(fd[0], b, sizeof(b), 0), 0);
	weft_deadline_leave(&d);
	if (rx != via_readv)
		ck_assert_int_eq(rx(fd[0], b, sizeof(b), MSG_DONTWAIT),
				 type == SOCK_SEQPACKET ? 0 : -EAGAIN);
	/* A plain thread. One that spins ends once weft_close takes the fd
	 * (-EBADF; a datagram would do over UDP, but a Unix peer's send to
	 * a socket shut for reading says EPIPE). */
	if (!plain_recv_returns(&th, rx, fd[0], 0)) {
		ck_assert_int_eq(weft_close(fd[0]), 0);
		fd[0] = -1;
	}
	pthread_join(th, NULL);
	ck_assert_int_eq(atomic_load(&plain.said), 0);
	weft_close(fd[0]);
	weft_close(fd[1]);
}

/* arg: the receive call; over UDP, and Unix datagram and seqpacket. */
static void *shut_main(void *arg)
{
	shut_one((recv_fn)arg, AF_INET, SOCK_DGRAM);
	shut_one((recv_fn)arg, AF_UNIX, SOCK_DGRAM);
	shut_one((recv_fn)arg, AF_UNIX, SOCK_SEQPACKET);
	return NULL;
}

START_TEST(udp_shut_rd_ends_receive)
{
	weft_test_run(shut_main, (void *)via_recvfrom, 2);
}
END_TEST

START_TEST(recv_shut_rd_ends_receive)
{
	weft_test_run(shut_main, (void *)via_recv, 2);
}
END_TEST

START_TEST(readv_shut_rd_ends_receive)
{
	weft_test_run(shut_main, (void *)via_readv, 2);
}
END_TEST

/* ---- an error once, then plain waits ------------------------------------- */

/* A connected UDP socket that once took an ICMP port unreachable had an
 * EPOLLERR event, which the fd's record keeps as a hang-up: every receive
 * that waited after that paid a poll(2) for a shutdown that was not there
 * (sock.h, weft__try_or_end). Once a poll finds the read side open, the
 * record is cleared, and later waits pay none; a shutdown after that
 * still ends the receive. The polls of the socket are counted by a poll
 * defined over glibc's, not under a sanitizer, whose interceptors own it
 * (the calls are made there all the same). */
#if !defined(__SANITIZE_ADDRESS__) && !defined(__SANITIZE_THREAD__)
#include <sys/syscall.h>
#include <time.h>

#define CAN_COUNT_POLLS 1

static atomic_int polled_fd = -1;
static atomic_int polls;
/* The next eintr_left polls of eintr_fd with a timeout of 0 say EINTR. */
static atomic_int eintr_fd = -1, eintr_left;

/* glibc declares fds write-only (its fortified poll), which ours reads.
 * GCC's warning only: Clang knows no -Wmaybe-uninitialized, and -Werror
 * makes its "unknown warning group" an error. */
#pragma GCC diagnostic push
#ifndef __clang__
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
int poll(struct pollfd *fds, nfds_t n, int timeout)
{
	struct timespec ts = { timeout / 1000, timeout % 1000 * 1000000L };

	if (n == 1 && fds[0].fd == atomic_load(&polled_fd))
		atomic_fetch_add(&polls, 1);
	/* What a signal landing in it does (shut_rd_eintr_ends_receive). */
	if (n == 1 && !timeout && fds[0].fd == atomic_load(&eintr_fd) &&
	    atomic_fetch_sub(&eintr_left, 1) > 0) {
		errno = EINTR;
		return -1;
	}
	return (int)syscall(SYS_ppoll, fds, n, timeout < 0 ? NULL : &ts, NULL,
			    0);
}
#pragma GCC diagnostic pop
#else
#define CAN_COUNT_POLLS 0

static atomic_int polled_fd = -1;
static atomic_int polls;
static atomic_int eintr_fd = -1, eintr_left;
#endif

/* rx(fd) within ns: -ETIMEDOUT, nothing being sent. */
static void times_out(recv_fn rx, int fd, int64_t ns)
{
	struct weft_deadline d;
	char b[8];

	ck_assert_int_eq(weft_deadline_enter(&d, ns), 0);
	ck_assert_int_eq(rx(fd, b, sizeof(b), 0), -ETIMEDOUT);
	weft_deadline_leave(&d);
}

static void *error_once_main(void *arg)
{
	recv_fn rx = (recv_fn)arg;
	int u = weft_udp_bind("127.0.0.1", 0),
	    gone = weft_udp_bind("127.0.0.1", 0);
	struct sockaddr_in dead = { .sin_family = AF_INET,
				    .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	struct weft_deadline d;
	weft_task_t t;
	void *res;
	char b[8];
	int i;

	ck_assert_int_ge(u, 0);
	ck_assert_int_ge(gone, 0);
	dead.sin_port = htons(port_of(gone));
	ck_assert_int_eq(weft_close(gone), 0);
	ck_assert_int_eq(weft_connect_addr(u, (struct sockaddr *)&dead,
					   sizeof(dead)),
			 0);
	atomic_store(&polls, 0);
	atomic_store(&polled_fd, u);
	/* The port unreachable wakes a receive that waits (EPOLLERR) and is
	 * its error. */
	shut_recv = rx;
	ck_assert_int_eq(weft_spawn(&t, shut_task, (void *)(intptr_t)u), 0);
	weft_sleep(20 * WEFT_MSEC);
	ck_assert_int_eq(weft_send(u, "x", 1, 0), 1);
	ck_assert_int_eq(weft_deadline_enter(&d, 5 * WEFT_SEC), 0);
	ck_assert_int_eq(weft_join(t, &res), 0);
	weft_deadline_leave(&d);
	ck_assert_int_eq((intptr_t)res, -ECONNREFUSED);
	/* Waits until one has seen the EPOLLERR (a harvest may come late):
	 * that one polls. */
	for (i = 0; i < 400; i++) {
		times_out(rx, u, 5 * WEFT_MSEC);
		if (CAN_COUNT_POLLS ? atomic_load(&polls) > 0 : i >= 4)
			break;
	}
	ck_assert_int_lt(i, 400);
	/* The error was read: later waits poll no more (each did). */
	atomic_store(&polls, 0);
	for (i = 0; i < 5; i++)
		times_out(rx, u, 2 * WEFT_MSEC);
	int extra_polls = atomic_load(&polls);
	ck_assert_int_eq(extra_polls, 0);
	/* A shutdown still ends the receive. */
	ck_assert_int_eq(weft_shutdown(u, SHUT_RD), 0);
	ck_assert_int_eq(weft_deadline_enter(&d, 5 * WEFT_SEC), 0);
	ck_assert_int_eq(rx(u, b, sizeof(b), 0), 0);
	weft_deadline_leave(&d);
	atomic_store(&polled_fd, -1);
	weft_close(u);
	return NULL;
}

START_TEST(udp_error_once_polls_once)
{
	weft_test_run(error_once_main, (void *)via_recvfrom, 2);
	weft_test_run(error_once_main, (void *)via_recv, 2);
	weft_test_run(error_once_main, (void *)via_readv, 2);
}
END_TEST

/* ---- a signal during the poll that finds the read side shut -------------- */

/*
 * A task's receive whose EAGAIN may hide the end of the read side asks
 * poll(2) whether it is shut (read_side in io/sock.c). A signal landing
 * during that poll makes it -1 (EINTR), which was taken for "not shut":
 * the receive then waited for an edge that had come already, until its
 * deadline (for ever without one), where it must say 0. The poll's EINTR
 * is made here by the poll above (a real signal does it too, rarely: once
 * in 2M receives with another thread sending SIGUSR1 to the worker).
 */
static void *shut_eintr_main(void *arg)
{
	recv_fn rx = (recv_fn)arg;
	struct weft_deadline d;
	int pair[2];
	char b[8];
	long r;

	dgram_pair(AF_INET, SOCK_DGRAM, pair);
	ck_assert_int_eq(weft_shutdown(pair[0], SHUT_RD), 0);
	/* The first sees the end and records the hang-up. */
	ck_assert_int_eq(weft_deadline_enter(&d, HANG_NS), 0);
	ck_assert_int_eq(rx(pair[0], b, sizeof(b), 0), 0);
	weft_deadline_leave(&d);
	atomic_store(&eintr_left, 1);
	atomic_store(&eintr_fd, pair[0]);
	ck_assert_int_eq(weft_deadline_enter(&d, WEFT_SEC), 0);
	r = rx(pair[0], b, sizeof(b), 0);
	weft_deadline_leave(&d);
	atomic_store(&eintr_fd, -1);
	ck_assert_int_le(atomic_load(&eintr_left), 0); /* the poll was made */
	ck_assert_int_eq(r, 0);
	weft_close(pair[0]);
	weft_close(pair[1]);
	return NULL;
}

/* The same EINTR in the poll weft_wait_fd makes before it waits
 * (drivers/readiness/fdready.c, poll_now): a writable socket, which must
 * say WEFT_WRITABLE (its plain thread's poll retries EINTR). */
static void *wait_fd_eintr_main(void *arg)
{
	struct weft_deadline d;
	int pair[2], r;

	(void)arg;
	dgram_pair(AF_INET, SOCK_DGRAM, pair);
	atomic_store(&eintr_left, 1);
	atomic_store(&eintr_fd, pair[1]);
	ck_assert_int_eq(weft_deadline_enter(&d, WEFT_SEC), 0);
	r = weft_wait_fd(pair[1], WEFT_WRITABLE);
	weft_deadline_leave(&d);
	atomic_store(&eintr_fd, -1);
	ck_assert_int_le(atomic_load(&eintr_left), 0); /* the poll was made */
	ck_assert_int_eq(r, WEFT_WRITABLE);
	weft_close(pair[0]);
	weft_close(pair[1]);
	return NULL;
}

START_TEST(wait_fd_eintr)
{
	if (!CAN_COUNT_POLLS)
		return;
	weft_test_run(wait_fd_eintr_main, NULL, 2);
}
END_TEST

START_TEST(shut_rd_eintr_ends_receive)
{
	if (!CAN_COUNT_POLLS)
		return;
	weft_test_run(shut_eintr_main, (void *)via_recvfrom, 2);
	weft_test_run(shut_eintr_main, (void *)via_recv, 2);
	weft_test_run(shut_eintr_main, (void *)via_readv, 2);
}
END_TEST

/* ---- readv of no bytes -------------------------------------------------- */

/* Runs main in a one-worker runtime on each socket path (ring and
 * system call: the same under epoll), then on a plain thread. */
static void on_every_path(void *(*main)(void *))
{
	static const enum weft_sock_path paths[] = { WEFT_SOCK_RING,
						     WEFT_SOCK_SYSCALL };

	for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
		struct weft_config cfg = { .workers = 1, .sockets = paths[i] };

		ck_assert_int_eq(weft_run(main, NULL, &cfg, NULL), 0);
	}
	main(NULL);
}

/* readv(2) of iovecs that hold no bytes says 0 at once and takes nothing,
 * on any socket. weft_readv on the ring path made it a recvmsg, which
 * takes a datagram (returning 0) and, with nothing queued, waits for a
 * byte: the call waited out its deadline instead. On each path, with a
 * task queued so that the ring path's attempt is a ring one. */
static void *readv_empty_main(void *arg)
{
	static const int types[] = { SOCK_DGRAM, SOCK_STREAM };
	char b[8];
	struct iovec iov[2] = { { b, 0 }, { NULL, 0 } };
	struct weft_deadline d;
	bool task = weft_current().task != NULL;

	(void)arg;
	for (size_t t = 0; t < sizeof(types) / sizeof(types[0]); t++) {
		int sv[2];

		ck_assert_int_eq(socketpair(AF_UNIX, types[t] | SOCK_NONBLOCK,
					    0, sv),
				 0);
		/* Bounded in a task; a plain thread's never waits. */
		if (task) {
			ck_assert_int_eq(weft_deadline_enter(&d, HANG_NS), 0);
			ck_assert_int_eq(weft_spawn(NULL, nothing, NULL), 0);
		}
		ck_assert_int_eq(weft_readv(sv[0], iov, 2), 0);
		if (task) {
			weft_deadline_leave(&d);
			ck_assert_int_eq(weft_spawn(NULL, nothing, NULL), 0);
		}
		ck_assert_int_eq(write(sv[1], "x", 1), 1);
		ck_assert_int_eq(weft_readv(sv[0], iov, 2), 0);
		/* What was queued is still there. */
		ck_assert_int_eq(recv(sv[0], b, sizeof(b), MSG_DONTWAIT), 1);
		ck_assert_int_eq(b[0], 'x');
		close(sv[0]);
		close(sv[1]);
	}
	return NULL;
}

START_TEST(readv_empty_takes_nothing)
{
	on_every_path(readv_empty_main);
}
END_TEST

/* writev(2) of iovecs that hold no bytes sends nothing (the kernel skips
 * the file's write): on a datagram socket, no datagram. weft_writev made
 * it a sendmsg, which sends an empty datagram, on every path; a receiver
 * took a message nobody wrote. send(2) of nothing does send one
 * (weft_send, udp_empty_datagram). */
static void *writev_empty_main(void *arg)
{
	char b[8];
	struct iovec iov[2] = { { b, 0 }, { NULL, 0 } };
	int sv[2];

	(void)arg;
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK, 0, sv),
			 0);
	if (weft_current().task)
		ck_assert_int_eq(weft_spawn(NULL, nothing, NULL), 0);
	ck_assert_int_eq(weft_writev(sv[1], iov, 2), 0);
	ck_assert_int_eq(recv(sv[0], b, sizeof(b), MSG_DONTWAIT), -1);
	ck_assert_int_eq(errno, EAGAIN);
	close(sv[0]);
	close(sv[1]);
	return NULL;
}

START_TEST(writev_empty_sends_nothing)
{
	on_every_path(writev_empty_main);
}
END_TEST

/* sendto(2) with an address of length 0 hands that address to the
 * protocol: UDP refuses it (EINVAL), a Unix datagram socket takes it as no
 * address and sends to its peer. weft_sendto made it a sendmsg, whose
 * kernel side drops a name of length 0, so on a connected UDP socket it
 * sent a datagram where sendto(2) sends none. The system call on the same
 * socket is the oracle, on every path. */
static void *sendto_unnamed_main(void *arg)
{
	static const int families[] = { AF_INET, AF_UNIX };
	struct sockaddr_in nowhere = { .sin_family = AF_INET };
	char b[8];

	(void)arg;
	for (size_t i = 0; i < sizeof(families) / sizeof(families[0]); i++) {
		int fd[2];

		dgram_pair(families[i], SOCK_DGRAM, fd);
		ssize_t want = sendto(fd[1], "s", 1, MSG_DONTWAIT,
				      (struct sockaddr *)&nowhere, 0);
		want = want < 0 ? -errno : want;
		if (want == 1) /* what the system call sent */
			ck_assert_int_eq(recv(fd[0], b, sizeof(b), 0), 1);
		ck_assert_int_eq(weft_sendto(fd[1], "w", 1, 0,
					     (struct sockaddr *)&nowhere, 0),
				 want);
		errno = 0;
		ck_assert_int_eq(recv(fd[0], b, sizeof(b), MSG_DONTWAIT),
				 want == 1 ? 1 : -1);
		if (want != 1)
			ck_assert_int_eq(errno, EAGAIN);
		close(fd[0]);
		close(fd[1]);
	}
	return NULL;
}

START_TEST(sendto_name_of_no_length)
{
	on_every_path(sendto_unnamed_main);
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

/* Listening on a live listener's path fails, and the live listener sees
 * nothing of it: the check for a stale file connected to it, and its
 * accept returned that connection, closed at once. A Unix connect is on
 * the listener's queue when connect(2) returns, so a poll that does not
 * wait sees it. Nor is the file taken of a live datagram socket, or of a
 * stream socket bound and not listening yet (a server starting), which
 * the stream connect took for stale. */
static void *probe_main(void *arg)
{
	char path[64], dpath[64];
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	struct pollfd p;
	struct stat st;
	int lfd, dfd;

	snprintf(path, sizeof(path), "/tmp/weft-probe-%d.sock", (int)getpid());
	unlink(path);
	lfd = weft_unix_listen(path, 0);
	ck_assert_int_ge(lfd, 0);
	ck_assert_int_eq(weft_unix_listen(path, 0), -EADDRINUSE);
	p = (struct pollfd){ .fd = lfd, .events = POLLIN };
	ck_assert_int_eq(poll(&p, 1, 0), 0);
	/* Still listening, and a client's connection is the only one. */
	int cfd = weft_unix_connect(path), afd;
	ck_assert_int_ge(cfd, 0);
	ck_assert_int_ge(afd = weft_accept(lfd, NULL, NULL), 0);
	ck_assert_int_eq(poll(&p, 1, 0), 0);
	weft_close(afd);
	weft_close(cfd);
	weft_close(lfd);
	unlink(path);

	snprintf(dpath, sizeof(dpath), "/tmp/weft-probe-d-%d.sock",
		 (int)getpid());
	unlink(dpath);
	memcpy(sun.sun_path, dpath, strlen(dpath) + 1);
	for (int i = 0; i < 2; i++) {
		dfd = socket(AF_UNIX,
			     (i ? SOCK_STREAM : SOCK_DGRAM) | SOCK_CLOEXEC, 0);
		ck_assert_int_ge(dfd, 0);
		ck_assert_int_eq(bind(dfd, (struct sockaddr *)&sun,
				      sizeof(sun)),
				 0);
		ck_assert_int_eq(weft_unix_listen(dpath, 0), -EADDRINUSE);
		ck_assert_int_eq(stat(dpath, &st), 0);
		close(dfd);
		unlink(dpath);
	}
	return NULL;
}

START_TEST(unix_live_not_probed)
{
	weft_test_run(probe_main, NULL, 2);
}
END_TEST

/* Listens on name, connects to it and checks the listener's address has
 * addrlen bytes. */
static void name_works(const char *name, socklen_t addrlen)
{
	struct sockaddr_un got;
	socklen_t glen = sizeof(got);
	int lfd = weft_unix_listen(name, 0), cfd, afd;

	ck_assert_int_ge(lfd, 0);
	ck_assert_int_eq(getsockname(lfd, (struct sockaddr *)&got, &glen), 0);
	ck_assert_int_eq(glen, addrlen);
	ck_assert_int_ge(cfd = weft_unix_connect(name), 0);
	ck_assert_int_ge(afd = weft_accept(lfd, NULL, NULL), 0);
	weft_close(afd);
	weft_close(cfd);
	weft_close(lfd);
}

/* The longest names the kernel binds work, and one byte more is
 * -ENAMETOOLONG: an abstract name fills sun_path (108 bytes: the NUL, then
 * 107), a file name leaves room for its NUL (107 bytes); the kernel would
 * bind 108 unterminated, which weft refuses, as Go and Rust do. */
static void *name_len_main(void *arg)
{
	const size_t room = sizeof(((struct sockaddr_un *)0)->sun_path);
	const socklen_t base = offsetof(struct sockaddr_un, sun_path);
	char name[sizeof(((struct sockaddr_un *)0)->sun_path) + 2];
	int k;

	ck_assert_uint_eq(room, 108);
	/* '@' and 107 bytes. */
	k = snprintf(name, sizeof(name), "@weft-max-%d-", (int)getpid());
	memset(name + k, 'a', room - (size_t)k);
	name[room] = '\0';
	name_works(name, (socklen_t)(base + room));
	name[room] = 'a';
	name[room + 1] = '\0';
	ck_assert_int_eq(weft_unix_listen(name, 0), -ENAMETOOLONG);
	ck_assert_int_eq(weft_unix_connect(name), -ENAMETOOLONG);
	/* 107 bytes of a file name, then its NUL. */
	k = snprintf(name, sizeof(name), "/tmp/weft-max-%d-", (int)getpid());
	memset(name + k, 'p', room - 1 - (size_t)k);
	name[room - 1] = '\0';
	unlink(name);
	name_works(name, (socklen_t)(base + room));
	ck_assert_int_eq(unlink(name), 0);
	name[room - 1] = 'p';
	name[room] = '\0';
	ck_assert_int_eq(weft_unix_listen(name, 0), -ENAMETOOLONG);
	ck_assert_int_eq(weft_unix_connect(name), -ENAMETOOLONG);
	return NULL;
}

START_TEST(unix_name_lengths)
{
	weft_test_run(name_len_main, NULL, 2);
}
END_TEST

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

/* A plain thread's blocking Unix socket with SO_SNDTIMEO, whose listener's
 * backlog is full: connect(2) waits out the timeout, then says EAGAIN (as
 * its TCP connect says EINPROGRESS: plain_thread_connect_timeout in
 * test_io_tcp). weft_connect_addr took that EAGAIN for a full backlog met
 * by a non-blocking socket, paused and connected again, each time for
 * the whole timeout: it never returned while the listener did not accept
 * (a plain thread has no deadline to end it). */
static struct {
	int fd;
	struct sockaddr_un sun;
	socklen_t len;
	atomic_int said;
	atomic_bool done;
} timed_connect;

static void *timed_connect_main(void *arg)
{
	(void)arg;
	atomic_store(&timed_connect.said,
		     weft_connect_addr(timed_connect.fd,
				       (struct sockaddr *)&timed_connect.sun,
				       timed_connect.len));
	atomic_store(&timed_connect.done, true);
	return NULL;
}

START_TEST(unix_plain_connect_timeout)
{
	struct timeval tv = { .tv_usec = 50000 };
	char path[64];
	int lfd, filled[64], nfilled = 0, fd;
	pthread_t th;
	bool done = false;

	snprintf(path, sizeof(path), "@weft-timed-%d", (int)getpid());
	lfd = weft_unix_listen(path, 1);
	ck_assert_int_ge(lfd, 0);
	timed_connect.sun = (struct sockaddr_un){ .sun_family = AF_UNIX };
	memcpy(timed_connect.sun.sun_path + 1, path + 1, strlen(path) - 1);
	timed_connect.len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) +
					strlen(path));
	for (; nfilled < 64; nfilled++) {
		fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0);
		ck_assert_int_ge(fd, 0);
		if (connect(fd, (struct sockaddr *)&timed_connect.sun,
			    timed_connect.len)) {
			ck_assert_int_eq(errno, EAGAIN);
			close(fd);
			break;
		}
		filled[nfilled] = fd;
	}
	ck_assert_int_lt(nfilled, 64);
	/* What connect(2) itself says. */
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	ck_assert_int_eq(setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv,
				    sizeof(tv)),
			 0);
	ck_assert_int_eq(connect(fd, (struct sockaddr *)&timed_connect.sun,
				 timed_connect.len),
			 -1);
	ck_assert_int_eq(errno, EAGAIN);
	close(fd);

	/* A blocking socket, then a non-blocking one (as weft makes them
	 * while a runtime runs, or a task's wait leaves them): the same
	 * timeout bounds weft_connect_addr's pauses there. They went on
	 * without end. */
	for (int nb = 0; nb < 2; nb++) {
		int64_t t0 = weft_now();

		timed_connect.fd = socket(AF_UNIX,
					  SOCK_STREAM | SOCK_CLOEXEC |
						  (nb ? SOCK_NONBLOCK : 0),
					  0);
		ck_assert_int_eq(setsockopt(timed_connect.fd, SOL_SOCKET,
					    SO_SNDTIMEO, &tv, sizeof(tv)),
				 0);
		atomic_store(&timed_connect.done, false);
		done = false;
		ck_assert_int_eq(pthread_create(&th, NULL, timed_connect_main,
						NULL),
				 0);
		/* HANG_NS, not 2 s: a call that returns after its 50 ms may
		 * take long under valgrind on a busy host; one that pauses
		 * without end never does. */
		for (int64_t until = weft_now() + HANG_NS;
		     !done && weft_now() < until;) {
			usleep(10000);
			done = atomic_load(&timed_connect.done);
		}
		/* If it still waits, room lets it through, to be joined. */
		while (!atomic_load(&timed_connect.done)) {
			int afd = accept(lfd, NULL, NULL);

			if (afd >= 0)
				close(afd);
			usleep(1000);
		}
		pthread_join(th, NULL);
		ck_assert_msg(done,
			      "weft_connect_addr did not return in %lld s",
			      (long long)(HANG_NS / WEFT_SEC));
		ck_assert_int_eq(atomic_load(&timed_connect.said), -EAGAIN);
		ck_assert_int_ge(weft_now() - t0, 50 * WEFT_MSEC);
		close(timed_connect.fd);
	}
	for (int i = 0; i < nfilled; i++)
		close(filled[i]);
	close(lfd);
}
END_TEST

/* A Unix listener shut down for reading (shutdown(2) SHUT_RD or SHUT_RDWR,
 * a way to stop an accept loop): a blocking accept(2) takes what is
 * queued, then says EINVAL, but a non-blocking one says EAGAIN while
 * poll(2) says readable (POLLRDHUP). weft_accept took the EAGAIN for
 * "wait": a task waited for an edge that never came (until its deadline),
 * and a plain thread on a listener weft made spun in poll(2). A TCP
 * listener's accept says EINVAL either way. */
static void *accept_task(void *arg)
{
	return (void *)(intptr_t)weft_accept((int)(intptr_t)arg, NULL, NULL);
}

static struct {
	int lfd;
	atomic_int said;
	atomic_bool done;
} plain_accept;

static void *plain_accept_main(void *arg)
{
	(void)arg;
	atomic_store(&plain_accept.said,
		     weft_accept(plain_accept.lfd, NULL, NULL));
	atomic_store(&plain_accept.done, true);
	return NULL;
}

/* A listener on an abstract name made of tag, shut down with how. */
static int shut_listener(const char *tag, int how, bool queue_one)
{
	char path[64];
	int lfd, cfd = -1;

	snprintf(path, sizeof(path), "@weft-shut-%s-%d", tag, (int)getpid());
	ck_assert_int_ge(lfd = weft_unix_listen(path, 0), 0);
	if (queue_one)
		ck_assert_int_ge(cfd = weft_unix_connect(path), 0);
	ck_assert_int_eq(weft_shutdown(lfd, how), 0);
	if (cfd >= 0)
		weft_close(cfd);
	return lfd;
}

static void *accept_shut_main(void *arg)
{
	struct weft_deadline d;
	weft_task_t t;
	pthread_t th;
	void *res;
	int lfd, afd;
	char path[64];

	/* A task waiting in accept is woken by the shutdown. */
	snprintf(path, sizeof(path), "@weft-shut-wait-%d", (int)getpid());
	ck_assert_int_ge(lfd = weft_unix_listen(path, 0), 0);
	ck_assert_int_eq(weft_spawn(&t, accept_task, (void *)(intptr_t)lfd), 0);
	weft_sleep(20 * WEFT_MSEC);
	ck_assert_int_eq(weft_shutdown(lfd, SHUT_RD), 0);
	ck_assert_int_eq(weft_deadline_enter(&d, HANG_NS), 0);
	ck_assert_int_eq(weft_join(t, &res), 0);
	weft_deadline_leave(&d);
	ck_assert_int_eq((intptr_t)res, -EINVAL);
	weft_close(lfd);

	/* A connection queued before it is still taken, then EINVAL. */
	lfd = shut_listener("queued", SHUT_RDWR, true);
	ck_assert_int_eq(weft_deadline_enter(&d, HANG_NS), 0);
	ck_assert_int_ge(afd = weft_accept(lfd, NULL, NULL), 0);
	ck_assert_int_eq(weft_accept(lfd, NULL, NULL), -EINVAL);
	weft_deadline_leave(&d);
	weft_close(afd);
	weft_close(lfd);

	/* A plain thread: one that spins ends once weft_close takes the fd
	 * (-EBADF), after HANG_NS (as plain_recv_returns). */
	plain_accept.lfd = shut_listener("plain", SHUT_RD, false);
	atomic_store(&plain_accept.done, false);
	ck_assert_int_eq(pthread_create(&th, NULL, plain_accept_main, NULL), 0);
	for (int64_t until = weft_now() + HANG_NS;
	     !atomic_load(&plain_accept.done) && weft_now() < until;)
		weft_sleep(WEFT_MSEC);
	if (!atomic_load(&plain_accept.done))
		weft_close(plain_accept.lfd);
	pthread_join(th, NULL);
	ck_assert_int_eq(atomic_load(&plain_accept.said), -EINVAL);
	weft_close(plain_accept.lfd);
	(void)arg;
	return NULL;
}

START_TEST(unix_accept_after_shutdown)
{
	weft_test_run(accept_shut_main, NULL, 2);
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
	tcase_add_test(tc, unix_plain_connect_timeout);
	tcase_add_test(tc, unix_live_not_probed);
	tcase_add_test(tc, unix_name_lengths);
	tcase_add_test(tc, unix_accept_after_shutdown);
	suite_add_tcase(s, tc);
	/* Its own case, for CK_RUN_CASE=trunc under valgrind. */
	tc = tcase_create("trunc");
	tcase_set_timeout(tc, 600);
	tcase_add_test(tc, udp_trunc);
	tcase_add_test(tc, udp_empty_datagram);
	tcase_add_test(tc, udp_errqueue_never_waits);
	tcase_add_test(tc, udp_shut_rd_ends_receive);
	tcase_add_test(tc, recv_errqueue_never_waits);
	tcase_add_test(tc, recv_shut_rd_ends_receive);
	tcase_add_test(tc, readv_shut_rd_ends_receive);
	tcase_add_test(tc, udp_error_once_polls_once);
	tcase_add_test(tc, readv_empty_takes_nothing);
	tcase_add_test(tc, writev_empty_sends_nothing);
	tcase_add_test(tc, sendto_name_of_no_length);
	suite_add_tcase(s, tc);
	/* Its own case, for CK_RUN_CASE. */
	tc = tcase_create("shut_signal");
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, shut_rd_eintr_ends_receive);
	tcase_add_test(tc, wait_fd_eintr);
	suite_add_tcase(s, tc);
	return io_test_main(s);
}
