/*
 * kv_server ADDR PORT [WORKERS]: an in-memory key-value store spoken line
 * by line, one task per connection over a weft_stream:
 *
 *   SET key value\n   ->  OK\n             (value: the rest of the line)
 *   GET key\n         ->  VALUE value\n  or  NOT_FOUND\n
 *   DEL key\n         ->  DELETED\n      or  NOT_FOUND\n
 *   QUIT\n            ->  BYE\n, and the server closes
 *   anything else     ->  ERROR reason\n
 *
 * Answers to pipelined commands are sent together, once no whole command
 * is left buffered. A line longer than LINE_MAX gets "ERROR line too long"
 * and the connection is closed; so is a connection idle for IDLE_TIMEOUT
 * ($KV_IDLE_MS milliseconds if set), and one whose command, begun by then,
 * is not whole IDLE_TIMEOUT later. One whose client takes no answer for
 * SEND_TIMEOUT ($KV_SEND_MS) while a command is run and answered (it may
 * pipeline commands and never read) is reset. The server does not start with
 * either set to anything but a whole number of milliseconds above 0.
 * SIGINT or SIGTERM stops the server (see server.c: weft_signal_wait, then
 * weft_group_shutdown).
 *
 * The store holds at most MAX_BYTES ($KV_MAX_BYTES if set: a whole number
 * of bytes above 0), keys, values and each entry's bookkeeping counted, as
 * memcached's -m: a SET that would pass it gets "ERROR out of memory" and
 * stores nothing (an older value of its key stays); a DEL makes room.
 *
 *   $ build/default/examples/kv_server 127.0.0.1 7001 0 &
 *   $ printf 'SET a 1\nGET a\n' | nc -q1 127.0.0.1 7001
 *   OK
 *   VALUE 1
 */
#include <ctype.h>
#include <errno.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <weft.h>

#include "server.h"

#define LINE_MAX_ 4096 /* a command, newline included */
#define IDLE_TIMEOUT (30 * WEFT_SEC)
#define SEND_TIMEOUT (10 * WEFT_SEC) /* for a client to take answers */
#define LINGER (1 * WEFT_SEC)        /* reading after the last answer */
#define BUCKETS 4096                 /* of the hash table */
#define STRIPES 64                   /* locks, each over BUCKETS/STRIPES */
#define MAX_BYTES ((size_t)64 << 20) /* stored, as memcached's default */

/* ---- the store: a hash table, a weft_lock per stripe of buckets -------- */

struct entry {
	struct entry *next;
	size_t klen, vlen;
	char data[]; /* key, then value */
};

static struct entry *buckets[BUCKETS];
static struct weft_lock stripes[STRIPES];

/* Invariant: stored is the sum of entry_size() over the entries in
 * buckets, and at most max_bytes. An entry's size is added (reserve())
 * before it is linked and taken off (release()) once it is unlinked, both
 * under its stripe's lock, so the sum is never below the truth. stored is
 * a count only: no other data is published through it. */
static size_t max_bytes = MAX_BYTES;
static atomic_size_t stored;

static size_t entry_size(size_t klen, size_t vlen)
{
	return sizeof(struct entry) + klen + vlen;
}

/* Adds n to stored, unless that would pass max_bytes. */
static bool reserve(size_t n)
{
	size_t was = atomic_load(&stored);

	do
		if (n > max_bytes - was)
			return false;
	while (!atomic_compare_exchange_weak(&stored, &was, was + n));
	return true;
}

static void release(size_t n)
{
	atomic_fetch_sub(&stored, n);
}

/*
 * The buckets' hash: SipHash-2-4 under a key drawn at start (seed()), as
 * Go's maps and Rust's HashMap do. An unkeyed hash (FNV-1a, which this
 * was) lets a client that knows it pick keys that all share a bucket and
 * make every command walk them all. A seeded FNV-1a would be little
 * better: a bucket (the hash's low 12 bits) depends on the seed's low 12
 * bits only, 4096 functions a client can try every one of.
 */
static uint64_t sip_key[2];

