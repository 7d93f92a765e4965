/*
 * weft buffered streams over a connected descriptor (asyncio's StreamReader
 * and StreamWriter, Go's bufio). Part of <weft.h>.
 *
 * A stream wraps a connected socket (or pipe) fd with a read buffer and a
 * write buffer. It is built on weft_recv (weft_readv over a pipe),
 * weft_send, weft_writev, weft_shutdown and weft_close only, so it works
 * on every I/O driver, from tasks and from plain threads (where the calls
 * block the thread and deadlines do not exist).
 *
 * On a plain thread, two more errors stand for -ETIMEDOUT wherever the
 * calls below list it, and act as it does (nothing taken, unsent bytes
 * kept): -EAGAIN when the socket's SO_RCVTIMEO (a read) or SO_SNDTIMEO (a
 * write or flush) runs out, as recv(2) and send(2) say; and over a
 * blocking descriptor -EINTR when a signal handler interrupts the wait
 * (one installed without SA_RESTART, or any while such a timeout is set:
 * signal(7)). An O_NONBLOCK descriptor (every socket weft makes while a
 * runtime runs) waits in poll(2) instead, through signals.
 *
 * Reading. The read calls return what they took out of the stream, or fail
 * having taken nothing: on -ECANCELED, -ETIMEDOUT (-EAGAIN, -EINTR),
 * -EMSGSIZE, -ENODATA or an error of the socket, every byte received so
 * far stays buffered and the next call sees it again. In particular:
 *   - a line longer than the stream's limit fails with -EMSGSIZE (asyncio's
 *     LimitOverrunError) and stays readable: weft_stream_read takes it out
 *     piecewise, or the caller closes;
 *   - when the peer closes before the delimiter or before n bytes arrive,
 *     the call fails with -ENODATA (asyncio's IncompleteReadError) and
 *     weft_stream_buffered says how many bytes arrived, weft_stream_read
 *     takes them (IncompleteReadError.partial). With nothing buffered at
 *     the end of the stream the calls return 0 instead: a clean end.
 *
 * Writing. weft_stream_write copies into the write buffer (and sends once
 * it is full); weft_stream_flush sends what is buffered with one send
 * (weft_send; weft_writev over a pipe), looping only over short sends. On
 * -ECANCELED or -ETIMEDOUT (-EAGAIN, -EINTR) the bytes not yet sent stay
 * buffered, in order, for the next flush: nothing is lost or sent twice
 * (the write buffer grows to hold them, and goes back to its usual size
 * once they are sent). Any other send error (-EPIPE, -ECONNRESET, ...) is
 * final: the buffered bytes are dropped and every later write or flush
 * returns that error (Go's bufio.Writer does the same). So is a
 * -ETIMEDOUT of the kernel's own (TCP_USER_TIMEOUT, retransmissions given
 * up: a dead connection), told from a deadline's by the task's deadline
 * not having passed.
 *
 * A stream is used by one task (or thread) at a time; a reader task and a
 * writer task may share one stream (the two halves touch different fields)
 * as long as only one of them closes it, once the other has returned from
 * its last call: close flushes and lingers (both halves' fields) and frees
 * the buffers the other half's call may still be filling. To end the other
 * half's wait, weft_shutdown(fd, SHUT_RDWR) (its read returns the end of
 * the stream, its write -EPIPE), join it, then close.
 */
#ifndef WEFT_STREAM_H
#define WEFT_STREAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include "weft/must_check.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The longest line (delimiter included) readuntil accepts by default,
 * asyncio's 64 KiB. */
#define WEFT_STREAM_LIMIT (64u * 1024)
/* Bytes the write buffer holds before a write sends them. */
#define WEFT_STREAM_WBUF (16u * 1024)

/* Fields are internal. The buffers are allocated on first use. */
struct weft_stream {
	int fd;
	size_t limit;
	/* read side: bytes rbuf[rpos, rpos + rlen) */
	char *rbuf;
	size_t rcap, rpos, rlen;
	bool eof;             /* the peer closed: recv returned 0 */
	bool read_not_socket; /* a recv said ENOTSOCK: readv from then on */
	/* write side: bytes wbuf[0, wlen) */
	char *wbuf;
	size_t wcap, wlen;
	int werror;      /* a final send error, or 0 */
	bool not_socket; /* a send said ENOTSOCK: writev from then on */
};

/* Initialises s over the connected fd; limit is the longest line
 * readuntil returns (0: WEFT_STREAM_LIMIT). The stream does not own the fd
 * until weft_stream_close. Allocates nothing. Returns 0, -EINVAL (NULL s),
 * -EBADF (fd < 0). */
int weft_stream_init(struct weft_stream *s, int fd, size_t limit);

/* ---- reading (asyncio StreamReader) ---------------------------------- */

/* Reads until delim (dlen bytes, 1 <= dlen <= limit) and takes the bytes up
 * to and including it out of the stream; *line points to them, valid until
 * the next call on the stream (Go's bufio.Reader.ReadSlice). Returns the
 * length (delimiter included); 0 at the end of the stream with nothing
 * buffered; -EMSGSIZE if limit bytes arrived without a delimiter; -ENODATA
 * if the stream ended after some bytes without one; -ENOMEM; -EINVAL (NULL
 * argument, bad dlen); -ECANCELED, -ETIMEDOUT, or the socket's error
 * (-ECONNRESET, ...). On any failure nothing was taken. */
