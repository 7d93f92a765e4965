/* Task stacks in whole pages of whatever size the kernel uses: 4 KiB here,
 * 16 and 64 KiB forced (as aarch64 kernels may run), each stack with a
 * guard of exactly one page below it, and an overflow into that guard
 * reported by name. */
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>
#include "runtime/page.h"
#include "runtime/stack.h"
#include "overflow_check.h"
#include "test_util.h"

static const size_t pages[] = { 0, 16 * 1024, 64 * 1024 }; /* 0: kernel's */

/* -1 if the byte at p faults, 1 if it reads, 0 if the kernel cannot tell
 * (process_vm_readv missing, as under qemu's user mode). */
static int readable(const char *p)
{
	char c;
	struct iovec local = { &c, 1 }, remote = { (void *)p, 1 };
	if (process_vm_readv(getpid(), &local, 1, &remote, 1, 0) == 1)
		return 1;
	return errno == EFAULT ? -1 : 0;
}

static void check_stack(const struct weft_stack *s, size_t want, size_t page)
{
	ck_assert_uint_ge(s->size, want);
	ck_assert_uint_eq(s->size % page, 0);
	ck_assert(s->guard == page || s->guard == 0);
	if (page == (size_t)sysconf(_SC_PAGESIZE))
		ck_assert_uint_eq((uintptr_t)s->base % page, 0);
	s->base[0] = 1; /* both ends are usable */
	s->base[s->size - 1] = 1;
	if (s->guard && readable(s->base) == 1) {
		ck_assert_int_eq(readable(s->base - 1), -1);
		ck_assert_int_eq(readable(s->base - s->guard), -1);
	}
}

START_TEST(page_size_is_the_kernels)
{
	ck_assert_uint_eq(weft__page_size(), (size_t)sysconf(_SC_PAGESIZE));
}
END_TEST

/* Every size class, a size that is not a page multiple, and stacks too big
 * to pool, on each page size: two stacks of one class lie whole pages
 * apart, so slabs carve in pages. */
START_TEST(stacks_are_whole_pages)
{
	static const size_t sizes[] = { 1,
					4096,
					16 * 1024,
					16 * 1024 + 1,
					40000,
					64 * 1024,
					100 * 1024,
					1024 * 1024,
					1024 * 1024 + 1,
					3 * 1024 * 1024 };
	for (size_t p = 0; p < sizeof(pages) / sizeof(*pages); p++) {
		weft__page_size_force(pages[p]);
		size_t page = weft__page_size();
		weft__stack_pool_init();
		struct weft_stack_cache *k = weft__stack_cache_new();
		for (size_t i = 0; i < sizeof(sizes) / sizeof(*sizes); i++) {
			struct weft_stack a, b;
			ck_assert_int_eq(weft__stack_alloc(&a, sizes[i], k), 0);
			ck_assert_int_eq(weft__stack_alloc(&b, sizes[i], NULL),
					 0);
			check_stack(&a, sizes[i], page);
			check_stack(&b, sizes[i], page);
			uintptr_t d = (uintptr_t)a.base - (uintptr_t)b.base;
			if (a.pooled)
				ck_assert_uint_eq(d % page, 0);
			weft__stack_free(&a, k);
			weft__stack_free(&b, NULL);
		}
		weft__stack_cache_free(k);
		weft__stack_pool_exit();
	}
	weft__page_size_force(0);
}
END_TEST

/* Tasks on the smallest stacks, on each page size, touching their stacks
 * from top to bottom. */
static void *deep(void *arg)
{
	volatile char buf[8 * 1024];
	buf[0] = buf[sizeof(buf) - 1] = 1;
	weft_yield();
	return (void *)(uintptr_t)(buf[0] + buf[sizeof(buf) - 1]);
}

static void *spawn_deep(void *arg)
{
	enum { N = 64 };
	weft_task_t t[N];
	struct weft_spawn_opts o = { .stack_size = WEFT_STACK_MIN };
	for (int i = 0; i < N; i++)
		ck_assert_int_eq(weft_spawn_opts(&t[i], deep, NULL, &o), 0);
	for (int i = 0; i < N; i++) {
		void *r;
		ck_assert_int_eq(weft_join(t[i], &r), 0);
		ck_assert_ptr_eq(r, (void *)2);
	}
	return NULL;
}

START_TEST(tasks_run_on_each_page_size)
{
	for (size_t p = 0; p < sizeof(pages) / sizeof(*pages); p++) {
		weft__page_size_force(pages[p]);
		weft_test_run(spawn_deep, NULL, 2);
	}
	weft__page_size_force(0);
}
END_TEST

