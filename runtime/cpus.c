/* How many CPUs this process may use: see cpus.h. */
#include <limits.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cpus.h"

/* A limit above this many CPUs limits nothing a worker count could. */
#define LIMIT_MAX 1e6

enum hierarchy { V2, V1 };

/* Reads the number at the start of the file dir/name into *a, and with b
 * the one after it into *b. Returns how many it read: 0 if the file cannot
 * be read or starts with something else ("max", say). */
static int read_numbers(const char *dir, const char *name, double *a, double *b)
{
	char path[PATH_MAX], line[128];
	FILE *f;
	int n = 0;

	if (snprintf(path, sizeof(path), "%s/%s", dir, name) >=
		    (int)sizeof(path) ||
	    !(f = fopen(path, "re")))
		return 0;
	if (fgets(line, sizeof(line), f))
		n = b ? sscanf(line, "%lf %lf", a, b) : sscanf(line, "%lf", a);
	fclose(f);
	return n > 0 ? n : 0;
}

/* One cgroup's own limit in CPUs, read in its directory dir: 0 for none.
 * v2's cpu.max is "QUOTA PERIOD", QUOTA "max" for none; v1 splits them
 * into cpu.cfs_quota_us (-1 for none) and cpu.cfs_period_us. */
static double own_limit(const char *dir, enum hierarchy h)
{
	double quota = 0, period = 0;

	if (h == V2) {
		if (read_numbers(dir, "cpu.max", &quota, &period) != 2)
			return 0; /* "max PERIOD": no limit */
	} else if (read_numbers(dir, "cpu.cfs_quota_us", &quota, NULL) != 1 ||
		   read_numbers(dir, "cpu.cfs_period_us", &period, NULL) != 1) {
		return 0;
	}
	if (quota <= 0 || period <= 0 || quota / period > LIMIT_MAX)
		return 0;
	return quota / period;
}

/* The tighter of two limits, either 0 for none. */
static double tighter(double a, double b)
{
	return a > 0 && (b <= 0 || a < b) ? a : b;
}

/* The tightest limit of the cgroup at dir and of its ancestors down to
 * (and including) the mount's top, the first top_len bytes of dir: the
 * kernel enforces every one of them. Cuts dir as it climbs. */
static double tightest_limit(char *dir, size_t top_len, enum hierarchy h)
{
	double tightest = 0;

	for (;;) {
		tightest = tighter(own_limit(dir, h), tightest);
		char *slash = strrchr(dir + top_len, '/');
		if (!slash)
			return tightest;
		*slash = '\0';
	}
}

/* Undoes mountinfo's octal escapes (a space is \040) in place. */
static void unescape(char *s)
{
	char *out = s;

	for (; *s; s++) {
		if (s[0] == '\\' && s[1] >= '0' && s[1] <= '3' && s[2] >= '0' &&
		    s[2] <= '7' && s[3] >= '0' && s[3] <= '7') {
			*out++ = (char)((s[1] - '0') << 6 | (s[2] - '0') << 3 |
					(s[3] - '0'));
			s += 3;
		} else {
			*out++ = *s;
		}
	}
	*out = '\0';
}

/* Whether item is one of the comma-separated items of list. */
static bool has_item(const char *list, const char *item)
{
	size_t n = strlen(item);

	for (const char *p = list;; p++) {
		if (!strncmp(p, item, n) && (p[n] == ',' || p[n] == '\0'))
			return true;
		if (!(p = strchr(p, ',')))
			return false;
	}
}

/* The calling process's cgroup path in each hierarchy, from
 * /proc/self/cgroup ("0::PATH" for v2; "ID:CONTROLLERS:PATH" for v1, with
 * cpu among the controllers), into cg[V2] and cg[V1], "" where it has
 * none; false if it has none at all. */
static bool own_cgroups(const char *root, char cg[2][PATH_MAX])
{
	char file[PATH_MAX], *line = NULL;
	size_t cap = 0;
	FILE *f;

	cg[V2][0] = cg[V1][0] = '\0';
	if (snprintf(file, sizeof(file), "%s/proc/self/cgroup", root) >=
		    (int)sizeof(file) ||
	    !(f = fopen(file, "re")))
		return false;
	while (getline(&line, &cap, f) > 0) {
		line[strcspn(line, "\n")] = '\0';
		char *list = strchr(line, ':');
		char *path = list ? strchr(list + 1, ':') : NULL;
		if (!path)
			continue;
		*list++ = '\0';
		*path++ = '\0';
		int h = !strcmp(line, "0") && !*list ? V2
			: has_item(list, "cpu")      ? V1
						     : -1;
		if (h >= 0 && !cg[h][0] && *path == '/' &&
		    strlen(path) < PATH_MAX)
			strcpy(cg[h], path);
	}
	free(line);
	fclose(f);
	return cg[V2][0] || cg[V1][0];
}

/* Splits a /proc/self/mountinfo line (ID PARENT DEV ROOT MOUNTPOINT
 * OPTIONS [TAGS...] - FSTYPE SOURCE SUPEROPTIONS) and says which
 * hierarchy it mounts: V2 (cgroup2), V1 (cgroup with the cpu controller)
 * or neither (-1). Then *mroot (the part of the hierarchy it shows) and
 * *mpoint point into line, unescaped. */
