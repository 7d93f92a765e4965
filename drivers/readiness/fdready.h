/*
 * Readiness of the fds tasks wait on, under either driver: one record
 * per fd number, made on first use and kept, holding the fd's epoll
 * registration (one per fd, both directions, edge-triggered, kept across
 * calls), a readiness tick per direction, and the tasks waiting for each
 * direction (see fdready.c for the invariants).
 *
 * A call makes its attempt first and waits only on EAGAIN:
 *
 *   static long try_recv(int fd, void *arg) { ...one attempt, -errno... }
 *   return weft__fdready_call(fd, WEFT__READ, try_recv, &args, len, "recv");
 */
#ifndef WEFT_DRIVERS_READINESS_FDREADY_H
#define WEFT_DRIVERS_READINESS_FDREADY_H

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

enum weft__dir { WEFT__READ, WEFT__WRITE };

/* One attempt of a non-blocking call: its result, or -errno (-EAGAIN: try
 * again once the fd is ready). */
typedef long (*weft__try_fn)(int fd, void *arg);

/* A call in progress: what its attempt's result is judged by. Zeroed
 * before the call's first begin. */
struct weft__ready_call {
	void *rec;     /* the fd's record; NULL before the first begin */
	uint64_t tick; /* dir's readiness tick, read before the attempt */
	uint32_t gen;  /* the record's gen at the first begin */
	int fd;
	enum weft__dir dir;
	bool pollable;   /* in the poll set (not a regular file) */
	bool attempting; /* begin said attempt; end not yet called */
	bool may_skip;   /* end's want is not 0: see begin */
};

/* Before an attempt, from a task: registers fd in the poll set on its
 * first use (setting O_NONBLOCK on it) and reads dir's tick. Returns 0 to
 * make the attempt (a weft_close until end then leaves fd's number open
 * to it, so that it reaches the file the call began on), -EAGAIN to skip it (the fd is known drained or full:
 * pass -EAGAIN to weft__fdready_end as its result; only if c->may_skip,
 * a call that consumes what it moves, whose queue is the one a short
 * transfer drained: not an out-of-band read, say), else the call's
 * result: -ECANCELED / -ETIMEDOUT (the task's), -EBADF (fd is not open,
 * or weft let it go since the call's first begin: weft_close, or a new fd
 * of that number), -EMFILE (fd is open but beyond the table's 2M),
 * -ENOMEM, or epoll_ctl's error. fd >= 0. */
__attribute__((warn_unused_result)) int
weft__fdready_begin(struct weft__ready_call *c, int fd, enum weft__dir dir);

/* After the attempt, with its result in *result. want: the bytes the
 * attempt asked to move, if it consumes them (0 otherwise: a peek, a
 * connect, an accept); on a TCP socket a shorter result shows it drained
 * or full, and the next call in dir that moves bytes (want not 0) waits
 * for an edge before trying. On
 * -EAGAIN from a pollable fd, waits for dir's readiness and returns true:
 * begin again. Else returns false with the call's result in *result: the
 * attempt's, or the wait's -ECANCELED / -ETIMEDOUT / -EBADF (weft let the
 * fd go since the call's first begin). call names the user's call for weft_dump while
 * the task waits. */
__attribute__((warn_unused_result)) bool
weft__fdready_end(struct weft__ready_call *c, long *result, size_t want,
		  const char *call);

/*
 * A file call that hands fd's number to a blocking pool thread (epoll)
 * holds it, so that weft_close(fd) neither leaves the call queued nor lets
 * the number go while the call's system call may still be made on it:
 *
 *   weft__fdready_hold(&h, fd)   the task, before it queues the call;
 *   weft__fdready_start(&h)      the pool thread, before the system call:
 *                                false means weft let the number go, and
 *                                the call fails with -EBADF unmade;
 *   weft__fdready_done(&h)       the pool thread, after a start said true;
 *   weft__fdready_release(&h)    the task, once the pool returned, if the
 *                                call never started (else a no-op).
 *
 * weft_close(fd) calls h->closed(h) for every hold not yet started, under
 * the record's lock (so h is alive): it must end the call with -EBADF
 * without waiting for it. If a started call holds fd (or a socket call's
 * attempt is under way: weft__fdready_begin), the close is left to the
 * last such call's done (or end), as Go's poll.FD leaves it to the last
 * call holding a reference: the number stays the old file's until then.
 */
