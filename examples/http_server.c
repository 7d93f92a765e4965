/*
 * http_server ADDR PORT [WORKERS]: an HTTP/1.1 server that answers every
 * request with "Hello, World!". One task per connection; keep-alive and
 * pipelining; enough HTTP for wrk and curl, and strict about the rest:
 *
 *   - a request head (request line and headers) must arrive whole within
 *     HEAD_TIMEOUT and fit in HEAD_MAX bytes: else 408 or 431, and close;
 *   - a malformed request gets 400 and the connection is closed;
 *   - a body (Content-Length) is read and dropped; chunked bodies get 501;
 *   - an idle keep-alive connection is closed after IDLE_TIMEOUT.
 *
 * The timeouts are weft deadlines: a scope around the blocking call makes it
 * return -ETIMEDOUT once the time has come.
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
#include <sys/socket.h>
#include <weft.h>

#include "server.h"

#define HEAD_MAX 8192			/* request line and headers */
#define BODY_MAX (1L << 20)		/* bodies are read and dropped */
#define HEAD_TIMEOUT (10 * WEFT_SEC)	/* to receive a whole head */
#define IDLE_TIMEOUT (60 * WEFT_SEC)	/* between keep-alive requests */
#define SEND_TIMEOUT (10 * WEFT_SEC)	/* for a client to take an answer */
#define LINGER_TIMEOUT (1 * WEFT_SEC)	/* reading after an error reply */

struct request {
	bool http10;
	bool head;		/* HEAD: no body in the answer */
	bool keep_alive;
	bool has_host;
	long length;		/* Content-Length; -1: none */
};

struct conn {
	int fd;
	size_t have;		/* bytes in in[] */
	size_t out_len;		/* bytes in out[] */
	long skip;		/* body bytes still to drop */
	int64_t since;		/* when the request being read began */
	char in[HEAD_MAX];
	char out[2048];
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
	if (p[5] != '1' || (p[7] != '0' && p[7] != '1'))
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
		return 400;	/* two different lengths: smuggling */
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
		return 400;	/* also folded lines, and space before ':' */
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
	if (NAME_IS("Host"))
		req->has_host = true;
	if (NAME_IS("Connection")) {
		*conn_close |= has_token(v, end, "close");
		*conn_keep |= has_token(v, end, "keep-alive");
	}
#undef NAME_IS
	return 0;
}

/* A whole head [p, p + len), its blank line included. 0 or a status. */
static int parse_head(const char *p, size_t len, struct request *req)
{
	const char *end = p + len, *eol;
	bool conn_close = false, conn_keep = false;
	int r;

	*req = (struct request){ .length = -1 };
	for (bool first = true;; first = false) {
		eol = memchr(p, '\n', (size_t)(end - p));
		if (!eol || eol == p || eol[-1] != '\r')
			return 400;	/* bare LF */
		if (eol - 1 == p)
			break;		/* the blank line */
		if (first)
			r = parse_request_line(p, eol - 1, req);
		else
			r = parse_header(p, eol - 1, req, &conn_close,
					 &conn_keep);
		if (r)
			return r;
		p = eol + 1;
	}
	if (!req->http10 && !req->has_host)
		return 400;	/* RFC 9112 3.2: HTTP/1.1 names its host */
	req->keep_alive = req->http10 ? conn_keep && !conn_close : !conn_close;
	if (req->length < 0)
		req->length = 0;
	return 0;
}

/*
 * The length of the head at the start of [p, p + n), up to and including
 * its blank line ("\r\n\r\n", or "\n\n", which parse_head then refuses); 0
 * if it has not all arrived.
 */
static size_t head_length(const char *p, size_t n)
{
	const char *nl = p, *end = p + n;

	while ((nl = memchr(nl, '\n', (size_t)(end - nl)))) {
		nl++;
		if (nl < end && *nl == '\n')
			return (size_t)(nl + 1 - p);
		if (end - nl >= 2 && nl[0] == '\r' && nl[1] == '\n')
			return (size_t)(nl + 2 - p);
	}
	return 0;
}

/* A head still arriving: is its request line, if complete, already bad? */
static int check_partial(const char *p, size_t n)
{
	const char *eol = memchr(p, '\n', n);
	struct request req;

	if (!eol)
		return 0;
	if (eol == p || eol[-1] != '\r')
		return 400;
	return parse_request_line(p, eol - 1, &req);
}

/* ---- answering --------------------------------------------------------- */

static const char ok[] = "HTTP/1.1 200 OK\r\n"
			 "Content-Type: text/plain\r\n"
			 "Content-Length: 13\r\n";
static const char hello[] = "Hello, World!";

static void put(struct conn *c, const char *s, size_t n)
{
	memcpy(c->out + c->out_len, s, n);
	c->out_len += n;
}

/* Sends what out[] holds, unless the client stops reading for too long.
 * Returns 0 or -errno. */
