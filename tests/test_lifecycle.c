/* Lifetimes: task structs reached by timers after their task ended, and
 * runtimes started while another runs, handles kept from a previous run,
 * plain threads that spawn and join while weft_run shuts down. */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/syscall.h>
#include <unistd.h>
#include "runtime/park.h"
#include "runtime/task.h"
#include "sync_test_util.h"

/* ---- a timer firing at a task that ended and was respawned -------------- */

/*
 * A worker pops a batch of due timers, then fires them one by one. Each
 * round here puts a batch of sleepers due at the same instant and cancels
 * them, last first, at that instant: a cancelled sleeper ends, is joined
 * and its struct respawned while a worker or the monitor is still firing
 * the batch's earlier entries, so a late fire finds a struct that belongs
 * to a new task. Under ThreadSanitizer that was a race with the respawn.
 */
#define BATCH 64
#ifdef __SANITIZE_THREAD__
#define RECYCLE_SECONDS 15
#else
#define RECYCLE_SECONDS 2
#endif

static int64_t batch_at;
static atomic_int asleep;

static void *batch_sleeper(void *arg)
{
	atomic_fetch_add(&asleep, 1);
	weft_sleep_until(batch_at); /* 0 or -ECANCELED: either is fine */
	return NULL;
}

static void *noop(void *arg)
{
	return arg;
}

static pthread_t spawner_threads[2];

static void *recycle_main(void *arg)
{
	int64_t end = weft_now() + RECYCLE_SECONDS * WEFT_SEC;
	weft_task_t t[BATCH];
	unsigned seed = 1;
	int64_t setup = 10 * WEFT_MSEC;
	while (weft_now() < end) {
		/* Cancel from 64 us before to 191 us after the batch is
		 * due: around when a worker or the monitor fires it. */
		int64_t lag = ((int64_t)(rand_r(&seed) % 256) - 64) * WEFT_USEC;
		/* Due a little after all are asleep, by how long the last
		 * round took to get there. */
		int64_t t0 = weft_now();
		batch_at = t0 + 2 * setup;
		for (int i = 0; i < BATCH; i++)
			ck_assert_int_eq(weft_spawn(&t[i], batch_sleeper, NULL),
					 0);
		while (atomic_load(&asleep) < BATCH)
			weft_yield();
		atomic_store(&asleep, 0);
		setup = weft_now() - t0;
		while (weft_now() < batch_at + lag)
			; /* keep this worker: its timers go to the monitor */
		for (int i = BATCH - 1; i >= 0; i--)
			ck_assert_int_eq(weft_cancel(t[i]), 0);
		for (int i = BATCH - 1; i >= 0; i--) {
			ck_assert_int_eq(weft_join(t[i], NULL), 0);
			/* Respawns t[i]'s struct, the last one freed here. */
			ck_assert_int_eq(weft_spawn(NULL, noop, NULL), 0);
		}
	}
	return NULL;
}

START_TEST(timer_fires_at_recycled_task)
{
	weft_test_run(recycle_main, NULL, 2);
}
END_TEST

/* ---- weft_run while a runtime runs ------------------------------------- */

static void *second_run(void *arg)
{
	struct weft_config good = { .workers = 1 }, bad = { .workers = -1 };
	intptr_t ok = weft_run(noop, NULL, &good, NULL) == -EBUSY &&
		      weft_run(noop, NULL, &bad, NULL) == -EBUSY &&
		      weft_run(noop, NULL, NULL, NULL) == -EBUSY;
	return (void *)ok;
}

static void *busy_main(void *arg)
{
	pthread_t th;
	void *ok = NULL;
	ck_assert_int_eq(pthread_create(&th, NULL, second_run, NULL), 0);
	pthread_join(th, &ok); /* blocks this worker a moment: fine here */
	ck_assert_ptr_eq(ok, (void *)1);
	/* The running runtime is untouched: its pools still work. */
	for (int i = 0; i < 1000; i++) {
		weft_task_t t;
		ck_assert_int_eq(weft_spawn(&t, noop, (void *)7), 0);
		void *res;
		ck_assert_int_eq(weft_join(t, &res), 0);
		ck_assert_ptr_eq(res, (void *)7);
	}
	return NULL;
}

START_TEST(run_from_plain_thread_while_running)
{
	weft_test_run(busy_main, NULL, 2);
}
END_TEST

/* ---- main's own handle ------------------------------------------------- */

/* weft_run joins main: a detach of main's handle, or a join by another
 * task, must be refused as for any task being joined, not take main's
 * end from weft_run, whose join would then fail. Main detaches at once,
 * to race weft_run's join, which it won about one run in ten. */
