/* Must NOT compile: a shield entered without looking. If it failed, a
 * cancelled caller's join returns -ECANCELED at once and the child may
 * still use what the caller frees next. The ctest test_must_check_shield
 * expects the compiler to reject it, which it does once weft_shield_enter
 * is WEFT_MUST_CHECK. */
#include "weft.h"

int join_whatever_happens(weft_task_t child)
{
	struct weft_shield sh;
	int r;

	weft_shield_enter(&sh);
	r = weft_join(child, NULL);
	weft_shield_leave(&sh);
	return r;
}