WEFT_MUST_CHECK ssize_t weft_stream_readuntil(struct weft_stream *s,
					      const void *delim, size_t dlen,
					      const char **line);

/* weft_stream_readuntil(s, "\n", 1, line). */
WEFT_MUST_CHECK ssize_t weft_stream_readline(struct weft_stream *s,
					     const char **line);

/* Reads exactly n bytes into buf (through the read buffer, which grows to
 * n if it must). Returns n (0 for n == 0); 0 at the end of the stream with
 * nothing buffered; -ENODATA if it ended after fewer than n (they stay
 * buffered); -ENOMEM; -EINVAL (NULL s, NULL buf with n, n past SSIZE_MAX);
 * -ECANCELED, -ETIMEDOUT, or the socket's error. On any failure nothing
 * was taken. */
WEFT_MUST_CHECK ssize_t weft_stream_readexactly(struct weft_stream *s,
						void *buf, size_t n);

/* Reads at most n bytes: what is buffered, else what one receive brings.
 * Returns the count, 0 at the end of the stream (or for n == 0); -EINVAL;
 * -ENOMEM; -ECANCELED, -ETIMEDOUT, or the socket's error. */
WEFT_MUST_CHECK ssize_t weft_stream_read(struct weft_stream *s, void *buf,
					 size_t n);

/* Bytes received and not yet taken. */
size_t weft_stream_buffered(const struct weft_stream *s);

/* Looks at the bytes received and not yet taken without taking them (Go's
 * bufio.Reader.Peek, Tokio's BufReader::buffer): sets *p to them (NULL if
 * there are none), valid until the next call on the stream, and returns
 * their count. A server that answers pipelined requests together uses it
 * to see whether the next request is whole before it waits on a read
 * with answers unsent. */
size_t weft_stream_peek(const struct weft_stream *s, const char **p);

/* Whether the peer has closed its side (a receive returned 0); what is
 * buffered can still be read. */
bool weft_stream_at_eof(const struct weft_stream *s);

/* ---- writing (asyncio StreamWriter) ---------------------------------- */

/* Buffers len bytes; when they do not fit, sends the buffer and them
 * together with one weft_writev (looping over short sends). Returns len;
 * -ECANCELED / -ETIMEDOUT (all of buf was taken: what was not sent is
 * buffered for the next flush); -ENOMEM (nothing taken; or, after a send
 * cut short by a cancel or deadline once some bytes went, no memory to
 * keep the rest: a final error then); -EINVAL (NULL s, NULL buf with len,
 * len past SSIZE_MAX); or the stream's final send error. */
WEFT_MUST_CHECK ssize_t weft_stream_write(struct weft_stream *s,
					  const void *buf, size_t len);

/* Sends everything buffered. Returns 0; -ECANCELED / -ETIMEDOUT (the rest
 * stays buffered); -EINVAL; or the final send error (-EPIPE, ...). */
WEFT_MUST_CHECK int weft_stream_flush(struct weft_stream *s);

/* Bytes written and not yet sent. */
size_t weft_stream_unsent(const struct weft_stream *s);

/* ---- ending -------------------------------------------------------- */

/* A graceful close (what web servers call a lingering close): flushes,
 * shuts down the sending side so the peer reads the end of the stream,
 * then receives and drops what the peer still sends, until it closes or
 * linger_ns pass (<= 0: not at all), so the kernel does not answer unread
 * data with a reset that destroys the last reply; then closes the fd and
 * frees the buffers. It closes even when cancelled (the flush and the wait
 * are then skipped). A flush that fails with bytes unsent (a timeout, a
 * cancellation) loses them, as an earlier write's final error (-ENOMEM,
 * -EPIPE) lost what it dropped, and then the close resets the connection,
 * as weft_stream_abort does: the peer must not take the cut stream for a
 * whole one. Returns 0, or the flush's error (the fd is closed either
 * way), -EINVAL (NULL s), -EBADF (closed already, or its fd was: a
 * double close, as close(2) says). A closed stream
 * stays closed: every read, write and flush on it returns -EBADF (as Go's
 * net.ErrClosed) and allocates nothing, until weft_stream_init. */
int weft_stream_close(struct weft_stream *s, int64_t linger_ns);

/* Closes with a reset (SO_LINGER 0), for a peer given up on: drops what is
 * buffered and what the kernel holds unsent (docs/concepts.md says why not
 * a graceful close). A plain close on a non-socket. Returns 0, -EINVAL
 * (NULL s), -EBADF (closed already, or its fd was); the stream stays
 * closed. */
int weft_stream_abort(struct weft_stream *s);

/* Frees the buffers without touching the fd (which stays the caller's);
 * unsent bytes are dropped. The stream may be initialised again. */
void weft_stream_destroy(struct weft_stream *s);

#ifdef __cplusplus
}
#endif
#endif
