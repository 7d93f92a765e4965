/*
 * TCP: listen, accept, connect by name.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>
#include <liburing.h>

#include "weft/io.h"
#include "op.h"
#include "sock.h"

int weft_tcp_listen(const char *host, uint16_t port, int backlog,
		    unsigned flags)
{
	struct addrinfo *ai;
	int r;

	if (flags & ~WEFT_REUSEPORT)
		return -EINVAL;
	if ((r = weft__resolve(host, port, SOCK_STREAM, AI_PASSIVE, &ai)))
		return r;
	r = weft__sock_bind(ai, !host, backlog, flags);
	freeaddrinfo(ai);
	return r;
}

int weft_accept(int lfd, struct sockaddr *peer, socklen_t *peerlen)
{
	struct weft__io io;
	struct io_uring_sqe *sqe;
	int r;

	if (lfd < 0)
		return -EBADF;
	if (!peer != !peerlen)
		return -EINVAL;
	if (!weft__ring_current())
		return (int)weft__sys(accept4(lfd, peer, peerlen, SOCK_CLOEXEC));
	if (!(sqe = weft__io_begin(&io, lfd, &r)))
		return r;
	io_uring_prep_accept(sqe, lfd, peer, peerlen, SOCK_CLOEXEC);
	return weft__io_wait(&io, sqe);
}

int weft_connect(const char *host, uint16_t port)
{
	static const int one = 1;
	struct addrinfo *ai, *a;
	int fd, r;

	if (!host)
		return -EINVAL;
	if ((r = weft__resolve(host, port, SOCK_STREAM, 0, &ai)))
		return r;
	r = -EHOSTUNREACH;
	for (a = ai; a; a = a->ai_next) {
		fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC,
			    a->ai_protocol);
		if (fd < 0) {
			r = -errno;
			continue;
		}
		r = weft_connect_addr(fd, a->ai_addr, a->ai_addrlen);
		if (!r) {
			setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one,
				   sizeof(one));
			freeaddrinfo(ai);
			return fd;
		}
		close(fd);
		if (r == -ECANCELED || r == -ETIMEDOUT)
			break; /* the caller's own limit, not this address's */
	}
	freeaddrinfo(ai);
	return r;
}
