/* The plain-thread path of the io/ calls: see call.h. */
#include <poll.h>
#include <sys/socket.h>
#include <liburing.h>

#include "call.h"
#include "runtime/task.h"
#include "runtime/wait.h"

long weft__plain_try(int fd, enum weft__dir dir, weft__try_fn try, void *arg)
{
	struct pollfd p = { .fd = fd,
			    .events = dir == WEFT__READ ? POLLIN : POLLOUT };
	long r;

	while ((r = try(fd, arg)) == -EAGAIN)
		poll(&p, 1, -1);
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
