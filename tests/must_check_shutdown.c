/* Must NOT compile: a group's stop whose result is dropped. Called from a
 * member it says -EDEADLK and waits for nothing, so the other members may
 * still use what the caller frees next; otherwise it carries the round's
 * failure. The ctest test_must_check_shutdown expects the compiler to
 * reject it, which it does once weft_group_shutdown is WEFT_MUST_CHECK. */
#include "weft.h"

void stop(struct weft_group *conns)
{
	weft_group_shutdown(conns);
}
