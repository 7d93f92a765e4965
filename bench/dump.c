/* dump [tasks=100000]: weft_dump of that many tasks parked on an event,
 * written to /dev/null; reports nanoseconds per task dumped. */
#include <fcntl.h>
#include <unistd.h>

#include "bench_util.h"

static long ntasks;
static struct weft_event ev;

static void *waiter(void *arg)
{
	return (void *)(intptr_t)weft_event_wait(&ev);
}

static void *bench(void *arg)
{
	weft_event_init(&ev);
	for (long i = 0; i < ntasks; i++)
		if (weft_spawn(NULL, waiter, NULL))
			abort();
	while (weft_sleep(10 * WEFT_MSEC) == 0) { /* until all have parked */
		struct weft_metrics m;
		if (weft_metrics(&m))
			abort(); /* in a task of a running runtime: cannot */
		if (!m.runnext_depth && !m.local_depth && !m.woken_depth &&
		    !m.global_depth)
			break;
	}
	int fd = open("/dev/null", O_WRONLY);
	int64_t t0 = weft_now();
	if (weft_dump(fd))
		abort();
	bench_result("dump", ntasks, weft_now() - t0);
	close(fd);
	weft_event_set(&ev);
	return NULL;
}

int main(int argc, char **argv)
{
	ntasks = bench_arg(argc, argv, 1, 100000);
	return bench_run(bench, NULL, 0);
}
