/*
 * weft task groups: structured concurrency (asyncio.TaskGroup, Trio's
 * nursery, Go's errgroup). Part of <weft.h>.
 *
 * Tasks spawned into a group are waited for together: weft_group_wait
 * returns once every one of them has returned, so they may use the
 * waiter's stack. A member fails by returning a negative errno as a
 * pointer, WEFT_ERR_PTR(-EIO) (weft/task.h): the first failure
 * cancels the other members, and weft_group_wait returns it. A waiter that
 * is cancelled, or whose deadline passes, cancels the members, still waits
 * for them, and returns -ECANCELED or -ETIMEDOUT (or a member's failure,
 * as weft_group_wait says). gather is a group and its wait.
 *
 * A group for servers (Go's errgroup without the cancel; Tokio's JoinSet)
 * is initialised with WEFT_GROUP_COLLECT: there a member's failure is
 * that member's business: it is counted (weft_group_failures) and the
 * first is kept for weft_group_wait to return, but the others run on and
 * spawning goes on. Use the default mode when the members do one job
 * together and one failure spoils it (fetching the parts of a page); use
 * WEFT_GROUP_COLLECT for members that are independent of one another (a
 * server's connections), and weft_group_shutdown to stop them all.
 *
 * Members are detached: a member keeps its results where its arg points.
 * Every weft_group_wait and weft_group_shutdown of a round returns its
 * result, as every Wait of Go's errgroup. The round ends when the last of
 * them returns: the group is then empty and may be used again (until
 * then a failed round refuses spawns, and a spawn into one that collects
 * joins it). A spawn, wait or shutdown that comes once every member has
 * returned first lets the round's waits and shutdowns return (they are
 * on their way out), so it belongs to the next round. The struct is the
 * caller's (on its stack, say), and every call works from tasks and from
 * plain threads.
 */
#ifndef WEFT_GROUP_H
#define WEFT_GROUP_H

#include <stdbool.h>

#include "weft/sync.h"
#include "weft/task.h"
#include "weft/must_check.h"

#ifdef __cplusplus
extern "C" {
#endif

struct weft__group_member;

/* Fields are internal. Initialise one with weft_group_init or
 * WEFT_GROUP_INIT before use, and do not move it: every call on a group
 * that is not (zero-filled, or copied) returns -EINVAL. */
struct weft_group {
	struct weft_lock lock;
	struct weft_cond idle;              /* running dropped to 0 */
	struct weft__group_member *members; /* the running ones */
	int running;
	int error;          /* the first failure, or 0 */
	unsigned flags;     /* WEFT_GROUP_COLLECT */
	bool shutting_down; /* stopping its members: shutdown, a cancelled wait */
	long failures;      /* members failed, ever */
	int waiting;        /* weft_group_wait and _shutdown calls in them */
};

/* Group flags. */
#define WEFT_GROUP_COLLECT 0x1u /* failures are counted, not cancelling */

/* clang-format off */
#define WEFT_GROUP_INIT(g) \
	{ WEFT_LOCK_INIT, WEFT_COND_INIT(&(g).lock), 0, 0, 0, 0, false, 0, 0 }
/* clang-format on */
/* clang-format off */
#define WEFT_GROUP_INIT_COLLECT(g)                                     \
	{ WEFT_LOCK_INIT, WEFT_COND_INIT(&(g).lock), 0, 0, 0,          \
	  WEFT_GROUP_COLLECT, false, 0, 0 }
/* clang-format on */

/* Initialises g, empty. Returns 0 or -EINVAL. */
int weft_group_init(struct weft_group *g);

/* Initialises g, empty, with flags (0 or WEFT_GROUP_COLLECT). Returns 0 or
 * -EINVAL (NULL g, an unknown flag). */
int weft_group_init_flags(struct weft_group *g, unsigned flags);

/* Spawns fn(arg) into g. Returns 0; -ECANCELED if g is cancelling its
 * members after a failure (not with WEFT_GROUP_COLLECT), is in
 * weft_group_shutdown, or its waiter was cancelled or timed out and waits
 * for the members to return (nothing was spawned); -EINVAL, -ENOMEM or
 * -ESHUTDOWN as weft_spawn (-ENOMEM also when no stack can be had for the
 * member: it is taken now, not when the member first runs). */
WEFT_MUST_CHECK int weft_group_spawn(struct weft_group *g, weft_fn fn,
				     void *arg);

/* Cancels every running member: their blocking calls return -ECANCELED.
 * Does not wait. Returns 0 or -EINVAL. */
int weft_group_cancel(struct weft_group *g);

/* Waits until every member has returned. Returns 0, the first member's
 * failure (even if the waiter was then cancelled or its deadline passed:
 * a failure comes first, as in asyncio's TaskGroup; the cancellation
 * stays, for the waiter's next call), -ECANCELED or -ETIMEDOUT (members
 * cancelled and waited for; none had failed, and none failed while
 * stopped but with the -ECANCELED it was given: a real failure then, such
 * as a cleanup's -EIO, is returned instead),
 * -ENOMEM (under a deadline, no memory for the wait's timer: the deadline
 * cannot be kept, so, as for -ETIMEDOUT, the members are cancelled and
 * waited for), -EDEADLK (the caller is a member of g: it would wait for
 * itself; nothing is waited for), or -EINVAL. Whatever else it returns, no
 * member still runs. */
WEFT_MUST_CHECK int weft_group_wait(struct weft_group *g);

/* Cancels every member and waits until all have returned, whatever the
 * caller's own cancellation or deadline (members may use its stack): a
 * server's stop. Members spawned meanwhile (say, by a member) are refused
 * with -ECANCELED. Returns 0 or the round's first failure, as
 * weft_group_wait (a member that reports its cancellation as a failure
 * counts, but a real failure during the stop wins over its -ECANCELED),
 * -EDEADLK (the caller is a member of g: weft_group_cancel stops the
 * others without waiting), or -EINVAL. Beside a weft_group_wait (a stop
 * from another thread while a task waits) both return the round's
 * failure. */
WEFT_MUST_CHECK int weft_group_shutdown(struct weft_group *g);

/* Members running now. Returns the count or -EINVAL. */
int weft_group_running(struct weft_group *g);

/* Members that failed since g was initialised. Returns the count or
 * -EINVAL. */
long weft_group_failures(struct weft_group *g);

#ifdef __cplusplus
}
#endif

#endif
