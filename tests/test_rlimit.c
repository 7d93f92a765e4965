/*
 * Exhaustion of resources other than memory, as a server meets it: file
 * descriptors (RLIMIT_NOFILE), threads (RLIMIT_NPROC) and their stacks
 * (RLIMIT_STACK). Each case runs in a forked child, with its limits set
 * there, on both I/O drivers; the child reports by its exit status, and
 * an alarm bounds it. This process
 * never runs weft_run itself: a child inherits what a run latched for the
 * process (the stack pool's one-time probe).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>
#include "runtime/stack.h"
#include "test_io_util.h"
#include "test_preps.h"

#define EXPECT(cond, ...)                                                      \
	do {                                                                   \
		if (!(cond)) {                                                 \
			fprintf(stderr, "%s:%d: ", __FILE__, __LINE__);        \
			fprintf(stderr, __VA_ARGS__);                          \
			fprintf(stderr, "\n");                                 \
			_exit(1);                                              \
		}                                                              \
	} while (0)

enum { SKIP = 77 };

/* Runs fn(io) in a forked child; returns its exit status (SKIP: skipped),
 * failing on a signal. */
static int in_child(int (*fn)(enum weft_io_kind), enum weft_io_kind io)
{
	int st;
	pid_t p = weft_test_fork();
	if (!p) {
		alarm(20);
		_exit(fn(io));
	}
	ck_assert_int_eq(waitpid(p, &st, 0), p);
	if (WIFSIGNALED(st))
		ck_abort_msg("child died of signal %d", WTERMSIG(st));
	return WEXITSTATUS(st);
}

static void *nothing(void *arg)
{
	return arg;
}

/* Spawns and joins a few tasks, then says how many mprotect guards the
 * stack pool made: 0 where MADV_GUARD_INSTALL guards every stack. */
static void *guards_used(void *arg)
{
	weft_task_t t[8];

	for (int i = 0; i < 8; i++)
		if (weft_spawn(&t[i], nothing, NULL))
			return (void *)-1L;
	for (int i = 0; i < 8; i++)
		if (weft_join(t[i], NULL))
			return (void *)-1L;
	return (void *)weft__stack_budget_used();
}

static long run_guards(enum weft_io_kind io)
{
	struct weft_config cfg = { .workers = 1, .io = io };
	void *res = NULL;
	int r = weft_run(guards_used, NULL, &cfg, &res);

	EXPECT(r == 0, "weft_run %d", r);
	return (long)res;
}

/* The first weft_run of a process, clean: the guards it takes. */
static int clean_first_run(enum weft_io_kind io)
{
	long used = run_guards(io);

	return used == 0 ? 0 : used > 0 ? 2 : 1;
}

/* The first weft_run of a process finds no descriptor left: it fails with
 * -EMFILE, leaks none, and once descriptors are back a run works as a
 * clean first run would, guards and all. */
static int first_run_at_emfile(enum weft_io_kind io)
{
	struct weft_config cfg = { .workers = 2, .io = io };
	struct rlimit rl, few;
	int r;

	for (int fd = 3; fd < 65536; fd++)
		close(fd);
	EXPECT(!getrlimit(RLIMIT_NOFILE, &rl), "getrlimit");
	for (rlim_t k = 0; k < 3; k++) {
		few = rl;
		few.rlim_cur = 3 + k;
		EXPECT(!setrlimit(RLIMIT_NOFILE, &few), "setrlimit");
		r = weft_run(nothing, NULL, &cfg, NULL);
		EXPECT(r == -EMFILE, "weft_run with %d fds left: %d", (int)k,
		       r);
		EXPECT(io_count_fds() == 3, "%d fds open after a failed run",
		       io_count_fds());
	}
	EXPECT(!setrlimit(RLIMIT_NOFILE, &rl), "setrlimit back");
	/* No stack may go without a guard because the first run met a
	 * descriptor limit: the guard kind must be what a clean run gets. */
	return run_guards(io) == 0 ? 0 : 2;
}

