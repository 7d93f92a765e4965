/* The examples' shared main() and gather(): see example.h. */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "example.h"

int gather(weft_fn fn, void *arg, ...)
{
	struct weft_group g = WEFT_GROUP_INIT(g);
	int err = 0;
	va_list ap;

	va_start(ap, arg);
	while (fn && !err) {
		err = weft_group_spawn(&g, fn, arg);
		fn = va_arg(ap, weft_fn);
		if (fn)
			arg = va_arg(ap, void *);
	}
	va_end(ap);
	/* The tasks share data on our stack: if a spawn failed, the others
	 * stop too, and all are waited for, whatever happens. */
	if (err)
		weft_group_cancel(&g);
	int r = weft_group_wait(&g);
	return err ? err : r;
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

/* To stdout with status 0 when asked for (-h), as getopt programs do; to
 * stderr with status 2 for a bad command line. */
static int usage(FILE *out, const char *prog, double secs)
{
	fprintf(out,
		"usage: %s [-s SECONDS] [-w WORKERS]\n"
		"  -s SECONDS  how long the seed's 3-second sleeps last "
		"(fractional; default %g)\n"
		"  -w WORKERS  worker threads (default: $WEFT_WORKERS, "
		"else one per CPU)\n",
		prog, secs);
	return out == stdout ? 0 : 2;
}

/* Whether s begins as a number written for people does: a digit or a
 * point, not the blanks or sign strtol and strtod skip. */
static bool starts_number(const char *s)
{
	return (*s >= '0' && *s <= '9') || *s == '.';
}

int example_main(int argc, char **argv, example_fn fn, double default_secs)
{
	struct run run = { fn, default_secs };
	struct weft_config cfg = { 0 };
	void *res;
	char *end;
	long workers;
	int opt, r;

	while ((opt = getopt(argc, argv, "s:w:h")) != -1) {
		switch (opt) {
		case 's':
			/* end == optarg: no digits at all, as in -s "". A
			 * number begins with a digit or a point: strtod
			 * alone would take blanks and a sign first. */
			run.secs = strtod(optarg, &end);
			if (!starts_number(optarg) || *end || end == optarg ||
			    !isfinite(run.secs) || run.secs < 0 ||
			    run.secs > 3600)
				return usage(stderr, argv[0], default_secs);
			break;
		case 'w':
			/* Checked as a long: cast to int first, 4294967298
			 * would pass as 2. */
			workers = strtol(optarg, &end, 10);
			if (!starts_number(optarg) || *end || workers < 1 ||
			    workers > WEFT_WORKERS_MAX)
				return usage(stderr, argv[0], default_secs);
			cfg.workers = (int)workers;
			break;
		case 'h':
			return usage(stdout, argv[0], default_secs);
		default:
			return usage(stderr, argv[0], default_secs);
		}
	}
	if (optind != argc)
		return usage(stderr, argv[0], default_secs);

	/* Lines from tasks on several threads: one write each, in order. */
	setvbuf(stdout, NULL, _IOLBF, 0);
	r = weft_run(run_main, &run, &cfg, &res);
	if (r == -ENOSYS)
		return 1; /* no io_uring: weft said why, in one line */
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
