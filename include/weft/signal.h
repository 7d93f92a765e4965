/*
 * weft signals as a blocking call (asyncio's add_signal_handler, Go's
 * signal.Notify, tokio::signal). Part of <weft.h>.
 *
 *   struct weft_signal sigs;
 *   int r, signo;
 *
 *   if (weft_signal_open(&sigs, WEFT_SIGNAL(SIGINT) | WEFT_SIGNAL(SIGTERM)))
 *       ...;                            // not caught: they still kill
 *   // from now on SIGINT and SIGTERM are caught
 *   r = weft_signal_wait(&sigs, &signo); // the task waits, cancellable
 *   weft_signal_close(&sigs);           // the old disposition is back
 *
 * weft_signal_open installs a handler for each signal of the set (shared
 * by every open registration of that signal). The handler counts the
 * delivery and writes to an eventfd; a waiter reads that eventfd with
 * weft's own I/O calls, so it parks like any other I/O, on any driver, and
 * cancellation and deadlines apply as to every blocking call. (signalfd
 * would see a signal only if every thread blocked it, the workers and the
 * blocking pool's threads included, which weft cannot arrange for threads
 * it did not start.) So the signals must not be blocked in every thread:
 * do not block them in main() before weft_run. (Under ThreadSanitizer a
 * handler runs only when its thread enters a libc call tsan intercepts;
 * the kernel gives a process-directed signal to the main thread first, so
 * keep that thread in one, pthread_join say: see examples/server.c.)
 *
 * A registration sees the deliveries that come after weft_signal_open
 * returns and before it is closed, none lost while nobody waits; several
 * deliveries of one signal between two waits come out as one, as the
 * kernel merges pending signals. Every registration of a signal sees every
 * delivery: two tasks waiting on SIGTERM each return. Calls work from
 * tasks and plain threads (where the wait blocks the thread), with or
 * without a running runtime.
 *
 * After fork(2) the child has its own deliveries: registrations the
 * parent had open are open in the child too (the handler stays
 * installed), but no wait of the parent's goes on there.
 *
 * Refused, with -EINVAL: SIGKILL and SIGSTOP (they cannot be caught), and
 * the signals of faults (SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGTRAP, SIGSYS),
 * whose handler could not return.
 */
#ifndef WEFT_SIGNAL_H
#define WEFT_SIGNAL_H

#include <stdint.h>
#include "weft/must_check.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Signal numbers a registration can hold: 1 .. WEFT_SIGNAL_MAX - 1 (Linux's
 * _NSIG, the real-time signals included). */
#define WEFT_SIGNAL_MAX 65

/* A set of signals is a mask with bit signo - 1 for each: WEFT_SIGNAL(SIGINT)
 * | WEFT_SIGNAL(SIGTERM). (A mask rather than a sigset_t keeps <signal.h>,
 * and what it declares, out of <weft.h>.) */
#define WEFT_SIGNAL(signo) (1ull << ((signo)-1))

/* A registration. Fields are internal. */
struct weft_signal {
	uint64_t set;
	uint64_t seen[WEFT_SIGNAL_MAX]; /* deliveries taken, per signal */
};

/* Starts catching the signals of set (a WEFT_SIGNAL mask) for s. Returns
 * 0; -EINVAL (NULL s, an empty set, a signal that cannot be caught, or
 * one glibc keeps for itself: 32 and 33);
 * -EBUSY (s is open already, or weft itself handles one of the signals:
 * the runtime's dump_signal, or SIGURG while it reports stalls); -EMFILE,
 * -ENFILE (no eventfd could be made, the first time); -ENOMEM. A failure
 * leaves the signals' dispositions as they were: a SIGTERM that was to
 * stop the program cleanly still kills it. */
WEFT_MUST_CHECK int weft_signal_open(struct weft_signal *s, uint64_t set);

/* Waits until a signal of s's set is delivered and stores its number in
 * *signo (the lowest, when several are pending). Returns 0; -ECANCELED,
 * -ETIMEDOUT (nothing taken: a delivery that raced stays for the next
 * wait); -EINVAL (NULL argument, s not open); -ENOMEM (no memory to
 * watch the registration's eventfd, the first time a task waits). Several
 * tasks may wait on one registration: each delivery goes to one of them. A
 * delivery already there is taken even in a cancelled task. */
WEFT_MUST_CHECK int weft_signal_wait(struct weft_signal *s, int *signo);

/* Stops catching: the disposition a signal had before its first open
 * registration comes back when its last one closes, unless the program
 * installed a handler of its own meanwhile, which stays. Nobody may be waiting
 * on s. Returns 0 or -EINVAL (NULL, not open). */
int weft_signal_close(struct weft_signal *s);

#ifdef __cplusplus
}
#endif
#endif
