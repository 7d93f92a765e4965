/*
 * asyncio.Lock, from the seed: two workers share one lock. Whichever gets it
 * first holds it through its sleep; the other gets it only after that.
 *
 *   $ lock            (the seed's output; which worker goes first may vary,
 *   worker2 start      since the two run on different threads)
 *   worker2 got lock
 *   worker1 start
 *   worker2 end
 *   worker1 got lock
 *   worker1 end
 */
#include <stdio.h>

#include "example.h"

struct worker {
	const char *name;
	struct weft_lock *lock;
	int64_t nap;
};

/* The seed's worker1 and worker2 differ only in their names (and in the
 * age of their Python syntax), so here they are one function. */
static void *worker(void *arg)
{
	struct worker *w = arg;
	int r;

	printf("%s start\n", w->name);
	r = weft_lock_acquire(w->lock); /* with await lock: */
	if (r)
		return ERR_PTR(r);
	printf("%s got lock\n", w->name);
	r = weft_sleep(w->nap); /* await asyncio.sleep(3) */
	/*
	 * Python prints "end" just after the with block. Here the other
	 * worker may run on another thread the moment we release, so we print
	 * before releasing to keep the seed's order: end, then got lock.
	 */
	printf("%s end\n", w->name);
	weft_lock_release(w->lock);
	return ERR_PTR(r);
}

int example_lock(double secs)
{
	struct weft_lock lock = WEFT_LOCK_INIT; /* asyncio.Lock() */
	struct worker w1 = { "worker1", &lock, secs_ns(secs) };
	struct worker w2 = { "worker2", &lock, secs_ns(secs) };

	/* asyncio.wait([worker1(lock), worker2(lock)]) */
	return gather(worker, &w1, worker, &w2, NULL);
}

#ifndef EXAMPLE_NO_MAIN
int main(int argc, char **argv)
{
	return example_main(argc, argv, example_lock, 3);
}
#endif
