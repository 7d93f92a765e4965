/* Task stacks: see stack.h for the guard-page strategy. */
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#include "context.h"
#include "page.h"
#include "stack.h"
#include "task.h"
#include "valgrind.h"

#ifndef MADV_GUARD_INSTALL
#define MADV_GUARD_INSTALL 102
#endif
#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif

#define STACK_SLAB                                                             \
	256          /* stacks per slab mapping: one mmap, and one
				 * system call for all their guards */
#define CACHE_MAX 32 /* stacks of a class a worker keeps */
/* mprotect guards: ~2 mappings each */
#define MPROTECT_BUDGET WEFT__STACK_MPROTECT_BUDGET
#define CLASS_MIN (16 * 1024) /* pooled sizes: 16 KiB << 0 .. 1 MiB */
#define NCLASS 7

/* A free pooled stack keeps this at its top, in a page it already used. */
struct free_stack {
	struct free_stack *next;
	size_t guard;
};

struct weft_stack_cache {
	int n[NCLASS];
	struct free_stack *s[NCLASS][CACHE_MAX];
};

struct slab {
	void *base;
	size_t bytes;
	unsigned vg_ids[STACK_SLAB]; /* valgrind stack ids */
};

/* The global pool. A spinlock: critical sections are a few pointer moves
 * (slabs are mapped and guarded outside it). Lines of its own: workers
 * write it, and it must not slow down a neighbour's reads. */
static struct __attribute__((aligned(64))) {
	unsigned lock;
	struct free_stack *free[NCLASS]; /* global pool, per size class */
	struct slab *slabs;              /* every slab mapping, for exit */
	size_t nslabs, cap;
} pool;

/* MADV_GUARD_INSTALL works, until not. Read relaxed: a hint that only
 * picks which guard to try; a stale 1 costs one refused madvise, whose
 * failure falls back to mprotect, and nothing is published with it. */
static atomic_int light_guards = 1;
static atomic_long mprotect_guards;
static int self_pidfd = -1; /* for process_madvise; -1: none */

/*
 * Gives the same advice for n ranges: in one system call where the kernel
 * takes any advice from process_madvise for the calling process (Linux
 * 6.13), else one madvise each. 0, or -1 if any failed.
 */
static int advise_all(struct iovec *r, int n, int advice)
{
	size_t total = 0;
	for (int i = 0; i < n; i++)
		total += r[i].iov_len;
	if (self_pidfd >= 0 && syscall(SYS_process_madvise, self_pidfd, r,
				       (size_t)n, advice, 0) == (long)total)
		return 0;
	for (int i = 0; i < n; i++)
		if (madvise(r[i].iov_base, r[i].iov_len, advice))
			return -1;
	return 0;
}

/*
 * After a failed MADV_GUARD_INSTALL: light guards off for good if the
 * kernel will never give them (EINVAL: a kernel before 6.13, which does
 * not know the advice, or a mapping it refuses them on, as under
 * mlockall(MCL_FUTURE)); after a transient failure (ENOMEM: no memory
 * for a page table or anon_vma just now; EAGAIN) only the stack or slab at
 * hand goes without, and the next one tries again. Off for good, every
 * later stack would take an mprotect guard from the budget, and once it
 * was spent only a canary.
 */
static void light_guard_failed(int err)
{
	if (err != ENOMEM && err != EAGAIN)
		atomic_store(&light_guards, 0);
}

/* Makes [p, p+len) fault on access; returns the guard size achieved, and
 * whether the guard counts against the mprotect budget in *budgeted. Only
 * a guard made counts: one refused (budget spent, mprotect failed) gave
 * its count back, or the count grew for good and every later stack went
 * without a guard. */
static size_t install_guard(char *p, size_t len, bool *budgeted)
{
	*budgeted = false;
	/* relaxed: a hint (see light_guards). */
	if (atomic_load_explicit(&light_guards, memory_order_relaxed)) {
		if (madvise(p, len, MADV_GUARD_INSTALL) == 0)
			return len;
		light_guard_failed(errno);
	}
	size_t one = weft__page_size();
	if (atomic_fetch_add(&mprotect_guards, 1) < MPROTECT_BUDGET &&
	    mprotect(p + len - one, one, PROT_NONE) == 0) {
		*budgeted = true;
		return one;
	}
	atomic_fetch_sub(&mprotect_guards, 1);
	return 0;
}

long weft__stack_budget_used(void)
{
	return atomic_load(&mprotect_guards);
}

