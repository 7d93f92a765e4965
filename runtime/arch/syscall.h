/*
 * A system call made inline: weft__syscall6(nr, a1..a6) returns the
 * kernel's answer as it gives it, the result or -errno.
 *
 * For the hot calls of a worker (io/call.h): libc's wrappers of the
 * socket calls are cancellation points, which update the thread's cancel
 * state with two atomic operations a call, and a worker is never
 * cancelled with pthread_cancel. Inline, the call also leaves no return
 * between the kernel and its caller: the kernel's own calls overwrite the
 * CPU's return-address stack, so every return met on the way out of a
 * system call is mispredicted.
 *
 * x86_64 and aarch64 enter the kernel directly; any other CPU goes through
 * libc's syscall(3).
 */
#ifndef WEFT_RUNTIME_ARCH_SYSCALL_H
#define WEFT_RUNTIME_ARCH_SYSCALL_H

#include <errno.h>
#include <unistd.h>

static inline long weft__syscall6(long nr, long a1, long a2, long a3, long a4,
				  long a5, long a6)
{
#if defined(__x86_64__)
	/* The kernel's x86_64 convention: number and result in rax, the
	 * arguments in rdi, rsi, rdx, r10, r8, r9; rcx and r11 clobbered. */
	register long r10 __asm__("r10") = a4;
	register long r8 __asm__("r8") = a5;
	register long r9 __asm__("r9") = a6;
	long ret;

	__asm__ volatile("syscall"
			 : "=a"(ret)
			 : "a"(nr), "D"(a1), "S"(a2), "d"(a3), "r"(r10),
			   "r"(r8), "r"(r9)
			 : "rcx", "r11", "memory");
	return ret;
#elif defined(__aarch64__)
	/* aarch64: number in x8, arguments in x0-x5, result in x0. */
	register long x8 __asm__("x8") = nr;
	register long x0 __asm__("x0") = a1;
	register long x1 __asm__("x1") = a2;
	register long x2 __asm__("x2") = a3;
	register long x3 __asm__("x3") = a4;
	register long x4 __asm__("x4") = a5;
	register long x5 __asm__("x5") = a6;

	__asm__ volatile("svc 0"
			 : "+r"(x0)
			 : "r"(x8), "r"(x1), "r"(x2), "r"(x3), "r"(x4), "r"(x5)
			 : "memory");
	return x0;
#else
	long r = syscall(nr, a1, a2, a3, a4, a5, a6);

	return r < 0 ? -errno : r;
#endif
}

#endif
