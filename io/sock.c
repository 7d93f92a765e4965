/*
 * Calls common to every socket: connect an fd, recv / send, readv / writev,
 * shutdown, close; and the bind-a-resolved-address helper TCP and UDP share.
 *
 * Every call checks the arguments it can (negative fd, NULL buffer with a
 * non-zero length) before touching the driver, so bad input costs no
 * submission, and lengths beyond what one request carries are clamped (the
 * call then returns a short count, as read(2) does past MAX_RW_COUNT).
 *
 * Each call has a try function: one non-blocking attempt, the system call
 * (call.h). A caller's MSG_DONTWAIT asks for one attempt: the call then
 * returns -EAGAIN instead of waiting (and, as every call in a cancelled
 * task or past its deadline, -ECANCELED / -ETIMEDOUT before it tries).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <liburing.h>

#include "weft/io.h"
#include "call.h"
#include "drivers/io_uring/fdtable.h"
#include "memcheck.h"
#include "sock.h"

static unsigned clamp_len(size_t len)
{
	return len > IO_MAX_LEN ? IO_MAX_LEN : (unsigned)len;
}

/* weft__sock_buf_check, and nothing to transfer is success at once.
 * Returns -errno, 0 when the call is done (having moved nothing), 1 to go
 * on. */
static int buf_args(int fd, const void *buf, size_t len)
{
	int r = weft__sock_buf_check(fd, buf, len);

	return r ? r : len != 0;
}

static int iov_args(int fd, const struct iovec *iov, int iovcnt)
{
	if (fd < 0)
		return -EBADF;
	if (iovcnt < 0 || iovcnt > IOV_MAX)
		return -EINVAL;
	if (!iovcnt)
		return 0;
	return iov ? 1 : -EFAULT;
}

/* The bytes iov asks to move, or 0 if the kernel would cut it short (the
 * caller checked iov_args). */
static size_t iov_len(const struct iovec *iov, int iovcnt)
{
	size_t n = 0;

	for (int i = 0; i < iovcnt; i++) {
		if (iov[i].iov_len > IO_MAX_LEN - n)
			return 0;
		n += iov[i].iov_len;
	}
	return n;
}

struct connect_args {
	const struct sockaddr *addr;
	socklen_t len;
	bool started;
	bool backlog_full; /* a Unix listener's: try again after a pause */
};

/* A non-blocking connect: start it, then, once the socket is writable,
 * read its outcome from SO_ERROR. A Unix socket whose listener's backlog is
 * full says EAGAIN, and nothing tells when it has room (the unconnected
 * socket is writable already, so waiting for that would wait for good):
 * the attempt ends, for weft_connect_addr to pause and try again. */
static long try_connect(int fd, void *arg)
{
	struct connect_args *a = arg;
	int err = 0, n;
	socklen_t len = sizeof(err);
	short revents;

	if (!a->started) {
		if (!connect(fd, a->addr, a->len))
			return 0;
		if (errno == EAGAIN) {
			a->backlog_full = true;
			return -EBUSY; /* any but -EAGAIN, which would wait */
		}
		if (errno != EINPROGRESS)
			return -errno;
		a->started = true;
	}
	/* SO_ERROR of a connect still under way is 0: ask it only once the
	 * socket is writable. */
	if ((n = weft__poll_now(fd, POLLOUT, &revents)) <= 0)
		return n ? n : -EAGAIN;
	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len))
		return -errno;
	return -err;
}

/* A pause before a connect tries again: a task's sleep (cancellation and
 * deadlines apply), a plain thread's nanosleep. */
static int pause_for(int64_t ns)
{
	struct timespec ts = { 0, (long)ns };

	if (weft_current().task)
		return weft_sleep(ns);
	nanosleep(&ts, NULL);
	return 0;
}

/* Whether fd is a blocking socket (fcntl(2) failing: not one). */
static bool blocking(int fd)
{
	int fl = fcntl(fd, F_GETFL);

	return fl >= 0 && !(fl & O_NONBLOCK);
}