static void force_64k_pages(void)
{
	weft__page_size_force(64 * 1024);
}

/* On 64 KiB pages the guard is 64 KiB, and a fault anywhere in it is the
 * task's overflow. */
START_TEST(overflow_reported_on_64k_pages)
{
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
	return; /* the sanitizers catch the fault first, in their own words */
#endif
	expect_overflow(overflow_body, force_64k_pages,
			"overflowed its 65536-byte stack");
}
END_TEST

/*
 * Before Linux 6.13 a guard is an mprotect'ed page, two mappings, counted
 * against a budget so that a million stacks stay under vm.max_map_count.
 * A stack refused a guard (budget spent) still counted, for good: after
 * one burst past the budget, every big stack of the run went unguarded.
 */
#define BIG_STACK (2u << 20) /* not pooled: mapped and unmapped alone */

START_TEST(guard_budget_exact)
{
	struct weft_stack s[2];
	long used;

	weft__stack_force_mprotect();
	used = weft__stack_budget_used();
	for (int i = 0; i < 2; i++) {
		ck_assert_int_eq(weft__stack_alloc(&s[i], BIG_STACK, NULL), 0);
		ck_assert_uint_gt(s[i].guard, 0);
	}
	ck_assert_int_eq(weft__stack_budget_used(), used + 2);
	for (int i = 0; i < 2; i++)
		weft__stack_free(&s[i], NULL);
	ck_assert_int_eq(weft__stack_budget_used(), used);

	weft__stack_budget_set(WEFT__STACK_MPROTECT_BUDGET);
	ck_assert_int_eq(weft__stack_alloc(&s[0], BIG_STACK, NULL), 0);
	ck_assert_uint_eq(s[0].guard, 0); /* the canary only */
	weft__stack_free(&s[0], NULL);
	ck_assert_int_eq(weft__stack_budget_used(),
			 WEFT__STACK_MPROTECT_BUDGET);
	weft__stack_budget_set(WEFT__STACK_MPROTECT_BUDGET - 1);
	ck_assert_int_eq(weft__stack_alloc(&s[0], BIG_STACK, NULL), 0);
	ck_assert_uint_gt(s[0].guard, 0); /* room for one again */
	weft__stack_free(&s[0], NULL);
	ck_assert_int_eq(weft__stack_budget_used(),
			 WEFT__STACK_MPROTECT_BUDGET - 1);
	weft__stack_budget_set(used);
}
END_TEST

/*
 * A program's own SIGSEGV handler that recovers from a fault (as a JIT's
 * or a collector's does), installed before weft_run: weft's handler
 * passes it the faults that are not a task's overflow. It put the old
 * handler back at the first such fault, for good, so a later overflow
 * went unreported.
 */
static sigjmp_buf recover_to;
static volatile sig_atomic_t recovering;

static void recover(int sig, siginfo_t *si, void *uc)
{
	(void)si;
	(void)uc;
	if (recovering)
		siglongjmp(recover_to, 1);
	signal(sig, SIG_DFL); /* not expected: die of it */
}

static void install_recovery(void)
{
	struct sigaction sa = { .sa_sigaction = recover,
				.sa_flags = SA_SIGINFO | SA_ONSTACK };

	sigemptyset(&sa.sa_mask);
	sigaction(SIGSEGV, &sa, NULL);
}

static volatile int *volatile unmapped = (int *)(uintptr_t)4096;

/* One fault at an address no guard covers, recovered by the handler. */
static void foreign_fault(void)
{
	recovering = 1;
	if (!sigsetjmp(recover_to, 1))
		*unmapped = 1;
	recovering = 0;
}

static void *fault_then_overflow(void *arg)
{
	foreign_fault();
	foreign_fault();
	return overflow_body(arg);
}

START_TEST(overflow_reported_after_foreign_faults)
{
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
	return; /* the sanitizers catch the fault first, in their own words */
#endif
	expect_overflow(fault_then_overflow, install_recovery,
			"overflowed its");
}
END_TEST

/*
 * A crash reporter's one-shot handler (SA_RESETHAND) logs a fault and
 * returns, so that the fault comes again and the default action ends the
 * process. Called by weft's handler as a function, it ran again at every
 * fault for ever: weft must put it back and let the kernel deliver.
 */
static int report_fd;

static void report_once(int sig)
{
	(void)sig;
	if (write(report_fd, "r", 1) < 0)
		_exit(3);
}

static void *fault_in_task(void *arg)
{
	(void)arg;
	*unmapped = 1;
	return NULL;
}

