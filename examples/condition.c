/*
 * asyncio.Condition, from the seed: worker1 and worker2 wait on a condition;
 * worker3 comes a third of the way in, works with the lock held, then
 * notifies all. The woken workers then take the lock one at a time.
 *
 *   $ condition       (the seed's output; 1 and 2 may swap places, but
 *   asyncio native start3     each start is followed by its own stop)
 *   asyncio native stop3
 *   asyncio native start1
 *   asyncio native stop1
 *   asyncio native start2
 *   asyncio native stop2
 */
#include <stdbool.h>
#include <stdio.h>

#include "example.h"

struct stage {
	struct weft_lock lock;
	struct weft_cond cond; /* asyncio.Condition() over lock */
	bool notified;         /* worker3 is done; lock guards it */
	int64_t nap;
};

struct worker {
	int n;
	struct stage *stage;
};

/* worker1 and worker2 */
static void *waiter(void *arg)
{
	struct worker *w = arg;
	struct stage *s = w->stage;
	int r;

	r = weft_lock_acquire(&s->lock); /* async with condition: */
	if (r)
		return ERR_PTR(r);
	/*
	 * await condition.wait(). The seed relies on worker3's head start to
	 * have both waiting before the notify; the flag makes that certain
	 * (a worker that comes late sees it and does not wait at all).
	 */
	while (!s->notified && !r)
		r = weft_cond_wait(&s->cond); /* relocks, even on error */
	if (!r) {
		printf("asyncio native start%d\n", w->n);
		r = weft_sleep(s->nap);
		printf("asyncio native stop%d\n", w->n);
	}
	weft_lock_release(&s->lock);
	return ERR_PTR(r);
}

/* worker3 */
static void *notifier(void *arg)
{
	struct worker *w = arg;
	struct stage *s = w->stage;
	int r;

	r = weft_sleep(s->nap / 3); /* await asyncio.sleep(1) */
	if (!r)
		r = weft_lock_acquire(&s->lock);
	if (r)
		return ERR_PTR(r);
	printf("asyncio native start%d\n", w->n);
	r = weft_sleep(s->nap);
	printf("asyncio native stop%d\n", w->n);
	s->notified = true;
	weft_cond_notify_all(&s->cond);
	weft_lock_release(&s->lock);
	return ERR_PTR(r);
}

int example_condition(double secs)
{
	struct stage s = { .lock = WEFT_LOCK_INIT, .nap = secs_ns(secs) };
	struct worker w1 = { 1, &s }, w2 = { 2, &s }, w3 = { 3, &s };

	weft_cond_init(&s.cond, &s.lock);
	return gather(waiter, &w1, waiter, &w2, notifier, &w3, NULL);
}

#ifndef EXAMPLE_NO_MAIN
int main(int argc, char **argv)
{
	return example_main(argc, argv, example_condition, 3);
}
#endif
