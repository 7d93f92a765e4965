/* yield_many [tasks=1000] [yields=1000]: every task yields `yields` times. */
#include <stdlib.h>
#include "bench_util.h"

static long ntasks, nyields;

static void *yielder(void *arg)
{
	for (long i = 0; i < nyields; i++)
		weft_yield();
	return NULL;
}

static void *bench(void *arg)
{
	weft_task_t *t = malloc(sizeof(*t) * (size_t)ntasks);
	int64_t t0 = weft_now();
	for (long i = 0; i < ntasks; i++)
		if (weft_spawn(&t[i], yielder, NULL))
			abort();
	for (long i = 0; i < ntasks; i++)
		if (weft_join(t[i], NULL))
			abort();
	int64_t t1 = weft_now();
	free(t);
	bench_result("yield_many", ntasks * nyields, t1 - t0);
	return NULL;
}

int main(int argc, char **argv)
{
	ntasks = bench_arg(argc, argv, 1, 1000);
	nyields = bench_arg(argc, argv, 2, 1000);
	return bench_run(bench, NULL, 0);
}
