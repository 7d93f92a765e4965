/*
 * weft_queue: a queue of fixed-size elements (asyncio.Queue, LifoQueue,
 * PriorityQueue; a Go channel).
 *
 * One spinlock, the queue's lock (lock_of: the getters list's own, which
 * the public layout gives a queue), guards everything: the element store,
 * the three waiter lists and the counters. Elements are copied in and out
 * under it. The store is a ring (FIFO), a stack (LIFO) or a binary heap
 * (PRIORITY) over one array of `slots` elements.
 *
 * Invariants:
 *  - getters is non-empty only while the store is empty (a getter waits
 *    only on an empty store, and a put that finds a getter hands its item
 *    straight over instead of storing it).
 *  - putters is non-empty only while the store is full (capacity >= 1), and
 *    a get that frees a slot moves the oldest putter's item in at once.
 *  - Hand-over happens under the lock: the item is copied into the waiter's
 *    buffer, the waiter is settled with 0 and unlinked, and it is woken
 *    after the unlock. A settled waiter got exactly its item; an aborted one
 *    was unlinked first and nothing of its was taken or given. So every item
 *    put is got exactly once, or dropped by an immediate shutdown.
 *  - unfinished counts items put (stored or handed over) and not yet marked
 *    done; joiners wait for it to reach 0.
 *  - After shutdown no waiter is ever linked on getters or putters again.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "weft/sync.h"
#include "waitq.h"
#include "select.h"

#define FIRST_SLOTS 16
#define FIRST_BYTES 65536

/* The queue's one lock, for the three lists and every field. */
static inline struct weft_waitq *lock_of(struct weft_queue *q)
{
	return &q->getters;
}

static inline void queue_lock(struct weft_queue *q)
{
	weft__waitq_lock(lock_of(q));
}

static inline void queue_unlock(struct weft_queue *q)
{
	weft__waitq_unlock(lock_of(q));
}

static int init(struct weft_queue *q, const struct weft_queue_opts *o)
{
	if (!q || !o || !o->elem_size || o->kind > WEFT_QUEUE_PRIORITY ||
	    (o->kind == WEFT_QUEUE_PRIORITY && !o->cmp) ||
	    (o->storage && !o->capacity))
		return -EINVAL;
	if (o->capacity && o->elem_size > SIZE_MAX / o->capacity)
		return -EINVAL;
	memset(q, 0, sizeof(*q));
	weft__waitq_init(&q->getters);
	weft__waitq_init(&q->putters);
	weft__waitq_init(&q->joiners);
	q->elem_size = o->elem_size;
	q->capacity = o->capacity;
	q->kind = (unsigned char)o->kind;
	q->cmp = o->cmp;
	if (o->storage) {
		q->buf = o->storage;
		q->slots = o->capacity;
	}
	return 0;
}

int weft_queue_init(struct weft_queue *q, size_t elem_size, size_t capacity)
{
	struct weft_queue_opts o = { .elem_size = elem_size,
				     .capacity = capacity };
	return init(q, &o);
}

int weft_queue_init_opts(struct weft_queue *q, const struct weft_queue_opts *o)
{
	return init(q, o);
}

int weft_queue_destroy(struct weft_queue *q)
{
	if (!q)
		return -EINVAL;
	queue_lock(q);
	if (!weft__waitq_empty(&q->getters) ||
	    !weft__waitq_empty(&q->putters) ||
	    !weft__waitq_empty(&q->joiners)) {
		queue_unlock(q);
		return -EBUSY;
	}
	if (q->own_buf)
		free(q->buf);
	if (q->own_buf || !q->buf) {
		q->buf = 0;
		q->slots = 0;
	}
	q->own_buf = false;
	q->count = q->head = 0;
	queue_unlock(q);
	return 0;
}

/* ---- the element store, under the lock ---------------------------------- */

static inline void copy_elem(void *dst, const void *src, size_t n)
{
	/* Constant sizes let the compiler inline the common cases. */
	switch (n) {
	case 8:
		memcpy(dst, src, 8);
		break;
	case 4:
		memcpy(dst, src, 4);
		break;
	case 16:
		memcpy(dst, src, 16);
		break;
	default:
		memcpy(dst, src, n);
	}
}

static inline unsigned char *slot(struct weft_queue *q, size_t i)
{
	return q->buf + i * q->elem_size;
}

