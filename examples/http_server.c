/*
 * http_server ADDR PORT [WORKERS]: an HTTP/1.1 server that answers every
 * request with "Hello, World!". One task per connection, reading and
 * writing through a weft_stream; keep-alive and pipelining; enough HTTP for
 * wrk and curl, and strict about the rest:
 *
 *   - a request head (request line and headers) must fit in HEAD_MAX bytes,
 *     else 431; once a request has begun, its first line must arrive
 *     within HEAD_TIMEOUT ($HTTP_HEAD_MS; a request begun in the idle time
 *     gets it whole, from the idle time's end at the latest), and the rest
 *     of the head within HEAD_TIMEOUT more, else 408; either way the
 *     connection is closed;
 *   - a malformed request gets 400 and the connection is closed;
 *   - a body (Content-Length) is read and dropped, after a 100 Continue if
 *     the client expects one before it sends the body; chunked bodies get
 *     501;
 *   - an idle keep-alive connection (no byte of a next request) is closed
 *     after IDLE_TIMEOUT ($HTTP_IDLE_MS);
 *   - a client that takes no answer for SEND_TIMEOUT ($HTTP_SEND_MS) is
 *     given up on: the connection is reset;
 *   - every final answer, a refusal's included, carries a Date (RFC 9110
 *     6.6.1), formatted once a second per worker thread (date_now).
 *
 * The $HTTP_*_MS variables, if set, are milliseconds; the server does not
 * start with one set to anything but a whole number above 0.
 *
 * The head is read line by line (weft_stream_readline, the stream's limit
 * being HEAD_MAX), and answers to pipelined requests are sent together,
 * once no whole request head is left buffered. The timeouts are weft
 * deadlines: a scope around the blocking call makes it return -ETIMEDOUT
 * once the time has come, and the stream keeps what had arrived.
 *
 *   $ build/default/examples/http_server 127.0.0.1 8080 0
 *   http_server listening on 127.0.0.1:8080 workers=2
 *   $ curl http://127.0.0.1:8080/
 *   Hello, World!
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <weft.h>

#include "server.h"

#define HEAD_MAX 8192                 /* request line and headers */
#define BODY_MAX (1L << 20)           /* bodies are read and dropped */
#define HEAD_TIMEOUT (10 * WEFT_SEC)  /* to receive a whole head */
#define IDLE_TIMEOUT (60 * WEFT_SEC)  /* between keep-alive requests */
#define SEND_TIMEOUT (10 * WEFT_SEC)  /* for a client to take an answer */
#define LINGER_TIMEOUT (1 * WEFT_SEC) /* reading after the last answer */

#define QUIET (-1) /* a reading step's result: close without a word */
#define BEGUN (-2) /* read_head: the idle time ran out inside a first line */
#define IDLE (-3)  /* head_line: the idle time ran out */

static int64_t head_timeout = HEAD_TIMEOUT;
static int64_t idle_timeout = IDLE_TIMEOUT;
static int64_t send_timeout = SEND_TIMEOUT;

struct request {
	bool http10;
	bool head; /* HEAD: no body in the answer */
	bool keep_alive;
	bool has_host;
	bool expect_continue; /* Expect: 100-continue */
	long length;          /* Content-Length; -1: none */
};

struct conn {
	struct weft_stream s;
	int fd;           /* s's */
	size_t head_size; /* bytes of the head read so far */
	bool stalled;     /* an answer failed after send_timeout passed */
};

/* ---- parsing (RFC 9112) ------------------------------------------------- */

static bool tchar(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c >= '0' && c <= '9') || (c && strchr("!#$%&'*+-.^_`|~", c));
}

/* Visible characters, SP, HTAB and obs-text: what a header value may hold. */
static bool vchar(unsigned char c)
{
	return c == '\t' || (c >= ' ' && c != 0x7f);
}

/* What a Host value, uri-host [":" port] (RFC 3986 3.2.2), is made of:
 * unreserved, pct-encoded and sub-delims characters, ':' and an IP
 * literal's brackets. */
static bool host_char(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c >= '0' && c <= '9') ||
	       (c && strchr("-._~%!$&'()*+,;=:[]", c));
}

/* "GET /path HTTP/1.1" in [p, end), the CR excluded. Returns 0 or a status. */
static int parse_request_line(const char *p, const char *end,
			      struct request *req)
{
	const char *sp = p;

