/* The runtime's poll set: see pollset.h. */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "fdready.h"
#include "pollset.h"
#include "runtime/driver.h"
#include "runtime/worker.h"

#define EVENTS 128
/* Epoll data of the break eventfd; fds use fdready's (gen << 32 | fd). */
#define BREAK_TAG UINT64_MAX

static _Atomic bool no_pwait2; /* epoll_pwait2 said ENOSYS or EPERM once */

static struct {
	pthread_mutex_t mu; /* users, and making and closing the fds */
	int users;          /* drivers joined and not left */
	_Atomic int epfd;   /* -1 while no driver is open */
	int break_fd;
	_Atomic bool polling;  /* the poller role is taken */
	_Atomic bool watching; /* an fd joined it */
	_Atomic uint64_t harvests;
} set = { PTHREAD_MUTEX_INITIALIZER, 0, -1, -1, false, false, 0 };

int weft__pollset_fd(void)
{
	/* relaxed: set under set.mu by the first driver's join, which every
	 * other join takes after it, and tasks run only once every worker's
	 * driver is set up (run.c's start handshake, under rt->mu); reset
	 * after they stopped. A plain thread may read -1 meanwhile, and then
	 * has nothing of the set's to drop. */
	return atomic_load_explicit(&set.epfd, memory_order_relaxed);
}

int weft__pollset_break_fd(void)
{
	return set.break_fd;
}

/* The first fd to join makes a set with no poller unattended, as a poller
 * leaving does (worker.c arms the monitor then, but only if an fd had
 * joined): so it arms the monitor too, or a task keeping the worker whose
 * task registered it would strand its events while the other workers
 * sleep outside the set. The exchange and the load of polling are seq_cst,
 * the registrant's half of the monitor's arming rule (monitor.h), whose
 * disarm reads both after setting IDLE. */
void weft__pollset_watching(void)
{
	/* Relaxed look first, so the line stays shared once set: it orders
	 * nothing. A stale false leads to the exchange, which reads the
	 * true in the single order; a true read here means some
	 * registrant's exchange set it, and that one armed as needed. */
	if (atomic_load_explicit(&set.watching, memory_order_relaxed) ||
	    atomic_exchange(&set.watching, true) || atomic_load(&set.polling))
		return;
	struct weft_runtime *rt = atomic_load(&weft__rt);
	if (rt)
		weft__monitor_arm(&rt->monitor);
}

static bool watched(void)
{
	/* relaxed: a hint; an edge not taken for want of it stays queued in
	 * the set (edge-triggered events wait there until someone
	 * harvests). */
	return atomic_load_explicit(&set.watching, memory_order_relaxed);
}

bool weft__pollset_claim(void)
{
	/* acquire, and release below: one poller at a time, each seeing
	 * what the one before it left (the drained break fd). */
	return !atomic_exchange_explicit(&set.polling, true,
					 memory_order_acquire);
}

/* seq_cst, as the load in unattended: the poller's half of the monitor's
 * arming rule (monitor.h). Once per poller wake-up. */
void weft__pollset_release(void)
{
	atomic_store(&set.polling, false);
}

/* After a worker left the set (its park, or ring.c's pollset_complete,
 * which no park follows): the leaver's half of the arming rule
 * (monitor.h), the release's seq_cst store, then unattended's loads and
 * the arm's load of the state. */
void weft__pollset_left(void)
{
	struct weft_runtime *rt;

	if (weft__pollset_unattended() && (rt = atomic_load(&weft__rt)))
		weft__monitor_arm(&rt->monitor);
}

/* Both loads seq_cst: the monitor's half of the arming rule (monitor.h),
 * against a poller's release and the first fd's join. */
bool weft__pollset_unattended(void)
{
	return atomic_load(&set.watching) && !atomic_load(&set.polling);
}

uint64_t weft__pollset_harvests(void)
{
	/* relaxed: a count compared with the monitor's last reading (see
	 * weft__pollset_harvest's add); nothing is read through it. */
	return atomic_load_explicit(&set.harvests, memory_order_relaxed);
}