START_TEST(emfile_first_run_keeps_light_guards)
{
	for (int io = WEFT_IO_URING; io <= WEFT_IO_EPOLL; io++) {
		int clean = in_child(clean_first_run, io);

		if (clean == 1) /* io_uring refused: nothing to compare */
			continue;
		if (clean != 0) {
			fprintf(stderr, "no light guards here: skipped\n");
			continue;
		}
		ck_assert_msg(in_child(first_run_at_emfile, io) == 0,
			      "io %d: the stacks lost their light guards after "
			      "a first weft_run at EMFILE",
			      io);
	}
}
END_TEST

/* ---- a plain thread's private ring ------------------------------------ */

/* A plain thread's first weft_io_submit sets up its ring, which takes a
 * descriptor. With none left that is -EMFILE, as for any call that makes
 * one, and a later call, once descriptors are back, works: not -ENOSYS,
 * which says io_uring is not to be had here at all. (The forked child
 * has no private ring yet: fork drops the parent's.) */
static int private_ring_at_emfile(enum weft_io_kind io)
{
	struct rlimit rl, few;
	int r;

	(void)io;
	for (int fd = 3; fd < 65536; fd++)
		close(fd);
	EXPECT(!getrlimit(RLIMIT_NOFILE, &rl), "getrlimit");
	few = rl;
	few.rlim_cur = 3;
	EXPECT(!setrlimit(RLIMIT_NOFILE, &few), "setrlimit");
	r = weft_io_submit(-1, prep_nop, NULL);
	EXPECT(!setrlimit(RLIMIT_NOFILE, &rl), "setrlimit back");
	if (r == -ENOSYS && weft_io_submit(-1, prep_nop, NULL) == -ENOSYS)
		return SKIP; /* no io_uring here at all */
	EXPECT(r == -EMFILE, "weft_io_submit with no fd left: %d (%s)", r,
	       strerror(-r));
	r = weft_io_submit(-1, prep_nop, NULL);
	EXPECT(r == 0, "weft_io_submit once fds are back: %d", r);
	return 0;
}

START_TEST(private_ring_emfile)
{
	int r = in_child(private_ring_at_emfile, WEFT_IO_AUTO);

	ck_assert_msg(r == 0 || r == SKIP, "child said %d", r);
}
END_TEST

/* ---- threads ----------------------------------------------------------- */

static char path[64];

/* With the thread limit reached (as a pids cgroup or RLIMIT_NPROC would
 * have it), a file call gets a thread of nobody's: io_uring's io-wq, or
 * the blocking pool. It must fail with an errno that means no thread (or
 * succeed), never -ECANCELED, which says the task was cancelled; once
 * threads can start again, it must work. */
static void *files_without_threads(void *arg)
{
	struct rlimit rl, one;
	int fd, r;

	getrlimit(RLIMIT_NPROC, &rl);
	one = rl;
	one.rlim_cur = 1;
	EXPECT(!setrlimit(RLIMIT_NPROC, &one), "setrlimit NPROC");
	/* O_CREAT: io_uring's inline open cannot create, so it goes to
	 * io-wq. */
	fd = weft_open(path, O_RDWR | O_CREAT | O_EXCL, 0600);
	EXPECT(fd >= 0 || fd == -EAGAIN,
	       "weft_open with no thread to spare: %d (%s)", fd, strerror(-fd));
	if (fd >= 0)
		EXPECT(!weft_close(fd), "close");
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	EXPECT(fd >= 0, "open");
	r = weft_fsync(fd, 0);
	EXPECT(r == 0 || r == -EAGAIN,
	       "weft_fsync with no thread to spare: %d (%s)", r, strerror(-r));
	EXPECT(!setrlimit(RLIMIT_NPROC, &rl), "setrlimit NPROC back");
	r = weft_fsync(fd, 0);
	EXPECT(r == 0, "weft_fsync once threads start again: %d", r);
	EXPECT(!weft_close(fd), "close");
	unlink(path);
	fd = weft_open(path, O_RDWR | O_CREAT | O_EXCL, 0600);
	EXPECT(fd >= 0, "weft_open once threads start again: %d", fd);
	EXPECT(!weft_close(fd), "close");
	unlink(path);
	return NULL;
}

