/* echo_load ADDR PORT CONNS SECS [IMPL]: load generator for the echo servers.
 *
 * CONNS connections to ADDR:PORT (loopback only), each with one 64-byte
 * message in flight: send it, wait until all 64 bytes have come back and
 * match, send the next. After SECS seconds no new message is sent and the
 * round trips completed are counted. Prints
 *
 *   RESULT name=echo impl=IMPL ops=N secs=S ns_per_op=NS rps=R p50_us=P p99_us=Q
 *
 * Plain C on epoll, independent of weft. ECHO_LOAD_THREADS (default 1) sets
 * how many threads share the connections; one is enough to saturate a
 * server on a 2-core machine and leaves it the most CPU.
 * Exits non-zero if it cannot connect, an echo is wrong, or nothing came back.
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
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MSG 64
#define HIST_US 100000 /* 1 us buckets up to 100 ms, then one overflow bucket */

struct conn {
    int fd;
    uint32_t id;
    uint64_t seq;
    uint64_t sent_ns;
    size_t got;
    unsigned char out[MSG];
    unsigned char in[MSG];
};

struct worker {
    pthread_t thread;
    struct conn *conns;
    size_t nconns;
    uint64_t ops;
    uint64_t *hist; /* HIST_US + 1 buckets */
    int failed;
};

static pthread_barrier_t start_barrier;
static uint64_t deadline_ns;

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
        c->out[i] = (unsigned char)(c->id * 131u + c->seq * 31u + i * 7u);
}

/* Write the whole message; 64 bytes into an idle socket does not block in
 * practice, but be correct if it would. */
static int send_msg(struct conn *c)
{
    size_t off = 0;
    fill(c);
    c->got = 0;
    c->sent_ns = now_ns();
    while (off < MSG) {
        ssize_t n = send(c->fd, c->out + off, MSG - off, MSG_NOSIGNAL);
        if (n > 0) {
            off += (size_t)n;
        } else if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
            struct pollfd p = {.fd = c->fd, .events = POLLOUT};
            poll(&p, 1, 100);
        } else {
            return -1;
        }
    }
    return 0;
}

static void *run(void *arg)
{
    struct worker *w = arg;
    struct epoll_event evs[64];
    int ep = epoll_create1(0);
    if (ep < 0) {
        perror("echo_load: epoll_create1");
        w->failed = 1;
    }
    for (size_t i = 0; ep >= 0 && i < w->nconns; i++) {
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &w->conns[i]};
        if (epoll_ctl(ep, EPOLL_CTL_ADD, w->conns[i].fd, &ev) < 0) {
            perror("echo_load: epoll_ctl");
            w->failed = 1;
        }
    }
    pthread_barrier_wait(&start_barrier);
    if (w->failed)
        goto out;

    for (size_t i = 0; i < w->nconns; i++)
        if (send_msg(&w->conns[i]) < 0) {
            perror("echo_load: send");
            w->failed = 1;
            goto out;
        }

    for (;;) {
        uint64_t now = now_ns();
        if (now >= deadline_ns)
            break;
        int timeout_ms = (int)((deadline_ns - now) / 1000000u) + 1;
        int n = epoll_wait(ep, evs, 64, timeout_ms);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            perror("echo_load: epoll_wait");
            w->failed = 1;
            break;
        }
        for (int i = 0; i < n; i++) {
            struct conn *c = evs[i].data.ptr;
            ssize_t r = recv(c->fd, c->in + c->got, MSG - c->got, 0);
            if (r < 0 && (errno == EAGAIN || errno == EINTR))
                continue;
            if (r <= 0) {
                fprintf(stderr, "echo_load: connection %u: %s\n", c->id,
                        r == 0 ? "closed by server" : strerror(errno));
                w->failed = 1;
                goto out;
            }
            c->got += (size_t)r;
            if (c->got < MSG)
                continue;
            uint64_t t = now_ns();
            if (memcmp(c->in, c->out, MSG) != 0) {
                fprintf(stderr, "echo_load: connection %u: wrong bytes echoed\n", c->id);
                w->failed = 1;
                goto out;
            }
            if (t > deadline_ns)
                continue; /* finished after the bell: not counted, not resent */
            uint64_t us = (t - c->sent_ns) / 1000u;
            w->hist[us < HIST_US ? us : HIST_US]++;
            w->ops++;
            c->seq++;
            if (send_msg(c) < 0) {
                perror("echo_load: send");
                w->failed = 1;
                goto out;
            }
        }
    }
out:
    if (ep >= 0)
        close(ep);
    return NULL;
}

