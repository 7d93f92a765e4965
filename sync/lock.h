/* Internal lock entry points for the condition variable. */
#ifndef WEFT_SYNC_LOCK_H
#define WEFT_SYNC_LOCK_H

#include <stdbool.h>
#include <stdint.h>
#include "weft/sync.h"

/* Takes l ignoring cancellation and deadlines (a condition wait must hold
 * the lock again when it returns, whatever happened). */
void weft__lock_acquire_uninterruptible(struct weft_lock *l);
/* Releases l on behalf of owner me. Returns 0 or -EPERM. */
int weft__lock_release_as(struct weft_lock *l, uintptr_t me);
struct weft_waitq;
/* Under q's lock, by l's holder: moves up to n of q's oldest waiters onto
 * l's queue, in order, with abort untouched and queue set to l's. They are
 * handed l in turn, as if they had queued for it, and wake only then (with
 * 0). Returns how many moved. Lock order: q's lock, then l's queue's. */
int weft__lock_requeue(struct weft_lock *l, struct weft_waitq *q, int n);
/* Whether the caller holds l. */
bool weft__lock_held_by_me(const struct weft_lock *l);

/* weft_cond_wait, shown by weft_dump as a wait for kind (an enum
 * weft__wait_kind) on object: the group waits on its condition so. */
int weft__cond_wait_as(struct weft_cond *c, int kind, const void *object);

#endif
