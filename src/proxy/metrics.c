/*
 * metrics.c — the admin listener's documents: /metrics (Prometheus text
 * format 0.0.4), /windows and /status (JSON). Pure formatting over the
 * backend registry and the metric series; counters are summed over the
 * workers here, on the control thread.
 */
#include "common.h"
#include "proxy/metrics.h"
#include "proxy/route.h"
#include <jansson.h>

/* escapes for a Prometheus label value */
static void esc(struct hbuf *b, const char *s)
{
	for (; *s; s++) {
		if (*s == '\\' || *s == '"')
			hbuf_printf(b, "\\%c", *s);
		else if (*s == '\n')
			hbuf_addstr(b, "\\n");
		else
			hbuf_append(b, s, 1);
	}
}

/* a JSON string (labels come from the routes file: any UTF-8) */
static void jstr(struct hbuf *b, const char *s)
{
	hbuf_append(b, "\"", 1);
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '"' || c == '\\')
			hbuf_printf(b, "\\%c", c);
		else if (c < 0x20)
			hbuf_printf(b, "\\u%04x", c);
		else
			hbuf_append(b, s, 1);
	}
	hbuf_append(b, "\"", 1);
}

/* service="..",environment="..",revision=".."[,address=".."] (address NULL: none) */
static void label_set(struct hbuf *b, const char *service, const char *environment,
		      const char *revision, const char *address)
{
	hbuf_addstr(b, "service=\"");
	esc(b, service);
	hbuf_addstr(b, "\",environment=\"");
	esc(b, environment);
	hbuf_addstr(b, "\",revision=\"");
	esc(b, revision);
	if (address) {
		hbuf_addstr(b, "\",address=\"");
		esc(b, address);
	}
	hbuf_addstr(b, "\"");
}

static void labels(struct hbuf *b, const struct metric_series *s)
{
	label_set(b, s->service, s->environment, s->revision, NULL);
}

static void series_line(struct hbuf *b, const char *name, const struct metric_series *s,
			const char *extra, uint64_t v)
{
	hbuf_addstr(b, name);
	hbuf_addstr(b, "{");
	labels(b, s);
	if (extra)
		hbuf_addstr(b, extra);
	hbuf_printf(b, "} %llu\n", (unsigned long long)v);
}

/* {service=..,environment=..,revision=..,address=..} of a backend */
static void backend_labels(struct hbuf *b, const struct backend *be)
{
	hbuf_addstr(b, "{");
	label_set(b, be->service, be->environment, be->revision, be->address);
}

/* gauges and check counters of the backends in the current table */
static void backends_render(struct hbuf *b, uint64_t now_ms)
{
	hbuf_addstr(b, "# HELP gantry_proxy_backend_up 1 if the replica takes requests, 0 if its active health check says down or it is ejected after connect failures.\n"
		       "# TYPE gantry_proxy_backend_up gauge\n");
	backend_lock();
	for (const struct backend *be = backend_first(); be; be = be->next) {
		if (!atomic_load(&be->in_table))
			continue;
		hbuf_addstr(b, "gantry_proxy_backend_up");
		backend_labels(b, be);
		hbuf_printf(b, "} %d\n", backend_usable(be, now_ms) ? 1 : 0);
	}
	hbuf_addstr(b, "# HELP gantry_proxy_health_checks_total Active health checks of the replica, by result.\n"
		       "# TYPE gantry_proxy_health_checks_total counter\n");
	for (const struct backend *be = backend_first(); be; be = be->next) {
		if (!atomic_load(&be->in_table) || atomic_load(&be->hc_state) == BACKEND_HC_NONE)
			continue;
		hbuf_addstr(b, "gantry_proxy_health_checks_total");
		backend_labels(b, be);
		hbuf_printf(b, ",result=\"pass\"} %llu\n", (unsigned long long)CTR_GET(be->hc_passed));
		hbuf_addstr(b, "gantry_proxy_health_checks_total");
		backend_labels(b, be);
		hbuf_printf(b, ",result=\"fail\"} %llu\n", (unsigned long long)CTR_GET(be->hc_failed));
	}
	backend_unlock();
}

