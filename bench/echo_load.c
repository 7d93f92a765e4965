/*
 * echo_load [--http] [--rate R] ADDR PORT CONNS SECS [IMPL]: load generator
 * for the echo and HTTP servers of bench/run.
 *
 * CONNS connections to ADDR:PORT (loopback only), each with at most one
 * request in flight. A request is a 64-byte message that must come back
 * byte for byte (echo), or with --http a keep-alive "GET /" whose answer must
 * be "200" with the body "Hello, World!".
 *
 * Closed loop (default): every connection sends its next request as soon as
 * the answer to the last is in; latency runs from the send.
 * Open loop (--rate R, requests per second over all connections): request n
 * is due at start + n/R on connection n mod CONNS, whether or not the server
 * kept up. A connection still waiting for an earlier answer sends it as soon
 * as that answer is in, and its latency still runs from when it was due, so
 * a server that stalls is charged for every request it held up (no
 * coordinated omission, as in wrk2). After SECS seconds nothing more is due;
 * requests already due get up to DRAIN_SECS more to finish, and any still
 * unanswered then are counted at the latency they had reached
 * (unfinished=N says how many).
 *
 * Prints, as its last line,
 *
 *   RESULT name=echo|http impl=IMPL ops=N secs=S ns_per_op=NS rps=R
 *          p50_us=A p99_us=B p999_us=C max_us=D load_runq_ms=W
 *          turn_p50=T turn_p99=U turn_p999=V [rate=R unfinished=U]
 *
 * --stamp (echo only) puts the CLOCK_MONOTONIC time of each send in the
 * first 8 bytes of the message, for bench/echo_probe.c.
 * Latencies are recorded in a log-linear histogram (a power of two split in
 * 32 steps: within about 3%), so nothing is allocated per request.
 * turn_*: how many answers (on this thread's connections) came between two
 * answers on one connection. Served in turn, a closed loop keeps it near
 * CONNS (per thread) however slow the machine; far above, some connections
 * overtake others: an order of service that is not FIFO, which latencies
 * taken on a busy machine cannot tell from the machine's noise.
 * load_runq_ms is how long the generator's threads waited for a CPU while
 * runnable: on a loaded machine, latency it added to every figure.
 * ECHO_LOAD_THREADS (default 1) spreads the connections over more threads.
 * Exits non-zero if it cannot connect, an answer is wrong, or none came back.
 * Plain C on epoll, independent of weft.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MSG 64
#define IN_MAX 1024
#define DRAIN_SECS 2

static const char http_req[] = "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
static const char http_body[] = "Hello, World!";

/* ------------------------------------------------------------ histogram -- */

/*
 * Log-linear histogram of nanoseconds: values below 64 have a bucket each;
 * above, each power of two [2^e, 2^(e+1)) is split into 32 equal buckets.
 */
#define SUB_BITS 5
#define SUB (1u << SUB_BITS)
#define LINEAR (2 * SUB)
#define BUCKETS (LINEAR + (64 - SUB_BITS - 1) * SUB)

struct hist {
	uint64_t count[BUCKETS];
	uint64_t total;
	uint64_t max;
};

static unsigned bucket_of(uint64_t v)
{
	if (v < LINEAR)
		return (unsigned)v;
	unsigned e = 63u - (unsigned)__builtin_clzll(v); /* e >= 6 */
	unsigned sub = (unsigned)(v >> (e - SUB_BITS)) & (SUB - 1);
	return LINEAR + (e - SUB_BITS - 1) * SUB + sub;
}

/* The middle of bucket b's range, the value a percentile reports. */
static double bucket_mid(unsigned b)
{
	if (b < LINEAR)
		return b;
	unsigned e = (b - LINEAR) / SUB + SUB_BITS + 1;
	unsigned sub = (b - LINEAR) % SUB;
	double width = (double)(1ull << (e - SUB_BITS));
	return (double)(1ull << e) + sub * width + width / 2;
}

static void hist_add(struct hist *h, uint64_t ns)
{
	h->count[bucket_of(ns)]++;
	h->total++;
	if (ns > h->max)
		h->max = ns;
}

static void hist_merge(struct hist *into, const struct hist *h)
{
	for (unsigned b = 0; b < BUCKETS; b++)
		into->count[b] += h->count[b];
	into->total += h->total;
	if (h->max > into->max)
		into->max = h->max;
}

