/*
 * Buffered streams (see weft/stream.h): a read buffer and a write buffer
 * over weft_recv and weft_writev, and nothing below them (but the name of
 * the call for weft_dump, runtime/wait.h), so a stream works on every I/O
 * driver and on plain threads alike.
 *
 * Invariants:
 *  - Read side: the unread bytes are rbuf[rpos, rpos + rlen), in order,
 *    with rpos + rlen <= rcap. Bytes leave it only by take(), and only
 *    once a call has succeeded: every failing path returns before take(),
 *    so a failed call has consumed nothing. A receive only appends.
 *  - The slice a readuntil returns stays valid until the next call: take()
 *    moves no data, and data moves (compaction, realloc) only in reserve(),
 *    at the start of a later call.
 *  - Write side: the unsent bytes are wbuf[0, wlen), in the order written.
 *    After a retryable send failure they (and the unsent tail of the bytes
 *    being written) are still there, in order; after a final one werror is
 *    set, wlen is 0, and nothing is ever sent again. Until then, wcap
 *    is 0 or at least WEFT_STREAM_WBUF, and exceeds it only while such a
 *    kept tail is unsent.
 *  - Closed (fd < 0, only after weft_stream_close): every transfer call
 *    returns -EBADF before it allocates, so a stream used after its close
 *    neither leaks a buffer nor takes a write it can never send.
 */
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include "weft/io.h"
#include "weft/stream.h"
#include "weft/task.h"
#include "weft/time.h"
#include "runtime/task.h"  /* weft__wait_check */
#include "runtime/timer.h" /* weft__from_now */
#include "runtime/wait.h"  /* weft_dump names the stream call */

/* The read buffer's first size, and the size a plain read goes straight to
 * the caller's buffer from: Go's bufio default. */
#define RBUF_MIN 4096u

static size_t max_size(size_t a, size_t b)
{
	return a > b ? a : b;
}

int weft_stream_init(struct weft_stream *s, int fd, size_t limit)
{
	if (!s)
		return -EINVAL;
	if (fd < 0)
		return -EBADF;
	*s = (struct weft_stream){ .fd = fd,
				   .limit = limit ? limit : WEFT_STREAM_LIMIT };
	return 0;
}

size_t weft_stream_buffered(const struct weft_stream *s)
{
	return s ? s->rlen : 0;
}

size_t weft_stream_peek(const struct weft_stream *s, const char **p)
{
	if (!p)
		return 0;
	*p = s && s->rlen ? s->rbuf + s->rpos : NULL;
	return *p ? s->rlen : 0;
}

bool weft_stream_at_eof(const struct weft_stream *s)
{
	return s && s->eof;
}

size_t weft_stream_unsent(const struct weft_stream *s)
{
	return s ? s->wlen : 0;
}

/* The check every transfer call makes after its arguments': -EBADF for a
 * closed stream, whose buffers were freed and must stay so (a write would
 * otherwise buffer bytes and report them taken, and a read allocate a
 * buffer no later close frees). */
static int closed(const struct weft_stream *s)
{
	return s->fd < 0 ? -EBADF : 0;
}

/* ---- reading ------------------------------------------------------------ */

/* Makes room for want bytes from rpos on (want > rlen), compacting or
 * growing the buffer. An empty buffer grown far past the usual size by a
 * big readexactly goes back to the usual size. Returns 0 or -ENOMEM. */
static int reserve(struct weft_stream *s, size_t want)
{
	size_t cap = max_size(want, RBUF_MIN);
	char *p;

	if (!s->rlen && s->rcap > max_size(s->limit, RBUF_MIN) &&
	    cap < s->rcap) {
		free(s->rbuf);
		s->rbuf = NULL;
		s->rcap = s->rpos = 0;
	}
	if (s->rcap - s->rpos >= want)
		return 0;
	if (s->rpos) {
		memmove(s->rbuf, s->rbuf + s->rpos, s->rlen);
		s->rpos = 0;
	}
	if (s->rcap >= want)
		return 0;
	if (!(p = realloc(s->rbuf, cap)))
		return -ENOMEM;
	s->rbuf = p;
	s->rcap = cap;
	return 0;
}

