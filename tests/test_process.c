/* Processes and signals as a server uses them: no descriptor of weft's
 * leaks into a program a task (or a plain thread) starts, on either
 * driver, nor a blocked signal mask; SIGCHLD reaps children spawned from
 * tasks; the pre-fork server (a listener made before fork, weft_run in each
 * child); fork from a running program; weft_signal registrations on both
 * sides of a fork; plain threads interrupted by handlers without
 * SA_RESTART. */

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>
#include <liburing.h>
#include "test_io_util.h"
#include "runtime/blocking.h"
#include "runtime/dump_signal.h"

extern char **environ;

#define WORKERS 2
#define MAXFD 4096

/* The descriptors the test program itself had open, without close-on-exec,
 * before weft made any (Check's, the harness's): those may reach a child. */
static bool baseline[MAXFD];

static void take_baseline(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;

	ck_assert_ptr_nonnull(d);
	while ((e = readdir(d))) {
		int fd = atoi(e->d_name);
		int fl;

		if (e->d_name[0] == '.' || fd == dirfd(d) || fd >= MAXFD)
			continue;
		fl = fcntl(fd, F_GETFD);
		if (fl >= 0 && !(fl & FD_CLOEXEC))
			baseline[fd] = true;
	}
	closedir(d);
}

/* A line of /proc/<pid>/status, "SigBlk:" say; its value in *out. */
static bool status_field(pid_t pid, const char *name, char *out, size_t len)
{
	char path[64], line[256];
	FILE *f;
	bool found = false;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	if (!(f = fopen(path, "re")))
		return false;
	while (!found && fgets(line, sizeof(line), f))
		if (!strncmp(line, name, strlen(name))) {
			snprintf(out, len, "%s", line + strlen(name));
			out[strcspn(out, "\n")] = 0;
			found = true;
		}
	fclose(f);
	return found;
}

static char sig_ign_before[64];

enum how { FORK_EXEC, POSIX_SPAWN };

/* This program run as a child (argv[1] "--report"): writes to stdout one
 * line per descriptor it has (but 0, 1 and 2), "fd N target", then its
 * SigBlk and SigIgn lines, then exits. */
static int report(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	char link[300], target[256], v[64];

	if (!d)
		return 1;
	while ((e = readdir(d))) {
		int fd = atoi(e->d_name);
		ssize_t n;

		if (e->d_name[0] == '.' || fd <= 2 || fd == dirfd(d))
			continue;
		snprintf(link, sizeof(link), "/proc/self/fd/%s", e->d_name);
		n = readlink(link, target, sizeof(target) - 1);
		target[n > 0 ? n : 0] = 0;
		printf("fd %d %s\n", fd, target);
	}
	closedir(d);
	if (status_field(getpid(), "SigBlk:", v, sizeof(v)))
		printf("SigBlk:%s\n", v);
	if (status_field(getpid(), "SigIgn:", v, sizeof(v)))
		printf("SigIgn:%s\n", v);
	return 0;
}

/* Runs this program with --report, by fork+exec or posix_spawn, and checks
 * what it says: descriptors beyond the baseline, a blocked signal, an
 * ignored one that was not before. msg gets the complaints, or "". */
static void check_child(enum how how, char *msg, size_t len)
{
	char *argv[] = { "test_process", "--report", NULL };
	char out[8192], blk[64];
	size_t got = 0, used = 0;
	ssize_t n;
	pid_t pid;
	int p[2], status;

	msg[0] = 0;
	ck_assert_int_eq(pipe2(p, O_CLOEXEC), 0);
	if (how == POSIX_SPAWN) {
		posix_spawn_file_actions_t fa;

		posix_spawn_file_actions_init(&fa);
		posix_spawn_file_actions_adddup2(&fa, p[1], 1);
		ck_assert_int_eq(posix_spawn(&pid, "/proc/self/exe", &fa, NULL,
					     argv, environ),
				 0);
		posix_spawn_file_actions_destroy(&fa);
	} else {
		pid = weft_test_fork();
		if (!pid) {
			dup2(p[1], 1);
			execve("/proc/self/exe", argv, environ);
			_exit(127);
		}
	}
	close(p[1]);
	while ((n = read(p[0], out + got, sizeof(out) - 1 - got)) != 0)
		if (n > 0)
			got += (size_t)n;
		else if (errno != EINTR)
			break;
	out[got] = 0;
	close(p[0]);
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	for (char *line = strtok(out, "\n"); line && used < len;
	     line = strtok(NULL, "\n")) {
		int fd;

		if (sscanf(line, "fd %d", &fd) == 1) {
			if (fd >= MAXFD || !baseline[fd])
				used += (size_t)snprintf(msg + used, len - used,
							 "%s leaked; ", line);
		} else if (!strncmp(line, "SigBlk:", 7)) {
			snprintf(blk, sizeof(blk), "%s", line + 7);
			if (strcmp(blk, "\t0000000000000000"))
				used += (size_t)snprintf(msg + used, len - used,
							 "%s; ", line);
		} else if (!strncmp(line, "SigIgn:", 7) &&
			   /* glibc's posix_spawn leaves its own 32 and 33
			    * ignored in the child, with or without weft. */
			   (strtoull(line + 7, NULL, 16) & ~0x180000000ull) !=
				   strtoull(sig_ign_before, NULL, 16)) {
			used += (size_t)snprintf(msg + used, len - used,
						 "%s (was%s); ", line,
						 sig_ign_before);
		}
	}
	if (msg[0])
		fprintf(stderr, "child %d: %s\n", (int)pid, msg);
}

static void *plain_child(void *arg)
{
	static char msg[2048];

	check_child(FORK_EXEC, msg, sizeof(msg));
	return msg;
}

static void *blocking_noop(void *arg)
{
	return arg;
}

/* Every kind of descriptor weft makes, open; then children started from a
 * task (fork+exec, posix_spawn) and from a plain thread. */
