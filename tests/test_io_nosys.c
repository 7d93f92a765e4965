/* Where io_uring cannot be set up, weft_run fails with -ENOSYS and one clear
 * line on stderr, and the process can go on (and run weft later). */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>
#include "test_util.h"
#include "io/ring.h"

static void *never(void *arg)
{
	ck_abort_msg("main ran without io_uring");
	return NULL;
}

static void *ok(void *arg)
{
	return (void *)1;
}

/* Runs weft_run with io_uring failing with err; returns what it printed. */
static int run_failing(int err, char *out, size_t len)
{
	char path[] = "/tmp/weft-nosys-XXXXXX";
	int fd = mkstemp(path), saved = dup(2), r;
	ssize_t n;

	ck_assert_int_ge(fd, 0);
	unlink(path);
	fflush(stderr);
	dup2(fd, 2);
	weft__ring_fail_next_init(err);
	r = weft_run(never, NULL, &(struct weft_config){ .workers = 2 }, NULL);
	fflush(stderr);
	dup2(saved, 2);
	close(saved);
	n = pread(fd, out, len - 1, 0);
	out[n > 0 ? n : 0] = 0;
	close(fd);
	fprintf(stderr, "weft_run said: %s", out);
	return r;
}

static void check_line(const char *out)
{
	const char *nl = strchr(out, '\n');

	ck_assert_msg(nl != NULL, "no line printed");
	ck_assert_msg(nl[1] == 0, "more than one line: %s", out);
	ck_assert_msg(strstr(out, "io_uring") != NULL, "line does not say io_uring");
}

START_TEST(io_uring_disabled)
{
	char out[1024];

	/* Disabled by sysctl or seccomp: io_uring_setup gives -EPERM. */
	ck_assert_int_eq(run_failing(EPERM, out, sizeof(out)), -ENOSYS);
	check_line(out);
	ck_assert_ptr_nonnull(strstr(out, "not permitted"));
	/* An old kernel: -ENOSYS. */
	ck_assert_int_eq(run_failing(ENOSYS, out, sizeof(out)), -ENOSYS);
	check_line(out);
	/* The runtime still works afterwards. */
	void *res = NULL;
	ck_assert_int_eq(weft_run(ok, NULL, NULL, &res), 0);
	ck_assert_ptr_eq(res, (void *)1);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("io_nosys");
	TCase *tc = tcase_create("nosys");

	tcase_add_test(tc, io_uring_disabled);
	suite_add_tcase(s, tc);
	return weft_test_main(s);
}
