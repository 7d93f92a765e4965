/* Stall reports: see stall.h. */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <ucontext.h>
#include <unistd.h>

#include "out.h"
#include "self.h"
#include "sigclaim.h"
#include "stall.h"
#include "symbols.h"
#include "task.h"
#include "worker.h"

#define MAX_FRAMES 24
#define REPORTS_PER_SECOND 10
#define CAPTURE_WAIT_NS (20 * 1000 * 1000)
#define STALL_MIN_NS WEFT_MSEC /* a lower threshold counts as this */

/* ASKED + i: a request to worker i's thread. */
enum { CAPTURE_IDLE, CAPTURE_BUSY, CAPTURE_DONE, CAPTURE_ASKED };

/*
 * One capture at a time, between the monitor and the signal handler on the
 * worker: the monitor fills want/syms, then sets ASKED + i (release) and
 * sends worker i's thread the signal; the handler claims it, ASKED + i ->
 * BUSY (acquire: it sees want/syms), fills frames and sets DONE (release);
 * the monitor reads them after seeing DONE (acquire). A monitor tired of
 * waiting takes ASKED + i back to IDLE, so a late handler does nothing;
 * if the handler got BUSY first, the monitor waits the few instructions
 * until DONE. The request names its worker because a signal given up on
 * may still come during a later request to another worker: it would take
 * that request, find its own task not the one wanted, and say "no frames"
 * before the right signal came (test_observe
 * stall_late_signal_spares_next_capture).
 */
static struct {
	_Atomic int state;
	const struct weft_task *want; /* the stalled task */
	const struct weft__symbols *syms;
	/* The innermost; one more for the link register's (settle_link). */
	const void *frames[MAX_FRAMES + 1];
	int nframes;
	int more;    /* frames found past those */
	bool linked; /* frames[1] is the link register's (interrupted_link) */
	bool installed;
	/* weft_run's caller blocked SIGURG: the program's own SIGURGs are
	 * passed on (pass_on). Set and cleared with installed. */
	bool pass_on;
	struct sigaction old;
} capture;

/* $WEFT_STALL_MS in ns: 0 if unset or "0" (off), -EINVAL if not a
 * number of milliseconds (up to a day). */
static int64_t stall_env(void)
{
	const char *env = getenv("WEFT_STALL_MS");
	if (!env || !*env)
		return 0;
	char *end;
	errno = 0;
	long ms = strtol(env, &end, 10);
	if (errno || *end || ms < 0 || ms > 24L * 3600 * 1000)
		return -EINVAL;
	return (int64_t)ms * WEFT_MSEC;
}

int64_t weft__stall_config(const struct weft_config *cfg)
{
	int64_t t = cfg ? cfg->stall_threshold_ns : 0;
	if (t < WEFT_STALL_OFF)
		return -EINVAL;
	if (t == WEFT_STALL_OFF)
		return 0;
	if (!t)
		return stall_env();
	/* The monitor looks every half threshold: 1 ns had it wake every
	 * microsecond (weft__stall_period's old floor), a CPU burnt for the
	 * whole run. A millisecond is a look every half millisecond, less
	 * than the armed monitor's own 0.1 ms period costs (monitor.c). */
	return t < STALL_MIN_NS ? STALL_MIN_NS : t;
}

/* Where the signal interrupted the thread: its stack pointer and pc. */
static uintptr_t interrupted_sp(const ucontext_t *uc)
{
#if defined(__x86_64__)
	return (uintptr_t)uc->uc_mcontext.gregs[REG_RSP];
#elif defined(__aarch64__)
	return (uintptr_t)uc->uc_mcontext.sp;
#else
#error "interrupted_sp: no signal frame layout for this CPU yet"
#endif
}

static uintptr_t interrupted_pc(const ucontext_t *uc)
{
#if defined(__x86_64__)
	return (uintptr_t)uc->uc_mcontext.gregs[REG_RIP];
#elif defined(__aarch64__)
	return (uintptr_t)uc->uc_mcontext.pc;
#endif
}

/* A return address the interrupted code holds in a register, not yet on
 * its stack (aarch64's link register, in a leaf function), or 0. */
