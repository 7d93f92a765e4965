/*
 * Crowding (runtime/crowd.h): the controller's decisions on made-up
 * readings, the state changing both ways under a real CPU shortage, and
 * the crowded runtime's promises: no woken batch is offered to an idle
 * worker, the monitor rouses nobody for queued tasks, only the last worker
 * to fall asleep polls, and a worker kept by one task still strands no
 * readiness event and no task woken behind it.
 *
 * Runs alone (tests/runtime.cmake): it pins itself to one CPU and then
 * needs half a CPU idle to see the state undone.
 */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <sys/socket.h>
#include <unistd.h>
#include "test_util.h"
#include "drivers/readiness/pollset.h"
#include "runtime/crowd.h"
#include "runtime/spinlock.h"
#include "runtime/worker.h"

#define MS (1000 * 1000LL)
/* Long enough for a sanitizer build on a busy machine: the state is
 * decided every 20 ms. */
#define CHANGE_BOUND_NS (30 * WEFT_SEC)

/* ---- the controller, on made-up readings ------------------------------- */

/* A controller as weft__crowd_start leaves it, its first reading taken. */
static void fresh(struct weft__crowd *c)
{
	*c = (struct weft__crowd){ .backoff = CROWD_BACKOFF_MIN_NS,
				   .spread_at = INT64_MIN / 2 };
	struct weft__crowd_sample s = { 0 };
	ck_assert(!weft__crowd_step(c, 0, &s));
}

/* Steps c at now with the workers' totals run and wait (ms), the
 * machine's idle total (ms; -1: unreadable), the process's CPU time (ms)
 * and its share's CPUs (0: unknown). */
static bool step_share(struct weft__crowd *c, int64_t now_ms, int64_t run_ms,
		       int64_t wait_ms, int64_t idle_ms, int64_t used_ms,
		       double cpus)
{
	struct weft__crowd_sample s = { (uint64_t)(run_ms * MS),
					(uint64_t)(wait_ms * MS),
					idle_ms < 0 ? -1 : idle_ms * MS,
					used_ms * MS, cpus };
	return weft__crowd_step(c, now_ms * MS, &s);
}

/* The same with no share known. */
static bool step(struct weft__crowd *c, int64_t now_ms, int64_t run_ms,
		 int64_t wait_ms, int64_t idle_ms)
{
	return step_share(c, now_ms, run_ms, wait_ms, idle_ms, 0, 0);
}

/* Crowds c at now_ms with a window of waits (adding it to the totals),
 * and takes the idle baseline (the next look's reading). */
static void crowd_at(struct weft__crowd *c, int64_t now_ms, int64_t *run,
		     int64_t *wait, int64_t idle)
{
	*run += 20;
	*wait += 20;
	ck_assert(step(c, now_ms, *run, *wait, 0));
	ck_assert(weft__crowded(c));
	ck_assert_int_eq(c->next, now_ms * MS); /* the baseline next */
	ck_assert(!step(c, now_ms, *run, *wait, idle));
	ck_assert_int_eq(c->next, now_ms * MS + c->backoff);
}

START_TEST(step_crowds_when_workers_wait)
{
	struct weft__crowd c;
	fresh(&c);
	/* 10% of the runnable time waiting: spread. */
	ck_assert(!step(&c, 20, 36, 4, 0));
	ck_assert(!weft__crowded(&c));
	ck_assert_int_eq(c.next, 40 * MS);
	/* 20%: crowded. */
	ck_assert(step(&c, 40, 36 + 32, 4 + 8, 0));
	ck_assert(weft__crowded(&c));
	ck_assert_int_eq(c.backoff, CROWD_BACKOFF_MIN_NS);
}
END_TEST

START_TEST(step_needs_runnable_time)
{
	struct weft__crowd c;
	fresh(&c);
	/* All waiting, but under a quarter of a CPU over the window. */
	ck_assert(!step(&c, 20, 2, 2, 0));
	ck_assert(!weft__crowded(&c));
	/* A window twice as long needs twice the time. */
	ck_assert(!step(&c, 60, 2 + 4, 2 + 5, 0));
	ck_assert(!weft__crowded(&c));
	ck_assert(step(&c, 100, 6 + 5, 7 + 5, 0));
}
END_TEST

