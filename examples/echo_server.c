/*
 * echo_server ADDR PORT [WORKERS]: writes back whatever a client sends. One
 * task per connection, each a plain blocking-style loop; thousands of them
 * share the worker threads. SIGINT or SIGTERM stops it cleanly. Bytes in,
 * the same bytes out: no framing, so it needs no stream (weft_stream) and
 * stays the raw recv/send baseline that bench/stream_echo compares with.
 *
 *   $ build/default/examples/echo_server 127.0.0.1 7000 0
 *   echo_server listening on 127.0.0.1:7000 workers=2
 */
#include <weft.h>

#include "server.h"

static void echo(int fd)
{
	char buf[4096]; /* on the task's stack: see io.h */
	ssize_t n;

	/* 0: the client closed; < 0: reset, or cancelled at shutdown. */
	while ((n = weft_recv(fd, buf, sizeof(buf), 0)) > 0)
		if (weft_send_all(fd, buf, (size_t)n, 0, NULL) < 0)
			break;
	weft_close(fd);
}

int main(int argc, char **argv)
{
	return server_main(argc, argv, "echo_server", echo);
}
