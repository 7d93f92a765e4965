/* weft_group for servers (WEFT_GROUP_COLLECT): failures counted, the others
 * running on; weft_group_shutdown cancelling and waiting for all, also
 * from a cancelled task, refusing spawns meanwhile; many members failing
 * and spawning at once across workers; bad input. */
#include <errno.h>
#include <stdatomic.h>
#include "test_util.h"

#define WORKERS 4

static struct weft_event never = WEFT_EVENT_INIT;
static atomic_long finished, cancelled;

static void *nap_then(void *arg)
{
	intptr_t err = (intptr_t)arg;

	ck_assert_int_eq(weft_sleep((err ? 1 : 20) * WEFT_MSEC), 0);
	atomic_fetch_add(&finished, 1);
	return err ? WEFT_ERR_PTR((int)err) : NULL;
}

static void *collect_main(void *arg)
{
	struct weft_group g = WEFT_GROUP_INIT_COLLECT(g);

	atomic_store(&finished, 0);
	for (intptr_t i = 0; i < 10; i++)
		ck_assert_int_eq(
			weft_group_spawn(&g, nap_then,
					 (void *)(intptr_t)(i % 3 ? 0 : -EIO)),
			0);
	/* Until four have failed (not a fixed sleep: a loaded host may run
	 * them later), and spawning goes on. */
	for (int ms = 0; ms < 10000 && weft_group_failures(&g) < 4; ms++)
		ck_assert_int_eq(weft_sleep(WEFT_MSEC), 0);
	ck_assert_int_eq(weft_group_failures(&g), 4);
	ck_assert_int_eq(weft_group_spawn(&g, nap_then, NULL), 0);
	ck_assert_int_eq(weft_group_wait(&g), -EIO);
	ck_assert_int_eq(atomic_load(&finished), 11); /* none cancelled */
	ck_assert_int_eq(weft_group_failures(&g), 4);
	ck_assert_int_eq(weft_group_running(&g), 0);
	/* The next round starts clean, the count goes on. */
	ck_assert_int_eq(weft_group_spawn(&g, nap_then, NULL), 0);
	ck_assert_int_eq(weft_group_wait(&g), 0);
	ck_assert_int_eq(weft_group_failures(&g), 4);
	return NULL;
}

START_TEST(failures_collected)
{
	weft_test_run(collect_main, NULL, WORKERS);
}
END_TEST

struct member {
	struct weft_group *g;
	int spawn_result; /* of a spawn tried once cancelled */
};

/* A connection: waits until cancelled, then tries to spawn a helper. */
static void *connection(void *arg)
{
	struct member *m = arg;

	ck_assert_int_eq(weft_event_wait(&never), -ECANCELED);
	m->spawn_result = weft_group_spawn(m->g, nap_then, NULL);
	atomic_fetch_add(&cancelled, 1);
	return WEFT_ERR_PTR(-ECONNRESET);
}

static void *shutdown_main(void *arg)
{
	struct weft_group g;
	struct member m[50];
	bool cancel_self = arg != NULL;

	ck_assert_int_eq(weft_group_init_flags(&g, WEFT_GROUP_COLLECT), 0);
	atomic_store(&cancelled, 0);
	for (int i = 0; i < 50; i++) {
		m[i] = (struct member){ &g, 1 };
		ck_assert_int_eq(weft_group_spawn(&g, connection, &m[i]), 0);
	}
	weft_sleep(5 * WEFT_MSEC);
	ck_assert_int_eq(weft_group_running(&g), 50);
	if (cancel_self)
		weft_cancel(weft_current());
	/* Every member cancelled and waited for, even by a cancelled task:
	 * they use m[] on this stack. */
	ck_assert_int_eq(weft_group_shutdown(&g), -ECONNRESET);
	ck_assert_int_eq(atomic_load(&cancelled), 50);
	for (int i = 0; i < 50; i++)
		ck_assert_int_eq(m[i].spawn_result, -ECANCELED);
	ck_assert_int_eq(weft_group_running(&g), 0);
	ck_assert_int_eq(weft_group_failures(&g), 50);
	if (!cancel_self) { /* usable again */
		ck_assert_int_eq(weft_group_spawn(&g, nap_then, NULL), 0);
		ck_assert_int_eq(weft_group_wait(&g), 0);
	}
	return NULL;
}

