/*
 * metrics.c — the admin listener's documents: /metrics (Prometheus text
 * format 0.0.4), /windows and /status (JSON). Formatting over the backend
 * registry and the metric series; counters are summed over the workers
 * here, on the control thread. Also the process's epoch, and the reading
 * of a --counters-from file (a /windows document of a previous proxy) back
 * into the series' bases.
 */
#include "common.h"
#include "proxy/metrics.h"
#include "proxy/route.h"
#include <fcntl.h>
#include <jansson.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>

/* this process (metrics_epoch_init); the control thread writes it before anything reads it */
static uint64_t epoch_id;
static int64_t epoch_started_ms;
static char carried_from[17]; /* the epoch of the --counters-from document, "" none */

void metrics_epoch_init(void)
{
	struct timespec ts;
	uint64_t id = 0;

	clock_gettime(CLOCK_REALTIME, &ts);
	/* never block at boot for entropy: time, pid and address then */
	if (getrandom(&id, sizeof(id), GRND_NONBLOCK) != (ssize_t)sizeof(id))
		id = ((uint64_t)ts.tv_nsec << 34) ^ (uint64_t)ts.tv_sec ^ ((uint64_t)getpid() << 20) ^
		     (uint64_t)(uintptr_t)&ts;
	epoch_id = id ? id : 1; /* 0 means "no epoch" to a reader */
	epoch_started_ms = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
	carried_from[0] = 0;
}

const char *metrics_carried_from(void)
{
	return carried_from;
}

uint64_t metrics_epoch(int64_t *started_ms)
{
	if (started_ms)
		*started_ms = epoch_started_ms;
	return epoch_id;
}

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
	hbuf_addstr(b, "# HELP gantry_proxy_maintenance_responses_total Answers made by a route's maintenance mode (503 page, no replica).\n"
		       "# TYPE gantry_proxy_maintenance_responses_total counter\n");
	for (s = NULL; next_live(&s, &sum);) {
		if (!s->revision[0] || sum.maintenance)
			series_line(b, "gantry_proxy_maintenance_responses_total", s, NULL, sum.maintenance);
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
	hbuf_printf(b, "# HELP gantry_proxy_start_time_seconds Start time of the proxy process since the Unix epoch "
		       "in seconds (a change: a new process; its counters went on from what the controller last read).\n"
		       "# TYPE gantry_proxy_start_time_seconds gauge\n"
		       "gantry_proxy_start_time_seconds %lld.%03d\n",
		    (long long)(epoch_started_ms / 1000), (int)(epoch_started_ms % 1000));
	backends_render(b, now_ms);
}

/* ,"requests":N,"status":[..],"latency":[..],"bytes_in":N,"bytes_out":N (of a sum or a base) */
static void counters_json(struct hbuf *b, const struct series_sum *c)
{
	hbuf_printf(b, "\"requests\":%llu,\"status\":[", (unsigned long long)c->requests);
	for (int i = 0; i < 6; i++)
		hbuf_printf(b, "%s%llu", i ? "," : "", (unsigned long long)c->status[i]);
	hbuf_addstr(b, "],\"latency\":[");
	for (int i = 0; i < METRIC_LATENCY_BUCKETS; i++)
		hbuf_printf(b, "%s%llu", i ? "," : "", (unsigned long long)c->latency[i]);
	hbuf_printf(b, "],\"latency_sum_us\":%llu,\"bytes_in\":%llu,\"bytes_out\":%llu,\"upstream_errors\":%llu",
		    (unsigned long long)c->latency_sum_us, (unsigned long long)c->bytes_in,
		    (unsigned long long)c->bytes_out, (unsigned long long)c->upstream_errors);
	if (c->maintenance)
		hbuf_printf(b, ",\"maintenance\":%llu", (unsigned long long)c->maintenance);
}

/* `{"service":..,"environment":..,"revision":..` of an array element (a comma before all but the first) */
static void jopen_labels(struct hbuf *b, bool *first, const char *svc, const char *env, const char *rev)
{
	hbuf_addstr(b, *first ? "{\"service\":" : ",{\"service\":");
	*first = false;
	jstr(b, svc);
	hbuf_addstr(b, ",\"environment\":");
	jstr(b, env);
	hbuf_addstr(b, ",\"revision\":");
	jstr(b, rev);
}