static void *join_main(void *main)
{
	return WEFT_ERR_PTR(weft_join(*(weft_task_t *)main, NULL));
}

static void *detach_self_main(void *arg)
{
	weft_task_t self = weft_current(), t;
	intptr_t r = weft_detach(self);
	void *joined = NULL;
	ck_assert_int_eq(weft_spawn(&t, join_main, &self), 0);
	ck_assert_int_eq(weft_join(t, &joined), 0);
	ck_assert_ptr_eq(joined, WEFT_ERR_PTR(-EINVAL));
	return (void *)r;
}

START_TEST(main_handle_is_joined_by_run)
{
	for (int i = 0; i < 200; i++)
		ck_assert_ptr_eq(weft_test_run(detach_self_main, NULL, 2),
				 (void *)-EINVAL);
}
END_TEST

/* ---- a handle kept from a previous run ---------------------------------- */

static weft_task_t kept_unjoined, kept_joined;

static void *keep_handles_main(void *arg)
{
	ck_assert_int_eq(weft_spawn(&kept_joined, noop, NULL), 0);
	ck_assert_int_eq(weft_join(kept_joined, NULL), 0);
	/* Never joined nor detached: its struct is never recycled. It has
	 * ended by the time weft_run returns. */
	ck_assert_int_eq(weft_spawn(&kept_unjoined, noop, NULL), 0);
	return NULL;
}

static void check_stale(weft_task_t h)
{
	ck_assert_int_eq(weft_join(h, NULL), -ESRCH);
	ck_assert_int_eq(weft_detach(h), -ESRCH);
	ck_assert_int_eq(weft_cancel(h), -ESRCH);
	ck_assert_int_eq(weft_is_cancelled(h), -ESRCH);
	ck_assert_ptr_null(weft_task_name(h));
}

static void *use_old_handles_main(void *arg)
{
	/* New tasks take the structs back first. */
	weft_task_t t[64];
	for (int i = 0; i < 64; i++)
		ck_assert_int_eq(weft_spawn(&t[i], noop, NULL), 0);
	check_stale(kept_unjoined);
	check_stale(kept_joined);
	for (int i = 0; i < 64; i++)
		ck_assert_int_eq(weft_join(t[i], NULL), 0);
	return NULL;
}

START_TEST(handle_from_previous_run)
{
	weft_test_run(keep_handles_main, NULL, 2);
	check_stale(kept_unjoined); /* between runs */
	check_stale(kept_joined);
	weft_test_run(use_old_handles_main, NULL, 2);
}
END_TEST

/* ---- a plain thread spawning while weft_run shuts down ------------------ */

static atomic_bool spawner_go;
static atomic_long flood_done;

/* Busy for 5 ms, which cancellation cannot cut short. */
static void *busy_count(void *arg)
{
	int64_t until = weft_now() + 5 * WEFT_MSEC;
	while (weft_now() < until)
		;
	atomic_fetch_add(&flood_done, 1);
	return NULL;
}

/* Spawns detached tasks until spawning fails, no more than 64 ahead of
 * the workers (an unbounded flood would run out of memory before the
 * runtime shuts down). That keeps tasks alive all the time (unless this
 * thread stalls for 160 ms): if spawns were accepted while the runtime
 * drains, it would never end. */
static void *detached_spawner(void *arg)
{
	atomic_store(&spawner_go, true);
	int r;
	for (long n = 0; (r = weft_spawn(NULL, busy_count, NULL)) == 0; n++)
		while (n - atomic_load(&flood_done) > 64)
			sched_yield();
	return (void *)(intptr_t)r;
}

/* Spawns and joins until spawning fails; a join may find the run over. */
static void *joining_spawner(void *arg)
{
	atomic_store(&spawner_go, true);
	for (;;) {
		weft_task_t t;
		int r = weft_spawn(&t, noop, (void *)3);
		if (r)
			return (void *)(intptr_t)r;
		void *res = NULL;
		r = weft_join(t, &res);
		ck_assert(r == -ESRCH || (r == 0 && res == (void *)3));
	}
}

static void *start_spawner_main(void *arg)
{
	pthread_t *th = arg;
	atomic_store(&spawner_go, false);
	atomic_store(&flood_done, 0);
	ck_assert_int_eq(pthread_create(th, NULL,
					th == &spawner_threads[0]
						? detached_spawner
						: joining_spawner,
					NULL),
			 0);
	while (!atomic_load(&spawner_go))
		weft_yield();
	weft_sleep(WEFT_MSEC); /* then return, while it spawns */
	return NULL;
}

