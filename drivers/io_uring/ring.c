/*
 * A worker's io_uring ring: see ring.h.
 *
 * Setup asks for the flags that suit one ring per worker thread, dropping
 * them one by one for older kernels:
 *   SINGLE_ISSUER   only the owner submits (true by construction);
 *   DEFER_TASKRUN   completions run only when the owner asks (reap or
 *                   park), never interrupting it: batched, and cheaper;
 *   COOP_TASKRUN    the fallback: no IPI to post a completion;
 *   TASKRUN_FLAG    the kernel flags IORING_SQ_TASKRUN when completion work
 *                   waits, so reap enters the kernel only then. Without it a
 *                   worker busy with tasks that never submit would not see
 *                   its completions until it parks;
 *   SUBMIT_ALL      a bad SQE does not stop the rest of the batch;
 *   CQSIZE          a CQ of 8x the SQ, as a worker may have far more ops in
 *                   flight than it submits in one round (overflow is still
 *                   handled: reap flushes it).
 *
 * Parking keeps a read of the driver's wake-up eventfd armed (see
 * runtime/driver.c for the wake-up protocol); its completion marks the
 * wake-up consumed, and the inbox is run after it (reap_ring). The
 * worker that claims the poll set's poller role as it parks sleeps in the
 * set itself if its ring has no operation in flight (sleep_in_set);
 * otherwise it keeps a poll request on the set's fd armed in the ring, so
 * a socket's readiness wakes it; the request completes in this ring, whose
 * owner then harvests the set (drivers/readiness/pollset.h).
 *
 * The features weft needs: IORING_FEAT_EXT_ARG (5.11), so a park waits with
 * a timeout without an SQE of liburing's own. weft__uring_probe checks for
 * it, so that auto takes epoll on an older kernel.
 *
 * Not used, on measurement (2026-12-01, echo and HTTP servers on one pinned
 * worker, 100 connections): multishot recv with a provided-buffer ring,
 * registered files, multishot accept, RECVSEND_POLL_FIRST. All of io_uring
 * is 6-9% of such a server's CPU (perf; the TCP stack is over 75%): multishot
 * recv took ~1.5 points off it and added ~1 of user time for the copy,
 * registered files took off fget/fput's ~1.5, multishot accept ~0.5 of a
 * connect-echo-close load, and POLL_FIRST added ~1. None moved CPU per
 * request beyond the noise (medians of 16 runs within 2.5%), and each ties
 * per-fd kernel state to one ring, which task migration between workers and
 * weft_close() would have to undo. Multishot recv and accept would also put
 * a socket's waiting back in one ring, where only its owner can take it
 * (ring.h). Measured again where that costs nothing, in a one-worker
 * runtime (2026-12-02, bench/floor, 8 rounds against this path in the
 * same rounds): a prototype of multishot recv into 128 or 1024 provided
 * buffers, copied out to the caller, took 2-3.5% more CPU per request,
 * with only its happy path written (bench/README.md, fifteenth session).
 * IORING_OP_EPOLL_WAIT (6.15) reading the poll set in the ring, with every
 * socket attempt there to carry it, cut a pinned echo server's system
 * calls by a quarter and left its CPU per request the same, 1.00-1.01x
 * the build before in 8 interleaved rounds (bench/README.md, twentieth
 * session).
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "drivers/readiness/pollset.h"
#include "op.h"
#include "ring.h"
#include "runtime/list.h"
#include "runtime/valgrind.h"

#define CQ_FACTOR 8
#define RING_ENTRIES 256
/*
 * A parked task's operation waits in the SQ until its worker next goes
 * through its scheduler, which a chain of direct switches from task to
 * task (park.c) may put off for up to 61 task runs. Once this many wait,
 * the next task to park hands over to the scheduler instead. Set for
 * socket attempts on the ring (bench/README.md, eleventh and fifteenth
 * sessions): with none, closed-loop p99 was 1.08x Tokio's against 0.79x
 * with 8; 16 then took 1.3-2% off the CPU per request.
 */
#define SUBMIT_BATCH 16
/* The longest wait in the ring for a completion (wait_in_ring says why). */
#define PARK_MAX_NS (3600 * (int64_t)1000000000)

