/*
 * The dump on a signal (cfg.dump_signal, WEFT_DUMP_SIGNAL): the handler
 * only posts a semaphore, which is async-signal-safe; a thread of ours,
 * weft-dump, waits on it and writes weft_dump() to stderr. So the dump
 * runs as from any thread, and the interrupted thread goes on at once.
 */
#ifndef WEFT_RUNTIME_DUMP_SIGNAL_H
#define WEFT_RUNTIME_DUMP_SIGNAL_H

#include "weft/task.h"

/* The signal cfg or the environment asks for, 0 for none; -EINVAL for one
 * a handler may not take (weft__sig_catchable), one glibc keeps for itself
 * (32 and 33: SIGRTMIN is 34), or a $WEFT_DUMP_SIGNAL that names none
 * ("SIGUSR1", "USR1", "10", "SIGRTMIN+n", "SIGRTMAX-n", counted from
 * glibc's SIGRTMIN and SIGRTMAX). */
int weft__dump_signal_config(const struct weft_config *cfg);

/* Installs the handler for signo (0: does nothing) and starts the thread.
 * Returns 0 or -errno: -EBUSY if a weft_signal registration holds signo,
 * -EINVAL if sigaction refuses it. */
int weft__dump_signal_start(int signo);
/* Restores the handler there was, unless the program replaced weft's
 * meanwhile (its own then stays), and stops the thread. */
void weft__dump_signal_stop(void);

/* weft_dump from plain threads (dump.c): let in once the runtime is up
 * (weft__dump_signal_start), then shut out as weft_run ends, waiting for
 * the dumps under way (weft__dump_signal_stop), before the runtime is
 * freed. A plain thread's dump outside the two says -ESRCH. */
void weft__dump_open(void);
void weft__dump_close(void);

/* Internal test interface, not API: if set, called by a plain thread's
 * weft_dump between its look at the door and its load of the runtime, so
 * that a test can end the run and start another there. */
extern void (*weft__dump_enter_hook)(void);

#endif