/* weft_recv, named for weft_dump as the stream call it serves ("stream
 * readline on fd 5"): only here and in send_iov can a stream call wait. */
static ssize_t recv_as(struct weft_stream *s, const char *call, void *buf,
		       size_t len)
{
	bool named = weft__doing_begin(call);
	struct iovec iov = { buf, len };
	ssize_t r = -ENOTSOCK;

	if (!s->read_not_socket)
		r = weft_recv(s->fd, buf, len, 0);
	if (r == -ENOTSOCK) { /* a pipe: recv(2) wants a socket */
		s->read_not_socket = true;
		r = weft_readv(s->fd, &iov, 1);
	}
	weft__doing_end(named);
	return r;
}

/* One receive into the free end of the buffer, made able to hold want
 * bytes first, for the stream call named call. Returns the count, 0 at the
 * end of the stream, or -errno. */
static ssize_t fill(struct weft_stream *s, size_t want, const char *call)
{
	ssize_t n;
	int r;

	if (s->eof)
		return 0;
	if ((r = reserve(s, want)))
		return r;
	n = recv_as(s, call, s->rbuf + s->rpos + s->rlen,
		    s->rcap - s->rpos - s->rlen);
	if (n > 0)
		s->rlen += (size_t)n;
	else if (n == 0)
		s->eof = true;
	return n;
}

/* The room to receive into for a call that needs want bytes: the whole
 * buffer, but no more than the usual size, so that reserve() gives back an
 * empty buffer a big readexactly grew. Asking for the whole of such a
 * buffer kept it for good for every call but a readuntil (whose line_room
 * stops at the limit): a protocol framed by lengths held its biggest
 * frame's memory, as the write side did before shrink_drained. */
static size_t room(const struct weft_stream *s, size_t want)
{
	size_t usual = max_size(s->limit, RBUF_MIN);

	return max_size(want, s->rcap < usual ? s->rcap : usual);
}

/* Takes n buffered bytes out; they stay where they are until a later
 * reserve(). */
static void take(struct weft_stream *s, size_t n)
{
	s->rlen -= n;
	s->rpos = s->rlen ? s->rpos + n : 0;
}

/* The next size to try for a line: the whole buffer, doubled once full,
 * never past the limit (rlen < limit here, so it exceeds rlen). */
static size_t line_room(const struct weft_stream *s)
{
	size_t want = s->rlen < s->rcap ? s->rcap : 2 * s->rcap;

	if (want > s->limit)
		want = s->limit;
	return max_size(want, s->rlen + 1);
}

/* The first delim in [p, p + n), or NULL. A line's one-byte delimiter is
 * a memchr: memmem finds it too, at twice the instructions. */
static const char *find(const char *p, size_t n, const void *delim, size_t dlen)
{
	if (dlen == 1)
		return memchr(p, *(const char *)delim, n);
	return memmem(p, n, delim, dlen);
}

static ssize_t readuntil(struct weft_stream *s, const void *delim, size_t dlen,
			 const char **line, const char *call)
{
	size_t scanned = 0; /* no delimiter starts before this offset */
	const char *hit;
	ssize_t n;

	if (!s || !delim || !line || !dlen || dlen > s->limit)
		return -EINVAL;
	if (closed(s))
		return -EBADF;
	for (;;) {
		hit = s->rlen ? find(s->rbuf + s->rpos + scanned,
				     s->rlen - scanned, delim, dlen)
			      : NULL;
		if (hit) {
			size_t len = (size_t)(hit - (s->rbuf + s->rpos)) + dlen;

			if (len > s->limit)
				return -EMSGSIZE;
			*line = s->rbuf + s->rpos;
			take(s, len);
			return (ssize_t)len;
		}
		if (s->rlen >= s->limit)
			return -EMSGSIZE;
		/* A delimiter may straddle what we have and what comes. */
		scanned = s->rlen >= dlen ? s->rlen - dlen + 1 : 0;
		n = fill(s, line_room(s), call);
		if (n < 0)
			return n;
		if (n == 0)
			return s->rlen ? -ENODATA : 0;
	}
}

