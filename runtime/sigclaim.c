/* Which part of weft handles a signal: see sigclaim.h. */
#include <errno.h>
#include <pthread.h>
#include <signal.h>

#include "sigclaim.h"

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static enum weft__sig_owner owners[NSIG]; /* under mu */
static bool pipe_quiet;                   /* under mu: weft_run runs */

/* SIGPIPE's action while weft_run runs: a write to a pipe without a
 * reader then fails with EPIPE, as under SIG_IGN, and the process lives.
 * A handler rather than SIG_IGN: exec(2) resets it, so a program the
 * tasks start does not inherit SIGPIPE ignored (the trap Python's
 * subprocess undoes with restore_signals), and it is told from a SIG_IGN
 * the program set meanwhile, which is left alone. */
static void on_sigpipe(int signo)
{
	(void)signo;
}

/* Moves SIGPIPE's action from SIG_DFL to on_sigpipe while pipe_quiet,
 * and from on_sigpipe back to SIG_DFL after. Any other action is the
 * program's, or one of weft's owners' (which puts back what it found when
 * it lets go, and then this runs again): left alone. mu held; only
 * against weft's own changes, as a program's sigaction on another thread
 * takes no lock. */
static void settle_pipe(void)
{
	struct sigaction now, sa = { .sa_flags = SA_RESTART | SA_ONSTACK };

	if (owners[SIGPIPE] != WEFT__SIG_NOBODY ||
	    sigaction(SIGPIPE, NULL, &now) || (now.sa_flags & SA_SIGINFO))
		return;
	if (pipe_quiet && now.sa_handler == SIG_DFL)
		sa.sa_handler = on_sigpipe;
	else if (!pipe_quiet && now.sa_handler == on_sigpipe)
		sa.sa_handler = SIG_DFL;
	else
		return;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGPIPE, &sa, NULL);
}

void weft__sig_quiet_pipe(bool on)
{
	pthread_mutex_lock(&mu);
	pipe_quiet = on;
	settle_pipe();
	pthread_mutex_unlock(&mu);
}

bool weft__sig_catchable(int signo)
{
	switch (signo) {
	case SIGKILL:
	case SIGSTOP:
	case SIGSEGV:
	case SIGBUS:
	case SIGFPE:
	case SIGILL:
	case SIGTRAP:
	case SIGSYS:
		return false;
	default:
		return signo > 0 && signo < NSIG;
	}
}

int weft__sig_claim(int signo, enum weft__sig_owner owner)
{
	int r = 0;

	if (!weft__sig_catchable(signo))
		return -EINVAL;
	pthread_mutex_lock(&mu);
	if (owners[signo] != WEFT__SIG_NOBODY)
		r = -EBUSY;
	else
		owners[signo] = owner;
	pthread_mutex_unlock(&mu);
	return r;
}

void weft__sig_release(int signo, enum weft__sig_owner owner)
{
	pthread_mutex_lock(&mu);
	if (owners[signo] == owner) {
		owners[signo] = WEFT__SIG_NOBODY;
		/* The owner put back what it found, which may be out of
		 * date: on_sigpipe after weft_run returned, or SIG_DFL
		 * while one runs. */
		if (signo == SIGPIPE)
			settle_pipe();
	}
	pthread_mutex_unlock(&mu);
}

void weft__sig_put_back(int signo, const struct sigaction *old,
			void (*handler)(int),
			void (*info_handler)(int, siginfo_t *, void *))
{
	struct sigaction now;

	if (sigaction(signo, NULL, &now))
		return;
	if ((now.sa_flags & SA_SIGINFO)
		    ? info_handler && now.sa_sigaction == info_handler
		    : handler && now.sa_handler == handler)
		sigaction(signo, old, NULL);
}