static void *leak_main(void *arg)
{
	char path[] = "/tmp/weft_process_XXXXXX", msg[2048];
	char upath[108];
	struct pair tp = tcp_pair();
	struct weft_signal sigs;
	int file, udp, ulis, ucli, uacc, tmp;
	pthread_t th;
	void *res;

	(void)arg;
	ck_assert_int_ge(tmp = mkstemp(path), 0);
	close(tmp);
	ck_assert_int_ge(file = weft_open(path, O_RDWR, 0), 0);
	unlink(path);
	ck_assert_int_eq(weft_pwrite(file, "x", 1, 0), 1);
	ck_assert_int_ge(udp = weft_udp_bind("127.0.0.1", 0), 0);
	snprintf(upath, sizeof(upath), "/tmp/weft_process_%d.sock",
		 (int)getpid());
	unlink(upath);
	ck_assert_int_ge(ulis = weft_unix_listen(upath, 4), 0);
	ck_assert_int_ge(ucli = weft_unix_connect(upath), 0);
	ck_assert_int_ge(uacc = weft_accept(ulis, NULL, NULL), 0);
	unlink(upath);
	ck_assert_int_eq(weft_signal_open(&sigs, WEFT_SIGNAL(SIGUSR1)), 0);
	ck_assert_int_eq(pthread_kill(pthread_self(), SIGUSR1), 0);
	int signo;
	ck_assert_int_eq(weft_signal_wait(&sigs, &signo), 0);
	ck_assert_int_eq(weft_blocking(blocking_noop, NULL, &res), 0);

	check_child(FORK_EXEC, msg, sizeof(msg));
	ck_assert_msg(!msg[0], "fork+exec from a task: %s", msg);
	check_child(POSIX_SPAWN, msg, sizeof(msg));
	ck_assert_msg(!msg[0], "posix_spawn from a task: %s", msg);
	ck_assert_int_eq(pthread_create(&th, NULL, plain_child, NULL), 0);
	ck_assert_int_eq(pthread_join(th, &res), 0);
	ck_assert_msg(!((char *)res)[0], "fork+exec from a thread: %s",
		      (char *)res);

	ck_assert_int_eq(weft_signal_close(&sigs), 0);
	weft_close(uacc);
	weft_close(ucli);
	weft_close(ulis);
	weft_close(udp);
	weft_close(file);
	weft_close(tp.a);
	weft_close(tp.b);
	return NULL;
}

static void run_on(enum weft_io_kind io, weft_fn fn, void *arg)
{
	struct weft_config cfg = {
		.workers = WORKERS,
		.io = io,
		.dump_signal = fn == leak_main ? SIGUSR2 : 0,
		.stall_threshold_ns = fn == leak_main ? 100 * WEFT_MSEC : 0
	};
	int r = weft_run(fn, arg, &cfg, NULL);

	if (r == -ENOSYS && io == WEFT_IO_URING)
		return; /* no io_uring here */
	ck_assert_int_eq(r, 0);
}

static void leak_setup(void)
{
	take_baseline();
	ck_assert(status_field(getpid(), "SigIgn:", sig_ign_before,
			       sizeof(sig_ign_before)));
}

START_TEST(no_leak_uring)
{
	leak_setup();
	run_on(WEFT_IO_URING, leak_main, NULL);
}
END_TEST

START_TEST(no_leak_epoll)
{
	leak_setup();
	run_on(WEFT_IO_EPOLL, leak_main, NULL);
}
END_TEST

/* While a dump is under way (libdw's files open), a child started then
 * inherits none of them: the dump blocks in its write to a full pipe. */
static int dump_pipe[2];

static void *dump_thread(void *arg)
{
	(void)arg;
	return (void *)(intptr_t)weft_dump(dump_pipe[1]);
}

static void *sleeper(void *arg)
{
	(void)arg;
	weft_sleep(60 * WEFT_SEC);
	return NULL;
}

static void *dump_leak_main(void *arg)
{
	enum { SLEEPERS = 64 };
	weft_task_t t[SLEEPERS];
	char msg[2048], buf[4096];
	pthread_t th;
	void *res;

	(void)arg;
	for (int i = 0; i < SLEEPERS; i++)
		ck_assert_int_eq(weft_spawn(&t[i], sleeper, NULL), 0);
	weft_sleep(10 * WEFT_MSEC);
	ck_assert_int_eq(pipe2(dump_pipe, O_CLOEXEC), 0);
	fcntl(dump_pipe[1], F_SETPIPE_SZ, 4096);
	ck_assert_int_eq(pthread_create(&th, NULL, dump_thread, NULL), 0);
	weft_sleep(300 * WEFT_MSEC); /* the dump fills the pipe, and waits */
	check_child(FORK_EXEC, msg, sizeof(msg));
	fcntl(dump_pipe[0], F_SETFL, O_NONBLOCK);
	while (pthread_tryjoin_np(th, &res))
		if (read(dump_pipe[0], buf, sizeof(buf)) <= 0)
			weft_sleep(WEFT_MSEC);
	close(dump_pipe[0]);
	close(dump_pipe[1]);
	for (int i = 0; i < SLEEPERS; i++) {
		weft_cancel(t[i]);
		ck_assert_int_eq(weft_join(t[i], NULL), 0);
	}
	ck_assert_msg(!msg[0], "fork+exec during a dump: %s", msg);
	return NULL;
}

START_TEST(no_leak_during_dump)
{
	leak_setup();
	run_on(WEFT_IO_AUTO, dump_leak_main, NULL);
}
END_TEST

/* ---- SIGCHLD -------------------------------------------------------- */

#define CHILDREN 16

/* Children spawned from tasks, reaped on SIGCHLD: deliveries coalesce, so
 * every wake reaps all that have exited. */
