/*
 * provider.c — prometheus, http and command measurements as data: the
 * request to make and the reading of its answer (provider.h). The I/O is
 * runtime/measure.c's.
 */
#include "common.h"
#include "rollout/provider.h"
#include "util/buf.h"
#include <jansson.h>
#include <math.h>

static int64_t timeout_or_default(int64_t t)
{
	return t > 0 ? t : PROVIDER_DEFAULT_TIMEOUT_MS;
}

/* ------------------------------------------------------------------------ */
/* templates and numbers                                                    */

/* s into b, percent-encoded but for RFC 3986's unreserved characters when enc; -1 past b's bound */
static int add_text(struct hbuf *b, const char *s, bool enc)
{
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (!enc || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
		    c == '_' || c == '.' || c == '~') {
			if (hbuf_append(b, s, 1) < 0)
				return -1;
		} else if (hbuf_printf(b, "%%%02X", c) < 0) {
			return -1;
		}
	}
	return 0;
}

/* tmpl expanded (and encoded) onto b; -1 past its bound */
static int add_expanded(struct hbuf *b, const char *tmpl, const struct provider_vars *v, bool url_encode)
{
	char rev[16];

	snprintf(rev, sizeof(rev), "%d", v->revision);
	while (*tmpl) {
		const char *val = NULL;
		size_t skip = 0;
		if (!strncmp(tmpl, "{{revision}}", 12))
			val = rev, skip = 12;
		else if (!strncmp(tmpl, "{{service}}", 11))
			val = v->service ? v->service : "", skip = 11;
		else if (!strncmp(tmpl, "{{environment}}", 15))
			val = v->environment ? v->environment : "", skip = 15;
		if (val) {
			if (add_text(b, val, url_encode) < 0)
				return -1;
			tmpl += skip;
		} else {
			if (hbuf_append(b, tmpl, 1) < 0)
				return -1;
			tmpl++;
		}
	}
	return 0;
}

char *provider_expand(const char *tmpl, const struct provider_vars *v, bool url_encode)
{
	struct hbuf b;

	hbuf_init(&b, PROVIDER_MAX_TEXT);
	if (add_expanded(&b, tmpl, v, url_encode) < 0) {
		hbuf_release(&b);
		return NULL;
	}
	return hbuf_detach(&b, NULL);
}