static uint64_t percentile(const uint64_t *hist, uint64_t total, double q)
{
    uint64_t want = (uint64_t)(q * (double)total), seen = 0;
    if (want == 0)
        want = 1;
    for (uint64_t us = 0; us <= HIST_US; us++) {
        seen += hist[us];
        if (seen >= want)
            return us;
    }
    return HIST_US;
}

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

int main(int argc, char **argv)
{
    if (argc < 5) {
        fprintf(stderr, "usage: %s ADDR PORT CONNS SECS [IMPL]\n", argv[0]);
        return 2;
    }
    struct sockaddr_in sa = {.sin_family = AF_INET};
    if (inet_pton(AF_INET, argv[1], &sa.sin_addr) != 1 ||
        (ntohl(sa.sin_addr.s_addr) >> 24) != 127) {
        fprintf(stderr, "echo_load: ADDR must be an IPv4 loopback address (127.x.y.z), not %s\n",
                argv[1]);
        return 2;
    }
    long port = parse_pos(argv[2], "PORT");
    if (port > 65535) {
        fprintf(stderr, "echo_load: bad PORT: %s\n", argv[2]);
        return 2;
    }
    sa.sin_port = htons((uint16_t)port);
    size_t nconns = (size_t)parse_pos(argv[3], "CONNS");
    long secs = parse_pos(argv[4], "SECS");
    const char *impl = argc > 5 ? argv[5] : "unknown";
    size_t nthreads = 1;
    const char *env = getenv("ECHO_LOAD_THREADS");
    if (env && *env)
        nthreads = (size_t)parse_pos(env, "ECHO_LOAD_THREADS");
    if (nthreads > nconns)
        nthreads = nconns;

    struct conn *conns = calloc(nconns, sizeof *conns);
    struct worker *ws = calloc(nthreads, sizeof *ws);
    if (!conns || !ws) {
        fprintf(stderr, "echo_load: out of memory\n");
        return 1;
    }
    for (size_t i = 0; i < nconns; i++) {
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        int one = 1;
        if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
            fprintf(stderr, "echo_load: connect %s:%ld (connection %zu): %s\n", argv[1], port, i,
                    strerror(errno));
            return 1;
        }
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        /* Non-blocking for the epoll loop. */
        int fl = fcntl(fd, F_GETFL);
        if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0) {
            perror("echo_load: fcntl");
            return 1;
        }
        conns[i].fd = fd;
        conns[i].id = (uint32_t)i;
    }

    size_t per = nconns / nthreads, extra = nconns % nthreads, at = 0;
    pthread_barrier_init(&start_barrier, NULL, (unsigned)nthreads + 1);
    for (size_t t = 0; t < nthreads; t++) {
        ws[t].conns = conns + at;
        ws[t].nconns = per + (t < extra);
        at += ws[t].nconns;
        ws[t].hist = calloc(HIST_US + 1, sizeof(uint64_t));
        if (!ws[t].hist) {
            fprintf(stderr, "echo_load: out of memory\n");
            return 1;
        }
        if (pthread_create(&ws[t].thread, NULL, run, &ws[t]) != 0) {
            fprintf(stderr, "echo_load: pthread_create failed\n");
            return 1;
        }
    }
    uint64_t start = now_ns();
    deadline_ns = start + (uint64_t)secs * 1000000000u;
    pthread_barrier_wait(&start_barrier);

    uint64_t ops = 0;
    int failed = 0;
    uint64_t *hist = calloc(HIST_US + 1, sizeof(uint64_t));
    for (size_t t = 0; t < nthreads; t++) {
        pthread_join(ws[t].thread, NULL);
        ops += ws[t].ops;
        failed |= ws[t].failed;
        for (size_t b = 0; hist && b <= HIST_US; b++)
            hist[b] += ws[t].hist[b];
    }
    uint64_t end = now_ns();
    if (end > deadline_ns)
        end = deadline_ns; /* nothing after the deadline was counted */
    for (size_t i = 0; i < nconns; i++)
        close(conns[i].fd);
    if (failed)
        return 1;
    if (ops == 0 || !hist) {
        fprintf(stderr, "echo_load: no round trip completed\n");
        return 1;
    }
    double s = (double)(end - start) / 1e9;
    printf("RESULT name=echo impl=%s ops=%llu secs=%.6f ns_per_op=%.2f rps=%.0f p50_us=%llu "
           "p99_us=%llu\n",
           impl, (unsigned long long)ops, s, s * 1e9 / (double)ops, (double)ops / s,
           (unsigned long long)percentile(hist, ops, 0.50),
           (unsigned long long)percentile(hist, ops, 0.99));
    return 0;
}
