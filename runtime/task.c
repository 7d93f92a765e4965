/* Tasks: spawning, joining, detaching, cancelling, and their struct pool.
 * See task.h for lifetime and lock order. */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>

#include "weft/time.h"
#include "idle.h"
#include "park.h"
#include "run.h"
#include "runq.h"
#include "monitor.h"
#include "task.h"
#include "self.h"
#include "worker.h"
#include "valgrind.h"
#include "../sync/select.h"

#define TASK_SLAB 256
/* A task id's slots: one per worker, and one for plain threads (spawn). */
#define ID_SLOTS (WEFT_WORKERS_MAX + 1)
#define TASK_CACHE_MAX 64

struct task_slab {
	struct task_slab *next;
	struct weft_task tasks[TASK_SLAB];
};

struct weft_task_cache {
	int n;
	struct weft_task *t[TASK_CACHE_MAX];
};

/* The global pool: an array of free structs, so a worker moves half a
 * cache in or out with one copy under the lock, without reading the
 * structs (another core freed them: each read would be a cache miss). Its
 * lock is a spinlock: every critical section is a short copy.
 * Invariant: nfree <= total <= cap, total counting the structs of every
 * slab, so a free always fits. Lines of its own, as the stack pool's. */
static struct __attribute__((aligned(64))) {
	unsigned lock;
	struct task_slab *slabs;
	struct weft_task **free;
	size_t nfree, total, cap;
} pool;

/* ---- the struct pool ---------------------------------------------------- */

/* Adds a slab, built outside the lock (its pages fault in here, not while
 * others wait). The array doubles when the structs would outgrow it: about
 * twenty times for a million tasks. */
static int grow_pool(void)
{
	struct task_slab *s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	for (int i = 0; i < TASK_SLAB; i++)
		atomic_init(&s->tasks[i].gen,
			    1); /* a zeroed handle never matches */
	weft__spin_lock(&pool.lock);
	if (pool.total + TASK_SLAB > pool.cap) {
		size_t cap = pool.cap ? 2 * pool.cap : 4 * TASK_SLAB;
		struct weft_task **a = realloc(pool.free, cap * sizeof(*a));
		if (!a) {
			weft__spin_unlock(&pool.lock);
			free(s);
			return -ENOMEM;
		}
		pool.free = a;
		pool.cap = cap;
	}
	for (int i = 0; i < TASK_SLAB; i++)
		pool.free[pool.nfree++] = &s->tasks[i];
	pool.total += TASK_SLAB;
	s->next = pool.slabs;
	pool.slabs = s;
	weft__spin_unlock(&pool.lock);
	return 0;
}

/* Moves up to n structs from the pool to dst; returns how many. */
static int pool_take(struct weft_task **dst, int n)
{
	weft__spin_lock(&pool.lock);
	if ((size_t)n > pool.nfree)
		n = (int)pool.nfree;
	pool.nfree -= (size_t)n;
	if (n) /* pool.free is NULL until the first slab */
		memcpy(dst, pool.free + pool.nfree, (size_t)n * sizeof(*dst));
	weft__spin_unlock(&pool.lock);
	return n;
}

static void pool_put(struct weft_task *const *src, int n)
{
	weft__spin_lock(&pool.lock);
	memcpy(pool.free + pool.nfree, src, (size_t)n * sizeof(*src));
	pool.nfree += (size_t)n;
	weft__spin_unlock(&pool.lock);
}

/* c is NULL off the workers. */
static __attribute__((noinline)) struct weft_task *
task_alloc_slow(struct weft_task_cache *c)
{
	for (;;) {
		if (c && c->n)
			return c->t[--c->n];
		struct weft_task *t;
		if (c)
			c->n = pool_take(c->t, TASK_CACHE_MAX / 2);
		else if (pool_take(&t, 1))
			return t;
		if ((!c || !c->n) && grow_pool())
			return NULL;
	}
}

static inline struct weft_task *task_alloc(struct weft_task_cache *c)
{
	return c && c->n ? c->t[--c->n] : task_alloc_slow(c);
}

static inline void task_free(struct weft_task *t, struct weft_task_cache *c)
{
	if (!c) {
		pool_put(&t, 1);
		return;
	}
	/* A full cache hands half of itself back in one go, so a worker that
	 * only frees (its tasks were spawned elsewhere) takes the lock once
	 * per TASK_CACHE_MAX / 2 tasks, not once per task. */
	if (c->n == TASK_CACHE_MAX) {
		c->n -= TASK_CACHE_MAX / 2;
		pool_put(c->t + c->n, TASK_CACHE_MAX / 2);
	}
	c->t[c->n++] = t;
}

struct weft_task_cache *weft__task_cache_new(void)
{
	return calloc(1, sizeof(struct weft_task_cache));
}

/* The structs go back to the pool: it outlives the runtime (task.h). */
void weft__task_cache_free(struct weft_task_cache *c)
{
	if (c && c->n)
		pool_put(c->t, c->n);
	free(c);
}

