/*
 * The driver interface's common part: see driver.h. The choice of driver,
 * the calling thread's instance, and the cross-thread wake-up and message
 * inbox both drivers share.
 *
 * Wake-ups: other threads write the eventfd the owner watches while parked
 * (the io_uring driver keeps a read armed on it; the epoll driver has it
 * registered in the worker's own epoll, or says which other eventfd to
 * write when the worker sleeps in the shared poll set: epoll.h).
 * wake_pending collapses concurrent wake-ups into one write until the owner
 * consumes it.
 *
 * Invariants:
 *  - wake_pending is 1 from the unparker's exchange until the owner's
 *    weft__driver_wake_consumed exchanges it back; a write to wake_fd is
 *    outstanding the whole time, so a skipped write never loses a wake-up.
 *    The owner's exchange (acq_rel) reads every skipped unparker's exchange,
 *    so it sees what they published before unparking.
 *  - weft__driver_close sets closed, then waits for unparkers to reach 0,
 *    both sequentially consistent against the unparker's increment-then-
 *    check: either the unparker sees closed and does not write, or free
 *    sees it and waits, so wake_fd is never written after (or while) it is
 *    closed.
 */
#include <errno.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "driver.h"

static _Atomic int running_kind; /* enum weft_io_kind of weft_run's drivers */
static _Atomic uint64_t run_id;

enum weft_io_kind weft__driver_kind(void)
{
	return (enum weft_io_kind)atomic_load_explicit(&running_kind,
						       memory_order_relaxed);
}

void weft__driver_set_kind(enum weft_io_kind kind)
{
	if (kind != WEFT_IO_AUTO)
		atomic_fetch_add(&run_id, 1);
	atomic_store(&running_kind, (int)kind);
}

uint64_t weft__driver_run_id(void)
{
	/* relaxed: set before the workers start, which orders it. */
	return atomic_load_explicit(&run_id, memory_order_relaxed);
}

enum weft_io_kind weft_io_driver(void)
{
	return weft__driver_kind();
}

static int parse_env(enum weft_io_kind *kind)
{
	const char *env = getenv("WEFT_IO");

	if (!env || !*env || !strcmp(env, "auto"))
		*kind = WEFT_IO_AUTO;
	else if (!strcmp(env, "io_uring"))
		*kind = WEFT_IO_URING;
	else if (!strcmp(env, "epoll"))
		*kind = WEFT_IO_EPOLL;
	else
		return -EINVAL;
	return 0;
}

int weft__driver_choose(const struct weft_config *cfg, enum weft_io_kind *kind)
{
	enum weft_io_kind k = cfg ? cfg->io : WEFT_IO_AUTO;
	int r;

	if (k != WEFT_IO_AUTO && k != WEFT_IO_URING && k != WEFT_IO_EPOLL)
		return -EINVAL;
	if (k == WEFT_IO_AUTO && (r = parse_env(&k)))
		return r;
	/* Only auto falls back: a forced io_uring that cannot start fails
	 * in the workers' setup, which says why. */
	if (k == WEFT_IO_AUTO)
		k = weft__uring_probe() ? WEFT_IO_EPOLL : WEFT_IO_URING;
	*kind = k;
	return 0;
}

struct weft__driver *weft__driver_new(enum weft_io_kind kind, int *err,
				      const char **why)
{
	if (kind == WEFT_IO_URING)
		return weft__uring_new(err, why);
	return weft__epoll_new(err, why);
}

void weft__driver_close(struct weft__driver *d)
{
	atomic_store(&d->closed, true);
	while (atomic_load(&d->unparkers))
		sched_yield();
	if (d->kind == WEFT_IO_URING)
		weft__uring_close(d);
	else
		weft__epoll_close(d);
}

void weft__driver_free(struct weft__driver *d)
{
	free(d); /* each driver's struct starts with its base, from malloc */
}

int weft__driver_base_init(struct weft__driver *d, enum weft_io_kind kind,
			   int efd_flags)
{
	d->kind = kind;
	atomic_init(&d->inbox, NULL);
	atomic_init(&d->wake_pending, false);
	atomic_init(&d->unparkers, 0);
	atomic_init(&d->closed, false);
	d->wake_fd = eventfd(0, EFD_CLOEXEC | efd_flags);
	return d->wake_fd < 0 ? -errno : 0;
}

void weft__driver_base_exit(struct weft__driver *d)
{
	close(d->wake_fd);
	d->wake_fd = -1;
}

void weft__eventfd_drain(int efd)
{
	uint64_t n;

	while (read(efd, &n, sizeof(n)) < 0 && errno == EINTR)
		;
}

void weft__driver_wake_consumed(struct weft__driver *d)
{
	atomic_exchange_explicit(&d->wake_pending, false, memory_order_acq_rel);
}

void weft__driver_unpark(struct weft__driver *d)
{
	uint64_t one = 1;

	atomic_fetch_add(&d->unparkers, 1);
	/* seq_cst exchange: the epoll driver's sleep rule (epoll.h) pairs it
	 * with the sleeper's store and load; acq_rel would do for io_uring. */
	if (!atomic_load(&d->closed) &&
	    !atomic_exchange(&d->wake_pending, true)) {
		int fd = d->kind == WEFT_IO_EPOLL ? weft__epoll_wake_fd(d)
						  : weft__uring_wake_fd(d);
		ssize_t n = write(fd, &one, sizeof(one));

		(void)n; /* EAGAIN: the counter is full, a wake-up is pending */
	}
	atomic_fetch_sub_explicit(&d->unparkers, 1, memory_order_release);
}

void weft__driver_post(struct weft__driver *d, struct weft__driver_msg *m)
{
	struct weft__driver_msg *top =
		atomic_load_explicit(&d->inbox, memory_order_relaxed);

	/* release: the owner's acquire exchange in run_inbox sees m's fields
	 * and whatever the poster wrote before posting. */
	do
		m->next = top;
	while (!atomic_compare_exchange_weak_explicit(&d->inbox, &top, m,
						      memory_order_release,
						      memory_order_relaxed));
	weft__driver_unpark(d);
}

int weft__driver_run_inbox(struct weft__driver *d)
{
	struct weft__driver_msg *m, *fifo = NULL;
	int n = 0;

	if (!atomic_load_explicit(&d->inbox, memory_order_relaxed))
		return 0;
	m = atomic_exchange_explicit(&d->inbox, NULL, memory_order_acquire);
	while (m) { /* the inbox is newest-first */
		struct weft__driver_msg *next = m->next;

		m->next = fifo;
		fifo = m;
		m = next;
	}
	while (fifo) {
		struct weft__driver_msg *next = fifo->next;

		fifo->run(fifo);
		fifo = next;
		n++;
	}
	return n;
}
