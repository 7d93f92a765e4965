/*
 * Per-fd readiness: see fdready.h. Every fd is registered in the
 * runtime's one poll set (pollset.h), so any worker's harvest may deliver
 * its events.
 *
 * An edge that arrives between a task's failed system call and its wait
 * must not be lost (edge-triggered epoll reports it once). Each direction
 * has a tick, bumped under the record's lock by every event for it (and by
 * close): the task reads the tick before its attempt and, under the lock,
 * parks only if it has not moved, else tries again. The idea is Tokio's
 * ScheduledIo readiness tick.
 *
 * A short transfer on a TCP socket (fewer bytes than asked, none peeked)
 * drained it (read) or filled it (write): any byte or room that comes
 * later comes with a new edge. So the next call in that direction, while
 * the tick has not moved, waits for the edge without first trying the
 * system call that would say EAGAIN (Tokio's rule since 1.27): an echo
 * request then costs a recv and a send, not recv, send and a failed recv.
 * Only TCP: a Unix stream read stops short where the writer changes (its
 * credentials), SCTP's at a message's end, both with data left and no edge
 * to come. TCP's one such stop, at an urgent (MSG_OOB) mark, leaves that
 * connection waiting until its peer sends more or the caller's deadline.
 * TCP is a stream socket of protocol IPPROTO_TCP: a raw socket of that
 * protocol (SOCK_RAW) says IPPROTO_TCP too, and its receive takes one
 * packet, short whenever the packet is, with the next one queued. Nor
 * TCP with an upper layer protocol (kTLS: short_drains). Only a
 * call that consumes what it moves from the data queue skips (its want
 * is not 0): a receive of the urgent byte (MSG_OOB) reads a queue of its
 * own, which a short read that stopped at the byte's mark did not drain,
 * the byte's edge come before. (A peek, a WAITALL receive or a recvfrom
 * then tries first too: a system call more, only after a short read.)
 *
 * Invariants:
 *  - Every settle of a waiter on a record happens under the record's lock:
 *    the event (0), an abort (-ECANCELED, -ETIMEDOUT) and close (-EBADF).
 *    A waiter is linked only while WAITING, so whoever settles a linked one
 *    unlinks it under the same hold, and a readiness event never reaches a
 *    task that stopped waiting. Nothing in the kernel refers to a waiter,
 *    so an aborted wait consumes nothing and cancels nothing.
 *  - reg names the weft_run (driver run id) the fd was registered in and
 *    how; a record of an earlier run counts as unregistered, as its poll
 *    set is gone. It is written under the lock, with release, after the
 *    fd was made non-blocking; the lock-free check of a call reads it
 *    with acquire.
 *  - An fd's epoll data carries the record's gen, bumped whenever weft lets
 *    the fd number go (weft_close, or a new fd of that number), so an event
 *    for an earlier file of that number (kept alive by a dup) is dropped.
 *  - A call keeps the gen of its first begin and fails with -EBADF when
 *    it moves: a task between its attempt and its wait when another
 *    closed the fd would otherwise find the tick moved, try again, and
 *    move bytes of the file that took the number. As the kernel's
 *    blocking call holds its file, a call in progress stays with it.
 *  - short_at[dir] is tick + 1 of the tick read before a short transfer
 *    in dir, or anything else when none was seen at the current tick.
 *    Skipping the attempt on it is safe whatever else ran since: the
 *    socket was empty (or full) after that transfer, so what is there now
 *    came with an edge not yet harvested, which will move the tick. Not
 *    an end of file or an error: a short read may take the peer's FIN
 *    with the last bytes, after its edge was harvested, and the next recv
 *    says 0 with no edge to come. So hup[dir], set under the lock before
 *    the tick moves by an event saying so (EPOLLRDHUP, EPOLLHUP,
 *    EPOLLERR; on TCP not EPOLLHUP alone: hang_ups), stops the skipping
 *    (Tokio's READ_CLOSED, which clearing readiness never clears). Only
 *    a poll(2) that finds no hang-up or error clears hup[READ]
 *    (weft__fdready_read_open), and only if the tick read before it has
 *    not moved: an end that came since comes with an event, which sets
 *    it again, and a TCP FIN, once in, polls POLLRDHUP for good, so the
 *    skip above never outruns it. hup[WRITE] stays until the number
 *    goes. Nor on a registration a watch used (WATCHED): a library's
 *    close(2) may have given the number to a file the set does not hold,
 *    which only an attempt finds out.
 *  - holds lists the file calls that hold the fd and have not started
 *    (weft__fdready_hold until start or release), under the lock. running
 *    counts what may make a system call on the number now: the started
 *    file calls (start until done) and the socket calls' attempts (enter
 *    until leave). closing says a weft_close came while running was not
 *    0: the number is still the old file's, and whoever takes running to
 *    0 closes it (close_if_last). So a system call on the number reaches
 *    the file its call began on: a close before the call's start or
 *    enter fails it (the gen moved), one after waits for its done or
 *    leave. While closing, holds, registrations and another close say
 *    -EBADF, as they would once the number is gone. A hold's closed runs
 *    under the lock and takes the pool's (weft__blocking_abort); nothing
 *    takes a record's lock under the pool's.
 *  - running and closing are written with seq_cst, as the gen's move by
 *    a close is: enter adds to running and then reads the gen, a close
 *    moves the gen and then reads running, so one of them sees the
 *    other's (a store then a load of another variable, which acquire and
 *    release do not order). Likewise leave takes from running and then
 *    reads closing, a close sets closing and then reads running.
 *  - seek says, with the gen in its top half, that
 *    weft__fdready_positional found the file takes an offset, for reads
 *    (SEEK_PREAD) or writes (SEEK_PWRITE): a file keeps
 *    that for life, and a gen names one file if weft is told of every
 *    close (weft_close, or a new fd of weft's). Only that answer is kept:
 *    were a number close(2) passed behind weft's back to a pipe, a stale
 *    one gives io_uring's own answer (bytes move), where a kept -ESPIPE
 *    would refuse a file that has an offset. A pipe asks each time, on a
 *    call that is an error anyway.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "runtime/list.h"
#include "runtime/spinlock.h"
#include "runtime/task.h"
#include "runtime/wait.h"
#include "pollset.h"
#include "fdready.h"

#define CHUNK 1024
#define NCHUNKS 2048 /* 2M fds: twice the kernel's default nr_open */

