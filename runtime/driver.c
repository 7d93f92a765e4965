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
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "driver.h"

static _Atomic int running_kind; /* enum weft_io_kind of weft_run's drivers */
static _Atomic int running_sock; /* enum weft_sock_path of weft_run */
static _Atomic uint64_t run_id;

enum weft_io_kind weft__driver_kind(void)
{
	/* relaxed: set before the workers start (pthread_create orders it
	 * for them and their tasks); a plain thread that reads the value
	 * of before or after a run acts as if it called then. */
	return (enum weft_io_kind)atomic_load_explicit(&running_kind,
						       memory_order_relaxed);
}

void weft__driver_set_kind(enum weft_io_kind kind, bool sock_on_ring)
{
	enum weft_sock_path sock = WEFT_SOCK_AUTO;

	if (kind != WEFT_IO_AUTO) {
		atomic_fetch_add(&run_id, 1);
		sock = sock_on_ring ? WEFT_SOCK_RING : WEFT_SOCK_SYSCALL;
	}
	atomic_store(&running_kind, (int)kind);
	atomic_store(&running_sock, (int)sock);
}

enum weft_sock_path weft_sock_path(void)
{
	/* relaxed: as weft__driver_kind. */
	return (enum weft_sock_path)atomic_load_explicit(&running_sock,
							 memory_order_relaxed);
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

/*
 * One of a config field's three values: 0 is auto, which defers to
 * environment variable var (unset or empty: auto too), whose names are
 * names[0..2] in the field's order. Returns the choice, auto only if both
 * said auto, or -EINVAL for a bad value of either.
 */
static int choose(int cfg_value, const char *var, const char *const names[3])
{
	_Static_assert(WEFT_IO_URING == 1 && WEFT_IO_EPOLL == 2 &&
			       WEFT_SOCK_RING == 1 && WEFT_SOCK_SYSCALL == 2,
		       "the names given to choose() follow the enums");
	const char *env = getenv(var);

	if (cfg_value < 0 || cfg_value > 2)
		return -EINVAL;
	if (cfg_value || !env || !*env)
		return cfg_value;
	for (int i = 0; i < 3; i++)
		if (!strcmp(env, names[i]))
			return i;
	return -EINVAL;
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/*
 * What a null system call costs here, in ns: the least of a few timed
 * batches, so that a preemption or a pause of the host during one does not
 * count. Under 0.1 ms where a call costs 1.5 us.
 */
static uint64_t syscall_cost_ns(void)
{
	enum { BATCHES = 8, CALLS = 8 };
	uint64_t least = UINT64_MAX;

	for (int b = 0; b < BATCHES; b++) {
		uint64_t t0 = now_ns();
		for (int i = 0; i < CALLS; i++)
			syscall(SYS_getppid);
		uint64_t t = (now_ns() - t0) / CALLS;
		least = t < least ? t : least;
	}
	return least;
}

/*
 * Under io_uring a socket attempt is either the system call or an SQE on
 * the worker's ring; a round's SQEs go in one system call. The ring saves
 * about 1.8 system calls a request (echo, 100 connections) and costs its
 * own work per operation, plus a pass through the worker's ready queue
 * while the SQE waits for its round (io/call.h). Measured on two hosts of
 * the same kind (bench/README.md, sixteenth and nineteenth sessions): at
 * 0.2 us a system call the system calls cost 1-3% less CPU per request
 * and had the lower closed-loop p99; at 1.1-1.6 us (page-table isolation
 * under a paravirtual hypervisor) the ring cost 10-40% less, run by run,
 * and had the lower closed-loop p99. The threshold sits between the two,
 * where the saving (1.8 x 0.5 us) is well over what the sixteenth
 * session's host measured the ring to cost.
 */
#define SOCK_RING_ABOVE_NS 500

static int choose_sock(const struct weft_config *cfg, enum weft_io_kind kind,
		       bool *on_ring)
{
	static const char *const names[] = { "auto", "ring", "syscall" };
	int p = choose(cfg ? (int)cfg->sockets : 0, "WEFT_SOCKETS", names);

	if (p < 0)
		return p;
	if (p == WEFT_SOCK_AUTO && kind == WEFT_IO_URING)
		p = syscall_cost_ns() > SOCK_RING_ABOVE_NS ? WEFT_SOCK_RING
							   : WEFT_SOCK_SYSCALL;
	*on_ring = kind == WEFT_IO_URING && p == WEFT_SOCK_RING;
	return 0;
}

int weft__driver_choose(const struct weft_config *cfg, enum weft_io_kind *kind,
			bool *sock_on_ring, bool *may_fall_back)
{
	static const char *const names[] = { "auto", "io_uring", "epoll" };
	int k = choose(cfg ? (int)cfg->io : 0, "WEFT_IO", names), r;

	if (k < 0)
		return k;
	/* Only auto falls back, here or in the workers' setup (run.c): a
	 * forced io_uring that cannot start fails there, which says why. */
	if (k == WEFT_IO_AUTO) {
		k = weft__uring_probe() ? WEFT_IO_EPOLL : WEFT_IO_URING;
		*may_fall_back = k == WEFT_IO_URING;
	} else {
		*may_fall_back = false;
	}
	if ((r = choose_sock(cfg, k, sock_on_ring)))
		return r;
	*kind = (enum weft_io_kind)k;
	return 0;
}

/*
 * The probe's ring is small (4 entries) and a worker's is not (RING_ENTRIES
 * in ring.c): up to Linux 5.11 a ring's memory counts against
 * RLIMIT_MEMLOCK (64 KiB by default then), which the probe's fits and the
 * workers' together may not, so theirs fail with ENOMEM (as does a failed
 * malloc of the ring's own struct: trying epoll then costs nothing that
 * matters, and it fails too if memory is short). Also taken as
 * "not here": what the probe's refusal would have been, had the kernel
 * said so then (EPERM: io_uring_disabled, seccomp; EACCES: an LSM;
 * ENOSYS: no io_uring, or a ring without what weft needs). Not EMFILE or
 * ENFILE (epoll needs descriptors too: that error is the user's to see)
 * nor EINVAL (the setup's flags are retried down to none: a bug).
 */
bool weft__driver_unusable(int err)
{
	return err == -ENOMEM || err == -EPERM || err == -EACCES ||
	       err == -ENOSYS;
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
	/* acq_rel: an RMW, so unparkers' exchanges and ours are in one
	 * order. One after ours finds false and writes the fd; one before
	 * ours, whose write we may have consumed, set true with release
	 * after publishing its work, and our acquire makes that work
	 * visible to the scheduler's look after this. */
	atomic_exchange_explicit(&d->wake_pending, false, memory_order_acq_rel);
}

void weft__driver_unpark(struct weft__driver *d)
{
	uint64_t one = 1;

	atomic_fetch_add(&d->unparkers, 1);
	/* seq_cst exchange: the sleep rule of both drivers (epoll.h, and
	 * ring.c's sleep_in_set) pairs it and the seq_cst load of the sleep
	 * state in the driver's wake_fd with the sleeper's store of that
	 * state and load of wake_pending: store buffering, which acq_rel
	 * would not forbid, under either driver. */
	if (!atomic_load(&d->closed) &&
	    !atomic_exchange(&d->wake_pending, true)) {
		int fd = d->kind == WEFT_IO_EPOLL ? weft__epoll_wake_fd(d)
						  : weft__uring_wake_fd(d);
		ssize_t n = write(fd, &one, sizeof(one));

		(void)n; /* EAGAIN: the counter is full, a wake-up is pending */
	}
	/* release: pairs with driver_close's seq_cst load that reads 0, so
	 * our write to the fd, and every read of d, happen before the close
	 * and the free. */
	atomic_fetch_sub_explicit(&d->unparkers, 1, memory_order_release);
}

void weft__driver_post(struct weft__driver *d, struct weft__driver_msg *m)
{
	/* Relaxed: only a guess for the CAS, which re-reads on failure. */
	struct weft__driver_msg *top =
		atomic_load_explicit(&d->inbox, memory_order_relaxed);

	/* release: the owner's acquire exchange in run_inbox sees m's fields
	 * and whatever the poster wrote before posting. A failed CAS
	 * published nothing: relaxed. */
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

	/* Relaxed: a peek. A post it misses set wake_pending after its CAS
	 * (driver_unpark), so the owner comes round again; what the
	 * messages carry is acquired by the exchange. */
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