static uintptr_t interrupted_link(const ucontext_t *uc)
{
#if defined(__aarch64__)
	return (uintptr_t)uc->uc_mcontext.regs[30];
#else
	return 0; /* x86-64: a call pushes its return address */
#endif
}

/* Whether the capture sent the signal info tells of: pthread_kill
 * (tgkill) from this process. */
static bool from_capture(const siginfo_t *info)
{
	return info->si_code == SI_TKILL && info->si_pid == getpid();
}

/*
 * A SIGURG of the program's (a kill to the process, an urgent byte on a
 * socket it owns: process-directed), taken by a thread that has SIGURG
 * unblocked. If weft_run's caller has SIGURG unblocked, the program
 * ignores it (SIG_DFL) wherever it lands: so do we. If it blocked it, the
 * program waits for it in a thread of its own (sigwait, signalfd), which
 * would have had it had every thread kept the caller's mask. A worker
 * has SIGURG unblocked only because weft unblocked it (weft__stall_worker_
 * init): it blocks SIGURG from the handler's return on (uc_sigmask), as it
 * would have, and sends the signal to the process again, where the kernel
 * gives it to a thread that has SIGURG unblocked or waits for it: the
 * program's, or another worker, which does the same. It marks itself,
 * and unblocks SIGURG again at its next pick (weft__stall_unmask), for
 * the captures. Any other thread has it unblocked by its own choice (the
 * program's, which unblocked SIGURG itself) or inherited it from a worker
 * (a thread a task started): ignored, as the default action does in a
 * thread that has SIGURG unblocked, and its mask left alone, as nothing
 * would unblock SIGURG there again (it stayed blocked in a thread of the
 * program's for good: test_observe stall_keeps_program_thread_mask).
 * weft's own plain threads start with it blocked (weft__stall_thread_
 * block), and a worker blocks it before it stops being one (weft__stall_
 * worker_exit). Async-signal-safe: sigaddset, getpid, kill, atomic stores.
 *
 * ThreadSanitizer runs most handlers later, inside the thread's next
 * intercepted call, on a copy of the context, and gives the thread its
 * mask from before after: SIGURG stays unblocked here, and a signal sent
 * on from the handler came straight back to this thread, for ever (the
 * worker spun in it; or it was lost, queued by ThreadSanitizer on a thread
 * that then ended). There the handler only marks it owed, and the worker
 * blocks SIGURG for real and sends it on (send_owed) at its next pick or
 * park, or as it ends. Until then it holds the signal: while its task
 * runs, or, if the handler ran inside the park's own wait, until the
 * worker wakes.
 */
static void pass_on(struct weft_worker *w, ucontext_t *uc)
{
	if (!w || !capture.pass_on) /* w first: see weft__stall_stop */
		return;
	int saved = errno;
	sigaddset(&uc->uc_sigmask, SIGURG);
	/* relaxed, both: read by this thread (the pick after the handler)
	 * and urg_masked, as a hint, by the monitor (capture_frames). */
	atomic_store_explicit(&w->urg_masked, true, memory_order_relaxed);
#ifdef WEFT_TSAN
	atomic_store_explicit(&w->urg_owed, true, memory_order_relaxed);
#else
	kill(getpid(), SIGURG);
#endif
	errno = saved;
}

/* On the worker, interrupting the stalled task: scans its stack from the
 * interrupted stack pointer, reading only inside that stack. Async-signal-
 * safe: loads, stores and the symbol table's read-only segment list. */
