/*
 * weft_select: wait on several operations, complete exactly one (Go's
 * select). See <weft/select.h> for the contract.
 *
 * A select has one waiter of its own, the group (struct sel.w): the
 * caller's current wait, which cancellation and deadlines abort. Each case
 * that waits links a waiter of its own (in the case's priv) on its
 * primitive's list, with ->group pointing at the group, so the primitive's
 * notifiers find it like any waiter. runtime/wait.h makes every settle of
 * a case settle the group first (a CAS to WEFT__SELECTED), and makes waking
 * a case wake the group.
 *
 * Like Go's select, the waiting path holds the locks of all its cases at
 * once, taken in address order (Go's sellock): it tries every case in
 * order, links a waiter for each, and parks; the park releases the locks
 * only once the caller has switched out.
 *
 * Invariants:
 *  - The group is settled exactly once: by the notifier of one case (to
 *    WEFT__SELECTED, then that case to its result), by the select itself
 *    when a case completes at once, or by an abort (-ECANCELED,
 *    -ETIMEDOUT). Each of these holds at least one of the select's locks,
 *    the abort and the select itself all of them.
 *  - A case waiter is settled only after its notifier won the group, so at
 *    most one case waiter is ever settled: the winner. A notifier that
 *    loses the group has popped a case waiter and settles nothing; it goes
 *    on to the primitive's next waiter, so the item, permit or lock it had
 *    to hand over is not lost. Losing cases took nothing.
 *  - Case waiters are linked only while the select holds all its locks and
 *    the group is still WAITING, and the select parks before releasing any
 *    of them, so whoever finds a case waiter under its lock and wins the
 *    group may wake the caller: it has switched out (wait.h's rule, held
 *    for every lock at once). An abort wakes only if the select parked
 *    (sel.parked, read under all the locks).
 *  - After the wake the select takes all locks again and unlinks every
 *    case waiter still linked (the primitive's own unlink, so a lock's or
 *    semaphore's contended bit is cleared with its last waiter), before
 *    its stack frame, and the waiters in it, go away.
 *  - Lock order: a select takes its case locks only while holding none
 *    but, in an abort, the task's wait_lock; no primitive takes two case
 *    locks of a select the other way round (a condition's lock is never a
 *    case lock), so the address order cannot deadlock.
 */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>

#include "weft/select.h"
#include "weft/time.h"
#include "drivers/readiness/fdready.h"
#include "runtime/futex.h"
#include "runtime/self.h"
#include "runtime/task.h"
#include "lock.h"
#include "select.h"
#include "waitq.h"

/* A case's internal state: its waiter, and an fd case's watch. */
struct case_priv {
	struct weft__waiter w;
	struct weft__fd_watch watch;
};

_Static_assert(sizeof(struct case_priv) <= WEFT__SELECT_PRIV &&
		       _Alignof(struct case_priv) <= _Alignof(uint64_t),
	       "a select case's priv holds its state");

#define SMALL_LOCKS 16

struct sel {
	struct weft__waiter w; /* the group */
	struct weft_select_case *cases;
	int n;
	unsigned **locks; /* distinct case locks, by address */
	int nlocks;
	bool parked;       /* under all locks: the caller waits */
	unsigned own_lock; /* the one lock of a select of timeouts only */
	int64_t began;     /* when the call began, if it has a timeout */
	int64_t until;     /* the earliest timeout case's time */
	int timeout_case;  /* its index, or -1 */
	struct weft__waiter *wake; /* a queue waiter to wake unlocked */
	unsigned *small[SMALL_LOCKS];
};

static inline struct case_priv *case_priv(struct weft_select_case *c)
{
	return (struct case_priv *)(void *)c->priv;
}

static inline struct weft__waiter *case_waiter(struct weft_select_case *c)
{
	return &case_priv(c)->w;
}

static struct weft__fd_watch *case_watch(struct weft_select_case *c)
{
	return &case_priv(c)->watch;
}