enum { UNREGISTERED, REGISTERED, UNPOLLABLE };
/* reg's flag: a watch (a library's fd, which it may close with close(2))
 * used the registration; a call's wait then checks that it holds. */
#define WATCHED 4u

/* What a socket call touches comes first, packed in 72 bytes (the small
 * fields in what would be holes), so that with the 88-byte stride it never
 * spans more than two cache lines; the file calls' fields come last. */
struct fdrec {
	unsigned lock;
	_Atomic uint32_t gen; /* written under the lock */
	_Atomic bool tcp;     /* a TCP socket, set when registered */
	_Atomic bool closing; /* closed once running is 0 */
	_Atomic bool hup[2];  /* an event said closed or failed */
	_Atomic int running;  /* calls that may make a system call on it */
	_Atomic uint64_t reg; /* run id << 3 | WATCHED? | state */
	_Atomic uint64_t tick[2];
	_Atomic uint64_t short_at[2];
	struct weft__waiter *head[2];
	struct weft__fd_hold *holds; /* file calls queued on the fd */
	_Atomic uint64_t seek;       /* gen << 32 | SEEK_* */
};

enum { SEEK_PREAD = 1, SEEK_PWRITE = 2 };

static _Atomic(struct fdrec *) chunks[NCHUNKS];

/* fork(2): the child has one thread, the forking one, which is inside no
 * call on any fd (a call makes no fork), so no call of its counts in
 * running. The counts it copied may hold the attempts other threads of
 * the parent were making (a plain thread's read after a poll): a weft_close
 * in the child would leave the number to those calls, which never end
 * there, and the fd stay open for good. A close the parent left to its
 * last call (closing) is the child's to make: no call of its will. Nor
 * does the child hold a record's lock, which another thread of the parent
 * may have held at the fork (weft_close holds it across close(2)): left
 * held, the child's first call to take it would spin for ever. */
static void records_fork_child(void)
{
	for (unsigned c = 0; c < NCHUNKS; c++) {
		/* relaxed: the child's one thread made or saw every chunk
		 * its parent published (the fork copies memory whole). */
		struct fdrec *chunk =
			atomic_load_explicit(&chunks[c], memory_order_relaxed);

		for (unsigned i = 0; chunk && i < CHUNK; i++) {
			/* relaxed: no other thread reads it here. */
			__atomic_store_n(&chunk[i].lock, 0, __ATOMIC_RELAXED);
			atomic_store(&chunk[i].running, 0);
			if (atomic_load(&chunk[i].closing)) {
				atomic_store(&chunk[i].closing, false);
				close((int)(c * CHUNK + i));
			}
		}
	}
}

static void records_fork_once(void)
{
	pthread_atfork(NULL, NULL, records_fork_child);
}

static struct fdrec *rec_of(int fd, bool make)
{
	unsigned c = (unsigned)fd / CHUNK;
	struct fdrec *chunk, *none = NULL;

	if (fd < 0 || c >= NCHUNKS)
		return NULL;
	/* acquire: pairs with the CAS below, so the zeroed chunk is seen. */
	chunk = atomic_load_explicit(&chunks[c], memory_order_acquire);
	if (!chunk && make) {
		static pthread_once_t once = PTHREAD_ONCE_INIT;

		/* Before the first record a fork could copy. */
		pthread_once(&once, records_fork_once);
		chunk = calloc(CHUNK, sizeof(*chunk));
		if (!chunk)
			return NULL;
		if (!atomic_compare_exchange_strong(&chunks[c], &none, chunk)) {
			free(chunk);
			chunk = none;
		}
	}
	return chunk ? &chunk[(unsigned)fd % CHUNK] : NULL;
}

/* relaxed: the lock orders its writers, and the readers here hold it or
 * say why they need no more (a hold's gen, the seek tag). A call's begin
 * reads it acquire instead (forget says why). */
static uint32_t gen_of(struct fdrec *rec)
{
	return atomic_load_explicit(&rec->gen, memory_order_relaxed);
}

static int reg_state(uint64_t reg)
{
	return reg >> 3 == weft__driver_run_id() ? (int)(reg & 3)
						 : UNREGISTERED;
}

static void unlink_waiter(struct fdrec *rec, struct weft__waiter *w)
{
	weft__list_unlink(rec->head[w->value], w);
	w->queue = NULL;
}

/* Wakes every waiter of dir with result and bumps its tick. Lock held. */
static void wake_all(struct fdrec *rec, int dir, int result)
{
	struct weft__waiter *w;

	/* Every writer of the tick holds the lock: a relaxed load and a
	 * store do an add's work. release: a task reading the tick with
	 * acquire before its attempt sees the event that moved it. */
	atomic_store_explicit(&rec->tick[dir],
			      atomic_load_explicit(&rec->tick[dir],
						   memory_order_relaxed) +
				      1,
			      memory_order_release);
	while ((w = rec->head[dir])) {
		unlink_waiter(rec, w);
		weft__waiter_notify(w, result);
	}
}

/* Lets the fd number go: waiters get -EBADF, events for it are dropped
 * from now on. Lock held. */
