/*
 * Submit-and-wait for one io_uring operation, its cancellation, and the
 * escape hatch weft_io_submit(). The protocol and its invariants are in
 * op.h.
 */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <time.h>
#include <liburing.h>

#include "weft/io.h"
#include "drivers/readiness/fdready.h"
#include "fdtable.h"
#include "op.h"
#include "runtime/list.h"

/* The cancel SQE's own completion: nothing waits for it. Its result does not
 * matter either: the op's CQE arrives whether it was cancelled (-ECANCELED,
 * -EINTR) or had already completed or was past cancelling (-ENOENT,
 * -EALREADY). */
static void ignore_complete(struct weft__ring_op *op, int res, unsigned flags)
{
}

static struct weft__ring_op ignore_op = { .complete = ignore_complete };

/* io->post: whether an abort is recorded. _BUSY from the first aborter's
 * claim until its reason is recorded, or it found the op completed. */
enum { POST_NONE, POST_BUSY, POST_DONE };

/* Drops one reference; the last wakes the task. */
static void io_put(struct weft__io *io)
{
	/* acq_rel: RMWs on refs continue each other's release sequences, so
	 * the last put acquires every earlier holder's release: what each
	 * did to io before its drop happens before the wake, after which
	 * the task reads io and lets it go. */
	if (atomic_fetch_sub_explicit(&io->refs, 1, memory_order_acq_rel) == 1)
		weft__waiter_notify(&io->w, 0);
}

static void io_complete(struct weft__ring_op *op, int res, unsigned flags)
{
	struct weft__io *io = weft__container_of(op, struct weft__io, op);

	/* A zero-copy send's notification (F_NOTIF) follows the CQE that
	 * carries the send's result, and must not replace it. */
	if (io->withdrawn)
		io->res = -ECANCELED; /* the NOP's 0; wait returns the reason */
	else if (!(flags & IORING_CQE_F_NOTIF))
		io->res = res;
	if (flags & IORING_CQE_F_MORE)
		return; /* a multishot request: wait for its last CQE */
	io->cqe_done = true;
	io_put(io);
}

/* Whether io's SQE still waits in its ring's SQ, not submitted. Its slot
 * may hold a newer SQE once it was: the tag tells them apart. Owner only. */
static bool sqe_unsubmitted(const struct weft__io *io)
{
	const struct io_uring_sq *sq = &io->ring->uring.sq;
	unsigned slot, waiting = sq->sqe_tail - sq->sqe_head;

	if (!io->sqe)
		return false;
	slot = (unsigned)(io->sqe - sq->sqes);
	return ((slot - sq->sqe_head) & sq->ring_mask) < waiting &&
	       io->sqe->user_data == (uintptr_t)&io->op;
}

/* Turns io's unsubmitted SQE into a NOP: the op completes without the
 * kernel touching its fd or buffers. Links stay as they were. */
static void withdraw(struct weft__io *io)
{
	unsigned char links =
		io->sqe->flags &
		(IOSQE_IO_LINK | IOSQE_IO_HARDLINK | IOSQE_IO_DRAIN);

	io_uring_prep_nop(io->sqe);
	io->sqe->flags = links;
	io_uring_sqe_set_data(io->sqe, &io->op);
	io->withdrawn = true;
}

/* Queues an IORING_OP_ASYNC_CANCEL of io's submitted SQE. */
static void cancel_in_kernel(struct weft__io *io)
{
	struct io_uring_sqe *sqe = weft__ring_sqe(io->ring);

	io_uring_prep_cancel(sqe, &io->op, 0);
	io_uring_sqe_set_data(sqe, &ignore_op);
}

/* On the owning worker: cancel the op in the kernel unless it is done, or
 * withdraw it if it was not submitted yet. */
static void io_cancel_run(struct weft__driver_msg *m)
{
	struct weft__io *io =
		weft__container_of(m, struct weft__io, cancel_msg);

	if (!io->cqe_done && !io->withdrawn) {
		if (sqe_unsubmitted(io))
			withdraw(io);
		else
			cancel_in_kernel(io);
	}
	io_put(io);
}

