/*
 * echo_server ADDR PORT [WORKERS]: writes back whatever a client sends. One
 * task per connection, each a plain blocking-style loop; thousands of them
 * share the worker threads. SIGINT or SIGTERM stops it cleanly.
 *
 *   $ build/default/examples/echo_server 127.0.0.1 7000 0
 *   echo_server listening on 127.0.0.1:7000 workers=2
 */
#include <weft.h>

#include "server.h"

static void echo(int fd)
{
	char buf[4096];		/* on the task's stack: see io.h */
	ssize_t n;

	/* 0: the client closed; < 0: reset, or cancelled at shutdown. */
	while ((n = weft_recv(fd, buf, sizeof(buf), 0)) > 0)
		if (weft_send_all(fd, buf, (size_t)n, 0, NULL) < 0)
			break;
}

int main(int argc, char **argv)
{
	return server_main(argc, argv, "echo_server", echo);
}
