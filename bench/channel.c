/* channel [producers=4] [per_producer=2500000] [capacity=1024]: producers
 * put u64s into one bounded weft_queue, one consumer sums them and checks.
 * ops = producers * per_producer. */
#include <stdlib.h>
#include <stdint.h>
#include "bench_util.h"

static long nprod, per, cap;
static struct weft_queue q __attribute__((aligned(64)));

static void *producer(void *arg)
{
	for (uint64_t i = 0; i < (uint64_t)per; i++)
		if (weft_queue_put(&q, &i))
			abort();
	return NULL;
}

static void *bench(void *arg)
{
	if (weft_queue_init(&q, sizeof(uint64_t), (size_t)cap))
		abort();
	weft_task_t *t = malloc(sizeof(*t) * (size_t)nprod);
	int64_t t0 = weft_now();
	for (long i = 0; i < nprod; i++)
		if (weft_spawn(&t[i], producer, NULL))
			abort();
	uint64_t sum = 0, v;
	for (long i = 0; i < nprod * per; i++) {
		if (weft_queue_get(&q, &v))
			abort();
		sum += v;
	}
	int64_t t1 = weft_now();
	for (long i = 0; i < nprod; i++)
		if (weft_join(t[i], NULL))
			abort();
	free(t);
	weft_queue_destroy(&q);
	uint64_t want = (uint64_t)nprod *
			((uint64_t)per * (uint64_t)(per - 1) / 2);
	if (sum != want) {
		fprintf(stderr, "channel: sum %llu, want %llu\n",
			(unsigned long long)sum, (unsigned long long)want);
		exit(1);
	}
	bench_result("channel", nprod * per, t1 - t0);
	return NULL;
}

int main(int argc, char **argv)
{
	nprod = bench_arg(argc, argv, 1, 4);
	per = bench_arg(argc, argv, 2, 2500000);
	cap = bench_arg(argc, argv, 3, 1024);
	if (nprod < 1 || per < 1 || cap < 1)
		return 2;
	return bench_run(bench, NULL, 0);
}
