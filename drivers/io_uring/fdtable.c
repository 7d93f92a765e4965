/*
 * The fd table: which in-flight operations use which descriptor, so that
 * weft_close() can wake tasks waiting on a descriptor it closes. (The kernel
 * holds its own reference to the file of an in-flight io_uring request, so
 * close(2) alone would leave a recv waiting forever.)
 *
 * Invariants:
 *  - An op is on stripe fd % NSTRIPES exactly while it is published (from
 *    weft__io_begin to the end of weft__io_wait), so whoever holds the
 *    stripe lock may abort any op it finds there.
 *  - weft__fdtable_close() aborts and closes under one lock hold: an op on
 *    fd registers either before (and is aborted) or after the close (and
 *    then fails with -EBADF in the kernel, unless fd was reused, which is the
 *    caller's own race, as with close(2)). Where a socket call's attempt
 *    keeps the number (fdready.h), close(2) comes later, when the attempt
 *    ends: an op registered meanwhile began after weft_close returned, and
 *    reaches the old file, the same race of the caller's.
 *  - Aborts cancel by user_data, not by fd. An op whose SQE was not
 *    submitted yet is withdrawn instead (op.h), so it never looks up fd,
 *    whose number close(2) frees at once: the close waits out a submit
 *    that may have missed the abort (weft__io_abort_sync).
 */
#include <errno.h>
#include <pthread.h>
#include <unistd.h>

#include "drivers/readiness/fdready.h"
#include "fdtable.h"
#include "op.h"
#include "runtime/list.h"

#define NSTRIPES 256

static struct stripe {
	pthread_mutex_t lock;
	struct weft__io *head;
} __attribute__((aligned(64))) stripes[NSTRIPES] = {
	[0 ... NSTRIPES - 1] = { PTHREAD_MUTEX_INITIALIZER, NULL },
};

/* fork(2): the child has one thread, the forking one, which is inside no
 * call that publishes an op or closes (a call makes no fork). So the ops
 * listed are other threads' of the parent, which the child does not have,
 * and so are the stripe locks held at the fork (weft_close holds one
 * across close(2), a plain thread's weft_io_submit one to list its op):
 * left held, the child's first weft_close of a number on that stripe
 * waited for ever. The child starts with every stripe free and empty. */
static void stripes_fork_child(void)
{
	for (int i = 0; i < NSTRIPES; i++) {
		pthread_mutex_init(&stripes[i].lock, NULL);
		stripes[i].head = NULL;
	}
}

static void stripes_fork_once(void)
{
	pthread_atfork(NULL, NULL, stripes_fork_child);
}

/* fd's stripe; registers the fork handler before any stripe is taken. */
static struct stripe *stripe_of(int fd)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;

	pthread_once(&once, stripes_fork_once);
	return &stripes[(unsigned)fd % NSTRIPES];
}

void weft__fdtable_add(struct weft__io *io)
{
	struct stripe *s = stripe_of(io->fd);

	pthread_mutex_lock(&s->lock);
	weft__list_push_front(s->head, io);
	pthread_mutex_unlock(&s->lock);
}

void weft__fdtable_del(struct weft__io *io)
{
	struct stripe *s = stripe_of(io->fd);

	pthread_mutex_lock(&s->lock);
	weft__list_unlink(s->head, io);
	pthread_mutex_unlock(&s->lock);
}

int weft__fdtable_close(int fd)
{
	struct stripe *s = stripe_of(fd);
	struct weft__io *io;
	int r;

	pthread_mutex_lock(&s->lock);
	for (io = s->head; io; io = io->next)
		if (io->fd == fd)
			weft__io_abort(io, -EBADF);
	for (io = s->head; io; io = io->next)
		if (io->fd == fd)
			weft__io_abort_sync(io);
	r = weft__fdready_close(fd);
	pthread_mutex_unlock(&s->lock);
	return r;
}
