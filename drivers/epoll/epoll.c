/*
 * The epoll driver: see epoll.h.
 *
 * Polling without sleeping costs a system call, so a busy worker does not
 * look after every task run as the io_uring driver does (there a look is a
 * load from the shared CQ ring): only once fds joined the poll set, every
 * POLL_INTERVAL ticks (Tokio's event_interval), and whenever it is about
 * to sleep (reap, then park).
 *
 * Timers: a sleep lasts at most until the sleeper's nearest deadline.
 * epoll_pwait2 takes it in nanoseconds (Linux 5.11); where the kernel (or
 * valgrind) lacks it, epoll_wait's milliseconds are rounded up, so a sleep
 * is late by under a millisecond but never early. The poller sleeps until
 * its own deadline: the other workers' timers are theirs to wait for.
 *
 * Invariants:
 *  - At most one worker sleeps in the poll set: the one whose exchange
 *    set poll_set.polling, until it clears it after waking.
 *  - poll_set's fds live from the first worker's weft__epoll_new to the
 *    last one's weft__epoll_close. An unparker writes break_fd only for a
 *    worker whose driver is not closed yet (driver.c's unparkers count), so
 *    never after it is closed.
 */
#include <errno.h>
#include <pthread.h>
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
/* Epoll data of the two eventfds; fds use fdready's (gen << 32 | fd). */
#define WAKE_TAG UINT64_MAX
#define BREAK_TAG (UINT64_MAX - 1)

static _Atomic bool no_pwait2; /* epoll_pwait2 said ENOSYS once */

static struct {
	pthread_mutex_t mu; /* users, and making and closing the fds */
	int users;          /* drivers made and not closed */
	_Atomic int epfd;   /* -1 while no driver is open */
	int break_fd;
	_Atomic bool polling;  /* a worker sleeps in epfd */
	_Atomic bool watching; /* an fd joined it (weft__epoll_watching) */
} poll_set = { PTHREAD_MUTEX_INITIALIZER, 0, -1, -1, false, false };

int weft__epoll_poll_fd(void)
{
	/* relaxed: set before the workers start (pthread_create orders it)
	 * and reset after they stopped. */
	return atomic_load_explicit(&poll_set.epfd, memory_order_relaxed);
}

void weft__epoll_watching(void)
{
	/* relaxed: a hint for the busy worker's poll only. Looked at first,
	 * so the line stays shared once set. */
	if (!atomic_load_explicit(&poll_set.watching, memory_order_relaxed))
		atomic_store_explicit(&poll_set.watching, true,
				      memory_order_relaxed);
}

int weft__epoll_wake_fd(struct weft__driver *d)
{
	/* seq_cst: the unparker's half of the rule in epoll.h. */
	return atomic_load(&((struct weft__epoll *)d)->sleep) == EPOLL_POLLING
		       ? poll_set.break_fd
		       : d->wake_fd;
}

static int add_eventfd(int epfd, int fd, uint64_t tag)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.u64 = tag };

	return epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) ? -errno : 0;
}

/* Makes the poll set for the first driver. Under poll_set.mu. */
static int poll_set_open(void)
{
	int epfd = epoll_create1(EPOLL_CLOEXEC), r;

	if (epfd < 0)
		return -errno;
	poll_set.break_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	r = poll_set.break_fd < 0
		    ? -errno
		    : add_eventfd(epfd, poll_set.break_fd, BREAK_TAG);
	if (r) {
		if (poll_set.break_fd >= 0)
			close(poll_set.break_fd);
		close(epfd);
		return r;
	}
	atomic_store_explicit(&poll_set.watching, false, memory_order_relaxed);
	atomic_store_explicit(&poll_set.epfd, epfd, memory_order_relaxed);
	return 0;
}

static int poll_set_join(void)
{
	int r = 0;

	pthread_mutex_lock(&poll_set.mu);
	if (!poll_set.users && (r = poll_set_open()))
		goto out;
	poll_set.users++;
out:
	pthread_mutex_unlock(&poll_set.mu);
	return r;
}

static void poll_set_leave(void)
{
	pthread_mutex_lock(&poll_set.mu);
	if (--poll_set.users == 0) {
		close(atomic_load_explicit(&poll_set.epfd,
					   memory_order_relaxed));
		atomic_store_explicit(&poll_set.epfd, -1, memory_order_relaxed);
		close(poll_set.break_fd);
		poll_set.break_fd = -1;
	}
	pthread_mutex_unlock(&poll_set.mu);
}

struct weft__driver *weft__epoll_new(int *err, const char **why)
{
	struct weft__epoll *ep = calloc(1, sizeof(*ep));

	if (!ep) {
		*err = -ENOMEM;
		*why = "out of memory";
		return NULL;
	}
	atomic_init(&ep->sleep, EPOLL_AWAKE);
	ep->base.wake_fd = -1;
	ep->epfd = epoll_create1(EPOLL_CLOEXEC);
	*err = ep->epfd < 0 ? -errno : 0;
	if (!*err && !(*err = weft__driver_base_init(&ep->base, WEFT_IO_EPOLL,
						     EFD_NONBLOCK)))
		*err = add_eventfd(ep->epfd, ep->base.wake_fd, WAKE_TAG);
	if (!*err && !(*err = poll_set_join()))
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
	poll_set_leave();
}