static void spawn_through_shutdown(int which, int rounds)
{
	alarm(60); /* weft_run never returned: fail, not hang */
	for (int i = 0; i < rounds; i++) {
		pthread_t *th = &spawner_threads[which];
		weft_test_run(start_spawner_main, th, 2);
		void *r;
		pthread_join(*th, &r);
		ck_assert_int_eq((int)(intptr_t)r, -ESHUTDOWN);
	}
	alarm(0);
}

START_TEST(detached_spawns_through_shutdown)
{
	spawn_through_shutdown(0, (int)weft_test_scaled(3, 2));
}
END_TEST

START_TEST(joined_spawns_through_shutdown)
{
	spawn_through_shutdown(1, (int)weft_test_scaled(30, 3));
}
END_TEST

/* ---- cancellation is delivered where a call would wait ----------------- */

/* What concepts.md and sync.h promise: in a cancelled task, calls that can
 * complete at once succeed; one that would wait fails; weft_yield fails,
 * so a loop of the first kind can end on it. */
static void *cancelled_main(void *arg)
{
	struct weft_lock l = WEFT_LOCK_INIT;
	struct weft_event e = WEFT_EVENT_INIT;
	struct weft_sem s;
	struct weft_queue q;
	int item = 1;
	ck_assert_int_eq(weft_sem_init(&s, 1), 0);
	ck_assert_int_eq(weft_queue_init(&q, sizeof(int), 1), 0);
	ck_assert_int_eq(weft_event_set(&e), 0);
	ck_assert_int_eq(weft_cancel(weft_current()), 0);
	ck_assert_int_eq(weft_is_cancelled(weft_current()), 1);
	ck_assert_int_eq(weft_lock_acquire(&l), 0);     /* free */
	ck_assert_int_eq(weft_event_wait(&e), 0);       /* already set */
	ck_assert_int_eq(weft_sem_acquire(&s), 0);      /* a free permit */
	ck_assert_int_eq(weft_queue_put(&q, &item), 0); /* room */
	ck_assert_int_eq(weft_queue_put(&q, &item), -ECANCELED); /* full */
	ck_assert_int_eq(weft_sem_acquire(&s), -ECANCELED);
	ck_assert_int_eq(weft_yield(), -ECANCELED);
	ck_assert_int_eq(weft_lock_release(&l), 0);
	ck_assert_int_eq(weft_queue_destroy(&q), 0);
	return NULL;
}

START_TEST(cancelled_task_completes_at_once)
{
	weft_test_run(cancelled_main, NULL, 1);
}
END_TEST

/* ---- the stack a recycled struct keeps --------------------------------- */

/*
 * A task that ends with no handle left leaves its stack in its struct for
 * the struct's next task (task.h). One worker, so the struct freed last is
 * the one the next spawn takes.
 */
static struct weft_event stack_noted;
static uintptr_t noted_sp;

static void *note_stack(void *arg)
{
	volatile char here = 0;
	noted_sp = (uintptr_t)&here;
	weft_event_set(&stack_noted);
	return NULL;
}

/* A frame of 128 KiB, touched at both ends: on a smaller stack it runs
 * into the guard page. */
static void *big_frame(void *arg)
{
	volatile char buf[128 * 1024];
	buf[0] = buf[sizeof(buf) - 1] = 1;
	noted_sp = (uintptr_t)&buf[0];
	weft_event_set(&stack_noted);
	return NULL;
}

/* Spawns fn detached with the given stack size (0: the default); returns
 * where its stack was once it ran. Its struct is back in the cache when
 * this returns: the one worker ran it to its end before coming back. */
static uintptr_t stack_of(weft_fn fn, size_t stack_size)
{
	struct weft_spawn_opts o = { .stack_size = stack_size };
	weft_event_clear(&stack_noted);
	ck_assert_int_eq(weft_spawn_opts(NULL, fn, NULL, &o), 0);
	ck_assert_int_eq(weft_event_wait(&stack_noted), 0);
	ck_assert_int_eq(weft_yield(), 0); /* it returns meanwhile */
	return noted_sp;
}

static bool same_stack(uintptr_t a, uintptr_t b, size_t size)
{
	return (a > b ? a - b : b - a) < size;
}

static void *kept_stack_main(void *arg)
{
	uintptr_t a = stack_of(note_stack, 0);
	uintptr_t b = stack_of(note_stack, 0);
	ck_assert(same_stack(a, b, WEFT_STACK_DEFAULT));
	/* Another size: the kept stack is not reused, and the frame fits. */
	uintptr_t c = stack_of(big_frame, 256 * 1024);
	ck_assert(!same_stack(a, c, WEFT_STACK_DEFAULT));
	uintptr_t d = stack_of(note_stack, 0);
	ck_assert(!same_stack(c, d, 256 * 1024));
	return NULL;
}