static void *sigchld_main(void *arg)
{
	struct weft_signal sigs;
	struct weft_deadline d;
	int reaped = 0, signo, status;
	char *argv[] = { "true", NULL };

	(void)arg;
	ck_assert_int_eq(weft_signal_open(&sigs, WEFT_SIGNAL(SIGCHLD)), 0);
	for (int i = 0; i < CHILDREN; i++) {
		pid_t pid;

		ck_assert_int_eq(posix_spawn(&pid, "/bin/true", NULL, NULL,
					     argv, environ),
				 0);
	}
	ck_assert_int_eq(weft_deadline_enter(&d, 10 * WEFT_SEC), 0);
	while (reaped < CHILDREN) {
		pid_t pid;

		while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
			ck_assert(WIFEXITED(status));
			reaped++;
		}
		if (reaped < CHILDREN) {
			ck_assert_int_eq(weft_signal_wait(&sigs, &signo), 0);
			ck_assert_int_eq(signo, SIGCHLD);
		}
	}
	weft_deadline_leave(&d);
	ck_assert_int_eq(weft_signal_close(&sigs), 0);
	return NULL;
}

START_TEST(sigchld_reaps)
{
	run_on(WEFT_IO_AUTO, sigchld_main, NULL);
	run_on(WEFT_IO_EPOLL, sigchld_main, NULL);
}
END_TEST

/* ---- pre-fork server ------------------------------------------------- */

static int prefork_lfd;

static void *serve_one(void *arg)
{
	int fd = (int)(intptr_t)arg;
	char buf[64];
	ssize_t n = weft_recv(fd, buf, sizeof(buf), 0);

	if (n > 0) {
		n = snprintf(buf, sizeof(buf), "%d", (int)getpid());
		if (weft_send_all(fd, buf, (size_t)n, 0, NULL) < 0)
			(void)0;
	}
	weft_close(fd);
	return NULL;
}

static void *acceptor(void *arg)
{
	(void)arg;
	for (;;) {
		int fd = weft_accept(prefork_lfd, NULL, NULL);

		if (fd == -ECANCELED)
			return NULL;
		if (fd >= 0 &&
		    weft_spawn(NULL, serve_one, (void *)(intptr_t)fd))
			weft_close(fd);
	}
}

/* A child's main: serves until SIGTERM. */
static void *prefork_child_main(void *arg)
{
	struct weft_signal sigs;
	weft_task_t t;
	int signo;

	(void)arg;
	if (weft_signal_open(&sigs, WEFT_SIGNAL(SIGTERM)))
		return (void *)1;
	if (weft_spawn(&t, acceptor, NULL))
		return (void *)2;
	/* Ready: the parent waits for this. */
	if (write(3, "r", 1) != 1)
		return (void *)3;
	if (weft_signal_wait(&sigs, &signo) || signo != SIGTERM)
		return (void *)4;
	weft_cancel(t);
	if (weft_join(t, NULL))
		return (void *)5;
	weft_signal_close(&sigs);
	return NULL;
}

static void *noop_main(void *arg)
{
	return arg;
}

/* Each child's state, for a failure's message: "running", or how it
 * ended (reaped here). */
static const char *kids_status(const pid_t *kids, int n)
{
	static char msg[256];
	size_t used = 0;

	msg[0] = 0;
	for (int i = 0; i < n && used < sizeof(msg); i++) {
		int status;
		pid_t r = waitpid(kids[i], &status, WNOHANG);

		used += (size_t)snprintf(msg + used, sizeof(msg) - used,
					 "child %d %s %#x; ", i,
					 r == kids[i] ? "ended" : "running",
					 r == kids[i] ? status : 0);
	}
	return msg;
}

static void prefork(enum weft_io_kind io, bool run_before)
{
	enum { NCHILD = 2, CONNS = 40 };
	pid_t kids[NCHILD];
	uint16_t port;
	int ready[2];

	if (run_before)
		run_on(io, noop_main, NULL);
	prefork_lfd = weft_tcp_listen("127.0.0.1", 0, 64, 0);
	ck_assert_int_ge(prefork_lfd, 0);
	port = (uint16_t)weft_local_port(prefork_lfd);
	ck_assert_int_eq(pipe(ready), 0);
	for (int i = 0; i < NCHILD; i++) {
		kids[i] = weft_test_fork();
		if (!kids[i]) {
			struct weft_config cfg = { .workers = 2, .io = io };
			void *res = (void *)9;
			int r;

			alarm(30);
			dup2(ready[1], 3);
			r = weft_run(prefork_child_main, NULL, &cfg, &res);
			_exit(r ? 100 + (-r & 63) : (int)(intptr_t)res);
		}
	}
	/* Only the children hold the write end: one that dies before it
	 * is ready ends the read (with 0) instead of leaving it for good. */
	close(ready[1]);
	for (int i = 0; i < NCHILD; i++) {
		char c;
		ck_assert_msg(read(ready[0], &c, 1) == 1,
			      "a child ended before it was ready: %s",
			      kids_status(kids, NCHILD));
	}
	close(ready[0]);
	for (int i = 0; i < CONNS; i++) {
		char buf[64];
		int fd = weft_connect("127.0.0.1", port);
		ssize_t n;

		ck_assert_int_ge(fd, 0);
		ck_assert_int_eq(weft_send_all(fd, "hi", 2, 0, NULL), 2);
		/* A connection no child accepts stays in the backlog of the
		 * listener this process holds: bounded, not for good. */
		struct pollfd p = { .fd = fd, .events = POLLIN };
		ck_assert_msg(poll(&p, 1, 20000) == 1,
			      "connection %d not served in 20 s: %s", i,
			      kids_status(kids, NCHILD));
		n = weft_recv(fd, buf, sizeof(buf) - 1, 0);
		ck_assert_int_gt(n, 0);
		weft_close(fd);
	}
	for (int i = 0; i < NCHILD; i++)
		kill(kids[i], SIGTERM);
	for (int i = 0; i < NCHILD; i++) {
		int status;

		ck_assert_int_eq(waitpid(kids[i], &status, 0), kids[i]);
		ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
			      "child %d: status %#x", i, status);
	}
	weft_close(prefork_lfd);
}

START_TEST(prefork_server)
{
	prefork(WEFT_IO_AUTO, false);
	prefork(WEFT_IO_EPOLL, false);
	/* The parent ran weft once before it forked. */
	prefork(WEFT_IO_AUTO, true);
	prefork(WEFT_IO_EPOLL, true);
}
END_TEST

