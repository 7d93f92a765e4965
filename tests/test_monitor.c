/*
 * The monitor (runtime/monitor.h) rescues what a task that keeps its
 * worker would strand, with the other worker asleep, so that nothing but
 * the monitor can rouse it:
 *
 *  - a task the kept worker's scheduler woke into its ready queue just
 *    before it picked the keeping task from run-next;
 *  - the events of the first fd to join the poll set, registered by the
 *    kept worker's task while no worker slept in the set and the monitor
 *    was idle (drivers/readiness/pollset.c's weft__pollset_watching);
 *  - a task that yielded on the kept worker just before the keeping task
 *    took it over (a yielded list is its owner's: runq.h).
 *
 * Each round sets the scene up step by step and checks it held (which
 * worker ran what, the monitor idle, the other worker asleep); a round
 * whose scene a stray wake-up spoiled proves nothing and is run again.
 * The keeping task keeps its worker until the stranded task ran, or 5 s:
 * the task must run within 1 s. Run under both drivers (WEFT_IO=epoll).
 */
#include <stdatomic.h>
#include <sys/socket.h>
#include <unistd.h>
#include "test_util.h"
#include "drivers/readiness/pollset.h"
#include "runtime/monitor.h"
#include "runtime/task.h"
#include "runtime/worker.h"

#define ROUNDS 10      /* at most, to see VALID_ROUNDS whose scene held */
#define VALID_ROUNDS 2 /* each of which strands the task before the fix */
#define KEEP_NS (5 * WEFT_SEC)
#define BOUND_NS WEFT_SEC

static struct weft_runtime *runtime(void)
{
	return atomic_load(&weft__rt);
}

/* Whether every worker but the caller's sleeps, and none searches. */
static bool others_asleep(void)
{
	struct weft_runtime *rt = runtime();
	return atomic_load(&rt->idle.sleeping) == rt->nworkers - 1 &&
	       !atomic_load(&rt->idle.searching);
}

static bool monitor_idle(void)
{
	return atomic_load(&runtime()->monitor.state) == MON_IDLE;
}

/* Spins (keeping the worker, arming nothing) until ok() or 2 s. */
static bool spin_until(bool (*ok)(void))
{
	for (int64_t until = weft_now() + 2 * WEFT_SEC;
	     !ok() && weft_now() < until;)
		weft__cpu_relax();
	return ok();
}

/* ---- a ready task behind a kept worker's run-next task ------------------ */

/*
 * A (the waker) wakes B into its worker's run-next slot, which arms the
 * monitor, and ends. Its end, on the scheduler, wakes C (A's joiner) into
 * that worker's ready queue: one task, for which worker.c's share_woken
 * neither rouses a worker nor arms the monitor. The scheduler's next pick
 * is B, from run-next, and B keeps the worker. Once B was taken, C is the
 * only task waiting: the monitor must see it in the ready queue and rouse
 * the other worker, which steals it.
 */
struct ready_round {
	struct weft_event go;  /* B waits on it */
	weft_task_t a;         /* C joins it */
	atomic_bool c_joining; /* C is about to join A */
	atomic_int a_worker;   /* where A woke B */
	atomic_bool scene;     /* A found C parked and the other asleep */
	atomic_long b_ready;   /* B's worker's ready queue as B began */
	atomic_int b_worker;   /* where B ran */
	_Atomic int64_t a_end; /* A's last moment */
	_Atomic int64_t c_ran; /* C's first moment after its wake, or 0 */
};

static void *ready_joiner(void *arg) /* C */
{
	struct ready_round *k = arg;
	atomic_store(&k->c_joining, true);
	ck_assert_int_eq(weft_join(k->a, NULL), 0);
	atomic_store(&k->c_ran, weft_now());
	return NULL;
}

static struct ready_round *ready_cur; /* for spin_until */

static bool c_joining_others_asleep(void)
{
	return atomic_load(&ready_cur->c_joining) && others_asleep();
}

