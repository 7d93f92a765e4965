/*
 * Timers: a min-heap per worker of the deadlines of tasks' current waits.
 * The heap's worker fires them in its loop and parks no longer than its
 * nearest one. Entries are {at, task, seq} by value, so sifting touches only
 * the array, never the (cold) task structs: with a million sleepers the
 * difference is a cache miss per heap level. Each task has one timer
 * (struct weft_timer, in the task), since it waits for one thing at a time.
 *
 * Disarming is lazy, as in Go: it clears the task's armed seq and counts
 * the entry stale; the entry leaves when it comes due or when the heap,
 * more than half stale, is compacted.
 *
 * Invariants:
 *  - t->timer.armed is the seq of the one live entry for t, or 0. Whoever
 *    moves it from seq to 0 owns that entry's fate: the firing worker (by
 *    CAS, then fires) or the disarming task (by exchange, then counts it
 *    stale). So an entry fires at most once and is counted stale at most
 *    once, and `stale` counts exactly the stale entries in the heap.
 *  - Heap fields change only under the owner's timers.lock.
 *  - Firing happens outside the heap lock, under the task's wait_lock, and
 *    only if the wait it was armed for (seq) is still the current one. By
 *    then the task may have ended and its struct been respawned: task.h
 *    ("Strangers") says why that is safe.
 *  - Any thread may fire a heap's due timers: its worker, or the monitor
 *    when that worker is kept by one task (monitor.c). One at a time, for
 *    all its batches (the heap's firing mutex): both wake the sleepers into
 *    the worker's ready queue (park.c's weft__ready_into), first in first
 *    out, so the firings' order is the wakes'; a worker that took a later
 *    batch while the monitor still fired an earlier one woke its sleepers
 *    first, out of the order they slept in (time.h).
 */
#include <errno.h>
#include <stdlib.h>
#include <time.h>

#include "monitor.h"
#include "self.h"
#include "task.h"
#include "timer.h"
#include "valgrind.h"
#include "worker.h"

#define FIRE_BATCH 64
#define COMPACT_MIN 1024

int64_t weft_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * WEFT_SEC + ts.tv_nsec;
}

/* Earlier deadline first; equal deadlines in the order they were armed. */
static bool before(const struct weft_timer_entry *a,
		   const struct weft_timer_entry *b)
{
	return a->at < b->at || (a->at == b->at && a->order < b->order);
}

/* Returns where the entry ends up: 0 if it is the heap's first. */
static int64_t sift_up(struct weft_timer_entry *h, int64_t i)
{
	struct weft_timer_entry e = h[i];
	while (i > 0) {
		int64_t p = (i - 1) / 2;
		if (!before(&e, &h[p]))
			break;
		h[i] = h[p];
		i = p;
	}
	h[i] = e;
	return i;
}

static void sift_down(struct weft_timer_entry *h, int64_t len, int64_t i)
{
	struct weft_timer_entry e = h[i];
	for (;;) {
		int64_t c = 2 * i + 1;
		if (c >= len)
			break;
		if (c + 1 < len && before(&h[c + 1], &h[c]))
			c++;
		if (!before(&h[c], &e))
			break;
		h[i] = h[c];
		i = c;
	}
	h[i] = e;
}

static void set_len(struct weft_worker *w, int64_t len)
{
	/* Atomic: the scheduler peeks at heap_len without the lock.
	 * Relaxed: the peek only decides whether to take the lock, and all
	 * it then reads is read under it. */
	__atomic_store_n(&w->timers.len, len, __ATOMIC_RELAXED);
}

static bool entry_stale(const struct weft_timer_entry *e)
{
	/* acquire: pairs with arm's release store of armed. */
	return atomic_load_explicit(&e->task->timer.armed,
				    memory_order_acquire) != e->seq;
}

/* Drops the stale entries and re-heapifies. Under the lock. */
static void compact(struct weft_worker *w)
{
	WEFT_ASSERT(weft__spin_held(&w->timers.lock));
	int64_t n = 0, dropped = 0;
	for (int64_t i = 0; i < w->timers.len; i++) {
		if (entry_stale(&w->timers.entries[i]))
			dropped++;
		else
			w->timers.entries[n++] = w->timers.entries[i];
	}
	set_len(w, n);
	for (int64_t i = n / 2 - 1; i >= 0; i--)
		sift_down(w->timers.entries, n, i);
	/* relaxed: a count that only prompts compaction (see disarm). */
	atomic_fetch_sub_explicit(&w->timers.stale, dropped,
				  memory_order_relaxed);
}