static const char *explain(int err)
{
	switch (err) {
	case -EPERM:
	case -EACCES: /* a security module's denial (SELinux) */
		return "io_uring is not permitted here (sysctl "
		       "kernel.io_uring_disabled, a seccomp profile such as "
		       "a container's, or a security module): allow io_uring "
		       "to run weft";
	case -ENOSYS:
		return "io_uring is not available in this kernel (Linux 5.11 "
		       "or "
		       "newer is needed)";
	case -ENOMEM:
		return "cannot set up io_uring: out of memory or locked-memory "
		       "limit (ulimit -l)";
	default:
		return "cannot set up io_uring";
	}
}

/* The poll set has events: harvest them here. */
static void pollset_complete(struct weft__ring_op *op, int res, unsigned flags)
{
	struct weft__ring *r =
		weft__container_of(op, struct weft__ring, pollset_op);

	r->pollset_armed = false;
	/* As the poller if nobody is: then it drains the break fd too. A
	 * break written for a poller that had already woken (driver.c's
	 * unparker chose the fd while it slept) stays readable, and this
	 * poll, armed again at every park, would complete at once each time,
	 * so a poller with an operation in flight spun until it ended.
	 * Only the role's holder sleeps in the set, so while this worker
	 * holds it no break is due to anyone else. */
	bool poller = weft__pollset_claim();

	weft__pollset_harvest(0, poller);
	if (poller) {
		weft__pollset_release();
		/* Often on a busy worker (uring_poll), where no park_worker
		 * looks after it: a set this left unattended arms the
		 * monitor, whose disarm may have read the role held. */
		weft__pollset_left();
	}
}

static void wake_complete(struct weft__ring_op *op, int res, unsigned flags)
{
	struct weft__ring *r =
		weft__container_of(op, struct weft__ring, wake_op);

	r->wake_armed = false;
	weft__driver_wake_consumed(&r->base);
	r->woken = true; /* see reap_ring */
}

int (*weft__ring_setup_fn)(unsigned entries, struct io_uring *ring,
			   struct io_uring_params *p) =
	io_uring_queue_init_params;

/* Tries the helpful flags first, then fewer, as older kernels refuse them. */
static int setup(struct weft__ring *r, unsigned entries)
{
	static const unsigned tries[] = {
		IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN |
			IORING_SETUP_TASKRUN_FLAG | IORING_SETUP_SUBMIT_ALL |
			IORING_SETUP_CQSIZE,
		IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_COOP_TASKRUN |
			IORING_SETUP_TASKRUN_FLAG | IORING_SETUP_SUBMIT_ALL |
			IORING_SETUP_CQSIZE,
		IORING_SETUP_COOP_TASKRUN | IORING_SETUP_TASKRUN_FLAG |
			IORING_SETUP_CQSIZE,
		IORING_SETUP_CQSIZE,
		0,
	};
	int err = -EINVAL;

	for (size_t i = 0; i < sizeof(tries) / sizeof(tries[0]); i++) {
		struct io_uring_params p;

		memset(&p, 0, sizeof(p));
		p.flags = tries[i];
		p.cq_entries = entries * CQ_FACTOR;
		err = weft__ring_setup_fn(entries, &r->uring, &p);
		if (err != -EINVAL)
			return err;
	}
	return err;
}

/* 0 if a ring with these features serves weft, else -ENOSYS. Without
 * IORING_FEAT_EXT_ARG liburing would wait with a timeout SQE of its own,
 * whose CQE (user_data LIBURING_UDATA_TIMEOUT) reap would take for an
 * op. Checked by the probe that auto runs and by every ring's setup, so
 * a forced io_uring fails in weft_run, with the reason. */
static int features_err(unsigned features)
{
	return features & IORING_FEAT_EXT_ARG ? 0 : -ENOSYS;
}

int weft__ring_enter_err(struct io_uring *ring)
{
	int r = io_uring_enter((unsigned)ring->ring_fd, 0, 0, 0, NULL);

	return r < 0 ? r : 0;
}

