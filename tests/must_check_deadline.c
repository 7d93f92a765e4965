/* Must NOT compile: a deadline scope entered without looking. On a plain
 * thread (-EPERM) or with d still entered (-EINVAL) no deadline is in
 * force, and the wait below would have no bound. The ctest
 * test_must_check_deadline expects the compiler to reject it, which it
 * does once weft_deadline_enter is WEFT_MUST_CHECK. */
#include "weft.h"

int wait_a_second(struct weft_event *ev)
{
	struct weft_deadline d;
	int r;

	weft_deadline_enter(&d, WEFT_SEC);
	r = weft_event_wait(ev);
	weft_deadline_leave(&d);
	return r;
}
