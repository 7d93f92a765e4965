/*
 * http_plain ADDR PORT [WORKERS]: the http benchmark's server on weft, the
 * same program as bench/go/http_server and bench/tokio's http_server.
 * HTTP/1.1 keep-alive: a request is taken to end at its blank line (a GET
 * without a body, which echo_load and wrk send) and answered with "Hello,
 * World!"; pipelined requests are answered together, in order; a request
 * saying "Connection: close" (in any case) closes after its answer. Nothing
 * more is parsed and nothing is timed out, as in the other two: the table
 * compares runtimes, not HTTP servers.
 *
 * examples/http_server is the real server (RFC 9112 heads, a deadline on
 * every phase, error answers); bench/README.md ("The http rows") says what
 * that extra work costs per request.
 */
#include <stdbool.h>
#include <string.h>
#include <strings.h>
#include <weft.h>

#include "server.h"

static const char answer[] = "HTTP/1.1 200 OK\r\n"
			     "Content-Type: text/plain\r\n"
			     "Content-Length: 13\r\n"
			     "\r\n"
			     "Hello, World!";
#define ANSWER_LEN (sizeof(answer) - 1)
#define HEAD_MAX 8192
#define ANSWERS_PER_SEND 32

static bool asks_close(const char *head, size_t len)
{
	static const char want[] = "connection: close";
	const size_t n = sizeof(want) - 1;

	/* The first letter by hand ('C' | 0x20 is 'c'), the rest only there. */
	for (size_t i = 0; i + n <= len; i++)
		if ((head[i] | 0x20) == 'c' && !strncasecmp(head + i, want, n))
			return true;
	return false;
}

/* The end of the first blank line ("\r\n\r\n") in [p, p + len), or NULL.
 * memchr finds each '\n' (glibc's memmem cost ~160 instructions a call on
 * these short heads). */
static const char *head_end(const char *p, size_t len)
{
	const char *start = p, *end = p + len, *nl;

	while ((nl = memchr(p, '\n', (size_t)(end - p)))) {
		if (nl - start >= 3 && !memcmp(nl - 3, "\r\n\r\n", 4))
			return nl + 1;
		p = nl + 1;
	}
	return NULL;
}

/* Answers the whole requests in buf[0, *have), keeping the start of an
 * unfinished one. Returns 1 to go on, 0 to close, -1 on a send error. */
static int answer_all(int fd, char *buf, size_t *have)
{
	char out[ANSWER_LEN * ANSWERS_PER_SEND];
	size_t used = 0, n_out = 0;
	bool close = false;
	const char *end;

	while ((end = head_end(buf + used, *have - used))) {
		size_t len = (size_t)(end - (buf + used));

		close |= asks_close(buf + used, len);
		if (n_out == sizeof(out)) {
			if (weft_send_all(fd, out, n_out, 0, NULL) < 0)
				return -1;
			n_out = 0;
		}
		memcpy(out + n_out, answer, ANSWER_LEN);
		n_out += ANSWER_LEN;
		used += len;
	}
	memmove(buf, buf + used, *have - used);
	*have -= used;
	if (n_out && weft_send_all(fd, out, n_out, 0, NULL) < 0)
		return -1;
	return !close;
}

static void serve(int fd)
{
	char buf[HEAD_MAX]; /* on the task's stack: see io.h */
	size_t have = 0;
	ssize_t n;

	/* A head longer than the buffer closes, as in the other two. */
	while (have < sizeof(buf) &&
	       (n = weft_recv(fd, buf + have, sizeof(buf) - have, 0)) > 0) {
		have += (size_t)n;
		if (answer_all(fd, buf, &have) <= 0)
			break;
	}
	weft_close(fd);
}

int main(int argc, char **argv)
{
	return server_main(argc, argv, "http_plain", serve);
}
