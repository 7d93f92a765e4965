/*
 * The I/O driver: everything a worker needs from the kernel to park, to be
 * woken by another thread, to wait for I/O and to fire its nearest timer.
 * One interface, two implementations, chosen once per weft_run:
 *
 *   drivers/io_uring/   a ring per worker: a task submits an operation and
 *                       parks; the kernel does it and the driver wakes the
 *                       task with the result.
 *   drivers/epoll/      system calls: the worker sleeps in epoll.
 *
 * Sockets go the same way under both: a task makes a non-blocking attempt
 * (the system call, or under io_uring where system calls cost more an SQE
 * its worker submits with its round's others: io/call.h) and parks only
 * on EAGAIN, in the runtime's one poll set (drivers/readiness/), which any
 * worker may harvest; the harvester wakes the task when the fd may be
 * ready, and it tries again.
 *
 * Every worker owns one driver instance (a ring, or an epoll fd to sleep
 * in), made and closed on its own thread, so parking, unparking and timers
 * stay per worker.
 *
 * Contract (who calls what, on which thread):
 *  - weft__driver_new / _close / _poll / _reap / _park: the owning worker
 *    only, in its scheduler context (never from a task's stack). _close
 *    releases the kernel side and waits out unparkers still running; any
 *    unpark after it is a no-op. _free releases the memory, on any thread,
 *    once nobody can call unpark any more (weft_run, after the joins).
 *  - weft__driver_unpark / _post: any thread, any time between new and
 *    free (a worker may close its driver while weft_run still unparks
 *    it). unpark never blocks; wake-ups collapse, but one that comes while
 *    the owner is awake is never lost: its next park returns at once.
 *  - A posted message runs on the owner, in its scheduler context, on its
 *    next poll, reap or park, in the order it was posted (per poster).
 *  - _poll is the cheap per-task-run check (io_uring: submit the round's
 *    SQEs, reap CQEs; both: run messages, and harvest the poll set every
 *    few ticks once it holds an fd). _reap handles everything ready now
 *    without blocking. _park sleeps until an event, an unpark or timeout_ns
 *    (-1: none), then handles what is ready as _reap does.
 *  - A completion (io_uring) is final: the operation ran and its result is
 *    the call's result; buffers it named may be written until it arrives.
 *  - A readiness event is a hint: the fd changed since it was registered
 *    or last reported. The woken task makes its attempt again, which may
 *    say EAGAIN again; it touched no buffer meanwhile, so an aborted wait
 *    needs nothing cancelled in the kernel.
 *  - Both wake tasks only through the waiter protocol (wait.h), so an event
 *    for a task that stopped waiting (cancelled, timed out, fd closed) is
 *    dropped by the waiter's settle, on whichever worker handles it.
 *
 * Dispatch is by the kind field, a predictable branch inline at each call:
 * cheaper than an indirect call on the per-task-run path.
 */
#ifndef WEFT_RUNTIME_DRIVER_H
#define WEFT_RUNTIME_DRIVER_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "weft/task.h"
#include "drivers/readiness/pollset.h"

/* A message for the owning worker (weft__driver_post). */
struct weft__driver_msg {
	void (*run)(struct weft__driver_msg *m);
	struct weft__driver_msg *next;
};

/* What every driver instance starts with; each driver embeds it first. */
struct weft__driver {
	enum weft_io_kind kind; /* WEFT_IO_URING or WEFT_IO_EPOLL */
	int wake_fd;            /* eventfd other threads write */
	_Atomic(struct weft__driver_msg *) inbox; /* LIFO of posted messages */
	_Atomic bool wake_pending; /* a write to wake_fd not consumed */
	_Atomic int unparkers;     /* threads inside driver_unpark */
	_Atomic bool closed;       /* weft__driver_close has begun */
	/* For weft_metrics (io_uring: SQEs other than the wake-up read, and
	 * their last CQEs; epoll: none): written by the owner only, with a
	 * relaxed load and store (ops_completed: a release store), read by
	 * anyone (metrics.c's read_io). */
	_Atomic uint64_t ops_submitted, ops_completed;
	/* io_uring: enough operations wait to be submitted that a task
	 * parking now hands over to the scheduler (weft__driver_round_due).
	 * Owner only. */
	bool round_due;
	/* io_uring: socket transfers are attempts on the ring, submitted a
	 * round at a time, rather than system calls (io/call.h). Set by the
	 * worker before it runs tasks, read by its tasks. */
	bool sock_on_ring;
};

/* Adds n to one of d's counters. Owner only: a relaxed load and store do
 * an add's work. Relaxed: a count that readers (weft_metrics) take as a
 * gauge; reap's release store of ops_completed publishes the counts of
 * ops_submitted before it. */
static inline void weft__driver_count(_Atomic uint64_t *c, uint64_t n)
{
	atomic_store_explicit(c,
			      atomic_load_explicit(c, memory_order_relaxed) + n,
			      memory_order_relaxed);
}