static inline bool full(const struct weft_queue *q)
{
	return q->capacity && q->count >= q->capacity;
}

/* Makes room for one more element. Only heap storage ever grows: user
 * storage has capacity slots, and a full bounded queue stores nothing. */
static int grow(struct weft_queue *q)
{
	size_t n;
	if (!q->slots) {
		n = FIRST_BYTES / q->elem_size;
		if (n < FIRST_SLOTS)
			n = FIRST_SLOTS;
	} else {
		if (q->slots > SIZE_MAX / 2 / q->elem_size)
			return -ENOMEM;
		n = q->slots * 2;
	}
	if (q->capacity && n > q->capacity)
		n = q->capacity;
	if (n > SIZE_MAX / q->elem_size)
		return -ENOMEM;
	unsigned char *nb = malloc(n * q->elem_size);
	if (!nb)
		return -ENOMEM;
	/* Copy in storage order, unwrapping the FIFO ring. */
	size_t first = q->count;
	if (q->kind == WEFT_QUEUE_FIFO && q->head + q->count > q->slots)
		first = q->slots - q->head;
	if (q->count) {
		size_t from = q->kind == WEFT_QUEUE_FIFO ? q->head : 0;
		memcpy(nb, slot(q, from), first * q->elem_size);
		memcpy(nb + first * q->elem_size, q->buf,
		       (q->count - first) * q->elem_size);
	}
	if (q->own_buf)
		free(q->buf);
	q->buf = nb;
	q->own_buf = true;
	q->slots = n;
	q->head = 0;
	return 0;
}

static void heap_push(struct weft_queue *q, const void *item)
{
	size_t i = q->count;
	while (i > 0) {
		size_t p = (i - 1) / 2;
		if (q->cmp(item, slot(q, p)) >= 0)
			break;
		copy_elem(slot(q, i), slot(q, p), q->elem_size);
		i = p;
	}
	copy_elem(slot(q, i), item, q->elem_size);
}

static void heap_pop(struct weft_queue *q, void *out)
{
	copy_elem(out, slot(q, 0), q->elem_size);
	size_t n = --q->count;
	if (!n)
		return;
	/* Sift the last element (left in place at index n) down from the
	 * root; the hole moves down, never reaching n. */
	const unsigned char *last = slot(q, n);
	size_t i = 0;
	for (;;) {
		size_t c = 2 * i + 1;
		if (c >= n)
			break;
		if (c + 1 < n && q->cmp(slot(q, c + 1), slot(q, c)) < 0)
			c++;
		if (q->cmp(last, slot(q, c)) <= 0)
			break;
		copy_elem(slot(q, i), slot(q, c), q->elem_size);
		i = c;
	}
	if (i != n)
		copy_elem(slot(q, i), last, q->elem_size);
}

/* Stores item; the caller checked !full(q). Returns 0 or -ENOMEM.
 *
 * store, take, put_locked and get_locked are forced inline into each call:
 * as calls (GCC kept them out of line, each having several callers) an
 * item's put and get took 217 instructions, inline 131, and channel's
 * 4-producer run 28 ns an item against 16 (2026-12-02, bench/README.md). */
static inline __attribute__((always_inline)) int store(struct weft_queue *q,
						       const void *item)
{
	if (q->count == q->slots) {
		int r = grow(q);
		if (r)
			return r;
	}
	switch (q->kind) {
	case WEFT_QUEUE_FIFO: {
		size_t i = q->head + q->count;
		if (i >= q->slots)
			i -= q->slots;
		copy_elem(slot(q, i), item, q->elem_size);
		q->count++;
		break;
	}
	case WEFT_QUEUE_LIFO:
		copy_elem(slot(q, q->count), item, q->elem_size);
		q->count++;
		break;
	default:
		heap_push(q, item);
		q->count++;
	}
	return 0;
}

/* Takes the next element; the caller checked count > 0. Inline: see
 * store. */
static inline __attribute__((always_inline)) void take(struct weft_queue *q,
						       void *out)
{
	switch (q->kind) {
	case WEFT_QUEUE_FIFO:
		copy_elem(out, slot(q, q->head), q->elem_size);
		if (++q->head == q->slots)
			q->head = 0;
		q->count--;
		break;
	case WEFT_QUEUE_LIFO:
		q->count--;
		copy_elem(out, slot(q, q->count), q->elem_size);
		break;
	default:
		heap_pop(q, out);
	}
}