void weft__stack_budget_set(long used)
{
	atomic_store(&mprotect_guards, used);
}

void weft__stack_force_mprotect(void)
{
	atomic_store(&light_guards, 0);
}

static void set_canary(struct weft_stack *s)
{
	if (!s->guard)
		*(volatile uint64_t *)s->base = WEFT__STACK_CANARY;
}

static size_t class_size(int c)
{
	return (size_t)CLASS_MIN << c;
}

/* The pooled class a size rounds up to, or -1 if too big to pool: the
 * smallest c with CLASS_MIN << c >= size, in closed form: every spawn and
 * every exit asks, and a loop over the classes showed in their cost. */
static int class_of(size_t size)
{
	if (size > class_size(NCLASS - 1))
		return -1;
	if (size <= CLASS_MIN)
		return 0;
	return 64 - __builtin_clzll((unsigned long long)(size - 1) / CLASS_MIN);
}

static struct free_stack *node_of(char *base, size_t size)
{
	return (struct free_stack *)(base + size) - 1;
}

static void to_stack(struct weft_stack *s, struct free_stack *n, int c)
{
	s->size = class_size(c);
	s->base = (char *)(n + 1) - s->size;
	s->guard = n->guard;
	s->pooled = true;
	s->budgeted = false;
}

/* Memory for stacks: reserved only (pages come on first touch), so a
 * 64 KiB stack that uses one page costs one. NULL if the map failed. */
static char *map_stack_memory(size_t bytes)
{
	char *m = mmap(NULL, bytes, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK,
		       -1, 0);
	return m == MAP_FAILED ? NULL : m;
}

/*
 * Address space for slabs is reserved a gigabyte at a time and carved in
 * order, so that a new slab rarely maps: mmap takes the memory map lock for
 * writing, which stalls every other worker's page faults, and a worker
 * growing the pool faults in a slab's worth of stack pages.
 */
#define RESERVE_BYTES ((size_t)1 << 30)

static struct {
	unsigned lock;
	char *next; /* the uncarved tail of the reservation */
	size_t left;
} reserve;

/* Carves bytes from the reservation, first replacing it if too short.
 * Under reserve.lock. NULL if no reservation could be mapped. */
static char *carve(size_t bytes)
{
	if (reserve.left < bytes) {
		/* Once a gigabyte, so mapping under the spinlock is fine:
		 * a contender spins through one mmap at most. */
		char *m = map_stack_memory(RESERVE_BYTES);
		if (!m)
			return NULL;
		if (reserve.left)
			munmap(reserve.next, reserve.left);
		reserve.next = m;
		reserve.left = RESERVE_BYTES;
	}
	char *m = reserve.next;
	reserve.next += bytes;
	reserve.left -= bytes;
	return m;
}

/* Address space for one slab; NULL if none could be mapped. */
static char *take_slab_memory(size_t bytes)
{
	weft__spin_lock(&reserve.lock);
	char *m = carve(bytes);
	weft__spin_unlock(&reserve.lock);
	/* Strict overcommit may refuse a gigabyte and grant a slab. */
	return m ? m : map_stack_memory(bytes);
}

/* Light guards for every stack of a slab, in one system call. */
static bool guard_slab(char *m, size_t guard, size_t each)
{
	/* relaxed: a hint (see light_guards). */
	if (!atomic_load_explicit(&light_guards, memory_order_relaxed))
		return false;
	struct iovec r[STACK_SLAB];
	for (int i = 0; i < STACK_SLAB; i++)
		r[i] = (struct iovec){ m + (size_t)i * each, guard };
	if (advise_all(r, STACK_SLAB, MADV_GUARD_INSTALL) == 0)
		return true;
	light_guard_failed(errno); /* then one stack at a time */
	return false;
}

/*
 * The top page of every stack of a slab, where grow_pool writes the stack's
 * free-list node and its first task its first frames, in one system call.
 * Touched one by one instead, each page is a fault, and in some VMs a
 * fault is dear: 20-24 us a stack on the seventeenth and eighteenth
 * sessions' host against 1.7 us for this call, so a slab's 256 faults kept
 * a worker from its tasks for 5 ms or more, long enough for another worker
 * to take them (steal.h; bench/README.md, eighteenth session). On the
 * fifth session's host the two cost about the same (1.4 and 1.2 us). The
 * call holds the memory map lock for reading: it waits only for an mmap,
 * and slabs are carved from address space reserved a gigabyte at a time.
 * Before Linux 6.13 it is one madvise a stack (advise_all); before 5.14
 * the kernel refuses it and the pages fault in as before.
 */