static void forget(struct fdrec *rec, int fd)
{
	/* relaxed: under the lock, as every write of reg. */
	uint64_t reg = atomic_load_explicit(&rec->reg, memory_order_relaxed);
	int epfd = weft__pollset_fd();

	/* reg goes to 0 before the gen moves: a call that begins in between
	 * and reads the new gen must not see the old REGISTERED, try the fd
	 * (still open until our close(2)), read the tick wake_all bumped
	 * and park with nobody left to wake it. */
	/* relaxed, the three: under the lock, as every write. A lock-free
	 * reader of reg that sees 0 takes the lock (ensure_registered). A
	 * call whose begin read the new gen (acquire) sees these hup stores
	 * (the gen's store below, a release); one of the old gen may read a
	 * true, which only makes it attempt where it could have skipped
	 * (known_empty); its next begin or wait says -EBADF. */
	atomic_store_explicit(&rec->hup[WEFT__READ], false,
			      memory_order_relaxed);
	atomic_store_explicit(&rec->hup[WEFT__WRITE], false,
			      memory_order_relaxed);
	atomic_store_explicit(&rec->reg, 0, memory_order_relaxed);
	/* relaxed: the gen tells a stale seek anyway; 0 lets fresh skip. */
	atomic_store_explicit(&rec->seek, 0, memory_order_relaxed);
	/* seq_cst: as release, it pairs with weft__fdready_begin's acquire,
	 * so a call that sees the new gen sees reg 0 (and takes the lock,
	 * which orders it after our close); and an attempt's enter must see
	 * it or be seen by the close (see top). Under the lock, as every
	 * write of gen. */
	atomic_store(&rec->gen, gen_of(rec) + 1);
	wake_all(rec, WEFT__READ, -EBADF);
	wake_all(rec, WEFT__WRITE, -EBADF);
	if (reg_state(reg) == REGISTERED && epfd >= 0)
		epoll_ctl(epfd, EPOLL_CTL_DEL, fd, NULL);
}

/* fd's registration in the poll set: both directions, edge-triggered,
 * its data the record's gen and fd (see top).
 *
 * EPOLLPRI, a read event (weft__fdready_event): a TCP urgent byte whose
 * mark came ahead of it (a receive with MSG_OOB says EAGAIN meanwhile)
 * polls EPOLLPRI alone when it comes with no readable byte beside it;
 * without the bit its arrival reported nothing for reading and that
 * receive waited until its deadline. Edge-triggered, it costs no storm:
 * an event is queued only by a wake-up of the socket, which came without
 * the bit too. While an urgent byte nobody reads is pending, those
 * wake-ups (room to write, say) also wake the fd's readers, each of
 * which tries once more and waits again. Lock held. */
static struct epoll_event registration(struct fdrec *rec, int fd)
{
	return (struct epoll_event){
		.events = EPOLLIN | EPOLLPRI | EPOLLOUT | EPOLLRDHUP | EPOLLET,
		.data.u64 = (uint64_t)gen_of(rec) << 32 | (uint32_t)fd,
	};
}

/* Sets O_NONBLOCK on fd's file if it is not set. */
static void set_nonblocking(int fd)
{
	int fl = fcntl(fd, F_GETFL);

	if (fl >= 0 && !(fl & O_NONBLOCK))
		fcntl(fd, F_SETFL, fl | O_NONBLOCK);
}

/* Whether a short transfer on fd drains it (see top): a stream of TCP,
 * not a raw socket of that protocol, with no upper layer protocol on it
 * (TCP_ULP). kTLS ("tls") takes records: its receive stops short before
 * a record of another type than the data it returned (a handshake
 * message, an alert), which is queued already, its edge come before.
 * Asked when fd is registered: a ULP set later, after weft's calls on fd
 * began, is not seen (its short reads then skip as TCP's do), unless a
 * watch used the registration (weft_wait_fd, as OpenSSL's handshake
 * would), which never skips. */
static bool short_drains(int fd)
{
	int proto = 0, type = 0;
	socklen_t len = sizeof(proto), tlen = sizeof(type), ulen = 0;
	char ulp[16];

	if (getsockopt(fd, SOL_SOCKET, SO_PROTOCOL, &proto, &len) ||
	    proto != IPPROTO_TCP ||
	    getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &tlen) ||
	    type != SOCK_STREAM)
		return false;
	ulen = sizeof(ulp);
	/* No ULP: the kernel says a length of 0 (one before 4.13, which has
	 * none, does not know the option). */
	return getsockopt(fd, IPPROTO_TCP, TCP_ULP, ulp, &ulen) || !ulen;
}

/* Registers fd in the poll set. Lock held. Returns the state or -errno. */
static int do_register(struct fdrec *rec, int fd)
{
	int epfd = weft__pollset_fd();
	struct epoll_event ev = registration(rec, fd);
	int state = REGISTERED;

	/* relaxed, here and below: under the lock, as every write; a
	 * call's note_transfer reads it without the lock (see there). */
	atomic_store_explicit(&rec->tcp, false, memory_order_relaxed);
	if (epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) &&
	    (errno != EEXIST || epoll_ctl(epfd, EPOLL_CTL_MOD, fd, &ev))) {
		if (errno != EPERM)
			return -errno;
		state = UNPOLLABLE; /* a regular file: never EAGAIN */
	}
	if (state == REGISTERED) {
		weft__pollset_watching();
		set_nonblocking(fd);
		/* relaxed: as above. */
		atomic_store_explicit(&rec->tcp, short_drains(fd),
				      memory_order_relaxed);
	}
	/* release: pairs with ensure_registered's acquire, so a task that
	 * sees REGISTERED finds the fd non-blocking. */
	atomic_store_explicit(&rec->reg, weft__driver_run_id() << 3 | state,
			      memory_order_release);
	return state;
}

