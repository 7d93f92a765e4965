/* chained_spawn [depth=1000000]: each task spawns the next; the last one
 * signals the end. */
#include <stdlib.h>
#include "bench_util.h"

static struct weft_event done = WEFT_EVENT_INIT;

static void *link(void *arg)
{
	long left = (long)arg;
	if (left == 0)
		weft_event_set(&done);
	else if (weft_spawn(NULL, link, (void *)(left - 1)))
		abort();
	return NULL;
}

static void *bench(void *arg)
{
	long depth = (long)arg;
	int64_t t0 = weft_now();
	if (weft_spawn(NULL, link, (void *)(depth - 1)))
		abort();
	if (weft_event_wait(&done))
		abort();
	bench_result("chained_spawn", depth, weft_now() - t0);
	return NULL;
}

int main(int argc, char **argv)
{
	return bench_run(bench, (void *)bench_arg(argc, argv, 1, 1000000), 0);
}
