/*
 * Files: open, positional read / write, fsync. Closing is weft_close().
 *
 * Regular files never poll. Under io_uring these run inline or on the
 * kernel's io-wq threads; under epoll (which cannot watch a regular file)
 * they run on the blocking pool, as libuv and Tokio do. Either way a slow
 * disk stalls neither the worker nor its other tasks. Cancelling one that
 * already runs cannot stop it: the call then waits for it to finish (it
 * must, since buf may be on the task's stack). io-wq's cancel does
 * interrupt a sleep a signal would (a FIFO's open, a read of /dev/kmsg),
 * which a pool thread's call is not: io.h says so. So a read of a
 * character device that polls not ready waits for readiness before it
 * goes to the pool (not_ready), and a FIFO reader's open waits for its
 * writer in the task (open_on_pool).
 *
 * A call stays with the file it began on (docs/concepts.md): under
 * io_uring the kernel holds the file from the submit, or weft_close
 * withdraws the SQE. A pool job has only the fd's number, so under epoll a
 * call on an fd holds the number (weft__fdready_hold) before it queues: a
 * weft_close meanwhile ends the call at once with -EBADF, and one after
 * its pool thread started it leaves the close(2) to the call's end, so
 * the number cannot pass to another file under its system call. (A dup
 * would pin the file, but closing the dup drops the process's fcntl locks
 * on it.)
 *
 * pread(2) and pwrite(2) refuse a file without an offset (-ESPIPE: a
 * pipe, socket, FIFO); io_uring's reads and writes ignore the offset
 * there and move bytes. So the ring path asks first, once per file
 * (weft__fdready_positional), and says -ESPIPE as the others do.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdbool.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <unistd.h>
#include <liburing.h>

#include "weft/io.h"
#include "runtime/blocking.h"
#include "runtime/list.h"
#include "call.h"
#include "memcheck.h"

/* A file call for the blocking pool (epoll) or the caller (plain). */
struct file_call {
	long (*fn)(struct file_call *c);
	const char *path;
	int fd, flags; /* fd -1: none (weft_open) */
	mode_t mode;
	void *buf;
	size_t len;
	off_t off;
	long res;
	struct weft__bjob job;
	struct weft__fd_hold hold; /* if held */
	bool held;
	bool fifo;   /* open_on_pool: a FIFO, opened with O_NONBLOCK added */
	short ready; /* a read's POLLIN, else 0: see not_ready */
	int wake;    /* an eventfd a weft_close writes, or -1 */
};

/* fd, a new descriptor or -errno: weft forgets what it knew of an earlier
 * file of that number that close(2) closed behind its back. */
static int fresh(int fd)
{
	if (fd >= 0)
		weft__fdready_fresh(fd);
	return fd;
}

static void *file_call_run(void *arg)
{
	struct file_call *c = arg;

	/* -EBADF: weft let fd go while the call waited for this thread. */
	if (c->held && !weft__fdready_start(&c->hold)) {
		c->res = -EBADF;
		return NULL;
	}
	c->res = c->fn(c);
	if (c->held)
		weft__fdready_done(&c->hold);
	return NULL;
}

/* weft_close(fd) while the call is queued: it ends now, unmade. */
static void file_call_closed(struct weft__fd_hold *h)
{
	struct file_call *c = weft__container_of(h, struct file_call, hold);

	weft__blocking_abort(&c->job, -EBADF);
	if (c->wake >= 0) /* ends the wait for readiness too */
		eventfd_write(c->wake, 1);
}

/*
 * Whether a read bound for the pool would sleep until another party comes
 * (/dev/kmsg waiting for a record): a character device says so to
 * poll(2). On a pool thread nothing would end that sleep, where io-wq's
 * cancel interrupts it, so the task waits for readiness first (wait_ready),
 * where its cancellation, deadline and weft_close end it. A regular file
 * is always ready: one poll(2). Only a character device's poll is taken at
 * its word: other files may poll not ready and read at once (a pressure
 * file with a trigger, in /proc/pressure), and a device may never poll
 * writable (/dev/kmsg), so writes go as they are. So does a file without
 * an offset (pread(2) says -ESPIPE at once) or an fd with O_NONBLOCK (it
 * says -EAGAIN).
 */
static bool not_ready(struct file_call *c)
{
	struct stat st;
	short revents;
	int fl;

	return c->ready && weft__poll_now(c->fd, c->ready, &revents) == 0 &&
	       !fstat(c->fd, &st) && S_ISCHR(st.st_mode) &&
	       !weft__fdready_positional(c->fd, false) &&
	       (fl = fcntl(c->fd, F_GETFL)) >= 0 && !(fl & O_NONBLOCK);
}