static void *ready_waker(void *arg) /* A */
{
	struct ready_round *k = arg;
	ck_assert_int_eq(weft_sleep(20 * WEFT_MSEC), 0);
	/* C is A's joiner once it began its join and no longer runs: it
	 * runs on the other worker, which then sleeps, or here, where it
	 * ran before A did. */
	atomic_store(&k->scene, spin_until(c_joining_others_asleep));
	atomic_store(&k->a_worker, weft_worker_id());
	ck_assert_int_ge(weft_event_set(&k->go), 0); /* B to run-next */
	atomic_store(&k->a_end, weft_now());
	return NULL; /* the scheduler wakes C into the ready queue */
}

static void *ready_keeper(void *arg) /* B */
{
	struct ready_round *k = arg;
	ck_assert_int_eq(weft_event_wait(&k->go), 0);
	int id = weft_worker_id();
	atomic_store(&k->b_worker, id);
	atomic_store(&k->b_ready,
		     weft__inject_len(&runtime()->workers[id].ready));
	for (int64_t until = weft_now() + KEEP_NS;
	     !atomic_load(&k->c_ran) && weft_now() < until;)
		weft__cpu_relax();
	return NULL;
}

/* One round; returns whether its scene held. */
static void *ready_main(void *arg)
{
	struct ready_round *k = arg;
	weft_task_t b, c;
	ck_assert_int_eq(weft_spawn(&b, ready_keeper, k), 0);
	ck_assert_int_eq(weft_spawn(&k->a, ready_waker, k), 0);
	ck_assert_int_eq(weft_spawn(&c, ready_joiner, k), 0);
	ck_assert_int_eq(weft_join(b, NULL), 0);
	ck_assert_int_eq(weft_join(c, NULL), 0);
	bool scene = atomic_load(&k->scene) &&
		     atomic_load(&k->b_worker) == atomic_load(&k->a_worker) &&
		     atomic_load(&k->b_ready) > 0;
	if (scene)
		ck_assert_msg(atomic_load(&k->c_ran) - atomic_load(&k->a_end) <
				      BOUND_NS,
			      "a woken task waited %lld ms in the ready queue "
			      "of a kept worker",
			      (long long)(atomic_load(&k->c_ran) -
					  atomic_load(&k->a_end)) /
				      WEFT_MSEC);
	return (void *)(intptr_t)scene;
}

START_TEST(ready_task_behind_kept_worker)
{
	int valid = 0, rounds = 0;
	for (int i = 0; i < ROUNDS && valid < VALID_ROUNDS; i++) {
		struct ready_round k = { .go = WEFT_EVENT_INIT };
		ready_cur = &k;
		valid += (int)(intptr_t)weft_test_run(ready_main, &k, 2);
		rounds = i + 1;
	}
	fprintf(stderr, "ready: the scene held in %d of %d rounds\n", valid,
		rounds);
	ck_assert_int_eq(valid, VALID_ROUNDS);
}
END_TEST

/* ---- the first fd to join the poll set, on a kept worker ---------------- */

/*
 * R (the reader) registers the first fd of the poll set while the monitor
 * is idle and no worker sleeps in the set: the test holds the poller role
 * while the other worker goes to sleep, so it sleeps outside, and R gives
 * the role back just before its wait. Then R's worker runs S, which sends
 * R its byte and keeps the worker. S waited in the yielded list, whose
 * lone task the scheduler takes back arming nothing (runq.c's
 * requeue_yielded), and R came from the ready queue after a sleep (one
 * task: nothing armed either). So only the registration's own arming
 * (pollset.c's weft__pollset_watching) makes the monitor harvest the set
 * and wake R on the other worker. The monitor is told to leave yielded
 * lists alone meanwhile (weft__monitor_keeps_yielded): S's yields would
 * arm it, and once R keeps the worker it would move S to the other one,
 * whose sleep would then harvest R's event for it.
 */
struct watch_round {
	int sv[2];
	atomic_int s_worker;   /* where S yields and keeps */
	atomic_bool scene;     /* R's checks before its wait held */
	atomic_bool r_waiting; /* R is about to wait: S sends */
	_Atomic int64_t sent;  /* when S sent R's byte */
	_Atomic int64_t got;   /* when R had it, or 0 */
};

