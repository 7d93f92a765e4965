/*
 * Execution contexts and the switch between them, told to the sanitizers.
 *
 * A context is a saved stack pointer and floating-point modes: weft__switch
 * saves the callee-saved registers on the old stack and restores them from
 * the new one, and keeps each context's modes (MXCSR and the x87 control
 * word, or FPCR), which the ABI makes callee-saved too.
 *
 * ThreadSanitizer and AddressSanitizer must be told about every switch, or
 * they see one thread's stack jump about and report nonsense.
 */
#ifndef WEFT_RUNTIME_CONTEXT_H
#define WEFT_RUNTIME_CONTEXT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#if defined(__SANITIZE_THREAD__)
#define WEFT_TSAN 1
#endif
#if defined(__SANITIZE_ADDRESS__)
#define WEFT_ASAN 1
#endif
#if defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define WEFT_TSAN 1
#endif
#if __has_feature(address_sanitizer)
#define WEFT_ASAN 1
#endif
#endif

#ifdef WEFT_TSAN
void *__tsan_get_current_fiber(void);
void *__tsan_create_fiber(unsigned flags);
void __tsan_destroy_fiber(void *fiber);
void __tsan_switch_to_fiber(void *fiber, unsigned flags);
void __tsan_set_fiber_name(void *fiber, const char *name);
#endif
#ifdef WEFT_ASAN
void __sanitizer_start_switch_fiber(void **fake_stack_save, const void *bottom,
				    size_t size);
void __sanitizer_finish_switch_fiber(void *fake_stack_save,
				     const void **bottom_old, size_t *size_old);
void __asan_unpoison_memory_region(void const volatile *addr, size_t size);
#endif

struct weft_ctx {
	void *sp;
	uint64_t fp_modes; /* written by the switch: arch/<cpu>.S */
};

/*
 * Per CPU, in runtime/arch/<cpu>.S, the one file that knows the layout of a
 * saved context (see its header).
 *
 * weft__switch saves the running context in from and resumes to; returns
 * (in from, when something resumes it) the pass argument of that later
 * switch. It resumes with a return, which the CPU predicts from its stack
 * of return addresses: right when both contexts switched from the same
 * call site with the same frames beneath (two tasks yielding to each
 * other), and wrong at every scheduler-to-task or task-to-scheduler
 * switch, whose sites differ.
 *
 * weft__switch_jump is the same switch resuming with an indirect jump,
 * which the CPU predicts from the history of that jump instead: right for
 * a site whose targets are few and regular. But the return address the
 * switch's call pushed on the CPU's return stack stays there, so the
 * first returns of the resumed context are predicted wrong. For switches
 * after which nothing returns: to a task that has not run (its first
 * frame is the trampoline's) and from a task that has returned (the
 * scheduler loops, it does not return). chained_spawn's hop took 38-43 ns
 * with weft__switch there and 25-27 ns with this (2026-12-02,
 * bench/README.md).
 *
 * weft__ctx_init prepares ctx so that switching to it calls
 * weft__task_entry(arg) on the stack whose highest address is top, from a
 * trampoline that ends the frame chain for debuggers and unwinders.
 */
void *weft__switch(struct weft_ctx *from, struct weft_ctx *to, void *pass);
void *weft__switch_jump(struct weft_ctx *from, struct weft_ctx *to, void *pass);
void weft__ctx_init(struct weft_ctx *ctx, void *top, void *arg);
/* Whether the switch keeps each context's floating-point modes
 * (WEFT_FP_PER_TASK): read by it at every switch, so written by weft_run
 * only while no worker runs. */
extern bool weft__fp_per_task __attribute__((visibility("hidden")));
/* Gives ctx the calling thread's floating-point modes: a task starts with
 * its spawner's, as a thread starts with its creator's (pthread_create). */
void weft__ctx_fp_init(struct weft_ctx *ctx);

#endif
