/* Stack overflow reports: see overflow.h. Async-signal-safe throughout. */
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "overflow.h"
#include "page.h"
#include "task.h"
#include "self.h"
#include "sigclaim.h"
#include "worker.h"

static struct sigaction previous;

static size_t put_str(char *buf, size_t at, const char *s)
{
	while (*s && at < 255)
		buf[at++] = *s++;
	return at;
}

static size_t put_num(char *buf, size_t at, unsigned long long v)
{
	char tmp[24];
	int n = 0;
	do
		tmp[n++] = (char)('0' + v % 10);
	while ((v /= 10) && n < 24);
	while (n && at < 255)
		buf[at++] = tmp[--n];
	return at;
}

/* Whether addr lies in the guard below t's stack (t may be NULL). */
static bool in_guard(const struct weft_task *t, const char *addr)
{
	size_t guard = t && t->stack.guard ? t->stack.guard : weft__page_size();
	return t && t->stack.base && addr < t->stack.base &&
	       addr >= t->stack.base - guard;
}

/* The task whose stack overflowed at addr, or NULL: the running one, or
 * the one a direct switch is saving (current names the next one by then:
 * park.c's switch_direct), which overflows while its registers go onto
 * its stack. */
static struct weft_task *overflowed(const char *addr)
{
	struct weft_worker *w = weft__self();

	if (!w)
		return NULL;
	if (in_guard(w->current, addr))
		return w->current;
	return in_guard(w->switching_out, addr) ? w->switching_out : NULL;
}

static void on_segv(int sig, siginfo_t *si, void *uc)
{
	struct weft_task *t = overflowed(si->si_addr);
	if (t) {
		char msg[256];
		size_t n = put_str(msg, 0, "weft: task '");
		n = put_str(msg, n, t->name);
		n = put_str(msg, n, "' (id ");
		n = put_num(msg, n, t->id);
		n = put_str(msg, n, ") overflowed its ");
		n = put_num(msg, n, t->stack.size);
		n = put_str(msg, n, "-byte stack\n");
		if (write(STDERR_FILENO, msg, n) < 0)
			_exit(134);
		signal(SIGABRT, SIG_DFL);
		abort();
	}
	/* Not ours: the previous handler's. One that may recover (a JIT's,
	 * a collector's write barrier) is called, with its mask, and this one
	 * stays: put back for good, it would leave every later overflow
	 * unreported. The default action (or an ignored SIGSEGV, which the
	 * kernel forces to it), or a one-shot handler (SA_RESETHAND: a crash
	 * reporter's, which logs and lets the fault happen again to die of
	 * it), is put back and meets the fault again on return, as the
	 * kernel would have delivered it. */
	bool callable = previous.sa_handler != SIG_DFL &&
			previous.sa_handler != SIG_IGN &&
			!(previous.sa_flags & SA_RESETHAND);
	if (!callable) {
		/* A sent SIGSEGV the program ignores: ignored here, as the
		 * kernel would have. Put back for that, SIG_IGN would stay
		 * for the rest of the run, and a later overflow (a fault,
		 * which the kernel does not let be ignored) kill the process
		 * unreported. */
		if (si->si_code <= 0 && previous.sa_handler == SIG_IGN)
			return;
		sigaction(SIGSEGV, &previous, NULL);
		/* A sent SIGSEGV (kill, raise: si_code <= 0) is not met
		 * again on return, as a fault is: send it again, pending
		 * while this handler blocks it, for the action put back. */
		if (si->si_code <= 0)
			raise(sig);
		return;
	}
	sigset_t old;
	pthread_sigmask(SIG_BLOCK, &previous.sa_mask, &old);
	if (previous.sa_flags & SA_SIGINFO)
		previous.sa_sigaction(sig, si, uc);
	else
		previous.sa_handler(sig);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
}

void weft__overflow_install(void)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = on_segv;
	sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGSEGV, &sa, &previous);
}

/* Only over weft's own handler: one the program installed during the run
 * is the program's to keep, and the action it replaced (previous, or
 * already put back by on_segv) is not ours to bring back. */
void weft__overflow_remove(void)
{
	weft__sig_put_back(SIGSEGV, &previous, NULL, on_segv);
}