/* The lock that guards case c's primitive; NULL for a timeout. */
static unsigned *lock_of(struct weft_select_case *c)
{
	switch (c->kind) {
	case WEFT_SELECT_READABLE:
	case WEFT_SELECT_WRITABLE:
		return weft__fdready_watch_lock(case_watch(c));
	case WEFT_SELECT_GET:
	case WEFT_SELECT_PUT:
		return &c->queue->getters.lock;
	case WEFT_SELECT_EVENT:
		return &c->event->wq.lock;
	case WEFT_SELECT_FUTURE:
		return &c->future->wq.lock;
	case WEFT_SELECT_SEM:
		return &c->sem->wq.lock;
	case WEFT_SELECT_LOCK:
		return &c->lock->wq.lock;
	case WEFT_SELECT_JOIN:
		return &c->task.task->join_lock;
	default:
		return NULL;
	}
}

static int check_case(const struct weft_select_case *c)
{
	if (c->kind == WEFT_SELECT_TIMEOUT)
		return c->timeout >= 0 ? 0 : -EINVAL;
	if (weft__select_is_fd_case(c))
		return 0; /* try_case completed a bad fd's */
	/* Every other kind's primitive is the union's first pointer. */
	if ((unsigned)c->kind - 1 > WEFT_SELECT_TIMEOUT - 1 || !c->queue)
		return -EINVAL;
	switch (c->kind) {
	case WEFT_SELECT_GET:
	case WEFT_SELECT_PUT:
		return c->item && weft__queue_usable(c->queue) ? 0 : -EINVAL;
	case WEFT_SELECT_LOCK:
		return weft__lock_held_by_me(c->lock) ? -EDEADLK : 0;
	case WEFT_SELECT_JOIN:
		return weft__join_case_self(c->task) ? -EDEADLK : 0;
	default:
		return 0;
	}
}

/* ---- the locks of all cases --------------------------------------------- */

static int cmp_lock(const void *a, const void *b)
{
	uintptr_t x = (uintptr_t) * (unsigned *const *)a;
	uintptr_t y = (uintptr_t) * (unsigned *const *)b;
	return x < y ? -1 : x > y;
}

/* Collects the distinct case locks in address order. */
static int collect_locks(struct sel *s)
{
	s->locks = s->small;
	if (s->n > SMALL_LOCKS &&
	    !(s->locks = malloc(sizeof(*s->locks) * (size_t)s->n)))
		return -ENOMEM;
	int k = 0;
	for (int i = 0; i < s->n; i++)
		if (s->cases[i].kind != WEFT_SELECT_TIMEOUT)
			s->locks[k++] = lock_of(&s->cases[i]);
	qsort(s->locks, (size_t)k, sizeof(*s->locks), cmp_lock);
	s->nlocks = 0;
	for (int i = 0; i < k; i++)
		if (!s->nlocks || s->locks[s->nlocks - 1] != s->locks[i])
			s->locks[s->nlocks++] = s->locks[i];
	/* Timeout cases only: no case lock, yet an abort must still be
	 * ordered with linking, parked and the park (a cancellation between
	 * the state check and the park was lost, or woke the task before it
	 * had switched out). A lock of the select's own does it. */
	if (!s->nlocks)
		s->locks[s->nlocks++] = &s->own_lock;
	return 0;
}

static void lock_all(struct sel *s)
{
	for (int i = 0; i < s->nlocks; i++)
		weft__spin_lock(s->locks[i]);
}

static void unlock_all(struct sel *s)
{
	for (int i = s->nlocks - 1; i >= 0; i--)
		weft__spin_unlock(s->locks[i]);
}

static void unlock_all_cb(void *s)
{
	unlock_all(s);
}

/* ---- one case ----------------------------------------------------------- */

/* Whether a timeout due at at comes first: at or before the deadline of
 * t, the caller (time.h's tie rule; a plain thread, NULL, has none). */
static bool before_deadline(const struct weft_task *t, int64_t at)
{
	return !t || at <= t->deadline;
}

/* Whether the timeout case comes first. */
static bool timeout_first(struct sel *s)
{
	return before_deadline(s->w.task, s->until);
}

/* When timeout case c is due: timeout ns after the call began. */
static int64_t due_at(const struct weft_select_case *c, int64_t began)
{
	return c->timeout > INT64_MAX - began ? INT64_MAX : began + c->timeout;
}