ssize_t weft_stream_readuntil(struct weft_stream *s, const void *delim,
			      size_t dlen, const char **line)
{
	return readuntil(s, delim, dlen, line, "stream readuntil");
}

ssize_t weft_stream_readline(struct weft_stream *s, const char **line)
{
	const char *p, *hit;
	size_t len;

	/* A whole line already buffered, the usual case for all but a
	 * request's first line: one memchr, no loop. */
	if (s && line && s->rlen) {
		p = s->rbuf + s->rpos;
		hit = memchr(p, '\n', s->rlen);
		len = hit ? (size_t)(hit - p) + 1 : 0;
		if (hit && len <= s->limit) {
			*line = p;
			take(s, len);
			return (ssize_t)len;
		}
	}
	return readuntil(s, "\n", 1, line, "stream readline");
}

ssize_t weft_stream_readexactly(struct weft_stream *s, void *buf, size_t n)
{
	ssize_t r;

	/* n past SSIZE_MAX could not be returned: refused as a write's len
	 * is, before the buffer is asked to grow to it. */
	if (!s || (!buf && n) || n > SSIZE_MAX)
		return -EINVAL;
	if (closed(s))
		return -EBADF;
	while (s->rlen < n) {
		r = fill(s, room(s, n), "stream readexactly");
		if (r < 0)
			return r;
		if (r == 0)
			return s->rlen ? -ENODATA : 0;
	}
	if (n) {
		memcpy(buf, s->rbuf + s->rpos, n);
		take(s, n);
	}
	return (ssize_t)n;
}

ssize_t weft_stream_read(struct weft_stream *s, void *buf, size_t n)
{
	ssize_t r;

	if (!s || (!buf && n))
		return -EINVAL;
	if (closed(s))
		return -EBADF;
	if (!n)
		return 0;
	if (!s->rlen) {
		if (s->eof)
			return 0;
		if (n >= RBUF_MIN) { /* big enough: no copy */
			r = recv_as(s, "stream read", buf, n);
			if (r == 0)
				s->eof = true;
			return r;
		}
		r = fill(s, room(s, RBUF_MIN), "stream read");
		if (r <= 0)
			return r;
	}
	if (n > s->rlen)
		n = s->rlen;
	memcpy(buf, s->rbuf + s->rpos, n);
	take(s, n);
	return (ssize_t)n;
}

/* ---- writing ------------------------------------------------------------ */

/* Errors after which the same send may be tried again: a task's cancel or
 * deadline, and their plain-thread kin, SO_SNDTIMEO running out (EAGAIN)
 * and a signal handler's interruption (EINTR), as weft/stream.h says.
 * -ETIMEDOUT is the deadline's only while the caller's own limit is in
 * force: else the kernel said it (TCP_USER_TIMEOUT, retransmissions given
 * up), the connection is dead, and the error is final, as weft_connect
 * tells the two apart. */
static bool retryable(ssize_t err)
{
	if (err == -ETIMEDOUT)
		return weft__wait_check(weft__task_current()) != 0;
	return err == -ECANCELED || err == -EAGAIN || err == -EINTR;
}

/* A send failed with err after off bytes of wbuf went out: keeps the rest
 * of wbuf and the unsent tail [rest, rest + rlen) for a later flush, or,
 * for a final error, drops everything. untouched: no byte went out in
 * this call, so that with no memory for the tail nothing need be lost:
 * -ENOMEM, the tail not taken, wbuf as it was. Returns err. */
