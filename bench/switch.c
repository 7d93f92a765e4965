/* switch [switches=10000000]: two tasks on one worker yielding to each
 * other; reports nanoseconds per switch. */
#include <stdlib.h>
#include "bench_util.h"

static long nswitches;

static void *yielder(void *arg)
{
	for (long i = 0; i < nswitches / 2; i++)
		weft_yield();
	return NULL;
}

static void *bench(void *arg)
{
	weft_task_t a, b;
	bench_spawn(&a, yielder, NULL);
	bench_spawn(&b, yielder, NULL);
	weft_yield(); /* let both start before timing */
	int64_t t0 = weft_now();
	if (weft_join(a, NULL))
		abort();
	if (weft_join(b, NULL))
		abort();
	bench_result("switch", nswitches, weft_now() - t0);
	return NULL;
}

int main(int argc, char **argv)
{
	nswitches = bench_arg(argc, argv, 1, 10000000);
	return bench_run(bench, NULL, 1);
}