START_TEST(step_probes_only_with_idle_cpu)
{
	struct weft__crowd c;
	fresh(&c);
	int64_t run = 0, wait = 0;
	crowd_at(&c, 20, &run, &wait, 1000);
	/* A backoff later, 10% of a CPU idle: stays. */
	ck_assert(!step(&c, 120, run, wait, 1010));
	ck_assert(weft__crowded(&c));
	ck_assert_int_eq(c.next, 220 * MS);
	/* Idle unreadable: stays. */
	ck_assert(!step(&c, 220, run, wait, -1));
	ck_assert(!step(&c, 320, run, wait, 1200));
	ck_assert(weft__crowded(&c));
	/* Half a CPU idle over the backoff: spread. */
	ck_assert(step(&c, 420, run, wait, 1250));
	ck_assert(!weft__crowded(&c));
	ck_assert_int_eq(c.next, 440 * MS);
}
END_TEST

/* Host CPUs idle that the process's share does not leave it (a
 * container's limit, an affinity mask): no probe. */
START_TEST(step_probes_within_our_share)
{
	struct weft__crowd c;
	fresh(&c);
	int64_t run = 0, wait = 0;
	crowd_at(&c, 20, &run, &wait, 1000);
	/* 100 ms with 1.5 CPUs idle on the host, but a share of one CPU of
	 * which the process used 0.9: 0.1 left, stays. */
	ck_assert(!step_share(&c, 120, run, wait, 1150, 90, 1));
	ck_assert(weft__crowded(&c));
	/* Then it used 0.4 of its CPU: 0.6 left, spread. */
	ck_assert(step_share(&c, 220, run, wait, 1300, 130, 1));
	ck_assert(!weft__crowded(&c));
}
END_TEST

START_TEST(step_backoff_grows_and_resets)
{
	struct weft__crowd c;
	fresh(&c);
	int64_t run = 0, wait = 0, now = 20, idle = 0;
	int64_t expect = CROWD_BACKOFF_MIN_NS;
	for (int round = 0; round < 10; round++) {
		crowd_at(&c, now, &run, &wait, idle);
		ck_assert_int_eq(c.backoff, expect);
		/* The probe, a backoff later, with a whole CPU idle. */
		now += c.backoff / MS;
		idle += c.backoff / MS;
		ck_assert(step(&c, now, run, wait, idle));
		/* Crowded again a window later: the backoff doubles. */
		now += 20;
		expect = expect * 2 > CROWD_BACKOFF_MAX_NS
				 ? CROWD_BACKOFF_MAX_NS
				 : expect * 2;
	}
	ck_assert_int_eq(expect, CROWD_BACKOFF_MAX_NS);
	/* A spread that lasted (a long window without waits): back to the
	 * shortest. */
	now += CROWD_SETTLE_NS / MS;
	run += CROWD_SETTLE_NS / MS;
	ck_assert(!step(&c, now, run, wait, 0));
	crowd_at(&c, now + 20, &run, &wait, idle);
	ck_assert_int_eq(c.backoff, CROWD_BACKOFF_MIN_NS);
}
END_TEST

static void *nothing(void *arg)
{
	return arg;
}

START_TEST(config_rejects_bad_values)
{
	struct weft_config cfg = { .workers = 2, .crowding = 7 };
	ck_assert_int_eq(weft_run(nothing, NULL, &cfg, NULL), -EINVAL);
	cfg.crowding = WEFT_CROWDING_DEFAULT;
	setenv("WEFT_CROWDING", "sometimes", 1);
	ck_assert_int_eq(weft_run(nothing, NULL, &cfg, NULL), -EINVAL);
	setenv("WEFT_CROWDING", "off", 1);
	ck_assert_int_eq(weft_run(nothing, NULL, &cfg, NULL), 0);
	unsetenv("WEFT_CROWDING");
}
END_TEST

/* ---- a real shortage of CPUs --------------------------------------------- */

