/* Files on either driver, and the escape hatch weft_io_submit(). */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <liburing.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
#include "test_io_util.h"
#include "runtime/valgrind.h"
#include "io/call.h"
#include "drivers/io_uring/op.h"
#include "drivers/readiness/fdready.h"
#include "drivers/readiness/pollset.h"
#include "test_preps.h"

static void tmp_path(char *buf, size_t len, const char *tag)
{
	snprintf(buf, len, "/tmp/weft-test-%s-%d", tag, (int)getpid());
}

static void *file_main(void *arg)
{
	char path[128];
	size_t size = (size_t)SCALED(4 << 20), chunk = 65536 + 13;
	uint8_t *buf = malloc(chunk), *back = malloc(chunk);
	int fd;

	tmp_path(path, sizeof(path), "file");
	fd = weft_open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	ck_assert_int_ge(fd, 0);
	/* Written in chunks at increasing offsets... */
	for (size_t off = 0; off < size; off += chunk) {
		size_t n = size - off < chunk ? size - off : chunk;

		io_fill(buf, n, 7, off);
		ck_assert_int_eq(weft_pwrite(fd, buf, n, (off_t)off),
				 (ssize_t)n);
	}
	ck_assert_int_eq(weft_fsync(fd, 0), 0);
	ck_assert_int_eq(weft_fsync(fd, WEFT_FSYNC_DATA), 0);
	ck_assert_int_eq(weft_close(fd), 0);

	/* ... read back in a different order and chunking. */
	fd = weft_open(path, O_RDONLY, 0);
	ck_assert_int_ge(fd, 0);
	for (size_t off = size; off > 0;) {
		size_t n = off < 4096 * 3 ? off : 4096 * 3;

		off -= n;
		ck_assert_int_eq(weft_pread(fd, back, n, (off_t)off),
				 (ssize_t)n);
		io_fill(buf, n, 7, off);
		ck_assert_int_eq(memcmp(buf, back, n), 0);
	}
	/* End of file, and a short read across it. */
	ck_assert_int_eq(weft_pread(fd, back, 10, (off_t)size), 0);
	ck_assert_int_eq(weft_pread(fd, back, 10, (off_t)size - 3), 3);
	/* readv at the file position. */
	struct iovec iov[2] = { { back, 100 }, { back + 100, 50 } };
	ck_assert_int_eq(weft_readv(fd, iov, 2), 150);
	io_fill(buf, 150, 7, 0);
	ck_assert_int_eq(memcmp(buf, back, 150), 0);
	ck_assert_int_eq(weft_readv(fd, iov, 1), 100);
	io_fill(buf, 100, 7, 150);
	ck_assert_int_eq(memcmp(buf, back, 100), 0);
	/* Writing a read-only descriptor fails cleanly. */
	ck_assert_int_eq(weft_pwrite(fd, buf, 10, 0), -EBADF);
	ck_assert_int_eq(weft_close(fd), 0);

	/* writev appends at the position. */
	fd = weft_open(path, O_WRONLY | O_APPEND, 0);
	ck_assert_int_ge(fd, 0);
	struct iovec wv[2] = { { "tail", 4 }, { "end", 3 } };
	ck_assert_int_eq(weft_writev(fd, wv, 2), 7);
	weft_close(fd);
	fd = weft_open(path, O_RDONLY, 0);
	ck_assert_int_eq(weft_pread(fd, back, 7, (off_t)size), 7);
	ck_assert_int_eq(memcmp(back, "tailend", 7), 0);
	weft_close(fd);

	/* Bad input. */
	ck_assert_int_eq(weft_open("/nonexistent/dir/file", O_RDONLY, 0),
			 -ENOENT);
	ck_assert_int_eq(weft_open(NULL, O_RDONLY, 0), -EFAULT);
	fd = weft_open(path, O_RDONLY, 0);
	ck_assert_int_eq(weft_pread(fd, back, 10, -1), -EINVAL);
	ck_assert_int_eq(weft_pread(fd, NULL, 10, 0), -EFAULT);
	ck_assert_int_eq(weft_pread(fd, back, 0, 0), 0);
	ck_assert_int_eq(weft_fsync(fd, 0x100), -EINVAL);
	ck_assert_int_eq(weft_pread(-1, back, 10, 0), -EBADF);
	ck_assert_int_eq(weft_pwrite(1 << 20, back, 10, 0), -EBADF);
	ck_assert_int_eq(weft_fsync(-1, 0), -EBADF);
	weft_close(fd);
	ck_assert_int_eq(unlink(path), 0);
	free(buf);
	free(back);
	return NULL;
}

START_TEST(files)
{
	weft_test_run(file_main, NULL, 2);
}
END_TEST

START_TEST(files_plain_thread)
{
	char path[128], back[5];
	int fd;

	tmp_path(path, sizeof(path), "plain");
	fd = weft_open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(weft_pwrite(fd, "hello", 5, 100), 5);
	ck_assert_int_eq(weft_fsync(fd, 0), 0);
	ck_assert_int_eq(weft_pread(fd, back, 5, 100), 5);
	ck_assert_int_eq(memcmp(back, "hello", 5), 0);
	ck_assert_int_eq(weft_close(fd), 0);
	unlink(path);
}
END_TEST

/* ---- a file call waiting for the blocking pool, and weft_close ----------- */

/* Runs main on two workers and a blocking pool of one thread, which a
 * test holds to keep its file calls queued or started. */
static void run_with_one_pool_thread(weft_fn main)
{
	struct weft_config cfg = { .workers = 2, .blocking_threads = 1 };

	ck_assert_int_eq(weft_run(main, NULL, &cfg, NULL), 0);
}

/*
 * Under epoll a file call waits on the blocking pool for a thread. If
 * weft_close(fd) comes meanwhile and another file takes fd's number, the
 * call must not reach that file: a call in progress stays with the file it
 * began on (its result there, or -EBADF), as under io_uring. A pwrite
 * queued behind the pool's one thread (held) wrote into the file opened
 * after the close.
 */
static struct weft_event pool_release = WEFT_EVENT_INIT;
static atomic_int pool_held;

static void *hold_pool(void *arg)
{
	atomic_store(&pool_held, 1);
	ck_assert_int_eq(weft_event_wait(&pool_release), 0);
	return NULL;
}

static void *pool_holder(void *arg)
{
	return (void *)(intptr_t)weft_blocking(hold_pool, NULL, NULL);
}

static void *queued_pwrite(void *arg)
{
	return (void *)(intptr_t)weft_pwrite((int)(intptr_t)arg, "X", 1, 0);
}

