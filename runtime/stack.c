/* Task stacks: see stack.h for the guard-page strategy. */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "context.h"
#include "stack.h"

#ifndef MADV_GUARD_INSTALL
#define MADV_GUARD_INSTALL 102
#endif

#define STACK_SLAB 16           /* stacks per slab mapping */
#define CACHE_MAX 32            /* stacks a worker keeps for itself */
#define LIGHT_GUARD (64 * 1024) /* MADV guards cost no memory: be generous */
#define MPROTECT_BUDGET 16000   /* mprotect guards: ~2 mappings each */
#define CANARY 0x57eff7ac4a3a17e5ULL

/* A free pooled stack keeps this at its top, in a page it already used. */
struct free_stack {
	struct free_stack *next;
	size_t guard;
};

struct weft_stack_cache {
	int n;
	struct free_stack *s[CACHE_MAX];
};

static struct {
	pthread_mutex_t mu;
	size_t size;              /* pooled stack size */
	struct free_stack *free;  /* global pool */
	void **slabs;             /* every slab mapping, for exit */
	size_t nslabs, cap;
	size_t slab_bytes;
} pool = { .mu = PTHREAD_MUTEX_INITIALIZER };

static atomic_int light_guards = 1; /* MADV_GUARD_INSTALL works, until not */
static atomic_long mprotect_guards;

static size_t page_size(void)
{
	static size_t ps;
	if (!ps)
		ps = (size_t)sysconf(_SC_PAGESIZE);
	return ps;
}

/* Makes [p, p+len) fault on access; returns the guard size achieved. */
static size_t install_guard(char *p, size_t len)
{
	if (atomic_load_explicit(&light_guards, memory_order_relaxed)) {
		if (madvise(p, len, MADV_GUARD_INSTALL) == 0)
			return len;
		atomic_store(&light_guards, 0);
	}
	size_t one = page_size();
	if (atomic_fetch_add(&mprotect_guards, 1) < MPROTECT_BUDGET &&
	    mprotect(p + len - one, one, PROT_NONE) == 0)
		return one;
	return 0;
}

static void set_canary(struct weft_stack *s)
{
	if (!s->guard)
		*(volatile uint64_t *)s->base = CANARY;
}

bool weft__stack_smashed(const struct weft_stack *s)
{
	return !s->guard && *(volatile uint64_t *)s->base != CANARY;
}

static struct free_stack *node_of(char *base, size_t size)
{
	return (struct free_stack *)(base + size) - 1;
}

static void to_stack(struct weft_stack *s, struct free_stack *n)
{
	s->size = pool.size;
	s->base = (char *)(n + 1) - pool.size;
	s->guard = n->guard;
	s->pooled = true;
}

/* Maps a slab and adds its stacks to the global pool. Under pool.mu. */
static int grow_pool(void)
{
	size_t guard = LIGHT_GUARD, each = guard + pool.size;
	size_t bytes = each * STACK_SLAB;
	char *m = mmap(NULL, bytes, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK,
		       -1, 0);
	if (m == MAP_FAILED)
		return -ENOMEM;
	if (pool.nslabs == pool.cap) {
		size_t cap = pool.cap ? pool.cap * 2 : 64;
		void **s = realloc(pool.slabs, cap * sizeof(*s));
		if (!s) {
			munmap(m, bytes);
			return -ENOMEM;
		}
		pool.slabs = s;
		pool.cap = cap;
	}
	pool.slabs[pool.nslabs++] = m;
	pool.slab_bytes = bytes;
	for (int i = STACK_SLAB - 1; i >= 0; i--) {
		char *lo = m + (size_t)i * each;
		struct weft_stack s = { lo + guard, pool.size, 0, true };
		s.guard = install_guard(lo, guard);
		set_canary(&s);
		struct free_stack *n = node_of(s.base, s.size);
		n->guard = s.guard;
		n->next = pool.free;
		pool.free = n;
	}
	return 0;
}

/* Takes a stack from the global pool, refilling half the cache too. */
static int pool_take(struct weft_stack *s, struct weft_stack_cache *c)
{
	int r = 0;
	pthread_mutex_lock(&pool.mu);
	if (!pool.free)
		r = grow_pool();
	if (!r) {
		struct free_stack *n = pool.free;
		pool.free = n->next;
		to_stack(s, n);
		while (c && c->n < CACHE_MAX / 2 && pool.free) {
			c->s[c->n++] = pool.free;
			pool.free = pool.free->next;
		}
	}
	pthread_mutex_unlock(&pool.mu);
	return r;
}

static int map_single(struct weft_stack *s, size_t size)
{
	size_t guard = page_size();
	char *m = mmap(NULL, guard + size, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK,
		       -1, 0);
	if (m == MAP_FAILED)
		return -ENOMEM;
	s->base = m + guard;
	s->size = size;
	s->pooled = false;
	s->guard = install_guard(m, guard);
	set_canary(s);
	return 0;
}

int weft__stack_alloc(struct weft_stack *s, size_t size,
		      struct weft_stack_cache *c)
{
	size = (size + page_size() - 1) & ~(page_size() - 1);
	if (size != pool.size)
		return map_single(s, size);
	if (c && c->n > 0) {
		to_stack(s, c->s[--c->n]);
	} else {
		int r = pool_take(s, c);
		if (r)
			return r;
	}
#ifdef WEFT_ASAN
	/* A finished task's last frames never returned: clear their poison. */
	__asan_unpoison_memory_region(s->base, s->size);
#endif
	return 0;
}

void weft__stack_free(struct weft_stack *s, struct weft_stack_cache *c)
{
	if (!s->pooled) {
		size_t guard = page_size();
		munmap(s->base - guard, s->size + guard);
		if (s->guard == guard &&
		    !atomic_load_explicit(&light_guards, memory_order_relaxed))
			atomic_fetch_sub(&mprotect_guards, 1);
		return;
	}
	struct free_stack *n = node_of(s->base, s->size);
	n->guard = s->guard;
	if (c && c->n < CACHE_MAX) {
		c->s[c->n++] = n;
		return;
	}
	/* Full: hand back half the cache under one lock (see task_free). */
	pthread_mutex_lock(&pool.mu);
	n->next = pool.free;
	pool.free = n;
	while (c && c->n > CACHE_MAX / 2) {
		struct free_stack *x = c->s[--c->n];
		x->next = pool.free;
		pool.free = x;
	}
	pthread_mutex_unlock(&pool.mu);
}

struct weft_stack_cache *weft__stack_cache_new(void)
{
	return calloc(1, sizeof(struct weft_stack_cache));
}

void weft__stack_cache_free(struct weft_stack_cache *c)
{
	free(c); /* its stacks live in slabs, unmapped by pool exit */
}

void weft__stack_pool_init(size_t default_size)
{
	pool.size = (default_size + page_size() - 1) & ~(page_size() - 1);
	pool.free = NULL;
	pool.nslabs = 0;
	atomic_store(&mprotect_guards, 0);
}

void weft__stack_pool_exit(void)
{
	for (size_t i = 0; i < pool.nslabs; i++)
		munmap(pool.slabs[i], pool.slab_bytes);
	free(pool.slabs);
	pool.slabs = NULL;
	pool.nslabs = pool.cap = 0;
	pool.free = NULL;
}