/* The pool's slabs, to walk without the lock: slabs are only ever added
 * at the head, and never freed, so the list from this head on stays as it
 * is (a walker that takes other locks must not hold the pool's). */
static struct task_slab *pool_slabs(void)
{
	weft__spin_lock(&pool.lock);
	struct task_slab *first = pool.slabs;
	weft__spin_unlock(&pool.lock);
	return first;
}

void weft__task_for_each_alive(void (*fn)(struct weft_task *, void *),
			       void *arg)
{
	for (struct task_slab *s = pool_slabs(); s; s = s->next)
		for (int i = 0; i < TASK_SLAB; i++)
			if (atomic_load(&s->tasks[i].alive))
				fn(&s->tasks[i], arg);
}

/* ---- runs and handles --------------------------------------------------- */

/* A handle's gen is the run's number above the struct's generation, so a
 * handle kept from an earlier weft_run is stale in the next one even if its
 * struct was never recycled (its task was never joined nor detached). */
#define GEN_BITS 40
#define GEN_MASK ((UINT64_C(1) << GEN_BITS) - 1)
/* The run number's bits a handle keeps: after 2^24 runs a handle still
 * matches its own run, and one from 2^24 runs back would match only if
 * its struct's generation did too. */
#define RUN_MASK (UINT64_MAX >> GEN_BITS)

static _Atomic uint64_t run_number;

/* Plain threads inside weft_spawn_opts or waking a task now: weft_run
 * waits for them before it counts the tasks left and before it frees the
 * runtime they read. Two counts, as SRCU keeps: a call counts itself in
 * the one foreign_phase names, and a quiesce flips the phase, then waits
 * for the count it flipped from alone. Waiting for one count of all calls
 * to reach 0 never ended while plain threads' calls overlapped without a
 * pause (weft_workers() from 8 threads kept weft_run 5 s, and two that
 * hand over for ever keep it for ever: test_lifecycle
 * quiesce_beside_overlapping_calls). Calls after the flip need no wait:
 * they see what weft_run did before it (see foreign_quiesce).
 * Invariant: foreign_calls[i] is the number of calls between an enter that
 * returned i and its leave. */
static atomic_int foreign_calls[2];
static atomic_int foreign_phase;

/* fork(2): the child has one thread, the forking one, which is inside
 * none of these calls (weft makes no fork), so it starts at 0. The count
 * it copied may hold the calls other threads of the parent were inside (a
 * status thread's weft_workers, a spawn refused between runs): a
 * pre-fork child's weft_run would wait for those threads, which it does
 * not have, for ever. */
static void foreign_fork_child(void)
{
	atomic_store(&foreign_calls[0], 0);
	atomic_store(&foreign_calls[1], 0);
}

static void foreign_fork_once(void)
{
	pthread_atfork(NULL, NULL, foreign_fork_child);
}

int weft__foreign_enter(void)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;

	/* Registered before the first count a fork could copy. */
	pthread_once(&once, foreign_fork_once);
	int phase = atomic_load(&foreign_phase);
	atomic_fetch_add(&foreign_calls[phase], 1); /* see foreign_quiesce */
	return phase;
}

void weft__foreign_leave(int phase)
{
	WEFT_ASSERT(atomic_load(&foreign_calls[phase]) > 0);
	atomic_fetch_sub(&foreign_calls[phase], 1);
}

void weft__task_run_begin(void)
{
	atomic_fetch_add(&run_number, 1);
	/* No worker runs yet, and every task of the last run has ended. */
	for (struct task_slab *s = pool_slabs(); s; s = s->next)
		for (int i = 0; i < TASK_SLAB; i++)
			s->tasks[i].stack.base = NULL;
}

void weft__task_foreign_quiesce(void)
{
	/* seq_cst, all, against weft__foreign_enter's load and increment. A
	 * call that read the phase after our flip comes after the state
	 * weft_run set before calling this, and sees it. One that read it
	 * before counts itself in the old count: before our read of it, and
	 * we wait for it; or after, and it sees that state too. weft_run
	 * alone quiesces, never two at once. */
	int old = atomic_fetch_xor(&foreign_phase, 1);

	while (atomic_load(&foreign_calls[old]))
		sched_yield();
}

/* Relaxed: weft_run bumps run_number before it publishes weft__rt (seq_cst
 * store), and every caller here got t through a runtime it saw published:
 * it reads this run's number or a later one, never an earlier one. gen's
 * acquire pairs with task_stale's release increment, which reached us
 * anyway: the spawner took t from the pool after its recycling, and
 * weft_current reads its own task's. */
static uint64_t handle_gen(struct weft_task *t)
{
	return atomic_load_explicit(&run_number, memory_order_relaxed)
		       << GEN_BITS |
	       (atomic_load_explicit(&t->gen, memory_order_acquire) & GEN_MASK);
}

