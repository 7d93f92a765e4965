/* How many CPUs this process may use: see cpus.h. */
#include <limits.h>
#include <sched.h>
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

/* The tightest limit of the cgroup at dir and of its ancestors down to
 * (and including) the mount's top, the first top_len bytes of dir: the
 * kernel enforces every one of them. Cuts dir as it climbs. */
static double tightest_limit(char *dir, size_t top_len, enum hierarchy h)
{
	double tightest = 0;

	for (;;) {
		double l = own_limit(dir, h);
		if (l > 0 && (tightest == 0 || l < tightest))
			tightest = l;
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

/* The calling process's cgroup path in hierarchy h, from
 * /proc/self/cgroup ("0::PATH" for v2; "ID:CONTROLLERS:PATH" for v1, with
 * cpu among the controllers), into path; false if it has none. */
static bool own_cgroup(const char *root, enum hierarchy h, char *path,
		       size_t size)
{
	char file[PATH_MAX], *line = NULL;
	size_t cap = 0;
	bool found = false;
	FILE *f;

	if (snprintf(file, sizeof(file), "%s/proc/self/cgroup", root) >=
		    (int)sizeof(file) ||
	    !(f = fopen(file, "re")))
		return false;
	while (!found && getline(&line, &cap, f) > 0) {
		line[strcspn(line, "\n")] = '\0';
		char *list = strchr(line, ':');
		char *cg = list ? strchr(list + 1, ':') : NULL;
		if (!cg)
			continue;
		*list++ = '\0';
		*cg++ = '\0';
		bool match = h == V2 ? !strcmp(line, "0") && !*list
				     : has_item(list, "cpu");
		if (match && *cg == '/' && strlen(cg) < size) {
			strcpy(path, cg);
			found = true;
		}
	}
	free(line);
	fclose(f);
	return found;
}

/* Splits a /proc/self/mountinfo line (ID PARENT DEV ROOT MOUNTPOINT
 * OPTIONS [TAGS...] - FSTYPE SOURCE SUPEROPTIONS) and says whether it
 * mounts hierarchy h: cgroup2, or cgroup with the cpu controller. Then
 * *mroot (the part of the hierarchy it shows) and *mpoint point into
 * line, unescaped. */
static bool mounts_hierarchy(char *line, enum hierarchy h, char **mroot,
			     char **mpoint)
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
		return false;
	if (h == V2 ? strcmp(fstype, "cgroup2")
		    : strcmp(fstype, "cgroup") || !has_item(super, "cpu"))
		return false;
	*mroot = field[3];
	*mpoint = field[4];
	unescape(*mroot);
	unescape(*mpoint);
	return true;
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

/* The limit under hierarchy h: the tightest from the process's cgroup up
 * to the top of the first mount of h that shows it. */
static double hierarchy_limit(const char *root, enum hierarchy h)
{
	char cg[PATH_MAX], file[PATH_MAX], dir[PATH_MAX], *line = NULL;
	char *mroot, *mpoint;
	size_t cap = 0, top;
	double limit = 0;
	FILE *f;

	if (!own_cgroup(root, h, cg, sizeof(cg)) ||
	    snprintf(file, sizeof(file), "%s/proc/self/mountinfo", root) >=
		    (int)sizeof(file) ||
	    !(f = fopen(file, "re")))
		return 0;
	while (getline(&line, &cap, f) > 0) {
		if (mounts_hierarchy(line, h, &mroot, &mpoint) &&
		    cgroup_dir(root, mroot, mpoint, cg, dir, sizeof(dir),
			       &top)) {
			limit = tightest_limit(dir, top, h);
			break;
		}
	}
	free(line);
	fclose(f);
	return limit;
}

double weft__cpus_cgroup_limit(const char *root)
{
	double v2 = hierarchy_limit(root, V2), v1 = hierarchy_limit(root, V1);

	/* A hybrid host mounts both; the cpu controller sits in one. */
	if (v2 > 0 && v1 > 0)
		return v2 < v1 ? v2 : v1;
	return v2 > 0 ? v2 : v1;
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

/* The CPUs in the affinity mask, sized for any count the kernel has. */
static int affinity_cpus(void)
{
	long online = sysconf(_SC_NPROCESSORS_CONF);
	int size = online > CPU_SETSIZE ? (int)online : CPU_SETSIZE, n = 0;
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
	return weft__cpus_for(affinity_cpus(), weft__cpus_cgroup_limit(""));
}
