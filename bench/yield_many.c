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
	int64_t ns = bench_spawn_all(ntasks, yielder);
	bench_result("yield_many", ntasks * nyields, ns);
	return NULL;
}

int main(int argc, char **argv)
{
	ntasks = bench_arg(argc, argv, 1, 1000);
	nyields = bench_arg(argc, argv, 2, 1000);
	return bench_run(bench, NULL, 0);
}
