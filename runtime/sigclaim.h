/*
 * Which part of weft handles a signal: weft_signal's registrations
 * (io/signal.c), the dump on a signal (dump_signal.c) or the stall
 * reports' frame capture (stall.c, SIGURG). Each installs its handler over
 * what was there and puts that back when it is done, so two of them on
 * one signal would undo each other: one's restore would leave the other's
 * registration with the default action (death, for SIGUSR1), or with a
 * handler posting to a semaphore destroyed. So a signal has at most one
 * owner in weft, and a second claim is refused with -EBUSY.
 *
 * SIGPIPE is not claimed while weft_run runs (weft__sig_quiet_pipe): a
 * registration or the dump may still take it, installing over and putting
 * back weft_run's action, and when one lets go of SIGPIPE after weft_run
 * has begun or ended, the action it put back is brought up to date.
 */
#ifndef WEFT_RUNTIME_SIGCLAIM_H
#define WEFT_RUNTIME_SIGCLAIM_H

#include <signal.h>
#include <stdbool.h>

enum weft__sig_owner {
	WEFT__SIG_NOBODY,
	WEFT__SIG_WAIT,  /* weft_signal registrations (counted there) */
	WEFT__SIG_DUMP,  /* cfg.dump_signal */
	WEFT__SIG_STALL, /* SIGURG for stall reports */
};

/* Claims signo for owner. Returns 0, -EINVAL (not a signal a handler may
 * take: see weft__sig_catchable) or -EBUSY (another owner has it). */
int weft__sig_claim(int signo, enum weft__sig_owner owner);
/* Gives signo back; owner must hold it. */
void weft__sig_release(int signo, enum weft__sig_owner owner);

/* weft_run begins (on) or has ended (off): while on, a SIGPIPE whose
 * action is SIG_DFL gets a handler that does nothing, so a write to a
 * pipe without a reader fails with EPIPE and does not kill the process;
 * when off, that handler, if still there, gives way to SIG_DFL again. An
 * action the program set is left alone (see sigclaim.c). */
void weft__sig_quiet_pipe(bool on);

/* Whether a handler may take signo and return: not SIGKILL or SIGSTOP,
 * which cannot be caught, nor a fault's signal (SIGSEGV, SIGBUS, SIGFPE,
 * SIGILL, SIGTRAP, SIGSYS), after which the faulting instruction would
 * run again, for ever. */
bool weft__sig_catchable(int signo);

/* Puts old back as signo's action if weft's handler is still there:
 * handler (without SA_SIGINFO) or info_handler (with it), the other NULL.
 * A handler the program installed meanwhile is the program's to keep. */
void weft__sig_put_back(int signo, const struct sigaction *old,
			void (*handler)(int),
			void (*info_handler)(int, siginfo_t *, void *));

#endif
