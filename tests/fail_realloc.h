/* realloc, defined over glibc's by the test that includes this, failing
 * once when fail_realloc is set: for the -ENOMEM paths behind a growing
 * table. Not under a sanitizer, which owns the heap: CAN_FAIL_REALLOC says
 * whether the shim is there. Include in one file of a test program. */
#ifndef WEFT_TESTS_FAIL_REALLOC_H
#define WEFT_TESTS_FAIL_REALLOC_H

#if !defined(__SANITIZE_ADDRESS__) && !defined(__SANITIZE_THREAD__)
#include <stdatomic.h>
#include <stddef.h>

#define CAN_FAIL_REALLOC 1
void *__libc_realloc(void *p, size_t n);
static atomic_bool fail_realloc;

void *realloc(void *p, size_t n)
{
	if (atomic_exchange(&fail_realloc, false))
		return NULL;
	return __libc_realloc(p, n);
}
#endif

#endif
