/*
 * Stealing: a worker out of local work takes tasks from the others, as the
 * rules of runq.h allow, from a random victim on.
 */
#ifndef WEFT_RUNTIME_STEAL_H
#define WEFT_RUNTIME_STEAL_H

#include <stdbool.h>

struct weft_runtime;
struct weft_worker;
struct weft_task;

/* Looks at every other worker once, from a random one on, then at the
 * global queue. Takes half a victim's deque (and its woken tasks, if open)
 * into w's deque and returns one task to run now; NULL if none was found.
 * from_runnext: also take a spawned task from a busy victim's run-next
 * slot (the searcher's occasional slower look). */
struct weft_task *weft__steal(struct weft_runtime *rt, struct weft_worker *w,
			      bool from_runnext);

#endif
