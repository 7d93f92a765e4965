/*
 * floor_server epoll|io_uring ADDR PORT [--http]: the least CPU a server can
 * spend per request on this kernel, as a yardstick for the runtimes' servers
 * (bench/floor, bench/README.md "Fourteenth session").
 *
 * One thread, no runtime, no allocation per request: what is left of a
 * request's CPU is the kernel's. It serves echo_load's traffic only: each
 * connection has one request in flight, so one receive holds a whole
 * request (64 bytes to echo back, or a keep-alive "GET /" to answer with
 * "Hello, World!"), and one send of that size always goes out whole on a
 * fresh loopback connection. Traffic that breaks either rule gets wrong
 * answers, which echo_load reports as a failure. Binds ADDR:PORT
 * (loopback in bench/floor), runs until SIGINT or SIGTERM, exits 0.
 *
 *   epoll     edge-triggered epoll, recv and send as system calls; a short
 *             read ends a wake-up, as weft and Tokio assume it drained the
 *             socket.
 *   io_uring  every networking feature liburing documents: one ring set up
 *             SINGLE_ISSUER and DEFER_TASKRUN, its fd registered, multishot
 *             accept, the sockets in the ring's registered file table,
 *             multishot receives into a provided-buffer ring, and sends
 *             through the ring.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <liburing.h>
#include <unistd.h>

#define MSG_MAX 2048 /* a receive buffer: far above any request */
#define MAX_FDS 4096 /* sockets the io_uring table holds */

static const char http_answer[] = "HTTP/1.1 200 OK\r\n"
				  "Content-Type: text/plain\r\n"
				  "Content-Length: 13\r\n\r\n"
				  "Hello, World!";
static bool http;
static volatile sig_atomic_t stopping;

static void on_signal(int sig)
{
	(void)sig;
	stopping = 1;
}

/* What to send for a request of len bytes at buf. */
static const void *answer(const void *buf, size_t *len)
{
	if (!http)
		return buf;
	*len = sizeof(http_answer) - 1;
	return http_answer;
}

static int listen_on(const char *addr, const char *port, int flags)
{
	struct sockaddr_in a = { .sin_family = AF_INET,
				 .sin_port = htons((uint16_t)atoi(port)) };
	int one = 1, fd = socket(AF_INET, SOCK_STREAM | flags, 0);

	if (fd < 0 || inet_pton(AF_INET, addr, &a.sin_addr) != 1 ||
	    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
	    bind(fd, (struct sockaddr *)&a, sizeof(a)) || listen(fd, 1024)) {
		perror("floor_server: listen");
		return -1;
	}
	return fd;
}

static void no_delay(int fd)
{
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

/* ---------------------------------------------------------------- epoll -- */

/* Answers each receive on fd until it is drained; false once fd is to be
 * closed (end of file, an error, a short send). */
static bool serve_epoll(int fd)
{
	static char buf[MSG_MAX];

	for (;;) {
		ssize_t got = recv(fd, buf, sizeof(buf), 0);
		if (got < 0)
			return errno == EAGAIN || errno == EINTR;
		if (got == 0)
			return false;
		size_t len = (size_t)got;
		const void *out = answer(buf, &len);
		if (send(fd, out, len, MSG_NOSIGNAL) != (ssize_t)len)
			return false;
		if ((size_t)got < sizeof(buf))
			return true; /* a short read: drained */
	}
}

static int run_epoll(int lfd)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.fd = lfd };
	struct epoll_event evs[256];
	int ep = epoll_create1(EPOLL_CLOEXEC);

	if (ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev)) {
		perror("floor_server: epoll");
		return 1;
	}
	while (!stopping) {
		int n = epoll_wait(ep, evs, 256, -1);
		for (int i = 0; i < n; i++) {
			int fd = evs[i].data.fd, c;
			if (fd != lfd) {
				if (!serve_epoll(fd))
					close(fd);
				continue;
			}
			while ((c = accept4(lfd, NULL, NULL, SOCK_NONBLOCK)) >=
			       0) {
				struct epoll_event e = { .events = EPOLLIN |
								   EPOLLET,
							 .data.fd = c };
				no_delay(c);
				if (epoll_ctl(ep, EPOLL_CTL_ADD, c, &e))
					close(c);
			}
		}
	}
	close(ep);
	return 0;
}

/* ------------------------------------------------------------- io_uring -- */

enum op { ACCEPT, RECV, SEND };

#define BUFS 4096 /* the provided-buffer ring, a power of two */

static struct io_uring ring;
static struct io_uring_buf_ring *buf_ring;
static char *bufs;

/* user_data: the op, the socket, and (for an echo's send) its buffer. */
static uint64_t tag(enum op op, int fd, int buf)
{
	return (uint64_t)op | (uint64_t)fd << 8 | (uint64_t)buf << 40;
}

static struct io_uring_sqe *next_sqe(void)
{
	struct io_uring_sqe *sqe;

	while (!(sqe = io_uring_get_sqe(&ring)))
		io_uring_submit(&ring);
	return sqe;
}

static void give_back(int buf)
{
	io_uring_buf_ring_add(buf_ring, bufs + (size_t)buf * MSG_MAX, MSG_MAX,
			      (unsigned short)buf, io_uring_buf_ring_mask(BUFS),
			      0);
	io_uring_buf_ring_advance(buf_ring, 1);
}

