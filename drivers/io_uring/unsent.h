/*
 * Unsent attempts: the fds that a ring's socket attempts (op.h) name
 * while they wait in its SQ for their worker's next submit, so that
 * weft_close, on any thread, can wait until they are submitted.
 *
 * Why: the kernel looks an SQE's fd up when the SQE is submitted, and
 * weft_close closes at once. An attempt that a task on another worker
 * made before the close, submitted after it, would reach whatever file
 * took the fd's number in between: bytes of another connection. Only a
 * ring's owner may submit it (SINGLE_ISSUER), so weft_close submits its
 * own ring and waits for the others' rounds (weft__unsent_wait); if the
 * kernel refuses its own submit, its own attempts on the fd are made to
 * fail instead.
 *
 * Each ring holds one record, from a pool that is never freed, so a
 * closer reads any record without a lock, whenever its ring comes or
 * goes. The owner alone writes its record: weft__unsent_note lists an
 * attempt's fd, weft__unsent_sent begins a new round once a submit has
 * left the SQ empty. state packs the round and how many fds it lists;
 * past WEFT__UNSENT_FDS the round stands for every fd.
 *
 * Invariant: every attempt waiting in a ring's SQ is listed in its
 * record's current round (or the round overflowed). A closer that finds
 * fd listed waits until the round moves on, which is after the submit
 * that took the attempt.
 *
 * Memory order: note stores the fd, then the state, both with release; a
 * closer loads the state with acquire, then the fds below its count, also
 * with acquire. A slot is written again only in a later round, after the
 * owner's submit and sent: a closer that reads such a newer fd there
 * synchronises with that store, so the submit (its system call, which
 * looked the old attempt's fd up) happens before the close; it missed
 * only an attempt that no longer waits. sent's release store pairs with
 * the closer's acquire load of the state in the same way.
 */
#ifndef WEFT_DRIVERS_IO_URING_UNSENT_H
#define WEFT_DRIVERS_IO_URING_UNSENT_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#define WEFT__UNSENT_FDS 16

struct weft__unsent {
	_Atomic uint64_t state; /* round << 32 | fds listed */
	_Atomic int fds[WEFT__UNSENT_FDS];
	_Atomic bool taken;        /* by a ring, now */
	struct weft__unsent *next; /* in the pool: set before it is
				    * published, never changed */
};

/* A record for a new ring, or NULL (out of memory). Its owner's thread. */
struct weft__unsent *weft__unsent_take(void);
/* The ring is closing: its SQ is gone, the record goes back to the pool. */
void weft__unsent_give_back(struct weft__unsent *u);

/* The owner, as an attempt on fd goes into its SQ. */
static inline void weft__unsent_note(struct weft__unsent *u, int fd)
{
	/* relaxed: only the owner writes state (see the top). */
	uint64_t s = atomic_load_explicit(&u->state, memory_order_relaxed);
	uint32_t n = (uint32_t)s;

	if (n > WEFT__UNSENT_FDS)
		return; /* the round stands for every fd already */
	/* release, both: a closer's acquire load of the count sees the fd
	 * below it, and one that reads this fd in a slot reused from an
	 * earlier round sees that round's submit done (see the top). */
	if (n < WEFT__UNSENT_FDS)
		atomic_store_explicit(&u->fds[n], fd, memory_order_release);
	atomic_store_explicit(&u->state, s + 1, memory_order_release);
}

/* The owner, after a submit that left its SQ empty. */
static inline void weft__unsent_sent(struct weft__unsent *u)
{
	/* relaxed: as in note. */
	uint64_t s = atomic_load_explicit(&u->state, memory_order_relaxed);

	/* release: pairs with a closer's acquire load of state (wait_round):
	 * the submit just made, which looked the listed fds up, happens
	 * before its close. */
	if ((uint32_t)s)
		atomic_store_explicit(&u->state, ((s >> 32) + 1) << 32,
				      memory_order_release);
}

/* weft_close, before it closes fd: waits until no ring but own (the
 * caller's, which it has just submitted; NULL on a plain thread) holds an
 * attempt on fd that it has not submitted. Own's attempts on fd that a
 * refused submit left in its SQ are made to fail with -EBADF instead
 * (op.h): its owner, the caller, cannot wait for its own round. A task
 * waits in a shielded sleep, a plain thread in nanosleep, each at most a
 * round of the ring it waits for. Any thread. */
void weft__unsent_wait(int fd, const struct weft__unsent *own);

#endif