/* A pre-fork server whose parent has another thread calling weft while
 * it forks (weft_workers() for a status line, a weft_spawn refused with
 * -ESHUTDOWN): the child has only the forking thread, so the calls the
 * other thread was inside at the fork are none of the child's, and its
 * weft_run must not wait for them. Before, it did, for ever, once main
 * had returned (a child killed by its alarm). */
static atomic_bool caller_stop;

static void *plain_caller(void *arg)
{
	(void)arg;
	while (!atomic_load(&caller_stop)) {
		(void)weft_workers();
		if (weft_spawn(NULL, noop_main, NULL) != -ESHUTDOWN)
			return (void *)1;
	}
	return NULL;
}

/* In and out of the blocking pool's lock, as a pool thread orphaned by an
 * earlier run takes it when its lookup ends at last (weft__blocking_orphans
 * takes the same lock). A fork in that hold gave the child a lock held by
 * a thread it does not have: its weft_run spun for ever in
 * weft__blocking_start. */
static void *pool_lock_taker(void *arg)
{
	(void)arg;
	while (!atomic_load(&caller_stop))
		if (weft__blocking_orphans() < 0)
			return (void *)1;
	return NULL;
}

/* A status thread dumping the tasks (weft_dump, -ESRCH with no runtime):
 * its count of dumps under way, copied into the child at a fork inside
 * one, is a dump the child does not have, and its weft_run waits at stop
 * for every dump under way. The hook, at the dump's entry, widens that
 * window from a few instructions to most of the thread's time. */
static int dumper_fd = -1;

static void slow_dump_entry(void)
{
	usleep(200);
}

static void *plain_dumper(void *arg)
{
	(void)arg;
	while (!atomic_load(&caller_stop))
		if (weft_dump(dumper_fd) != -ESRCH)
			return (void *)1;
	return NULL;
}

/* Forks child i to run call(arg), which must return 0 within secs; one
 * that hangs there dies by SIGALRM, which the message names (what: the
 * call it was in). */
static void child_returns(long i, int (*call)(void *), void *arg, unsigned secs,
			  const char *what)
{
	pid_t pid = weft_test_fork();
	int status;

	if (!pid) {
		/* Check's SIGALRM handler kills the process group. */
		signal(SIGALRM, SIG_DFL);
		alarm(secs);
		_exit(call(arg) ? 1 : 0);
	}
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
		      "child %ld: status %#x (SIGALRM %#x: its %s never "
		      "returned)",
		      i, status, SIGALRM, what);
}

/* A run of one worker on driver *io: 0 or its error. */
static int one_worker_run(void *io)
{
	struct weft_config cfg = { .workers = 1,
				   .io = *(enum weft_io_kind *)io };

	return weft_run(noop_main, NULL, &cfg, NULL);
}

static void prefork_beside_caller(enum weft_io_kind io, void *(*caller)(void *))
{
	pthread_t th;
	void *res;

	atomic_store(&caller_stop, false);
	ck_assert_int_eq(pthread_create(&th, NULL, caller, NULL), 0);
	for (long i = 0; i < SCALED(20); i++)
		child_returns(i, one_worker_run, &io, 10, "weft_run");
	atomic_store(&caller_stop, true);
	ck_assert_int_eq(pthread_join(th, &res), 0);
	ck_assert_ptr_null(res);
}

START_TEST(prefork_beside_plain_caller)
{
	prefork_beside_caller(WEFT_IO_AUTO, plain_caller);
	prefork_beside_caller(WEFT_IO_EPOLL, plain_caller);
}
END_TEST

START_TEST(prefork_beside_dumper)
{
	dumper_fd = open("/dev/null", O_WRONLY | O_CLOEXEC);
	ck_assert_int_ge(dumper_fd, 0);
	weft__dump_enter_hook = slow_dump_entry;
	prefork_beside_caller(WEFT_IO_AUTO, plain_dumper);
	prefork_beside_caller(WEFT_IO_EPOLL, plain_dumper);
	weft__dump_enter_hook = NULL;
	close(dumper_fd);
}
END_TEST

/* A pre-fork server whose parent has another thread reading a pipe with
 * weft_readv (a plain thread: its attempt after a poll is counted on the
 * fd's record, so that a weft_close meanwhile leaves the number to it).
 * The child has no such thread, so no call on the fd: its weft_close must
 * close the fd, not leave it to a call it will never see end. Before, a
 * child forked in such an attempt (about one in ten here, where a 1 MiB
 * read is the attempt) kept the fd open for good, its weft_close
 * returning 0. */
#define BIG_READ (1 << 20)

static int reader_pipe[2];

static void *plain_pipe_reader(void *arg)
{
	struct iovec v = { malloc(BIG_READ), BIG_READ };

	(void)arg;
	while (!atomic_load(&caller_stop))
		if (weft_readv(reader_pipe[0], &v, 1) <= 0)
			break;
	free(v.iov_base);
	return NULL;
}

static void *plain_pipe_writer(void *arg)
{
	char *buf = calloc(1, BIG_READ);

	(void)arg;
	/* Non-blocking, so that it sees the stop while the pipe is full. */
	while (!atomic_load(&caller_stop))
		if (write(reader_pipe[1], buf, BIG_READ) < 0) {
			struct pollfd p = { reader_pipe[1], POLLOUT, 0 };

			if (errno != EAGAIN)
				break;
			(void)poll(&p, 1, 10);
		}
	free(buf);
	return NULL;
}

