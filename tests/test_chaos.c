/* Chaos: every primitive, stream I/O over socketpairs, random deadlines,
 * a task that cancels and respawns the others at random, and a plain
 * thread on the same primitives, for WEFT_CHAOS_SECONDS (default 60) on
 * two workers. Invariants: the lock excludes, the semaphore bounds its
 * holders, every byte sent is echoed, every task ends, weft_run returns.
 * Not part of the normal run (ctest label "chaos"): scripts/chaos runs it
 * under tsan, several times in a row. */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/socket.h>
#include <unistd.h>
#include "test_util.h"
#include "weft/io.h"

#define NTASKS 30
#define PERMITS 3
#define PARTIES 3

static struct weft_lock lock = WEFT_LOCK_INIT;
static struct weft_lock cond_lock = WEFT_LOCK_INIT;
static struct weft_cond cond = WEFT_COND_INIT(&cond_lock);
static struct weft_event event = WEFT_EVENT_INIT;
static struct weft_barrier barrier = WEFT_BARRIER_INIT(PARTIES);
static struct weft_sem sem;
static struct weft_queue queue;
static atomic_bool stop;
static int in_lock;     /* under lock */
static long lock_count; /* under lock */
static bool cond_flag;  /* under cond_lock */
static atomic_int sem_holders;
static atomic_long ops, sent, echoed, moved, passed;

struct slot {
	weft_task_t task;
	int fd; /* this slot's end of its socketpair */
	unsigned seed;
};

static struct slot slots[NTASKS];

static void check_lock(void)
{
	ck_assert_int_eq(in_lock, 0);
	in_lock = 1;
	lock_count++;
	in_lock = 0;
}

static void do_lock(void)
{
	if (weft_lock_acquire(&lock))
		return;
	check_lock();
	weft_yield(); /* may fail once cancelled: the lock is still ours */
	ck_assert_int_eq(weft_lock_release(&lock), 0);
}

static void do_sem(void)
{
	if (weft_sem_acquire(&sem))
		return;
	ck_assert_int_le(atomic_fetch_add(&sem_holders, 1) + 1, PERMITS);
	weft_sleep(10 * WEFT_USEC);
	atomic_fetch_sub(&sem_holders, 1);
	ck_assert_int_eq(weft_sem_release(&sem), 0);
}

static bool flag_set(void *arg)
{
	return cond_flag;
}

static void do_cond(unsigned r)
{
	if (weft_lock_acquire(&cond_lock))
		return;
	if (r & 1) {
		cond_flag = true;
		ck_assert_int_ge(weft_cond_notify_all(&cond), 0);
	} else if (weft_cond_wait_for(&cond, flag_set, NULL) == 0) {
		cond_flag = false;
	}
	/* The lock is held again whatever the wait returned. */
	ck_assert_int_eq(weft_lock_release(&cond_lock), 0);
}

static void *future_setter(void *arg)
{
	weft_sleep(50 * WEFT_USEC);
	weft_future_set_result(arg, (void *)7);
	return NULL;
}

static void do_future(void)
{
	struct weft_future f;
	weft_task_t t;
	void *res;
	weft_future_init(&f);
	if (weft_spawn(&t, future_setter, &f))
		return;
	int r = weft_future_wait(&f, &res);
	ck_assert(r != 0 || res == (void *)7);
	/* f is on this stack: the setter must be gone before we return. */
	struct weft_shield sh;
	ck_assert_int_eq(weft_shield_enter(&sh), 0);
	weft_cancel(t);
	ck_assert_int_eq(weft_join(t, NULL), 0);
	weft_shield_leave(&sh);
}

static void *member(void *arg)
{
	weft_sleep(20 * WEFT_USEC);
	return NULL;
}

static void do_group(void)
{
	struct weft_group g;
	weft_group_init(&g);
	for (int i = 0; i < 3; i++)
		ck_assert_int_eq(weft_group_spawn(&g, member, NULL), 0);
	int r = weft_group_wait(&g); /* waits for the members whatever */
	ck_assert(r == 0 || r == -ECANCELED || r == -ETIMEDOUT);
}

static void do_stream(struct slot *s)
{
	char c = 'x';
	if (weft_send(s->fd, &c, 1, 0) == 1) {
		atomic_fetch_add(&sent, 1);
		if (weft_recv(s->fd, &c, 1, 0) == 1)
			atomic_fetch_add(&echoed, 1);
	}
}

static void do_queue(unsigned r)
{
	long v = 1;
	if (r & 1 ? weft_queue_put(&queue, &v) : weft_queue_get(&queue, &v))
		return; /* timed out or cancelled: nothing moved */
	atomic_fetch_add(&moved, 1);
}

static void one_op(struct slot *s)
{
	unsigned r = (unsigned)rand_r(&s->seed);
	struct weft_deadline d;
	ck_assert_int_eq(weft_deadline_enter(&d,
					     (int64_t)(r % 2000) * WEFT_USEC),
			 0);
	switch ((r >> 11) % 10) {
	case 0:
		do_lock();
		break;
	case 1:
		do_sem();
		break;
	case 2:
		do_cond(r >> 16);
		break;
	case 3:
		do_future();
		break;
	case 4:
		do_group();
		break;
	case 5:
		do_stream(s);
		break;
	case 6:
		do_queue(r >> 16);
		break;
	case 7:
		if (r & (1 << 16))
			weft_event_set(&event);
		else if (weft_event_wait(&event) == 0)
			weft_event_clear(&event);
		break;
	case 8:
		if (weft_barrier_wait(&barrier) >= 0)
			atomic_fetch_add(&passed, 1);
		break;
	default:
		weft_sleep((int64_t)(r % 100) * WEFT_USEC);
		break;
	}
	weft_deadline_leave(&d);
	atomic_fetch_add(&ops, 1);
}