static void populate_tops(char *m, size_t each)
{
	size_t page = weft__page_size();
	struct iovec r[STACK_SLAB];
	for (int i = 0; i < STACK_SLAB; i++)
		r[i] = (struct iovec){ m + (size_t)(i + 1) * each - page,
				       page };
	(void)advise_all(r, STACK_SLAB, MADV_POPULATE_WRITE);
}

/* Carves a slab of class c, guards its stacks and populates their top
 * pages, outside the lock, then splices them into the pool. */
static int grow_pool(int c)
{
	/* A guard of one page, as a thread's: a wider one spreads the stacks
	 * over more page tables, which a million of them pay for. A class is
	 * whole pages (requests round up to a page first), so each stack and
	 * guard of the slab starts on a page. */
	size_t guard = weft__page_size(), each = guard + class_size(c);
	size_t bytes = each * STACK_SLAB;
	char *m = take_slab_memory(bytes);
	if (!m)
		return -ENOMEM;
	bool light = guard_slab(m, guard, each);
	populate_tops(m, each);
	struct slab sl = { .base = m, .bytes = bytes };
	struct free_stack *first = NULL, *last = NULL;
	long budgeted_guards = 0; /* given back if the slab is unmapped */
	for (int i = STACK_SLAB - 1; i >= 0; i--) {
		char *lo = m + (size_t)i * each;
		struct weft_stack s = { lo + guard, class_size(c), 0, true,
					0,          false };
		sl.vg_ids[i] = WEFT_STACK_REGISTER(s.base, s.base + s.size);
		bool budgeted = false; /* a slab's guards stay as long as it */
		s.guard = light ? guard : install_guard(lo, guard, &budgeted);
		budgeted_guards += budgeted;
		set_canary(&s);
		struct free_stack *n = node_of(s.base, s.size);
		n->guard = s.guard;
		n->next = first;
		first = n;
		if (!last)
			last = n;
	}
	weft__spin_lock(&pool.lock);
	if (pool.nslabs == pool.cap) {
		size_t cap = pool.cap ? pool.cap * 2 : 64;
		struct slab *a = realloc(pool.slabs, cap * sizeof(*a));
		if (!a) {
			weft__spin_unlock(&pool.lock);
			/* Its guards go with it: else their count would
			 * hold the budget until the run ends. */
			atomic_fetch_sub(&mprotect_guards, budgeted_guards);
			for (int i = 0; i < STACK_SLAB; i++)
				WEFT_STACK_DEREGISTER(sl.vg_ids[i]);
			munmap(m, bytes);
			return -ENOMEM;
		}
		pool.slabs = a;
		pool.cap = cap;
	}
	pool.slabs[pool.nslabs++] = sl;
	last->next = pool.free[c];
	pool.free[c] = first;
	weft__spin_unlock(&pool.lock);
	return 0;
}

/* Takes a stack from the global pool, refilling half the cache too. */
static int pool_take(struct weft_stack *s, int c, struct weft_stack_cache *k)
{
	for (;;) {
		weft__spin_lock(&pool.lock);
		struct free_stack *n = pool.free[c];
		if (n) {
			pool.free[c] = n->next;
			to_stack(s, n, c);
			while (k && k->n[c] < CACHE_MAX / 2 && pool.free[c]) {
				k->s[c][k->n[c]++] = pool.free[c];
				pool.free[c] = pool.free[c]->next;
			}
		}
		weft__spin_unlock(&pool.lock);
		if (n)
			return 0;
		int r = grow_pool(c);
		if (r)
			return r;
	}
}

static int map_single(struct weft_stack *s, size_t size)
{
	size_t guard = weft__page_size();
	char *m = map_stack_memory(guard + size);
	if (!m)
		return -ENOMEM;
	s->base = m + guard;
	s->size = size;
	s->pooled = false;
	s->vg_id = WEFT_STACK_REGISTER(s->base, s->base + size);
	s->guard = install_guard(m, guard, &s->budgeted);
	set_canary(s);
	return 0;
}

int weft__stack_alloc(struct weft_stack *s, size_t size,
		      struct weft_stack_cache *k)
{
	size_t page = weft__page_size();
	size = (size + page - 1) & ~(page - 1);
	int c = class_of(size);
	if (c < 0)
		return map_single(s, size);
	if (k && k->n[c] > 0) {
		to_stack(s, k->s[c][--k->n[c]], c);
	} else {
		int r = pool_take(s, c, k);
		if (r)
			return r;
	}
#ifdef WEFT_ASAN
	/* A finished task's last frames never returned: clear their poison. */
	__asan_unpoison_memory_region(s->base, s->size);
#endif
	return 0;
}