static int mounted_hierarchy(char *line, char **mroot, char **mpoint)
{
	char *field[6], *save = NULL, *tok = strtok_r(line, " \n", &save);
	int n = 0;

	for (; tok && n < 6; tok = strtok_r(NULL, " \n", &save))
		field[n++] = tok;
	while (tok && strcmp(tok, "-"))
		tok = strtok_r(NULL, " \n", &save);
	char *fstype = tok ? strtok_r(NULL, " \n", &save) : NULL;
	char *source = fstype ? strtok_r(NULL, " \n", &save) : NULL;
	char *super = source ? strtok_r(NULL, " \n", &save) : NULL;
	if (n < 6 || !super)
		return -1;
	int h = !strcmp(fstype, "cgroup2")                            ? V2
		: !strcmp(fstype, "cgroup") && has_item(super, "cpu") ? V1
								      : -1;
	*mroot = field[3];
	*mpoint = field[4];
	unescape(*mroot);
	unescape(*mpoint);
	return h;
}

/* The directory of cgroup cg, in dir (size bytes), under a mount at
 * root + mpoint that shows its hierarchy from mroot down; *top is the
 * length of root + mpoint. false if cg lies outside what the mount shows
 * (another cgroup namespace's mount, say) or the path is too long. */
static bool cgroup_dir(const char *root, const char *mroot, const char *mpoint,
		       const char *cg, char *dir, size_t size, size_t *top)
{
	size_t rlen = strcmp(mroot, "/") ? strlen(mroot) : 0;
	const char *below = cg + rlen;

	if (strncmp(cg, mroot, rlen) || (*below && *below != '/'))
		return false;
	if (!strcmp(below, "/"))
		below = "";
	int at = snprintf(dir, size, "%s%s", root, mpoint);
	*top = (size_t)at;
	return at < (int)size && snprintf(dir + at, size - *top, "%s", below) <
					 (int)(size - *top);
}

double weft__cpus_cgroup_limit(const char *root)
{
	char cg[2][PATH_MAX], file[PATH_MAX], dir[PATH_MAX], *line = NULL;
	char *mroot, *mpoint;
	double limit[2] = { 0, 0 };
	bool mapped[2] = { false, false };
	size_t cap = 0, top;
	FILE *f;

	if (!own_cgroups(root, cg) ||
	    snprintf(file, sizeof(file), "%s/proc/self/mountinfo", root) >=
		    (int)sizeof(file) ||
	    !(f = fopen(file, "re")))
		return 0;
	/* The first mount of each hierarchy that shows the process's
	 * cgroup; a hybrid host mounts both, the cpu controller in one. */
	while (getline(&line, &cap, f) > 0) {
		int h = mounted_hierarchy(line, &mroot, &mpoint);
		if (h < 0 || mapped[h] || !cg[h][0] ||
		    !cgroup_dir(root, mroot, mpoint, cg[h], dir, sizeof(dir),
				&top))
			continue;
		limit[h] = tightest_limit(dir, top, h);
		mapped[h] = true;
	}
	free(line);
	fclose(f);
	return tighter(limit[V2], limit[V1]);
}

int weft__cpus_for(int cpus, double limit)
{
	if (cpus < 1)
		cpus = 1;
	if (limit <= 0)
		return cpus;
	int n = (int)limit;
	if (n < limit)
		n++; /* rounded up: a 1.5-CPU limit keeps 2 workers busy */
	if (n < 2)
		n = 2;
	return n < cpus ? n : cpus;
}

/* The configured CPUs, asked of glibc once a process: it opens a sysfs
 * file for them, and the monitor reads the mask on every crowded look
 * (crowd.c). A descriptor opened mid-run takes the lowest free number,
 * one the program may have just closed: a racing call of its on that
 * number, which may find any new file there, found a sysfs file
 * (test_io_stress closes_race_attempts: -ENOTSOCK under epoll, once in
 * about a hundred runs beside a busy machine), which the program never
 * opened. */
static long cpus_configured(void)
{
	static _Atomic long known; /* 0: not asked yet */
	/* Relaxed, both: the value is all that is shared, and every thread
	 * that asks gets the same one. */
	long n = atomic_load_explicit(&known, memory_order_relaxed);

	if (!n) {
		n = sysconf(_SC_NPROCESSORS_CONF);
		/* relaxed: as the load above. */
		atomic_store_explicit(&known, n, memory_order_relaxed);
	}
	return n;
}

/* Sized for any count the kernel has. */
int weft__cpus_affinity(void)
{
	long conf = cpus_configured();
	int size = conf > CPU_SETSIZE ? (int)conf : CPU_SETSIZE, n = 0;
	cpu_set_t *set = CPU_ALLOC(size);

	if (set) {
		size_t bytes = CPU_ALLOC_SIZE(size);
		CPU_ZERO_S(bytes, set);
		if (!sched_getaffinity(0, bytes, set))
			n = CPU_COUNT_S(bytes, set);
		CPU_FREE(set);
	}
	if (n < 1) /* no mask to read: the online CPUs, as before */
		n = (int)sysconf(_SC_NPROCESSORS_ONLN);
	return n > 0 ? n : 1;
}

int weft__cpus_default(void)
{
	return weft__cpus_for(weft__cpus_affinity(),
			      weft__cpus_cgroup_limit(""));
}