static int probe_here(void)
{
	struct io_uring ring;
	struct io_uring_params p;
	int err;

	memset(&p, 0, sizeof(p));
	err = io_uring_queue_init_params(4, &ring, &p);
	if (err)
		return err;
	err = weft__ring_enter_err(&ring);
	io_uring_queue_exit(&ring);
	return err ? err : features_err(p.features);
}

static void *probe_main(void *arg)
{
	*(int *)arg = probe_here();
	return NULL;
}

/*
 * On a thread of its own, not weft_run's caller: the kernel tears a closed
 * ring down later, in a worker of its own, and then interrupts each
 * thread that set it up or entered it (task work with TWA_SIGNAL). That
 * fails the thread's blocking socket call with a timeout (SO_RCVTIMEO,
 * SO_SNDTIMEO), which the kernel does not restart, with EINTR, where no
 * signal came: the caller's first timed recv(2) after a short run failed
 * so (test_lifecycle run_leaves_no_interruption). A thread that cannot be
 * made probes on the caller's, as before.
 */
int weft__uring_probe(void)
{
	pthread_t th;
	int err;

	if (pthread_create(&th, NULL, probe_main, &err))
		return probe_here();
	pthread_join(th, NULL);
	return err;
}

struct weft__driver *weft__uring_new(int *err, const char **why)
{
	struct weft__ring *r = calloc(1, sizeof(*r));

	*err = -ENOMEM;
	*why = "out of memory";
	if (!r || !(r->unsent = weft__unsent_take()))
		goto no_ring;
	if ((*err = setup(r, RING_ENTRIES))) {
		*why = explain(*err);
		goto no_ring;
	}
	if ((*err = features_err(r->uring.features)) ||
	    (*err = weft__ring_enter_err(&r->uring))) {
		*why = explain(*err);
		goto no_base;
	}
	if ((*err = weft__driver_base_init(&r->base, WEFT_IO_URING, 0))) {
		*why = "cannot create an eventfd for waking workers";
		goto no_base;
	}
	if ((*err = weft__pollset_join())) {
		*why = "cannot create the poll set (an epoll instance)";
		weft__driver_base_exit(&r->base);
		goto no_base;
	}
	r->wake_op.complete = wake_complete;
	r->pollset_op.complete = pollset_complete;
	return &r->base;
no_base:
	io_uring_queue_exit(&r->uring);
no_ring:
	if (r && r->unsent)
		weft__unsent_give_back(r->unsent);
	free(r);
	return NULL;
}

void weft__uring_close(struct weft__driver *d)
{
	struct weft__ring *r = (struct weft__ring *)d;

	io_uring_queue_exit(&r->uring);
	weft__unsent_give_back(r->unsent);
	weft__driver_base_exit(d);
	weft__pollset_leave();
}

int (*weft__ring_submit_fn)(struct io_uring *ring) = io_uring_submit;

/* Every submit of the owner's goes through here: once the kernel has taken
 * the whole SQ, no attempt waits in it (unsent.h). An op aborted by then
 * does not go out with its fd, which weft_close may have let go (op.h). */
static void submit(struct weft__ring *r)
{
	/* Stores, not RMWs: only the owner writes submits, so relaxed. */
	uint64_t n = atomic_load_explicit(&r->submits, memory_order_relaxed);

	/* relaxed: the fence after it orders this odd store against a
	 * closer's fence and load (op.h). */
	atomic_store_explicit(&r->submits, n + 1, memory_order_relaxed);
	/* The owner's half of the rule in op.h: pairs with the fence in
	 * weft__io_abort_sync. */
	atomic_thread_fence(memory_order_seq_cst);
	weft__io_withdraw_aborted(r);
	weft__ring_submit_fn(&r->uring);
	/* release: pairs with abort_sync's acquire load; the kernel took
	 * the SQEs, and looked their fds up, before the close. */
	atomic_store_explicit(&r->submits, n + 2, memory_order_release);
	if (!io_uring_sq_ready(&r->uring))
		weft__unsent_sent(r->unsent);
}

void weft__ring_submit(struct weft__ring *r)
{
	if (io_uring_sq_ready(&r->uring))
		submit(r);
	else /* a park's wait took what a failed submit left */
		weft__unsent_sent(r->unsent);
}