void weft__stack_free(struct weft_stack *s, struct weft_stack_cache *k)
{
	if (!s->pooled) {
		size_t guard = weft__page_size();
		WEFT_STACK_DEREGISTER(s->vg_id);
		munmap(s->base - guard, s->size + guard);
		if (s->budgeted)
			atomic_fetch_sub(&mprotect_guards, 1);
		return;
	}
	int c = class_of(s->size);
	struct free_stack *n = node_of(s->base, s->size);
	n->guard = s->guard;
	if (k && k->n[c] < CACHE_MAX) {
		k->s[c][k->n[c]++] = n;
		return;
	}
	/* Full: hand back half the cache under one lock, so a worker that
	 * only frees takes the lock once per CACHE_MAX / 2 stacks. */
	weft__spin_lock(&pool.lock);
	n->next = pool.free[c];
	pool.free[c] = n;
	while (k && k->n[c] > CACHE_MAX / 2) {
		struct free_stack *x = k->s[c][--k->n[c]];
		x->next = pool.free[c];
		pool.free[c] = x;
	}
	weft__spin_unlock(&pool.lock);
}

struct weft_stack_cache *weft__stack_cache_new(void)
{
	return calloc(1, sizeof(struct weft_stack_cache));
}

void weft__stack_cache_free(struct weft_stack_cache *c)
{
	free(c); /* its stacks live in slabs, unmapped by pool exit */
}

/*
 * Whether MADV_GUARD_INSTALL really makes pages fault. qemu's user mode
 * takes the advice and ignores it, which would leave every stack without
 * a guard: an overflow would run into its neighbour instead of being
 * reported. A system call that reads a guarded page fails with EFAULT
 * where a load would fault. Returns 1 (they fault), 0 (they do not, or
 * the kernel refuses the advice) or -1 (cannot tell now: no memory for
 * the page or the advice, or no descriptor for the pipe, at RLIMIT_NOFILE).
 */
static int light_guards_fault(void)
{
	size_t page = weft__page_size();
	char *p = map_stack_memory(page);
	int fds[2];
	int faults = -1;
	if (!p)
		return -1;
	if (madvise(p, page, MADV_GUARD_INSTALL) == 0) {
		if (pipe2(fds, O_CLOEXEC) == 0) {
			faults = write(fds[1], p, 1) < 0 && errno == EFAULT;
			close(fds[0]);
			close(fds[1]);
		}
	} else if (errno != ENOMEM && errno != EAGAIN) {
		faults = 0;
	}
	munmap(p, page);
	return faults;
}

void weft__stack_pool_init(void)
{
	/* Valgrind knows neither pidfd_open nor process_madvise, and says so
	 * on every call: there, madvise one stack at a time. */
	self_pidfd = WEFT_UNDER_VALGRIND()
			     ? -1
			     : (int)syscall(SYS_pidfd_open, getpid(), 0);
	for (int c = 0; c < NCLASS; c++)
		pool.free[c] = NULL;
	pool.nslabs = 0;
	atomic_store(&mprotect_guards, 0);
	/* Once a process: runs happen one at a time, before any worker. */
	static bool probed;
	if (!probed) {
		/* An answer holds for the process; none (no memory or
		 * descriptor just now) leaves this run on mprotect guards
		 * and asks again next run. */
		int faults = light_guards_fault();
		probed = faults >= 0;
		atomic_store(&light_guards, faults == 1);
	}
}

void weft__stack_pool_exit(void)
{
	for (size_t i = 0; i < pool.nslabs; i++) {
		for (int j = 0; j < STACK_SLAB; j++)
			WEFT_STACK_DEREGISTER(pool.slabs[i].vg_ids[j]);
		munmap(pool.slabs[i].base, pool.slabs[i].bytes);
	}
	free(pool.slabs);
	pool.slabs = NULL;
	if (reserve.left) /* slabs were unmapped one by one, the tail here */
		munmap(reserve.next, reserve.left);
	reserve.next = NULL;
	reserve.left = 0;
	if (self_pidfd >= 0)
		close(self_pidfd);
	self_pidfd = -1;
	pool.nslabs = pool.cap = 0;
	for (int c = 0; c < NCLASS; c++)
		pool.free[c] = NULL;
}
