/* The blocking pool: results, reuse and bound of threads, cancellation and
 * deadlines of queued jobs, plain threads, shutdown with jobs waiting,
 * aborting a job (weft_close of its fd). */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>
#include "test_io_util.h"
#include "runtime/blocking.h"

static void *twice(void *arg)
{
	return (void *)((intptr_t)arg * 2);
}

/* ---- many jobs, few threads ---------------------------------------------- */

#define POOL 4

static atomic_int running, peak;
static pthread_t seen[1024];
static atomic_int nseen;
static pthread_mutex_t seen_lock = PTHREAD_MUTEX_INITIALIZER;

static void note_thread(void)
{
	pthread_t me = pthread_self();

	pthread_mutex_lock(&seen_lock);
	int n = atomic_load(&nseen);
	for (int i = 0; i < n; i++)
		if (pthread_equal(seen[i], me))
			goto out;
	if (n < 1024)
		seen[atomic_fetch_add(&nseen, 1)] = me;
out:
	pthread_mutex_unlock(&seen_lock);
}

static void *slow_twice(void *arg)
{
	struct timespec ts = { 0, 500 * 1000 };
	int now = atomic_fetch_add(&running, 1) + 1, p = atomic_load(&peak);

	while (now > p && !atomic_compare_exchange_weak(&peak, &p, now))
		;
	note_thread();
	nanosleep(&ts, NULL);
	atomic_fetch_sub(&running, 1);
	return (void *)((intptr_t)arg * 2);
}

static void *job_task(void *arg)
{
	void *res = NULL;

	ck_assert_int_eq(weft_blocking(slow_twice, arg, &res), 0);
	ck_assert_ptr_eq(res, (void *)((intptr_t)arg * 2));
	return res;
}

static void *many_main(void *arg)
{
	long n = SCALED(2000);
	weft_task_t *t = malloc((size_t)n * sizeof(*t));
	void *res;

	atomic_store(&peak, 0);
	atomic_store(&nseen, 0);
	ck_assert_int_eq(weft_blocking(twice, (void *)21, &res), 0);
	ck_assert_ptr_eq(res, (void *)42);
	ck_assert_int_eq(weft_blocking(twice, (void *)1, NULL), 0);
	ck_assert_int_eq(weft_blocking(NULL, NULL, &res), -EINVAL);

	for (long i = 0; i < n; i++)
		ck_assert_int_eq(weft_spawn(&t[i], job_task,
					    (void *)(intptr_t)i),
				 0);
	for (long i = 0; i < n; i++) {
		ck_assert_int_eq(weft_join(t[i], &res), 0);
		ck_assert_ptr_eq(res, (void *)(2 * (intptr_t)i));
	}
	free(t);
	/* Never more than the configured threads, and they were reused. */
	ck_assert_int_le(atomic_load(&peak), POOL);
	ck_assert_int_le(atomic_load(&nseen), POOL);
	ck_assert_int_ge(atomic_load(&peak), 2);
	return NULL;
}

START_TEST(many_jobs)
{
	struct weft_config cfg = { .workers = 2, .blocking_threads = POOL };

	ck_assert_int_eq(weft_run(many_main, NULL, &cfg, NULL), 0);
}
END_TEST

/* ---- cancellation and deadlines ------------------------------------------ */

static atomic_int gate, ran_b;

static void *wait_gate(void *arg)
{
	while (!atomic_load(&gate))
		usleep(1000);
	return (void *)1;
}

static void *mark_ran(void *arg)
{
	atomic_fetch_add(&ran_b, 1);
	return NULL;
}

static void *run_job(void *arg)
{
	return (void *)(intptr_t)weft_blocking((weft_blocking_fn)arg, NULL,
					       NULL);
}

