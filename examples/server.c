/*
 * The servers' common part: see server.h.
 *
 * main() starts catching SIGINT and SIGTERM (weft_signal_open) before
 * weft_run, so one that comes early is not lost, and the main task waits
 * for one with weft_signal_wait (asyncio's add_signal_handler). It then
 * stops the accept loop and shuts the connections' group down: every
 * connection task is cancelled (its recv and send return -ECANCELED, and it
 * closes its socket) and waited for. The group collects the connections'
 * failures rather than letting one cancel the others
 * (WEFT_GROUP_COLLECT): a connection's error is its own business.
 */
#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <weft.h>

#include "example.h"
#include "server.h"

static struct {
	const char *name;
	const char *host; /* NULL: every address */
	unsigned port;
	server_handler handle;
	int lfd;
	weft_task_t main;        /* serve(), cancelled if the listener fails */
	struct weft_group conns; /* a task per connection */
	struct weft_signal stop; /* SIGINT, SIGTERM */
} server;

static void *connection(void *arg)
{
	server.handle((int)(intptr_t)arg);
	return NULL;
}

/* Errors of accept that concern one client, or an interruption: try the
 * next at once. For TCP, accept(2) passes a new connection's pending
 * network error on, and says to retry as for EAGAIN. */
static bool client_error(int err)
{
	switch (-err) {
	case EAGAIN:
	case EINTR:
	case ECONNABORTED:
	case ECONNRESET:
	case EPERM: /* a firewall refused this one */
	case EPROTO:
	case ENOPROTOOPT:
	case EOPNOTSUPP:
	case ETIMEDOUT:
	case ENETDOWN:
	case ENETUNREACH:
	case ENONET:
	case EHOSTDOWN:
	case EHOSTUNREACH:
		return true;
	}
	return false;
}

/* Errors that say the listener itself is gone: no accept can succeed. */
static bool listener_gone(int err)
{
	return err == -EBADF || err == -ENOTSOCK || err == -EINVAL;
}

#define BACKOFF_MIN (5 * WEFT_MSEC)
#define BACKOFF_MAX (1 * WEFT_SEC)

/*
 * Accepts until cancelled, as Go's http.Server.Serve: any other error
 * (out of descriptors or memory, or one this loop does not know) may pass,
 * so it is retried after a pause that doubles from 5 ms up to 1 s while
 * the errors go on, rather than spun on or given up for good; and an
 * accept that fails because the listener is gone stops the server (the
 * main task is cancelled), which would otherwise run on deaf.
 */
static void *accept_loop(void *arg)
{
	int64_t backoff = 0;

	for (;;) {
		int fd = weft_accept(server.lfd, NULL, NULL);

		if (fd >= 0) {
			backoff = 0;
			if (weft_group_spawn(&server.conns, connection,
					     (void *)(intptr_t)fd))
				weft_close(fd);
			continue;
		}
		if (fd == -ECANCELED)
			return NULL;
		if (client_error(fd))
			continue;
		if (listener_gone(fd)) {
			fprintf(stderr, "%s: accept: %s: stopping\n",
				server.name, strerror(-fd));
			weft_cancel(server.main);
			return ERR_PTR(fd);
		}
		backoff = backoff ? backoff * 2 : BACKOFF_MIN;
		if (backoff > BACKOFF_MAX)
			backoff = BACKOFF_MAX;
		fprintf(stderr, "%s: accept: %s; retrying in %lld ms\n",
			server.name, strerror(-fd),
			(long long)(backoff / WEFT_MSEC));
		if (weft_sleep(backoff) == -ECANCELED)
			return NULL;
	}
}

static void *serve(void *unused)
{
	weft_task_t acceptor;
	void *failed = NULL;
	int r, sig;

	server.lfd = weft_tcp_listen(server.host, server.port, 0, 0);
	if (server.lfd < 0) {
		fprintf(stderr, "%s: cannot listen on %s port %u: %s\n",
			server.name, server.host ? server.host : "*",
			server.port, strerror(-server.lfd));
		return ERR_PTR(server.lfd);
	}
	server.main = weft_current();
	r = weft_spawn_opts(&acceptor, accept_loop, NULL,
			    &(struct weft_spawn_opts){ .name = "accept" });
	if (r) {
		weft_close(server.lfd);
		return ERR_PTR(r);
	}
	printf("%s listening on %s:%d workers=%d\n", server.name,
	       server.host ? server.host : "*", weft_local_port(server.lfd),
	       weft_workers());

	/* Until a signal, or the acceptor's cancel: the listener failed. */
	r = weft_signal_wait(&server.stop, &sig);
	weft_cancel(acceptor);
	/* Shielded: the acceptor must be gone before the socket closes,
	 * even if this task was cancelled itself. */
	struct weft_shield sh;
	bool shielded = !weft_shield_enter(&sh); /* it is, in a task */
	if (weft_join(acceptor, &failed))
		fprintf(stderr, "%s: lost the acceptor\n", server.name);
	if (shielded)
		weft_shield_leave(&sh);
	weft_close(server.lfd);
	if (!r)
		printf("%s: %s: stopping, closing %d connections\n",
		       server.name, strsignal(sig),
		       weft_group_running(&server.conns));
	int stop = weft_group_shutdown(&server.conns);
	if (stop) /* not from a member, so only a collected failure */
		fprintf(stderr, "%s: stopping the connections: %s\n",
			server.name, strerror(-stop));
	return PTR_ERR(failed) ? failed : ERR_PTR(r);
}