static int ensure_registered(struct fdrec *rec, int fd)
{
	/* acquire: pairs with do_register's release store. */
	int state = reg_state(
		atomic_load_explicit(&rec->reg, memory_order_acquire));

	if (state != UNREGISTERED)
		return state;
	weft__spin_lock(&rec->lock);
	/* relaxed: every writer of reg holds the lock we hold. */
	state = reg_state(
		atomic_load_explicit(&rec->reg, memory_order_relaxed));
	if (atomic_load(&rec->closing))
		state = -EBADF;
	else if (state == UNREGISTERED)
		state = do_register(rec, fd);
	weft__spin_unlock(&rec->lock);
	return state;
}

static void unlock_rec(void *arg)
{
	weft__spin_unlock(&((struct fdrec *)arg)->lock);
}

static void abort_wait(struct weft__waiter *w, int reason)
{
	struct fdrec *rec = w->data;

	weft__spin_lock(&rec->lock);
	if (weft__waiter_settle(w, reason) && w->queue) {
		unlink_waiter(rec, w);
		weft__waiter_wake(w);
	}
	weft__spin_unlock(&rec->lock);
}

/* Parks w until c's direction's readiness moves past c->tick. Returns
 * the settled state (0: ready, try again), 0 at once if it moved already,
 * or -EBADF if weft let the fd go since the call began. */
static int wait_ready(struct fdrec *rec, const struct weft__ready_call *c,
		      struct weft__waiter *w)
{
	int dir = c->dir, s;

	weft__spin_lock(&rec->lock);
	if (gen_of(rec) != c->gen) {
		weft__spin_unlock(&rec->lock);
		weft__wait_end(w);
		return -EBADF;
	}
	/* relaxed: under the lock, which every writer of the tick holds. */
	if (atomic_load_explicit(&rec->tick[dir], memory_order_relaxed) !=
	    c->tick) {
		weft__spin_unlock(&rec->lock);
		weft__wait_end(w);
		return 0;
	}
	if ((s = weft__waiter_state(w)) != WEFT__WAITING) {
		weft__spin_unlock(&rec->lock);
		weft__wait_end(w);
		return s;
	}
	w->value = (uint64_t)dir;
	weft__list_push_front(rec->head[dir], w);
	w->queue = rec;
	return weft__wait_park(w, unlock_rec, rec);
}

/* Whether a watch used fd's registration (see WATCHED): a library's fd,
 * which it may have closed with close(2) since, and a file the program
 * made itself (not weft: weft__fdready_fresh) taken its number. */
static bool watched_reg(struct fdrec *rec)
{
	/* relaxed: a call's own begin read reg with acquire; a flag set
	 * since by a watch on the same file only adds a check. */
	return atomic_load_explicit(&rec->reg, memory_order_relaxed) & WATCHED;
}

/* Whether the last transfer in dir, at this tick, was short (see top).
 * Never on a registration a watch used: the library may have closed its
 * file with close(2) since and a file not in the set taken the number,
 * which only an attempt's EAGAIN checks (weft__fdready_end); skipped, the
 * call would wait for an edge of the dropped file. */
static bool known_empty(struct fdrec *rec, int dir, uint64_t tick)
{
	/* relaxed: short_at is written and read by the fd's callers, and
	 * what it claims holds whoever wrote it; hup is ordered by the
	 * acquire load of tick that gave us tick (wake_all's release). */
	return atomic_load_explicit(&rec->short_at[dir],
				    memory_order_relaxed) == tick + 1 &&
	       !atomic_load_explicit(&rec->hup[dir], memory_order_relaxed) &&
	       !watched_reg(rec);
}

static void note_transfer(struct fdrec *rec, int dir, uint64_t tick, long r,
			  size_t want)
{
	/* relaxed: a claim about the socket that holds whoever reads it
	 * (see known_empty); it publishes nothing. tcp: atomic, as it is
	 * read without the lock while the registration of a file that took
	 * the number since (a weft_close racing this call) may write it;
	 * relaxed, as this call's own registration happened before its
	 * begin (reg's acquire), and either value only steers the skip. */
	if (atomic_load_explicit(&rec->tcp, memory_order_relaxed) && r > 0 &&
	    (size_t)r < want)
		atomic_store_explicit(&rec->short_at[dir], tick + 1,
				      memory_order_relaxed);
}

/* Publishes a wait for c and parks until the tick moves past c->tick
 * (see wait_ready), naming call for weft_dump. */
static int wait_for(struct fdrec *rec, const struct weft__ready_call *c,
		    const char *call)
{
	struct weft__waiter w;
	bool named = weft__doing_begin(call);
	int r;

	weft__waiter_init_as(&w, abort_wait, WEFT__WAIT_IO,
			     (const void *)(intptr_t)c->fd);
	w.data = rec;
	if (!(r = weft__wait_begin(&w)))
		r = wait_ready(rec, c, &w);
	weft__doing_end(named);
	return r;
}

/* Why fd has no record: past the table (NCHUNKS * CHUNK), or its chunk
 * could not be allocated. An fd that is not open is -EBADF whatever the
 * table, as the system call says. The table's size does not tell: the
 * kernel's may go past it (fs.nr_open up to 2^30), and RLIMIT_NOFILE
 * bounds only new fds (one opened before the limit was lowered stays
 * open), so only the kernel knows. Asked only here, off the hot path. */
static int no_record(int fd)
{
	if (fcntl(fd, F_GETFD) < 0 && errno == EBADF)
		return -EBADF;
	return (unsigned)fd / CHUNK >= NCHUNKS ? -EMFILE : -ENOMEM;
}

/* Closes the number if a weft_close left it to the last call on it and
 * none is left (see top). Lock held. */
static void close_if_last(struct fdrec *rec, int fd)
{
	if (atomic_load(&rec->closing) && !atomic_load(&rec->running)) {
		atomic_store(&rec->closing, false);
		close(fd); /* the close that left it to us returned 0 */
	}
}

static void leave(struct fdrec *rec, int fd);

/* An attempt's start: counts it in running, so that a weft_close from now
 * on leaves the number to it. false (nothing counted) if weft let the
 * number go since the call began. */