START_TEST(prefork_closes_fd_a_thread_reads)
{
	pthread_t r, w;
	long kept = 0, n = SCALED(200);

	ck_assert_int_eq(pipe2(reader_pipe, O_CLOEXEC), 0);
	/* Whole 1 MiB reads where the limit allows; smaller ones else. */
	(void)fcntl(reader_pipe[1], F_SETPIPE_SZ, BIG_READ);
	ck_assert_int_eq(fcntl(reader_pipe[0], F_SETFL, O_NONBLOCK), 0);
	ck_assert_int_eq(fcntl(reader_pipe[1], F_SETFL, O_NONBLOCK), 0);
	atomic_store(&caller_stop, false);
	ck_assert_int_eq(pthread_create(&r, NULL, plain_pipe_reader, NULL), 0);
	ck_assert_int_eq(pthread_create(&w, NULL, plain_pipe_writer, NULL), 0);
	for (long i = 0; i < n; i++) {
		pid_t pid = weft_test_fork();
		int status;

		if (!pid) {
			int rc = weft_close(reader_pipe[0]);

			if (rc)
				_exit(2);
			_exit(fcntl(reader_pipe[0], F_GETFD) < 0 &&
					      errno == EBADF
				      ? 0
				      : 1);
		}
		ck_assert_int_eq(waitpid(pid, &status, 0), pid);
		ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) != 2,
			      "child %ld: weft_close failed (status %#x)", i,
			      status);
		kept += WEXITSTATUS(status) == 1;
	}
	atomic_store(&caller_stop, true);
	pthread_join(w, NULL);
	/* The reader may wait for data: the end of file wakes it. */
	close(reader_pipe[1]);
	pthread_join(r, NULL);
	ck_assert_int_eq(weft_close(reader_pipe[0]), 0);
	ck_assert_msg(!kept,
		      "%ld of %ld children still had the fd open after their "
		      "weft_close returned 0",
		      kept, n);
}
END_TEST

/* A pre-fork server whose parent has another thread opening and
 * weft_closing a file: weft_close holds the fd's stripe lock (fdtable.c)
 * across close(2), and the fd record's (fdready.c) inside it. The child
 * has no such thread, so nothing of its holds either: its weft_close of
 * that number must return. Before, a child forked in that hold (about one
 * in three here) waited for the stripe's lock for ever, and with that
 * fixed, spun on the record's. */
static _Atomic int closer_fd = -1;

static void *plain_closer(void *arg)
{
	(void)arg;
	while (!atomic_load(&caller_stop)) {
		int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);

		if (fd < 0)
			return (void *)1;
		atomic_store(&closer_fd, fd);
		if (weft_close(fd))
			return (void *)2;
	}
	return NULL;
}

/* In the child: the closer's last fd, open or closed there (either
 * answer will do), closed. 0, or weft_close's other error. */
static int close_closers_fd(void *arg)
{
	int r = weft_close(atomic_load(&closer_fd));

	(void)arg;
	return r == -EBADF ? 0 : r;
}

START_TEST(prefork_closes_fd_a_thread_closes)
{
	pthread_t th;
	void *res;
	int p[2];
	char c = 'x';
	struct iovec v = { &c, 1 };

	/* A read through weft first, so that the low numbers have records
	 * (weft_close then takes a record's lock too, inside the stripe's),
	 * whichever cases ran before. */
	ck_assert_int_eq(pipe2(p, O_CLOEXEC), 0);
	ck_assert_int_eq(write(p[1], &c, 1), 1);
	ck_assert_int_eq(weft_readv(p[0], &v, 1), 1);
	ck_assert_int_eq(weft_close(p[0]), 0);
	ck_assert_int_eq(weft_close(p[1]), 0);
	atomic_store(&caller_stop, false);
	ck_assert_int_eq(pthread_create(&th, NULL, plain_closer, NULL), 0);
	while (atomic_load(&closer_fd) < 0)
		usleep(100);
	for (long i = 0; i < SCALED(20); i++)
		child_returns(i, close_closers_fd, NULL, 5, "weft_close");
	atomic_store(&caller_stop, true);
	ck_assert_int_eq(pthread_join(th, &res), 0);
	ck_assert_ptr_null(res);
}
END_TEST

START_TEST(prefork_beside_pool_lock)
{
	/* A pre-fork server that ran weft before it forked. */
	ck_assert_int_eq(weft_run(noop_main, NULL, NULL, NULL), 0);
	prefork_beside_caller(WEFT_IO_AUTO, pool_lock_taker);
	prefork_beside_caller(WEFT_IO_EPOLL, pool_lock_taker);
}
END_TEST

/* ---- fork while running ---------------------------------------------- */

/* In the child of a fork from a running program, weft_run is refused
 * (the parent's run owns the copied state), from a task's thread or a
 * plain thread. */
static void *child_run_refused(void *arg)
{
	pid_t pid = weft_test_fork();
	int status;

	(void)arg;
	if (!pid) {
		alarm(10);
		_exit(weft_run(noop_main, NULL, NULL, NULL) == -EBUSY ? 0 : 1);
	}
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	return NULL;
}

static void *fork_running_main(void *arg)
{
	pthread_t th;

	child_run_refused(arg);
	ck_assert_int_eq(pthread_create(&th, NULL, child_run_refused, NULL), 0);
	ck_assert_int_eq(pthread_join(th, NULL), 0);
	return NULL;
}

START_TEST(fork_while_running)
{
	run_on(WEFT_IO_AUTO, fork_running_main, NULL);
	run_on(WEFT_IO_EPOLL, fork_running_main, NULL);
}
END_TEST

/* A child forked from a task that calls weft: it has no runtime (its
 * thread is a plain one), and the parent's I/O goes on untouched. Before,
 * the child's worker loop drove the parent's poll set and rings: the
 * parent's events went to the child, the child waited for ever. */
static int echo_sv[2];

static void *echo_task(void *arg)
{
	char b[8];

	(void)arg;
	for (;;) {
		ssize_t n = weft_recv(echo_sv[1], b, sizeof(b), 0);

		if (n <= 0 ||
		    weft_send_all(echo_sv[1], b, (size_t)n, 0, NULL) != n)
			return NULL;
	}
}

static int child_of_task(void)
{
	int sv[2], r;
	char b[4];

	/* A park is refused (plain thread), not made on the parent's
	 * driver. */
	if (weft_sleep(WEFT_MSEC) != -EPERM)
		return 1;
	if (weft_spawn(NULL, echo_task, NULL) != -ESHUTDOWN)
		return 2;
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv))
		return 3;
	for (int i = 0; i < 200; i++) {
		if (weft_send_all(sv[0], "ping", 4, 0, NULL) != 4 ||
		    (r = (int)weft_recv(sv[1], b, 4, MSG_WAITALL)) != 4)
			return 4;
	}
	return 0;
}

