/* One weft_select over a case of every waiting kind at once (a queue get,
 * a future, a join, an event, a semaphore and a timeout), from a task under
 * a random deadline and cancellation or from a plain thread, while a task
 * per primitive notifies it at a random time: a put, a set_result, the
 * joined task's return, a set, a release. Whatever wins, exactly one case
 * completed, or none did on -ECANCELED / -ETIMEDOUT:
 *  - the item, the permit and the joined task's result were taken by the
 *    select exactly when their case won: otherwise the queue still holds
 *    the item, the semaphore the permit, and the task can still be joined;
 *  - only the winner wrote its output (item, future or join result), and
 *    its status is 0;
 *  - a timeout case or a deadline never fires early, a cancellation or a
 *    deadline is reported only when the round had one;
 *  - every losing case withdrew: no waiter stays on any primitive.
 * The rounds come from a fixed seed; a failure names its round. The
 * timing of a round is not reproducible, so a failing round may need a
 * few runs to fail again. */
#include <errno.h>
#include <pthread.h>
#include "sync_test_util.h"
#include "sync/select.h"
#include "sync/waitq.h"

#define SEED 0x1234567u
/* The window every notification, timeout and deadline falls in: a few
 * wake-ups wide, so that they race each other and the select's waiting. */
#define WINDOW_US 120

/* The cases, in the select's order; CANCEL is the canceller's slot. */
enum { GET, FUTURE, JOIN, EVENT, SEM, TIMEOUT, NCASES, CANCEL = NCASES };

#define ITEM 99u
#define FUTURE_RESULT ((void *)0x55)
#define JOIN_RESULT ((void *)0x77)
#define NONE (-1) /* no deadline, no cancellation */

struct round;

/* A task that notifies one case (or cancels the selector) at its time. */
struct notifier {
	struct round *r;
	int kind;
	weft_task_t task;
};

struct round {
	long n;
	struct weft_queue q;
	struct weft_future f;
	struct weft_event e;
	struct weft_sem sem;
	/* The plan: when each notifier fires (TIMEOUT: the timeout case's
	 * time), the selector's deadline, whether it runs on a plain
	 * thread. CANCEL and the deadline may be NONE. */
	int64_t at[NCASES + 1];
	int64_t deadline;
	bool plain;
	struct notifier notifiers[NCASES + 1];
	weft_task_t selector;
	/* The outcome. */
	int idx;    /* what weft_select returned */
	int status; /* the winner's status */
	int64_t elapsed;
	uint64_t item;
	void *future_result, *join_result;
};

/* Every check names the round and its outcome. */
#define round_assert(r, cond, what)                                            \
	ck_assert_msg(cond, "seed %#x round %ld, select returned %d: %s",      \
		      SEED, (r)->n, (r)->idx, what)

static void *notify(void *arg)
{
	struct notifier *n = arg;
	struct round *r = n->r;
	uint64_t item = ITEM;

	weft_sleep(r->at[n->kind]);
	switch (n->kind) {
	case GET:
		ck_assert_int_eq(weft_queue_put(&r->q, &item), 0);
		break;
	case FUTURE:
		ck_assert_int_eq(weft_future_set_result(&r->f, FUTURE_RESULT),
				 0);
		break;
	case JOIN: /* the joined task is this one */
		return JOIN_RESULT;
	case EVENT:
		ck_assert_int_ge(weft_event_set(&r->e), 0);
		break;
	case SEM:
		ck_assert_int_eq(weft_sem_release(&r->sem), 0);
		break;
	case CANCEL:
		weft_cancel(r->selector);
		break;
	}
	return NULL;
}

static void spawn_notifier(struct round *r, int kind)
{
	struct notifier *n = &r->notifiers[kind];

	n->r = r;
	n->kind = kind;
	ck_assert_int_eq(weft_spawn(&n->task, notify, n), 0);
}

