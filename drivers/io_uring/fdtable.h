/*
 * The fd table: which in-flight io_uring operations use which descriptor,
 * so that weft_close() can wake the tasks waiting on one it closes (see
 * fdtable.c for why and its invariants).
 */
#ifndef WEFT_DRIVERS_IO_URING_FDTABLE_H
#define WEFT_DRIVERS_IO_URING_FDTABLE_H

struct weft__io;

/* Registers / unregisters io under io->fd (weft__io_begin / _wait). */
void weft__fdtable_add(struct weft__io *io);
void weft__fdtable_del(struct weft__io *io);

/* Aborts every op registered under fd with -EBADF, then closes fd with
 * weft__fdready_close (which also wakes the tasks waiting for its
 * readiness), both under the stripe lock. Returns 0 or -errno. */
int weft__fdtable_close(int fd);

#endif
