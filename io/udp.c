/*
 * UDP: bind, sendto, recvfrom (sendmsg / recvmsg, on either driver).
 */
#include <errno.h>
#include <netdb.h>
#include <sys/socket.h>
#include <liburing.h>

#include "weft/io.h"
#include "call.h"
#include "runtime/wait.h"
#include "memcheck.h"
#include "sock.h"

struct msg_args {
	struct msghdr *msg;
	int flags;
};

static long try_sendmsg(int fd, void *arg)
{
	struct msg_args *a = arg;

	return weft__sys(sendmsg(fd, a->msg, a->flags));
}

static long try_recvmsg(int fd, void *arg)
{
	struct msg_args *a = arg;

	return weft__sys(recvmsg(fd, a->msg, a->flags));
}

/* The plain and epoll paths: MSG_DONTWAIT tries once. */
static long msg_call(int fd, enum weft__dir dir, weft__try_fn try,
		     struct msg_args *a, const char *call)
{
	if (a->flags & MSG_DONTWAIT)
		return try(fd, a);
	return weft__io_try(fd, dir, try, a, 0, call);
}

int weft_udp_bind(const char *host, uint16_t port)
{
	struct addrinfo *ai;
	int r;

	if ((r = weft__resolve(host, port, SOCK_DGRAM, AI_PASSIVE, &ai)))
		return r;
	r = weft__sock_bind(ai, !host, 0, 0);
	freeaddrinfo(ai);
	return r;
}

ssize_t weft_sendto(int fd, const void *buf, size_t len, int flags,
		    const struct sockaddr *to, socklen_t tolen)
{
	struct iovec iov = { .iov_base = (void *)buf, .iov_len = len };
	struct msghdr msg = { .msg_name = (void *)to,
			      .msg_namelen = to ? tolen : 0,
			      .msg_iov = &iov,
			      .msg_iovlen = 1 };
	struct weft__io io;
	struct io_uring_sqe *sqe;
	int r;

	if (fd < 0)
		return -EBADF;
	if (!buf && len)
		return -EFAULT;
	/* Checked here, not by the kernel: its ring path said -EFAULT. */
	if (to && tolen > sizeof(struct sockaddr_storage))
		return -EINVAL;
	flags |= MSG_NOSIGNAL;
	if (weft__io_path() != WEFT__RING)
		return msg_call(fd, WEFT__WRITE, try_sendmsg,
				&(struct msg_args){ &msg, flags }, "sendto");
	/* Named before the wait is published (wait.h): "sendto", not
	 * the opcode's "sendmsg". */
	bool named = weft__doing_begin("sendto");
	if ((sqe = weft__io_begin(&io, fd, &r))) {
		io_uring_prep_sendmsg(sqe, fd, &msg, (unsigned)flags);
		r = weft__io_wait(&io, sqe);
	}
	weft__doing_end(named);
	return r;
}

ssize_t weft_recvfrom(int fd, void *buf, size_t len, int flags,
		      struct sockaddr *from, socklen_t *fromlen)
{
	struct iovec iov = { .iov_base = buf, .iov_len = len };
	struct msghdr msg = { .msg_name = from,
			      .msg_namelen = from && fromlen ? *fromlen : 0,
			      .msg_iov = &iov,
			      .msg_iovlen = 1 };
	struct weft__io io;
	struct io_uring_sqe *sqe;
	ssize_t r;
	int e;

	if (fd < 0)
		return -EBADF;
	if (!buf && len)
		return -EFAULT;
	if (!from != !fromlen)
		return -EINVAL;
	if (weft__io_path() != WEFT__RING) {
		r = msg_call(fd, WEFT__READ, try_recvmsg,
			     &(struct msg_args){ &msg, flags }, "recvfrom");
	} else {
		bool named = weft__doing_begin("recvfrom"); /* as sendto */
		sqe = weft__io_begin(&io, fd, &e);
		if (sqe) {
			io_uring_prep_recvmsg(sqe, fd, &msg, (unsigned)flags);
			r = weft__filled(buf, weft__io_wait(&io, sqe));
		}
		weft__doing_end(named);
		if (!sqe)
			return e;
		if (r >= 0 && from)
			WEFT_MARK_FILLED(from, msg.msg_namelen);
	}
	if (r >= 0 && fromlen)
		*fromlen = msg.msg_namelen;
	return r;
}
