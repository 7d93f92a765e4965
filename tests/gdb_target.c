/* A program for test_gdb (gdb_check.sh): tasks parked in functions of
 * their own; prints "ready" and waits for stdin to close. */
#include <stdio.h>
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
	weft_task_t a, b;
	weft_lock_init(&lock);
	weft_event_init(&done);
	must(weft_lock_acquire(&lock));
	must(weft_spawn_opts(&a, parked_in_lock, NULL,
			     &(struct weft_spawn_opts){ .name = "locker" }));
	must(weft_spawn_opts(&b, parked_in_event, NULL,
			     &(struct weft_spawn_opts){ .name = "eventer" }));
	weft_sleep(100 * WEFT_MSEC); /* both park */
	printf("ready\n");
	fflush(stdout);
	must(weft_blocking(wait_stdin, NULL, NULL));
	weft_lock_release(&lock);
	weft_event_set(&done);
	must(weft_join(a, NULL));
	must(weft_join(b, NULL));
	return NULL;
}

int main(void)
{
	struct weft_config cfg = { .workers = 2 };
	return weft_run(main_task, NULL, &cfg, NULL) ? 1 : 0;
}