START_TEST(one_shot_handler_not_looped)
{
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
	return; /* the sanitizers catch the fault first, in their own words */
#endif
	int fds[2], status;
	char got[8];

	ck_assert_int_eq(pipe(fds), 0);
	pid_t pid = weft_test_fork();
	if (pid == 0) {
		struct sigaction sa = { .sa_handler = report_once,
					.sa_flags = SA_RESETHAND };
		struct weft_config c = { .workers = 1 };

		close(fds[0]);
		report_fd = fds[1];
		sigemptyset(&sa.sa_mask);
		sigaction(SIGSEGV, &sa, NULL);
		_exit(weft_run(fault_in_task, NULL, &c, NULL) ? 2 : 0);
	}
	close(fds[1]);
	/* Looping, the child would never die: give it 10 s. */
	status = weft_test_wait_child(pid, 10000,
				      "the one-shot handler ran in a loop");
	ssize_t n = read(fds[0], got, sizeof(got));
	close(fds[0]);
	ck_assert(WIFSIGNALED(status));
	ck_assert_int_eq(WTERMSIG(status), SIGSEGV);
	ck_assert_int_eq(n, 1); /* the handler ran once */
}
END_TEST

/*
 * A SIGSEGV sent rather than caused by a fault (raise, kill, pthread_kill:
 * an assertion macro's way to crash) is not met again when the handler
 * returns. weft's handler put the default action back and returned, so
 * the process went on as if nothing had happened.
 */
static void *raise_segv(void *arg)
{
	(void)arg;
	raise(SIGSEGV);
	return NULL; /* not reached */
}

START_TEST(sent_sigsegv_not_swallowed)
{
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
	return; /* the sanitizers catch the signal first, in their own words */
#endif
	int status;

	pid_t pid = weft_test_fork();
	if (pid == 0) {
		struct weft_config c = { .workers = 1 };

		signal(SIGSEGV, SIG_DFL);
		_exit(weft_run(raise_segv, NULL, &c, NULL) ? 2 : 3);
	}
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert_msg(WIFSIGNALED(status) && WTERMSIG(status) == SIGSEGV,
		      "the child went on: status 0x%x", status);
}
END_TEST

/*
 * A SIGSEGV sent to a program that ignores SIGSEGV is ignored, as without
 * weft. weft's handler put the program's SIG_IGN back to have it ignored,
 * and so was gone for the rest of the run: a later overflow killed the
 * process (a fault cannot be ignored) without the report.
 */
static void ignore_segv(void)
{
	signal(SIGSEGV, SIG_IGN);
}

static void *ignored_then_overflow(void *arg)
{
	raise(SIGSEGV); /* ignored: the task goes on */
	return overflow_body(arg);
}

START_TEST(overflow_reported_after_ignored_sigsegv)
{
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
	return; /* the sanitizers catch the signal first, in their own words */
#endif
	expect_overflow(ignored_then_overflow, ignore_segv, "overflowed its");
}
END_TEST

/*
 * A slab of stacks whose entry in the pool's table of slabs could not be
 * had (realloc failed) was unmapped with its stacks' mprotect guards still
 * counted against the budget, until the run ended: after a few such
 * failures every later stack went without a guard.
 *
 * realloc fails once when asked (fail_realloc.h); not under a sanitizer.
 */
#include "fail_realloc.h"

START_TEST(guard_budget_after_enomem)
{
#ifdef CAN_FAIL_REALLOC
	struct weft_stack s;
	long used;

	weft__stack_pool_exit(); /* no slab yet: the next grows the table */
	weft__stack_force_mprotect();
	used = weft__stack_budget_used();
	atomic_store(&fail_realloc, true);
	ck_assert_int_eq(weft__stack_alloc(&s, 64 * 1024, NULL), -ENOMEM);
	ck_assert(!atomic_load(&fail_realloc)); /* the table's realloc */
	ck_assert_int_eq(weft__stack_budget_used(), used);
	ck_assert_int_eq(weft__stack_alloc(&s, 64 * 1024, NULL), 0);
	ck_assert_uint_gt(s.guard, 0);
	weft__stack_free(&s, NULL);
	weft__stack_pool_exit();
	weft__stack_budget_set(used);
#endif
}
END_TEST

/*
 * A transient failure of MADV_GUARD_INSTALL (ENOMEM: no memory for a page
 * table just then) turned light guards off for the rest of the process:
 * every later stack took an mprotect guard from the budget, and once it
 * was spent only a canary. Now only that stack goes without; EINVAL (a
 * kernel without the advice) still turns them off for good.
 *
 * madvise, defined over glibc's, fails MADV_GUARD_INSTALL once with
 * fail_guard_errno when that is set.
 */