void windows_render(struct hbuf *b, int64_t now_ms, int64_t generation)
{
	const struct metric_series *s;
	struct series_sum sum;
	bool first = true;

	hbuf_printf(b, "{\"now_ms\":%lld,\"epoch\":\"%016llx\",\"started_ms\":%lld,", (long long)now_ms,
		    (unsigned long long)epoch_id, (long long)epoch_started_ms);
	if (carried_from[0])
		hbuf_printf(b, "\"carried_from\":\"%s\",", carried_from);
	hbuf_printf(b, "\"generation\":%lld,\"workers\":%d,\"revisions\":[", (long long)generation, proxy_nworkers);
	for (s = NULL; next_live(&s, &sum);) {
		jopen_labels(b, &first, s->service, s->environment, s->revision);
		hbuf_addstr(b, ",");
		counters_json(b, &sum);
		hbuf_printf(b, ",\"inflight\":%lld", (long long)sum.inflight);
		if (s->has_base) {
			hbuf_addstr(b, ",\"base\":{");
			counters_json(b, &s->base);
			hbuf_addstr(b, "}");
		}
		hbuf_addstr(b, "}");
	}
	/* the backends' active health checks (for the carry: metrics_carry_parse) */
	hbuf_addstr(b, "],\"checks\":[");
	first = true;
	backend_lock();
	for (const struct backend *be = backend_first(); be; be = be->next) {
		uint64_t passed = CTR_GET(be->hc_passed), failed = CTR_GET(be->hc_failed);
		if (!passed && !failed)
			continue;
		jopen_labels(b, &first, be->service, be->environment, be->revision);
		hbuf_addstr(b, ",\"address\":");
		jstr(b, be->address);
		hbuf_printf(b, ",\"passed\":%llu,\"failed\":%llu}", (unsigned long long)passed,
			    (unsigned long long)failed);
	}
	backend_unlock();
	hbuf_addstr(b, "]}\n");
}

