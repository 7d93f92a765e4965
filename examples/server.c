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
	struct weft_group conns; /* a task per connection */
	struct weft_signal stop; /* SIGINT, SIGTERM */
} server;

static void *connection(void *arg)
{
	server.handle((int)(intptr_t)arg);
	return NULL;
}

/* Errors of accept that concern one client, or pass. */
static bool transient(int err)
{
	return err == -ECONNABORTED || err == -EPROTO || err == -EPERM ||
	       err == -EINTR || err == -EAGAIN || err == -ENETDOWN ||
	       err == -EHOSTUNREACH || err == -ENETUNREACH;
}

static void *accept_loop(void *arg)
{
	for (;;) {
		int fd = weft_accept(server.lfd, NULL, NULL);

		if (fd == -EMFILE || fd == -ENFILE || fd == -ENOBUFS ||
		    fd == -ENOMEM) {
			/* Out of descriptors or memory: give connections
			 * 10 ms to end rather than spin on the error. */
			fd = weft_sleep(10 * WEFT_MSEC);
			if (fd == -ECANCELED)
				return NULL;
			continue;
		}
		if (fd == -ECANCELED)
			return NULL;
		if (fd < 0 && transient(fd))
			continue;
		if (fd < 0) {
			fprintf(stderr, "%s: accept: %s\n", server.name,
				strerror(-fd));
			return ERR_PTR(fd);
		}
		if (weft_group_spawn(&server.conns, connection,
				     (void *)(intptr_t)fd))
			weft_close(fd);
	}
}

static void *serve(void *unused)
{
	weft_task_t acceptor;
	int r, sig;

	server.lfd = weft_tcp_listen(server.host, server.port, 0, 0);
	if (server.lfd < 0) {
		fprintf(stderr, "%s: cannot listen on %s port %u: %s\n",
			server.name, server.host ? server.host : "*",
			server.port, strerror(-server.lfd));
		return ERR_PTR(server.lfd);
	}
	r = weft_spawn_opts(&acceptor, accept_loop, NULL,
			    &(struct weft_spawn_opts){ .name = "accept" });
	if (r) {
		weft_close(server.lfd);
		return ERR_PTR(r);
	}
	printf("%s listening on %s:%d workers=%d\n", server.name,
	       server.host ? server.host : "*", weft_local_port(server.lfd),
	       weft_workers());

	r = weft_signal_wait(&server.stop, &sig);
	weft_cancel(acceptor);
	/* Shielded: the acceptor must be gone before the socket closes,
	 * even if this task was cancelled itself. */
	struct weft_shield sh;
	weft_shield_enter(&sh);
	if (weft_join(acceptor, NULL))
		fprintf(stderr, "%s: lost the acceptor\n", server.name);
	weft_shield_leave(&sh);
	weft_close(server.lfd);
	if (!r)
		printf("%s: %s: stopping, closing %d connections\n",
		       server.name, strsignal(sig),
		       weft_group_running(&server.conns));
	weft_group_shutdown(&server.conns);
	return ERR_PTR(r);
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

static int usage(const char *name)
{
	fprintf(stderr,
		"usage: %s ADDR PORT [WORKERS]\n"
		"  ADDR     address to listen on (* for all)\n"
		"  PORT     TCP port (0: any free one; the start line says "
		"which)\n"
		"  WORKERS  worker threads (0 or absent: one per CPU)\n",
		name);
	return 2;
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
	char *end;
	long v;
	int r;

	if (argc < 3 || argc > 4)
		return usage(name);
	server.name = name;
	server.handle = handle;
	server.host = strcmp(argv[1], "*") ? argv[1] : NULL;
	v = strtol(argv[2], &end, 10);
	if (*end || end == argv[2] || v < 0 || v > 65535)
		return usage(name);
	server.port = (unsigned)v;
	if (argc == 4 && *argv[3]) {
		v = strtol(argv[3], &end, 10);
		if (*end || v < 0 || v > WEFT_WORKERS_MAX)
			return usage(name);
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