START_TEST(recycled_struct_keeps_its_stack)
{
	weft_test_run(kept_stack_main, NULL, 1);
}
END_TEST

/*
 * The stacks kept in free structs belong to the stack pool of the run
 * that ended, whose memory is gone: a new run must not reuse them. Each
 * run holds twice as many tasks at once as the run before, each noting its
 * stack: if a run reused the stacks of the last, they would fault, or (the
 * new pool mapped where the old one was) overlap the stacks the new pool
 * hands the other half.
 */
#define KEPT 64
#define KEPT_RUNS 3
static struct weft_event kept_release;
static uintptr_t kept_sp[KEPT << (KEPT_RUNS - 1)];
static atomic_int kept_waiting;

static void *hold_stack(void *arg)
{
	volatile char here = 0;
	kept_sp[(intptr_t)arg] = (uintptr_t)&here;
	atomic_fetch_add(&kept_waiting, 1);
	ck_assert_int_eq(weft_event_wait(&kept_release), 0);
	atomic_fetch_sub(&kept_waiting, 1);
	return NULL;
}

static int cmp_sp(const void *a, const void *b)
{
	uintptr_t x = *(const uintptr_t *)a, y = *(const uintptr_t *)b;
	return x < y ? -1 : x > y;
}

static void *hold_stacks_main(void *arg)
{
	int n = (int)(intptr_t)arg;
	weft_event_clear(&kept_release);
	for (intptr_t i = 0; i < n; i++)
		ck_assert_int_eq(weft_spawn(NULL, hold_stack, (void *)i), 0);
	while (atomic_load(&kept_waiting) < n)
		weft_yield();
	qsort(kept_sp, (size_t)n, sizeof(*kept_sp), cmp_sp);
	for (int i = 1; i < n; i++)
		ck_assert(!same_stack(kept_sp[i - 1], kept_sp[i],
				      WEFT_STACK_DEFAULT));
	weft_event_set(&kept_release);
	while (atomic_load(&kept_waiting) > 0)
		weft_yield();
	return NULL;
}

START_TEST(kept_stacks_dropped_between_runs)
{
	for (int run = 0; run < KEPT_RUNS; run++)
		weft_test_run(hold_stacks_main, (void *)(intptr_t)(KEPT << run),
			      1);
}
END_TEST

/* ---- what a detached task leaves in its struct -------------------------- */

/*
 * A task spawned detached makes no handle, so its struct is recycled
 * without the generation change that stales handles, unless it asked
 * weft_current for one; and a task may return inside a shield, which its
 * struct's next task must not inherit. One worker: the next spawn takes
 * the struct freed last.
 */
static weft_task_t own_handle;
static struct weft_event next_go;

static void *note_own_handle(void *arg)
{
	own_handle = weft_current();
	return NULL;
}

static void *return_shielded(void *arg)
{
	static struct weft_shield s;
	ck_assert_int_eq(weft_shield_enter(&s), 0);
	return NULL; /* inside it */
}

static void *wait_next_go(void *arg)
{
	*(weft_task_t *)arg = weft_current();
	return (void *)(intptr_t)weft_event_wait(&next_go);
}

/* Spawns fn detached and lets it run to its end. */
static void run_detached(weft_fn fn)
{
	ck_assert_int_eq(weft_spawn(NULL, fn, NULL), 0);
	for (int i = 0; i < 3; i++)
		ck_assert_int_eq(weft_yield(), 0);
}

static void *detached_leftovers_main(void *arg)
{
	weft_task_t next, self;
	void *r;

	/* A handle from weft_current goes stale when its struct is reused. */
	run_detached(note_own_handle);
	weft_event_clear(&next_go);
	ck_assert_int_eq(weft_spawn(&next, wait_next_go, &self), 0);
	ck_assert_int_eq(weft_yield(), 0); /* it waits */
	ck_assert_ptr_eq(self.task, own_handle.task);
	ck_assert_int_eq(weft_cancel(own_handle), -ESRCH);
	ck_assert_int_eq(weft_is_cancelled(own_handle), -ESRCH);
	ck_assert_int_ge(weft_event_set(&next_go), 0);
	ck_assert_int_eq(weft_join(next, &r), 0);
	ck_assert_ptr_eq(r, (void *)0); /* not cancelled by the stale one */

	/* The shield a task returned inside is gone with it. */
	run_detached(return_shielded);
	weft_event_clear(&next_go);
	ck_assert_int_eq(weft_spawn(&next, wait_next_go, &self), 0);
	ck_assert_int_eq(weft_yield(), 0);
	ck_assert_int_eq(weft_cancel(next), 0);
	ck_assert_int_ge(weft_event_set(&next_go), 0);
	ck_assert_int_eq(weft_join(next, &r), 0);
	ck_assert_ptr_eq(r, (void *)(intptr_t)-ECANCELED);
	return NULL;
}

