/*
 * usage.h — CPU and memory per replica, and per revision: what `gantry
 * status` shows, what the memory and cpu conditions (core/condition.h)
 * judge, and the replica lines of the controller's /metrics.
 *
 * Sources. A replica of the process runtime is read from its cgroup
 * (runtime/usage.h) by usage_tick, every USAGE_INTERVAL_MS on the steady
 * clock, on the loop (a few small files per replica). A container of the
 * Docker runtime is read from the cgroup its Engine made, found from its pid
 * (runtime/usage.h cgroup_usage_read_pid). A runtime that cannot be read
 * that way (a remote one) may report with usage_report, which also marks
 * the replica "not sampled from cgroups" (usage_external does that alone).
 *
 * Units. memory_bytes is the working set (charged memory less inactive file
 * cache), memory_limit its limit (0: none). cpu_percent is the CPU used
 * between two samples as a percentage of the CPU limit (100 = the whole
 * quota), or of one core when there is no limit (250 = two and a half
 * cores); it needs two samples, so a replica has none in its first
 * interval.
 *
 * Per revision (usage_revision): the highest value over the revision's
 * replicas that have one, as a fraction (0.85 = 85%), for the conditions:
 *   memory: memory_bytes / memory_limit. A replica without a memory limit
 *     has no memory fraction: a revision with no limited replica is "no
 *     data", and a memory condition on it stays inconclusive (it neither
 *     passes nor rolls back). A percentage of the host's memory would judge
 *     the machine, not the replica: Kubernetes' HPA refuses a utilization
 *     target without a request for the same reason.
 *   cpu: cpu_percent / 100, of the limit or of one core.
 * A sample older than USAGE_STALE_MS (a replica that stopped, a runtime
 * that stopped reporting) counts as none.
 *
 * Everything here runs on the loop thread.
 */
#ifndef GANTRY_DAEMON_USAGE_H
#define GANTRY_DAEMON_USAGE_H
#include "common.h"
#include "core/condition.h"

#define USAGE_INTERVAL_MS 2000
#define USAGE_STALE_MS (3 * USAGE_INTERVAL_MS)

struct replica;
struct svcenv;
struct hbuf;
struct cgroup_usage;
struct json_t;

/* a replica's usage (embedded in struct replica: zeroed = nothing known) */
struct replica_usage {
	bool external;            /* its runtime reports (usage_report): cgroups are not read */
	int64_t t_ms;             /* steady clock of the last sample; 0: none */
	int64_t memory_bytes;     /* working set; -1: unknown */
	int64_t memory_limit;     /* bytes; 0: none */
	bool have_cpu;            /* cpu_percent is known */
	double cpu_percent;       /* of its limit, else of one core */
	int64_t cpu_limit_millis; /* thousandths of a CPU; 0: none (or unknown) */
	/* the previous cgroup reading of the cumulative CPU time */
	int64_t cpu_usec;         /* -1: none */
	int64_t cpu_t_ms;
};

/* samples every running replica of list's svcenvs (borrowed) that is not
 * external, once USAGE_INTERVAL_MS passed since the last round; now:
 * clock_steady_ms() */
void usage_tick(struct svcenv *list, int64_t now);
/*
 * One cgroup reading (u, borrowed; NULL: none, the cgroup is gone) of r at
 * now: memory as read, the CPU percentage from the previous reading (none
 * after a counter reset or a first reading).
 */
void usage_sample(struct replica *r, const struct cgroup_usage *u, int64_t now);

/* r's runtime reports its usage itself (on) or r is read from cgroups (off) */
void usage_external(struct replica *r, bool on);
/*
 * A runtime's sample of r, now: memory in use (-1: unknown), its limit (0:
 * none) and the CPU percentage in the unit above (of the CPU limit, or of
 * one core without one; NAN: unknown). Marks r external.
 */
void usage_report(struct replica *r, int64_t memory_bytes, int64_t memory_limit, double cpu_percent);

/* the revision's value of m (CM_MEMORY or CM_CPU) as a fraction, NAN: no
 * data (see above); replicas that are leaving do not count */
double usage_revision(const struct svcenv *se, int revision, enum cond_metric m, int64_t now);

/* sets "memory_bytes", "memory_limit" and "cpu_percent" in the replica's
 * status object o (borrowed): numbers, or null when unknown or stale
 * (memory_limit: null when there is none) */
void usage_json(const struct replica *r, struct json_t *o, int64_t now);

/*
 * Appends the Prometheus text lines of every replica of the list's
 * svcenvs (borrowed) with a fresh sample to b:
 *   gantry_replica_memory_bytes{service,environment,revision,replica}
 *   gantry_replica_memory_limit_bytes{...}   (replicas with a limit)
 *   gantry_replica_cpu_percent{...}
 * each family with its # HELP and # TYPE (gauge) lines, once. 0, or -1
 * when b reached its bound (b holds a prefix).
 */
int usage_prometheus(const struct svcenv *list, struct hbuf *b, int64_t now);

#endif
