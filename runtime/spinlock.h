/*
 * The spinlock of task fields, pools and wait-queues. Critical sections are
 * a few dozen instructions and never switch tasks, so spinning beats
 * sleeping; a holder preempted by the kernel is waited out with sched_yield.
 * The uncontended lock is one exchange, inline.
 */
#ifndef WEFT_RUNTIME_SPINLOCK_H
#define WEFT_RUNTIME_SPINLOCK_H

void weft__spin_lock_slow(unsigned *l);

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
	if (__builtin_expect(!__atomic_exchange_n(l, 1, __ATOMIC_ACQUIRE), 1))
		return;
	weft__spin_lock_slow(l);
}

static inline void weft__spin_unlock(unsigned *l)
{
	__atomic_store_n(l, 0, __ATOMIC_RELEASE);
}

#endif