	while (sp < end && tchar(*sp))
		sp++;
	if (sp == p || sp == end || *sp != ' ')
		return 400;
	req->head = sp - p == 4 && !memcmp(p, "HEAD", 4);
	p = ++sp;
	while (sp < end && (unsigned char)*sp > ' ' && *sp != 0x7f)
		sp++;
	if (sp == p || sp == end || *sp != ' ')
		return 400;
	p = sp + 1;
	if (end - p != 8 || memcmp(p, "HTTP/", 5) || p[6] != '.' ||
	    p[5] < '0' || p[5] > '9' || p[7] < '0' || p[7] > '9')
		return 400;
	/* RFC 9110 2.5: a later 1.x is served as the highest we know, 1.1. */
	if (p[5] != '1')
		return 505;
	req->http10 = p[7] == '0';
	return 0;
}

/* Does the comma-separated list [p, end) hold token, in any case? */
static bool has_token(const char *p, const char *end, const char *token)
{
	size_t n = strlen(token);

	while (p < end) {
		while (p < end && (*p == ' ' || *p == '\t' || *p == ','))
			p++;
		const char *q = p;

		while (q < end && *q != ',' && *q != ' ' && *q != '\t')
			q++;
		if ((size_t)(q - p) == n && !strncasecmp(p, token, n))
			return true;
		p = q;
	}
	return false;
}

static int parse_length(const char *p, const char *end, long *length)
{
	long v = 0;

	if (p == end)
		return 400;
	for (; p < end; p++) {
		if (*p < '0' || *p > '9')
			return 400;
		v = v * 10 + (*p - '0');
		if (v > BODY_MAX)
			return 413;
	}
	if (*length >= 0 && *length != v)
		return 400; /* two different lengths: smuggling */
	*length = v;
	return 0;
}

/* One "Name: value" header line [p, end), CR excluded. */
static int parse_header(const char *p, const char *end, struct request *req,
			bool *conn_close, bool *conn_keep)
{
	const char *colon = p, *v;

	while (colon < end && tchar(*colon))
		colon++;
	if (colon == p || colon == end || *colon != ':')
		return 400; /* also folded lines, and space before ':' */
	for (v = colon + 1; v < end && (*v == ' ' || *v == '\t'); v++)
		;
	while (end > v && (end[-1] == ' ' || end[-1] == '\t'))
		end--;
	for (const char *c = v; c < end; c++)
		if (!vchar(*c))
			return 400;

#define NAME_IS(s) (colon - p == sizeof(s) - 1 && !strncasecmp(p, s, colon - p))
	if (NAME_IS("Content-Length"))
		return parse_length(v, end, &req->length);
	if (NAME_IS("Transfer-Encoding"))
		return 501;
	if (NAME_IS("Host")) {
		/* RFC 9112 3.2: one Host, and a valid one. */
		if (req->has_host)
			return 400;
		for (const char *c = v; c < end; c++)
			if (!host_char(*c))
				return 400;
		req->has_host = true;
	}
	if (NAME_IS("Expect"))
		req->expect_continue |= has_token(v, end, "100-continue");
	if (NAME_IS("Connection")) {
		*conn_close |= has_token(v, end, "close");
		*conn_keep |= has_token(v, end, "keep-alive");
	}
#undef NAME_IS
	return 0;
}

/* ---- reading ----------------------------------------------------------- */

/* Reads one line of a head into *line. Returns its length without the
 * CRLF; QUIET (the client closed, reset, or the server stops); IDLE (the
 * idle time ran out); or -status. in_head: a timeout is a 408, not the
 * idle time's end. */
static ssize_t head_line(struct conn *c, const char **line, bool in_head)
{
	ssize_t n = weft_stream_readline(&c->s, line);

	if (n == -EMSGSIZE)
		return -431;
	if (n == -ETIMEDOUT)
		return in_head ? -408 : IDLE;
	if (n <= 0)
		return QUIET;
	c->head_size += (size_t)n;
	if (c->head_size > HEAD_MAX)
		return -431;
	if (n < 2 || (*line)[n - 2] != '\r')
		return -400; /* bare LF */
	return n - 2;
}

