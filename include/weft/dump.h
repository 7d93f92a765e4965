/*
 * weft_dump: what every task is doing, and since when (Go's goroutine
 * dump, asyncio's all_tasks() and print_stack()). Part of <weft.h>.
 */
#ifndef WEFT_DUMP_H
#define WEFT_DUMP_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/*
 * Writes one block per live task to fd:
 *
 *   task 2051 "worker" parked: lock 0x7ffd5a1c2e40, for 1.204 s
 *     spawned at main_task+0x3c (server+0x1a3c) at src/server.c:88
 *     #0 task_suspend+0x31 (server+0xe761) at runtime/switch.h:61
 *     #1 weft__waitq_wait_on+0x47 (server+0xb687) at runtime/wait.h:256
 *     #2 weft_lock_acquire+0x121 (server+0xb2c1) at sync/lock.c:148
 *     #3 handle_client+0x44 (server+0x1c84) at src/server.c:131
 *
 * State: running on worker N, runnable, parked (with what it waits for, in
 * the words of the call: lock, event, cond, sem, queue get/put/join,
 * future, barrier, group, join of task N, sleep until +T, select of its
 * cases, recv/send/accept/connect/... on fd N, stream readline on fd N,
 * signal wait, or the blocking pool with its job's function), for how
 * long, and the deadline of the wait if it has one. Each frame is
 * "function+offset (object+offset)", and " at file:line" when weft was
 * built with elfutils' libdw (WEFT_LIBDW, on where found) and the object
 * has DWARF line tables (-g); the line of a call inlined into the function
 * is the innermost one's. Without them, `addr2line -e object offset` gives
 * file and line. A function name longer than 192 characters (a C++
 * template's mangled one) is cut there and ends in "...".
 *
 * The backtrace of a parked task is a scan of its stack, from the
 * registers it saved when it switched out, for return addresses (words
 * pointing into code just after a call instruction): every live frame is
 * there, and now and then a stale word left in a frame's slot shows as one
 * more. A block shows the innermost 24 frames; a deeper stack's ends
 * with "  ... and N more frames". gdb's `weft bt ID` (gdb/weft-gdb.py)
 * unwinds exactly, every frame. Running and runnable tasks show no
 * backtrace.
 *
 * Safe from any task or thread while weft_run runs; tasks go on running
 * meanwhile, so each block is true of its moment. weft_run does not
 * return while a thread's dump is under way: a dump that begins as it
 * ends is whole, or -ESRCH. Called from a task, the
 * dump runs on a thread of its own (libdw's readers need more stack than
 * a task has) while the task's worker waits for it. With cfg.dump_signal
 * (or WEFT_DUMP_SIGNAL=SIGUSR1) the runtime writes it to stderr when the
 * signal arrives (the handler only posts a semaphore; a thread of weft's
 * writes the dump). Returns 0, -ESRCH (no runtime, or on a plain thread
 * one starting or ending), -ENOMEM, -EAGAIN (no thread for it), or the
 * -errno of a failed write.
 */
int weft_dump(int fd);

/*
 * A stall: a task kept its worker longer than cfg.stall_threshold_ns
 * without parking or yielding. The monitor reports each such stretch once,
 * when it has lasted the threshold, and at most 10 a second (it counts the
 * rest, and a stretch that ends as it is reported: weft_metrics'
 * stall_reports counts every one). By default a line
 * on stderr:
 *
 *   weft: task 3077 "spinner" has kept worker 1 for 112.0 ms without
 *   yielding (stall threshold 100.0 ms), seen at:
 *     #0 spin_until+0x12 (app+0x1c22)
 *     #1 handler+0x31 (app+0x1d01)
 *
 * To see where the task is, the monitor sends the worker thread SIGURG (as
 * Go preempts with it), whose handler scans the interrupted stack as
 * weft_dump scans a parked one. The handler is installed only while stall
 * reports are on (never with one worker), and not at all if the program
 * has its own for SIGURG, or SIGURG is the dump signal; then, or if the
 * signal is not handled in time (ThreadSanitizer delays it while the task
 * makes no system call), the report has no frames. With the handler in,
 * the workers unblock SIGURG, whatever mask they inherited from weft_run's
 * caller (weft's other threads keep the caller's; a thread a task starts
 * inherits its worker's); a SIGURG sent to the process (kill, an urgent
 * byte on a socket it owns) still reaches the program: if the caller
 * blocked SIGURG (for a sigwait or signalfd thread), a worker that takes
 * one blocks SIGURG and sends it to the process again, as sent by itself,
 * and unblocks it at a pick once none is pending; if not, it is ignored,
 * as the default action does. In any other thread that has SIGURG
 * unblocked (the program's own, whose mask weft leaves alone, or one a
 * task started: block SIGURG there if the program waits for it) it is
 * ignored too. While a SIGURG of the program's stays pending, as no
 * thread of it waits for one, the workers keep SIGURG blocked and send
 * it on every 10 ms: reports then have no frames. A handler the program
 * installs over weft's meanwhile stays when weft_run returns. As with Go's
 * preemption signal, a stalled task inside a system call that is never
 * restarted after a handler (nanosleep, poll, epoll_wait) sees it return
 * EINTR, or end early.
 */
struct weft_stall {
	/* Unique within a weft_run: n * 1025 + w for the n-th task spawned
	 * on worker w, n * 1025 + 1024 for one spawned off the workers. */
	uint64_t task_id;
	const char *name; /* valid during the callback */
	int worker;
	/* How long it has kept the worker, at least: counted from the
	 * monitor's first look that found it running, which may come up to
	 * half a threshold after it began (as Go's sysmon counts). */
	int64_t ns;
	int nframes;
	/* Return addresses, innermost first. The first is the interrupted
	 * instruction's address plus one, as if it were returned to: every
	 * frame's code is at its address - 1, as a return address's is,
	 * and the report on stderr names them so. The innermost 24 at
	 * most: */
	const void *const *frames;
	/* frames found beyond those, which the report on stderr counts in a
	 * last line "  ... and N more frames" (as weft_dump's blocks). */
	int more_frames;
};

#ifdef __cplusplus
}
#endif
#endif