/* Waits until c's fd is ready, or weft_close(fd) wrote c->wake, in an
 * epoll instance of the call's own: weft_wait_fd on the fd would register
 * it in weft's set and make its file O_NONBLOCK, which the pool's call and
 * the caller's later ones would see. Returns 0 or the wait's -errno
 * (-ECANCELED, -ETIMEDOUT, ...); on a failure to set it up, 0: the call
 * goes to the pool as it is. */
static int wait_ready(struct file_call *c)
{
	struct epoll_event fev = { .events = (uint32_t)c->ready },
			   wev = { .events = EPOLLIN };
	int ep = fresh(epoll_create1(EPOLL_CLOEXEC)), r = 0;

	if (ep < 0)
		return 0;
	if (!epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &fev) &&
	    !epoll_ctl(ep, EPOLL_CTL_ADD, c->wake, &wev))
		r = weft_wait_fd(ep, WEFT_READABLE);
	weft_close(ep);
	return r < 0 ? r : 0;
}

/* Runs c where the path says: on the caller, or on the pool. */
static long file_call(struct file_call *c)
{
	long r;

	/* A plain thread's call is the system call itself, on the number:
	 * while a weft_close waits for the calls under way on fd, -EBADF, as
	 * a task's says (fdready.h). */
	if (weft__io_path() == WEFT__PLAIN)
		return c->fd >= 0 && weft__fdready_closing(c->fd) ? -EBADF
								  : c->fn(c);
	/* Set before the hold, which publishes them to weft_close. The job
	 * zeroed (JOB_NEW) for each run: open_on_pool runs c twice, and a
	 * job left JOB_DONE by the first run is one a cancellation or
	 * deadline landing before the second queues it finds nothing to
	 * fail in (blocking.h), so the job ran and its open(2) waited. */
	c->job = (struct weft__bjob){ .fn = file_call_run, .arg = c };
	c->wake = -1;
	if (not_ready(c))
		c->wake = fresh(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
	if (c->fd >= 0) {
		c->hold.closed = file_call_closed;
		if ((r = weft__fdready_hold(&c->hold, c->fd)) < 0)
			goto out;
		c->held = r == 0;
	}
	r = c->wake >= 0 ? wait_ready(c) : 0;
	/* The pool's wait_begin says the task's cancellation and deadline,
	 * and a job weft_close refused says -EBADF. */
	if (!r)
		r = weft__blocking_run(&c->job);
	/* The job never started (it has no discard: never abandoned). */
	if (r && c->held)
		weft__fdready_release(&c->hold);
	if (!r)
		r = c->res;
out:
	if (c->wake >= 0)
		weft_close(c->wake);
	return r;
}

static long do_open(struct file_call *c)
{
	return weft__sys(open(c->path, c->flags, c->mode));
}

static long do_pread(struct file_call *c)
{
	return weft__sys(pread(c->fd, c->buf, c->len, c->off));
}

static long do_pwrite(struct file_call *c)
{
	return weft__sys(pwrite(c->fd, c->buf, c->len, c->off));
}

static long do_fsync(struct file_call *c)
{
	return weft__sys((c->flags & WEFT_FSYNC_DATA) ? fdatasync(c->fd)
						      : fsync(c->fd));
}

/* weft__io_wait for a file operation. One the kernel cancelled though
 * weft did not abort it (no reason recorded) never ran: io-wq could start
 * no thread for it (RLIMIT_NPROC, a pids cgroup) and failed its queued
 * work. -EAGAIN then, as the blocking pool says when it cannot start one
 * under epoll: -ECANCELED says the task was cancelled. */
static long ring_wait(struct weft__io *io, struct io_uring_sqe *sqe)
{
	long r = weft__io_wait(io, sqe);

	/* relaxed: weft__io_wait read it with acquire already. */
	if (r == -ECANCELED &&
	    !atomic_load_explicit(&io->reason, memory_order_relaxed))
		return -EAGAIN;
	return r;
}

/* An openat on the ring: inline (the kernel tries it with O_NONBLOCK
 * added and a cached lookup, else hands it to io-wq) or, if may_wait, on
 * io-wq from the start, in blocking mode as open(2). */
static int open_on_ring(const char *path, int flags, mode_t mode, bool may_wait)
{
	struct weft__io io;
	struct io_uring_sqe *sqe;
	int r;

	if (!(sqe = weft__io_begin(&io, -1, &r)))
		return r;
	io_uring_prep_openat(sqe, AT_FDCWD, path, flags, mode);
	if (may_wait)
		sqe->flags |= IOSQE_ASYNC;
	return (int)ring_wait(&io, sqe);
}

void (*weft__fifo_wait_hook)(const char *path);

static bool is_fifo(int fd)
{
	struct stat st;

	return !fstat(fd, &st) && S_ISFIFO(st.st_mode);
}

/* Whether a writer has had the FIFO open since fd's open, so that
 * open(2) would have returned: its bytes wait, or it came and left (a
 * hang-up, which a reader opened with no writer is told only once one
 * came). One that is there, silent, is not seen: the second open then
 * finds it at once. */
static bool had_writer(int fd)
{
	short revents;

	return weft__poll_now(fd, POLLIN, &revents) == 1 &&
	       (revents & (POLLIN | POLLHUP));
}

/* How long a FIFO reader's open on io-wq waits before it looks again at
 * its first fd for a writer it missed: from 1 ms, doubling, to 1 s. */
#define FIFO_SLICE_MIN WEFT_MSEC
#define FIFO_SLICE_MAX WEFT_SEC

/* One slice of a FIFO reader's wait: open(2) on io-wq, cut short (the
 * kernel interrupts its wait) after slice ns. Returns whether the slice
 * ran out with nothing opened; else *r is the fd or -errno (-ETIMEDOUT,
 * -ECANCELED: the caller's own deadline or cancellation). */
static bool fifo_open_slice(const char *path, int flags, mode_t mode,
			    int64_t slice, int *r)
{
	struct weft_deadline d;
	void (*hook)(const char *);

	/* acquire: pairs with the test's release store of the hook, which
	 * published what the hook reads. */
	if ((hook = __atomic_load_n(&weft__fifo_wait_hook, __ATOMIC_ACQUIRE)))
		hook(path);
	if ((*r = weft_deadline_enter(&d, slice)))
		return false;
	*r = open_on_ring(path, flags, mode, true);
	weft_deadline_leave(&d);
	if (*r != -ETIMEDOUT)
		return false;
	*r = weft__wait_check(weft__task_current());
	return *r == 0;
}

/*
 * A FIFO reader opened inline (fd) found no writer: waits for one as
 * open(2) would, on io-wq, and returns the fd to keep (fd or a new one;
 * the other is closed) or -errno. The kernel's wait sees only writers
 * that open after it began: one that came and left between had_writer's
 * look and then is missed, and it is the common case, not a rare one: a
 * writer already waiting in its open(2) (`echo x > fifo` run first) is let
 * through by fd's open, writes and leaves while the wait is queued. So
 * the wait is cut into slices, and between them fd is asked again: it
 * saw such a writer (its bytes, or its hang-up). A waiting reader thus
 * costs one io-wq open a second once the slices have grown.
 */
static int fifo_await_writer(const char *path, int flags, mode_t mode, int fd)
{
	int64_t slice = FIFO_SLICE_MIN;
	int r;

	while (fifo_open_slice(path, flags, mode, slice, &r)) {
		if (had_writer(fd))
			return fd;
		if (slice < FIFO_SLICE_MAX)
			slice *= 2;
	}
	close(fd);
	return r;
}

/*
 * The inline open differs from open(2) for a FIFO, whose open waits for
 * the other end: a writer with no reader fails with -ENXIO, a reader with
 * no writer opens at once and reads an end of file. Those two open again
 * on io-wq, which waits (all opens there cost 20 us against 4.5 here, so
 * only they go). The reader keeps its first fd until then, so a writer
 * that opens meanwhile finds a reader, as it would beside a blocked
 * open(2), and fifo_await_writer asks it whether one did. An open that
 * may create or truncate is never tried inline (it would only say
 * -EAGAIN): it goes to io-wq at once, and waits there once, as open(2)
 * does. Opened inline and again, a FIFO reader whose writer came, wrote
 * and left meanwhile would wait for another: a reader that had one opens
 * once.
 */
static int open_as_open2(const char *path, int flags, mode_t mode)
{
	int fd;

	if (flags & O_NONBLOCK)
		return open_on_ring(path, flags, mode, false);
	if (flags & (O_CREAT | O_TRUNC))
		return open_on_ring(path, flags, mode, true);
	fd = open_on_ring(path, flags, mode, false);
	if (fd == -ENXIO)
		return open_on_ring(path, flags, mode, true);
	if (fd < 0 || (flags & O_ACCMODE) != O_RDONLY || !is_fifo(fd) ||
	    had_writer(fd))
		return fd;
	return fifo_await_writer(path, flags, mode, fd);
}

/* A pool thread's open: a FIFO's with O_NONBLOCK added, so that it never
 * waits for the other end there (open_on_pool). A FIFO replaced by another
 * file between the stat and the open is opened so too, as io_uring opens
 * every file inline: the caller takes O_NONBLOCK off. */
static long do_open_pool(struct file_call *c)
{
	struct stat st;

	c->fifo = !(c->flags & (O_NONBLOCK | O_PATH)) && !stat(c->path, &st) &&
		  S_ISFIFO(st.st_mode);
	if (!c->fifo)
		return do_open(c);
	return weft__sys(open(c->path, c->flags | O_NONBLOCK, c->mode));
}

/* Takes off fd's O_NONBLOCK, which open_on_pool added: the caller's fd
 * blocks as open(2)'s. On failure fd is closed. */
static int drop_nonblock(int fd)
{
	int fl = fcntl(fd, F_GETFL);

	if (fl < 0 || fcntl(fd, F_SETFL, fl & ~O_NONBLOCK) < 0) {
		fl = -errno;
		weft_close(fd);
		return fl;
	}
	return fd;
}

/* Whether a writer has the FIFO fd reads open now, silent or not: a
 * non-blocking tee(2) of an empty pipe says 0 (an end of file) when it has
 * no writer, -EAGAIN when one may still write, and copies what waits
 * without consuming it. */
static bool writer_there(int fd)
{
	int p[2];
	ssize_t n;

	if (pipe2(p, O_CLOEXEC | O_NONBLOCK))
		return false; /* no descriptor now: the next look may have */
	n = tee(fd, p[1], 1, SPLICE_F_NONBLOCK);
	if (n < 0)
		n = errno == EAGAIN ? 1 : 0;
	close(p[0]);
	close(p[1]);
	return n > 0;
}

/*
 * A FIFO reader opened on the pool (fd, O_NONBLOCK) with no writer: waits
 * for one in the task, as open(2) would in its system call, where the
 * task's cancellation and deadline end the wait (a pool thread's open(2)
 * would hold its thread until a writer came, and the call with it). The
 * writer's bytes or hang-up wake the wait at once; one that opened and is
 * silent, which readiness does not show, is seen when the slice ends
 * (writer_there), as io_uring's slices look (fifo_await_writer). Holding
 * fd, the reader is there for a writer's open meanwhile, as beside a
 * blocked open(2). Returns fd (blocking again) or -errno, fd closed.
 */
static int fifo_await_writer_ready(int fd)
{
	int64_t slice = FIFO_SLICE_MIN;
	struct weft_deadline d;
	int r;

	while (!had_writer(fd) && !writer_there(fd)) {
		if ((r = weft_deadline_enter(&d, slice)) == 0) {
			r = weft_wait_fd(fd, WEFT_READABLE);
			weft_deadline_leave(&d);
		}
		/* The slice's own -ETIMEDOUT is not the caller's. */
		if (r == -ETIMEDOUT)
			r = weft__wait_check(weft__task_current());
		if (r < 0) {
			weft_close(fd);
			return r;
		}
		if (slice < FIFO_SLICE_MAX)
			slice *= 2;
	}
	return drop_nonblock(fd);
}

/* open(2) on the blocking pool (epoll), but for a FIFO's reader, which
 * waits for its writer in the task (above). A FIFO's writer with no reader
 * still waits on the pool (-ENXIO with O_NONBLOCK: nothing to hold). */
static int open_on_pool(struct file_call *c)
{
	int fd;

	c->fn = do_open_pool;
	fd = fresh((int)file_call(c));
	if (!c->fifo)
		return fd;
	if (fd == -ENXIO) { /* a writer, no reader: as open(2), on the pool */
		c->fn = do_open;
		return fresh((int)file_call(c));
	}
	if (fd < 0)
		return fd;
	if ((c->flags & O_ACCMODE) != O_RDONLY)
		return drop_nonblock(fd);
	return fifo_await_writer_ready(fd);
}

static int open_file(const char *path, int flags, mode_t mode)
{
	struct file_call c = { .fn = do_open,
			       .path = path,
			       .fd = -1,
			       .flags = flags | O_CLOEXEC,
			       .mode = mode };

	if (!path)
		return -EFAULT;
	if (weft__io_path() == WEFT__PLAIN)
		return fresh((int)file_call(&c));
	if (weft__io_path() == WEFT__READY)
		return open_on_pool(&c);
	return fresh(open_as_open2(path, c.flags, mode));
}

/* Each file call names itself for weft_dump (wait.h), as the socket calls
 * do: under epoll its wait is the blocking pool's, which would name weft's
 * job function, and under io_uring an open's operation has no fd. */
int weft_open(const char *path, int flags, mode_t mode)
{
	bool named = weft__doing_begin_fd("open", -1);
	int r = open_file(path, flags, mode);

	weft__doing_end(named);
	return r;
}

static ssize_t rw(int fd, void *buf, size_t len, off_t off, bool write)
{
	struct file_call c = { .fn = write ? do_pwrite : do_pread,
			       .fd = fd,
			       .buf = buf,
			       .len = len,
			       .off = off };
	struct weft__io io;
	struct io_uring_sqe *sqe;
	ssize_t got;
	int r;

	if (fd < 0)
		return -EBADF;
	if (off < 0)
		return -EINVAL;
	/* No bytes still go to the kernel, as pread(2) and pwrite(2) take
	 * them: what they say of the fd (-EBADF, -ESPIPE, ...) is what the
	 * caller learns, and a NULL buffer is no fault. */
	if (!buf && len)
		return -EFAULT;
	/*
	 * Under io_uring two lengths go to the blocking pool, as under epoll,
	 * for pread(2) and pwrite(2) to judge as only they do:
	 *  - none: they call the file's read or write with no bytes too, and
	 *    one may refuse them (a directory's read: -EISDIR); io_uring's
	 *    read or write of a file without read_iter / write_iter loops
	 *    over the bytes and, with none, calls nothing and says 0;
	 *  - one past IO_MAX_LEN, which the SQE's length cannot hold: they
	 *    refuse the whole len (-EFAULT: no address range from buf is
	 *    that long, access_ok; -EINVAL: off + len overflows) before they
	 *    cut it to MAX_RW_COUNT. Cut first, it would read into memory
	 *    past the buffer or write what lies there, and where the range
	 *    ends only the kernel knows (TASK_SIZE).
	 */
	if (weft__io_path() != WEFT__RING || !len || len > IO_MAX_LEN) {
		c.ready = write ? 0 : POLLIN;
		return file_call(&c);
	}
	/* A cancelled task, or one past its deadline, says so before the
	 * offset probe's system call, whose -ESPIPE / -EBADF would
	 * otherwise come first: weft__io_begin and the pool's wait_begin
	 * (under epoll) say it before any call. */
	if ((r = weft__wait_check(weft__task_current())))
		return r;
	/* Nor while a weft_close waits for the calls under way on fd: the
	 * probe would ask the closed file (a pipe's -ESPIPE), where every
	 * call says -EBADF (weft__io_begin below, the epoll driver's hold). */
	if (weft__fdready_closing(fd))
		return -EBADF;
	if ((r = weft__fdready_positional(fd, write)))
		return r;
	if (!(sqe = weft__io_begin(&io, fd, &r)))
		return r;
	if (write)
		io_uring_prep_write(sqe, fd, buf, (unsigned)len, (__u64)off);
	else
		io_uring_prep_read(sqe, fd, buf, (unsigned)len, (__u64)off);
	got = ring_wait(&io, sqe);
	return write ? got : weft__filled(buf, got);
}

ssize_t weft_pread(int fd, void *buf, size_t len, off_t off)
{
	bool named = weft__doing_begin_fd("read", fd);
	ssize_t r = rw(fd, buf, len, off, false);

	weft__doing_end(named);
	return r;
}

ssize_t weft_pwrite(int fd, const void *buf, size_t len, off_t off)
{
	bool named = weft__doing_begin_fd("write", fd);
	ssize_t r = rw(fd, (void *)buf, len, off, true);

	weft__doing_end(named);
	return r;
}

static int fsync_file(int fd, unsigned flags)
{
	struct file_call c = { .fn = do_fsync, .fd = fd, .flags = (int)flags };
	struct weft__io io;
	struct io_uring_sqe *sqe;
	int r;

	if (fd < 0)
		return -EBADF;
	if (flags & ~WEFT_FSYNC_DATA)
		return -EINVAL;
	if (weft__io_path() != WEFT__RING)
		return (int)file_call(&c);
	if (!(sqe = weft__io_begin(&io, fd, &r)))
		return r;
	io_uring_prep_fsync(sqe, fd,
			    (flags & WEFT_FSYNC_DATA) ? IORING_FSYNC_DATASYNC
						      : 0);
	return (int)ring_wait(&io, sqe);
}

int weft_fsync(int fd, unsigned flags)
{
	bool named = weft__doing_begin_fd("fsync", fd);
	int r = fsync_file(fd, flags);

	weft__doing_end(named);
	return r;
}