/* The q-quantile in microseconds: the smallest bucket holding rank ceil(q*n),
 * never above the largest value seen. */
static double hist_us(const struct hist *h, double q)
{
	uint64_t want = (uint64_t)(q * (double)h->total + 0.999999), seen = 0;
	if (want == 0)
		want = 1;
	for (unsigned b = 0; b < BUCKETS; b++) {
		seen += h->count[b];
		if (seen >= want) {
			double v = bucket_mid(b);
			return (v > (double)h->max ? (double)h->max : v) / 1e3;
		}
	}
	return (double)h->max / 1e3;
}

/* -------------------------------------------------------- connections -- */

struct conn {
	int fd;
	uint32_t id;          /* index among all connections */
	bool busy;            /* a request is in flight */
	uint64_t sent;        /* requests sent */
	uint64_t due;         /* open loop: requests due so far */
	uint64_t intended_ns; /* when the one in flight was due (or sent) */
	uint64_t last_done;   /* the thread's `ops` at this one's last answer */
	size_t got;
	unsigned char out[MSG];
	unsigned char in[IN_MAX];
};

struct worker {
	pthread_t thread;
	struct conn *conns;
	size_t nconns;
	double period_ns; /* open loop: ns between this thread's requests */
	uint64_t ops;
	uint64_t unfinished;
	uint64_t runq_ns; /* time this thread waited for a CPU */
	struct hist hist;
	struct hist turn; /* answers to others between two of one conn's */
	int failed;
};

static pthread_barrier_t start_barrier;
static uint64_t start_ns, deadline_ns;
static bool http_mode;
static bool stamp;  /* --stamp: the send time in each message */
static double rate; /* open loop: requests/s; 0: closed loop */

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void fill(struct conn *c)
{
	/* Bytes that differ per connection and per message, so a mixed-up or
	 * stale echo is caught. */
	for (size_t i = 0; i < MSG; i++)
		c->out[i] =
			(unsigned char)(c->id * 131u + c->sent * 31u + i * 7u);
}

/* Write the whole request; a small request into an idle socket does not
 * block in practice, but be correct if it would. */
static int send_request(struct conn *c, uint64_t intended)
{
	const unsigned char *buf = c->out;
	size_t len = MSG, off = 0;

	if (http_mode) {
		buf = (const unsigned char *)http_req;
		len = sizeof http_req - 1;
	} else {
		fill(c);
		if (stamp) {
			uint64_t t = now_ns();
			memcpy(c->out, &t, sizeof(t));
		}
	}
	c->got = 0;
	c->busy = true;
	c->intended_ns = intended;
	c->sent++;
	while (off < len) {
		ssize_t n = send(c->fd, buf + off, len - off, MSG_NOSIGNAL);
		if (n > 0) {
			off += (size_t)n;
		} else if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
			struct pollfd p = { .fd = c->fd, .events = POLLOUT };
			poll(&p, 1, 100);
		} else {
			return -1;
		}
	}
	return 0;
}

/* How many bytes the HTTP answer in c->in will have in all, 0 if its head
 * is not complete yet, -1 if it is not the answer expected. */
static long http_answer_len(struct conn *c)
{
	const char *in = (const char *)c->in;
	const char *end = memmem(in, c->got, "\r\n\r\n", 4);
	if (!end)
		return c->got >= IN_MAX ? -1 : 0;
	if (c->got < 12 || memcmp(in, "HTTP/1.1 200", 12) != 0)
		return -1;
	long body = -1;
	for (const char *p = in; p < end; p++) {
		if (p[0] == '\n' && !strncasecmp(p + 1, "Content-Length:", 15))
			body = strtol(p + 16, NULL, 10);
	}
	long len = (long)(end - in) + 4 + body;
	if (body != (long)sizeof http_body - 1 || len > IN_MAX)
		return -1;
	return len;
}

/* 1 if the answer in c->in is complete and right, 0 if more is to come,
 * -1 if it is wrong. */
static int answer_complete(struct conn *c)
{
	if (!http_mode) {
		if (c->got < MSG)
			return 0;
		return memcmp(c->in, c->out, MSG) == 0 ? 1 : -1;
	}
	long len = http_answer_len(c);
	if (len <= 0)
		return (int)len;
	if (c->got < (size_t)len)
		return 0;
	if (c->got > (size_t)len)
		return -1; /* one request in flight: nothing may follow */
	return memcmp(c->in + len - (sizeof http_body - 1), http_body,
		      sizeof http_body - 1) == 0
		       ? 1
		       : -1;
}

