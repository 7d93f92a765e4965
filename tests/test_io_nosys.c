/*
 * Where io_uring cannot be set up (a container's seccomp profile, the
 * io_uring_disabled sysctl, an old kernel), auto runs on epoll, silently;
 * io_uring forced fails with -ENOSYS and one clear line on stderr.
 *
 * The container case for real: a forked child installs a seccomp filter
 * that fails io_uring_setup with EPERM (what Docker's default profile does)
 * or ENOSYS (an old kernel), then runs weft. The child reports by its exit
 * status; the parent asserts on it.
 */
#include <errno.h>
#include <fcntl.h>
#include <liburing.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <signal.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include "test_io_util.h"
#include "drivers/io_uring/op.h"
#include "test_preps.h"

#define CHILD_FAIL(...)                                                        \
	do {                                                                   \
		fprintf(stderr, "child: " __VA_ARGS__);                        \
		fprintf(stderr, "\n");                                         \
		_exit(1);                                                      \
	} while (0)

#if defined(__x86_64__)
#define AUDIT_ARCH_SELF AUDIT_ARCH_X86_64
#elif defined(__aarch64__)
#define AUDIT_ARCH_SELF AUDIT_ARCH_AARCH64
#else
#error "the seccomp filter needs this CPU's AUDIT_ARCH_"
#endif

/* The child's status when seccomp is missing (qemu's user mode refuses
 * filters: they would judge its own system calls, not the program's). */
#define CHILD_NO_SECCOMP 77

/* Makes system call nr fail with err for this process from now on: 0, or
 * the errno of a seccomp refused (EINVAL: none here, as in qemu's user
 * mode). */
static int deny_syscall(int nr, int err)
{
	struct sock_filter f[] = {
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS,
			 offsetof(struct seccomp_data, arch)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_SELF, 1, 0),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS,
			 offsetof(struct seccomp_data, nr)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (unsigned)nr, 0, 1),
		BPF_STMT(BPF_RET | BPF_K,
			 SECCOMP_RET_ERRNO |
				 ((unsigned)err & SECCOMP_RET_DATA)),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
	};
	struct sock_fprog prog = { .len = sizeof(f) / sizeof(f[0]),
				   .filter = f };

	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0))
		CHILD_FAIL("no_new_privs: %s", strerror(errno));
	if (prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog)) {
		if (errno != EINVAL)
			CHILD_FAIL("cannot install seccomp: %s",
				   strerror(errno));
		return EINVAL;
	}
	return 0;
}

/* Makes io_uring_setup fail with err for this process from now on. Where
 * seccomp is missing but io_uring_setup fails with err already (qemu's user
 * mode has no io_uring: ENOSYS), the case stands without a filter. */
static void deny_io_uring(int err)
{
	if (deny_syscall(__NR_io_uring_setup, err) &&
	    (syscall(__NR_io_uring_setup, 4, NULL) != -1 || errno != err))
		_exit(CHILD_NO_SECCOMP);
	if (syscall(__NR_io_uring_setup, 4, NULL) != -1 || errno != err)
		CHILD_FAIL("the filter does not deny io_uring_setup");
}

static void *echo_once(void *arg)
{
	int lfd = (int)(intptr_t)arg, fd = weft_accept(lfd, NULL, NULL);
	char buf[64];
	ssize_t n;

	if (fd < 0)
		return (void *)(intptr_t)fd;
	while ((n = weft_recv(fd, buf, sizeof(buf), 0)) > 0)
		if (weft_send_all(fd, buf, (size_t)n, 0, NULL) != n)
			break;
	weft_close(fd);
	return NULL;
}