static void *queued_close_main(void *arg)
{
	char old_path[128], new_path[128], got;
	weft_task_t holder, writer;
	struct stat st;
	void *res, *wres;
	int fd, fd2;

	tmp_path(old_path, sizeof(old_path), "queued-old");
	tmp_path(new_path, sizeof(new_path), "queued-new");
	fd = weft_open(old_path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	ck_assert_int_ge(fd, 0);
	atomic_store(&pool_held, 0);
	weft_event_clear(&pool_release);
	ck_assert_int_eq(weft_spawn(&holder, pool_holder, NULL), 0);
	while (!atomic_load(&pool_held))
		weft_sleep(WEFT_MSEC);
	ck_assert_int_eq(weft_spawn(&writer, queued_pwrite,
				    (void *)(intptr_t)fd),
			 0);
	/* The call in progress before the close: under epoll queued behind
	 * the holder; under io_uring done (its SQE goes at once). */
	if (weft_io_driver() == WEFT_IO_EPOLL) {
		struct weft_metrics m = { .blocking_queued = 0 };

		while (!m.blocking_queued) {
			weft_sleep(WEFT_MSEC);
			ck_assert_int_eq(weft_metrics(&m), 0);
		}
	} else {
		ck_assert_int_eq(weft_join(writer, &wres), 0);
	}
	ck_assert_int_eq(weft_close(fd), 0);
	/* open(2): under epoll weft_open would queue behind the writer. */
	fd2 = open(new_path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	ck_assert_int_ge(fd2, 0);
	if (fd2 != fd) { /* the new file takes the number */
		ck_assert_int_eq(dup2(fd2, fd), fd);
		close(fd2);
	}
	ck_assert_int_ge(weft_event_set(&pool_release), 0);
	ck_assert_int_eq(weft_join(holder, &res), 0);
	ck_assert_int_eq((intptr_t)res, 0);
	if (weft_io_driver() == WEFT_IO_EPOLL)
		ck_assert_int_eq(weft_join(writer, &wres), 0);
	/* The new file is untouched; the old one has the byte if the call
	 * says it wrote it. */
	ck_assert_int_eq(fstat(fd, &st), 0);
	ck_assert_int_eq(st.st_size, 0);
	ck_assert_int_eq(weft_close(fd), 0);
	if ((intptr_t)wres != -EBADF) {
		ck_assert_int_eq((intptr_t)wres, 1);
		fd = weft_open(old_path, O_RDONLY, 0);
		ck_assert_int_ge(fd, 0);
		ck_assert_int_eq(weft_pread(fd, &got, 1, 0), 1);
		ck_assert_int_eq(got, 'X');
		ck_assert_int_eq(weft_close(fd), 0);
	}
	unlink(old_path);
	unlink(new_path);
	return NULL;
}

START_TEST(queued_file_call_keeps_its_file)
{
	run_with_one_pool_thread(queued_close_main);
}
END_TEST

/*
 * Under epoll weft_close(fd) ends a file call still queued on fd at once
 * with -EBADF, as io_uring's close cancels its ops: it waited behind the
 * busy pool until a thread came to fail it. (Under io_uring the pread
 * does not queue: it just reads.)
 */
static atomic_int pread_done;

static void *queued_pread(void *arg)
{
	char b;
	ssize_t r = weft_pread((int)(intptr_t)arg, &b, 1, 0);

	atomic_store(&pread_done, 1);
	return (void *)(intptr_t)r;
}

static void *close_ends_queued_main(void *arg)
{
	char path[128];
	weft_task_t holder, reader;
	struct weft_metrics m = { .blocking_queued = 0 };
	void *res;
	int fd, done;

	if (weft_io_driver() != WEFT_IO_EPOLL)
		return NULL;
	tmp_path(path, sizeof(path), "close-queued");
	fd = weft_open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	ck_assert_int_ge(fd, 0);
	atomic_store(&pool_held, 0);
	atomic_store(&pread_done, 0);
	weft_event_clear(&pool_release);
	ck_assert_int_eq(weft_spawn(&holder, pool_holder, NULL), 0);
	while (!atomic_load(&pool_held))
		weft_sleep(WEFT_MSEC);
	ck_assert_int_eq(weft_spawn(&reader, queued_pread,
				    (void *)(intptr_t)fd),
			 0);
	while (!m.blocking_queued) {
		weft_sleep(WEFT_MSEC);
		ck_assert_int_eq(weft_metrics(&m), 0);
	}
	ck_assert_int_eq(weft_close(fd), 0);
	/* Ends while the pool's one thread is still held. */
	for (int i = 0; i < 2000 && !atomic_load(&pread_done); i++)
		weft_sleep(WEFT_MSEC);
	done = atomic_load(&pread_done);
	ck_assert_int_eq(done, 1);
	ck_assert_int_eq(weft_join(reader, &res), 0);
	ck_assert_int_eq((intptr_t)res, -EBADF);
	ck_assert_int_eq(weft_metrics(&m), 0);
	ck_assert_int_eq(m.blocking_queued, 0);
	ck_assert_int_ge(weft_event_set(&pool_release), 0);
	ck_assert_int_eq(weft_join(holder, &res), 0);
	ck_assert_int_eq((intptr_t)res, 0);
	unlink(path);
	return NULL;
}

START_TEST(close_ends_queued_file_call)
{
	run_with_one_pool_thread(close_ends_queued_main);
}
END_TEST

/*
 * Under epoll a pool thread makes a started file call's system call on
 * fd's number: a weft_close between the call's check and that system call
 * let the number go, and the new file that took it got the call's write.
 * Now the close(2) waits for the call's end. The hook holds the pool
 * thread there while the test closes fd and asks for the lowest free
 * number from fd up, which the closed fd's was.
 */
static atomic_int window_fd = -1, in_window, leave_window;

static void hold_in_window(int fd, enum weft__fdready_moment at)
{
	if (at != WEFT__FDREADY_STARTED || fd != atomic_load(&window_fd))
		return;
	atomic_store(&in_window, 1);
	for (int i = 0; i < 10000 && !atomic_load(&leave_window); i++)
		usleep(1000);
}

/* Spawns fn(fd) as *task and waits until its file call on fd is held in
 * the window (hold_in_window). */
static void start_held(weft_task_t *task, void *(*fn)(void *), int fd)
{
	atomic_store(&window_fd, fd);
	atomic_store(&in_window, 0);
	atomic_store(&leave_window, 0);
	weft__fdready_hook = hold_in_window;
	ck_assert_int_eq(weft_spawn(task, fn, (void *)(intptr_t)fd), 0);
	for (int i = 0; i < 2000 && !atomic_load(&in_window); i++)
		weft_sleep(WEFT_MSEC);
	ck_assert_msg(atomic_load(&in_window), "the call never started");
}

static void *started_close_main(void *arg)
{
	char old_path[128], new_path[128], got;
	weft_task_t writer;
	struct stat st;
	void *res;
	int fd, other, fd2;

	if (weft_io_driver() != WEFT_IO_EPOLL)
		return NULL;
	tmp_path(old_path, sizeof(old_path), "started-old");
	tmp_path(new_path, sizeof(new_path), "started-new");
	fd = weft_open(old_path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	ck_assert_int_ge(fd, 0);
	start_held(&writer, queued_pwrite, fd);
	other = open(new_path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	ck_assert_int_ge(other, 0);
	ck_assert_int_eq(weft_close(fd), 0);
	fd2 = fcntl(other, F_DUPFD_CLOEXEC, fd);
	ck_assert_int_ge(fd2, 0);
	close(other);
	if (fd2 != fd) { /* closed to weft's calls meanwhile */
		ck_assert_int_eq(weft_close(fd), -EBADF);
		ck_assert_int_eq(weft_pread(fd, &got, 1, 0), -EBADF);
	}
	atomic_store(&leave_window, 1);
	ck_assert_int_eq(weft_join(writer, &res), 0);
	weft__fdready_hook = NULL;
	ck_assert_int_eq((intptr_t)res, 1);
	/* The new file is untouched, the old one has the byte, and the
	 * call's end closed fd. */
	ck_assert_int_eq(fstat(fd2, &st), 0);
	ck_assert_int_eq(st.st_size, 0);
	ck_assert_int_eq(stat(old_path, &st), 0);
	ck_assert_int_eq(st.st_size, 1);
	ck_assert_int_eq(fcntl(fd, F_GETFD), -1);
	ck_assert_int_eq(errno, EBADF);
	close(fd2);
	unlink(old_path);
	unlink(new_path);
	return NULL;
}

START_TEST(close_waits_for_started_file_call)
{
	run_with_one_pool_thread(started_close_main);
}
END_TEST

/*
 * Under epoll a file call its pool thread started is not cut short by a
 * cancellation: the task waits for it and gets its result (the byte is
 * written, and says so), and its next wait says -ECANCELED. As under
 * io_uring, whose io-wq cannot stop a disk's read or write either, and as
 * Go's file calls: buf may be on the task's stack, and a write cannot be
 * taken back, so a -ECANCELED would hide a write that happened.
 */
static atomic_int pwrite_returned;

static void *pwrite_then_sleep(void *arg)
{
	ssize_t n = weft_pwrite((int)(intptr_t)arg, "X", 1, 0);

	atomic_store(&pwrite_returned, 1);
	ck_assert_int_eq(n, 1);
	ck_assert_int_eq(weft_sleep(WEFT_MSEC), -ECANCELED);
	return NULL;
}

static void *started_cancel_main(void *arg)
{
	char path[128], got;
	weft_task_t writer;
	int fd;

	(void)arg;
	if (weft_io_driver() != WEFT_IO_EPOLL)
		return NULL;
	tmp_path(path, sizeof(path), "started-cancel");
	fd = weft_open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	ck_assert_int_ge(fd, 0);
	atomic_store(&pwrite_returned, 0);
	start_held(&writer, pwrite_then_sleep, fd);
	ck_assert_int_eq(weft_cancel(writer), 0);
	weft_sleep(20 * WEFT_MSEC);
	ck_assert_int_eq(atomic_load(&pwrite_returned), 0);
	atomic_store(&leave_window, 1);
	ck_assert_int_eq(weft_join(writer, NULL), 0);
	weft__fdready_hook = NULL;
	ck_assert_int_eq(weft_pread(fd, &got, 1, 0), 1);
	ck_assert_int_eq(got, 'X');
	ck_assert_int_eq(weft_close(fd), 0);
	unlink(path);
	return NULL;
}

START_TEST(cancel_waits_for_started_file_call)
{
	run_with_one_pool_thread(started_cancel_main);
}
END_TEST

/*
 * weft_close's doc: once it left the close to a call still in its attempt,
 * "until then weft's calls on it say -EBADF", on either driver. Under
 * epoll a file call's hold says so; under io_uring the ring's file calls
 * went to the number, which still held the closed file: a pread read it,
 * a pwrite wrote it. Here a task's weft_readv of a regular file closes it
 * at its attempt (the hook's TRYING moment, where another thread may).
 * The calls come from the hook's task, or from a plain thread, whose file
 * calls are the system calls themselves: they reached the closed file
 * too, on either driver.
 */
static int closing_file = -1;
static bool closing_from_plain;
static long closing_rd, closing_wr, closing_sync;

static void *file_calls_on(void *arg)
{
	int fd = (int)(intptr_t)arg;
	char c;

	closing_rd = weft_pread(fd, &c, 1, 0);
	closing_wr = weft_pwrite(fd, "Z", 1, 1);
	closing_sync = weft_fsync(fd, 0);
	return NULL;
}

static void file_calls_while_closing(int fd, enum weft__fdready_moment at)
{
	pthread_t p;

	if (fd != closing_file || at != WEFT__FDREADY_TRYING)
		return;
	closing_file = -1;
	ck_assert_int_eq(weft_close(fd), 0); /* left to our attempt */
	if (!closing_from_plain) {
		file_calls_on((void *)(intptr_t)fd);
		return;
	}
	ck_assert_int_eq(pthread_create(&p, NULL, file_calls_on,
					(void *)(intptr_t)fd),
			 0);
	ck_assert_int_eq(pthread_join(p, NULL), 0);
}

/* arg: non-NULL for the calls from a plain thread. */
static void *closing_file_main(void *arg)
{
	char path[128], got[4];
	struct iovec iov = { got, sizeof(got) };
	struct stat st;
	int fd;

	closing_from_plain = arg != NULL;
	tmp_path(path, sizeof(path), "closing");
	fd = weft_open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(weft_pwrite(fd, "a", 1, 0), 1);
	closing_file = fd;
	weft__fdready_hook = file_calls_while_closing;
	ssize_t r = weft_readv(fd, &iov, 1);
	weft__fdready_hook = NULL;
	ck_assert_int_eq(closing_file, -1); /* the hook ran */
	ck_assert_msg(closing_rd == -EBADF && closing_wr == -EBADF &&
			      closing_sync == -EBADF,
		      "%spread %ld, pwrite %ld, fsync %ld (-EBADF wanted)",
		      closing_from_plain ? "plain " : "", closing_rd,
		      closing_wr, closing_sync);
	ck_assert_int_eq(r, 1);                   /* the attempt's own read */
	ck_assert_int_eq(fcntl(fd, F_GETFD), -1); /* closed after */
	ck_assert_int_eq(stat(path, &st), 0);
	ck_assert_int_eq(st.st_size, 1); /* nothing written */
	unlink(path);
	return NULL;
}

START_TEST(file_calls_on_a_closing_fd)
{
	weft_test_run(closing_file_main, NULL, 1);
}
END_TEST

START_TEST(plain_file_calls_on_a_closing_fd)
{
	weft_test_run(closing_file_main, "plain", 1);
}
END_TEST

/* The same on a pipe, which takes no offset: under io_uring a pread or
 * pwrite asked the file first (weft__fdready_positional) and said
 * -ESPIPE, where the epoll driver's hold and a plain thread's call say
 * -EBADF. Here a task's weft_readv of the pipe closes it at its attempt. */
static void *closing_pipe_main(void *arg)
{
	int p[2];
	char got[4];
	struct iovec iov = { got, sizeof(got) };

	closing_from_plain = arg != NULL;
	ck_assert_int_eq(pipe2(p, O_CLOEXEC), 0);
	ck_assert_int_eq(write(p[1], "a", 1), 1);
	closing_file = p[0];
	weft__fdready_hook = file_calls_while_closing;
	ssize_t r = weft_readv(p[0], &iov, 1);
	weft__fdready_hook = NULL;
	ck_assert_int_eq(closing_file, -1); /* the hook ran */
	ck_assert_msg(closing_rd == -EBADF && closing_wr == -EBADF &&
			      closing_sync == -EBADF,
		      "%spread %ld, pwrite %ld, fsync %ld (-EBADF wanted)",
		      closing_from_plain ? "plain " : "", closing_rd,
		      closing_wr, closing_sync);
	ck_assert_int_eq(r, 1);                     /* the attempt's own read */
	ck_assert_int_eq(fcntl(p[0], F_GETFD), -1); /* closed after */
	close(p[1]);
	return NULL;
}

START_TEST(pipe_calls_on_a_closing_fd)
{
	weft_test_run(closing_pipe_main, NULL, 1);
	weft_test_run(closing_pipe_main, "plain", 1);
}
END_TEST

/*
 * pread(2) and pwrite(2) say -ESPIPE on a file without an offset (a pipe,
 * a socket); io_uring's read and write ignored the offset and moved the
 * bytes, so the drivers differed. A file with an offset is asked once
 * (weft keeps the yes until the number goes), one without each time: a
 * kept -ESPIPE would refuse the file that close(2) and open(2) give the
 * number next, behind weft's back.
 */
static void *pipe_main(void *arg)
{
	char path[128], b[8];
	int p[2], sv[2], fd, num;

	tmp_path(path, sizeof(path), "espipe");
	ck_assert_int_eq(pipe2(p, O_CLOEXEC), 0);
	ck_assert_int_eq(write(p[1], "abc", 3), 3);
	for (int i = 0; i < 2; i++) {
		ck_assert_int_eq(weft_pread(p[0], b, 3, 0), -ESPIPE);
		ck_assert_int_eq(weft_pwrite(p[1], "xyz", 3, 0), -ESPIPE);
	}
	ck_assert_int_eq(read(p[0], b, sizeof(b)), 3); /* untouched */
	ck_assert_int_eq(memcmp(b, "abc", 3), 0);
	/* The number's next file takes an offset: after weft_close, and
	 * after a close(2) behind weft's back (weft_open makes it anew). */
	num = p[0];
	ck_assert_int_eq(weft_close(p[0]), 0);
	fd = weft_open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	ck_assert_int_eq(fd, num); /* the lowest free number */
	ck_assert_int_eq(weft_pwrite(fd, "hello", 5, 100), 5);
	ck_assert_int_eq(weft_pread(fd, b, 5, 100), 5);
	ck_assert_int_eq(memcmp(b, "hello", 5), 0);
	ck_assert_int_eq(weft_close(fd), 0);
	ck_assert_int_eq(dup2(p[1], num), num);
	ck_assert_int_eq(weft_pwrite(num, "xyz", 3, 0), -ESPIPE);
	ck_assert_int_eq(close(num), 0);
	fd = weft_open(path, O_RDWR, 0);
	ck_assert_int_eq(fd, num);
	ck_assert_int_eq(weft_pread(fd, b, 5, 100), 5);
	ck_assert_int_eq(weft_close(fd), 0);
	ck_assert_int_eq(dup2(p[1], num), num);
	ck_assert_int_eq(weft_pread(num, b, 3, 0), -ESPIPE);
	ck_assert_int_eq(close(num), 0);
	ck_assert_int_eq(open(path, O_RDWR | O_CLOEXEC), num);
	ck_assert_int_eq(weft_pread(num, b, 5, 100), 5);
	ck_assert_int_eq(memcmp(b, "hello", 5), 0);
	ck_assert_int_eq(weft_close(num), 0);
	ck_assert_int_eq(weft_close(p[1]), 0);
	/* A socket. */
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv),
			 0);
	ck_assert_int_eq(weft_pwrite(sv[0], "xyz", 3, 0), -ESPIPE);
	ck_assert_int_eq(weft_pread(sv[1], b, 3, 0), -ESPIPE);
	ck_assert_int_eq(weft_close(sv[0]), 0);
	ck_assert_int_eq(weft_close(sv[1]), 0);
	unlink(path);
	return NULL;
}

START_TEST(pread_pipe_espipe)
{
	weft_test_run(pipe_main, NULL, 2);
	pipe_main(NULL); /* a plain thread: pread(2) itself */
}
END_TEST

/*
 * Files that lseek(2) accepts but pread(2) and pwrite(2) refuse with
 * ESPIPE: an eventfd, a timerfd (anonymous inodes, whose llseek does
 * nothing), and a seq_file of /proc, which takes a read offset and no
 * write offset. The ring path asked lseek whether the file takes an
 * offset, so under io_uring a pread of an eventfd read (and reset) its
 * counter, a pwrite added to it, a pread of an idle timerfd waited for
 * its expiry for good, and a pwrite of /proc/self/stat said -EBADF, where
 * the blocking pool's pread(2) and pwrite(2) said -ESPIPE.
 */
static void *offsetless_main(void *arg)
{
	uint64_t v = 0, one = 1;
	char b[8];
	int efd, tfd, pfd;
	struct weft_deadline d;
	bool task = weft_current().task;

	(void)arg;
	efd = eventfd(5, EFD_CLOEXEC | EFD_NONBLOCK);
	ck_assert_int_ge(efd, 0);
	for (int i = 0; i < 2; i++) { /* the answer asked, then kept */
		ck_assert_int_eq(weft_pread(efd, &v, sizeof(v), 0), -ESPIPE);
		ck_assert_int_eq(weft_pwrite(efd, &one, sizeof(one), 0),
				 -ESPIPE);
	}
	ck_assert_int_eq(read(efd, &v, sizeof(v)), (ssize_t)sizeof(v));
	ck_assert_uint_eq(v, 5); /* untouched */
	ck_assert_int_eq(weft_close(efd), 0);
	/* Bounded in a task: the ring path waited for the expiry. */
	tfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	ck_assert_int_ge(tfd, 0);
	if (task)
		ck_assert_int_eq(weft_deadline_enter(&d, WEFT_SEC), 0);
	ck_assert_int_eq(weft_pread(tfd, &v, sizeof(v), 0), -ESPIPE);
	if (task)
		weft_deadline_leave(&d);
	ck_assert_int_eq(weft_close(tfd), 0);
	/* A read offset, no write offset: each direction asks its own, and
	 * says what pwrite(2) says (-ESPIPE; under qemu-user, whose
	 * /proc/self/stat is a copy in a memfd, 1). */
	pfd = open("/proc/self/stat", O_RDONLY | O_CLOEXEC);
	ck_assert_int_ge(pfd, 0);
	ssize_t said = pwrite(pfd, "x", 1, 0) < 0 ? -errno : 1;
	ck_assert_int_eq(weft_pread(pfd, b, sizeof(b), 0), (ssize_t)sizeof(b));
	ck_assert_int_eq(weft_pwrite(pfd, "x", 1, 0), said);
	ck_assert_int_eq(weft_pread(pfd, b, sizeof(b), 0), (ssize_t)sizeof(b));
	ck_assert_int_eq(weft_close(pfd), 0);
	return NULL;
}

START_TEST(pread_offsetless_espipe)
{
	weft_test_run(offsetless_main, NULL, 2);
	offsetless_main(NULL); /* a plain thread: pread(2) itself */
}
END_TEST

/*
 * A length no buffer has, or one whose end passes the largest offset:
 * pread(2) and pwrite(2) refuse it (-EFAULT: no address range is that
 * long; -EINVAL: off + len overflows) before they cut it to the most one
 * call moves. weft cut it first, to fit the SQE's 32-bit length, and then
 * asked the kernel, on every path: so a length gone negative
 * ((size_t)-1) read into memory past the buffer or wrote what lay past it
 * to the file (here 2 GiB "written" to /dev/null from 16 bytes; a read
 * of /proc/self/exe into it filled 38912 bytes), and a
 * read whose end overflowed said 0, end of file. Compared with the system
 * calls themselves, on the same input. The buffer is static: one on the
 * stack lies near the top of the address space, where the range itself
 * already fails (-EFAULT). Then a len below SSIZE_MAX whose range from
 * the buffer passes the end of the address space (1 << 62) still went
 * to io_uring cut, which read the file into huge_buf and said 10 where
 * pread(2) says -EFAULT (and "wrote" 2 GiB to /dev/null).
 */
static char huge_buf[16];

/* pread(2) and pwrite(2) as -errno, read here: in a task the caller's
 * &errno may be the thread's it ran on before a weft call
 * (docs/concepts.md). */
__attribute__((noinline)) static long sys_prw(int fd, size_t len, off_t off,
					      bool write)
{
	ssize_t r = write ? pwrite(fd, huge_buf, len, off)
			  : pread(fd, huge_buf, len, off);

	return r < 0 ? -errno : r;
}

static void huge_len_calls(void)
{
	/* volatile: the compiler sees the lengths pass the buffer, and
	 * refuses the system calls it can see (-Wstringop-overflow). */
	volatile size_t neg_v = (size_t)-1, big_v = (size_t)1 << 32,
			far_v = (size_t)1 << 62;
	const size_t neg = neg_v, big = big_v, far = far_v;
	const off_t end = LLONG_MAX - ((off_t)1 << 31);
	int null = open("/dev/null", O_WRONLY | O_CLOEXEC);
	char path[128];
	long want;
	int fd;

	/* Shorter than huge_buf: a read weft lets through stays in it. */
	tmp_path(path, sizeof(path), "huge");
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	ck_assert(fd >= 0 && null >= 0);
	ck_assert_int_eq(write(fd, "0123456789", 10), 10);
	want = sys_prw(fd, neg, 0, false);
	ck_assert_int_lt(want, 0);
	ck_assert_int_eq(weft_pread(fd, huge_buf, neg, 0), want);
	want = sys_prw(null, neg, 0, true);
	ck_assert_int_lt(want, 0);
	ck_assert_int_eq(weft_pwrite(null, huge_buf, neg, 0), want);
	/* Below SSIZE_MAX, but past the end of any address range from
	 * huge_buf: -EFAULT, as pread(2)'s access_ok says. */
	want = sys_prw(fd, far, 0, false);
	ck_assert_int_lt(want, 0);
	ck_assert_int_eq(weft_pread(fd, huge_buf, far, 0), want);
	want = sys_prw(null, far, 0, true);
	ck_assert_int_lt(want, 0);
	ck_assert_int_eq(weft_pwrite(null, huge_buf, far, 0), want);
	/* The kernel says -EINVAL (off + len overflows); qemu-user, which
	 * checks the buffer first, -EFAULT. Either way weft says the same. */
	want = sys_prw(fd, big, end, false);
	ck_assert_int_lt(want, 0);
	ck_assert_int_eq(weft_pread(fd, huge_buf, big, end), want);
	want = sys_prw(null, big, end, true);
	ck_assert_int_lt(want, 0);
	ck_assert_int_eq(weft_pwrite(null, huge_buf, big, end), want);
	ck_assert_int_eq(close(fd), 0);
	ck_assert_int_eq(close(null), 0);
	ck_assert_int_eq(unlink(path), 0);
}

static void *huge_len_main(void *arg)
{
	(void)arg;
	huge_len_calls();
	return NULL;
}

START_TEST(huge_len_refused_as_pread_refuses)
{
	/* Memcheck checks a system call's buffer for its whole length, which
	 * is past it here on purpose, and reports the oracle's call too. */
	if (WEFT_UNDER_VALGRIND())
		return;
	weft_test_run(huge_len_main, NULL, 2);
	huge_len_calls(); /* a plain thread's */
}
END_TEST

/*
 * A file call in a cancelled task, or past its deadline, says -ECANCELED /
 * -ETIMEDOUT before it makes any system call, on both drivers, whatever
 * the fd. The io_uring path asked whether the file takes an offset (a
 * preadv or pwritev of nothing) first, and so said -ESPIPE for a pipe or
 * a socket and -EBADF for a closed fd or one open the other way, where
 * the blocking pool under epoll (and io_uring's own weft_fsync) said
 * -ECANCELED.
 */
static void refused_calls(int want)
{
	char b[4] = "xyz";
	int p[2], sv[2], ro;

	ck_assert_int_eq(pipe2(p, O_CLOEXEC), 0);
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv),
			 0);
	ro = open("/proc/self/exe", O_RDONLY | O_CLOEXEC);
	ck_assert_int_ge(ro, 0);
	ck_assert_int_eq(weft_pread(p[0], b, 3, 0), want);
	ck_assert_int_eq(weft_pwrite(p[1], b, 3, 0), want);
	ck_assert_int_eq(weft_pread(sv[0], b, 3, 0), want);
	ck_assert_int_eq(weft_pwrite(ro, b, 3, 0), want);
	ck_assert_int_eq(weft_fsync(p[0], 0), want);
	ck_assert_int_eq(close(p[1]), 0);
	ck_assert_int_eq(weft_pread(p[1], b, 3, 0), want); /* closed */
	ck_assert_int_eq(weft_pwrite(p[1], b, 3, 0), want);
	ck_assert_int_eq(weft_close(p[0]), 0);
	ck_assert_int_eq(weft_close(sv[0]), 0);
	ck_assert_int_eq(weft_close(sv[1]), 0);
	ck_assert_int_eq(weft_close(ro), 0);
}

