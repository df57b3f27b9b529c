/*
 * metrics.c — the admin listener's documents: /metrics (Prometheus text
 * format 0.0.4) and /status (JSON). Pure formatting over the backend
 * registry and the metric series.
 */
#include "common.h"
#include "proxy/metrics.h"
#include <jansson.h>

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

static void labels(struct hbuf *b, const struct metric_series *s)
{
	hbuf_addstr(b, "service=\"");
	esc(b, s->service);
	hbuf_addstr(b, "\",environment=\"");
	esc(b, s->environment);
	hbuf_addstr(b, "\",revision=\"");
	esc(b, s->revision);
	hbuf_addstr(b, "\"");
}

void metrics_render(struct hbuf *b, int64_t generation)
{
	static const char *const cls[6] = { "other", "1xx", "2xx", "3xx", "4xx", "5xx" };
	const struct metric_series *s;

	hbuf_addstr(b, "# HELP gantry_http_requests_total Requests answered by the proxy, by status class.\n"
		       "# TYPE gantry_http_requests_total counter\n");
	for (s = metric_series_first(); s; s = s->next)
		for (int c = 0; c < 6; c++) {
			if (!s->codes[c] && c != 2 && c != 5)
				continue;
			hbuf_addstr(b, "gantry_http_requests_total{");
			labels(b, s);
			hbuf_printf(b, ",code=\"%s\"} %llu\n", cls[c], (unsigned long long)s->codes[c]);
		}

	hbuf_addstr(b, "# HELP gantry_http_request_duration_seconds Time from request head to response end.\n"
		       "# TYPE gantry_http_request_duration_seconds histogram\n");
	for (s = metric_series_first(); s; s = s->next) {
		uint64_t cum = 0;
		for (int i = 0; i < METRIC_NBUCKETS; i++) {
			cum += s->buckets[i];
			hbuf_addstr(b, "gantry_http_request_duration_seconds_bucket{");
			labels(b, s);
			hbuf_printf(b, ",le=\"%g\"} %llu\n", metric_buckets[i], (unsigned long long)cum);
		}
		hbuf_addstr(b, "gantry_http_request_duration_seconds_bucket{");
		labels(b, s);
		hbuf_printf(b, ",le=\"+Inf\"} %llu\n", (unsigned long long)s->count);
		hbuf_addstr(b, "gantry_http_request_duration_seconds_sum{");
		labels(b, s);
		hbuf_printf(b, "} %.6f\n", s->sum);
		hbuf_addstr(b, "gantry_http_request_duration_seconds_count{");
		labels(b, s);
		hbuf_printf(b, "} %llu\n", (unsigned long long)s->count);
	}

	hbuf_addstr(b, "# HELP gantry_proxy_inflight Requests being proxied now.\n"
		       "# TYPE gantry_proxy_inflight gauge\n");
	for (s = metric_series_first(); s; s = s->next) {
		hbuf_addstr(b, "gantry_proxy_inflight{");
		labels(b, s);
		hbuf_printf(b, "} %lld\n", (long long)s->inflight);
	}

	hbuf_printf(b, "# HELP gantry_proxy_route_generation Generation of the route table in use.\n"
		       "# TYPE gantry_proxy_route_generation gauge\n"
		       "gantry_proxy_route_generation %lld\n", (long long)generation);
}

void status_render(struct hbuf *b, long pid, int64_t generation, uint64_t now_ms)
{
	json_t *root = json_object(), *arr = json_array();
	char *text;

	json_object_set_new(root, "pid", json_integer(pid));
	json_object_set_new(root, "generation", json_integer(generation));
	for (const struct backend *be = backend_first(); be; be = be->next) {
		if (!be->in_table && be->inflight <= 0)
			continue;
		json_array_append_new(arr, json_pack("{s:s, s:s, s:s, s:s, s:b, s:I, s:I, s:I, s:b}",
			"address", be->address, "service", be->service,
			"environment", be->environment, "revision", be->revision,
			"in_table", be->in_table, "inflight", (json_int_t)be->inflight,
			"requests", (json_int_t)be->requests, "errors", (json_int_t)be->errors,
			"ejected", backend_ejected(be, now_ms)));
	}
	json_object_set_new(root, "backends", arr);
	text = json_dumps(root, JSON_COMPACT);
	if (text)
		hbuf_addstr(b, text);
	hbuf_addstr(b, "\n");
	free(text);
	json_decref(root);
}
