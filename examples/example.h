/*
 * What the seed's six programs share: asyncio.run() with a -s option, and
 * asyncio.wait([...]) over a few tasks.
 */
#ifndef WEFT_EXAMPLE_H
#define WEFT_EXAMPLE_H

#include <stdint.h>
#include <weft.h>

/* An example's body. It runs inside a task (as an async def main would), and
 * its sleeps last secs seconds where the seed sleeps 3. Returns 0 or -errno. */
typedef int (*example_fn)(double secs);

int example_lock(double secs);
int example_event(double secs);
int example_condition(double secs);
int example_semaphore(double secs);
int example_queue(double secs);
int example_future(double secs);

/* A task returns its error as a pointer, as the kernel's ERR_PTR does. */
#define ERR_PTR(err) WEFT_ERR_PTR(err)
#define PTR_ERR(ptr) WEFT_PTR_ERR(ptr)

/* Seconds (fractional) to the nanoseconds weft_sleep takes. */
static inline int64_t secs_ns(double secs)
{
	return (int64_t)(secs * WEFT_SEC);
}

/*
 * asyncio.gather(fn1(arg1), fn2(arg2), ...) over a weft_group: spawns each
 * task of the NULL-terminated list of (weft_fn, void *) pairs and waits for
 * them all. Returns 0, or the first error a task returned (as ERR_PTR),
 * which cancels the others, or met.
 */
int gather(weft_fn fn, void *arg, ...);

/*
 * main() of an example: parses [-s SECONDS] [-w WORKERS] and runs fn(secs)
 * as the main task of weft_run (asyncio.run). Returns the exit status.
 */
int example_main(int argc, char **argv, example_fn fn, double default_secs);

#endif