__attribute__((no_sanitize("thread", "address"))) static void
on_sigurg(int signo, siginfo_t *info, void *ctx)
{
	struct weft_worker *w = weft__self();
	if (!from_capture(info)) {
		pass_on(w, ctx);
		return;
	}
	if (!w)
		return; /* not a worker: no request is for this thread */
	int asked = CAPTURE_ASKED + w->id;
	/* acquire: pairs with capture_frames' release store of ASKED + i,
	 * so want and syms are the asker's. A failed CAS (a request
	 * withdrawn, to another worker, or none) reads nothing: relaxed. */
	if (!atomic_compare_exchange_strong_explicit(&capture.state, &asked,
						     CAPTURE_BUSY,
						     memory_order_acquire,
						     memory_order_relaxed))
		return;
	struct weft_task *t = w->current;
	const ucontext_t *uc = ctx;
	const uintptr_t *sp = (const uintptr_t *)interrupted_sp(uc);
	const uintptr_t *top =
		t && t == capture.want && t->stack.base
			? (const uintptr_t *)(t->stack.base + t->stack.size)
			: NULL;
	int n = 0;
	if (!top || sp < (const uintptr_t *)t->stack.base || sp >= top) {
		capture.nframes = capture.more = 0;
		/* release: as below. */
		atomic_store_explicit(&capture.state, CAPTURE_DONE,
				      memory_order_release);
		return;
	}
	/* The interrupted instruction, as if returned to: named at pc. */
	capture.frames[n++] = (const void *)(interrupted_pc(uc) + 1);
	uintptr_t link = weft__return_strip(interrupted_link(uc));
	capture.linked = link && weft__symbols_is_return(capture.syms, link);
	if (capture.linked)
		capture.frames[n++] = (const void *)link;
	/* On to the top: a report cut short says how much it left out.
	 * The link register's frame takes no room: it may go (settle_link). */
	uintptr_t found[MAX_FRAMES];
	int room = MAX_FRAMES - 1,
	    all = weft__stack_returns(capture.syms, sp, top, found, room);
	for (int i = 0; i < all && i < room; i++)
		capture.frames[n++] = (const void *)found[i];
	capture.nframes = n;
	capture.more = all > room ? all - room : 0;
	/* release: pairs with capture_frames' acquire loads of DONE, which
	 * then read frames and nframes. */
	atomic_store_explicit(&capture.state, CAPTURE_DONE,
			      memory_order_release);
}

int weft__stall_start(struct weft_runtime *rt, int64_t threshold,
		      const struct weft_config *cfg, int dump_signal)
{
	struct weft__stall_watch *s = &rt->monitor.stall;
	/* No memset of s: new_runtime's calloc zeroed it, and rt is
	 * published already, so a plain thread's weft_metrics may be reading
	 * s->reports now (test_observe metrics_during_startup); a plain
	 * store over it would race with that atomic load. */
	/* The monitor watches, and one worker has none (monitor.c): no
	 * report can come, so nothing is set up and SIGURG stays free. */
	if (!threshold || rt->nworkers < 2)
		return 0;
	s->threshold = threshold;
	s->on_stall = cfg ? cfg->on_stall : NULL;
	s->arg = cfg ? cfg->on_stall_arg : NULL;
	s->looks = calloc((size_t)rt->nworkers, sizeof(*s->looks));
	if (!s->looks)
		return -ENOMEM;
	/* Only over the default action, and if neither a weft_signal
	 * registration nor the dump signal (claimed after us) wants SIGURG:
	 * else reports come without frames. On a worker's alternate stack:
	 * the stalled task's may be near its end. */
	struct sigaction old;
	sigaction(SIGURG, NULL, &old);
	if (!(old.sa_flags & SA_SIGINFO) && old.sa_handler == SIG_DFL &&
	    dump_signal != SIGURG &&
	    !weft__sig_claim(SIGURG, WEFT__SIG_STALL)) {
		struct sigaction sa = { .sa_sigaction = on_sigurg,
					.sa_flags = SA_SIGINFO | SA_RESTART |
						    SA_ONSTACK };
		sigemptyset(&sa.sa_mask);
		sigset_t mask;
		pthread_sigmask(SIG_BLOCK, NULL, &mask);
		capture.pass_on = sigismember(&mask, SIGURG) == 1;
		sigaction(SIGURG, &sa, &capture.old);
		capture.installed = true;
	}
	return 0;
}

/* The set of SIGURG alone. */
static sigset_t sigurg_only(void)
{
	sigset_t urg;

	sigemptyset(&urg);
	sigaddset(&urg, SIGURG);
	return urg;
}

void weft__stall_worker_init(void)
{
	/* installed: set before the workers were created (pthread_create
	 * orders it), cleared after they were joined. */
	if (!capture.installed)
		return;
	sigset_t urg = sigurg_only();
	pthread_sigmask(SIG_UNBLOCK, &urg, NULL);
}

