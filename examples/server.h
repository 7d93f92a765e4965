/*
 * What echo_server, http_server and kv_server share: the ADDR PORT
 * [WORKERS] arguments, the listening socket, one task per connection, a
 * clean stop on SIGINT or SIGTERM, and timeouts set from the environment.
 */
#ifndef WEFT_EXAMPLE_SERVER_H
#define WEFT_EXAMPLE_SERVER_H

#include <stdbool.h>
#include <stdint.h>

/* Serves one connection; runs in its own task, and closes fd. */
typedef void (*server_handler)(int fd);

/* Whether argv asks for the usage (-h or --help, anywhere); if so, prints
 * it to stdout. A server's main() asks first, and returns 0 if so: before
 * it reads its environment, whose complaint would hide the usage. */
bool server_help(int argc, char **argv, const char *name);

/* main() of a server called name, after server_help. Returns the exit
 * status. */
int server_main(int argc, char **argv, const char *name, server_handler handle);

/* Whether bytes from the client wait in fd's socket, unread (a peek that
 * does not wait). For a task that finds its idle time gone: one that ran
 * late (a loaded machine) finds its deadline passed, and its receive then
 * says -ETIMEDOUT before it tries, so bytes that came in time would be
 * taken for silence. Call it outside the deadline's scope. */
bool server_bytes_waiting(int fd);

/* Sets *ns from $var, if set: a whole number of milliseconds, at least 1;
 * past about 146 years means that (so a timeout plus a linger stays far
 * from int64_t's end). Returns false, and says so as server name, for
 * anything else. */
bool server_timeout_env(const char *name, const char *var, int64_t *ns);

#endif
