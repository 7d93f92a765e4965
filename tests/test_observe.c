/* Seeing inside a running program: thread names, metrics. */
#include <dirent.h>
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
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

/* ---- metrics ------------------------------------------------------------ */

static struct weft_metrics metrics_now(void)
{
	struct weft_metrics m;
	ck_assert_int_eq(weft_metrics(&m), 0);
	ck_assert_int_eq(m.version, WEFT_METRICS_VERSION);
	return m;
}

static uint64_t histogram_total(const uint64_t *h)
{
	uint64_t n = 0;
	for (int i = 0; i < WEFT_LATENCY_BUCKETS; i++)
		n += h[i];
	return n;
}

static void *nothing(void *arg)
{
	return arg;
}

/* N spawns are counted N times, and finish N times (a finish is counted
 * just after the joiner is told: wait for it). */
static void *spawn_count_main(void *arg)
{
	long n = SCALED(20000);
	struct weft_metrics m0 = metrics_now();
	for (long i = 0; i < n; i++)
		ck_assert_int_eq(weft_spawn(NULL, nothing, NULL), 0);
	struct weft_metrics m1 = metrics_now();
	ck_assert_uint_eq(m1.tasks_spawned - m0.tasks_spawned, (uint64_t)n);
	while (m1.tasks_finished - m0.tasks_finished < (uint64_t)n) {
		weft_sleep(WEFT_MSEC);
		m1 = metrics_now();
	}
	ck_assert_uint_eq(m1.tasks_finished - m0.tasks_finished, (uint64_t)n);
	ck_assert_uint_eq(m1.tasks_alive, 1); /* this one */
	ck_assert_uint_ge(m1.task_runs - m0.task_runs, (uint64_t)n);
	/* One spawn in WEFT_LATENCY_SAMPLE is timed; each timed task ran. */
	uint64_t timed = histogram_total(m1.latency_ns) -
			 histogram_total(m0.latency_ns);
	ck_assert_uint_ge(timed, (uint64_t)n / WEFT_LATENCY_SAMPLE - 1);
	ck_assert_uint_le(histogram_total(m1.latency_ns), m1.task_runs);
	/* The per-worker figures add up to the sums. */
	uint64_t runs = 0, hist = 0;
	for (int i = 0; i < m1.workers; i++) {
		struct weft_worker_metrics w;
		ck_assert_int_eq(weft_worker_metrics(i, &w), 0);
		runs += w.task_runs;
		hist += histogram_total(w.latency_ns);
	}
	ck_assert_uint_ge(runs, m1.task_runs);
	ck_assert_uint_ge(hist, histogram_total(m1.latency_ns));
	return NULL;
}

START_TEST(metrics_count_spawns)
{
	weft_test_run(spawn_count_main, NULL, 1);
	weft_test_run(spawn_count_main, NULL, 3);
}
END_TEST

/* A task that keeps its worker a while, so that others steal its
 * siblings. */
static void *busy_ms(void *arg)
{
	int64_t end = weft_now() + WEFT_MSEC;
	while (weft_now() < end)
		;
	return NULL;
}

static void *steal_main(void *arg)
{
	weft_task_t t[64];
	struct weft_metrics m0 = metrics_now();
	for (int i = 0; i < 64; i++)
		ck_assert_int_eq(weft_spawn(&t[i], busy_ms, NULL), 0);
	for (int i = 0; i < 64; i++)
		ck_assert_int_eq(weft_join(t[i], NULL), 0);
	struct weft_metrics m1 = metrics_now();
	ck_assert_uint_gt(m1.steals, m0.steals);
	ck_assert_uint_ge(m1.tasks_stolen - m0.tasks_stolen,
			  m1.steals - m0.steals);
	ck_assert_uint_gt(m1.worker_parks, 0); /* the others idled first */
	return NULL;
}

START_TEST(metrics_steals)
{
	weft_test_run(steal_main, NULL, 2);
}
END_TEST

/* Every sampled transition: a task yielding alone on its worker goes
 * through the scheduler each time, and each of those yields is timed. */