static void *fork_task_main(void *arg)
{
	struct weft_deadline d;
	weft_task_t e;
	char b[4];
	pid_t pid;
	int status, failed = -1;

	(void)arg;
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0,
				    echo_sv),
			 0);
	ck_assert_int_eq(weft_spawn(&e, echo_task, NULL), 0);
	pid = weft_test_fork();
	if (!pid) {
		alarm(10);
		_exit(child_of_task());
	}
	ck_assert_int_eq(weft_deadline_enter(&d, 10 * WEFT_SEC), 0);
	for (int i = 0; i < 5000 && failed < 0; i++)
		if (weft_send_all(echo_sv[0], "ping", 4, 0, NULL) != 4 ||
		    weft_recv(echo_sv[0], b, 4, MSG_WAITALL) != 4)
			failed = i;
	weft_deadline_leave(&d);
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	weft_cancel(e);
	ck_assert_int_eq(weft_join(e, NULL), 0);
	close(echo_sv[0]);
	close(echo_sv[1]);
	ck_assert_msg(failed < 0, "the parent's echo stalled at %d", failed);
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
		      "child: status %#x", status);
	return NULL;
}

START_TEST(child_of_task_calls_weft)
{
	for (int i = 0; i < 3; i++) {
		run_on(WEFT_IO_AUTO, fork_task_main, NULL);
		run_on(WEFT_IO_EPOLL, fork_task_main, NULL);
	}
}
END_TEST

/* ---- signals across fork ------------------------------------------------ */

/* A registration the parent opened before fork (a master waiting for
 * SIGCHLD or SIGHUP on a plain thread) must not take the signals of a
 * child's own registrations: each process has its own deliveries. */
static void *parent_waiter(void *arg)
{
	struct weft_signal *s = arg;
	int signo;

	return (void *)(intptr_t)weft_signal_wait(s, &signo);
}

static void *signal_child_main(void *arg)
{
	struct weft_signal sigs;
	struct weft_deadline d;
	int signo, r;

	(void)arg;
	if (weft_signal_open(&sigs, WEFT_SIGNAL(SIGUSR2)))
		return (void *)1;
	for (int i = 0; i < 20; i++) {
		if (kill(getpid(), SIGUSR2) ||
		    weft_deadline_enter(&d, 2 * WEFT_SEC))
			return (void *)2;
		r = weft_signal_wait(&sigs, &signo);
		weft_deadline_leave(&d);
		if (r)
			return (void *)3; /* the delivery was lost */
	}
	weft_signal_close(&sigs);
	return NULL;
}

static void signals_across_fork(enum weft_io_kind io)
{
	struct weft_signal sigs;
	pthread_t th;
	pid_t pid;
	int status;

	ck_assert_int_eq(weft_signal_open(&sigs, WEFT_SIGNAL(SIGUSR1)), 0);
	ck_assert_int_eq(pthread_create(&th, NULL, parent_waiter, &sigs), 0);
	usleep(50 * 1000); /* the thread waits */
	pid = weft_test_fork();
	if (!pid) {
		struct weft_config cfg = { .workers = 2, .io = io };
		void *res = (void *)9;
		int r;

		alarm(60);
		r = weft_run(signal_child_main, NULL, &cfg, &res);
		_exit(r ? 100 : (int)(intptr_t)res);
	}
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	/* The parent's waiter still gets its own signal. */
	ck_assert_int_eq(pthread_kill(th, SIGUSR1), 0);
	ck_assert_int_eq(pthread_join(th, NULL), 0);
	ck_assert_int_eq(weft_signal_close(&sigs), 0);
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
		      "child: status %#x (exit 3: its SIGUSR2 was lost)",
		      status);
}

START_TEST(signal_registrations_across_fork)
{
	signals_across_fork(WEFT_IO_AUTO);
	signals_across_fork(WEFT_IO_EPOLL);
}
END_TEST

/* A delivery the parent has not taken yet is the parent's: a child forked
 * meanwhile starts with none pending, as the kernel empties a child's
 * pending signals (a pre-fork master's SIGHUP, not yet waited for, would
 * reach every worker it forks then). The child sees its own. */
START_TEST(parents_pending_signal_stays_the_parents)
{
	struct weft_signal sigs;
	int signo, status;
	pid_t pid;

	ck_assert_int_eq(weft_signal_open(&sigs, WEFT_SIGNAL(SIGUSR1) |
							 WEFT_SIGNAL(SIGUSR2)),
			 0);
	ck_assert_int_eq(pthread_kill(pthread_self(), SIGUSR1), 0);
	pid = weft_test_fork();
	if (!pid) {
		alarm(60);
		/* Its own SIGUSR2; the parent's SIGUSR1, lower, would come
		 * out first were it pending here too. */
		if (pthread_kill(pthread_self(), SIGUSR2) ||
		    weft_signal_wait(&sigs, &signo))
			_exit(100);
		_exit(signo);
	}
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == SIGUSR2,
		      "child: status %#x (exit %d: the parent's SIGUSR1)",
		      status, SIGUSR1);
	/* The parent still has its own. */
	ck_assert_int_eq(weft_signal_wait(&sigs, &signo), 0);
	ck_assert_int_eq(signo, SIGUSR1);
	ck_assert_int_eq(weft_signal_close(&sigs), 0);
}
END_TEST

/* ---- plain threads' private rings across fork ------------------------------ */

struct rd {
	int fd;
	char *buf;
};

static void prep_read(struct io_uring_sqe *sqe, void *arg)
{
	struct rd *r = arg;

	io_uring_prep_read(sqe, r->fd, r->buf, 16, 0);
}

/* Reads /dev/zero n times on this thread's private ring; 0 if every read
 * returned its 16 bytes. */
