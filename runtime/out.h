/*
 * Reports written to an fd off the workers (weft_dump, stall reports):
 * text is gathered in the caller's buffer and written out when it is
 * nearly full and at the end. An O_NONBLOCK fd (a socket or pipe weft's
 * epoll driver made so, and every fd sharing its file, stderr among them
 * when it is the same pipe as stdout) is waited for as a blocking one
 * would be: these writers run on a thread of their own, the caller's or
 * the monitor's, never a worker's. The first write error is kept in err,
 * and nothing more is written after it.
 */
#ifndef WEFT_RUNTIME_OUT_H
#define WEFT_RUNTIME_OUT_H

#include <stddef.h>

struct weft__out {
	int fd;
	int err;     /* 0, or the -errno of the first failed write */
	size_t len;  /* bytes gathered in buf */
	size_t size; /* buf's size; at least 1 KiB */
	char *buf;
};

/* Appends printf-style; a piece longer than what is left is cut short. */
__attribute__((format(printf, 2, 3))) void weft__out_put(struct weft__out *o,
							 const char *fmt, ...);
/* Appends s, without printf. */
void weft__out_put_str(struct weft__out *o, const char *s);
/* Writes out what is gathered. */
void weft__out_flush(struct weft__out *o);

#endif
