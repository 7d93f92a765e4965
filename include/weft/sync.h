/*
 * weft synchronisation primitives: asyncio's Lock, Event, Condition,
 * Semaphore, Queue, Future and Barrier, for tasks on any worker and for
 * plain threads. Part of <weft.h>.
 *
 * Every struct here is plain and owned by the user: embed it, initialise it
 * with its WEFT_*_INIT macro or its init function, and drop it once nobody
 * waits on it (a queue with heap storage also needs weft_queue_destroy).
 * A caller that has seen the release it waited for may drop it at once,
 * even while the call that released is still returning: one that took
 * a lock just released or a permit just given, saw an event set or a
 * future done. The releasing call no longer touches the object by then,
 * as POSIX promises for a mutex just unlocked. Nor does the cancellation
 * or deadline, landing just then, of another waiter the same release woke
 * (an event set, a future done): the release waits it out before it wakes
 * anyone. A waiter the release left waiting (a lock, permit or item goes
 * to one caller) still waits on the object, so the object is not dropped
 * until it has returned. One that saw the release without
 * waiting for it (weft_event_is_set, weft_future_done, a wait that
 * returned at once) may race such an abort still: where other waiters may
 * be cancelled or time out meanwhile, it drops the object once they have
 * returned.
 *
 * Every call returns 0 (or a count) on success and a negative errno on
 * failure; bad arguments (NULL pointers, zero sizes) are -EINVAL. Every
 * blocking call returns -ECANCELED when its task is cancelled and -ETIMEDOUT
 * when the enclosing deadline (weft_deadline_enter) passes, and has then
 * taken nothing: no lock held, no permit or item consumed. Under a deadline
 * a call that must wait may also return -ENOMEM, having taken nothing, when
 * its worker's timer heap cannot grow. If a wake-up and a cancellation race
 * and the wake-up wins, the call succeeds. As in asyncio, cancellation is
 * delivered where a call would wait: a call that can complete at once (a
 * free lock, an item ready) succeeds even in a cancelled task. So a loop
 * of calls that never need to wait never sees its cancellation: such a
 * loop checks weft_is_cancelled(weft_current()) or calls weft_yield(),
 * which fails with -ECANCELED (docs/concepts.md). From a plain thread a
 * blocking call blocks the thread.
 *
 * Waiters are served first come, first served: locks and permits are handed
 * straight to the oldest waiter, so nobody starves.
 */
#ifndef WEFT_SYNC_H
#define WEFT_SYNC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "weft/must_check.h"
#include "weft/waitq.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- Lock (asyncio.Lock) ------------------------------------------------ */

/* A mutual-exclusion lock owned by a task (or a plain thread). Not
 * recursive. Fields are internal. */
struct weft_lock {
	uintptr_t state; /* owner identity | has-waiters bit; 0 when free */
	struct weft_waitq wq;
};

/* clang-format off */
#define WEFT_LOCK_INIT { 0, WEFT_WAITQ_INIT }
/* clang-format on */

/* Initialises l, unlocked. Returns 0 or -EINVAL. */
int weft_lock_init(struct weft_lock *l);
/* Waits for l and takes it. Returns 0, -EDEADLK if the caller holds it
 * already, -ECANCELED, -ETIMEDOUT, -EINVAL. */
WEFT_MUST_CHECK int weft_lock_acquire(struct weft_lock *l);
/* Takes l if it is free and nobody waits. Returns 0, -EBUSY, -EINVAL. */
WEFT_MUST_CHECK int weft_lock_try_acquire(struct weft_lock *l);
/* Releases l, handing it to the oldest waiter if any; a task that hands it
 * to another task then yields to it, so that contenders drain instead of
 * forming a convoy. Returns 0, -EPERM if the caller does not hold it,
 * -EINVAL. */
int weft_lock_release(struct weft_lock *l);
/* 1 if l is held, 0 if not, -EINVAL. */
int weft_lock_locked(const struct weft_lock *l);

/* ---- Event (asyncio.Event) ---------------------------------------------- */

struct weft_event {
	unsigned set;
	struct weft_waitq wq;
};

