/*
 * weft select: wait on several operations at once and complete exactly one
 * of them (Go's select; asyncio.wait(FIRST_COMPLETED) and as_completed over
 * it). Part of <weft.h>.
 *
 * A select is an array of cases, each one blocking operation of <weft.h>:
 *
 *	uint64_t a, b;
 *	struct weft_select_case c[] = {
 *		WEFT_CASE_GET(&q1, &a),
 *		WEFT_CASE_GET(&q2, &b),
 *		WEFT_CASE_TIMEOUT(10 * WEFT_MSEC),
 *	};
 *	int i = weft_select(c, 3);  // 0: a arrived, 1: b arrived, 2: timeout
 *
 * Exactly one case completes. The others take nothing: no item got or put,
 * no permit or lock taken, no task joined.
 *
 * Which case wins: the cases are tried in array order, and the first that
 * can complete at once does (put a preferred case first, the timeout last;
 * a timeout of 0 makes a poll; a timeout that fell due while earlier
 * cases' tries held the call up is ready too). If none can, the caller
 * waits on all of them, and the first to become ready wins.
 *
 * A case that would fail at once (a shut-down queue, a stale task handle, a
 * future completed with an error) is ready and completes with that error
 * in its status, as Go's receive on a closed channel does. So the call
 * returns the index of the completed case and its status says how the
 * operation went: the value the same blocking call would have returned.
 *
 * Cancellation and deadlines apply as to every blocking call: if the
 * caller is cancelled or its deadline (weft_deadline_enter) passes while it
 * waits, weft_select returns -ECANCELED / -ETIMEDOUT and no case completed.
 * A select that can complete at once does, even in a cancelled task. From a
 * plain thread it blocks the thread, and a timeout case works there too.
 *
 * Same-primitive cases are fine (a get and a put on one queue); two join
 * cases for one task make the second complete with -EINVAL.
 *
 * READABLE and WRITABLE wait for an fd's readiness, for a file weft does
 * not read or write itself: a library's socket (libpq's PQsocket, OpenSSL
 * after SSL_ERROR_WANT_READ, c-ares), a pipe, an eventfd. They take
 * nothing: the read or write that follows does, and may still find
 * nothing to do (another reader was first), as after poll(2). fd joins
 * weft's poll set as for weft's own calls, which makes it O_NONBLOCK; close
 * it with weft_close where you can (a library's own close(2) is fine, as
 * for weft_wait_fd). Both cases on one fd wait for either. Tasks only:
 * on a plain thread they complete with -EOPNOTSUPP. weft_wait_fd
 * (weft/io.h) is the one-fd form, and a plain thread's poll(2).
 *
 * Once woken, a select takes the lock of every case's primitive again to
 * withdraw from those that did not complete: unlike the single calls'
 * waiters, it touches an event or a future after their release, so each
 * primitive must outlive the select call (weft/sync.h's drop-at-once rule
 * does not cover a select still returning).
 */
#ifndef WEFT_SELECT_H
#define WEFT_SELECT_H

#include <stdint.h>

#include "weft/sync.h"
#include "weft/task.h"
#include "weft/must_check.h"

