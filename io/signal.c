/*
 * Signals as a blocking call (see weft/signal.h): a handler that counts and
 * pokes an eventfd, and waiters that read the eventfd through weft_readv.
 *
 * One eventfd serves every waiter, so they take turns (leader and
 * followers): one waiter, the leader, parks in the read; the others wait on
 * a condition. Whenever the read returns, the leader wakes them all, and
 * each looks at the delivery counts of its own signals; one that finds
 * nothing becomes the next leader. A leader that is cancelled or times out
 * hands over the same way.
 *
 * Invariants:
 *  - delivered[n] only grows. The handler adds to it before it writes the
 *    eventfd, and a waiter compares it with its registration's seen[n]
 *    after the read returns or after the condition wakes it, so a delivery
 *    is never missed: either the waiter sees the new count, or the eventfd
 *    is non-zero and the next leader's read returns at once.
 *  - At most one leader: leader is set and cleared under waiters.lock. While
 *    some waiter looks at the counts and finds nothing, either it becomes
 *    the leader or there is one, so the eventfd is always being read while
 *    anyone waits.
 *  - seen[] of a registration changes under waiters.lock only, so each
 *    delivery wakes one waiter of a registration.
 *  - A registration installs the handler for a signal when it is the first
 *    open one with that signal (refs 0 -> 1), claiming the signal from the
 *    rest of weft (runtime/sigclaim.h), and the old action comes back at
 *    1 -> 0; registry.mu guards refs, old and the eventfd's creation.
 *    The eventfd is made before any handler is installed and never closed
 *    (a handler may run on another thread at any time).
 *  - forked_at[n] is delivered[n] as this process was forked from its
 *    parent (0 in a process not forked since a registration was opened):
 *    deliveries below it were the parent's, so a registration's seen[n]
 *    counts from at least there.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/uio.h>
#include <unistd.h>

#include "weft/io.h"
#include "weft/signal.h"
#include "weft/sync.h"
#include "weft/task.h"
#include "runtime/sigclaim.h"
#include "runtime/wait.h"

static _Atomic uint64_t delivered[WEFT_SIGNAL_MAX];
static _Atomic int event_fd = -1;
/* Written by fork_child alone, while the child has one thread; read under
 * waiters.lock by threads started after it. */
static uint64_t forked_at[WEFT_SIGNAL_MAX];

static struct {
	pthread_mutex_t mu;
	int refs[WEFT_SIGNAL_MAX];
	struct sigaction old[WEFT_SIGNAL_MAX];
	/* The addresses of the open registrations, compared and never
	 * followed: one never closed (on a task's stack that returned)
	 * leaves nothing dangling, and a struct is never read before its
	 * open has written it. */
	const struct weft_signal **open;
	size_t nopen, capopen;
} registry = { .mu = PTHREAD_MUTEX_INITIALIZER };

static struct {
	struct weft_lock lock;
	struct weft_cond changed; /* the leader's read returned */
	bool leader;
} waiters = { WEFT_LOCK_INIT, WEFT_COND_INIT(&waiters.lock), false };

static void on_signal(int signo)
{
	int saved = errno;
	uint64_t one = 1;

	atomic_fetch_add(&delivered[signo], 1);
	/* Cannot block: the counter would have to reach 2^64 - 2. */
	if (write(atomic_load(&event_fd), &one, sizeof(one)) < 0)
		(void)0;
	errno = saved;
}

static bool member(uint64_t set, int signo)
{
	return set & WEFT_SIGNAL(signo);
}

/* Checks set; returns 0 or -EINVAL. */
static int check_set(uint64_t set)
{
	if (!set)
		return -EINVAL;
	for (int signo = 1; signo < WEFT_SIGNAL_MAX; signo++)
		if (member(set, signo) && !weft__sig_catchable(signo))
			return -EINVAL;
	return 0;
}

/* Under registry.mu: drops one reference to each signal of set below
 * upto, restoring the old action at the last. */
static void release_signals(uint64_t set, int upto)
{
	for (int signo = 1; signo < upto; signo++)
		if (member(set, signo) && --registry.refs[signo] == 0) {
			weft__sig_put_back(signo, &registry.old[signo],
					   on_signal, NULL);
			weft__sig_release(signo, WEFT__SIG_WAIT);
		}
}

/* Under registry.mu: the first registration of signo installs the
 * handler, if no other part of weft handles signo. Returns 0 or -errno. */
