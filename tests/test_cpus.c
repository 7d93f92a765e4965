/* The default worker count: the affinity mask and cgroup CPU limits
 * (runtime/cpus.h). The cgroup files are read from fake trees built here,
 * laid out as a container, a Kubernetes pod and a cgroup v1 host lay them
 * out; the affinity mask is the process's own. */
#include <errno.h>
#include <sched.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "runtime/cpus.h"
#include "test_util.h"

static char root[64];

/* Writes text to root + path, making its directories. */
static void put(const char *path, const char *text)
{
	char full[512];
	snprintf(full, sizeof(full), "%s%s", root, path);
	for (char *p = full + strlen(root) + 1; (p = strchr(p, '/')); p++) {
		*p = '\0';
		ck_assert(mkdir(full, 0755) == 0 || errno == EEXIST);
		*p = '/';
	}
	FILE *f = fopen(full, "w");
	ck_assert_ptr_nonnull(f);
	fputs(text, f);
	fclose(f);
}

static void make_root(void)
{
	snprintf(root, sizeof(root), "/tmp/weft-cpus-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(root));
}

static void remove_root(void)
{
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", root);
	ck_assert_int_eq(system(cmd), 0);
}

/* A cgroup v2 host: the unified hierarchy at /sys/fs/cgroup. */
#define V2_MOUNT                                                               \
	"24 1 0:21 / /proc rw - proc proc rw\n"                                \
	"30 24 0:26 / /sys/fs/cgroup rw,nosuid shared:4 - cgroup2 cgroup2 "    \
	"rw,nsdelegate\n"

START_TEST(rule)
{
	ck_assert_int_eq(weft__cpus_for(8, 0), 8);
	ck_assert_int_eq(weft__cpus_for(8, 1.5), 2);
	ck_assert_int_eq(weft__cpus_for(8, 0.25), 2); /* at least 2 */
	ck_assert_int_eq(weft__cpus_for(8, 2.0), 2);
	ck_assert_int_eq(weft__cpus_for(8, 2.01), 3); /* rounded up */
	ck_assert_int_eq(weft__cpus_for(8, 100), 8);  /* never above the mask */
	ck_assert_int_eq(weft__cpus_for(1, 0.5), 1);
	ck_assert_int_eq(weft__cpus_for(0, 0), 1);
}
END_TEST

START_TEST(v2_leaf_limit)
{
	make_root();
	put("/proc/self/cgroup", "0::/kubepods/pod1/ctr\n");
	put("/proc/self/mountinfo", V2_MOUNT);
	put("/sys/fs/cgroup/kubepods/pod1/ctr/cpu.max", "150000 100000\n");
	put("/sys/fs/cgroup/kubepods/pod1/cpu.max", "max 100000\n");
	ck_assert_double_eq_tol(weft__cpus_cgroup_limit(root), 1.5, 1e-9);
	remove_root();
}
END_TEST

/* The kernel enforces every ancestor's limit: the tightest counts, not the
 * leaf's (Go 1.25 reads the leaf only). */
START_TEST(v2_ancestor_tighter)
{
	make_root();
	put("/proc/self/cgroup", "0::/kubepods/pod1/ctr\n");
	put("/proc/self/mountinfo", V2_MOUNT);
	put("/sys/fs/cgroup/kubepods/pod1/ctr/cpu.max", "max 100000\n");
	put("/sys/fs/cgroup/kubepods/pod1/cpu.max", "50000 100000\n");
	put("/sys/fs/cgroup/kubepods/cpu.max", "400000 100000\n");
	ck_assert_double_eq_tol(weft__cpus_cgroup_limit(root), 0.5, 1e-9);
	remove_root();
}
END_TEST

/* A container with its own cgroup namespace sees its cgroup as "/", at
 * the mount's top. */
START_TEST(v2_namespaced_top)
{
	make_root();
	put("/proc/self/cgroup", "0::/\n");
	put("/proc/self/mountinfo", V2_MOUNT);
	put("/sys/fs/cgroup/cpu.max", "200000 100000\n");
	ck_assert_double_eq_tol(weft__cpus_cgroup_limit(root), 2.0, 1e-9);
	remove_root();
}
END_TEST

START_TEST(v2_no_limit)
{
	make_root();
	put("/proc/self/cgroup", "0::/user.slice\n");
	put("/proc/self/mountinfo", V2_MOUNT);
	put("/sys/fs/cgroup/user.slice/cpu.max", "max 100000\n");
	ck_assert(weft__cpus_cgroup_limit(root) == 0);
	remove_root();
}
END_TEST

/* A cgroup v1 (or hybrid) host: cpu and cpuacct mounted together, the
 * unified hierarchy beside them without the cpu controller. */
START_TEST(v1_hybrid)
{
	make_root();
	put("/proc/self/cgroup", "5:memory:/docker/abc\n"
				 "3:cpu,cpuacct:/docker/abc\n"
				 "0::/docker/abc\n");
	put("/proc/self/mountinfo",
	    "30 22 0:27 / /sys/fs/cgroup ro - tmpfs tmpfs ro,mode=755\n"
	    "31 30 0:28 / /sys/fs/cgroup/cpuacct,cpu rw - cgroup cgroup "
	    "rw,cpuacct,cpu\n"
	    "34 30 0:31 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n"
	    "40 30 0:37 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw\n");
	put("/sys/fs/cgroup/cpuacct,cpu/docker/abc/cpu.cfs_quota_us",
	    "250000\n");
	put("/sys/fs/cgroup/cpuacct,cpu/docker/abc/cpu.cfs_period_us",
	    "100000\n");
	put("/sys/fs/cgroup/cpuacct,cpu/docker/cpu.cfs_quota_us", "-1\n");
	put("/sys/fs/cgroup/cpuacct,cpu/docker/cpu.cfs_period_us", "100000\n");
	ck_assert_double_eq_tol(weft__cpus_cgroup_limit(root), 2.5, 1e-9);
	remove_root();
}
END_TEST

/* Docker without a cgroup namespace mounts the container's own cgroup as
 * the top (ROOT /docker/abc), while /proc/self/cgroup names it in full;
 * the mount point has a space (escaped \040 in mountinfo). */
START_TEST(v1_mount_root_inside)
{
	make_root();
	put("/proc/self/cgroup", "2:cpu:/docker/abc\n");
	put("/proc/self/mountinfo",
	    "31 30 0:28 /docker/abc /sys/fs/cgroup/my\\040cpu ro - cgroup "
	    "cgroup ro,cpu\n");
	put("/sys/fs/cgroup/my cpu/cpu.cfs_quota_us", "50000\n");
	put("/sys/fs/cgroup/my cpu/cpu.cfs_period_us", "100000\n");
	ck_assert_double_eq_tol(weft__cpus_cgroup_limit(root), 0.5, 1e-9);
	remove_root();
}
END_TEST

/* Whatever is missing or garbled limits nothing, and reads nothing past
 * what is there. */
START_TEST(bad_trees)
{
	make_root();
	ck_assert(weft__cpus_cgroup_limit(root) == 0); /* no files at all */
	put("/proc/self/cgroup", "garbage\n::\n0:x\n");
	put("/proc/self/mountinfo", V2_MOUNT "short line\n- - -\n");
	ck_assert(weft__cpus_cgroup_limit(root) == 0);
	/* A cgroup outside what the mount shows. */
	put("/proc/self/cgroup", "0::/elsewhere\n");
	put("/proc/self/mountinfo",
	    "30 24 0:26 /mine /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n");
	put("/sys/fs/cgroup/cpu.max", "100000 100000\n");
	ck_assert(weft__cpus_cgroup_limit(root) == 0);
	/* "/mine" must not match "/minefield". */
	put("/proc/self/cgroup", "0::/minefield\n");
	ck_assert(weft__cpus_cgroup_limit(root) == 0);
	/* Garbled or senseless numbers (under a top that limits nothing). */
	put("/sys/fs/cgroup/cpu.max", "max 100000\n");
	put("/proc/self/cgroup", "0::/a\n");
	put("/proc/self/mountinfo", V2_MOUNT);
	put("/sys/fs/cgroup/a/cpu.max", "abc 100000\n");
	ck_assert(weft__cpus_cgroup_limit(root) == 0);
	put("/sys/fs/cgroup/a/cpu.max", "100000 0\n");
	ck_assert(weft__cpus_cgroup_limit(root) == 0);
	put("/sys/fs/cgroup/a/cpu.max", "-5 100000\n");
	ck_assert(weft__cpus_cgroup_limit(root) == 0);
	put("/sys/fs/cgroup/a/cpu.max", "");
	ck_assert(weft__cpus_cgroup_limit(root) == 0);
	remove_root();
}
END_TEST

static void *workers_main(void *arg)
{
	(void)arg;
	return (void *)(long)weft_workers();
}

/* The process's own mask, narrowed to one CPU: the default is 1 worker
 * (no cgroup limit raises it), and weft_run starts that many. */
START_TEST(affinity_sets_default)
{
	cpu_set_t old, one;
	int first = -1;

	ck_assert_int_eq(sched_getaffinity(0, sizeof(old), &old), 0);
	for (int i = 0; i < CPU_SETSIZE && first < 0; i++)
		if (CPU_ISSET(i, &old))
			first = i;
	ck_assert_int_ge(first, 0);
	CPU_ZERO(&one);
	CPU_SET(first, &one);
	unsetenv("WEFT_WORKERS");
	ck_assert_int_eq(sched_setaffinity(0, sizeof(one), &one), 0);
	int n = weft__cpus_default();
	long ran = (long)weft_test_run(workers_main, NULL, 0);
	ck_assert_int_eq(sched_setaffinity(0, sizeof(old), &old), 0);
	ck_assert_int_eq(n, 1);
	ck_assert_int_eq(ran, 1);
	/* Restored: as many as the mask holds, unless a cgroup limit here
	 * says fewer. */
	ck_assert_int_eq(weft__cpus_default(),
			 weft__cpus_for(CPU_COUNT(&old),
					weft__cpus_cgroup_limit("")));
}
END_TEST

/* A real cgroup, where the test may make one (as root, on a writable
 * cgroup file system: a fresh VM or CI machine): a child moved into a
 * cgroup limited to half a CPU reads 0.5 through the real /proc files.
 * Elsewhere (a container's read-only cgroup mount) it says so and checks
 * nothing more; the fake trees above cover the parsing. */
static const char *const limit_file[][2] = {
	{ "/sys/fs/cgroup/cpu", "cpu.cfs_quota_us" },
	{ "/sys/fs/cgroup/cpu,cpuacct", "cpu.cfs_quota_us" },
	{ "/sys/fs/cgroup", "cpu.max" },
};

static bool write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");
	if (!f)
		return false;
	bool ok = fputs(text, f) >= 0;
	return fclose(f) == 0 && ok;
}