void weft__io_abort(struct weft__io *io, int reason)
{
	int refs, none = 0, post = POST_NONE;

	/* One message at a time, and one is enough: it cancels the op. The
	 * claim only elects the aborter; what it records is published by
	 * its release store of POST_DONE below. Its acq_rel, and the acquire
	 * of a losing CAS (which reads nothing of io's), order nothing more
	 * than that store does. */
	if (!atomic_compare_exchange_strong_explicit(&io->post, &post,
						     POST_BUSY,
						     memory_order_acq_rel,
						     memory_order_acquire))
		return;
	/* acquire (load and CAS; acq_rel on success): stronger than needed.
	 * That a reference is taken only while refs > 0 is the CAS's
	 * atomicity, in refs' one modification order; what we write after
	 * it reaches the owner through the post (the inbox's release CAS)
	 * and the task through the last put (acq_rel). */
	refs = atomic_load_explicit(&io->refs, memory_order_acquire);
	do {
		if (refs == 0) { /* completed: the task is being woken */
			/* release: pairs with abort_sync's acquire load;
			 * nothing to withdraw, it only ends that wait. */
			atomic_store_explicit(&io->post, POST_DONE,
					      memory_order_release);
			return;
		}
	} while (!atomic_compare_exchange_weak_explicit(&io->refs, &refs,
							refs + 1,
							memory_order_acq_rel,
							memory_order_acquire));
	/* release: io_wait's acquire load reads it after the wake, which
	 * the put of our reference (acq_rel) orders after this anyway. A
	 * failed CAS (a reason is recorded already) stores nothing:
	 * relaxed. */
	atomic_compare_exchange_strong_explicit(&io->reason, &none, reason,
						memory_order_release,
						memory_order_relaxed);
	/* Before the post, after which io may be gone. release: pairs with
	 * abort_sync's acquire load, so a closer that did not record the
	 * reason itself sees it before its fence (op.h). */
	atomic_store_explicit(&io->post, POST_DONE, memory_order_release);
	weft__driver_post(&io->ring->base, &io->cancel_msg);
}

void weft__io_abort_sync(struct weft__io *io)
{
	struct weft__ring *r = io->ring;
	uint64_t s;

	/* A cancel or deadline may be recording its reason: a few stores.
	 * acquire: pairs with the release store of POST_DONE, so its reason
	 * is written before the fence below. */
	while (atomic_load_explicit(&io->post, memory_order_acquire) !=
	       POST_DONE)
		sched_yield();
	/* The closer's half of the rule in op.h: this fence pairs with
	 * submit()'s (ring.c), which orders the relaxed load after it. */
	atomic_thread_fence(memory_order_seq_cst);
	s = atomic_load_explicit(&r->submits, memory_order_relaxed);
	/* acquire: pairs with the release that ends the submit, after the
	 * kernel took the SQE (with the old file, which it then holds). */
	while ((s & 1) &&
	       atomic_load_explicit(&r->submits, memory_order_acquire) == s)
		sched_yield();
}

void weft__io_withdraw_aborted(struct weft__ring *r)
{
	struct io_uring_sq *sq = &r->uring.sq;

	/* From the kernel's head: an SQE a refused submit published is
	 * not taken yet either. An SQE there holds its op, or NULL until
	 * the op tags it (weft__ring_sqe). */
	for (unsigned i = *sq->khead; i != sq->sqe_tail; i++) {
		struct io_uring_sqe *sqe = &sq->sqes[i & sq->ring_mask];
		struct weft__ring_op *op =
			(struct weft__ring_op *)(uintptr_t)sqe->user_data;
		struct weft__io *io;

		if (!op || op->complete != io_complete)
			continue;
		io = weft__container_of(op, struct weft__io, op);
		/* relaxed: the fence in submit() orders it (op.h). */
		if (!io->withdrawn &&
		    atomic_load_explicit(&io->reason, memory_order_relaxed))
			withdraw(io);
	}
}

static void io_waiter_abort(struct weft__waiter *w, int reason)
{
	weft__io_abort(weft__container_of(w, struct weft__io, w), reason);
}

struct io_uring_sqe *weft__io_begin(struct weft__io *io, int fd, int *err)
{
	int r;