static void *refused_main(void *arg)
{
	struct weft_deadline d;

	(void)arg;
	ck_assert_int_eq(weft_deadline_enter(&d, 0), 0);
	refused_calls(-ETIMEDOUT);
	weft_deadline_leave(&d);
	ck_assert_int_eq(weft_cancel(weft_current()), 0);
	refused_calls(-ECANCELED);
	return NULL;
}

START_TEST(cancelled_file_call_makes_no_call)
{
	weft_test_run(refused_main, NULL, 2);
}
END_TEST

/*
 * A call of no bytes says what pread(2) / pwrite(2) say of one: 0 for a
 * file that takes it, -EBADF for a closed fd or one open the other way,
 * -ESPIPE for a pipe, -EISDIR for a directory's read; in a cancelled task
 * -ECANCELED, as for any length. It said 0 for all of them, on both
 * drivers, in a task and on a plain thread; then, under io_uring, 0 for
 * the directory (io_uring's read of no bytes does not call the
 * directory's read).
 */
static void zero_length_calls(void)
{
	int p[2], ro, wo, dir;
	char b[1];

	ck_assert_int_eq(pipe2(p, O_CLOEXEC), 0);
	ro = open("/proc/self/exe", O_RDONLY | O_CLOEXEC);
	wo = open("/dev/null", O_WRONLY | O_CLOEXEC);
	dir = open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	ck_assert(ro >= 0 && wo >= 0 && dir >= 0);
	/* pread(2) hands no bytes to the file's read too, and a directory's
	 * refuses them. */
	ck_assert_int_eq(weft_pread(dir, b, 0, 0), -EISDIR);
	ck_assert_int_eq(weft_pread(ro, b, 0, 0), 0);
	ck_assert_int_eq(weft_pread(ro, NULL, 0, 0), 0);
	ck_assert_int_eq(weft_pwrite(wo, b, 0, 0), 0);
	ck_assert_int_eq(weft_pwrite(ro, b, 0, 0), -EBADF);
	ck_assert_int_eq(weft_pread(wo, b, 0, 0), -EBADF);
	ck_assert_int_eq(weft_pread(p[0], b, 0, 0), -ESPIPE);
	ck_assert_int_eq(weft_pwrite(p[1], b, 0, 0), -ESPIPE);
	ck_assert_int_eq(close(p[1]), 0);
	ck_assert_int_eq(weft_pread(p[1], b, 0, 0), -EBADF); /* closed */
	ck_assert_int_eq(close(p[0]), 0);
	ck_assert_int_eq(close(ro), 0);
	ck_assert_int_eq(close(wo), 0);
	ck_assert_int_eq(close(dir), 0);
}

