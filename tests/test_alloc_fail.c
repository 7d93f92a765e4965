/*
 * Allocation-failure injection: weft promises that when memory runs out a
 * call returns -ENOMEM (or another negative errno) and loses nothing: no
 * abort, no crash, no hang, no leak, no corrupted state.
 *
 * This executable defines the malloc family, mmap and pthread_create
 * (forwarding to glibc's __libc_* functions, the raw system call and
 * glibc's pthread_create), so every allocation and thread start of the
 * statically linked libweft goes through them. A countdown makes the Nth
 * of them after arming fail, once. For N = 1, 2, ... a forked child arms
 * the countdown at N and runs a scenario that touches a broad surface of
 * the API from a fresh process; every step retries an -ENOMEM or -EAGAIN
 * (one failure is injected, so a retry must succeed and must find nothing
 * lost) and checks its results; then a second, clean weft_run must work.
 * The child exits 0 if all went right, and the parent checks that it did,
 * without a signal or a timeout (alarm). The sweep ends at the first N
 * that the scenario never reached. It runs on the driver $WEFT_IO picks.
 *
 * Leaks: the wrappers keep the set of live blocks whose caller is in this
 * executable (libweft and the test; not glibc's own caches, such as a
 * thread's TLS kept with its cached stack), and each child checks that
 * its two runs leave as many as two clean runs do (the task structs'
 * pool outlives a runtime, runtime/task.c).
 *
 * Debugging: WEFT_ALLOC_FAIL_N=n runs that N only (with
 * WEFT_ALLOC_FAIL_NOFORK=1, in this process, for a debugger);
 * WEFT_ALLOC_FAIL_VERBOSE=1 says which allocation failed in every child
 * (a child that crashes always says it, with a backtrace);
 * WEFT_ALLOC_FAIL_ALL=1 fails the allocations of other
 * libraries too (glibc's getaddrinfo and libdw then crash or exit in
 * their own code).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dlfcn.h>
#include <errno.h>
#include <execinfo.h>
#include <fcntl.h>
#include <netdb.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include <liburing.h>
#include "test_util.h"
#include "test_preps.h"

/* ---- the injector ----------------------------------------------------- */

void *__libc_malloc(size_t n);
void *__libc_calloc(size_t n, size_t size);
void *__libc_realloc(void *p, size_t n);
void *__libc_memalign(size_t align, size_t n);
void __libc_free(void *p);

/* This executable's code: libweft (linked in statically) and the test. */
extern char __executable_start[], etext[];

static bool ours(const void *caller)
{
	return (const char *)caller >= __executable_start &&
	       (const char *)caller < etext;
}

/* Allocations left until the one that fails; 0: disarmed. */
static atomic_long countdown;
/* Whether the armed countdown reached its allocation, and its caller. */
static atomic_bool fired;
static void *fired_at;

/* Counts an allocation by libweft (or the test) and says whether to fail
 * it. Allocations inside other libraries are not failed: glibc's
 * getaddrinfo and libdw abort or exit on some of them, and what weft
 * sees of those is a failed call, which the failed calls of its own
 * allocations cover. */
static bool fail_all; /* $WEFT_ALLOC_FAIL_ALL: fail theirs too */

static bool fail_now(void *caller)
{
	if (!fail_all && !ours(caller))
		return false;
	long left = atomic_load(&countdown);

	while (left > 0)
		if (atomic_compare_exchange_weak(&countdown, &left, left - 1)) {
			if (left != 1)
				return false;
			fired_at = caller;
			atomic_store(&fired, true);
			return true;
		}
	return false;
}

/* The live blocks this executable's code allocated: an open-addressed set
 * under a spinlock (it must not allocate). */
#define LIVE_SLOTS (1u << 16)
#define TOMB ((uintptr_t)1)
static uintptr_t live[LIVE_SLOTS];
static long live_count;
static bool live_overflow;
static atomic_flag live_lock = ATOMIC_FLAG_INIT;
static size_t slot_of(uintptr_t p)
{
	return (size_t)((p >> 4) * 0x9e3779b97f4a7c15ull >> 48) &
	       (LIVE_SLOTS - 1);
}

static void live_locked(bool take)
{
	if (take)
		while (atomic_flag_test_and_set_explicit(&live_lock,
							 memory_order_acquire))
			;
	else
		atomic_flag_clear_explicit(&live_lock, memory_order_release);
}

static void live_add(void *p)
{
	size_t i = slot_of((uintptr_t)p);

	live_locked(true);
	for (size_t n = 0; n < LIVE_SLOTS; n++, i = (i + 1) & (LIVE_SLOTS - 1))
		if (live[i] == 0 || live[i] == TOMB) {
			live[i] = (uintptr_t)p;
			live_count++;
			live_locked(false);
			return;
		}
	live_overflow = true;
	live_locked(false);
}

/* Forgets p; returns whether it was ours. */
static bool live_del(void *p)
{
	size_t i = slot_of((uintptr_t)p);
	bool found = false;

	live_locked(true);
	for (size_t n = 0; n < LIVE_SLOTS && live[i];
	     n++, i = (i + 1) & (LIVE_SLOTS - 1))
		if (live[i] == (uintptr_t)p) {
			live[i] = TOMB;
			live_count--;
			found = true;
			break;
		}
	live_locked(false);
	return found;
}

