/*
 * Stealing: a worker out of local work takes tasks from the others, as the
 * rules of runq.h allow, from a random victim on; and a busy worker takes
 * the tasks of a worker that stalled.
 *
 * Why busy workers relieve stalled ones: a worker that the OS preempted
 * (more runnable threads than CPUs: a load generator, a neighbour, a
 * noisy host), or that one task keeps, holds every task waiting in its
 * places, connections it polled among them. A searcher would take them,
 * but under load no worker runs dry, so they waited for the stalled
 * worker's next time slice while the others served their own connections
 * again and again. Tokio and Go leave this to idle workers; measured here,
 * it was most of weft's closed-loop tail: with the load generator on the
 * same two CPUs, http's turn p99 (answers on other connections between two
 * on one) fell from 380-536 to 198-206 and its p99 latency from 3.2-4.2 to
 * 2.1-2.3 ms, Tokio's 1.6-1.9 (bench/README.md).
 */
#ifndef WEFT_RUNTIME_STEAL_H
#define WEFT_RUNTIME_STEAL_H

#include <stdatomic.h>
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

/* Every RELIEF_INTERVAL of its picks a worker looks at one other worker,
 * in turn: once that one has picked no task for RELIEF_STALL_NS, w takes
 * half of each of its places, run-next too, as a searcher takes from a
 * worker the monitor marked stuck. Costs a load and a time-stamp while the
 * others keep picking. In time, not in w's picks: 61 picks are 4 us of
 * skynet's, in which a worker faulting in a new stack looked stalled, and
 * taking its spawns made skynet 3.5 times slower. 100 us was not enough
 * either on a host whose page faults cost 20 us: a relief started more of
 * skynet's tree at once, whose new stacks faulted, which looked like more
 * stalls, and 3 runs in 10 took 6-9 times as long. With 300 us none did
 * (bench/README.md, eighteenth session). The servers' closed-loop p99
 * moved by 0.93-1.11x of 100 us's, inside that hour's noise, and it had
 * been about as low with 61 of their picks (~400 us) as with 100 us. */
#define RELIEF_INTERVAL 61
#define RELIEF_STALL_NS (300 * 1000)
void weft__steal_relieve(struct weft_runtime *rt, struct weft_worker *w);

/* Internal test interface, not API: the reliefs taken so far, so that a
 * test can tell a run whose tasks a relief moved (test_timer). */
extern atomic_ulong weft__reliefs;

#endif
