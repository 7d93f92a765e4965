/*
 * weft_future: a one-shot result (asyncio.Future).
 *
 * Invariants:
 *  - state leaves PENDING exactly once, under wq.lock, after result or
 *    error is written (release store), so whoever reads state != PENDING
 *    (acquire) also sees the outcome; the outcome never changes again
 *    (only RUNNING is cleared, below).
 *  - Waiters and callbacks are added only under wq.lock while f is
 *    PENDING for the adder. The completer takes the callbacks off the
 *    list one at a time under the lock, and the waiters once the list is
 *    empty, in the critical section that makes f done for everyone: each
 *    callback runs exactly once and no waiter is missed.
 *  - A completer with callbacks publishes the outcome with RUNNING set
 *    and itself as completer, runs each callback unlocked, then, under
 *    the lock, clears RUNNING and wakes the waiters. While RUNNING, f is
 *    done only for the completer (seen): a waiter arriving then waits,
 *    and result and done say pending, so nobody who saw f done frees f or
 *    a callback's node while the completer still uses them.
 *  - While RUNNING, callbacks are added to the list only by those to whom
 *    f is pending; the completer takes them before it clears RUNNING, so
 *    they too run on it and see f done. A callback not run yet is still
 *    on the list: added again it is refused, removed it does not run.
 *  - cb->on == f exactly while cb is on f's list: set as it is linked,
 *    cleared as it is unlinked (taken to run, or removed), under the lock.
 *    So on != f proves cb is not on the list, and add needs no walk. A
 *    node never added holds anything there (f's address too, by chance or
 *    left by a future abandoned at the same address), so on == f is
 *    confirmed by a walk: a cost for a node added twice only.
 *  - Whoever sees f done without the lock waits out the completer's
 *    unlock before returning (weft__waitq_quiesce): the caller may free f
 *    then.
 *  - Nor does a woken waiter read f: another waiter, woken by the same
 *    completion, may have returned first and freed f. The completer hands
 *    each waiter its outcome (result in data, error in value) before it
 *    settles it, and a waiter that finds f done under the lock reads the
 *    outcome there.
 */
#include <errno.h>

#include "weft/sync.h"
#include "runtime/valgrind.h"
#include "waitq.h"
#include "select.h"

enum { PENDING, RESULT, ERROR, CANCELLED };
/* Or'ed into the outcome while the completer runs the callbacks. */
#define RUNNING 4

/* The state f shows the caller: the outcome, or PENDING while another
 * task or thread runs its callbacks. s: a load of f->state with acquire
 * (the completer's release store, which also published completer). */
static int seen(const struct weft_future *f, int s)
{
	if (!(s & RUNNING))
		return s;
	/* relaxed: the acquire load that gave s published completer; only
	 * the completer itself finds its own mark. */
	bool mine = __atomic_load_n(&f->completer, __ATOMIC_RELAXED) ==
		    weft__owner_self();
	return mine ? s & ~RUNNING : PENDING;
}

/* The state f shows the caller, read without the lock. */
static int seen_unlocked(const struct weft_future *f)
{
	/* acquire: pairs with complete's release store of state. */
	int s = seen(f, __atomic_load_n(&f->state, __ATOMIC_ACQUIRE));
	if (s != PENDING)
		weft__waitq_quiesce(&f->wq);
	return s;
}

bool weft__future_done_locked(const struct weft_future *f)
{
	return seen(f, f->state) != PENDING;
}

int weft_future_init(struct weft_future *f)
{
	if (!f)
		return -EINVAL;
	f->state = PENDING;
	f->error = 0;
	f->result = 0;
	f->cbs = f->cbs_tail = 0;
	f->completer = 0;
	weft__waitq_init(&f->wq);
	return 0;
}

/* Takes cb, the head of f's list, off it. Under f's lock. */
static void unlink_head(struct weft_future *f, struct weft_future_cb *cb)
{
	f->cbs = cb->next;
	if (!f->cbs)
		f->cbs_tail = 0;
	cb->next = 0;
	cb->on = 0;
}

/* Runs f's callbacks, those added while they run included, in the order
 * added, each unlocked. Called and returns under f's lock. */
static void run_callbacks(struct weft_future *f)
{
	struct weft_future_cb *cb;

	while ((cb = f->cbs)) {
		/* Read under the lock: once unlinked, cb may be added again
		 * (and its callback may free it). */
		void (*fn)(struct weft_future *, void *) = cb->fn;
		void *arg = cb->arg;

		unlink_head(f, cb);
		weft__waitq_unlock(&f->wq);
		fn(f, arg);
		weft__waitq_lock(&f->wq);
	}
}

/* Under f's lock, f done: gives each waiter its outcome, which it reads
 * after its wake instead of f (see above). Written before the settle,
 * whose release store the woken waiter's acquire (wait_park) pairs with.
 * A select's case reads f under its lock again: it is left alone. */
static void hand_outcome(struct weft_future *f)
{
	for (struct weft__waiter *w = f->wq.head; w; w = w->next) {
		if (w->group)
			continue;
		w->data = f->result;
		w->value = (uint64_t)(int64_t)f->error;
	}
}