/* Reads one head into req. Returns 0, QUIET or -status. */
static int read_head(struct conn *c, struct request *req)
{
	bool conn_close = false, conn_keep = false;
	struct weft_deadline d;
	const char *line;
	ssize_t n;
	int r;

	*req = (struct request){ .length = -1 };
	/*
	 * The first line: while none of it is in, within the idle time; once
	 * some is (buffered, or come as the idle time ran out: BEGUN), within
	 * the head time from then. A request begun just before the idle time
	 * ends gets the whole head time, not what is left of the idle time.
	 * RFC 9112 2.2: empty lines before a request are ignored.
	 */
	n = 0;
	do {
		bool begun = n == BEGUN || weft_stream_buffered(&c->s);

		c->head_size = 0;
		if (weft_deadline_enter(&d,
					begun ? head_timeout : idle_timeout))
			return QUIET;
		n = head_line(c, &line, begun);
		weft_deadline_leave(&d);
		/* A request began if some of it is in: buffered, or in the
		 * socket (server_bytes_waiting: we may have run late). */
		if (n == IDLE && (weft_stream_buffered(&c->s) ||
				  server_bytes_waiting(c->fd)))
			n = BEGUN;
		else if (n == IDLE)
			n = QUIET;
	} while (n == 0 || n == BEGUN);
	if (n < 0)
		return (int)n;
	if ((r = parse_request_line(line, line + n, req)))
		return -r;
	/* The headers, up to the blank line, within the head time. */
	if (weft_deadline_enter(&d, head_timeout))
		return QUIET;
	while ((n = head_line(c, &line, true)) > 0)
		if ((r = parse_header(line, line + n, req, &conn_close,
				      &conn_keep))) {
			n = -r;
			break;
		}
	weft_deadline_leave(&d);
	if (n < 0)
		return (int)n;
	if (!req->http10 && !req->has_host)
		return -400; /* RFC 9112 3.2: HTTP/1.1 names its host */
	req->keep_alive = req->http10 ? conn_keep && !conn_close : !conn_close;
	if (req->http10)
		req->expect_continue = false; /* RFC 9110 10.1.1: ignored */
	if (req->length < 0)
		req->length = 0;
	return 0;
}

static const char go_on[] = "HTTP/1.1 100 Continue\r\n\r\n";

static int send_bounded(struct conn *c, const char *p, size_t n, bool hold);

/* Reads and drops req's body within the head time. Returns 0, QUIET or
 * -408. */
static int skip_body(struct conn *c, const struct request *req)
{
	struct weft_deadline d;
	long length = req->length;
	char sink[2048];
	ssize_t n = 0;

	if (!length)
		return 0;
	/* Answers held back for a pipelined head go before a wait for the
	 * rest of its body, and so does the 100 (Continue) of a client that
	 * waits for one before it sends the body (RFC 9110 10.1.1: the
	 * server MUST send it, or a final answer). They are answers like any
	 * other: sent within the send timeout, or the client is given up on
	 * (c->stalled), not within the head time, which is the client's to
	 * send in. */
	if (weft_stream_buffered(&c->s) < (size_t)length &&
	    send_bounded(c, go_on, req->expect_continue ? sizeof(go_on) - 1 : 0,
			 false))
		return QUIET; /* a client that takes no answer */
	if (weft_deadline_enter(&d, head_timeout))
		return QUIET;
	while (length > 0) {
		n = weft_stream_read(&c->s, sink,
				     (size_t)length < sizeof(sink)
					     ? (size_t)length
					     : sizeof(sink));
		if (n <= 0)
			break;
		length -= n;
	}
	weft_deadline_leave(&d);
	if (!length)
		return 0;
	return n == -ETIMEDOUT ? -408 : QUIET;
}

/* ---- the Date header (RFC 9110 6.6.1) ------------------------------------ */

#define DATE_LEN 29 /* IMF-fixdate: "Sun, 06 Nov 1994 08:49:37 GMT" */

/*
 * The Date of the current second, formatted, one per worker thread, as
 * hyper keeps it: an answer costs a clock read (time(), through the vDSO)
 * and a copy, and each thread formats once a second. No thread reads what
 * another writes, so no copy can be torn, with no lock or retry. sec -1:
 * formatted never (time() does not fail).
 */
static _Thread_local struct {
	time_t sec;
	char text[DATE_LEN + 1]; /* strftime's NUL too */
} date_cache = { .sec = -1 };

/*
 * Copies the current Date into out. Not inlined: a task may resume on
 * another thread after any blocking call, and a caller could otherwise keep
 * this thread's cache address across one (docs/concepts.md, "errno,
 * thread-locals and pthread locks"); it makes no blocking call itself. The
 * names of days and months are the C locale's: main never calls setlocale.
 */
__attribute__((noinline)) static void date_now(char *out)
{
	time_t now = time(NULL);

	if (now != date_cache.sec) {
		struct tm tm;

		gmtime_r(&now, &tm);
		strftime(date_cache.text, sizeof(date_cache.text),
			 "%a, %d %b %Y %H:%M:%S GMT", &tm);
		date_cache.sec = now;
	}
	memcpy(out, date_cache.text, DATE_LEN);
}

/* ---- answering --------------------------------------------------------- */

/* Ends in the Date header's name: answer() puts the date after it. */
static const char ok[] = "HTTP/1.1 200 OK\r\n"
			 "Content-Type: text/plain\r\n"
			 "Content-Length: 13\r\n"
			 "Date: ";
static const char hello[] = "Hello, World!";

/* Whether the next request's whole head waits in the stream (after the
 * empty lines RFC 9112 2.2 lets a client send first): its answer can go
 * with this one's. Half a head must not hold the answers back while its
 * rest is on its way (a body is seen to in skip_body). */