static int flush(struct conn *c)
{
	struct weft_deadline d;
	ssize_t r;

	if (!c->out_len)
		return 0;
	r = weft_deadline_enter(&d, SEND_TIMEOUT);
	if (!r) {
		r = weft_send_all(c->fd, c->out, c->out_len, 0, NULL);
		weft_deadline_leave(&d);
	}
	c->out_len = 0;
	return r < 0 ? (int)r : 0;
}

static int answer(struct conn *c, const struct request *req)
{
	if (c->out_len + sizeof(ok) + 64 > sizeof(c->out)) {
		int r = flush(c);

		if (r)
			return r;
	}
	put(c, ok, sizeof(ok) - 1);
	if (!req->keep_alive)
		put(c, "Connection: close\r\n", 19);
	else if (req->http10)
		put(c, "Connection: keep-alive\r\n", 24);
	put(c, "\r\n", 2);
	if (!req->head)
		put(c, hello, sizeof(hello) - 1);
	return 0;
}

static const char *reason(int status)
{
	switch (status) {
	case 408: return "Request Timeout";
	case 413: return "Content Too Large";
	case 431: return "Request Header Fields Too Large";
	case 501: return "Not Implemented";
	case 505: return "HTTP Version Not Supported";
	default:  return "Bad Request";
	}
}

/*
 * Answers status and ends the connection. Closing a socket with unread
 * input makes the kernel send a reset, which can destroy the answer before
 * the client reads it; so shut down our side first and read what the client
 * still sends, for a moment, as web servers do ("lingering close").
 */
static void refuse(struct conn *c, int status)
{
	struct weft_deadline d;
	char msg[256];
	int n;

	n = snprintf(msg, sizeof(msg), "HTTP/1.1 %d %s\r\n"
		     "Content-Type: text/plain\r\nContent-Length: %zu\r\n"
		     "Connection: close\r\n\r\n%s\n", status, reason(status),
		     strlen(reason(status)) + 1, reason(status));
	if (flush(c))
		return;
	put(c, msg, (size_t)n);	/* n < sizeof(msg) < sizeof(c->out) */
	if (flush(c))
		return;
	weft_shutdown(c->fd, SHUT_WR);
	if (weft_deadline_enter(&d, LINGER_TIMEOUT))
		return;
	for (int i = 0; i < 16; i++)
		if (weft_recv(c->fd, c->in, sizeof(c->in), 0) <= 0)
			break;
	weft_deadline_leave(&d);
}

/* ---- the connection ---------------------------------------------------- */

/* Answers every whole request in in[]. Returns 0 to read on, 1 to close,
 * or an HTTP error status. */
static int process(struct conn *c)
{
	size_t used = 0, len;
	struct request req;
	int r = 0;

	for (;;) {
		if (c->skip) {			/* a body to drop */
			size_t k = c->have - used;

			if ((long)k > c->skip)
				k = (size_t)c->skip;
			used += k;
			c->skip -= (long)k;
			if (c->skip)
				break;
		}
		/* RFC 9112 2.2: ignore empty lines before a request. */
		while (c->have - used >= 2 && !memcmp(c->in + used, "\r\n", 2))
			used += 2;
		if (used == c->have)
			break;
		len = head_length(c->in + used, c->have - used);
		if (!len) {
			r = check_partial(c->in + used, c->have - used);
			break;
		}
		r = parse_head(c->in + used, len, &req);
		if (r)
			break;
		used += len;
		c->skip = req.length;
		c->since = weft_now(); /* the body, or the next request */
		r = answer(c, &req);
		if (r || !req.keep_alive) {
			r = 1;
			break;
		}
	}
	memmove(c->in, c->in + used, c->have - used);
	c->have -= used;
	if (!r && c->have == sizeof(c->in) && !c->skip)
		r = 431;
	return r;
}

/* Receives more, within the deadline of the request or of the idle time. */
static ssize_t receive(struct conn *c, bool idle)
{
	struct weft_deadline d;
	ssize_t n;

	n = weft_deadline_enter_at(&d, idle ? weft_now() + IDLE_TIMEOUT
				   : c->since + HEAD_TIMEOUT);
	if (n)
		return n;
	n = weft_recv(c->fd, c->in + c->have, sizeof(c->in) - c->have, 0);
	weft_deadline_leave(&d);
	return n;
}

static void http(int fd)
{
	struct conn c;
	ssize_t n;
	int r;

	c.fd = fd;
	c.have = c.out_len = 0;
	c.skip = 0;
	c.since = weft_now();
	for (;;) {
		bool idle = !c.have && !c.skip;

		n = receive(&c, idle);
		if (n == -ETIMEDOUT && (c.have || c.skip)) {
			refuse(&c, 408);
			return;
		}
		if (n <= 0)
			return;	/* closed, reset, idle, or shutdown */
		if (idle)
			c.since = weft_now(); /* a request begins */
		c.have += (size_t)n;
		r = process(&c);
		if (r >= 400) {
			refuse(&c, r);
			return;
		}
		if (flush(&c) || r)
			return;
	}
}

static void serve_http(int fd)
{
	http(fd);
	weft_close(fd);
}

int main(int argc, char **argv)
{
	return server_main(argc, argv, "http_server", serve_http);
}
