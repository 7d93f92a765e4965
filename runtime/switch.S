/*
 * The context switch: x86-64 System V. Saves only what the ABI says a callee
 * must preserve (rbx, rbp, r12-r15 and the stack pointer); everything else
 * is already dead at a call. MXCSR and the x87 control word are not
 * switched: tasks share the worker's floating-point modes.
 *
 * void *weft__switch(struct weft_ctx *from, struct weft_ctx *to, void *pass);
 *
 * Returns, in the context switched back to later, the pass argument of the
 * switch that resumed it: a task learns the worker it now runs on without
 * a thread-local lookup (boost.context's transfer_t does the same).
 */
	.text
	.globl	weft__switch
	.type	weft__switch, @function
	.p2align 4
weft__switch:
	.cfi_startproc
	movq	%rdx, %rax
	pushq	%rbp
	pushq	%rbx
	pushq	%r12
	pushq	%r13
	pushq	%r14
	pushq	%r15
	movq	%rsp, (%rdi)
	movq	(%rsi), %rsp
	popq	%r15
	popq	%r14
	popq	%r13
	popq	%r12
	popq	%rbx
	popq	%rbp
	ret
	.cfi_endproc
	.size	weft__switch, .-weft__switch

/*
 * A new task's first switch "returns" here with its struct in r12 (see
 * weft__ctx_init). rbp = 0 ends the frame chain for debuggers and unwinders.
 */
	.globl	weft__task_trampoline
	.type	weft__task_trampoline, @function
	.p2align 4
weft__task_trampoline:
	.cfi_startproc
	.cfi_undefined rip
	xorl	%ebp, %ebp
	movq	%r12, %rdi
	call	weft__task_entry
	ud2
	.cfi_endproc
	.size	weft__task_trampoline, .-weft__task_trampoline

	.section .note.GNU-stack, "", @progbits
