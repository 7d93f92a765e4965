/* Every callee-saved register of the CPU, set to known values across a
 * call: see callee_saved.S. */
#ifndef WEFT_TESTS_CALLEE_SAVED_H
#define WEFT_TESTS_CALLEE_SAVED_H

#include <stdint.h>

#if defined(__x86_64__)
/* rbx, rbp, r12, r13, r14, r15 */
#define CALLEE_SAVED_N 6
#define CALLEE_SAVED_FP 1 /* index of the frame pointer, rbp */
#elif defined(__aarch64__)
/* x19..x28, x29 (the frame pointer), d8..d15 */
#define CALLEE_SAVED_N 19
#define CALLEE_SAVED_FP 10
#endif

/* Loads in[0..CALLEE_SAVED_N) into the callee-saved registers, calls
 * fn(arg), stores the registers as fn left them into out, and returns with
 * the caller's own values restored. The frame pointer's value must point
 * at two zero words, so that an unwinder walking frames during fn stops
 * there. */
void callee_saved_across(void (*fn)(void *), void *arg, const uint64_t *in,
			 uint64_t *out);

#endif