static int nproc_files(enum weft_io_kind io)
{
	struct weft_config cfg = { .workers = 1, .io = io };
	/* A uid of its own, so the limit counts this child's threads only
	 * (root's are not limited). */
	uid_t uid = 60000 + (uid_t)(getpid() % 5000);
	int r;

	if (geteuid() != 0 || setgid(uid) || setuid(uid)) {
		fprintf(stderr, "cannot take a uid of our own: skipped\n");
		return SKIP;
	}
	snprintf(path, sizeof(path), "/tmp/weft-rlimit-%d", (int)getpid());
	unlink(path);
	r = weft_run(files_without_threads, NULL, &cfg, NULL);
	unlink(path);
	if (r == -ENOSYS)
		return SKIP;
	EXPECT(r == 0, "weft_run %d", r);
	return 0;
}

START_TEST(nproc_file_calls)
{
	for (int io = WEFT_IO_URING; io <= WEFT_IO_EPOLL; io++) {
		int r = in_child(nproc_files, io);

		ck_assert_msg(r == 0 || r == SKIP, "io %d: child said %d", io,
			      r);
	}
}
END_TEST

/* ---- thread stacks ------------------------------------------------------ */

/* Work for every thread weft starts: the workers, the monitor (workers
 * 2), the blocking pool (a lookup; files under epoll). */
static void *some_of_everything(void *arg)
{
	struct addrinfo *ai;
	struct pair p = tcp_pair();
	char b[4] = "abc";
	int fd, r;

	EXPECT(weft_send(p.a, b, 4, 0) == 4, "send");
	EXPECT(io_recv_exact(p.b, b, 4) == 4, "recv");
	weft_close(p.a);
	weft_close(p.b);
	fd = weft_open("/dev/null", O_RDONLY, 0);
	EXPECT(fd >= 0, "weft_open %d", fd);
	weft_close(fd);
	r = weft_getaddrinfo("localhost", "80", NULL, &ai);
	EXPECT(r == 0 || r == -ENOENT, "weft_getaddrinfo %d", r);
	if (!r)
		freeaddrinfo(ai);
	EXPECT(weft_sleep(20 * WEFT_MSEC) == 0, "sleep");
	return NULL;
}

/* glibc gives a thread RLIMIT_STACK's size by default, which a process
 * may have set low (ulimit -s 32): weft's threads must live in it, or
 * choose their own size. pthread_setattr_default_np sets what glibc took
 * from the limit at startup. */
static int small_stacks(enum weft_io_kind io)
{
	struct weft_config cfg = { .workers = 2, .io = io };
	pthread_attr_t a;
	int r;

#if defined(__SANITIZE_THREAD__) || defined(__SANITIZE_ADDRESS__)
	(void)cfg;
	return SKIP; /* the sanitizers' own frames need more than 32 KiB */
#endif
	EXPECT(!pthread_attr_init(&a), "attr");
	if (pthread_attr_setstacksize(&a, 32 * 1024))
		return SKIP; /* below PTHREAD_STACK_MIN (aarch64's: 128 KiB) */
	EXPECT(!pthread_setattr_default_np(&a), "setattr_default");
	r = weft_run(some_of_everything, NULL, &cfg, NULL);
	if (r == -ENOSYS)
		return SKIP;
	EXPECT(r == 0, "weft_run %d", r);
	return 0;
}

START_TEST(small_default_thread_stacks)
{
	for (int io = WEFT_IO_URING; io <= WEFT_IO_EPOLL; io++) {
		int r = in_child(small_stacks, io);

		ck_assert_msg(r == 0 || r == SKIP, "io %d: child said %d", io,
			      r);
	}
}
END_TEST

int main(void)
{
	Suite *s = suite_create("rlimit");
	TCase *tc = tcase_create("rlimit");

	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, emfile_first_run_keeps_light_guards);
	tcase_add_test(tc, private_ring_emfile);
	tcase_add_test(tc, nproc_file_calls);
	tcase_add_test(tc, small_default_thread_stacks);
	suite_add_tcase(s, tc);
	return weft_test_main(s);
}
