/*
 * Valgrind's client requests, where its headers are installed; nothing
 * without them. Memcheck must be told about task stacks (or it takes each
 * switch for a wild jump of the stack pointer) and about buffers the kernel
 * fills through io_uring (it cannot see those writes, and would call every
 * byte received uninitialised); weft avoids, under valgrind, the system
 * calls it cannot follow.
 */
#ifndef WEFT_RUNTIME_VALGRIND_H
#define WEFT_RUNTIME_VALGRIND_H

#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#define WEFT_UNDER_VALGRIND() RUNNING_ON_VALGRIND
#define WEFT_STACK_REGISTER(lo, hi) VALGRIND_STACK_REGISTER(lo, hi)
#define WEFT_STACK_DEREGISTER(id) VALGRIND_STACK_DEREGISTER(id)
#else
#define WEFT_UNDER_VALGRIND() 0
#define WEFT_STACK_REGISTER(lo, hi) 0u
#define WEFT_STACK_DEREGISTER(id) ((void)(id))
#endif

#if __has_include(<valgrind/memcheck.h>)
#include <valgrind/memcheck.h>
#define WEFT_MARK_FILLED(p, n) VALGRIND_MAKE_MEM_DEFINED(p, n)
#else
#define WEFT_MARK_FILLED(p, n) ((void)(p), (void)(n))
#endif

#endif
