/* Tasks: spawn, join, detach, cancel, yield, migration, shutdown. */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include "test_util.h"

static void *ret_arg(void *arg)
{
	return arg;
}

static void *basic_main(void *arg)
{
	weft_task_t t;
	ck_assert_int_eq(weft_spawn(&t, ret_arg, (void *)42), 0);
	void *res = NULL;
	ck_assert_int_eq(weft_join(t, &res), 0);
	ck_assert_ptr_eq(res, (void *)42);
	ck_assert_int_eq(weft_join(t, &res), -ESRCH); /* joined twice */
	return (void *)7;
}

START_TEST(spawn_join)
{
	ck_assert_ptr_eq(weft_test_run(basic_main, NULL, 2), (void *)7);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("task");
	TCase *tc = tcase_create("task");
	tcase_set_timeout(tc, 600);
	tcase_add_test(tc, spawn_join);
	suite_add_tcase(s, tc);
	return weft_test_main(s);
}
