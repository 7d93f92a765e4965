/*
 * How a call of io/ reaches the kernel, and what every call shares.
 *
 * A socket call, on a worker under either driver, makes one non-blocking
 * attempt and on EAGAIN waits for the fd's readiness in the runtime's poll
 * set (drivers/readiness/fdready.h), which any worker may harvest, so a
 * worker off its CPU strands nobody's connection. The attempt:
 *   system call  under epoll, and under io_uring where a system call is
 *                cheap: recv(2) or send(2) itself;
 *   ring         under io_uring where a system call is dear: an SQE with
 *                MSG_DONTWAIT (weft__io_ring_attempt); the worker submits
 *                its round's attempts in one system call. An attempt
 *                that would be alone in its round is the system call.
 * weft_run chooses (runtime/driver.c, by timing a system call, unless
 * struct weft_config.sockets or $WEFT_SOCKETS says). The ring parks each
 * attempt's task until the round's submit and puts it back at the end of
 * the worker's ready queue, so a request goes round the queue three times
 * (woken, received, sent) where the system calls take it round once; it
 * saves about 1.8 system calls a request. Measured on two hosts of one
 * kind (bench/README.md): at 0.2 us a system call the system calls cost
 * 1-3% less CPU per request and gave the lower closed-loop p99 (sixteenth
 * session); at 1.1-1.6 us the ring cost 10-40% less, run by run, and gave
 * the lower closed-loop p99 (nineteenth).
 *
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
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/syscall.h>

#include "drivers/readiness/fdready.h"
#include "drivers/io_uring/op.h"
#include "runtime/arch/syscall.h"
#include "runtime/context.h"
#include "runtime/coop.h"
#include "runtime/driver.h"
#include "runtime/runq.h"
#include "runtime/self.h"
#include "runtime/task.h"

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
 * recv(2) and send(2) as a socket call's attempt makes them. On a worker
 * (its fds are non-blocking) that is the system call itself, inline
 * (runtime/arch/syscall.h says what that saves), except in the sanitizer
 * builds, which keep libc's calls: their interceptors model a socket's
 * ordering (a send happens before the recv that takes its bytes). A plain
 * thread keeps libc's, cancellation point included.
 */
static inline bool weft__sock_inline(void)
{
#if defined(WEFT_TSAN) || defined(WEFT_ASAN)
	return false;
#else
	return weft__driver_current() != NULL;
#endif
}

static inline long weft__sock_recv(int fd, void *buf, size_t len, int flags)
{
	if (weft__sock_inline())
		return weft__syscall6(SYS_recvfrom, fd, (long)buf, (long)len,
				      flags, 0, 0);
	return weft__sys(recv(fd, buf, len, flags));
}

static inline long weft__sock_send(int fd, const void *buf, size_t len,
				   int flags)
{
	if (weft__sock_inline())
		return weft__syscall6(SYS_sendto, fd, (long)buf, (long)len,
				      flags, 0, 0);
	return weft__sys(send(fd, buf, len, flags));
}

/* Whether the calling task's next socket transfer goes through its
 * worker's ring as an attempt: under io_uring on a host where a system
 * call costs more than a ring operation (weft_sock_path()), and only if
 * the attempt will share its round's submit, with an attempt already
 * waiting or a task that may add one. An attempt alone would pay the
 * submit's system call and the park besides. */
static inline bool weft__sock_on_ring(void)
{
	struct weft__driver *d = weft__driver_current();

	if (!d || !d->sock_on_ring)
		return false;
	return io_uring_sq_ready(&((struct weft__ring *)d)->uring) ||
	       weft__runq_has_local(weft__self());
}

/* Fills sqe with one socket transfer on fd: a send, recv, sendmsg or
 * recvmsg. */
typedef void (*weft__prep_fn)(struct io_uring_sqe *sqe, int fd, void *arg);

/* One attempt of a socket transfer, as an SQE on the calling worker's ring
 * (weft__sock_on_ring()). It adds MSG_DONTWAIT: the kernel then answers
 * -EAGAIN instead of waiting in the ring, where only this worker could
 * take the completion (drivers/io_uring/ring.h), and the call waits in the
 * poll set instead. The answer comes when the worker submits its round's
 * batch, so once submitted the attempt is not aborted (an attempt of
 * op.h): a cancellation or deadline met before it fails the call with
 * nothing moved, one that lands after it lets the transfer's result
 * through. Returns the result or -errno. */
long weft__io_ring_attempt(int fd, weft__prep_fn prep, void *arg);

/* A call's one attempt (its caller's MSG_DONTWAIT): in a task cancelled
 * or past its deadline, -ECANCELED / -ETIMEDOUT with nothing moved, as
 * the ring's attempt (weft__io_ring_attempt) and every call that may
 * wait answer, whichever path the attempt takes; -EBADF while a
 * weft_close waits for the calls under way on fd, as theirs say. */
static inline long weft__io_once(int fd, weft__try_fn try, void *arg)
{
	long r = weft__wait_check(weft__task_current());

	if (!r && weft__fdready_closing(fd))
		r = -EBADF;
	return r ? r : try(fd, arg);
}

/* The socket's SO_RCVTIMEO (dir WEFT__READ) or SO_SNDTIMEO in ns; 0 for
 * none: no timeout set, fd no socket, or one of over 68 years (whose ns
 * would overflow near the kernel's own bound). */
int64_t weft__sock_timeout(int fd, enum weft__dir dir);

/* A plain thread's call: try, and on EAGAIN (an O_NONBLOCK fd) poll(2)
 * and try again, so it blocks as documented, for as long as the socket's
 * SO_RCVTIMEO / SO_SNDTIMEO lets the system call block (call.c). flags:
 * the call's (MSG_OOB: the poll waits for the urgent byte; MSG_PEEK with
 * MSG_WAITALL: for an edge, more bytes or the end, not for readability,
 * which the bytes it peeked keep up). */
long weft__plain_try(int fd, enum weft__dir dir, int flags, weft__try_fn try,
		     void *arg);

/* try(fd, arg) on the plain or the readiness path, waiting for dir's
 * readiness on EAGAIN. flags: the call's, for a plain thread's poll (see
 * weft__plain_try); 0 for a call without. want as for weft__fdready_end;
 * call names the user's call for weft_dump ("recv": "recv on fd 7",
 * where io_uring's waits have the opcode). Returns try's result or
 * -errno. Inline, as weft__fdready_call is, so that try is inlined at
 * the call site. */
static inline long weft__io_try(int fd, enum weft__dir dir, int flags,
				weft__try_fn try, void *arg, size_t want,
				const char *call)
{
	long r;

	if (fd < 0)
		return -EBADF;
	if (!weft__driver_current())
		return weft__plain_try(fd, dir, flags, try, arg);
	if ((r = weft__coop_spend(weft__self())))
		return r;
	return weft__fdready_call(fd, dir, try, arg, want, call);
}

/* A test's hook: weft_open under io_uring calls it with the path just
 * before a FIFO reader's open on io-wq begins to wait for a writer (NULL:
 * none). io/file.c. */
extern void (*weft__fifo_wait_hook)(const char *path);

#endif
