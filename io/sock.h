/* Socket helpers shared by tcp.c, udp.c and unix.c. */
#ifndef WEFT_IO_SOCK_H
#define WEFT_IO_SOCK_H

#include <stdbool.h>
#include <stdint.h>
#include <netdb.h>

/* Makes a socket for the first address of the list that binds (SO_REUSEADDR
 * for streams, SO_REUSEPORT if flags ask, dual-stack when wildcard), and
 * listens on it if it is a stream. Returns the fd or -errno. */
int weft__sock_bind(const struct addrinfo *ai, bool wildcard, int backlog,
		    unsigned flags);

/* getaddrinfo for host:port (host NULL with AI_PASSIVE: the wildcard).
 * Numeric hosts are parsed in place; names are looked up on the blocking
 * pool from a task, so a slow resolver never stalls a worker. A wildcard
 * list is ordered IPv6 first (one dual-stack socket takes both). Returns 0
 * or -errno: -ENOENT (no such name), -EAGAIN (try again), -EINVAL,
 * -ENOMEM, -ECANCELED, -ETIMEDOUT. Free *res with freeaddrinfo(). */
int weft__resolve(const char *host, uint16_t port, int socktype, int flags,
		  struct addrinfo **res);

#endif