#define ROTL(x, b) (uint64_t)(((x) << (b)) | ((x) >> (64 - (b))))
#define SIPROUND                                                               \
	do {                                                                   \
		v0 += v1;                                                      \
		v1 = ROTL(v1, 13) ^ v0;                                        \
		v0 = ROTL(v0, 32);                                             \
		v2 += v3;                                                      \
		v3 = ROTL(v3, 16) ^ v2;                                        \
		v0 += v3;                                                      \
		v3 = ROTL(v3, 21) ^ v0;                                        \
		v2 += v1;                                                      \
		v1 = ROTL(v1, 17) ^ v2;                                        \
		v2 = ROTL(v2, 32);                                             \
	} while (0)

static uint64_t siphash(const void *data, size_t len)
{
	const unsigned char *p = data;
	uint64_t v0 = sip_key[0] ^ 0x736f6d6570736575u;
	uint64_t v1 = sip_key[1] ^ 0x646f72616e646f6du;
	uint64_t v2 = sip_key[0] ^ 0x6c7967656e657261u;
	uint64_t v3 = sip_key[1] ^ 0x7465646279746573u;
	uint64_t m, last = (uint64_t)len << 56;
	size_t i;

	for (; len >= 8; p += 8, len -= 8) {
		for (m = 0, i = 0; i < 8; i++) /* little-endian, any host */
			m |= (uint64_t)p[i] << (8 * i);
		v3 ^= m;
		SIPROUND;
		SIPROUND;
		v0 ^= m;
	}
	for (i = 0; i < len; i++)
		last |= (uint64_t)p[i] << (8 * i);
	v3 ^= last;
	SIPROUND;
	SIPROUND;
	v0 ^= last;
	v2 ^= 0xff;
	SIPROUND;
	SIPROUND;
	SIPROUND;
	SIPROUND;
	return v0 ^ v1 ^ v2 ^ v3;
}

/* Draws the hash's key; false if the kernel gives no random bytes. */
static bool seed(void)
{
	return getrandom(sip_key, sizeof(sip_key), 0) == sizeof(sip_key);
}

static size_t hash(const char *key, size_t len)
{
	return (size_t)siphash(key, len);
}

/* Takes the lock of key's bucket and returns it, with *slot the link to
 * key's entry (or to the NULL at the end of the chain); NULL if the task
 * is cancelled (the server is stopping) or out of time. */
static struct weft_lock *find(const char *key, size_t klen,
			      struct entry ***slot)
{
	size_t h = hash(key, klen) % BUCKETS;
	struct weft_lock *l = &stripes[h % STRIPES];
	struct entry **e;

	if (weft_lock_acquire(l))
		return NULL;
	for (e = &buckets[h]; *e; e = &(*e)->next)
		if ((*e)->klen == klen && !memcmp((*e)->data, key, klen))
			break;
	*slot = e;
	return l;
}

/* Returns 0, -ENOMEM (out of memory, or the store would pass max_bytes:
 * nothing changed) or -ECANCELED. */
static int set(const char *key, size_t klen, const char *val, size_t vlen)
{
	size_t size = entry_size(klen, vlen), old;
	struct entry *n = malloc(size), **slot;
	struct weft_lock *l;

	if (!n)
		return -ENOMEM;
	n->klen = klen;
	n->vlen = vlen;
	memcpy(n->data, key, klen);
	memcpy(n->data + klen, val, vlen);
	if (!(l = find(key, klen, &slot))) {
		free(n);
		return -ECANCELED;
	}
	/* The value it replaces frees its own size. */
	old = *slot ? entry_size(klen, (*slot)->vlen) : 0;
	if (size > old && !reserve(size - old)) {
		weft_lock_release(l);
		free(n);
		return -ENOMEM;
	}
	if (size < old)
		release(old - size);
	n->next = *slot ? (*slot)->next : NULL;
	free(*slot);
	*slot = n;
	weft_lock_release(l);
	return 0;
}

