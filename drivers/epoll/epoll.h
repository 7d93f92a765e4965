/*
 * The epoll driver (the interface is runtime/driver.h; the per-fd readiness
 * records that tasks wait on are fdready.h).
 *
 * One poll set for the whole runtime: an epoll instance holding every fd a
 * task waited on (edge-triggered, both directions, kept until weft_close)
 * and a "break" eventfd. Any worker may harvest it: once an fd joined it, a
 * busy one every POLL_INTERVAL ticks and every one before it sleeps,
 * and the first worker to fall asleep sleeps in it (the poller), so an
 * event finds a free worker whichever worker's task registered the fd or
 * last waited on it. With one epoll per worker, as this driver first had,
 * a worker descheduled by the OS or busy with a long batch held its fds'
 * events until it came back: that was most of its tail latency (Tokio's
 * one driver, polled by whichever worker parks, and Go's netpoller share
 * theirs the same way).
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

/* The poll set's epoll fd, or -1 when no epoll runtime runs. Any thread. */
int weft__epoll_poll_fd(void);

/* An fd joined the poll set: from now on, a busy worker's look every
 * POLL_INTERVAL ticks and a worker's look before it sleeps are worth a
 * system call each. Any thread. */
void weft__epoll_watching(void);

#endif
