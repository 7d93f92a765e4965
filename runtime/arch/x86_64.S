/*
 * The context switch: x86-64 System V. Saves only what the ABI says a callee
 * must preserve (rbx, rbp, r12-r15, the stack pointer, and, with
 * WEFT_FP_PER_TASK, the control bits of MXCSR and the x87 control word);
 * everything else is already dead at a call. So such a task keeps its
 * floating-point modes (rounding, flush to zero, exception masks) across
 * a switch, wherever it resumes.
 *
 * Cost: 16 instructions per switch for the registers (the pass value, 6
 * pushes, 2 stack-pointer moves, 6 pops, ret), plus the call; 17 for
 * weft__switch_jump (a pop and a jump for the ret), and a compare and a
 * branch on weft__fp_per_task. The modes add two stores and two compares;
 * they are loaded only where they differ. Reading MXCSR (stmxcsr) took a
 * switch from 8.2 to 11.7 ns (2026-12-03): hence the option.
 *
 * struct weft_ctx: 0 the saved stack pointer | 8 MXCSR | 12 x87 control
 * word. A saved context, at that stack pointer:
 *   0 r15 | 8 r14 | 16 r13 | 24 r12 | 32 rbx | 40 rbp | 48 return address
 * weft__ctx_init builds the same frame for a task that has not run yet.
 *
 * No GNU property note claims CET (-fcf-protection), on purpose: the
 * linker then leaves the library unmarked, and the loader enforces
 * neither part. A shadow stack cannot follow a switch, whose ret goes to
 * another stack's return address; and IBT would refuse weft__switch_jump's
 * jmp, which lands on a return address, not on an endbr64.
 */
	.text
	/* Reached rip-relative: it must bind in this object, whatever the
	 * library's version script says (a PIC archive linked into a user's
	 * shared object has none). */
	.hidden	weft__fp_per_task

/* Saves the running context in from (rdi) and loads the one in to (rsi),
 * up to its return address, which is left on the stack; rax gets the pass
 * value (rdx). The floating-point modes first, if each task keeps its own
 * (weft__fp_per_task): MXCSR's control bits are 6-15 (its status flags,
 * 0-5, need not survive a call).
 *
 * The CFI rows follow every push and pop, for an unwinder that stops the
 * thread in here (a profiler's signal, gdb): the CFA is rsp plus what is
 * pushed, and each register is at its slot once pushed. The new stack's
 * frame has the same layout, so from the rsp load on the same rows name
 * the resumed context's registers and return address: its callers, not
 * the parked one's (test_context unwind_through_switch). */
	.macro	SWITCH_STACKS
	cmpb	$0, weft__fp_per_task(%rip)
	je	2f
	stmxcsr	8(%rdi)
	fnstcw	12(%rdi)
	movl	8(%rsi), %ecx
	xorl	8(%rdi), %ecx
	testl	$0xffc0, %ecx
	jz	1f
	ldmxcsr	8(%rsi)
1:	movzwl	12(%rsi), %ecx
	cmpw	12(%rdi), %cx
	je	2f
	fldcw	12(%rsi)
2:	movq	%rdx, %rax
	.irp	reg, rbp, rbx, r12, r13, r14, r15
	pushq	%\reg
	.cfi_adjust_cfa_offset 8
	.cfi_rel_offset \reg, 0
	.endr
	movq	%rsp, (%rdi)
	movq	(%rsi), %rsp
	.irp	reg, r15, r14, r13, r12, rbx, rbp
	popq	%\reg
	.cfi_adjust_cfa_offset -8
	.cfi_restore \reg
	.endr
	.endm

/* void *weft__switch(struct weft_ctx *from, struct weft_ctx *to, void *pass);
 *
 * Each switch starts a cache line: one that straddled two made the switch
 * benchmark 8% slower (2026-12-02).
 *
 * Returns, in the context switched back to later, the pass argument of the
 * switch that resumed it: a task learns the worker it now runs on without
 * a thread-local lookup (boost.context's transfer_t does the same). */
	.globl	weft__switch
	.type	weft__switch, @function
	.p2align 6
weft__switch:
	.cfi_startproc
	SWITCH_STACKS
	ret
	.cfi_endproc
	.size	weft__switch, .-weft__switch

/* void *weft__switch_jump(struct weft_ctx *from, struct weft_ctx *to,
 *                         void *pass);
 *
 * The same, resuming with an indirect jump instead of a return (see
 * context.h for which suits where). rcx is free: a call clobbers it. */
	.globl	weft__switch_jump
	.type	weft__switch_jump, @function
	.p2align 6
weft__switch_jump:
	.cfi_startproc
	SWITCH_STACKS
	popq	%rcx
	.cfi_adjust_cfa_offset -8
	.cfi_register rip, rcx
	jmp	*%rcx
	.cfi_endproc
	.size	weft__switch_jump, .-weft__switch_jump

/* void weft__ctx_fp_init(struct weft_ctx *ctx);
 *
 * Gives ctx the calling thread's floating-point modes. */
	.globl	weft__ctx_fp_init
	.type	weft__ctx_fp_init, @function
	.p2align 4
weft__ctx_fp_init:
	.cfi_startproc
	stmxcsr	8(%rdi)
	fnstcw	12(%rdi)
	ret
	.cfi_endproc
	.size	weft__ctx_fp_init, .-weft__ctx_fp_init

/* void weft__ctx_init(struct weft_ctx *ctx, void *top, void *arg);
 *
 * A saved context whose registers are zero but r12 = arg, returning to the
 * trampoline with rsp 16-byte aligned after the pops, as a call needs. */
	.globl	weft__ctx_init
	.type	weft__ctx_init, @function
	.p2align 4
weft__ctx_init:
	.cfi_startproc
	andq	$-16, %rsi
	subq	$72, %rsi
	xorl	%eax, %eax
	movq	%rax, 0(%rsi)
	movq	%rax, 8(%rsi)
	movq	%rax, 16(%rsi)
	movq	%rdx, 24(%rsi)
	movq	%rax, 32(%rsi)
	movq	%rax, 40(%rsi)
	leaq	.Ltask_start(%rip), %rax
	movq	%rax, 48(%rsi)
	movq	%rsi, (%rdi)
	ret
	.cfi_endproc
	.size	weft__ctx_init, .-weft__ctx_init

/*
 * A new task's first switch "returns" here, to .Ltask_start, with its struct
 * in r12 (see weft__ctx_init). rbp = 0 ends the frame chain for debuggers,
 * and the undefined return address ends the unwinders' walk. An unwinder
 * looks a return address up one byte back, inside the call: the nop puts
 * .Ltask_start - 1 inside this function's CFI, not in the padding before it,
 * which has none (a walk from inside the switch into a new task's frame
 * ended at a return address without CFI).
 */
	.type	task_trampoline, @function
	.p2align 4
task_trampoline:
	.cfi_startproc
	.cfi_undefined rip
	nop
.Ltask_start:
	xorl	%ebp, %ebp
	movq	%r12, %rdi
	call	weft__task_entry
	ud2
	.cfi_endproc
	.size	task_trampoline, .-task_trampoline

	.section .note.GNU-stack, "", @progbits