int weft__timer_arm(struct weft_task *t, int64_t at, uint64_t seq)
{
	struct weft_worker *w = weft__self();
	weft__spin_lock(&w->timers.lock);
	if (w->timers.len == w->timers.cap) {
		/* relaxed: as in disarm; compact checks each entry. */
		int64_t stale = atomic_load_explicit(&w->timers.stale,
						     memory_order_relaxed);
		if (stale > w->timers.len / 2 && w->timers.len >= COMPACT_MIN)
			compact(w);
	}
	if (w->timers.len == w->timers.cap) {
		int64_t cap = w->timers.cap ? w->timers.cap * 2 : 256;
		struct weft_timer_entry *h =
			realloc(w->timers.entries, (size_t)cap * sizeof(*h));
		if (!h) {
			weft__spin_unlock(&w->timers.lock);
			return -ENOMEM;
		}
		w->timers.entries = h;
		w->timers.cap = cap;
	}
	w->timers.entries[w->timers.len] =
		(struct weft_timer_entry){ at, w->timers.order++, t, seq };
	bool first = sift_up(w->timers.entries, w->timers.len) == 0;
	/* seq_cst, not set_len's relaxed: the monitor's arming protocol
	 * (monitor.h). This store, then monitor_arm's seq_cst load of the
	 * state below, against the monitor's CAS to IDLE, then its seq_cst
	 * load of len: one of the two sees the other. Relaxed, the store
	 * could wait in the store buffer past our load of ARMED (x86 too)
	 * while the monitor read len 0, leaving w's sleepers to a task that
	 * keeps w. */
	__atomic_store_n(&w->timers.len, w->timers.len + 1, __ATOMIC_SEQ_CST);
	/* owner relaxed: published by the release store of armed, which
	 * disarm's exchange and entry_stale read with acquire. */
	atomic_store_explicit(&t->timer.owner, w, memory_order_relaxed);
	atomic_store_explicit(&t->timer.armed, seq, memory_order_release);
	weft__spin_unlock(&w->timers.lock);
	/* If a task keeps w, the monitor fires w's due timers. An idle one
	 * sleeps until the first timer it saw is near, so only a new first
	 * of its heap must rouse it (monitor.h: no lost arming). weft__rt
	 * relaxed: set before the workers started (pthread_create). */
	if (first)
		weft__monitor_arm(
			&atomic_load_explicit(&weft__rt, memory_order_relaxed)
				 ->monitor);
	return 0;
}

void weft__timer_disarm(struct weft_task *t)
{
	/* The relaxed load only skips the exchange when nothing is armed;
	 * the exchange's acquire makes arm's owner visible below (relaxed
	 * load: published by arm's release store of armed). Its release
	 * half publishes nothing: a fire's CAS that then fails only counts
	 * the entry stale. */
	if (!atomic_load_explicit(&t->timer.armed, memory_order_relaxed) ||
	    !atomic_exchange_explicit(&t->timer.armed, 0, memory_order_acq_rel))
		return;
	struct weft_worker *w =
		atomic_load_explicit(&t->timer.owner, memory_order_relaxed);
	/* relaxed: a count that only prompts a compaction, which checks
	 * each entry itself (entry_stale). */
	atomic_fetch_add_explicit(&w->timers.stale, 1, memory_order_relaxed);
}

static void fire(struct weft_task *t, uint64_t seq)
{
	weft__wait_lock(t);
	struct weft__waiter *w = t->waiting;
	if (w && t->wait_seq == seq && w->abort)
		w->abort(w, -ETIMEDOUT);
	weft__spin_unlock(&t->wait_lock);
}

/* Pops due entries into due[]; returns how many, and the time to the next
 * one in *wait (-1: none). Under the lock. */