static void *watch_reader(void *arg) /* R */
{
	struct watch_round *k = arg;
	char c;
	/* Its timer on S's worker (it ran there, from S's deque), which
	 * fires it into the ready queue while S yields. */
	ck_assert_int_eq(weft_sleep(20 * WEFT_MSEC), 0);
	bool scene = weft_worker_id() == atomic_load(&k->s_worker);
	scene = spin_until(others_asleep) && scene;
	scene = spin_until(monitor_idle) && others_asleep() && scene;
	weft__pollset_release(); /* the main task took it */
	/* No fd joined yet, no worker sleeps in the set. */
	scene = !weft__pollset_unattended() && scene;
	atomic_store(&k->scene, scene);
	atomic_store(&k->r_waiting, true);
	ck_assert_int_eq(weft_recv(k->sv[0], &c, 1, 0), 1);
	atomic_store(&k->got, weft_now());
	return NULL;
}

static void *watch_keeper(void *arg) /* S */
{
	struct watch_round *k = arg;
	weft_task_t r;
	atomic_store(&k->s_worker, weft_worker_id());
	ck_assert_int_eq(weft_spawn(&r, watch_reader, k), 0);
	/* R runs here first (its spawn waits in run-next), then sleeps;
	 * its timer's wake runs it here again, and its wait gives the
	 * worker back to this task. */
	while (!atomic_load(&k->r_waiting))
		ck_assert_int_eq(weft_yield(), 0);
	atomic_store(&k->sent, weft_now());
	ck_assert_int_eq(write(k->sv[1], "x", 1), 1);
	for (int64_t until = weft_now() + KEEP_NS;
	     !atomic_load(&k->got) && weft_now() < until;)
		weft__cpu_relax();
	ck_assert_int_eq(weft_join(r, NULL), 0);
	return NULL;
}

static void *noop(void *arg)
{
	return arg;
}

/* Takes the poll set's poller role for the test, so that a worker going
 * to sleep sleeps outside the set. A worker asleep in it holds the role:
 * two spawns rouse it (the second puts the first where thieves take it),
 * and the role is taken while it runs. */
static void take_poller_role(void)
{
	int64_t until = weft_now() + 5 * WEFT_SEC;
	bool taken = weft__pollset_claim();
	while (!taken) {
		weft_task_t t[2];
		ck_assert(weft_now() < until);
		ck_assert_int_eq(weft_spawn(&t[0], noop, NULL), 0);
		ck_assert_int_eq(weft_spawn(&t[1], noop, NULL), 0);
		for (int64_t end = weft_now() + WEFT_MSEC;
		     !(taken = weft__pollset_claim()) && weft_now() < end;)
			weft__cpu_relax();
		ck_assert_int_eq(weft_join(t[0], NULL), 0);
		ck_assert_int_eq(weft_join(t[1], NULL), 0);
	}
}

/* One round; returns whether its scene held. */
static void *watch_main(void *arg)
{
	struct watch_round *k = arg;
	weft_task_t s;
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, k->sv), 0);
	take_poller_role(); /* R gives it back */
	ck_assert_int_eq(weft_spawn(&s, watch_keeper, k), 0);
	ck_assert_int_eq(weft_join(s, NULL), 0);
	bool scene = atomic_load(&k->scene);
	if (scene)
		ck_assert_msg(atomic_load(&k->got) &&
				      atomic_load(&k->got) -
						      atomic_load(&k->sent) <
					      BOUND_NS,
			      "the first fd's event waited %lld ms beside a "
			      "kept worker",
			      (long long)(atomic_load(&k->got) -
					  atomic_load(&k->sent)) /
				      WEFT_MSEC);
	ck_assert_int_eq(weft_close(k->sv[0]), 0);
	ck_assert_int_eq(close(k->sv[1]), 0);
	return (void *)(intptr_t)scene;
}

START_TEST(first_fd_beside_kept_worker)
{
	int valid = 0, rounds = 0;
	weft__monitor_keeps_yielded = true;
	for (int i = 0; i < ROUNDS && valid < VALID_ROUNDS; i++) {
		struct watch_round k = { .sv = { -1, -1 } };
		valid += (int)(intptr_t)weft_test_run(watch_main, &k, 2);
		rounds = i + 1;
	}
	weft__monitor_keeps_yielded = false;
	fprintf(stderr, "first fd: the scene held in %d of %d rounds\n", valid,
		rounds);
	ck_assert_int_eq(valid, VALID_ROUNDS);
}
END_TEST

/* ---- a yielded task behind a kept worker -------------------------------- */

