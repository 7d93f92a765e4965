/*
 * asyncio.Future (the seed has only the heading): the example asyncio's own
 * documentation gives. One task waits for a future that another task sets
 * after a sleep (a third of -s SECONDS: the documentation's 1 s).
 *
 *   $ future
 *   hello ...
 *   ... world
 */
#include <stdio.h>

#include "example.h"

struct later {
	struct weft_future *fut;
	int64_t delay;
	const char *value;
};

static void *set_after(void *arg)
{
	struct later *l = arg;
	int r;

	r = weft_sleep(l->delay);
	if (r) /* cancelled: tell the waiter rather than leave it */
		weft_future_set_error(l->fut, r);
	else
		weft_future_set_result(l->fut, (void *)l->value);
	return ERR_PTR(r);
}

int example_future(double secs)
{
	struct weft_future fut = WEFT_FUTURE_INIT; /* create_future() */
	struct later later = { &fut, secs_ns(secs) / 3, "... world" };
	weft_task_t setter;
	void *value;
	int r;

	/* Run set_after() in a parallel task. */
	r = weft_spawn(&setter, set_after, &later);
	if (r)
		return r;
	printf("hello ...\n");
	r = weft_future_wait(&fut, &value); /* await fut */
	if (!r)
		printf("%s\n", (const char *)value);
	else
		weft_cancel(setter);
	/* fut lives on this stack: the setter must be done before we return,
	 * even if we were cancelled, so the join is shielded. */
	struct weft_shield sh;
	bool shielded = !weft_shield_enter(&sh); /* it is, in a task */
	if (weft_join(setter, NULL))
		fprintf(stderr, "future: lost the setter\n");
	if (shielded)
		weft_shield_leave(&sh);
	return r;
}

#ifndef EXAMPLE_NO_MAIN
int main(int argc, char **argv)
{
	return example_main(argc, argv, example_future, 3);
}
#endif
