/* Socket helpers shared by tcp.c, udp.c and unix.c. */
#ifndef WEFT_IO_SOCK_H
#define WEFT_IO_SOCK_H

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <netdb.h>
#include <sys/socket.h>

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

/* sendmsg / recvmsg with flags, for a try function (call.h). */
struct msg_args {
	struct msghdr *msg;
	int flags;
};

/* One attempt of sendmsg / recvmsg (arg: struct msg_args): on the
 * worker's ring under io_uring, else the system call. Returns the result
 * or -errno. */
long weft__try_sendmsg(int fd, void *arg);
long weft__try_recvmsg(int fd, void *arg);

/* Makes a socket for the first address of the list that binds (SO_REUSEADDR
 * for streams, SO_REUSEPORT if flags ask, dual-stack when wildcard), and
 * listens on it if it is a stream. Returns the fd or -errno. */
int weft__sock_bind(const struct addrinfo *ai, bool wildcard, int backlog,
		    unsigned flags);

#endif