static struct weft_runtime *runtime(void)
{
	return atomic_load(&weft__rt);
}

static struct weft_metrics metrics(void)
{
	struct weft_metrics m;
	ck_assert_int_eq(weft_metrics(&m), 0);
	return m;
}

static atomic_bool spin_on;

static void *spinner(void *arg)
{
	while (atomic_load(&spin_on))
		(void)weft_yield();
	return arg;
}

/* Yields (keeping a worker busy) until the state is want, or the bound. */
static bool until_crowded(bool want)
{
	for (int64_t end = weft_now() + CHANGE_BOUND_NS; weft_now() < end;) {
		if (metrics().crowded == want)
			return true;
		(void)weft_yield();
	}
	return false;
}

static void set_affinity(pthread_t t, int cpus)
{
	cpu_set_t set;
	CPU_ZERO(&set);
	for (int i = 0; i < cpus; i++)
		CPU_SET(i, &set);
	ck_assert_int_eq(pthread_setaffinity_np(t, sizeof(set), &set), 0);
}

/* The host's idle CPU time so far, in seconds (/proc/stat's first line:
 * its fourth field, in clock ticks). */
static double host_idle_secs(void)
{
	FILE *f = fopen("/proc/stat", "r");
	unsigned long long user, nice, sys, idle = 0;
	ck_assert_ptr_nonnull(f);
	ck_assert_int_eq(fscanf(f, "cpu %llu %llu %llu %llu", &user, &nice,
				&sys, &idle),
			 4);
	fclose(f);
	return (double)idle / (double)sysconf(_SC_CLK_TCK);
}

/* Two workers and three busy tasks on one CPU: each worker waits for it
 * half the time, so the runtime crowds (under epoll: crowd.h). Given both
 * CPUs back, with one worker busy, it probes and spreads, if the host has
 * half a CPU idle: with two busy processes beside this test it has none,
 * and staying crowded is then right. */
static void *shortage_main(void *arg)
{
	struct weft_runtime *rt = runtime();
	if (!rt->crowd.enabled) { /* io_uring, or no schedstat */
		ck_assert_uint_eq(metrics().crowded, 0);
		return arg;
	}
	atomic_store(&spin_on, true);
	weft_task_t t[2];
	for (int i = 0; i < 2; i++)
		ck_assert_int_eq(weft_spawn(&t[i], spinner, NULL), 0);
	ck_assert_msg(until_crowded(true), "never crowded on one CPU");
	atomic_store(&spin_on, false);
	for (int i = 0; i < 2; i++)
		ck_assert_int_eq(weft_join(t[i], NULL), 0);
	if (sysconf(_SC_NPROCESSORS_ONLN) < 2)
		return arg;
	for (int i = 0; i < rt->nworkers; i++)
		set_affinity(rt->workers[i].thread, 2);
	/* The monitor reads the process's share from its own mask. */
	set_affinity(rt->monitor.thread, 2);
	double idle_from = host_idle_secs();
	int64_t from = weft_now();
	if (!until_crowded(false)) {
		double idle = (host_idle_secs() - idle_from) /
			      ((double)(weft_now() - from) / WEFT_SEC);
		ck_assert_msg(idle < 0.6,
			      "never spread, with %.2f CPUs idle on the host",
			      idle);
		return arg;
	}
	ck_assert_uint_ge(metrics().crowd_changes, 2);
	return arg;
}

START_TEST(crowds_and_spreads_with_the_cpus)
{
	cpu_set_t before;
	ck_assert_int_eq(sched_getaffinity(0, sizeof(before), &before), 0);
	set_affinity(pthread_self(), 1); /* the workers inherit it */
	weft_test_run(shortage_main, NULL, 2);
	ck_assert_int_eq(sched_setaffinity(0, sizeof(before), &before), 0);
}
END_TEST

/* ---- what a crowded runtime keeps -------------------------------------- */

/* Runs main with crowding forced on (the controller off, so it stays). */
static void run_crowded(weft_fn main)
{
	struct weft_config cfg = { .workers = 2,
				   .crowding = WEFT_CROWDING_OFF };
	ck_assert_int_eq(weft_run(main, NULL, &cfg, NULL), 0);
}

