/*
 * How a call of io/ reaches the kernel, and what every call shares.
 *
 * A call takes one of three paths, by where it runs:
 *   plain thread   the system call itself; on EAGAIN (an O_NONBLOCK fd)
 *                  it polls and tries again, so it blocks as documented;
 *   io_uring       an SQE on the worker's ring (drivers/io_uring/op.h);
 *   epoll          the non-blocking system call, waiting for readiness on
 *                  EAGAIN (drivers/epoll/fdready.h).
 * The plain and epoll paths share one "try" function per call: one
 * attempt of the system call, returning its result or -errno.
 */
#ifndef WEFT_IO_CALL_H
#define WEFT_IO_CALL_H

#include <errno.h>

#include "drivers/epoll/fdready.h"
#include "drivers/io_uring/op.h"
#include "runtime/driver.h"

/* The most one request moves: the kernel's MAX_RW_COUNT. */
#define IO_MAX_LEN 0x7ffff000u

enum weft__path { WEFT__PLAIN, WEFT__RING, WEFT__READY };

static inline enum weft__path weft__io_path(void)
{
	struct weft__driver *d = weft__driver_current();

	if (!d)
		return WEFT__PLAIN;
	return d->kind == WEFT_IO_URING ? WEFT__RING : WEFT__READY;
}

/* The system call's result as 0/count or -errno. */
static inline long weft__sys(long r)
{
	return r < 0 ? -(long)errno : r;
}

/* try(fd, arg) on the plain or the epoll path, waiting for dir's
 * readiness on EAGAIN. want as for weft__fdready_call; call names the
 * user's call for weft_dump ("recv": "recv on fd 7", where io_uring's
 * waits have the opcode). Returns try's result or -errno. */
long weft__io_try(int fd, enum weft__dir dir, weft__try_fn try, void *arg,
		  size_t want, const char *call);

#endif
