/*
 * How a call of io/ reaches the kernel, and what every call shares.
 *
 * A socket call, on a worker under either driver, makes one non-blocking
 * attempt and, on EAGAIN, waits for the fd's readiness in the runtime's
 * poll set (drivers/readiness/fdready.h), which any worker may harvest, so
 * a worker off its CPU strands nobody's connection. The attempt itself:
 *   epoll      the non-blocking system call;
 *   io_uring   an SQE on the worker's ring that may not wait in the kernel
 *              (weft__io_ring_attempt): the worker submits its round's
 *              attempts in one system call.
 * On a plain thread a call is the system call itself; on EAGAIN (an
 * O_NONBLOCK fd) it polls and tries again, so it blocks as documented.
 *
 * Files (io/file.c) take another path: under io_uring an SQE that may
 * wait (regular files never poll; the kernel runs the read inline or on
 * its io-wq threads), under epoll the blocking pool.
 *
 * The plain and readiness paths share one "try" function per call: one
 * attempt, returning its result or -errno.
 */
#ifndef WEFT_IO_CALL_H
#define WEFT_IO_CALL_H

#include <errno.h>

#include "drivers/readiness/fdready.h"
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

/* try(fd, arg) on the plain or the readiness path, waiting for dir's
 * readiness on EAGAIN. want as for weft__fdready_call; call names the
 * user's call for weft_dump ("recv": "recv on fd 7", where io_uring's
 * waits have the opcode). Returns try's result or -errno. */
long weft__io_try(int fd, enum weft__dir dir, weft__try_fn try, void *arg,
		  size_t want, const char *call);

/* Fills sqe with one socket transfer on fd: a send, recv, sendmsg or
 * recvmsg. */
typedef void (*weft__prep_fn)(struct io_uring_sqe *sqe, int fd, void *arg);

/* One attempt of a socket transfer, as an SQE on the calling worker's ring
 * (weft__ring_current() is not NULL). It adds MSG_DONTWAIT: the kernel
 * then answers -EAGAIN instead of waiting in the ring, where only this
 * worker could take the completion (drivers/io_uring/ring.h), and the call
 * waits in the poll set instead. The answer comes when the worker submits
 * its round's batch, so once submitted the attempt is not aborted (an
 * attempt of op.h): a cancellation or deadline met before it fails the
 * call with nothing moved, one that lands after it lets the transfer's
 * result through. Returns the result or -errno. */
long weft__io_ring_attempt(int fd, weft__prep_fn prep, void *arg);

#endif
