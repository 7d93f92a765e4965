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
#include <stdbool.h>
#include <sys/socket.h>
#include <weft.h>

#include "server.h"

#define SEND_TIMEOUT (10 * WEFT_SEC) /* for a client to take its echo */

static int64_t send_timeout = SEND_TIMEOUT;

static void echo(int fd)
{
	char buf[4096]; /* on the task's stack: see io.h */
	struct weft_deadline d;
	bool stalled = false;
	ssize_t n;

	/* 0: the client closed; < 0: reset, or cancelled at shutdown. Each
	 * echo within the send timeout: a deadline around the send. */
	while ((n = weft_recv(fd, buf, sizeof(buf), 0)) > 0) {
		if (weft_deadline_enter(&d, send_timeout))
			break;
		n = weft_send_all(fd, buf, (size_t)n, 0, NULL);
		stalled = weft_deadline_leave(&d) == 1 && n < 0;
		if (n < 0)
			break;
	}
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
	if (!server_timeout_env("echo_server", "ECHO_SEND_MS", &send_timeout))
		return 2;
	return server_main(argc, argv, "echo_server", echo);
}