START_TEST(detached_task_leftovers)
{
	weft_test_run(detached_leftovers_main, NULL, 1);
}
END_TEST

/* ---- a plain thread's wake, preempted after its push ------------------- */

/*
 * A plain thread pushes the task it wakes onto the global queue, then
 * notifies a worker. If it is preempted between the two, an awake worker
 * may run the task to its end and weft_run may return, and free the
 * runtime the thread is about to notify through. weft_run must wait for
 * it. The hook holds the waker there for 200 ms; a task that yields keeps
 * a worker awake to take the woken main from the global queue.
 */
static pthread_t late_waker;
static _Atomic bool waker_inside;
static atomic_int waker_held;

static void hold_waker(void)
{
	if (!pthread_equal(pthread_self(), late_waker))
		return;
	atomic_store(&waker_inside, true);
	atomic_fetch_add(&waker_held, 1);
	usleep(200 * 1000);
	atomic_store(&waker_inside, false);
}

static void *set_soon(void *ev)
{
	usleep(20 * 1000);
	/* Main may not wait yet (its worker kept off a CPU of a loaded
	 * host for the 20 ms): the set would then wake nobody, the hook
	 * would never hold us, and waker_held be 0. */
	wait_waiters(&((struct weft_event *)ev)->wq, 1);
	ck_assert_int_ge(weft_event_set(ev), 0);
	return NULL;
}

static void *keep_awake(void *arg)
{
	(void)arg;
	while (weft_yield() == 0)
		;
	return NULL;
}

static void *wait_for_waker(void *ev)
{
	weft_task_t yielder;

	ck_assert_int_eq(weft_spawn(&yielder, keep_awake, NULL), 0);
	ck_assert_int_eq(weft_detach(yielder), 0);
	ck_assert_int_eq(pthread_create(&late_waker, NULL, set_soon, ev), 0);
	ck_assert_int_eq(weft_event_wait(ev), 0);
	/* Whether main ends while the waker is held, the case under test. */
	return (void *)(intptr_t)atomic_load(&waker_inside);
}

START_TEST(plain_waker_outlives_main)
{
	struct weft_config cfg = { .workers = 2 };
	void *met = NULL;

	weft__ready_after_push = hold_waker;
	/* On a loaded machine main may run only after the waker let go,
	 * which tests nothing: try again. */
	for (int tries = 0; !met && tries < 5; tries++) {
		struct weft_event ev;

		atomic_store(&waker_held, 0);
		ck_assert_int_eq(weft_event_init(&ev), 0);
		ck_assert_int_eq(weft_run(wait_for_waker, &ev, &cfg, &met), 0);
		/* Before the fix weft_run returned, and freed the runtime,
		 * with the waker still inside. */
		ck_assert(!atomic_load(&waker_inside));
		pthread_join(late_waker, NULL);
		ck_assert_int_eq(atomic_load(&waker_held), 1);
	}
	weft__ready_after_push = NULL;
	ck_assert_msg(met, "main never ended while the waker was held");
}
END_TEST

/* ---- a plain thread spawning while weft_run fails to start -------------- */

static atomic_bool start_over;
static atomic_int early_spawned, early_finished;

static void *sleep_till_cancelled(void *arg)
{
	(void)weft_sleep(60 * WEFT_SEC); /* -ECANCELED at shutdown */
	atomic_fetch_add(&early_finished, 1);
	return arg;
}

static void *early_spawner(void *arg)
{
	while (!atomic_load(&start_over))
		if (weft_spawn(NULL, sleep_till_cancelled, NULL) == 0)
			atomic_fetch_add(&early_spawned, 1);
	return arg;
}

/*
 * weft_run publishes the runtime before it starts the workers, and a step
 * after that may still fail (here the dump signal, held by a registration).
 * A plain thread's spawn in between must not leave a task that nobody
 * cancels or awaits: it ran on with the workers gone, and the next run's
 * drain cancelled it through the timers of a freed runtime.
 */