/*
 * Y wakes K into its worker's run-next slot (which arms the monitor) and
 * yields: the direct switch runs K, and Y waits in that worker's yielded
 * list, where no thief looks. K keeps the worker (a computation, or a
 * system call that blocks) and the other worker sleeps: the monitor must
 * move Y where the other worker takes it, and rouse that worker.
 */
struct yield_round {
	struct weft_event go;    /* K waits on it */
	atomic_bool k_waiting;   /* K is about to wait */
	atomic_bool scene;       /* Y found K waiting and the other asleep */
	atomic_int y_worker;     /* where Y yielded */
	atomic_int k_worker;     /* where K ran */
	_Atomic int64_t yielded; /* when Y yielded */
	_Atomic int64_t y_ran;   /* Y's first moment after its yield, or 0 */
};

static struct yield_round *yield_cur; /* for spin_until */

static bool k_waiting_others_asleep(void)
{
	return atomic_load(&yield_cur->k_waiting) && others_asleep();
}

static void *yield_keeper(void *arg) /* K */
{
	struct yield_round *k = arg;
	atomic_store(&k->k_waiting, true);
	ck_assert_int_eq(weft_event_wait(&k->go), 0);
	atomic_store(&k->k_worker, weft_worker_id());
	for (int64_t until = weft_now() + KEEP_NS;
	     !atomic_load(&k->y_ran) && weft_now() < until;)
		weft__cpu_relax();
	return NULL;
}

static void *yielder(void *arg) /* Y */
{
	struct yield_round *k = arg;
	/* K waits, parked, once it said so and the other worker sleeps:
	 * on this worker it ran before Y, on the other before its sleep. */
	atomic_store(&k->scene, spin_until(k_waiting_others_asleep));
	atomic_store(&k->y_worker, weft_worker_id());
	ck_assert_int_ge(weft_event_set(&k->go), 0); /* K to run-next */
	atomic_store(&k->yielded, weft_now());
	ck_assert_int_eq(weft_yield(), 0);
	atomic_store(&k->y_ran, weft_now());
	return NULL;
}

/* One round; returns whether its scene held. */
static void *yield_main(void *arg)
{
	struct yield_round *k = arg;
	weft_task_t kt, yt;
	ck_assert_int_eq(weft_spawn(&kt, yield_keeper, k), 0);
	ck_assert_int_eq(weft_spawn(&yt, yielder, k), 0);
	ck_assert_int_eq(weft_join(kt, NULL), 0);
	ck_assert_int_eq(weft_join(yt, NULL), 0);
	bool scene = atomic_load(&k->scene) &&
		     atomic_load(&k->k_worker) == atomic_load(&k->y_worker);
	int64_t waited = atomic_load(&k->y_ran) - atomic_load(&k->yielded);
	if (scene)
		ck_assert_msg(waited < BOUND_NS,
			      "a yielded task waited %lld ms behind a kept "
			      "worker",
			      (long long)waited / WEFT_MSEC);
	return (void *)(intptr_t)scene;
}

START_TEST(yielded_task_behind_kept_worker)
{
	int valid = 0, rounds = 0;
	for (int i = 0; i < ROUNDS && valid < VALID_ROUNDS; i++) {
		struct yield_round k = { .go = WEFT_EVENT_INIT };
		yield_cur = &k;
		valid += (int)(intptr_t)weft_test_run(yield_main, &k, 2);
		rounds = i + 1;
	}
	fprintf(stderr, "yielded: the scene held in %d of %d rounds\n", valid,
		rounds);
	ck_assert_int_eq(valid, VALID_ROUNDS);
}
END_TEST

/* ---- interventions: only rescues are counted ----------------------------- */

/*
 * weft_metrics' monitor_interventions counts the monitor's rescues: a
 * worker marked stuck, or its due timers fired. M keeps its worker Wm,
 * whose heap holds only stale timers: COUNT_STALE tasks slept there,
 * due one after another COUNT_GAP_NS apart, and were cancelled. Nothing
 * waits anywhere, and nothing is rescued: the monitor, armed while Wm's
 * first timer is due within TIMER_SOON_NS (4 ms, more than the gap),
 * looks at Wm every half stall threshold (0.5 ms) and pops the stale
 * entries, firing nothing. Before the fix each of those looks counted
 * one, due or not. A spinner keeps the other worker, so that no sleeper
 * is stolen there (under the sanitizers an idle worker took them first).
 */
