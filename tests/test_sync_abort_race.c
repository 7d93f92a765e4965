/* An abort that lands as a release settles its waiter. A cancellation or a
 * deadline ends a wait through the waiter's abort, which a release may
 * beat; a waiter that saw the release may then free the primitive at once
 * (weft/sync.h), so the abort must not reach the primitive afterwards.
 * Each case stalls the abort of waiter B, cancelled from a plain thread,
 * at a stage of the abort hook of runtime/debug.h (WEFT_DEBUG builds
 * only), releases meanwhile, lets waiter A see the release and overwrite
 * the primitive as a reuse would, and checks that the abort left it alone.
 *
 * Stalled at WEFT__ABORT_START the abort has not looked at B yet; stalled
 * at WEFT__ABORT_LOCKING it saw B waiting and takes the lock next. Either
 * way the release settles B too (B returns 0). A release that wakes
 * several waiters (event, future) must wait the abort out before
 * A can see it; one that hands over (lock, semaphore, queue) goes to B,
 * the older waiter, which passes it on to A only once it has returned,
 * after its own abort. A last case races the same without the hook, for
 * ASan to catch an abort that reaches a freed event. */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>
#include "test_util.h"
#include "sync_test_util.h"
#include "runtime/debug.h"

#define REUSED 0xa5
#define WORKERS 2
/* How long the canceller may take once it was let go: an abort spinning
 * on a reused lock word (0xa5a5a5a5 looks held) never returns. Generous
 * under the sanitizers: only a failing run waits it out. */
#define CANCEL_BOUND_NS ((WEFT_TEST_SCALE >= 100 ? 2 : 10) * WEFT_SEC)
/* How long the hook stalls the abort once the release has settled B: until
 * A has reused the primitive, which it cannot do before the abort is over
 * unless the release fails to wait for it, so the stall only gives a
 * release that does not wait time to let A in. Before the settle the hook
 * waits for the release however late it comes, up to CANCEL_BOUND_NS:
 * with a fixed stall, a main task the OS kept off its CPU for longer let
 * B's abort win, and B said -ECANCELED. */
#define STALL_NS (100 * WEFT_MSEC)

/* What differs between the primitives. */
struct prim {
	const char *name;
	size_t size;
	void (*init)(void *obj);
	/* The list A and B wait on; its lock word is the one an abort
	 * spins on. */
	struct weft_waitq *(*queue)(void *obj);
	/* The releaser's part before A and B wait (a lock's owning). */
	void (*before)(void *obj);
	/* A and B's blocking call: 0 once it saw the release. */
	int (*wait)(void *obj);
	/* The main task's release: negative on failure. */
	int (*release)(void *obj);
};

/* One case, shared with the hook and the tasks. */
static struct race {
	const struct prim *prim;
	int stage;
	void *obj;
	struct weft_waitq *q;
	weft_task_t b;
	int stalled, reused, cancelled;
	int a_result, b_result;
	const char *failure; /* the first, for the Check thread */
} race;

static void record_failure(const char *why)
{
	if (!race.failure)
		race.failure = why;
}

static void stall_abort(const struct weft__waiter *w, int stage)
{
	if (stage != race.stage || w->queue != race.q || w->task != race.b.task)
		return;
	/* release: the abort got here, to the driver's acquire. */
	__atomic_store_n(&race.stalled, 1, __ATOMIC_RELEASE);
	int64_t until = weft_now() + CANCEL_BOUND_NS;
	bool settled = false;
	/* acquire (reused): pairs with A's release, so the reuse happens
	 * before whatever the abort does next. The state is written by the
	 * release under the queue's lock, while the abort holds B's wait
	 * lock only. */
	while (!__atomic_load_n(&race.reused, __ATOMIC_ACQUIRE) &&
	       weft_now() < until) {
		if (!settled &&
		    atomic_load_explicit(&w->state, memory_order_acquire) !=
			    WEFT__WAITING) {
			settled = true;
			until = weft_now() + STALL_NS;
		}
		usleep(1000);
	}
}

static void *wait_as_b(void *arg)
{
	(void)arg;
	return (void *)(intptr_t)race.prim->wait(race.obj);
}

/* Once it saw the release, A overwrites the primitive, as its free and
 * the next malloc would. */
static void *wait_as_a(void *arg)
{
	(void)arg;
	int r = race.prim->wait(race.obj);
	if (!r) {
		memset(race.obj, REUSED, race.prim->size);
		/* release: the reuse, to the hook's and the driver's
		 * acquires. */
		__atomic_store_n(&race.reused, 1, __ATOMIC_RELEASE);
	}
	return (void *)(intptr_t)r;
}

static void *cancel_b(void *arg)
{
	(void)arg;
	ck_assert_int_eq(weft_cancel(race.b), 0);
	/* release: the abort is over, to the driver's acquire. */
	__atomic_store_n(&race.cancelled, 1, __ATOMIC_RELEASE);
	return NULL;
}

