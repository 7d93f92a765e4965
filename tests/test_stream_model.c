/* Buffered stream reads against a model of the bytes sent. A feeder task
 * sends a random text in random pieces at random times, over a socketpair
 * or loopback TCP; the reader mixes readline, readuntil (delimiters of one
 * to three bytes), readexactly, read and peek at random, a quarter of them
 * under a short deadline, on a stream whose limit is random (down to one
 * byte). The model knows the text and how much of it was taken, and so
 * what each call must return:
 *  - a success takes exactly the next bytes of the text: up to and
 *    including the first delimiter, n bytes, or (read) 1 to n of them;
 *  - -EMSGSIZE exactly when the first delimiter ends past the limit, or
 *    limit bytes come without one; -ENODATA when the text ends with bytes
 *    left but no delimiter, or fewer than n; 0 when nothing is left;
 *  - a failing call, a deadline's -ETIMEDOUT included, takes nothing: the
 *    next call sees the same bytes;
 *  - peek shows the next bytes of the text, as many as buffered says;
 *  - at the end every read returns 0 and nothing stays buffered.
 * The rounds come from a fixed seed; a failure names its round and call.
 * How the bytes arrive is not reproducible, so a failing round may need a
 * few runs to fail again. */
#include <string.h>
#include <sys/socket.h>
#include "test_io_util.h"

#define SEED 0x139408dcbbf7a44ull
#define MAX_TEXT 6000
#define MAX_PIECE 300    /* bytes the feeder sends at once */
#define MAX_PAUSE_US 300 /* between the feeder's pieces */
#define MAX_DEADLINE_US 200
#define MAX_READ 8000 /* more than the read buffer's first size */
#define MAX_CALLS 100000

static const char alphabet[] = "ab\n\r";

struct feeder {
	int fd;
	const char *text;
	size_t len;
	uint64_t rng;
};

static void *feed(void *arg)
{
	struct feeder *f = arg;

	for (size_t off = 0, n; off < f->len; off += n) {
		n = 1 + rnd(&f->rng) % MAX_PIECE;
		if (n > f->len - off)
			n = f->len - off;
		ck_assert_int_eq(weft_send_all(f->fd, f->text + off, n, 0,
					       NULL),
				 (ssize_t)n);
		if (rnd(&f->rng) % 3 == 0)
			weft_sleep((int64_t)(rnd(&f->rng) % MAX_PAUSE_US) *
				   WEFT_USEC);
	}
	ck_assert_int_eq(weft_shutdown(f->fd, SHUT_WR), 0);
	return NULL;
}

/* A random text of 'a', 'b' and newlines; with '\r' in a quarter of the
 * rounds (a delimiter may have one, and then seldom or never matches); in
 * a fifth, with most newlines dropped: long lines, to overrun the limit. */
static char *make_text(uint64_t *rng, size_t len)
{
	char *text = malloc(len + 1);
	size_t letters = rnd(rng) % 4 ? 3 : 4;
	bool long_lines = rnd(rng) % 5 == 0;

	ck_assert_ptr_nonnull(text);
	for (size_t i = 0; i < len; i++) {
		text[i] = alphabet[rnd(rng) % letters];
		if (long_lines && text[i] == '\n' && rnd(rng) % 10)
			text[i] = 'a';
	}
	return text;
}

/* The reader and its model: text[pos, len) is still to be read. */
struct reader {
	long round;
	int calls;
	struct weft_stream s;
	size_t limit;
	const char *text;
	size_t len, pos;
	uint64_t rng;
};

