/* Must NOT compile: an acquire whose result is dropped (the Go way). The
 * ctest test_must_check_lock expects the compiler to reject it, which it
 * does once weft_lock_acquire is WEFT_MUST_CHECK. */
#include "weft.h"

static struct weft_lock lock = WEFT_LOCK_INIT;
static long shared;

void update(void)
{
	weft_lock_acquire(&lock);
	shared++;
	weft_lock_release(&lock);
}
