/* sum: four producer tasks feed a bounded queue; the main task adds up
 * what arrives, giving up if the whole job takes more than a second. */
#include <stdint.h>
#include <stdio.h>
#include <weft.h>

#define PRODUCERS 4
#define EACH 1000

static struct weft_queue numbers = WEFT_QUEUE_INIT(sizeof(long), 64);

static void *producer(void *arg)
{
	long first = (intptr_t)arg;

	for (long i = first; i < first + EACH; i++)
		if (weft_queue_put(&numbers, &i)) /* waits while full */
			break;
	return NULL;
}

static void *main_task(void *arg)
{
	weft_task_t tasks[PRODUCERS];
	struct weft_deadline d;
	long n, sum = 0;
	int i, started, err = 0;

	(void)arg;
	for (started = 0; started < PRODUCERS && !err; started++)
		err = weft_spawn(&tasks[started], producer,
				 (void *)(intptr_t)(started * EACH));
	started -= err != 0; /* a failed spawn (-ENOMEM) made no task */
	/* asyncio.timeout(1): every get below is bounded by one second. */
	bool timed = !err && !(err = weft_deadline_enter(&d, 1 * WEFT_SEC));
	for (i = 0; i < PRODUCERS * EACH && !err; i++) {
		err = weft_queue_get(&numbers, &n); /* -ETIMEDOUT at 1 s */
		sum += err ? 0 : n;
	}
	if (timed)
		weft_deadline_leave(&d);
	weft_queue_shutdown(&numbers, true); /* puts left fail: -EPIPE */
	for (i = 0; i < started; i++)
		if (weft_join(tasks[i], NULL) && !err)
			err = -1; /* we were cancelled while joining */
	weft_queue_destroy(&numbers);
	printf("sum %ld (expected %ld) on %d workers\n", sum,
	       PRODUCERS * EACH * (PRODUCERS * EACH - 1L) / 2, weft_workers());
	return (void *)(intptr_t)err;
}

int main(void)
{
	void *err;

	if (weft_run(main_task, NULL, NULL, &err) || err)
		return 1;
	return 0;
}