#define COUNT_STALE 10
#define COUNT_GAP_NS (3 * WEFT_MSEC)

struct count_round {
	int64_t at;                 /* the first sleeper's deadline */
	atomic_int done;            /* sleepers that returned */
	weft_task_t b[COUNT_STALE]; /* the sleepers */
	uint64_t counted;           /* interventions meanwhile */
	uint64_t looks;             /* the monitor's wakes meanwhile */
	atomic_int spinner_on;      /* its worker's id + 1, once it runs */
	atomic_bool stop;           /* the spinner's end */
};

static void silent_stall(const struct weft_stall *s, void *arg)
{
	(void)s;
	(void)arg;
}

static struct count_round *count_cur;

static void *count_sleeper(void *arg) /* B_i */
{
	intptr_t i = (intptr_t)arg;
	int r = weft_sleep_until(count_cur->at + i * COUNT_GAP_NS);
	atomic_fetch_add(&count_cur->done, 1);
	return (void *)(intptr_t)r;
}

/* Whether t's timer is armed in worker id's heap. */
static bool timer_on(struct weft_task *t, int id)
{
	return atomic_load(&t->timer.armed) &&
	       atomic_load(&t->timer.owner) == &runtime()->workers[id];
}

static void *count_spinner(void *arg)
{
	struct count_round *k = arg;
	atomic_store(&k->spinner_on, weft_worker_id() + 1);
	while (!atomic_load(&k->stop))
		weft__cpu_relax();
	return NULL;
}

static void *count_main(void *arg) /* M */
{
	struct count_round *k = arg;
	struct weft_monitor *m = &runtime()->monitor;
	int me = weft_worker_id();
	/* Far enough for the scene to be set first, even slowed down. */
	int64_t ahead = (WEFT_TEST_SCALE >= 100 ? 100 : 1000) * WEFT_MSEC;
	weft_task_t spinner;
	k->at = weft_now() + ahead;
	ck_assert_int_eq(weft_spawn(&spinner, count_spinner, k), 0);
	/* Not yielding: only the other worker can take it (the monitor
	 * rouses it for a run-next task that sits). Stopped before a yield
	 * if it did not, or it would keep this worker from M. */
	while (!atomic_load(&k->spinner_on) && weft_now() < k->at)
		weft__cpu_relax();
	bool scene = atomic_load(&k->spinner_on) != 0;
	if (!scene)
		atomic_store(&k->stop, true);
	for (intptr_t i = 0; i < COUNT_STALE; i++) {
		ck_assert_int_eq(weft_spawn(&k->b[i], count_sleeper, (void *)i),
				 0);
		while (!timer_on(k->b[i].task, me) && weft_now() < k->at)
			ck_assert_int_eq(weft_yield(), 0);
		scene = scene && timer_on(k->b[i].task, me);
	}
	for (int i = 0; i < COUNT_STALE; i++)
		ck_assert_int_eq(weft_cancel(k->b[i]), 0);
	while (atomic_load(&k->done) < COUNT_STALE && weft_now() < k->at)
		ck_assert_int_eq(weft_yield(), 0);
	scene = scene && atomic_load(&k->done) == COUNT_STALE &&
		weft_worker_id() == me && weft_now() < k->at - ahead / 2;
	/* Wm kept from here, nothing waiting, its heap all stale. */
	uint64_t before = atomic_load(&m->interventions);
	uint64_t woke = atomic_load(&m->wakeups);
	int64_t last = k->at + (COUNT_STALE - 1) * COUNT_GAP_NS;
	while (weft_now() < last + 2 * WEFT_MSEC)
		weft__cpu_relax();
	k->counted = atomic_load(&m->interventions) - before;
	k->looks = atomic_load(&m->wakeups) - woke;
	atomic_store(&k->stop, true);
	ck_assert_int_eq(weft_join(spinner, NULL), 0);
	for (int i = 0; i < COUNT_STALE; i++) {
		void *r;
		ck_assert_int_eq(weft_join(k->b[i], &r), 0);
		/* 0: it slept out first (a round whose scene broke: a
		 * sleeper taken by the other worker kept M waiting to at) */
		ck_assert((intptr_t)r == -ECANCELED || (intptr_t)r == 0);
		scene = scene && (intptr_t)r == -ECANCELED;
	}
	return (void *)(intptr_t)scene;
}

