/*
 * The spinlock of task fields, pools and wait-queues. Critical sections are
 * a few dozen instructions and never switch tasks, so spinning beats
 * sleeping; a holder preempted by the kernel is waited out with sched_yield.
 * The uncontended lock is one exchange, inline.
 *
 * The word is 0 when free, else its holder's mark: 1, or in the WEFT_DEBUG
 * build the holder's thread number, which the assertions check (debug.h).
 */
#ifndef WEFT_RUNTIME_SPINLOCK_H
#define WEFT_RUNTIME_SPINLOCK_H

#include <stdbool.h>

#include "debug.h"

#ifdef WEFT_DEBUG
#define WEFT__SPIN_MINE weft__debug_thread()
#else
#define WEFT__SPIN_MINE 1u
#endif

/* One attempt to take l with the caller's mark. Acquire: pairs with the
 * last holder's release in weft__spin_unlock, so its critical section
 * happens before ours. */
static inline bool weft__spin_try(unsigned *l, unsigned mine)
{
#ifdef WEFT_DEBUG
	/* A CAS: a failed exchange would overwrite the holder's mark. A
	 * failed CAS takes nothing: relaxed. */
	unsigned free = 0;
	return __atomic_compare_exchange_n(l, &free, mine, false,
					   __ATOMIC_ACQUIRE, __ATOMIC_RELAXED);
#else
	/* acquire: as above. */
	return !__atomic_exchange_n(l, mine, __ATOMIC_ACQUIRE);
#endif
}

void weft__spin_lock_slow(unsigned *l, unsigned mine);

/* Returns once l is seen free: its holder at the call, if any, has left. */
void weft__spin_wait_free(const unsigned *l);

/* A spin-wait loop's hint to the CPU that it spins: the core gives the
 * pipeline to its sibling thread, and leaving the loop is not taken for a
 * memory-order violation. Elsewhere a compiler barrier, which is enough. */
static inline void weft__cpu_relax(void)
{
#if defined(__x86_64__)
	__builtin_ia32_pause();
#elif defined(__aarch64__)
	__asm__ __volatile__("yield" ::: "memory");
#else
	__asm__ __volatile__("" ::: "memory");
#endif
}

static inline void weft__spin_lock(unsigned *l)
{
	unsigned mine = WEFT__SPIN_MINE;
	/* Relaxed: only our own mark matters, and only we store it. */
	WEFT_ASSERT(__atomic_load_n(l, __ATOMIC_RELAXED) != mine);
	if (__builtin_expect(!weft__spin_try(l, mine), 0))
		weft__spin_lock_slow(l, mine);
	WEFT_DEBUG_ONLY(weft__debug_spin_taken());
}

/* Whether the caller holds l (in the debug build; else whether anyone
 * does). For assertions: relaxed, as the holder reads its own mark. */
static inline int weft__spin_held(unsigned *l)
{
	return __atomic_load_n(l, __ATOMIC_RELAXED) == WEFT__SPIN_MINE;
}

static inline void weft__spin_unlock(unsigned *l)
{
	WEFT_ASSERT(weft__spin_held(l));
	WEFT_DEBUG_ONLY(weft__debug_spin_released(l));
	/* Release: pairs with the next holder's acquire in spin_try (or a
	 * waiter's in spin_wait_free). */
	__atomic_store_n(l, 0, __ATOMIC_RELEASE);
}

#endif