/* The select, from the selector task or thread. The deadline is taken as
 * an absolute time from before the call, so that the elapsed time checks
 * it and the timeout case alike. */
static void *select_all(void *arg)
{
	struct round *r = arg;
	struct weft_select_case c[NCASES] = {
		[GET] = WEFT_CASE_GET(&r->q, &r->item),
		[FUTURE] = WEFT_CASE_FUTURE(&r->f, &r->future_result),
		[JOIN] = WEFT_CASE_JOIN(r->notifiers[JOIN].task,
					&r->join_result),
		[EVENT] = WEFT_CASE_EVENT(&r->e),
		[SEM] = WEFT_CASE_SEM(&r->sem),
		[TIMEOUT] = WEFT_CASE_TIMEOUT(r->at[TIMEOUT]),
	};
	struct weft_deadline d;
	int64_t t0 = weft_now();

	if (r->deadline != NONE)
		ck_assert_int_eq(weft_deadline_enter_at(&d, t0 + r->deadline),
				 0);
	r->idx = weft_select(c, NCASES);
	r->elapsed = weft_now() - t0;
	if (r->deadline != NONE)
		ck_assert_int_ge(weft_deadline_leave(&d), 0);
	if (r->idx >= 0)
		r->status = c[r->idx].status;
	return NULL;
}

static int64_t random_time(uint64_t *rng)
{
	return (int64_t)(rnd(rng) % WINDOW_US) * WEFT_USEC;
}

/* Round n's plan, from its own stream of the seed. */
static void plan(struct round *r, long n)
{
	uint64_t rng = SEED ^ ((uint64_t)n + 1) * 0x9e3779b97f4a7c15ull;

	r->n = n;
	for (int k = 0; k < NCASES; k++)
		r->at[k] = random_time(&rng);
	r->deadline = rnd(&rng) % 2 ? random_time(&rng) : NONE;
	r->at[CANCEL] = rnd(&rng) % 3 == 0 ? random_time(&rng) : NONE;
	/* A plain thread has neither deadlines nor cancellation. */
	r->plain = rnd(&rng) % 5 == 0;
	if (r->plain)
		r->deadline = r->at[CANCEL] = NONE;
}

static void init_primitives(struct round *r)
{
	ck_assert_int_eq(weft_queue_init(&r->q, sizeof(uint64_t), 0), 0);
	ck_assert_int_eq(weft_future_init(&r->f), 0);
	ck_assert_int_eq(weft_event_init(&r->e), 0);
	ck_assert_int_eq(weft_sem_init(&r->sem, 0), 0);
}

/* The notifiers besides the joined task, which must start before the
 * select that joins it. */
static const int notified[] = { GET, FUTURE, EVENT, SEM };
#define NNOTIFIED (int)(sizeof(notified) / sizeof(notified[0]))

/* Runs the select against every notifier; returns once all are done. */
static void run(struct round *r)
{
	bool cancels = r->at[CANCEL] != NONE;
	pthread_t th;

	spawn_notifier(r, JOIN);
	if (r->plain)
		ck_assert_int_eq(pthread_create(&th, NULL, select_all, r), 0);
	else
		ck_assert_int_eq(weft_spawn(&r->selector, select_all, r), 0);
	for (int k = 0; k < NNOTIFIED; k++)
		spawn_notifier(r, notified[k]);
	if (cancels)
		spawn_notifier(r, CANCEL);
	/* The canceller before the selector, whose handle it uses. */
	if (cancels)
		ck_assert_int_eq(weft_join(r->notifiers[CANCEL].task, NULL), 0);
	if (r->plain)
		ck_assert_int_eq(pthread_join(th, NULL), 0);
	else
		ck_assert_int_eq(weft_join(r->selector, NULL), 0);
	for (int k = 0; k < NNOTIFIED; k++)
		ck_assert_int_eq(weft_join(r->notifiers[notified[k]].task,
					   NULL),
				 0);
}

/* How the select ended, against the plan: a failure only by the round's
 * cancellation or deadline, a win with status 0, nothing early. */
