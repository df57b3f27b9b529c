/*
 * usage.h — what a replica's cgroup says it uses: memory in use and its
 * limit, cumulative CPU time and the CPU limit (the process runtime's
 * source of "usage per replica"; src/daemon/usage.h turns two samples into
 * a CPU percentage and keeps them per replica).
 *
 * Memory in use is what the kernel would not give back without reclaiming
 * from the workload: the charged memory less the inactive file cache (the
 * working set, as the kubelet and `docker stats` count it):
 *   v2: memory.current - memory.stat inactive_file
 *   v1: memory.usage_in_bytes - memory.stat total_inactive_file
 * (inactive_file when total_inactive_file is missing). Its limit is
 * memory.max (v2; "max": none) or memory.limit_in_bytes (v1; a value at or
 * above 2^62, the kernel's "unlimited", is none).
 * CPU time: v2 cpu.stat usage_usec; v1 cpuacct.usage (ns) in the cpuacct
 * hierarchy (often mounted with cpu). CPU limit: v2 cpu.max "QUOTA PERIOD"
 * ("max": none); v1 cpu.cfs_quota_us / cpu.cfs_period_us (-1: none), in
 * thousandths of a CPU as the spec's resources.cpu ("500m").
 *
 * The readers take directories, so tests point them at fixture files; they
 * read a few small files (cheap enough for the controller's loop) and keep
 * no state.
 */
#ifndef GANTRY_RUNTIME_USAGE_H
#define GANTRY_RUNTIME_USAGE_H
#include "common.h"

struct cgroup_usage {
	int64_t memory_bytes;     /* in use, less inactive file cache; -1: unknown */
	int64_t memory_limit;     /* bytes; 0: none */
	int64_t cpu_usec;         /* cumulative CPU time of the cgroup; -1: unknown */
	int64_t cpu_limit_millis; /* quota / period in thousandths of a CPU; 0: none */
};

/*
 * v2: dir holds memory.current, memory.stat, memory.max, cpu.stat, cpu.max.
 * Returns 0 when memory.current was read (any other missing file leaves its
 * field unknown / none), -1 when it was not (the cgroup is gone). out is
 * always filled.
 */
int cgroup_usage_read_v2(const char *dir, struct cgroup_usage *out);
/*
 * v1: memdir holds memory.usage_in_bytes, memory.stat and
 * memory.limit_in_bytes; cpudir cpu.cfs_quota_us and cpu.cfs_period_us;
 * acctdir cpuacct.usage. cpudir and acctdir may be NULL (hierarchy not
 * mounted). Returns as cgroup_usage_read_v2, for memory.usage_in_bytes.
 */
int cgroup_usage_read_v1(const char *memdir, const char *cpudir, const char *acctdir, struct cgroup_usage *out);
/* cgroup NAME (runtime.h's cgroups) in the mode the machine has: 0, or -1
 * without cgroups or when NAME does not exist */
int cgroup_usage_read(const char *name, struct cgroup_usage *out);

/*
 * The cgroup pid is in, wherever it is (a container's, made by its engine:
 * /proc/PID/cgroup gives its path in each hierarchy, as the host sees it):
 * as cgroup_usage_read. Cheaper than an engine's stats call (a few small
 * files), and the same numbers. 0, or -1 (no such process, no cgroups).
 */
int cgroup_usage_read_pid(pid_t pid, struct cgroup_usage *out);

/* the value of "KEY N" in a flat-keyed control file's text (memory.stat,
 * cpu.stat); -1 when absent or not a number */
int64_t cgroup_usage_keyed(const char *text, const char *key);

#endif
