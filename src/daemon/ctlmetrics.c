/*
 * ctlmetrics.c — the controller's /metrics (ctlmetrics.h): the status
 * reply turned into Prometheus text. Every family is always written with
 * its HELP and TYPE, even with no sample, so a scraper sees what exists.
 */
#include "common.h"
#include "daemon/daemon.h"
#include "util/clock.h"
#include "daemon/ctlmetrics.h"
#include "util/log.h"
#include <jansson.h>

/* the phases `status` gives a service environment; one sample each */
static const char *const phases[] = {
	"healthy", "progressing", "paused", "degraded", "rolled_back", "failed", "pending_approval",
};

/* a Prometheus label value */
static void esc(struct hbuf *b, const char *s)
{
	for (; s && *s; s++) {
		if (*s == '\\' || *s == '"')
			hbuf_printf(b, "\\%c", *s);
		else if (*s == '\n')
			hbuf_addstr(b, "\\n");
		else
			hbuf_append(b, s, 1);
	}
}

static const char *jstr(json_t *o, const char *key)
{
	const char *v = json_string_value(json_object_get(o, key));
	return v ? v : "";
}

static void labels_se(struct hbuf *b, json_t *se)
{
	hbuf_addstr(b, "service=\"");
	esc(b, jstr(se, "service"));
	hbuf_addstr(b, "\",environment=\"");
	esc(b, jstr(se, "environment"));
	hbuf_addstr(b, "\"");
}

static void store_families(struct hbuf *b, json_t *store, long long failures)
{
	bool ok = json_is_true(json_object_get(store, "ok"));

	hbuf_printf(b, "# HELP gantry_store_ok 1 if the state store accepts writes, 0 while it cannot (every rollout holds).\n"
		       "# TYPE gantry_store_ok gauge\n"
		       "gantry_store_ok %d\n", ok ? 1 : 0);
	hbuf_printf(b, "# HELP gantry_store_failures_total Times the state store stopped accepting writes since the controller started.\n"
		       "# TYPE gantry_store_failures_total counter\n"
		       "gantry_store_failures_total %lld\n", failures);
	hbuf_addstr(b, "# HELP gantry_store_failing_seconds How long the state store has not accepted writes (0 when it does).\n"
		       "# TYPE gantry_store_failing_seconds gauge\n");
	hbuf_printf(b, "gantry_store_failing_seconds %.3f\n",
		    ok ? 0.0 : (double)json_integer_value(json_object_get(store, "for_ms")) / 1000.0);
}

static void disk_families(struct hbuf *b, json_t *disk)
{
	json_t *free_b = json_object_get(disk, "free_bytes"), *total = json_object_get(disk, "total_bytes");
	json_t *thr = json_object_get(disk, "threshold_pct");

	hbuf_addstr(b, "# HELP gantry_disk_free_bytes Bytes an unprivileged writer may still write on HOME's filesystem.\n"
		       "# TYPE gantry_disk_free_bytes gauge\n");
	if (json_is_integer(free_b))
		hbuf_printf(b, "gantry_disk_free_bytes %lld\n", (long long)json_integer_value(free_b));
	hbuf_addstr(b, "# HELP gantry_disk_size_bytes Size of HOME's filesystem.\n"
		       "# TYPE gantry_disk_size_bytes gauge\n");
	if (json_is_integer(total))
		hbuf_printf(b, "gantry_disk_size_bytes %lld\n", (long long)json_integer_value(total));
	hbuf_addstr(b, "# HELP gantry_disk_low_threshold_ratio The low-disk threshold (serve --low-disk) as a share of HOME's filesystem.\n"
		       "# TYPE gantry_disk_low_threshold_ratio gauge\n");
	if (json_is_number(thr))
		hbuf_printf(b, "gantry_disk_low_threshold_ratio %g\n", json_number_value(thr) / 100.0);
	hbuf_printf(b, "# HELP gantry_disk_low 1 while HOME's filesystem is below the low-disk threshold.\n"
		       "# TYPE gantry_disk_low gauge\n"
		       "gantry_disk_low %d\n", json_is_true(json_object_get(disk, "low")) ? 1 : 0);
}