void status_render(struct hbuf *b, long pid, int64_t generation, const struct route_table *t, uint64_t now_ms)
{
	json_t *root = json_object(), *arr = json_array(), *dropped = json_array();
	char *text;

	json_object_set_new(root, "pid", json_integer(pid));
	{
		char ep[17];
		snprintf(ep, sizeof(ep), "%016llx", (unsigned long long)epoch_id);
		json_object_set_new(root, "epoch", json_string(ep));
	}
	json_object_set_new(root, "started_ms", json_integer(epoch_started_ms));
	if (carried_from[0])
		json_object_set_new(root, "carried_from", json_string(carried_from));
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

/* ---- --counters-from: a /windows document read back ---- */

/* a counter of the file: an integer from 0 to CARRY_MAX_COUNT (a sum of many stays below 2^64) */
/* the array being parsed, for the messages ("revisions", "checks"); the
 * parser runs once, on one thread */
static const char *carry_arr = "revisions";

static int carry_u64(json_t *v, uint64_t *out, size_t i, const char *key, int k, struct gerr *err)
{
	char idx[16] = "";
	if (k >= 0)
		snprintf(idx, sizeof(idx), "[%d]", k);
	if (!v)
		return gerr_set(err, "%s[%zu].%s%s: missing", carry_arr, i, key, idx);
	if (!json_is_integer(v) || json_integer_value(v) < 0 ||
	    (uint64_t)json_integer_value(v) > CARRY_MAX_COUNT)
		return gerr_set(err, "%s[%zu].%s%s: not an integer from 0 to 2^60", carry_arr, i, key, idx);
	*out = (uint64_t)json_integer_value(v);
	return 0;
}

static int carry_array(json_t *a, uint64_t *out, size_t n, size_t i, const char *key, struct gerr *err)
{
	if (!a)
		return gerr_set(err, "revisions[%zu].%s: missing", i, key);
	if (!json_is_array(a) || json_array_size(a) != n)
		return gerr_set(err, "revisions[%zu].%s: not an array of %zu counters", i, key, n);
	for (size_t k = 0; k < n; k++)
		if (carry_u64(json_array_get(a, k), &out[k], i, key, (int)k, err) < 0)
			return -1;
	return 0;
}

static int carry_name(json_t *r, const char *key, size_t i, char **out, struct gerr *err)
{
	json_t *v = json_object_get(r, key);
	if (!v)
		return gerr_set(err, "%s[%zu].%s: missing", carry_arr, i, key);
	if (!json_is_string(v) || json_string_length(v) > CARRY_MAX_NAME ||
	    strlen(json_string_value(v)) != json_string_length(v))
		return gerr_set(err, "%s[%zu].%s: not a string of at most %d bytes", carry_arr, i, key,
				CARRY_MAX_NAME);
	*out = xstrdup(json_string_value(v));
	return 0;
}

static int carry_rev_cmp(const void *a, const void *b)
{
	const struct carry_rev *x = a, *y = b;
	int c = strcmp(x->service, y->service);
	if (!c)
		c = strcmp(x->environment, y->environment);
	return c ? c : strcmp(x->revision, y->revision);
}

void metrics_carry_release(struct metrics_carry *c)
{
	for (size_t i = 0; i < c->n; i++) {
		free(c->revs[i].service);
		free(c->revs[i].environment);
		free(c->revs[i].revision);
	}
	free(c->revs);
	for (size_t i = 0; i < c->nchecks; i++) {
		free(c->checks[i].service);
		free(c->checks[i].environment);
		free(c->checks[i].revision);
		free(c->checks[i].address);
	}
	free(c->checks);
	memset(c, 0, sizeof(*c));
}

int metrics_carry_parse(const char *text, size_t len, struct metrics_carry *out, struct gerr *err)
{
	json_error_t jerr;
	json_t *doc, *revs, *r, *ep;
	size_t i;
	int ret = -1;

	memset(out, 0, sizeof(*out));
	if (len > CARRY_MAX_BYTES)
		return gerr_set(err, "larger than %u bytes", CARRY_MAX_BYTES);
	doc = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
	if (!doc)
		return gerr_set(err, "%d:%d: %s", jerr.line, jerr.column, jerr.text);
	if (!json_is_object(doc)) {
		gerr_set(err, "not a JSON object");
		goto out;
	}
	ep = json_object_get(doc, "epoch");
	if (ep) {
		const char *e = json_string_value(ep);
		size_t n = e ? strlen(e) : 0;
		if (!n || n > 16 || strspn(e, "0123456789abcdef") != n) {
			gerr_set(err, "epoch: not 1 to 16 lowercase hex digits");
			goto out;
		}
		strlcpy_g(out->epoch, e, sizeof(out->epoch));
	}
	revs = json_object_get(doc, "revisions");
	if (!json_is_array(revs)) {
		gerr_set(err, "revisions: %s", revs ? "not an array" : "missing");
		goto out;
	}
	if (json_array_size(revs) > CARRY_MAX_REVISIONS) {
		gerr_set(err, "revisions: more than %d", CARRY_MAX_REVISIONS);
		goto out;
	}
	out->revs = xcalloc(json_array_size(revs) + 1, sizeof(*out->revs));
	json_array_foreach(revs, i, r) {
		struct carry_rev *cr = &out->revs[out->n];
		struct series_sum *c = &cr->c;
		json_t *v;
		if (!json_is_object(r)) {
			gerr_set(err, "revisions[%zu]: not an object", i);
			goto out;
		}
		out->n++; /* its names are released with it, however far it got */
		if (carry_name(r, "service", i, &cr->service, err) < 0 ||
		    carry_name(r, "environment", i, &cr->environment, err) < 0 ||
		    carry_name(r, "revision", i, &cr->revision, err) < 0 ||
		    carry_u64(json_object_get(r, "requests"), &c->requests, i, "requests", -1, err) < 0 ||
		    carry_array(json_object_get(r, "status"), c->status, 6, i, "status", err) < 0 ||
		    carry_array(json_object_get(r, "latency"), c->latency, METRIC_LATENCY_BUCKETS, i, "latency", err) < 0 ||
		    carry_u64(json_object_get(r, "bytes_in"), &c->bytes_in, i, "bytes_in", -1, err) < 0 ||
		    carry_u64(json_object_get(r, "bytes_out"), &c->bytes_out, i, "bytes_out", -1, err) < 0)
			goto out;
		/* newer than the first documents: 0 when a file lacks them */
		if (((v = json_object_get(r, "latency_sum_us")) &&
		     carry_u64(v, &c->latency_sum_us, i, "latency_sum_us", -1, err) < 0) ||
		    ((v = json_object_get(r, "upstream_errors")) &&
		     carry_u64(v, &c->upstream_errors, i, "upstream_errors", -1, err) < 0) ||
		    ((v = json_object_get(r, "maintenance")) &&
		     carry_u64(v, &c->maintenance, i, "maintenance", -1, err) < 0))
			goto out;
	}
	{
		json_t *checks = json_object_get(doc, "checks"), *ck;
		if (checks && !json_is_array(checks)) {
			gerr_set(err, "checks: not an array");
			goto out;
		}
		if (json_array_size(checks) > CARRY_MAX_REVISIONS) {
			gerr_set(err, "checks: more than %d", CARRY_MAX_REVISIONS);
			goto out;
		}
		out->checks = xcalloc(json_array_size(checks) + 1, sizeof(*out->checks));
		carry_arr = "checks";
		json_array_foreach(checks, i, ck) {
			struct carry_check *cc = &out->checks[out->nchecks];
			if (!json_is_object(ck)) {
				gerr_set(err, "checks[%zu]: not an object", i);
				goto out;
			}
			out->nchecks++;
			if (carry_name(ck, "service", i, &cc->service, err) < 0 ||
			    carry_name(ck, "environment", i, &cc->environment, err) < 0 ||
			    carry_name(ck, "revision", i, &cc->revision, err) < 0 ||
			    carry_name(ck, "address", i, &cc->address, err) < 0 ||
			    carry_u64(json_object_get(ck, "passed"), &cc->passed, i, "passed", -1, err) < 0 ||
			    carry_u64(json_object_get(ck, "failed"), &cc->failed, i, "failed", -1, err) < 0) {
				carry_arr = "revisions";
				goto out;
			}
		}
		carry_arr = "revisions";
	}
	if (out->n > 1) {
		qsort(out->revs, out->n, sizeof(*out->revs), carry_rev_cmp);
		for (i = 1; i < out->n; i++)
			if (!carry_rev_cmp(&out->revs[i - 1], &out->revs[i])) {
				gerr_set(err, "revisions: service '%.64s' environment '%.64s' revision '%.64s' twice",
					 out->revs[i].service, out->revs[i].environment, out->revs[i].revision);
				goto out;
			}
	}
	ret = 0;
out:
	if (ret < 0)
		metrics_carry_release(out);
	json_decref(doc);
	return ret;
}

int metrics_carry_load(const char *path, struct gerr *err)
{
	struct metrics_carry c;
	struct stat st;
	char *text = NULL;
	size_t len = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC), ret = -1;

	if (fd < 0)
		return gerr_set(err, "%s", strerror(errno));
	if (fstat(fd, &st) < 0) {
		gerr_set(err, "%s", strerror(errno));
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		gerr_set(err, "not a regular file");
		goto out;
	}
	if (st.st_size > (off_t)CARRY_MAX_BYTES) {
		gerr_set(err, "larger than %u bytes", CARRY_MAX_BYTES);
		goto out;
	}
	text = xmalloc((size_t)st.st_size + 1);
	while (len < (size_t)st.st_size) {
		ssize_t n = read(fd, text + len, (size_t)st.st_size - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			gerr_set(err, "%s", strerror(errno));
			goto out;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	if (metrics_carry_parse(text, len, &c, err) < 0)
		goto out;
	for (size_t i = 0; i < c.n; i++)
		metric_series_seed(c.revs[i].service, c.revs[i].environment, c.revs[i].revision, &c.revs[i].c);
	for (size_t i = 0; i < c.nchecks; i++)
		backend_seed_checks(c.checks[i].address, c.checks[i].service, c.checks[i].environment,
				    c.checks[i].revision, c.checks[i].passed, c.checks[i].failed);
	strlcpy_g(carried_from, c.epoch, sizeof(carried_from));
	ret = (int)c.n;
	metrics_carry_release(&c);
out:
	free(text);
	close(fd);
	return ret;
}
