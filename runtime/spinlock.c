/* The spinlock's contended path: see spinlock.h. */
#include <sched.h>

#include "spinlock.h"

void weft__spin_wait_free(const unsigned *l)
{
	/* acquire: pairs with the holder's release unlock, so that what it
	 * did under the lock happens before what the caller does next. */
	for (int spins = 0; __atomic_load_n(l, __ATOMIC_ACQUIRE); spins++) {
		if (spins < 100)
			weft__cpu_relax();
		else
			sched_yield(); /* the holder was preempted */
	}
}

void weft__spin_lock_slow(unsigned *l, unsigned mine)
{
	/* Only waits for the lock to look free; the acquire exchange of
	 * spin_try takes it. */
	do
		weft__spin_wait_free(l);
	while (!weft__spin_try(l, mine));
}