/* A copy of key's entry (the caller frees it), or NULL with *err set:
 * -ENOENT, -ENOMEM, -ECANCELED. Copied so that no lock is held while the
 * answer is sent. */
static struct entry *get(const char *key, size_t klen, int *err)
{
	struct entry **slot, *copy = NULL;
	struct weft_lock *l = find(key, klen, &slot);

	*err = -ECANCELED;
	if (!l)
		return NULL;
	*err = *slot ? -ENOMEM : -ENOENT;
	if (*slot) {
		size_t size = sizeof(**slot) + klen + (*slot)->vlen;

		if ((copy = malloc(size)))
			memcpy(copy, *slot, size);
	}
	weft_lock_release(l);
	return copy;
}

/* Returns 0, -ENOENT or -ECANCELED. */
static int del(const char *key, size_t klen)
{
	struct entry **slot, *gone;
	struct weft_lock *l = find(key, klen, &slot);

	if (!l)
		return -ECANCELED;
	gone = *slot;
	if (gone) {
		*slot = gone->next;
		release(entry_size(klen, gone->vlen));
	}
	weft_lock_release(l);
	free(gone);
	return gone ? 0 : -ENOENT;
}

/* ---- the protocol ------------------------------------------------------- */

/* Writes an answer; a write sends once the stream's buffer is full. false
 * if it failed: a final send error, or a client that took nothing within
 * the send timeout (the answer is then buffered, and answers to more
 * commands would pile up behind it), so the connection ends. */
static bool reply(struct weft_stream *s, const void *p, size_t n)
{
	return weft_stream_write(s, p, n) >= 0;
}

#define REPLY(s, lit) reply(s, lit, sizeof(lit) - 1)

/* Runs the command [p, p + len), newline excluded; answers into s.
 * Returns false for QUIT, or if the answer could not be written. */
static bool command(struct weft_stream *s, const char *p, size_t len)
{
	const char *end = p + len, *key, *sp;
	struct entry *e;
	size_t klen;
	bool ok;
	int err;

	if (len && end[-1] == '\r') /* telnet and nc -C send CRLF */
		end--;
	if (end - p == 4 && !memcmp(p, "QUIT", 4)) {
		REPLY(s, "BYE\n");
		return false;
	}
	if (end - p < 4 || p[3] != ' ' ||
	    (memcmp(p, "SET", 3) && memcmp(p, "GET", 3) && memcmp(p, "DEL", 3)))
		return REPLY(s, "ERROR unknown command\n");
	key = p + 4;
	sp = memchr(key, ' ', (size_t)(end - key));
	klen = (size_t)((sp ? sp : end) - key);
	if (!klen)
		return REPLY(s, "ERROR no key\n");
	if (*p == 'S') {
		if (!sp)
			return REPLY(s, "ERROR no value\n");
		err = set(key, klen, sp + 1, (size_t)(end - sp - 1));
	} else if (sp) {
		return REPLY(s, "ERROR too many arguments\n");
	} else if (*p == 'G') {
		if ((e = get(key, klen, &err))) {
			ok = REPLY(s, "VALUE ") &&
			     reply(s, e->data + klen, e->vlen) &&
			     REPLY(s, "\n");
			free(e);
			return ok;
		}
	} else if (!(err = del(key, klen))) {
		return REPLY(s, "DELETED\n");
	}
	if (err == -ENOENT)
		return REPLY(s, "NOT_FOUND\n");
	if (err == -ENOMEM)
		return REPLY(s, "ERROR out of memory\n");
	if (err)
		return REPLY(s, "ERROR stopping\n");
	return REPLY(s, "OK\n");
}

static int64_t idle_timeout = IDLE_TIMEOUT;
static int64_t send_timeout = SEND_TIMEOUT;

/* Whether a whole command waits in the stream: its answer can go with
 * this one's. Half of one must not hold the answers back while its rest
 * is on its way. */
static bool command_buffered(const struct weft_stream *s)
{
	const char *p;
	size_t n = weft_stream_peek(s, &p);

	return n && memchr(p, '\n', n);
}

