/* mutex [tasks=1000] [incs=10000]: every task increments one shared
 * counter incs times under a weft_lock. ops = tasks * incs. */
#include <stdlib.h>
#include "bench_util.h"

static long ntasks, nincs;
static struct weft_lock lock = WEFT_LOCK_INIT;
static long counter;

static void *incrementer(void *arg)
{
	for (long i = 0; i < nincs; i++) {
		if (weft_lock_acquire(&lock))
			abort(); /* never cancelled here */
		counter++;
		weft_lock_release(&lock);
	}
	return NULL;
}

static void *bench(void *arg)
{
	weft_task_t *t = malloc(sizeof(*t) * (size_t)ntasks);
	int64_t t0 = weft_now();
	for (long i = 0; i < ntasks; i++)
		if (weft_spawn(&t[i], incrementer, NULL))
			abort();
	for (long i = 0; i < ntasks; i++)
		if (weft_join(t[i], NULL))
			abort();
	int64_t t1 = weft_now();
	free(t);
	if (counter != ntasks * nincs) {
		fprintf(stderr, "mutex: counter %ld, want %ld\n", counter,
			ntasks * nincs);
		exit(1);
	}
	bench_result("mutex", ntasks * nincs, t1 - t0);
	return NULL;
}

int main(int argc, char **argv)
{
	ntasks = bench_arg(argc, argv, 1, 1000);
	nincs = bench_arg(argc, argv, 2, 10000);
	return bench_run(bench, NULL, 0);
}
