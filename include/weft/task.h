/* weft tasks: the runtime, spawning, joining, cancelling. Part of <weft.h>. */
#ifndef WEFT_TASK_H
#define WEFT_TASK_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>

#include "weft/must_check.h"

#ifdef __cplusplus
extern "C" {
#endif

/* A task's body: takes the spawner's argument, returns the task's result. */
typedef void *(*weft_fn)(void *arg);

/* A task's result that is an error, the convention for every task (a
 * group's members rely on it): a negative errno as a pointer, as the
 * kernel's ERR_PTR; -4095 <= err <= -1. */
#define WEFT_ERR_PTR(err) ((void *)(intptr_t)(err))
#define WEFT_IS_ERR(ptr) ((uintptr_t)(ptr) >= (uintptr_t)-4095)
#define WEFT_PTR_ERR(ptr) ((int)(intptr_t)(ptr))

/* A handle to a task. It is a value: copy it freely. A handle goes stale once
 * its task has been joined, or has finished after being detached; calls on a
 * stale handle return -ESRCH and touch nothing. */
typedef struct weft_task_t {
	struct weft_task *task;
	uint64_t gen;
} weft_task_t;

/* The I/O drivers (see weft/io.h and docs/concepts.md). */
enum weft_io_kind {
	WEFT_IO_AUTO = 0, /* choose at weft_run */
	WEFT_IO_URING,    /* io_uring: a ring per worker; files on it */
	WEFT_IO_EPOLL,    /* epoll: files on the blocking pool */
};

/* How a socket call's attempt reaches the kernel under io_uring (see
 * weft/io.h and docs/concepts.md); epoll makes the system call. */
enum weft_sock_path {
	WEFT_SOCK_AUTO = 0, /* choose at weft_run, by a system call's cost */
	WEFT_SOCK_RING,     /* an operation on the worker's ring, submitted
			     * with its round's others in one system call */
	WEFT_SOCK_SYSCALL,  /* the non-blocking system call */
};

/* How the scheduling-latency histogram is kept (see weft/metrics.h). */
enum weft_latency_mode {
	WEFT_LATENCY_DEFAULT = 0, /* $WEFT_LATENCY if set, else sampled */
	WEFT_LATENCY_SAMPLED,     /* a sample: no measurable cost */
	WEFT_LATENCY_EXACT,       /* every transition: count == task_runs */
};

struct weft_stall;

enum weft_fp_modes { WEFT_FP_SHARED, WEFT_FP_PER_TASK };

enum weft_crowding {
	WEFT_CROWDING_DEFAULT = 0, /* $WEFT_CROWDING if set, else auto */
	WEFT_CROWDING_AUTO,        /* keep the load on few workers when the
				    * workers wait for CPUs */
	WEFT_CROWDING_OFF,         /* always spread it, as Go and Tokio */
};

struct weft_config {
	/* Worker threads. 0: $WEFT_WORKERS if set, else the CPUs this process
	 * may use: those in its affinity mask (taskset, a container's cpuset),
	 * and no more than its cgroup's CPU limit (a container's --cpus, a
	 * pod's CPU limit) rounded up, nor fewer than 2 for a limit, as Go
	 * 1.25 sets GOMAXPROCS. */
	int workers;
	/* Default task stack size in bytes. 0: WEFT_STACK_DEFAULT. */
	size_t stack_size;
	/* Most threads the blocking pool may start. 0: 64. */
	int blocking_threads;
	/* A signal on which the runtime writes weft_dump() to stderr and goes
	 * on (SIGUSR1, say). 0: $WEFT_DUMP_SIGNAL if set (a name such as
	 * SIGUSR1, USR1, SIGRTMIN+2 or SIGRTMAX-1, counted from glibc's
	 * SIGRTMIN and SIGRTMAX, or a number), else none: a library takes no
	 * signal unasked. The action from before is restored when weft_run
	 * returns, unless the program installed its own meanwhile. */
	int dump_signal;
	/* Report a task that keeps its worker this long without giving it
	 * up (no park, no yield: it computes, spins or blocks in a system
	 * call), as asyncio's debug mode reports a slow callback. 0:
	 * $WEFT_STALL_MS if set (milliseconds; 0 off), else off;
	 * WEFT_STALL_OFF: off whatever the environment says. Off by default
	 * because reports write to stderr and take SIGURG to see where the
	 * task is, which a library does not do unasked (as for dump_signal);
	 * WEFT_STALL_MS=100 turns them on for a program not built for them.
	 * WEFT_STALL_SUGGESTED_NS, asyncio's slow_callback_duration, is far
	 * above any scheduling hiccup yet short enough that users notice.
	 * A threshold under a millisecond counts as one (the monitor looks
	 * every half threshold), and the report says so.
	 * Needs 2 or more workers (the monitor watches): with one, reports
	 * are off and SIGURG is not taken. A dump_signal of SIGURG keeps it
	 * (reports then come without frames). See weft/dump.h. */
	int64_t stall_threshold_ns;
	/* Called on the monitor thread for each report instead of the line
	 * on stderr; NULL: the line. */
	void (*on_stall)(const struct weft_stall *stall, void *arg);
	void *on_stall_arg;
	/* The kernel interface for I/O, parking and timers. WEFT_IO_AUTO (0):
	 * $WEFT_IO if set (auto, io_uring or epoll), else io_uring where it
	 * can be set up with what weft needs, else epoll, silently. */
	enum weft_io_kind io;
	/* Under io_uring, how socket transfers reach the kernel. WEFT_SOCK_AUTO
	 * (0): $WEFT_SOCKETS if set (auto, ring or syscall), else the ring
	 * where a system call costs more than a ring operation saves, as on
	 * a host with page-table isolation or a paravirtual CPU (timed at
	 * weft_run: under 0.1 ms), else the system call. Ignored under
	 * epoll. */
	enum weft_sock_path sockets;
	/* The latency histogram's mode. WEFT_LATENCY_DEFAULT (0):
	 * $WEFT_LATENCY if set (sampled or exact), else sampled. Exact
	 * times every transition, at a cost (weft/metrics.h): for tests
	 * and measurements, not for production. */
	enum weft_latency_mode latency;
	/* Floating-point modes (rounding, flush to zero, exception masks:
	 * MXCSR and the x87 control word, or FPCR). WEFT_FP_SHARED (0):
	 * tasks share their worker's, as goroutines and Tokio tasks do; the
	 * workers start with weft_run's caller's, so set them before, and a
	 * task that changes them changes them for whatever runs next on its
	 * worker, and may resume on a worker with others. WEFT_FP_PER_TASK:
	 * each task keeps its own across every switch, as the C ABI has them
	 * kept across a call, starting with its spawner's; reading MXCSR at
	 * each switch costs about 3.5 ns on x86-64 (bench/README.md). */
	enum weft_fp_modes fp_modes;
	/* What the workers do when the machine has no CPU to spare for them
	 * all (a load generator beside the server, another service, a
	 * container's share), under epoll (io_uring keeps a server's load on
	 * few workers anyway). WEFT_CROWDING_DEFAULT (0): $WEFT_CROWDING if
	 * set (auto or off), else auto: once the workers spent a fifth of
	 * their runnable time waiting for a CPU, woken tasks stay on the
	 * workers that are awake instead of rousing others, until half a
	 * CPU is idle again that the process may use (its affinity mask and
	 * cgroup CPU limit count; probed with a backoff). On two
	 * CPUs shared with a load generator that halved an epoll server's
	 * p99 (bench/README.md). Spawned tasks still wake sleeping workers.
	 * WEFT_CROWDING_OFF: spread them always. weft_metrics reports the
	 * state (.crowded) and its changes. */
	enum weft_crowding crowding;
};

#define WEFT_STALL_OFF (-1)
#define WEFT_STALL_SUGGESTED_NS (100 * 1000 * 1000)

#define WEFT_STACK_DEFAULT (64u * 1024)
#define WEFT_STACK_MIN (16u * 1024)
#define WEFT_STACK_MAX (1024u * 1024 * 1024)
#define WEFT_WORKERS_MAX 1024
#define WEFT_NAME_MAX 32 /* task names are truncated to WEFT_NAME_MAX - 1 */

/* Starts the workers, runs main(arg) as a task and returns when it ends, like
 * asyncio.run. Tasks still running then are cancelled (their blocking calls
 * return -ECANCELED) and awaited; then the workers stop and everything is
 * freed. cfg may be NULL. Stores main's result in *result if result is not
 * NULL. weft_run is main's joiner from the start: weft_join by another
 * task or thread and weft_detach on main's handle (weft_current() in main)
 * return -EINVAL, as for any task being joined (main joining itself says
 * -EDEADLK, as any task does); weft_cancel works.
 *
 * SIGPIPE: while it runs, a write to a pipe whose reader is gone returns
 * -EPIPE (weft_writev, a weft_stream over a pipe, and write(2) anywhere in
 * the process) instead of killing the process, as sends on sockets do
 * (MSG_NOSIGNAL), and as Go, Rust and Python programs expect. If SIGPIPE's
 * action is the default, weft_run installs a handler that does nothing
 * (exec(2) resets it: programs the tasks start get the default) and puts
 * the default back when it returns, unless the program set an action of
 * its own meanwhile. An action the program set before (SIG_IGN, a
 * handler) is left alone, and a weft_signal registration of SIGPIPE
 * works as for any signal.
 *
 * fork(2): forking before weft_run and calling weft_run in the child
 * works (the pre-fork server: a listener made before fork, a weft_run in
 * each child), and so does a weft_run after an earlier one returned.
 * Forking while weft_run runs, from a task or a plain thread, is for
 * exec(2) or _exit(2), as in any multi-threaded program: until then the
 * child may make only async-signal-safe calls (close(2), not weft_close:
 * weft's state there is a copy of the parent's, whose threads, locks and
 * waiting tasks are the parent's). The child has no runtime, so a weft
 * call made there all the same does not drive the parent's poll set and
 * rings: its thread is a plain thread (even inside a task's function),
 * spawns fail with -ESHUTDOWN and weft_run with -EBUSY. Never return from
 * the task's function in the child. Every descriptor
 * weft makes is close-on-exec, and weft blocks no signal in any thread,
 * so programs the tasks start inherit neither.
 *
 * Returns 0, -EINVAL (bad config or fn, a bad $WEFT_WORKERS, $WEFT_IO,
 * $WEFT_SOCKETS or $WEFT_CROWDING, a dump signal that cannot be caught, is a
 * fault's (SIGSEGV, ...: see weft/signal.h) or glibc's own (32 and 33,
 * below SIGRTMIN), a $WEFT_DUMP_SIGNAL that names no signal, a stall
 * threshold below WEFT_STALL_OFF, a $WEFT_STALL_MS that is not a number of
 * milliseconds, a bad latency mode or $WEFT_LATENCY),
 * -EBUSY (already running in this process, or called from a task, or the
 * dump signal is held by an open weft_signal registration), -ENOSYS
 * (io_uring forced by cfg->io or $WEFT_IO but unavailable: a line on
 * stderr says why), -ENOMEM, -EAGAIN (one of the runtime's threads could
 * not be started), or the -errno of a driver's setup that failed (-EMFILE,
 * ...: a line on stderr says which).
 */
WEFT_MUST_CHECK int weft_run(weft_fn main, void *arg,
			     const struct weft_config *cfg, void **result);

/* The driver the running weft_run chose: WEFT_IO_URING or WEFT_IO_EPOLL;
 * WEFT_IO_AUTO when no runtime runs. Any thread. */
enum weft_io_kind weft_io_driver(void);

/* How the running weft_run's socket transfers reach the kernel:
 * WEFT_SOCK_RING or WEFT_SOCK_SYSCALL (always under epoll); WEFT_SOCK_AUTO
 * when no runtime runs. Any thread. */
enum weft_sock_path weft_sock_path(void);

struct weft_spawn_opts {
	const char *name;  /* NULL: "task" */
	size_t stack_size; /* 0: the runtime's default */
};

/* Spawns fn(arg) as a new task. With out NULL the task starts detached.
 * Callable from tasks and from plain threads while weft_run is running.
 * Never waits, but a task spawning into a full run queue yields once
 * (backpressure), and may resume on another worker.
 * Returns 0, -EINVAL (NULL fn, bad stack size), -ESHUTDOWN (no runtime, or it
 * is shutting down), -ENOMEM. The task's stack is taken when it first runs,
 * on its worker: if none can be had then, the task ends without running fn
 * and weft_join says -ENOMEM (a detached task's end is told to nobody;
 * weft_group_spawn takes the stack at once and says -ENOMEM itself). */
WEFT_MUST_CHECK int weft_spawn(weft_task_t *out, weft_fn fn, void *arg);
WEFT_MUST_CHECK int weft_spawn_opts(weft_task_t *out, weft_fn fn, void *arg,
				    const struct weft_spawn_opts *opts);

/* Waits for the task to end and stores its result. The handle is consumed on
 * success. Returns 0; -ECANCELED / -ETIMEDOUT if the caller was cancelled or
 * its deadline passed (the handle is still valid); -EINVAL if the task is
 * detached or another caller is already joining it; -EDEADLK if it is the
 * caller itself; -ESRCH for a stale handle, one already joined included;
 * -ENOMEM if the task never ran because no stack could be had for it (the
 * handle is consumed: the task is over), or, under a deadline, if it
 * had to wait and there was no memory for the caller's timer (then the
 * handle is still valid). A task already done is joined at once, even by
 * a cancelled caller or past its deadline. */
WEFT_MUST_CHECK int weft_join(weft_task_t t, void **result);

/* Lets the task run on and free itself when it ends; consumes the handle.
 * Returns 0, -EINVAL (already detached or being joined), -ESRCH (a stale
 * handle, one already joined included). */
int weft_detach(weft_task_t t);

/* Requests cancellation: the task's current and future blocking calls
 * return -ECANCELED. It keeps running until it returns, as a task that
 * catches asyncio.CancelledError would. Returns 0 or -ESRCH. */
int weft_cancel(weft_task_t t);

/* True once the task was cancelled: for loops that do not block. Returns
 * 1, 0, or -ESRCH. */
int weft_is_cancelled(weft_task_t t);

struct weft_deadline;

/* A shield scope (Trio's shielded cancel scope; what asyncio.shield is
 * for): between enter and leave the task's blocking calls ignore its
 * cancellation and the deadlines of the scopes around the shield, so a
 * cancelled task can still join its children, or flush before it closes.
 * Deadline scopes entered inside it apply as usual. A cancellation that
 * arrives inside is kept: after leave, the next blocking call returns
 * -ECANCELED. Shields and deadline scopes nest and are left innermost
 * first. The struct lives with the caller (on its stack). */
struct weft_shield {
	int64_t outer_deadline;      /* weft's: who is inside it (task.c) */
	struct weft_deadline *scope; /* the deadline scope around it */
	struct weft_shield *outer;   /* the shield around it */
};

/* Returns 0, -EINVAL (NULL, or s already entered and not left), -EPERM
 * outside a task. */
WEFT_MUST_CHECK int weft_shield_enter(struct weft_shield *s);
/* Returns 0, -EINVAL (NULL, or a scope entered inside it still open),
 * -EPERM outside a task. */
int weft_shield_leave(struct weft_shield *s);

/* Lets other tasks run (asyncio.sleep(0)). Returns 0, -ECANCELED if the
 * task is cancelled (outside a shield), -EPERM outside a task. */
int weft_yield(void);

/* The running task's handle; {NULL, 0} outside a task. */
weft_task_t weft_current(void);

/* The task's name; NULL for a stale handle. Valid while the handle is:
 * the task's struct is reused, so once the handle goes stale (its task
 * joined, or ended detached) the string may turn into the next task's.
 * A caller that may race with that must not keep it. */
const char *weft_task_name(weft_task_t t);

/* The worker thread the caller runs on, 0..workers-1; -1 outside a task. */
int weft_worker_id(void);

/* Number of workers of the running runtime, or 0. */
int weft_workers(void);

#ifdef __cplusplus
}
#endif
#endif