sigset_t weft__stall_thread_block(void)
{
	sigset_t old;
	/* pass_on: set before the workers were created, cleared after they
	 * were joined, the only threads that call this (blocking.c, dump.c). */
	if (capture.pass_on) {
		sigset_t urg = sigurg_only();
		pthread_sigmask(SIG_BLOCK, &urg, &old);
	} else {
		pthread_sigmask(SIG_BLOCK, NULL, &old);
	}
	return old;
}

void weft__stall_thread_restore(const sigset_t *old)
{
	pthread_sigmask(SIG_SETMASK, old, NULL);
}

/* After a pass_on, the pick retries no sooner than this. */
#define UNMASK_RETRY_NS (10 * WEFT_MSEC)

/* Blocks SIGURG on this worker's thread and sends on a SIGURG the handler
 * left owed (pass_on, under ThreadSanitizer): the handler may run inside
 * the pthread_sigmask, so the flag is read after it. Returns whether it
 * sent one. */
static bool send_owed(struct weft_worker *w)
{
	sigset_t urg = sigurg_only();
	pthread_sigmask(SIG_BLOCK, &urg, NULL);
	/* relaxed: set by a handler on this thread. */
	if (!atomic_exchange_explicit(&w->urg_owed, false,
				      memory_order_relaxed))
		return false;
	kill(getpid(), SIGURG);
	return true;
}

void weft__stall_worker_exit(struct weft_worker *w)
{
	if (capture.installed) /* as in weft__stall_worker_init */
		(void)send_owed(w);
}

void weft__stall_unmask(struct weft_worker *w)
{
	int64_t now = weft_now();
	/* relaxed: as in send_owed. */
	if (atomic_load_explicit(&w->urg_owed, memory_order_relaxed) &&
	    send_owed(w)) {
		w->urg_tried_at = now;
		return;
	}
	if (w->urg_tried_at && now - w->urg_tried_at < UNMASK_RETRY_NS)
		return;
	sigset_t urg = sigurg_only();
	siginfo_t info;
	/* What is pending for this thread, or the process, now: a capture's
	 * signal the monitor sent as the handler blocked SIGURG here
	 * (stale: dropped), or the program's, which its thread has not
	 * taken yet: sent on again, and SIGURG stays blocked a while, lest
	 * it come back here at once. */
	while (sigtimedwait(&urg, &info, &(struct timespec){ 0, 0 }) ==
	       SIGURG) {
		if (!from_capture(&info)) {
			kill(getpid(), SIGURG);
			w->urg_tried_at = now;
			return;
		}
	}
	w->urg_tried_at = 0;
	/* relaxed: as in pass_on. Cleared first: a pass_on right after the
	 * unblock sets it again. */
	atomic_store_explicit(&w->urg_masked, false, memory_order_relaxed);
	pthread_sigmask(SIG_UNBLOCK, &urg, NULL);
}

void weft__stall_stop(struct weft_runtime *rt)
{
	struct weft__stall_watch *s = &rt->monitor.stall;
	if (capture.installed) {
		/* A SIGURG of the program's still pending (no thread of it
		 * waited for it: the workers sent it on until they were
		 * joined) would be discarded as the action goes back to
		 * SIG_DFL, whose default is to ignore it (sigaction(2)).
		 * Taken here, on weft_run's caller, which has SIGURG blocked
		 * (pass_on), and sent again once the action is back: pending
		 * for the program, as it would be had weft never handled
		 * SIGURG (test_observe stall_keeps_unwaited_program_sigurg).
		 * One that comes between the two is discarded still. */
		bool owed = false;
		if (capture.pass_on) {
			sigset_t urg = sigurg_only();
			siginfo_t info;
			while (sigtimedwait(&urg, &info,
					    &(struct timespec){ 0, 0 }) ==
			       SIGURG)
				owed = owed || !from_capture(&info);
		}
		weft__sig_put_back(SIGURG, &capture.old, NULL, on_sigurg);
		if (owed)
			kill(getpid(), SIGURG);
		weft__sig_release(SIGURG, WEFT__SIG_STALL);
		capture.installed = false;
		/* Read by workers only (joined now: the handler reads w
		 * first, and they alone call weft__stall_thread_block): not
		 * left set for a run that takes no SIGURG. */
		capture.pass_on = false;
	}
	free(s->looks);
	s->looks = NULL;
}