static int ring_reads(int n)
{
	char buf[16];
	struct rd r = { open("/dev/zero", O_RDONLY | O_CLOEXEC), buf };
	int bad = 0;

	for (int i = 0; i < n && !bad; i++)
		bad = weft_io_submit(r.fd, prep_read, &r) != 16;
	close(r.fd);
	return bad;
}

/* A thread that used weft_io_submit forks: parent and child each go on
 * with their own ring, not one shared. */
START_TEST(private_ring_across_fork)
{
	enum { N = 20000 };
	pid_t pid;
	int status;

	if (ring_reads(1)) /* the ring is made; no io_uring: nothing to test */
		return;
	pid = weft_test_fork();
	if (!pid) {
		alarm(20);
		_exit(ring_reads(N));
	}
	alarm(30);
	ck_assert_int_eq(ring_reads(N), 0);
	alarm(0);
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
		      "child: status %#x", status);
}
END_TEST

/* ---- many waiters, many signals ----------------------------------------- */

#define REGS 4
#define PER_REG 3

static struct weft_signal regs[REGS];
static atomic_int woken[REGS];
static atomic_bool storm_over;

/* Waits on its registration until the storm is over and one more delivery
 * came after it. */
static void *storm_waiter(void *arg)
{
	int i = (int)(intptr_t)arg, signo;

	for (;;) {
		bool over = atomic_load(&storm_over);

		if (weft_signal_wait(&regs[i], &signo))
			return (void *)1;
		atomic_fetch_add(&woken[i], 1);
		if (over)
			return NULL;
	}
}

static void *spin_task(void *arg)
{
	int64_t end = weft_now() + (int64_t)(intptr_t)arg;

	while (weft_now() < end)
		;
	return NULL;
}

static void *storm_main(void *arg)
{
	weft_task_t t[REGS * PER_REG], spin[WORKERS];
	struct weft_deadline d;
	void *res;

	(void)arg;
	atomic_store(&storm_over, false);
	for (int i = 0; i < REGS; i++) {
		atomic_store(&woken[i], 0);
		ck_assert_int_eq(weft_signal_open(&regs[i],
						  WEFT_SIGNAL(SIGUSR1) |
							  WEFT_SIGNAL(SIGUSR2)),
				 0);
	}
	for (int i = 0; i < REGS * PER_REG; i++)
		ck_assert_int_eq(weft_spawn(&t[i], storm_waiter,
					    (void *)(intptr_t)(i % REGS)),
				 0);
	weft_sleep(20 * WEFT_MSEC);
	for (int i = 0; i < 5000; i++)
		kill(getpid(), i & 1 ? SIGUSR1 : SIGUSR2);
	/* Every worker busy when the last signals come. */
	for (int i = 0; i < WORKERS; i++)
		ck_assert_int_eq(weft_spawn(&spin[i], spin_task,
					    (void *)(intptr_t)(100 * WEFT_MSEC)),
				 0);
	weft_sleep(10 * WEFT_MSEC);
	atomic_store(&storm_over, true);
	ck_assert_int_eq(weft_deadline_enter(&d, 10 * WEFT_SEC), 0);
	/* Each waiter returns after a delivery it saw after storm_over: as
	 * one delivery goes to one waiter of a registration, send until
	 * all are done. */
	for (int i = 0; i < REGS * PER_REG; i++) {
		weft_task_t tt = t[i];
		struct weft_select_case c[] = {
			WEFT_CASE_JOIN(tt, &res),
			WEFT_CASE_TIMEOUT(20 * WEFT_MSEC),
		};
		int r;

		while ((r = weft_select(c, 2)) == 1)
			kill(getpid(), SIGUSR1);
		ck_assert_int_eq(r, 0);
		ck_assert_ptr_null(res);
	}
	weft_deadline_leave(&d);
	for (int i = 0; i < WORKERS; i++)
		ck_assert_int_eq(weft_join(spin[i], NULL), 0);
	for (int i = 0; i < REGS; i++) {
		ck_assert_int_gt(atomic_load(&woken[i]), 0);
		ck_assert_int_eq(weft_signal_close(&regs[i]), 0);
	}
	return NULL;
}

START_TEST(many_waiters_coalescing)
{
	run_on(WEFT_IO_AUTO, storm_main, NULL);
	run_on(WEFT_IO_EPOLL, storm_main, NULL);
}
END_TEST

/* ---- EINTR on plain threads ---------------------------------------------- */

static void on_usr1(int signo)
{
	(void)signo;
}

static atomic_bool pestering;

/* Signals target until told to stop, every 200 us. */
static void *pester(void *arg)
{
	pthread_t target = *(pthread_t *)arg;

	while (atomic_load(&pestering)) {
		pthread_kill(target, SIGUSR1);
		usleep(200);
	}
	return NULL;
}

static void *slow_sender(void *arg)
{
	int fd = (int)(intptr_t)arg;

	weft_sleep(100 * WEFT_MSEC);
	if (weft_send_all(fd, "abcd", 4, 0, NULL) != 4)
		return (void *)1;
	weft_sleep(100 * WEFT_MSEC);
	return NULL;
}

struct eintr_arg {
	int fd;        /* the receiving end */
	weft_task_t t; /* slow_sender */
};

static void *eintr_thread(void *arg)
{
	struct eintr_arg *a = arg;
	pthread_t me = pthread_self(), p;
	char buf[4];
	ssize_t n;
	void *res;
	int64_t t0;

	atomic_store(&pestering, true);
	ck_assert_int_eq(pthread_create(&p, NULL, pester, &me), 0);
	/* The runtime's sockets are non-blocking: weft waits in poll, and
	 * an interruption only makes it look again. */
	n = weft_recv(a->fd, buf, sizeof(buf), MSG_WAITALL);
	ck_assert_int_eq(n, 4);
	/* A join waits on a futex. */
	ck_assert_int_eq(weft_join(a->t, &res), 0);
	ck_assert_ptr_null(res);
	/* A select's timeout case is not stretched by interruptions: one
	 * that started its 50 ms again at each would never end, with a
	 * signal every 200 us. The bound is generous, for a loaded host. */
	t0 = weft_now();
	struct weft_select_case c[] = { WEFT_CASE_TIMEOUT(50 * WEFT_MSEC) };
	ck_assert_int_eq(weft_select(c, 1), 0);
	ck_assert_int_ge(weft_now() - t0, 50 * WEFT_MSEC);
	ck_assert_int_lt(weft_now() - t0, 5 * WEFT_SEC);
	atomic_store(&pestering, false);
	pthread_join(p, NULL);
	return NULL;
}