struct weft__fd_hold {
	void (*closed)(struct weft__fd_hold *h); /* the caller's */
	struct weft__fd_hold *next, *prev;
	void *rec;
	uint32_t gen;
	int fd;
};

/* Returns 0 (held: release it later), 1 (fd has no record, past the table
 * or no memory: the call runs unchecked, nothing to release) or -EBADF
 * (weft_close(fd) came, and its close waits for a started call). */
int weft__fdready_hold(struct weft__fd_hold *h, int fd);
bool weft__fdready_start(struct weft__fd_hold *h);
void weft__fdready_done(struct weft__fd_hold *h);
void weft__fdready_release(struct weft__fd_hold *h);

/* A plain thread's socket call (io/call.c) that polls between attempts:
 * pin reads fd's gen before its first attempt, and says false (the call
 * ends with -EBADF, unmade) while a weft_close waits for the calls under
 * way on fd (weft__fdready_closing); each later attempt is made between
 * pin_enter and pin_leave, counted as a task's is (so a weft_close
 * meanwhile leaves the number to it), and pin_enter says false (nothing
 * counted: the call ends with -EBADF) if weft let the number go since the
 * pin, as a task's call does. */
struct weft__fd_pin {
	void *rec; /* NULL: no record (past the table, no memory) */
	uint32_t gen;
};
__attribute__((warn_unused_result)) bool
weft__fdready_pin(struct weft__fd_pin *p, int fd);
bool weft__fdready_pin_enter(struct weft__fd_pin *p, int fd);
void weft__fdready_pin_leave(struct weft__fd_pin *p, int fd);

/*
 * A select's wait for an fd's readiness (sync/select.c's READABLE and
 * WRITABLE cases): for a file whose calls weft does not make, such as a
 * library's socket. The poll set is the one the calls wait in, so any
 * worker's harvest settles the wait.
 *
 *   weft__fdready_watch(&fw, fd, dir)   without locks: registers fd (as a
 *                                       call does, O_NONBLOCK included),
 *                                       reads dir's tick, then asks
 *                                       poll(2) whether fd is ready now;
 *   weft__fdready_watch_lock(&fw)       the record's lock: a case lock;
 *   weft__fdready_watch_link(&fw, w)    under it: links w unless the tick
 *                                       moved since the watch (an edge
 *                                       the poll may have missed) or weft
 *                                       let the fd go;
 *   weft__fdready_watch_unlink(&fw, w)  under it: unlinks w if linked.
 *
 * An event for dir settles a linked w to 0, a weft_close to -EBADF, both
 * through weft__waiter_notify (which settles a select's group first).
 */
struct weft__waiter;
struct weft__fd_watch {
	void *rec;
	uint64_t tick; /* dir's, read before the poll */
	uint32_t gen;  /* the record's, read before the tick */
	enum weft__dir dir;
};

/* 1: fd is ready (or a regular file, always ready), 0: not yet (fw is
 * filled: link under its lock), else -errno: -EBADF (fd not open),
 * -EOPNOTSUPP (not in a task: a plain thread's wait could outlive the
 * run's poll set), or what a call's begin says (-EMFILE, -ENOMEM,
 * epoll_ctl's error). */
int weft__fdready_watch(struct weft__fd_watch *fw, int fd, enum weft__dir dir);
unsigned *weft__fdready_watch_lock(const struct weft__fd_watch *fw);
/* 1: w is linked; else the case's result: 0 (ready since the watch) or
 * -EBADF (weft let the fd go since). */
int weft__fdready_watch_link(struct weft__fd_watch *fw, struct weft__waiter *w);
void weft__fdready_watch_unlink(struct weft__fd_watch *fw,
				struct weft__waiter *w);

/* Whether fd takes an offset, as pread(2) (write false) or pwrite(2)
 * (write true) asks: 0 if so, -ESPIPE if not (a pipe, FIFO, socket, tty,
 * eventfd, or a /proc file written), else -errno (-EBADF: not open, or
 * not for that direction). A yes is kept in fd's record until weft lets
 * the number go. For io_uring's reads and writes, which ignore the offset
 * of a file without one instead of failing. */
int weft__fdready_positional(int fd, bool write);