static int keep_unsent(struct weft_stream *s, size_t off, const char *rest,
		       size_t rest_len, int err, bool untouched)
{
	size_t left = s->wlen - off;
	char *p;

	if (!retryable(err))
		goto final;
	/* Nothing of wbuf went out (off 0): nothing to move, and a first
	 * write too big to buffer has no wbuf yet, which memmove must not
	 * be given. */
	if (off)
		memmove(s->wbuf, s->wbuf + off, left);
	s->wlen = left;
	if (!rest_len)
		return err;
	if (left + rest_len > s->wcap) {
		/* Never less than the usual size: a buffer made for a small
		 * tail (of a write too big to buffer, when there was none)
		 * would stay that small, shrink_drained keeping it, and every
		 * later write bigger than it would go out unbuffered. */
		size_t cap = max_size(left + rest_len, WEFT_STREAM_WBUF);

		if (!(p = realloc(s->wbuf, cap))) {
			if (untouched)
				return -ENOMEM; /* nothing went: nothing taken */
			err = -ENOMEM; /* some bytes went, some cannot wait */
			goto final;
		}
		s->wbuf = p;
		s->wcap = cap;
	}
	memcpy(s->wbuf + left, rest, rest_len);
	s->wlen += rest_len;
	return err;
final:
	s->werror = err;
	s->wlen = 0;
	return err;
}

/* One send of iov[0, n). One segment goes as a plain send: a sendmsg
 * costs the kernel a message header and an iovec to copy in (with this
 * and readline's memchr a line echo on streams took 2% less CPU time:
 * bench/README.md). A stream over a pipe learns from the first send that
 * it must writev. */
static ssize_t send_iov(struct weft_stream *s, const struct iovec *iov, int n,
			const char *call)
{
	bool named = weft__doing_begin(call);
	ssize_t r = -ENOTSOCK;

	if (n == 1 && !s->not_socket) {
		r = weft_send(s->fd, iov[0].iov_base, iov[0].iov_len, 0);
		s->not_socket = r == -ENOTSOCK;
	}
	if (r == -ENOTSOCK)
		r = weft_writev(s->fd, iov, n);
	weft__doing_end(named);
	return r;
}

/* The buffer just drained: if it grew past the usual size to keep the tail
 * of a big write cut short (keep_unsent), free it, as reserve() does on the
 * read side. Kept, a long-lived connection would hold one burst's memory
 * for good, and buffer (copy) later writes that big instead of sending
 * them. The next small write allocates the usual size again. */
static void shrink_drained(struct weft_stream *s)
{
	if (s->wcap <= WEFT_STREAM_WBUF)
		return;
	free(s->wbuf);
	s->wbuf = NULL;
	s->wcap = 0;
}

/* Sends wbuf[0, wlen) and then extra[0, elen), one send per round
 * until all has gone. Returns 0 (the buffer is empty) or -errno (see
 * keep_unsent). */
static int send_out(struct weft_stream *s, const char *extra, size_t elen,
		    const char *call)
{
	size_t off = 0, eoff = 0, k;
	struct iovec iov[2];
	ssize_t r;
	int n;

	while (off < s->wlen || eoff < elen) {
		n = 0;
		if (off < s->wlen)
			iov[n++] =
				(struct iovec){ s->wbuf + off, s->wlen - off };
		if (eoff < elen)
			iov[n++] = (struct iovec){ (char *)extra + eoff,
						   elen - eoff };
		r = send_iov(s, iov, n, call);
		if (r == 0)
			r = -EPIPE; /* cannot happen for a socket: no spin */
		if (r < 0)
			return keep_unsent(s, off, extra + eoff, elen - eoff,
					   (int)r, !off && !eoff);
		k = (size_t)r;
		if (k > s->wlen - off) {
			eoff += k - (s->wlen - off);
			off = s->wlen;
		} else {
			off += k;
		}
	}
	s->wlen = 0;
	shrink_drained(s);
	return 0;
}

