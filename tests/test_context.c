/* Context switching: values live in callee-saved registers, floating point
 * and stack alignment survive switches, also onto other workers. */
#include <errno.h>
#include <fenv.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <time.h>
#include <ucontext.h>
#include <unwind.h>
#include "callee_saved.h"
#include "runtime/context.h"
#include "runtime/valgrind.h"
#include "test_util.h"

/* Many live values across the switch force the compiler to keep some in
 * callee-saved registers (rbx, rbp, r12-r15). */
static __attribute__((noinline)) uint64_t churn(uint64_t seed, int rounds)
{
	uint64_t a = seed, b = seed * 3, c = seed ^ 0x55, d = seed + 7;
	uint64_t e = seed << 3, f = ~seed, g = seed * seed, h = seed | 1;
	for (int i = 0; i < rounds; i++) {
		weft_yield();
		a += b ^ c;
		b = (b << 1) | (b >> 63);
		c += d * 3;
		d ^= e + f;
		e += g;
		f -= h;
		g = g * 6364136223846793005ULL + 1;
		h += a;
	}
	return a ^ b ^ c ^ d ^ e ^ f ^ g ^ h;
}

static uint64_t churn_reference(uint64_t seed, int rounds)
{
	uint64_t a = seed, b = seed * 3, c = seed ^ 0x55, d = seed + 7;
	uint64_t e = seed << 3, f = ~seed, g = seed * seed, h = seed | 1;
	for (int i = 0; i < rounds; i++) {
		a += b ^ c;
		b = (b << 1) | (b >> 63);
		c += d * 3;
		d ^= e + f;
		e += g;
		f -= h;
		g = g * 6364136223846793005ULL + 1;
		h += a;
	}
	return a ^ b ^ c ^ d ^ e ^ f ^ g ^ h;
}

static atomic_int misaligned, wrong;

static __attribute__((noinline)) void check_alignment(void)
{
	/* SSE spills need 16-byte alignment; so does the ABI at calls. */
	_Alignas(16) volatile char probe[16];
	if ((uintptr_t)probe % 16)
		atomic_fetch_add(&misaligned, 1);
}

static void *body(void *arg)
{
	uint64_t seed = (uint64_t)(uintptr_t)arg;
	check_alignment();
	if (churn(seed, 200) != churn_reference(seed, 200))
		atomic_fetch_add(&wrong, 1);
	double x = (double)seed;
	for (int i = 0; i < 50; i++) {
		double y = sqrt(x) * 1.5;
		weft_yield();
		if (y != sqrt(x) * 1.5)
			atomic_fetch_add(&wrong, 1);
		x += 1.25;
	}
	check_alignment();
	return NULL;
}

static void *main_task(void *arg)
{
	enum { N = 64 };
	weft_task_t t[N];
	for (int i = 0; i < N; i++)
		ck_assert_int_eq(weft_spawn(&t[i], body,
					    (void *)(uintptr_t)(i + 1)),
				 0);
	for (int i = 0; i < N; i++)
		ck_assert_int_eq(weft_join(t[i], NULL), 0);
	return NULL;
}

START_TEST(registers_survive)
{
	weft_test_run(main_task, NULL, 2);
	ck_assert_int_eq(atomic_load(&misaligned), 0);
	ck_assert_int_eq(atomic_load(&wrong), 0);
}
END_TEST

/*
 * Every callee-saved register, integer and floating point, holds a known
 * value while its task sleeps or yields, moves to another worker, and is
 * switched back: what weft__switch saves, beyond what a compiler happens
 * to keep in registers.
 */
struct hop {
	int before, after; /* worker ids */
	int round;
};

static void hop(void *arg)
{
	struct hop *h = arg;
	h->before = weft_worker_id();
	if (h->round % 2)
		weft_sleep(WEFT_MSEC / 4);
	else
		weft_yield();
	h->after = weft_worker_id();
}

static _Alignas(16) const uint64_t zero_frame[2]; /* where rbp/x29 point */
static atomic_int clobbered, migrated;