/* clang-format off */
#define WEFT_EVENT_INIT { 0, WEFT_WAITQ_INIT }
/* clang-format on */

/* Initialises e, not set. Returns 0 or -EINVAL. */
int weft_event_init(struct weft_event *e);
/* Sets e and wakes every waiter; later waits return at once until cleared.
 * Returns how many waiters it woke, or -EINVAL. */
int weft_event_set(struct weft_event *e);
/* Clears e. Returns 0 or -EINVAL. */
int weft_event_clear(struct weft_event *e);
/* Waits until e is set (returns at once if it is). Returns 0, -ECANCELED,
 * -ETIMEDOUT, -EINVAL. */
WEFT_MUST_CHECK int weft_event_wait(struct weft_event *e);
/* 1 if e is set, 0 if not, -EINVAL. */
int weft_event_is_set(const struct weft_event *e);

/* ---- Condition (asyncio.Condition) -------------------------------------- */

/* A condition variable bound to a weft_lock, as asyncio.Condition(lock). */
struct weft_cond {
	struct weft_lock *lock;
	struct weft_waitq wq;
};

/* clang-format off */
#define WEFT_COND_INIT(lockp) { (lockp), WEFT_WAITQ_INIT }
/* clang-format on */

/* Binds c to lock. Returns 0 or -EINVAL. */
int weft_cond_init(struct weft_cond *c, struct weft_lock *lock);
/* Releases the lock, waits for a notify, and re-acquires the lock before
 * returning, also when it fails. Returns 0, -EPERM if the caller does not
 * hold the lock, -ECANCELED, -ETIMEDOUT, -EINVAL. */
WEFT_MUST_CHECK int weft_cond_wait(struct weft_cond *c);
/* Waits until pred(arg) is true; pred runs with the lock held. Returns 0
 * (pred is true), or weft_cond_wait's errors (lock held in every case but
 * -EPERM and -EINVAL). */
WEFT_MUST_CHECK int weft_cond_wait_for(struct weft_cond *c,
				       bool (*pred)(void *arg), void *arg);
/* Wakes up to n waiters, oldest first. The caller must hold the lock.
 * Returns how many it woke, -EPERM, -EINVAL. */
int weft_cond_notify(struct weft_cond *c, int n);
/* Wakes every waiter. Returns how many, -EPERM, -EINVAL. */
int weft_cond_notify_all(struct weft_cond *c);

/* ---- Semaphore (asyncio.Semaphore, BoundedSemaphore) -------------------- */

struct weft_sem {
	uintptr_t state; /* permits << 1 | has-waiters bit */
	uintptr_t bound; /* bounded: 1 + most permits it holds; else 0 */
	struct weft_waitq wq;
};

/* Static initialisers for n permits, 0..WEFT_SEM_MAX; beyond (a negative
 * n, say), the calls on the semaphore return -EINVAL. They evaluate n more
 * than once. */
/* clang-format off */
#define WEFT_SEM_INIT(n) { WEFT__SEM_STATE(n), 0, WEFT_WAITQ_INIT }
/* clang-format on */
/* clang-format off */
#define WEFT_BOUNDED_SEM_INIT(n) \
	{ WEFT__SEM_STATE(n), (uintptr_t)(n) + 1, WEFT_WAITQ_INIT }
/* clang-format on */
/* The state for n permits; for n out of range, only the top bit, which no
 * count reaches and sem.c refuses (n << 1 alone can drop it: LONG_MIN's
 * is 0, an empty semaphore). */
/* clang-format off */
#define WEFT__SEM_STATE(n)                                               \
	((uintptr_t)(n) <= (uintptr_t)WEFT_SEM_MAX ? (uintptr_t)(n) << 1 \
						    : ~(UINTPTR_MAX >> 1))
/* clang-format on */

/* Most permits a semaphore can hold. */
#define WEFT_SEM_MAX ((long)(UINTPTR_MAX >> 2))

/* Initialises s with value permits (0..WEFT_SEM_MAX). Returns 0, -EINVAL. */
int weft_sem_init(struct weft_sem *s, long value);
/* Same, bounded: releasing past value permits fails with -EOVERFLOW. */
int weft_sem_init_bounded(struct weft_sem *s, long value);
/* Waits for a permit and takes it. Returns 0, -ECANCELED, -ETIMEDOUT,
 * -EINVAL. */