/* While a Unix listener's backlog is full, tries again after a pause that
 * doubles up to 10 ms, for as long as the caller's deadline (a plain
 * thread's: the socket's SO_SNDTIMEO) allows (Go and Tokio return EAGAIN
 * to the caller instead). */
int weft_connect_addr(int fd, const struct sockaddr *addr, socklen_t len)
{
	struct connect_args a = { .addr = addr, .len = len };
	int64_t pause = 100 * WEFT_USEC, end = 0;
	int r;

	if (fd < 0)
		return -EBADF;
	if (!addr)
		return -EFAULT;
	for (;;) {
		a.backlog_full = false;
		r = (int)weft__io_try(fd, WEFT__WRITE, 0, try_connect, &a, 0,
				      "connect");
		/* A blocking socket's SO_SNDTIMEO ran out while it connects
		 * (the plain path returns that EAGAIN: call.c): connect(2)
		 * says EINPROGRESS, the connect going on. */
		if (r == -EAGAIN && a.started)
			return -EINPROGRESS;
		if (!a.backlog_full)
			return r;
		/* A blocking socket's connect(2) waits for room itself, and
		 * says EAGAIN only once its SO_SNDTIMEO ran out (a plain
		 * thread's: a task's socket is non-blocking): that is the
		 * caller's own limit, and connect(2)'s answer, as the
		 * EINPROGRESS above. Trying again would wait the timeout
		 * out again, for as long as the listener does not accept. */
		if (blocking(fd))
			return -EAGAIN;
		/* A plain thread's non-blocking socket: its SO_SNDTIMEO
		 * bounds the pauses as it bounds connect(2)'s wait for room,
		 * counted from the first full backlog (a task has deadlines
		 * instead). end 0: not yet asked; INT64_MAX: no timeout. */
		if (!weft__driver_current()) {
			int64_t t, now = weft_now();

			if (!end)
				end = (t = weft__sock_timeout(fd, WEFT__WRITE))
					      ? now + t
					      : INT64_MAX;
			if (now >= end)
				return -EAGAIN;
			if (pause > end - now)
				pause = end - now;
		}
		if ((r = pause_for(pause)))
			return r;
		if (pause < 10 * WEFT_MSEC)
			pause *= 2;
	}
}

struct buf_args {
	void *buf;
	size_t len;
	int flags;
	size_t done; /* MSG_WAITALL: received so far */
	int type;    /* MSG_WAITALL: the socket's SO_TYPE, once learnt */
	bool polled; /* weft__try_or_end */
};

/* Where a receive's attempt starts in buf: after what a WAITALL receive
 * took so far; at the start for a peek, which took nothing, so that each
 * attempt sees the queue from its start again and peeks it all anew. */
static size_t recv_from(const struct buf_args *a)
{
	return a->flags & MSG_PEEK ? 0 : a->done;
}

static void prep_recv(struct io_uring_sqe *sqe, int fd, void *arg)
{
	struct buf_args *a = arg;
	size_t from = recv_from(a);

	io_uring_prep_recv(sqe, fd, (char *)a->buf + from, a->len - from,
			   a->flags & ~MSG_WAITALL);
}

static void prep_send(struct io_uring_sqe *sqe, int fd, void *arg)
{
	struct buf_args *a = arg;

	io_uring_prep_send(sqe, fd, (char *)a->buf + a->done,
			   clamp_len(a->len - a->done),
			   a->flags & ~MSG_WAITALL);
}

/* Whether fd is a byte stream, which a MSG_WAITALL receive fills. On a
 * datagram or seqpacket socket the flag has no effect (recv(2)): one
 * receive is one message, and the next must not be glued to it. Asked of
 * the kernel only when a WAITALL receive comes back short, then kept. */