static void *hopper(void *arg)
{
	uint64_t in[CALLEE_SAVED_N], out[CALLEE_SAVED_N];
	uintptr_t id = (uintptr_t)arg;
	/* More rounds while no call has resumed on another worker yet (one
	 * thread at a time under valgrind makes that rarer). */
	for (int round = 0;
	     round < 40 || (!atomic_load(&migrated) && round < 4000); round++) {
		for (int r = 0; r < CALLEE_SAVED_N; r++)
			in[r] = 0x5eed000000000000ULL ^ (id << 32) ^
				(uint64_t)round << 8 ^ (uint64_t)r;
		in[CALLEE_SAVED_FP] = (uintptr_t)zero_frame;
		struct hop h = { .round = round };
		callee_saved_across(hop, &h, in, out);
		for (int r = 0; r < CALLEE_SAVED_N; r++)
			if (out[r] != in[r])
				atomic_fetch_add(&clobbered, 1);
		if (h.before != h.after)
			atomic_fetch_add(&migrated, 1);
	}
	return NULL;
}

static void *spawn_hoppers(void *arg)
{
	enum { N = 32 };
	weft_task_t t[N];
	for (int i = 0; i < N; i++)
		ck_assert_int_eq(weft_spawn(&t[i], hopper,
					    (void *)(uintptr_t)i),
				 0);
	for (int i = 0; i < N; i++)
		ck_assert_int_eq(weft_join(t[i], NULL), 0);
	return NULL;
}

START_TEST(callee_saved_across_workers)
{
	weft_test_run(spawn_hoppers, NULL, 4);
	int wrong_values = atomic_load(&clobbered);
	int moves = atomic_load(&migrated);
	ck_assert_int_eq(wrong_values, 0);
	ck_assert_int_gt(moves, 0);
}
END_TEST

/*
 * Floating-point modes are callee-saved (MXCSR's and the x87 control
 * word's control bits on x86-64, FPCR on AArch64). With WEFT_FP_PER_TASK
 * (the default shares the worker's, as Go and Tokio do), a task keeps its
 * rounding mode across yields and sleeps, on whichever worker it resumes,
 * and others keep theirs. A task starts with its spawner's modes, as a
 * thread with its creator's. Each mode is checked through fegetround and
 * through a division whose last bit the mode decides (SSE or FP/SIMD).
 */
static const int modes[] = { FE_TONEAREST, FE_UPWARD, FE_DOWNWARD,
			     FE_TOWARDZERO };
#define NMODES (int)(sizeof(modes) / sizeof(modes[0]))
static atomic_int wrong_mode;

static double third(void)
{
	volatile double one = 1.0, three = 3.0;
	return one / three;
}

static void *keep_mode(void *arg)
{
	int mode = modes[(uintptr_t)arg % NMODES];

	ck_assert_int_eq(fesetround(mode), 0);
	double want = third();
	for (int round = 0; round < 200; round++) {
		if (round % 2)
			ck_assert_int_eq(weft_sleep(WEFT_USEC * 50), 0);
		else
			ck_assert_int_eq(weft_yield(), 0);
		if (fegetround() != mode || third() != want)
			atomic_fetch_add(&wrong_mode, 1);
	}
	return NULL;
}

static void *report_mode(void *arg)
{
	(void)arg;
	return (void *)(intptr_t)fegetround();
}

static void *modes_main(void *arg)
{
	enum { N = 16 };
	weft_task_t t[N], child;
	void *r;

	(void)arg;
	for (uintptr_t i = 0; i < N; i++)
		ck_assert_int_eq(weft_spawn(&t[i], keep_mode, (void *)i), 0);
	/* Spawned after the change: the spawner's mode. */
	ck_assert_int_eq(fesetround(FE_UPWARD), 0);
	ck_assert_int_eq(weft_spawn(&child, report_mode, NULL), 0);
	ck_assert_int_eq(weft_join(child, &r), 0);
	ck_assert_int_eq((intptr_t)r, FE_UPWARD);
	ck_assert_int_eq(fesetround(FE_TONEAREST), 0);
	ck_assert_int_eq(weft_spawn(&child, report_mode, NULL), 0);
	ck_assert_int_eq(weft_join(child, &r), 0);
	ck_assert_int_eq((intptr_t)r, FE_TONEAREST);
	for (int i = 0; i < N; i++)
		ck_assert_int_eq(weft_join(t[i], NULL), 0);
	ck_assert_int_eq(fegetround(), FE_TONEAREST);
	return NULL;
}