	/* A weft_close left fd's close(2) to calls under way on it: until
	 * they end, weft's calls on fd say -EBADF (fdready.h), as the
	 * epoll driver's file calls' holds do, rather than reach the file
	 * the number still holds. */
	if (fd >= 0 && weft__fdready_closing(fd)) {
		*err = -EBADF;
		return NULL;
	}
	io->op.complete = io_complete;
	io->ring = weft__ring_current();
	io->cancel_msg.run = io_cancel_run;
	io->cancel_msg.next = NULL;
	atomic_init(&io->refs, 1);
	atomic_init(&io->reason, 0);
	atomic_init(&io->post, POST_NONE);
	io->cqe_done = false;
	io->withdrawn = false;
	io->sqe = NULL;
	io->res = 0;
	io->fd = fd;
	weft__waiter_init_as(&io->w, io_waiter_abort, WEFT__WAIT_IO,
			     (const void *)(intptr_t)fd);
	r = weft__wait_begin(&io->w);
	if (r) {
		*err = r;
		return NULL;
	}
	if (fd >= 0)
		weft__fdtable_add(io);
	return weft__ring_sqe(io->ring);
}

/*
 * Whether res is what a cancel makes of an op: -ECANCELED (cancelled before
 * it ran, or while it waited for readiness or an io-wq thread; withdrawn),
 * or -EINTR and the kernel's restart codes (io-wq interrupted its sleep, as
 * a signal would). No other cause gives an io_uring op these: an io-wq
 * thread takes no signal but the cancel's. Any other failure is the op's
 * own, and it is reported, as a success is, though an abort came after it:
 * it may have consumed state (a socket's pending error is reported once)
 * and the epoll driver's path says it too.
 */
static bool cancel_result(int res)
{
	/* The kernel's ERESTARTSYS .. ERESTART_RESTARTBLOCK, which
	 * userspace headers do not define. */
	return res == -ECANCELED || res == -EINTR ||
	       (res <= -512 && res >= -516);
}

int weft__io_wait(struct weft__io *io, struct io_uring_sqe *sqe)
{
	int reason;

	io_uring_sqe_set_data(sqe, &io->op);
	io->sqe = sqe;
	/* For weft_dump: what the wait is, now the SQE says. relaxed: a
	 * label, read alone; nothing is published through it. */
	atomic_store_explicit(&io->w.io_op, sqe->opcode, memory_order_relaxed);
	weft__wait_park(&io->w, NULL, NULL);
	if (io->fd >= 0)
		weft__fdtable_del(io);
	/* acquire: pairs with weft__io_abort's release CAS; the wake, after
	 * the put of the aborter's reference, orders it as well. */
	reason = atomic_load_explicit(&io->reason, memory_order_acquire);
	if (reason && cancel_result(io->res))
		return reason;
	return io->res;
}

static void attempt_complete(struct weft__ring_op *op, int res, unsigned flags)
{
	struct weft__attempt *a =
		weft__container_of(op, struct weft__attempt, op);

	(void)flags;
	a->res = res;
	/* The wake hands a->res over: the queue the task goes through
	 * publishes with release, and its taker reads with acquire. */
	weft__task_ready(a->task);
}

struct io_uring_sqe *weft__attempt_begin(struct weft__attempt *a, int fd)
{
	struct weft__ring *r = weft__ring_current();
	struct io_uring_sqe *sqe = weft__ring_sqe(r);

	weft__unsent_note(r->unsent, fd);
	a->op.complete = attempt_complete;
	a->task = weft__task_current();
	return sqe;
}

void weft__attempt_drop_fd(struct weft__ring *r, int fd)
{
	struct io_uring_sq *sq = &r->uring.sq;

	/* From the kernel's head, as weft__io_withdraw_aborted. Every
	 * attempt there is tagged: its task parked after tagging it. The
	 * kernel looks the fd up at submit: -1 makes it answer -EBADF, and
	 * the attempt completes as any other, waking its task. */
	for (unsigned i = *sq->khead; i != sq->sqe_tail; i++) {
		struct io_uring_sqe *sqe = &sq->sqes[i & sq->ring_mask];
		struct weft__ring_op *op =
			(struct weft__ring_op *)(uintptr_t)sqe->user_data;

		if (op && op->complete == attempt_complete && sqe->fd == fd)
			sqe->fd = -1;
	}
}

int weft__attempt_wait(struct weft__attempt *a, struct io_uring_sqe *sqe)
{
	/* Tagged after the caller's prep, which may clear user_data. */
	io_uring_sqe_set_data(sqe, &a->op);
	/* The SQE waits for this worker's next submit, which runs after the
	 * task switched out: nothing to unlock. */
	weft__task_park(NULL, NULL);
	return a->res;
}