static bool waitall_fills(int fd, struct buf_args *a)
{
	int type = SOCK_STREAM;
	socklen_t len = sizeof(type);

	if (!a->type)
		a->type = getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len)
				  ? SOCK_STREAM
				  : type;
	return a->type == SOCK_STREAM;
}

/* An attempt ignores MSG_WAITALL (a non-blocking recv(2) does; on the ring
 * it is taken out): receive the rest as it comes, and report what came if
 * the call stops early.
 *
 * A stream's receive may stop short with bytes still queued, whose edge
 * was harvested already (TCP at an urgent mark, a Unix socket with
 * SO_PASSCRED where the writer changes: fdready.c): in a task, only an
 * EAGAIN says the socket is drained, so the attempt receives again before
 * it waits. Not a peek, which would see the same bytes again. A plain
 * thread's poll(2) is level-triggered: it finds those bytes. */
static inline long recv_rest(int fd, struct buf_args *a, size_t from)
{
	size_t room = a->len - from;
	char *at = (char *)a->buf + from;
	/* With MSG_TRUNC r may pass room: memcheck learns of room at most. */
	return weft__sock_on_ring()
		       ? weft__filled_within(at, room,
					     weft__io_ring_attempt(fd,
								   prep_recv,
								   a))
		       : weft__sock_recv(fd, at, room, a->flags);
}

static long recv_attempt(int fd, void *arg)
{
	struct buf_args *a = arg;

	return recv_rest(fd, a, recv_from(a));
}

static inline long try_recv(int fd, void *arg)
{
	struct buf_args *a = arg;
	bool ended = false; /* a WAITALL peek found the read side ended */
	for (;;) {
		size_t from = recv_from(a);
		/* A receive that waits: its EAGAIN may be an end of file
		 * (sock.h). MSG_DONTWAIT says EAGAIN, as recv(2). */
		long r = weft__sock_tries_once(WEFT__READ, a->flags)
				 ? recv_rest(fd, a, from)
				 : weft__try_or_end(fd, recv_attempt, a,
						    &a->polled, 0);
		if (!(a->flags & MSG_WAITALL))
			return r;
		if (r > 0 && (a->done = from + (size_t)r) < a->len &&
		    waitall_fills(fd, a)) {
			if (!(a->flags & MSG_PEEK) && weft__driver_current())
				continue; /* until EAGAIN: see above */
			/* A peek sees the same bytes at each attempt, never
			 * the end behind them: once the read side ended (the
			 * peer's FIN or reset), what it peeks is all, as
			 * recv(2) returns it. Peeked once more after the end
			 * is seen, which takes bytes that came with it. */
			if (!(a->flags & MSG_PEEK))
				return -EAGAIN; /* wait for the rest */
			if (ended)
				return (long)a->done;
			if (!weft__sock_read_shut(fd))
				return -EAGAIN;
			ended = true;
			continue;
		}
		if (r == -EAGAIN || !a->done)
			return r;
		return (long)a->done;
	}
}

static inline long try_send(int fd, void *arg)
{
	struct buf_args *a = arg;
	long r = weft__sock_on_ring()
			 ? weft__io_ring_attempt(fd, prep_send, a)
			 : weft__sock_send(fd, (char *)a->buf + a->done,
					   clamp_len(a->len - a->done),
					   a->flags & ~MSG_WAITALL);

	if (!(a->flags & MSG_WAITALL))
		return r;
	if (r == 0) /* a stream send never sends nothing */
		return -EIO;
	if (r > 0 && (a->done += (size_t)r) < a->len)
		return -EAGAIN; /* full: wait for room for the rest */
	return r < 0 ? r : (long)a->done;
}

