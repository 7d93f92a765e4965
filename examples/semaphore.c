/*
 * asyncio.Semaphore, from the seed: a semaphore of two permits lets both
 * workers in at once, so both start before either ends.
 *
 *   $ semaphore       (the seed's output; the order within the two starts
 *   worker2 start      and within the two ends may vary)
 *   worker1 start
 *   worker2 end
 *   worker1 end
 */
#include <stdio.h>

#include "example.h"

struct worker {
	const char *name;
	struct weft_sem *sem;
	int64_t nap;
};

static void *worker(void *arg)
{
	struct worker *w = arg;
	int r;

	r = weft_sem_acquire(w->sem); /* with await semaphore: */
	if (r)
		return ERR_PTR(r);
	printf("%s start\n", w->name);
	r = weft_sleep(w->nap);
	printf("%s end\n", w->name);
	weft_sem_release(w->sem);
	return ERR_PTR(r);
}

int example_semaphore(double secs)
{
	/* The initial value says how many tasks may hold it at once. */
	struct weft_sem sem = WEFT_SEM_INIT(2);
	struct worker w1 = { "worker1", &sem, secs_ns(secs) };
	struct worker w2 = { "worker2", &sem, secs_ns(secs) };

	return gather(worker, &w1, worker, &w2, NULL);
}

#ifndef EXAMPLE_NO_MAIN
int main(int argc, char **argv)
{
	return example_main(argc, argv, example_semaphore, 3);
}
#endif