/* ---- put and get -------------------------------------------------------- */

static void getter_abort(struct weft__waiter *w, int reason)
{
	struct weft_queue *q =
		weft__container_of(w->queue, struct weft_queue, getters);
	weft__waitq_abort_on(lock_of(q), &q->getters, w, reason, NULL);
}

static void putter_abort(struct weft__waiter *w, int reason)
{
	struct weft_queue *q =
		weft__container_of(w->queue, struct weft_queue, putters);
	weft__waitq_abort_on(lock_of(q), &q->putters, w, reason, NULL);
}

static void joiner_abort(struct weft__waiter *w, int reason)
{
	struct weft_queue *q =
		weft__container_of(w->queue, struct weft_queue, joiners);
	weft__waitq_abort_on(lock_of(q), &q->joiners, w, reason, NULL);
}

/* Under the lock: puts item without waiting. Returns 0, -EPIPE, -ENOMEM,
 * or -EAGAIN if full; *wake is a getter to wake after unlocking. Inline: see
 * store. */
static inline __attribute__((always_inline)) int
put_locked(struct weft_queue *q, const void *item, struct weft__waiter **wake)
{
	WEFT_ASSERT(weft__spin_held(&lock_of(q)->lock));
	if (q->shutdown)
		return -EPIPE;
	struct weft__waiter *g;
	if (!weft__waitq_empty(&q->getters) &&
	    (g = weft__waitq_settle_one(&q->getters, 0))) {
		copy_elem(g->data, item, q->elem_size);
		q->unfinished++;
		*wake = g;
		return 0;
	}
	if (full(q))
		return -EAGAIN;
	int r = store(q, item);
	if (!r)
		q->unfinished++;
	return r;
}

/* Under the lock: gets into out without waiting. Returns 0, -EPIPE, or
 * -EAGAIN if empty; *wake is a putter to wake after unlocking. Inline: see
 * store. */
static inline __attribute__((always_inline)) int
get_locked(struct weft_queue *q, void *out, struct weft__waiter **wake)
{
	WEFT_ASSERT(weft__spin_held(&lock_of(q)->lock));
	if (!q->count)
		return q->shutdown ? -EPIPE : -EAGAIN;
	take(q, out);
	struct weft__waiter *p;
	if (!weft__waitq_empty(&q->putters) &&
	    (p = weft__waitq_settle_one(&q->putters, 0))) {
		/* A slot was just freed, so this cannot fail. */
		store(q, p->data);
		q->unfinished++;
		*wake = p;
	}
	return 0;
}

static inline int finish(struct weft_queue *q, int r, struct weft__waiter *wk)
{
	queue_unlock(q);
	if (wk)
		weft__waiter_wake(wk);
	return r;
}

int weft__queue_get_locked(struct weft_queue *q, void *out,
			   struct weft__waiter **wake)
{
	return get_locked(q, out, wake);
}

int weft__queue_put_locked(struct weft_queue *q, const void *item,
			   struct weft__waiter **wake)
{
	return put_locked(q, item, wake);
}

int weft_queue_try_put(struct weft_queue *q, const void *item)
{
	if (!weft__queue_usable(q) || !item)
		return -EINVAL;
	struct weft__waiter *wk = 0;
	queue_lock(q);
	int r = put_locked(q, item, &wk); /* before reading wk */
	return finish(q, r, wk);
}

int weft_queue_try_get(struct weft_queue *q, void *out)
{
	if (!weft__queue_usable(q) || !out)
		return -EINVAL;
	struct weft__waiter *wk = 0;
	queue_lock(q);
	int r = get_locked(q, out, &wk); /* before reading wk */
	return finish(q, r, wk);
}

