/* Idle workers: see idle.h. */
#include "idle.h"
#include "worker.h"

bool weft__notify_work(struct weft_runtime *rt)
{
	struct weft_idle *idle = &rt->idle;
	/* Pairs with the fence a worker going to sleep issues after its RMWs
	 * on `searching` and `sleeping` (weft__idle_enter): either it sees
	 * our work when it re-checks, or we see it here. So relaxed loads. */
	atomic_thread_fence(memory_order_seq_cst);
	if (atomic_load_explicit(&idle->searching, memory_order_relaxed) ||
	    !atomic_load_explicit(&idle->sleeping, memory_order_relaxed))
		return false;
	pthread_mutex_lock(&idle->mu);
	/* Relaxed: a second look, after the fence above. */
	if (!idle->nsleepers ||
	    atomic_load_explicit(&idle->searching, memory_order_relaxed)) {
		pthread_mutex_unlock(&idle->mu);
		return false;
	}
	struct weft_worker *w = &rt->workers[idle->sleepers[--idle->nsleepers]];
	w->sleeping = false;
	w->searching = true; /* woken to search */
	atomic_fetch_sub(&idle->sleeping, 1);
	atomic_fetch_add(&idle->searching, 1);
	pthread_mutex_unlock(&idle->mu);
	weft__worker_unpark(w);
	return true;
}

bool weft__idle_start_search(struct weft_runtime *rt, struct weft_worker *w)
{
	if (w->searching)
		return true;
	int s = atomic_load(&rt->idle.searching);
	int awake = rt->nworkers - atomic_load(&rt->idle.sleeping);
	/* Alone awake, there is no one to steal from: work can only come
	 * from this worker's ring and timers, which it sees by parking, or
	 * from a foreign thread, which wakes a sleeper. Spinning then only
	 * burns CPU (a server at partial load ran dry after most requests). */
	if (awake <= 1 || 2 * s >= awake)
		return false;
	atomic_fetch_add(&rt->idle.searching, 1);
	w->searching = true;
	return true;
}

void weft__idle_end_search(struct weft_runtime *rt, struct weft_worker *w)
{
	w->searching = false;
	if (atomic_fetch_sub(&rt->idle.searching, 1) == 1)
		weft__notify_work(rt);
}

void weft__idle_enter(struct weft_runtime *rt, struct weft_worker *w)
{
	if (w->searching) {
		w->searching = false;
		atomic_fetch_sub(&rt->idle.searching, 1);
	}
	pthread_mutex_lock(&rt->idle.mu);
	w->sleeping = true;
	rt->idle.sleepers[rt->idle.nsleepers++] = w->id;
	atomic_fetch_add(&rt->idle.sleeping, 1);
	pthread_mutex_unlock(&rt->idle.mu);
	/* The sleeper's half of the no-lost-wake-up rule (idle.h), pairing
	 * with notify_work's fence. The re-check after this reads deque
	 * bottoms relaxed; a seq_cst RMW alone does not keep such loads
	 * after it (on ARM a later plain load may pass its store-release),
	 * so both could miss each other. Between two seq_cst fences one
	 * side sees the other's write. */
	atomic_thread_fence(memory_order_seq_cst);
}

bool weft__idle_leave(struct weft_runtime *rt, struct weft_worker *w)
{
	pthread_mutex_lock(&rt->idle.mu);
	bool notified = !w->sleeping;
	if (w->sleeping) {
		for (int i = 0; i < rt->idle.nsleepers; i++) {
			if (rt->idle.sleepers[i] == w->id) {
				rt->idle.sleepers[i] =
					rt->idle.sleepers[--rt->idle.nsleepers];
				break;
			}
		}
		w->sleeping = false;
		atomic_fetch_sub(&rt->idle.sleeping, 1);
	}
	pthread_mutex_unlock(&rt->idle.mu);
	return notified;
}

bool weft__idle_searcher_covers(struct weft_runtime *rt)
{
	/* After the re-check's loads, before the count's: the producer's
	 * half of the rule (notify_work's fence), for the work the re-check
	 * saw. Each searcher counted here either finds work, and the last
	 * to end its search wakes a sleeper, this one among them (counted
	 * sleeping before our first fence), or goes to sleep through its
	 * own fence and re-check, which this fence orders after ours: it
	 * sees what we saw, unless taken. So relaxed. */
	atomic_thread_fence(memory_order_seq_cst);
	return atomic_load_explicit(&rt->idle.searching, memory_order_relaxed) >
	       0;
}
