/*
 * Futexes: a thread sleeps on a 32-bit word while it holds an expected
 * value, and is woken by whoever changes it. Process-private (the words
 * live in this process only). The kernel compares the word with the
 * expected value under its own lock, so a wake between the caller's check
 * and the sleep is never lost; a sleep may still end spuriously, so every
 * caller re-checks its word in a loop.
 */
#ifndef WEFT_RUNTIME_FUTEX_H
#define WEFT_RUNTIME_FUTEX_H

#include <linux/futex.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

/* Sleeps while *word == val, at most ns nanoseconds (0: no limit). */
static inline void weft__futex_wait(_Atomic int *word, int val, int64_t ns)
{
	struct timespec ts = { ns / 1000000000, ns % 1000000000 };
	syscall(SYS_futex, (int *)word, FUTEX_WAIT_PRIVATE, val,
		ns ? &ts : NULL, NULL, 0);
}

/* Wakes up to n threads sleeping on word. */
static inline void weft__futex_wake(_Atomic int *word, int n)
{
	syscall(SYS_futex, (int *)word, FUTEX_WAKE_PRIVATE, n, NULL, NULL, 0);
}

#endif
