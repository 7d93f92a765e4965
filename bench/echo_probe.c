/*
 * echo_probe ADDR PORT [WORKERS]: examples/echo_server with a probe of where
 * a request waits, for `echo_load --stamp` (bench/README.md, "Where a
 * request waits"). Not run by bench/run.
 *
 * echo_load --stamp writes the CLOCK_MONOTONIC time of each send into the
 * first 8 bytes of its 64-byte message. For every whole message it reads,
 * this server records
 *   inbound:  from the client's send to the server task holding the bytes
 *             (loopback, the completion reaching the worker's ring, the
 *             task's wake-up and its wait for a turn on a worker);
 *   send:     from there to its weft_send_all returning (the SQE waiting
 *             for the worker's next submit, the send, the completion, and
 *             the task's second wait for a turn);
 *   turn:     how many requests of any connection the server handled
 *             between two of this connection's: with CONNS connections
 *             served in turn it stays near CONNS whatever the machine's
 *             load; far above, some connections overtake others (an order
 *             of service that is not FIFO), which timings on a busy machine
 *             cannot show;
 *   send_turn: how many requests the server answered during the send part
 *             (the queue the send's submission and completion wait in);
 * and on SIGINT/SIGTERM prints, after the server's own lines,
 *
 *   PROBE part=inbound|send n=N p50_us=A p99_us=B p999_us=C max_us=D
 *   PROBE part=turn|send_turn n=N p50=A p99=B p999=C max=D   (requests)
 *
 * Histograms are log-linear (as echo_load's), shared by all workers through
 * relaxed atomic increments: counts only, read after every worker stopped.
 */
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <weft.h>

#include "server.h"

#define MSG 64
#define SUB_BITS 5
#define SUB (1u << SUB_BITS)
#define LINEAR (2 * SUB)
#define BUCKETS (LINEAR + (64 - SUB_BITS - 1) * SUB)

struct probe_hist {
	const char *name;
	bool counts; /* values are counts, not ns */
	_Atomic uint64_t count[BUCKETS];
	_Atomic uint64_t max;
};

static struct probe_hist inbound = { .name = "inbound" };
static struct probe_hist send_part = { .name = "send" };
static struct probe_hist turn = { .name = "turn", .counts = true };
static struct probe_hist send_turn = { .name = "send_turn", .counts = true };
static _Atomic uint64_t handled; /* requests answered, all connections */

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static unsigned bucket_of(uint64_t v)
{
	if (v < LINEAR)
		return (unsigned)v;
	unsigned e = 63u - (unsigned)__builtin_clzll(v);
	unsigned sub = (unsigned)(v >> (e - SUB_BITS)) & (SUB - 1);

	return LINEAR + (e - SUB_BITS - 1) * SUB + sub;
}

static double bucket_mid(unsigned b)
{
	if (b < LINEAR)
		return b;
	unsigned e = (b - LINEAR) / SUB + SUB_BITS + 1;
	double width = (double)(1ull << (e - SUB_BITS));

	return (double)(1ull << e) + ((b - LINEAR) % SUB) * width + width / 2;
}

/* Counts only: nothing is ordered by them, and they are read after
 * weft_run returned (its joins order every worker's increments before). */
static void probe_add(struct probe_hist *h, uint64_t ns)
{
	uint64_t m = atomic_load_explicit(&h->max, memory_order_relaxed);

	atomic_fetch_add_explicit(&h->count[bucket_of(ns)], 1,
				  memory_order_relaxed);
	while (ns > m &&
	       !atomic_compare_exchange_weak_explicit(&h->max, &m, ns,
						      memory_order_relaxed,
						      memory_order_relaxed))
		;
}

static double probe_at(struct probe_hist *h, uint64_t total, double q)
{
	uint64_t want = (uint64_t)(q * (double)total + 0.999999), seen = 0;
	double max = (double)atomic_load(&h->max);

	for (unsigned b = 0; b < BUCKETS; b++) {
		seen += atomic_load(&h->count[b]);
		if (seen >= want && want)
			return bucket_mid(b) < max ? bucket_mid(b) : max;
	}
	return max;
}

static void probe_print(struct probe_hist *h)
{
	uint64_t n = 0;

	for (unsigned b = 0; b < BUCKETS; b++)
		n += atomic_load(&h->count[b]);
	const char *u = h->counts ? "" : "_us";
	double div = h->counts ? 1 : 1e3;

	printf("PROBE part=%s n=%llu p50%s=%.1f p99%s=%.1f p999%s=%.1f "
	       "max%s=%.1f\n",
	       h->name, (unsigned long long)n, u, probe_at(h, n, 0.50) / div, u,
	       probe_at(h, n, 0.99) / div, u, probe_at(h, n, 0.999) / div, u,
	       (double)atomic_load(&h->max) / div);
}

static void echo(int fd)
{
	unsigned char buf[MSG];
	size_t got = 0;
	ssize_t n;
	uint64_t last = 0; /* `handled` at this connection's last answer */

	/* One message in flight per connection: read whole messages. */
	while ((n = weft_recv(fd, buf + got, MSG - got, 0)) > 0) {
		got += (size_t)n;
		if (got < MSG)
			continue;
		uint64_t t1 = now_ns(), sent;
		uint64_t h1 =
			atomic_load_explicit(&handled, memory_order_relaxed);

		memcpy(&sent, buf, sizeof(sent));
		if (sent && sent <= t1)
			probe_add(&inbound, t1 - sent);
		if (weft_send_all(fd, buf, MSG, 0, NULL) < 0)
			break;
		probe_add(&send_part, now_ns() - t1);
		uint64_t h = atomic_fetch_add_explicit(&handled, 1,
						       memory_order_relaxed);
		probe_add(&send_turn, h - h1);
		if (last)
			probe_add(&turn, h - last);
		last = h;
		got = 0;
	}
}

int main(int argc, char **argv)
{
	int r = server_main(argc, argv, "echo_probe", echo);

	probe_print(&inbound);
	probe_print(&send_part);
	probe_print(&turn);
	probe_print(&send_turn);
	return r;
}