static int complete(struct weft_future *f, int state, void *result, int error)
{
	struct weft__wakelist wl = WEFT__WAKELIST_INIT;
	weft__waitq_lock(&f->wq);
	if (f->state != PENDING) {
		weft__waitq_unlock(&f->wq);
		return -EINVAL;
	}
	f->result = result;
	f->error = error;
	if (f->cbs) {
		/* relaxed: published by the release store of state. */
		__atomic_store_n(&f->completer, weft__owner_self(),
				 __ATOMIC_RELAXED);
		/* release: publishes result, error and completer to the
		 * acquire loads of state (seen). */
		__atomic_store_n(&f->state, state | RUNNING, __ATOMIC_RELEASE);
		run_callbacks(f);
		/* relaxed: published by the release store of state below;
		 * a reader that still sees RUNNING and reads 0 here waits,
		 * and finds the outcome under the lock. */
		__atomic_store_n(&f->completer, 0, __ATOMIC_RELAXED);
	}
	/* release: publishes the outcome to the lock-free acquire loads of
	 * state (result, done, wait's fast path). */
	__atomic_store_n(&f->state, state, __ATOMIC_RELEASE);
	hand_outcome(f);
	weft__waitq_settle_all(&f->wq, 0, &wl);
	weft__waitq_unlock(&f->wq);
	weft__wakelist_wake(&wl);
	return 0;
}

int weft_future_set_result(struct weft_future *f, void *result)
{
	if (!f)
		return -EINVAL;
	return complete(f, RESULT, result, 0);
}

int weft_future_set_error(struct weft_future *f, int error)
{
	/* -4095..-1, the errnos WEFT_IS_ERR knows. */
	if (!f || error >= 0 || error < -4095)
		return -EINVAL;
	return complete(f, ERROR, 0, error);
}

int weft_future_cancel(struct weft_future *f)
{
	if (!f)
		return -EINVAL;
	return complete(f, CANCELLED, 0, -ECANCELED);
}

/* An outcome handed to the caller: error, or 0 with value in *result. */
static int give(int error, void *value, void **result)
{
	if (!error && result)
		*result = value;
	return error;
}

/* The outcome of a done future. */
static int outcome(struct weft_future *f, int state, void **result)
{
	return give(state == RESULT ? 0 : f->error, f->result, result);
}

int weft_future_result(struct weft_future *f, void **result)
{
	if (!f)
		return -EINVAL;
	int s = seen_unlocked(f);
	return s == PENDING ? -EAGAIN : outcome(f, s, result);
}

int weft_future_done(const struct weft_future *f)
{
	if (!f)
		return -EINVAL;
	return seen_unlocked(f) != PENDING;
}

int weft_future_wait(struct weft_future *f, void **result)
{
	if (!f)
		return -EINVAL;
	int s = seen_unlocked(f);
	if (s != PENDING)
		return outcome(f, s, result);

	struct weft__waiter w;
	int r;
	weft__waitq_prepare_as(&f->wq, &w, 0, WEFT__WAIT_FUTURE, f);
	if ((r = weft__wait_begin(&w)))
		return r;
	weft__waitq_lock(&f->wq);
	if ((s = seen(f, f->state)) != PENDING) { /* under the lock */
		r = outcome(f, s, result);        /* read before we leave it */
		weft__waitq_unlock(&f->wq);
		weft__wait_end(&w);
		return r;
	}
	r = weft__waitq_wait(&f->wq, &w);
	if (r)
		return r; /* the waiter was cancelled or timed out */
	/* Handed over by complete (hand_outcome): f may be gone by now. */
	return give((int)(int64_t)w.value, w.data, result);
}

/* Whether cb is on f's list; if so, *prev is the node before it (NULL:
 * cb is the head). Under f's lock. */
static bool find(const struct weft_future *f, struct weft_future_cb *cb,
		 struct weft_future_cb **prev)
{
	/* A node never added is the caller's uninitialised memory: its on
	 * is read as a hint only (confirmed below), so tell memcheck. */
	WEFT_MARK_FILLED(&cb->on, sizeof(cb->on));
	if (cb->on != f)
		return false;
	*prev = 0;
	for (struct weft_future_cb *c = f->cbs; c; *prev = c, c = c->next)
		if (c == cb)
			return true;
	return false;
}

int weft_future_add_callback(struct weft_future *f, struct weft_future_cb *cb,
			     void (*fn)(struct weft_future *, void *),
			     void *arg)
{
	struct weft_future_cb *prev;

	if (!f || !cb || !fn)
		return -EINVAL;
	weft__waitq_lock(&f->wq);
	/* Linked again, it would cut off the callbacks behind it: those not
	 * run yet, while f's completer runs them, included. */
	if (find(f, cb, &prev)) {
		weft__waitq_unlock(&f->wq);
		return -EINVAL;
	}
	cb->fn = fn;
	cb->arg = arg;
	cb->next = 0;
	cb->on = 0;
	/* Pending for us, f's callbacks have yet to run (or run on another
	 * task or thread, which takes ours too before f is done). */
	if (seen(f, f->state) == PENDING) {
		if (f->cbs_tail)
			f->cbs_tail->next = cb;
		else
			f->cbs = cb;
		f->cbs_tail = cb;
		cb->on = f;
		weft__waitq_unlock(&f->wq);
		return 0;
	}
	weft__waitq_unlock(&f->wq);
	fn(f, arg);
	return 0;
}

int weft_future_remove_callback(struct weft_future *f,
				struct weft_future_cb *cb)
{
	struct weft_future_cb *prev;
	bool found;

	if (!f || !cb)
		return -EINVAL;
	weft__waitq_lock(&f->wq);
	/* Done for us: f's callbacks have run, or run on us now. */
	found = seen(f, f->state) == PENDING && find(f, cb, &prev);
	if (found) {
		if (prev)
			prev->next = cb->next;
		else
			f->cbs = cb->next;
		if (f->cbs_tail == cb)
			f->cbs_tail = prev;
		cb->next = 0;
		cb->on = 0;
	}
	weft__waitq_unlock(&f->wq);
	return found ? 0 : -ENOENT;
}