/* a whole string that is a number ("0.5", " 3\n", "NaN" -> NAN); -1 otherwise */
static int parse_number(const char *s, double *out)
{
	char *end;
	double d;

	while (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r')
		s++;
	if (!*s)
		return -1;
	errno = 0;
	d = strtod(s, &end);
	if (end == s || errno == ERANGE)
		return -1;
	while (*end == ' ' || *end == '\t' || *end == '\n' || *end == '\r')
		end++;
	if (*end)
		return -1;
	*out = isinf(d) ? NAN : d;
	return 0;
}

static int json_number_of(const json_t *v, const char *what, double *out, struct gerr *err)
{
	if (json_is_null(v)) {
		*out = NAN;
		return 0;
	}
	if (json_is_number(v)) {
		*out = json_number_value(v);
		return 0;
	}
	if (json_is_boolean(v)) {
		*out = json_is_true(v) ? 1 : 0;
		return 0;
	}
	if (json_is_string(v) && parse_number(json_string_value(v), out) == 0)
		return 0;
	return gerr_set(err, "%s is not a number", what);
}

int json_path_number(const json_t *root, const char *path, double *out, struct gerr *err)
{
	const json_t *cur = root;
	const char *p = path ? path : "";

	if (*p == '$')
		p++;
	while (*p) {
		if (*p == '.') {
			p++;
			continue;
		}
		if (*p == '[') {
			char *end;
			long idx;
			p++;
			errno = 0;
			idx = strtol(p, &end, 10);
			if (end == p || *end != ']' || idx < 0 || errno)
				return gerr_set(err, "json_path '%.64s': bad index at '%.16s'", path, p - 1);
			if (!json_is_array(cur) || (size_t)idx >= json_array_size(cur))
				return gerr_set(err, "json_path '%.64s': no element [%ld]", path, idx);
			cur = json_array_get(cur, (size_t)idx);
			p = end + 1;
			continue;
		}
		{
			size_t n = strcspn(p, ".[");
			char key[128];
			if (n >= sizeof(key))
				return gerr_set(err, "json_path '%.64s': key too long", path);
			memcpy(key, p, n);
			key[n] = 0;
			if (!json_is_object(cur) || !(cur = json_object_get(cur, key)))
				return gerr_set(err, "json_path '%.64s': no key '%s'", path, key);
			p += n;
		}
	}
	return json_number_of(cur, "the value at json_path", out, err) < 0
		       ? gerr_set(err, "json_path '%.64s': the value there is not a number", path)
		       : 0;
}

/* ------------------------------------------------------------------------ */
/* requests                                                                 */

/* {address}/api/v1/query?query=QUERY onto b: the query's templates filled in, then all of it encoded */
static int add_prometheus_url(struct hbuf *b, const char *address, const char *query, const struct provider_vars *v)
{
	size_t alen = strlen(address);
	char *q = provider_expand(query, v, false);
	int r = -1;

	while (alen && address[alen - 1] == '/')
		alen--;
	if (q && hbuf_append(b, address, alen) == 0 && hbuf_addstr(b, "/api/v1/query?query=") == 0 &&
	    add_text(b, q, true) == 0)
		r = 0;
	free(q);
	return r;
}

int provider_request(const struct analysis_metric *m, const struct provider_vars *v, struct provider_req *q,
		     struct gerr *err)
{
	const char *noun;
	struct hbuf b;
	int r;

	memset(q, 0, sizeof(*q));
	q->timeout_ms = timeout_or_default(m->timeout_ms);
	q->max_answer = PROVIDER_MAX_BODY;
	q->vars = *v;
	hbuf_init(&b, PROVIDER_MAX_TEXT);
	switch (m->provider) {
	case PROVIDER_PROMETHEUS:
		q->io = PROVIDER_IO_GET, q->what = "prometheus", noun = "query URL";
		if (!m->address || !m->query)
			return gerr_set(err, "prometheus: address and query are required");
		r = add_prometheus_url(&b, m->address, m->query, v);
		break;
	case PROVIDER_HTTP:
		q->io = PROVIDER_IO_GET, q->what = "http", noun = "url";
		if (!m->url)
			return gerr_set(err, "http: url is required");
		r = add_expanded(&b, m->url, v, true);
		break;
	case PROVIDER_COMMAND:
		q->io = PROVIDER_IO_SHELL, q->what = "command", noun = "command";
		if (!m->command)
			return gerr_set(err, "command: no command");
		r = add_expanded(&b, m->command, v, false);
		break;
	case PROVIDER_BUILTIN:
	default:
		return gerr_set(err, "metric '%s': builtin metrics come from the proxy, not a provider",
				m->name ? m->name : "?");
	}
	if (r < 0) {
		hbuf_release(&b);
		return gerr_set(err, "%s: the %s is longer than %d bytes", q->what, noun, PROVIDER_MAX_TEXT);
	}
	q->target = hbuf_detach(&b, NULL);
	return 0;
}

void provider_req_release(struct provider_req *q)
{
	free(q->target);
	memset(q, 0, sizeof(*q));
}

/* ------------------------------------------------------------------------ */
/* answers                                                                  */

/* an instant query's one sample (a scalar, or a vector of one series; none: NAN) */
static int read_prometheus(const struct provider_reply *r, double *out, struct gerr *err)
{
	json_t *j = NULL, *data, *result;
	json_error_t jerr;
	const char *status, *rtype;
	int ret = -1;

	j = json_loadb(r->data, r->len, 0, &jerr);
	if (!j || json_unpack(j, "{s:s, s:o}", "status", &status, "data", &data) < 0) {
		gerr_set(err, "prometheus: the answer is not a query result");
		goto out;
	}
	if (strcmp(status, "success")) {
		const char *e = json_string_value(json_object_get(j, "error"));
		gerr_set(err, "prometheus: %.200s", e ? e : status);
		goto out;
	}
	if (json_unpack(data, "{s:s, s:o}", "resultType", &rtype, "result", &result) < 0) {
		gerr_set(err, "prometheus: the answer has no data.result");
		goto out;
	}
	if (!strcmp(rtype, "scalar")) {
		if (json_array_size(result) != 2 || json_number_of(json_array_get(result, 1), "the scalar", out, err) < 0) {
			gerr_set(err, "prometheus: bad scalar");
			goto out;
		}
	} else if (!strcmp(rtype, "vector")) {
		const json_t *val;
		if (!json_is_array(result)) {
			gerr_set(err, "prometheus: bad vector");
			goto out;
		}
		if (json_array_size(result) == 0) {
			*out = NAN; /* no series: no data */
			ret = 0;
			goto out;
		}
		if (json_array_size(result) > 1) {
			gerr_set(err, "prometheus: the query returned %zu series; aggregate it to one (sum, max, avg)",
				 json_array_size(result));
			goto out;
		}
		val = json_object_get(json_array_get(result, 0), "value");
		if (json_array_size(val) != 2 || json_number_of(json_array_get(val, 1), "the sample", out, err) < 0) {
			gerr_set(err, "prometheus: bad sample in the vector");
			goto out;
		}
	} else {
		gerr_set(err, "prometheus: a %.32s result; use an instant query giving a scalar or one series", rtype);
		goto out;
	}
	ret = 0;
out:
	json_decref(j);
	return ret;
}

/* the number at json_path in a JSON body, or the whole body as a number */
static int read_http(const char *json_path, const struct provider_reply *r, double *out, struct gerr *err)
{
	json_t *j;
	json_error_t jerr;
	struct gerr e2;
	int ret = -1;

	if (!json_path) {
		if (parse_number(r->data, out) < 0)
			return gerr_set(err, "http: the body is not a number (give json_path for a JSON answer)");
		return 0;
	}
	j = json_loadb(r->data, r->len, JSON_DECODE_ANY, &jerr);
	if (!j)
		return gerr_set(err, "http: the body is not JSON: %.100s", jerr.text);
	if (json_path_number(j, json_path, out, &e2) < 0)
		gerr_set(err, "http: %s", e2.msg);
	else
		ret = 0;
	json_decref(j);
	return ret;
}

/* a number printed on stdout, else the exit status (127: the shell did not find the command) */
static int read_command(const struct provider_reply *r, double *out, struct gerr *err)
{
	if (parse_number(r->data, out) == 0)
		return 0;
	if (r->exit_status == 127)
		return gerr_set(err, "command: not found (exit 127)");
	*out = r->exit_status;
	return 0;
}

int provider_read(const struct analysis_metric *m, const struct provider_reply *r, double *out, struct gerr *err)
{
	switch (m->provider) {
	case PROVIDER_PROMETHEUS:
		return read_prometheus(r, out, err);
	case PROVIDER_HTTP:
		return read_http(m->json_path, r, out, err);
	case PROVIDER_COMMAND:
		return read_command(r, out, err);
	case PROVIDER_BUILTIN:
		break;
	}
	return gerr_set(err, "metric '%s': builtin metrics come from the proxy, not a provider", m->name ? m->name : "?");
}