START_TEST(spawn_while_start_fails)
{
	struct weft_config cfg = { .workers = 2, .dump_signal = SIGUSR2 };
	struct weft_signal held;
	pthread_t th;

	ck_assert_int_eq(weft_signal_open(&held, WEFT_SIGNAL(SIGUSR2)), 0);
	ck_assert_int_eq(pthread_create(&th, NULL, early_spawner, NULL), 0);
	for (int i = 0; i < 20; i++)
		ck_assert_int_eq(weft_run(noop, NULL, &cfg, NULL), -EBUSY);
	atomic_store(&start_over, true);
	pthread_join(th, NULL);
	ck_assert_int_eq(weft_signal_close(&held), 0);
	/* Every task a spawn accepted ended, as at the end of any run. */
	int spawned = atomic_load(&early_spawned);
	int finished = atomic_load(&early_finished);
	ck_assert_int_eq(finished, spawned);
	weft_test_run(noop, NULL, 2);
}
END_TEST

/* ---- more online CPUs than workers may be ------------------------------- */

/* The CPUs sysconf reports and the affinity mask holds, when set: a bigger
 * machine than this. Not under ThreadSanitizer, whose start-up calls
 * sysconf before it can run instrumented code. */
#ifndef __SANITIZE_THREAD__
#define CAN_FAKE_CPUS 1
static long fake_cpus;
long __sysconf(int name);

long sysconf(int name)
{
	if ((name == _SC_NPROCESSORS_ONLN || name == _SC_NPROCESSORS_CONF) &&
	    fake_cpus)
		return fake_cpus;
	return __sysconf(name);
}

/* glibc's, unless faked: the kernel fills what it has, the rest is 0. */
int sched_getaffinity(pid_t pid, size_t size, cpu_set_t *set)
{
	if (fake_cpus) {
		CPU_ZERO_S(size, set);
		for (long i = 0; i < fake_cpus && (size_t)i < size * 8; i++)
			CPU_SET_S(i, size, set);
		return 0;
	}
	long r = syscall(SYS_sched_getaffinity, pid, size, set);
	if (r < 0)
		return -1;
	memset((char *)set + r, 0, size - (size_t)r);
	return 0;
}

static void *count_workers(void *arg)
{
	struct weft_metrics m;

	/* Work for the monitor to look at every worker for. */
	for (int i = 0; i < 100; i++) {
		weft_task_t t;

		ck_assert_int_eq(weft_spawn(&t, noop, NULL), 0);
		ck_assert_int_eq(weft_sleep(WEFT_MSEC / 10), 0);
		ck_assert_int_eq(weft_join(t, NULL), 0);
	}
	ck_assert_int_eq(weft_metrics(&m), 0);
	return (void *)(intptr_t)m.workers;
}
#endif

/*
 * Left to choose, weft_run started a worker per CPU however many
 * there were: past WEFT_WORKERS_MAX the monitor's looks (an array of
 * WEFT_WORKERS_MAX on its stack) overflowed, and task ids, which are
 * numbered WEFT_WORKERS_MAX apart, collided across workers.
 */
START_TEST(workers_capped_on_big_machines)
{
#ifdef CAN_FAKE_CPUS
	const char *env = getenv("WEFT_WORKERS");
	char *saved = env ? strdup(env) : NULL;
	struct rlimit rl;
	void *workers = NULL;

	/* Two descriptors a worker: its ring or epoll set, its eventfd. */
	ck_assert_int_eq(getrlimit(RLIMIT_NOFILE, &rl), 0);
	rl.rlim_cur = rl.rlim_max;
	setrlimit(RLIMIT_NOFILE, &rl);
	if (rl.rlim_cur < 3 * WEFT_WORKERS_MAX) {
		free(saved);
		return; /* cannot start that many */
	}
	unsetenv("WEFT_WORKERS");
	fake_cpus = WEFT_WORKERS_MAX + 1;
	int r = weft_run(count_workers, NULL, NULL, &workers);
	fake_cpus = 0;
	if (saved)
		setenv("WEFT_WORKERS", saved, 1);
	free(saved);
	if (r == -EAGAIN || r == -ENOMEM || r == -EMFILE)
		return; /* this host cannot start that many threads */
	ck_assert_int_eq(r, 0);
	ck_assert_int_eq((int)(intptr_t)workers, WEFT_WORKERS_MAX);
#endif
}
END_TEST

/*
 * weft_run waits for plain threads inside a spawn, a wake, weft_workers or
 * weft_metrics (weft__task_foreign_quiesce) before it counts the tasks
 * left and before it frees the runtime. Two threads whose calls overlap,
 * each entering its next before the other leaves, never let every call
 * be over at one instant: a wait for that never ended (and with 8 threads
 * calling weft_workers() in a loop, weft_run took up to 5 s). The wait is
 * for the calls that began before it, which end.
 */
