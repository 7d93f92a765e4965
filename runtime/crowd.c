/* Crowding: see crowd.h. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "weft/task.h"
#include "cpus.h"
#include "crowd.h"
#include "worker.h"

int weft__crowd_config(const struct weft_config *cfg)
{
	enum weft_crowding mode = cfg ? cfg->crowding : WEFT_CROWDING_DEFAULT;
	if (mode == WEFT_CROWDING_DEFAULT) {
		const char *env = getenv("WEFT_CROWDING");
		if (!env || !*env || !strcmp(env, "auto"))
			return 1;
		return strcmp(env, "off") ? -EINVAL : 0;
	}
	if (mode != WEFT_CROWDING_AUTO && mode != WEFT_CROWDING_OFF)
		return -EINVAL;
	return mode == WEFT_CROWDING_AUTO;
}

/* Reads a proc file's first line (or what fits) into buf: true if any. */
static bool read_line(int fd, char *buf, size_t size)
{
	ssize_t n;
	do
		n = pread(fd, buf, size - 1, 0);
	while (n < 0 && errno == EINTR);
	if (n <= 0)
		return false;
	buf[n] = '\0';
	return true;
}

/* Adds each worker's time on a CPU and runnable off one (schedstat's
 * first two numbers, in ns) to s. false: a file gave no reading. */
static bool read_workers(struct weft__crowd *c, struct weft__crowd_sample *s)
{
	for (int i = 0; i < c->nfds; i++) {
		char buf[96];
		char *end;
		if (!read_line(c->fds[i], buf, sizeof(buf)))
			return false;
		s->run += strtoull(buf, &end, 10);
		s->wait += strtoull(end, &end, 10);
	}
	return true;
}

/* The machine's idle CPU time so far, in clock ticks (/proc/stat's first
 * line: idle and iowait), or -1. */
static int64_t read_idle_ticks(struct weft__crowd *c)
{
	char buf[256];
	unsigned long long user, nice, sys, idle, iowait;
	if (c->stat_fd < 0 || !read_line(c->stat_fd, buf, sizeof(buf)) ||
	    sscanf(buf, "cpu %llu %llu %llu %llu %llu", &user, &nice, &sys,
		   &idle, &iowait) != 5)
		return -1;
	return (int64_t)(idle + iowait);
}

/* The machine's idle CPU time since the runtime started, in ns, or -1.
 * Since then, not since boot: a large machine's idle nanoseconds since
 * boot overflow 64 bits within a year. */
static int64_t read_idle(struct weft__crowd *c)
{
	int64_t ticks = read_idle_ticks(c);
	long hz = sysconf(_SC_CLK_TCK);
	if (ticks < 0 || c->idle_base < 0 || hz <= 0)
		return -1;
	return (ticks - c->idle_base) * (1000000000LL / hz);
}

/* Reads what a probe needs: the host's idle time, the process's CPU
 * time, and its share's CPUs (crowd.h). */
static void read_share(struct weft__crowd *c, struct weft__crowd_sample *s)
{
	struct timespec ts;
	s->idle = read_idle(c);
	if (!clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts))
		s->used = ts.tv_sec * 1000000000LL + ts.tv_nsec;
	else
		s->idle = -1; /* no share to weigh it against */
	s->cpus = weft__cpus_affinity();
	if (c->limit > 0 && c->limit < s->cpus)
		s->cpus = c->limit;
}

/* Spread: crowd once the workers waited CROWD_WAIT_PCT of the time they
 * were runnable, if that was a quarter of a CPU or more (less says
 * nothing). A crowding soon after a spread doubles the backoff. */
static bool spread_step(struct weft__crowd *c, int64_t now, int64_t span,
			uint64_t run, uint64_t wait)
{
	uint64_t runnable = run + wait;
	if (span <= 0 || runnable * 4 < (uint64_t)span ||
	    wait * 100 < CROWD_WAIT_PCT * runnable) {
		c->next = now + CROWD_WINDOW_NS;
		return false;
	}
	if (now - c->spread_at < CROWD_SETTLE_NS)
		c->backoff = c->backoff * 2 > CROWD_BACKOFF_MAX_NS
				     ? CROWD_BACKOFF_MAX_NS
				     : c->backoff * 2;
	else
		c->backoff = CROWD_BACKOFF_MIN_NS;
	c->next = now; /* the next look reads the idle time's baseline */
	return true;
}