/* Whether timeout case c, tried after the cases before it held the call
 * up (a case's lock, a preemption), is due already, and comes first: it
 * then completes in array order as a ready case does, before a later
 * case found ready. */
static bool timeout_passed(const struct weft_select_case *c, int64_t began)
{
	int64_t at = due_at(c, began);
	return at <= weft_now() && before_deadline(weft__task_current(), at);
}

/* A timeout found due as the cases are linked wins only if the deadline
 * did not come before it: a select held up between its wait's begin and
 * the linking (its worker preempted, a case's lock held) may find both
 * passed, and its timer, armed for the deadline, not fired yet. Then it
 * parks, and that timer, due, ends the wait with -ETIMEDOUT. */
static bool timeout_due(struct sel *s, struct weft_select_case *c)
{
	return s->cases + s->timeout_case == c && timeout_first(s) &&
	       s->until <= weft_now();
}

/*
 * Without locks: completes case c if it can be at once (1, with c->status
 * set), else 0, or -EINVAL for a malformed case, -EDEADLK for one the
 * caller itself blocks. The primitives' own try calls, so nothing is
 * marked or linked. A timeout completes at once if it is 0, or if it fell
 * due while the tries before it were held up (the waiting path times the
 * others).
 */
static int try_case(struct weft_select_case *c, int64_t began)
{
	int r = 0;
	/* Every kind's primitive but a timeout's and an fd's is the union's
	 * first pointer. */
	if (c->kind != WEFT_SELECT_TIMEOUT && !weft__select_is_fd_case(c) &&
	    !c->queue)
		return -EINVAL;
	switch (c->kind) {
	case WEFT_SELECT_READABLE:
	case WEFT_SELECT_WRITABLE:
		/* Its tick, read here, is what linking checks. */
		r = weft__fdready_watch(case_watch(c), c->fd,
					c->kind == WEFT_SELECT_READABLE
						? WEFT__READ
						: WEFT__WRITE);
		if (!r)
			return 0;
		if (r > 0)
			r = 0;
		break;
	case WEFT_SELECT_GET:
		r = weft_queue_try_get(c->queue, c->item);
		if (r == -EAGAIN)
			return 0;
		break;
	case WEFT_SELECT_PUT:
		r = weft_queue_try_put(c->queue, c->item);
		if (r == -EAGAIN)
			return 0;
		break;
	case WEFT_SELECT_EVENT:
		return weft_event_is_set(c->event) ? c->status = 0, 1 : 0;
	case WEFT_SELECT_FUTURE:
		/* The outcome is read by finish_case(). */
		return weft_future_done(c->future) ? c->status = 0, 1 : 0;
	case WEFT_SELECT_SEM:
		r = weft_sem_try_acquire(c->sem);
		if (r == -EAGAIN)
			return 0;
		if (r)
			return r; /* -EINVAL: initialised out of range */
		break;
	case WEFT_SELECT_LOCK:
		/* Never to be ready, as a JOIN of the caller: fail now, in
		 * order, before a later case is taken or a 0 timeout polls
		 * (weft_lock_acquire says -EDEADLK too). */
		if (weft__lock_held_by_me(c->lock))
			return -EDEADLK;
		return weft_lock_try_acquire(c->lock) ? 0 : (c->status = 0, 1);
	case WEFT_SELECT_JOIN: {
		if (weft__join_case_self(c->task))
			return -EDEADLK;
		unsigned *l = &c->task.task->join_lock;
		weft__spin_lock(l);
		bool done = weft__join_case_locked(c->task, NULL, &r);
		weft__spin_unlock(l);
		if (!done)
			return 0;
		break;
	}
	case WEFT_SELECT_TIMEOUT:
		if (c->timeout < 0)
			return -EINVAL;
		if (c->timeout && !timeout_passed(c, began))
			return 0;
		break;
	default:
		return -EINVAL;
	}
	if (r == -EINVAL && c->kind <= WEFT_SELECT_PUT)
		return -EINVAL; /* a NULL item or an uninitialised queue */
	c->status = r;
	return 1;
}

