/*
 * asyncio.Queue, from the seed: worker1 puts 100 into a queue of capacity
 * two; worker2 gets it and prints it. The tasks share data, not memory.
 *
 *   $ queue           (the seed's output; "100" always comes between
 *   worker2 start      "worker2 start" and "worker2 end", the rest may vary)
 *   worker1 start
 *   worker1 end
 *   100
 *   worker2 end
 */
#include <stdio.h>

#include "example.h"

static void *worker1(void *arg)
{
	struct weft_queue *queue = arg;
	int x = 100, r;

	printf("worker1 start\n");
	r = weft_queue_put(queue, &x); /* copies x in */
	printf("worker1 end\n");
	return ERR_PTR(r);
}

static void *worker2(void *arg)
{
	struct weft_queue *queue = arg;
	int x, r;

	printf("worker2 start\n");
	r = weft_queue_get(queue, &x); /* waits for an element */
	if (r)
		return ERR_PTR(r);
	printf("%d\n", x);
	printf("worker2 end\n");
	return NULL;
}

int example_queue(double secs)
{
	/* asyncio.Queue(2): at most two ints, kept on the heap. */
	struct weft_queue queue = WEFT_QUEUE_INIT(sizeof(int), 2);
	int r;

	r = gather(worker1, &queue, worker2, &queue, NULL);
	weft_queue_destroy(&queue);
	return r;
}

#ifndef EXAMPLE_NO_MAIN
int main(int argc, char **argv)
{
	return example_main(argc, argv, example_queue, 3);
}
#endif