static void *zero_length_main(void *arg)
{
	char b[1];

	(void)arg;
	zero_length_calls();
	ck_assert_int_eq(weft_cancel(weft_current()), 0);
	ck_assert_int_eq(weft_pread(0, b, 0, 0), -ECANCELED);
	return NULL;
}

START_TEST(zero_length_says_what_the_call_says)
{
	weft_test_run(zero_length_main, NULL, 2);
	zero_length_calls(); /* a plain thread's */
}
END_TEST

/* ---- weft_open of a FIFO blocks as open(2) does ------------------------- */

/* open(2) of a FIFO without O_NONBLOCK waits for the other end: a writer
 * for a reader that has none yet, a reader for a writer. io_uring's openat
 * first tries a non-blocking open (O_NONBLOCK), which for a FIFO opens a
 * reader at once and fails a writer with ENXIO. */
static char fifo_path[128];

/* A new FIFO at fifo_path, in place of whatever a run before left. */
static void make_fifo(void)
{
	tmp_path(fifo_path, sizeof(fifo_path), "fifo");
	unlink(fifo_path);
	ck_assert_int_eq(mkfifo(fifo_path, 0600), 0);
}

static void *fifo_peer(void *arg)
{
	int flags = (int)(intptr_t)arg, fd;

	usleep(50000);
	fd = open(fifo_path, flags);
	if (fd >= 0 && (flags & O_ACCMODE) == O_WRONLY)
		ck_assert_int_eq(write(fd, "x", 1), 1);
	return (void *)(intptr_t)fd;
}

static void *fifo_main(void *arg)
{
	pthread_t th;
	void *peer;
	char c = 0;
	int fd;

	/* A writer waits for its reader (opened non-blocking: it does not
	 * wait for us). */
	ck_assert_int_eq(pthread_create(&th, NULL, fifo_peer,
					(void *)(intptr_t)(O_RDONLY |
							   O_NONBLOCK)),
			 0);
	fd = weft_open(fifo_path, O_WRONLY, 0);
	pthread_join(th, &peer);
	ck_assert_int_ge((int)(intptr_t)peer, 0);
	ck_assert_msg(fd >= 0, "weft_open(FIFO, O_WRONLY) = %d", fd);
	weft_close(fd);
	close((int)(intptr_t)peer);
	/* A reader waits for its writer, then reads what it wrote (not an
	 * end of file from a FIFO no writer had opened yet). */
	ck_assert_int_eq(pthread_create(&th, NULL, fifo_peer,
					(void *)(intptr_t)O_WRONLY),
			 0);
	fd = weft_open(fifo_path, O_RDONLY, 0);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(weft_readv(fd, &(struct iovec){ &c, 1 }, 1), 1);
	ck_assert_int_eq(c, 'x');
	pthread_join(th, &peer);
	weft_close(fd);
	close((int)(intptr_t)peer);
	/* A reader whose writer never comes waits out its deadline, its
	 * first open's fd closed (the suite counts fds at its end). */
	if (weft_current().task) {
		struct weft_deadline d;

		ck_assert_int_eq(weft_deadline_enter(&d, 20 * WEFT_MSEC), 0);
		ck_assert_int_eq(weft_open(fifo_path, O_RDONLY, 0), -ETIMEDOUT);
		weft_deadline_leave(&d);
	}
	return NULL;
}

START_TEST(open_fifo_waits)
{
	make_fifo();
	weft_test_run(fifo_main, NULL, 2);
	fifo_main(NULL); /* a plain thread: open(2) itself */
	unlink(fifo_path);
}
END_TEST

/*
 * A cancellation that lands as a FIFO writer's open (no reader yet) has
 * begun its second wait: under epoll, the pool's open(2) of it, after the
 * first (O_NONBLOCK added) said ENXIO; under io_uring, the io-wq open
 * after the inline one's ENXIO. The call must end with -ECANCELED, its job
 * never run. Under epoll the second run reused the first's job, whose
 * state still said JOB_DONE: the cancel's abort found nothing to fail,
 * the job was queued anyway and its open(2) waited on the pool thread
 * for a reader, the task with it. The test links weft__wait_begin_until
 * wrapped (io.cmake): armed, the wrapper cancels the armed task right
 * after the begin of its second pool or I/O wait, as another thread's
 * weft_cancel may.
 */
int __real_weft__wait_begin_until(struct weft__waiter *w, int64_t until);
static _Atomic(struct weft_task *) cancel_at_begin_task;
static atomic_int cancel_at_begin_left;

int __wrap_weft__wait_begin_until(struct weft__waiter *w, int64_t until)
{
	int r = __real_weft__wait_begin_until(w, until);

	if (!r && w->task && w->task == atomic_load(&cancel_at_begin_task) &&
	    (w->kind == WEFT__WAIT_BLOCKING || w->kind == WEFT__WAIT_IO) &&
	    atomic_fetch_sub(&cancel_at_begin_left, 1) == 1)
		weft__task_cancel(w->task);
	return r;
}

static void *cancelled_writer_open(void *arg)
{
	int fd;

	(void)arg;
	atomic_store(&cancel_at_begin_left, 2);
	atomic_store(&cancel_at_begin_task, weft__task_current());
	fd = weft_open(fifo_path, O_WRONLY, 0);
	atomic_store(&cancel_at_begin_task, NULL);
	return (void *)(intptr_t)fd;
}

static void *cancel_fifo_writer_main(void *arg)
{
	struct weft_deadline d;
	weft_task_t writer;
	void *res;
	int r, rfd = -1;

	(void)arg;
	make_fifo();
	ck_assert_int_eq(weft_spawn(&writer, cancelled_writer_open, NULL), 0);
	/* Only a lost cancellation waits this out. */
	ck_assert_int_eq(weft_deadline_enter(&d, HANG_NS), 0);
	r = weft_join(writer, &res);
	weft_deadline_leave(&d);
	if (r == -ETIMEDOUT) { /* its open(2) waits for a reader: give one */
		rfd = open(fifo_path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
		ck_assert_int_ge(rfd, 0);
		ck_assert_int_eq(weft_join(writer, &res), 0);
		close(rfd);
		if ((intptr_t)res >= 0)
			weft_close((int)(intptr_t)res);
	} else {
		ck_assert_int_eq(r, 0);
	}
	unlink(fifo_path);
	ck_assert_int_le(atomic_load(&cancel_at_begin_left), 0);
	ck_assert_msg((intptr_t)res == -ECANCELED,
		      "cancelled FIFO writer's open: %d (%s)",
		      (int)(intptr_t)res,
		      rfd < 0 ? "returned" : "waited for a reader");
	return NULL;
}

START_TEST(open_fifo_writer_cancelled_at_second_wait)
{
	run_with_one_pool_thread(cancel_fifo_writer_main);
}
END_TEST

/*
 * A FIFO's two ends opened by two tasks, with one pool thread: under
 * epoll the reader's open(2) held the thread until a writer came, and the
 * writer's weft_open waited in the pool's queue behind it, for good. The
 * reader now waits for its writer in its task, and io_uring's opens wait
 * on io-wq: both ends open under either driver.
 */
static atomic_bool writer_opened;

static void *pool_fifo_end(void *arg)
{
	int flags = (int)(intptr_t)arg, fd = weft_open(fifo_path, flags, 0);

	ck_assert_int_ge(fd, 0);
	if (flags == O_WRONLY)
		atomic_store(&writer_opened, true);
	return (void *)(intptr_t)fd;
}

static void *pool_fifo_main(void *arg)
{
	weft_task_t reader, writer;
	void *rfd, *wfd;

	(void)arg;
	make_fifo();
	atomic_store(&writer_opened, false);
	ck_assert_int_eq(weft_spawn(&reader, pool_fifo_end,
				    (void *)(intptr_t)O_RDONLY),
			 0);
	weft_sleep(50 * WEFT_MSEC);
	ck_assert_int_eq(weft_spawn(&writer, pool_fifo_end,
				    (void *)(intptr_t)O_WRONLY),
			 0);
	ck_assert_int_eq(weft_join(reader, &rfd), 0);
	ck_assert_int_eq(weft_join(writer, &wfd), 0);
	ck_assert_int_eq(weft_close((int)(intptr_t)rfd), 0);
	ck_assert_int_eq(weft_close((int)(intptr_t)wfd), 0);
	ck_assert(atomic_load(&writer_opened));
	unlink(fifo_path);
	return NULL;
}

START_TEST(fifo_ends_on_one_pool_thread)
{
	run_with_one_pool_thread(pool_fifo_main);
}
END_TEST

/*
 * A FIFO reader's open with no writer ends with its deadline or its
 * task's cancellation, under both drivers, leaving no descriptor and no
 * pool thread behind. Under epoll the pool thread's open(2) waited until a
 * writer came, and the call with it: here the rescuer's writer, seconds
 * later (with no rescuer, for good).
 */
static atomic_bool reader_open_done;

static void *rescue_reader_open(void *arg)
{
	int64_t t0 = weft_now();

	(void)arg;
	while (!atomic_load(&reader_open_done) && io_ms_since(t0) < 3000)
		usleep(1000);
	while (!atomic_load(&reader_open_done)) {
		int fd = open(fifo_path, O_WRONLY | O_NONBLOCK | O_CLOEXEC);

		if (fd >= 0)
			close(fd);
		usleep(10000);
	}
	return NULL;
}

static void *open_fifo_reader(void *arg)
{
	(void)arg;
	return (void *)(intptr_t)weft_open(fifo_path, O_RDONLY, 0);
}

static void *nothing(void *arg)
{
	return arg;
}

static void *reader_open_ends_main(void *arg)
{
	struct weft_deadline d;
	weft_task_t t;
	pthread_t th;
	void *res;
	int64_t t0;
	int before = io_count_fds(), r;

	(void)arg;
	atomic_store(&reader_open_done, false);
	ck_assert_int_eq(pthread_create(&th, NULL, rescue_reader_open, NULL),
			 0);
	t0 = weft_now();
	ck_assert_int_eq(weft_deadline_enter(&d, 20 * WEFT_MSEC), 0);
	r = weft_open(fifo_path, O_RDONLY, 0);
	weft_deadline_leave(&d);
	ck_assert_msg(r == -ETIMEDOUT && io_ms_since(t0) < 1000,
		      "weft_open past its deadline: %d after %ld ms", r,
		      io_ms_since(t0));
	ck_assert_int_eq(weft_spawn(&t, open_fifo_reader, NULL), 0);
	ck_assert_int_eq(weft_sleep(20 * WEFT_MSEC), 0);
	t0 = weft_now();
	ck_assert_int_eq(weft_cancel(t), 0);
	ck_assert_int_eq(weft_join(t, &res), 0);
	ck_assert_msg((intptr_t)res == -ECANCELED && io_ms_since(t0) < 1000,
		      "cancelled weft_open: %d after %ld ms",
		      (int)(intptr_t)res, io_ms_since(t0));
	/* The pool's one thread is free. */
	ck_assert_int_eq(weft_deadline_enter(&d, WEFT_SEC), 0);
	ck_assert_int_eq(weft_blocking(nothing, NULL, NULL), 0);
	weft_deadline_leave(&d);
	atomic_store(&reader_open_done, true);
	pthread_join(th, NULL);
	ck_assert_int_eq(io_count_fds(), before);
	return NULL;
}

START_TEST(fifo_reader_open_ends)
{
	make_fifo();
	run_with_one_pool_thread(reader_open_ends_main);
	unlink(fifo_path);
}
END_TEST

/*
 * A reader opened with O_CREAT (the FIFO exists) waits for its writer as
 * open(2) does, and once one came, opens: a writer that wrote and left at
 * once leaves its byte for it. io_uring runs such an open on io-wq, in
 * blocking mode, from the start; a second open there, as for a reader
 * opened inline, waited for a second writer. One worker, kept by a task
 * from the open's submit until the writer left, so that the opener comes
 * back after that.
 */
static atomic_bool writer_left; /* it opened, wrote and closed */

static void *fifo_writer_leaves(void *arg)
{
	int fd;

	(void)arg;
	fd = open(fifo_path, O_WRONLY | O_CLOEXEC);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, "y", 1), 1);
	close(fd);
	atomic_store(&writer_left, true);
	return NULL;
}

