/*
 * TCP: listen, accept, connect by name.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <string.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include "weft/io.h"
#include "call.h"
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

int weft_local_port(int fd)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);

	/* -EBADF while a weft_close waits for the calls under way on fd, as
	 * weft_shutdown says. */
	if (fd < 0 || weft__fdready_closing(fd))
		return -EBADF;
	if (getsockname(fd, (struct sockaddr *)&ss, &len))
		return -errno;
	if (ss.ss_family == AF_INET)
		return ntohs(((struct sockaddr_in *)&ss)->sin_port);
	if (ss.ss_family == AF_INET6)
		return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
	return -EAFNOSUPPORT;
}

/* fd was accepted and the peer's address is *peer: TCP gets TCP_NODELAY. */
static int accepted(int fd, const struct sockaddr_storage *peer)
{
	static const int one = 1;

	if (fd >= 0 &&
	    (peer->ss_family == AF_INET || peer->ss_family == AF_INET6))
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	return fd;
}

struct accept_args {
	struct sockaddr_storage *ss;
	socklen_t *len;
	bool polled; /* weft__try_or_end */
};

/* On a worker the new socket is non-blocking too, and forgets whatever an
 * earlier fd of its number left (see fdready.h). */
static long try_accept(int lfd, void *arg)
{
	struct accept_args *a = arg;
	int fd = accept4(lfd, (struct sockaddr *)a->ss, a->len,
			 weft__sock_type_flags());

	if (fd < 0)
		return -errno;
	weft__fdready_fresh(fd);
	return fd;
}

/* A Unix listener shut down for reading says EAGAIN to a non-blocking
 * accept once its queue is empty, and polls readable, where accept(2)
 * on a blocking one says EINVAL (as a TCP listener's does either way):
 * that EAGAIN is an end (sock.h), which must not be waited for. */
static long try_accept_or_shut(int lfd, void *arg)
{
	struct accept_args *a = arg;

	return weft__try_or_end(lfd, try_accept, a, &a->polled, -EINVAL);
}

int weft_accept(int lfd, struct sockaddr *peer, socklen_t *peerlen)
{
	struct sockaddr_storage ss;
	socklen_t sslen = sizeof(ss);
	struct accept_args a = { &ss, &sslen, false };
	int r;

	if (lfd < 0)
		return -EBADF;
	/* As accept(2): with no address, peerlen is not used; an address
	 * with nowhere to say its length is -EFAULT, told before a
	 * connection is taken (the kernel takes one, then drops it). */
	if (peer && !peerlen)
		return -EFAULT;
	/* Always learn the peer's family; copy the address out if asked. */
	ss.ss_family = AF_UNSPEC;
	r = (int)weft__io_try(lfd, WEFT__READ, 0, try_accept_or_shut, &a, 0,
			      "accept");
	if (r >= 0 && peer) {
		memcpy(peer, &ss, sslen < *peerlen ? sslen : *peerlen);
		*peerlen = sslen;
	}
	return accepted(r, &ss);
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
		fd = socket(a->ai_family,
			    a->ai_socktype | weft__sock_type_flags(),
			    a->ai_protocol);
		if (fd < 0) {
			r = -errno;
			continue;
		}
		weft__fdready_fresh(fd);
		r = weft_connect_addr(fd, a->ai_addr, a->ai_addrlen);
		if (!r) {
			setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one,
				   sizeof(one));
			freeaddrinfo(ai);
			return fd;
		}
		weft_close(fd);
		/* The caller's own limit ends it, not this address's: the
		 * kernel's ETIMEDOUT (SYNs unanswered) tries the next. */
		if ((r == -ECANCELED || r == -ETIMEDOUT) &&
		    weft__wait_check(weft__task_current()))
			break;
	}
	freeaddrinfo(ai);
	return r;
}