static void force_crowded(void)
{
	/* Relaxed, as the monitor's own store (crowd.h). */
	atomic_store_explicit(&runtime()->crowd.on, true, memory_order_relaxed);
}

#define CONNS 64

/* Socket pairs, each echoed by a task that first works work_ns per byte,
 * and a pool thread's blocking rounds over them (echo_rounds). */
struct echo_conn {
	int sv[2];
	int64_t work_ns;
	weft_task_t task;
};

struct echo_conns {
	int n, rounds;
	struct echo_conn c[CONNS];
};

static void *echo_one(void *arg)
{
	struct echo_conn *c = arg;
	char byte;
	while (weft_recv(c->sv[0], &byte, 1, 0) == 1) {
		int64_t until = weft_now() + c->work_ns;
		while (weft_now() < until)
			weft__cpu_relax();
		ck_assert_int_eq(weft_send(c->sv[0], &byte, 1, 0), 1);
	}
	return NULL;
}

static void echo_open(struct echo_conns *e, int n, int64_t work_ns, int rounds)
{
	e->n = n;
	e->rounds = rounds;
	for (int i = 0; i < n; i++) {
		struct echo_conn *c = &e->c[i];
		c->work_ns = work_ns;
		ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, c->sv), 0);
		ck_assert_int_eq(weft_spawn(&c->task, echo_one, c), 0);
	}
}

/* A pool thread's rounds: a byte to every connection, then every answer
 * back. */
static void *echo_rounds(void *arg)
{
	struct echo_conns *e = arg;
	for (int r = 0; r < e->rounds; r++) {
		for (int i = 0; i < e->n; i++)
			ck_assert_int_eq(write(e->c[i].sv[1], "x", 1), 1);
		for (int i = 0; i < e->n; i++) {
			char byte;
			ck_assert_int_eq(read(e->c[i].sv[1], &byte, 1), 1);
		}
	}
	return NULL;
}

static void echo_close(struct echo_conns *e)
{
	for (int i = 0; i < e->n; i++) {
		close(e->c[i].sv[1]);
		ck_assert_int_eq(weft_join(e->c[i].task, NULL), 0);
		close(e->c[i].sv[0]);
	}
}

/* Woken batches offered to an idle worker, by both workers so far. */
static uint64_t shares(void)
{
	struct weft_runtime *rt = runtime();
	return atomic_load(&rt->workers[0].stats.shares) +
	       atomic_load(&rt->workers[1].stats.shares);
}

/* Readiness wakes the echo's tasks in batches of up to CONNS on the
 * worker that polls. Spread, a big batch is offered to the idle worker;
 * crowded, never (the other worker would only wait for a CPU too).
 * Returns how many batches were offered, crowded if arg.
 *
 * Where the echo runs is not checked: crowded, the poller role goes to
 * the last worker to fall asleep, and where both sleep between rounds
 * both poll, so the runs split anywhere from all on one worker to 45:55
 * on an idle machine. That the role stays with the last sleeper is
 * checked where it is certain, in crowded_kept_worker_strands_no_event. */
static void *echo_shares_main(void *arg)
{
	if (arg)
		force_crowded();
	static struct echo_conns e;
	echo_open(&e, CONNS, 0, (int)weft_test_scaled(2000, 200));
	/* Every echo task waits on its first byte before the count. */
	ck_assert_int_eq(weft_sleep(50 * MS), 0);
	uint64_t before = shares();
	ck_assert_int_eq(weft_blocking(echo_rounds, &e, NULL), 0);
	uint64_t shared = shares() - before;
	echo_close(&e);
	return (void *)(uintptr_t)shared;
}