/* Whether op is a task's operation, which the metrics count (submitted by
 * weft__ring_sqe), rather than the ring's own wake-up read or poll of the
 * poll set, which park submits uncounted. Counting the poll's completion
 * made completed pass submitted for good after the first one: ring_idle
 * was then never true, and io_in_flight read low. */
static bool is_task_op(const struct weft__ring *r,
		       const struct weft__ring_op *op)
{
	return op && op != &r->wake_op && op != &r->pollset_op;
}

/* Completes every ready CQE. Returns how many it handled. */
static unsigned complete_cqes(struct weft__ring *r)
{
	struct io_uring_cqe *cqe;
	unsigned head, seen = 0, ops = 0;

	/* Completion work the kernel left for us, or CQEs that overflowed
	 * the CQ: one enter runs / flushes them. */
	if (IO_URING_READ_ONCE(*r->uring.sq.kflags) &
	    (IORING_SQ_TASKRUN | IORING_SQ_CQ_OVERFLOW))
		io_uring_get_events(&r->uring);
	io_uring_for_each_cqe(&r->uring, head, cqe)
	{
		struct weft__ring_op *op = io_uring_cqe_get_data(cqe);

		seen++;
		ops += is_task_op(r, op) && !(cqe->flags & IORING_CQE_F_MORE);
		if (op)
			op->complete(op, cqe->res, cqe->flags);
	}
	io_uring_cq_advance(&r->uring, seen);
	/* release: every operation counted here was counted submitted
	 * before; weft_metrics' acquire load (read_io) relies on it. The
	 * load is relaxed: only the owner writes the count. */
	if (ops)
		atomic_store_explicit(
			&r->base.ops_completed,
			atomic_load_explicit(&r->base.ops_completed,
					     memory_order_relaxed) +
				ops,
			memory_order_release);
	return seen;
}

/* Submits what was prepared this round, then completes every ready CQE.
 * Returns how many events it handled.
 *
 * A wake-up read completed here (wake_complete) consumed the wake-up after
 * the inbox was run: a message posted in between (an op's cancel) found
 * that wake-up outstanding, so its poster wrote nothing (driver.c), and
 * none will come for it. The worker may sleep next (park_worker reaps,
 * then parks), and the message would wait for whatever woke it after: so
 * the inbox is run again. The consume's acquire exchange read the
 * poster's, which came after its push: the second look sees it. */
static int reap_ring(struct weft__ring *r)
{
	int n = weft__driver_run_inbox(&r->base);

	weft__ring_submit(r);
	r->base.round_due = false;
	n += (int)complete_cqes(r);
	if (r->woken) {
		r->woken = false;
		n += weft__driver_run_inbox(&r->base);
		weft__ring_submit(r);
	}
	return n;
}

/*
 * A free SQE, submitting the full SQ first. A submit the kernel refuses
 * takes nothing: memory short, or (kernels whose io_submit_sqes says
 * -EBUSY while CQEs wait in the overflow list) a CQ that only we can
 * empty. Only reap completes CQEs, and it does not run while this loops,
 * so complete them here: the refusal would otherwise last for ever. An
 * op whose cancel message runs later in the same inbox (op.c) may so
 * complete first; its cancel then finds nothing, as when its CQE comes
 * between the cancel's prep and its submit.
 */
static struct io_uring_sqe *get_sqe(struct weft__ring *r)
{
	struct io_uring_sqe *sqe;

	while (!(sqe = io_uring_get_sqe(&r->uring))) {
		submit(r);
		if (!io_uring_sq_space_left(&r->uring))
			complete_cqes(r);
	}
	return sqe;
}

struct io_uring_sqe *weft__ring_sqe(struct weft__ring *r)
{
	struct io_uring_sqe *sqe = get_sqe(r);

	/* Untagged until its op tags it: a submit's look at the SQ (op.c's
	 * weft__io_withdraw_aborted) must not follow a stale tag. */
	io_uring_sqe_set_data(sqe, NULL);
	weft__driver_count(&r->base.ops_submitted, 1);
	if (io_uring_sq_ready(&r->uring) >= SUBMIT_BATCH)
		r->base.round_due = true;
	return sqe;
}