static void *cancel_main(void *arg)
{
	weft_task_t a, b;
	void *res;
	struct weft_deadline d;

	atomic_store(&gate, 0);
	atomic_store(&ran_b, 0);
	/* The one pool thread is busy with a; b waits in the queue. */
	ck_assert_int_eq(weft_spawn(&a, run_job, (void *)wait_gate), 0);
	io_await_pool(1, 0);
	ck_assert_int_eq(weft_spawn(&b, run_job, (void *)mark_ran), 0);
	io_await_pool(1, 1);
	ck_assert_int_eq(weft_cancel(b), 0);
	ck_assert_int_eq(weft_join(b, &res), 0);
	ck_assert_int_eq((intptr_t)res, -ECANCELED);

	/* A deadline on a queued job. */
	ck_assert_int_eq(weft_deadline_enter(&d, 10 * WEFT_MSEC), 0);
	ck_assert_int_eq(weft_blocking(mark_ran, NULL, NULL), -ETIMEDOUT);
	weft_deadline_leave(&d);

	/* A running job is not abandoned: cancelling a waits for it. */
	ck_assert_int_eq(weft_cancel(a), 0);
	weft_sleep(10 * WEFT_MSEC);
	atomic_store(&gate, 1);
	ck_assert_int_eq(weft_join(a, &res), 0);
	ck_assert_int_eq((intptr_t)res, 0);
	/* Neither cancelled job ever ran. */
	ck_assert_int_eq(weft_blocking(twice, (void *)2, &res), 0);
	ck_assert_int_eq(atomic_load(&ran_b), 0);

	/* Cancelled before it starts: fails at once. */
	ck_assert_int_eq(weft_cancel(weft_current()), 0);
	ck_assert_int_eq(weft_blocking(mark_ran, NULL, NULL), -ECANCELED);
	ck_assert_int_eq(atomic_load(&ran_b), 0);
	return NULL;
}

START_TEST(cancel_queued)
{
	struct weft_config cfg = { .workers = 2, .blocking_threads = 1 };

	ck_assert_int_eq(weft_run(cancel_main, NULL, &cfg, NULL), 0);
}
END_TEST

/* ---- shutdown with jobs queued ------------------------------------------- */

static void *shutdown_main(void *arg)
{
	atomic_store(&gate, 0);
	atomic_store(&ran_b, 0);
	ck_assert_int_eq(weft_spawn(NULL, run_job, (void *)wait_gate), 0);
	for (int i = 0; i < 10; i++)
		ck_assert_int_eq(weft_spawn(NULL, run_job, (void *)mark_ran),
				 0);
	weft_sleep(20 * WEFT_MSEC);
	atomic_store(&gate, 1); /* let the running one end eventually */
	return NULL;            /* the runtime cancels the waiting tasks */
}

START_TEST(shutdown_queued)
{
	struct weft_config cfg = { .workers = 2, .blocking_threads = 1 };

	ck_assert_int_eq(weft_run(shutdown_main, NULL, &cfg, NULL), 0);
	ck_assert_int_le(atomic_load(&ran_b), 10);
	/* And the pool works again in the next runtime. */
	ck_assert_int_eq(weft_run(many_main, NULL,
				  &(struct weft_config){
					  .workers = 2,
					  .blocking_threads = POOL },
				  NULL),
			 0);
}
END_TEST

START_TEST(plain_thread)
{
	void *res = NULL;

	ck_assert_int_eq(weft_blocking(twice, (void *)5, &res), 0);
	ck_assert_ptr_eq(res, (void *)10);
	ck_assert_int_eq(weft_blocking(NULL, NULL, NULL), -EINVAL);
}
END_TEST

/* ---- abandoning a running job (the resolver's way) ----------------------- */

static atomic_int discarded, release_jobs;

/* Runs until the test releases it, or for at most arg milliseconds: the
 * checks that it still runs hold however slow the machine (a sanitizer, an
 * emulator, a loaded CI), and a job nobody releases still ends. */
static void *slow_seven(void *arg)
{
	long max_ms = (long)(intptr_t)arg;
	for (long ms = 0; ms < max_ms && !atomic_load(&release_jobs); ms++)
		usleep(1000);
	return (void *)7;
}

static void count_discard(struct weft__bjob *job)
{
	atomic_fetch_add(&discarded, 1);
	free(job);
}

static struct weft__bjob *new_job(long max_ms)
{
	struct weft__bjob *j = calloc(1, sizeof(*j));