/* A call with flags: some try once (sock.h). */
static long try_or_wait(int fd, enum weft__dir dir, weft__try_fn try,
			struct buf_args *a, const char *call)
{
	/* A peek consumes nothing, a WAITALL recv loops in try_recv, and an
	 * out-of-band or error-queue read takes from a queue of its own:
	 * none says the socket's data was drained when it returns short (an
	 * OOB byte taken as such left the next plain recv waiting for an
	 * edge that had come, beside queued data). */
	bool moves_all =
		dir == WEFT__WRITE ||
		!(a->flags & (MSG_PEEK | MSG_WAITALL | MSG_OOB | MSG_ERRQUEUE));

	if (weft__sock_tries_once(dir, a->flags))
		return weft__io_once(fd, try, a);
	return weft__io_try(fd, dir, a->flags, try, a, moves_all ? a->len : 0,
			    call);
}

ssize_t weft_recv(int fd, void *buf, size_t len, int flags)
{
	struct buf_args a = { buf, clamp_len(len), flags, 0, 0, false };
	int r;

	if ((r = buf_args(fd, buf, len)) <= 0)
		return r;
	r = (int)try_or_wait(fd, WEFT__READ, try_recv, &a, "recv");
	/* Stopped (cancelled, timed out) after part of a WAITALL: those
	 * bytes are the caller's. */
	return r < 0 && a.done ? (ssize_t)a.done : r;
}

ssize_t weft_send(int fd, const void *buf, size_t len, int flags)
{
	struct buf_args a = { .buf = (void *)buf,
			      .len = clamp_len(len),
			      .flags = (flags & ~MSG_WAITALL) | MSG_NOSIGNAL };

	/* Nothing to send still goes to the kernel, as send(2) does: on a
	 * datagram socket it is a datagram of its own (a stream's says 0). */
	int r = weft__sock_buf_check(fd, buf, len);

	return r ? r : try_or_wait(fd, WEFT__WRITE, try_send, &a, "send");
}

/* One call, as a blocking send(2) of it all is: MSG_WAITALL (which a
 * send does not take) tells try_send to go on until len is sent. So a
 * weft_close of fd meanwhile fails it with -EBADF rather than sending the
 * rest to the file that took fd's number (fdready.h). */
ssize_t weft_send_all(int fd, const void *buf, size_t len, int flags,
		      size_t *sent)
{
	struct buf_args a = { .buf = (void *)buf,
			      .len = len,
			      .flags = flags | MSG_WAITALL | MSG_NOSIGNAL };
	long r = buf_args(fd, buf, len);

	if (r > 0)
		r = try_or_wait(fd, WEFT__WRITE, try_send, &a, "send");
	if (sent)
		*sent = a.done;
	/* r < 0 only with part of len unsent, or a bad argument (a bad fd
	 * with len 0 too, as weft_send says). */
	return r < 0 ? r : (ssize_t)len;
}

static void prep_sendmsg(struct io_uring_sqe *sqe, int fd, void *arg)
{
	struct msg_args *a = arg;

	io_uring_prep_sendmsg(sqe, fd, a->msg, (unsigned)a->flags);
}

static void prep_recvmsg(struct io_uring_sqe *sqe, int fd, void *arg)
{
	struct msg_args *a = arg;

	io_uring_prep_recvmsg(sqe, fd, a->msg, (unsigned)a->flags);
}

long weft__try_sendmsg(int fd, void *arg)
{
	struct msg_args *a = arg;

	if (weft__sock_on_ring())
		return weft__io_ring_attempt(fd, prep_sendmsg, a);
	return weft__sys(sendmsg(fd, a->msg, a->flags));
}

/* recvmsg as an attempt on the ring (weft__sock_on_ring() said so). */
static long ring_recvmsg(int fd, struct msg_args *a)
{
	socklen_t room = a->msg->msg_namelen;
	long r = weft__io_ring_attempt(fd, prep_recvmsg, a);

	/* The kernel writes back the address's full length, also when it
	 * cut the address to fit: mark what it could fill, no more. */
	if (r >= 0 && a->msg->msg_name)
		WEFT_MARK_FILLED(a->msg->msg_name, a->msg->msg_namelen < room
							   ? a->msg->msg_namelen
							   : room);
	return weft__filled_iov(a->msg->msg_iov, (int)a->msg->msg_iovlen, r);
}

