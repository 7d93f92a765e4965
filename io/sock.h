/* Socket helpers shared by tcp.c, udp.c and unix.c. */
#ifndef WEFT_IO_SOCK_H
#define WEFT_IO_SOCK_H

#include <stdbool.h>
#include <stdint.h>
#include <netdb.h>

#include "resolve.h"

/* The type flags of every socket weft makes: SOCK_CLOEXEC, and
 * SOCK_NONBLOCK under the epoll driver, whose calls wait for readiness. */
int weft__sock_type_flags(void);

/* Makes a socket for the first address of the list that binds (SO_REUSEADDR
 * for streams, SO_REUSEPORT if flags ask, dual-stack when wildcard), and
 * listens on it if it is a stream. Returns the fd or -errno. */
int weft__sock_bind(const struct addrinfo *ai, bool wildcard, int backlog,
		    unsigned flags);

#endif