	j->fn = slow_seven;
	j->arg = (void *)(intptr_t)max_ms;
	j->discard = count_discard;
	return j;
}

/* Runs a job that runs until released, under a deadline of ns that passes
 * while it runs: abandoned, it is discarded when it ends. Again while the
 * job was still queued at the deadline, which discards it at once: a pool
 * thread kept off a CPU of a loaded host that long had not taken it. */
static void time_out_running(int64_t ns)
{
	struct weft_deadline d;
	int before = atomic_load(&discarded);

	for (int tries = 0; tries < 100; tries++) {
		ck_assert_int_eq(weft_deadline_enter(&d, ns), 0);
		ck_assert_int_eq(weft__blocking_run(new_job(60000)),
				 -ETIMEDOUT);
		weft_deadline_leave(&d);
		if (atomic_load(&discarded) == before)
			return;
		ck_assert_int_eq(atomic_load(&discarded), before + 1);
		atomic_store(&discarded, before);
	}
	ck_abort_msg("the pool never took a job before its deadline");
}

static void *abandon_main(void *arg)
{
	struct weft_deadline d;
	struct weft__bjob *j;
	int64_t t0 = weft_now();

	atomic_store(&discarded, 0);
	/* Finishes normally: the caller owns the job and its result. */
	j = new_job(20);
	ck_assert_int_eq(weft__blocking_run(j), 0);
	ck_assert_ptr_eq(j->result, (void *)7);
	free(j);
	/* Times out while running: returns at once, discarded at the end. */
	atomic_store(&release_jobs, 0);
	t0 = weft_now();
	time_out_running(10 * WEFT_MSEC);
	/* At once: not when the job ends, which it does only when released
	 * (or after 60 s). Not within IO_SLACK_MS: a worker preempted for
	 * half a second under a sanitizer on a busy machine passes that. */
	ck_assert_int_lt(io_ms_since(t0), 10 * 1000);
	/* Queued behind it (one thread) and timed out: discarded here. */
	ck_assert_int_eq(weft_deadline_enter(&d, 10 * WEFT_MSEC), 0);
	ck_assert_int_eq(weft__blocking_run(new_job(60000)), -ETIMEDOUT);
	weft_deadline_leave(&d);
	ck_assert_int_eq(atomic_load(&discarded), 1);
	atomic_store(&release_jobs, 1); /* the first ends: discarded there */
	for (int i = 0; i < 500 && atomic_load(&discarded) < 2; i++)
		weft_sleep(10 * WEFT_MSEC);
	ck_assert_int_eq(atomic_load(&discarded), 2);
	/* Abandoned and still running at shutdown: stop leaves it to end
	 * detached and free itself. It runs until released after weft_run
	 * returns: one that ran 200 ms could end before its 5 ms deadline
	 * was seen, on a worker preempted that long (the call then said 0),
	 * or before the run's stop, which then left nothing running. */
	atomic_store(&release_jobs, 0);
	time_out_running(5 * WEFT_MSEC);
	return NULL;
}

START_TEST(abandon_running)
{
	struct weft_config cfg = { .workers = 2, .blocking_threads = 1 };

	ck_assert_int_eq(weft_run(abandon_main, NULL, &cfg, NULL), 0);
	ck_assert_int_eq(atomic_load(&discarded), 2); /* the last still runs */
	atomic_store(&release_jobs, 1);
	for (int i = 0; i < 10000 && weft__blocking_orphans(); i++)
		usleep(1000);
	ck_assert_int_eq(weft__blocking_orphans(), 0);
	ck_assert_int_eq(atomic_load(&discarded), 3);
}
END_TEST

/* ---- cancelled again after it was abandoned ------------------------------ */

static struct weft__bjob *mapped_job;

/* Unmaps the job: a later look at it faults, in every build. */
static void unmap_discard(struct weft__bjob *job)
{
	munmap(job, sizeof(*job));
	atomic_fetch_add(&discarded, 1);
}

static void *run_mapped(void *arg)
{
	return (void *)(intptr_t)weft__blocking_run(mapped_job);
}