/* Whether the handle generation hgen is t's current one. */
static bool gen_matches(struct weft_task *t, uint64_t hgen)
{
	return ((atomic_load(&t->gen) ^ hgen) & GEN_MASK) == 0;
}

/* ---- references --------------------------------------------------------- */

/* The last reference to a task whose handle was made, or that returned
 * inside a shield, is gone: stale its handles and reset the fields
 * wait_lock guards (see task_recycle). */
static __attribute__((noinline)) void task_stale(struct weft_task *t)
{
	weft__wait_lock(t);
	weft__spin_lock(&t->join_lock);
	/* release: pairs with handle_gen's acquire; the checks of gen that
	 * act (cancel, join, detach) are made under these two locks. */
	if (t->handle_made)
		atomic_fetch_add_explicit(&t->gen, 1, memory_order_release);
	t->shield = NULL;
	weft__spin_unlock(&t->join_lock);
	weft__spin_unlock(&t->wait_lock);
}

/* The last reference is gone: recycle t into c (NULL off the workers).
 * Handles go stale by the generation, which changes under both locks, so
 * cancel (wait_lock) and join/detach (join_lock) each see it consistently;
 * a task of which no handle was made (spawned detached, and never asked
 * weft_current) leaves nothing to go stale and skips both. The fields
 * wait_lock guards are reset here, under it, not by the next spawn (see
 * "Strangers" in task.h): waiting is NULL already, as no wait outlives its
 * call, and shield unless the task returned inside one. Both are read
 * plainly here: only the task wrote them, and its writes happen before
 * the last reference's drop (the acq_rel on refs). joiner is NULL too:
 * finishing, a join's abort and a select's unlink clear it. */
static inline void task_recycle(struct weft_task *t, struct weft_task_cache *c)
{
	WEFT_ASSERT(!t->waiting && !t->joiner);
	if (t->handle_made || t->shield)
		task_stale(t);
	task_free(t, c);
}

static void task_unref(struct weft_task *t)
{
	/* acq_rel: every holder's writes to t happen before the last drop,
	 * which recycles t (the usual reference count). */
	if (atomic_fetch_sub_explicit(&t->refs, 1, memory_order_acq_rel) != 1)
		return;
	struct weft_worker *w = weft__self();
	task_recycle(t, w ? w->task_cache : NULL);
}

bool weft__task_get(struct weft_task *t)
{
	/* relaxed: only a guess for the CAS, which re-reads on failure. */
	int r = atomic_load_explicit(&t->refs, memory_order_relaxed);
	/* acquire: pairs with spawn's release store of refs, after which
	 * the fields spawn wrote are ours to read (a failed CAS takes
	 * nothing: relaxed). From 0 never: the struct is free, or being
	 * recycled. */
	while (r > 0)
		if (atomic_compare_exchange_weak_explicit(&t->refs, &r, r + 1,
							  memory_order_acquire,
							  memory_order_relaxed))
			return true;
	return false;
}

void weft__task_put(struct weft_task *t)
{
	task_unref(t);
}

static struct weft_task *lookup(weft_task_t h)
{
	/* acquire: pairs with weft_run's store of weft__rt, after its bump
	 * of run_number, which the check below then reads. */
	if (!atomic_load_explicit(&weft__rt, memory_order_acquire) || !h.task)
		return NULL;
	if (h.gen >> GEN_BITS != (atomic_load(&run_number) & RUN_MASK) ||
	    !gen_matches(h.task, h.gen))
		return NULL;
	return h.task;
}

/* ---- spawn -------------------------------------------------------------- */

/* How a spawn differs from weft_spawn's: one flags word, so that
 * spawn_from keeps its arguments in registers (x86-64 passes six) and
 * weft_spawn stays a tail call. */
enum {
	SPAWN_STACK_NOW = 1,          /* see weft__spawn_with_stack */
	SPAWN_CLAIMED = JOIN_CLAIMED, /* see weft__spawn_main; its bit */
};

static inline __attribute__((always_inline)) int
spawn(weft_task_t *out, weft_fn fn, void *arg,
      const struct weft_spawn_opts *opts, struct weft_worker *self,
      const void *site, unsigned how);

/* site: the caller of weft_spawn or weft_spawn_opts, for weft_dump.
 * how: SPAWN_* flags. */
static int spawn_from(weft_task_t *out, weft_fn fn, void *arg,
		      const struct weft_spawn_opts *opts, const void *site,
		      unsigned how)
{
	struct weft_worker *self = weft__self();
	if (self)
		return spawn(out, fn, arg, opts, self, site, how);
	int phase = weft__foreign_enter();
	int r = spawn(out, fn, arg, opts, NULL, site, how);
	weft__foreign_leave(phase);
	return r;
}

int weft_spawn(weft_task_t *out, weft_fn fn, void *arg)
{
	return spawn_from(out, fn, arg, NULL, __builtin_return_address(0), 0);
}

int weft_spawn_opts(weft_task_t *out, weft_fn fn, void *arg,
		    const struct weft_spawn_opts *opts)
{
	return spawn_from(out, fn, arg, opts, __builtin_return_address(0), 0);
}

