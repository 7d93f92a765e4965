/* The spinlock's contended path: see spinlock.h. */
#include <sched.h>

#include "spinlock.h"

void weft__spin_lock_slow(unsigned *l, unsigned mine)
{
	for (int spins = 0;;) {
		/* Relaxed: only waits for the lock to look free; the
		 * acquire exchange of spin_try takes it. */
		while (__atomic_load_n(l, __ATOMIC_RELAXED)) {
			if (++spins < 100)
				weft__cpu_relax();
			else
				sched_yield(); /* the holder was preempted */
		}
		if (weft__spin_try(l, mine))
			return;
	}
}
