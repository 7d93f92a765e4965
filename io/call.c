/* The plain-thread path of the io/ calls: see call.h. */
#include <fcntl.h>
#include <poll.h>
#include <sys/time.h>
#include <sys/socket.h>
#include <liburing.h>

#include "call.h"
#include "runtime/task.h"
#include "runtime/wait.h"

/* Whether an EAGAIN on fd is the blocking system call's own answer: a
 * blocking socket says it when its SO_RCVTIMEO (SO_SNDTIMEO) for dir runs
 * out, and then the call returns it, as recv(2) does, rather than wait in
 * poll(2) for as long as nothing comes. Only an O_NONBLOCK fd (or a
 * WAITALL call cut short) waits there. */
static bool timed_out(int fd, enum weft__dir dir)
{
	struct timeval tv = { 0, 0 };
	socklen_t len = sizeof(tv);
	int fl = fcntl(fd, F_GETFL);

	if (fl < 0 || (fl & O_NONBLOCK) ||
	    getsockopt(fd, SOL_SOCKET,
		       dir == WEFT__READ ? SO_RCVTIMEO : SO_SNDTIMEO, &tv,
		       &len))
		return false;
	return tv.tv_sec || tv.tv_usec;
}

long weft__plain_try(int fd, enum weft__dir dir, weft__try_fn try, void *arg)
{
	struct pollfd p = { .fd = fd,
			    .events = dir == WEFT__READ ? POLLIN : POLLOUT };
	struct weft__fd_pin pin;
	long r;

	/* The first attempt may block (a blocking fd): as the kernel's
	 * call, it holds the file, not the number. The ones after a poll
	 * (a non-blocking fd) keep to the file the call began on. */
	weft__fdready_pin(&pin, fd);
	r = try(fd, arg);
	while (r == -EAGAIN && !timed_out(fd, dir)) {
		poll(&p, 1, -1);
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