static void *keep_until_writer_left(void *arg)
{
	(void)arg;
	/* Through the scheduler once: the parked open goes out. */
	ck_assert_int_eq(weft_yield(), 0);
	while (!atomic_load(&writer_left))
		; /* keeps the worker: the open's completion waits */
	return NULL;
}

static void *fifo_creat_main(void *arg)
{
	struct weft_deadline d;
	weft_task_t keeper;
	pthread_t th;
	char c = 0;
	int fd;

	(void)arg;
	atomic_store(&writer_left, false);
	ck_assert_int_eq(pthread_create(&th, NULL, fifo_writer_leaves, NULL),
			 0);
	ck_assert_int_eq(weft_spawn(&keeper, keep_until_writer_left, NULL), 0);
	/* Bounded: a pool thread's open(2) under epoll is not cut short,
	 * and its writer comes. */
	ck_assert_int_eq(weft_deadline_enter(&d, 2 * WEFT_SEC), 0);
	fd = weft_open(fifo_path, O_RDONLY | O_CREAT, 0600);
	weft_deadline_leave(&d);
	ck_assert_msg(fd >= 0, "weft_open(FIFO, O_RDONLY | O_CREAT) = %d", fd);
	ck_assert_int_eq(weft_readv(fd, &(struct iovec){ &c, 1 }, 1), 1);
	ck_assert_int_eq(c, 'y');
	ck_assert_int_eq(weft_join(keeper, NULL), 0);
	pthread_join(th, NULL);
	weft_close(fd);
	return NULL;
}

/* The same for a reader whose writer is there when it opens (so open(2)
 * returns at once), and wrote and left before the call returned: the
 * first open, inline, found it; a second, on io-wq, waited for another.
 * io_uring only: under epoll the pool's open(2) may start after the
 * writer left, and would wait for good. */
static void *close_after_submit(void *arg)
{
	/* Through the scheduler once: the parked open goes out, and opens
	 * inline beside the writer. */
	ck_assert_int_eq(weft_yield(), 0);
	close(*(int *)arg); /* before the opener comes back */
	return NULL;
}

static void *fifo_present_main(void *arg)
{
	struct weft_deadline d;
	weft_task_t keeper;
	int hold, wr, fd;
	char c = 0;

	(void)arg;
	if (weft_io_driver() != WEFT_IO_URING)
		return NULL;
	hold = open(fifo_path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	ck_assert_int_ge(hold, 0);
	wr = open(fifo_path, O_WRONLY | O_CLOEXEC); /* finds hold */
	ck_assert_int_ge(wr, 0);
	ck_assert_int_eq(write(wr, "z", 1), 1);
	close(hold);
	ck_assert_int_eq(weft_spawn(&keeper, close_after_submit, &wr), 0);
	ck_assert_int_eq(weft_deadline_enter(&d, 2 * WEFT_SEC), 0);
	fd = weft_open(fifo_path, O_RDONLY, 0);
	weft_deadline_leave(&d);
	ck_assert_msg(fd >= 0, "weft_open(FIFO, O_RDONLY) = %d", fd);
	ck_assert_int_eq(weft_readv(fd, &(struct iovec){ &c, 1 }, 1), 1);
	ck_assert_int_eq(c, 'z');
	ck_assert_int_eq(weft_join(keeper, NULL), 0);
	weft_close(fd);
	return NULL;
}

START_TEST(open_fifo_creat_reader)
{
	make_fifo();
	weft_test_run(fifo_creat_main, NULL, 1);
	weft_test_run(fifo_present_main, NULL, 1);
	unlink(fifo_path);
}
END_TEST

/*
 * A reader whose writer was waiting in its own open(2) (`echo x > fifo`
 * run first): the reader's inline open lets the writer through at once,
 * and the writer may write and leave before the reader's open on io-wq
 * begins to wait. That open waited for a second writer, for good; open(2)
 * returns, and reads the byte. The hook opens, writes and leaves right in
 * that window; the natural race, tried five times after it, was lost in 6
 * of 10 tries on a 2-core VM. Under epoll a pool thread's open(2) has no
 * window: the cases check it opens as open(2) there too.
 */
static int window_writes; /* writers the hook let in */

static void writer_in_window(const char *path)
{
	int fd = open(path, O_WRONLY | O_NONBLOCK | O_CLOEXEC);

	ck_assert_int_ge(fd, 0); /* the reader's inline open is there */
	ck_assert_int_eq(write(fd, "w", 1), 1);
	close(fd);
	window_writes++;
}

static void *waiting_writer(void *arg)
{
	int fd = open(fifo_path, O_WRONLY | O_CLOEXEC);

	(void)arg;
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, "w", 1), 1);
	close(fd);
	return NULL;
}

/* One weft_open of a reader whose writer writes "w" and leaves. */
static void open_reader_read_w(void)
{
	struct weft_deadline d;
	char c = 0;
	int fd;

	ck_assert_int_eq(weft_deadline_enter(&d, 2 * WEFT_SEC), 0);
	fd = weft_open(fifo_path, O_RDONLY, 0);
	weft_deadline_leave(&d);
	ck_assert_msg(fd >= 0, "weft_open(FIFO, O_RDONLY) = %d", fd);
	ck_assert_int_eq(weft_readv(fd, &(struct iovec){ &c, 1 }, 1), 1);
	ck_assert_int_eq(c, 'w');
	weft_close(fd);
}

static void *fifo_window_main(void *arg)
{
	pthread_t th;

	(void)arg;
	/* The hook's writer (io_uring only: it is the writer). */
	if (weft_io_driver() == WEFT_IO_URING) {
		window_writes = 0;
		/* release: the hook reads what this thread wrote before. */
		__atomic_store_n(&weft__fifo_wait_hook, writer_in_window,
				 __ATOMIC_RELEASE);
		open_reader_read_w();
		__atomic_store_n(&weft__fifo_wait_hook, NULL, __ATOMIC_RELEASE);
		ck_assert_int_eq(window_writes, 1);
	}
	/* The natural race, a few times. */
	for (int i = 0; i < 5; i++) {
		ck_assert_int_eq(pthread_create(&th, NULL, waiting_writer,
						NULL),
				 0);
		weft_sleep(10 * WEFT_MSEC); /* it waits in open(2) */
		open_reader_read_w();
		pthread_join(th, NULL);
	}
	return NULL;
}

START_TEST(open_fifo_writer_left_in_window)
{
	make_fifo();
	weft_test_run(fifo_window_main, NULL, 1);
	unlink(fifo_path);
}
END_TEST

/* ---- the escape hatch ---------------------------------------------------- */

struct statx_arg {
	const char *path;
	struct statx stx;
};

static void prep_statx(struct io_uring_sqe *sqe, void *arg)
{
	struct statx_arg *a = arg;

	io_uring_prep_statx(sqe, AT_FDCWD, a->path, 0, STATX_SIZE, &a->stx);
}

struct recv_arg {
	int fd;
	char buf[8];
};

static void prep_recv(struct io_uring_sqe *sqe, void *arg)
{
	struct recv_arg *a = arg;

	io_uring_prep_recv(sqe, a->fd, a->buf, sizeof(a->buf), 0);
}

static void *hatch_recv(void *arg)
{
	struct recv_arg *a = arg;

	return (void *)(intptr_t)weft_io_submit(a->fd, prep_recv, a);
}

static void *hatch_main(void *arg)
{
	struct __kernel_timespec ts = { .tv_nsec = 20 * WEFT_MSEC };
	struct statx_arg sx = { .path = "/proc/self/exe" };
	int64_t t0 = weft_now();
	int sv[2];
	weft_task_t t;
	void *res;

	if (weft_io_driver() == WEFT_IO_EPOLL) {
		/* No ring to submit to: documented, not a crash. */
		ck_assert_int_eq(weft_io_submit(-1, prep_nop, NULL),
				 -EOPNOTSUPP);
		return NULL;
	}
	ck_assert_int_eq(weft_io_driver(), WEFT_IO_URING);
	ck_assert_int_eq(weft_io_submit(-1, prep_nop, NULL), 0);
	ck_assert_int_eq(weft_io_submit(-1, prep_timeout, &ts), -ETIME);
	ck_assert_int_ge(io_ms_since(t0), 19);
	ck_assert_int_eq(weft_io_submit(-1, prep_statx, &sx), 0);
	ck_assert_int_gt(sx.stx.stx_size, 0);
	ck_assert_int_eq(weft_io_submit(-1, NULL, NULL), -EINVAL);

	/* A hatch op is cancelled, and woken by close, like the others. */
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv),
			 0);
	struct recv_arg ra = { .fd = sv[0] };
	ck_assert_int_eq(weft_spawn(&t, hatch_recv, &ra), 0);
	weft_sleep(5 * WEFT_MSEC);
	weft_cancel(t);
	ck_assert_int_eq(weft_join(t, &res), 0);
	ck_assert_int_eq((intptr_t)res, -ECANCELED);
	ck_assert_int_eq(weft_spawn(&t, hatch_recv, &ra), 0);
	weft_sleep(5 * WEFT_MSEC);
	weft_close(sv[0]);
	ck_assert_int_eq(weft_join(t, &res), 0);
	ck_assert_int_eq((intptr_t)res, -EBADF);
	weft_close(sv[1]);
	return NULL;
}

START_TEST(escape_hatch)
{
	weft_test_run(hatch_main, NULL, 2);
}
END_TEST

/* An op aborted by weft_close before its SQE was submitted must not run
 * against the file that takes the fd's number next: the close is
 * immediate, and the kernel looks the fd up only at submit. Here the
 * closer is a plain thread (as a task on another worker would be): while
 * the one worker runs a spinner straight after the recv's task parked,
 * it closes the fd, gives its number to a new socket and writes to it.
 * The recv must fail with -EBADF, not return those bytes. */
struct withdraw_case {
	struct weft_event ready;
	atomic_int stage; /* 1: close now; 2: closed and reused */
	struct recv_arg ra;
	int new_peer;
};

static void *withdraw_spinner(void *arg)
{
	struct withdraw_case *c = arg;

	ck_assert_int_eq(weft_event_wait(&c->ready), 0);
	atomic_store(&c->stage, 1);
	while (atomic_load(&c->stage) != 2)
		; /* keeps the worker: the recv's SQE waits for its round */
	return NULL;
}

