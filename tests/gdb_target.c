/* A program for test_gdb (gdb_check.sh): tasks parked in functions of
 * their own, one spawned that never runs, and a plain thread stopped
 * inside an inlined function; prints "ready" and waits for stdin to
 * close. */
#include <pthread.h>
#include <stdio.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "weft.h"

static struct weft_lock lock;
static struct weft_event done;

static __attribute__((noinline)) void *parked_in_lock(void *arg)
{
	int r = weft_lock_acquire(&lock);
	if (!r)
		weft_lock_release(&lock);
	return (void *)(long)r;
}

static __attribute__((noinline)) void *parked_in_event(void *arg)
{
	int r = weft_event_wait(&done);
	return (void *)(long)r;
}

static void *wait_stdin(void *arg)
{
	char c;
	while (read(0, &c, 1) > 0)
		;
	return NULL;
}

/* Keeps its worker in read(2) until stdin closes: with main_task in the
 * same read on the other worker, no worker is left to run "notyet". */
static void *keep_worker(void *arg)
{
	wait_stdin(NULL);
	return arg;
}

static void *never_run(void *arg)
{
	return arg;
}

/* Sleeps in ppoll(NULL, 0, NULL, NULL, 0), for ever, with the system call
 * made inline: the thread's innermost frame is then an inline one, as
 * that of a thread asleep in glibc's futex wait is when glibc's debug
 * information is installed (pthread_join, pthread_cond_wait). `weft bt`
 * run from this thread must show the task's frames all the same. */
static inline __attribute__((always_inline)) void sleep_inline(void)
{
	static volatile unsigned long wakes;
	for (;;) {
#if defined(__x86_64__)
		register long nr __asm__("rax") = SYS_ppoll;
		register long a3 __asm__("r10") = 0, a4 __asm__("r8") = 0;
		__asm__ volatile("syscall"
				 : "+r"(nr)
				 : "D"(0L), "S"(0L), "d"(0L), "r"(a3), "r"(a4)
				 : "rcx", "r11", "memory");
#elif defined(__aarch64__)
		register long nr __asm__("x8") = SYS_ppoll;
		register long a0 __asm__("x0") = 0, a1 __asm__("x1") = 0,
				 a2 __asm__("x2") = 0, a3 __asm__("x3") = 0,
				 a4 __asm__("x4") = 0;
		__asm__ volatile("svc 0"
				 : "+r"(a0)
				 : "r"(nr), "r"(a1), "r"(a2), "r"(a3), "r"(a4)
				 : "memory");
#else
		pause();
#endif
		wakes++;
	}
}

static __attribute__((noinline)) void *inline_sleeper(void *arg)
{
	sleep_inline();
	return NULL;
}

/* A failed call would leave gdb nothing to find: say so, and stop. */
static void must(int r)
{
	if (r) {
		fprintf(stderr, "gdb_target: a call failed: %d\n", r);
		_exit(1);
	}
}

static void *main_task(void *arg)
{
	weft_task_t a, b, c, keeper, notyet;
	weft_lock_init(&lock);
	weft_event_init(&done);
	must(weft_lock_acquire(&lock));
	must(weft_spawn_opts(&a, parked_in_lock, NULL,
			     &(struct weft_spawn_opts){ .name = "locker" }));
	must(weft_spawn_opts(&b, parked_in_event, NULL,
			     &(struct weft_spawn_opts){ .name = "eventer" }));
	/* "cut-" and 14 e-acutes (2 bytes each in UTF-8): cut to
	 * WEFT_NAME_MAX - 1 bytes, halfway through the last one. */
	must(weft_spawn_opts(
		&c, parked_in_event, NULL,
		&(struct weft_spawn_opts){
			.name = "cut-\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9"
				"\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9"
				"\u00e9" }));
	/* The keeper takes a worker (ours, while we sleep; the monitor
	 * fires our timer and the other worker wakes us). */
	must(weft_spawn_opts(&keeper, keep_worker, NULL,
			     &(struct weft_spawn_opts){ .name = "keeper" }));
	weft_sleep(100 * WEFT_MSEC); /* the three park */
	/* A task spawned that never runs while gdb looks: it has no saved
	 * registers, nor a stack, for `weft bt` to read. */
	must(weft_spawn_opts(&notyet, never_run, NULL,
			     &(struct weft_spawn_opts){ .name = "notyet" }));
	printf("ready\n");
	fflush(stdout);
	wait_stdin(NULL); /* keeps this worker too */
	weft_lock_release(&lock);
	weft_event_set(&done);
	must(weft_join(a, NULL));
	must(weft_join(b, NULL));
	must(weft_join(c, NULL));
	must(weft_join(keeper, NULL));
	must(weft_join(notyet, NULL));
	return NULL;
}

int main(void)
{
	struct weft_config cfg = { .workers = 2 };
	pthread_t sleeper;
	must(pthread_create(&sleeper, NULL, inline_sleeper, NULL));
	return weft_run(main_task, NULL, &cfg, NULL) ? 1 : 0;
}
