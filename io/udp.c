/*
 * UDP: bind, sendto, recvfrom (sendmsg / recvmsg, on either driver).
 */
#include <errno.h>
#include <netdb.h>
#include <sys/socket.h>

#include "weft/io.h"
#include "call.h"
#include "sock.h"

/* Some flags try once (sock.h). */
static long msg_call(int fd, enum weft__dir dir, weft__try_fn try,
		     struct msg_args *a, const char *call)
{
	if (weft__sock_tries_once(dir, a->flags))
		return weft__io_once(fd, try, a);
	return weft__io_try(fd, dir, a->flags, try, a, 0, call);
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

/* sendto(2) itself, for an address of length 0 (arg: struct msg_args of
 * one iovec). sendmsg's kernel side drops such a name and sends to the
 * peer; sendto(2) hands it to the protocol, which may refuse it (UDP says
 * EINVAL, a Unix socket sends to its peer). Rare, so no ring path. */
static long try_sendto_unnamed(int fd, void *arg)
{
	struct msg_args *a = arg;
	const struct iovec *iov = a->msg->msg_iov;

	return weft__sys(sendto(fd, iov->iov_base, iov->iov_len, a->flags,
				a->msg->msg_name, 0));
}

ssize_t weft_sendto(int fd, const void *buf, size_t len, int flags,
		    const struct sockaddr *to, socklen_t tolen)
{
	struct iovec iov = { .iov_base = (void *)buf, .iov_len = len };
	struct msghdr msg = { .msg_name = (void *)to,
			      .msg_namelen = to ? tolen : 0,
			      .msg_iov = &iov,
			      .msg_iovlen = 1 };

	int r = weft__sock_buf_check(fd, buf, len);

	if (r)
		return r;
	/* Checked here, not by the kernel: its ring path said -EFAULT. */
	if (to && tolen > sizeof(struct sockaddr_storage))
		return -EINVAL;
	return msg_call(fd, WEFT__WRITE,
			to && !tolen ? try_sendto_unnamed : weft__try_sendmsg,
			&(struct msg_args){ &msg, flags | MSG_NOSIGNAL, false },
			"sendto");
}

/* A receive that waits: its EAGAIN may be an end of file (sock.h). */
static long try_recvmsg_shut(int fd, void *arg)
{
	struct msg_args *a = arg;

	return weft__try_or_end(fd, weft__try_recvmsg, a, &a->polled, 0);
}

ssize_t weft_recvfrom(int fd, void *buf, size_t len, int flags,
		      struct sockaddr *from, socklen_t *fromlen)
{
	struct iovec iov = { .iov_base = buf, .iov_len = len };
	struct msghdr msg = { .msg_name = from,
			      .msg_namelen = from && fromlen ? *fromlen : 0,
			      .msg_iov = &iov,
			      .msg_iovlen = 1 };
	ssize_t r = weft__sock_buf_check(fd, buf, len);

	if (r)
		return r;
	/* As recvfrom(2): with no address, fromlen is not used (neither read
	 * nor written); an address with nowhere to say its length is the
	 * kernel's -EFAULT, told here before a datagram is taken, where the
	 * kernel's comes after it was consumed. */
	if (from && !fromlen)
		return -EFAULT;
	r = msg_call(fd, WEFT__READ,
		     weft__sock_tries_once(WEFT__READ, flags)
			     ? weft__try_recvmsg
			     : try_recvmsg_shut,
		     &(struct msg_args){ &msg, flags, false }, "recvfrom");
	if (r >= 0 && from)
		*fromlen = msg.msg_namelen;
	return r;
}