START_TEST(fp_modes_kept)
{
	struct weft_config cfg = { .workers = 4, .fp_modes = WEFT_FP_PER_TASK };

	ck_assert_int_eq(weft_run(modes_main, NULL, &cfg, NULL), 0);
	ck_assert_int_eq(atomic_load(&wrong_mode), 0);
	ck_assert_int_eq(fegetround(), FE_TONEAREST);
	cfg.fp_modes = WEFT_FP_PER_TASK + 1;
	ck_assert_int_eq(weft_run(modes_main, NULL, &cfg, NULL), -EINVAL);
}
END_TEST

/*
 * An unwinder (a sampling profiler's, backtrace(3), gdb's) that stops the
 * worker inside the switch walks through it by its CFI: at every
 * instruction the switch's rows must name where the caller's stack
 * pointer and return address are, before the stacks change (the parked
 * task's callers) and after (the resumed context's), and a new task's
 * first frame, a return to the trampoline, must end the walk. A signal
 * sent to the worker over and over, while tasks yield to each other and
 * new ones start, unwinds where it lands inside the switch; each walk
 * must end cleanly: at a frame whose return address is
 * undefined (the trampoline, the thread's clone), which libgcc gives the
 * callback as IP 0, not at a garbage return address that has no CFI, nor
 * loop. (Not from elsewhere: on aarch64 the linker gives PLT stubs no
 * CFI, so a walk from one ends there.) Under qemu a signal
 * lands only between translated blocks: runtime.cmake runs this suite
 * with QEMU_SINGLESTEP, one instruction a block. Valgrind delivers one
 * only between its own blocks, thousands at a time: none lands in the
 * switch, so there the case does not run. Nor under ThreadSanitizer,
 * which runs the handler later, inside the thread's next intercepted
 * call: its walk starts there, not in the switch, and in one CI run no
 * signal at all was seen to land in the switch in the test's 10 s.
 */
#define WALK_MAX 64
static atomic_bool walk_stop;
static atomic_int walks, walks_in_switch, walks_bad;
static uintptr_t bad_walk[WALK_MAX]; /* the first bad walk's IPs */
static int bad_walk_n, bad_walk_code;
static uintptr_t bad_walk_pc; /* where its signal landed */
static pthread_t walk_worker;

struct walk {
	uintptr_t ip[WALK_MAX];
	int n;
};

static _Unwind_Reason_Code walk_frame(struct _Unwind_Context *c, void *arg)
{
	struct walk *w = arg;
	if (w->n == WALK_MAX)
		return _URC_NORMAL_STOP; /* a loop, or far too deep */
	w->ip[w->n++] = _Unwind_GetIP(c);
	return _URC_NO_REASON;
}

static void on_walk_signal(int signo, siginfo_t *info, void *ctx)
{
	(void)signo;
	(void)info;
	const ucontext_t *uc = ctx;
#if defined(__x86_64__)
	uintptr_t pc = (uintptr_t)uc->uc_mcontext.gregs[REG_RIP];
#elif defined(__aarch64__)
	uintptr_t pc = (uintptr_t)uc->uc_mcontext.pc;
#endif
	/* weft__ctx_fp_init follows the switch (and on x86-64 its jump
	 * variant) in arch/<cpu>.S. */
	bool in_switch = pc >= (uintptr_t)weft__switch &&
			 pc < (uintptr_t)weft__ctx_fp_init;
	atomic_fetch_add(&walks, 1);
	if (!in_switch)
		return; /* walks from elsewhere take time and prove nothing */
	atomic_fetch_add(&walks_in_switch, 1);
	struct walk w = { .n = 0 };
	int code = _Unwind_Backtrace(walk_frame, &w);
	bool ok = code == _URC_END_OF_STACK && w.n > 0 && w.ip[w.n - 1] == 0;
	if (!ok && atomic_fetch_add(&walks_bad, 1) == 0) {
		memcpy(bad_walk, w.ip, sizeof(bad_walk));
		bad_walk_n = w.n;
		bad_walk_code = code;
		bad_walk_pc = pc;
	}
}