static void arm_recv(int fd)
{
	struct io_uring_sqe *sqe = next_sqe();

	io_uring_prep_recv_multishot(sqe, fd, NULL, 0, 0);
	sqe->flags |= IOSQE_FIXED_FILE | IOSQE_BUFFER_SELECT;
	sqe->buf_group = 0;
	io_uring_sqe_set_data64(sqe, tag(RECV, fd, 0));
}

static int uring_setup(int lfd)
{
	struct io_uring_params p = { .flags = IORING_SETUP_SINGLE_ISSUER |
					      IORING_SETUP_DEFER_TASKRUN |
					      IORING_SETUP_CQSIZE,
				     .cq_entries = 8192 };
	struct io_uring_buf_reg reg = { .ring_entries = BUFS };
	int err = io_uring_queue_init_params(1024, &ring, &p);

	if (err)
		return err;
	io_uring_register_ring_fd(&ring);
	if ((err = io_uring_register_files_sparse(&ring, MAX_FDS)))
		return err;
	if (posix_memalign((void **)&buf_ring, 4096,
			   BUFS * sizeof(struct io_uring_buf)) ||
	    !(bufs = malloc((size_t)BUFS * MSG_MAX)))
		return -ENOMEM;
	reg.ring_addr = (uintptr_t)buf_ring;
	if ((err = io_uring_register_buf_ring(&ring, &reg, 0)))
		return err;
	io_uring_buf_ring_init(buf_ring);
	for (int i = 0; i < BUFS; i++)
		give_back(i);
	struct io_uring_sqe *sqe = next_sqe();
	io_uring_prep_multishot_accept(sqe, lfd, NULL, NULL, 0);
	io_uring_sqe_set_data64(sqe, tag(ACCEPT, lfd, 0));
	return 0;
}

/* A new socket goes into the file table at its own number. */
static void accepted(int fd)
{
	if (fd >= MAX_FDS ||
	    io_uring_register_files_update(&ring, (unsigned)fd, &fd, 1) != 1) {
		close(fd);
		return;
	}
	no_delay(fd);
	arm_recv(fd);
}

/* Drops fd from the table (which holds a reference) and closes it. */
static void drop(int fd)
{
	int none = -1;
	io_uring_register_files_update(&ring, (unsigned)fd, &none, 1);
	close(fd);
}

static void received(const struct io_uring_cqe *cqe, int fd)
{
	bool more = cqe->flags & IORING_CQE_F_MORE;

	if (cqe->res > 0) {
		int buf = (int)(cqe->flags >> IORING_CQE_BUFFER_SHIFT);
		size_t len = (size_t)cqe->res;
		const void *out = answer(bufs + (size_t)buf * MSG_MAX, &len);
		struct io_uring_sqe *sqe = next_sqe();

		io_uring_prep_send(sqe, fd, out, len, MSG_NOSIGNAL);
		sqe->flags |= IOSQE_FIXED_FILE;
		/* An echo's buffer goes back once its send completes. */
		io_uring_sqe_set_data64(sqe, tag(SEND, fd, http ? -1 : buf));
		if (http)
			give_back(buf);
	} else if (cqe->res != -ENOBUFS && !more) {
		drop(fd); /* closed by the peer, or broken */
		return;
	}
	if (!more)
		arm_recv(fd);
}

static void completed(const struct io_uring_cqe *cqe)
{
	int fd = (int)(cqe->user_data >> 8 & 0xffffffff);
	int buf = (int)(int16_t)(cqe->user_data >> 40);

	switch ((enum op)(cqe->user_data & 0xff)) {
	case ACCEPT:
		if (cqe->res >= 0)
			accepted(cqe->res);
		break;
	case RECV:
		received(cqe, fd);
		break;
	case SEND:
		if (buf >= 0)
			give_back(buf);
		break;
	}
}

static int run_uring(int lfd)
{
	int err = uring_setup(lfd);

	if (err) {
		fprintf(stderr, "floor_server: io_uring: %s\n", strerror(-err));
		return 1;
	}
	while (!stopping) {
		struct io_uring_cqe *cqe;
		unsigned head, n = 0;

		io_uring_submit_and_wait(&ring, 1);
		io_uring_for_each_cqe(&ring, head, cqe)
		{
			completed(cqe);
			n++;
		}
		io_uring_cq_advance(&ring, n);
	}
	io_uring_queue_exit(&ring);
	free(bufs);
	free(buf_ring);
	return 0;
}

int main(int argc, char **argv)
{
	struct sigaction sa = { .sa_handler = on_signal };
	bool uring = argc > 1 && !strcmp(argv[1], "io_uring");

	if (argc < 4 || (!uring && strcmp(argv[1], "epoll"))) {
		fprintf(stderr, "usage: floor_server epoll|io_uring ADDR PORT "
				"[--http]\n");
		return 2;
	}
	http = argc > 4 && !strcmp(argv[4], "--http");
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	int lfd = listen_on(argv[2], argv[3], uring ? 0 : SOCK_NONBLOCK);
	if (lfd < 0)
		return 1;
	return uring ? run_uring(lfd) : run_epoll(lfd);
}