static void phase_family(struct hbuf *b, json_t *list)
{
	size_t i;
	json_t *se;

	hbuf_addstr(b, "# HELP gantry_service_phase The phase of a service environment, as gantry status says: 1 for the current one.\n"
		       "# TYPE gantry_service_phase gauge\n");
	json_array_foreach(list, i, se) {
		const char *cur = jstr(se, "phase");
		bool known = false;
		for (size_t k = 0; k < ARRAY_SIZE(phases); k++) {
			hbuf_addstr(b, "gantry_service_phase{");
			labels_se(b, se);
			hbuf_printf(b, ",phase=\"%s\"} %d\n", phases[k], !strcmp(cur, phases[k]));
			known |= !strcmp(cur, phases[k]);
		}
		if (!known && *cur) {
			hbuf_addstr(b, "gantry_service_phase{");
			labels_se(b, se);
			hbuf_addstr(b, ",phase=\"");
			esc(b, cur);
			hbuf_addstr(b, "\"} 1\n");
		}
	}
}

/* replicas counted by (revision, state), in the order they first appear */
static void replica_family(struct hbuf *b, json_t *list)
{
	size_t i, j;
	json_t *se, *r;

	hbuf_addstr(b, "# HELP gantry_replicas Replicas of a service environment, by revision and state (starting, ready, unready, backoff, draining, stopping).\n"
		       "# TYPE gantry_replicas gauge\n");
	json_array_foreach(list, i, se) {
		json_t *reps = json_object_get(se, "replicas");
		size_t n = json_array_size(reps);
		bool *done = n ? calloc(n, sizeof(*done)) : NULL;
		if (n && !done)
			continue;
		json_array_foreach(reps, j, r) {
			int rev = (int)json_integer_value(json_object_get(r, "revision"));
			const char *state = jstr(r, "state");
			int count = 0;
			if (done[j])
				continue;
			for (size_t k = j; k < n; k++) {
				json_t *o = json_array_get(reps, k);
				if (!done[k] && json_integer_value(json_object_get(o, "revision")) == rev &&
				    !strcmp(jstr(o, "state"), state)) {
					done[k] = true;
					count++;
				}
			}
			hbuf_addstr(b, "gantry_replicas{");
			labels_se(b, se);
			hbuf_printf(b, ",revision=\"%d\",state=\"", rev);
			esc(b, state);
			hbuf_printf(b, "\"} %d\n", count);
		}
		free(done);
	}
}

int ctlmetrics_format(json_t *status, long long store_failures, const struct ctlmetrics_rollouts *rollouts,
		      size_t n, struct hbuf *out)
{
	json_t *list = json_object_get(status, "status");
	struct hbuf b; /* unbounded here: out's bound is checked once, at the end */
	int r;

	hbuf_init(&b, SIZE_MAX);
	store_families(&b, json_object_get(status, "store"), store_failures);
	disk_families(&b, json_object_get(status, "disk"));
	phase_family(&b, list);
	replica_family(&b, list);
	hbuf_addstr(&b, "# HELP gantry_rollouts_total Rollouts recorded for a service environment (deploys, rollbacks, restarts).\n"
		       "# TYPE gantry_rollouts_total counter\n");
	for (size_t i = 0; i < n; i++) {
		hbuf_addstr(&b, "gantry_rollouts_total{service=\"");
		esc(&b, rollouts[i].service);
		hbuf_addstr(&b, "\",environment=\"");
		esc(&b, rollouts[i].environment);
		hbuf_printf(&b, "\"} %lld\n", rollouts[i].total);
	}
	r = hbuf_append(out, b.data, b.len);
	hbuf_release(&b);
	return r < 0 ? -1 : 0;
}

int ctlmetrics_render(json_t *status, struct hbuf *out)
{
	struct rollout_row *rows = NULL;
	struct ctlmetrics_rollouts *counts = NULL;
	size_t nrows = 0, n = 0;
	struct gerr err;
	int r;

	if (store_rollout_list(gd->store, NULL, NULL, 0, &rows, &nrows, &err) < 0)
		log_warn("metrics", "rollouts not counted: %s", err.msg);
	if (nrows)
		counts = calloc(nrows, sizeof(*counts));
	for (size_t i = 0; counts && i < nrows; i++) {
		size_t k;
		for (k = 0; k < n; k++)
			if (!strcmp(counts[k].service, rows[i].service) && !strcmp(counts[k].environment, rows[i].environment))
				break;
		if (k == n) {
			strlcpy_g(counts[k].service, rows[i].service, sizeof(counts[k].service));
			strlcpy_g(counts[k].environment, rows[i].environment, sizeof(counts[k].environment));
			n++;
		}
		counts[k].total++;
	}
	free(rows);
	r = ctlmetrics_format(status, daemon_store_failures(), counts, n, out);
	free(counts);
	/* CPU and memory per replica (usage.c) */
	if (r == 0)
		r = usage_prometheus(gd->svcenvs, out, clock_steady_ms());
	return r;
}
