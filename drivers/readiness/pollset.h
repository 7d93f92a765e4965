/*
 * The poll set: one epoll instance per runtime holding every fd a task
 * waited on for readiness (edge-triggered, both directions, kept until
 * weft_close; the per-fd records are fdready.h), plus a "break" eventfd
 * that wakes a worker sleeping in it. Both drivers use it for sockets
 * (their transfers: io/call.h):
 *
 *   epoll     a worker sleeps in the set itself (epoll.h);
 *   io_uring  so does a worker whose ring has nothing in flight; one that
 *             waits for its ring sleeps there, with a poll request on the
 *             set's fd armed (ring.c).
 *
 * Any worker may harvest it: a busy one every WEFT__HARVEST_INTERVAL ticks,
 * every one before it sleeps, and the one that claimed the poller role
 * while it sleeps. So an event finds a free worker whichever worker's task
 * registered the fd or last waited on it. A readiness source tied to one
 * worker (an epoll per worker, as the epoll driver first had; an io_uring
 * request, whose completion only its submitting thread can post) holds its
 * fds' events while that worker is descheduled by the OS or busy with a
 * long batch: that was most of each driver's tail latency. Tokio's one
 * driver, polled by whichever worker parks, and Go's netpoller share theirs
 * the same way.
 *
 * Invariants:
 *  - At most one worker holds the poller role: the one whose
 *    weft__pollset_claim returned true, until its weft__pollset_release.
 *  - The set's fds live from the first driver's join to the last one's
 *    leave. An unparker writes the break fd only for a worker whose
 *    driver is not closed yet (driver.c's unparkers count), so never after
 *    it is closed.
 */
#ifndef WEFT_DRIVERS_READINESS_POLLSET_H
#define WEFT_DRIVERS_READINESS_POLLSET_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/epoll.h>

/* How often, in ticks (task runs), a busy worker harvests the set once
 * an fd joined it: a prime, as Tokio's event_interval. */
#define WEFT__HARVEST_INTERVAL 61

/* A driver instance opens / closes: the first join makes the set, the
 * last leave closes it. Returns 0 or -errno. Any thread. */
int weft__pollset_join(void);
void weft__pollset_leave(void);

/* The set's epoll fd, or -1 while no driver is open. Any thread. */
int weft__pollset_fd(void);
/* The eventfd that breaks a sleep in the set (the epoll driver's poller). */
int weft__pollset_break_fd(void);

/* An fd joined the set: from now on a harvest is worth a system call.
 * The first arms the monitor if no worker sleeps in the set. Any
 * thread. */
void weft__pollset_watching(void);

/* Takes the poller role if nobody holds it (true), or not (false);
 * release gives it back. */
bool weft__pollset_claim(void);
void weft__pollset_release(void);
/* After a worker left the set (a park, or a harvest that claimed the
 * role): arms the monitor if the set is left unattended (monitor.h). */
void weft__pollset_left(void);

/* An fd joined the set and no worker sleeps in it: the poller left it to
 * run tasks, and the other workers sleep elsewhere or run. Events wait
 * for a busy worker's next harvest, or a sleeper's wake-up, unless the
 * monitor harvests (monitor.h). The role is read seq_cst, for the
 * monitor's arming rule. */
bool weft__pollset_unattended(void);

/* How many harvests have run (a count that only grows), for the monitor
 * to see whether any worker harvested since its last look. */
uint64_t weft__pollset_harvests(void);

/* Waits up to timeout_ns (-1: no limit, 0: not at all) for the set's
 * events and hands each fd's to fdready, then takes what else is ready
 * without waiting. poller: the caller holds the poller role, so it drains
 * the break fd (others leave it set for the poller, as it is level-
 * triggered). Returns how many events it handled. */
int weft__pollset_harvest(int64_t timeout_ns, bool poller);

/* Harvests the set without waiting, once an fd joined it; before that,
 * nothing (no system call). A program that never waits on an fd (a
 * compute job) makes no system call here; one that does looks whether or
 * not a task waits at the moment, as Tokio does. (A count of the waiting
 * tasks, kept before, cost two atomic adds on one shared line per wait.)
 * Returns how many events it handled. */
int weft__pollset_look(void);

/* The look a worker takes before it sleeps (the drivers' reap), so that
 * events already ready run on it rather than wait for the poller: skipped
 * when the worker will sleep in the set itself (sleep_in_set: it may poll,
 * its driver would sleep there, and no worker holds the role now), since
 * that sleep's harvest returns at once with anything the look would find.
 * Returns how many events it handled. */
int weft__pollset_look_before_sleep(bool sleep_in_set);

/* epoll_wait on any epoll fd with a timeout in nanoseconds (epoll_pwait2,
 * Linux 5.11; before that, under a seccomp profile that refuses it, or
 * under valgrind, milliseconds rounded up, so a sleep is late by under a
 * millisecond but never early). */
int weft__epoll_wait_ns(int epfd, struct epoll_event *ev, int max,
			int64_t timeout_ns);

#endif