/* weft's main in the child: TCP echo and a sleep, on epoll. */
static void *serve_on_epoll(void *arg)
{
	uint16_t port;
	int lfd, fd;
	char buf[6] = { 0 };
	weft_task_t server;
	int64_t t0;

	if (weft_io_driver() != WEFT_IO_EPOLL)
		CHILD_FAIL("driver %d, not epoll", (int)weft_io_driver());
	lfd = weft_tcp_listen("127.0.0.1", 0, 0, 0);
	port = (uint16_t)weft_local_port(lfd);
	if (weft_spawn(&server, echo_once, (void *)(intptr_t)lfd))
		CHILD_FAIL("spawn");
	fd = weft_connect("127.0.0.1", port);
	if (fd < 0)
		CHILD_FAIL("connect: %d", fd);
	if (weft_send_all(fd, "hello", 5, 0, NULL) != 5 ||
	    io_recv_exact(fd, buf, 5) != 5 || strcmp(buf, "hello"))
		CHILD_FAIL("echo: got '%s'", buf);
	weft_close(fd);
	if (weft_join(server, NULL))
		CHILD_FAIL("join");
	weft_close(lfd);
	t0 = weft_now();
	if (weft_sleep(20 * 1000000) || weft_now() - t0 < 20 * 1000000)
		CHILD_FAIL("sleep");
	return (void *)1;
}

static void *uses_ring(void *arg)
{
	ck_assert_int_eq(weft_io_driver(), WEFT_IO_URING);
	return NULL;
}

static void *never(void *arg)
{
	CHILD_FAIL("main ran without io_uring");
	return NULL;
}

/* Runs weft_run forcing io_uring (by cfg or by env) with stderr in a file;
 * fails unless it returns -ENOSYS and printed one line naming io_uring. */
static void forced_fails(bool by_env, const char *must_say)
{
	char path[] = "/tmp/weft-nosys-XXXXXX", out[1024];
	int fd = mkstemp(path), saved = dup(2), r;
	struct weft_config cfg = { .workers = 2 };
	const char *nl;
	ssize_t n;

	if (by_env)
		setenv("WEFT_IO", "io_uring", 1);
	else
		cfg.io = WEFT_IO_URING;
	unlink(path);
	fflush(stderr);
	dup2(fd, 2);
	r = weft_run(never, NULL, &cfg, NULL);
	fflush(stderr);
	dup2(saved, 2);
	close(saved);
	unsetenv("WEFT_IO");
	n = pread(fd, out, sizeof(out) - 1, 0);
	out[n > 0 ? n : 0] = 0;
	close(fd);
	if (r != -ENOSYS)
		CHILD_FAIL("forced io_uring returned %d", r);
	nl = strchr(out, '\n');
	if (!nl || nl[1] || !strstr(out, "io_uring") ||
	    (must_say && !strstr(out, must_say)))
		CHILD_FAIL("not one clear line: '%s'", out);
}

static void child(int err)
{
	struct weft_config cfg = { .workers = 2 };
	void *res = NULL;
	int r;

	deny_io_uring(err);
	unsetenv("WEFT_IO");
	r = weft_run(serve_on_epoll, NULL, &cfg, &res);
	if (r || res != (void *)1)
		CHILD_FAIL("auto: weft_run %d", r);
	if (weft_io_driver() != WEFT_IO_AUTO)
		CHILD_FAIL("a driver reported after weft_run");
	forced_fails(false, err != ENOSYS ? "not permitted" : NULL);
	forced_fails(true, err != ENOSYS ? "not permitted" : NULL);
	/* And weft still runs after the failures, on epoll. */
	r = weft_run(serve_on_epoll, NULL, &cfg, &res);
	if (r)
		CHILD_FAIL("auto after forced: %d", r);
	_exit(0);
}

/*
 * A profile may allow io_uring_setup and refuse io_uring_enter: rings are
 * made, and every submit fails. Auto took io_uring on the probe's ring,
 * and the first file call never returned (its worker retried the refused
 * submit for ever); a forced io_uring ran the same way; a plain thread's
 * weft_io_submit said the refused enter's -EPERM. Such a ring is as
 * unusable as one that cannot be set up: -ENOSYS, as io.h says.
 */
static void enter_child(void)
{
	struct weft_config cfg = { .workers = 2 };
	void *res = NULL;
	int r;

	if (deny_syscall(__NR_io_uring_enter, EPERM))
		_exit(CHILD_NO_SECCOMP);
	unsetenv("WEFT_IO");
	r = weft_run(serve_on_epoll, NULL, &cfg, &res);
	if (r || res != (void *)1)
		CHILD_FAIL("auto: weft_run %d", r);
	forced_fails(false, "not permitted");
	if ((r = weft_io_submit(-1, prep_nop, NULL)) != -ENOSYS)
		CHILD_FAIL("a plain thread's submit: %d", r);
	_exit(0);
}

