/*
 * line_floor [round_trips=2000000] [cpu_a=0] [cpu_b=1]: what one cache line
 * costs to cross between two CPUs, without weft. Two threads, pinned to
 * cpu_a and cpu_b, pass a counter back and forth through one line: each
 * writes the next value and waits to read the other's. ns_per_op is one
 * round trip, so two crossings.
 *
 * The contended benchmarks (mutex, channel, select) move their lock's and
 * queue's lines between the workers' CPUs, and on a VM that price depends
 * on where the host put the two vCPUs. In one session (bench/README.md,
 * seventeenth) a round trip took 450-480 ns for an hour, while mutex ran
 * at 31-34 ns an operation, then 87-102 ns, while it ran at 19-21 ns. Not
 * run by bench/run: run it beside them to read their cells.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <time.h>
#include "bench_util.h" /* bench_arg only: no runtime runs here */

static long round_trips;
static _Atomic long line __attribute__((aligned(64)));

static cpu_set_t only(int cpu)
{
	cpu_set_t set;

	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	return set;
}

/* Waits for the line to read want. acquire/release: each side's store
 * happens before the other's load that sees it, the order a lock's hand
 * between CPUs has. */
static void await_value(long want)
{
	while (atomic_load_explicit(&line, memory_order_acquire) != want)
		;
}

static void *answerer(void *arg)
{
	(void)arg;
	for (long i = 0; i < round_trips; i++) {
		await_value(2 * i + 1);
		atomic_store_explicit(&line, 2 * i + 2, memory_order_release);
	}
	return NULL;
}

int main(int argc, char **argv)
{
	struct timespec t0, t1;
	pthread_attr_t attr;
	pthread_t t;
	long cpu_a = bench_arg(argc, argv, 2, 0);
	long cpu_b = bench_arg(argc, argv, 3, 1);

	round_trips = bench_arg(argc, argv, 1, 2000000);
	if (round_trips < 1 || cpu_a < 0 || cpu_b < 0 || cpu_a == cpu_b ||
	    cpu_a >= CPU_SETSIZE || cpu_b >= CPU_SETSIZE)
		return 2;
	cpu_set_t a = only((int)cpu_a), b = only((int)cpu_b);
	/* The answerer starts on its CPU, or not at all. */
	if (pthread_setaffinity_np(pthread_self(), sizeof(a), &a) ||
	    pthread_attr_init(&attr) ||
	    pthread_attr_setaffinity_np(&attr, sizeof(b), &b) ||
	    pthread_create(&t, &attr, answerer, NULL)) {
		fprintf(stderr, "line_floor: cannot run on CPUs %ld and %ld\n",
			cpu_a, cpu_b);
		return 1;
	}
	pthread_attr_destroy(&attr);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (long i = 0; i < round_trips; i++) {
		atomic_store_explicit(&line, 2 * i + 1, memory_order_release);
		await_value(2 * i + 2);
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	pthread_join(t, NULL);
	double secs = (double)(t1.tv_sec - t0.tv_sec) +
		      (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
	printf("RESULT name=line_floor impl=kernel ops=%ld secs=%.6f "
	       "ns_per_op=%.2f\n",
	       round_trips, secs, secs * 1e9 / (double)round_trips);
	return 0;
}