static bool head_buffered(const struct weft_stream *s)
{
	const char *p;
	size_t n = weft_stream_peek(s, &p);

	while (n >= 2 && p[0] == '\r' && p[1] == '\n')
		p += 2, n -= 2;
	return n && memmem(p, n, "\r\n\r\n", 4);
}

/* Writes [p, p + n) to the stream and sends it, unless hold and the next
 * request waits in the stream (pipelined requests are answered together),
 * all within send_timeout (a client that stops reading). One deadline
 * scope for both: a scope costs two clock reads. Returns 0 or -errno. */
static int send_bounded(struct conn *c, const char *p, size_t n, bool hold)
{
	struct weft_deadline d;
	ssize_t r = weft_deadline_enter(&d, send_timeout);

	if (r)
		return (int)r;
	r = weft_stream_write(&c->s, p, n);
	if (r >= 0 && !(hold && head_buffered(&c->s)))
		r = weft_stream_flush(&c->s);
	c->stalled = weft_deadline_leave(&d) == 1 && r < 0;
	return r < 0 ? (int)r : 0;
}

static int answer(struct conn *c, const struct request *req)
{
	char msg[sizeof(ok) + DATE_LEN + sizeof(hello) + 64];
	size_t n = sizeof(ok) - 1;

	memcpy(msg, ok, n);
	date_now(msg + n);
	n += DATE_LEN;
#define ADD(s) (memcpy(msg + n, s, sizeof(s) - 1), n += sizeof(s) - 1)
	ADD("\r\n");
	if (!req->keep_alive)
		ADD("Connection: close\r\n");
	else if (req->http10)
		ADD("Connection: keep-alive\r\n");
	ADD("\r\n");
	if (!req->head)
		ADD(hello);
#undef ADD
	return send_bounded(c, msg, n, true);
}

static const char *reason(int status)
{
	switch (status) {
	case 408:
		return "Request Timeout";
	case 413:
		return "Content Too Large";
	case 431:
		return "Request Header Fields Too Large";
	case 501:
		return "Not Implemented";
	case 505:
		return "HTTP Version Not Supported";
	default:
		return "Bad Request";
	}
}

/* Answers status; the caller then closes. The answer to a HEAD has no
 * content (RFC 9110 9.3.2), a refusal's included. */
static void refuse(struct conn *c, int status, bool head)
{
	const char *text = reason(status);
	size_t len = strlen(text) + 1; /* the content: the text, a newline */
	char msg[256], date[DATE_LEN];
	int n;

	date_now(date);
	n = snprintf(msg, sizeof(msg),
		     "HTTP/1.1 %d %s\r\n"
		     "Content-Type: text/plain\r\nContent-Length: %zu\r\n"
		     "Date: %.*s\r\nConnection: close\r\n\r\n%s\n",
		     status, text, len, DATE_LEN, date, text);
	if (head) /* the head only: drop the content after its blank line */
		n -= (int)len;
	send_bounded(c, msg, (size_t)n, true); /* n < sizeof(msg) */
}

/* ---- the connection ---------------------------------------------------- */

static void http(int fd)
{
	struct weft_deadline d;
	struct request req;
	struct conn c;
	int r;

	weft_stream_init(&c.s, fd, HEAD_MAX);
	c.fd = fd;
	c.stalled = false;
	for (;;) {
		r = read_head(&c, &req);
		if (!r)
			r = skip_body(&c, &req);
		if (!r && answer(&c, &req))
			r = QUIET;
		if (r < QUIET)
			refuse(&c, -r, req.head);
		if (r || !req.keep_alive)
			break;
	}
	/* A client that stopped reading is given up on with a reset
	 * (weft_stream_abort says why not a graceful close). */
	if (c.stalled) {
		weft_stream_abort(&c.s);
		return;
	}
	/*
	 * Closing a socket with unread input makes the kernel send a reset,
	 * which can destroy the last answer before the client reads it; so
	 * the stream's close shuts our side down first and reads what the
	 * client still sends, for a moment ("lingering close").
	 */
	r = weft_deadline_enter(&d, send_timeout + LINGER_TIMEOUT);
	weft_stream_close(&c.s, LINGER_TIMEOUT);
	if (!r)
		weft_deadline_leave(&d);
}

int main(int argc, char **argv)
{
	if (server_help(argc, argv, "http_server"))
		return 0;
	if (!server_timeout_env("http_server", "HTTP_HEAD_MS", &head_timeout) ||
	    !server_timeout_env("http_server", "HTTP_IDLE_MS", &idle_timeout) ||
	    !server_timeout_env("http_server", "HTTP_SEND_MS", &send_timeout))
		return 2;
	return server_main(argc, argv, "http_server", http);
}