ssize_t weft_stream_write(struct weft_stream *s, const void *buf, size_t len)
{
	int r;

	if (!s || (!buf && len) || len > SSIZE_MAX)
		return -EINVAL;
	if (closed(s))
		return -EBADF;
	if (s->werror)
		return s->werror;
	if (!len)
		return 0;
	if (len > s->wcap - s->wlen) {
		if (s->wlen || len >= WEFT_STREAM_WBUF || s->wcap) {
			r = send_out(s, buf, len, "stream write");
			return r ? r : (ssize_t)len;
		}
		if (!(s->wbuf = malloc(WEFT_STREAM_WBUF)))
			return -ENOMEM;
		s->wcap = WEFT_STREAM_WBUF;
	}
	memcpy(s->wbuf + s->wlen, buf, len);
	s->wlen += len;
	return (ssize_t)len;
}

int weft_stream_flush(struct weft_stream *s)
{
	if (!s)
		return -EINVAL;
	if (closed(s))
		return -EBADF;
	if (s->werror)
		return s->werror;
	return send_out(s, NULL, 0, "stream flush");
}

/* ---- ending ------------------------------------------------------------- */

/* Drops what the peer sends until it closes or ns pass. In a task a
 * deadline bounds the receives; on a plain thread poll(2) does. */
static void linger(struct weft_stream *s, int64_t ns)
{
	int64_t end = weft__from_now(ns), left;
	struct weft_deadline d;
	char sink[1024];
	bool scoped = weft_deadline_enter(&d, ns) == 0;

	while (!s->eof) {
		if (!scoped) {
			struct pollfd p = { .fd = s->fd, .events = POLLIN };
			int64_t ms;
			int n;

			left = end - weft_now();
			ms = left / WEFT_MSEC + 1; /* never early */
			if (left <= 0)
				break;
			n = poll(&p, 1, ms > INT_MAX ? INT_MAX : (int)ms);
			if (n < 0 && errno == EINTR)
				continue; /* a handler ran: wait what is left */
			if (n <= 0)
				break;
		}
		if (weft_stream_read(s, sink, sizeof(sink)) <= 0)
			break;
	}
	if (scoped)
		weft_deadline_leave(&d);
}

/* Closes the fd and frees the buffers: the stream is closed from now on.
 * Returns weft_close's result: -EBADF for an fd closed under the stream
 * (a double close), which close(2) would report too. */
static int close_and_free(struct weft_stream *s)
{
	int r = weft_close(s->fd);

	weft_stream_destroy(s);
	s->fd = -1;
	return r;
}

int weft_stream_close(struct weft_stream *s, int64_t linger_ns)
{
	int r;

	if (!s)
		return -EINVAL;
	r = weft_stream_flush(s);
	/* Bytes the stream took are lost, still unsent or dropped with a
	 * final error (werror; -ENOMEM leaves the connection alive): a FIN
	 * would end the cut stream as if it were whole. */
	if (r && (weft_stream_unsent(s) || s->werror)) {
		weft_stream_abort(s);
		return r;
	}
	if (!weft_shutdown(s->fd, SHUT_WR) && linger_ns > 0 && !r) {
		take(s, s->rlen); /* unread input goes with the stream */
		linger(s, linger_ns);
	}
	/* The flush's error first: it says what was lost. */
	int closed_r = close_and_free(s);
	return r ? r : closed_r;
}

int weft_stream_abort(struct weft_stream *s)
{
	static const struct linger reset = { .l_onoff = 1, .l_linger = 0 };

	if (!s)
		return -EINVAL;
	if (closed(s))
		return -EBADF;
	/* ENOTSOCK (a pipe, say) leaves a plain close, which is all there
	 * is to do there. */
	(void)setsockopt(s->fd, SOL_SOCKET, SO_LINGER, &reset, sizeof(reset));
	return close_and_free(s);
}

void weft_stream_destroy(struct weft_stream *s)
{
	if (!s)
		return;
	free(s->rbuf);
	free(s->wbuf);
	*s = (struct weft_stream){ .fd = s->fd, .limit = s->limit };
}
