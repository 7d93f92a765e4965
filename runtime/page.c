/* The kernel's page size: see page.h. */
#include <stdatomic.h>
#include <unistd.h>

#include "page.h"

/* Read on every stack allocation and written once: a line of its own, so
 * that no neighbour's writes evict it. Relaxed: every thread that reads 0
 * stores the same value (the kernel's), so no thread needs another's
 * store to be ordered before anything. */
static _Alignas(64) _Atomic size_t page_bytes;

size_t weft__page_size(void)
{
	/* relaxed: see page_bytes. */
	size_t p = atomic_load_explicit(&page_bytes, memory_order_relaxed);
	if (__builtin_expect(p == 0, 0)) {
		p = (size_t)sysconf(_SC_PAGESIZE);
		/* relaxed: the same value any thread would store. */
		atomic_store_explicit(&page_bytes, p, memory_order_relaxed);
	}
	return p;
}

void weft__page_size_force(size_t bytes)
{
	/* relaxed: tests only, while no runtime runs (page.h): the thread
	 * that forces is the one that reads, or starts the ones that do. */
	atomic_store_explicit(&page_bytes, bytes, memory_order_relaxed);
}