int weft__spawn_with_stack(weft_task_t *out, weft_fn fn, void *arg)
{
	return spawn_from(out, fn, arg, NULL, __builtin_return_address(0),
			  SPAWN_STACK_NOW);
}

int weft__spawn_main(weft_task_t *out, weft_fn fn, void *arg)
{
	return spawn_from(out, fn, arg,
			  &(struct weft_spawn_opts){ .name = "main" },
			  __builtin_return_address(0), SPAWN_CLAIMED);
}

void (*weft__spawn_foreign_hook)(void);

/* self: the caller's worker, NULL on a plain thread. A plain thread may
 * spawn only while the runtime runs: once it drains, a thread spawning in
 * a loop would keep it from ever finishing. site: weft_dump's spawn site.
 * how: SPAWN_* flags.
 * Inlined into spawn_from twice, so the workers' copy, the hot one, has
 * the plain thread's branches folded away. */
static inline __attribute__((always_inline)) int
spawn(weft_task_t *out, weft_fn fn, void *arg,
      const struct weft_spawn_opts *opts, struct weft_worker *self,
      const void *site, unsigned how)
{
	struct weft_runtime *rt = atomic_load(&weft__rt);
	if (!rt)
		return -ESHUTDOWN;
	int state = atomic_load(&rt->state);
	if (state == RT_STOPPING || (!self && state != RT_RUNNING))
		return -ESHUTDOWN;
	if (!self && __builtin_expect(weft__spawn_foreign_hook != NULL, 0))
		weft__spawn_foreign_hook();
	if (!fn)
		return -EINVAL;
	size_t size = rt->stack_size; /* checked by weft_run */
	if (opts && opts->stack_size) {
		size = opts->stack_size;
		if (size < WEFT_STACK_MIN || size > WEFT_STACK_MAX)
			return -EINVAL;
	}
	struct weft_task *t = task_alloc(self ? self->task_cache : NULL);
	if (!t)
		return -ENOMEM;

	/* A recycled struct holds what its last task left (task_recycle
	 * says what that is): result is the task's own to write (and
	 * start_task's, if it gets no stack), joiner is NULL. */
	WEFT_ASSERT(!t->joiner);
	t->fn = fn;
	t->arg = arg;
	t->error = 0;
	/* The struct's last task's stack serves this one if it asked for the
	 * same size (task.h); a size seldom changes. */
	if (t->stack.base && t->stack_size != size) {
		weft__stack_free(&t->stack, self ? self->stack_cache : NULL);
		t->stack.base = NULL;
	}
	/* Its stack now, or no task: nothing is published yet, so the
	 * struct goes back to the free ones, holding no stack. */
	if ((how & SPAWN_STACK_NOW) &&
	    weft__task_take_stack(t, size, self ? self->stack_cache : NULL)) {
		task_free(t, self ? self->task_cache : NULL);
		return -ENOMEM;
	}
	t->stack_size = size;
	t->ctx.sp = NULL; /* not yet run */
	if (weft__fp_per_task)
		weft__ctx_fp_init(&t->ctx);
	t->join_state = out ? how & SPAWN_CLAIMED : JOIN_DETACHED;
	t->handle_made = out != NULL;
	t->deadline = WEFT_NO_DEADLINE;
	t->scope = NULL;
	/* Ids unique without a shared counter: each worker counts its own,
	 * in the slot of its id; plain threads share the slot past the
	 * last worker's (WEFT_WORKERS_MAX - 1 may be a worker's), relaxed:
	 * the RMW makes each unique, and nothing is published by it. */
	t->id = self ? ++self->spawned * ID_SLOTS + (uint64_t)self->id
		     : atomic_fetch_add_explicit(&rt->next_id, 1,
						 memory_order_relaxed) *
					ID_SLOTS +
				WEFT_WORKERS_MAX;
	t->spawn_site = site;
	t->doing = NULL;
	t->ready_at = 0;
	if (self)
		weft__latency_mark(t, self->spawned);
	else /* a plain thread's spawn, numbered by rt->next_id */
		weft__latency_mark(t, t->id / ID_SLOTS);
	if (opts && opts->name) {
		size_t len = strnlen(opts->name, WEFT_NAME_MAX - 1);
		memcpy(t->name, opts->name, len);
		t->name[len] = '\0';
	} else {
		memcpy(t->name, "task", sizeof("task"));
	}
	/* release: a stranger's weft__task_get then sees the fields above */
	atomic_store_explicit(&t->refs, out ? 2 : 1, memory_order_release);
	/* relaxed: the worker that runs t gets it through the queue push
	 * below (release), a canceller by handle through the handle, which
	 * exists only after we return, and the drain sweep, which finds t
	 * through alive, through alive's release store below. */
	atomic_store_explicit(&t->cancelled, false, memory_order_relaxed);
	/* Shutdown sets DRAINING, then cancels every alive task: either it
	 * sees this one, or we see DRAINING here. The seq_cst RMW on the
	 * count sits between our store of alive and our load of state,
	 * ordering them as the pattern needs. That is the hardware's
	 * promise, not C11's (an RMW on another object is not a fence): on
	 * x86-64 a locked instruction drains the store buffer; on AArch64
	 * the store precedes the RMW's store-release, which precedes the
	 * load-acquire of state (RCsc). A seq_cst store of alive, C11's
	 * way, would cost every spawn a second locked instruction. It is
	 * release, pairing with the sweep's load of alive: relaxed, AArch64
	 * could show alive before the reset of cancelled above, and the
	 * sweep's cancel, stored after it saw alive, would then be
	 * overwritten by that reset; the task would run on uncancelled and
	 * weft_run wait for it. (A plain store on x86-64, an STLR on
	 * AArch64.) */
	atomic_store_explicit(&t->alive, true, memory_order_release);
	atomic_fetch_add(self ? &self->tasks_spawned : &rt->foreign_spawned, 1);
	if (atomic_load(&rt->state) != RT_RUNNING)
		atomic_store(&t->cancelled, true);
	if (out) {
		out->task = t;
		out->gen = handle_gen(t);
	}
	/* Run-next, as Go's newproc: a spawner that exits or waits next
	 * (chains, fan-out then join) hands its successor a warm cache, and
	 * an idle worker steals it only if it sits. */
	bool pushed = false; /* the task run-next held went to the deque */
	if (self && self->current)
		pushed = weft__runq_run_next(self, t, true) ==
			 WEFT__DISPLACED_TO_DEQUE;
	else if (self)
		weft__worker_push(self, t);
	else
		weft__inject_push(&rt->inject, t);
	/* A worker is roused for a task another can take at once: not for
	 * one that went into an empty run-next slot (a chain's next link, a
	 * fan-out's first child), which a thief takes only once it has sat
	 * (steal.c), so the sleeper woken for it found nothing to take. As
	 * for a wake (park.c) and as Tokio's LIFO slot, the monitor watches
	 * instead, and rescues it if the spawner keeps its worker. */
	if (self && self->current && !pushed)
		weft__monitor_arm(&rt->monitor);
	else
		weft__notify_work(rt); /* spawned to run in parallel */
	/* Backpressure: a task spawning faster than the workers run tasks
	 * would pile up an unbounded backlog, a cold struct per task. Once
	 * its worker's deque is full it yields, so the tasks ahead of it run
	 * first, on a warm cache. Only a spawn that pushed can have filled
	 * it: one into an empty run-next slot (a chain) does not look. */
	if (pushed && weft__deque_full(&self->deque))
		weft__worker_yield(self);
	return 0;
}

