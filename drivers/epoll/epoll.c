/*
 * The epoll driver: see epoll.h.
 *
 * Polling without parking costs a system call, so a worker does not look
 * after every task run as the io_uring driver does (there a look is a load
 * from the shared CQ ring): only when tasks wait on fds registered here,
 * every POLL_INTERVAL ticks (Tokio's event_interval), and whenever it is
 * about to park (reap, then park).
 *
 * Timers: a park waits at most until the nearest deadline. epoll_pwait2
 * takes it in nanoseconds (Linux 5.11); where the kernel (or valgrind)
 * lacks it, epoll_wait's milliseconds are rounded up, so a sleep is late
 * by under a millisecond but never early.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "epoll.h"
#include "fdready.h"

#define POLL_INTERVAL 61 /* prime, as Tokio's */
#define EVENTS 128
#define WAKE_TAG UINT64_MAX /* the eventfd's epoll data; fds use fdready's */

static _Atomic bool no_pwait2; /* epoll_pwait2 said ENOSYS once */

struct weft__driver *weft__epoll_new(int *err, const char **why)
{
	struct weft__epoll *ep = calloc(1, sizeof(*ep));
	struct epoll_event ev = { .events = EPOLLIN, .data.u64 = WAKE_TAG };

	if (!ep) {
		*err = -ENOMEM;
		*why = "out of memory";
		return NULL;
	}
	atomic_init(&ep->waiters, 0);
	ep->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (ep->epfd < 0) {
		*err = -errno;
		*why = "cannot create an epoll instance";
		free(ep);
		return NULL;
	}
	*err = weft__driver_base_init(&ep->base, WEFT_IO_EPOLL, EFD_NONBLOCK);
	if (!*err && epoll_ctl(ep->epfd, EPOLL_CTL_ADD, ep->base.wake_fd, &ev))
		*err = -errno;
	if (*err) {
		if (ep->base.wake_fd >= 0)
			weft__driver_base_exit(&ep->base);
		close(ep->epfd);
		*why = "cannot create an eventfd for waking workers";
		free(ep);
		return NULL;
	}
	return &ep->base;
}

void weft__epoll_close(struct weft__driver *d)
{
	struct weft__epoll *ep = (struct weft__epoll *)d;

	close(ep->epfd);
	weft__driver_base_exit(d);
}

static void consume_wake(struct weft__epoll *ep)
{
	uint64_t n;

	while (read(ep->base.wake_fd, &n, sizeof(n)) < 0 && errno == EINTR)
		;
	weft__driver_wake_consumed(&ep->base);
}

static int handle(struct weft__epoll *ep, struct epoll_event *ev, int n)
{
	for (int i = 0; i < n; i++) {
		if (ev[i].data.u64 == WAKE_TAG)
			consume_wake(ep);
		else
			weft__fdready_event(ev[i].data.u64, ev[i].events);
	}
	return n;
}

/* Waits up to timeout_ns (-1: no limit, 0: not at all). */
static int wait_events(struct weft__epoll *ep, struct epoll_event *ev,
		       int64_t timeout_ns)
{
	int n;

	if (timeout_ns > 0 &&
	    !atomic_load_explicit(&no_pwait2, memory_order_relaxed)) {
		struct timespec ts = { .tv_sec = timeout_ns / 1000000000,
				       .tv_nsec = timeout_ns % 1000000000 };

		n = epoll_pwait2(ep->epfd, ev, EVENTS, &ts, NULL);
		if (n >= 0 || errno != ENOSYS)
			return n;
		atomic_store_explicit(&no_pwait2, true, memory_order_relaxed);
	}
	if (timeout_ns < 0)
		return epoll_wait(ep->epfd, ev, EVENTS, -1);
	if (timeout_ns > (int64_t)INT32_MAX * 1000000)
		timeout_ns = (int64_t)INT32_MAX * 1000000;
	/* Rounded up: never wake before the timer is due. */
	return epoll_wait(ep->epfd, ev, EVENTS,
			  (int)((timeout_ns + 999999) / 1000000));
}

/* Handles events, waiting up to timeout_ns for the first; then takes what
 * else is ready without waiting. Returns how many it handled. */
static int run_events(struct weft__epoll *ep, int64_t timeout_ns)
{
	struct epoll_event ev[EVENTS];
	int n, total = weft__driver_run_inbox(&ep->base);

	do {
		n = wait_events(ep, ev, timeout_ns);
		if (n > 0)
			total += handle(ep, ev, n);
		timeout_ns = 0;
	} while (n == EVENTS);
	return total + weft__driver_run_inbox(&ep->base);
}

int weft__epoll_reap(struct weft__driver *d)
{
	return run_events((struct weft__epoll *)d, 0);
}

void weft__epoll_poll(struct weft__driver *d, uint64_t tick)
{
	struct weft__epoll *ep = (struct weft__epoll *)d;

	if (tick % POLL_INTERVAL == 0 &&
	    atomic_load_explicit(&ep->waiters, memory_order_relaxed))
		run_events(ep, 0);
	else
		weft__driver_run_inbox(d);
}

void weft__epoll_park(struct weft__driver *d, int64_t timeout_ns)
{
	run_events((struct weft__epoll *)d, timeout_ns);
}
