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

void weft__debug_spin_released(void)
{
	WEFT_ASSERT(spins_held > 0);
	spins_held--;
}

int weft__debug_spins_held(void)
{
	return spins_held;
}
#endif
