/* The plain-thread path of the io/ calls: see call.h. */
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <sys/epoll.h>
#include <sys/time.h>
#include <sys/socket.h>
#include <unistd.h>
#include <liburing.h>

#include "weft/time.h"
#include "call.h"
#include "runtime/task.h"
#include "runtime/wait.h"

int64_t weft__sock_timeout(int fd, enum weft__dir dir)
{
	struct timeval tv = { 0, 0 };
	socklen_t len = sizeof(tv);

	if (getsockopt(fd, SOL_SOCKET,
		       dir == WEFT__READ ? SO_RCVTIMEO : SO_SNDTIMEO, &tv,
		       &len) ||
	    tv.tv_sec < 0 || tv.tv_sec > INT32_MAX)
		return 0;
	return (int64_t)tv.tv_sec * WEFT_SEC + (int64_t)tv.tv_usec * WEFT_USEC;
}

/* poll(2)'s timeout in ms until the instant end (weft_now()), rounded up
 * so that the wait does not end just short of it; -1 for end 0 (none). */
static int poll_ms(int64_t end)
{
	int64_t left;

	if (!end)
		return -1;
	left = end - weft_now();
	if (left <= 0)
		return 0;
	left = (left + WEFT_MSEC - 1) / WEFT_MSEC;
	return left > INT32_MAX ? INT32_MAX : (int)left;
}

/* What the poll(2) between a plain thread's attempts waits for: dir's
 * readiness, but for a receive of the urgent byte (MSG_OOB, whose EAGAIN
 * says its mark came and it has not) the byte's arrival, POLLPRI, or the
 * read side's end, POLLRDHUP (the receive then says 0). Not POLLIN: with
 * bytes queued before the mark it held at once and the wait spun, and
 * the byte arriving alone polls POLLPRI only, which it never saw. */
static short plain_events(enum weft__dir dir, int flags)
{
	if (dir == WEFT__WRITE)
		return POLLOUT;
	return flags & MSG_OOB ? POLLPRI | POLLRDHUP : POLLIN;
}

/* A plain thread's call after its first EAGAIN. p[0]: fd's poll;
 * p[1]: the edge set's (n 2), see edge_retry. */
struct plain_call {
	struct weft__fd_pin pin;
	weft__try_fn try;
	void *arg;
	int64_t end; /* weft_now() when SO_RCVTIMEO / SO_SNDTIMEO ends; 0 none */
	struct pollfd p[2];
	nfds_t n;
};

/* Waits at most ms for c's events. The edge set's edge is taken before
 * the attempt that follows, which sees what it said came; an edge after
 * the attempt stays for the next wait. */
static void plain_wait(struct plain_call *c, int ms)
{
	struct epoll_event ev;

	if (poll(c->p, c->n, ms) > 0 && c->n == 2 && (c->p[1].revents & POLLIN))
		epoll_wait(c->p[1].fd, &ev, 1, 0);
}

/* Waits and tries again until the attempt says anything but EAGAIN, or
 * the timeout runs out. */
static long plain_retry(struct plain_call *c)
{
	int fd = c->p[0].fd;
	long r = -EAGAIN;

	while (r == -EAGAIN) {
		int ms = poll_ms(c->end);

		if (!ms)
			return -EAGAIN; /* the timeout ran out */
		plain_wait(c, ms);
		if (!weft__fdready_pin_enter(&c->pin, fd))
			return -EBADF;
		r = c->try(fd, c->arg);
		weft__fdready_pin_leave(&c->pin, fd);
	}
	return r;
}

/* Whether a plain thread's call waits for an edge (edge_retry): a
 * WAITALL peek, not of the urgent byte (whose wait is for POLLPRI). */
static bool waits_for_edge(enum weft__dir dir, int flags)
{
	int peek_all = MSG_PEEK | MSG_WAITALL;

	return dir == WEFT__READ && (flags & (peek_all | MSG_OOB)) == peek_all;
}

/* An epoll set of fd's edges of readability; -1 if it cannot be made. */
static int edge_set(int fd)
{
	struct epoll_event ev = { .events = EPOLLIN | EPOLLRDHUP | EPOLLET };
	int ep = epoll_create1(EPOLL_CLOEXEC);

	if (ep >= 0 && epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev)) {
		close(ep);
		return -1;
	}
	return ep;
}

