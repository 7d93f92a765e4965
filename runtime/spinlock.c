/* The spinlock's contended path: see spinlock.h. */
#include <sched.h>

#include "spinlock.h"

void weft__spin_lock_slow(unsigned *l)
{
	for (int spins = 0;;) {
		while (__atomic_load_n(l, __ATOMIC_RELAXED)) {
			if (++spins < 100)
				weft__cpu_relax();
			else
				sched_yield(); /* the holder was preempted */
		}
		if (!__atomic_exchange_n(l, 1, __ATOMIC_ACQUIRE))
			return;
	}
}
