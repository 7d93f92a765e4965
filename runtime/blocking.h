/*
 * The blocking pool: threads outside the workers for calls that block
 * (asyncio.to_thread), and for getaddrinfo.
 */
#ifndef WEFT_RUNTIME_BLOCKING_H
#define WEFT_RUNTIME_BLOCKING_H

#include <stdint.h>

#include "weft/io.h"

/* weft_run calls these: start after the workers started (sets the most
 * threads the pool may start; <= 0: 64), stop after they stopped (fails jobs
 * still queued with -ECANCELED, joins the threads, frees everything but
 * the threads that run an abandoned job: those are detached and end, and
 * free it and themselves, when its fn returns). The pool also works
 * before start, with the default maximum. Returns 0. */
int weft__blocking_start(int max_threads);
void weft__blocking_stop(void);

/* Threads stop detached that have not ended yet, for the tests. */
int weft__blocking_orphans(void);

/* The pool's threads, how many of them run a job, and jobs queued, for
 * weft_metrics. */
void weft__blocking_stats(uint64_t *threads, uint64_t *busy, uint64_t *queued);

/* A job of the pool, zeroed but for fn, arg and discard before
 * weft__blocking_run (weft__blocking_abort may look at it from then on).
 * fn(arg)'s value lands in result. */
struct weft__bjob {
	weft_blocking_fn fn;
	void *arg;
	void *result;
	/* Non-NULL: the job may be abandoned while it runs (the caller returns
	 * -ECANCELED / -ETIMEDOUT at once); the pool thread then calls
	 * discard(job) when fn returns, to free the result and the job,
	 * perhaps after weft_run returned. So fn and discard must need
	 * nothing of the runtime's. */
	void (*discard)(struct weft__bjob *job);
	/* Private to blocking.c. */
	struct weft__waiter *waiter;
	struct weft__bjob *next, *prev;
	int state;
	int refused; /* weft__blocking_abort's reason, before it queued */
};

/* Runs job on the pool and waits for it, from a task. Returns 0 (job->result
 * is set), -ECANCELED / -ETIMEDOUT (the job did not run, or was abandoned if
 * it has a discard function), -ESHUTDOWN, -EAGAIN (no thread), or the
 * reason of a weft__blocking_abort before it started. A job with a
 * discard function is consumed by a failure (discarded here, or by the pool
 * thread once it ends): the caller must not touch it then. */
int weft__blocking_run(struct weft__bjob *job);

/* Fails job with reason (-EBADF: its fd was closed) unless it started:
 * weft__blocking_run returns reason if the job is queued, or once it comes
 * to queue it. A job that runs or ran is left alone. Any thread, while job
 * is alive. */
void weft__blocking_abort(struct weft__bjob *job, int reason);

#endif
