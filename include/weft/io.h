/*
 * weft I/O: sockets, files, the io_uring escape hatch and the blocking pool.
 * Part of <weft.h>.
 *
 * In a task every call below parks the task until it is done; the worker
 * keeps running other tasks. A socket call makes one non-blocking attempt
 * and, only if it would block (EAGAIN), waits for the fd's readiness in
 * the runtime's one epoll set, which any worker may look at, and tries
 * again. The attempt depends on the I/O driver (struct weft_config.io,
 * $WEFT_IO; weft_io_driver() says which runs): under epoll it is the
 * non-blocking system call; under io_uring either that or an operation on
 * the worker's ring that may not wait in the kernel, which the worker
 * submits with its other tasks' in one system call (struct
 * weft_config.sockets, $WEFT_SOCKETS; by default the ring where a system
 * call costs more than it saves; weft_sock_path() says which). Files
 * (weft_open, weft_pread, weft_pwrite, weft_fsync) are one io_uring
 * operation each under io_uring, and run on the blocking pool under
 * epoll, which cannot watch regular files. Every call behaves the
 * same on both, as documented here, except weft_io_submit(), which needs
 * io_uring.
 *
 * On a plain thread the same calls block the thread in the matching system
 * call, so threaded code can share weft's sockets; if the fd is O_NONBLOCK
 * and the call would block, the thread waits in poll(2) and tries again
 * (pass MSG_DONTWAIT to the calls that take flags for one attempt only).
 * A socket's SO_RCVTIMEO or SO_SNDTIMEO ends such a call as it ends the
 * blocking system call, -EAGAIN once it ran out (a MSG_WAITALL receive
 * returns what it took by then, weft_send_all sets *sent), also when a
 * task has made the fd O_NONBLOCK (below): the poll(2) waits then take
 * what is left of it; a signal does not end them.
 *
 * O_NONBLOCK: the sockets weft makes while a runtime runs (listen, accept,
 * connect, UDP and Unix sockets) are non-blocking, and an fd made elsewhere
 * gets O_NONBLOCK set the first time a task waits on it; weft leaves it
 * set. The flag belongs to the open file description, so dups of the fd
 * and other processes sharing it see it too.
 *
 * Conventions (as liburing's): a call returns a count or 0 on success and a
 * negative errno on failure. In a task, a call also returns -ECANCELED when
 * the task is cancelled and -ETIMEDOUT when the enclosing deadline passes;
 * a socket call does so before its attempt, MSG_DONTWAIT or not, so that a
 * connection's loop ends though its peer keeps bytes coming. While a task
 * waits for readiness nothing in the kernel refers to its buffer, and an
 * io_uring operation is cancelled in the kernel and its completion
 * awaited before the call returns, so buffers may live on the task's
 * stack. If the operation completed anyway (it won the race) the
 * call reports that success instead: no byte, connection or descriptor is
 * ever lost; nor an error the operation met itself (a socket's pending
 * error, reported once). weft_close() on a descriptor wakes every task waiting on it
 * with -EBADF. Close descriptors that tasks wait on with weft_close(), not
 * close(2): weft keeps the fd's registration in its epoll set, and what it
 * learnt of the file (whether it takes an offset), until then.
 */
#ifndef WEFT_IO_H
#define WEFT_IO_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include "weft/must_check.h"

