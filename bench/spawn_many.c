/* spawn_many [N=1000000]: spawn N tasks from inside the runtime, each
 * increments a shared counter; wait for all. */
#include <stdlib.h>
#include <stdatomic.h>
#include "bench_util.h"

static long n;
static atomic_long counter;
static struct weft_event done = WEFT_EVENT_INIT;

static void *leaf(void *arg)
{
	if (atomic_fetch_add_explicit(&counter, 1, memory_order_relaxed) + 1 ==
	    n)
		weft_event_set(&done);
	return NULL;
}

static void *bench(void *arg)
{
	int64_t t0 = weft_now();
	for (long i = 0; i < n; i++)
		if (weft_spawn(NULL, leaf, NULL))
			abort();
	if (weft_event_wait(&done))
		abort();
	int64_t t1 = weft_now();
	if (atomic_load(&counter) != n)
		abort();
	bench_result("spawn_many", n, t1 - t0);
	return NULL;
}

int main(int argc, char **argv)
{
	n = bench_arg(argc, argv, 1, 1000000);
	return bench_run(bench, NULL, 0);
}