static void *walk_sender(void *arg)
{
	(void)arg;
	while (!atomic_load(&walk_stop)) {
		pthread_kill(walk_worker, SIGPROF);
		nanosleep(&(struct timespec){ 0, 20 * 1000 }, NULL);
	}
	return NULL;
}

static void *walk_nothing(void *arg)
{
	return arg;
}

/* Mostly yields, where the switch is much of the time; now and then a
 * new task, for switches into a first frame. */
static __attribute__((noinline)) void *walk_bouncer(void *arg)
{
	for (unsigned i = 0; !atomic_load(&walk_stop); i++) {
		weft_task_t t;
		if (i % 16) {
			ck_assert_int_eq(weft_yield(), 0);
			continue;
		}
		ck_assert_int_eq(weft_spawn(&t, walk_nothing, NULL), 0);
		ck_assert_int_eq(weft_yield(), 0);
		ck_assert_int_eq(weft_join(t, NULL), 0);
	}
	return arg;
}

static void *walk_main(void *arg)
{
	(void)arg;
	weft_task_t t[3];
	pthread_t sender;
	walk_worker = pthread_self(); /* the one worker's thread */
	for (int i = 0; i < 3; i++)
		ck_assert_int_eq(weft_spawn(&t[i], walk_bouncer, NULL), 0);
	ck_assert_int_eq(pthread_create(&sender, NULL, walk_sender, NULL), 0);
	/* Most signals land where the worker returns from a system call:
	 * some 10 a second in the switch, natively. */
	int64_t end = weft_now() + 10 * WEFT_SEC;
	while (atomic_load(&walks_in_switch) < SCALED(50) &&
	       atomic_load(&walks_bad) == 0 && weft_now() < end)
		ck_assert_int_eq(weft_sleep(10 * WEFT_MSEC), 0);
	atomic_store(&walk_stop, true);
	ck_assert_int_eq(pthread_join(sender, NULL), 0);
	for (int i = 0; i < 3; i++)
		ck_assert_int_eq(weft_join(t[i], NULL), 0);
	return NULL;
}

START_TEST(unwind_through_switch)
{
	struct sigaction sa = { .sa_sigaction = on_walk_signal,
				.sa_flags = SA_SIGINFO | SA_RESTART },
			 old;
#ifdef __SANITIZE_THREAD__
	return;
#endif
	if (WEFT_UNDER_VALGRIND())
		return;
	sigemptyset(&sa.sa_mask);
	ck_assert_int_eq(sigaction(SIGPROF, &sa, &old), 0);
	weft_test_run(walk_main, NULL, 1);
	ck_assert_int_eq(sigaction(SIGPROF, &old, NULL), 0);
	int bad = atomic_load(&walks_bad);
	if (bad) {
		fprintf(stderr,
			"bad walk (code %d) from pc %#lx (switch at %p):\n",
			bad_walk_code, (unsigned long)bad_walk_pc,
			(void *)weft__switch);
		for (int i = 0; i < bad_walk_n; i++)
			fprintf(stderr, "  #%d %#lx\n", i,
				(unsigned long)bad_walk[i]);
	}
	ck_assert_msg(!bad, "%d of %d walks (%d in the switch) bad", bad,
		      atomic_load(&walks), atomic_load(&walks_in_switch));
	ck_assert_int_gt(atomic_load(&walks_in_switch), 0);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("context");
	TCase *tc = tcase_create("context");
	tcase_set_timeout(tc, 300);
	tcase_add_test(tc, registers_survive);
	tcase_add_test(tc, callee_saved_across_workers);
	tcase_add_test(tc, fp_modes_kept);
	tcase_add_test(tc, unwind_through_switch);
	suite_add_tcase(s, tc);
	return weft_test_main(s);
}