static void drain(int efd)
{
	uint64_t n;

	while (read(efd, &n, sizeof(n)) < 0 && errno == EINTR)
		;
}

/* The break eventfd is for the poller: a busy worker's harvest leaves it
 * set (it is level-triggered, so epoll reports it again and wakes the
 * poller), else the poller, woken by it, would find it gone and sleep on
 * past the wake-up meant for it. */
static void handle(struct weft__epoll *ep, struct epoll_event *ev, int n,
		   bool poller)
{
	for (int i = 0; i < n; i++) {
		if (ev[i].data.u64 == WAKE_TAG)
			drain(ep->base.wake_fd);
		else if (ev[i].data.u64 == BREAK_TAG) {
			if (poller)
				drain(poll_set.break_fd);
		} else
			weft__fdready_event(ev[i].data.u64, ev[i].events);
	}
}

/* Waits up to timeout_ns (-1: no limit, 0: not at all) on epfd. */
static int wait_events(int epfd, struct epoll_event *ev, int64_t timeout_ns)
{
	int n;

	if (timeout_ns > 0 &&
	    !atomic_load_explicit(&no_pwait2, memory_order_relaxed)) {
		struct timespec ts = { .tv_sec = timeout_ns / 1000000000,
				       .tv_nsec = timeout_ns % 1000000000 };

		n = epoll_pwait2(epfd, ev, EVENTS, &ts, NULL);
		if (n >= 0 || errno != ENOSYS)
			return n;
		atomic_store_explicit(&no_pwait2, true, memory_order_relaxed);
	}
	if (timeout_ns < 0)
		return epoll_wait(epfd, ev, EVENTS, -1);
	if (timeout_ns > (int64_t)INT32_MAX * 1000000)
		timeout_ns = (int64_t)INT32_MAX * 1000000;
	/* Rounded up: never wake before the timer is due. */
	return epoll_wait(epfd, ev, EVENTS,
			  (int)((timeout_ns + 999999) / 1000000));
}

/* Handles epfd's events, waiting up to timeout_ns for the first; then
 * takes what else is ready without waiting. */
static void run_events(struct weft__epoll *ep, int epfd, int64_t timeout_ns,
		       bool poller)
{
	struct epoll_event ev[EVENTS];
	int n;

	do {
		n = wait_events(epfd, ev, timeout_ns);
		if (n > 0)
			handle(ep, ev, n, poller);
		timeout_ns = 0;
	} while (n == EVENTS);
}

/* Harvests the poll set without waiting, once it holds any fd. A program
 * that never waits on an fd (a compute job) makes no system call here; one
 * that does looks whether or not a task waits at the moment, as Tokio
 * does. (A count of the waiting tasks, kept before, cost two atomic adds
 * on one shared line per wait.) */
static void poll_now(struct weft__epoll *ep)
{
	/* relaxed: a hint; an edge not taken here stays queued in the poll
	 * set (edge-triggered events wait there until someone harvests). */
	if (atomic_load_explicit(&poll_set.watching, memory_order_relaxed))
		run_events(ep, weft__epoll_poll_fd(), 0, false);
}

int weft__epoll_reap(struct weft__driver *d)
{
	int n = weft__driver_run_inbox(d);

	poll_now((struct weft__epoll *)d);
	return n + weft__driver_run_inbox(d);
}

void weft__epoll_poll(struct weft__driver *d, uint64_t tick)
{
	if (tick % POLL_INTERVAL == 0)
		poll_now((struct weft__epoll *)d);
	weft__driver_run_inbox(d);
}

/* Sleeps as the poller if no worker does (it then harvests every fd's
 * events), else in its own epoll, until woken or timeout_ns. */
void weft__epoll_park(struct weft__driver *d, int64_t timeout_ns)
{
	struct weft__epoll *ep = (struct weft__epoll *)d;
	/* acquire, and release below: one poller at a time, each seeing
	 * what the one before it left (the drained break_fd). */
	bool poller = !atomic_exchange_explicit(&poll_set.polling, true,
						memory_order_acquire);

	weft__driver_run_inbox(d);
	/* seq_cst, both: the sleeper's half of the rule in epoll.h. */
	atomic_store(&ep->sleep, poller ? EPOLL_POLLING : EPOLL_SLEEPING);
	if (atomic_load(&d->wake_pending))
		timeout_ns = 0;
	run_events(ep, poller ? weft__epoll_poll_fd() : ep->epfd, timeout_ns,
		   poller);
	atomic_store(&ep->sleep, EPOLL_AWAKE);
	if (poller)
		atomic_store_explicit(&poll_set.polling, false,
				      memory_order_release);
	weft__driver_wake_consumed(d);
	weft__driver_run_inbox(d);
}