/* ---- finishing and joining ---------------------------------------------- */

void weft__task_finished(struct weft_worker *w, struct weft_task *t)
{
	struct weft_runtime *rt = atomic_load(&weft__rt);
	/* No handle was made, nobody can ever join: no joiner to look for. */
	if (t->handle_made) {
		weft__spin_lock(&t->join_lock);
		t->join_state |= JOIN_DONE;
		struct weft__waiter *j = t->joiner;
		t->joiner = NULL;
		if (j)
			weft__waiter_notify(j, 0);
		weft__spin_unlock(&t->join_lock);
	}
	/* release: pairs with the sweep's seq_cst and dump's acquire loads;
	 * a reader that sees false only skips t, reading nothing of it. */
	atomic_store_explicit(&t->alive, false, memory_order_release);
	/* Either drain() sees this count, or we see DRAINING (the seq_cst RMW
	 * orders the two) and check under its mutex. */
	atomic_fetch_add(&w->tasks_finished, 1);
	if (atomic_load(&rt->state) != RT_RUNNING) {
		pthread_mutex_lock(&rt->mu);
		if (weft__live_tasks(rt) == 0) {
			rt->all_done = true;
			pthread_cond_broadcast(&rt->cv);
		}
		pthread_mutex_unlock(&rt->mu);
	}
	/* acq_rel: as in task_unref, the usual reference count. */
	if (atomic_fetch_sub_explicit(&t->refs, 1, memory_order_acq_rel) == 1)
		task_recycle(t, w->task_cache);
}

static void join_unlock(void *t)
{
	weft__spin_unlock(&((struct weft_task *)t)->join_lock);
}

static void join_abort(struct weft__waiter *w, int reason)
{
	struct weft_task *t = w->data;
	weft__spin_lock(&t->join_lock);
	if (t->joiner == w) {
		t->joiner = NULL;
		t->join_state &= ~(unsigned)JOIN_CLAIMED;
		weft__waiter_notify(w, reason);
	} else {
		weft__waiter_settle(w, reason); /* seen before linking */
	}
	weft__spin_unlock(&t->join_lock);
}

/* Takes the result of a finished task. Under join_lock. */
static int take_result(struct weft_task *t, void **result)
{
	if (result)
		*result = t->result;
	return t->error;
}