/* Runs a command and, unless another whole one is buffered, sends the
 * answers, all within the send timeout: a write sends too, once the
 * stream's buffer is full, and a client that stops reading must not hold
 * the task for ever. Returns whether to go on; if not, *stalled says
 * whether the send timeout passed (the client took too little). */
static bool run(struct weft_stream *s, const char *line, size_t len,
		bool *stalled)
{
	struct weft_deadline d;
	bool go;

	if (weft_deadline_enter(&d, send_timeout))
		return false;
	go = command(s, line, len) &&
	     (command_buffered(s) || !weft_stream_flush(s));
	*stalled = weft_deadline_leave(&d) == 1 && !go;
	return go;
}

/* Reads a command line from s over fd within the idle time (a deadline
 * around the read). One that has begun when the idle time runs out (some
 * of it is buffered, or waits in the socket: server_bytes_waiting) gets
 * the idle time once more: a command sent just before the end is not cut
 * off, and none takes longer than twice the idle time. Returns as
 * weft_stream_readline. */
static ssize_t read_command(struct weft_stream *s, int fd, const char **line)
{
	struct weft_deadline d;
	ssize_t n = -ETIMEDOUT;

	for (int round = 0; round < 2 && n == -ETIMEDOUT; round++) {
		if (round && !weft_stream_buffered(s) &&
		    !server_bytes_waiting(fd))
			break; /* idle */
		if ((n = weft_deadline_enter(&d, idle_timeout)))
			break;
		n = weft_stream_readline(s, line);
		weft_deadline_leave(&d);
	}
	return n;
}

static void kv(int fd)
{
	struct weft_stream s;
	struct weft_deadline d;
	const char *line;
	bool bounded, stalled = false;
	ssize_t n = 0;

	weft_stream_init(&s, fd, LINE_MAX_);
	for (;;) {
		n = read_command(&s, fd, &line);
		/* 0: the client closed; < 0: idle, reset, stopping, or a line
		 * too long. */
		if (n <= 0 || !run(&s, line, (size_t)n - 1, &stalled))
			break;
	}
	/* A client that stopped reading is given up on: its unread commands
	 * and unsent answers are dropped with a reset (weft_stream_abort
	 * says why not a graceful close). */
	if (stalled) {
		weft_stream_abort(&s);
		return;
	}
	/* The last answers, then a graceful close, within bounds. */
	bounded = !weft_deadline_enter(&d, send_timeout + LINGER);
	if (n == -EMSGSIZE)
		REPLY(&s, "ERROR line too long\n");
	weft_stream_close(&s, LINGER);
	if (bounded)
		weft_deadline_leave(&d);
}

/* Sets max_bytes from $KV_MAX_BYTES, if set: digits only, above 0; past
 * SIZE_MAX means that. Returns false, and says so, for anything else. */
static bool max_bytes_env(void)
{
	const char *s = getenv("KV_MAX_BYTES"), *p;
	size_t v = 0;

	if (!s || !*s)
		return true;
	for (p = s; isdigit((unsigned char)*p); p++)
		v = v > (SIZE_MAX - 9) / 10 ? SIZE_MAX
					    : v * 10 + (size_t)(*p - '0');
	if (*p || !v) {
		fprintf(stderr,
			"kv_server: KV_MAX_BYTES=%s: not a whole number of "
			"bytes above 0\n",
			s);
		return false;
	}
	max_bytes = v;
	return true;
}

int main(int argc, char **argv)
{
	if (server_help(argc, argv, "kv_server"))
		return 0;
	if (!server_timeout_env("kv_server", "KV_IDLE_MS", &idle_timeout) ||
	    !server_timeout_env("kv_server", "KV_SEND_MS", &send_timeout) ||
	    !max_bytes_env())
		return 2;
	if (!seed()) {
		fprintf(stderr, "kv_server: getrandom: %s\n", strerror(errno));
		return 1;
	}
	for (int i = 0; i < STRIPES; i++)
		weft_lock_init(&stripes[i]);
	return server_main(argc, argv, "kv_server", kv);
}
