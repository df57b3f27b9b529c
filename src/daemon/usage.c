/*
 * usage.c — CPU and memory per replica and per revision (usage.h).
 */
#include "common.h"
#include "daemon/daemon.h"
#include "daemon/usage.h"
#include "runtime/usage.h"
#include "util/buf.h"
#include "util/clock.h"
#include <jansson.h>
#include <math.h>

static int64_t last_round_ms;

static bool fresh(const struct replica_usage *u, int64_t now)
{
	return u->t_ms > 0 && now - u->t_ms <= USAGE_STALE_MS;
}

void usage_sample(struct replica *r, const struct cgroup_usage *c, int64_t now)
{
	struct replica_usage *u = &r->usage;

	if (!c) {
		/* the cgroup is gone: the last sample goes stale */
		u->cpu_usec = -1;
		return;
	}
	u->t_ms = now;
	u->memory_bytes = c->memory_bytes;
	u->memory_limit = c->memory_limit;
	u->cpu_limit_millis = c->cpu_limit_millis;
	u->have_cpu = false;
	/* a zeroed usage (a new replica) has no previous reading: cpu_t_ms 0 */
	if (c->cpu_usec >= 0 && u->cpu_t_ms > 0 && u->cpu_usec >= 0 && c->cpu_usec >= u->cpu_usec &&
	    now > u->cpu_t_ms) {
		double used = (double)(c->cpu_usec - u->cpu_usec) / 1000.0; /* CPU ms */
		double cores = c->cpu_limit_millis > 0 ? (double)c->cpu_limit_millis / 1000.0 : 1.0;
		u->cpu_percent = used / (double)(now - u->cpu_t_ms) / cores * 100.0;
		u->have_cpu = true;
	}
	u->cpu_usec = c->cpu_usec;
	u->cpu_t_ms = c->cpu_usec >= 0 ? now : 0;
}

void usage_external(struct replica *r, bool on)
{
	r->usage.external = on;
}

void usage_report(struct replica *r, int64_t memory_bytes, int64_t memory_limit, double cpu_percent)
{
	struct replica_usage *u = &r->usage;

	u->external = true;
	u->t_ms = clock_steady_ms();
	u->memory_bytes = memory_bytes;
	u->memory_limit = memory_limit > 0 ? memory_limit : 0;
	u->have_cpu = isfinite(cpu_percent) && cpu_percent >= 0;
	u->cpu_percent = u->have_cpu ? cpu_percent : 0;
}

/* a replica whose process runs (probes decide readiness; usage is measured
 * from its start) */
static bool running(const struct replica *r)
{
	return r->row.pid > 0 && strcmp(r->row.state, "backoff") && strcmp(r->row.state, "stopped");
}

void usage_tick(struct svcenv *list, int64_t now)
{
	if (last_round_ms && now - last_round_ms < USAGE_INTERVAL_MS && now >= last_round_ms)
		return;
	last_round_ms = now;
	if (cgroup_mode() == CGROUP_NONE)
		return;
	for (struct svcenv *se = list; se; se = se->next)
		for (struct replica *r = se->replicas; r; r = r->next) {
			struct cgroup_usage c;
			if (r->usage.external)
				continue;
			if (!running(r)) {
				/* a new process starts the CPU count again */
				r->usage.cpu_t_ms = 0;
				continue;
			}
			/* a container: the cgroup its engine made, found from its pid */
			usage_sample(r, (r->row.container[0] ? cgroup_usage_read_pid(r->row.pid, &c)
					 : cgroup_usage_read(r->cgroup, &c)) == 0 ? &c : NULL, now);
		}
}

double usage_revision(const struct svcenv *se, int revision, enum cond_metric m, int64_t now)
{
	double best = NAN;

	for (const struct replica *r = se->replicas; r; r = r->next) {
		const struct replica_usage *u = &r->usage;
		double v;
		if (r->row.revision != revision || replica_is_leaving(r) || !fresh(u, now))
			continue;
		if (m == CM_MEMORY && u->memory_bytes >= 0 && u->memory_limit > 0)
			v = (double)u->memory_bytes / (double)u->memory_limit;
		else if (m == CM_CPU && u->have_cpu)
			v = u->cpu_percent / 100.0;
		else
			continue;
		if (isnan(best) || v > best)
			best = v;
	}
	return best;
}

void usage_json(const struct replica *r, json_t *o, int64_t now)
{
	const struct replica_usage *u = &r->usage;
	bool f = fresh(u, now);

	json_object_set_new(o, "memory_bytes", f && u->memory_bytes >= 0 ? json_integer(u->memory_bytes) : json_null());
	json_object_set_new(o, "memory_limit", f && u->memory_limit > 0 ? json_integer(u->memory_limit) : json_null());
	/* two decimals: a figure for people, not a counter */
	json_object_set_new(o, "cpu_percent",
			    f && u->have_cpu ? json_real(round(u->cpu_percent * 100) / 100) : json_null());
}

/* a label value with \, " and newline escaped (the exposition format) */
static int label(struct hbuf *b, const char *s)
{
	for (; *s; s++) {
		const char *e = *s == '\\' ? "\\\\" : *s == '"' ? "\\\"" : *s == '\n' ? "\\n" : NULL;
		if (e ? hbuf_addstr(b, e) < 0 : hbuf_append(b, s, 1) < 0)
			return -1;
	}
	return 0;
}

static int labels(struct hbuf *b, const struct replica *r)
{
	if (hbuf_addstr(b, "{service=\"") < 0 || label(b, r->row.service) < 0 ||
	    hbuf_addstr(b, "\",environment=\"") < 0 || label(b, r->row.environment) < 0 ||
	    hbuf_printf(b, "\",revision=\"%d\",replica=\"", r->row.revision) < 0 || label(b, r->row.id) < 0 ||
	    hbuf_addstr(b, "\"} ") < 0)
		return -1;
	return 0;
}

enum family { F_MEM, F_LIMIT, F_CPU, F_N };

static const struct {
	const char *name, *help;
} families[F_N] = {
	[F_MEM] = { "gantry_replica_memory_bytes", "Memory in use by a replica (working set: less inactive file cache)." },
	[F_LIMIT] = { "gantry_replica_memory_limit_bytes", "A replica's memory limit (replicas with one)." },
	[F_CPU] = { "gantry_replica_cpu_percent", "CPU used by a replica over the last interval, in percent of its CPU limit (of one core without one)." },
};

int usage_prometheus(const struct svcenv *list, struct hbuf *b, int64_t now)
{
	for (int f = 0; f < F_N; f++) {
		bool head = false;
		for (const struct svcenv *se = list; se; se = se->next)
			for (const struct replica *r = se->replicas; r; r = r->next) {
				const struct replica_usage *u = &r->usage;
				if (!fresh(u, now) || (f == F_MEM && u->memory_bytes < 0) ||
				    (f == F_LIMIT && u->memory_limit <= 0) || (f == F_CPU && !u->have_cpu))
					continue;
				if (!head && hbuf_printf(b, "# HELP %s %s\n# TYPE %s gauge\n", families[f].name,
							 families[f].help, families[f].name) < 0)
					return -1;
				head = true;
				if (hbuf_addstr(b, families[f].name) < 0 || labels(b, r) < 0)
					return -1;
				if (f == F_CPU ? hbuf_printf(b, "%.2f\n", u->cpu_percent) < 0
					       : hbuf_printf(b, "%lld\n", (long long)(f == F_MEM ? u->memory_bytes
												  : u->memory_limit)) < 0)
					return -1;
			}
	}
	return 0;
}