/* Takes the result of a join that won it, marking the handle consumed
 * before the joiner returns. The finisher may still hold its reference
 * (and so the handle's generation) a moment longer; without the mark a
 * second join in that moment would find the claim and say -EINVAL where
 * it says -ESRCH once the task is recycled. */
static int take_result_marked(struct weft_task *t, void **result)
{
	weft__spin_lock(&t->join_lock);
	t->join_state |= JOIN_TAKEN;
	weft__spin_unlock(&t->join_lock);
	return take_result(t, result);
}

/* Whether t's handles are consumed (join_lock held): it was joined, or it
 * ended detached. Another reference (the finisher's, a moment after it
 * woke the joiner, or weft_dump's) may keep t's struct, and so the
 * handles' generation, a while longer: by the generation alone they
 * would still be live. */
static bool handles_consumed(const struct weft_task *t)
{
	return (t->join_state & JOIN_TAKEN) ||
	       (t->join_state & (JOIN_DETACHED | JOIN_DONE)) ==
		       (JOIN_DETACHED | JOIN_DONE);
}

/* The error of a join, detach or join case on a live handle whose task
 * is t (join_lock held): -ESRCH once consumed, -EINVAL if detached or
 * claimed by another than the caller (held: JOIN_CLAIMED if the claim is
 * the caller's, weft_run's of main, else 0), else 0. */
static int join_refusal(const struct weft_task *t, unsigned held)
{
	if (handles_consumed(t))
		return -ESRCH;
	if (t->join_state & ~held & (JOIN_DETACHED | JOIN_CLAIMED))
		return -EINVAL;
	return 0;
}

/* Under t->join_lock: whether the join ends without a wait, as refused
 * (-ESRCH, or join_refusal's, held as there) or with t done, its result
 * taken into *r (*took: the caller drops t's reference once the lock is
 * released). */
static bool join_ends_now(struct weft_task *t, weft_task_t h, unsigned held,
			  void **result, int *r, bool *took)
{
	*took = false;
	if (!gen_matches(t, h.gen))
		*r = -ESRCH;
	else if (!(*r = join_refusal(t, held)) && !(t->join_state & JOIN_DONE))
		return false;
	else if (!*r) {
		t->join_state |= JOIN_CLAIMED | JOIN_TAKEN;
		*r = take_result(t, result);
		*took = true;
	}
	return true;
}

/* A task already done is joined without a wait, so that a cancelled
 * joiner, or one past its deadline, still gets it (a call that can
 * complete at once does: weft/sync.h), and no timer is armed for it.
 * held: as for join_refusal. */
static int join(weft_task_t h, unsigned held, void **result)
{
	struct weft_task *t = lookup(h);
	if (!t)
		return -ESRCH;
	if (t == weft__task_current())
		return -EDEADLK;
	bool took, now;
	int r;
	weft__spin_lock(&t->join_lock);
	now = join_ends_now(t, h, held, result, &r, &took);
	weft__spin_unlock(&t->join_lock);
	if (now)
		goto out;
	struct weft__waiter w;
	weft__waiter_init_as(&w, join_abort, WEFT__WAIT_JOIN, t);
	w.data = t;
	if ((r = weft__wait_begin(&w)))
		return r;
	/* It may have ended meanwhile: done wins over an abort. */
	weft__spin_lock(&t->join_lock);
	if ((now = join_ends_now(t, h, held, result, &r, &took)) ||
	    (r = weft__waiter_state(&w)) != WEFT__WAITING) {
		weft__spin_unlock(&t->join_lock);
		weft__wait_end(&w);
		goto out;
	}
	t->join_state |= JOIN_CLAIMED;
	t->joiner = &w;
	r = weft__wait_park(&w, join_unlock, t);
	if (r)
		return r; /* aborted: the abort unclaimed it, the handle lives */
	/* The finisher notified us after setting DONE: the result is ours. */
	r = take_result_marked(t, result);
	took = true;
out:
	if (took)
		task_unref(t);
	return r;
}

int weft_join(weft_task_t h, void **result)
{
	return join(h, 0, result);
}

int weft__join_main(weft_task_t h, void **result)
{
	return join(h, JOIN_CLAIMED, result);
}

int weft_detach(weft_task_t h)
{
	struct weft_task *t = lookup(h);
	if (!t)
		return -ESRCH;
	int r = 0;
	weft__spin_lock(&t->join_lock);
	if (!gen_matches(t, h.gen))
		r = -ESRCH;
	else if (!(r = join_refusal(t, 0)))
		t->join_state |= JOIN_DETACHED;
	weft__spin_unlock(&t->join_lock);
	if (!r)
		task_unref(t);
	return r;
}

/* ---- cancellation ------------------------------------------------------- */

/* handles_consumed, taking join_lock: t->wait_lock may be held (the
 * lock order allows it). */