/*
 * Under all locks: completes case c if it can be at once (true, with
 * c->status set), else links its waiter w (false), marking a lock or
 * semaphore contended as their own acquire does.
 */
static bool take_or_link(struct sel *s, struct weft_select_case *c,
			 struct weft__waiter *w)
{
	int r = 0;
	switch (c->kind) {
	case WEFT_SELECT_GET:
		r = weft__queue_get_locked(c->queue, c->item, &s->wake);
		if (r != -EAGAIN)
			break;
		weft__waitq_push(&c->queue->getters, w);
		return false;
	case WEFT_SELECT_PUT:
		r = weft__queue_put_locked(c->queue, c->item, &s->wake);
		if (r != -EAGAIN)
			break;
		weft__waitq_push(&c->queue->putters, w);
		return false;
	case WEFT_SELECT_EVENT:
		if (c->event->set)
			break;
		weft__waitq_push(&c->event->wq, w);
		return false;
	case WEFT_SELECT_FUTURE:
		if (weft__future_done_locked(c->future))
			break;
		weft__waitq_push(&c->future->wq, w);
		return false;
	case WEFT_SELECT_SEM:
		if (weft__sem_take_or_mark(c->sem))
			break;
		weft__waitq_push(&c->sem->wq, w);
		return false;
	case WEFT_SELECT_LOCK:
		if (weft__lock_take_or_mark_locked(c->lock, w->value))
			break;
		weft__waitq_push(&c->lock->wq, w);
		return false;
	case WEFT_SELECT_JOIN:
		if (weft__join_case_locked(c->task, w, &r))
			break;
		return false;
	case WEFT_SELECT_READABLE:
	case WEFT_SELECT_WRITABLE:
		if ((r = weft__fdready_watch_link(case_watch(c), w)) <= 0)
			break;
		return false;
	default:
		if (!timeout_due(s, c))
			return false;
	}
	c->status = r;
	return true;
}

/* Under all locks: unlinks c's waiter if it is linked (or, for a join,
 * withdraws it). */
static void unlink_case(struct weft_select_case *c)
{
	struct weft__waiter *w = case_waiter(c);
	struct weft_waitq *q;
	switch (c->kind) {
	case WEFT_SELECT_GET:
		q = &c->queue->getters;
		break;
	case WEFT_SELECT_PUT:
		q = &c->queue->putters;
		break;
	case WEFT_SELECT_EVENT:
		q = &c->event->wq;
		break;
	case WEFT_SELECT_FUTURE:
		q = &c->future->wq;
		break;
	case WEFT_SELECT_SEM:
		weft__sem_unlink(c->sem, w);
		return;
	case WEFT_SELECT_LOCK:
		weft__lock_unlink(c->lock, w);
		return;
	case WEFT_SELECT_JOIN:
		weft__join_case_unlink(c->task.task, w);
		return;
	case WEFT_SELECT_READABLE:
	case WEFT_SELECT_WRITABLE:
		weft__fdready_watch_unlink(case_watch(c), w);
		return;
	default:
		return;
	}
	if (weft__waitq_linked(q, w))
		weft__waitq_remove(q, w);
}

/* Without locks: what is left to do for a completed case: a future's
 * outcome, a joined task's result. */
static inline void finish_case(struct weft_select_case *c)
{
	if (c->kind == WEFT_SELECT_FUTURE)
		c->status = weft_future_result(c->future, c->result);
	else if (c->kind == WEFT_SELECT_JOIN && !c->status)
		c->status = weft__join_case_take(c->task.task, c->result);
}

/* The same after waiting, where a queue may have a waiter to wake. */
static int finish(struct sel *s, int i)
{
	if (s->wake)
		weft__waiter_wake(s->wake);
	finish_case(&s->cases[i]);
	return i;
}

/* ---- waiting ------------------------------------------------------------ */

/* The group's abort (cancellation, deadlines): settle, wake if parked. */
static void sel_abort(struct weft__waiter *w, int reason)
{
	struct sel *s = weft__container_of(w, struct sel, w);
	lock_all(s);
	if (weft__waiter_settle(&s->w, reason) && s->parked)
		weft__waiter_wake(&s->w);
	unlock_all(s);
}