static bool enter(struct fdrec *rec, int fd, uint32_t gen)
{
	atomic_fetch_add(&rec->running, 1);
	if (atomic_load(&rec->gen) == gen)
		return true;
	leave(rec, fd); /* the close may have seen us and left it to us */
	return false;
}

/* An attempt's end: closes the number if a weft_close left it to us. */
static void leave(struct fdrec *rec, int fd)
{
	if (atomic_fetch_sub(&rec->running, 1) == 1 &&
	    atomic_load(&rec->closing)) {
		weft__spin_lock(&rec->lock);
		close_if_last(rec, fd);
		weft__spin_unlock(&rec->lock);
	}
}

/* A pin that reads the gen a weft_close moved reads closing after it (the
 * acquire keeps the order), so it sees the close's closing unless it came
 * within that close's lock hold, between the two stores: a call as
 * concurrent with the close as a task's begin that reads the new gen
 * before the close's unlock (which then registers whatever file the
 * number holds once its lock is free). */
bool weft__fdready_pin(struct weft__fd_pin *p, int fd)
{
	struct fdrec *rec = rec_of(fd, true);

	p->rec = rec;
	if (!rec)
		return true;
	/* acquire: as weft__fdready_begin's. */
	p->gen = atomic_load_explicit(&rec->gen, memory_order_acquire);
	return !atomic_load(&rec->closing);
}

bool weft__fdready_closing(int fd)
{
	struct fdrec *rec = rec_of(fd, false);

	/* seq_cst, as every access of closing (see top). A false read while
	 * a weft_close runs is a call that raced the close: it may reach
	 * the old file, as one that began just before it. */
	return rec && atomic_load(&rec->closing);
}

bool weft__fdready_pin_enter(struct weft__fd_pin *p, int fd)
{
	return !p->rec || enter(p->rec, fd, p->gen);
}

void weft__fdready_pin_leave(struct weft__fd_pin *p, int fd)
{
	if (p->rec)
		leave(p->rec, fd);
}

static int registration_holds(struct fdrec *rec, int fd, uint32_t gen);

/*
 * The attempt comes before any wait is published, so a call that need not
 * wait (most of a busy server's) takes no lock of the task's: it looks at
 * its cancellation and deadline lock-free (weft__wait_check), then tries.
 * Only on EAGAIN does it publish a wait, and wait_ready parks only if the
 * tick read before the attempt has not moved since.
 */
int weft__fdready_begin(struct weft__ready_call *c, int fd, enum weft__dir dir)
{
	struct fdrec *rec = rec_of(fd, true);
	int r;

	if (!rec)
		return no_record(fd);
	/* A call stays with the file it began on, as a blocking call in the
	 * kernel holds it: once weft let the number go, registering it again
	 * or an attempt would reach whatever file took it. */
	/* acquire: pairs with forget's release, see there. */
	uint32_t gen = atomic_load_explicit(&rec->gen, memory_order_acquire);

	if (!c->rec)
		c->gen = gen;
	else if (gen != c->gen)
		return -EBADF;
	if ((r = ensure_registered(rec, fd)) < 0)
		return r;
	c->rec = rec;
	c->fd = fd;
	c->dir = dir;
	c->pollable = r == REGISTERED;
	if ((r = weft__wait_check(weft__task_current())))
		return r;
	/* acquire: see wake_all. */
	c->tick = atomic_load_explicit(&rec->tick[dir], memory_order_acquire);
	if (c->may_skip && known_empty(rec, dir, c->tick)) {
		if (__builtin_expect(weft__fdready_hook != NULL, 0))
			weft__fdready_hook(fd, WEFT__FDREADY_SKIPPED);
		return -EAGAIN;
	}
	if (!enter(rec, fd, c->gen))
		return -EBADF;
	/* On a registration a watch used, the file may be one that took the
	 * number after a library's close(2) (see WATCHED), made blocking
	 * by the program: the attempt would wait in the kernel, keeping the
	 * worker, before its EAGAIN could find the file new (end). So
	 * O_NONBLOCK, as its registration would set it; after the enter,
	 * so that it is the file the attempt reaches. One fcntl(2) per
	 * attempt, on those fds only. Where the record says UNPOLLABLE (a
	 * watched regular file's), O_NONBLOCK would turn a blocking
	 * device's reads into EAGAIN: the set is asked instead whether the
	 * file is new (one epoll_ctl(2) per attempt), and a new one is
	 * registered, O_NONBLOCK included, by beginning anew. */
	if (watched_reg(rec)) {
		if (c->pollable) {
			set_nonblocking(fd);
		} else if ((r = registration_holds(rec, fd, c->gen)) <= 0) {
			leave(rec, fd);
			if (r < 0)
				return r;
			c->rec = NULL;
			return weft__fdready_begin(c, fd, dir);
		}
	}
	c->attempting = true;
	if (__builtin_expect(weft__fdready_hook != NULL, 0))
		weft__fdready_hook(fd, WEFT__FDREADY_TRYING);
	return 0;
}

void (*weft__fdready_hook)(int fd, enum weft__fdready_moment at);

