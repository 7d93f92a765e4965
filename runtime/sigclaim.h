/*
 * Which part of weft handles a signal: weft_signal's registrations
 * (io/signal.c), the dump on a signal (dump_signal.c) or the stall
 * reports' frame capture (stall.c, SIGURG). Each installs its handler over
 * what was there and puts that back when it is done, so two of them on
 * one signal would undo each other: one's restore would leave the other's
 * registration with the default action (death, for SIGUSR1), or with a
 * handler posting to a semaphore destroyed. So a signal has at most one
 * owner in weft, and a second claim is refused with -EBUSY.
 */
#ifndef WEFT_RUNTIME_SIGCLAIM_H
#define WEFT_RUNTIME_SIGCLAIM_H

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

/* Whether a handler may take signo and return: not SIGKILL or SIGSTOP,
 * which cannot be caught, nor a fault's signal (SIGSEGV, SIGBUS, SIGFPE,
 * SIGILL, SIGTRAP, SIGSYS), after which the faulting instruction would
 * run again, for ever. */
bool weft__sig_catchable(int signo);

#endif
