/*
 * The epoll driver: see epoll.h.
 *
 * Polling without sleeping costs a system call, so a busy worker does not
 * look after every task run as the io_uring driver looks at its ring (a
 * load from the shared CQ ring): only once fds joined the poll set, every
 * WEFT__HARVEST_INTERVAL ticks (weft__driver_poll, for both drivers), and
 * whenever it is about to sleep (reap, then park; reap leaves the look to
 * park's harvest when the worker will sleep as the poller).
 *
 * Timers: a sleep lasts at most until the sleeper's nearest deadline. The
 * poller sleeps until its own deadline: the other workers' timers are
 * theirs to wait for.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "drivers/readiness/pollset.h"
#include "epoll.h"

#define EVENTS 8 /* its own epoll holds only its wake-up eventfd */

int weft__epoll_wake_fd(struct weft__driver *d)
{
	/* seq_cst: the unparker's half of the rule in epoll.h. */
	return atomic_load(&((struct weft__epoll *)d)->sleep) == EPOLL_POLLING
		       ? weft__pollset_break_fd()
		       : d->wake_fd;
}

struct weft__driver *weft__epoll_new(int *err, const char **why)
{
	struct weft__epoll *ep = calloc(1, sizeof(*ep));
	struct epoll_event ev = { .events = EPOLLIN };

	if (!ep) {
		*err = -ENOMEM;
		*why = "out of memory";
		return NULL;
	}
	atomic_init(&ep->sleep, EPOLL_AWAKE);
	ep->base.wake_fd = -1;
	ep->epfd = epoll_create1(EPOLL_CLOEXEC);
	*err = ep->epfd < 0 ? -errno : 0;
	if (!*err &&
	    !(*err = weft__driver_base_init(&ep->base, WEFT_IO_EPOLL,
					    EFD_NONBLOCK)) &&
	    epoll_ctl(ep->epfd, EPOLL_CTL_ADD, ep->base.wake_fd, &ev))
		*err = -errno;
	if (!*err && !(*err = weft__pollset_join()))
		return &ep->base;
	if (ep->base.wake_fd >= 0)
		weft__driver_base_exit(&ep->base);
	if (ep->epfd >= 0)
		close(ep->epfd);
	*why = "cannot create an epoll instance or eventfd";
	free(ep);
	return NULL;
}

void weft__epoll_close(struct weft__driver *d)
{
	struct weft__epoll *ep = (struct weft__epoll *)d;

	close(ep->epfd);
	weft__driver_base_exit(d);
	weft__pollset_leave();
}

/* Sleeps in the worker's own epoll, whose one fd is its wake-up eventfd,
 * until woken or timeout_ns. */
static void sleep_alone(struct weft__epoll *ep, int64_t timeout_ns)
{
	struct epoll_event ev[EVENTS];

	if (weft__epoll_wait_ns(ep->epfd, ev, EVENTS, timeout_ns) > 0)
		weft__eventfd_drain(ep->base.wake_fd);
}

int weft__epoll_reap(struct weft__driver *d, bool may_poll)
{
	int n = weft__driver_run_inbox(d);

	weft__pollset_look_before_sleep(may_poll);
	return n + weft__driver_run_inbox(d);
}

void weft__epoll_poll(struct weft__driver *d)
{
	weft__driver_run_inbox(d);
}

/* Sleeps as the poller if it may and no worker does (it then harvests
 * every fd's events), else in its own epoll, until woken or timeout_ns. */
void weft__epoll_park(struct weft__driver *d, int64_t timeout_ns, bool may_poll)
{
	struct weft__epoll *ep = (struct weft__epoll *)d;
	bool poller = may_poll && weft__pollset_claim();

	weft__driver_run_inbox(d);
	/* seq_cst, both: the sleeper's half of the rule in epoll.h. */
	atomic_store(&ep->sleep, poller ? EPOLL_POLLING : EPOLL_SLEEPING);
	if (atomic_load(&d->wake_pending))
		timeout_ns = 0;
	if (poller)
		weft__pollset_harvest(timeout_ns, true);
	else
		sleep_alone(ep, timeout_ns);
	atomic_store(&ep->sleep, EPOLL_AWAKE);
	if (poller)
		weft__pollset_release();
	weft__driver_wake_consumed(d);
	weft__driver_run_inbox(d);
}
