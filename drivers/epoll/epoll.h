/*
 * The epoll driver (the interface is runtime/driver.h). Tasks wait for
 * their fds in the runtime's one poll set (drivers/readiness/pollset.h,
 * the per-fd records fdready.h), which any worker may harvest; the first
 * worker to fall asleep sleeps in it (the poller).
 *
 * Each worker also has its own epoll holding only its wake-up eventfd, to
 * sleep in while another worker is the poller. Where a worker sleeps is
 * its `sleep` state, which an unparker reads to choose the fd to write
 * (weft__epoll_wake_fd): the worker's own eventfd, or the break eventfd
 * when it is the poller.
 *
 * No lost wake-up: a worker going to sleep stores its sleep state, then
 * reads wake_pending, and sleeps only if none is pending; an unparker sets
 * wake_pending, then reads the sleep state. All four are seq_cst, so one
 * of the two sees the other's write (the store-buffering pattern): either
 * the sleeper does not sleep, or the unparker writes the fd it sleeps on.
 */
#ifndef WEFT_DRIVERS_EPOLL_EPOLL_H
#define WEFT_DRIVERS_EPOLL_EPOLL_H

#include <stdatomic.h>

#include "runtime/driver.h"

enum weft__epoll_sleep { EPOLL_AWAKE, EPOLL_SLEEPING, EPOLL_POLLING };

struct weft__epoll {
	struct weft__driver base; /* first: a driver is an epoll */
	int epfd;                 /* its own: the wake-up eventfd only */
	_Atomic int sleep;        /* enum weft__epoll_sleep */
};

#endif