/* Every check names the round, the call and where the model stands. */
#define model_assert(m, cond, fmt, ...)                                        \
	ck_assert_msg(cond,                                                    \
		      "seed %#llx round %ld call %d (taken %zu of %zu, "       \
		      "limit %zu): " fmt,                                      \
		      SEED, (m)->round, (m)->calls, (m)->pos, (m)->len,        \
		      (m)->limit, ##__VA_ARGS__)

/* What a readuntil of delim must return. */
static ssize_t model_until(const struct reader *m, const char *delim,
			   size_t dlen)
{
	const char *rest = m->text + m->pos;
	size_t left = m->len - m->pos;
	const char *hit = memmem(rest, left, delim, dlen);

	if (hit && (size_t)(hit - rest) + dlen <= m->limit)
		return (ssize_t)((size_t)(hit - rest) + dlen);
	if (hit || left >= m->limit)
		return -EMSGSIZE;
	return left ? -ENODATA : 0;
}

/* What a readexactly of n must return. */
static ssize_t model_exactly(const struct reader *m, size_t n)
{
	size_t left = m->len - m->pos;

	if (left >= n)
		return (ssize_t)n;
	return left ? -ENODATA : 0;
}

/* What the calls returned over all rounds, to show what was covered. */
static struct {
	long calls, timed_out, overruns, short_ends;
} tally;

static void count(ssize_t got)
{
	tally.timed_out += got == -ETIMEDOUT;
	tally.overruns += got == -EMSGSIZE;
	tally.short_ends += got == -ENODATA;
}

/* Checks that got bytes are the next of the text and takes them. */
static void take(struct reader *m, const char *call, const char *bytes,
		 ssize_t got)
{
	if (got <= 0)
		return;
	model_assert(m, !memcmp(bytes, m->text + m->pos, (size_t)got),
		     "%s: bytes not the text's", call);
	m->pos += (size_t)got;
}

/* Checks a call against the model's answer; under a deadline the call may
 * also have timed out, taking nothing. */
static void expect(struct reader *m, const char *call, bool timed, ssize_t got,
		   ssize_t want, const char *bytes)
{
	count(got);
	if (timed && got == -ETIMEDOUT)
		return;
	model_assert(m, got == want, "%s: got %zd, want %zd", call, got, want);
	take(m, call, bytes, got);
}

static void call_readline(struct reader *m, bool timed)
{
	const char *line;
	ssize_t got = weft_stream_readline(&m->s, &line);

	expect(m, "readline", timed, got, model_until(m, "\n", 1), line);
}

/* A delimiter of one to three random letters, none longer than the
 * limit (which the call refuses). */
static void call_readuntil(struct reader *m, bool timed)
{
	char delim[3];
	size_t dlen = 1 + rnd(&m->rng) % sizeof(delim);
	const char *line;
	ssize_t got;

	for (size_t i = 0; i < dlen; i++)
		delim[i] = alphabet[rnd(&m->rng) % 4];
	if (dlen > m->limit)
		dlen = m->limit;
	got = weft_stream_readuntil(&m->s, delim, dlen, &line);
	expect(m, "readuntil", timed, got, model_until(m, delim, dlen), line);
}

/* A read size: small in half the calls, else up to past the buffer's
 * first size (a read that big with nothing buffered skips the buffer). */
static size_t random_size(struct reader *m)
{
	return rnd(&m->rng) % (rnd(&m->rng) % 2 ? 20 : MAX_READ);
}

static void call_readexactly(struct reader *m, bool timed)
{
	static char buf[MAX_READ];
	size_t n = random_size(m);
	ssize_t got = weft_stream_readexactly(&m->s, buf, n);

	expect(m, "readexactly", timed, got, model_exactly(m, n), buf);
}

/* A read returns what is buffered or what one receive brings: 1 to n
 * bytes while any are left, 0 only at the end (or for n == 0). */
static void call_read(struct reader *m, bool timed)
{
	static char buf[MAX_READ];
	size_t n = random_size(m), left = m->len - m->pos;
	ssize_t got = weft_stream_read(&m->s, buf, n);

	count(got);
	if (timed && got == -ETIMEDOUT)
		return;
	model_assert(m, got >= 0 && (size_t)got <= n && (size_t)got <= left,
		     "read %zu: got %zd", n, got);
	model_assert(m, got > 0 || !n || !left, "read %zu: 0 before the end",
		     n);
	take(m, "read", buf, got);
}

static void call_peek(struct reader *m, bool timed)
{
	const char *p;
	size_t k = weft_stream_peek(&m->s, &p);

	model_assert(m, k == weft_stream_buffered(&m->s), "peek %zu", k);
	model_assert(m, k <= m->len - m->pos, "peek %zu: past the text", k);
	model_assert(m, !k || !memcmp(p, m->text + m->pos, k),
		     "peek: bytes not the text's");
}

static void (*const calls[])(struct reader *, bool) = {
	call_readline, call_readuntil, call_readexactly, call_read, call_peek,
};

static void random_call(struct reader *m)
{
	bool timed = rnd(&m->rng) % 4 == 0;
	struct weft_deadline d;

	m->calls++;
	tally.calls++;
	model_assert(m, m->calls <= MAX_CALLS, "no end");
	if (timed)
		ck_assert_int_eq(
			weft_deadline_enter(&d, (int64_t)(rnd(&m->rng) %
							  MAX_DEADLINE_US) *
							WEFT_USEC),
			0);
	calls[rnd(&m->rng) % (sizeof(calls) / sizeof(calls[0]))](m, timed);
	if (timed)
		ck_assert_int_ge(weft_deadline_leave(&d), 0);
}

/* Once the text is read and its end seen, every read says the end. */
static void check_end(struct reader *m)
{
	const char *line;
	char c;

	model_assert(m, !weft_stream_buffered(&m->s), "bytes after the end");
	model_assert(m, weft_stream_readline(&m->s, &line) == 0, "readline");
	model_assert(m, weft_stream_readexactly(&m->s, &c, 1) == 0, "exactly");
	model_assert(m, weft_stream_read(&m->s, &c, 1) == 0, "read");
}

/* A socketpair in even rounds, loopback TCP in odd ones, which cuts the
 * bytes into segments its own way. a: the feeder's end, b: the reader's. */
static struct pair connect_pair(long round)
{
	int fds[2];

	if (round % 2)
		return tcp_pair();
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0,
				    fds),
			 0);
	return (struct pair){ .a = fds[0], .b = fds[1] };
}