static atomic_int handover_turn;
static atomic_bool handover_stop;

static void *hand_over(void *arg)
{
	int me = (int)(intptr_t)arg, phase = weft__foreign_enter();

	atomic_fetch_add(&handover_turn, 1); /* in: the first two turns */
	while (!atomic_load(&handover_stop)) {
		int turn = atomic_load(&handover_turn);

		if (turn < 2 || turn % 2 != me) {
			sched_yield();
			continue;
		}
		/* The other is inside: the next call begins, then ours ends. */
		int next = weft__foreign_enter();
		weft__foreign_leave(phase);
		phase = next;
		atomic_fetch_add(&handover_turn, 1);
	}
	weft__foreign_leave(phase);
	return NULL;
}

static void *quiesce(void *done)
{
	weft__task_foreign_quiesce();
	atomic_store((atomic_bool *)done, true);
	return NULL;
}

START_TEST(quiesce_beside_overlapping_calls)
{
	pthread_t callers[2], quiescer;
	atomic_bool done = false;

	atomic_store(&handover_turn, 0);
	atomic_store(&handover_stop, false);
	for (intptr_t i = 0; i < 2; i++)
		ck_assert_int_eq(pthread_create(&callers[i], NULL, hand_over,
						(void *)i),
				 0);
	while (atomic_load(&handover_turn) < 10)
		sched_yield(); /* both inside, handing over */
	ck_assert_int_eq(pthread_create(&quiescer, NULL, quiesce, &done), 0);
	for (int ms = 0; ms < 5000 && !atomic_load(&done); ms++)
		usleep(1000);
	bool in_time = atomic_load(&done);
	int turns = atomic_load(&handover_turn);

	atomic_store(&handover_stop, true);
	for (int i = 0; i < 2; i++)
		ck_assert_int_eq(pthread_join(callers[i], NULL), 0);
	ck_assert_int_eq(pthread_join(quiescer, NULL), 0);
	ck_assert_msg(in_time,
		      "the quiesce waited 5 s for calls that began after it "
		      "(%d hand-overs)",
		      turns);
}
END_TEST

/* ---- weft_run leaves its caller's next system calls alone --------------- */

/* weft_run chooses the I/O driver (auto: WEFT_IO unset) by setting up a
 * small io_uring and closing it. The kernel tears a closed ring down
 * later, in a worker of its own, and then interrupts every thread that
 * had set it up or entered it (task work with TWA_SIGNAL): a blocking
 * socket call with SO_RCVTIMEO fails with EINTR, which the kernel does not
 * restart, though no signal came. So the thread that called weft_run
 * found its next timed recv(2) interrupted, once the run was short. A
 * recv on a socket that gets nothing must time out, every round. */
static void *returns_at_once(void *arg)
{
	return arg;
}

START_TEST(run_leaves_no_interruption)
{
	struct timeval tv = { 0, 20000 };
	int eintr = 0, rounds = 20;

	for (int i = 0; i < rounds; i++) {
		int sv[2];
		char c;

		weft_test_run(returns_at_once, NULL, 1);
		ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
		ck_assert_int_eq(setsockopt(sv[0], SOL_SOCKET, SO_RCVTIMEO, &tv,
					    sizeof(tv)),
				 0);
		ssize_t r = recv(sv[0], &c, 1, 0);
		int err = errno;

		ck_assert_int_eq(r, -1);
		ck_assert(err == EAGAIN || err == EINTR);
		eintr += err == EINTR;
		close(sv[0]);
		close(sv[1]);
	}
	ck_assert_msg(!eintr, "%d of %d timed recvs after a run: EINTR", eintr,
		      rounds);
}
END_TEST

/* ---- a plain thread's spawn while the last task ends at shutdown ------- */

static atomic_bool late_armed, late_inside, late_last_done, late_ran,
	late_saw_shutdown;
static atomic_int late_spawn_result;

static void *late_noop(void *arg)
{
	return arg;
}

/* Held inside the plain thread's spawn, past its check of the state,
 * until the last task of the run (last_task: main ended before) has
 * ended. */
static void hold_late_spawn(void)
{
	if (!atomic_exchange(&late_armed, false))
		return;
	atomic_store(&late_inside, true);
	for (int64_t until = weft_now() + HANG_NS;
	     !atomic_load(&late_last_done) && weft_now() < until;)
		usleep(1000);
	/* Its worker ends it after it returns: give it time to (if it takes
	 * longer, the case is not made, and the test passes). */
	usleep(100 * 1000);
}

