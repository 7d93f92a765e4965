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
