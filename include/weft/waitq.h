/* The layout of weft's wait-queue, embedded in every primitive of <weft.h>.
 * Its fields are internal: use the primitives, not these. */
#ifndef WEFT_WAITQ_H
#define WEFT_WAITQ_H

struct weft__waiter;

struct weft_waitq {
	unsigned lock; /* spinlock, touched only through atomics */
	struct weft__waiter *head, *tail;
};

/* clang-format off */
#define WEFT_WAITQ_INIT { 0, 0, 0 }
/* clang-format on */

#endif
