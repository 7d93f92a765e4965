/*
 * Valgrind's memcheck cannot see the kernel writing into a buffer through
 * io_uring, and would call every byte received uninitialised. Reads tell it
 * what they filled. Without valgrind's headers this compiles to nothing.
 */
#ifndef WEFT_IO_MEMCHECK_H
#define WEFT_IO_MEMCHECK_H

#include <sys/types.h>
#include <sys/uio.h>

#include "runtime/valgrind.h" /* WEFT_MARK_FILLED */

/* Marks the first r bytes of buf as written; returns r. For a call that
 * never reports more than it was given (a file read). */
static inline ssize_t weft__filled(void *buf, ssize_t r)
{
	if (r > 0)
		WEFT_MARK_FILLED(buf, (size_t)r);
	return r;
}

/* The same for a receive into len bytes, which may report more: with
 * MSG_TRUNC a datagram's whole length. Only the first len bytes were
 * filled; marking past them would tell memcheck that the caller's next
 * bytes (a redzone too) are defined, hiding reads and overruns there.
 * Returns r. */
static inline ssize_t weft__filled_within(void *buf, size_t len, ssize_t r)
{
	if (r > 0)
		WEFT_MARK_FILLED(buf, (size_t)r < len ? (size_t)r : len);
	return r;
}

/* The same over an iovec: no more than the iovec holds, whatever r says
 * (MSG_TRUNC). */
static inline ssize_t weft__filled_iov(const struct iovec *iov, int n,
				       ssize_t r)
{
	size_t left = r > 0 ? (size_t)r : 0;
	for (int i = 0; i < n && left; i++) {
		size_t k = iov[i].iov_len < left ? iov[i].iov_len : left;
		WEFT_MARK_FILLED(iov[i].iov_base, k);
		left -= k;
	}
	return r;
}

#endif