static void *withdraw_closer(void *arg)
{
	struct withdraw_case *c = arg;
	int sv[2];

	while (atomic_load(&c->stage) != 1)
		usleep(100);
	ck_assert_int_eq(weft_close(c->ra.fd), 0);
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv),
			 0);
	if (sv[0] != c->ra.fd) {
		ck_assert_int_eq(dup2(sv[0], c->ra.fd), c->ra.fd);
		close(sv[0]);
	}
	ck_assert_int_eq(write(sv[1], "reused", 6), 6);
	c->new_peer = sv[1];
	atomic_store(&c->stage, 2);
	return NULL;
}

static void *withdraw_main(void *arg)
{
	struct withdraw_case c = { .new_peer = -1 };
	int sv[2];
	weft_task_t spinner;
	pthread_t closer;

	if (weft_io_driver() != WEFT_IO_URING)
		return NULL;
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv),
			 0);
	c.ra.fd = sv[0];
	ck_assert_int_eq(weft_event_init(&c.ready), 0);
	ck_assert_int_eq(weft_spawn(&spinner, withdraw_spinner, &c), 0);
	weft_yield(); /* the spinner runs, and waits */
	ck_assert_int_eq(pthread_create(&closer, NULL, withdraw_closer, &c), 0);
	ck_assert_int_ge(weft_event_set(&c.ready), 0);
	/* Parks straight into the spinner, its SQE not yet submitted. */
	ck_assert_int_eq(weft_io_submit(c.ra.fd, prep_recv, &c.ra), -EBADF);
	ck_assert_int_eq(weft_join(spinner, NULL), 0);
	ck_assert_int_eq(pthread_join(closer, NULL), 0);
	close(c.ra.fd);
	close(c.new_peer);
	close(sv[1]);
	return NULL;
}

START_TEST(close_withdraws_unsubmitted_op)
{
	weft_test_run(withdraw_main, NULL, 1);
}
END_TEST

/* A zero-copy send ends with a notification CQE (F_NOTIF, res 0) after
 * the one that carries its result: the call returns the result. */
struct zc_arg {
	int fd;
	char buf[32];
};

static void prep_send_zc(struct io_uring_sqe *sqe, void *arg)
{
	struct zc_arg *a = arg;

	io_uring_prep_send_zc(sqe, a->fd, a->buf, sizeof(a->buf), 0, 0);
}

static void *send_zc_thread(void *arg)
{
	struct zc_arg *a = arg;

	return (void *)(intptr_t)weft_io_submit(a->fd, prep_send_zc, a);
}

static void *send_zc_main(void *arg)
{
	struct zc_arg a;
	char got[sizeof(a.buf)];
	pthread_t th;
	void *res;

	if (weft_io_driver() != WEFT_IO_URING)
		return NULL;
	struct pair p = tcp_pair();
	a.fd = p.a;
	memset(a.buf, 'z', sizeof(a.buf));
	int r = weft_io_submit(a.fd, prep_send_zc, &a);
	if (r != -EINVAL) { /* a kernel before 6.0 does not know the op */
		ck_assert_int_eq(r, sizeof(a.buf));
		ck_assert_int_eq(io_recv_exact(p.b, got, sizeof(got)),
				 sizeof(got));
		ck_assert_int_eq(memcmp(got, a.buf, sizeof(got)), 0);
		/* And from a plain thread's own ring. */
		ck_assert_int_eq(pthread_create(&th, NULL, send_zc_thread, &a),
				 0);
		ck_assert_int_eq(pthread_join(th, &res), 0);
		ck_assert_int_eq((intptr_t)res, sizeof(a.buf));
		ck_assert_int_eq(io_recv_exact(p.b, got, sizeof(got)),
				 sizeof(got));
	}
	weft_close(p.b);
	weft_close(p.a);
	return NULL;
}

START_TEST(send_zc_result)
{
	weft_test_run(send_zc_main, NULL, 1);
}
END_TEST

/* io_uring only (the break eventfd wakes a poller sleeping in the set,
 * which under epoll drains it on every harvest). A break written for a
 * poller that had already woken stays readable; a poller whose ring has
 * an operation in flight polls the set in its ring, and that poll must
 * drain it, or it completes at once at every park and the worker spins
 * until the operation ends. Here: 200 ms of one timeout in flight must
 * cost the process far less than 200 ms of CPU. */
static void *timeout_op(void *arg)
{
	return (void *)(intptr_t)weft_io_submit(-1, prep_timeout, arg);
}

static double cpu_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static void *stale_break_main(void *arg)
{
	struct __kernel_timespec ts = { .tv_nsec = 200 * WEFT_MSEC };
	uint64_t one = 1;
	weft_task_t t;
	void *res;

	if (weft_io_driver() != WEFT_IO_URING)
		return NULL;
	ck_assert_int_eq(write(weft__pollset_break_fd(), &one, sizeof(one)),
			 sizeof(one));
	double cpu0 = cpu_ms();
	ck_assert_int_eq(weft_spawn(&t, timeout_op, &ts), 0);
	ck_assert_int_eq(weft_join(t, &res), 0);
	ck_assert_int_eq((intptr_t)res, -ETIME);
	ck_assert_double_lt(cpu_ms() - cpu0, 100.0);
	return NULL;
}

START_TEST(stale_break_no_spin)
{
	weft_test_run(stale_break_main, NULL, 1);
}
END_TEST

/*
 * A regular file opened O_NONBLOCK reads as pread(2) reads it, on either
 * driver, its pages in the cache or not: io_uring treats O_NONBLOCK as
 * "supports nowait" (io_file_get_flags), so an inline attempt's -EAGAIN
 * (a page not cached) goes to io-wq, which reads blocking; only
 * RWF_NOWAIT, which weft never sets, makes that -EAGAIN final. ext4 or
 * whatever /tmp is, tmpfs (/dev/shm), and procfs.
 */
static void nonblock_file_reads(const char *dir)
{
	char path[160];
	size_t size = 1 << 20, n = 65536;
	uint8_t *buf = malloc(size), *back = malloc(n);
	int fd;

	snprintf(path, sizeof(path), "%s/weft-test-nb-%d", dir, (int)getpid());
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0) { /* no such filesystem here */
		free(buf);
		free(back);
		return;
	}
	io_fill(buf, size, 3, 0);
	ck_assert_int_eq(write(fd, buf, size), (ssize_t)size);
	ck_assert_int_eq(fsync(fd), 0);
	close(fd);
	fd = weft_open(path, O_RDONLY | O_NONBLOCK, 0);
	ck_assert_int_ge(fd, 0);
	/* Out of the page cache where the filesystem allows it. */
	ck_assert_int_eq(posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED), 0);
	for (size_t off = 0; off < size; off += size / 4) {
		ck_assert_int_eq(weft_pread(fd, back, n, (off_t)off),
				 (ssize_t)n);
		ck_assert_int_eq(memcmp(back, buf + off, n), 0);
	}
	ck_assert_int_eq(weft_close(fd), 0);
	ck_assert_int_eq(unlink(path), 0);
	free(buf);
	free(back);
}

static void *nonblock_file_main(void *arg)
{
	char status[64];
	int fd;

	(void)arg;
	nonblock_file_reads("/tmp");
	nonblock_file_reads("/dev/shm");
	fd = weft_open("/proc/self/status", O_RDONLY | O_NONBLOCK, 0);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(weft_pread(fd, status, sizeof(status), 0),
			 sizeof(status));
	ck_assert_int_eq(memcmp(status, "Name:", 5), 0);
	ck_assert_int_eq(weft_close(fd), 0);
	return NULL;
}

START_TEST(pread_nonblock_file)
{
	weft_test_run(nonblock_file_main, NULL, 1);
}
END_TEST

/*
 * A read that sleeps until another party comes (a record on /dev/kmsg)
 * ends with its deadline, on the blocking pool's path too: under io_uring
 * a len of 0 or past the SQE's length runs there, and under epoll every
 * read does, and the pool thread's pread(2) slept until the next kernel
 * message (here the rescuer's, seconds later). weft_close ends it too.
 * Skipped unless the test may both read /dev/kmsg and write it (root).
 */
static atomic_bool kmsg_done;

static void *kmsg_rescue(void *arg)
{
	int64_t t0 = weft_now();
	int fd = (int)(intptr_t)arg;

	while (!atomic_load(&kmsg_done) && io_ms_since(t0) < 3000)
		usleep(1000);
	while (!atomic_load(&kmsg_done)) {
		ck_assert_int_gt(write(fd, "weft test: kmsg rescue\n", 23), 0);
		usleep(100000);
	}
	return NULL;
}

static int kmsg_fd;

static void *kmsg_read_64(void *arg)
{
	return (void *)(intptr_t)weft_pread(kmsg_fd, arg, 64, 0);
}

static void *kmsg_read_main(void *arg)
{
	static const size_t lens[] = { 0, 64, (size_t)3 << 30 };
	int wfd = (int)(intptr_t)arg, fd;
	char *buf = malloc(16384);
	pthread_t th;
	weft_task_t t;
	void *res;
	int64_t t0;

	ck_assert_ptr_nonnull(buf);
	fd = weft_open("/dev/kmsg", O_RDONLY, 0);
	ck_assert_int_ge(fd, 0);
	atomic_store(&kmsg_done, false);
	ck_assert_int_eq(pthread_create(&th, NULL, kmsg_rescue,
					(void *)(intptr_t)wfd),
			 0);
	for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
		struct weft_deadline d;
		ssize_t r;

		/* Past every record: the read waits for the next. A record
		 * of the kernel's meanwhile ends it early: try again. */
		for (int tries = 0; tries < 5; tries++) {
			ck_assert_int_eq(lseek(fd, 0, SEEK_END), 0);
			t0 = weft_now();
			ck_assert_int_eq(weft_deadline_enter(&d,
							     20 * WEFT_MSEC),
					 0);
			r = weft_pread(fd, buf, lens[i], 0);
			weft_deadline_leave(&d);
			if (r == -ETIMEDOUT || io_ms_since(t0) >= 1000)
				break;
		}
		ck_assert_msg(r == -ETIMEDOUT && io_ms_since(t0) < 1000,
			      "len %zu: %zd after %ld ms", lens[i], r,
			      io_ms_since(t0));
	}
	/* The wait left the file blocking, as the caller opened it. */
	ck_assert_int_eq(fcntl(fd, F_GETFL) & O_NONBLOCK, 0);
	/* weft_close ends a read waiting so, with -EBADF. */
	ck_assert_int_eq(lseek(fd, 0, SEEK_END), 0);
	kmsg_fd = fd;
	ck_assert_int_eq(weft_spawn(&t, kmsg_read_64, buf), 0);
	ck_assert_int_eq(weft_sleep(20 * WEFT_MSEC), 0);
	t0 = weft_now();
	ck_assert_int_eq(weft_close(fd), 0);
	ck_assert_int_eq(weft_join(t, &res), 0);
	ck_assert_msg((intptr_t)res == -EBADF && io_ms_since(t0) < 1000,
		      "read past weft_close: %d after %ld ms",
		      (int)(intptr_t)res, io_ms_since(t0));
	atomic_store(&kmsg_done, true);
	pthread_join(th, NULL);
	free(buf);
	return NULL;
}

START_TEST(kmsg_read_ends_on_deadline)
{
	int rfd = open("/dev/kmsg", O_RDONLY | O_CLOEXEC);
	int wfd = open("/dev/kmsg", O_WRONLY | O_CLOEXEC);

	if (rfd >= 0 && wfd >= 0)
		weft_test_run(kmsg_read_main, (void *)(intptr_t)wfd, 1);
	if (rfd >= 0)
		close(rfd);
	if (wfd >= 0)
		close(wfd);
}
END_TEST

