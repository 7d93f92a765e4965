/* The plain-thread path of the io/ calls: see call.h. */
#include <fcntl.h>
#include <poll.h>
#include <stdint.h>
#include <sys/time.h>
#include <sys/socket.h>
#include <liburing.h>

#include "weft/time.h"
#include "call.h"
#include "runtime/task.h"
#include "runtime/wait.h"

int64_t weft__sock_timeout(int fd, enum weft__dir dir)
{
	struct timeval tv = { 0, 0 };
	socklen_t len = sizeof(tv);

	if (getsockopt(fd, SOL_SOCKET,
		       dir == WEFT__READ ? SO_RCVTIMEO : SO_SNDTIMEO, &tv,
		       &len) ||
	    tv.tv_sec < 0 || tv.tv_sec > INT32_MAX)
		return 0;
	return (int64_t)tv.tv_sec * WEFT_SEC + (int64_t)tv.tv_usec * WEFT_USEC;
}

/* poll(2)'s timeout in ms until the instant end (weft_now()), rounded up
 * so that the wait does not end just short of it; -1 for end 0 (none). */
static int poll_ms(int64_t end)
{
	int64_t left;

	if (!end)
		return -1;
	left = end - weft_now();
	if (left <= 0)
		return 0;
	left = (left + WEFT_MSEC - 1) / WEFT_MSEC;
	return left > INT32_MAX ? INT32_MAX : (int)left;
}

/*
 * A socket's SO_RCVTIMEO (SO_SNDTIMEO) bounds the call as it bounds the
 * blocking system call the call stands for: -EAGAIN once it ran out, the
 * whole call's wait counted (so a signal's early end of a poll does not
 * start it again), as recv(2) says. On a blocking fd the kernel's call
 * waited itself, and its EAGAIN is that timeout; on an O_NONBLOCK fd
 * (one a task used, or the caller made so) the wait is poll(2)'s, given
 * what is left of the timeout. Only the first EAGAIN asks: a call that
 * moves its bytes at once pays nothing, and a task never comes here.
 * (A blocking fd's EAGAIN without a timeout is a WAITALL call cut
 * short: it waits for the rest.)
 */
/* What the poll(2) between a plain thread's attempts waits for: dir's
 * readiness, but for a receive of the urgent byte (MSG_OOB, whose EAGAIN
 * says its mark came and it has not) the byte's arrival, POLLPRI, or the
 * read side's end, POLLRDHUP (the receive then says 0). Not POLLIN: with
 * bytes queued before the mark it held at once and the wait spun, and
 * the byte arriving alone polls POLLPRI only, which it never saw. */
static short plain_events(enum weft__dir dir, int flags)
{
	if (dir == WEFT__WRITE)
		return POLLOUT;
	return flags & MSG_OOB ? POLLPRI | POLLRDHUP : POLLIN;
}

long weft__plain_try(int fd, enum weft__dir dir, int flags, weft__try_fn try,
		     void *arg)
{
	struct pollfd p = { .fd = fd, .events = plain_events(dir, flags) };
	struct weft__fd_pin pin;
	int64_t timeout, end = 0;
	long r;
	int fl;

	/* The first attempt may block (a blocking fd): as the kernel's
	 * call, it holds the file, not the number. The ones after a poll
	 * (a non-blocking fd) keep to the file the call began on. None
	 * while a weft_close waits for the calls on fd: -EBADF, as a task's
	 * call says (fdready.h). */
	if (!weft__fdready_pin(&pin, fd))
		return -EBADF;
	r = try(fd, arg);
	if (r != -EAGAIN || !(timeout = weft__sock_timeout(fd, dir)))
		; /* done, or waits without end */
	else if ((fl = fcntl(fd, F_GETFL)) >= 0 && !(fl & O_NONBLOCK))
		return r; /* the blocking call's own timeout */
	else
		end = weft_now() + timeout;
	while (r == -EAGAIN) {
		int ms = poll_ms(end);

		if (!ms)
			return -EAGAIN; /* the timeout ran out */
		poll(&p, 1, ms);
		if (!weft__fdready_pin_enter(&pin, fd))
			return -EBADF;
		r = try(fd, arg);
		weft__fdready_pin_leave(&pin, fd);
	}
	return r;
}

long weft__io_ring_attempt(int fd, weft__prep_fn prep, void *arg)
{
	struct weft__attempt a;
	struct io_uring_sqe *sqe;
	int r;

	if ((r = weft__wait_check(weft__task_current())))
		return r;
	sqe = weft__attempt_begin(&a, fd);
	prep(sqe, fd, arg);
	sqe->msg_flags |= MSG_DONTWAIT;
	return weft__attempt_wait(&a, sqe);
}