/* The late task: spawns for a while, seeing -ESHUTDOWN only if weft_run
 * stopped the workers without awaiting it. */
static void *late_task(void *arg)
{
	int64_t until = weft_now() + 200 * WEFT_MSEC;

	atomic_store(&late_ran, true);
	do {
		if (weft_spawn(NULL, late_noop, NULL) == -ESHUTDOWN) {
			atomic_store(&late_saw_shutdown, true);
			break;
		}
		usleep(1000);
	} while (weft_now() < until);
	return arg;
}

static void *late_spawner(void *arg)
{
	atomic_store(&late_armed, true);
	atomic_store(&late_spawn_result, weft_spawn(NULL, late_task, NULL));
	return arg;
}

/* Ends once shutdown has begun: a task spawned then starts cancelled. */
static void *last_task(void *arg)
{
	for (int i = 0; i < 10000; i++) { /* 10 s at most */
		weft_task_t probe;
		if (weft_sleep(WEFT_MSEC) == -ECANCELED)
			break;
		if (!atomic_load(&late_inside))
			continue;
		ck_assert_int_eq(weft_spawn(&probe, late_noop, NULL), 0);
		int c = weft_is_cancelled(probe);
		ck_assert_int_eq(weft_join(probe, NULL), 0);
		if (c == 1)
			break;
	}
	atomic_store(&late_last_done, true);
	return arg;
}

static void *start_late_spawner(void *tid)
{
	weft_task_t last;

	ck_assert_int_eq(weft_spawn(&last, last_task, NULL), 0);
	ck_assert_int_eq(weft_detach(last), 0);
	ck_assert_int_eq(pthread_create(tid, NULL, late_spawner, NULL), 0);
	while (!atomic_load(&late_inside))
		ck_assert_int_eq(weft_sleep(WEFT_MSEC), 0);
	return NULL;
}

/*
 * Shutdown begins (DRAINING) while a plain thread's spawn, which found the
 * runtime running, has not yet counted its task; the last task left ends
 * then, counts none alive and tells drain() all are done. That was kept:
 * drain() returned without awaiting the plain thread's task, which then ran
 * (or was left) while the workers stopped.
 */
START_TEST(plain_spawn_beside_last_finish)
{
	struct weft_config cfg = { .workers = 2 };
	pthread_t tid;

	weft__spawn_foreign_hook = hold_late_spawn;
	ck_assert_int_eq(weft_run(start_late_spawner, &tid, &cfg, NULL), 0);
	pthread_join(tid, NULL);
	weft__spawn_foreign_hook = NULL;
	ck_assert_int_eq(atomic_load(&late_spawn_result), 0);
	ck_assert_msg(atomic_load(&late_ran),
		      "weft_run returned, the plain thread's task never ran");
	ck_assert_msg(!atomic_load(&late_saw_shutdown),
		      "the plain thread's task ran on after drain");
}
END_TEST

/* One case per test, so CK_RUN_CASE=<name> runs one alone. */
static void add(Suite *s, const char *name, const TTest *test)
{
	TCase *tc = tcase_create(name);
	tcase_set_timeout(tc, 600);
	tcase_add_test(tc, test);
	suite_add_tcase(s, tc);
}

int main(void)
{
	Suite *s = suite_create("lifecycle");
	add(s, "timer_fires_at_recycled_task", timer_fires_at_recycled_task);
	add(s, "run_from_plain_thread", run_from_plain_thread_while_running);
	add(s, "handle_from_previous_run", handle_from_previous_run);
	add(s, "main_handle", main_handle_is_joined_by_run);
	add(s, "plain_waker_outlives_main", plain_waker_outlives_main);
	add(s, "detached_spawns", detached_spawns_through_shutdown);
	add(s, "joined_spawns", joined_spawns_through_shutdown);
	add(s, "cancelled", cancelled_task_completes_at_once);
	add(s, "kept_stack", recycled_struct_keeps_its_stack);
	add(s, "kept_stacks_between_runs", kept_stacks_dropped_between_runs);
	add(s, "detached_leftovers", detached_task_leftovers);
	add(s, "spawn_while_start_fails", spawn_while_start_fails);
	add(s, "workers_capped", workers_capped_on_big_machines);
	add(s, "quiesce_beside_calls", quiesce_beside_overlapping_calls);
	add(s, "run_leaves_no_interruption", run_leaves_no_interruption);
	add(s, "plain_spawn_beside_last_finish",
	    plain_spawn_beside_last_finish);
	return weft_test_main(s);
}
