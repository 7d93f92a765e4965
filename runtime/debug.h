/*
 * Debug assertions of the invariants the files write down: WEFT_ASSERT,
 * compiled in with the WEFT_DEBUG build option (on in the tsan and asan
 * presets), nothing at all without it: the condition is not evaluated, only
 * type-checked. A failed assertion prints where and aborts, as Go's
 * runtime throws.
 *
 * Besides the plain assertions, the debug build checks spinlocks: a
 * spinlock word holds its holder's thread number instead of 1, so unlock
 * checks the caller holds it and code that needs a lock held can say so
 * (weft__spin_held); and each thread counts the spinlocks it holds, so the
 * lock order (a task's wait_lock first) and "no spinlock across a switch"
 * are checked where they matter.
 */
#ifndef WEFT_RUNTIME_DEBUG_H
#define WEFT_RUNTIME_DEBUG_H

/* Defined in the debug build only; declared always, so that assertions
 * type-check (and evaluate nothing) without it. */
/* The caller's thread number: nonzero, never reused. */
unsigned weft__debug_thread(void);
/* Spinlocks the caller's thread holds: taken, released, how many. Out of
 * line: a task may resume on another thread, so no thread-local address
 * may be kept across a switch. */
void weft__debug_spin_taken(void);
void weft__debug_spin_released(unsigned *l);
int weft__debug_spins_held(void);
/* A test's hook, called by every spinlock release (l) just before the
 * store that frees l: a test that stalls the releaser here can show that
 * nobody is let go of the object while its releaser still holds l. */
extern void (*weft__debug_unlock_hook)(unsigned *l);
/* A test's hook, called by every wait-queue abort (sync/waitq.h) of waiter
 * w at these stages: a test that stalls the abort there can show that a
 * release racing it lets nobody free the object while the abort may still
 * reach it. */
struct weft__waiter;
enum {
	WEFT__ABORT_START,  /* before it looks at w */
	WEFT__ABORT_LOCKING /* w still waited: it takes the lock next */
};
extern void (*weft__debug_abort_hook)(const struct weft__waiter *w, int stage);
void weft__debug_abort_reached(const struct weft__waiter *w, int stage);

#ifdef WEFT_DEBUG
__attribute__((noreturn, cold)) void weft__assert_fail(const char *cond,
						       const char *file,
						       int line,
						       const char *func);
#define WEFT_ASSERT(cond)                                                      \
	(__builtin_expect(!!(cond), 1)                                         \
		 ? (void)0                                                     \
		 : weft__assert_fail(#cond, __FILE__, __LINE__, __func__))
/* A statement of the debug build only. */
#define WEFT_DEBUG_ONLY(stmt) stmt

#else
#define WEFT_ASSERT(cond) ((void)sizeof(!(cond)))
#define WEFT_DEBUG_ONLY(stmt) ((void)0)
#endif

#endif