static int pop_due(struct weft_worker *w, int64_t now,
		   struct weft_timer_entry *due, int64_t *wait)
{
	WEFT_ASSERT(weft__spin_held(&w->timers.lock));
	int n = 0;
	*wait = -1;
	while (w->timers.len && n < FIRE_BATCH) {
		struct weft_timer_entry *top = &w->timers.entries[0];
		if (top->at > now) {
			*wait = top->at - now;
			break;
		}
		struct weft_task *t = top->task;
		uint64_t seq = top->seq;
		/* Who owns the entry's fate is decided by armed's one
		 * modification order, not by these orders. acq_rel (acquire
		 * on failure) pairs with arm's release store and disarm's
		 * exchange, but nothing is read through them: the entry
		 * comes from the heap, under its lock, and fire checks the
		 * wait under the task's wait_lock. */
		if (atomic_compare_exchange_strong_explicit(
			    &t->timer.armed, &seq, 0, memory_order_acq_rel,
			    memory_order_acquire))
			due[n++] = *top;
		else /* a stale entry leaves: relaxed, as in disarm */
			atomic_fetch_sub_explicit(&w->timers.stale, 1,
						  memory_order_relaxed);
		w->timers.entries[0] = w->timers.entries[w->timers.len - 1];
		set_len(w, w->timers.len - 1);
		if (w->timers.len)
			sift_down(w->timers.entries, w->timers.len, 0);
	}
	return n;
}

int64_t weft__timers_run(struct weft_worker *w, bool *fired)
{
	struct weft_timer_entry due[FIRE_BATCH];
	int64_t wait;
	*fired = false;
	/* An empty heap has nothing to fire, nor to wait for: every park of
	 * a worker comes here, and most find it so. A firing that emptied it
	 * may still be under way; nothing is left to overtake its wakes. */
	if (!weft__timers_pending(&w->timers))
		return -1;
	/* The clock is read once the mutex is ours: a worker that waited here
	 * while the monitor fired would otherwise leave what came due in the
	 * meantime, and park for the time it had waited too long. */
	pthread_mutex_lock(&w->timers.firing);
	int64_t now = weft_now();
	for (;;) {
		weft__spin_lock(&w->timers.lock);
		int n = pop_due(w, now, due, &wait);
		weft__spin_unlock(&w->timers.lock);
		for (int i = 0; i < n; i++)
			fire(due[i].task, due[i].seq);
		*fired = *fired || n > 0;
		if (n < FIRE_BATCH)
			break;
	}
	pthread_mutex_unlock(&w->timers.firing);
	return wait;
}

int64_t weft__timers_first(struct weft_worker *w)
{
	weft__spin_lock(&w->timers.lock);
	int64_t at = w->timers.len ? w->timers.entries[0].at : WEFT_NO_DEADLINE;
	weft__spin_unlock(&w->timers.lock);
	return at;
}

void weft__timers_init(struct weft_worker *w)
{
	pthread_mutex_init(&w->timers.firing, NULL);
}

void weft__timers_free(struct weft_worker *w)
{
	pthread_mutex_destroy(&w->timers.firing);
	free(w->timers.entries);
	w->timers.entries = NULL;
	w->timers.len = w->timers.cap = 0;
}

/* ---- sleeping ----------------------------------------------------------- */

/* A sleeper is linked nowhere but its own little lock: "linked" means it
 * has committed to parking, after which only the abort may wake it. */
struct sleeper {
	struct weft__waiter w;
	unsigned lock;
	bool linked;
};

static void sleep_unlock(void *s)
{
	weft__spin_unlock(&((struct sleeper *)s)->lock);
}

static void sleep_abort(struct weft__waiter *w, int reason)
{
	struct sleeper *s = (struct sleeper *)w;
	weft__spin_lock(&s->lock);
	if (s->linked)
		weft__waiter_notify(w, reason);
	else
		weft__waiter_settle(w, reason);
	weft__spin_unlock(&s->lock);
}

int64_t weft__from_now(int64_t ns)
{
	int64_t now = weft_now();
	return ns > WEFT_NO_DEADLINE - now ? WEFT_NO_DEADLINE : now + ns;
}

/* Sleeps until at, which the caller saw in the future: one clock read per
 * sleep, where a million sleepers feel each (a clock read is dear in a
 * VM). */
static int sleep_until(struct weft_task *t, int64_t at)
{
	struct sleeper s = { .lock = 0, .linked = false };
	weft__waiter_init_as(&s.w, sleep_abort, WEFT__WAIT_SLEEP, NULL);
	int r = weft__wait_begin_until(&s.w, at);
	if (!r) {
		weft__spin_lock(&s.lock);
		if (weft__waiter_state(&s.w) != WEFT__WAITING) {
			weft__spin_unlock(&s.lock);
			weft__wait_end(&s.w);
			r = weft__waiter_state(&s.w);
		} else {
			s.linked = true;
			r = weft__wait_park(&s.w, sleep_unlock, &s);
		}
	}
	/* The timer armed for min(at, scope's deadline), or the deadline
	 * found passed as the wait began (at was ahead when we were called),
	 * ended the sleep: a success if at came first or at the same instant
	 * (time.h's tie rule), else the scope's timeout. */
	if (r == -ETIMEDOUT && at <= t->deadline)
		r = 0;
	return r;
}