static void *yield_main(void *arg)
{
	long n = SCALED(10000);
	struct weft_metrics m0 = metrics_now();
	for (long i = 0; i < n; i++)
		ck_assert_int_eq(weft_yield(), 0);
	struct weft_metrics m1 = metrics_now();
	uint64_t timed = histogram_total(m1.latency_ns) -
			 histogram_total(m0.latency_ns);
	ck_assert_uint_ge(m1.task_runs - m0.task_runs, (uint64_t)n);
	ck_assert_uint_eq(timed, (uint64_t)n);
	/* Short waits: nothing else runs, so none took a second. */
	for (int i = 30; i < WEFT_LATENCY_BUCKETS; i++)
		ck_assert_uint_eq(m1.latency_ns[i], 0);
	return NULL;
}

START_TEST(metrics_latency_histogram)
{
	weft_test_run(yield_main, NULL, 1);
}
END_TEST

static void *sleep_long(void *arg)
{
	weft_sleep(60 * WEFT_SEC);
	return NULL;
}

static void *recv_one(void *arg)
{
	char c;
	return (void *)(intptr_t)weft_recv(*(int *)arg, &c, 1, 0);
}

static atomic_int job_go;

static void *job_wait(void *arg)
{
	while (!atomic_load(&job_go))
		usleep(1000);
	return NULL;
}

static void *blocking_job(void *arg)
{
	return (void *)(intptr_t)weft_blocking(job_wait, NULL, NULL);
}

/* Gauges: a timer armed, an I/O in flight, a blocking job running. */
static void *gauges_main(void *arg)
{
	int sv[2];
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	struct weft_metrics m0 = metrics_now();
	weft_task_t sleeper, reader, job;
	ck_assert_int_eq(weft_spawn(&sleeper, sleep_long, NULL), 0);
	ck_assert_int_eq(weft_spawn(&reader, recv_one, &sv[0]), 0);
	ck_assert_int_eq(weft_spawn(&job, blocking_job, NULL), 0);
	struct weft_metrics m;
	do {
		weft_sleep(WEFT_MSEC);
		m = metrics_now();
	} while (!m.timers_armed || !m.io_in_flight || !m.blocking_busy);
	ck_assert_uint_gt(m.io_submitted, m0.io_submitted);
	ck_assert_uint_ge(m.blocking_threads, 1);
	ck_assert_int_eq(write(sv[1], "x", 1), 1);
	ck_assert_int_eq(weft_join(reader, NULL), 0);
	m = metrics_now();
	ck_assert_uint_gt(m.io_completed, m0.io_completed);
	atomic_store(&job_go, 1);
	ck_assert_int_eq(weft_join(job, NULL), 0);
	ck_assert_int_eq(weft_cancel(sleeper), 0);
	ck_assert_int_eq(weft_join(sleeper, NULL), 0);
	close(sv[0]);
	close(sv[1]);
	return NULL;
}

START_TEST(metrics_gauges)
{
	weft_test_run(gauges_main, NULL, 2);
}
END_TEST

static void *bad_metrics_main(void *arg)
{
	struct weft_worker_metrics w;
	ck_assert_int_eq(weft_metrics(NULL), -EINVAL);
	ck_assert_int_eq(weft_worker_metrics(0, NULL), -EINVAL);
	ck_assert_int_eq(weft_worker_metrics(-1, &w), -EINVAL);
	ck_assert_int_eq(weft_worker_metrics(2, &w), -EINVAL);
	ck_assert_int_eq(weft_worker_metrics(1, &w), 0);
	ck_assert_int_eq(metrics_now().workers, 2);
	return NULL;
}

START_TEST(metrics_bad_input)
{
	struct weft_metrics m;
	struct weft_worker_metrics w;
	ck_assert_int_eq(weft_metrics(&m), -ESRCH);
	ck_assert_int_eq(weft_worker_metrics(0, &w), -ESRCH);
	weft_test_run(bad_metrics_main, NULL, 2);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("observe");
	TCase *tc = tcase_create("observe");
	tcase_set_timeout(tc, 300);
	tcase_add_test(tc, thread_names);
	tcase_add_test(tc, metrics_count_spawns);
	tcase_add_test(tc, metrics_steals);
	tcase_add_test(tc, metrics_latency_histogram);
	tcase_add_test(tc, metrics_gauges);
	tcase_add_test(tc, metrics_bad_input);
	suite_add_tcase(s, tc);
	return weft_test_main(s);
}