static void run_round(long round)
{
	uint64_t rng = SEED ^ ((uint64_t)round + 1) * 0x9e3779b97f4a7c15ull;
	struct reader m = { .round = round };
	struct pair p = connect_pair(round);
	struct feeder f = { .fd = p.a };
	weft_task_t t;

	m.len = f.len = rnd(&rng) % MAX_TEXT;
	m.text = f.text = make_text(&rng, m.len);
	m.limit = 1 + rnd(&rng) % (rnd(&rng) % 2 ? 40 : 5000);
	f.rng = rnd(&rng) | 1;
	m.rng = rnd(&rng) | 1;
	ck_assert_int_eq(weft_stream_init(&m.s, p.b, m.limit), 0);
	ck_assert_int_eq(weft_spawn(&t, feed, &f), 0);
	/* Past the end at random: calls after it must see it too. */
	do
		random_call(&m);
	while (m.pos < m.len || !weft_stream_at_eof(&m.s) || rnd(&m.rng) % 3);
	check_end(&m);
	ck_assert_int_eq(weft_join(t, NULL), 0);
	ck_assert_int_eq(weft_stream_close(&m.s, 0), 0);
	ck_assert_int_eq(weft_close(p.a), 0);
	free((char *)m.text);
}

static void *model_main(void *arg)
{
	/* At least a thousand rounds under the sanitizers. */
	long rounds = weft_test_scaled(4000, 1000);

	for (long round = 0; round < rounds; round++)
		run_round(round);
	fprintf(stderr,
		"stream model: %ld rounds, %ld calls: %ld timed out, "
		"%ld over the limit, %ld cut short by the end\n",
		rounds, tally.calls, tally.timed_out, tally.overruns,
		tally.short_ends);
	return NULL;
}

START_TEST(reads_match_the_model)
{
	weft_test_run(model_main, NULL, 4);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("stream_model");
	TCase *tc = tcase_create("model");

	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, reads_match_the_model);
	suite_add_tcase(s, tc);
	return io_test_main(s);
}