static long live_now(void)
{
	live_locked(true);
	long n = live_overflow ? -1 : live_count;
	live_locked(false);
	return n;
}

static void *track(void *p, const void *caller)
{
	if (p && ours(caller))
		live_add(p);
	return p;
}

static void *fail_enomem(void)
{
	errno = ENOMEM;
	return NULL;
}

void *malloc(size_t n)
{
	if (fail_now(__builtin_return_address(0)))
		return fail_enomem();
	return track(__libc_malloc(n), __builtin_return_address(0));
}

void *calloc(size_t n, size_t size)
{
	if (fail_now(__builtin_return_address(0)))
		return fail_enomem();
	return track(__libc_calloc(n, size), __builtin_return_address(0));
}

void *realloc(void *p, size_t n)
{
	if (fail_now(__builtin_return_address(0)))
		return fail_enomem();
	void *q = __libc_realloc(p, n);
	bool was_ours = false;

	if (p && (q || n == 0))
		was_ours = live_del(p);
	if (q && (was_ours || ours(__builtin_return_address(0))))
		live_add(q);
	return q;
}

void *aligned_alloc(size_t align, size_t n)
{
	if (fail_now(__builtin_return_address(0)))
		return fail_enomem();
	return track(__libc_memalign(align, n), __builtin_return_address(0));
}

int posix_memalign(void **out, size_t align, size_t n)
{
	if (fail_now(__builtin_return_address(0)))
		return ENOMEM;
	void *p = __libc_memalign(align, n);
	if (!p)
		return ENOMEM;
	*out = track(p, __builtin_return_address(0));
	return 0;
}

void free(void *p)
{
	if (p)
		live_del(p);
	__libc_free(p);
}

/* A length whose mappings by this executable's code fail, all of them,
 * while set (0: none): a task stack of a size the stack pool does not
 * keep, each mapped on its own, can then be refused every time. */
static atomic_size_t fail_mmap_len;

/* Task stacks (runtime/stack.c) are mapped: fail those too. */
void *mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
	if (fail_now(__builtin_return_address(0)) ||
	    (len == atomic_load(&fail_mmap_len) &&
	     ours(__builtin_return_address(0)))) {
		errno = ENOMEM;
		return MAP_FAILED;
	}
	return (void *)syscall(SYS_mmap, addr, len, prot, flags, fd, off);
}

/* A worker, the monitor or a pool thread that cannot be started. */
int pthread_create(pthread_t *th, const pthread_attr_t *attr,
		   void *(*fn)(void *), void *arg)
{
	static int (*next)(pthread_t *, const pthread_attr_t *,
			   void *(*)(void *), void *);

	if (fail_now(__builtin_return_address(0)))
		return EAGAIN;
	if (!next)
		next = (__typeof__(next))dlsym(RTLD_NEXT, "pthread_create");
	return next(th, attr, fn, arg);
}

/* ---- the scenario ------------------------------------------------------ */

static atomic_int wrong; /* a step saw a wrong result */

#define EXPECT(cond, ...)                                                      \
	do {                                                                   \
		if (!(cond)) {                                                 \
			fprintf(stderr, "alloc_fail:%d: ", __LINE__);          \
			fprintf(stderr, __VA_ARGS__);                          \
			fputc('\n', stderr);                                   \
			atomic_store(&wrong, 1);                               \
		}                                                              \
	} while (0)

/* A failure a retry may get past: memory, or a thread the system could
 * not start. */
static bool transient(long r)
{
	return r == -ENOMEM || r == -EAGAIN;
}

/* Calls expr until it stops failing for want of memory (a few times). */
#define RETRY(r, expr)                                                         \
	do {                                                                   \
		int tries_ = 0;                                                \
		do                                                             \
			(r) = (expr);                                          \
		while (transient(r) && ++tries_ < 4);                          \
	} while (0)

static void *square(void *arg)
{
	intptr_t i = (intptr_t)arg;

	if (i % 2 && weft_yield() != 0)
		return WEFT_ERR_PTR(-EIO);
	return (void *)(i * i);
}

/* Spawns and joins tasks, one with a stack of another size class. */
static void step_tasks(void)
{
	enum { N = 6 };
	weft_task_t t[N];
	int r;

	for (intptr_t i = 0; i < N; i++) {
		struct weft_spawn_opts o = {
			.name = "sq",
			.stack_size = i == N - 1 ? 256 * 1024 : 0,
		};
		RETRY(r, weft_spawn_opts(&t[i], square, (void *)i, &o));
		EXPECT(r == 0, "spawn %d", r);
		if (r)
			t[i].task = NULL;
	}
	for (intptr_t i = 0; i < N; i++) {
		void *res = NULL;
		if (!t[i].task)
			continue;
		r = weft_join(t[i], &res);
		/* A task whose stack could not be had never ran. */
		EXPECT((r == 0 && res == (void *)(i * i)) || r == -ENOMEM,
		       "join %d res %p", r, res);
	}
}

struct producer {
	struct weft_queue *q;
	int n;
};

/* Puts 0..n-1, then shuts the queue down; returns how many it put. */
static void *produce(void *arg)
{
	struct producer *p = arg;
	int i, r = 0;

	for (i = 0; i < p->n; i++) {
		RETRY(r, weft_queue_put(p->q, &i));
		if (r)
			break;
	}
	EXPECT(r == 0 || r == -EPIPE, "put %d", r);
	weft_queue_shutdown(p->q, false);
	return (void *)(intptr_t)i;
}

