/* Seeing inside a running program: thread names. */
#include <dirent.h>
#include <stdio.h>
#include <string.h>
#include "test_util.h"

/* ---- thread names ------------------------------------------------------- */

/* Whether a thread of this process is called name (/proc/self/task). */
static bool thread_named(const char *name)
{
	DIR *d = opendir("/proc/self/task");
	ck_assert_ptr_nonnull(d);
	bool found = false;
	struct dirent *e;
	while (!found && (e = readdir(d))) {
		if (e->d_name[0] == '.')
			continue;
		char path[300], comm[32] = "";
		snprintf(path, sizeof(path), "/proc/self/task/%s/comm",
			 e->d_name);
		FILE *f = fopen(path, "r");
		if (!f)
			continue; /* the thread exited meanwhile */
		if (fgets(comm, sizeof(comm), f))
			comm[strcspn(comm, "\n")] = '\0';
		fclose(f);
		found = !strcmp(comm, name);
	}
	closedir(d);
	return found;
}

static void *check_names(void *arg)
{
	ck_assert(thread_named("weft-w0"));
	ck_assert(thread_named("weft-w1"));
	ck_assert(thread_named("weft-w2"));
	ck_assert(!thread_named("weft-w3"));
	ck_assert(thread_named("weft-monitor"));
	ck_assert(thread_named("weft-blk-0")); /* the caller's own thread */
	return (void *)1;
}

static void *names_main(void *arg)
{
	void *res = NULL;
	ck_assert_int_eq(weft_blocking(check_names, NULL, &res), 0);
	ck_assert_ptr_eq(res, (void *)1);
	return NULL;
}

START_TEST(thread_names)
{
	weft_test_run(names_main, NULL, 3);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("observe");
	TCase *tc = tcase_create("observe");
	tcase_set_timeout(tc, 300);
	tcase_add_test(tc, thread_names);
	suite_add_tcase(s, tc);
	return weft_test_main(s);
}