/* The time request j of connection c was due (open loop). */
static uint64_t due_time(const struct worker *w, const struct conn *c,
			 uint64_t j)
{
	size_t i = (size_t)(c - w->conns);
	return start_ns +
	       (uint64_t)((double)(j * w->nconns + i) * w->period_ns);
}

/* Send the oldest request due on c, if it is idle and one is due. */
static int send_due(struct worker *w, struct conn *c)
{
	if (c->busy || c->sent >= c->due)
		return 0;
	return send_request(c, due_time(w, c, c->sent));
}

/* Open loop: mark due every request whose time has come before `now` (and
 * before the deadline). Returns when the next one falls due, or UINT64_MAX
 * if none will. */
static uint64_t release(struct worker *w, uint64_t *next, uint64_t now)
{
	for (;;) {
		uint64_t n = *next;
		struct conn *c = &w->conns[n % w->nconns];
		uint64_t t = due_time(w, c, n / w->nconns);
		if (t >= deadline_ns)
			return UINT64_MAX;
		if (t > now)
			return t;
		c->due++;
		(*next)++;
		if (send_due(w, c) < 0)
			return 0;
	}
}

/* Read what c has; on a complete answer record it and send the next. */
static int on_readable(struct worker *w, struct conn *c, bool closing)
{
	ssize_t r = recv(c->fd, c->in + c->got, IN_MAX - c->got, 0);
	if (r < 0 && (errno == EAGAIN || errno == EINTR))
		return 0;
	if (r <= 0) {
		fprintf(stderr, "echo_load: connection %u: %s\n", c->id,
			r == 0 ? "closed by server" : strerror(errno));
		return -1;
	}
	c->got += (size_t)r;
	int done = answer_complete(c);
	if (done < 0) {
		fprintf(stderr, "echo_load: connection %u: wrong answer\n",
			c->id);
		return -1;
	}
	if (done == 0)
		return 0;
	uint64_t t = now_ns();
	c->busy = false;
	if (rate == 0 && t > deadline_ns)
		return 0; /* closed loop: after the bell, not counted */
	hist_add(&w->hist, t - c->intended_ns);
	if (c->last_done)
		hist_add(&w->turn, w->ops - c->last_done);
	w->ops++;
	c->last_done = w->ops;
	if (rate > 0)
		return send_due(w, c);
	return closing ? 0 : send_request(c, now_ns());
}

static bool all_idle(const struct worker *w)
{
	for (size_t i = 0; i < w->nconns; i++)
		if (w->conns[i].busy || w->conns[i].sent < w->conns[i].due)
			return false;
	return true;
}

/* Open loop: requests still unanswered at the end of the drain are counted
 * at the latency they reached, so a stalled server cannot hide them. */
static void count_unfinished(struct worker *w)
{
	uint64_t t = now_ns();
	for (size_t i = 0; i < w->nconns; i++) {
		struct conn *c = &w->conns[i];
		if (c->busy) {
			hist_add(&w->hist, t - c->intended_ns);
			w->unfinished++;
		}
		for (uint64_t j = c->sent; j < c->due; j++) {
			hist_add(&w->hist, t - due_time(w, c, j));
			w->unfinished++;
		}
	}
}

/* Time this thread has spent runnable but waiting for a CPU (the second
 * field of schedstat), 0 if the kernel does not say. */
static uint64_t runq_wait_ns(void)
{
	unsigned long long run = 0, wait = 0;
	FILE *f = fopen("/proc/thread-self/schedstat", "r");
	if (!f)
		return 0;
	if (fscanf(f, "%llu %llu", &run, &wait) != 2)
		wait = 0;
	fclose(f);
	return wait;
}

static int wait_events(int ep, struct epoll_event *evs, int max, uint64_t until)
{
	uint64_t now = now_ns();
	uint64_t d = until > now ? until - now : 0;
	struct timespec ts = { .tv_sec = (time_t)(d / 1000000000u),
			       .tv_nsec = (long)(d % 1000000000u) };
	return epoll_pwait2(ep, evs, max, &ts, NULL);
}

