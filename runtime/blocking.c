/*
 * The blocking pool (asyncio.to_thread): a FIFO of jobs served by up to
 * `max` threads, started on demand and kept until weft__blocking_stop().
 *
 * Invariants:
 *  - pool.lock (a spinlock, so a parking task can release it from its
 *    worker's scheduler stack: see runtime/wait.h) guards every field but
 *    seq, and every job's state, waiter and links.
 *  - A job is QUEUED exactly while it is on the list, with its waiter set.
 *    Its waiter is settled under the lock only: by the pool thread when the
 *    job ends (notify), or by an abort while the job is QUEUED (it is
 *    unlinked and never runs) or RUNNING with a discard function (it is
 *    abandoned: waiter cleared, the pool thread discards it at the end).
 *    A RUNNING job without one is never abandoned: its arg may live on the
 *    waiting task's stack.
 *  - A job comes zeroed (JOB_NEW) and weft__blocking_abort may look at it
 *    before weft__blocking_run does, so its state, waiter, links and
 *    refused are written under the lock only. A job refused while NEW is
 *    never queued.
 *  - A task enqueues with the lock held and releases it only after it has
 *    switched out (weft__wait_park's unlock), so no pool thread can wake it
 *    early. A thread that finds the queue empty reads seq under the lock
 *    before sleeping on it, and every enqueue bumps seq after it: no wake-up
 *    is lost.
 *  - nthreads counts threads started or being started; a failed start
 *    gives its slot back, and if none is left the queue is failed with
 *    -EAGAIN rather than left to wait forever.
 *  - A thread's job is the one it runs (NULL between jobs), set and
 *    cleared under the lock. At stop a thread whose job was abandoned is
 *    not joined but detached: nobody waits for what it returns (a lookup
 *    whose caller gave up), so weft_run returns as Go's process exit
 *    does, not after a dead DNS server's timeouts. It moves from threads
 *    to orphans, discards its job when fn returns, then unlinks and
 *    frees itself and ends, touching nothing else of the pool: the next
 *    weft_run may have started meanwhile. Listed in a global until then,
 *    the thread and its job stay reachable for a leak check at exit.
 */
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>

#include "weft/task.h"
#include "blocking.h"
#include "futex.h"
#include "list.h"
#include "spinlock.h"
#include "stall.h"
#include "wait.h"

#define DEFAULT_MAX 64

enum { JOB_NEW, JOB_QUEUED, JOB_RUNNING, JOB_DONE };

struct pool_thread {
	pthread_t tid;
	struct pool_thread *next, *prev;
	struct weft__bjob *job; /* the one it runs, or NULL */
	bool detached;          /* on orphans: stop left it to end alone */
};

static struct {
	unsigned lock; /* a spinlock */
	struct weft__bjob *head, *tail;
	int queued, nthreads, idle, max;
	bool stopping;
	struct pool_thread *threads;
	struct pool_thread *orphans; /* detached by stop, still running */
	_Atomic int seq;             /* futex word the idle threads sleep on */
	_Atomic unsigned names;      /* threads named so far: weft-blk-N */
} pool = { .max = DEFAULT_MAX };

static void pool_lock(void)
{
	weft__spin_lock(&pool.lock);
}

static void pool_unlock(void)
{
	weft__spin_unlock(&pool.lock);
}

static void pool_signal(int n)
{
	/* The edge is the lock, not this release: every caller changed the
	 * queue (or stopping) in a hold of the lock taken before this bump.
	 * A thread whose read of seq (pool_main, under the lock) came in an
	 * earlier hold happens before that hold, hence before this bump, so
	 * it read an older seq and its futex_wait sees the bump or is queued
	 * for the wake; one whose hold came later sees the job. The bump
	 * publishes nothing: relaxed would do (on x86 a locked add either
	 * way). */
	atomic_fetch_add_explicit(&pool.seq, 1, memory_order_release);
	weft__futex_wake(&pool.seq, n);
}

static void pool_sleep(int seen)
{
	weft__futex_wait(&pool.seq, seen, 0);
}

/* Under the lock. */
static void job_unlink(struct weft__bjob *job)
{
	WEFT_ASSERT(weft__spin_held(&pool.lock));
	weft__list_remove(pool.head, pool.tail, job);
	pool.queued--;
}

/* Under the lock. */
static void job_push(struct weft__bjob *job)
{
	WEFT_ASSERT(weft__spin_held(&pool.lock));
	weft__list_push_back(pool.head, pool.tail, job);
	pool.queued++;
}

