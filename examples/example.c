/* The examples' shared main() and gather(): see example.h. */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "example.h"

#define GATHER_MAX 8

int gather(weft_fn fn, void *arg, ...)
{
	weft_task_t tasks[GATHER_MAX];
	int n = 0, err = 0;
	va_list ap;

	va_start(ap, arg);
	for (; fn && n < GATHER_MAX; n++) {
		err = weft_spawn(&tasks[n], fn, arg);
		if (err)
			break;
		fn = va_arg(ap, weft_fn);
		if (fn)
			arg = va_arg(ap, void *);
	}
	va_end(ap);
	if (fn && !err)
		err = -E2BIG; /* spawned none beyond GATHER_MAX */

	/*
	 * The tasks share data on our stack, so none may outlive this call.
	 * If a spawn failed, cancel those already running, and join them all
	 * the same. (A join fails only when the caller itself was cancelled:
	 * then it cannot wait at all, so gather's caller must not be.)
	 */
	for (int i = 0; err && i < n; i++)
		weft_cancel(tasks[i]);
	for (int i = 0; i < n; i++) {
		void *res;
		int r = weft_join(tasks[i], &res);

		if (!r)
			r = PTR_ERR(res);
		if (!err)
			err = r;
	}
	return err;
}

struct run {
	example_fn fn;
	double secs;
};

static void *run_main(void *arg)
{
	struct run *run = arg;

	return ERR_PTR(run->fn(run->secs));
}

static int usage(const char *prog, double secs)
{
	fprintf(stderr,
		"usage: %s [-s SECONDS] [-w WORKERS]\n"
		"  -s SECONDS  how long the seed's 3-second sleeps last "
		"(fractional; default %g)\n"
		"  -w WORKERS  worker threads (default: $WEFT_WORKERS, "
		"else one per CPU)\n", prog, secs);
	return 2;
}

int example_main(int argc, char **argv, example_fn fn, double default_secs)
{
	struct run run = { fn, default_secs };
	struct weft_config cfg = { 0 };
	void *res;
	char *end;
	int opt, r;

	while ((opt = getopt(argc, argv, "s:w:h")) != -1) {
		switch (opt) {
		case 's':
			run.secs = strtod(optarg, &end);
			if (*end || !isfinite(run.secs) || run.secs < 0 ||
			    run.secs > 3600)
				return usage(argv[0], default_secs);
			break;
		case 'w':
			cfg.workers = (int)strtol(optarg, &end, 10);
			if (*end || cfg.workers < 1)
				return usage(argv[0], default_secs);
			break;
		default:
			return usage(argv[0], default_secs);
		}
	}
	if (optind != argc)
		return usage(argv[0], default_secs);

	/* Lines from tasks on several threads: one write each, in order. */
	setvbuf(stdout, NULL, _IOLBF, 0);
	r = weft_run(run_main, &run, &cfg, &res);
	if (r == -ENOSYS)
		return 1;	/* no io_uring: weft said why, in one line */
	if (r) {
		fprintf(stderr, "%s: weft_run: %s\n", argv[0], strerror(-r));
		return 1;
	}
	r = PTR_ERR(res);
	if (r) {
		fprintf(stderr, "%s: %s\n", argv[0], strerror(-r));
		return 1;
	}
	return 0;
}
