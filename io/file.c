/*
 * Files: open, positional read / write, fsync. Closing is weft_close().
 *
 * Regular files never poll: io_uring runs these inline or on its io-wq
 * threads, so a slow disk stalls neither the worker nor its other tasks.
 * Cancelling one that already runs on io-wq cannot stop it: the call then
 * waits for it to finish (it must, since buf may be on the task's stack).
 */
#include <errno.h>
#include <fcntl.h>
#include <unistd.h>
#include <liburing.h>

#include "weft/io.h"
#include "memcheck.h"
#include "op.h"

#define IO_MAX_LEN 0x7ffff000u

int weft_open(const char *path, int flags, mode_t mode)
{
	struct weft__io io;
	struct io_uring_sqe *sqe;
	int r;

	if (!path)
		return -EFAULT;
	flags |= O_CLOEXEC;
	if (!weft__ring_current())
		return (int)weft__sys(open(path, flags, mode));
	if (!(sqe = weft__io_begin(&io, -1, &r)))
		return r;
	io_uring_prep_openat(sqe, AT_FDCWD, path, flags, mode);
	return weft__io_wait(&io, sqe);
}

static ssize_t rw(int fd, void *buf, size_t len, off_t off, bool write)
{
	struct weft__io io;
	struct io_uring_sqe *sqe;
	unsigned n = len > IO_MAX_LEN ? IO_MAX_LEN : (unsigned)len;
	int r;

	if (fd < 0)
		return -EBADF;
	if (off < 0)
		return -EINVAL;
	if (!len)
		return 0;
	if (!buf)
		return -EFAULT;
	if (!weft__ring_current())
		return weft__sys(write ? pwrite(fd, buf, n, off) :
					 pread(fd, buf, n, off));
	if (!(sqe = weft__io_begin(&io, fd, &r)))
		return r;
	if (write)
		io_uring_prep_write(sqe, fd, buf, n, (__u64)off);
	else
		io_uring_prep_read(sqe, fd, buf, n, (__u64)off);
	ssize_t got = weft__io_wait(&io, sqe);
	return write ? got : weft__filled(buf, got);
}

ssize_t weft_pread(int fd, void *buf, size_t len, off_t off)
{
	return rw(fd, buf, len, off, false);
}

ssize_t weft_pwrite(int fd, const void *buf, size_t len, off_t off)
{
	return rw(fd, (void *)buf, len, off, true);
}

int weft_fsync(int fd, unsigned flags)
{
	struct weft__io io;
	struct io_uring_sqe *sqe;
	int r;

	if (fd < 0)
		return -EBADF;
	if (flags & ~WEFT_FSYNC_DATA)
		return -EINVAL;
	if (!weft__ring_current())
		return (int)weft__sys((flags & WEFT_FSYNC_DATA) ? fdatasync(fd) :
								  fsync(fd));
	if (!(sqe = weft__io_begin(&io, fd, &r)))
		return r;
	io_uring_prep_fsync(sqe, fd,
			    (flags & WEFT_FSYNC_DATA) ? IORING_FSYNC_DATASYNC : 0);
	return weft__io_wait(&io, sqe);
}