WEFT_MUST_CHECK int weft_sem_acquire(struct weft_sem *s);
/* Takes a permit if one is free. Returns 0, -EAGAIN, -EINVAL. */
WEFT_MUST_CHECK int weft_sem_try_acquire(struct weft_sem *s);
/* Returns a permit, handing it to the oldest waiter if any. Returns 0,
 * -EOVERFLOW (bounded, or WEFT_SEM_MAX reached), -EINVAL. */
int weft_sem_release(struct weft_sem *s);
/* The free permits (>= 0), or -EINVAL. */
long weft_sem_value(const struct weft_sem *s);

/* ---- Queue (asyncio.Queue, LifoQueue, PriorityQueue; a Go channel) ------ */

enum weft_queue_kind {
	WEFT_QUEUE_FIFO = 0,
	WEFT_QUEUE_LIFO = 1,
	WEFT_QUEUE_PRIORITY = 2, /* smallest by cmp first; not stable */
};

/* Orders two elements as qsort's comparator does. */
typedef int (*weft_queue_cmp)(const void *a, const void *b);

/* A queue of fixed-size elements, copied in by put and out by get. Bounded
 * (put waits while it is full) or unbounded (capacity 0). The storage is the
 * caller's (storage != NULL, bounded queues only) or grows on the heap on
 * demand; then weft_queue_destroy frees it. Fields are internal. */
struct weft_queue {
	/* Written by every put and get: kept in the first 64 bytes. */
	struct weft_waitq getters; /* its lock guards every field */
	size_t head;               /* FIFO: index of the oldest */
	size_t count;              /* elements in buf */
	size_t unfinished;         /* put and not yet task_done */
	unsigned char *buf;
	size_t elem_size;
	/* Read-mostly. */
	size_t capacity; /* 0: unbounded */
	size_t slots;    /* elements buf holds */
	weft_queue_cmp cmp;
	unsigned char kind;
	bool shutdown;
	bool own_buf; /* buf is ours to free */
	struct weft_waitq putters;
	struct weft_waitq joiners;
};

/* clang-format off */
#define WEFT__QUEUE_INIT(size, cap, k, c, storage)                        \
	{ WEFT_WAITQ_INIT, 0, 0, 0, (unsigned char *)(storage), (size),    \
	  (cap), (storage) ? (cap) : 0, (c), (k), false, false,            \
	  WEFT_WAITQ_INIT, WEFT_WAITQ_INIT }
/* clang-format on */
/* A FIFO queue of elements of size bytes, holding at most cap (0: any
 * number); heap storage, so weft_queue_destroy it after use. */
#define WEFT_QUEUE_INIT(size, cap)                                             \
	WEFT__QUEUE_INIT(size, cap, WEFT_QUEUE_FIFO, 0, 0)
#define WEFT_LIFO_QUEUE_INIT(size, cap)                                        \
	WEFT__QUEUE_INIT(size, cap, WEFT_QUEUE_LIFO, 0, 0)
#define WEFT_PRIORITY_QUEUE_INIT(size, cap, cmp)                               \
	WEFT__QUEUE_INIT(size, cap, WEFT_QUEUE_PRIORITY, cmp, 0)

struct weft_queue_opts {
	size_t elem_size; /* required, > 0 */
	size_t capacity;  /* 0: unbounded */
	enum weft_queue_kind kind;
	weft_queue_cmp cmp; /* required for WEFT_QUEUE_PRIORITY */
	void *storage;      /* optional: capacity * elem_size bytes */
};

/* Initialises a FIFO queue. Returns 0 or -EINVAL (zero elem_size, or a
 * capacity whose items could not all be held: capacity * elem_size past
 * SIZE_MAX). */
int weft_queue_init(struct weft_queue *q, size_t elem_size, size_t capacity);
/* Initialises q as o says. Returns 0 or -EINVAL (zero elem_size, a
 * priority queue without cmp, storage for an unbounded queue, or
 * capacity * elem_size past SIZE_MAX). */