/* A server has as many connections as descriptors: take all we may. */
static void raise_fd_limit(void)
{
	struct rlimit rl;

	if (!getrlimit(RLIMIT_NOFILE, &rl) && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
}

/* To stdout with status 0 when asked for (-h, --help), as getopt programs
 * and the seed's examples do; to stderr with status 2 for a bad command
 * line. */
static int usage(FILE *out, const char *name)
{
	fprintf(out,
		"usage: %s ADDR PORT [WORKERS]\n"
		"  ADDR     address to listen on (* for all)\n"
		"  PORT     TCP port (0: any free one; the start line says "
		"which)\n"
		"  WORKERS  worker threads (0 or absent: one per CPU)\n",
		name);
	return out == stdout ? 0 : 2;
}

bool server_help(int argc, char **argv, const char *name)
{
	for (int i = 1; i < argc; i++)
		if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
			usage(stdout, name);
			return true;
		}
	return false;
}

/* Sets *v from s: decimal digits only, at most max. strtol alone would
 * take leading blanks and a sign (" 7000", "+7000", "-0"). */
static bool parse_number(const char *s, long max, long *v)
{
	*v = 0;
	if (!*s)
		return false;
	for (; *s; s++) {
		if (*s < '0' || *s > '9')
			return false;
		*v = *v * 10 + (*s - '0');
		if (*v > max) /* before it can overflow: max is small */
			return false;
	}
	return true;
}

struct run {
	struct weft_config cfg;
	void *res;
	int r;
};

/*
 * weft_run on a thread of its own, so that main() waits in pthread_join.
 * The kernel hands a signal sent to the process to the main thread first.
 * Its handler runs there at once, except under ThreadSanitizer, which
 * delays a handler until its thread enters a libc call it intercepts:
 * pthread_join is one, weft_run's own wait (a futex) is not.
 */
static void *run_thread(void *arg)
{
	struct run *run = arg;

	run->r = weft_run(serve, NULL, &run->cfg, &run->res);
	return NULL;
}

int server_main(int argc, char **argv, const char *name, server_handler handle)
{
	struct run run = { .res = NULL };
	struct weft_config cfg = { 0 };
	pthread_t runner;
	long v;
	int r;

	if (argc < 3 || argc > 4)
		return usage(stderr, name);
	server.name = name;
	server.handle = handle;
	server.host = strcmp(argv[1], "*") ? argv[1] : NULL;
	if (!parse_number(argv[2], 65535, &v))
		return usage(stderr, name);
	server.port = (unsigned)v;
	if (argc == 4 && *argv[3]) {
		if (!parse_number(argv[3], WEFT_WORKERS_MAX, &v))
			return usage(stderr, name);
		cfg.workers = (int)v;
	}

	weft_group_init_flags(&server.conns, WEFT_GROUP_COLLECT);
	r = weft_signal_open(&server.stop,
			     WEFT_SIGNAL(SIGINT) | WEFT_SIGNAL(SIGTERM));
	if (r) {
		fprintf(stderr, "%s: signals: %s\n", name, strerror(-r));
		return 1;
	}
	signal(SIGPIPE, SIG_IGN); /* weft's sends never raise it; others may */
	raise_fd_limit();
	setvbuf(stdout, NULL, _IOLBF, 0);

	run.cfg = cfg;
	r = -pthread_create(&runner, NULL, run_thread, &run);
	if (!r) {
		pthread_join(runner, NULL);
		r = run.r;
	}
	weft_signal_close(&server.stop);
	if (r && r != -ENOSYS) /* (for -ENOSYS weft said why already) */
		fprintf(stderr, "%s: weft_run: %s\n", name, strerror(-r));
	if (r || PTR_ERR(run.res)) /* serve() said what went wrong */
		return 1;
	printf("%s stopped\n", name);
	return 0;
}

bool server_bytes_waiting(int fd)
{
	char c;

	return weft_recv(fd, &c, 1, MSG_PEEK | MSG_DONTWAIT) > 0;
}

/* The longest timeout server_timeout_env sets. */
#define MS_MAX (INT64_MAX / WEFT_MSEC / 2)

bool server_timeout_env(const char *name, const char *var, int64_t *ns)
{
	const char *s = getenv(var);
	char *end;
	long long ms;

	if (!s || !*s)
		return true;
	errno = 0;
	ms = strtoll(s, &end, 10);
	if (!isdigit((unsigned char)*s) || *end || ms < 1) {
		fprintf(stderr,
			"%s: %s=%s: not a whole number of milliseconds above "
			"0\n",
			name, var, s);
		return false;
	}
	if (errno == ERANGE || ms > MS_MAX)
		ms = MS_MAX;
	*ns = ms * WEFT_MSEC;
	return true;
}