/*
 * Steps *s to the next series that is shown (held by a route table, or with
 * requests in flight; NULL: the first) and sums it into *sum; false at the end.
 */
static bool next_live(const struct metric_series **s, struct series_sum *sum)
{
	for (*s = *s ? (*s)->next : metric_series_first(); *s; *s = (*s)->next) {
		metric_series_sum(*s, sum);
		if (metric_series_live(*s, sum))
			return true;
	}
	return false;
}

void metrics_render(struct hbuf *b, int64_t generation, uint64_t now_ms)
{
	static const char *const cls[6] = { "none", "1xx", "2xx", "3xx", "4xx", "5xx" };
	const struct metric_series *s;
	struct series_sum sum;
	char extra[64];

	hbuf_addstr(b, "# HELP gantry_http_requests_total Requests finished, by status class (none: no response from the replica).\n"
		       "# TYPE gantry_http_requests_total counter\n");
	for (s = NULL; next_live(&s, &sum);) {
		for (int c = 0; c < 6; c++) {
			if (!sum.status[c] && c != 2 && c != 5)
				continue;
			snprintf(extra, sizeof(extra), ",code=\"%s\"", cls[c]);
			series_line(b, "gantry_http_requests_total", s, extra, sum.status[c]);
		}
	}

	hbuf_addstr(b, "# HELP gantry_http_request_duration_seconds Time from forwarding the request to the response head.\n"
		       "# TYPE gantry_http_request_duration_seconds histogram\n");
	for (s = NULL; next_live(&s, &sum);) {
		uint64_t cum = 0;
		for (int i = 0; i < METRIC_LATENCY_BUCKETS; i++) {
			cum += sum.latency[i];
			snprintf(extra, sizeof(extra), ",le=\"%g\"", (double)METRIC_LATENCY_BOUNDS_US[i] / 1e6);
			series_line(b, "gantry_http_request_duration_seconds_bucket", s, extra, cum);
		}
		series_line(b, "gantry_http_request_duration_seconds_bucket", s, ",le=\"+Inf\"", cum);
		hbuf_addstr(b, "gantry_http_request_duration_seconds_sum{");
		labels(b, s);
		hbuf_printf(b, "} %.6f\n", (double)sum.latency_sum_us / 1e6);
		series_line(b, "gantry_http_request_duration_seconds_count", s, NULL, cum);
	}

	hbuf_addstr(b, "# HELP gantry_proxy_inflight Requests being proxied now.\n"
		       "# TYPE gantry_proxy_inflight gauge\n");
	for (s = NULL; next_live(&s, &sum);) {
		hbuf_addstr(b, "gantry_proxy_inflight{");
		labels(b, s);
		hbuf_printf(b, "} %lld\n", (long long)sum.inflight);
	}
	hbuf_addstr(b, "# HELP gantry_proxy_upstream_errors_total Connect errors, resets, timeouts and bad responses from replicas (retried ones too).\n"
		       "# TYPE gantry_proxy_upstream_errors_total counter\n");
	for (s = NULL; next_live(&s, &sum);) {
		series_line(b, "gantry_proxy_upstream_errors_total", s, NULL, sum.upstream_errors);
	}
	hbuf_addstr(b, "# HELP gantry_http_received_bytes_total Request bytes received from clients.\n"
		       "# TYPE gantry_http_received_bytes_total counter\n");
	for (s = NULL; next_live(&s, &sum);) {
		series_line(b, "gantry_http_received_bytes_total", s, NULL, sum.bytes_in);
	}
	hbuf_addstr(b, "# HELP gantry_http_sent_bytes_total Response bytes sent to clients.\n"
		       "# TYPE gantry_http_sent_bytes_total counter\n");
	for (s = NULL; next_live(&s, &sum);) {
		series_line(b, "gantry_http_sent_bytes_total", s, NULL, sum.bytes_out);
	}
	hbuf_printf(b, "# HELP gantry_proxy_route_generation Generation of the route table in use.\n"
		       "# TYPE gantry_proxy_route_generation gauge\n"
		       "gantry_proxy_route_generation %lld\n", (long long)generation);
	backends_render(b, now_ms);
}

