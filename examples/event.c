/*
 * asyncio.Event, from the seed: worker1 and worker2 wait for an event that
 * worker3 sets after its sleep.
 *
 *   $ event           (the seed's output; every "got event" comes after
 *   worker2 start      "worker3 end", the rest may vary between runs)
 *   worker3 start
 *   worker1 start
 *   worker3 end
 *   worker2 got event
 *   worker1 got event
 *   worker2 end
 *   worker1 end
 */
#include <stdio.h>

#include "example.h"

struct worker {
	const char *name;
	struct weft_event *event;
	int64_t nap;
};

/* worker1 and worker2 */
static void *waiter(void *arg)
{
	struct worker *w = arg;
	int r;

	printf("%s start\n", w->name);
	r = weft_event_wait(w->event); /* await event.wait() */
	if (r)
		return ERR_PTR(r);
	printf("%s got event\n", w->name);
	r = weft_sleep(w->nap);
	printf("%s end\n", w->name);
	return ERR_PTR(r);
}

/* worker3 */
static void *setter(void *arg)
{
	struct worker *w = arg;
	int r;

	printf("%s start\n", w->name);
	r = weft_sleep(w->nap);
	printf("%s end\n", w->name);
	weft_event_set(w->event); /* wakes both waiters */
	return ERR_PTR(r);
}

int example_event(double secs)
{
	struct weft_event event = WEFT_EVENT_INIT; /* asyncio.Event() */
	struct worker w1 = { "worker1", &event, secs_ns(secs) };
	struct worker w2 = { "worker2", &event, secs_ns(secs) };
	struct worker w3 = { "worker3", &event, secs_ns(secs) };

	return gather(waiter, &w1, waiter, &w2, setter, &w3, NULL);
}

#ifndef EXAMPLE_NO_MAIN
int main(int argc, char **argv)
{
	return example_main(argc, argv, example_event, 3);
}
#endif