static void futex_wait_until(_Atomic int *addr, int64_t until)
{
	int64_t left = until == INT64_MAX ? 0 : until - weft_now();
	if (until == INT64_MAX || left > 0)
		weft__futex_wait(addr, 0, left);
}

/* A plain thread's park: it has no timer, so it times its timeout case
 * itself, settling the group as an abort would (it need not wake). */
static int park_thread(struct sel *s)
{
	unlock_all(s);
	int64_t until = s->until;
	/* released is the wake's last touch of the group (wait.c); acquire
	 * pairs with its release store, so what the winner handed over
	 * before waking us is visible. */
	while (!atomic_load_explicit(&s->w.released, memory_order_acquire)) {
		if (until != INT64_MAX && weft_now() >= until) {
			lock_all(s);
			bool won = weft__waiter_settle(&s->w, -ETIMEDOUT);
			unlock_all(s);
			if (won)
				break;
			until = INT64_MAX; /* the winner wakes us */
		}
		futex_wait_until(&s->w.released, until);
	}
	return weft__waiter_state(&s->w);
}

/* Maps an abort's result to the select's: a deadline at or after the
 * timeout case's is the timeout case winning (time.h's tie rule). */
static int aborted(struct sel *s, int r)
{
	if (r == -ETIMEDOUT && s->timeout_case >= 0 && timeout_first(s)) {
		s->cases[s->timeout_case].status = 0;
		return s->timeout_case;
	}
	return r;
}

static bool is_queue_case(const struct weft_select_case *c)
{
	return c->kind == WEFT_SELECT_GET || c->kind == WEFT_SELECT_PUT;
}

/* Under all locks: unlinks (link false) or links again the waiters of the
 * cases before i that wait on case i's queue in the other direction. A get
 * that takes an item hands the freed slot to the first putter waiting, and
 * a put hands its item to the first getter: were that this select's own
 * earlier case, the select would complete twice (an item put and got, or
 * lost) and wake its own running task. Go's select tries every case before
 * it enqueues any for the same reason. */
static void set_opposites_linked(struct sel *s, int i, bool link)
{
	const struct weft_select_case *c = &s->cases[i];

	for (int j = 0; j < i; j++) {
		struct weft_select_case *o = &s->cases[j];

		if (!is_queue_case(o) || o->kind == c->kind ||
		    o->queue != c->queue)
			continue;
		if (!link)
			unlink_case(o);
		else if (o->kind == WEFT_SELECT_GET)
			weft__waitq_push(&o->queue->getters, case_waiter(o));
		else
			weft__waitq_push(&o->queue->putters, case_waiter(o));
	}
}

/* Under all locks, group WAITING: tries every case in order, linking a
 * waiter for each that cannot complete. Returns the index of the one that
 * completed at once (the others unlinked again), or -1 if all are linked. */
static int link_all(struct sel *s)
{
	uintptr_t me = weft__owner_self();
	for (int i = 0; i < s->n; i++) {
		struct weft_select_case *c = &s->cases[i];
		struct weft__waiter *w = case_waiter(c);
		weft__waiter_init(w, NULL);
		w->group = &s->w;
		w->data = c->item;
		w->value = me;
		if (is_queue_case(c))
			set_opposites_linked(s, i, false);
		bool took = take_or_link(s, c, w);
		if (is_queue_case(c) && !took)
			set_opposites_linked(s, i, true);
		if (!took)
			continue;
		weft__waiter_settle(&s->w, WEFT__SELECTED);
		for (int j = 0; j < i; j++)
			unlink_case(&s->cases[j]);
		return i;
	}
	return -1;
}