enum { SEL_CASES = 18 }; /* past 16: the select allocates */

/* Gets from the open queues with one select; returns its result. */
static int select_open(struct weft_queue *q[2], bool open[2], int out[2],
		       int *which)
{
	struct weft_select_case c[SEL_CASES];
	int r;

	for (int i = 0; i < SEL_CASES; i++) {
		int k = open[0] && (i == 0 || !open[1]) ? 0 : 1;
		c[i] = (struct weft_select_case)WEFT_CASE_GET(q[k], &out[k]);
	}
	RETRY(r, weft_select(c, SEL_CASES));
	if (r < 0)
		return r;
	*which = c[r].queue == q[0] ? 0 : 1;
	return c[r].status;
}

/* Two producers (a bounded queue, an unbounded one), one consumer in a
 * select: every item arrives once, in order. */
static void step_queues(void)
{
	enum { ITEMS = 40 };
	struct weft_queue qa = WEFT_QUEUE_INIT(sizeof(int), 2);
	struct weft_queue qb = WEFT_QUEUE_INIT(sizeof(int), 0);
	struct weft_queue *q[2] = { &qa, &qb };
	struct producer p[2] = { { &qa, ITEMS }, { &qb, ITEMS } };
	weft_task_t t[2];
	bool spawned[2], open[2] = { true, true };
	int next[2] = { 0, 0 }, r;

	for (int k = 0; k < 2; k++) {
		RETRY(r, weft_spawn(&t[k], produce, &p[k]));
		EXPECT(r == 0, "spawn %d", r);
		spawned[k] = r == 0;
		if (!spawned[k])
			weft_queue_shutdown(q[k], false);
	}
	while (open[0] || open[1]) {
		int out[2] = { -1, -1 }, k = -1;

		r = select_open(q, open, out, &k);
		if (r == -EPIPE) {
			open[k] = false;
		} else if (r == 0) {
			EXPECT(out[k] == next[k], "queue %d: got %d, not %d", k,
			       out[k], next[k]);
			next[k] = out[k] + 1;
		} else {
			EXPECT(0, "select %d", r);
			weft_queue_shutdown(&qa, true);
			weft_queue_shutdown(&qb, true);
			break;
		}
	}
	for (int k = 0; k < 2; k++) {
		void *res = NULL;
		if (!spawned[k])
			continue;
		r = weft_join(t[k], &res);
		EXPECT((r == 0 && (intptr_t)res == next[k]) || r == -ENOMEM,
		       "producer %d: join %d, put %ld, got %d", k, r,
		       (long)(intptr_t)res, next[k]);
	}
	EXPECT(weft_queue_destroy(&qa) == 0, "destroy");
	EXPECT(weft_queue_destroy(&qb) == 0, "destroy");
}

static atomic_int member_runs;

/* A sleep fails with -ENOMEM when its worker's timer heap cannot grow. */
static void *member(void *arg)
{
	int r;

	RETRY(r, weft_sleep(WEFT_MSEC));

	EXPECT(r == 0, "member sleep %d", r);
	atomic_fetch_add(&member_runs, 1);
	return NULL;
}

static void step_group(void)
{
	struct weft_group g;
	int r, spawned = 0;

	EXPECT(weft_group_init(&g) == 0, "group init");
	atomic_store(&member_runs, 0);
	for (int i = 0; i < 4; i++) {
		RETRY(r, weft_group_spawn(&g, member, NULL));
		EXPECT(r == 0, "group spawn %d", r);
		spawned += r == 0;
	}
	r = weft_group_wait(&g);
	/* A member that never ran fails the group with -ENOMEM. */
	EXPECT((r == 0 && atomic_load(&member_runs) == spawned) || r == -ENOMEM,
	       "group wait %d, %d of %d ran", r, atomic_load(&member_runs),
	       spawned);
	EXPECT(weft_group_running(&g) == 0, "group running");
}

static atomic_int callbacks;

static void on_done(struct weft_future *f, void *arg)
{
	void *res = NULL;

	EXPECT(weft_future_result(f, &res) == 0 && res == arg,
	       "callback result");
	atomic_fetch_add(&callbacks, 1);
}

static void *complete(void *arg)
{
	struct weft_future *f = arg;
	int r;

	RETRY(r, weft_sleep(WEFT_MSEC));

	EXPECT(r == 0, "sleep %d", r);
	EXPECT(weft_future_set_result(f, (void *)42) == 0, "set result");
	return NULL;
}

static void step_future(void)
{
	struct weft_future f = WEFT_FUTURE_INIT;
	struct weft_future_cb cb[2];
	weft_task_t t;
	void *res = NULL;
	int r;

	atomic_store(&callbacks, 0);
	for (int i = 0; i < 2; i++)
		EXPECT(weft_future_add_callback(&f, &cb[i], on_done,
						(void *)42) == 0,
		       "add callback");
	RETRY(r, weft_spawn(&t, complete, &f));
	EXPECT(r == 0, "spawn %d", r);
	if (r) /* complete it here then */
		EXPECT(weft_future_set_result(&f, (void *)42) == 0, "set");
	r = weft_future_wait(&f, &res);
	EXPECT(r == 0 && res == (void *)42, "future wait %d %p", r, res);
	EXPECT(atomic_load(&callbacks) == 2, "callbacks %d",
	       atomic_load(&callbacks));
	if (t.task && weft_join(t, NULL) != 0)
		EXPECT(0, "join");
}