static int hold_signal(int signo)
{
	struct sigaction act = { .sa_handler = on_signal,
				 .sa_flags = SA_RESTART | SA_ONSTACK };
	int r;

	if (registry.refs[signo]++)
		return 0;
	/* One handler at a time per thread; on a worker's alternate stack,
	 * as the task's may be near its end. */
	sigfillset(&act.sa_mask);
	if (!(r = weft__sig_claim(signo, WEFT__SIG_WAIT)) &&
	    sigaction(signo, &act, &registry.old[signo])) {
		r = -errno;
		weft__sig_release(signo, WEFT__SIG_WAIT);
	}
	if (r)
		registry.refs[signo]--;
	return r;
}

/* Under registry.mu: s's index among the open registrations, or nopen. */
static size_t find_open(const struct weft_signal *s)
{
	size_t i = 0;

	while (i < registry.nopen && registry.open[i] != s)
		i++;
	return i;
}

static bool is_open(const struct weft_signal *s)
{
	return find_open(s) < registry.nopen;
}

/* Under registry.mu: room for one more open registration. 0 or -ENOMEM. */
static int reserve_open(void)
{
	size_t cap = registry.capopen ? registry.capopen * 2 : 8;
	const struct weft_signal **a;

	if (registry.nopen < registry.capopen)
		return 0;
	if (!(a = realloc(registry.open, cap * sizeof(*a))))
		return -ENOMEM;
	registry.open = a;
	registry.capopen = cap;
	return 0;
}

/* Under registry.mu: s, open, is closed. */
static void drop_open(const struct weft_signal *s)
{
	registry.open[find_open(s)] = registry.open[--registry.nopen];
	if (!registry.nopen) {
		free(registry.open);
		registry.open = NULL;
		registry.capopen = 0;
	}
}

/*
 * fork(2). The eventfd is one file for parent and child: a waiter in
 * either would read the other's wake-ups, and its own process's delivery
 * would be lost (a pre-fork server's children each waiting for SIGTERM,
 * or a master waiting for SIGCHLD, once any registration was opened
 * before the fork). The child gets an eventfd of its own at the same
 * number (a handler may run there at any time), and waiters as new: the
 * leader and every waiter were threads or tasks of the parent.
 *
 * The child starts with no delivery pending, as the kernel empties a
 * child's pending signals: what the parent had not taken yet (a master's
 * SIGHUP, forking workers before it waits for it) stays the parent's.
 * The child counts from delivered[] as it was at the fork (forked_at).
 * The forking thread blocks every signal across the fork, so the child's
 * first deliveries wait in the kernel until that count is read, and come
 * after it rather than into it. (fork_mask, under registry.mu from
 * prepare to parent or child, is the forking thread's.)
 */
static sigset_t fork_mask;

static void fork_prepare(void)
{
	sigset_t all;

	pthread_mutex_lock(&registry.mu);
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &fork_mask);
}

static void fork_parent(void)
{
	pthread_sigmask(SIG_SETMASK, &fork_mask, NULL);
	pthread_mutex_unlock(&registry.mu);
}

static void fork_child(void)
{
	int old = atomic_load(&event_fd), fd;

	waiters.lock = (struct weft_lock)WEFT_LOCK_INIT;
	waiters.changed = (struct weft_cond)WEFT_COND_INIT(&waiters.lock);
	waiters.leader = false;
	for (int signo = 1; signo < WEFT_SIGNAL_MAX; signo++)
		forked_at[signo] = atomic_load(&delivered[signo]);
	if (old >= 0 && (fd = eventfd(0, EFD_CLOEXEC)) >= 0) {
		dup3(fd, old, O_CLOEXEC);
		close(fd);
	}
	pthread_sigmask(SIG_SETMASK, &fork_mask, NULL);
	pthread_mutex_unlock(&registry.mu); /* fork_prepare's */
}

static pthread_once_t fork_once = PTHREAD_ONCE_INIT;

static void at_fork_once(void)
{
	pthread_atfork(fork_prepare, fork_parent, fork_child);
}

/* Under registry.mu. Returns 0 or -errno. */
static int make_eventfd(void)
{
	int fd;

	if (atomic_load(&event_fd) >= 0)
		return 0;
	if ((fd = eventfd(0, EFD_CLOEXEC)) < 0)
		return -errno;
	atomic_store(&event_fd, fd);
	return 0;
}

