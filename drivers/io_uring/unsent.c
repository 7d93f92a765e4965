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

	/* acquire: pairs with give_back's release, so a record taken again
	 * starts from the state its last owner left. */
	for (u = atomic_load_explicit(&pool, memory_order_acquire); u;
	     u = u->next) {
		bool free = false;

		if (atomic_compare_exchange_strong_explicit(
			    &u->taken, &free, true, memory_order_acquire,
			    memory_order_relaxed))
			return u;
	}
	if (!(u = calloc(1, sizeof(*u))))
		return NULL;
	atomic_init(&u->taken, true);
	u->next = atomic_load_explicit(&pool, memory_order_relaxed);
	/* release: a reader that finds u sees it zeroed and linked. */
	while (!atomic_compare_exchange_weak_explicit(&pool, &u->next, u,
						      memory_order_release,
						      memory_order_relaxed))
		;
	return u;
}

void weft__unsent_give_back(struct weft__unsent *u)
{
	/* The SQ is gone: nothing it listed will be submitted, and a closer
	 * waiting on this round must stop. */
	uint64_t s = atomic_load_explicit(&u->state, memory_order_relaxed);

	atomic_store_explicit(&u->state, ((s >> 32) + 1) << 32,
			      memory_order_release);
	atomic_store_explicit(&u->taken, false, memory_order_release);
}

/* Whether state s of u lists fd. */
static bool lists(const struct weft__unsent *u, uint64_t s, int fd)
{
	uint32_t n = (uint32_t)s;

	if (n > WEFT__UNSENT_FDS)
		return true;
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
	for (u = atomic_load_explicit(&pool, memory_order_acquire); u;
	     u = u->next) {
		uint64_t s =
			atomic_load_explicit(&u->state, memory_order_acquire);

		if (u != own && lists(u, s, fd))
			wait_round(u, (uint32_t)(s >> 32));
	}
}
