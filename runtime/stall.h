/*
 * Stall reports: the monitor notices a task that keeps its worker longer
 * than the threshold without parking or yielding (see weft/dump.h).
 *
 * A worker is stalled while its tick count (one per pick) stays put and it
 * runs the same task. The monitor looks at least every half threshold
 * while stall reports are on, armed or not. A stall is counted from the
 * first look that saw it, up to half a threshold after it began, and
 * reported at the first look a threshold after that, up to half a
 * threshold later again: between one threshold and two after it began.
 */
#ifndef WEFT_RUNTIME_STALL_H
#define WEFT_RUNTIME_STALL_H

#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "weft/dump.h"
#include "weft/task.h"

struct weft_runtime;
struct weft_worker;

/* What the monitor last saw of one worker. */
struct weft__stall_look {
	uint64_t ticks;
	const struct weft_task *task;
	int64_t since; /* weft_now() when it first saw them so */
	bool reported;
};

struct weft__stall_watch {
	int64_t threshold; /* 0: off */
	void (*on_stall)(const struct weft_stall *s, void *arg);
	void *arg;
	_Atomic uint64_t reports;       /* for weft_metrics; monitor only */
	int64_t window_start;           /* the rate limit's second */
	int in_window;                  /* reports in it */
	struct weft__stall_look *looks; /* one per worker */
};

/* From cfg and $WEFT_STALL_MS: the threshold (0 off; else at least a
 * millisecond, what a lower one counts as), or -EINVAL. */
int64_t weft__stall_config(const struct weft_config *cfg);

/* Sets up rt's watch (threshold 0: off; also off with one worker, where
 * no monitor watches) and, when on, takes SIGURG for the frames if it is
 * free and not dump_signal (the runtime's, which has it then). Returns 0
 * or -ENOMEM. */
int weft__stall_start(struct weft_runtime *rt, int64_t threshold,
		      const struct weft_config *cfg, int dump_signal);
/* On a worker's thread, before it runs a task: unblocks SIGURG if the
 * watch took it. A worker inherits weft_run's caller's signal mask, and a
 * program that blocked SIGURG there (leaving it to a sigwait thread, say)
 * would get every report without frames, each after the capture's wait. */
void weft__stall_worker_init(void);
/* On a worker's thread, before it stops being one (weft__self_set(NULL)):
 * blocks SIGURG again, and sends on one the handler left owed. A SIGURG
 * of the program's that came to the thread after would find no worker,
 * and be lost (test_observe stall_keeps_unwaited_program_sigurg); blocked,
 * it stays pending for weft__stall_stop. */
void weft__stall_worker_exit(struct weft_worker *w);
/* On a worker's thread, at a pick, while w->urg_masked (the handler
 * passed a SIGURG of the program's on, and blocked SIGURG here: stall.c's
 * pass_on), and before a park while w->urg_owed: sends on a SIGURG the
 * handler left owed, if any, and returns; else unblocks SIGURG again if
 * none is pending, or sends that one on and tries again at a pick 10 ms
 * later. */
void weft__stall_unmask(struct weft_worker *w);
/* Around the pthread_create of a thread of weft's that may run on a
 * worker (the blocking pool's, a dump's): while the capture passes the
 * program's SIGURGs on, blocks SIGURG in the calling thread, so that the
 * new one starts with it blocked, as weft_run's caller has it, not with a
 * worker's mask; returns the mask to give back to _restore. */
sigset_t weft__stall_thread_block(void);
void weft__stall_thread_restore(const sigset_t *old);
/* Ends the watch; gives SIGURG back its action from before, unless the
 * program replaced weft's handler meanwhile (its own then stays). */
void weft__stall_stop(struct weft_runtime *rt);

/* How long the monitor may sleep at most: -1 (no limit) when off. */
long weft__stall_period(struct weft_runtime *rt);

/* One look at every worker; reports new stalls. Monitor thread only. */
void weft__stall_check(struct weft_runtime *rt);

/* Internal test interface, not API: if set, called by the monitor between
 * its look at a stalled worker and the report's reference to the task, so
 * that a test can end the task and respawn its struct there. */
extern void (*weft__stall_before_report)(void);

#endif