static int setup(struct worker *w)
{
	int ep = epoll_create1(0);
	if (ep < 0) {
		perror("echo_load: epoll_create1");
		return -1;
	}
	for (size_t i = 0; i < w->nconns; i++) {
		struct epoll_event ev = { .events = EPOLLIN,
					  .data.ptr = &w->conns[i] };
		if (epoll_ctl(ep, EPOLL_CTL_ADD, w->conns[i].fd, &ev) < 0) {
			perror("echo_load: epoll_ctl");
			close(ep);
			return -1;
		}
	}
	return ep;
}

static void *run(void *arg)
{
	struct worker *w = arg;
	struct epoll_event evs[64];
	uint64_t next = 0, next_due = 0;
	uint64_t drain_end = UINT64_MAX;
	int ep = setup(w);

	/* Wake-ups a few ns apart, not the 50 us of default timer slack. */
	prctl(PR_SET_TIMERSLACK, 1UL);
	if (ep < 0)
		w->failed = 1;
	pthread_barrier_wait(&start_barrier);
	if (w->failed)
		goto out;

	w->runq_ns = runq_wait_ns();
	if (rate == 0) {
		for (size_t i = 0; i < w->nconns; i++)
			if (send_request(&w->conns[i], now_ns()) < 0)
				goto send_failed;
	}
	for (;;) {
		uint64_t now = now_ns(), until;
		if (rate > 0 && now < deadline_ns) {
			next_due = release(w, &next, now);
			if (next_due == 0)
				goto send_failed;
		}
		if (now >= deadline_ns) {
			if (rate == 0 || all_idle(w))
				break;
			if (drain_end == UINT64_MAX)
				drain_end = deadline_ns +
					    DRAIN_SECS * 1000000000ull;
			if (now >= drain_end) {
				count_unfinished(w);
				break;
			}
			until = drain_end;
		} else {
			until = rate > 0 && next_due < deadline_ns
					? next_due
					: deadline_ns;
		}
		int n = wait_events(ep, evs, 64, until);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			perror("echo_load: epoll_pwait2");
			w->failed = 1;
			break;
		}
		for (int i = 0; i < n; i++) {
			if (on_readable(w, evs[i].data.ptr,
					now_ns() > deadline_ns) < 0) {
				w->failed = 1;
				goto out;
			}
		}
	}
	goto out;
send_failed:
	perror("echo_load: send");
	w->failed = 1;
out:
	w->runq_ns = runq_wait_ns() - w->runq_ns;
	if (ep >= 0)
		close(ep);
	return NULL;
}

/* ---------------------------------------------------------------- main -- */

static long parse_pos(const char *s, const char *what)
{
	char *end;
	long v = strtol(s, &end, 10);
	if (*s == '\0' || *end != '\0' || v <= 0) {
		fprintf(stderr, "echo_load: bad %s: %s\n", what, s);
		exit(2);
	}
	return v;
}

static int connect_all(const struct sockaddr_in *sa, struct conn *conns,
		       size_t nconns)
{
	for (size_t i = 0; i < nconns; i++) {
		int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		int one = 1;
		if (fd < 0 ||
		    connect(fd, (const struct sockaddr *)sa, sizeof *sa) < 0) {
			fprintf(stderr,
				"echo_load: connect (connection %zu):"
				" %s\n",
				i, strerror(errno));
			return -1;
		}
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
		int fl = fcntl(fd, F_GETFL);
		if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0) {
			perror("echo_load: fcntl");
			return -1;
		}
		conns[i].fd = fd;
		conns[i].id = (uint32_t)i;
	}
	return 0;
}

static void usage(const char *argv0)
{
	fprintf(stderr,
		"usage: %s [--http | --stamp] [--rate R] ADDR PORT "
		"CONNS SECS [IMPL]\n",
		argv0);
	exit(2);
}

