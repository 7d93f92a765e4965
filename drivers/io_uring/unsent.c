/* Unsent attempts: see unsent.h. */
#include <stdlib.h>
#include <time.h>

#include "op.h"
#include "unsent.h"
#include "weft/task.h"
#include "weft/time.h"

/* Every record ever made, newest first; push-only, so a reader holding
 * one may always follow next. */
static struct weft__unsent *_Atomic pool;

struct weft__unsent *weft__unsent_take(void)
{
	struct weft__unsent *u;

	/* acquire: pairs with the release CAS that pushed the newest record
	 * (below), so every record reached from it is seen zeroed and
	 * linked: its next, and next's, were written before their push. */
	for (u = atomic_load_explicit(&pool, memory_order_acquire); u;
	     u = u->next) {
		bool free = false;

		/* acquire: pairs with give_back's release store of taken, so
		 * a record taken again starts from the state its last owner
		 * left. A failed CAS (taken) reads nothing of u: relaxed. */
		if (atomic_compare_exchange_strong_explicit(
			    &u->taken, &free, true, memory_order_acquire,
			    memory_order_relaxed))
			return u;
	}
	if (!(u = calloc(1, sizeof(*u))))
		return NULL;
	atomic_init(&u->taken, true);
	/* relaxed: only a guess for the CAS, which re-reads on failure; u
	 * is not published yet. */
	u->next = atomic_load_explicit(&pool, memory_order_relaxed);
	/* release: pairs with the acquire loads of pool (here and in
	 * unsent_wait), so a reader that finds u sees it zeroed and linked.
	 * A failed CAS published nothing: relaxed. */
	while (!atomic_compare_exchange_weak_explicit(&pool, &u->next, u,
						      memory_order_release,
						      memory_order_relaxed))
		;
	return u;
}

void weft__unsent_give_back(struct weft__unsent *u)
{
	/* The SQ is gone: nothing it listed will be submitted, and a closer
	 * waiting on this round must stop. relaxed: only the owner writes
	 * state. */
	uint64_t s = atomic_load_explicit(&u->state, memory_order_relaxed);

	/* release: pairs with a closer's acquire load (wait_round): the
	 * ring's exit, which dropped the SQ unsubmitted, happens before the
	 * close. */
	atomic_store_explicit(&u->state, ((s >> 32) + 1) << 32,
			      memory_order_release);
	/* release: pairs with take's acquire CAS on taken, which then sees
	 * the empty new round stored above. */
	atomic_store_explicit(&u->taken, false, memory_order_release);
}

/* Whether state s of u lists fd. */
static bool lists(const struct weft__unsent *u, uint64_t s, int fd)
{
	uint32_t n = (uint32_t)s;

	if (n > WEFT__UNSENT_FDS)
		return true;
	/* acquire: pairs with note's release store of the slot (unsent.h's
	 * Memory order): a newer fd there means the submit of the old one
	 * happened before. */
	for (uint32_t i = 0; i < n; i++)
		if (atomic_load_explicit(&u->fds[i], memory_order_acquire) ==
		    fd)
			return true;
	return false;
}

/* A pause that cancellation and deadlines do not cut short: weft_close
 * closes whatever happens. */
static void pause_for(int64_t ns)
{
	struct timespec ts = { 0, (long)ns };
	struct weft_shield shield;

	if (!weft_current().task) {
		nanosleep(&ts, NULL);
		return;
	}
	if (weft_shield_enter(&shield) == 0) {
		(void)weft_sleep(ns);
		(void)weft_shield_leave(&shield);
	}
}

/* Until u's round moves past round: the owner's next submit, which comes
 * at its next pass through its scheduler. */
static void wait_round(struct weft__unsent *u, uint32_t round)
{
	int64_t pause = 20 * WEFT_USEC;

	/* acquire: pairs with the release store that moves the round (sent
	 * after a submit, give_back after the ring's exit): what the round
	 * listed was submitted, or dropped, before the close. */
	while ((uint32_t)(atomic_load_explicit(&u->state,
					       memory_order_acquire) >>
			  32) == round) {
		pause_for(pause);
		if (pause < WEFT_MSEC)
			pause *= 2;
	}
}

void weft__unsent_wait(int fd, const struct weft__unsent *own)
{
	struct weft__unsent *u;

	/* The caller's own round still lists fd only if the submit it has
	 * just made was refused (the kernel short of memory), leaving the
	 * SQ as it was: its attempts on fd must fail instead of going out
	 * after the close. relaxed: the owner reads its own record. */
	if (own &&
	    lists(own, atomic_load_explicit(&own->state, memory_order_relaxed),
		  fd))
		weft__attempt_drop_fd(weft__ring_current(), fd);
	/* acquire on pool: pairs with take's release CAS that pushed the
	 * record (its next). acquire on state: pairs with note's release
	 * store of the count, so the fds below it are the round's or newer. */
	for (u = atomic_load_explicit(&pool, memory_order_acquire); u;
	     u = u->next) {
		uint64_t s =
			atomic_load_explicit(&u->state, memory_order_acquire);

		if (u != own && lists(u, s, fd))
			wait_round(u, (uint32_t)(s >> 32));
	}
}
