/* Reports written to an fd off the workers: see out.h. */
#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "out.h"

/* A piece of at most this much goes in without being cut: put flushes
 * first if less is left. */
#define PIECE_ROOM 512

/* Writes len bytes of buf, waiting for room on an O_NONBLOCK fd. */
static int write_all(int fd, const char *buf, size_t len)
{
	size_t done = 0;
	while (done < len) {
		ssize_t n = write(fd, buf + done, len - done);
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			struct pollfd p = { .fd = fd, .events = POLLOUT };
			if (poll(&p, 1, -1) < 0 && errno != EINTR)
				return -errno;
		} else if (n < 0 && errno != EINTR) {
			return -errno;
		} else if (n > 0) {
			done += (size_t)n;
		}
	}
	return 0;
}

void weft__out_flush(struct weft__out *o)
{
	if (!o->err)
		o->err = write_all(o->fd, o->buf, o->len);
	o->len = 0;
}

void weft__out_put(struct weft__out *o, const char *fmt, ...)
{
	if (o->size - o->len < PIECE_ROOM)
		weft__out_flush(o);
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(o->buf + o->len, o->size - o->len, fmt, ap);
	va_end(ap);
	if (n > 0)
		o->len += (size_t)n < o->size - o->len ? (size_t)n
						       : o->size - o->len - 1;
}

void weft__out_put_str(struct weft__out *o, const char *s)
{
	size_t n = strlen(s);
	if (o->size - o->len < n + 1)
		weft__out_flush(o);
	if (n >= o->size)
		n = o->size - 1;
	memcpy(o->buf + o->len, s, n);
	o->len += n;
}