int weft_queue_put(struct weft_queue *q, const void *item)
{
	if (!weft__queue_usable(q) || !item)
		return -EINVAL;
	struct weft__waiter *wk = 0, w;
	queue_lock(q);
	int r = put_locked(q, item, &wk);
	if (r != -EAGAIN)
		return finish(q, r, wk);
	queue_unlock(q);

	/* Full: wait as a putter; a getter moves our item in and settles us
	 * with 0, or shutdown settles us with -EPIPE. wait_begin may take the
	 * task's wait lock, which must not nest inside ours. */
	weft__waitq_prepare_as(&q->putters, &w, putter_abort,
			       WEFT__WAIT_QUEUE_PUT, q);
	w.data = (void *)item;
	if ((r = weft__wait_begin(&w)))
		return r;
	queue_lock(q);
	if ((r = weft__waiter_state(&w)) != WEFT__WAITING ||
	    (r = put_locked(q, item, &wk)) != -EAGAIN) {
		queue_unlock(q);
		weft__wait_end(&w);
		if (wk)
			weft__waiter_wake(wk);
		return r;
	}
	return weft__waitq_wait_on(lock_of(q), &q->putters, &w);
}

int weft_queue_get(struct weft_queue *q, void *out)
{
	if (!weft__queue_usable(q) || !out)
		return -EINVAL;
	struct weft__waiter *wk = 0, w;
	queue_lock(q);
	int r = get_locked(q, out, &wk);
	if (r != -EAGAIN)
		return finish(q, r, wk);
	queue_unlock(q);

	/* Empty: wait as a getter; a putter copies its item into out and
	 * settles us with 0, or shutdown settles us with -EPIPE. */
	weft__waitq_prepare_as(&q->getters, &w, getter_abort,
			       WEFT__WAIT_QUEUE_GET, q);
	w.data = out;
	if ((r = weft__wait_begin(&w)))
		return r;
	queue_lock(q);
	if ((r = weft__waiter_state(&w)) != WEFT__WAITING ||
	    (r = get_locked(q, out, &wk)) != -EAGAIN) {
		queue_unlock(q);
		weft__wait_end(&w);
		if (wk)
			weft__waiter_wake(wk);
		return r;
	}
	return weft__waitq_wait_on(lock_of(q), &q->getters, &w);
}

long weft_queue_size(struct weft_queue *q)
{
	if (!q)
		return -EINVAL;
	queue_lock(q);
	long n = (long)q->count;
	queue_unlock(q);
	return n;
}

/* ---- task_done, join, shutdown ------------------------------------------ */

int weft_queue_task_done(struct weft_queue *q)
{
	if (!q)
		return -EINVAL;
	struct weft__wakelist wl = WEFT__WAKELIST_INIT;
	queue_lock(q);
	if (!q->unfinished) {
		queue_unlock(q);
		return -EINVAL;
	}
	if (!--q->unfinished)
		weft__waitq_settle_all(&q->joiners, 0, &wl);
	queue_unlock(q);
	weft__wakelist_wake(&wl);
	return 0;
}

int weft_queue_join(struct weft_queue *q)
{
	if (!q)
		return -EINVAL;
	struct weft__waiter w;
	int r;
	/* Nothing unfinished: done without a wait, even in a cancelled
	 * task (a call that can complete at once does: weft/sync.h). */
	queue_lock(q);
	bool done = !q->unfinished;
	queue_unlock(q);
	if (done)
		return 0;
	weft__waitq_prepare_as(&q->joiners, &w, joiner_abort,
			       WEFT__WAIT_QUEUE_JOIN, q);
	if ((r = weft__wait_begin(&w)))
		return r;
	queue_lock(q);
	if (!q->unfinished || (r = weft__waiter_state(&w)) != WEFT__WAITING) {
		if (!q->unfinished)
			r = 0;
		queue_unlock(q);
		weft__wait_end(&w);
		return r;
	}
	return weft__waitq_wait_on(lock_of(q), &q->joiners, &w);
}

int weft_queue_shutdown(struct weft_queue *q, bool immediate)
{
	if (!q)
		return -EINVAL;
	struct weft__wakelist wl = WEFT__WAKELIST_INIT;
	queue_lock(q);
	q->shutdown = true;
	if (immediate && q->count) {
		size_t n = q->count;
		q->count = q->head = 0;
		q->unfinished = q->unfinished > n ? q->unfinished - n : 0;
		if (!q->unfinished)
			weft__waitq_settle_all(&q->joiners, 0, &wl);
	}
	weft__waitq_settle_all(&q->getters, -EPIPE, &wl);
	weft__waitq_settle_all(&q->putters, -EPIPE, &wl);
	queue_unlock(q);
	weft__wakelist_wake(&wl);
	return 0;
}