/* poll(2)'s revents of fd for POLLRDHUP (with the POLLHUP and POLLERR
 * it always reports), or POLLNVAL if the poll failed. */
static short read_side(int fd)
{
	short revents;

	return weft__poll_now(fd, POLLRDHUP, &revents) < 0 ? POLLNVAL : revents;
}

bool weft__sock_read_shut(int fd)
{
	return read_side(fd) & POLLRDHUP;
}

bool weft__sock_read_shut_since(int fd, uint64_t tick)
{
	short ev = read_side(fd);

	if (!(ev & (POLLRDHUP | POLLHUP | POLLERR | POLLNVAL)))
		weft__fdready_read_open(fd, tick);
	return ev & POLLRDHUP;
}

long weft__try_recvmsg(int fd, void *arg)
{
	struct msg_args *a = arg;

	if (weft__sock_on_ring())
		return ring_recvmsg(fd, a);
	return weft__sys(recvmsg(fd, a->msg, a->flags));
}

struct iov_args {
	const struct iovec *iov;
	int iovcnt;
	bool polled; /* weft__try_or_end */
	bool empty;  /* the iovecs hold no byte */
};

/* Whether iov holds no byte (the caller checked iov_args). */
static bool iov_empty(const struct iovec *iov, int iovcnt)
{
	for (int i = 0; i < iovcnt; i++)
		if (iov[i].iov_len)
			return false;
	return true;
}

/* On the ring a readv is a recvmsg, which may be attempted without
 * waiting in the kernel; a descriptor that is no socket (a pipe) takes
 * readv(2). So does a readv of no bytes: readv(2) says 0 at once and
 * takes nothing, where a recvmsg takes a datagram (saying 0), and on an
 * empty socket says EAGAIN and the call waits for a byte. */
static long readv_attempt(int fd, void *arg)
{
	struct iov_args *a = arg;
	struct msghdr msg = { .msg_iov = (struct iovec *)a->iov,
			      .msg_iovlen = (size_t)a->iovcnt };
	long r;

	if (a->empty || !weft__sock_on_ring() ||
	    (r = ring_recvmsg(fd, &(struct msg_args){ &msg, 0, false })) ==
		    -ENOTSOCK)
		r = weft__sys(readv(fd, a->iov, a->iovcnt));
	return r;
}

/* A readv always waits: its EAGAIN may be an end of file (sock.h; a
 * pipe's never is: its read says 0 once the writer is gone). */
static long try_readv(int fd, void *arg)
{
	struct iov_args *a = arg;

	return weft__try_or_end(fd, readv_attempt, a, &a->polled, 0);
}

/* writev on a socket goes through sendmsg, for MSG_NOSIGNAL: a write to a
 * reset connection must return -EPIPE, not kill the process with SIGPIPE.
 * Not a writev of no bytes: writev(2) skips the write then (0, or the
 * fd's error), where a sendmsg sends a datagram, an empty one. */
static long try_writev(int fd, void *arg)
{
	struct iov_args *a = arg;
	struct msghdr msg = { .msg_iov = (struct iovec *)a->iov,
			      .msg_iovlen = (size_t)a->iovcnt };
	long r;

	if (a->empty)
		return weft__sys(writev(fd, a->iov, a->iovcnt));
	r = weft__try_sendmsg(fd,
			      &(struct msg_args){ &msg, MSG_NOSIGNAL, false });
	if (r == -ENOTSOCK)
		r = weft__sys(writev(fd, a->iov, a->iovcnt));
	return r;
}

ssize_t weft_readv(int fd, const struct iovec *iov, int iovcnt)
{
	struct iov_args a = { iov, iovcnt, false, false };
	int r;

	if ((r = iov_args(fd, iov, iovcnt)) <= 0)
		return r;
	a.empty = iov_empty(iov, iovcnt);
	return weft__io_try(fd, WEFT__READ, 0, try_readv, &a,
			    iov_len(iov, iovcnt), "readv");
}