/* Under the lock: fails every queued job with reason. */
static void fail_queued(int reason)
{
	struct weft__bjob *job;

	while ((job = pool.head)) {
		job_unlink(job);
		job->state = JOB_DONE;
		if (weft__waiter_settle(job->waiter, reason))
			weft__waiter_wake(job->waiter);
	}
}

/* An abandoned job's thread that stop detached: it ends the job and
 * itself (self is off threads, so nobody else frees it). */
static void *orphan_exit(struct pool_thread *self, struct weft__bjob *job)
{
	pool_unlock();
	job->discard(job);
	pool_lock();
	weft__list_unlink(pool.orphans, self);
	pool_unlock();
	free(self);
	return NULL;
}

static void *pool_main(void *arg)
{
	struct pool_thread *self = arg;
	struct weft__bjob *job;
	int seen;
	void *res;
	char name[16];

	/* Named for top, perf and gdb: weft-blk-0, weft-blk-1, ...
	 * Relaxed: a counter for names, publishing nothing. */
	snprintf(name, sizeof(name), "weft-blk-%u",
		 atomic_fetch_add_explicit(&pool.names, 1,
					   memory_order_relaxed));
	pthread_setname_np(pthread_self(), name);
	pool_lock();
	for (;;) {
		if ((job = pool.head)) {
			job_unlink(job);
			job->state = JOB_RUNNING;
			self->job = job;
			pool_unlock();
			res = job->fn(job->arg);
			pool_lock();
			self->job = NULL;
			job->result = res;
			job->state = JOB_DONE;
			if (self->detached)
				return orphan_exit(self, job);
			if (job->waiter) {
				weft__waiter_notify(job->waiter, 0);
			} else { /* abandoned */
				pool_unlock();
				job->discard(job);
				pool_lock();
			}
			continue;
		}
		if (pool.stopping)
			break;
		/* Under the lock, as the comment at the top says: an
		 * enqueue whose push we did not see bumps seq after it (the
		 * edge is the lock: see pool_signal). The acquire pairs with
		 * pool_signal's release but reads nothing through it; the
		 * lock already orders the queue. */
		seen = atomic_load_explicit(&pool.seq, memory_order_acquire);
		pool.idle++;
		pool_unlock();
		pool_sleep(seen);
		pool_lock();
		pool.idle--;
	}
	pool_unlock();
	return NULL;
}

static void pool_spawn(void)
{
	struct pool_thread *t = calloc(1, sizeof(*t));
	/* Started from a worker: with SIGURG as weft_run's caller has it
	 * (stall.h). */
	sigset_t mask = weft__stall_thread_block();
	bool made = t && !pthread_create(&t->tid, NULL, pool_main, t);

	weft__stall_thread_restore(&mask);
	if (made) {
		pool_lock();
		weft__list_push_front(pool.threads, t);
		pool_unlock();
		return;
	}
	free(t);
	pool_lock();
	if (--pool.nthreads == 0)
		fail_queued(-EAGAIN);
	pool_unlock();
}

struct park_arg {
	bool spawn;
};

/* weft__wait_park's unlock: runs once the task has switched out. */
static void park_unlock(void *arg)
{
	bool spawn = ((struct park_arg *)arg)->spawn;

	/* The task may be resumed from here on: arg is gone. */
	pool_unlock();
	pool_signal(1);
	if (spawn)
		pool_spawn();
}

/* Under the lock: a QUEUED job's waiter w ends with reason unless it was
 * settled already; the job never runs. */
static void fail_one(struct weft__bjob *job, struct weft__waiter *w, int reason)
{
	if (weft__waiter_settle(w, reason)) {
		job_unlink(job);
		job->state = JOB_DONE;
		weft__waiter_wake(w);
	}
}

static void job_abort(struct weft__waiter *w, int reason)
{
	struct weft__bjob *job = w->data;

	/* Aborts come until the task ends its wait (a second weft_cancel, a
	 * deadline after a cancel), and once w is settled the job may be
	 * gone: abandoned, the pool thread discards it when fn returns. A
	 * settled w has nothing left to abort, and only the aborts (which
	 * the task's wait lock serialises) abandon: while w waits, the job
	 * is still the task's. */
	if (weft__waiter_state(w) != WEFT__WAITING)
		return;
	pool_lock();
	switch (job->state) {
	case JOB_NEW: /* not queued yet: the submitter sees it and backs off */
		weft__waiter_settle(w, reason);
		break;
	case JOB_QUEUED:
		fail_one(job, w, reason);
		break;
	case JOB_RUNNING:
		if (job->discard && weft__waiter_settle(w, reason)) {
			job->waiter = NULL;
			w->value = 1;
			weft__waiter_wake(w);
		}
		break;
	}
	pool_unlock();
}