static int wait_cases(struct sel *s)
{
	int r;
	/* weft_dump reads the cases while the wait is published. */
	weft__waiter_init_as(&s->w, sel_abort, WEFT__WAIT_SELECT, s->cases);
	s->w.value = (uint64_t)s->n;
	if (__builtin_expect(weft__select_before_wait != NULL, 0))
		weft__select_before_wait(s->until);
	/* A deadline found passed here came after the call, when the timeout
	 * was still ahead: the tie rule decides, as for a timer's abort. */
	if ((r = weft__wait_begin_until(&s->w, s->until)))
		return aborted(s, r);
	lock_all(s);
	if ((r = weft__waiter_state(&s->w)) != WEFT__WAITING) {
		unlock_all(s); /* aborted before we could link */
		weft__wait_end(&s->w);
		return aborted(s, r);
	}
	int won = link_all(s);
	if (won >= 0) {
		unlock_all(s);
		weft__wait_end(&s->w);
		return finish(s, won);
	}
	s->parked = true;
	if (s->w.task)
		r = weft__wait_park(&s->w, unlock_all_cb, s);
	else
		r = park_thread(s);

	lock_all(s);
	for (int i = 0; i < s->n; i++) {
		struct weft_select_case *c = &s->cases[i];
		int st = weft__waiter_state(case_waiter(c));
		if (c->kind != WEFT_SELECT_TIMEOUT && st != WEFT__WAITING) {
			/* The winner, settled by its notifier. */
			c->status = st;
			won = i;
		} else {
			unlink_case(c);
		}
	}
	unlock_all(s);
	return r == WEFT__SELECTED ? finish(s, won) : aborted(s, r);
}

/* ---- the calls ---------------------------------------------------------- */

/* Checks every case (try_case checked those before the one that
 * completes at once, if any) and finds the earliest timeout, timed from
 * when the call began (s->began), not from after the tries, which a case's
 * lock may hold up. */
static int check_all(struct sel *s)
{
	for (int i = 0; i < s->n; i++) {
		struct weft_select_case *c = &s->cases[i];
		int r = check_case(c);
		if (r)
			return r;
		if (c->kind != WEFT_SELECT_TIMEOUT)
			continue;
		int64_t at = due_at(c, s->began);
		if (at < s->until) {
			s->until = at;
			s->timeout_case = i;
		}
	}
	return 0;
}

void (*weft__select_after_try)(int i);
void (*weft__select_before_wait)(int64_t until);

/* Whether fd case i, found ready at once, watched a file that took its fd's
 * number after an earlier case of the select watched that fd (a weft_close
 * between their tries, and a new file at once): the select began on the
 * earlier file, so it ends with -EBADF, as that case's link would say,
 * not with the new file's readiness. Both watches filled their gens: an
 * earlier case's try found it not ready, and this one's found it ready. */
static bool fd_let_go(struct weft_select_case *cases, int i)
{
	struct weft_select_case *c = &cases[i];

	if (!weft__select_is_fd_case(c) || c->status)
		return false;
	for (int j = 0; j < i; j++)
		if (weft__select_is_fd_case(&cases[j]) &&
		    cases[j].fd == c->fd &&
		    case_watch(&cases[j])->gen != case_watch(c)->gen)
			return true;
	return false;
}

int weft_select(struct weft_select_case *cases, int n)
{
	if (!cases || n < 1 || n > WEFT_SELECT_MAX)
		return -EINVAL;
	/* A timeout case is due timeout ns after the call began: read the
	 * clock before the tries (only if one may wait). */
	int64_t began = 0;
	for (int i = 0; i < n; i++)
		if (cases[i].kind == WEFT_SELECT_TIMEOUT &&
		    cases[i].timeout > 0) {
			began = weft_now();
			break;
		}
	/* Whatever can complete at once does, in order, without waiting
	 * (even in a cancelled task, as every blocking call). */
	for (int i = 0; i < n; i++) {
		int r = try_case(&cases[i], began);
		if (r > 0) {
			if (fd_let_go(cases, i))
				cases[i].status = -EBADF;
			finish_case(&cases[i]);
			return i;
		}
		if (r < 0)
			return r;
		if (__builtin_expect(weft__select_after_try != NULL, 0))
			weft__select_after_try(i);
	}

	struct sel s = { .cases = cases,
			 .n = n,
			 .began = began,
			 .until = INT64_MAX,
			 .timeout_case = -1 };
	int r = check_all(&s);
	if (!r)
		r = collect_locks(&s);
	if (!r)
		r = wait_cases(&s);
	if (s.locks && s.locks != s.small)
		free(s.locks);
	return r;
}

