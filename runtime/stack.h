/*
 * Task stacks: mmap'd, guarded, pooled.
 *
 * Stacks up to 1 MiB come in power-of-two size classes (a request rounds
 * up), each carved from slabs of STACK_SLAB stacks, so a million of them
 * cost a few thousand mappings, not a million: the limit
 * vm.max_map_count (65530 by default) counts mappings, and a guard page made
 * with mprotect splits a mapping in two. Guards are therefore installed with
 * MADV_GUARD_INSTALL (Linux 6.13+), which marks pages as faulting without a
 * new mapping: a slab's guards in one process_madvise call. Slabs are
 * carved from gigabyte reservations of address space. On older kernels
 * mprotect guards are used while a budget of mappings lasts; stacks beyond
 * it get no guard page, only a canary word at their low end that is checked
 * whenever the task switches out.
 */
#ifndef WEFT_RUNTIME_STACK_H
#define WEFT_RUNTIME_STACK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "context.h"

#define WEFT__STACK_CANARY 0x57eff7ac4a3a17e5ULL

struct weft_stack {
	char *base;     /* lowest usable address */
	size_t size;    /* usable bytes above base */
	size_t guard;   /* faulting bytes just below base (0: canary only) */
	bool pooled;    /* from a slab: returned to the pool, never unmapped */
	unsigned vg_id; /* its valgrind stack id, when not pooled */
	bool budgeted;  /* not pooled, guarded by mprotect: one of the budget's
			 * (stack.c), given back when it is unmapped */
};

struct weft_stack_cache; /* per worker */

/* Gets a stack of at least size bytes; cache may be NULL. */
int weft__stack_alloc(struct weft_stack *s, size_t size,
		      struct weft_stack_cache *cache);
void weft__stack_free(struct weft_stack *s, struct weft_stack_cache *cache);

/* A pooled stack whose task ended stays with the task's struct for its
 * next task (task.h), instead of a free and an alloc: what the alloc would
 * have done to it, done now. */
static inline void weft__stack_keep(struct weft_stack *s)
{
#ifdef WEFT_ASAN
	/* The finished task's last frames never returned: clear their
	 * poison. */
	__asan_unpoison_memory_region(s->base, s->size);
#endif
	(void)s;
}

/* True if the canary of an unguarded stack was overwritten. Inline: it
 * runs on every switch out of a task. */
static inline bool weft__stack_smashed(const struct weft_stack *s)
{
	return !s->guard && *(volatile uint64_t *)s->base != WEFT__STACK_CANARY;
}

struct weft_stack_cache *weft__stack_cache_new(void);
void weft__stack_cache_free(struct weft_stack_cache *c);

/* Internal test interface, not API: the count of mprotect guards against
 * the budget (stack.c), settable, and guards made by mprotect from now on,
 * as on a kernel before 6.13. */
long weft__stack_budget_used(void);
void weft__stack_budget_set(long used);
void weft__stack_force_mprotect(void);
/* The budget: past it, a stack gets no guard page, only the canary. */
#define WEFT__STACK_MPROTECT_BUDGET 16000

/* Empties the pool; exit unmaps every slab (at shutdown). */
void weft__stack_pool_init(void);
void weft__stack_pool_exit(void);

#endif
