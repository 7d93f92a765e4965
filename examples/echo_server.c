/*
 * echo_server ADDR PORT [WORKERS]: writes back whatever a client sends. One
 * task per connection, each a plain blocking-style loop; thousands of them
 * share the worker threads. SIGINT or SIGTERM stops it cleanly. Bytes in,
 * the same bytes out: no framing, so it needs no stream (weft_stream) and
 * stays the raw recv/send baseline that bench/stream_echo compares with.
 *
 * A client that takes nothing back for SEND_TIMEOUT ($ECHO_SEND_MS
 * milliseconds if set; the server does not start with it set to anything
 * but a whole number above 0) is given up on: the connection is reset.
 * Without it a client that sends and never reads would hold its task, and
 * both sockets' buffers, for ever once they are full.
 *
 *   $ build/default/examples/echo_server 127.0.0.1 7000 0
 *   echo_server listening on 127.0.0.1:7000 workers=2
 */
#include <errno.h>
#include <stdbool.h>
#include <sys/socket.h>
#include <weft.h>

#include "server.h"

#define SEND_TIMEOUT (10 * WEFT_SEC) /* for a client to take its echo */

static int64_t send_timeout = SEND_TIMEOUT;

/* Sends buf's n bytes back within the send timeout: 0, or the failure
 * (*stalled if it was the timeout's). An echo nearly always fits the
 * socket's buffer, and one attempt (MSG_DONTWAIT) sends it with no
 * deadline: entering and leaving one reads the clock, each time, and
 * only an echo left to wait for room needs it. */
static ssize_t echo_back(int fd, const char *buf, size_t n, bool *stalled)
{
	struct weft_deadline d;
	ssize_t r = weft_send(fd, buf, n, MSG_DONTWAIT);

	if (r == (ssize_t)n)
		return 0;
	if (r < 0 && r != -EAGAIN)
		return r;
	if (r > 0) {
		buf += r;
		n -= (size_t)r;
	}
	if ((r = weft_deadline_enter(&d, send_timeout)))
		return r;
	r = weft_send_all(fd, buf, n, 0, NULL);
	*stalled = weft_deadline_leave(&d) == 1 && r < 0;
	return r < 0 ? r : 0;
}

static void echo(int fd)
{
	char buf[4096]; /* on the task's stack: see io.h */
	bool stalled = false;
	ssize_t n;

	/* 0: the client closed; < 0: reset, or cancelled at shutdown. */
	while ((n = weft_recv(fd, buf, sizeof(buf), 0)) > 0)
		if (echo_back(fd, buf, (size_t)n, &stalled))
			break;
	/* A client that stopped reading is given up on with a reset: a
	 * graceful close would leave the kernel holding the unsent bytes,
	 * and the connection, for as long as the client does not read
	 * (docs/concepts.md, weft_stream_abort). */
	if (stalled)
		setsockopt(fd, SOL_SOCKET, SO_LINGER,
			   &(struct linger){ .l_onoff = 1, .l_linger = 0 },
			   sizeof(struct linger));
	weft_close(fd);
}

int main(int argc, char **argv)
{
	if (server_help(argc, argv, "echo_server"))
		return 0;
	if (!server_timeout_env("echo_server", "ECHO_SEND_MS", &send_timeout))
		return 2;
	return server_main(argc, argv, "echo_server", echo);
}