bool weft__fdready_end(struct weft__ready_call *c, long *result, size_t want,
		       const char *call)
{
	struct fdrec *rec = c->rec;
	int r, holds = 1;

	if (c->attempting) {
		c->attempting = false;
		/* Before waiting on a registration a watch used: whether the
		 * set holds this file, as the watch checks (the kernel dropped
		 * the file that had the number if a library closed it with
		 * close(2); an event for this one would never come). And on
		 * any that says UNPOLLABLE: a regular file is never EAGAIN, so
		 * the file may be new, and the EAGAIN went back to the caller
		 * unwaited (as it still does for a file epoll cannot watch).
		 * Counted still, as the watch's check: a weft_close since says
		 * -EBADF. If the file is new to the set, the record
		 * was let go: begin anew (c->rec NULL), which registers it. */
		if (*result == -EAGAIN && (!c->pollable || watched_reg(rec)))
			holds = registration_holds(rec, c->fd, c->gen);
		leave(rec, c->fd);
		if (holds < 0) {
			*result = holds;
			return false;
		}
		if (!holds) {
			c->rec = NULL;
			return true;
		}
	}
	if (*result != -EAGAIN || !c->pollable) {
		note_transfer(rec, c->dir, c->tick, *result, want);
		return false;
	}
	if (__builtin_expect(weft__fdready_hook != NULL, 0))
		weft__fdready_hook(c->fd, WEFT__FDREADY_AGAIN);
	if ((r = wait_for(rec, c, call)) < 0) {
		*result = r;
		return false;
	}
	if (__builtin_expect(weft__fdready_hook != NULL, 0))
		weft__fdready_hook(c->fd, WEFT__FDREADY_WOKEN);
	return true;
}

int weft__poll_now(int fd, short events, short *revents)
{
	struct pollfd p = { .fd = fd, .events = events };
	int r;

	while ((r = poll(&p, 1, 0)) < 0 && errno == EINTR)
		;
	*revents = r < 0 ? 0 : p.revents;
	return r < 0 ? -errno : r;
}

/* One poll of fd for dir: 1 ready, 0 not, -errno. Hang-ups and errors
 * count as ready: the call they are for then says what happened. */
static int poll_now(int fd, enum weft__dir dir)
{
	short revents;
	int r = weft__poll_now(fd, dir == WEFT__READ ? POLLIN : POLLOUT,
			       &revents);

	if (r < 0)
		return r;
	return revents & POLLNVAL ? -EBADF : r > 0;
}

/* What an EPOLL_CTL_ADD's refusal says of the registration: EEXIST, the
 * set holds the file (1); EPERM, a regular file took the number (0:
 * registering it anew marks it UNPOLLABLE); else the set cannot hold the
 * new file (-ELOOP for an epoll fd nested too deep, -ENOSPC past
 * max_user_watches), which a first registration would say too. */
static int added_refused(int err)
{
	if (err == EEXIST)
		return 1;
	return err == EPERM ? 0 : -err;
}

/* Between enter and leave, fd not ready (a watch's poll said so, or a
 * call's attempt said EAGAIN on a WATCHED registration) or about to be
 * tried on a WATCHED one that says UNPOLLABLE: whether the poll
 * set still holds the file of fd's registration. A library closes its own
 * fd with close(2) (libpq's PQfinish, c-ares after each query), and once
 * a new file takes the number the record still says REGISTERED while the
 * kernel dropped the old file from the set: no event for the new one
 * would ever come. Or it says UNPOLLABLE, of a regular file, which polls
 * ready and never says EAGAIN; a file that polls not ready or says EAGAIN
 * is a new one, unless the ADD says EPERM (a device without poll support
 * may say EAGAIN). An EPOLL_CTL_ADD says EPERM for a regular file, EEXIST
 * if the file is there; unlike a MOD it re-arms nothing (a MOD queues the
 * other direction's edge again, an event to harvest per wait). If the ADD
 * took the new file, lets the number go as for a new fd of weft's own
 * (weft__fdready_fresh; forget drops that registration too) and says 0:
 * watch (or begin) again, which registers it. Returns 1 if the
 * registration holds, else 0, or -EBADF if a weft_close came since the
 * enter (see below), or the ADD's -errno if the set refuses the new file
 * (see added_refused). */
static int registration_holds(struct fdrec *rec, int fd, uint32_t gen)
{
	int holds = 0;

	weft__spin_lock(&rec->lock);
	/* If the gen moved since the enter, another watch found the same
	 * stale registration and let it go (its link would say -EBADF of an
	 * open fd): watch again. Or a weft_close came, which found our enter
	 * counted and left the number to our leave (closing): the watch
	 * began on that file, so it says -EBADF, where watching again would
	 * watch whatever file takes the number once our leave closed it. A
	 * close before the enter moved the gen before it: the enter failed.
	 * Else the ADD's data names this gen, which forget then moves past. */
	if (gen_of(rec) != gen) {
		if (atomic_load(&rec->closing))
			holds = -EBADF;
	} else {
		struct epoll_event ev = registration(rec, fd);

		/* relaxed: under the lock, as every write of reg. */
		int state = reg_state(
			atomic_load_explicit(&rec->reg, memory_order_relaxed));

		/* An UNPOLLABLE record whose ADD says EPERM still says the
		 * file: one epoll cannot watch (a device without poll
		 * support, such as /dev/hwrng, opened O_NONBLOCK, does say
		 * EAGAIN), for which the call returns its EAGAIN. Let go, it
		 * would be registered UNPOLLABLE again and the call would
		 * retry without end. */
		if (state == UNREGISTERED)
			holds = 1;
		else if (epoll_ctl(weft__pollset_fd(), EPOLL_CTL_ADD, fd, &ev))
			holds = state == UNPOLLABLE && errno == EPERM
					? 1
					: added_refused(errno);
		if (holds <= 0)
			forget(rec, fd);
	}
	weft__spin_unlock(&rec->lock);
	return holds;
}

/* Sets WATCHED on fd's registration of gen. */
static void mark_watched(struct fdrec *rec, uint32_t gen)
{
	weft__spin_lock(&rec->lock);
	/* relaxed: under the lock, as every write of reg. */
	uint64_t reg = atomic_load_explicit(&rec->reg, memory_order_relaxed);

	/* release: a begin that reads this value with acquire
	 * (ensure_registered) must see the fd made non-blocking, which
	 * do_register did before its unlock, and so before our lock. */
	if (gen_of(rec) == gen && reg_state(reg) != UNREGISTERED)
		atomic_store_explicit(&rec->reg, reg | WATCHED,
				      memory_order_release);
	weft__spin_unlock(&rec->lock);
}