static void *cancel_twice_main(void *arg)
{
	weft_task_t a;
	void *res;

	atomic_store(&discarded, 0);
	atomic_store(&release_jobs, 0);
	mapped_job = mmap(NULL, sizeof(*mapped_job), PROT_READ | PROT_WRITE,
			  MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ck_assert_ptr_ne(mapped_job, MAP_FAILED);
	mapped_job->fn = slow_seven;
	mapped_job->arg = (void *)(intptr_t)60000;
	mapped_job->discard = unmap_discard;
	ck_assert_int_eq(weft_spawn(&a, run_mapped, NULL), 0);
	io_await_pool(1, 0);
	/* Abandoned: a is woken, but this task keeps the one worker, so a
	 * is still in its wait when the job ends and is discarded... */
	ck_assert_int_eq(weft_cancel(a), 0);
	atomic_store(&release_jobs, 1);
	for (int i = 0; i < 10000 && !atomic_load(&discarded); i++)
		usleep(1000);
	ck_assert_int_eq(atomic_load(&discarded), 1);
	/* ...and a second cancel (a group's, a deadline's) must not look
	 * at the job, which is gone. */
	ck_assert_int_eq(weft_cancel(a), 0);
	ck_assert_int_eq(weft_join(a, &res), 0);
	ck_assert_int_eq((intptr_t)res, -ECANCELED);
	return NULL;
}

START_TEST(cancel_abandoned_twice)
{
	struct weft_config cfg = { .workers = 1, .blocking_threads = 1 };

	ck_assert_int_eq(weft_run(cancel_twice_main, NULL, &cfg, NULL), 0);
}
END_TEST

/* ---- weft__blocking_abort (weft_close of a queued file call) ------------ */

static void *run_bjob(void *arg)
{
	return (void *)(intptr_t)weft__blocking_run(arg);
}

static void *abort_job_main(void *arg)
{
	struct weft__bjob early = { .fn = mark_ran },
			  running = { .fn = wait_gate },
			  queued = { .fn = mark_ran };
	weft_task_t a, b;
	void *res;

	atomic_store(&gate, 0);
	atomic_store(&ran_b, 0);
	/* Aborted before it was run: never queues. */
	weft__blocking_abort(&early, -EBADF);
	ck_assert_int_eq(weft__blocking_run(&early), -EBADF);
	/* The one thread runs `running`; `queued` waits behind it. */
	ck_assert_int_eq(weft_spawn(&a, run_bjob, &running), 0);
	io_await_pool(1, 0);
	ck_assert_int_eq(weft_spawn(&b, run_bjob, &queued), 0);
	io_await_pool(1, 1);
	/* The queued one ends at once, while the thread is still busy. */
	weft__blocking_abort(&queued, -EBADF);
	io_await_pool(1, 0);
	ck_assert_int_eq(weft_join(b, &res), 0);
	ck_assert_int_eq((intptr_t)res, -EBADF);
	/* The running one is left alone. */
	weft__blocking_abort(&running, -EBADF);
	atomic_store(&gate, 1);
	ck_assert_int_eq(weft_join(a, &res), 0);
	ck_assert_int_eq((intptr_t)res, 0);
	ck_assert_ptr_eq(running.result, (void *)1);
	ck_assert_int_eq(atomic_load(&ran_b), 0);
	return NULL;
}

START_TEST(abort_job)
{
	struct weft_config cfg = { .workers = 2, .blocking_threads = 1 };

	ck_assert_int_eq(weft_run(abort_job_main, NULL, &cfg, NULL), 0);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("io_blocking");
	TCase *tc = tcase_create("blocking");

	tcase_set_timeout(tc, 600);
	tcase_add_test(tc, many_jobs);
	tcase_add_test(tc, cancel_queued);
	tcase_add_test(tc, shutdown_queued);
	tcase_add_test(tc, plain_thread);
	tcase_add_test(tc, abandon_running);
	tcase_add_test(tc, cancel_abandoned_twice);
	tcase_add_test(tc, abort_job);
	suite_add_tcase(s, tc);
	return io_test_main(s);
}