static void check_ending(struct round *r)
{
	if (r->idx == -ECANCELED) {
		round_assert(r, r->at[CANCEL] != NONE,
			     "cancelled without a canceller");
	} else if (r->idx == -ETIMEDOUT) {
		round_assert(r, r->deadline != NONE,
			     "timed out without a deadline");
		round_assert(r, r->elapsed >= r->deadline, "deadline early");
	} else {
		round_assert(r, r->idx >= 0 && r->idx < NCASES, "bad return");
		round_assert(r, r->status == 0, "the winner's status");
	}
	if (r->idx == TIMEOUT)
		round_assert(r, r->elapsed >= r->at[TIMEOUT], "timeout early");
}

/* Each notified primitive holds what it was given unless its case won. */
static void check_taken(struct round *r)
{
	uint64_t item;
	void *res = NULL;
	int got = weft_queue_try_get(&r->q, &item);
	int joined = weft_join(r->notifiers[JOIN].task, &res);
	int permit = weft_sem_try_acquire(&r->sem);

	if (r->idx == GET) {
		round_assert(r, got == -EAGAIN, "a got item still queued");
		round_assert(r, r->item == ITEM, "the got item");
	} else {
		round_assert(r, got == 0, "an item lost");
		round_assert(r, r->item == 0, "a losing get wrote its item");
	}
	if (r->idx == JOIN) {
		round_assert(r, joined == -ESRCH, "a joined task joinable");
		round_assert(r, r->join_result == JOIN_RESULT, "join result");
	} else {
		round_assert(r, joined == 0 && res == JOIN_RESULT,
			     "a losing join took the task");
		round_assert(r, !r->join_result, "a losing join wrote");
	}
	if (r->idx == FUTURE)
		round_assert(r, r->future_result == FUTURE_RESULT, "result");
	else
		round_assert(r, !r->future_result, "a losing future wrote");
	round_assert(r, permit == (r->idx == SEM ? -EAGAIN : 0),
		     r->idx == SEM ? "a got permit still there"
				   : "a permit lost");
}

/* Every case withdrew its waiter, the winner's included. */
static void check_withdrawn(struct round *r)
{
	round_assert(r, weft__waitq_empty(&r->q.getters), "queue waiter");
	round_assert(r, weft__waitq_empty(&r->f.wq), "future waiter");
	round_assert(r, weft__waitq_empty(&r->e.wq), "event waiter");
	round_assert(r, weft__waitq_empty(&r->sem.wq), "semaphore waiter");
	round_assert(r, r->sem.state == 0, "semaphore state");
}

static void *race_main(void *arg)
{
	long rounds = SCALED(30000), outcomes[NCASES + 1] = { 0 };

	for (long n = 0; n < rounds; n++) {
		/* On the heap, so that asan sees a primitive touched after
		 * its round. */
		struct round *r = calloc(1, sizeof(*r));

		ck_assert_ptr_nonnull(r);
		plan(r, n);
		init_primitives(r);
		run(r);
		check_ending(r);
		check_taken(r);
		check_withdrawn(r);
		outcomes[r->idx >= 0 ? r->idx : NCASES]++;
		ck_assert_int_eq(weft_queue_destroy(&r->q), 0);
		free(r);
	}
	fprintf(stderr,
		"select race: %ld rounds, won by get %ld, future %ld, "
		"join %ld, event %ld, sem %ld, timeout %ld; none %ld\n",
		rounds, outcomes[GET], outcomes[FUTURE], outcomes[JOIN],
		outcomes[EVENT], outcomes[SEM], outcomes[TIMEOUT],
		outcomes[NCASES]);
	return NULL;
}

START_TEST(every_case_races)
{
	weft_test_run(race_main, NULL, 4);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("select_race");
	TCase *tc = tcase_create("race");

	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, every_case_races);
	suite_add_tcase(s, tc);
	return weft_test_main(s);
}