int weft_queue_init_opts(struct weft_queue *q, const struct weft_queue_opts *o);
/* Frees heap storage; q must be unused, nobody waiting. Returns 0, -EBUSY
 * (someone waits), -EINVAL. */
int weft_queue_destroy(struct weft_queue *q);

/* Copies the element at item in, waiting while the queue is full; a
 * waiting getter receives it directly. Returns 0, -EPIPE after shutdown,
 * -ENOMEM, -ECANCELED, -ETIMEDOUT (nothing put), -EINVAL. */
WEFT_MUST_CHECK int weft_queue_put(struct weft_queue *q, const void *item);
/* Takes the next element into out, waiting while the queue is empty.
 * Returns 0, -EPIPE once shut down and drained, -ECANCELED, -ETIMEDOUT
 * (nothing taken), -EINVAL. */
WEFT_MUST_CHECK int weft_queue_get(struct weft_queue *q, void *out);
/* put without waiting. Returns 0, -EAGAIN while full, -EPIPE after
 * shutdown, -ENOMEM, -EINVAL. */
WEFT_MUST_CHECK int weft_queue_try_put(struct weft_queue *q, const void *item);
/* get without waiting. Returns 0, -EAGAIN while empty, -EPIPE once shut
 * down and drained, -EINVAL. */
WEFT_MUST_CHECK int weft_queue_try_get(struct weft_queue *q, void *out);
/* The elements in the queue now (putters still waiting not counted), or
 * -EINVAL. */
long weft_queue_size(struct weft_queue *q);
/* Marks one element that get returned as processed. Returns 0, -EINVAL
 * (called more times than elements were put). */
int weft_queue_task_done(struct weft_queue *q);
/* Waits until every element put has been marked done. Returns 0,
 * -ECANCELED, -ETIMEDOUT, -EINVAL. */
WEFT_MUST_CHECK int weft_queue_join(struct weft_queue *q);
/* Shuts the queue down: put fails with -EPIPE from now on, get drains what
 * is left and then fails with -EPIPE, and every waiting put and get wakes.
 * With immediate, what is left is dropped (and counted done) at once. As in
 * asyncio, join keeps waiting for elements still to be marked done. Returns
 * 0 or -EINVAL; shutting down twice is harmless. */
int weft_queue_shutdown(struct weft_queue *q, bool immediate);

/* ---- Future (asyncio.Future) -------------------------------------------- */

struct weft_future;

/* A done-callback: the caller owns the node and keeps it alive until it
 * has run or been removed. It needs no initialisation before its first
 * add; weft fills every field. */
struct weft_future_cb {
	void (*fn)(struct weft_future *f, void *arg);
	void *arg;
	struct weft_future_cb *next;
	struct weft_future *on; /* the future whose list holds it: see
				 * future.c */
};

struct weft_future {
	int state; /* pending, result, error, cancelled: see future.c */
	int error;
	void *result;
	struct weft_future_cb *cbs, *cbs_tail;
	struct weft_waitq wq;
	uintptr_t completer; /* who runs the callbacks, while it does */
};

/* clang-format off */
#define WEFT_FUTURE_INIT { 0, 0, 0, 0, 0, WEFT_WAITQ_INIT, 0 }
/* clang-format on */

/* Initialises f, pending. Returns 0 or -EINVAL. */
int weft_future_init(struct weft_future *f);
/* Completes f with result: runs its callbacks on the calling thread, in
 * the order added, then wakes its waiters. Until the callbacks have
 * returned f is done only for them (and whatever they call on this task
 * or thread): everyone else's weft_future_wait waits, and
 * weft_future_result and weft_future_done say pending, so that nobody
 * frees f, or the callbacks' nodes, while they run. So a callback must not
 * wait for anything a waiter of f holds, such as a lock taken before its
 * weft_future_wait: that waiter is not woken until the callback returns.
 * Returns 0, -EINVAL (already done, or f NULL). */
int weft_future_set_result(struct weft_future *f, void *result);
/* Completes f with error, a negative errno (-4095..-1). Returns 0,
 * -EINVAL (done already, or error out of that range). */
