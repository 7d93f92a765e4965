/*
 * What a dump and a stall report open is O_CLOEXEC from its first
 * instant: a program another thread starts meanwhile (fork+exec or
 * posix_spawn, which runs no pthread_atfork handlers) inherits none of it.
 *
 * A flag set at once is the only way: a descriptor opened without it and
 * marked a moment later is inherited by a fork in that moment, which is
 * what test_process's children saw now and then. So this suite replaces
 * open, open64, openat and fopen for the whole program (the executable's
 * definitions come first in symbol lookup, for libdw's calls too), passes
 * each call on, and notes every one made without O_CLOEXEC (or fopen's
 * "e") while a dump or a stall report runs.
 */
#include <dlfcn.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "test_util.h"

/* ---- the replaced calls ---------------------------------------------- */

typedef int open_fn(const char *, int, ...);
typedef int openat_fn(int, const char *, int, ...);
typedef FILE *fopen_fn(const char *, const char *);

static open_fn *next_open;
static openat_fn *next_openat;
static fopen_fn *next_fopen;

/* Looked up before any thread runs: the pointers are read-only after. */
__attribute__((constructor)) static void find_next(void)
{
	next_open = (open_fn *)dlsym(RTLD_NEXT, "open");
	next_openat = (openat_fn *)dlsym(RTLD_NEXT, "openat");
	next_fopen = (fopen_fn *)dlsym(RTLD_NEXT, "fopen");
}

static atomic_bool watching;
static atomic_int opened; /* calls seen while watching */
static pthread_mutex_t bad_lock = PTHREAD_MUTEX_INITIALIZER;
static char bad[4096]; /* the paths opened without the flag */

static void note(const char *path, bool cloexec)
{
	if (!atomic_load(&watching))
		return;
	atomic_fetch_add(&opened, 1);
	if (cloexec)
		return;
	pthread_mutex_lock(&bad_lock);
	size_t used = strlen(bad);
	snprintf(bad + used, sizeof(bad) - used, "%s; ", path);
	pthread_mutex_unlock(&bad_lock);
}

static mode_t mode_arg(int flags, va_list ap)
{
	bool has_mode = (flags & O_CREAT) || (flags & O_TMPFILE) == O_TMPFILE;
	return has_mode ? va_arg(ap, mode_t) : 0;
}

int open(const char *path, int flags, ...)
{
	va_list ap;
	va_start(ap, flags);
	mode_t mode = mode_arg(flags, ap);
	va_end(ap);
	note(path, flags & O_CLOEXEC);
	return next_open(path, flags, mode);
}

/* The same call on a 64-bit system, where off_t is 64 bits already. */
int open64(const char *path, int flags, ...) __attribute__((alias("open")));

int openat(int dirfd, const char *path, int flags, ...)
{
	va_list ap;
	va_start(ap, flags);
	mode_t mode = mode_arg(flags, ap);
	va_end(ap);
	note(path, flags & O_CLOEXEC);
	return next_openat(dirfd, path, flags, mode);
}

FILE *fopen(const char *path, const char *mode)
{
	note(path, strchr(mode, 'e'));
	return next_fopen(path, mode);
}

/* ---- the runs -------------------------------------------------------- */

static void *sleeper(void *arg)
{
	(void)arg;
	weft_sleep(60 * WEFT_SEC);
	return NULL;
}

/* A dump of a parked task, into a memfd; returns its text (to free). */
static char *dump_text(void)
{
	int fd = memfd_create("dump", MFD_CLOEXEC);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(weft_dump(fd), 0);
	off_t len = lseek(fd, 0, SEEK_END);
	char *text = calloc(1, (size_t)len + 1);
	ck_assert_ptr_nonnull(text);
	ck_assert_int_eq(pread(fd, text, (size_t)len, 0), len);
	close(fd);
	return text;
}

static void *dump_main(void *arg)
{
	weft_task_t t;
	(void)arg;
	ck_assert_int_eq(weft_spawn(&t, sleeper, NULL), 0);
	/* The sleeper's frames come only once it is parked in its sleep: not
	 * yet run, or running on the other worker, it has none. 10 ms for it
	 * to get there can pass first under a sanitizer on a busy machine, so
	 * the dump is taken again until they show (each dump watched). */
	char *text = NULL;
	for (int64_t end = weft_now() + 10 * WEFT_SEC;;) {
		weft_sleep(10 * WEFT_MSEC);
		atomic_store(&watching, true); /* weft_dump returns when out */
		text = dump_text();
		atomic_store(&watching, false);
		if (strstr(text, "sleeper+") || weft_now() >= end)
			break;
		free(text);
	}
	weft_cancel(t);
	ck_assert_int_eq(weft_join(t, NULL), 0);
	/* the sleeper's frames were named, from this file's DWARF with
	 * libdw: the files were read, so their opens were seen */
	ck_assert_msg(strstr(text, "sleeper+"), "%s", text);
#ifdef WEFT_HAVE_LIBDW
	ck_assert_msg(strstr(text, "tests/test_dump_cloexec.c:"), "%s", text);
#endif
	free(text);
	return NULL;
}

START_TEST(dump_opens_cloexec)
{
	struct weft_config cfg = { .workers = 2 };
	bad[0] = 0;
	atomic_store(&opened, 0);
	ck_assert_int_eq(weft_run(dump_main, NULL, &cfg, NULL), 0);
	ck_assert_int_gt(atomic_load(&opened), 0);
	ck_assert_msg(!bad[0], "opened without O_CLOEXEC: %s", bad);
}
END_TEST

/* A task that keeps its worker past the threshold till a report is
 * counted, and a while after, for the monitor to catch its frames and
 * name them. A report's frames come only if the kept worker's thread runs
 * its signal handler within 20 ms, which a busy machine may not let it
 * do (once, in a tsan run beside a build): then nothing is opened, so the
 * task yields, ending that stall, and stalls again, for ten seconds at
 * most. weft_run returns after the monitor has written the last report:
 * the watch ends there. */
static void *stall_main(void *arg)
{
	(void)arg;
	atomic_store(&watching, true);
	struct weft_metrics m = { 0 };
	uint64_t reports = 0;
	int64_t give_up = weft_now() + 10 * WEFT_SEC;
	while (!atomic_load(&opened) && weft_now() < give_up) {
		while (m.stall_reports == reports && weft_now() < give_up)
			ck_assert_int_eq(weft_metrics(&m), 0);
		reports = m.stall_reports;
		for (int64_t end = weft_now() + 200 * WEFT_MSEC;
		     weft_now() < end;)
			;
		ck_assert_int_eq(weft_yield(), 0);
	}
	ck_assert_uint_gt(m.stall_reports, 0);
	return NULL;
}

START_TEST(stall_report_opens_cloexec)
{
	struct weft_config cfg = { .workers = 2,
				   .stall_threshold_ns = 20 * WEFT_MSEC };
	bad[0] = 0;
	atomic_store(&opened, 0);
	ck_assert_int_eq(weft_run(stall_main, NULL, &cfg, NULL), 0);
	atomic_store(&watching, false);
	ck_assert_int_gt(atomic_load(&opened), 0);
	ck_assert_msg(!bad[0], "opened without O_CLOEXEC: %s", bad);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("dump_cloexec");
	TCase *tc = tcase_create("opens");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, dump_opens_cloexec);
	tcase_add_test(tc, stall_report_opens_cloexec);
	suite_add_tcase(s, tc);
	return weft_test_main(s);
}