static bool consumed(struct weft_task *t)
{
	weft__spin_lock(&t->join_lock);
	bool r = handles_consumed(t);
	weft__spin_unlock(&t->join_lock);
	return r;
}

/* by_handle: a user's handle, stale once consumed; else shutdown's sweep,
 * which cancels whatever t is now. */
static int cancel_gen(struct weft_task *t, uint64_t gen, bool by_handle)
{
	weft__wait_lock(t);
	if (!gen_matches(t, gen) || (by_handle && consumed(t))) {
		weft__spin_unlock(&t->wait_lock);
		return -ESRCH;
	}
	atomic_store(&t->cancelled, true);
	struct weft__waiter *w = t->waiting;
	if (w && w->abort && !t->shield)
		w->abort(w, -ECANCELED);
	weft__spin_unlock(&t->wait_lock);
	return 0;
}

void weft__task_cancel(struct weft_task *t)
{
	cancel_gen(t, atomic_load(&t->gen), false);
}

int weft_cancel(weft_task_t h)
{
	struct weft_task *t = lookup(h);
	return t ? cancel_gen(t, h.gen, true) : -ESRCH;
}

void (*weft__is_cancelled_after_lookup)(void);

/* The task itself reads its own flag: its run holds a reference, so its
 * handle cannot go stale meanwhile. Another's may, and its struct be
 * respawned, between the lookup and the read: the flag would then be the
 * next task's (spawn clears it). So the handle is checked again under
 * wait_lock, where the generation changes (task_stale) and cancel sets
 * the flag: while it is held and the generation matches, the struct
 * cannot be recycled, nor the flag be another task's. A consumed handle
 * is stale even so (consumed). */
int weft_is_cancelled(weft_task_t h)
{
	struct weft_task *t = lookup(h);
	if (!t)
		return -ESRCH;
	if (__builtin_expect(weft__is_cancelled_after_lookup != NULL, 0))
		weft__is_cancelled_after_lookup();
	if (t == weft__task_current())
		return (int)atomic_load(&t->cancelled);
	weft__wait_lock(t);
	int r = gen_matches(t, h.gen) && !consumed(t)
			? (int)atomic_load(&t->cancelled)
			: -ESRCH;
	weft__spin_unlock(&t->wait_lock);
	return r;
}

/* A shield hides the cancellation from the waits inside it (cancel reads
 * t->shield under wait_lock, so a wait begun inside is never aborted) and
 * the outer deadlines, by clearing the task's deadline until it is left.
 *
 * A shield entered a second time before it is left would be corrupted: by
 * its own task it would link to itself and never be left; by another, its
 * scope and outer shield would be that task's, and the first task's leave
 * would fail, or graft that chain onto its own. So while entered, the
 * word the struct calls outer_deadline holds a record of its task,
 * shield_check(s, t), and leave clears it. The deadline in force around
 * the shield need not be kept: t->deadline changes only as scopes and
 * shields are entered and left, so it is the one the innermost of them
 * sets (deadline_set).
 *
 * The struct comes uninitialised, so a record is trusted only once it
 * names a task struct of the pool's slabs (task_in_pool), whose chain of
 * shields, read under its wait_lock, holds s. The key makes zero, small
 * numbers and pointers decode to no task's address (misaligned, or above
 * user space), so the slabs are walked only for a record (or rare
 * garbage). A stale one (its task, or frame, ended inside s, against the
 * rules) names a task whose chain no longer holds s, and is overwritten.
 */
#define SHIELD_KEY ((uintptr_t)0x9e3779b97f4a7c15ULL) /* odd: 0 is no task */

static int64_t shield_check(const struct weft_shield *s,
			    const struct weft_task *t)
{
	return (int64_t)(((uintptr_t)s ^ SHIELD_KEY) - (uintptr_t)t);
}

/* Whether p is the address of one of the pool's task structs. */
static bool task_in_pool(uintptr_t p)
{
	for (const struct task_slab *sl = pool_slabs(); sl; sl = sl->next) {
		uintptr_t base = (uintptr_t)sl->tasks;
		if (p >= base && p < base + sizeof(sl->tasks))
			return (p - base) % sizeof(struct weft_task) == 0;
	}
	return false;
}

/* Whether s is one of t's shields. The task itself, or under its
 * wait_lock (the shields it has not left live on). */
static bool shield_open(const struct weft_task *t, const struct weft_shield *s)
{
	for (const struct weft_shield *o = t->shield; o; o = o->outer)
		if (o == s)
			return true;
	return false;
}