static void *sleeper(void *arg)
{
	return (void *)(intptr_t)weft_sleep((intptr_t)arg * 200 * WEFT_USEC);
}

/* Enough timers at once to grow a worker's heap; a deadline; a timeout
 * case. */
static void step_timers(void)
{
	enum { N = 24 };
	weft_task_t t[N];
	struct weft_deadline d;
	int r;

	for (intptr_t i = 0; i < N; i++) {
		RETRY(r, weft_spawn(&t[i], sleeper, (void *)(i % 5 + 1)));
		EXPECT(r == 0, "spawn %d", r);
		if (r)
			t[i].task = NULL;
	}
	for (int i = 0; i < N; i++) {
		void *res = NULL;
		if (!t[i].task)
			continue;
		r = weft_join(t[i], &res);
		/* A sleep that found no memory for its timer may say so. */
		EXPECT((r == 0 && (!res || transient((intptr_t)res))) ||
			       r == -ENOMEM,
		       "sleeper %d %ld", r, (long)(intptr_t)res);
	}
	EXPECT(weft_deadline_enter(&d, WEFT_MSEC) == 0, "deadline");
	RETRY(r, weft_sleep(WEFT_SEC));
	EXPECT(r == -ETIMEDOUT, "sleep under a deadline %d", r);
	EXPECT(weft_deadline_leave(&d) == 1, "leave");

	struct weft_select_case c[] = { WEFT_CASE_TIMEOUT(WEFT_MSEC) };
	RETRY(r, weft_select(c, 1));
	EXPECT(r == 0 && c[0].status == 0, "timeout case %d", r);
}

enum { LINES = 60 };

/* Writes LINES numbered lines (retrying what memory refused) and closes. */
static void *write_lines(void *arg)
{
	struct weft_stream *s = arg;
	char line[32];
	ssize_t w = 0;
	int r;

	for (int i = 0; i < LINES; i++) {
		int n = snprintf(line, sizeof(line), "line %d\n", i);
		RETRY(w, weft_stream_write(s, line, (size_t)n));
		EXPECT(w == n, "stream write %zd", w);
		if (w != n)
			break;
	}
	RETRY(r, weft_stream_flush(s));
	EXPECT(r == 0, "flush %d", r);
	EXPECT(weft_stream_close(s, 0) == 0 || w != 0, "close");
	return NULL;
}

/* A loopback TCP connection; -1s if memory refused it. */
static void tcp_pair(int *a, int *b)
{
	int lfd, r;

	*a = *b = -1;
	RETRY(lfd, weft_tcp_listen("127.0.0.1", 0, 0, 0));
	EXPECT(lfd >= 0, "listen %d", lfd);
	if (lfd < 0)
		return;
	RETRY(*a, weft_connect("127.0.0.1", (uint16_t)weft_local_port(lfd)));
	EXPECT(*a >= 0, "connect %d", *a);
	if (*a >= 0) {
		RETRY(*b, weft_accept(lfd, NULL, NULL));
		EXPECT(*b >= 0, "accept %d", *b);
	}
	if ((r = weft_close(lfd)) != 0)
		EXPECT(0, "close %d", r);
}

/* Every line arrives once, in order, whatever memory refused. */
static void step_stream(void)
{
	struct weft_stream sa, sb;
	weft_task_t t;
	int a, b, r, got = 0;

	tcp_pair(&a, &b);
	if (a < 0 || b < 0) {
		if (a >= 0 && weft_close(a) != 0)
			EXPECT(0, "close");
		return;
	}
	EXPECT(weft_stream_init(&sa, a, 0) == 0, "init");
	EXPECT(weft_stream_init(&sb, b, 0) == 0, "init");
	RETRY(r, weft_spawn(&t, write_lines, &sa));
	EXPECT(r == 0, "spawn %d", r);
	if (r) {
		write_lines(&sa);
		t.task = NULL;
	}
	for (;;) {
		const char *line;
		char want[32];
		ssize_t n;

		RETRY(n, weft_stream_readline(&sb, &line));
		if (n <= 0) {
			EXPECT(n == 0, "readline %zd", n);
			break;
		}
		int wn = snprintf(want, sizeof(want), "line %d\n", got);
		EXPECT(n == wn && !memcmp(line, want, (size_t)n),
		       "line %d: %.*s", got, (int)n, line);
		got++;
	}
	EXPECT(got == LINES, "%d lines of %d", got, LINES);
	EXPECT(weft_stream_close(&sb, 0) == 0, "close");
	if (t.task && weft_join(t, NULL) != 0)
		EXPECT(0, "join");
}

struct pingpong {
	struct weft_lock lock;
	struct weft_cond cond;
	int turn, rounds;
};

static void *pong(void *arg)
{
	struct pingpong *pp = arg;
	int r;

	for (int i = 0; i < pp->rounds; i++) {
		RETRY(r, weft_lock_acquire(&pp->lock));
		EXPECT(r == 0, "acquire %d", r);
		if (r)
			return NULL;
		pp->turn++;
		EXPECT(weft_cond_notify_all(&pp->cond) >= 0, "notify");
		EXPECT(weft_lock_release(&pp->lock) == 0, "release");
		RETRY(r, weft_yield());
		EXPECT(r == 0, "yield %d", r);
	}
	return NULL;
}

