/* The preps the suites hand weft_io_submit (io.h): ops with nothing of
 * the test's own to set up. */
#ifndef WEFT_TEST_PREPS_H
#define WEFT_TEST_PREPS_H

#include <liburing.h>

/* A NOP: completes at once with 0. */
static inline void prep_nop(struct io_uring_sqe *sqe, void *arg)
{
	(void)arg;
	io_uring_prep_nop(sqe);
}

/* A timeout of the struct __kernel_timespec arg points at: completes with
 * -ETIME once it ran out. */
static inline void prep_timeout(struct io_uring_sqe *sqe, void *arg)
{
	io_uring_prep_timeout(sqe, arg, 0, 0);
}

#endif