ssize_t weft_writev(int fd, const struct iovec *iov, int iovcnt)
{
	struct iov_args a = { iov, iovcnt, false, false };
	int r;

	if ((r = iov_args(fd, iov, iovcnt)) <= 0)
		return r;
	a.empty = iov_empty(iov, iovcnt);
	return weft__io_try(fd, WEFT__WRITE, 0, try_writev, &a,
			    iov_len(iov, iovcnt), "writev");
}

/* shutdown(2) never blocks, so it needs no driver round trip. While a
 * weft_close waits for the calls under way on fd, the number still holds
 * the closed socket: -EBADF, as every call on it says (fdready.h), not a
 * shutdown of a socket weft closed for the caller. */
int weft_shutdown(int fd, int how)
{
	if (fd < 0 || weft__fdready_closing(fd))
		return -EBADF;
	return (int)weft__sys(shutdown(fd, how));
}

int weft_close(int fd)
{
	if (fd < 0)
		return -EBADF;
	if (weft__driver_kind() == WEFT_IO_EPOLL)
		return weft__fdready_close(fd);
	/* The kernel looks an SQE's fd up when it is submitted. One of this
	 * worker's tasks may have an operation on fd still waiting for the
	 * round (an attempt, or an op whose abort would be queued behind
	 * it): submitted after the close, it would reach whatever file next
	 * takes fd's number. Submitted now, it reaches fd's file, which it
	 * keeps until it completes; if the kernel refuses the submit, this
	 * worker's attempts on fd fail with -EBADF instead (unsent.h).
	 * Another worker's attempts on fd are waited for (unsent.h); its ops
	 * are withdrawn (op.h). */
	struct weft__ring *r = weft__ring_current();

	if (r)
		weft__ring_submit(r);
	weft__unsent_wait(fd, r ? r->unsent : NULL);
	return weft__fdtable_close(fd);
}

int weft__sock_type_flags(void)
{
	return SOCK_CLOEXEC |
	       (weft__driver_kind() != WEFT_IO_AUTO ? SOCK_NONBLOCK : 0);
}

int weft__sock_bind(const struct addrinfo *ai, bool wildcard, int backlog,
		    unsigned flags)
{
	static const int one = 1, zero = 0;
	int fd, r = -EADDRNOTAVAIL;

	for (; ai; ai = ai->ai_next) {
		fd = socket(ai->ai_family,
			    ai->ai_socktype | weft__sock_type_flags(),
			    ai->ai_protocol);
		if (fd < 0) {
			r = -errno;
			continue;
		}
		weft__fdready_fresh(fd);
		if (ai->ai_socktype == SOCK_STREAM &&
		    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)))
			goto fail;
		if ((flags & WEFT_REUSEPORT) &&
		    setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)))
			goto fail;
		/* The wildcard "::" also takes IPv4, as Go and Tokio do. */
		if (wildcard && ai->ai_family == AF_INET6)
			setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero,
				   sizeof(zero));
		if (bind(fd, ai->ai_addr, ai->ai_addrlen))
			goto fail;
		if (ai->ai_socktype == SOCK_STREAM &&
		    listen(fd, backlog > 0 ? backlog : SOMAXCONN))
			goto fail;
		return fd;
	fail:
		r = -errno;
		close(fd);
		/* The wildcard's dual-stack socket is every address: a port
		 * another socket holds on either family (EADDRINUSE) is the
		 * answer, as Go's Listen gives it, else the port would be
		 * this fd's on IPv4 only. 0.0.0.0 is for a host where IPv6
		 * itself fails (no socket(2) above, or no address to bind). */
		if (wildcard && ai->ai_family == AF_INET6 && r == -EADDRINUSE)
			break;
	}
	return r;
}
