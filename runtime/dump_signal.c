/* The dump on a signal: see dump_signal.h. */
#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <semaphore.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "weft/dump.h"
#include "dump_signal.h"
#include "sigclaim.h"

static struct {
	int signo; /* 0: not installed */
	sem_t sem;
	pthread_t thread;
	atomic_bool stop;
	struct sigaction old;
} ds;

/* The kernel's first real-time signals, below SIGRTMIN (34 under glibc):
 * glibc keeps them for itself (thread cancellation, setxid), and its
 * sigaction refuses them. */
static bool reserved(int signo)
{
	return signo >= __SIGRTMIN && signo < SIGRTMIN;
}

/* "RTMIN", "RTMIN+n", "RTMAX" or "RTMAX-n", counted as kill(1) and glibc
 * count them: from SIGRTMIN and SIGRTMAX, the real-time signals glibc
 * leaves the program. 0 if s is none of these, or falls outside them. */
static int parse_realtime(const char *s)
{
	bool min = !strncmp(s, "RTMIN", 5);
	long n = 0;
	char *end;

	if (!min && strncmp(s, "RTMAX", 5))
		return 0;
	s += 5;
	if (*s) {
		if (*s != (min ? '+' : '-') || !isdigit((unsigned char)s[1]))
			return 0;
		errno = 0;
		n = strtol(s + 1, &end, 10);
		if (errno || *end || n > SIGRTMAX - SIGRTMIN)
			return 0;
	}
	return min ? SIGRTMIN + (int)n : SIGRTMAX - (int)n;
}

/* "SIGUSR1", "USR1", "10", "SIGRTMIN+2", "RTMAX". 0 if it names no
 * signal. */
static int parse_signal(const char *s)
{
	char *end;
	long n = strtol(s, &end, 10);
	if (*s && !*end)
		return n > 0 && n < NSIG ? (int)n : 0;
	if (!strncmp(s, "SIG", 3))
		s += 3;
	if (!strncmp(s, "RT", 2))
		return parse_realtime(s);
	for (int i = 1; i < NSIG; i++) {
		const char *name = sigabbrev_np(i);
		if (name && !strcmp(name, s))
			return i;
	}
	return 0;
}

int weft__dump_signal_config(const struct weft_config *cfg)
{
	int signo = cfg ? cfg->dump_signal : 0;
	const char *env = getenv("WEFT_DUMP_SIGNAL");
	if (!signo && env && *env && !(signo = parse_signal(env)))
		return -EINVAL;
	if (signo && (!weft__sig_catchable(signo) || reserved(signo)))
		return -EINVAL;
	return signo;
}

static void on_signal(int signo)
{
	int saved = errno;
	sem_post(&ds.sem);
	errno = saved;
}

static void *dump_main(void *unused)
{
	pthread_setname_np(pthread_self(), "weft-dump");
	for (;;) {
		while (sem_wait(&ds.sem) && errno == EINTR)
			;
		if (atomic_load(&ds.stop))
			return NULL;
		weft_dump(STDERR_FILENO);
	}
}

/* Stops the thread (it is waiting on the semaphore) and frees both. */
static void stop_thread(void)
{
	atomic_store(&ds.stop, true);
	sem_post(&ds.sem);
	pthread_join(ds.thread, NULL);
	sem_destroy(&ds.sem);
}

int weft__dump_signal_start(int signo)
{
	/* On a worker's alternate stack: the task's may be near its end. */
	struct sigaction sa = { .sa_handler = on_signal,
				.sa_flags = SA_RESTART | SA_ONSTACK };
	int r;

	weft__dump_open();
	if (!signo)
		return 0;
	if ((r = weft__sig_claim(signo, WEFT__SIG_DUMP)))
		return r;
	sem_init(&ds.sem, 0, 0);
	atomic_store(&ds.stop, false);
	if ((r = -pthread_create(&ds.thread, NULL, dump_main, NULL))) {
		sem_destroy(&ds.sem);
		weft__sig_release(signo, WEFT__SIG_DUMP);
		return r;
	}
	sigemptyset(&sa.sa_mask);
	if (sigaction(signo, &sa, &ds.old)) {
		r = -errno;
		stop_thread();
		weft__sig_release(signo, WEFT__SIG_DUMP);
		return r;
	}
	ds.signo = signo;
	return 0;
}

void weft__dump_signal_stop(void)
{
	weft__dump_close();
	if (!ds.signo)
		return;
	weft__sig_put_back(ds.signo, &ds.old, on_signal, NULL);
	weft__sig_release(ds.signo, WEFT__SIG_DUMP);
	ds.signo = 0;
	stop_thread();
}