START_TEST(real_cgroup)
{
	char dir[256], path[300];
	int i, n = sizeof(limit_file) / sizeof(limit_file[0]);

	for (i = 0; i < n; i++) {
		snprintf(dir, sizeof(dir), "%s/weft-test-%d", limit_file[i][0],
			 (int)getpid());
		if (mkdir(dir, 0755) == 0) {
			snprintf(path, sizeof(path), "%s/%s", dir,
				 limit_file[i][1]);
			if (write_file(path, i < 2 ? "50000" : "50000 100000"))
				break;
			rmdir(dir);
		}
	}
	if (i == n) {
		printf("real_cgroup: no writable cgroup here; only the fake "
		       "trees were read\n");
		return;
	}
	pid_t pid = weft_test_fork();
	if (pid == 0) {
		snprintf(path, sizeof(path), "%s/cgroup.procs", dir);
		if (!write_file(path, "0"))
			_exit(255);
		_exit((int)(weft__cpus_cgroup_limit("") * 100 + 0.5));
	}
	int status;
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert_int_eq(rmdir(dir), 0);
	ck_assert(WIFEXITED(status));
	ck_assert_int_eq(WEXITSTATUS(status), 50);
}
END_TEST

/* Opens of the watched file since the last call (events read). */
static int opens_seen(int in)
{
	char ev[4096] __attribute__((aligned(8)));
	int n = 0;
	ssize_t r;

	while ((r = read(in, ev, sizeof(ev))) > 0)
		for (char *p = ev; p < ev + r;
		     p += sizeof(struct inotify_event) +
			  ((struct inotify_event *)p)->len)
			n++;
	return n;
}