/* A sleep that is over at once yields, and fails as any blocking call
 * does in a cancelled task or past the enclosing deadline (weft_yield
 * looks at cancellation only). */
static int yield_once(struct weft_task *t)
{
	int r = weft__wait_check(t);

	return r ? r : weft_yield();
}

int weft_sleep_until(int64_t at)
{
	struct weft_task *t = weft__task_current();
	if (!t)
		return -EPERM;
	if (at <= weft_now())
		return yield_once(t);
	return sleep_until(t, at);
}

int weft_sleep(int64_t ns)
{
	struct weft_task *t = weft__task_current();
	if (!t)
		return -EPERM;
	if (ns <= 0)
		return yield_once(t);
	return sleep_until(t, weft__from_now(ns));
}

/* ---- deadline scopes ---------------------------------------------------- */

/*
 * A scope entered a second time before it is left would be corrupted: by
 * its own task it would link to itself and never be left, by another its
 * links would be that task's, and the first task's leave would graft that
 * chain onto its own. So a scope records who is inside it: d->task, and
 * d->check == scope_check(d, d->task) while entered (leave clears check).
 *
 * The struct comes uninitialised, so a record counts only if its check
 * matches, which garbage does only where this very address held a scope
 * that was never left (its frame or task ended inside it, against the
 * rules): such a stale record names a task that is no longer in it, and
 * is overwritten. Task structs are type-stable (task.h), so the task a
 * matching record names may be read: its alive flag, atomic, and, for the
 * caller, its own chain of scopes. The check costs two loads and two
 * stores a scope; the chain is walked only when the record names the
 * caller.
 */
#define SCOPE_KEY ((uintptr_t)0x77656674646c696eULL)

static uintptr_t scope_check(const struct weft_deadline *d, const void *task)
{
	return ((uintptr_t)d ^ SCOPE_KEY) - (uintptr_t)task;
}

/* Whether d is one of t's open scopes. */
static bool scope_open(const struct weft_task *t, const struct weft_deadline *d)
{
	for (const struct weft_deadline *s = t->scope; s; s = s->prev)
		if (s == d)
			return true;
	return false;
}

/* Whether a task is inside d: t itself, or another that is still running
 * (one that ended inside it left a stale record, whose struct may run
 * another task by now: refused too, the price of the rule it broke). */
static bool scope_taken(const struct weft_task *t,
			const struct weft_deadline *d)
{
	/* Possibly uninitialised words: memcheck is told they are defined,
	 * and the loads are atomic so that no compiler folds them as reads
	 * of uninitialised memory. Relaxed: two tasks entering one scope at
	 * once are a race in the caller's program, which this only narrows. */
	WEFT_MARK_FILLED(&d->task, sizeof(d->task) + sizeof(d->check));
	const struct weft_task *o = __atomic_load_n(&d->task, __ATOMIC_RELAXED);
	if (__atomic_load_n(&d->check, __ATOMIC_RELAXED) != scope_check(d, o))
		return false;
	if (o == t)
		return scope_open(t, d);
	return atomic_load_explicit(&o->alive, memory_order_relaxed);
}

int weft_deadline_enter_at(struct weft_deadline *d, int64_t at)
{
	struct weft_task *t = weft__task_current();
	if (!t || !d)
		return t ? -EINVAL : -EPERM;
	if (scope_taken(t, d))
		return -EINVAL;
	d->at = at;
	d->outer = t->deadline;
	d->prev = t->scope;
	d->task = t;
	d->check = scope_check(d, t);
	t->scope = d;
	if (at < t->deadline)
		t->deadline = at;
	return 0;
}

int weft_deadline_enter(struct weft_deadline *d, int64_t ns)
{
	return weft_deadline_enter_at(d, weft__from_now(ns));
}

int weft_deadline_leave(struct weft_deadline *d)
{
	struct weft_task *t = weft__task_current();
	if (!t)
		return -EPERM;
	/* Innermost first: not past a shield entered inside the scope. */
	if (!d || t->scope != d || (t->shield && t->shield->scope == d))
		return -EINVAL;
	t->deadline = d->outer;
	t->scope = d->prev;
	d->check = 0; /* no task's: d ^ SCOPE_KEY is no address (64-bit) */
	return weft_now() >= d->at;
}
