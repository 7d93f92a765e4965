/*
 * fault_floor [stacks=1000000] [guard=1]: the kernel's share of sleep_many,
 * without weft. One thread per CPU lays out stacks as weft's pool does
 * (64 KiB each under a 4 KiB guard, in slabs of 256), each in a mapping
 * of its own so that no lock of one mapping is shared, installs the guards
 * with one process_madvise per slab when guard=1, and writes one word at
 * the top of each stack: the page every parked task needs. The wall time is what a million tasks asleep at once
 * cost before any scheduling, so sleep_many cannot finish sooner than its
 * sleep plus this.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#ifndef MADV_GUARD_INSTALL
#define MADV_GUARD_INSTALL 102
#endif

#define PAGE 4096UL
#define GUARD PAGE
#define EACH (GUARD + 64 * 1024UL)
#define SLAB 256

static long slabs_each; /* per thread */
static int pidfd = -1, with_guards;

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void guard_slab(char *m)
{
	struct iovec r[SLAB];
	for (int i = 0; i < SLAB; i++)
		r[i] = (struct iovec){ m + i * EACH, GUARD };
	if (pidfd >= 0 &&
	    syscall(SYS_process_madvise, pidfd, r, (size_t)SLAB,
		    MADV_GUARD_INSTALL, 0) == (long)(SLAB * GUARD))
		return;
	for (int i = 0; i < SLAB; i++)
		madvise(r[i].iov_base, GUARD, MADV_GUARD_INSTALL);
}

static void *fault_slabs(void *region)
{
	for (long s = 0; s < slabs_each; s++) {
		char *m = (char *)region + s * SLAB * EACH;
		if (with_guards)
			guard_slab(m);
		for (int i = 0; i < SLAB; i++) /* a free-list node's store */
			*(volatile long *)(m + (i + 1) * EACH - 16) = i;
	}
	return NULL;
}

int main(int argc, char **argv)
{
	long stacks = argc > 1 ? atol(argv[1]) : 1000000;
	int nthreads = (int)sysconf(_SC_NPROCESSORS_ONLN);
	with_guards = argc > 2 ? atoi(argv[2]) : 1;
	if (stacks <= 0 || nthreads <= 0) {
		fprintf(stderr, "usage: %s [stacks=1000000] [guard=1]\n",
			argv[0]);
		return 2;
	}
	slabs_each = (stacks + SLAB * nthreads - 1) / (SLAB * nthreads);
	size_t len = (size_t)slabs_each * SLAB * EACH;
	char **region = calloc((size_t)nthreads, sizeof(*region));
	pthread_t *th = calloc((size_t)nthreads, sizeof(*th));
	for (int i = 0; i < nthreads; i++) {
		/* A page apart, or the kernel merges them into one mapping. */
		region[i] = mmap(NULL, len + PAGE, PROT_READ | PROT_WRITE,
				 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
				 -1, 0);
		if (region[i] == MAP_FAILED) {
			perror("mmap");
			return 1;
		}
		munmap(region[i] + len, PAGE);
	}
	pidfd = (int)syscall(SYS_pidfd_open, getpid(), 0);

	double t0 = now();
	for (int i = 1; i < nthreads; i++)
		pthread_create(&th[i], NULL, fault_slabs, region[i]);
	fault_slabs(region[0]);
	for (int i = 1; i < nthreads; i++)
		pthread_join(th[i], NULL);
	double secs = now() - t0;

	long n = slabs_each * SLAB * nthreads;
	printf("%ld stack pages%s on %d threads in %.3f s: %.2f us each, "
	       "%.2f us of wall time\n",
	       n, with_guards ? " and guards" : "", nthreads, secs,
	       secs * 1e6 * nthreads / (double)n, secs * 1e6 / (double)n);
	printf("RESULT name=fault_floor impl=kernel ops=%ld secs=%.3f "
	       "ns_per_op=%.1f\n",
	       n, secs, secs * 1e9 / (double)n);
	for (int i = 0; i < nthreads; i++)
		munmap(region[i], len);
	free(region);
	free(th);
	return 0;
}