START_TEST(shutdown_cancels_and_waits)
{
	weft_test_run(shutdown_main, NULL, WORKERS);
	weft_test_run(shutdown_main, (void *)1, WORKERS);
}
END_TEST

/* Many spawners and members failing at random; shutdown in the middle. */
struct spawner {
	struct weft_group *g;
	long spawned, refused;
};

static atomic_long failed;

static void *short_life(void *arg)
{
	intptr_t i = (intptr_t)arg;
	int err = i % 2 ? -EIO : 0;

	if (i % 3 == 0)
		weft_yield();
	if (i % 7 == 0 && weft_sleep(WEFT_MSEC) == -ECANCELED)
		err = -ECANCELED;
	if (err)
		atomic_fetch_add(&failed, 1);
	return err ? WEFT_ERR_PTR(err) : NULL;
}

static void *spawn_many(void *arg)
{
	struct spawner *s = arg;

	for (intptr_t i = 0; i < weft_test_scaled(2000, 200); i++) {
		int r = weft_group_spawn(s->g, short_life, (void *)i);

		if (r == -ECANCELED) {
			s->refused++;
			weft_yield();
		} else {
			ck_assert_int_eq(r, 0);
			s->spawned++;
		}
	}
	return NULL;
}

static void *stress_main(void *arg)
{
	struct weft_group g = WEFT_GROUP_INIT_COLLECT(g);
	struct spawner sp[4] = {
		{ &g, 0, 0 }, { &g, 0, 0 }, { &g, 0, 0 }, { &g, 0, 0 }
	};
	weft_task_t t[4];
	long spawned = 0;
	int r;

	for (int i = 0; i < 4; i++)
		ck_assert_int_eq(weft_spawn(&t[i], spawn_many, &sp[i]), 0);
	weft_sleep(2 * WEFT_MSEC);
	r = weft_group_shutdown(&g);
	ck_assert(r == 0 || r == -EIO || r == -ECANCELED);
	for (int i = 0; i < 4; i++) {
		ck_assert_int_eq(weft_join(t[i], NULL), 0);
		spawned += sp[i].spawned;
	}
	r = weft_group_wait(&g);
	ck_assert(r == 0 || r == -EIO || r == -ECANCELED);
	ck_assert_int_eq(weft_group_running(&g), 0);
	ck_assert_int_eq(weft_group_failures(&g), atomic_load(&failed));
	ck_assert_int_gt(spawned, 0);
	return NULL;
}

START_TEST(stress)
{
	weft_test_run(stress_main, NULL, WORKERS);
}
END_TEST

START_TEST(bad_input)
{
	struct weft_group g;

	ck_assert_int_eq(weft_group_init_flags(NULL, 0), -EINVAL);
	ck_assert_int_eq(weft_group_init_flags(&g, 0x80), -EINVAL);
	ck_assert_int_eq(weft_group_shutdown(NULL), -EINVAL);
	ck_assert_int_eq(weft_group_running(NULL), -EINVAL);
	ck_assert_int_eq(weft_group_failures(NULL), -EINVAL);
	/* From a plain thread: nothing to wait for. */
	ck_assert_int_eq(weft_group_init_flags(&g, WEFT_GROUP_COLLECT), 0);
	ck_assert_int_eq(weft_group_shutdown(&g), 0);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("sync_group_server");
	TCase *tc = tcase_create("group_server");

	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, failures_collected);
	tcase_add_test(tc, shutdown_cancels_and_waits);
	tcase_add_test(tc, stress);
	tcase_add_test(tc, bad_input);
	suite_add_tcase(s, tc);
	return weft_test_main(s);
}
