/*
 * The context switch: AArch64 (AAPCS64). Saves only what the ABI says a
 * callee must preserve: x19-x28, the frame pointer x29, the link register
 * x30 (where the switch returns to), the stack pointer, the low 64 bits
 * of v8-v15 (d8-d15) and, with WEFT_FP_PER_TASK, FPCR; everything else is
 * already dead at a call. So such a task keeps its floating-point modes
 * (rounding, flush to zero, traps) across a switch, wherever it resumes.
 *
 * Cost: 28 instructions per switch for the registers (the frame allocated
 * and freed, 10 stp, 10 ldp, 4 to move sp through x9 as str/ldr cannot
 * name sp, the pass value, ret), plus the bl; counted in the disassembly
 * of the aarch64 build (aarch64-linux-gnu-objdump -d), and 3 to test
 * weft__fp_per_task. FPCR adds a read, a store, a load and a compare; it
 * is written only where it differs.
 *
 * struct weft_ctx: 0 the saved stack pointer | 8 FPCR.
 * A saved context, at that stack pointer:
 *   0 x19 | 8 x20 | ... | 72 x28 | 80 x29 | 88 x30 | 96 d8 | ... | 152 d15
 * weft__ctx_init builds the same frame for a task that has not run yet.
 *
 * The CFI rows follow the frame, for an unwinder that stops the thread in
 * the switch (a profiler's signal, gdb): once the frame is allocated the
 * CFA is sp + FRAME, and each register is at its slot once stored. The
 * new stack's frame has the same layout, so from the sp load on the same
 * rows name the resumed context's registers and return address: its
 * callers, not the parked one's (test_context unwind_through_switch).
 */
#define FRAME 160

