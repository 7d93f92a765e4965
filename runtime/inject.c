/* A multi-producer FIFO of tasks: see inject.h. */
#include "inject.h"
#include "task.h"

void weft__inject_init(struct weft_inject *q)
{
	atomic_init(&q->incoming, NULL);
	atomic_init(&q->incoming_len, 0);
	q->lock = 0;
	q->head = q->tail = NULL;
	atomic_init(&q->fifo_len, 0);
	atomic_init(&q->draining, false);
}

void weft__inject_push_list(struct weft_inject *q, struct weft_task *first,
			    struct weft_task *last)
{
	/* The stack is newest-first, so the list goes on reversed: link it
	 * that way, last element on top. */
	struct weft_task *prev = NULL, *t = first;
	long n = 0;
	while (t) {
		struct weft_task *next = (t == last) ? NULL : t->next;
		t->next = prev;
		prev = t;
		t = next;
		n++;
	}
	/* A count only: nothing is published through it, relaxed. */
	atomic_fetch_add_explicit(&q->incoming_len, n, memory_order_relaxed);
	/* Relaxed: only a guess for the CAS, which re-reads on failure. */
	struct weft_task *top =
		atomic_load_explicit(&q->incoming, memory_order_relaxed);
	/* Release: publishes the links and the tasks to the consumer whose
	 * acquire exchange takes the stack (drain_incoming). A failed CAS
	 * published nothing, so relaxed. */
	do
		first->next = top;
	while (!atomic_compare_exchange_weak_explicit(&q->incoming, &top, last,
						      memory_order_release,
						      memory_order_relaxed));
}

void weft__inject_push(struct weft_inject *q, struct weft_task *t)
{
	weft__inject_push_list(q, t, t);
}

/* A hint: the tasks themselves are taken under the lock and through the
 * acquire exchange. Relaxed would do for both loads; their acquire is
 * relied on by nothing. No caller reads data through them: one that sees
 * tasks pops them (lock, acquire exchange), one that sees none acts on a
 * hint, and the idle re-check uses empty_for_sleep after a fence. The
 * acquire on fifo_len pairs with nothing (only relaxed RMWs write it);
 * the one on incoming pairs with a push's release CAS, whose tasks the
 * pop acquires again. On x86 both are plain movs either way; on aarch64
 * each is an LDAR where an LDR would do. */
bool weft__inject_empty(struct weft_inject *q)
{
	return atomic_load_explicit(&q->fifo_len, memory_order_acquire) == 0 &&
	       atomic_load_explicit(&q->incoming, memory_order_acquire) == NULL;
}

/* For the idle re-check, which fences before it (idle.c) and must not miss
 * a push: unlike the hint, not empty while a drain holds tasks between
 * its exchange and its add to fifo_len (a worker going to sleep then left
 * them to the drainer alone). The drain sets draining before its exchange
 * (whose release publishes it) and clears it, with release, after the
 * add. So a reader of the NULL the exchange left (acquire) then sees
 * draining set, or cleared and the add made: the acquire load of
 * draining orders the relaxed one of fifo_len after it. Only here: in
 * the hint of every pop it sent workers to the lock while a drain held
 * it, and spawn_many lost 14%. */
bool weft__inject_empty_for_sleep(struct weft_inject *q)
{
	return atomic_load_explicit(&q->incoming, memory_order_acquire) ==
		       NULL &&
	       !atomic_load_explicit(&q->draining, memory_order_acquire) &&
	       atomic_load_explicit(&q->fifo_len, memory_order_relaxed) == 0;
}

void (*weft__inject_after_exchange)(struct weft_inject *q);

/* Moves the Treiber stack, reversed, to the FIFO side. Under the lock. */
static void drain_incoming(struct weft_inject *q)
{
	WEFT_ASSERT(weft__spin_held(&q->lock));
	/* relaxed: the exchange's release below publishes it. */
	atomic_store_explicit(&q->draining, true, memory_order_relaxed);
	/* Acquire: pairs with the producers' release CAS, so the links and
	 * the tasks they wrote before pushing are visible here. Release:
	 * publishes draining to a hint that reads the NULL left here. */
	struct weft_task *t = atomic_exchange_explicit(&q->incoming, NULL,
						       memory_order_acq_rel);
	struct weft_task *rev = NULL, *last = t;

	if (__builtin_expect(weft__inject_after_exchange != NULL, 0))
		weft__inject_after_exchange(q);
	long n = 0;
	while (t) {
		struct weft_task *next = t->next;
		t->next = rev;
		rev = t;
		t = next;
		n++;
	}
	if (rev) {
		if (q->tail)
			q->tail->next = rev;
		else
			q->head = rev;
		q->tail = last;
		/* Counts for the hint and the metrics, relaxed: the list
		 * itself is read under the lock, whose release/acquire
		 * orders it; the release store of draining below publishes
		 * the add to empty_for_sleep. */
		atomic_fetch_add_explicit(&q->fifo_len, n,
					  memory_order_relaxed);
		atomic_fetch_sub_explicit(&q->incoming_len, n,
					  memory_order_relaxed);
	}
	/* Release: a hint that sees it cleared sees the add above. */
	atomic_store_explicit(&q->draining, false, memory_order_release);
}

long weft__inject_len(struct weft_inject *q)
{
	/* A drain between its two counts shows its tasks twice: a gauge,
	 * relaxed loads. */
	return atomic_load_explicit(&q->fifo_len, memory_order_relaxed) +
	       atomic_load_explicit(&q->incoming_len, memory_order_relaxed);
}

struct weft_task *weft__inject_pop(struct weft_inject *q, int max, int *n)
{
	*n = 0;
	if (weft__inject_empty(q))
		return NULL;
	weft__spin_lock(&q->lock);
	if (!q->head)
		drain_incoming(q);
	struct weft_task *first = q->head, *t = first, *last = NULL;
	while (t && *n < max) {
		last = t;
		t = t->next;
		(*n)++;
	}
	if (last) {
		last->next = NULL;
		q->head = t;
		if (!t)
			q->tail = NULL;
		/* Relaxed: a count, as in drain_incoming. */
		atomic_fetch_sub_explicit(&q->fifo_len, *n,
					  memory_order_relaxed);
	}
	weft__spin_unlock(&q->lock);
	return last ? first : NULL;
}
