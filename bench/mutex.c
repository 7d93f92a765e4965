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
	int64_t ns = bench_spawn_all(ntasks, incrementer);
	if (counter != ntasks * nincs) {
		fprintf(stderr, "mutex: counter %ld, want %ld\n", counter,
			ntasks * nincs);
		exit(1);
	}
	bench_result("mutex", ntasks * nincs, ns);
	return NULL;
}

int main(int argc, char **argv)
{
	ntasks = bench_arg(argc, argv, 1, 1000);
	nincs = bench_arg(argc, argv, 2, 10000);
	return bench_run(bench, NULL, 0);
}