/* Whether a task (the caller t, or another) is inside s. */
static bool shield_taken(struct weft_task *t, const struct weft_shield *s)
{
	/* Possibly uninitialised: memcheck is told it is defined, and the
	 * load is atomic so that no compiler folds it as a read of
	 * uninitialised memory. Relaxed: two tasks entering one shield at
	 * once are a race in the caller's program, which this only narrows. */
	WEFT_MARK_FILLED(&s->outer_deadline, sizeof(s->outer_deadline));
	int64_t rec = __atomic_load_n(&s->outer_deadline, __ATOMIC_RELAXED);
	uintptr_t o = ((uintptr_t)s ^ SHIELD_KEY) - (uintptr_t)rec;

	if (shield_open(t, s)) /* only the task sets its own: no lock */
		return true;
	if (o == (uintptr_t)t || o % _Alignof(struct weft_task) || o >> 48 ||
	    !task_in_pool(o))
		return false;
	struct weft_task *other = (struct weft_task *)o;
	weft__wait_lock(other);
	bool open = shield_open(other, s);
	weft__spin_unlock(&other->wait_lock);
	return open;
}

/* The deadline t's innermost scope or shield sets: none inside a shield
 * (entered in the scope now innermost), else the scope's, else none. */
static int64_t deadline_set(const struct weft_task *t)
{
	const struct weft_deadline *d = t->scope;

	if (!d || (t->shield && t->shield->scope == d))
		return WEFT_NO_DEADLINE;
	return d->at < d->outer ? d->at : d->outer;
}

int weft_shield_enter(struct weft_shield *s)
{
	struct weft_task *t = weft__task_current();
	if (!t || !s)
		return t ? -EINVAL : -EPERM;
	if (shield_taken(t, s))
		return -EINVAL;
	s->scope = t->scope;
	s->outer_deadline = shield_check(s, t);
	weft__wait_lock(t);
	s->outer = t->shield;
	t->shield = s;
	weft__spin_unlock(&t->wait_lock);
	t->deadline = WEFT_NO_DEADLINE;
	return 0;
}

int weft_shield_leave(struct weft_shield *s)
{
	struct weft_task *t = weft__task_current();
	if (!t)
		return -EPERM;
	/* Innermost first; another task's shield is never t->shield. */
	if (!s || t->shield != s || t->scope != s->scope)
		return -EINVAL;
	weft__wait_lock(t);
	t->shield = s->outer;
	weft__spin_unlock(&t->wait_lock);
	s->outer_deadline = 0; /* no task's record: decodes misaligned */
	t->deadline = deadline_set(t);
	return 0;
}

/* ---- the current task --------------------------------------------------- */

weft_task_t weft_current(void)
{
	struct weft_task *t = weft__task_current();
	if (!t)
		return (weft_task_t){ NULL, 0 };
	t->handle_made = true; /* its recycling must stale this handle */
	return (weft_task_t){ t, handle_gen(t) };
}

const char *weft_task_name(weft_task_t h)
{
	struct weft_task *t = lookup(h);
	/* A consumed handle is stale (consumed), though its task's struct
	 * may not be recycled yet. */
	return t && !consumed(t) ? t->name : NULL;
}

int weft_yield(void)
{
	struct weft_worker *w = weft__self();
	struct weft_task *t = w ? w->current : NULL;
	if (!t)
		return -EPERM;
	if (weft__cancel_in_force(t))
		return -ECANCELED;
	weft__worker_yield(w);
	return 0;
}

int weft_worker_id(void)
{
	struct weft_worker *w = weft__self();
	return w && w->current ? w->id : -1;
}

int weft_workers(void)
{
	/* Between enter and leave, as a spawn from a plain thread: weft_run
	 * frees the runtime only after it unpublished it and waited for
	 * them (weft__task_foreign_quiesce). */
	int phase = weft__foreign_enter();
	struct weft_runtime *rt = atomic_load(&weft__rt);
	int n = rt ? rt->nworkers : 0;
	weft__foreign_leave(phase);
	return n;
}

/* ---- the join case of a select (sync/select.h) -------------------------- */

bool weft__join_case_locked(weft_task_t h, struct weft__waiter *w, int *status)
{
	struct weft_task *t = h.task;
	*status = 0;
	if (!lookup(h)) /* as weft_join: another run's, or recycled */
		*status = -ESRCH;
	else
		*status = join_refusal(t, 0);
	if (*status || (t->join_state & JOIN_DONE)) {
		if (!*status)
			t->join_state |= JOIN_CLAIMED;
		return true;
	}
	if (w) {
		w->data = t;
		t->join_state |= JOIN_CLAIMED;
		t->joiner = w;
	}
	return false;
}

bool weft__join_case_self(weft_task_t h)
{
	/* As weft_join: a stale handle is -ESRCH even if its struct now
	 * holds the caller; only a live handle of the caller is -EDEADLK. */
	return h.task == weft__task_current() && lookup(h);
}

void weft__join_case_unlink(struct weft_task *t, struct weft__waiter *w)
{
	/* Still linked, or dropped by a finisher that lost the select: the
	 * claim was this case's either way. */
	if (t->joiner == w)
		t->joiner = NULL;
	t->join_state &= ~(unsigned)JOIN_CLAIMED;
}

int weft__join_case_take(struct weft_task *t, void **result)
{
	int r = take_result_marked(t, result);
	task_unref(t);
	return r;
}