START_TEST(crowded_io_shares_no_batch)
{
	struct weft_config cfg = { .workers = 2,
				   .crowding = WEFT_CROWDING_OFF };
	void *spread, *crowded;
	ck_assert_int_eq(weft_run(echo_shares_main, NULL, &cfg, &spread), 0);
	ck_assert_int_eq(weft_run(echo_shares_main, (void *)1, &cfg, &crowded),
			 0);
	unsigned long long shared = (uintptr_t)spread,
			   shared_crowded = (uintptr_t)crowded;
	/* Spread, the rule acts: some batches are big. */
	ck_assert_msg(shared >= 1, "spread, %llu woken batches were shared",
		      shared);
	ck_assert_msg(shared_crowded == 0,
		      "crowded, %llu woken batches were shared",
		      shared_crowded);
}
END_TEST

/* I/O wakes a small batch of tasks at a time (no more than share_woken
 * runs alone), each with a little work: they queue on the worker that
 * polled. Spread, the monitor rouses a sleeper for tasks queued at two of
 * its looks, and it takes a share; crowded, it must not (the sleeper
 * would only wait for a CPU too), so nobody is roused. */
#define SMALL 8

/* Runs the batches, crowded if arg; returns how often the monitor
 * offered queued tasks to an idle worker meanwhile (its rescues of a
 * worker the OS deschedules are counted apart). */
static void *small_batches_main(void *arg)
{
	static struct echo_conns e;
	_Atomic uint64_t *offers = &runtime()->monitor.offers;

	if (arg)
		force_crowded();
	echo_open(&e, SMALL, 20 * WEFT_USEC, (int)weft_test_scaled(2000, 1000));
	ck_assert_int_eq(weft_sleep(50 * MS), 0);
	uint64_t before = atomic_load(offers);
	ck_assert_int_eq(weft_blocking(echo_rounds, &e, NULL), 0);
	uint64_t offered = atomic_load(offers) - before;
	echo_close(&e);
	return (void *)(uintptr_t)offered;
}

START_TEST(crowded_queued_tasks_rouse_nobody)
{
	struct weft_config cfg = { .workers = 2,
				   .crowding = WEFT_CROWDING_OFF };
	void *spread, *crowded;
	ck_assert_int_eq(weft_run(small_batches_main, NULL, &cfg, &spread), 0);
	ck_assert_int_eq(weft_run(small_batches_main, (void *)1, &cfg,
				  &crowded),
			 0);
	unsigned long long offered = (uintptr_t)spread,
			   offered_crowded = (uintptr_t)crowded;
	/* Spread, the rule acts: the batches do queue across its looks. */
	ck_assert_msg(offered >= 4,
		      "spread, the monitor offered queued tasks %llu times",
		      offered);
	/* Crowded, it never does. */
	ck_assert_msg(offered_crowded == 0,
		      "crowded, the monitor offered queued tasks %llu times",
		      offered_crowded);
}
END_TEST

/* One task keeps a worker; the other worker sleeps, crowded, outside the
 * poll set (the keeper finds the poller role free). A byte for a third
 * task must still reach it (the monitor harvests the unattended set and
 * rouses the sleeper), long before the keeper lets its worker go. */
static atomic_bool got_byte;

static void *reader(void *arg)
{
	int fd = (int)(intptr_t)arg;
	char c;
	ck_assert_int_eq(weft_recv(fd, &c, 1, 0), 1);
	atomic_store(&got_byte, true);
	return NULL;
}

/* Whether the poller role was free while the other worker slept. */
static atomic_int role_free;

static void *keeper(void *arg)
{
	struct weft_runtime *rt = runtime();
	int64_t end = weft_now() + 5 * WEFT_SEC;
	while (atomic_load(&rt->idle.sleeping) < 1 && weft_now() < end)
		weft__cpu_relax();
	bool free_role = weft__pollset_claim();
	if (free_role)
		weft__pollset_release();
	atomic_store(&role_free, free_role);
	for (; !atomic_load(&got_byte) && weft_now() < end;)
		weft__cpu_relax();
	return arg;
}