#ifdef __cplusplus
extern "C" {
#endif

struct io_uring_sqe; /* from <liburing.h>, for weft_io_submit() */

/* ---- TCP ---------------------------------------------------------------- */

/* weft_tcp_listen() flags. */
#define WEFT_REUSEPORT 0x1u /* SO_REUSEPORT: several listeners share a port */

/* Listens on host:port with SO_REUSEADDR (host NULL: every local address,
 * one IPv6 dual-stack socket, IPv4 only on a host without IPv6: a port
 * another socket holds on either family is -EADDRINUSE; port 0: an
 * ephemeral port). backlog <= 0 means SOMAXCONN. Returns the listening
 * fd, or -errno (-EINVAL, -EADDRINUSE, -ENOENT for a name that does not
 * resolve, ...). */
WEFT_MUST_CHECK int weft_tcp_listen(const char *host, uint16_t port,
				    int backlog, unsigned flags);

/* The port a TCP or UDP socket is bound to (after listening on port 0, the
 * one the kernel chose). Returns it, or -errno (-EBADF, -ENOTSOCK,
 * -EAFNOSUPPORT for a socket that is not IPv4 or IPv6). */
int weft_local_port(int fd);

/* Accepts a connection (SOCK_CLOEXEC; TCP_NODELAY on a TCP one, as Go's
 * default: replies are sent when written, not held back by Nagle's
 * algorithm). peer may be NULL (peerlen is then not used, as accept(2)
 * says; peer without peerlen is -EFAULT, nothing taken). Returns the new
 * fd or -errno; -EMFILE / -ENFILE when out of descriptors (the listener
 * stays usable); -EINVAL once the listener is shut down (shutdown(2)), as
 * accept(2) says: at once for TCP, whose shutdown resets the connections
 * it had queued; for Unix once what it had queued is taken. */
WEFT_MUST_CHECK int weft_accept(int lfd, struct sockaddr *peer,
				socklen_t *peerlen);

/* Resolves host (getaddrinfo on the blocking pool) and connects to the first
 * address of host:port that answers, with TCP_NODELAY. Returns the fd or
 * -errno (-ECONNREFUSED, -ENOENT for an unknown name, ...). */
WEFT_MUST_CHECK int weft_connect(const char *host, uint16_t port);

/* Connects the existing socket fd to addr, as connect(2). Returns 0 or
 * -errno. A connect cancelled or timed out after it began leaves the
 * socket connecting, as a non-blocking connect(2) does: close it (another
 * connect on it says -EALREADY, or -EISCONN once it got through). On a
 * plain thread the socket's SO_SNDTIMEO ends it as it ends a blocking
 * connect(2), O_NONBLOCK or not: -EINPROGRESS (the connect goes on), or
 * -EAGAIN (a Unix listener's backlog stayed full). */
WEFT_MUST_CHECK int weft_connect_addr(int fd, const struct sockaddr *addr,
				      socklen_t len);

/* ---- Stream and datagram I/O (any socket) -------------------------------- */

/* Receives up to len bytes. Returns the count (0: the peer closed, or len is
 * 0; on a datagram socket also once its read side is shut down, with
 * shutdown(2) SHUT_RD, and nothing is queued, as recv(2) says), or -errno
 * (-ECONNRESET, -EBADF, -EFAULT for a NULL buf, ...). MSG_ERRQUEUE never
 * waits, as recvmsg(2): -EAGAIN if no error is queued. MSG_OOB waits for
 * a TCP urgent byte whose mark came before it (where recv(2) says EAGAIN
 * at once), on a plain thread too; with none announced it says -EINVAL,
 * as recv(2). */
WEFT_MUST_CHECK ssize_t weft_recv(int fd, void *buf, size_t len, int flags);

/* Sends up to len bytes (MSG_NOSIGNAL is implied). Returns the count sent,
 * possibly short, or -errno (-EPIPE, -ECONNRESET, ...). A len of 0 goes to
 * the kernel as send(2)'s does: an empty datagram on a datagram socket
 * (weft_recv, though, says 0 for a len of 0 at once, as read(2) does,
 * leaving the next datagram queued). */
WEFT_MUST_CHECK ssize_t weft_send(int fd, const void *buf, size_t len,
				  int flags);

/* Sends all len bytes, looping over short sends. Returns len or -errno;
 * *sent (if not NULL) gets the bytes sent either way. */
WEFT_MUST_CHECK ssize_t weft_send_all(int fd, const void *buf, size_t len,
				      int flags, size_t *sent);

/* Scatter / gather at the current position (sockets, pipes, files). Returns
 * the count or -errno; weft_readv() 0 at end of file, and on a datagram
 * socket once its read side is shut down and nothing is queued, as
 * readv(2). weft_writev() on a socket implies MSG_NOSIGNAL; on
 * a pipe whose reader is gone it returns -EPIPE while weft_run runs, which
 * keeps SIGPIPE from killing the process (see weft_run in weft/task.h).
 * An iovcnt of 0 returns 0 at once, as weft_recv of 0 bytes does; iovecs
 * holding no byte go to readv(2) / writev(2), which take and send nothing
 * (no empty datagram). */
WEFT_MUST_CHECK ssize_t weft_readv(int fd, const struct iovec *iov, int iovcnt);
WEFT_MUST_CHECK ssize_t weft_writev(int fd, const struct iovec *iov,
				    int iovcnt);

/* shutdown(2): SHUT_RD, SHUT_WR or SHUT_RDWR. Never blocks. Returns 0 or
 * -errno. */
int weft_shutdown(int fd, int how);

/* Closes any descriptor; tasks waiting on it (weft I/O calls) wake up with
 * -EBADF first, and its registration in the epoll set is dropped. A plain
 * thread's wait is not ended: a blocking system call goes on with the
 * file (below), a poll(2) wait says -EBADF once it ends. Under epoll a
 * file call on it still queued for the blocking pool ends with -EBADF at
 * once. A call in its system call on another thread is not
 * stopped, and keeps the file and its number: a socket call's attempt
 * (one non-blocking system call, or its worker's ring's next round) or a
 * file call the pool already runs. The descriptor is then closed when the
 * last such call ends (as Go's Close leaves it to the last call in
 * progress; close(2)'s error is then not reported), and until then weft's
 * calls on it say -EBADF. So a call that may wait (no MSG_DONTWAIT) never
 * reaches a file that took the number after it began, in a task or on a
 * plain thread. Else the number may be reused at once. Returns 0 or
 * -errno (-EBADF). */
int weft_close(int fd);

/* ---- readiness of a file weft does not read ------------------------------ */

/* weft_wait_fd() events. */
#define WEFT_READABLE 1u
#define WEFT_WRITABLE 2u

/* Waits until fd is readable or writable (events: WEFT_READABLE,
 * WEFT_WRITABLE, or both for either), for a file whose reads and writes a
 * library makes: libpq's PQsocket, OpenSSL after SSL_ERROR_WANT_READ or
 * _WRITE, c-ares, a pipe, an eventfd. Readiness is what poll(2) means by
 * it: a read or write would not wait, or the file hung up or failed and
 * the next call says so. It is not consumed: the read that follows may
 * still find nothing (another reader was first); call again then. In a
 * task, fd joins weft's epoll set (see O_NONBLOCK above); close it with
 * weft_close where you can. A library that closes it with close(2) itself
 * (PQfinish, c-ares) may: the next wait on a file that took the number
 * (this one's, or a weft call's that has to wait) finds it missing from
 * the set and registers it. As weft_recv, it says
 * -ECANCELED or -ETIMEDOUT in a cancelled task or past its deadline even
 * if fd is ready. weft_select's READABLE and WRITABLE cases wait on an fd
 * beside other operations (weft/select.h). On a plain thread it is
 * poll(2) itself (a weft_close on another thread does not end it).
 * Returns the one of events found ready
 * (the readable one if both are at once), or -errno: -EINVAL (events 0 or
 * unknown bits), -EBADF (fd not open, or weft_close(fd) came while it
 * waited), -ECANCELED, -ETIMEDOUT, -ENOMEM, -EMFILE (fd past weft's 2M
 * table), or epoll_ctl(2)'s error. */
WEFT_MUST_CHECK int weft_wait_fd(int fd, unsigned events);

/* ---- UDP ----------------------------------------------------------------- */

/* A UDP socket bound to host:port (host NULL: every address, as
 * weft_tcp_listen binds it; port 0: ephemeral). Returns the fd or -errno. */
WEFT_MUST_CHECK int weft_udp_bind(const char *host, uint16_t port);

/* One datagram to `to` (NULL: the connected peer). A `to` with tolen 0
 * is what sendto(2) makes of it: UDP says -EINVAL, a Unix datagram socket
 * sends to its peer. Returns the count or -errno (-EINVAL: tolen larger
 * than any address, on every path). */
WEFT_MUST_CHECK ssize_t weft_sendto(int fd, const void *buf, size_t len,
				    int flags, const struct sockaddr *to,
				    socklen_t tolen);

/* One datagram; from may be NULL (fromlen is then not used, as
 * recvfrom(2) says; from without fromlen is -EFAULT, nothing taken).
 * Returns its length (truncated to len; with MSG_TRUNC its whole length,
 * as recvfrom(2), though only len bytes are stored), 0 once the socket's
 * read side is shut down (shutdown(2) SHUT_RD) and nothing is queued, or
 * -errno. MSG_ERRQUEUE never waits, as recvmsg(2): -EAGAIN if no error is
 * queued (one that is makes the socket readable, for weft_wait_fd).
 * MSG_WAITALL does not fill len on a stream socket here: the call returns
 * what one receive takes, as for a datagram; weft_recv fills it. */
WEFT_MUST_CHECK ssize_t weft_recvfrom(int fd, void *buf, size_t len, int flags,
				      struct sockaddr *from,
				      socklen_t *fromlen);

/* ---- Unix domain sockets ------------------------------------------------- */

/* Listens on a stream Unix socket at path; a leading '@' names the abstract
 * namespace. A stale socket file at path (one no socket is bound to) is
 * replaced; finding out makes no connection that a live server's accept
 * would see, and a live server's file stays (-EADDRINUSE). A file name has
 * at most 107 bytes (sun_path keeps its NUL), an abstract name '@' and at
 * most 107. Returns the fd or -errno (-ENAMETOOLONG, -EADDRINUSE, ...). */
WEFT_MUST_CHECK int weft_unix_listen(const char *path, int backlog);

/* Connects to the Unix stream socket at path ('@': abstract). While the
 * listener's backlog is full it tries again, after pauses of up to 10 ms,
 * until there is room or the caller's deadline or cancellation ends it.
 * Returns the fd or -errno (-ENOENT, -ECONNREFUSED, ...). */
WEFT_MUST_CHECK int weft_unix_connect(const char *path);

/* ---- Files ------------------------------------------------------------ */

/* A file call already in its system call (under epoll on a pool thread,
 * under io_uring on the kernel's io-wq) is not cut short by a cancellation
 * or deadline, as a disk's read or write cannot be stopped (io-wq cannot
 * either, and Go's file calls take no deadline): the call waits for it and
 * returns its result, and the task's next wait says -ECANCELED /
 * -ETIMEDOUT. buf may be on the task's stack, and a -ECANCELED after a
 * write that happened would hide it. The exception is a system call that
 * sleeps as a signal would interrupt, waiting for another party, not for
 * a disk: a FIFO's open waiting for its other end, a read of a device
 * that waits for data (/dev/kmsg). io_uring interrupts it
 * (-ECANCELED / -ETIMEDOUT, nothing moved; what it moved before, it
 * returns). On the blocking pool (under epoll; under io_uring a pread
 * or pwrite whose len is 0 or past 0x7ffff000) a read of a character
 * device that polls not ready waits for readiness in the task first,
 * where cancellation, deadline and weft_close end it, and a FIFO reader's
 * open waits for its writer in the task; any other such sleep (a write, a
 * read that sleeps though its file polled ready, a FIFO writer's open)
 * waits until the other party comes. */

/* open(2) (O_CLOEXEC is implied). Returns the fd or -errno. */
WEFT_MUST_CHECK int weft_open(const char *path, int flags, mode_t mode);

/* Reads / writes at offset off, without moving the file position. Return
 * the count (0 at end of file) or -errno (-EBADF, -EINVAL for a negative
 * off or an off + len past the largest offset, -EFAULT for a NULL buf with
 * len > 0 or a len past SSIZE_MAX, -ESPIPE for a file without an
 * offset: a pipe, FIFO, socket or tty, under either driver, as pread(2)
 * says; -EIO, ...). One call moves at most 0x7ffff000 bytes, as
 * pread(2). A len of 0 asks the kernel too, as pread(2) does, and
 * says 0 or what it says of fd (-EISDIR: a directory's read). Under
 * io_uring a len of 0, or one past 0x7ffff000 (the SQE's length), runs
 * on the blocking pool, as under epoll, for pread(2) to judge it. */
WEFT_MUST_CHECK ssize_t weft_pread(int fd, void *buf, size_t len, off_t off);
WEFT_MUST_CHECK ssize_t weft_pwrite(int fd, const void *buf, size_t len,
				    off_t off);

/* weft_fsync() flags. */
#define WEFT_FSYNC_DATA 0x1u /* fdatasync: skip metadata not needed to read */

/* Flushes the file to its device. Returns 0 or -errno. */
WEFT_MUST_CHECK int weft_fsync(int fd, unsigned flags);

/* ---- Escape hatch -------------------------------------------------------- */

/* Prepares one SQE, zeroed before the call. It must not touch
 * sqe->user_data or prep a multishot request. */
typedef void (*weft_io_prep_fn)(struct io_uring_sqe *sqe, void *arg);

/* Submits any io_uring operation prep(sqe, arg) fills in and waits for it.
 * fd (or -1) names the descriptor it uses, so weft_close(fd) can wake it
 * in a task (not on a plain thread: see below).
 * Returns cqe->res (which is -errno on failure), or -ECANCELED /
 * -ETIMEDOUT, -EBADF (fd closed) if the cancel ended it (an op that
 * completed first, or failed for a reason of its own, says so);
 * -EOPNOTSUPP in a task under the epoll driver (there is no ring); -EINVAL,
 * nothing submitted, if prep set IOSQE_IO_LINK, IOSQE_IO_HARDLINK,
 * IOSQE_IO_DRAIN or IOSQE_CQE_SKIP_SUCCESS in sqe->flags (the ring is
 * shared: each call's op must start alone and end with a CQE). For the
 * same reason an op that acts on the ring's other ops (an ASYNC_CANCEL
 * with IORING_ASYNC_CANCEL_ANY or _FD, a TIMEOUT that counts
 * completions) reaches other tasks' ops too. On a plain thread it runs on
 * a private ring of that thread, set up at its first call, and waits for
 * the completion whatever another thread closes: -ENOMEM if there was no
 * memory for the ring, -EMFILE / -ENFILE if no descriptor was left for it
 * (a later call tries again), -ENOSYS if io_uring cannot be set up. A
 * private ring outlives its thread, for the next plain thread to use: the
 * process holds as many as plain threads have used it at once. */
WEFT_MUST_CHECK int weft_io_submit(int fd, weft_io_prep_fn prep, void *arg);

/* ---- Blocking pool (asyncio.to_thread) ----------------------------------- */

/* A blocking function for the pool. */
typedef void *(*weft_blocking_fn)(void *arg);

/* Runs fn(arg) on the blocking pool (at most weft_config.blocking_threads
 * threads, started on demand and reused) and waits for it; stores its
 * return value in *result if result is not NULL. A job that has not started
 * when the task is cancelled or its deadline passes never runs (then
 * -ECANCELED / -ETIMEDOUT); once started it runs to the end and the call
 * waits for it and returns 0, since arg may live on the caller's stack. On
 * a plain thread fn runs at once on the caller. Returns 0, -EINVAL (NULL
 * fn), -ECANCELED, -ETIMEDOUT, -ESHUTDOWN (the runtime is stopping),
 * -EAGAIN (no thread could be started). */
WEFT_MUST_CHECK int weft_blocking(weft_blocking_fn fn, void *arg,
				  void **result);

#ifdef __cplusplus
}
#endif
#endif
