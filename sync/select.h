/*
 * The entry points select (select.c) needs from each primitive: the locked
 * steps of their blocking calls, split so a select can take or link all of
 * its cases under their locks before it parks. Each is the same code the
 * primitive's own blocking call runs, so a case behaves as that call.
 */
#ifndef WEFT_SYNC_SELECT_H
#define WEFT_SYNC_SELECT_H

#include <stdbool.h>
#include <stdint.h>
#include "weft/select.h"
#include "weft/sync.h"
#include "weft/task.h"
#include "../runtime/wait.h"

/* Whether q can take a put or get: initialised (a zero-filled queue has
 * no element size), and a priority queue with its comparator (a static
 * initialiser may have been given none). */
static inline bool weft__queue_usable(const struct weft_queue *q)
{
	return q && q->elem_size && q->kind <= WEFT_QUEUE_PRIORITY &&
	       (q->kind != WEFT_QUEUE_PRIORITY || q->cmp);
}

/* Whether c waits for an fd's readiness (READABLE, WRITABLE): its union
 * holds an fd, not a primitive's pointer. */
static inline bool weft__select_is_fd_case(const struct weft_select_case *c)
{
	return c->kind == WEFT_SELECT_READABLE ||
	       c->kind == WEFT_SELECT_WRITABLE;
}

/* queue.c, under the queue's lock (getters.lock): a get or put that does
 * not wait. 0, -EPIPE, -ENOMEM (put), or -EAGAIN (empty / full); *wake is
 * a waiter to wake after unlocking. */
int weft__queue_get_locked(struct weft_queue *q, void *out,
			   struct weft__waiter **wake);
int weft__queue_put_locked(struct weft_queue *q, const void *item,
			   struct weft__waiter **wake);

/* future.c, under f->wq.lock: whether f is done for the caller (its
 * weft_future_done would wait out that lock, held here). */
bool weft__future_done_locked(const struct weft_future *f);

/* sem.c, under s->wq.lock: takes a permit (true), or marks the semaphore
 * contended so that a release looks at wq (false); then link a waiter. */
bool weft__sem_take_or_mark(struct weft_sem *s);
/* Under s->wq.lock: unlinks w if it is linked, as an abort does. */
void weft__sem_unlink(struct weft_sem *s, struct weft__waiter *w);

/* lock.c, under l->wq.lock: takes l for me (true), or marks it contended
 * (false); then link a waiter with value me. */
bool weft__lock_take_or_mark_locked(struct weft_lock *l, uintptr_t me);
/* Under l->wq.lock: unlinks w if it is linked, as an abort does. */
void weft__lock_unlink(struct weft_lock *l, struct weft__waiter *w);

/* runtime/task.c, the join case, under h.task->join_lock. Returns true if
 * the join completes at once, with *status 0 (the task has ended: its
 * result is now claimed, take it with weft__join_case_take), -ESRCH or
 * -EINVAL as weft_join. Else, if w is not NULL, makes w the task's joiner
 * (w->data = the task). */
bool weft__join_case_locked(weft_task_t h, struct weft__waiter *w, int *status);
/* Whether h is the caller's own live handle (weft_join's -EDEADLK); a
 * stale handle whose struct the caller now runs in is not. */
bool weft__join_case_self(weft_task_t h);
/* Under join_lock: withdraws the joiner w of a join case that lost (linked
 * or already dropped by the finisher): the task can be joined again. */
void weft__join_case_unlink(struct weft_task *t, struct weft__waiter *w);
/* Without locks, for a claimed join: stores the result, drops the handle.
 * Returns what weft_join returns. */
int weft__join_case_take(struct weft_task *t, void **result);

/* Internal test interface, not API: if set, called after case i failed
 * the unlocked first try, so that a test can change what the next cases
 * and the locked pass find, as another thread may at that moment. */
extern void (*weft__select_after_try)(int i);
/* Likewise: if set, called in the selecting task as it begins to wait,
 * with the time its timeout case is due (INT64_MAX: none), so that a test
 * can put a deadline at that very instant. */
extern void (*weft__select_before_wait)(int64_t until);

#endif
