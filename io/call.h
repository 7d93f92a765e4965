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
#include <sys/socket.h>
#include <sys/syscall.h>

#include "drivers/readiness/fdready.h"
#include "drivers/io_uring/op.h"
#include "runtime/arch/syscall.h"
#include "runtime/context.h"
#include "runtime/driver.h"
#include "runtime/self.h"

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

/*
 * recv(2) and send(2) on the readiness path, where a worker makes them
 * (its fds are non-blocking): the system call itself, inline
 * (runtime/arch/syscall.h says what that saves). The sanitizer builds
 * keep libc's calls, whose interceptors model a socket's ordering (a send
 * happens before the recv that takes its bytes).
 */
static inline long weft__ready_recv(int fd, void *buf, size_t len, int flags)
{
#if defined(WEFT_TSAN) || defined(WEFT_ASAN)
	return weft__sys(recv(fd, buf, len, flags));
#else
	return weft__syscall6(SYS_recvfrom, fd, (long)buf, (long)len, flags, 0,
			      0);
#endif
}

static inline long weft__ready_send(int fd, const void *buf, size_t len,
				    int flags)
{
#if defined(WEFT_TSAN) || defined(WEFT_ASAN)
	return weft__sys(send(fd, buf, len, flags));
#else
	return weft__syscall6(SYS_sendto, fd, (long)buf, (long)len, flags, 0,
			      0);
#endif
}

/* A plain thread's call: try, and on EAGAIN (an O_NONBLOCK fd) poll(2)
 * and try again, so it blocks as documented. */
long weft__plain_try(int fd, enum weft__dir dir, weft__try_fn try, void *arg);

/* try(fd, arg) on the plain or the readiness path, waiting for dir's
 * readiness on EAGAIN. want as for weft__fdready_end; call names the
 * user's call for weft_dump ("recv": "recv on fd 7", where io_uring's
 * waits have the opcode). Returns try's result or -errno. Inline, as
 * weft__fdready_call is, so that try is inlined at the call site. */
static inline long weft__io_try(int fd, enum weft__dir dir, weft__try_fn try,
				void *arg, size_t want, const char *call)
{
	if (fd < 0)
		return -EBADF;
	if (!weft__driver_current())
		return weft__plain_try(fd, dir, try, arg);
	return weft__fdready_call(fd, dir, try, arg, want, call);
}

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