/*
 * A call: runs try until it returns anything but -EAGAIN, waiting for
 * dir's readiness in between; an fd epoll cannot watch (a regular file)
 * runs try once. Returns try's result or begin's and end's errors.
 *
 * Inline, and the halves out of line, so that try, a constant at every
 * call site, is inlined with its system call into the caller: after a
 * system call the kernel has overwritten the CPU's return-address stack,
 * and every return it meets on the way out is mispredicted, so the fewer
 * frames between the call and its user the better.
 */
static inline long weft__fdready_call(int fd, enum weft__dir dir,
				      weft__try_fn try, void *arg, size_t want,
				      const char *call)
{
	struct weft__ready_call c = { .rec = NULL, .may_skip = want != 0 };
	long r;

	do {
		if (!(r = weft__fdready_begin(&c, fd, dir)))
			r = try(fd, arg);
		else if (r != -EAGAIN)
			return r;
	} while (weft__fdready_end(&c, &r, want, call));
	return r;
}

/* Whether an event of fd's registration in the poll set said its read
 * side ended (EPOLLRDHUP, EPOLLHUP or EPOLLERR: rec->hup, kept until weft
 * lets the number go or weft__fdready_read_open). Two loads, no system
 * call, for a task's receive that got EAGAIN: an event that sets it also
 * moves the read tick, so a call that missed it tries again and sees it.
 * false for an fd weft never registered. If true, *tick is the read
 * tick, read before the hang-up, for weft__fdready_read_open. */
bool weft__fdready_read_hup(int fd, uint64_t *tick);

/* A poll(2) made after weft__fdready_read_hup said true (and gave tick)
 * found fd's read side open: the event was an error the receive has read
 * since (a connected UDP socket's ICMP port unreachable, EPOLLERR once),
 * or a hang-up that no longer holds. Clears the record unless an event
 * came since tick, which may say the side ended after the poll looked;
 * so the next receive's EAGAIN costs no poll(2). One that ends later
 * comes with an event, which sets it again. */
void weft__fdready_read_open(int fd, uint64_t tick);

/* One poll(2) of fd for events that does not wait: poll's count (1 or
 * 0) with the revents in *revents, or -errno. A signal caught meanwhile
 * makes even a poll that does not wait say EINTR, which says nothing of
 * fd: retried, or a caller would read it as "not ready" (a connect under
 * way as done, a shut read side as open). */
int weft__poll_now(int fd, short events, short *revents);

/* Internal test interface, not API: if set, called at the moments a call
 * comes back to its fd, so that a test can close or reuse fd there, as
 * another thread may: when an attempt said EAGAIN, before the call waits;
 * when its wait ended for readiness, before it tries again; when begin
 * said attempt, before the attempt (and a watch, before its poll); on the
 * pool thread, when a held file call started, before its system call;
 * and when a watch found fd's registration let go and watches again. And
 * when a call skipped its attempt (the fd known drained or full), so that
 * a test can see the skipping work. */
enum weft__fdready_moment {
	WEFT__FDREADY_AGAIN,
	WEFT__FDREADY_WOKEN,
	WEFT__FDREADY_TRYING,
	WEFT__FDREADY_STARTED,
	WEFT__FDREADY_SKIPPED,
	WEFT__FDREADY_REWATCH
};
extern void (*weft__fdready_hook)(int fd, enum weft__fdready_moment at);

/* Whether a weft_close of fd left its close(2) to the calls under way on
 * the number (see the hold above): until the last ends, weft's calls on
 * fd say -EBADF, as once the number is gone. For the calls that begin
 * nothing here: one that tries once (MSG_DONTWAIT), a plain thread's
 * weft_wait_fd. Any thread. */
bool weft__fdready_closing(int fd);

/* weft_close: wakes every task waiting on fd with -EBADF, ends the file
 * calls queued on it (their holds' closed), drops its registration, closes
 * it, or leaves that to the last started file call (see above). Any
 * thread. Returns 0 or -errno (-EBADF: a close is left to such a call). */
int weft__fdready_close(int fd);

/* fd is a new descriptor of weft's own (accepted, or a new socket): drops
 * what an earlier fd of that number left, if it was closed behind weft's
 * back with close(2). */
void weft__fdready_fresh(int fd);

/* An epoll event for a registered fd (its epoll data and event bits). On
 * the worker whose harvest took it. */
void weft__fdready_event(uint64_t data, uint32_t events);

#endif
