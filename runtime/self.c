/* Who is running: see self.h. */
#include "self.h"
#include "worker.h"

static __thread struct weft_worker *tls_self;

__attribute__((noinline)) struct weft_worker *weft__self(void)
{
	struct weft_worker *w = tls_self;
	/* Opaque to the optimiser: never treat this call as pure. */
	__asm__ volatile("" : "+r"(w) : : "memory");
	return w;
}

/* The same TLS read, one call instead of two on the sync primitives' paths
 * (each acquire, release and wait asks who is running). */
__attribute__((noinline)) struct weft_task *weft__task_current(void)
{
	struct weft_worker *w = tls_self;
	__asm__ volatile("" : "+r"(w) : : "memory");
	return w ? w->current : NULL;
}

void weft__self_set(struct weft_worker *w)
{
	tls_self = w;
}