long weft__stall_period(struct weft_runtime *rt)
{
	int64_t t = rt->monitor.stall.threshold; /* 0, or STALL_MIN_NS up */
	return t ? (long)(t / 2) : -1;
}

/*
 * The link register (aarch64's x30) is the interrupted function's return
 * address only until it saves it or makes a call: in a leaf, or in a
 * prologue or epilogue. Once saved, the scan finds it on the stack; after
 * a call, the register holds that call's return, into the function
 * itself. Either way frames[1] would show a frame twice (test_observe
 * stall_frames_once): it goes. The handler cannot tell (the symbol table
 * is read here, in normal context). Of the n frames, [1] is the link
 * register's, beyond the MAX_FRAMES the handler kept room for: returns
 * how many to report, at most MAX_FRAMES, and counts one cut in *more.
 */
static int settle_link(struct weft__symbols *syms, int n, int *more)
{
	uintptr_t pc = (uintptr_t)capture.frames[0] - 1,
		  link = (uintptr_t)capture.frames[1];
	bool stale = weft__symbols_same_func(syms, pc, link - 1);
	for (int i = 2; i < n && !stale; i++)
		stale = (uintptr_t)capture.frames[i] == link;
	if (stale) {
		memmove(&capture.frames[1], &capture.frames[2],
			(size_t)(n - 2) * sizeof(capture.frames[0]));
		return n - 1;
	}
	if (n > MAX_FRAMES) {
		++*more;
		return MAX_FRAMES;
	}
	return n;
}

/* Asks worker w's thread where task t is; returns the frames captured
 * (capture.frames), and in *more how many more it found. */
static int capture_frames(struct weft_worker *w, const struct weft_task *t,
			  struct weft__symbols *syms, int *more)
{
	*more = 0;
	/* relaxed: a hint (pass_on); a stale false costs the wait below. */
	if (!capture.installed || !syms ||
	    atomic_load_explicit(&w->urg_masked, memory_order_relaxed))
		return 0;
	capture.want = t;
	capture.syms = syms;
	capture.nframes = capture.more = 0;
	capture.linked = false;
	/* release: pairs with the handler's acquire CAS, which then reads
	 * want and syms. The acquire loads of DONE below pair with the
	 * handler's release store, after its frames. */
	atomic_store_explicit(&capture.state, CAPTURE_ASKED + w->id,
			      memory_order_release);
	int n = 0;
	if (!pthread_kill(w->thread, SIGURG)) {
		int64_t end = weft_now() + CAPTURE_WAIT_NS;
		while (atomic_load_explicit(&capture.state,
					    memory_order_acquire) !=
			       CAPTURE_DONE &&
		       weft_now() < end)
			nanosleep(&(struct timespec){ 0, 100000 }, NULL);
	}
	int asked = CAPTURE_ASKED + w->id;
	if (atomic_compare_exchange_strong(&capture.state, &asked,
					   CAPTURE_IDLE))
		return 0; /* not handled in time: a late handler does nothing */
	/* acquire: as above, the handler's release store of DONE. */
	while (atomic_load_explicit(&capture.state, memory_order_acquire) !=
	       CAPTURE_DONE)
		; /* the handler is writing its last frames */
	n = capture.nframes;
	*more = capture.more;
	if (capture.linked)
		n = settle_link(syms, n, more);
	atomic_store(&capture.state, CAPTURE_IDLE);
	return n;
}

static void print_duration(char *buf, size_t len, int64_t ns)
{
	snprintf(buf, len, "%.1f ms", ns / 1e6);
}

/* The default report: one line, and the frames, written to stderr under
 * its lock, which keeps the program's stdio lines out of it. Not with
 * stdio: stderr may be O_NONBLOCK (a pipe shared with stdout that weft's
 * epoll driver did I/O on), and fprintf lost the report to EAGAIN while
 * the pipe was full; weft__out waits for room, as for a dump
 * (test_observe stall_report_to_nonblocking_stderr). */
