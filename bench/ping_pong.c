/* ping_pong [round_trips=1000000]: two tasks bounce a u64 over two
 * weft_queues of capacity 1. ops = round trips. */
#include <stdlib.h>
#include <stdint.h>
#include "bench_util.h"

static long trips;
static struct weft_queue ping
	__attribute__((aligned(64))) = WEFT_QUEUE_INIT(sizeof(uint64_t), 1);
static struct weft_queue pong
	__attribute__((aligned(64))) = WEFT_QUEUE_INIT(sizeof(uint64_t), 1);

static void *ponger(void *arg)
{
	uint64_t v;
	for (long i = 0; i < trips; i++) {
		if (weft_queue_get(&ping, &v))
			abort();
		v++;
		if (weft_queue_put(&pong, &v))
			abort();
	}
	return NULL;
}

static void *bench(void *arg)
{
	weft_task_t t;
	uint64_t v = 0;
	int64_t t0 = weft_now();
	if (weft_spawn(&t, ponger, NULL))
		abort();
	for (long i = 0; i < trips; i++) {
		if (weft_queue_put(&ping, &v) || weft_queue_get(&pong, &v))
			abort();
	}
	if (weft_join(t, NULL))
		abort();
	int64_t t1 = weft_now();
	if (v != (uint64_t)trips) {
		fprintf(stderr, "ping_pong: %llu, want %ld\n",
			(unsigned long long)v, trips);
		exit(1);
	}
	weft_queue_destroy(&ping);
	weft_queue_destroy(&pong);
	bench_result("ping_pong", trips, t1 - t0);
	return NULL;
}

int main(int argc, char **argv)
{
	trips = bench_arg(argc, argv, 1, 1000000);
	if (trips < 1)
		return 2;
	return bench_run(bench, NULL, 0);
}
