/*
 * Calls common to every socket: connect an fd, recv / send, readv / writev,
 * shutdown, close; and the bind-a-resolved-address helper TCP and UDP share.
 *
 * Every call checks the arguments it can (negative fd, NULL buffer with a
 * non-zero length) before touching the ring, so bad input costs no
 * submission, and lengths beyond what one io_uring request carries are
 * clamped (the call then returns a short count, as read(2) does past
 * MAX_RW_COUNT).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>
#include <liburing.h>

#include "weft/io.h"
#include "memcheck.h"
#include "op.h"
#include "sock.h"

/* The most one request moves: the kernel's MAX_RW_COUNT. */
#define IO_MAX_LEN 0x7ffff000u

static unsigned clamp_len(size_t len)
{
	return len > IO_MAX_LEN ? IO_MAX_LEN : (unsigned)len;
}

/* The argument checks every transfer makes, in order: a bad descriptor,
 * nothing to transfer (success, at once), a missing buffer. Returns
 * -errno, 0 when the call is done (having moved nothing), 1 to go on. */
static int buf_args(int fd, const void *buf, size_t len)
{
	if (fd < 0)
		return -EBADF;
	if (!len)
		return 0;
	return buf ? 1 : -EFAULT;
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

int weft_connect_addr(int fd, const struct sockaddr *addr, socklen_t len)
{
	struct weft__io io;
	struct io_uring_sqe *sqe;
	int r;

	if (fd < 0)
		return -EBADF;
	if (!addr)
		return -EFAULT;
	if (!weft__ring_current())
		return (int)weft__sys(connect(fd, addr, len));
	if (!(sqe = weft__io_begin(&io, fd, &r)))
		return r;
	io_uring_prep_connect(sqe, fd, addr, len);
	return weft__io_wait(&io, sqe);
}

ssize_t weft_recv(int fd, void *buf, size_t len, int flags)
{
	struct weft__io io;
	struct io_uring_sqe *sqe;
	int r;

	if ((r = buf_args(fd, buf, len)) <= 0)
		return r;
	if (!weft__ring_current())
		return weft__sys(recv(fd, buf, clamp_len(len), flags));
	if (!(sqe = weft__io_begin(&io, fd, &r)))
		return r;
	io_uring_prep_recv(sqe, fd, buf, clamp_len(len), flags);
	return weft__filled(buf, weft__io_wait(&io, sqe));
}

ssize_t weft_send(int fd, const void *buf, size_t len, int flags)
{
	struct weft__io io;
	struct io_uring_sqe *sqe;
	int r;

	if ((r = buf_args(fd, buf, len)) <= 0)
		return r;
	flags |= MSG_NOSIGNAL;
	if (!weft__ring_current())
		return weft__sys(send(fd, buf, clamp_len(len), flags));
	if (!(sqe = weft__io_begin(&io, fd, &r)))
		return r;
	io_uring_prep_send(sqe, fd, buf, clamp_len(len), flags);
	return weft__io_wait(&io, sqe);
}

ssize_t weft_send_all(int fd, const void *buf, size_t len, int flags,
		      size_t *sent)
{
	size_t done = 0;
	ssize_t r = 0;

	/* MSG_WAITALL: io_uring keeps sending a stream as room frees up
	 * without waking us, and still reports a partial count if stopped. */
	while (done < len) {
		r = weft_send(fd, (const char *)buf + done, len - done,
			      flags | MSG_WAITALL);
		if (r <= 0) {
			if (r == 0) /* a stream send never sends nothing */
				r = -EIO;
			break;
		}
		done += (size_t)r;
	}
	if (sent)
		*sent = done;
	return done == len ? (ssize_t)len : r;
}

ssize_t weft_readv(int fd, const struct iovec *iov, int iovcnt)
{
	struct weft__io io;
	struct io_uring_sqe *sqe;
	int r;

	if ((r = iov_args(fd, iov, iovcnt)) <= 0)
		return r;
	if (!weft__ring_current())
		return weft__sys(readv(fd, iov, iovcnt));
	if (!(sqe = weft__io_begin(&io, fd, &r)))
		return r;
	io_uring_prep_readv(sqe, fd, iov, (unsigned)iovcnt, (__u64)-1);
	return weft__filled_iov(iov, iovcnt, weft__io_wait(&io, sqe));
}

/* writev on a socket goes through sendmsg, for MSG_NOSIGNAL: a write to a
 * reset connection must return -EPIPE, not kill the process with SIGPIPE. */
ssize_t weft_writev(int fd, const struct iovec *iov, int iovcnt)
{
	struct msghdr msg = { .msg_iov = (struct iovec *)iov,
			      .msg_iovlen = (size_t)iovcnt };
	struct weft__io io;
	struct io_uring_sqe *sqe;
	int r;

	if ((r = iov_args(fd, iov, iovcnt)) <= 0)
		return r;
	if (!weft__ring_current()) {
		r = (int)weft__sys(sendmsg(fd, &msg, MSG_NOSIGNAL));
		if (r == -ENOTSOCK)
			r = (int)weft__sys(writev(fd, iov, iovcnt));
		return r;
	}
	if (!(sqe = weft__io_begin(&io, fd, &r)))
		return r;
	io_uring_prep_sendmsg(sqe, fd, &msg, MSG_NOSIGNAL);
	r = weft__io_wait(&io, sqe);
	if (r != -ENOTSOCK)
		return r;
	if (!(sqe = weft__io_begin(&io, fd, &r)))
		return r;
	io_uring_prep_writev(sqe, fd, iov, (unsigned)iovcnt, (__u64)-1);
	return weft__io_wait(&io, sqe);
}

/* shutdown(2) never blocks, so it needs no ring round trip. */
int weft_shutdown(int fd, int how)
{
	if (fd < 0)
		return -EBADF;
	return (int)weft__sys(shutdown(fd, how));
}

int weft_close(int fd)
{
	if (fd < 0)
		return -EBADF;
	return weft__fdtable_close(fd);
}

int weft__sock_bind(const struct addrinfo *ai, bool wildcard, int backlog,
		    unsigned flags)
{
	static const int one = 1, zero = 0;
	int fd, r = -EADDRNOTAVAIL;

	for (; ai; ai = ai->ai_next) {
		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC,
			    ai->ai_protocol);
		if (fd < 0) {
			r = -errno;
			continue;
		}
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
	}
	return r;
}