static bool all_turns(void *arg)
{
	struct pingpong *pp = arg;

	return pp->turn == 2 * pp->rounds;
}

/* Two tasks take turns under a lock; the main task waits on a condition. */
static void step_lock(void)
{
	struct pingpong pp = { WEFT_LOCK_INIT, WEFT_COND_INIT(&pp.lock), 0,
			       20 };
	weft_task_t t[2];
	int r;

	for (int k = 0; k < 2; k++) {
		RETRY(r, weft_spawn(&t[k], pong, &pp));
		EXPECT(r == 0, "spawn %d", r);
		if (r) {
			pong(&pp);
			t[k].task = NULL;
		}
	}
	RETRY(r, weft_lock_acquire(&pp.lock));
	EXPECT(r == 0, "acquire %d", r);
	RETRY(r, weft_cond_wait_for(&pp.cond, all_turns, &pp));
	EXPECT(r == 0, "wait_for %d", r);
	EXPECT(weft_lock_release(&pp.lock) == 0, "release");
	for (int k = 0; k < 2; k++)
		if (t[k].task && weft_join(t[k], NULL) != 0)
			EXPECT(0, "join");
}

static void *blocking_job(void *arg)
{
	return (void *)((intptr_t)arg + 1);
}

/* The blocking pool, a file (on the pool under epoll), a resolve. */
static void step_blocking(void)
{
	char path[] = "/tmp/weft_alloc_fail_XXXXXX";
	void *res = NULL;
	int fd, r;

	RETRY(r, weft_blocking(blocking_job, (void *)41, &res));
	EXPECT(r == 0 && res == (void *)42, "blocking %d", r);

	int tmp = mkstemp(path);
	EXPECT(tmp >= 0, "mkstemp");
	if (tmp < 0)
		return;
	close(tmp);
	RETRY(fd, weft_open(path, O_RDWR, 0));
	unlink(path);
	EXPECT(fd >= 0, "open %d", fd);
	if (fd >= 0) {
		char buf[8] = { 0 };
		ssize_t n;
		RETRY(n, weft_pwrite(fd, "weft", 4, 0));
		EXPECT(n == 4, "pwrite %zd", n);
		RETRY(n, weft_pread(fd, buf, sizeof(buf), 0));
		EXPECT(n == 4 && !memcmp(buf, "weft", 4), "pread %zd", n);
		RETRY(r, weft_fsync(fd, 0));
		EXPECT(r == 0, "fsync %d", r);
		EXPECT(weft_close(fd) == 0, "close");
	}

	struct addrinfo *ai = NULL;
	RETRY(r, weft_getaddrinfo("127.0.0.1", "80", NULL, &ai));
	EXPECT(r == 0 && ai, "getaddrinfo %d", r);
	if (ai)
		freeaddrinfo(ai);
}

/* A plain thread: puts into an unbounded queue, spawns and joins a task,
 * then waits for an event the main task sets. */
struct plain {
	struct weft_queue q;
	struct weft_event go;
	int put;
};

/* File calls from a plain thread (a private ring under io_uring). */
static void plain_file(void)
{
	char buf[4] = { 0 };
	int fd;
	ssize_t n;

	RETRY(fd, weft_open("/proc/self/stat", O_RDONLY, 0));
	EXPECT(fd >= 0, "plain open %d", fd);
	if (fd < 0)
		return;
	RETRY(n, weft_pread(fd, buf, sizeof(buf), 0));
	EXPECT(n == sizeof(buf), "plain pread %zd", n);
	EXPECT(weft_close(fd) == 0, "plain close");
}

/* Whether the kernel lets this process set up an io_uring: found before
 * the sweep, with nothing failing. */
static bool have_io_uring;

/* The escape hatch from a plain thread: an operation on the thread's own
 * ring, made at its first call. */
static void plain_submit(void)
{
	int r;

	if (!have_io_uring)
		return;
	RETRY(r, weft_io_submit(-1, prep_nop, NULL));
	EXPECT(r == 0, "plain io_submit %d", r);
}

static void *plain_thread(void *arg)
{
	struct plain *p = arg;
	weft_task_t t;
	void *res = NULL;
	int r;

	for (p->put = 0; p->put < 20; p->put++) {
		RETRY(r, weft_queue_put(&p->q, &p->put));
		EXPECT(r == 0, "plain put %d", r);
		if (r)
			break;
	}
	weft_queue_shutdown(&p->q, false);
	RETRY(r, weft_spawn(&t, square, (void *)7));
	EXPECT(r == 0, "plain spawn %d", r);
	if (!r) {
		r = weft_join(t, &res);
		EXPECT((r == 0 && res == (void *)49) || r == -ENOMEM,
		       "plain join %d", r);
	}
	plain_file();
	plain_submit();
	RETRY(r, weft_event_wait(&p->go));
	EXPECT(r == 0, "plain event wait %d", r);
	return NULL;
}