/* A watch is a call without a try: the poll is its attempt, made between
 * enter and leave so that it reaches the file the watch began on. */
int weft__fdready_watch(struct weft__fd_watch *fw, int fd, enum weft__dir dir)
{
	struct fdrec *rec;
	int r, holds;

	if (fd < 0)
		return -EBADF;
	if (!weft__driver_current())
		return -EOPNOTSUPP;
	if (!(rec = rec_of(fd, true)))
		return no_record(fd);
again:
	/* acquire: as weft__fdready_begin's. */
	fw->gen = atomic_load_explicit(&rec->gen, memory_order_acquire);
	/* A regular file (UNPOLLABLE) polls ready: the poll below says so.
	 * One that does not is a file that took the number since (a
	 * library's close(2)): registration_holds lets the record go. */
	if ((r = ensure_registered(rec, fd)) < 0)
		return r;
	fw->rec = rec;
	fw->dir = dir;
	if (!watched_reg(rec))
		mark_watched(rec, fw->gen);
	/* acquire: see wake_all. */
	fw->tick = atomic_load_explicit(&rec->tick[dir], memory_order_acquire);
	if (!enter(rec, fd, fw->gen))
		return -EBADF;
	if (__builtin_expect(weft__fdready_hook != NULL, 0))
		weft__fdready_hook(fd, WEFT__FDREADY_TRYING);
	r = poll_now(fd, dir);
	if (!r && (holds = registration_holds(rec, fd, fw->gen)) <= 0) {
		leave(rec, fd);
		if (holds < 0)
			return holds;
		if (__builtin_expect(weft__fdready_hook != NULL, 0))
			weft__fdready_hook(fd, WEFT__FDREADY_REWATCH);
		goto again;
	}
	leave(rec, fd);
	return r;
}

unsigned *weft__fdready_watch_lock(const struct weft__fd_watch *fw)
{
	return &((struct fdrec *)fw->rec)->lock;
}

int weft__fdready_watch_link(struct weft__fd_watch *fw, struct weft__waiter *w)
{
	struct fdrec *rec = fw->rec;

	if (gen_of(rec) != fw->gen)
		return -EBADF;
	/* relaxed: under the lock, which every writer of the tick holds. */
	if (atomic_load_explicit(&rec->tick[fw->dir], memory_order_relaxed) !=
	    fw->tick)
		return 0;
	w->value = (uint64_t)fw->dir;
	weft__list_push_front(rec->head[fw->dir], w);
	w->queue = rec;
	return 1;
}

void weft__fdready_watch_unlink(struct weft__fd_watch *fw,
				struct weft__waiter *w)
{
	if (w->queue)
		unlink_waiter(fw->rec, w);
}

/* The bits of an event that end the skipping (see top), which a TCP
 * socket's EPOLLHUP alone does not: it says the socket is not connected
 * (its state is CLOSE), where a connection that ended says EPOLLRDHUP or
 * EPOLLERR with it. weft_connect_addr registers the socket before its
 * connect(2), and a harvest between the two saw that hang-up: the
 * connection then never skipped, and a client making round trips on two
 * workers made 1.8-2 receives a request where one does. (Its wakes stay:
 * a wake too many costs an attempt, one too few a hang.) Under rec's
 * lock (rec->tcp). */
static uint32_t hang_ups(struct fdrec *rec, uint32_t events)
{
	uint32_t ends = events & (EPOLLHUP | EPOLLRDHUP | EPOLLERR);

	/* relaxed: under the lock, as every write of tcp. */
	return atomic_load_explicit(&rec->tcp, memory_order_relaxed) &&
			       ends == EPOLLHUP
		       ? 0
		       : ends;
}

void weft__fdready_event(uint64_t data, uint32_t events)
{
	struct fdrec *rec = rec_of((int)(uint32_t)data, false);

	if (!rec)
		return;
	weft__spin_lock(&rec->lock);
	/* relaxed: reg and hup are written under the lock; a lock-free
	 * reader of hup gets it through wake_all's release store of the
	 * tick, which comes after. */
	if (gen_of(rec) == (uint32_t)(data >> 32) &&
	    reg_state(atomic_load_explicit(&rec->reg, memory_order_relaxed)) ==
		    REGISTERED) {
		uint32_t ends = hang_ups(rec, events);

		/* relaxed: as above. */
		if (ends)
			atomic_store_explicit(&rec->hup[WEFT__READ], true,
					      memory_order_relaxed);
		if (ends & (EPOLLHUP | EPOLLERR))
			atomic_store_explicit(&rec->hup[WEFT__WRITE], true,
					      memory_order_relaxed);
		if (events &
		    (EPOLLIN | EPOLLRDHUP | EPOLLPRI | EPOLLHUP | EPOLLERR))
			wake_all(rec, WEFT__READ, 0);
		if (events & (EPOLLOUT | EPOLLHUP | EPOLLERR))
			wake_all(rec, WEFT__WRITE, 0);
	}
	weft__spin_unlock(&rec->lock);
}

bool weft__fdready_read_hup(int fd, uint64_t *tick)
{
	struct fdrec *rec = rec_of(fd, false);

	if (!rec)
		return false;
	/* acquire: pairs with wake_all's release store, which an event makes
	 * after it stored hup, so hup is seen if the tick is; and keeps the
	 * caller's poll(2) after this read (weft__fdready_read_open relies on
	 * it). relaxed, hup: ordered by that acquire; a hup stored after it
	 * moved the tick, so the call tries again and sees it. */
	*tick = atomic_load_explicit(&rec->tick[WEFT__READ],
				     memory_order_acquire);
	return atomic_load_explicit(&rec->hup[WEFT__READ],
				    memory_order_relaxed);
}

