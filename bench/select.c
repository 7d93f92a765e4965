/* select [producers=4] [per_producer=1000000] [capacity=1024] [both|get|
 * select]: what a select over two queues costs against a plain get from
 * one.
 *
 * Two runs of the channel workload: producers put u64s into bounded
 * weft_queues and one consumer sums them and checks. First the consumer
 * takes each item with weft_queue_get from one queue (the baseline, printed
 * as select_get), then the producers alternate between two queues and the
 * consumer takes each item with weft_select over both (printed last, as
 * select; the target is at most 2x the baseline). Half the selects find
 * their item in the second case, after the first one was found empty.
 * ops = producers * per_producer. The fourth argument runs one of the two
 * alone (for callgrind, which cannot tell them apart in one process). */
#include <stdlib.h>
#include <stdint.h>
#include <string.h>
#include "bench_util.h"

static long nprod, per, cap;
static struct weft_queue q[2] __attribute__((aligned(64)));
static int nqueues;

static void *producer(void *arg)
{
	for (uint64_t i = 0; i < (uint64_t)per; i++)
		if (weft_queue_put(&q[i % (uint64_t)nqueues], &i))
			abort();
	return NULL;
}

static uint64_t consume_get(long n)
{
	uint64_t sum = 0, v;
	for (long i = 0; i < n; i++) {
		if (weft_queue_get(&q[0], &v))
			abort();
		sum += v;
	}
	return sum;
}

static uint64_t consume_select(long n)
{
	uint64_t sum = 0, v;
	struct weft_select_case c[] = { WEFT_CASE_GET(&q[0], &v),
					WEFT_CASE_GET(&q[1], &v) };
	for (long i = 0; i < n; i++) {
		int k = weft_select(c, 2);
		if (k < 0 || c[k].status)
			abort();
		sum += v;
	}
	return sum;
}

static void run(const char *name, int queues)
{
	nqueues = queues;
	for (int k = 0; k < 2; k++)
		if (weft_queue_init(&q[k], sizeof(uint64_t), (size_t)cap))
			abort();
	weft_task_t *t = malloc(sizeof(*t) * (size_t)nprod);
	int64_t t0 = weft_now();
	for (long i = 0; i < nprod; i++)
		if (weft_spawn(&t[i], producer, NULL))
			abort();
	uint64_t sum = queues == 1 ? consume_get(nprod * per)
				   : consume_select(nprod * per);
	int64_t t1 = weft_now();
	for (long i = 0; i < nprod; i++)
		if (weft_join(t[i], NULL))
			abort();
	free(t);
	for (int k = 0; k < 2; k++)
		weft_queue_destroy(&q[k]);
	uint64_t want = (uint64_t)nprod *
			((uint64_t)per * (uint64_t)(per - 1) / 2);
	if (sum != want) {
		fprintf(stderr, "%s: sum %llu, want %llu\n", name,
			(unsigned long long)sum, (unsigned long long)want);
		exit(1);
	}
	bench_result(name, nprod * per, t1 - t0);
}

static const char *which = "both";

static void *bench(void *arg)
{
	if (strcmp(which, "select"))
		run("select_get", 1);
	if (strcmp(which, "get"))
		run("select", 2);
	return NULL;
}

int main(int argc, char **argv)
{
	nprod = bench_arg(argc, argv, 1, 4);
	per = bench_arg(argc, argv, 2, 1000000);
	cap = bench_arg(argc, argv, 3, 1024);
	if (argc > 4)
		which = argv[4];
	if (nprod < 1 || per < 1 || cap < 1 ||
	    (strcmp(which, "both") && strcmp(which, "get") &&
	     strcmp(which, "select")))
		return 2;
	return bench_run(bench, NULL, 0);
}
