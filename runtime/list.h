/*
 * Intrusive doubly linked lists, and container_of.
 *
 * The elements link through their own `next` and `prev` fields (any struct
 * that has both), so linking allocates nothing. A list is a head and a tail
 * pointer of the element type, or a head alone for a list that is only
 * pushed at the front. NULL ends the list both ways: prev is NULL for the
 * head, and both are NULL for an element that was removed, so that
 * `e->prev || head == e` tells whether e is linked.
 *
 * Macros, to serve every element type: arguments are evaluated more than
 * once, so pass plain lvalues.
 */
#ifndef WEFT_RUNTIME_LIST_H
#define WEFT_RUNTIME_LIST_H

#include <stddef.h>

/* The struct of the given type whose field member p points at. */
#define weft__container_of(p, type, member)                                    \
	((type *)((char *)(p)-offsetof(type, member)))

/* Appends e to the list head..tail. */
#define weft__list_push_back(head, tail, e)                                    \
	do {                                                                   \
		(e)->next = NULL;                                              \
		(e)->prev = (tail);                                            \
		if (tail)                                                      \
			(tail)->next = (e);                                    \
		else                                                           \
			(head) = (e);                                          \
		(tail) = (e);                                                  \
	} while (0)

/* Pushes e at the front of a head-only list. */
#define weft__list_push_front(head, e)                                         \
	do {                                                                   \
		(e)->prev = NULL;                                              \
		(e)->next = (head);                                            \
		if (head)                                                      \
			(head)->prev = (e);                                    \
		(head) = (e);                                                  \
	} while (0)

/* Removes e, which is linked, from a head-only list. */
#define weft__list_unlink(head, e)                                             \
	do {                                                                   \
		if ((e)->prev)                                                 \
			(e)->prev->next = (e)->next;                           \
		else                                                           \
			(head) = (e)->next;                                    \
		if ((e)->next)                                                 \
			(e)->next->prev = (e)->prev;                           \
		(e)->next = (e)->prev = NULL;                                  \
	} while (0)

/* Removes e, which is linked, from the list head..tail. */
#define weft__list_remove(head, tail, e)                                       \
	do {                                                                   \
		if (!(e)->next)                                                \
			(tail) = (e)->prev;                                    \
		weft__list_unlink(head, e);                                    \
	} while (0)

#endif