int main(int argc, char **argv)
{
	int a = 1;
	for (; a < argc && argv[a][0] == '-'; a++) {
		if (!strcmp(argv[a], "--http"))
			http_mode = true;
		else if (!strcmp(argv[a], "--stamp"))
			stamp = true;
		else if (!strcmp(argv[a], "--rate") && a + 1 < argc)
			rate = (double)parse_pos(argv[++a], "rate");
		else
			usage(argv[0]);
	}
	if (argc - a < 4)
		usage(argv[0]);
	struct sockaddr_in sa = { .sin_family = AF_INET };
	if (inet_pton(AF_INET, argv[a], &sa.sin_addr) != 1 ||
	    (ntohl(sa.sin_addr.s_addr) >> 24) != 127) {
		fprintf(stderr,
			"echo_load: ADDR must be an IPv4 loopback "
			"address (127.x.y.z), not %s\n",
			argv[a]);
		return 2;
	}
	long port = parse_pos(argv[a + 1], "PORT");
	if (port > 65535) {
		fprintf(stderr, "echo_load: bad PORT: %s\n", argv[a + 1]);
		return 2;
	}
	sa.sin_port = htons((uint16_t)port);
	size_t nconns = (size_t)parse_pos(argv[a + 2], "CONNS");
	long secs = parse_pos(argv[a + 3], "SECS");
	const char *impl = argc > a + 4 ? argv[a + 4] : "unknown";
	size_t nthreads = 1;
	const char *env = getenv("ECHO_LOAD_THREADS");
	if (env && *env)
		nthreads = (size_t)parse_pos(env, "ECHO_LOAD_THREADS");
	if (nthreads > nconns)
		nthreads = nconns;

	struct conn *conns = calloc(nconns, sizeof *conns);
	struct worker *ws = calloc(nthreads, sizeof *ws);
	struct hist *hist = calloc(1, sizeof *hist);
	struct hist *turn = calloc(1, sizeof *turn);
	if (!conns || !ws || !hist || !turn) {
		fprintf(stderr, "echo_load: out of memory\n");
		return 1;
	}
	if (connect_all(&sa, conns, nconns) < 0)
		return 1;

	size_t per = nconns / nthreads, extra = nconns % nthreads, at = 0;
	pthread_barrier_init(&start_barrier, NULL, (unsigned)nthreads + 1);
	for (size_t t = 0; t < nthreads; t++) {
		ws[t].conns = conns + at;
		ws[t].nconns = per + (t < extra);
		/* Each thread carries its share of the rate. */
		if (rate > 0)
			ws[t].period_ns = 1e9 * (double)nconns /
					  (rate * (double)ws[t].nconns);
		at += ws[t].nconns;
		if (pthread_create(&ws[t].thread, NULL, run, &ws[t]) != 0) {
			fprintf(stderr, "echo_load: pthread_create failed\n");
			return 1;
		}
	}
	start_ns = now_ns();
	deadline_ns = start_ns + (uint64_t)secs * 1000000000u;
	pthread_barrier_wait(&start_barrier);

	uint64_t ops = 0, unfinished = 0, runq = 0;
	int failed = 0;
	for (size_t t = 0; t < nthreads; t++) {
		pthread_join(ws[t].thread, NULL);
		ops += ws[t].ops;
		unfinished += ws[t].unfinished;
		runq += ws[t].runq_ns;
		failed |= ws[t].failed;
		hist_merge(hist, &ws[t].hist);
		hist_merge(turn, &ws[t].turn);
	}
	for (size_t i = 0; i < nconns; i++)
		close(conns[i].fd);
	if (failed)
		return 1;
	if (ops == 0) {
		fprintf(stderr, "echo_load: no answer came back\n");
		return 1;
	}
	double s = (double)(deadline_ns - start_ns) / 1e9;
	printf("RESULT name=%s impl=%s ops=%llu secs=%.6f ns_per_op=%.2f "
	       "rps=%.0f p50_us=%.1f p99_us=%.1f p999_us=%.1f max_us=%.1f "
	       "load_runq_ms=%.1f turn_p50=%.0f turn_p99=%.0f turn_p999=%.0f",
	       http_mode ? "http" : "echo", impl, (unsigned long long)ops, s,
	       s * 1e9 / (double)ops, (double)ops / s, hist_us(hist, 0.50),
	       hist_us(hist, 0.99), hist_us(hist, 0.999),
	       (double)hist->max / 1e3, (double)runq / 1e6,
	       hist_us(turn, 0.50) * 1e3, hist_us(turn, 0.99) * 1e3,
	       hist_us(turn, 0.999) * 1e3);
	if (rate > 0)
		printf(" rate=%.0f unfinished=%llu", rate,
		       (unsigned long long)unfinished);
	printf("\n");
	return 0;
}
