/* Debug assertions: see debug.h. Empty without WEFT_DEBUG. */
#include "debug.h"

#ifdef WEFT_DEBUG
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>

static _Atomic unsigned next_thread = 1;
static __thread unsigned thread_number;
static __thread int spins_held;

void weft__assert_fail(const char *cond, const char *file, int line,
		       const char *func)
{
	fprintf(stderr, "weft: %s:%d: %s: assertion failed: %s\n", file, line,
		func, cond);
	abort();
}

unsigned weft__debug_thread(void)
{
	if (!thread_number)
		thread_number = atomic_fetch_add(&next_thread, 1);
	return thread_number;
}

void weft__debug_spin_taken(void)
{
	spins_held++;
}

void (*weft__debug_unlock_hook)(unsigned *l);

void weft__debug_spin_released(unsigned *l)
{
	WEFT_ASSERT(spins_held > 0);
	spins_held--;
	/* acquire: pairs with the test's release store of the hook, which
	 * published what the hook reads. */
	void (*hook)(unsigned *) =
		__atomic_load_n(&weft__debug_unlock_hook, __ATOMIC_ACQUIRE);
	if (hook)
		hook(l);
}

void (*weft__debug_abort_hook)(const struct weft__waiter *w, int stage);

void weft__debug_abort_reached(const struct weft__waiter *w, int stage)
{
	/* acquire: as the unlock hook's. */
	void (*hook)(const struct weft__waiter *, int) =
		__atomic_load_n(&weft__debug_abort_hook, __ATOMIC_ACQUIRE);
	if (hook)
		hook(w, stage);
}

int weft__debug_spins_held(void)
{
	return spins_held;
}
#endif