/* Whether *flag was set within ns. */
static bool set_within(int *flag, int64_t ns)
{
	int64_t until = weft_now() + ns;
	/* acquire: pairs with the setter's release. */
	while (!__atomic_load_n(flag, __ATOMIC_ACQUIRE))
		if (weft_now() > until || weft_sleep(100 * WEFT_USEC))
			return false;
	return true;
}

static int join_result(weft_task_t t)
{
	void *res;
	ck_assert_int_eq(weft_join(t, &res), 0);
	return (int)(intptr_t)res;
}

static void check_untouched(void)
{
	unsigned char *b = race.obj;
	for (size_t i = 0; i < race.prim->size; i++)
		if (b[i] != REUSED)
			record_failure(
				"the primitive was written after the release "
				"was seen");
}

/* B (the older) and A wait; B's abort, stalled, meets the release. */
static void *drive(void *arg)
{
	(void)arg;
	const struct prim *p = race.prim;
	weft_task_t a;
	pthread_t c;
	if (p->before)
		p->before(race.obj);
	ck_assert_int_eq(weft_spawn(&race.b, wait_as_b, NULL), 0);
	wait_waiters(race.q, 1);
	ck_assert_int_eq(weft_spawn(&a, wait_as_a, NULL), 0);
	wait_waiters(race.q, 2);
	/* release: publishes race to the hook's caller's acquire. */
	__atomic_store_n(&weft__debug_abort_hook, stall_abort,
			 __ATOMIC_RELEASE);
	ck_assert_int_eq(pthread_create(&c, NULL, cancel_b, NULL), 0);
	if (!set_within(&race.stalled, CANCEL_BOUND_NS)) {
		record_failure("B's abort never reached the hook at its stage");
		/* Without B's stall the round proves nothing; end it. */
		ck_assert_int_eq(weft_cancel(a), 0);
	} else if (p->release(race.obj) < 0)
		record_failure("the release failed");
	if (!set_within(&race.cancelled, CANCEL_BOUND_NS)) {
		/* Let the abort spinning on the reused lock word finish;
		 * release: the reuse before, to its acquire of the lock. */
		__atomic_store_n(&race.q->lock, 0, __ATOMIC_RELEASE);
		record_failure(
			"the abort reached the primitive after the release was "
			"seen");
	}
	ck_assert_int_eq(pthread_join(c, NULL), 0);
	/* release: as the arming; the cancel is over, nobody calls it. */
	__atomic_store_n(&weft__debug_abort_hook, NULL, __ATOMIC_RELEASE);
	race.a_result = join_result(a);
	check_untouched();
	race.b_result = join_result(race.b);
	return NULL;
}

static void abort_meets_release(const struct prim *p, int stage)
{
	void *obj = malloc(p->size);
	ck_assert_ptr_nonnull(obj);
	p->init(obj);
	race = (struct race){
		.prim = p, .stage = stage, .obj = obj, .q = p->queue(obj)
	};
	weft_test_run(drive, NULL, WORKERS);
	free(obj);
	ck_assert_msg(!race.failure, "%s: %s", p->name, race.failure);
	ck_assert_msg(race.a_result == 0, "%s: A returned %d", p->name,
		      race.a_result);
	/* Settled by the release before its abort could. */
	ck_assert_msg(race.b_result == 0, "%s: B returned %d", p->name,
		      race.b_result);
}

/* ---- the primitives ----------------------------------------------------- */

static void event_init(void *e)
{
	ck_assert_int_eq(weft_event_init(e), 0);
}

static struct weft_waitq *event_queue(void *e)
{
	return &((struct weft_event *)e)->wq;
}

static int event_wait(void *e)
{
	return weft_event_wait(e);
}

static int event_set(void *e)
{
	return weft_event_set(e);
}

static const struct prim event = { "event",    sizeof(struct weft_event),
				   event_init, event_queue,
				   NULL,       event_wait,
				   event_set };

static void future_init(void *f)
{
	ck_assert_int_eq(weft_future_init(f), 0);
}

static struct weft_waitq *future_queue(void *f)
{
	return &((struct weft_future *)f)->wq;
}

static int future_wait(void *f)
{
	return weft_future_wait(f, NULL);
}

static int future_set(void *f)
{
	return weft_future_set_result(f, f);
}

static const struct prim future = { "future",    sizeof(struct weft_future),
				    future_init, future_queue,
				    NULL,        future_wait,
				    future_set };

/* No barrier here: a released caller still counts itself out of the
 * round in the barrier after its wait, so it may be dropped only once
 * every caller has returned (weft/sync.h), and the abort may touch it
 * until then. */

static void lock_init(void *l)
{
	ck_assert_int_eq(weft_lock_init(l), 0);
}

static struct weft_waitq *lock_queue(void *l)
{
	return &((struct weft_lock *)l)->wq;
}

static void lock_own(void *l)
{
	ck_assert_int_eq(weft_lock_acquire(l), 0);
}

/* Takes the lock handed over, and lets it go before the free. */
static int lock_wait(void *l)
{
	int r = weft_lock_acquire(l);
	return r ? r : weft_lock_release(l);
}

static int lock_release(void *l)
{
	return weft_lock_release(l);
}

static const struct prim lock = { "lock",      sizeof(struct weft_lock),
				  lock_init,   lock_queue,
				  lock_own,    lock_wait,
				  lock_release };

