/* skynet [leaves=1000000]: a 10-ary tree of tasks down to `leaves` leaf
 * tasks; each leaf sends its number to its parent over a weft_queue, each
 * parent sends the sum of its children up. ops = leaves; the answer is
 * leaves * (leaves - 1) / 2 (499999500000 for a million). */
#include <stdint.h>
#include "bench_util.h"

struct node {
	uint64_t num, size;
	struct weft_queue *parent;
};

static void *skynet(void *arg)
{
	struct node n = *(struct node *)arg;
	uint64_t sum = n.num;
	if (n.size > 1) {
		/* Children put into a queue that lives on this stack. */
		uint64_t buf[10], v;
		struct node kids[10];
		struct weft_queue q;
		struct weft_queue_opts o = { .elem_size = sizeof(uint64_t),
					     .capacity = 10,
					     .storage = buf };
		weft_queue_init_opts(&q, &o);
		uint64_t k = n.size < 10 ? n.size : 10, start = n.num;
		for (uint64_t i = 0; i < k; i++) {
			uint64_t sz = n.size / k + (i < n.size % k);
			kids[i] = (struct node){ start, sz, &q };
			start += sz;
			if (weft_spawn(NULL, skynet, &kids[i]))
				abort();
		}
		sum = 0;
		for (uint64_t i = 0; i < k; i++) {
			if (weft_queue_get(&q, &v))
				abort();
			sum += v;
		}
	}
	if (weft_queue_put(n.parent, &sum))
		abort();
	return NULL;
}

static long leaves;

static void *bench(void *arg)
{
	uint64_t buf[1], sum;
	struct weft_queue q;
	struct weft_queue_opts o = { .elem_size = sizeof(uint64_t),
				     .capacity = 1,
				     .storage = buf };
	weft_queue_init_opts(&q, &o);
	struct node root = { 0, (uint64_t)leaves, &q };
	int64_t t0 = weft_now();
	if (weft_spawn(NULL, skynet, &root) || weft_queue_get(&q, &sum))
		abort();
	int64_t t1 = weft_now();
	uint64_t want = (uint64_t)leaves * (uint64_t)(leaves - 1) / 2;
	if (sum != want) {
		fprintf(stderr, "skynet: %llu, want %llu\n",
			(unsigned long long)sum, (unsigned long long)want);
		exit(1);
	}
	bench_result("skynet", leaves, t1 - t0);
	return NULL;
}

int main(int argc, char **argv)
{
	leaves = bench_arg(argc, argv, 1, 1000000);
	if (leaves < 1)
		return 2;
	return bench_run(bench, NULL, 0);
}