START_TEST(interventions_count_rescues_only)
{
	struct weft_config cfg = { .workers = 2,
				   .stall_threshold_ns = WEFT_MSEC,
				   .on_stall = silent_stall };
	int valid = 0;
	for (int i = 0; i < ROUNDS && valid < VALID_ROUNDS; i++) {
		struct count_round k = { 0 };
		count_cur = &k;
		if (!weft_test_run_with(count_main, &k, &cfg))
			continue;
		valid++;
		ck_assert_msg(k.counted == 0,
			      "%llu interventions counted, in %llu looks, "
			      "with nothing rescued",
			      (unsigned long long)k.counted,
			      (unsigned long long)k.looks);
	}
	ck_assert_int_eq(valid, VALID_ROUNDS);
}
END_TEST

/* ---- interventions: one per stuck worker, not one per look -------------- */

/*
 * M keeps its worker Wm with X waiting in its run-next slot, while S
 * keeps the other worker: nobody takes X, and the monitor finds Wm stuck
 * at every look, a tenth of a millisecond apart. That is one rescue
 * (weft_metrics' monitor_interventions), however many looks see it. Before
 * the fix every look counted one more. S reached the other worker the
 * same way (a look marked Wm stuck while S sat in run-next): counted
 * before the measure begins.
 */
#define STUCK_LOOKS 30

struct stuck_round {
	atomic_int spinner_on; /* S's worker's id + 1, once it runs */
	atomic_bool stop;      /* S's end */
	atomic_bool x_ran;
	uint64_t counted; /* interventions while X waited */
	uint64_t looks;   /* the monitor's wakes meanwhile */
};

static void *stuck_spinner(void *arg) /* S */
{
	struct stuck_round *k = arg;
	atomic_store(&k->spinner_on, weft_worker_id() + 1);
	while (!atomic_load(&k->stop))
		weft__cpu_relax();
	return NULL;
}

static void *stuck_waiter(void *arg) /* X */
{
	struct stuck_round *k = arg;
	atomic_store(&k->x_ran, true);
	return NULL;
}

static void *stuck_main(void *arg) /* M */
{
	struct stuck_round *k = arg;
	struct weft_monitor *m = &runtime()->monitor;
	int me = weft_worker_id();
	weft_task_t s, x;
	ck_assert_int_eq(weft_spawn(&s, stuck_spinner, k), 0);
	int64_t until = weft_now() + HANG_NS;
	while (!atomic_load(&k->spinner_on) && weft_now() < until)
		weft__cpu_relax();
	bool scene = atomic_load(&k->spinner_on) == 2 - me;
	uint64_t before = atomic_load(&m->interventions);
	ck_assert_int_eq(weft_spawn(&x, stuck_waiter, k), 0);
	/* Until STUCK_LOOKS looks after the first that counted X's wait. */
	uint64_t woke = 0;
	while (scene && weft_now() < until &&
	       (!woke || atomic_load(&m->wakeups) - woke < STUCK_LOOKS)) {
		if (!woke && atomic_load(&m->interventions) != before)
			woke = atomic_load(&m->wakeups);
		weft__cpu_relax();
	}
	k->counted = atomic_load(&m->interventions) - before;
	k->looks = woke ? atomic_load(&m->wakeups) - woke : 0;
	scene = scene && woke && !atomic_load(&k->x_ran) &&
		weft_worker_id() == me;
	atomic_store(&k->stop, true);
	ck_assert_int_eq(weft_join(s, NULL), 0);
	ck_assert_int_eq(weft_join(x, NULL), 0);
	return (void *)(intptr_t)scene;
}

START_TEST(interventions_count_stuck_once)
{
	int valid = 0;
	for (int i = 0; i < ROUNDS && valid < VALID_ROUNDS; i++) {
		struct stuck_round k = { 0 };
		if (!weft_test_run(stuck_main, &k, 2))
			continue;
		valid++;
		ck_assert_msg(k.counted == 1,
			      "%llu interventions counted for one stuck "
			      "worker, in %llu looks",
			      (unsigned long long)k.counted,
			      (unsigned long long)k.looks);
	}
	ck_assert_int_eq(valid, VALID_ROUNDS);
}
END_TEST