static void sem_init(void *s)
{
	ck_assert_int_eq(weft_sem_init(s, 0), 0);
}

static struct weft_waitq *sem_queue(void *s)
{
	return &((struct weft_sem *)s)->wq;
}

/* Takes the permit handed over, and passes it on. */
static int sem_wait(void *s)
{
	int r = weft_sem_acquire(s);
	return r ? r : weft_sem_release(s);
}

static int sem_release(void *s)
{
	return weft_sem_release(s);
}

static const struct prim sem = { "sem",      sizeof(struct weft_sem),
				 sem_init,   sem_queue,
				 NULL,       sem_wait,
				 sem_release };

/* The caller's storage: overwriting the queue leaks nothing. */
static int queue_slot;

static void queue_init(void *q)
{
	struct weft_queue_opts o = { .elem_size = sizeof(int),
				     .capacity = 1,
				     .storage = &queue_slot };
	ck_assert_int_eq(weft_queue_init_opts(q, &o), 0);
}

static struct weft_waitq *queue_getters(void *q)
{
	return &((struct weft_queue *)q)->getters;
}

/* Takes the item handed over, and passes it on. */
static int queue_get(void *q)
{
	int item;
	int r = weft_queue_get(q, &item);
	return r ? r : weft_queue_put(q, &item);
}

static int queue_put(void *q)
{
	int item = 1;
	return weft_queue_put(q, &item);
}

static const struct prim queue = { "queue",    sizeof(struct weft_queue),
				   queue_init, queue_getters,
				   NULL,       queue_get,
				   queue_put };

/* ---- an abort stalled, at its start or before it locks, meets a release -- */

static const struct prim *const prims[] = { &event, &future, &lock, &sem,
					    &queue };
#define NPRIMS (int)(sizeof(prims) / sizeof(prims[0]))

/* _i: the primitive, and the stage in its low bit. */
START_TEST(abort_meets_release_at)
{
	abort_meets_release(prims[_i / 2],
			    _i % 2 ? WEFT__ABORT_LOCKING : WEFT__ABORT_START);
}
END_TEST

/* ---- the same race left to chance, the event freed for real ------------- */

struct chance {
	struct weft_event *e;
	weft_task_t doomed;
	int go;
	int spins; /* the canceller's delay after go: moves the window */
};

/* Never cancelled, so it sees the event set, and frees it at once. */
static void *wait_then_free(void *e)
{
	int r = weft_event_wait(e);
	if (!r)
		free(e);
	return (void *)(intptr_t)r;
}

static void *wait_doomed(void *e)
{
	return (void *)(intptr_t)weft_event_wait(e);
}

static void *cancel_on_go(void *arg)
{
	struct chance *ch = arg;
	/* acquire: pairs with the main task's release of go. */
	while (!__atomic_load_n(&ch->go, __ATOMIC_ACQUIRE))
		weft_yield();
	for (volatile int i = 0; i < ch->spins; i++)
		weft__cpu_relax();
	ck_assert_int_eq(weft_cancel(ch->doomed), 0);
	return NULL;
}

static void chance_round(int spins)
{
	struct chance ch = { .e = malloc(sizeof(struct weft_event)),
			     .spins = spins };
	weft_task_t freer, canceller;
	ck_assert_ptr_nonnull(ch.e);
	ck_assert_int_eq(weft_event_init(ch.e), 0);
	ck_assert_int_eq(weft_spawn(&freer, wait_then_free, ch.e), 0);
	ck_assert_int_eq(weft_spawn(&ch.doomed, wait_doomed, ch.e), 0);
	wait_waiters(&ch.e->wq, 2);
	ck_assert_int_eq(weft_spawn(&canceller, cancel_on_go, &ch), 0);
	weft_yield(); /* gives the canceller a worker to wait on */
	/* release: ch, to the canceller's acquire. */
	__atomic_store_n(&ch.go, 1, __ATOMIC_RELEASE);
	ck_assert_int_ge(weft_event_set(ch.e), 1);
	ck_assert_int_eq(join_result(freer), 0);
	ck_assert_int_eq(join_result(canceller), 0);
	int r = join_result(ch.doomed);
	ck_assert(r == 0 || r == -ECANCELED);
}

static void *chance_rounds(void *arg)
{
	(void)arg;
	long rounds = weft_test_scaled(2000, 50);
	for (long i = 0; i < rounds; i++)
		chance_round((int)(i % 64) * 16);
	return NULL;
}

START_TEST(event_freed_as_cancel_lands)
{
	weft_test_run(chance_rounds, NULL, WORKERS);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("sync_abort_race");
	TCase *tc = tcase_create("abort_race");
	tcase_set_timeout(tc, 60);
	tcase_add_loop_test(tc, abort_meets_release_at, 0, 2 * NPRIMS);
	suite_add_tcase(s, tc);
	TCase *chance = tcase_create("chance");
	tcase_set_timeout(chance, 60);
	tcase_add_test(chance, event_freed_as_cancel_lands);
	suite_add_tcase(s, chance);
	return weft_test_main(s);
}
