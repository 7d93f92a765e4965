/* realloc, defined over glibc's by the test that includes this, failing
 * once when fail_realloc is set, or once for a call of the size in
 * fail_realloc_size (not 0): for the -ENOMEM paths behind a growing table
 * or buffer, the second where other threads may realloc meanwhile. Not
 * under a sanitizer, which owns the heap: CAN_FAIL_REALLOC says whether
 * the shim is there. Include in one file of a test program. */
#ifndef WEFT_TESTS_FAIL_REALLOC_H
#define WEFT_TESTS_FAIL_REALLOC_H

#if !defined(__SANITIZE_ADDRESS__) && !defined(__SANITIZE_THREAD__)
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

#define CAN_FAIL_REALLOC 1
void *__libc_realloc(void *p, size_t n);
static atomic_bool fail_realloc;
static _Atomic size_t fail_realloc_size;
/* Not 0: fails once a call for more than this many bytes. */
static _Atomic size_t fail_realloc_over;

void *realloc(void *p, size_t n)
{
	size_t size = atomic_load(&fail_realloc_size),
	       over = atomic_load(&fail_realloc_over);

	if (atomic_exchange(&fail_realloc, false) ||
	    (size && n == size &&
	     atomic_compare_exchange_strong(&fail_realloc_size, &size, 0)) ||
	    (over && n > over &&
	     atomic_compare_exchange_strong(&fail_realloc_over, &over, 0)))
		return NULL;
	return __libc_realloc(p, n);
}
#endif

#endif