/* Ends once cancelled: calls that complete at once would not tell it. */
static void *chaos_task(void *arg)
{
	struct slot *s = arg;
	while (!atomic_load(&stop) && weft_is_cancelled(weft_current()) == 0)
		one_op(s);
	return NULL;
}

/* Echoes every byte back on the other end of a slot's socketpair. */
static void *echo_task(void *arg)
{
	int fd = (int)(intptr_t)arg;
	char c;
	while (weft_recv(fd, &c, 1, 0) == 1)
		if (weft_send(fd, &c, 1, 0) != 1)
			break;
	return NULL;
}

/* What a try_put or try_get on the bounded queue may say. */
static bool one_of_ok(int r)
{
	return r == 0 || r == -EAGAIN;
}

/* The plain thread: calls that cannot wait for ever off a task. */
static void *plain_thread(void *arg)
{
	unsigned seed = 99;
	while (!atomic_load(&stop)) {
		unsigned r = (unsigned)rand_r(&seed);
		long v = 2;
		switch (r % 5) {
		case 0:
			ck_assert_int_eq(weft_lock_acquire(&lock), 0);
			check_lock();
			ck_assert_int_eq(weft_lock_release(&lock), 0);
			break;
		case 1:
			if (weft_sem_try_acquire(&sem) == 0) {
				atomic_fetch_add(&sem_holders, 1);
				atomic_fetch_sub(&sem_holders, 1);
				weft_sem_release(&sem);
			}
			break;
		case 2:
			ck_assert(one_of_ok(weft_queue_try_put(&queue, &v)));
			break;
		case 3:
			ck_assert(one_of_ok(weft_queue_try_get(&queue, &v)));
			break;
		default:
			weft_event_set(&event);
			break;
		}
		if (r % 64 == 0)
			usleep(100);
	}
	return NULL;
}

static void spawn_slot(int i)
{
	ck_assert_int_eq(weft_spawn(&slots[i].task, chaos_task, &slots[i]), 0);
}

static void *chaos_main(void *arg)
{
	int64_t seconds = *(int64_t *)arg;
	weft_task_t echoes[NTASKS];
	ck_assert_int_eq(weft_sem_init(&sem, PERMITS), 0);
	ck_assert_int_eq(weft_queue_init(&queue, sizeof(long), 8), 0);
	for (int i = 0; i < NTASKS; i++) {
		int sv[2];
		ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
		slots[i].fd = sv[0];
		slots[i].seed = (unsigned)i + 1;
		ck_assert_int_eq(weft_spawn(&echoes[i], echo_task,
					    (void *)(intptr_t)sv[1]),
				 0);
		spawn_slot(i);
	}
	pthread_t th;
	ck_assert_int_eq(pthread_create(&th, NULL, plain_thread, NULL), 0);
	/* The monkey: cancels a task at random, joins it, respawns it. */
	unsigned seed = 12345;
	int64_t end = weft_now() + seconds * WEFT_SEC;
	long respawns = 0;
	while (weft_now() < end) {
		weft_sleep((int64_t)(rand_r(&seed) % 2000) * WEFT_USEC);
		int i = rand_r(&seed) % NTASKS;
		ck_assert_int_eq(weft_cancel(slots[i].task), 0);
		ck_assert_int_eq(weft_join(slots[i].task, NULL), 0);
		spawn_slot(i);
		respawns++;
	}
	atomic_store(&stop, true);
	for (int i = 0; i < NTASKS; i++) {
		weft_cancel(slots[i].task);
		ck_assert_int_eq(weft_join(slots[i].task, NULL), 0);
		shutdown(slots[i].fd, SHUT_RDWR); /* ends its echo task */
	}
	for (int i = 0; i < NTASKS; i++) {
		ck_assert_int_eq(weft_join(echoes[i], NULL), 0);
		close(slots[i].fd);
	}
	pthread_join(th, NULL); /* it has stopped */
	weft_queue_destroy(&queue);
	printf("chaos: %ld ops, %ld respawns, %ld bytes echoed of %ld, "
	       "%ld under the lock\n",
	       atomic_load(&ops), respawns, atomic_load(&echoed),
	       atomic_load(&sent), lock_count);
	ck_assert_int_gt(atomic_load(&ops), 0);
	return NULL;
}

START_TEST(chaos)
{
	const char *env = getenv("WEFT_CHAOS_SECONDS");
	int64_t seconds = env ? atoll(env) : 60;
	weft_test_run(chaos_main, &seconds, 2);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("chaos");
	TCase *tc = tcase_create("chaos");
	tcase_set_timeout(tc, 3600);
	tcase_add_test(tc, chaos);
	suite_add_tcase(s, tc);
	return weft_test_main(s);
}