static void run_denied(int err)
{
	int status;
	pid_t pid;

	fflush(NULL);
	pid = weft_test_fork();
	if (pid == 0) {
		if (err)
			child(err);
		enter_child();
	}
	status = weft_test_wait_child(pid, 10000, "the child hangs");
	if (WIFEXITED(status) && WEXITSTATUS(status) == CHILD_NO_SECCOMP) {
		/* Only where io_uring is missing anyway, so that the whole
		 * suite runs on the fallback. */
		ck_assert(syscall(__NR_io_uring_setup, 4, NULL) == -1 &&
			  errno == ENOSYS);
		printf("seccomp unavailable (an emulator?): %s case skipped\n",
		       strerror(err));
		return;
	}
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
		      "child failed (status %#x): see its stderr", status);
}

START_TEST(seccomp_eperm)
{
	run_denied(EPERM); /* Docker, containerd, Kubernetes RuntimeDefault */
}
END_TEST

/* io_uring_setup allowed, io_uring_enter refused (run_denied's 0). */
START_TEST(seccomp_eperm_enter_only)
{
	run_denied(0);
}
END_TEST

START_TEST(seccomp_enosys)
{
	run_denied(ENOSYS); /* a kernel without io_uring */
}
END_TEST

/* An LSM's denial (SELinux's io_uring permission checks say EACCES): as
 * unavailable as the others, so a forced io_uring says -ENOSYS. */
START_TEST(lsm_eacces)
{
	run_denied(EACCES);
}
END_TEST

/*
 * A seccomp profile that predates epoll_pwait2 (Linux 5.11) may refuse it
 * with EPERM, as Docker's default refuses what it does not list, rather
 * than ENOSYS. A worker's timed sleep in epoll (both drivers sleep in the
 * poll set: a 100 ms weft_sleep on one worker) must then fall back on
 * epoll_wait and sleep; before the fix only ENOSYS did, and every sleep
 * returned at once with EPERM: the worker spun, parking some 70 000 times
 * in 200 ms.
 */
static void *sleep_parks_little(void *arg)
{
	struct weft_worker_metrics m;

	if (weft_sleep(100 * WEFT_MSEC))
		CHILD_FAIL("sleep");
	if (weft_worker_metrics(0, &m))
		CHILD_FAIL("metrics");
	if (m.parks > 50)
		CHILD_FAIL("%s: %llu parks in a 100 ms sleep",
			   weft_io_driver() == WEFT_IO_EPOLL ? "epoll"
							     : "io_uring",
			   (unsigned long long)m.parks);
	return (void *)1;
}

static void pwait2_child(void)
{
	enum weft_io_kind kinds[] = { WEFT_IO_EPOLL, WEFT_IO_URING };
	void *res;
	int r;

	if (deny_syscall(__NR_epoll_pwait2, EPERM))
		_exit(CHILD_NO_SECCOMP);
	for (int i = 0; i < 2; i++) {
		struct weft_config cfg = { .workers = 1, .io = kinds[i] };

		res = NULL;
		r = weft_run(sleep_parks_little, NULL, &cfg, &res);
		if (r == -ENOSYS && kinds[i] == WEFT_IO_URING)
			continue; /* no io_uring here */
		if (r || res != (void *)1)
			CHILD_FAIL("weft_run %d", r);
	}
	_exit(0);
}

START_TEST(seccomp_eperm_epoll_pwait2)
{
	int status;
	pid_t pid;

	fflush(NULL);
	pid = weft_test_fork();
	if (pid == 0)
		pwait2_child();
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	if (WIFEXITED(status) && WEXITSTATUS(status) == CHILD_NO_SECCOMP) {
		printf("seccomp unavailable (an emulator?): case skipped\n");
		return;
	}
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
		      "child failed (status %#x): see its stderr", status);
}
END_TEST