#ifdef __cplusplus
extern "C" {
#endif

enum weft_select_kind {
	WEFT_SELECT_GET = 1,  /* weft_queue_get(queue, item) */
	WEFT_SELECT_PUT,      /* weft_queue_put(queue, item) */
	WEFT_SELECT_EVENT,    /* weft_event_wait(event) */
	WEFT_SELECT_FUTURE,   /* weft_future_wait(future, result) */
	WEFT_SELECT_JOIN,     /* weft_join(task, result) */
	WEFT_SELECT_SEM,      /* weft_sem_acquire(sem) */
	WEFT_SELECT_LOCK,     /* weft_lock_acquire(lock) */
	WEFT_SELECT_TIMEOUT,  /* ready timeout ns after the call began */
	WEFT_SELECT_READABLE, /* fd readable: a read would not wait */
	WEFT_SELECT_WRITABLE, /* fd writable: a write would not wait */
};

/* The internal state of a case while it waits (a waiter, and an fd
 * case's watch). */
#define WEFT__SELECT_PRIV 112

/* One case. Build it with the WEFT_CASE_* macros below: C's designated
 * initializers, which C++ takes only in part (from C++20, with every field
 * named); C++ code zeroes a case and sets kind and the fields it names. */
struct weft_select_case {
	enum weft_select_kind kind;
	int status; /* out: the completed case's result */
	union {
		struct weft_queue *queue;
		struct weft_event *event;
		struct weft_future *future;
		struct weft_sem *sem;
		struct weft_lock *lock;
		weft_task_t task;
		int64_t timeout; /* ns */
		int fd;          /* READABLE, WRITABLE */
	};
	void *item;    /* GET: where the item goes; PUT: the item */
	void **result; /* FUTURE, JOIN: where the result goes (or
				* NULL) */
	uint64_t priv[WEFT__SELECT_PRIV / 8]; /* internal */
};

/* clang-format off */
#define WEFT_CASE_GET(q, out) \
	{ .kind = WEFT_SELECT_GET, .queue = (q), .item = (out) }
/* clang-format on */
/* clang-format off */
#define WEFT_CASE_PUT(q, in) \
	{ .kind = WEFT_SELECT_PUT, .queue = (q), .item = (void *)(in) }
/* clang-format on */
/* clang-format off */
#define WEFT_CASE_EVENT(e) { .kind = WEFT_SELECT_EVENT, .event = (e) }
/* clang-format on */
/* clang-format off */
#define WEFT_CASE_FUTURE(f, res) \
	{ .kind = WEFT_SELECT_FUTURE, .future = (f), .result = (res) }
/* clang-format on */
/* clang-format off */
#define WEFT_CASE_JOIN(t, res) \
	{ .kind = WEFT_SELECT_JOIN, .task = (t), .result = (res) }
/* clang-format on */
/* clang-format off */
#define WEFT_CASE_SEM(s) { .kind = WEFT_SELECT_SEM, .sem = (s) }
/* clang-format on */
/* clang-format off */
#define WEFT_CASE_LOCK(l) { .kind = WEFT_SELECT_LOCK, .lock = (l) }
/* clang-format on */
/* clang-format off */
#define WEFT_CASE_TIMEOUT(ns) { .kind = WEFT_SELECT_TIMEOUT, .timeout = (ns) }
/* clang-format on */
/* clang-format off */
#define WEFT_CASE_READABLE(f) { .kind = WEFT_SELECT_READABLE, .fd = (f) }
#define WEFT_CASE_WRITABLE(f) { .kind = WEFT_SELECT_WRITABLE, .fd = (f) }
/* clang-format on */

/* Most cases in one select. */
#define WEFT_SELECT_MAX 4096

/*
 * Waits until one of cases[0..n) completes, completes it (and only it), and
 * returns its index; cases[i].status is then what the operation returned:
 *   GET, PUT: 0, -EPIPE (queue shut down), -ENOMEM (PUT: no memory to
 *     store the item);
 *   EVENT, SEM, LOCK, TIMEOUT: 0;
 *   FUTURE: 0 (the result stored), or the future's error / -ECANCELED;
 *   JOIN: 0 (the task joined, its handle consumed, its result stored),
 *     -ESRCH (stale handle), -EINVAL (detached or being joined), or the
 *     error weft_join returns for a task that never ran (-ENOMEM);
 *   READABLE, WRITABLE: 0 (the fd is ready, or hung up or failed: the
 *     next call on it says which), -EBADF (not open, or weft_close(fd)
 *     came while the select waited), -EOPNOTSUPP (on a plain thread,
 *     whose wait could outlast the run's poll set: poll(2) there),
 *     -EMFILE, -ENOMEM, or epoll_ctl(2)'s error for an fd epoll cannot
 *     watch.
 * Returns the index, or:
 *   -EINVAL   cases NULL, n < 1 or > WEFT_SELECT_MAX, a bad kind, a NULL
 *             primitive or item, an uninitialised queue, a negative
 *             timeout (cases after one that completes at once are not
 *             looked at);
 *   -EDEADLK  a LOCK case on a lock the caller holds, or a JOIN case on
 *             the caller itself: such a case can never complete, so the
 *             select fails when it comes to it in array order, as for
 *             -EINVAL, having taken nothing (a ready case after it is not
 *             taken, a timeout of 0 after it does not poll);
 *   -ECANCELED, -ETIMEDOUT  the caller was cancelled / its deadline
 *             passed while it waited; nothing completed;
 *   -ENOMEM   more than 16 cases and no memory for their bookkeeping, or
 *             no memory for a timer.
 */
WEFT_MUST_CHECK int weft_select(struct weft_select_case *cases, int n);

/*
 * Waits until the first of tasks[0..n) ends (asyncio.wait with
 * FIRST_COMPLETED), joins it, and returns its index. The slot is then
 * emptied ({NULL, 0}: its handle was consumed) and its result stored in
 * *result and what weft_join returned (0, or -ENOMEM for a task that never
 * ran) in *status, each unless NULL. Empty slots are skipped, so calling it
 * again on the same array yields the rest in completion order. The other
 * tasks are not joined: their handles stay valid.
 * Returns the index, or -ENOENT (every slot empty), -EINVAL (tasks NULL,
 * n < 1 or > WEFT_SELECT_MAX, a detached task or one another caller joins,
 * one task in two slots),
 * -ESRCH (a stale handle), -EDEADLK (the caller's own handle),
 * -ECANCELED, -ETIMEDOUT (nothing joined), -ENOMEM.
 */
WEFT_MUST_CHECK int weft_wait_first(weft_task_t *tasks, int n, void **result,
				    int *status);

/*
 * as_completed: iterates over tasks in the order they end. The array is
 * the caller's and is emptied slot by slot as weft_wait_first does. Tasks
 * that all ended before a call are yielded in array order (each call
 * takes the first ended one it finds, as a select does).
 *
 *	struct weft_as_completed it;
 *	weft_as_completed_init(&it, tasks, n);
 *	while ((i = weft_as_completed_next(&it, &res, &st)) >= 0)
 *		use(i, st, res); // i == -ENOENT once all have been yielded
 *
 * Every task is yielded once, as by asyncio's as_completed: one that
 * cannot be joined (its handle stale, another caller having joined it, or
 * the task detached) is yielded too, its slot emptied, with what weft_join
 * says (-ESRCH, -EINVAL) as its status and NULL as its result.
 */
struct weft_as_completed {
	weft_task_t *tasks;
	int n;
	int left; /* slots not yet yielded */
};

/* Returns 0, or -EINVAL (NULL it or tasks, n < 1 or > WEFT_SELECT_MAX). */
int weft_as_completed_init(struct weft_as_completed *it, weft_task_t *tasks,
			   int n);
/* Joins the next task to end and returns its index, as weft_wait_first,
 * but yields a slot that cannot be joined as above rather than failing.
 * Returns -ENOENT once every task has been yielded (at once for a
 * zero-filled it, which holds none), and the other errors of
 * weft_wait_first (after -ECANCELED or -ETIMEDOUT the iteration can go
 * on). */
WEFT_MUST_CHECK int weft_as_completed_next(struct weft_as_completed *it,
					   void **result, int *status);

#ifdef __cplusplus
}
#endif
#endif
