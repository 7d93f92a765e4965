/* Handles across many runs: a handle carries its run's number in the bits
 * above the struct's generation (runtime/task.c), 64 - 40 = 24 of them.
 * Past 2^24 runs in one process the number no longer fits: a handle must
 * still match its own run, or weft_join (weft_run's own join of main
 * included) says -ESRCH for every task. */
#include <errno.h>
#include "test_util.h"
#include "runtime/task.h"

static void *ret7(void *arg)
{
	(void)arg;
	return (void *)7;
}

static void *join_main(void *arg)
{
	weft_task_t t;
	void *res = NULL;

	(void)arg;
	ck_assert_int_eq(weft_spawn(&t, ret7, NULL), 0);
	ck_assert_int_eq(weft_cancel(t), 0);
	ck_assert_int_eq(weft_join(t, &res), 0);
	ck_assert_ptr_eq(res, (void *)7);
	return (void *)8;
}

START_TEST(handles_after_2_pow_24_runs)
{
	/* What 2^24 weft_runs do to the run number, without their threads. */
	for (long i = 0; i < (1L << 24); i++)
		weft__task_run_begin();
	ck_assert_ptr_eq(weft_test_run(join_main, NULL, 2), (void *)8);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("run_number");
	TCase *tc = tcase_create("run_number");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, handles_after_2_pow_24_runs);
	suite_add_tcase(s, tc);
	return weft_test_main(s);
}
