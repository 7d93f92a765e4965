/* Name resolution for the socket calls, off the workers (resolve.c). */
#ifndef WEFT_IO_RESOLVE_H
#define WEFT_IO_RESOLVE_H

#include <stdint.h>
#include <netdb.h>

/* getaddrinfo for host:port (host NULL with AI_PASSIVE: the wildcard).
 * Numeric hosts are parsed in place; names are looked up on the blocking
 * pool from a task, so a slow resolver never stalls a worker. A wildcard
 * list is ordered IPv6 first (one dual-stack socket takes both). Returns 0
 * or -errno: -ENOENT (no such name), -EAGAIN (try again), -EINVAL,
 * -ENOMEM, -ECANCELED, -ETIMEDOUT. Free *res with freeaddrinfo(). */
int weft__resolve(const char *host, uint16_t port, int socktype, int flags,
		  struct addrinfo **res);

/* A test's stand-in for getaddrinfo(3) on the blocking pool (a resolver
 * that takes its time), or NULL. */
extern int (*weft__resolve_hook)(const char *host, const char *service,
				 const struct addrinfo *hints,
				 struct addrinfo **res);

#endif