static void *kept_worker_main(void *arg)
{
	force_crowded();
	atomic_store(&got_byte, false);
	atomic_store(&role_free, -1);
	int sv[2];
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	weft_task_t r, k;
	ck_assert_int_eq(weft_spawn(&r, reader, (void *)(intptr_t)sv[0]), 0);
	ck_assert_int_eq(weft_spawn(&k, keeper, NULL), 0);
	ck_assert_int_eq(weft_sleep(50 * MS), 0); /* all but k sleep */
	int64_t sent = weft_now();
	ck_assert_int_eq(write(sv[1], "x", 1), 1);
	ck_assert_int_eq(weft_join(r, NULL), 0);
	int64_t took = weft_now() - sent;
	ck_assert_int_eq(weft_join(k, NULL), 0);
	ck_assert_msg(atomic_load(&role_free) == 1,
		      "a worker slept as the poller while the other ran");
	ck_assert_msg(took < WEFT_SEC, "the byte took %lld ms",
		      (long long)(took / MS));
	close(sv[0]);
	close(sv[1]);
	return arg;
}

START_TEST(crowded_kept_worker_strands_no_event)
{
	run_crowded(kept_worker_main);
}
END_TEST

/* Crowded, tasks woken behind a task that keeps its worker are still
 * rescued: the monitor sees them wait without a tick (its stuck rule) and
 * rouses the sleeper. Crowding spares the CPU only for tasks whose worker
 * runs on (crowd.h); test_task, which runs spread, checks the rule there.
 * The waiters are woken by this task, so they queue here in one batch,
 * too small to be shared. */
#define BEHIND 8
static struct weft_event behind_go = WEFT_EVENT_INIT;
static atomic_int behind_ran;

static void *behind_waiter(void *arg)
{
	ck_assert_int_eq(weft_event_wait(&behind_go), 0);
	atomic_fetch_add(&behind_ran, 1);
	return arg;
}

static void *rescue_main(void *arg)
{
	weft_task_t t[BEHIND];
	force_crowded();
	ck_assert_int_eq(weft_event_clear(&behind_go), 0);
	atomic_store(&behind_ran, 0);
	for (int i = 0; i < BEHIND; i++)
		ck_assert_int_eq(weft_spawn(&t[i], behind_waiter, NULL), 0);
	ck_assert_int_eq(weft_sleep(50 * MS), 0); /* the other worker sleeps */
	/* How many it woke: all, unless a waiter was yet to run (a loaded
	 * sanitizer build), and then it waits behind this task as well. */
	ck_assert_int_ge(weft_event_set(&behind_go), 0);
	int64_t set = weft_now(), end = set + 5 * WEFT_SEC;
	while (atomic_load(&behind_ran) < BEHIND && weft_now() < end)
		weft__cpu_relax(); /* keeps this worker */
	int64_t took = weft_now() - set;
	int ran = atomic_load(&behind_ran);
	ck_assert_msg(ran == BEHIND, "%d of %d woken tasks ran in 5 s", ran,
		      BEHIND);
	ck_assert_msg(took < WEFT_SEC, "the woken tasks waited %lld ms",
		      (long long)(took / MS));
	for (int i = 0; i < BEHIND; i++)
		ck_assert_int_eq(weft_join(t[i], NULL), 0);
	return arg;
}

START_TEST(crowded_kept_worker_rescued)
{
	run_crowded(rescue_main);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("crowd");
	TCase *tc = tcase_create("controller");
	tcase_add_test(tc, step_crowds_when_workers_wait);
	tcase_add_test(tc, step_needs_runnable_time);
	tcase_add_test(tc, step_probes_only_with_idle_cpu);
	tcase_add_test(tc, step_probes_within_our_share);
	tcase_add_test(tc, step_backoff_grows_and_resets);
	tcase_add_test(tc, config_rejects_bad_values);
	suite_add_tcase(s, tc);
	tc = tcase_create("runtime");
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, crowds_and_spreads_with_the_cpus);
	tcase_add_test(tc, crowded_io_shares_no_batch);
	tcase_add_test(tc, crowded_kept_worker_strands_no_event);
	tcase_add_test(tc, crowded_kept_worker_rescued);
	tcase_add_test(tc, crowded_queued_tasks_rouse_nobody);
	suite_add_tcase(s, tc);
	return weft_test_main(s);
}