/*
 * Whether reap has anything to do: SQEs the kernel has not taken (not
 * submitted yet, or left over by a submission that stopped early), work
 * the kernel deferred (DEFER_TASKRUN posts no CQE until we enter; the
 * TASKRUN_FLAG setup makes it say so in kflags) or CQEs it overflowed, a
 * ready CQE (COOP_TASKRUN posts them without us), or a posted message.
 * Plain and relaxed loads are enough: each is a hint, and a change
 * missed now is seen on the next round, as reap would see it no sooner;
 * reap itself reads the CQ tail with acquire and the inbox with an
 * acquire exchange.
 */
static bool has_work(struct weft__ring *r)
{
	const struct io_uring *u = &r->uring;

	/* relaxed inbox: a hint, as above. */
	return io_uring_sq_ready(u) ||
	       (IO_URING_READ_ONCE(*u->sq.kflags) &
		(IORING_SQ_TASKRUN | IORING_SQ_CQ_OVERFLOW)) ||
	       IO_URING_READ_ONCE(*u->cq.ktail) != *u->cq.khead ||
	       atomic_load_explicit(&r->base.inbox, memory_order_relaxed);
}

/* Every scheduler round: a few loads when there is nothing to do (the
 * common case for a worker running tasks that make no I/O). */
void weft__uring_poll(struct weft__driver *d)
{
	struct weft__ring *r = (struct weft__ring *)d;

	if (has_work(r))
		reap_ring(r);
}

/*
 * Valgrind runs one thread at a time and takes io_uring_enter for a call
 * that never blocks, so a worker waiting in it would stall every thread.
 * Under valgrind, wait in poll(2), which it knows blocks, on the ring (for
 * completions), the wake-up eventfd and, for the poller, the poll set, then
 * let the kernel post what it deferred.
 */
static void park_in_poll(struct weft__ring *r, int64_t timeout_ns, bool poller)
{
	struct pollfd p[3] = {
		{ .fd = r->uring.ring_fd, .events = POLLIN },
		{ .fd = r->base.wake_fd, .events = POLLIN },
		{ .fd = weft__pollset_fd(), .events = POLLIN },
	};
	/* Deferred completions need us to enter the kernel before the ring
	 * shows them: look again at least every 10 ms. */
	int ms = timeout_ns < 0 || timeout_ns > 10000000
			 ? 10
			 : (int)((timeout_ns + 999999) / 1000000);
	submit(r);
	poll(p, poller ? 3 : 2, ms);
	io_uring_get_events(&r->uring);
}

int weft__uring_wake_fd(struct weft__driver *d)
{
	/* seq_cst: the unparker's half of the rule above sleep_in_set. */
	return atomic_load(&((struct weft__ring *)d)->in_set)
		       ? weft__pollset_break_fd()
		       : d->wake_fd;
}

/* Whether nothing the ring holds needs it to wake this worker: no
 * operation of a task in flight, none waiting to be submitted. Owner only
 * (it alone counts both, so relaxed loads read its own stores). */
static bool ring_idle(struct weft__ring *r)
{
	return !io_uring_sq_ready(&r->uring) &&
	       atomic_load_explicit(&r->base.ops_submitted,
				    memory_order_relaxed) ==
		       atomic_load_explicit(&r->base.ops_completed,
					    memory_order_relaxed);
}

/* Before the worker sleeps: the ring, and the poll set once it holds any
 * fd (a system call), unless the worker will sleep in the set (park's
 * sleep_in_set, whose harvest finds the same events). */
int weft__uring_reap(struct weft__driver *d, bool may_poll)
{
	struct weft__ring *r = (struct weft__ring *)d;
	int n = weft__pollset_look_before_sleep(may_poll && ring_idle(r));

	return n + reap_ring(r);
}