void windows_render(struct hbuf *b, int64_t now_ms, int64_t generation)
{
	const struct metric_series *s;
	struct series_sum sum;
	bool first = true;

	hbuf_printf(b, "{\"now_ms\":%lld,\"generation\":%lld,\"workers\":%d,\"revisions\":[",
		    (long long)now_ms, (long long)generation, proxy_nworkers);
	for (s = NULL; next_live(&s, &sum);) {
		hbuf_addstr(b, first ? "{\"service\":" : ",{\"service\":");
		first = false;
		jstr(b, s->service);
		hbuf_addstr(b, ",\"environment\":");
		jstr(b, s->environment);
		hbuf_addstr(b, ",\"revision\":");
		jstr(b, s->revision);
		hbuf_printf(b, ",\"requests\":%llu,\"status\":[", (unsigned long long)sum.requests);
		for (int i = 0; i < 6; i++)
			hbuf_printf(b, "%s%llu", i ? "," : "", (unsigned long long)sum.status[i]);
		hbuf_addstr(b, "],\"latency\":[");
		for (int i = 0; i < METRIC_LATENCY_BUCKETS; i++)
			hbuf_printf(b, "%s%llu", i ? "," : "", (unsigned long long)sum.latency[i]);
		hbuf_printf(b, "],\"bytes_in\":%llu,\"bytes_out\":%llu,\"inflight\":%lld,\"upstream_errors\":%llu}",
			    (unsigned long long)sum.bytes_in, (unsigned long long)sum.bytes_out,
			    (long long)sum.inflight, (unsigned long long)sum.upstream_errors);
	}
	hbuf_addstr(b, "]}\n");
}

void status_render(struct hbuf *b, long pid, int64_t generation, const struct route_table *t, uint64_t now_ms)
{
	json_t *root = json_object(), *arr = json_array(), *dropped = json_array();
	char *text;

	json_object_set_new(root, "pid", json_integer(pid));
	json_object_set_new(root, "generation", json_integer(generation));
	json_object_set_new(root, "workers", json_integer(proxy_nworkers));
	backend_lock();
	for (const struct backend *be = backend_first(); be; be = be->next) {
		int64_t inflight = backend_inflight(be);
		uint64_t req = 0, errs = 0;
		bool in_table = atomic_load(&be->in_table);
		if (!in_table && inflight <= 0)
			continue;
		for (int w = 0; w < proxy_nworkers; w++) {
			req += CTR_GET(be->w[w].requests);
			errs += CTR_GET(be->w[w].errors);
		}
		json_array_append_new(arr, json_pack("{s:s, s:s, s:s, s:s, s:b, s:I, s:I, s:I, s:b, s:s, s:I, s:I}",
			"address", be->address, "service", be->service,
			"environment", be->environment, "revision", be->revision,
			"in_table", in_table, "inflight", (json_int_t)inflight,
			"requests", (json_int_t)req, "errors", (json_int_t)errs,
			"ejected", backend_ejected(be, now_ms), "health", backend_health_name(be),
			"checks_passed", (json_int_t)CTR_GET(be->hc_passed),
			"checks_failed", (json_int_t)CTR_GET(be->hc_failed)));
	}
	backend_unlock();
	json_object_set_new(root, "backends", arr);
	for (size_t i = 0; t && i < t->ndropped; i++) {
		const struct route_drop *d = &t->dropped[i];
		json_array_append_new(dropped, json_pack("{s:I, s:s, s:s, s:s, s:I, s:s, s:s}",
			"route", (json_int_t)d->route, "service", d->service, "environment", d->environment,
			"host", d->host, "kept_by", (json_int_t)d->kept_by,
			"kept_service", t->routes[d->kept_by].service,
			"kept_environment", t->routes[d->kept_by].environment));
	}
	/* the routes of the table in use that were left out: a host another route has */
	json_object_set_new(root, "dropped_routes", dropped);
	text = json_dumps(root, JSON_COMPACT);
	if (text)
		hbuf_addstr(b, text);
	hbuf_addstr(b, "\n");
	free(text);
	json_decref(root);
}
