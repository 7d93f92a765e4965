/* The start of a race between tasks (test_sync_race, test_cancel_race):
 * each party arrives at a line and waits there; the main task releases
 * them all at one instant once every one arrived, and each then spins a
 * random while before its move, so a wait, its completion and a cancel
 * meet in every order across workers. */
#ifndef WEFT_TESTS_RACE_UTIL_H
#define WEFT_TESTS_RACE_UTIL_H

#include "test_util.h"
#include "runtime/spinlock.h"

struct race_line {
	int go;    /* set once, when every party arrived */
	int ready; /* parties at the line */
};

/* Burns about n pauses: a party's head start, or its delay. */
static inline void race_spin(int n)
{
	for (volatile int i = 0; i < n; i++)
		weft__cpu_relax();
}

static inline void race_line_reset(struct race_line *l)
{
	l->go = l->ready = 0;
}

/* A party's side: arrive, and wait for the release. The release's store
 * of go happens after this arrival was counted (its acquire load of
 * ready), and this party's moves after the release (acquire of go). */
static inline void race_arrive(struct race_line *l)
{
	__atomic_add_fetch(&l->ready, 1, __ATOMIC_ACQ_REL);
	/* Yield now and then: there may be more parties than workers. */
	for (int i = 0; !__atomic_load_n(&l->go, __ATOMIC_ACQUIRE); i++) {
		if (i % 256 == 255)
			(void)weft_yield();
		else
			weft__cpu_relax();
	}
}

/* The main task's side: waits for `parties` arrivals, then lets all go. */
static inline void race_release(struct race_line *l, int parties)
{
	while (__atomic_load_n(&l->ready, __ATOMIC_ACQUIRE) < parties)
		(void)weft_yield();
	__atomic_store_n(&l->go, 1, __ATOMIC_RELEASE);
}

/* A party that cancels victim after spin pauses (a task's argument). */
struct race_canceller {
	struct race_line *line;
	int spin;
	weft_task_t victim;
};

static inline void *race_cancel(void *arg)
{
	struct race_canceller *c = arg;

	race_arrive(c->line);
	race_spin(c->spin);
	weft_cancel(c->victim);
	return NULL;
}

#endif