/* Stores the pair a, b at [sp, #off], and says so in the CFI. */
	.macro	SAVE_PAIR a, b, off
	stp	\a, \b, [sp, #\off]
	.cfi_rel_offset \a, \off
	.cfi_rel_offset \b, \off + 8
	.endm

/*
 * Branch protection, when the C code is built with it
 * (-mbranch-protection=bti, pac-ret or standard; runtime/CMakeLists.txt
 * hands the flag on to this file). The linker marks a library BTI or PAC
 * only if every object in it is, so this one says what it keeps, in its
 * GNU property note (at the end):
 *  - BTI: an indirect call (a PLT stub's br x16 or x17, a veneer's) may
 *    land only on a BTI instruction. Each function here begins with
 *    `bti c`; the switch leaves by ret, which BTI does not check, so the
 *    trampoline, reached by a ret, needs none.
 *  - PAC (pac-ret): nothing here signs a return address. The switch saves
 *    and loads x30 as it was at the call, unsigned, and a C function's
 *    signed one stays on its own stack, beside the sp that signed it,
 *    which the switch brings back with it.
 */
#ifdef __ARM_FEATURE_BTI_DEFAULT
#define LANDING_PAD bti c
#define FEATURE_BTI 1
#else
#define LANDING_PAD
#define FEATURE_BTI 0
#endif
#ifdef __ARM_FEATURE_PAC_DEFAULT
#define FEATURE_PAC 2
#else
#define FEATURE_PAC 0
#endif

	.text
	/* Reached PC-relative: it must bind in this object, whatever the
	 * library's version script says (a PIC archive linked into a user's
	 * shared object has none). */
	.hidden	weft__fp_per_task

/* void *weft__switch(struct weft_ctx *from, struct weft_ctx *to, void *pass);
 *
 * Returns, in the context switched back to later, the pass argument of the
 * switch that resumed it: a task learns the worker it now runs on without
 * a thread-local lookup. */
	.globl	weft__switch
	.type	weft__switch, %function
	.p2align 4
weft__switch:
	.cfi_startproc
	LANDING_PAD
	adrp	x9, weft__fp_per_task
	ldrb	w9, [x9, :lo12:weft__fp_per_task]
	cbz	w9, 1f
	mrs	x9, fpcr
	str	x9, [x0, #8]
	ldr	x10, [x1, #8]
	cmp	x9, x10
	b.eq	1f
	msr	fpcr, x10
1:	sub	sp, sp, #FRAME
	.cfi_def_cfa_offset FRAME
	SAVE_PAIR x19, x20, 0
	SAVE_PAIR x21, x22, 16
	SAVE_PAIR x23, x24, 32
	SAVE_PAIR x25, x26, 48
	SAVE_PAIR x27, x28, 64
	SAVE_PAIR x29, x30, 80
	SAVE_PAIR d8, d9, 96
	SAVE_PAIR d10, d11, 112
	SAVE_PAIR d12, d13, 128
	SAVE_PAIR d14, d15, 144
	mov	x9, sp
	str	x9, [x0]
	ldr	x9, [x1]
	mov	sp, x9
	ldp	x19, x20, [sp, #0]
	ldp	x21, x22, [sp, #16]
	ldp	x23, x24, [sp, #32]
	ldp	x25, x26, [sp, #48]
	ldp	x27, x28, [sp, #64]
	ldp	x29, x30, [sp, #80]
	ldp	d8, d9, [sp, #96]
	ldp	d10, d11, [sp, #112]
	ldp	d12, d13, [sp, #128]
	ldp	d14, d15, [sp, #144]
	add	sp, sp, #FRAME
	/* Every register holds the resumed context's value again. */
	.cfi_def_cfa_offset 0
	.irp	reg, x19, x20, x21, x22, x23, x24, x25, x26, x27, x28, x29, x30
	.cfi_restore \reg
	.endr
	.irp	reg, d8, d9, d10, d11, d12, d13, d14, d15
	.cfi_restore \reg
	.endr
	mov	x0, x2
	ret
	.cfi_endproc
	.size	weft__switch, .-weft__switch

/* void *weft__switch_jump(struct weft_ctx *from, struct weft_ctx *to,
 *                         void *pass);
 *
 * On x86-64 a different exit (context.h). Here the same code: `br x30`
 * would be the counterpart of x86-64's jump, but without AArch64 hardware
 * to measure it on, ret stays. */
	.globl	weft__switch_jump
	.type	weft__switch_jump, %function
	.set	weft__switch_jump, weft__switch

/* void weft__ctx_fp_init(struct weft_ctx *ctx);
 *
 * Gives ctx the calling thread's floating-point modes. */
	.globl	weft__ctx_fp_init
	.type	weft__ctx_fp_init, %function
	.p2align 4
weft__ctx_fp_init:
	.cfi_startproc
	LANDING_PAD
	mrs	x9, fpcr
	str	x9, [x0, #8]
	ret
	.cfi_endproc
	.size	weft__ctx_fp_init, .-weft__ctx_fp_init

/* void weft__ctx_init(struct weft_ctx *ctx, void *top, void *arg);
 *
 * A saved context whose registers are zero but x19 = arg and x30 = the
 * trampoline; sp is 16-byte aligned after the frame is freed, as the ABI
 * requires at all times. */
	.globl	weft__ctx_init
	.type	weft__ctx_init, %function
	.p2align 4
weft__ctx_init:
	.cfi_startproc
	LANDING_PAD
	and	x1, x1, #~15
	sub	x1, x1, #FRAME
	adr	x9, .Ltask_start
	stp	x2, xzr, [x1, #0]
	stp	xzr, xzr, [x1, #16]
	stp	xzr, xzr, [x1, #32]
	stp	xzr, xzr, [x1, #48]
	stp	xzr, xzr, [x1, #64]
	stp	xzr, x9, [x1, #80]
	stp	xzr, xzr, [x1, #96]
	stp	xzr, xzr, [x1, #112]
	stp	xzr, xzr, [x1, #128]
	stp	xzr, xzr, [x1, #144]
	str	x1, [x0]
	ret
	.cfi_endproc
	.size	weft__ctx_init, .-weft__ctx_init

/*
 * A new task's first switch "returns" here, to .Ltask_start, with its
 * struct in x19 (see weft__ctx_init). x29 = 0 (from the frame) ends the
 * frame chain for debuggers, and the undefined return address ends the
 * unwinders' walk. An unwinder looks a return address up one byte back,
 * inside the call: the nop puts .Ltask_start - 1 inside this function's
 * CFI, not in the padding before it, which has none (a walk from inside
 * the switch into a new task's frame ended at a return address without
 * CFI).
 */
	.type	task_trampoline, %function
	.p2align 4
task_trampoline:
	.cfi_startproc
	.cfi_undefined x30
	nop
.Ltask_start:
	mov	x29, #0
	mov	x0, x19
	bl	weft__task_entry
	brk	#0
	.cfi_endproc
	.size	task_trampoline, .-task_trampoline

#if FEATURE_BTI || FEATURE_PAC
	/* NT_GNU_PROPERTY_TYPE_0: the name "GNU", then one property,
	 * GNU_PROPERTY_AARCH64_FEATURE_1_AND, of 4 bytes, padded to 8. */
	.pushsection .note.gnu.property, "a"
	.p2align 3
	.word	4, 16, 5
	.asciz	"GNU"
	.word	0xc0000000, 4, FEATURE_BTI | FEATURE_PAC, 0
	.popsection
#endif

	.section .note.GNU-stack, "", %progbits