static void step_plain(void)
{
	struct plain p = { WEFT_QUEUE_INIT(sizeof(int), 0), WEFT_EVENT_INIT,
			   0 };
	pthread_t th;
	int r, got = 0, v;

	if ((r = pthread_create(&th, NULL, plain_thread, &p)) != 0) {
		EXPECT(r == EAGAIN || r == ENOMEM, "pthread_create %d", r);
		return;
	}
	while (1) {
		RETRY(r, weft_queue_get(&p.q, &v));
		if (r)
			break;
		EXPECT(v == got, "plain got %d, not %d", v, got);
		got++;
	}
	EXPECT(r == -EPIPE, "get %d", r);
	EXPECT(weft_event_set(&p.go) >= 0, "event set");
	pthread_join(th, NULL);
	EXPECT(got == p.put, "plain: got %d of %d", got, p.put);
	EXPECT(weft_queue_destroy(&p.q) == 0, "destroy");
}

/* Writes a byte to the fd after a millisecond. */
static void *byte_later(void *arg)
{
	int r;
	RETRY(r, weft_sleep(WEFT_MSEC));
	EXPECT(write((int)(intptr_t)arg, "b", 1) == 1, "write");
	return NULL;
}

/* weft_wait_fd on a pipe's number in a part of weft's fd table not made
 * yet (its chunk is allocated on first use), waiting for a byte. */
static void step_wait_fd(void)
{
	int p[2], fd, r;
	weft_task_t t;
	char c;

	EXPECT(pipe(p) == 0, "pipe");
	fd = fcntl(p[0], F_DUPFD_CLOEXEC, 3000);
	EXPECT(fd >= 3000, "dup %d", fd);
	close(p[0]);
	RETRY(r, weft_spawn(&t, byte_later, (void *)(intptr_t)p[1]));
	EXPECT(r == 0, "spawn %d", r);
	bool spawned = r == 0;
	if (!spawned)
		EXPECT(write(p[1], "b", 1) == 1, "write");
	RETRY(r, weft_wait_fd(fd, WEFT_READABLE));
	EXPECT(r == WEFT_READABLE, "wait_fd %d", r);
	EXPECT(read(fd, &c, 1) == 1, "read");
	if (spawned)
		EXPECT(weft_join(t, NULL) == 0, "join");
	EXPECT(weft_close(fd) == 0, "close");
	close(p[1]);
}

/* wait_first over more tasks than it keeps on its stack. */
static void step_wait_first(void)
{
	enum { N = 10 };
	weft_task_t t[N];
	bool seen[N] = { false };
	int r, left = 0;

	for (intptr_t i = 0; i < N; i++) {
		RETRY(r, weft_spawn(&t[i], square, (void *)i));
		EXPECT(r == 0, "spawn %d", r);
		if (r)
			t[i] = (weft_task_t){ 0 };
		left += r == 0;
	}
	while (left > 0) {
		void *res = NULL;
		int st = 0;

		RETRY(r, weft_wait_first(t, N, &res, &st));
		if (r < 0) {
			EXPECT(0, "wait_first %d", r);
			break;
		}
		EXPECT(!seen[r] && !t[r].task, "slot %d twice", r);
		seen[r] = true;
		left--;
		EXPECT((st == 0 && res == (void *)(intptr_t)(r * r)) ||
			       st == -ENOMEM,
		       "wait_first status %d", st);
	}
	for (int i = 0; r < 0 && i < N; i++) /* after a failure */
		if (t[i].task && weft_join(t[i], NULL) != 0)
			EXPECT(0, "join");
}

/* A signal registration, a delivery, a dump, a name resolved on the
 * pool. */
static void step_signal_dump(void)
{
	struct weft_signal sig;
	int r, signo = 0;

	RETRY(r, weft_signal_open(&sig, WEFT_SIGNAL(SIGUSR2)));
	EXPECT(r == 0, "signal open %d", r);
	if (r == 0) {
		EXPECT(kill(getpid(), SIGUSR2) == 0, "kill");
		RETRY(r, weft_signal_wait(&sig, &signo));
		EXPECT(r == 0 && signo == SIGUSR2, "signal wait %d %d", r,
		       signo);
		EXPECT(weft_signal_close(&sig) == 0, "signal close");
	}

	int null = open("/dev/null", O_WRONLY | O_CLOEXEC);
	EXPECT(null >= 0, "open /dev/null");
	RETRY(r, weft_dump(null));
	EXPECT(r >= 0, "dump %d", r);
	close(null);

	struct addrinfo *ai = NULL;
	RETRY(r, weft_getaddrinfo("localhost", NULL, NULL, &ai));
	EXPECT((r == 0 && ai) || r == -ENOENT, "getaddrinfo localhost %d", r);
	if (ai)
		freeaddrinfo(ai);
}

static void *scenario(void *arg)
{
	step_tasks();
	step_queues();
	step_group();
	step_future();
	step_timers();
	step_stream();
	step_lock();
	step_blocking();
	step_plain();
	step_wait_first();
	step_wait_fd();
	step_signal_dump();
	return (void *)0x5ca1;
}

/* ---- the sweep ----------------------------------------------------------- */

enum {
	CHILD_OK = 0,       /* the countdown fired, and all went right */
	CHILD_WRONG = 1,    /* a step saw a wrong result */
	CHILD_LEAK = 2,     /* blocks were left live */
	CHILD_UNREACHED = 3 /* all went right, and nothing failed */
};

