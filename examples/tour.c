/*
 * tour: the seed's six asyncio programs in a row, each under its heading.
 * Sleeps last 0.5 s here rather than the seed's 3 s, so the whole tour takes
 * about five seconds; -s SECONDS changes that.
 */
#include <stdio.h>

#include "example.h"

static const struct {
	const char *title;
	const char *file;
	example_fn fn;
} sections[] = {
	{ "asyncio.Lock", "lock.c", example_lock },
	{ "asyncio.Event", "event.c", example_event },
	{ "asyncio.Condition", "condition.c", example_condition },
	{ "asyncio.Semaphore", "semaphore.c", example_semaphore },
	{ "asyncio.Queue", "queue.c", example_queue },
	{ "asyncio.Future", "future.c", example_future },
};

static int tour(double secs)
{
	size_t i;
	int r;

	int workers = weft_workers();

	printf("weft tour: the seed's asyncio programs in C, on %d worker "
	       "thread%s and the %s I/O driver.\nSleeps last %g s (the seed's "
	       "3 s; -s SECONDS to change).\n",
	       workers, workers == 1 ? "" : "s",
	       weft_io_driver() == WEFT_IO_URING ? "io_uring" : "epoll", secs);
	for (i = 0; i < sizeof(sections) / sizeof(sections[0]); i++) {
		printf("\n# %s  (examples/%s)\n", sections[i].title,
		       sections[i].file);
		r = sections[i].fn(secs);
		if (r)
			return r;
	}
	return 0;
}

int main(int argc, char **argv)
{
	return example_main(argc, argv, tour, 0.5);
}
