/*
 * weft_wait_fd: readiness of a file whose reads and writes a library
 * makes (weft/io.h). In a task, a select of one fd case per direction
 * (sync/select.c), so that it waits in the poll set, aborts on
 * cancellation and deadlines as every wait does, and wakes on
 * weft_close. On a plain thread, poll(2) itself.
 */
#include <errno.h>
#include <poll.h>

#include "weft/io.h"
#include "weft/select.h"
#include "drivers/readiness/fdready.h"
#include "runtime/coop.h"
#include "runtime/self.h"
#include "runtime/task.h"

/* poll(2) until fd is ready for events, retrying EINTR as the plain
 * thread's socket calls do. */
static int poll_until_ready(int fd, unsigned events)
{
	struct pollfd p = {
		.fd = fd,
		.events = (short)((events & WEFT_READABLE ? POLLIN : 0) |
				  (events & WEFT_WRITABLE ? POLLOUT : 0)),
	};
	int r;

	while ((r = poll(&p, 1, -1)) < 0 && errno == EINTR)
		;
	if (r < 0)
		return -errno;
	if (p.revents & POLLNVAL)
		return -EBADF;
	/* A hang-up or error is readiness for whichever was asked, read
	 * first, as the select's cases report it. */
	if (events & WEFT_READABLE && p.revents & (POLLIN | POLLHUP | POLLERR))
		return WEFT_READABLE;
	return WEFT_WRITABLE;
}

int weft_wait_fd(int fd, unsigned events)
{
	struct weft_select_case c[2];
	int n = 0, i;

	if (!events || events & ~(WEFT_READABLE | WEFT_WRITABLE))
		return -EINVAL;
	if (fd < 0)
		return -EBADF;
	/* A plain thread's poll(2) would watch the file a weft_close let
	 * go, left open for the calls under way on it: -EBADF, as a task's
	 * watch says then. */
	if (!weft__driver_current())
		return weft__fdready_closing(fd) ? -EBADF
						 : poll_until_ready(fd, events);
	/* As weft's own calls (io/call.h): the budget, so that a library's
	 * reads that keep finding bytes yield now and then; and a cancelled
	 * task or one past its deadline is told before the select, which
	 * would complete a ready case in it, so that a loop whose peer keeps
	 * bytes coming ends (weft/io.h). */
	if ((i = weft__coop_spend(weft__self())) ||
	    (i = weft__wait_check(weft__task_current())))
		return i;
	if (events & WEFT_READABLE)
		c[n++] = (struct weft_select_case)WEFT_CASE_READABLE(fd);
	if (events & WEFT_WRITABLE)
		c[n++] = (struct weft_select_case)WEFT_CASE_WRITABLE(fd);
	if ((i = weft_select(c, n)) < 0)
		return i;
	if (c[i].status)
		return c[i].status;
	return c[i].kind == WEFT_SELECT_READABLE ? WEFT_READABLE
						 : WEFT_WRITABLE;
}
