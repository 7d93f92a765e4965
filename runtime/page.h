/*
 * The kernel's page size. Linux on aarch64 runs with 4, 16 or 64 KiB pages,
 * so stacks, their guards, slab carving and the overflow handler take the
 * size from here, never from a constant: sysconf(_SC_PAGESIZE), read once.
 *
 * Tests force a larger size to run the 16 and 64 KiB arithmetic on a 4 KiB
 * machine: any power-of-two multiple of the real page works, since every
 * length and offset is then whole pages of both.
 */
#ifndef WEFT_RUNTIME_PAGE_H
#define WEFT_RUNTIME_PAGE_H

#include <stddef.h>

size_t weft__page_size(void);

/* Tests only, and only while no runtime runs: bytes is the page size from
 * now on (0: the kernel's again). */
void weft__page_size_force(size_t bytes);

#endif