/* The monitor reads the affinity mask on every crowded look: after the
 * first call that opens no file (cpus.c), or a descriptor opened mid-run
 * would take a number the program just closed. The file glibc reads for
 * the configured CPUs is watched with inotify where it can be. Another
 * process may open it during a round (a suite beside this one), so one
 * quiet round in 20 passes; each round opened it three times before. */
START_TEST(affinity_opens_nothing_twice)
{
	static const char possible[] = "/sys/devices/system/cpu/possible";
	int in = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	bool quiet = false;

	ck_assert_int_ge(weft__cpus_affinity(), 1);
	if (in < 0 || inotify_add_watch(in, possible, IN_OPEN) < 0 ||
	    (opens_seen(in), sysconf(_SC_NPROCESSORS_CONF) < 1) ||
	    !opens_seen(in)) {
		printf("affinity_opens_nothing_twice: %s's opens not seen "
		       "here\n",
		       possible);
		if (in >= 0)
			close(in);
		return;
	}
	for (int round = 0; round < 20 && !quiet; round++) {
		opens_seen(in);
		for (int i = 0; i < 3; i++)
			ck_assert_int_ge(weft__cpus_affinity(), 1);
		quiet = !opens_seen(in);
	}
	close(in);
	ck_assert_msg(quiet, "weft__cpus_affinity opened %s every time",
		      possible);
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("cpus");
	TCase *tc = tcase_create("core");
	tcase_add_test(tc, rule);
	tcase_add_test(tc, v2_leaf_limit);
	tcase_add_test(tc, v2_ancestor_tighter);
	tcase_add_test(tc, v2_namespaced_top);
	tcase_add_test(tc, v2_no_limit);
	tcase_add_test(tc, v1_hybrid);
	tcase_add_test(tc, v1_mount_root_inside);
	tcase_add_test(tc, bad_trees);
	tcase_add_test(tc, affinity_sets_default);
	tcase_add_test(tc, affinity_opens_nothing_twice);
	tcase_add_test(tc, real_cgroup);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return weft_test_main(suite());
}
