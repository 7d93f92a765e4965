/* Must NOT compile: a metrics read whose result is dropped. Once weft_run
 * has returned (an exporter thread reads on while it does: metrics.h),
 * weft_metrics says -ESRCH and writes nothing, so m would be read
 * uninitialised. The ctest test_must_check_metrics expects the compiler
 * to reject it, which it does once weft_metrics is WEFT_MUST_CHECK. */
#include "weft.h"

unsigned long long alive(void)
{
	struct weft_metrics m;

	weft_metrics(&m);
	return m.tasks_alive;
}