/* Crowded: spread (a probe) once half a CPU was idle and ours since the
 * last reading, a backoff ago (crowd.h). */
static bool crowded_step(struct weft__crowd *c, int64_t now, int64_t span,
			 const struct weft__crowd_sample *s)
{
	c->next = now + c->backoff;
	if (s->idle < 0 || c->last.idle < 0)
		return false;
	int64_t spare = s->idle - c->last.idle;
	int64_t ours = (int64_t)(s->cpus * (double)span) -
		       (s->used - c->last.used);
	if (s->cpus > 0 && ours < spare)
		spare = ours;
	if (2 * spare < span)
		return false;
	c->spread_at = now;
	c->next = now + CROWD_WINDOW_NS;
	return true;
}

bool weft__crowd_step(struct weft__crowd *c, int64_t now,
		      const struct weft__crowd_sample *s)
{
	bool on = weft__crowded(c);
	int64_t span = now - c->since;
	bool change = on ? crowded_step(c, now, span, s)
			 : spread_step(c, now, span, s->run - c->last.run,
				       s->wait - c->last.wait);
	c->last = *s;
	c->since = now;
	if (change && !on)
		c->last.idle = -1; /* not read while spread */
	if (change)                /* relaxed: a hint (crowd.h) */
		atomic_store_explicit(&c->on, !on, memory_order_relaxed);
	return change;
}

void weft__crowd_look(struct weft_runtime *rt, int64_t now)
{
	struct weft__crowd *c = &rt->crowd;
	if (!c->enabled || now < c->next)
		return;
	struct weft__crowd_sample s = { 0 };
	if (weft__crowded(c))
		read_share(c, &s);
	if (read_workers(c, &s) && weft__crowd_step(c, now, &s))
		weft__stat_add(&c->changes, 1); /* relaxed: monitor only */
}

int weft__crowd_start(struct weft_runtime *rt)
{
	struct weft__crowd *c = &rt->crowd;
	c->backoff = CROWD_BACKOFF_MIN_NS;
	c->spread_at = INT64_MIN / 2;
	c->stat_fd = -1;
	if (rt->io != WEFT_IO_EPOLL)
		c->enabled = false; /* crowd.h: io_uring keeps it so already */
	if (!c->enabled)
		return 0;
	/* The configured CPUs' file is read now, not on the monitor's first
	 * crowded look, mid-run (cpus.c). */
	(void)weft__cpus_affinity();
	c->fds = malloc(sizeof(int) * (size_t)rt->nworkers);
	if (!c->fds)
		return -ENOMEM;
	for (; c->nfds < rt->nworkers; c->nfds++) {
		char path[64];
		snprintf(path, sizeof(path), "/proc/self/task/%d/schedstat",
			 (int)rt->workers[c->nfds].tid);
		c->fds[c->nfds] = open(path, O_RDONLY | O_CLOEXEC);
		if (c->fds[c->nfds] < 0)
			break;
	}
	c->stat_fd = open("/proc/stat", O_RDONLY | O_CLOEXEC);
	c->idle_base = read_idle_ticks(c);
	c->limit = weft__cpus_cgroup_limit("");
	struct weft__crowd_sample s = { 0 };
	if (c->nfds < rt->nworkers || !read_workers(c, &s))
		weft__crowd_stop(rt); /* no schedstat: never crowd */
	return 0;
}

void weft__crowd_stop(struct weft_runtime *rt)
{
	struct weft__crowd *c = &rt->crowd;
	for (int i = 0; i < c->nfds; i++)
		close(c->fds[i]);
	free(c->fds);
	c->fds = NULL;
	c->nfds = 0;
	if (c->stat_fd >= 0)
		close(c->stat_fd);
	c->stat_fd = -1;
	c->enabled = false;
}