void weft__fdready_read_open(int fd, uint64_t tick)
{
	struct fdrec *rec = rec_of(fd, false);

	if (!rec)
		return;
	/* An event that says the read side ended after the caller's poll
	 * looked moves the tick under this lock, before or after us: before,
	 * we leave hup as it is; after, it stores hup again. */
	weft__spin_lock(&rec->lock);
	/* relaxed, both: under the lock, which every writer of the tick and
	 * of hup holds. */
	if (atomic_load_explicit(&rec->tick[WEFT__READ],
				 memory_order_relaxed) == tick)
		atomic_store_explicit(&rec->hup[WEFT__READ], false,
				      memory_order_relaxed);
	weft__spin_unlock(&rec->lock);
}

int weft__fdready_hold(struct weft__fd_hold *h, int fd)
{
	struct fdrec *rec = rec_of(fd, true);
	int r = 0;

	if (!rec)
		return 1;
	weft__spin_lock(&rec->lock);
	if (atomic_load(&rec->closing)) {
		r = -EBADF;
	} else {
		h->rec = rec;
		h->fd = fd;
		h->gen = gen_of(rec);
		weft__list_push_front(rec->holds, h);
	}
	weft__spin_unlock(&rec->lock);
	return r;
}

bool weft__fdready_start(struct weft__fd_hold *h)
{
	struct fdrec *rec = h->rec;
	bool kept;

	weft__spin_lock(&rec->lock);
	weft__list_unlink(rec->holds, h);
	/* A close since the hold moved the gen, closing or not. */
	kept = gen_of(rec) == h->gen;
	if (kept)
		atomic_fetch_add(&rec->running, 1);
	weft__spin_unlock(&rec->lock);
	if (kept && __builtin_expect(weft__fdready_hook != NULL, 0))
		weft__fdready_hook(h->fd, WEFT__FDREADY_STARTED);
	return kept;
}

void weft__fdready_done(struct weft__fd_hold *h)
{
	struct fdrec *rec = h->rec;

	weft__spin_lock(&rec->lock);
	WEFT_ASSERT(atomic_load(&rec->running) > 0);
	atomic_fetch_sub(&rec->running, 1);
	close_if_last(rec, h->fd);
	weft__spin_unlock(&rec->lock);
}

void weft__fdready_release(struct weft__fd_hold *h)
{
	struct fdrec *rec = h->rec;

	weft__spin_lock(&rec->lock);
	if (h->prev || rec->holds == h) /* not started */
		weft__list_unlink(rec->holds, h);
	weft__spin_unlock(&rec->lock);
}

/* The question pread(2) (FMODE_PREAD) or pwrite(2) (FMODE_PWRITE) asks,
 * as a preadv(2) or pwritev(2) of nothing answers it: it asks that first,
 * then whether fd is open for that direction, and with no bytes to move
 * goes no further (no driver's read or write is called; the read's
 * probe, once per file, may give inotify an IN_ACCESS). lseek(2) does not
 * answer it: an eventfd or a timerfd seeks (its llseek does nothing) and
 * takes no offset, and a seq_file of /proc takes a read offset and no
 * write offset. */
static int probe_positional(int fd, bool write)
{
	long r = write ? pwritev(fd, NULL, 0, 0) : preadv(fd, NULL, 0, 0);

	return r < 0 ? -errno : 0;
}

int weft__fdready_positional(int fd, bool write)
{
	struct fdrec *rec = rec_of(fd, true);
	uint64_t bit = write ? SEEK_PWRITE : SEEK_PREAD, seek, tagged;
	uint32_t gen;
	int r;

	if (!rec)
		return probe_positional(fd, write);
	/* relaxed, both: seek holds no pointer, and its tag says which file
	 * it is about. A probe that raced a close tagged its answer with the
	 * gen before it, which no later call matches. */
	gen = gen_of(rec);
	seek = atomic_load_explicit(&rec->seek, memory_order_relaxed);
	tagged = (uint32_t)(seek >> 32) == gen ? seek : (uint64_t)gen << 32;
	if (tagged & bit)
		return 0;
	r = probe_positional(fd, write);
	/* relaxed, as the load. Two probes at once may each store their bit
	 * alone: the one lost is asked again, at its direction's next call. */
	if (!r)
		atomic_store_explicit(&rec->seek, tagged | bit,
				      memory_order_relaxed);
	return r;
}

int weft__fdready_close(int fd)
{
	struct fdrec *rec = rec_of(fd, false);
	struct weft__fd_hold *h;
	int r = 0;

	if (!rec)
		return close(fd) ? -errno : 0;
	/* close(2) under the lock, with forget: a task that tried the fd
	 * and then takes the lock to wait is ordered against the close by
	 * it. Closed after unlocking, ThreadSanitizer (which models a close
	 * as a write to the fd, a recv as a read) saw such a recv race it in
	 * test_io_stress's crowd. */
	weft__spin_lock(&rec->lock);
	if (atomic_load(&rec->closing)) { /* only its calls keep it */
		r = -EBADF;
	} else {
		forget(rec, fd);
		for (h = rec->holds; h; h = h->next)
			h->closed(h);
		/* Set before running is read: a leave that takes it to 0
		 * after our read sees closing, and closes (see top). */
		atomic_store(&rec->closing, true);
		if (!atomic_load(&rec->running)) {
			atomic_store(&rec->closing, false);
			r = close(fd) ? -errno : 0;
		}
	}
	weft__spin_unlock(&rec->lock);
	return r;
}

void weft__fdready_fresh(int fd)
{
	struct fdrec *rec = rec_of(fd, false);

	/* relaxed: nothing to forget unless weft used the number since its
	 * last forget, which a thread making a new fd of it follows (the
	 * close(2) between). */
	if (!rec || (!atomic_load_explicit(&rec->reg, memory_order_relaxed) &&
		     !atomic_load_explicit(&rec->seek, memory_order_relaxed)))
		return;
	weft__spin_lock(&rec->lock);
	forget(rec, fd);
	weft__spin_unlock(&rec->lock);
}
