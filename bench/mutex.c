/* mutex [tasks=1000] [incs=10000]: every task increments one shared
 * counter incs times under a weft_lock. ops = tasks * incs. */
#include <stdlib.h>
#include "bench_util.h"

static long ntasks, nincs;

/* The counter sits beside its lock, on a line of their own, as in Tokio's
 * Mutex<u64> and as Go's allocator places the two small variables. */
static struct __attribute__((aligned(64))) {
	struct weft_lock lock;
	long counter;
} shared = { .lock = WEFT_LOCK_INIT };

static void *incrementer(void *arg)
{
	long incs = nincs; /* a local bound, as the peers' closures have */

	for (long i = 0; i < incs; i++) {
		if (weft_lock_acquire(&shared.lock))
			abort(); /* never cancelled here */
		shared.counter++;
		weft_lock_release(&shared.lock);
	}
	return NULL;
}

static void *bench(void *arg)
{
	int64_t ns = bench_spawn_all(ntasks, incrementer);
	if (shared.counter != ntasks * nincs) {
		fprintf(stderr, "mutex: counter %ld, want %ld\n",
			shared.counter, ntasks * nincs);
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
