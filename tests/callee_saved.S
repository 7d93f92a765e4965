/* callee_saved_across: see callee_saved.h. One section per CPU. */
	.text
	.globl	callee_saved_across
	.type	callee_saved_across, %function
	.p2align 4
callee_saved_across:
#if defined(__x86_64__)
	/* rdi fn, rsi arg, rdx in, rcx out */
	.cfi_startproc
	pushq	%rbp
	pushq	%rbx
	pushq	%r12
	pushq	%r13
	pushq	%r14
	pushq	%r15
	pushq	%rcx		/* out; and rsp is 16-byte aligned again */
	movq	%rdi, %rax
	movq	%rsi, %rdi
	movq	0(%rdx), %rbx
	movq	8(%rdx), %rbp
	movq	16(%rdx), %r12
	movq	24(%rdx), %r13
	movq	32(%rdx), %r14
	movq	40(%rdx), %r15
	call	*%rax
	movq	(%rsp), %rcx
	movq	%rbx, 0(%rcx)
	movq	%rbp, 8(%rcx)
	movq	%r12, 16(%rcx)
	movq	%r13, 24(%rcx)
	movq	%r14, 32(%rcx)
	movq	%r15, 40(%rcx)
	popq	%rcx
	popq	%r15
	popq	%r14
	popq	%r13
	popq	%r12
	popq	%rbx
	popq	%rbp
	ret
	.cfi_endproc
#elif defined(__aarch64__)
	/* x0 fn, x1 arg, x2 in, x3 out */
	.cfi_startproc
	stp	x29, x30, [sp, #-176]!
	stp	x19, x20, [sp, #16]
	stp	x21, x22, [sp, #32]
	stp	x23, x24, [sp, #48]
	stp	x25, x26, [sp, #64]
	stp	x27, x28, [sp, #80]
	stp	d8, d9, [sp, #96]
	stp	d10, d11, [sp, #112]
	stp	d12, d13, [sp, #128]
	stp	d14, d15, [sp, #144]
	str	x3, [sp, #160]
	mov	x9, x0
	mov	x0, x1
	ldp	x19, x20, [x2, #0]
	ldp	x21, x22, [x2, #16]
	ldp	x23, x24, [x2, #32]
	ldp	x25, x26, [x2, #48]
	ldp	x27, x28, [x2, #64]
	ldr	x29, [x2, #80]
	ldp	d8, d9, [x2, #88]
	ldp	d10, d11, [x2, #104]
	ldp	d12, d13, [x2, #120]
	ldp	d14, d15, [x2, #136]
	blr	x9
	ldr	x3, [sp, #160]
	stp	x19, x20, [x3, #0]
	stp	x21, x22, [x3, #16]
	stp	x23, x24, [x3, #32]
	stp	x25, x26, [x3, #48]
	stp	x27, x28, [x3, #64]
	str	x29, [x3, #80]
	stp	d8, d9, [x3, #88]
	stp	d10, d11, [x3, #104]
	stp	d12, d13, [x3, #120]
	stp	d14, d15, [x3, #136]
	ldp	x19, x20, [sp, #16]
	ldp	x21, x22, [sp, #32]
	ldp	x23, x24, [sp, #48]
	ldp	x25, x26, [sp, #64]
	ldp	x27, x28, [sp, #80]
	ldp	d8, d9, [sp, #96]
	ldp	d10, d11, [sp, #112]
	ldp	d12, d13, [sp, #128]
	ldp	d14, d15, [sp, #144]
	ldp	x29, x30, [sp], #176
	ret
	.cfi_endproc
#else
#error "callee_saved_across needs this CPU's callee-saved registers"
#endif
	.size	callee_saved_across, .-callee_saved_across

	.section .note.GNU-stack, "", %progbits