static void *eintr_main(void *arg)
{
	struct pair tp = tcp_pair();
	struct eintr_arg a = { tp.b, { 0 } };
	pthread_t th;

	(void)arg;
	ck_assert_int_eq(weft_spawn(&a.t, slow_sender, (void *)(intptr_t)tp.a),
			 0);
	ck_assert_int_eq(pthread_create(&th, NULL, eintr_thread, &a), 0);
	/* The worker waits for the thread: it has spare workers. */
	ck_assert_int_eq(pthread_join(th, NULL), 0);
	weft_close(tp.a);
	weft_close(tp.b);
	return NULL;
}

static void eintr_with(int flags)
{
	struct sigaction sa = { .sa_handler = on_usr1, .sa_flags = flags }, old;

	sigemptyset(&sa.sa_mask);
	ck_assert_int_eq(sigaction(SIGUSR1, &sa, &old), 0);
	run_on(WEFT_IO_AUTO, eintr_main, NULL);
	run_on(WEFT_IO_EPOLL, eintr_main, NULL);
	sigaction(SIGUSR1, &old, NULL);
}

START_TEST(plain_thread_eintr)
{
	eintr_with(0);
	eintr_with(SA_RESTART);
}
END_TEST

/* A plain thread's stream close lingers until the peer closes, also
 * when a handler without SA_RESTART interrupts its poll. */
static int linger_peer;

static void *close_peer_later(void *arg)
{
	(void)arg;
	usleep(300 * 1000);
	close(linger_peer);
	return NULL;
}

START_TEST(plain_linger_eintr)
{
	struct sigaction sa = { .sa_handler = on_usr1 }, old;
	struct weft_stream st;
	pthread_t me = pthread_self(), p, closer;
	uint16_t port;
	int lfd, fd;
	int64_t t0, took;

	sigemptyset(&sa.sa_mask);
	ck_assert_int_eq(sigaction(SIGUSR1, &sa, &old), 0);
	lfd = weft_tcp_listen("127.0.0.1", 0, 4, 0);
	ck_assert_int_ge(lfd, 0);
	port = (uint16_t)weft_local_port(lfd);
	ck_assert_int_ge(fd = weft_connect("127.0.0.1", port), 0);
	ck_assert_int_ge(linger_peer = weft_accept(lfd, NULL, NULL), 0);
	weft_close(lfd);
	ck_assert_int_eq(weft_stream_init(&st, fd, 0), 0);
	/* Read before the peer starts its 300 ms: a loaded host that kept
	 * this thread off its CPU between the two would take that time from
	 * the linger's (as in test_io_stream's linger_without_end). */
	t0 = weft_now();
	ck_assert_int_eq(pthread_create(&closer, NULL, close_peer_later, NULL),
			 0);
	atomic_store(&pestering, true);
	ck_assert_int_eq(pthread_create(&p, NULL, pester, &me), 0);
	ck_assert_int_eq(weft_stream_close(&st, 5 * WEFT_SEC), 0);
	took = weft_now() - t0;
	atomic_store(&pestering, false);
	pthread_join(p, NULL);
	pthread_join(closer, NULL);
	sigaction(SIGUSR1, &old, NULL);
	ck_assert_msg(took >= 200 * WEFT_MSEC,
		      "the linger ended after %lld us, before the peer closed",
		      (long long)(took / WEFT_USEC));
}
END_TEST

int main(int argc, char **argv)
{
	if (argc > 1 && !strcmp(argv[1], "--report"))
		return report();

	Suite *s = suite_create("process");
	/* A case each, so that CK_RUN_CASE picks one. */
#define CASE(t)                                                                \
	do {                                                                   \
		TCase *tc = tcase_create(#t);                                  \
		tcase_set_timeout(tc, 120);                                    \
		tcase_add_test(tc, t);                                         \
		suite_add_tcase(s, tc);                                        \
	} while (0)
	/* ThreadSanitizer supports neither threads started in the child of a
	 * multi-threaded fork (it dies) nor, reliably, a fork with threads
	 * running; and a process-directed signal waits there for its thread
	 * to enter an intercepted call (see test_io_signal.c). */
#ifndef __SANITIZE_THREAD__
	CASE(no_leak_uring);
	CASE(no_leak_epoll);
	CASE(no_leak_during_dump);
	CASE(prefork_server);
	CASE(prefork_beside_plain_caller);
	CASE(prefork_beside_pool_lock);
	CASE(prefork_beside_dumper);
	CASE(prefork_closes_fd_a_thread_reads);
	CASE(prefork_closes_fd_a_thread_closes);
	CASE(signal_registrations_across_fork);
	CASE(parents_pending_signal_stays_the_parents);
	CASE(many_waiters_coalescing);
	CASE(fork_while_running);
	CASE(child_of_task_calls_weft);
	CASE(private_ring_across_fork);
#else
	(void)no_leak_uring;
	(void)no_leak_epoll;
	(void)no_leak_during_dump;
	(void)prefork_server;
	(void)prefork_beside_plain_caller;
	(void)prefork_beside_pool_lock;
	(void)prefork_beside_dumper;
	(void)prefork_closes_fd_a_thread_reads;
	(void)prefork_closes_fd_a_thread_closes;
	(void)signal_registrations_across_fork;
	(void)parents_pending_signal_stays_the_parents;
	(void)many_waiters_coalescing;
	(void)fork_while_running;
	(void)child_of_task_calls_weft;
	(void)private_ring_across_fork;
#endif
	CASE(sigchld_reaps);
	CASE(plain_thread_eintr);
	CASE(plain_linger_eintr);
	return weft_test_main(s);
}