/* Bad choices are -EINVAL, not a guess. */
START_TEST(bad_choice)
{
	struct weft_config cfg = { .workers = 1, .io = (enum weft_io_kind)7 };

	ck_assert_int_eq(weft_run(never, NULL, &cfg, NULL), -EINVAL);
	setenv("WEFT_IO", "kqueue", 1);
	ck_assert_int_eq(weft_run(never, NULL, NULL, NULL), -EINVAL);
	unsetenv("WEFT_IO");
	ck_assert_int_eq(weft_io_driver(), WEFT_IO_AUTO);
}
END_TEST

/* ---- the probe's ring granted, the workers' refused ------------------ */

/*
 * Up to Linux 5.11 a ring's memory counts against RLIMIT_MEMLOCK (64 KiB
 * by default there): the probe's 4-entry ring fits, the workers' larger
 * ones may not, and their setup fails with ENOMEM. Later kernels charge
 * the memory cgroup instead, so a lowered limit does not refuse them: the
 * test refuses the workers' setup through weft__ring_setup_fn. Auto must
 * then run on epoll, silently, as if the probe had failed; a forced
 * io_uring fails with the error and says why.
 */
static _Atomic int ring_setups, ring_refusals;

static int refuse_ring(void)
{
	atomic_fetch_add(&ring_refusals, 1);
	return -ENOMEM;
}

/* The first worker's ring is granted (it must be closed again), the
 * others' refused. */
static int refuse_after_first(unsigned entries, struct io_uring *ring,
			      struct io_uring_params *p)
{
	if (atomic_fetch_add(&ring_setups, 1) > 0)
		return refuse_ring();
	return io_uring_queue_init_params(entries, ring, p);
}

static int refuse_all(unsigned entries, struct io_uring *ring,
		      struct io_uring_params *p)
{
	(void)entries, (void)ring, (void)p;
	return refuse_ring();
}

/* weft_run(main) with cfg and stderr in out; returns weft_run's result. */
static int run_quoting_stderr(weft_fn main, const struct weft_config *cfg,
			      void **res, char *out, size_t size)
{
	char path[] = "/tmp/weft-nosys-XXXXXX";
	int fd = mkstemp(path), saved = dup(2), r;
	ssize_t n;

	ck_assert_int_ge(fd, 0);
	unlink(path);
	fflush(stderr);
	dup2(fd, 2);
	r = weft_run(main, NULL, cfg, res);
	fflush(stderr);
	dup2(saved, 2);
	close(saved);
	n = pread(fd, out, size - 1, 0);
	out[n > 0 ? n : 0] = 0;
	close(fd);
	return r;
}

static void auto_falls_back(int (*setup)(unsigned, struct io_uring *,
					 struct io_uring_params *))
{
	struct weft_config cfg = { .workers = 3 };
	char out[1024];
	void *res = NULL;

	atomic_store(&ring_setups, 0);
	atomic_store(&ring_refusals, 0);
	weft__ring_setup_fn = setup;
	ck_assert_int_eq(run_quoting_stderr(serve_on_epoll, &cfg, &res, out,
					    sizeof(out)),
			 0);
	weft__ring_setup_fn = io_uring_queue_init_params;
	ck_assert_ptr_eq(res, (void *)1);
	ck_assert_int_ge(atomic_load(&ring_refusals), 1);
	ck_assert_str_eq(out, ""); /* silently, as after a failed probe */
	ck_assert_int_eq(weft_io_driver(), WEFT_IO_AUTO);
}

