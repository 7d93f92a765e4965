/*
 * sleep_many [tasks=1000000] [sleep_ms=1000]: spawns `tasks` tasks that each
 * sleep sleep_ms at once, and waits for them all. Measures the cost of a
 * parked task (spawn, timer, wake, exit) and its memory.
 *
 * The same program in Go (goroutines + WaitGroup) and Tokio (tokio::spawn +
 * JoinSet) takes ~3 s at the defaults; the floor is sleep_ms itself.
 */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <weft.h>

static long sleep_ns, ntasks;
static atomic_long started, done;
static _Atomic int64_t all_asleep; /* when the last task began its sleep */

static void *sleeper(void *arg)
{
	if (atomic_fetch_add_explicit(&started, 1, memory_order_relaxed) + 1 ==
	    ntasks)
		atomic_store(&all_asleep, weft_now());
	weft_sleep(sleep_ns);
	atomic_fetch_add_explicit(&done, 1, memory_order_relaxed);
	return NULL;
}

static long peak_rss_kb(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return ru.ru_maxrss;
}

static void *bench_main(void *arg)
{
	long n = *(long *)arg;
	weft_task_t *t = malloc((size_t)n * sizeof(*t));
	struct weft_spawn_opts opts = { .name = "sleeper" };
	long base_kb = peak_rss_kb();
	int64_t t0 = weft_now(), t1, t2;

	if (!t)
		return (void *)1;
	for (long i = 0; i < n; i++) {
		int r = weft_spawn_opts(&t[i], sleeper, NULL, &opts);

		if (r) {
			fprintf(stderr, "spawn %ld failed: %d\n", i, r);
			return (void *)1;
		}
	}
	t1 = weft_now();
	for (long i = 0; i < n; i++)
		if (weft_join(t[i], NULL))
			abort();
	t2 = weft_now();
	free(t);
	if (atomic_load(&done) != n) {
		fprintf(stderr, "only %ld of %ld woke\n", atomic_load(&done),
			n);
		return (void *)1;
	}
	double secs = (double)(t2 - t0) / 1e9;
	long rss = peak_rss_kb();
	printf("spawned in %.3f s, all asleep after %.3f s, all done after "
	       "%.3f s (%d workers)\n",
	       (double)(t1 - t0) / 1e9,
	       (double)(atomic_load(&all_asleep) - t0) / 1e9, secs,
	       weft_workers());
	printf("peak rss %ld KiB: %.0f bytes per task over the %ld KiB base\n",
	       rss, (double)(rss - base_kb) * 1024.0 / (double)n, base_kb);
	printf("RESULT name=sleep_many impl=weft ops=%ld secs=%.3f "
	       "ns_per_op=%.1f rss_kb=%ld\n",
	       n, secs, (double)(t2 - t0) / (double)n, rss);
	return NULL;
}

int main(int argc, char **argv)
{
	long n = argc > 1 ? atol(argv[1]) : 1000000;
	long ms = argc > 2 ? atol(argv[2]) : 1000;
	void *res = NULL;
	int r;

	if (n <= 0 || ms < 0) {
		fprintf(stderr, "usage: %s [tasks=1000000] [sleep_ms=1000]\n",
			argv[0]);
		return 2;
	}
	sleep_ns = ms * WEFT_MSEC;
	ntasks = n;
	r = weft_run(bench_main, &n, NULL, &res);
	if (r) {
		fprintf(stderr, "weft_run: %d\n", r);
		return 1;
	}
	return res ? 1 : 0;
}
