/* Which part of weft handles a signal: see sigclaim.h. */
#include <errno.h>
#include <pthread.h>
#include <signal.h>

#include "sigclaim.h"

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static enum weft__sig_owner owners[NSIG]; /* under mu */

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
	if (owners[signo] == owner)
		owners[signo] = WEFT__SIG_NOBODY;
	pthread_mutex_unlock(&mu);
}
