/*
 * How many CPUs this process may use: the default worker count.
 *
 * The online CPU count overstates it wherever a server backend is most
 * often deployed. A container or a Kubernetes pod sees every CPU of its
 * node, but its affinity mask (cpusets: `docker --cpuset-cpus`, the
 * kubelet's static CPU manager, taskset) lets it run on a few, and its
 * cgroup's CPU limit (`docker --cpus`, a pod's CPU limit) lets it use a
 * few CPUs' worth of time in every period. Each worker beyond what the
 * process may use only waits for a CPU, holding the tasks it took, and a
 * limit's throttling stops all of them together for the rest of a period.
 *
 * So the default is the CPUs in the affinity mask, and no more than the
 * cgroup's limit rounded up, nor fewer than 2 for a limit (the monitor
 * needs a second worker to rescue tasks from one that a task keeps):
 * Go 1.25's GOMAXPROCS default, except that the tightest limit of the
 * cgroup and every ancestor visible to the process counts, since the
 * kernel enforces all of them. Rust's available_parallelism, which Tokio
 * uses, reads the limits too (rounding down).
 *
 * Read once, when weft_run starts; a limit changed later is not followed.
 */
#ifndef WEFT_RUNTIME_CPUS_H
#define WEFT_RUNTIME_CPUS_H

/* The default worker count, at least 1: see above. */
int weft__cpus_default(void);

/* The tightest CPU limit, in CPUs, of the cgroup holding the calling
 * process and its ancestors, under cgroup v2 or v1's cpu controller: 0 if
 * there is none, or no limit can be read (no cgroup file system, say).
 * root is prefixed to every path read (/proc/self/cgroup,
 * /proc/self/mountinfo and the cgroup files): "" for the real ones; tests
 * build a fake tree. */
double weft__cpus_cgroup_limit(const char *root);

/* The CPUs in the calling thread's affinity mask, at least 1 (the online
 * CPUs if there is no mask to read). Opens a file only the first time in
 * a process (and when there is no mask): the monitor calls it mid-run. */
int weft__cpus_affinity(void);

/* The worker count for cpus CPUs in the affinity mask under a cgroup limit
 * of limit CPUs (0: none), by the rule above. */
int weft__cpus_for(int cpus, double limit);

#endif