/* Makes the set for the first driver. Under set.mu. */
static int open_set(void)
{
	int epfd = epoll_create1(EPOLL_CLOEXEC), r = 0;
	struct epoll_event ev = { .events = EPOLLIN, .data.u64 = BREAK_TAG };

	if (epfd < 0)
		return -errno;
	set.break_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (set.break_fd < 0 ||
	    epoll_ctl(epfd, EPOLL_CTL_ADD, set.break_fd, &ev))
		r = -errno;
	if (r) {
		if (set.break_fd >= 0)
			close(set.break_fd);
		set.break_fd = -1;
		close(epfd);
		return r;
	}
	/* relaxed, both: under set.mu, before any worker runs a task (the
	 * start handshake under rt->mu orders them before every reader, as
	 * in weft__pollset_fd); the monitor starts after the drivers. */
	atomic_store_explicit(&set.watching, false, memory_order_relaxed);
	atomic_store_explicit(&set.epfd, epfd, memory_order_relaxed);
	return 0;
}

int weft__pollset_join(void)
{
	int r = 0;

	pthread_mutex_lock(&set.mu);
	if (!set.users && (r = open_set()))
		goto out;
	set.users++;
out:
	pthread_mutex_unlock(&set.mu);
	return r;
}

void weft__pollset_leave(void)
{
	pthread_mutex_lock(&set.mu);
	if (--set.users == 0) {
		/* relaxed, load and store: under set.mu, which every write
		 * holds; the last driver leaves after the tasks stopped
		 * (weft__pollset_fd). */
		close(atomic_load_explicit(&set.epfd, memory_order_relaxed));
		atomic_store_explicit(&set.epfd, -1, memory_order_relaxed);
		close(set.break_fd);
		set.break_fd = -1;
	}
	pthread_mutex_unlock(&set.mu);
}

int weft__epoll_wait_ns(int epfd, struct epoll_event *ev, int max,
			int64_t timeout_ns)
{
	int n;

	/* relaxed: a flag that only turns on and guards no data; a thread
	 * that misses it tries epoll_pwait2 once more and gets its own
	 * ENOSYS or EPERM. */
	if (timeout_ns > 0 &&
	    !atomic_load_explicit(&no_pwait2, memory_order_relaxed)) {
		struct timespec ts = { .tv_sec = timeout_ns / 1000000000,
				       .tv_nsec = timeout_ns % 1000000000 };

		n = epoll_pwait2(epfd, ev, max, &ts, NULL);
		/* ENOSYS: a kernel before 5.11. EPERM, which epoll_pwait2
		 * never says itself: a seccomp profile older than it that
		 * refuses what it does not list with EPERM (a container
		 * runtime's default may); returned, every timed sleep would
		 * end at once and its worker spin. */
		if (n >= 0 || (errno != ENOSYS && errno != EPERM))
			return n;
		/* relaxed: as the load above. */
		atomic_store_explicit(&no_pwait2, true, memory_order_relaxed);
	}
	if (timeout_ns < 0)
		return epoll_wait(epfd, ev, max, -1);
	if (timeout_ns > (int64_t)INT32_MAX * 1000000)
		timeout_ns = (int64_t)INT32_MAX * 1000000;
	/* Rounded up: never wake before the timer is due. */
	return epoll_wait(epfd, ev, max,
			  (int)((timeout_ns + 999999) / 1000000));
}

int weft__pollset_harvest(int64_t timeout_ns, bool poller)
{
	struct epoll_event ev[EVENTS];
	int n, handled = 0;

	/* relaxed: a count the monitor compares with its last reading; a
	 * stale one costs it one needless harvest. A harvest is a system
	 * call, so one add on a shared line is noise beside it. */
	atomic_fetch_add_explicit(&set.harvests, 1, memory_order_relaxed);
	do {
		n = weft__epoll_wait_ns(weft__pollset_fd(), ev, EVENTS,
					timeout_ns);
		for (int i = 0; i < n; i++) {
			if (ev[i].data.u64 != BREAK_TAG)
				weft__fdready_event(ev[i].data.u64,
						    ev[i].events);
			else if (poller)
				weft__eventfd_drain(set.break_fd);
		}
		handled += n > 0 ? n : 0;
		timeout_ns = 0;
	} while (n == EVENTS);
	return handled;
}

int weft__pollset_look(void)
{
	return watched() ? weft__pollset_harvest(0, false) : 0;
}

/* The skipped look was one epoll_wait of the two a poller made per sleep:
 * an echo server at half load made 3.4-3.5 system calls per request, 2.9-3.0
 * without it, as Tokio's 3.0 (bench/README.md, thirty-second session). */
int weft__pollset_look_before_sleep(bool sleep_in_set)
{
	/* relaxed: a hint. A worker that takes the role meanwhile harvests
	 * what this one did not look at, and this one sleeps outside. */
	if (sleep_in_set &&
	    !atomic_load_explicit(&set.polling, memory_order_relaxed))
		return 0;
	return weft__pollset_look();
}