#ifndef MADV_GUARD_INSTALL
#define MADV_GUARD_INSTALL 102
#endif

static atomic_int fail_guard_errno;

int madvise(void *p, size_t n, int advice)
{
	int err;

	if (advice == MADV_GUARD_INSTALL &&
	    (err = atomic_exchange(&fail_guard_errno, 0))) {
		errno = err;
		return -1;
	}
	return (int)syscall(SYS_madvise, p, n, advice);
}

/* A big stack, freed at once: whether its guard was a light one. */
static bool light_guard(void)
{
	struct weft_stack s;

	ck_assert_int_eq(weft__stack_alloc(&s, BIG_STACK, NULL), 0);
	bool light = s.guard && !s.budgeted;
	weft__stack_free(&s, NULL);
	return light;
}

START_TEST(light_guards_survive_enomem)
{
	if (!light_guard())
		return; /* a kernel before 6.13, or qemu: nothing to lose */
	atomic_store(&fail_guard_errno, ENOMEM);
	ck_assert(!light_guard()); /* that one: mprotect */
	ck_assert_int_eq(atomic_load(&fail_guard_errno), 0);
	ck_assert_msg(light_guard(), "light guards off after one ENOMEM");
	/* Off for good when the kernel does not know the advice. Last: later
	 * tests force mprotect guards anyway. */
	atomic_store(&fail_guard_errno, EINVAL);
	ck_assert(!light_guard());
	ck_assert(!light_guard());
}
END_TEST

/*
 * A worker whose alternate signal stack could not be allocated ran
 * without one, and an overflow on it was a SIGSEGV the kernel could not
 * deliver on the full stack: the process died without the report. Now
 * weft_run fails with -ENOMEM, and the next one works.
 *
 * malloc, defined over glibc's, fails while fail_altstacks the request of
 * a worker thread (named weft-w*) for an alternate stack's size; not under
 * a sanitizer (fail_realloc.h).
 */
#ifdef CAN_FAIL_REALLOC
void *__libc_malloc(size_t n);
static atomic_bool fail_altstacks;
static size_t altstack_size;

void *malloc(size_t n)
{
	char name[16];

	if (atomic_load(&fail_altstacks) && n == altstack_size &&
	    !prctl(PR_GET_NAME, name) && !strncmp(name, "weft-w", 6))
		return NULL;
	return __libc_malloc(n);
}

static void *nothing(void *arg)
{
	return arg;
}
#endif

START_TEST(no_altstack_no_run)
{
#ifdef CAN_FAIL_REALLOC
	int fds[2], status;

	ck_assert_int_eq(pipe(fds), 0);
	pid_t pid = weft_test_fork();
	if (pid == 0) {
		struct weft_config c = { .workers = 2 };

		dup2(fds[1], 2);
		altstack_size = SIGSTKSZ * 4; /* as runtime/worker.c asks */
		overflow_fn = overflow_body;
		atomic_store(&fail_altstacks, true);
		int r = weft_run(overflow_main, NULL, &c, NULL);
		atomic_store(&fail_altstacks, false);
		if (r != -ENOMEM)
			_exit(1);
		_exit(weft_run(nothing, NULL, &c, NULL) ? 2 : 0);
	}
	close(fds[1]);
	char buf[512] = { 0 };
	ssize_t n = read(fds[0], buf, sizeof(buf) - 1);
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	close(fds[0]);
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
		      "status 0x%x, stderr: %.*s", status, (int)(n > 0 ? n : 0),
		      buf);
#endif
}
END_TEST

int main(void)
{
	Suite *s = suite_create("stack");
	TCase *tc = tcase_create("stack");
	tcase_set_timeout(tc, 600);
	tcase_add_test(tc, page_size_is_the_kernels);
	tcase_add_test(tc, stacks_are_whole_pages);
	tcase_add_test(tc, tasks_run_on_each_page_size);
	tcase_add_test(tc, overflow_reported_on_64k_pages);
	tcase_add_test(tc, overflow_reported_after_foreign_faults);
	tcase_add_test(tc, no_altstack_no_run);
	tcase_add_test(tc, light_guards_survive_enomem); /* before mprotect */
	tcase_add_test(tc, guard_budget_exact);
	tcase_add_test(tc, guard_budget_after_enomem);
	tcase_add_test(tc, one_shot_handler_not_looped);
	tcase_add_test(tc, sent_sigsegv_not_swallowed);
	tcase_add_test(tc, overflow_reported_after_ignored_sigsegv);
	suite_add_tcase(s, tc);
	return weft_test_main(s);
}