static void close_edge_set(void *ep)
{
	close(*(int *)ep);
}

/*
 * plain_retry for a WAITALL peek (sock.c), which leaves the bytes it saw
 * queued: once some came, poll(2) for POLLIN said readable at once each
 * time and the wait for the rest spun (a blocking Unix socket's too,
 * whose recv(2) peeks what is queued without waiting; a blocking TCP
 * socket's waits for all itself). Its waits are for an edge instead, as
 * a task's are in the poll set: an edge-triggered epoll set of the
 * call's own says when more came or the read side ended. (Its first
 * wait ends at once if bytes are queued: the set found them readable
 * when fd joined it, which the attempt before it saw already.) poll(2)
 * waits on the set beside fd, asking fd for no event: so it holds fd's
 * file as the level wait does, and a weft_close meanwhile leaves the
 * socket to the call, whose next attempt says -EBADF; the set alone
 * would lose its registration with the file and wait on. A set that
 * cannot be made: the level wait.
 */
static long edge_retry(struct plain_call *c)
{
	int ep = edge_set(c->p[0].fd);
	long r;

	if (ep < 0)
		return plain_retry(c);
	c->p[0].events = 0;
	c->p[1] = (struct pollfd){ .fd = ep, .events = POLLIN };
	c->n = 2;
	/* A cancellation point in the wait (poll(2), the attempt's
	 * recv(2)) acted on: the set is closed all the same. */
	pthread_cleanup_push(close_edge_set, &ep);
	r = plain_retry(c);
	pthread_cleanup_pop(1);
	return r;
}

/*
 * A socket's SO_RCVTIMEO (SO_SNDTIMEO) bounds the call as it bounds the
 * blocking system call the call stands for: -EAGAIN once it ran out, the
 * whole call's wait counted (so a signal's early end of a poll does not
 * start it again), as recv(2) says. On a blocking fd the kernel's call
 * waited itself, and its EAGAIN is that timeout; on an O_NONBLOCK fd
 * (one a task used, or the caller made so) the wait is poll(2)'s, given
 * what is left of the timeout. Only the first EAGAIN asks: a call that
 * moves its bytes at once pays nothing, and a task never comes here.
 * (A blocking fd's EAGAIN without a timeout is a WAITALL call cut
 * short: it waits for the rest.)
 */
long weft__plain_try(int fd, enum weft__dir dir, int flags, weft__try_fn try,
		     void *arg)
{
	struct plain_call c = { .try = try,
				.arg = arg,
				.p = { { .fd = fd,
					 .events = plain_events(dir, flags) } },
				.n = 1 };
	int64_t timeout;
	long r;
	int fl;

	/* The first attempt may block (a blocking fd): as the kernel's
	 * call, it holds the file, not the number. The ones after a poll
	 * (a non-blocking fd) keep to the file the call began on. None
	 * while a weft_close waits for the calls on fd: -EBADF, as a task's
	 * call says (fdready.h). */
	if (!weft__fdready_pin(&c.pin, fd))
		return -EBADF;
	if ((r = try(fd, arg)) != -EAGAIN)
		return r;
	if (!(timeout = weft__sock_timeout(fd, dir)))
		; /* waits without end */
	else if ((fl = fcntl(fd, F_GETFL)) >= 0 && !(fl & O_NONBLOCK))
		return r; /* the blocking call's own timeout */
	else
		c.end = weft_now() + timeout;
	return waits_for_edge(dir, flags) ? edge_retry(&c) : plain_retry(&c);
}

long weft__io_ring_attempt(int fd, weft__prep_fn prep, void *arg)
{
	struct weft__attempt a;
	struct io_uring_sqe *sqe;
	int r;

	if ((r = weft__wait_check(weft__task_current())))
		return r;
	sqe = weft__attempt_begin(&a, fd);
	prep(sqe, fd, arg);
	sqe->msg_flags |= MSG_DONTWAIT;
	return weft__attempt_wait(&a, sqe);
}