int weft__blocking_run(struct weft__bjob *job)
{
	struct weft__waiter w;
	struct park_arg pa;
	/* Read now: an abandoned job belongs to the pool thread. */
	bool discardable = job->discard;
	int r;

	weft__waiter_init_as(&w, job_abort, WEFT__WAIT_BLOCKING, job->fn);
	w.data = job;
	w.value = 0; /* 1: abandoned, the pool thread discards the job */
	if ((r = weft__wait_begin(&w)))
		goto out;
	pool_lock();
	r = pool.stopping  ? -ESHUTDOWN
	    : job->refused ? job->refused
			   : weft__waiter_state(&w);
	if (r != WEFT__WAITING) {
		pool_unlock();
		weft__wait_end(&w);
		goto out;
	}
	job->waiter = &w;
	job->state = JOB_QUEUED;
	job_push(job);
	pa.spawn = pool.queued > pool.idle && pool.nthreads < pool.max;
	if (pa.spawn)
		pool.nthreads++;
	r = weft__wait_park(&w, park_unlock, &pa);
out:
	if (r && discardable && !w.value)
		job->discard(job);
	return r;
}

void weft__blocking_abort(struct weft__bjob *job, int reason)
{
	pool_lock();
	if (job->state == JOB_NEW)
		job->refused = reason;
	else if (job->state == JOB_QUEUED)
		fail_one(job, job->waiter, reason);
	pool_unlock();
}

int weft_blocking(weft_blocking_fn fn, void *arg, void **result)
{
	struct weft__bjob job = { .fn = fn, .arg = arg };
	int r;

	if (!fn)
		return -EINVAL;
	if (!weft_current().task) {
		job.result = fn(arg);
		r = 0;
	} else {
		r = weft__blocking_run(&job);
	}
	if (!r && result)
		*result = job.result;
	return r;
}

void weft__blocking_stats(uint64_t *threads, uint64_t *busy, uint64_t *queued)
{
	pool_lock();
	*threads = (uint64_t)pool.nthreads;
	*busy = (uint64_t)(pool.nthreads - pool.idle);
	*queued = (uint64_t)pool.queued;
	pool_unlock();
}

/* fork(2) keeps only the forking thread. An orphan (see the top) of an
 * earlier run may hold the lock at that instant, as it unlinks itself,
 * and the child would spin on it for ever at its first weft_run. So the
 * forking thread holds the lock across the fork, and both sides release
 * it. The child's orphans stay listed, their threads gone: reachable for
 * the leak check, and never joined, as no orphan is. */
static void at_fork_once(void)
{
	pthread_atfork(pool_lock, pool_unlock, pool_unlock);
}

int weft__blocking_start(int max_threads)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;

	pthread_once(&once, at_fork_once);
	pool_lock();
	pool.max = max_threads > 0 ? max_threads : DEFAULT_MAX;
	pool_unlock();
	return 0;
}

/* Under the lock, at stop: detaches the threads that run an abandoned
 * job (see the top), moving them from threads to orphans. */
static void detach_abandoned(void)
{
	struct pool_thread *t, *next;

	for (t = pool.threads; t; t = next) {
		next = t->next;
		if (!t->job || t->job->waiter)
			continue;
		weft__list_unlink(pool.threads, t);
		t->detached = true;
		weft__list_push_front(pool.orphans, t);
		/* Before the unlock: the thread frees t once it sees
		 * detached, and t->tid with it. */
		pthread_detach(t->tid);
	}
}

int weft__blocking_orphans(void)
{
	int n = 0;

	pool_lock();
	for (struct pool_thread *t = pool.orphans; t; t = t->next)
		n++;
	pool_unlock();
	return n;
}

void weft__blocking_stop(void)
{
	struct pool_thread *t, *next;

	pool_lock();
	pool.stopping = true;
	fail_queued(-ECANCELED);
	detach_abandoned();
	t = pool.threads;
	pool.threads = NULL;
	pool_unlock();
	pool_signal(INT_MAX);
	for (; t; t = next) {
		next = t->next;
		pthread_join(t->tid, NULL);
		free(t);
	}
	pool_lock();
	pool.nthreads = 0;
	pool.idle = 0;
	pool.stopping = false;
	/* Relaxed: no pool thread runs now (joined above). */
	atomic_store_explicit(&pool.names, 0, memory_order_relaxed);
	pool_unlock();
}