int weft_future_set_error(struct weft_future *f, int error);
/* Cancels f: it completes with -ECANCELED. Returns 0, -EINVAL if done. */
int weft_future_cancel(struct weft_future *f);
/* Waits until f is done. Returns 0 and stores the result in *result (if
 * result is not NULL), or f's error (-ECANCELED if it was cancelled), or
 * -ECANCELED / -ETIMEDOUT if the waiting task was, -EINVAL. */
WEFT_MUST_CHECK int weft_future_wait(struct weft_future *f, void **result);
/* Like wait, without waiting: -EAGAIN while pending. */
WEFT_MUST_CHECK int weft_future_result(struct weft_future *f, void **result);
/* 1 if f is done (result, error or cancelled), 0 if pending, -EINVAL. */
int weft_future_done(const struct weft_future *f);
/* Adds cb to run fn(f, arg) once f is done, in the order added; runs it at
 * once, on the caller, if f is done already for the caller. (While another
 * task or thread runs f's callbacks, f is pending for the others: one
 * they add runs there, after those.) Constant time however many
 * callbacks f has, unless cb is on f's list already or was left on a
 * future dropped pending at f's address: then one walk of the list.
 * Returns 0 or -EINVAL (NULL, or cb added to f already and not run or
 * removed). */
int weft_future_add_callback(struct weft_future *f, struct weft_future_cb *cb,
			     void (*fn)(struct weft_future *, void *),
			     void *arg);
/* Removes a callback that has not run: one waiting while another task or
 * thread runs f's callbacks (f pending for the caller) is removed too, and
 * does not run. Returns 0, -ENOENT (not added, or cb has run, runs now or
 * is about to, on the thread that completes f, which may happen while f
 * still looks pending to the caller: cb may be freed only once that is
 * known to be over), -EINVAL. */
int weft_future_remove_callback(struct weft_future *f,
				struct weft_future_cb *cb);

/* ---- Barrier (asyncio.Barrier) ------------------------------------------ */

struct weft_barrier {
	unsigned parties;
	unsigned count;    /* waiting now */
	unsigned draining; /* released by the last round, not yet out */
	bool broken;
	struct weft_waitq wq;
	struct weft_waitq held; /* came back while the last round drains */
};

/* clang-format off */
#define WEFT_BARRIER_INIT(n) \
	{ (n), 0, 0, false, WEFT_WAITQ_INIT, WEFT_WAITQ_INIT }
/* clang-format on */

/* Initialises b for parties tasks (1 to INT_MAX; a WEFT_BARRIER_INIT
 * beyond makes its waits say -EINVAL). Returns 0 or -EINVAL. */
int weft_barrier_init(struct weft_barrier *b, unsigned parties);
/* Waits until parties callers are waiting, then all go on together. Until
 * every one of them has returned (the round drains), callers that come
 * back are held at the entrance, as asyncio's are, so a reset made just
 * after a round breaks nobody who passed. Returns the caller's arrival
 * index among those the round released (0 .. parties-1, each once:
 * callers that left it do not count), -EPIPE if the barrier is broken or
 * gets aborted or reset meanwhile, -ECANCELED / -ETIMEDOUT (the caller
 * left; the others still wait for parties), -EINVAL. A released caller
 * still counts itself out of the round on its way back, in b: b may be
 * dropped once every caller has returned, not as soon as one has. */
WEFT_MUST_CHECK int weft_barrier_wait(struct weft_barrier *b);
/* Breaks b: waiters and later waits fail with -EPIPE until reset.
 * Returns how many waiters it woke, -EINVAL. */
int weft_barrier_abort(struct weft_barrier *b);
/* Wakes the waiters of the filling round with -EPIPE and makes b whole and
 * empty again; callers held at the entrance stay held. Returns how many
 * waiters it woke, -EINVAL. */
int weft_barrier_reset(struct weft_barrier *b);
/* Callers waiting now, or -EINVAL. */
int weft_barrier_n_waiting(const struct weft_barrier *b);
/* 1 if broken, 0 if not, -EINVAL. */
int weft_barrier_broken(const struct weft_barrier *b);

#ifdef __cplusplus
}
#endif
#endif