int weft_signal_open(struct weft_signal *s, uint64_t set)
{
	int r, signo;

	if (!s || check_set(set))
		return -EINVAL;
	/* Not under registry.mu, which fork_prepare takes. */
	pthread_once(&fork_once, at_fork_once);
	pthread_mutex_lock(&registry.mu);
	/* Opened again, its references would be counted twice and its
	 * signals never given back. */
	if (is_open(s)) {
		pthread_mutex_unlock(&registry.mu);
		return -EBUSY;
	}
	memset(s, 0, sizeof(*s));
	s->set = set;
	if (!(r = reserve_open()))
		r = make_eventfd();
	for (signo = 1; !r && signo < WEFT_SIGNAL_MAX; signo++)
		if (member(set, signo) && (r = hold_signal(signo)))
			release_signals(set, signo);
	/* What was delivered before now is not for s. */
	for (signo = 1; !r && signo < WEFT_SIGNAL_MAX; signo++)
		s->seen[signo] = atomic_load(&delivered[signo]);
	if (!r)
		registry.open[registry.nopen++] = s;
	pthread_mutex_unlock(&registry.mu);
	return r;
}

int weft_signal_close(struct weft_signal *s)
{
	if (!s)
		return -EINVAL;
	pthread_mutex_lock(&registry.mu);
	if (!is_open(s)) {
		pthread_mutex_unlock(&registry.mu);
		return -EINVAL;
	}
	release_signals(s->set, WEFT_SIGNAL_MAX);
	drop_open(s);
	pthread_mutex_unlock(&registry.mu);
	return 0;
}

/* Under waiters.lock: a signal of s delivered since s last took one, or 0. */
static int take_pending(struct weft_signal *s)
{
	for (int signo = 1; signo < WEFT_SIGNAL_MAX; signo++) {
		uint64_t n;

		if (!member(s->set, signo))
			continue;
		/* Opened before a fork: the parent's deliveries are not ours. */
		if (s->seen[signo] < forked_at[signo])
			s->seen[signo] = forked_at[signo];
		n = atomic_load(&delivered[signo]);
		if (n != s->seen[signo]) {
			s->seen[signo] = n;
			return signo;
		}
	}
	return 0;
}

/* Takes waiters.lock whatever the caller's cancellation or deadline: a
 * leader must give up its role even when its read was cancelled, and a
 * delivery already there is taken even by a cancelled waiter (below).
 * Nobody holds the lock while waiting for a signal. */
static void lock_shielded(void)
{
	struct weft_shield sh;
	bool shielded = weft_shield_enter(&sh) == 0; /* not on a thread */

	int r = weft_lock_acquire(&waiters.lock);
	(void)r; /* shielded, or a plain thread: it cannot fail */
	if (shielded)
		weft_shield_leave(&sh);
}

/* The leader's turn: one read of the eventfd, waiters.lock released around
 * it. Returns 0 or -errno (-ECANCELED, -ETIMEDOUT). */
static int lead(void)
{
	uint64_t count;
	struct iovec iov = { &count, sizeof(count) };
	ssize_t n;

	waiters.leader = true;
	weft_lock_release(&waiters.lock);
	n = weft_readv(atomic_load(&event_fd), &iov, 1);
	lock_shielded();
	waiters.leader = false;
	weft_cond_notify_all(&waiters.changed);
	if (n == -EINTR || n == -EAGAIN)
		return 0; /* look again */
	return n < 0 ? (int)n : 0;
}

static int signal_wait(struct weft_signal *s, int *signo)
{
	int r = 0, got = 0;

	/* Shielded: as every call that can complete without waiting
	 * (weft/sync.h), a wait with a delivery there takes it even in a
	 * cancelled task or past its deadline. A cancellable acquire failed
	 * whenever another waiter held the lock that moment. */
	lock_shielded();
	while (!r && !(got = take_pending(s)))
		r = waiters.leader ? weft_cond_wait(&waiters.changed) : lead();
	weft_lock_release(&waiters.lock);
	if (got)
		*signo = got;
	return got ? 0 : r;
}

int weft_signal_wait(struct weft_signal *s, int *signo)
{
	if (!s || !signo)
		return -EINVAL;
	pthread_mutex_lock(&registry.mu);
	bool open = is_open(s);
	pthread_mutex_unlock(&registry.mu);
	if (!open)
		return -EINVAL;
	/* weft_dump says "signal wait", not the eventfd or cond inside. */
	bool named = weft__doing_begin("signal wait");
	int r = signal_wait(s, signo);

	weft__doing_end(named);
	return r;
}
