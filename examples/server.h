/*
 * What echo_server, http_server and kv_server share: the ADDR PORT
 * [WORKERS] arguments, the listening socket, one task per connection, and
 * a clean stop on SIGINT or SIGTERM.
 */
#ifndef WEFT_EXAMPLE_SERVER_H
#define WEFT_EXAMPLE_SERVER_H

/* Serves one connection; runs in its own task, and closes fd. */
typedef void (*server_handler)(int fd);

/* main() of a server called name. Returns the exit status. */
int server_main(int argc, char **argv, const char *name, server_handler handle);

#endif
