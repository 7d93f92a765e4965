/* Socket helpers shared by tcp.c, udp.c and unix.c. */
#ifndef WEFT_IO_SOCK_H
#define WEFT_IO_SOCK_H

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <netdb.h>
#include <sys/socket.h>

#include "drivers/readiness/fdready.h"
#include "runtime/self.h"
#include "resolve.h"

/* The type flags of every socket weft makes: SOCK_CLOEXEC, and
 * SOCK_NONBLOCK while a runtime runs, as its calls wait for readiness. */
int weft__sock_type_flags(void);

/* The argument checks of a transfer of len bytes at buf on fd, in order:
 * a bad descriptor (-EBADF), a missing buffer with bytes to move
 * (-EFAULT). 0 if both pass. */
static inline int weft__sock_buf_check(int fd, const void *buf, size_t len)
{
	if (fd < 0)
		return -EBADF;
	return !buf && len ? -EFAULT : 0;
}

/* sendmsg / recvmsg with flags, for a try function (call.h). polled: for
 * weft__try_or_end. */
struct msg_args {
	struct msghdr *msg;
	int flags;
	bool polled;
};

/* Whether a call with these flags tries once: MSG_DONTWAIT, or a read of
 * the error queue. recvmsg(2) with MSG_ERRQUEUE never waits (an empty
 * queue says EAGAIN, whatever the data queue holds), so waiting for
 * readability and trying again would wait for what does not end it: a
 * task until its deadline, a plain thread spinning in poll(2) while a
 * datagram is queued. */
static inline bool weft__sock_tries_once(enum weft__dir dir, int flags)
{
	return (flags & MSG_DONTWAIT) ||
	       (dir == WEFT__READ && (flags & MSG_ERRQUEUE));
}

/* Whether fd's read side is shut down: poll(2) says POLLRDHUP. */
bool weft__sock_read_shut(int fd);

/* The same, in a task, once fd's record kept a hang-up (tick: what
 * weft__fdready_read_hup gave). If the poll finds no hang-up or error,
 * the record is cleared (weft__fdready_read_open): the event was an
 * error the receive read since (a connected UDP socket's ICMP port
 * unreachable), and each later EAGAIN would pay this poll again. */
bool weft__sock_read_shut_since(int fd, uint64_t tick);

/*
 * Whether the EAGAIN an attempt on fd just said may hide the end of its
 * read side, which the attempt then makes once more (weft__try_or_end). A
 * datagram or seqpacket socket after shutdown(2) SHUT_RD (the usual way
 * to wake a receiver) polls readable with nothing queued, and its
 * non-blocking receive says EAGAIN where the blocking one says 0, an end
 * of file; a Unix listener's non-blocking accept says EAGAIN where the
 * blocking one says EINVAL. Either way a task would wait for an edge that
 * never comes, and a plain thread spin in poll(2). (A Unix seqpacket
 * socket says 0 itself; a stream's receive always does, and a TCP
 * listener's accept EINVAL.)
 *
 * The socket's type is not known here, and asking would cost a stream
 * socket's receive a system call; so the poll(2) is made only where a
 * stream rarely goes. In a task, only once the fd's poll-set registration
 * saw its read side end or fail (weft__fdready_read_hup: two loads), until
 * such a poll finds neither (weft__sock_read_shut_since). On a plain
 * thread, which has no such record, only when an EAGAIN follows one that
 * was already waited out (*polled: the call's first EAGAIN sets it), i.e.
 * poll(2) said readable and the retry found nothing.
 *
 * The poll(2) sees the socket after the attempt: bytes and their end may
 * have come between the two (a stream's FIN right behind its data, which
 * sets the registration's hang-up too). So once the read side is found
 * shut, the attempt is made again, and only its EAGAIN, with the end
 * already in, is an end (test_io_tcp end_behind_bytes_not_lost: "abc"
 * was lost for a 0).
 */
static inline bool weft__sock_eagain_may_end(int fd, bool *polled)
{
	uint64_t tick;

	if (weft__driver_current())
		return weft__fdready_read_hup(fd, &tick) &&
		       weft__sock_read_shut_since(fd, tick);
	if (!*polled) {
		*polled = true;
		return false;
	}
	return weft__sock_read_shut(fd);
}

/* One attempt of a call that waits to read (a receive, not
 * weft__sock_tries_once, or an accept): try's result, or end (a
 * receive's 0, an accept's -EINVAL) for the end its EAGAIN hid (see
 * above). */
static inline long weft__try_or_end(int fd, weft__try_fn try, void *arg,
				    bool *polled, long end)
{
	long r = try(fd, arg);

	if (r != -EAGAIN || !weft__sock_eagain_may_end(fd, polled))
		return r;
	r = try(fd, arg);
	return r == -EAGAIN ? end : r;
}

/* One attempt of sendmsg / recvmsg (arg: struct msg_args): on the
 * worker's ring under io_uring, else the system call. Returns the result
 * or -errno. */
long weft__try_sendmsg(int fd, void *arg);
long weft__try_recvmsg(int fd, void *arg);

/* Makes a socket for the first address of the list that binds (SO_REUSEADDR
 * for streams, SO_REUSEPORT if flags ask, dual-stack when wildcard), and
 * listens on it if it is a stream. The wildcard's IPv6 socket, once made,
 * ends the list: it is every address. Returns the fd or -errno. */
int weft__sock_bind(const struct addrinfo *ai, bool wildcard, int backlog,
		    unsigned flags);

#endif