/*
 * weft_open leaves the file description as open(2) would: the inline
 * openat io_uring tries first runs with O_NONBLOCK added, and the kernel
 * takes it off again before it installs the fd (io_openat2), so neither a
 * dup nor another process sharing the description finds it non-blocking.
 * Character devices, a FIFO with its other end there (the inline open
 * succeeds), the controlling terminal if there is one, a regular file;
 * and O_NONBLOCK asked for stays.
 */
static void check_open_flags(const char *path, int flags)
{
	int fd = weft_open(path, flags, 0);
	int fl;

	if (fd == -ENXIO && !strcmp(path, "/dev/tty"))
		return; /* no controlling terminal */
	ck_assert_msg(fd >= 0, "%s: %d", path, fd);
	fl = fcntl(fd, F_GETFL);
	ck_assert_int_ge(fl, 0);
	ck_assert_msg((fl & O_NONBLOCK) == (flags & O_NONBLOCK),
		      "%s: flags %#x for %#x", path, fl, flags);
	ck_assert_int_eq(weft_close(fd), 0);
}

static void *open_flags_main(void *arg)
{
	char fifo[128], file[128];
	int keep;

	(void)arg;
	tmp_path(fifo, sizeof(fifo), "flags-fifo");
	tmp_path(file, sizeof(file), "flags-file");
	ck_assert_int_eq(mkfifo(fifo, 0600), 0);
	/* Both ends present at once for the opens below. */
	keep = open(fifo, O_RDWR | O_CLOEXEC);
	ck_assert_int_ge(keep, 0);
	for (int nb = 0; nb <= O_NONBLOCK; nb += O_NONBLOCK) {
		check_open_flags("/dev/null", O_RDWR | nb);
		check_open_flags("/dev/zero", O_RDONLY | nb);
		check_open_flags("/dev/tty", O_RDWR | O_NOCTTY | nb);
		check_open_flags(fifo, O_RDONLY | nb);
		check_open_flags(fifo, O_WRONLY | nb);
		check_open_flags(file, O_RDWR | O_CREAT | nb);
	}
	close(keep);
	ck_assert_int_eq(unlink(fifo), 0);
	ck_assert_int_eq(unlink(file), 0);
	return NULL;
}

START_TEST(open_leaves_blocking)
{
	weft_test_run(open_flags_main, NULL, 1);
}
END_TEST

/*
 * Far more ring operations in flight on one worker than its SQ (256) and
 * CQ (2048) hold, then all cancelled by one task that does not yield: the
 * worker's next reap runs every cancel message in one go, each preparing
 * an IORING_OP_ASYNC_CANCEL, so the SQ fills again and again (get_sqe's
 * submits) while each submit posts its cancels' CQEs, far more than the
 * CQ holds, before anything reaps. Every task must end, cancelled.
 * io_uring only (epoll has no ring).
 */
static void *many_ops_one(void *arg)
{
	struct __kernel_timespec ts = { .tv_sec = 60 };

	(void)arg;
	return (void *)(intptr_t)weft_io_submit(-1, prep_timeout, &ts);
}

static void *many_ops_main(void *arg)
{
	/* Never below 3000: more cancels than the CQ (2048) holds. */
	long n = weft_test_scaled(20000, 3000);
	weft_task_t *t = malloc((size_t)n * sizeof(*t));
	struct weft_metrics m;

	(void)arg;
	ck_assert_ptr_nonnull(t);
	if (weft_io_driver() != WEFT_IO_URING) {
		free(t);
		return NULL;
	}
	for (long i = 0; i < n; i++)
		ck_assert_int_eq(weft_spawn(&t[i], many_ops_one, NULL), 0);
	/* Until every one waits in the kernel (submitted counts from the
	 * SQE's prep: one more sleep submits the last). */
	do {
		ck_assert_int_eq(weft_sleep(WEFT_MSEC), 0);
		ck_assert_int_eq(weft_metrics(&m), 0);
	} while (m.io_in_flight < (uint64_t)n);
	ck_assert_int_eq(weft_sleep(WEFT_MSEC), 0);
	for (long i = 0; i < n; i++)
		ck_assert_int_eq(weft_cancel(t[i]), 0);
	for (long i = 0; i < n; i++) {
		void *res;

		ck_assert_int_eq(weft_join(t[i], &res), 0);
		ck_assert_int_eq((intptr_t)res, -ECANCELED);
	}
	free(t);
	return (void *)1; /* ran on a ring */
}

START_TEST(many_ops_one_worker)
{
	weft_test_run(many_ops_main, NULL, 1);
}
END_TEST

/*
 * The same on a kernel that refuses a submit while CQEs wait in its
 * overflow list (io_uring_enter's -EBUSY, as io_submit_sqes did before
 * it kept overflowed CQEs without limit; 6.x takes the SQEs anyway). A
 * full SQ met that refusal in get_sqe, whose submit loop then spun for
 * ever: only a reap makes room in the CQ, and none ran while it looped.
 * The hook models that kernel: a submit first flushes what fits, as the
 * old one did, and takes nothing if CQEs still overflow.
 */
static long busy_refusals; /* the one worker's only */

static int busy_on_overflow_submit(struct io_uring *ring)
{
	if (IO_URING_READ_ONCE(*ring->sq.kflags) & IORING_SQ_CQ_OVERFLOW) {
		io_uring_get_events(ring);
		if (IO_URING_READ_ONCE(*ring->sq.kflags) &
		    IORING_SQ_CQ_OVERFLOW) {
			busy_refusals++;
			return -EBUSY;
		}
	}
	return io_uring_submit(ring);
}

START_TEST(many_ops_submit_refused_on_overflow)
{
	busy_refusals = 0;
	weft__ring_submit_fn = busy_on_overflow_submit;
	bool on_ring = weft_test_run(many_ops_main, NULL, 1) != NULL;

	weft__ring_submit_fn = io_uring_submit;
	/* The case happened: submits were refused. */
	if (on_ring)
		ck_assert_int_gt(busy_refusals, 0);
}
END_TEST

/*
 * A message posted to a worker's ring (an op's cancel) while the worker,
 * about to sleep, reaps: the reap runs the inbox, then submits and
 * completes the CQEs. If the poster's unpark skipped its write because a
 * wake-up was outstanding, and that wake-up's CQE (the ring's armed read
 * of its eventfd) is completed by this reap, after the inbox was looked
 * at, the message waits in the inbox while the worker sleeps in the ring:
 * the cancel runs only when something else wakes the worker. The hook
 * makes the window wide: the first submit after arming is refused, so the
 * SQE is still there for the reap the worker makes before it sleeps
 * (worker.c's park_worker), whose submit then has a plain thread cancel
 * the op before the real submit. The cancel is the wake-up (its write
 * completes the read); none is outstanding for it afterwards.
 */
enum { POSTED_IDLE, POSTED_REFUSE, POSTED_CANCEL, POSTED_DONE };
static _Atomic int posted_state;
static _Atomic int posted_go, posted_gone;
static weft_task_t posted_victim;

static int cancel_in_reap_submit(struct io_uring *ring)
{
	int s = atomic_load(&posted_state);

	if (s == POSTED_REFUSE) {
		atomic_store(&posted_state, POSTED_CANCEL);
		return -EBUSY; /* takes nothing: the SQE stays */
	}
	if (s == POSTED_CANCEL) {
		atomic_store(&posted_state, POSTED_DONE);
		atomic_store(&posted_go, 1);
		while (!atomic_load(&posted_gone))
			sched_yield();
	}
	return io_uring_submit(ring);
}

static void *posted_canceller(void *arg)
{
	(void)arg;
	while (!atomic_load(&posted_go))
		sched_yield();
	ck_assert_int_eq(weft_cancel(posted_victim), 0);
	atomic_store(&posted_gone, 1);
	return NULL;
}

static void *long_timeout_op(void *arg)
{
	struct __kernel_timespec ts = { .tv_sec = 60 };

	(void)arg;
	return (void *)(intptr_t)weft_io_submit(-1, prep_timeout, &ts);
}

static void *posted_main(void *arg)
{
	weft_task_t other;
	pthread_t th;
	struct weft_deadline d;
	void *res = NULL;
	int64_t start, took;
	int r;

	(void)arg;
	if (weft_io_driver() != WEFT_IO_URING)
		return NULL;
	ck_assert_int_eq(pthread_create(&th, NULL, posted_canceller, NULL), 0);
	ck_assert_int_eq(weft_spawn(&posted_victim, long_timeout_op, NULL), 0);
	/* The victim's op in flight, and the worker's sleeps armed its
	 * eventfd read, which a timeout (not a wake-up) ended. */
	ck_assert_int_eq(weft_sleep(2 * WEFT_MSEC), 0);
	ck_assert_int_eq(weft_sleep(2 * WEFT_MSEC), 0);
	atomic_store(&posted_state, POSTED_REFUSE);
	ck_assert_int_eq(weft_spawn(&other, long_timeout_op, NULL), 0);
	start = weft_now();
	ck_assert_int_eq(weft_deadline_enter(&d, WEFT_SEC), 0);
	r = weft_join(posted_victim, &res);
	took = weft_now() - start;
	(void)weft_deadline_leave(&d);
	pthread_join(th, NULL);
	ck_assert_int_eq(atomic_load(&posted_state), POSTED_DONE);
	/* Left in the inbox, the cancel ran when the deadline's timer woke
	 * the worker: the join then took the whole second (or timed out). */
	ck_assert_msg(took < WEFT_SEC / 2, "the cancel took %lld ms",
		      (long long)(took / WEFT_MSEC));
	ck_assert_int_eq(r, 0);
	ck_assert_int_eq((intptr_t)res, -ECANCELED);
	ck_assert_int_eq(weft_cancel(other), 0);
	ck_assert_int_eq(weft_join(other, &res), 0);
	ck_assert_int_eq((intptr_t)res, -ECANCELED);
	return NULL;
}

START_TEST(cancel_posted_during_idle_reap)
{
	atomic_store(&posted_state, POSTED_IDLE);
	atomic_store(&posted_go, 0);
	atomic_store(&posted_gone, 0);
	weft__ring_submit_fn = cancel_in_reap_submit;
	weft_test_run(posted_main, NULL, 1);
	weft__ring_submit_fn = io_uring_submit;
}
END_TEST

/* Whether the kernel sets up rings at all: qemu's user mode, for one,
 * has no io_uring, and a plain thread has no driver to fall back on. */
static bool have_io_uring(void)
{
	return syscall(__NR_io_uring_setup, 0, NULL) == 0 ||
	       (errno != ENOSYS && errno != EPERM);
}

static void *hatch_thread(void *arg)
{
	struct __kernel_timespec ts = { .tv_nsec = 5 * WEFT_MSEC };

	if (!have_io_uring()) {
		ck_assert_int_eq(weft_io_submit(-1, prep_nop, NULL), -ENOSYS);
		return NULL;
	}
	ck_assert_int_eq(weft_io_submit(-1, prep_nop, NULL), 0);
	ck_assert_int_eq(weft_io_submit(-1, prep_timeout, &ts), -ETIME);
	return NULL;
}

START_TEST(escape_hatch_plain_thread)
{
	pthread_t th[4];

	hatch_thread(NULL);
	for (int i = 0; i < 4; i++)
		ck_assert_int_eq(pthread_create(&th[i], NULL, hatch_thread,
						NULL),
				 0);
	for (int i = 0; i < 4; i++)
		pthread_join(th[i], NULL);
}
END_TEST

/*
 * A plain thread's submit that io_uring_enter refuses leaves its SQE in
 * the private ring's SQ, naming the caller's buffer. The next call's
 * submit sent it along: the old write went out after its caller had been
 * told it failed, and its CQE could be taken for the new call's. Now it
 * is made a NOP and its CQE dropped. The hook refuses one submit as the
 * kernel would, without entering it.
 */
static int refuse_submit(struct io_uring *ring)
{
	(void)ring;
	return -EAGAIN;
}