/*
 * The poller with an idle ring sleeps in the poll set itself, as the epoll
 * driver's poller does: a readiness event then wakes it with the events in
 * hand, where a poll request in the ring wakes it through the ring's task
 * work and leaves the harvest to a second system call.
 *
 * No lost wake-up, as in epoll.h: the sleeper stores in_set, then reads
 * wake_pending, and sleeps only if none is pending; an unparker sets
 * wake_pending, then reads in_set to choose the break eventfd or wake_fd.
 * All four are seq_cst, so either the sleeper does not sleep or the
 * unparker writes the fd it sleeps on. A write to wake_fd that lands
 * meanwhile completes the ring's armed read, handled on the next reap.
 */
static void sleep_in_set(struct weft__ring *r, int64_t timeout_ns)
{
	struct weft__driver *d = &r->base;

	atomic_store(&r->in_set, true);
	if (atomic_load(&d->wake_pending))
		timeout_ns = 0;
	weft__pollset_harvest(timeout_ns, true);
	atomic_store(&r->in_set, false);
	weft__driver_wake_consumed(d);
}

/* Arms what wakes r (its wake-up read; the poll set's poll if poller) and
 * waits in the ring for a completion or timeout_ns. */
static void wait_in_ring(struct weft__ring *r, int64_t timeout_ns, bool poller)
{
	struct io_uring_cqe *cqe;

	if (!r->wake_armed) {
		struct io_uring_sqe *sqe = get_sqe(r);

		io_uring_prep_read(sqe, r->base.wake_fd, &r->wake_buf,
				   sizeof(r->wake_buf), 0);
		io_uring_sqe_set_data(sqe, &r->wake_op);
		r->wake_armed = true;
	}
	if (poller && !r->pollset_armed) {
		struct io_uring_sqe *sqe = get_sqe(r);

		io_uring_prep_poll_add(sqe, weft__pollset_fd(), POLLIN);
		io_uring_sqe_set_data(sqe, &r->pollset_op);
		r->pollset_armed = true;
	}
	if (WEFT_UNDER_VALGRIND()) {
		park_in_poll(r, timeout_ns, poller);
	} else if (timeout_ns >= 0) {
		/* Needs IORING_FEAT_EXT_ARG (5.11), or liburing would queue
		 * a timeout SQE of its own with a user_data not ours. Kernels
		 * that add the wait to their clock without saturating (6.1's
		 * io_cqring_wait) would wrap a timer due within microseconds
		 * of INT64_MAX into the past and return at once, for ever:
		 * past PARK_MAX_NS the worker wakes to look again instead. */
		if (timeout_ns > PARK_MAX_NS)
			timeout_ns = PARK_MAX_NS;
		struct __kernel_timespec ts = {
			.tv_sec = timeout_ns / 1000000000,
			.tv_nsec = timeout_ns % 1000000000,
		};

		io_uring_submit_and_wait_timeout(&r->uring, &cqe, 1, &ts, NULL);
	} else {
		io_uring_submit_and_wait(&r->uring, 1);
	}
}

/* Sleeps until a completion, a wake-up or timeout_ns, as the poll set's
 * poller if it may and no worker is (its readiness then wakes this one). A poll
 * request armed by an earlier sleep stays armed while its owner runs
 * (cancelling it would cost an SQE and a CQE every sleep): once another
 * worker holds the role, both may be woken by one event, and the second
 * harvest finds nothing. */
void weft__uring_park(struct weft__driver *d, int64_t timeout_ns, bool may_poll)
{
	struct weft__ring *r = (struct weft__ring *)d;
	bool poller = may_poll && weft__pollset_claim();

	if (poller && ring_idle(r)) {
		sleep_in_set(r, timeout_ns);
	} else {
		/* The wait submits too, but without submit()'s withdrawal
		 * of aborted ops (op.h), and a closer waiting for this
		 * ring's attempts (unsent.h) must not wait out the sleep:
		 * submit what waits first. Rare: the scheduler reaped, and
		 * so submitted, just before. If the kernel refused it, no
		 * sleep: the scheduler comes round again. */
		if (io_uring_sq_ready(&r->uring))
			submit(r);
		if (!io_uring_sq_ready(&r->uring))
			wait_in_ring(r, timeout_ns, poller);
	}
	if (poller)
		weft__pollset_release();
	reap_ring(r);
}