static int run_once(void)
{
	struct weft_config cfg = {
		.workers = 2,
		.blocking_threads = 2,
		.stall_threshold_ns = 10 * WEFT_SEC, /* the monitor's state */
	};
	void *res = NULL;
	int r = weft_run(scenario, NULL, &cfg, &res);

	EXPECT((r == 0 && res == (void *)0x5ca1) || r == -ENOMEM ||
		       r == -EAGAIN,
	       "weft_run %d, %p", r, res);
	return r;
}

/* Live blocks after a child's two runs when nothing failed: what the
 * pools that outlive a runtime (task structs, runtime/task.c) keep. A
 * page shared with the children. */
static long *clean_live;

/* Which allocation failed: exe+offset for addr2line -e, or a library's
 * symbol. The address returned to, so the line after the call. */
static void say_where(long n, long left)
{
	fprintf(stderr, "alloc_fail: N=%ld (%ld left) failed %s+%#lx\n", n,
		left, ours(fired_at) ? "exe" : "lib",
		(unsigned long)((char *)fired_at - __executable_start));
	if (!ours(fired_at))
		backtrace_symbols_fd(&fired_at, 1, 2);
}

/* Where a child crashed, and which allocation had failed: what a failed
 * CI run must tell (the order of allocations varies with timing, so a
 * crash may not come back for the same N). */
static long child_n;

static void on_crash(int sig)
{
	void *bt[32];
	int n = backtrace(bt, 32);

	if (atomic_load(&fired))
		say_where(child_n, 0);
	backtrace_symbols_fd(bt, n, 2);
	signal(sig, SIG_DFL);
	raise(sig);
}

/* In the child: a run with the nth allocation failing (0: none), from a
 * fresh process so that the allocations of a first run are all there to
 * fail; then a run with nothing failing, which must work and must leave
 * as many blocks live as two clean runs do. */
static int child(long n)
{
	/* A hang dies of SIGALRM. Not of Check's own SIGALRM handler, which
	 * this fork inherits and which kills the whole process group: the
	 * sweep itself too, by SIGKILL, with no word of which N hung. Long
	 * enough for a child under qemu on a loaded machine. */
	signal(SIGALRM, SIG_DFL);
	alarm(120);
	child_n = n;
	fail_all = getenv("WEFT_ALLOC_FAIL_ALL");
	signal(SIGSEGV, on_crash);
	signal(SIGBUS, on_crash);
	signal(SIGABRT, on_crash);
	atomic_store(&countdown, n);
	run_once();
	long left = atomic_exchange(&countdown, 0);
	if (run_once() != 0)
		EXPECT(0, "a weft_run after the failure");
	long live = live_now();
	if (atomic_load(&wrong))
		return CHILD_WRONG;
	if (n == 0)
		*clean_live = live;
	if (live < 0 || (*clean_live >= 0 && live != *clean_live)) {
		fprintf(stderr, "alloc_fail: %ld blocks live, %ld if clean\n",
			live, *clean_live);
		return CHILD_LEAK;
	}
	if (atomic_load(&fired) && getenv("WEFT_ALLOC_FAIL_VERBOSE"))
		say_where(n, left);
	return atomic_load(&fired) ? CHILD_OK : CHILD_UNREACHED;
}

/* Runs child(n) in a child process; returns its CHILD_* status, or -1 if
 * it died of a signal (SIGALRM: it hung). */
static int fork_child(long n)
{
	int st;

	fflush(NULL);
	pid_t pid = weft_test_fork();
	if (pid == 0)
		_exit(child(n));
	ck_assert_int_eq(waitpid(pid, &st, 0), pid);
	if (WIFSIGNALED(st)) {
		fprintf(stderr, "alloc_fail: N=%ld: signal %d (%s)\n", n,
			WTERMSIG(st), strsignal(WTERMSIG(st)));
		return -1;
	}
	return WEXITSTATUS(st);
}