struct fd_buf {
	int fd;
	char *buf;
};

static void prep_write1(struct io_uring_sqe *sqe, void *arg)
{
	struct fd_buf *a = arg;

	io_uring_prep_write(sqe, a->fd, a->buf, 1, 0);
}

static void prep_read4(struct io_uring_sqe *sqe, void *arg)
{
	struct fd_buf *a = arg;

	io_uring_prep_read(sqe, a->fd, a->buf, 4, 0);
}

START_TEST(refused_submit_withdrawn)
{
	int p1[2], p2[2];
	char x = 'X', got[4];
	struct fd_buf w = { 0, &x }, r = { 0, got };

	if (!have_io_uring())
		return;
	ck_assert_int_eq(pipe2(p1, O_NONBLOCK), 0);
	ck_assert_int_eq(pipe(p2), 0);
	ck_assert_int_eq(weft_io_submit(-1, prep_nop, NULL), 0); /* the ring */
	w.fd = p1[1];
	weft__private_submit = refuse_submit;
	ck_assert_int_eq(weft_io_submit(-1, prep_write1, &w), -EAGAIN);
	weft__private_submit = io_uring_submit;
	ck_assert_int_eq(write(p2[1], "YYY", 3), 3);
	r.fd = p2[0];
	ck_assert_int_eq(weft_io_submit(-1, prep_read4, &r), 3);
	ck_assert_int_eq(weft_io_submit(-1, prep_nop, NULL), 0);
	/* The refused write never went out. */
	ck_assert_int_eq(read(p1[0], got, sizeof(got)), -1);
	ck_assert_int_eq(errno, EAGAIN);
	for (int i = 0; i < 2; i++) {
		close(p1[i]);
		close(p2[i]);
	}
}
END_TEST

/*
 * An op that fails in the kernel for a reason of its own, with a cancel
 * coming after it failed but before its worker reaped the CQE: the call
 * said the cancel's -ECANCELED, and the op's error was lost. A socket's
 * pending error (sk_err: here the peer's reset) is reported once, so the
 * next recv then said 0, an orderly end, where epoll's path says the
 * -ECONNRESET it read. The hook widens the window: the submit that sends
 * the recv waits for its CQE, then has a plain thread cancel the task.
 */
enum { FAILED_IDLE, FAILED_ARMED, FAILED_DONE };
static _Atomic int failed_state;
static _Atomic int failed_go, failed_gone;
static weft_task_t failed_victim;

/* Whether ring's CQ holds a CQE that says res (peeked, not consumed). */
static bool cq_holds(struct io_uring *ring, int res)
{
	struct io_uring_cqe *cqe;
	unsigned head;

	io_uring_for_each_cqe(ring, head, cqe)
	{
		if (cqe->res == res)
			return true;
	}
	return false;
}

static int cancel_after_failure_submit(struct io_uring *ring)
{
	int r = io_uring_submit(ring);
	int64_t t0 = weft_now();

	if (atomic_load(&failed_state) != FAILED_ARMED)
		return r;
	/* The recv completes at its submit; flush any deferred work too. */
	while (!cq_holds(ring, -ECONNRESET) && io_ms_since(t0) < 200)
		io_uring_get_events(ring);
	if (!cq_holds(ring, -ECONNRESET))
		return r; /* not this submit's: wait for the next one */
	atomic_store(&failed_state, FAILED_DONE);
	atomic_store(&failed_go, 1);
	while (!atomic_load(&failed_gone))
		sched_yield();
	return r;
}

static void *failed_canceller(void *arg)
{
	(void)arg;
	while (!atomic_load(&failed_go))
		sched_yield();
	ck_assert_int_eq(weft_cancel(failed_victim), 0);
	atomic_store(&failed_gone, 1);
	return NULL;
}

static void prep_recv4(struct io_uring_sqe *sqe, void *arg)
{
	struct fd_buf *a = arg;

	io_uring_prep_recv(sqe, a->fd, a->buf, 4, 0);
}

static void *recv_reset(void *arg)
{
	char got[4];
	struct fd_buf a = { (int)(intptr_t)arg, got };

	return (void *)(intptr_t)weft_io_submit(a.fd, prep_recv4, &a);
}

static void *failed_main(void *arg)
{
	struct linger lg = { .l_onoff = 1, .l_linger = 0 };
	struct pair p;
	pthread_t th;
	void *res = NULL;
	char c;

	(void)arg;
	if (weft_io_driver() != WEFT_IO_URING)
		return NULL;
	p = tcp_pair();
	/* A reset: p.a's pending error is -ECONNRESET, reported once. */
	ck_assert_int_eq(setsockopt(p.b, SOL_SOCKET, SO_LINGER, &lg,
				    sizeof(lg)),
			 0);
	ck_assert_int_eq(weft_close(p.b), 0);
	ck_assert_int_eq(weft_sleep(10 * WEFT_MSEC), 0);
	ck_assert_int_eq(pthread_create(&th, NULL, failed_canceller, NULL), 0);
	atomic_store(&failed_state, FAILED_ARMED);
	ck_assert_int_eq(weft_spawn(&failed_victim, recv_reset,
				    (void *)(intptr_t)p.a),
			 0);
	ck_assert_int_eq(weft_join(failed_victim, &res), 0);
	pthread_join(th, NULL);
	ck_assert_int_eq(atomic_load(&failed_state), FAILED_DONE);
	ck_assert_msg((intptr_t)res == -ECONNRESET,
		      "the failed recv said %d, expected -ECONNRESET",
		      (int)(intptr_t)res);
	/* The error was reported once, by the call above. */
	ck_assert_int_eq(weft_recv(p.a, &c, 1, 0), 0);
	ck_assert_int_eq(weft_close(p.a), 0);
	return NULL;
}

START_TEST(real_error_after_cancel_reported)
{
	atomic_store(&failed_state, FAILED_IDLE);
	atomic_store(&failed_go, 0);
	atomic_store(&failed_gone, 0);
	weft__ring_submit_fn = cancel_after_failure_submit;
	weft_test_run(failed_main, NULL, 1);
	weft__ring_submit_fn = io_uring_submit;
}
END_TEST

/*
 * SQE flags a prep may set that break the call's one CQE, or the shared
 * ring: IOSQE_CQE_SKIP_SUCCESS posts no CQE when the op succeeds, so the
 * call waited for ever (a cancel finds nothing left to cancel, and
 * weft_run's drain then waits for the task for good); IOSQE_IO_DRAIN holds
 * the op, and every later SQE of the worker's ring, its own wake-up read
 * too, until every earlier op of the ring, other tasks' included, ends.
 * Both are refused with -EINVAL, and so are the link flags, which tie
 * another task's SQE to the op.
 */
static void prep_nop_flags(struct io_uring_sqe *sqe, void *arg)
{
	io_uring_prep_nop(sqe);
	sqe->flags |= (unsigned char)(uintptr_t)arg;
}

static const unsigned char refused_flags[] = {
	IOSQE_CQE_SKIP_SUCCESS,
	IOSQE_IO_DRAIN,
	IOSQE_IO_LINK,
	IOSQE_IO_HARDLINK,
};

static void *long_timeout(void *arg)
{
	struct __kernel_timespec ts = { .tv_nsec = 300 * WEFT_MSEC };

	(void)arg;
	return (void *)(intptr_t)weft_io_submit(-1, prep_timeout, &ts);
}

static void *odd_flags_main(void *arg)
{
	weft_task_t t;
	void *res;

	(void)arg;
	if (weft_io_driver() != WEFT_IO_URING)
		return NULL;
	/* Another task's op in flight on the one worker's ring: a drained
	 * op would wait for it. */
	ck_assert_int_eq(weft_spawn(&t, long_timeout, NULL), 0);
	ck_assert_int_eq(weft_sleep(10 * WEFT_MSEC), 0);
	for (size_t i = 0; i < sizeof(refused_flags); i++) {
		int64_t t0 = weft_now();
		int r = weft_io_submit(-1, prep_nop_flags,
				       (void *)(uintptr_t)refused_flags[i]);

		ck_assert_msg(r == -EINVAL, "flags 0x%x: %d, expected -EINVAL",
			      refused_flags[i], r);
		ck_assert_int_lt(io_ms_since(t0), 150);
	}
	ck_assert_int_eq(weft_join(t, &res), 0);
	ck_assert_int_eq((intptr_t)res, -ETIME);
	return NULL;
}

static void *odd_flags_thread(void *arg)
{
	(void)arg;
	for (size_t i = 0; i < sizeof(refused_flags); i++)
		ck_assert_int_eq(
			weft_io_submit(-1, prep_nop_flags,
				       (void *)(uintptr_t)refused_flags[i]),
			-EINVAL);
	/* The ring still serves. */
	ck_assert_int_eq(weft_io_submit(-1, prep_nop, NULL), 0);
	return NULL;
}

START_TEST(hatch_refuses_odd_flags)
{
	pthread_t th;

	weft_test_run(odd_flags_main, NULL, 1);
	if (!have_io_uring())
		return;
	ck_assert_int_eq(pthread_create(&th, NULL, odd_flags_thread, NULL), 0);
	ck_assert_int_eq(pthread_join(th, NULL), 0);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("io_file");
	TCase *tc = tcase_create("file");

	tcase_set_timeout(tc, 600);
	tcase_add_test(tc, files);
	tcase_add_test(tc, files_plain_thread);
	tcase_add_test(tc, queued_file_call_keeps_its_file);
	tcase_add_test(tc, close_ends_queued_file_call);
	tcase_add_test(tc, close_waits_for_started_file_call);
	tcase_add_test(tc, cancel_waits_for_started_file_call);
	tcase_add_test(tc, file_calls_on_a_closing_fd);
	tcase_add_test(tc, plain_file_calls_on_a_closing_fd);
	tcase_add_test(tc, pipe_calls_on_a_closing_fd);
	tcase_add_test(tc, pread_pipe_espipe);
	tcase_add_test(tc, pread_offsetless_espipe);
	tcase_add_test(tc, huge_len_refused_as_pread_refuses);
	tcase_add_test(tc, cancelled_file_call_makes_no_call);
	tcase_add_test(tc, zero_length_says_what_the_call_says);
	tcase_add_test(tc, escape_hatch);
	tcase_add_test(tc, send_zc_result);
	tcase_add_test(tc, close_withdraws_unsubmitted_op);
	tcase_add_test(tc, stale_break_no_spin);
	tcase_add_test(tc, escape_hatch_plain_thread);
	tcase_add_test(tc, refused_submit_withdrawn);
	tcase_add_test(tc, hatch_refuses_odd_flags);
	tcase_add_test(tc, real_error_after_cancel_reported);
	tcase_add_test(tc, pread_nonblock_file);
	tcase_add_test(tc, kmsg_read_ends_on_deadline);
	tcase_add_test(tc, open_leaves_blocking);
	tcase_add_test(tc, many_ops_one_worker);
	tcase_add_test(tc, many_ops_submit_refused_on_overflow);
	tcase_add_test(tc, cancel_posted_during_idle_reap);
	tcase_add_test(tc, open_fifo_waits);
	tcase_add_test(tc, fifo_ends_on_one_pool_thread);
	tcase_add_test(tc, fifo_reader_open_ends);
	tcase_add_test(tc, open_fifo_creat_reader);
	tcase_add_test(tc, open_fifo_writer_left_in_window);
	tcase_add_test(tc, open_fifo_writer_cancelled_at_second_wait);
	suite_add_tcase(s, tc);
	/* Plain threads' private rings stay for reuse: not a leak. */
	int before = io_count_fds(), r = weft_test_main(s);
	int leaked = io_count_fds() - before - weft__io_thread_rings();

	if (leaked) {
		fprintf(stderr, "%d descriptors leaked\n", leaked);
		r = EXIT_FAILURE;
	}
	return r;
}
