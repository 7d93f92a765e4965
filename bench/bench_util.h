/* Shared by the weft benchmark programs: sizes from argv, the RESULT line. */
#ifndef WEFT_BENCH_UTIL_H
#define WEFT_BENCH_UTIL_H

#include <stdio.h>
#include <stdlib.h>
#include "weft.h"

static inline long bench_arg(int argc, char **argv, int i, long dflt)
{
	return argc > i ? atol(argv[i]) : dflt;
}

static inline void bench_result(const char *name, long ops, int64_t ns)
{
	double secs = (double)ns / 1e9;
	printf("RESULT name=%s impl=weft ops=%ld secs=%.6f ns_per_op=%.2f\n",
	       name, ops, secs, (double)ns / (double)ops);
}

/* weft_spawn, or the benchmark ends: its figures would mean nothing. */
static inline void bench_spawn(weft_task_t *t, weft_fn fn, void *arg)
{
	if (weft_spawn(t, fn, arg)) {
		fprintf(stderr, "weft_spawn failed\n");
		abort();
	}
}

/* Runs n tasks of fn(NULL) side by side and joins them all: returns the
 * nanoseconds from the first spawn to the last join. */
static inline int64_t bench_spawn_all(long n, weft_fn fn)
{
	weft_task_t *t = malloc(sizeof(*t) * (size_t)n);
	if (!t)
		abort();
	int64_t t0 = weft_now();
	for (long i = 0; i < n; i++)
		bench_spawn(&t[i], fn, NULL);
	for (long i = 0; i < n; i++)
		if (weft_join(t[i], NULL))
			abort();
	int64_t ns = weft_now() - t0;
	free(t);
	return ns;
}

/* Runs main on a runtime with the default (or $WEFT_WORKERS) workers. */
static inline int bench_run(weft_fn main, void *arg, int workers)
{
	struct weft_config cfg = { .workers = workers };
	int r = weft_run(main, arg, &cfg, NULL);
	if (r)
		fprintf(stderr, "weft_run: %d\n", r);
	return r ? 1 : 0;
}

#endif