/* ---- first completed, as completed -------------------------------------- */

#define SMALL_CASES 8

static int cmp_handle(const void *a, const void *b)
{
	const weft_task_t *x = a, *y = b;
	if (x->task != y->task)
		return (uintptr_t)x->task < (uintptr_t)y->task ? -1 : 1;
	return x->gen < y->gen ? -1 : x->gen > y->gen;
}

/* Whether a handle fills two of the m slots copied into keys (sorted
 * here). One task in two slots is refused before anything is joined,
 * whether the task has ended or not: the select alone would join an
 * ended one from its first slot (a case that completes at once ends the
 * select) and leave the second stale, yet refuse a running one (the
 * second slot's case finds the first's claim). */
static bool has_duplicate(weft_task_t *keys, int m)
{
	qsort(keys, (size_t)m, sizeof(*keys), cmp_handle);
	for (int i = 1; i < m; i++)
		if (keys[i].task == keys[i - 1].task &&
		    keys[i].gen == keys[i - 1].gen)
			return true;
	return false;
}

/* weft_wait_first; with yield_failed (as_completed), a slot whose join
 * fails on its own (a stale handle: -ESRCH; a detached task or one
 * another caller joins: -EINVAL) is yielded as a task that ended: its
 * index returned, the slot emptied, the error in *status and NULL in
 * *result. Otherwise the select would find that slot ready again on every
 * call, before the tasks behind it, and the iteration could never go on. */
static int first_of(weft_task_t *tasks, int n, void **result, int *status,
		    bool yield_failed)
{
	if (!tasks || n < 1 || n > WEFT_SELECT_MAX)
		return -EINVAL;
	struct weft_select_case small[SMALL_CASES], *cases = small;
	int small_map[SMALL_CASES], *map = small_map;
	weft_task_t small_keys[SMALL_CASES], *keys = small_keys;
	if (n > SMALL_CASES) {
		cases = malloc(sizeof(*cases) * (size_t)n);
		map = malloc(sizeof(*map) * (size_t)n);
		keys = malloc(sizeof(*keys) * (size_t)n);
		if (!cases || !map || !keys) {
			free(cases);
			free(map);
			free(keys);
			return -ENOMEM;
		}
	}
	int m = 0;
	for (int i = 0; i < n; i++) {
		if (!tasks[i].task)
			continue;
		cases[m] = (struct weft_select_case)WEFT_CASE_JOIN(tasks[i],
								   result);
		keys[m] = tasks[i];
		map[m++] = i;
	}
	int r = -ENOENT;
	if (m)
		r = has_duplicate(keys, m) ? -EINVAL : weft_select(cases, m);
	if (r >= 0) {
		int st = cases[r].status;
		bool failed = st == -ESRCH || st == -EINVAL;
		if (failed && !yield_failed) {
			r = st; /* nothing was joined */
		} else {
			r = map[r];
			tasks[r] = (weft_task_t){ 0 };
			if (status)
				*status = st;
			if (failed && result)
				*result = NULL;
		}
	}
	if (cases != small) {
		free(cases);
		free(map);
		free(keys);
	}
	return r;
}

int weft_wait_first(weft_task_t *tasks, int n, void **result, int *status)
{
	return first_of(tasks, n, result, status, false);
}

int weft_as_completed_init(struct weft_as_completed *it, weft_task_t *tasks,
			   int n)
{
	if (!it || !tasks || n < 1 || n > WEFT_SELECT_MAX)
		return -EINVAL;
	it->tasks = tasks;
	it->n = n;
	it->left = 0;
	for (int i = 0; i < n; i++)
		it->left += tasks[i].task != NULL;
	return 0;
}

int weft_as_completed_next(struct weft_as_completed *it, void **result,
			   int *status)
{
	if (!it)
		return -EINVAL;
	if (!it->left)
		return -ENOENT;
	int r = first_of(it->tasks, it->n, result, status, true);
	if (r >= 0)
		it->left--;
	return r;
}
