/*
 * The epoll driver: one epoll instance per worker, mirroring one ring per
 * worker, so parking, unparking and timers stay per worker (the driver
 * interface is runtime/driver.h; the per-fd readiness records that tasks
 * wait on are fdready.h).
 *
 * Registered in it: the driver's wake-up eventfd (level-triggered), and
 * every fd a task first waited on while running on this worker
 * (edge-triggered, both directions, kept until weft_close). A task that
 * moved to another worker still waits through this instance's events:
 * wake-ups go through the waiter protocol, which any thread may use.
 */
#ifndef WEFT_DRIVERS_EPOLL_EPOLL_H
#define WEFT_DRIVERS_EPOLL_EPOLL_H

#include <stdatomic.h>

#include "runtime/driver.h"

struct weft__epoll {
	struct weft__driver base; /* first: a driver is an epoll */
	int epfd;
	/* Tasks waiting on fds registered here. A hint for the owner's
	 * cheap poll only: parking always waits for events. */
	_Atomic int waiters;
};

/* The calling worker's epoll, or NULL on a plain thread or under io_uring. */
static inline struct weft__epoll *weft__epoll_current(void)
{
	struct weft__driver *d = weft__driver_current();

	return d && d->kind == WEFT_IO_EPOLL ? (struct weft__epoll *)d : NULL;
}

#endif