START_TEST(worker_rings_refused)
{
	struct weft_config cfg = { .workers = 3, .io = WEFT_IO_URING };
	const char *env = getenv("WEFT_IO");
	char *saved_env = env ? strdup(env) : NULL, out[1024];

	if (weft__uring_probe()) {
		printf("no io_uring here: worker_rings_refused skipped\n");
		free(saved_env);
		return;
	}
	unsetenv("WEFT_IO"); /* auto, whichever driver the suite runs on */
	auto_falls_back(refuse_after_first);
	auto_falls_back(refuse_all);
	/* Forced: the workers' error, and one line saying why. */
	weft__ring_setup_fn = refuse_all;
	ck_assert_int_eq(run_quoting_stderr(never, &cfg, NULL, out,
					    sizeof(out)),
			 -ENOMEM);
	weft__ring_setup_fn = io_uring_queue_init_params;
	ck_assert_msg(strstr(out, "ulimit -l") && strchr(out, '\n') &&
			      !strchr(out, '\n')[1],
		      "not one clear line: '%s'", out);
	/* And auto runs on io_uring again once the rings are granted. */
	cfg.io = WEFT_IO_AUTO;
	ck_assert_int_eq(weft_run(uses_ring, NULL, &cfg, NULL), 0);
	if (saved_env)
		setenv("WEFT_IO", saved_env, 1);
	free(saved_env);
}
END_TEST

/* ---- a plain thread's private ring when io_uring_enter refuses ------- */

/* The kernel short of memory: it takes none of the SQEs. */
static int refuse_submit(struct io_uring *ring)
{
	(void)ring;
	return -EAGAIN;
}

/* The kernel short of memory after it took the first SQE: what
 * io_uring_submit publishes, of which io_uring_enter takes one. */
static int take_one(struct io_uring *ring)
{
	io_uring_smp_store_release(ring->sq.ktail, ring->sq.sqe_tail);
	ring->sq.sqe_head = ring->sq.sqe_tail;
	return io_uring_enter((unsigned)ring->ring_fd, 1, 0, 0, NULL);
}

/* The child's calls on its private ring. */
static void refused_child(void)
{
	int r;

	if ((r = weft_io_submit(-1, prep_nop, NULL)) == -ENOSYS)
		_exit(CHILD_NO_SECCOMP); /* no io_uring: nothing to refuse */
	if (r)
		CHILD_FAIL("nop: %d", r);
	/* A refusal leaves the SQE in the SQ (made a NOP). Then the kernel
	 * takes that NOP and stops short of the call's own SQE: the call
	 * must not wait for a completion that will never come. */
	weft__private_submit = refuse_submit;
	if ((r = weft_io_submit(-1, prep_nop, NULL)) != -EAGAIN)
		CHILD_FAIL("refused: %d", r);
	weft__private_submit = take_one;
	if ((r = weft_io_submit(-1, prep_nop, NULL)) != -EAGAIN)
		CHILD_FAIL("stopped short: %d", r);
	/* More refusals than the ring has SQEs: each is -EAGAIN, not a
	 * crash on an SQ full of NOPs. */
	weft__private_submit = refuse_submit;
	for (int i = 0; i < 8; i++)
		if ((r = weft_io_submit(-1, prep_nop, NULL)) != -EAGAIN)
			CHILD_FAIL("refusal %d: %d", i, r);
	weft__private_submit = io_uring_submit;
	for (int i = 0; i < 8; i++)
		if ((r = weft_io_submit(-1, prep_nop, NULL)) != 0)
			CHILD_FAIL("after the refusals: %d", r);
	_exit(0);
}

START_TEST(refused_private_submits)
{
	int status;
	pid_t pid;

	fflush(NULL);
	pid = weft_test_fork();
	if (pid == 0)
		refused_child();
	/* A child still running after 5 s hangs. */
	status =
		weft_test_wait_child(pid, 5000,
				     "a call waits for an SQE never submitted");
	if (WIFEXITED(status) && WEXITSTATUS(status) == CHILD_NO_SECCOMP)
		return;
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
		      "child failed (status %#x): see its stderr", status);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("io_nosys");
	TCase *tc = tcase_create("nosys");

	tcase_add_test(tc, seccomp_eperm);
	tcase_add_test(tc, seccomp_eperm_enter_only);
	tcase_add_test(tc, seccomp_enosys);
	tcase_add_test(tc, lsm_eacces);
	tcase_add_test(tc, seccomp_eperm_epoll_pwait2);
	tcase_add_test(tc, bad_choice);
	tcase_add_test(tc, worker_rings_refused);
	tcase_add_test(tc, refused_private_submits);
	suite_add_tcase(s, tc);
	return weft_test_main(s);
}
