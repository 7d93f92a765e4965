/* Shared by the sync suites: an event log to assert orders on, and a wait
 * for waiters to queue up. */
#ifndef WEFT_TESTS_SYNC_TEST_UTIL_H
#define WEFT_TESTS_SYNC_TEST_UTIL_H

#include <errno.h>
#include <pthread.h>
#include <string.h>
#include <unistd.h>
#include "test_util.h"
#include "sync/waitq.h"

/* ---- an event log, asserted on afterwards ------------------------------- */

static pthread_mutex_t log_mu = PTHREAD_MUTEX_INITIALIZER;
static const char *log_ev[64];
static int log_n;

static __attribute__((unused)) void log_reset(void)
{
	log_n = 0;
}

static __attribute__((unused)) void log_add(const char *ev)
{
	pthread_mutex_lock(&log_mu);
	ck_assert_int_lt(log_n, 64);
	log_ev[log_n++] = ev;
	pthread_mutex_unlock(&log_mu);
}

static __attribute__((unused)) int log_pos(const char *ev)
{
	for (int i = 0; i < log_n; i++)
		if (!strcmp(log_ev[i], ev))
			return i;
	ck_abort_msg("event '%s' not logged", ev);
	return -1;
}

/* Waits (yielding, or sleeping on a plain thread) until q has n waiters
 * linked. */
static __attribute__((unused)) void wait_waiters(struct weft_waitq *q, int n)
{
	for (;;) {
		int k = 0;
		weft__waitq_lock(q);
		for (struct weft__waiter *w = q->head; w; w = w->next)
			k++;
		weft__waitq_unlock(q);
		if (k == n)
			return;
		if (weft_sleep(100 * WEFT_USEC) == -EPERM)
			usleep(100); /* a plain thread */
	}
}

#endif