/*
 * Plain threads have no worker ring; weft_io_submit() gives each such thread
 * a small private ring, made on first use. When the thread exits its ring
 * goes on a free list for the next thread rather than being unmapped:
 * liburing maps rings with raw system calls that sanitizers do not see, so
 * a new ring at a recycled address would look like a race with the old one.
 * The list's lock orders one thread's last use before the next one's first.
 */
struct thread_ring {
	struct io_uring ring;
	struct thread_ring *next;
};

static pthread_key_t thread_ring_key;
static pthread_once_t thread_ring_once = PTHREAD_ONCE_INIT;
static pthread_mutex_t free_rings_lock = PTHREAD_MUTEX_INITIALIZER;
static struct thread_ring *free_rings;
static atomic_int thread_rings; /* made so far: in use or on the list */

int weft__io_thread_rings(void)
{
	return atomic_load(&thread_rings);
}

static void thread_ring_release(void *p)
{
	struct thread_ring *tr = p;

	pthread_mutex_lock(&free_rings_lock);
	tr->next = free_rings;
	free_rings = tr;
	pthread_mutex_unlock(&free_rings_lock);
}

/* fork(2) copies the rings' mappings, not the rings: the child's calling
 * thread would share its ring, and the free list, with the parent, each
 * taking the other's CQEs (their tags count alike). The child drops its
 * copies and makes rings of its own. */
static void fork_prepare(void)
{
	pthread_mutex_lock(&free_rings_lock);
}

static void fork_parent(void)
{
	pthread_mutex_unlock(&free_rings_lock);
}

static void drop_ring(struct thread_ring *tr)
{
	io_uring_queue_exit(&tr->ring);
	free(tr);
	atomic_fetch_sub(&thread_rings, 1);
}

static void fork_child(void)
{
	struct thread_ring *tr = pthread_getspecific(thread_ring_key);

	if (tr) {
		pthread_setspecific(thread_ring_key, NULL);
		drop_ring(tr);
	}
	while ((tr = free_rings)) {
		free_rings = tr->next;
		drop_ring(tr);
	}
	pthread_mutex_unlock(&free_rings_lock); /* fork_prepare's */
}

static void thread_ring_key_init(void)
{
	pthread_key_create(&thread_ring_key, thread_ring_release);
	pthread_atfork(fork_prepare, fork_parent, fork_child);
}

/* weft__ring_enter_err for a ring just set up, which it closes if the
 * kernel refuses to enter it: the call is then -ENOSYS, as for a ring
 * that cannot be set up. */
static int refused_enter(struct io_uring *ring)
{
	if (!weft__ring_enter_err(ring))
		return 0;
	io_uring_queue_exit(ring);
	return -ENOSYS;
}

/* The calling thread's ring, set up at its first call. NULL if none can
 * be had, with *err -ENOMEM when memory ran short (malloc, or the
 * kernel's for the ring) and -EMFILE / -ENFILE when no descriptor was
 * left for it: a later call may get them (io.h). Else -ENOSYS (io_uring
 * refused: missing, disabled, filtered). */
static struct io_uring *thread_ring(int *err)
{
	struct thread_ring *tr;
	int r;

	pthread_once(&thread_ring_once, thread_ring_key_init);
	tr = pthread_getspecific(thread_ring_key);
	if (tr)
		return &tr->ring;
	pthread_mutex_lock(&free_rings_lock);
	if ((tr = free_rings))
		free_rings = tr->next;
	pthread_mutex_unlock(&free_rings_lock);
	if (!tr) {
		tr = malloc(sizeof(*tr));
		if (!tr) {
			*err = -ENOMEM;
			return NULL;
		}
		if ((r = io_uring_queue_init(4, &tr->ring, 0)) < 0 ||
		    (r = refused_enter(&tr->ring)) < 0) {
			free(tr);
			*err = r == -ENOMEM || r == -EMFILE || r == -ENFILE
				       ? r
				       : -ENOSYS;
			return NULL;
		}
		atomic_fetch_add(&thread_rings, 1);
	}
	pthread_setspecific(thread_ring_key, tr);
	return &tr->ring;
}

/* Waits for a CQE of the private ring, as long as it takes: a call may not
 * return while the kernel may still write into its caller's buffers.
 * io_uring_wait_cqe fails only if the enter does (a signal, or memory
 * short for the moment): look again, after a pause unless interrupted. */
