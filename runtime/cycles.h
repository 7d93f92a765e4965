/*
 * The CPU's free-running counter: the cheapest clock there is, for
 * time-stamps on hot paths (a wait's start, a task's wake), converted to
 * nanoseconds only when read (metrics.h's weft__tsc_mult, calibrated
 * against CLOCK_MONOTONIC at start-up). Not serialising, and not
 * comparable across machines: good for durations of microseconds and up.
 *
 *   x86-64   RDTSC, invariant on every CPU weft runs on (constant_tsc)
 *   aarch64  CNTVCT_EL0, the generic timer's virtual count (tens of MHz to
 *            1 GHz: coarser, still fine for a latency histogram)
 *
 * A new architecture adds its counter here; without one it fails to
 * build rather than measure nonsense.
 */
#ifndef WEFT_RUNTIME_CYCLES_H
#define WEFT_RUNTIME_CYCLES_H

#include <stdint.h>

static inline uint64_t weft__cycles(void)
{
#if defined(__x86_64__)
	uint32_t lo, hi;
	__asm__ __volatile__("rdtsc" : "=a"(lo), "=d"(hi));
	return (uint64_t)hi << 32 | lo;
#elif defined(__aarch64__)
	uint64_t v;
	__asm__ __volatile__("mrs %0, cntvct_el0" : "=r"(v));
	return v;
#else
#error "weft__cycles: no cycle counter for this CPU yet"
#endif
}

#endif