static void print_stall(const struct weft_stall *st, int64_t threshold,
			struct weft__symbols *syms)
{
	/* The monitor's alone. Room for every frame, so that a report goes
	 * out in one write: 24 names of at most NAME_MAX_LEN (symbols.c)
	 * and their numbers, and the first line. */
	static char text[12 * 1024];
	struct weft__out o = { .fd = STDERR_FILENO,
			       .size = sizeof(text),
			       .buf = text };
	char kept[32], limit[32];
	print_duration(kept, sizeof(kept), st->ns);
	print_duration(limit, sizeof(limit), threshold);
	flockfile(stderr);
	weft__out_put(&o,
		      "weft: task %" PRIu64 " \"%s\" has kept worker %d for "
		      "%s without yielding (stall threshold %s)%s\n",
		      st->task_id, st->name, st->worker, kept, limit,
		      st->nframes ? ", seen at:" : "");
	for (int i = 0; i < st->nframes; i++)
		weft__out_put(&o, "  #%d %s\n", i,
			      weft__symbols_name(syms,
						 (uintptr_t)st->frames[i]));
	if (st->more_frames)
		weft__out_put(&o, "  ... and %d more frames\n",
			      st->more_frames);
	weft__out_flush(&o); /* an error: nobody to tell */
	funlockfile(stderr);
}

/* Whether the rate limit lets one more report through now. */
static bool rate_ok(struct weft__stall_watch *s, int64_t now)
{
	if (now - s->window_start >= WEFT_SEC) {
		s->window_start = now;
		s->in_window = 0;
	}
	return s->in_window++ < REPORTS_PER_SECOND;
}

void (*weft__stall_before_report)(void);

/* t kept worker i from the look that counted ticks on. */
static void report(struct weft_runtime *rt, int i, struct weft_task *t,
		   uint64_t ticks, int64_t ns, int64_t now)
{
	struct weft__stall_watch *s = &rt->monitor.stall;
	struct weft_worker *w = &rt->workers[i];
	weft__stat_add(&s->reports, 1);
	if (!rate_ok(s, now))
		return;
	if (__builtin_expect(weft__stall_before_report != NULL, 0))
		weft__stall_before_report();
	if (!weft__task_get(t))
		return;
	/* The reference keeps t's struct whose it is now, but t may have
	 * ended since the look and its struct gone to a task spawned
	 * meanwhile, which the report would name. Only if the worker still
	 * runs t, with no pick since (ticks), is it the task that stalled; a
	 * stretch that ended just now goes unreported (counted above).
	 * Relaxed: values compared, not data read through; the reference
	 * orders what we read of t. A heuristic, not a proof: the worker
	 * stores ticks, then current, both relaxed, so a reading of current
	 * newer than that of ticks (AArch64 reorders either pair) would pass
	 * a task respawned into t's struct and picked here since, and name
	 * it. */
	if (__atomic_load_n(&w->current, __ATOMIC_RELAXED) != t ||
	    atomic_load_explicit(&w->ticks, memory_order_relaxed) != ticks) {
		weft__task_put(t);
		return;
	}
	struct weft__symbols *syms = weft__symbols_load();
	struct weft_stall st = {
		.task_id = t->id, .name = t->name, .worker = i, .ns = ns
	};
	st.nframes = capture_frames(w, t, syms, &st.more_frames);
	st.frames = capture.frames;
	if (s->on_stall)
		s->on_stall(&st, s->arg);
	else
		print_stall(&st, s->threshold, syms);
	weft__symbols_free(syms);
	weft__task_put(t);
}

void weft__stall_check(struct weft_runtime *rt)
{
	struct weft__stall_watch *s = &rt->monitor.stall;
	if (!s->threshold)
		return;
	int64_t now = weft_now();
	for (int i = 0; i < rt->nworkers; i++) {
		struct weft_worker *w = &rt->workers[i];
		struct weft__stall_look *l = &s->looks[i];
		/* Relaxed: two readings compared across looks, a heuristic;
		 * report re-checks under a reference. */
		struct weft_task *t =
			__atomic_load_n(&w->current, __ATOMIC_RELAXED);
		uint64_t ticks =
			atomic_load_explicit(&w->ticks, memory_order_relaxed);
		if (!t || t != l->task || ticks != l->ticks) {
			*l = (struct weft__stall_look){ ticks, t, now, false };
			continue;
		}
		if (!l->reported && now - l->since >= s->threshold) {
			l->reported = true;
			report(rt, i, t, ticks, now - l->since, now);
		}
	}
}
