/*
 * The scheduler's searching and sleeping (runtime/worker.c, idle.h,
 * runq.h): what a worker does between tasks, checked where a wrong step
 * leaves a task waiting while a worker sleeps, or a worker awake with
 * nothing to do.
 *
 * Each round sets its scene up step by step and checks it held (which
 * worker ran what, who slept); a round whose scene a stray wake-up
 * spoiled proves nothing and is run again, as in test_monitor. Run under
 * both drivers (WEFT_IO=epoll).
 */
#include <pthread.h>
#include <stdatomic.h>
#include "test_util.h"
#include "runtime/runq.h"
#include "runtime/worker.h"

#define ROUNDS 10      /* at most, to see VALID_ROUNDS whose scene held */
#define VALID_ROUNDS 2 /* each of which fails before the fix */
#define KEEP_NS (3 * WEFT_SEC)
#define BOUND_NS (500 * WEFT_MSEC)

static struct weft_runtime *runtime(void)
{
	return atomic_load(&weft__rt);
}

/* Spins (keeping the worker, arming nothing) until ok() or 2 s. */
static bool spin_until(bool (*ok)(void))
{
	for (int64_t until = weft_now() + 2 * WEFT_SEC;
	     !ok() && weft_now() < until;)
		weft__cpu_relax();
	return ok();
}

static void *run_with(weft_fn fn, void *arg, int workers)
{
	/* Crowding off: a crowded runtime keeps queued work on purpose. */
	struct weft_config cfg = { .workers = workers,
				   .crowding = WEFT_CROWDING_OFF };
	void *res = NULL;
	ck_assert_int_eq(weft_run(fn, arg, &cfg, &res), 0);
	return res;
}

/* ---- a batch taken from the global queue -------------------------------- */

/*
 * A plain thread spawns L then S: both go to the global queue, while M and
 * T keep the two workers, so the spawns rouse nobody. M then waits, and
 * its worker's scheduler takes L and S from the global queue in one batch:
 * L to run, S to its deque. In the gap between the two (the test holds it
 * open: weft__runq_after_pop), T ends and its worker looks for work: the
 * global queue is empty and S not yet in the deque, so it sleeps. L then
 * keeps its worker until S ran, or KEEP_NS: S must run on the other worker
 * well before, as a task in a deque is offered to idle workers.
 */
struct batch_round {
	struct weft_event done; /* M waits on it; L sets it */
	atomic_bool t_release;  /* T may end */
	atomic_int t_worker, m_worker;
	atomic_bool pushed; /* the plain thread spawned L and S */
	atomic_bool armed;  /* the hook waits for the next batch of 2 */
	atomic_bool scene;  /* the hook saw T's worker fall asleep */
	atomic_int l_worker;
	weft_task_t l, s;
	_Atomic int64_t l_began, s_ran;
};

static struct batch_round *batch_cur;

static bool t_worker_asleep(void)
{
	/* The hook's worker, M's, is awake: the sleeper is T's. */
	return atomic_load(&runtime()->idle.sleeping) == 1;
}

static void batch_after_pop(struct weft_inject *q, int n)
{
	struct batch_round *k = batch_cur;
	bool armed = true;
	if (q != &runtime()->inject || n != 2 ||
	    !atomic_compare_exchange_strong(&k->armed, &armed, false))
		return;
	atomic_store(&k->t_release, true);
	atomic_store(&k->scene, spin_until(t_worker_asleep));
}

static void *batch_t(void *arg)
{
	struct batch_round *k = arg;
	atomic_store(&k->t_worker, weft_worker_id());
	while (!atomic_load(&k->t_release))
		weft__cpu_relax();
	return NULL;
}

static void *batch_l(void *arg)
{
	struct batch_round *k = arg;
	atomic_store(&k->l_worker, weft_worker_id());
	atomic_store(&k->l_began, weft_now());
	for (int64_t until = weft_now() + KEEP_NS;
	     !atomic_load(&k->s_ran) && weft_now() < until;)
		weft__cpu_relax();
	ck_assert_int_ge(weft_event_set(&k->done), 0);
	return NULL;
}

static void *batch_s(void *arg)
{
	struct batch_round *k = arg;
	atomic_store(&k->s_ran, weft_now());
	return NULL;
}

static void *batch_spawner(void *arg) /* a plain thread */
{
	struct batch_round *k = arg;
	ck_assert_int_eq(weft_spawn(&k->l, batch_l, k), 0);
	ck_assert_int_eq(weft_spawn(&k->s, batch_s, k), 0);
	atomic_store(&k->pushed, true);
	return NULL;
}

static bool t_elsewhere(void)
{
	int t = atomic_load(&batch_cur->t_worker);
	return t >= 0 && t != weft_worker_id();
}

static void *batch_main(void *arg)
{
	struct batch_round *k = arg;
	weft_task_t t;
	pthread_t th;
	atomic_store(&k->m_worker, weft_worker_id());
	ck_assert_int_eq(weft_spawn(&t, batch_t, k), 0);
	/* T to the other worker (the monitor rouses it for T, which sits
	 * in our run-next slot), then a quiet moment: the monitor disarms. */
	bool scene = spin_until(t_elsewhere);
	for (int64_t until = weft_now() + 50 * WEFT_MSEC; weft_now() < until;)
		weft__cpu_relax();
	atomic_store(&k->armed, true);
	ck_assert_int_eq(pthread_create(&th, NULL, batch_spawner, k), 0);
	while (!atomic_load(&k->pushed))
		weft__cpu_relax();
	ck_assert_int_eq(pthread_join(th, NULL), 0);
	/* Our wait sends the scheduler to the global queue. */
	ck_assert_int_eq(weft_event_wait(&k->done), 0);
	ck_assert_int_eq(weft_join(k->l, NULL), 0);
	ck_assert_int_eq(weft_join(k->s, NULL), 0);
	ck_assert_int_eq(weft_join(t, NULL), 0);
	scene = scene && atomic_load(&k->scene) &&
		atomic_load(&k->l_worker) == atomic_load(&k->m_worker);
	if (scene)
		ck_assert_msg(atomic_load(&k->s_ran) -
					      atomic_load(&k->l_began) <
				      BOUND_NS,
			      "the rest of a batch from the global queue "
			      "waited %lld ms behind a long task while a "
			      "worker slept",
			      (long long)(atomic_load(&k->s_ran) -
					  atomic_load(&k->l_began)) /
				      WEFT_MSEC);
	return (void *)(intptr_t)scene;
}

START_TEST(global_batch_offered)
{
	int valid = 0, rounds = 0;
	weft__runq_after_pop = batch_after_pop;
	for (int i = 0; i < ROUNDS && valid < VALID_ROUNDS; i++) {
		struct batch_round k = { .done = WEFT_EVENT_INIT,
					 .t_worker = -1 };
		batch_cur = &k;
		valid += (int)(intptr_t)run_with(batch_main, &k, 2);
		rounds = i + 1;
	}
	weft__runq_after_pop = NULL;
	fprintf(stderr, "global batch: the scene held in %d of %d rounds\n",
		valid, rounds);
	ck_assert_int_eq(valid, VALID_ROUNDS);
}
END_TEST

/* One case per test, so CK_RUN_CASE=<name> runs one alone. */
static void add(Suite *s, const char *name, const TTest *test)
{
	TCase *tc = tcase_create(name);
	tcase_set_timeout(tc, 300);
	tcase_add_test(tc, test);
	suite_add_tcase(s, tc);
}

int main(void)
{
	Suite *s = suite_create("sched");
	add(s, "global_batch_offered", global_batch_offered);
	return weft_test_main(s);
}