/* Calm looks until the period changes (it doubles): how many it took. */
static int looks_to_back_off(struct weft_monitor_pace *p)
{
	long before = p->period;
	for (int looks = 1; looks <= 1000; looks++) {
		weft__monitor_pace_looked(p, false);
		if (p->period != before)
			return looks;
	}
	return 0;
}

/* The pace of the armed monitor's looks, on made-up times: it backs off
 * by doubling after a fixed count of calm looks up to a longest period; a
 * stuck worker brings it back to the shortest; a monitor woken within
 * the warm window of its disarm keeps the period it had (a server that
 * leaves the poll set every few milliseconds costs few looks), one woken
 * later starts again at the shortest, and one armed for a timer looks at
 * the longest. */
START_TEST(pace_on_made_up_times)
{
	struct weft_monitor_pace p;
	weft__monitor_pace_init(&p);
	const long shortest = p.period;
	ck_assert_int_gt(shortest, 0);

	int backoff = looks_to_back_off(&p);
	ck_assert_int_gt(backoff, 1);
	ck_assert_int_eq(p.period, 2 * shortest);
	long steps[64] = { shortest, p.period };
	int n = 2, looks;
	while ((looks = looks_to_back_off(&p)) && n < 64) {
		ck_assert_int_eq(looks, backoff);
		steps[n++] = p.period;
	}
	const long longest = p.period; /* 1000 calm looks left it */
	ck_assert_int_gt(n, 2);
	ck_assert_int_le(longest, WEFT_SEC / 100); /* a rescue stays prompt */
	/* Each step doubles, the last one capped at the longest. */
	for (int i = 1; i < n; i++)
		ck_assert_int_eq(steps[i], steps[i - 1] * 2 < longest
						   ? steps[i - 1] * 2
						   : longest);

	weft__monitor_pace_looked(&p, true);
	ck_assert_int_eq(p.period, shortest);

	/* Backed off, disarmed, woken 1 ms later: warm. */
	while (p.period < longest)
		weft__monitor_pace_looked(&p, false);
	int64_t t = 5 * WEFT_SEC;
	weft__monitor_pace_disarmed(&p, t);
	weft__monitor_pace_woke(&p, t + WEFT_MSEC, false);
	ck_assert_int_eq(p.period, longest);

	/* Woken long after its disarm: the shortest again. */
	weft__monitor_pace_disarmed(&p, t);
	weft__monitor_pace_woke(&p, t + WEFT_SEC, false);
	ck_assert_int_eq(p.period, shortest);

	/* A wake resets the calm count: backoff - 1 calm looks, a warm
	 * wake, backoff - 1 more, and the period has not moved. */
	for (int i = 0; i < backoff - 1; i++)
		weft__monitor_pace_looked(&p, false);
	weft__monitor_pace_disarmed(&p, t);
	weft__monitor_pace_woke(&p, t + WEFT_MSEC, false);
	for (int i = 0; i < backoff - 1; i++)
		weft__monitor_pace_looked(&p, false);
	ck_assert_int_eq(p.period, shortest);
	weft__monitor_pace_looked(&p, false);
	ck_assert_int_eq(p.period, 2 * shortest);

	/* Armed for a timer, long after a disarm or not: the longest. */
	weft__monitor_pace_woke(&p, t + WEFT_SEC, true);
	ck_assert_int_eq(p.period, longest);
	weft__monitor_pace_looked(&p, true);
	weft__monitor_pace_disarmed(&p, t);
	weft__monitor_pace_woke(&p, t + WEFT_MSEC, true);
	ck_assert_int_eq(p.period, longest);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("monitor");
	TCase *tc = tcase_create("monitor");

	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, ready_task_behind_kept_worker);
	tcase_add_test(tc, first_fd_beside_kept_worker);
	tcase_add_test(tc, yielded_task_behind_kept_worker);
	tcase_add_test(tc, pace_on_made_up_times);
	tcase_add_test(tc, interventions_count_rescues_only);
	tcase_add_test(tc, interventions_count_stuck_once);
	suite_add_tcase(s, tc);
	return weft_test_main(s);
}
