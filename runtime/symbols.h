/*
 * Symbols: names for code addresses, for weft_dump and the stall report.
 *
 * A table is a snapshot of the loaded objects (dl_iterate_phdr): their
 * executable segments, and, read from each object's file when first asked,
 * its ELF symbol table (.symtab, else .dynsym), so that static functions
 * get names too, which dladdr cannot give. Built with elfutils' libdw
 * (WEFT_HAVE_LIBDW), a return address also gets its file and line from
 * the object's DWARF line table, where it has one (in the object's file,
 * or in the debug file of its build ID); each name carries the object and
 * the offset that gdb or addr2line need in any case. Every file is opened
 * with O_CLOEXEC: a program started during a dump inherits none.
 *
 * Only weft__symbols_is_return is for signal handlers (it reads the
 * segment list, fixed at load); naming allocates and opens files: normal
 * context only.
 */
#ifndef WEFT_RUNTIME_SYMBOLS_H
#define WEFT_RUNTIME_SYMBOLS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct weft__symbols;

/* A snapshot of the loaded objects; NULL if out of memory. */
struct weft__symbols *weft__symbols_load(void);
void weft__symbols_free(struct weft__symbols *s);

/* Whether a is a return address: inside an executable segment, just after
 * a call instruction (in a segment that may be executed but not read,
 * anywhere an instruction may start: its code is never read). */
bool weft__symbols_is_return(const struct weft__symbols *s, uintptr_t a);

/* Whether the code at a and at b lies in one function, by the symbol
 * table; false where it cannot tell. Normal context only. */
bool weft__symbols_same_func(struct weft__symbols *s, uintptr_t a, uintptr_t b);

/* A return address as saved, as code: without the pointer authentication
 * code that return-address signing (aarch64's -mbranch-protection=pac-ret
 * or standard) puts in its upper bits before a function saves it. Every
 * stack word and link register goes through it before
 * weft__symbols_is_return. Async-signal-safe. */
uintptr_t weft__return_strip(uintptr_t a);

/* A word of another context's stack, read without the sanitizers' or
 * memcheck's objections (dump.c): for stack scans. */
uintptr_t weft__stack_word(const uintptr_t *p);

/* Scans the stack words [sp, top) for return addresses, innermost first:
 * keeps the first room of them in kept, and returns how many there are
 * in all (a caller that kept fewer says how many it left out). Loads
 * only, so a signal handler may scan (dump.c). */
int weft__stack_returns(const struct weft__symbols *s, const uintptr_t *sp,
			const uintptr_t *top, uintptr_t *kept, int room);

/* "function+0xoff (object+0xoff) at file:line" for a return address a
 * (looked up at a - 1, inside the call; no " at" part without line
 * information), or "function (object+0xoff)" for the address of a
 * function. Valid until the next call. */
const char *weft__symbols_name(struct weft__symbols *s, uintptr_t a);
const char *weft__symbols_func(struct weft__symbols *s, uintptr_t a);

#endif