static struct io_uring_cqe *wait_cqe(struct io_uring *ring)
{
	struct io_uring_cqe *cqe;
	int r;

	while ((r = io_uring_wait_cqe(ring, &cqe)) < 0)
		if (r != -EINTR)
			nanosleep(&(struct timespec){ 0, 1000000 }, NULL);
	return cqe;
}

/*
 * A plain thread's operation on its private ring. Each call tags its SQE
 * with a number of its own and takes only that number's CQEs, so what an
 * earlier call left never passes for this one's: an SQE a failed submit
 * left in the SQ is made a NOP (the kernel takes it with the next submit,
 * touching nothing) and its CQE is dropped here.
 */
int (*weft__private_submit)(struct io_uring *ring) = io_uring_submit;

static int submit_on_thread(const struct io_uring_sqe *prepared)
{
	static _Thread_local uint64_t calls;
	int r, res = 0;
	struct io_uring *ring = thread_ring(&r);
	struct io_uring_sqe *sqe;
	uint64_t me = ++calls;

	if (!ring)
		return r;
	/* The NOPs of refused submits may fill the SQ: send them first. */
	if (!(sqe = io_uring_get_sqe(ring))) {
		do
			r = weft__private_submit(ring);
		while (r == -EINTR);
		if (!(sqe = io_uring_get_sqe(ring)))
			return r < 0 ? r : -EAGAIN;
	}
	*sqe = *prepared;
	io_uring_sqe_set_data64(sqe, me);
	do
		r = weft__private_submit(ring);
	while (r == -EINTR);
	/* The kernel takes SQEs in order and may stop short of ours (out of
	 * memory after a NOP an earlier call left): ours, the last, is then
	 * still in the SQ, and its CQE would never come. */
	if (r >= 0 && io_uring_sq_ready(ring))
		r = -EAGAIN;
	if (r < 0) {
		io_uring_prep_nop(sqe);
		io_uring_sqe_set_data64(sqe, 0);
		return r;
	}
	for (;;) {
		struct io_uring_cqe *cqe = wait_cqe(ring);
		bool mine = cqe->user_data == me;
		bool more = cqe->flags & IORING_CQE_F_MORE;

		if (mine &&
		    !(cqe->flags & IORING_CQE_F_NOTIF)) /* io_complete */
			res = cqe->res;
		io_uring_cqe_seen(ring, cqe);
		if (mine && !more)
			return res;
	}
}

/*
 * SQE flags a call cannot honour: each op must end in CQEs of its own, and
 * start on its own, on a ring other ops share. CQE_SKIP_SUCCESS posts no
 * CQE if the op succeeds, so the call (and a cancel, which then finds
 * nothing) would wait for ever; IO_DRAIN holds the op, and every SQE
 * after it, the worker's wake-up read too, until every op before it ends;
 * the link flags tie the next SQE, another task's, to this op.
 */
#define REFUSED_SQE_FLAGS                                                      \
	(IOSQE_IO_LINK | IOSQE_IO_HARDLINK | IOSQE_IO_DRAIN |                  \
	 IOSQE_CQE_SKIP_SUCCESS)

int weft_io_submit(int fd, weft_io_prep_fn prep, void *arg)
{
	struct weft__io io;
	struct io_uring_sqe *sqe, prepared = { 0 };
	int r;

	if (!prep)
		return -EINVAL;
	if (weft__driver_current() && !weft__ring_current())
		return -EOPNOTSUPP; /* the epoll driver has no ring */
	/* Prepared aside and checked before anything is published or
	 * submitted; weft's rings are set up without SQE128, so an SQE is
	 * this struct. */
	prep(&prepared, arg);
	if (prepared.flags & REFUSED_SQE_FLAGS)
		return -EINVAL;
	/* A plain thread's op on fd while a weft_close waits for the calls
	 * under way on it: -EBADF, as weft__io_begin says in a task. */
	if (!weft__driver_current())
		return fd >= 0 && weft__fdready_closing(fd)
			       ? -EBADF
			       : submit_on_thread(&prepared);
	if (!(sqe = weft__io_begin(&io, fd, &r)))
		return r;
	*sqe = prepared;
	return weft__io_wait(&io, sqe);
}