/* Resolves the choice of cfg->io and $WEFT_IO (the config wins unless it is
 * auto) to a driver that can start here: auto probes io_uring and takes
 * epoll, silently, if the kernel refuses it or lacks what weft needs. Then,
 * for io_uring, cfg->sockets and $WEFT_SOCKETS the same way, auto timing a
 * system call, to *sock_on_ring (false under epoll). *may_fall_back says
 * whether auto chose io_uring, so that weft_run may still take epoll if a
 * worker's ring is refused (weft__driver_unusable). Returns 0, or -EINVAL
 * for a bad value. */
int weft__driver_choose(const struct weft_config *cfg, enum weft_io_kind *kind,
			bool *sock_on_ring, bool *may_fall_back);

/* Whether err, from a worker's weft__driver_new of io_uring, says io_uring
 * is not usable here, where the probe's ring was granted: auto then takes
 * epoll after all (weft_run). */
bool weft__driver_unusable(int err);

/* Makes the calling worker's instance of kind. Returns it, or NULL with
 * *err = -errno and *why saying in one line what to tell the user. */
struct weft__driver *weft__driver_new(enum weft_io_kind kind, int *err,
				      const char **why);
void weft__driver_close(struct weft__driver *d);
void weft__driver_free(struct weft__driver *d);

/* The calling worker's driver: weft__driver_current, in self.h. */

/* The kind of the running runtime's drivers; WEFT_IO_AUTO when none runs.
 * Any thread. */
enum weft_io_kind weft__driver_kind(void);
/* weft_run, before the workers start, and with WEFT_IO_AUTO after they
 * stopped; sock_on_ring is what weft_sock_path() reports. Each start begins
 * a new run id (never 0). */
void weft__driver_set_kind(enum weft_io_kind kind, bool sock_on_ring);
uint64_t weft__driver_run_id(void);

void weft__driver_unpark(struct weft__driver *d);
void weft__driver_post(struct weft__driver *d, struct weft__driver_msg *m);

/* For the drivers: runs the posted messages (returns how many), and marks
 * the wake-up write consumed after reading wake_fd. Owner only. */
int weft__driver_run_inbox(struct weft__driver *d);
void weft__driver_wake_consumed(struct weft__driver *d);
/* Sets up / tears down the common part: the eventfd, made with efd_flags
 * besides EFD_CLOEXEC (the io_uring driver's read of it must block, so
 * that it waits in the kernel; epoll reads it only when ready). */
int weft__driver_base_init(struct weft__driver *d, enum weft_io_kind kind,
			   int efd_flags);
void weft__driver_base_exit(struct weft__driver *d);

/* Empties a non-blocking eventfd (a wake-up was consumed), retrying a read
 * a signal interrupted. */
void weft__eventfd_drain(int efd);

/* The implementations (drivers/io_uring/ring.c, drivers/epoll/epoll.c). */
int weft__uring_probe(void);
struct weft__driver *weft__uring_new(int *err, const char **why);
void weft__uring_close(struct weft__driver *d);
void weft__uring_poll(struct weft__driver *d);
int weft__uring_reap(struct weft__driver *d, bool may_poll);
void weft__uring_park(struct weft__driver *d, int64_t timeout_ns,
		      bool may_poll);

struct weft__driver *weft__epoll_new(int *err, const char **why);
void weft__epoll_close(struct weft__driver *d);
void weft__epoll_poll(struct weft__driver *d);
int weft__epoll_reap(struct weft__driver *d, bool may_poll);
void weft__epoll_park(struct weft__driver *d, int64_t timeout_ns,
		      bool may_poll);
/* The fd an unparker of d writes, after it set d's wake_pending. */
int weft__epoll_wake_fd(struct weft__driver *d);
int weft__uring_wake_fd(struct weft__driver *d);

/* Whether a task parking now should switch out to its scheduler, which
 * submits and reaps first, rather than straight to the next task (park.c).
 * Owner only. */
static inline bool weft__driver_round_due(const struct weft__driver *d)
{
	return d->round_due;
}

/* Sockets wait in the poll set under both drivers: a busy worker harvests
 * it when harvest says (worker.c's maintain: every WEFT__HARVEST_INTERVAL
 * ticks), once it holds an fd. */
static inline void weft__driver_poll(struct weft__driver *d, bool harvest)
{
	if (harvest)
		weft__pollset_look();
	if (__builtin_expect(d->kind == WEFT_IO_URING, 1))
		weft__uring_poll(d);
	else
		weft__epoll_poll(d);
}

/* may_poll: as park's, read before the worker counted itself idle. */
static inline int weft__driver_reap(struct weft__driver *d, bool may_poll)
{
	if (d->kind == WEFT_IO_URING)
		return weft__uring_reap(d, may_poll);
	return weft__epoll_reap(d, may_poll);
}

/* may_poll: the worker may take the poll set's poller role (worker.c). */
static inline void weft__driver_park(struct weft__driver *d, int64_t timeout_ns,
				     bool may_poll)
{
	if (d->kind == WEFT_IO_URING)
		weft__uring_park(d, timeout_ns, may_poll);
	else
		weft__epoll_park(d, timeout_ns, may_poll);
}

#endif
