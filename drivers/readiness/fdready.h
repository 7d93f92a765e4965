/*
 * Readiness of the fds tasks wait on, under either driver: one record
 * per fd number, made on first use and kept, holding the fd's epoll
 * registration (one per fd, both directions, edge-triggered, kept across
 * calls), a readiness tick per direction, and the tasks waiting for each
 * direction (see fdready.c for the invariants).
 *
 * A call makes its attempt first and waits only on EAGAIN:
 *
 *   static long try_recv(int fd, void *arg) { ...one attempt, -errno... }
 *   return weft__fdready_call(fd, WEFT__READ, try_recv, &args, len);
 */
#ifndef WEFT_DRIVERS_READINESS_FDREADY_H
#define WEFT_DRIVERS_READINESS_FDREADY_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

enum weft__dir { WEFT__READ, WEFT__WRITE };

/* One attempt of a non-blocking call: its result, or -errno (-EAGAIN: try
 * again once the fd is ready). */
typedef long (*weft__try_fn)(int fd, void *arg);

/* From a task: registers fd in the poll set on its first use
 * (setting O_NONBLOCK on it), then runs try until it returns anything but
 * -EAGAIN, waiting for dir's readiness in between. want: the bytes try
 * asks to move, if it consumes them (0 otherwise: a peek, a connect, an
 * accept); on a TCP socket a shorter result shows it drained or full,
 * and the next call in dir waits for an edge before trying. Returns
 * try's result, or -ECANCELED / -ETIMEDOUT (the task's), -EBADF (fd closed
 * by weft_close meanwhile), -EMFILE (fd beyond the table's 2M), -ENOMEM,
 * or epoll_ctl's error. An fd epoll cannot watch (a regular file) just
 * runs try, once. call names the user's call for weft_dump while the task
 * waits. fd >= 0. */
long weft__fdready_call(int fd, enum weft__dir dir, weft__try_fn try, void *arg,
			size_t want, const char *call);

/* weft_close: wakes every task waiting on fd with -EBADF,
 * drops its registration, closes it. Any thread. Returns 0 or -errno. */
int weft__fdready_close(int fd);

/* fd is a new descriptor of weft's own (accepted, or a new socket): drops
 * what an earlier fd of that number left, if it was closed behind weft's
 * back with close(2). */
void weft__fdready_fresh(int fd);

/* An epoll event for a registered fd (its epoll data and event bits). On
 * the worker whose harvest took it. */
void weft__fdready_event(uint64_t data, uint32_t events);

#endif