/* WEFT_ALLOC_FAIL_N=n runs the nth step only (to debug one). */
START_TEST(sweep)
{
	const char *only = getenv("WEFT_ALLOC_FAIL_N");
	long first = only ? atol(only) : 1, n;
	int failures = 0;

	struct io_uring probe;
	if (io_uring_queue_init(1, &probe, 0) == 0) {
		have_io_uring = true;
		io_uring_queue_exit(&probe);
	}
	if (only && getenv("WEFT_ALLOC_FAIL_NOFORK")) { /* for a debugger */
		static long clean = -1;
		clean_live = &clean;
		exit(child(atol(only)));
	}
	clean_live = mmap(NULL, sizeof(*clean_live), PROT_READ | PROT_WRITE,
			  MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	ck_assert_ptr_ne(clean_live, MAP_FAILED);
	ck_assert_int_eq(fork_child(0), CHILD_UNREACHED);
	for (n = first; n < 100000; n++) {
		int st = fork_child(n);
		if (st == CHILD_UNREACHED)
			break;
		if (st != CHILD_OK) {
			if (st >= 0)
				fprintf(stderr, "alloc_fail: N=%ld: %s\n", n,
					st == CHILD_LEAK ? "leak"
							 : "wrong result");
			failures++;
		}
		if (only)
			break;
	}
	fprintf(stderr, "alloc_fail: %ld allocations failed in turn, %d bad\n",
		n - first, failures);
	ck_assert_int_eq(failures, 0);
	ck_assert(only || n > first); /* something was failed */
}
END_TEST

/* ---- a group member that can have no stack ------------------------------ */

/* Past the pooled sizes (runtime/stack.c): each task maps its own stack,
 * and unmaps it when it ends. */
#define BIG_STACK ((size_t)2 << 20)

static atomic_int big_runs;

static void *big_member(void *arg)
{
	atomic_fetch_add(&big_runs, 1);
	return NULL;
}

/* A member whose stack cannot be mapped never runs its function, so it
 * never accounts for itself: the group must not count it as running (its
 * wait waited for good, and its node leaked). The spawn is refused with
 * -ENOMEM, as weft_group_spawn says for weft_spawn's. With arg NULL, a
 * run without the failure, for the count of live blocks. */
static void *no_stack_main(void *arg)
{
	struct weft_group g = WEFT_GROUP_INIT(g);
	size_t page = (size_t)sysconf(_SC_PAGESIZE);
	int r, w;

	atomic_store(&big_runs, 0);
	if (arg) /* the member's stack and its guard page */
		atomic_store(&fail_mmap_len, BIG_STACK + page);
	r = weft_group_spawn(&g, big_member, NULL);
	w = weft_group_wait(&g); /* waited for good before */
	atomic_store(&fail_mmap_len, 0);
	if (arg)
		EXPECT(r == -ENOMEM && w == 0 && atomic_load(&big_runs) == 0,
		       "spawn %d, wait %d, %d ran", r, w,
		       atomic_load(&big_runs));
	else
		EXPECT(r == 0 && w == 0 && atomic_load(&big_runs) == 1,
		       "clean: spawn %d, wait %d, %d ran", r, w,
		       atomic_load(&big_runs));
	EXPECT(weft_group_running(&g) == 0, "group running");
	/* With memory again, members run. */
	atomic_store(&big_runs, 0);
	EXPECT(weft_group_spawn(&g, big_member, NULL) == 0, "spawn again");
	EXPECT(weft_group_wait(&g) == 0, "wait again");
	EXPECT(atomic_load(&big_runs) == 1, "%d ran", atomic_load(&big_runs));
	return NULL;
}

static int no_stack_child(void)
{
	struct weft_config cfg = { .workers = 2, .stack_size = BIG_STACK };

	signal(SIGALRM, SIG_DFL); /* a hang dies of it (see child) */
	alarm(30);
	/* A clean run first: the pools that outlive a run (task.c) fill. */
	EXPECT(weft_run(no_stack_main, NULL, &cfg, NULL) == 0, "weft_run");
	long clean = live_now();
	EXPECT(weft_run(no_stack_main, (void *)1, &cfg, NULL) == 0, "weft_run");
	EXPECT(live_now() == clean, "%ld blocks live, %ld if clean", live_now(),
	       clean);
	return atomic_load(&wrong) ? CHILD_WRONG : CHILD_OK;
}

/* Runs child() in a child process, which must exit with CHILD_OK. */
static void expect_child_ok(int (*child)(void))
{
	int st;

	fflush(NULL);
	pid_t pid = weft_test_fork();
	if (pid == 0)
		_exit(child());
	ck_assert_int_eq(waitpid(pid, &st, 0), pid);
	ck_assert_msg(!WIFSIGNALED(st), "child died of signal %d (%s)",
		      WIFSIGNALED(st) ? WTERMSIG(st) : 0,
		      WIFSIGNALED(st) ? strsignal(WTERMSIG(st)) : "");
	ck_assert_int_eq(WEXITSTATUS(st), CHILD_OK);
}

START_TEST(group_member_without_stack)
{
	expect_child_ok(no_stack_child);
}
END_TEST

/* ---- a plain thread's private ring without memory ---------------------- */

/* The first weft_io_submit of a plain thread sets up its ring: with no
 * memory for it the call says -ENOMEM, which a retry gets past, not
 * -ENOSYS, which says io_uring is missing for good. */
static int plain_submit_child(void)
{
	int r;

	signal(SIGALRM, SIG_DFL); /* a hang dies of it (see child) */
	alarm(30);
	atomic_store(&countdown, 1); /* the ring's struct: the first */
	r = weft_io_submit(-1, prep_nop, NULL);
	EXPECT(atomic_load(&fired) && r == -ENOMEM, "fired %d, submit %d",
	       atomic_load(&fired), r);
	atomic_store(&countdown, 0);
	r = weft_io_submit(-1, prep_nop, NULL);
	EXPECT(r == 0, "submit again %d", r);
	return atomic_load(&wrong) ? CHILD_WRONG : CHILD_OK;
}

START_TEST(plain_submit_without_memory)
{
	struct io_uring probe;

	if (io_uring_queue_init(1, &probe, 0) != 0)
		return; /* no io_uring here: -ENOSYS is right */
	io_uring_queue_exit(&probe);
	expect_child_ok(plain_submit_child);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("alloc_fail");
	TCase *tc = tcase_create("sweep");
	tcase_set_timeout(tc, 600);
	tcase_add_test(tc, sweep);
	suite_add_tcase(s, tc);
	tc = tcase_create("no_stack");
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, group_member_without_stack);
	suite_add_tcase(s, tc);
	tc = tcase_create("plain_submit");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, plain_submit_without_memory);
	suite_add_tcase(s, tc);
	return weft_test_main(s);
}
