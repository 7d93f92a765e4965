/*
 * Who is running: the worker this thread is, and the task it runs.
 *
 * A task may resume on another thread, so a thread-local read must never
 * be reused across a switch. Compilers take the thread pointer (%fs on
 * x86-64, TPIDR_EL0 on AArch64) for a constant within a function and may
 * keep it, or the variable's address, in a register across a call: plain
 * C would then read the old thread's worker after a switch. So the read is
 * one asm volatile statement that loads the thread pointer itself each
 * time (initial-exec TLS, which works in an executable and in a shared
 * library loaded at start-up). It is never merged or moved across a call,
 * and can be inlined anywhere: the sync primitives ask who is running on
 * every acquire and release, and a call each time cost a lock 25% of its
 * uncontended time (bench/README.md, tenth session).
 */
#ifndef WEFT_RUNTIME_SELF_H
#define WEFT_RUNTIME_SELF_H

#include "worker.h"

/* Set by the worker threads only (weft__self_set). */
extern __thread struct weft_worker *weft__tls_self;

/* The worker the caller runs on, or NULL on a plain thread. */
static inline struct weft_worker *weft__self(void)
{
	struct weft_worker *w;
#if defined(__x86_64__)
	__asm__ volatile("movq weft__tls_self@gottpoff(%%rip), %0\n\t"
			 "movq %%fs:(%0), %0"
			 : "=r"(w)
			 :
			 : "memory");
#elif defined(__aarch64__)
	void *off;
	__asm__ volatile("mrs %0, tpidr_el0\n\t"
			 "adrp %1, :gottprel:weft__tls_self\n\t"
			 "ldr %1, [%1, #:gottprel_lo12:weft__tls_self]\n\t"
			 "ldr %0, [%0, %1]"
			 : "=&r"(w), "=&r"(off)
			 :
			 : "memory");
#else
#error "weft runs on x86-64 and AArch64 (see runtime/arch)"
#endif
	return w;
}

/* The running task, or NULL on a plain thread or in a scheduler. */
static inline struct weft_task *weft__task_current(void)
{
	struct weft_worker *w = weft__self();
	return w ? w->current : NULL;
}

/* The calling worker's I/O driver, or NULL on a plain thread. Inline: a
 * socket call asks on every attempt. */
static inline struct weft__driver *weft__driver_current(void)
{
	struct weft_worker *w = weft__self();
	return w ? w->driver : NULL;
}

/* The worker thread w starts (w) or stops (NULL) being the caller. */
void weft__self_set(struct weft_worker *w);

#endif
