/*
 * provider.c — prometheus, http and command measurements (see provider.h).
 */
#include "common.h"
#include "rollout/provider.h"
#include "runtime/runtime.h"
#include "util/clock.h"
#include <curl/curl.h>
#include <fcntl.h>
#include <inttypes.h>
#include <jansson.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>

static int64_t timeout_or_default(int64_t t)
{
	return t > 0 ? t : PROVIDER_DEFAULT_TIMEOUT_MS;
}

/* ------------------------------------------------------------------------ */
/* templates and numbers                                                    */

struct sbuf {
	char *p;
	size_t n, cap;
};

static void sb_add(struct sbuf *b, const char *s, size_t n)
{
	if (b->n + n + 1 > b->cap) {
		b->cap = (b->n + n + 1) * 2;
		b->p = xrealloc(b->p, b->cap);
	}
	memcpy(b->p + b->n, s, n);
	b->n += n;
	b->p[b->n] = 0;
}

static void sb_add_enc(struct sbuf *b, const char *s, bool enc)
{
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (!enc || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
		    c == '_' || c == '.' || c == '~') {
			sb_add(b, s, 1);
		} else {
			char h[4];
			snprintf(h, sizeof(h), "%%%02X", c);
			sb_add(b, h, 3);
		}
	}
}

char *provider_expand(const char *tmpl, const struct provider_vars *v, bool url_encode)
{
	struct sbuf b = { 0 };
	char rev[16];

	snprintf(rev, sizeof(rev), "%d", v->revision);
	sb_add(&b, "", 0);
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
			sb_add_enc(&b, val, url_encode);
			tmpl += skip;
		} else {
			sb_add(&b, tmpl, 1);
			tmpl++;
		}
	}
	return b.p;
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
/* HTTP                                                                     */

struct body {
	char *p;
	size_t n;
	bool too_big;
};

static size_t on_body(char *data, size_t size, size_t nmemb, void *user)
{
	struct body *b = user;
	size_t n = size * nmemb;

	if (b->n + n > PROVIDER_MAX_BODY) {
		b->too_big = true;
		return 0; /* aborts the transfer */
	}
	b->p = xrealloc(b->p, b->n + n + 1);
	memcpy(b->p + b->n, data, n);
	b->n += n;
	b->p[b->n] = 0;
	return n;
}

/* GETs url into *body (owned by the caller) and requires a 2xx; what names the provider in errors */
static int http_get(const char *url, int64_t timeout_ms, const char *what, struct body *b, struct gerr *err)
{
	CURL *c = curl_easy_init();
	char cerr[CURL_ERROR_SIZE] = "";
	long status = 0;
	CURLcode rc;
	int ret = -1;

	memset(b, 0, sizeof(*b));
	if (!c)
		return gerr_set(err, "%s: cannot start an HTTP client", what);
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)timeout_or_default(timeout_ms));
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, (long)timeout_or_default(timeout_ms));
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, b);
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, cerr);
	curl_easy_setopt(c, CURLOPT_USERAGENT, "gantry/" GANTRY_VERSION);
	curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
	rc = curl_easy_perform(c);
	if (b->too_big) {
		gerr_set(err, "%s: response larger than %d bytes", what, PROVIDER_MAX_BODY);
		goto out;
	}
	if (rc != CURLE_OK) {
		gerr_set(err, "%s: %s", what, *cerr ? cerr : curl_easy_strerror(rc));
		goto out;
	}
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
	if (status < 200 || status > 299) {
		gerr_set(err, "%s: HTTP status %ld", what, status);
		goto out;
	}
	if (!b->p)
		b->p = xstrdup("");
	ret = 0;
out:
	curl_easy_cleanup(c);
	if (ret < 0) {
		free(b->p);
		memset(b, 0, sizeof(*b));
	}
	return ret;
}

int provider_prometheus(const char *address, const char *query, const struct provider_vars *v, int64_t timeout_ms,
			double *out, struct gerr *err)
{
	char *q = NULL, *url = NULL, *enc = NULL;
	struct body b = { 0 };
	json_t *j = NULL, *data, *result;
	json_error_t jerr;
	const char *status, *rtype;
	CURL *c = NULL;
	int ret = -1;
	size_t alen;

	if (!address || !query)
		return gerr_set(err, "prometheus: address and query are required");
	alen = strlen(address);
	while (alen && address[alen - 1] == '/')
		alen--;
	q = provider_expand(query, v, false);
	c = curl_easy_init();
	enc = c ? curl_easy_escape(c, q, 0) : NULL;
	if (!enc) {
		gerr_set(err, "prometheus: cannot encode the query");
		goto out;
	}
	url = xasprintf("%.*s/api/v1/query?query=%s", (int)alen, address, enc);
	if (http_get(url, timeout_ms, "prometheus", &b, err) < 0)
		goto out;
	j = json_loadb(b.p, b.n, 0, &jerr);
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
	free(b.p);
	free(url);
	if (enc)
		curl_free(enc);
	if (c)
		curl_easy_cleanup(c);
	free(q);
	return ret;
}

int provider_http(const char *url, const char *json_path, const struct provider_vars *v, int64_t timeout_ms,
		  double *out, struct gerr *err)
{
	char *u = NULL;
	struct body b = { 0 };
	json_t *j = NULL;
	json_error_t jerr;
	struct gerr e2;
	int ret = -1;

	if (!url)
		return gerr_set(err, "http: url is required");
	u = provider_expand(url, v, true);
	if (http_get(u, timeout_ms, "http", &b, err) < 0)
		goto out;
	if (!json_path) {
		if (parse_number(b.p, out) < 0) {
			gerr_set(err, "http: the body is not a number (give json_path for a JSON answer)");
			goto out;
		}
		ret = 0;
		goto out;
	}
	j = json_loadb(b.p, b.n, JSON_DECODE_ANY, &jerr);
	if (!j) {
		gerr_set(err, "http: the body is not JSON: %.100s", jerr.text);
		goto out;
	}
	if (json_path_number(j, json_path, out, &e2) < 0) {
		gerr_set(err, "http: %s", e2.msg);
		goto out;
	}
	ret = 0;
out:
	json_decref(j);
	free(b.p);
	free(u);
	return ret;
}

/* ------------------------------------------------------------------------ */
/* command                                                                  */

int provider_command(const char *command, const struct provider_vars *v, int64_t timeout_ms, double *out,
		     struct gerr *err)
{
	int pfd[2] = { -1, -1 }, status = 0, ret = -1;
	pid_t pid = -1;
	char *cmd = NULL, *buf = NULL;
	size_t n = 0;
	bool timed_out = false, too_big = false, reaped = false, have_wc = false;
	int64_t deadline = clock_mono_ms() + timeout_or_default(timeout_ms);
	struct workload_cmd wc = { 0 };

	if (!command)
		return gerr_set(err, "command: no command");
	cmd = provider_expand(command, v, false);
	buf = xmalloc(PROVIDER_MAX_BODY + 1);
	if (pipe2(pfd, O_CLOEXEC) < 0) {
		gerr_set(err, "command: pipe: %s", strerror(errno));
		goto out;
	}
	/* a workload: the default workload user, a scratch HOME, only the
	 * documented GANTRY_* (built before the fork: the child must not allocate) */
	{
		struct workload_env we = { .service = v->service ? v->service : "",
					   .environment = v->environment ? v->environment : "",
					   .revision = v->revision };
		if (workload_cmd_prepare(&wc, &we, err) < 0)
			goto out;
		have_wc = true;
	}
	pid = fork();
	if (pid < 0) {
		gerr_set(err, "command: fork: %s", strerror(errno));
		goto out;
	}
	if (pid == 0) {
		/* child: its own process group (so a timeout kills its children too), stdout to the pipe */
		const char *argv[] = { "sh", "-c", cmd, NULL };
		int devnull = open("/dev/null", O_RDWR);
		setpgid(0, 0);
		if (devnull >= 0) {
			/* stderr would end up in the controller's log, interleaved: dropped */
			dup2(devnull, 0);
			dup2(devnull, 2);
		}
		dup2(pfd[1], 1);
		umask(022);
		if (workload_drop(&wc.user) < 0)
			_exit(126);
		execve("/bin/sh", (char *const *)argv, wc.env);
		_exit(127);
	}
	setpgid(pid, pid); /* also here: no race with the kill below */
	close(pfd[1]);
	pfd[1] = -1;
	for (;;) {
		struct pollfd p = { .fd = pfd[0], .events = POLLIN };
		int64_t left = deadline - clock_mono_ms();
		ssize_t r;
		if (left <= 0) {
			timed_out = true;
			break;
		}
		r = poll(&p, 1, (int)MIN(left, 1000));
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			continue;
		r = read(pfd[0], buf + n, PROVIDER_MAX_BODY - n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		n += (size_t)r;
		if (n >= PROVIDER_MAX_BODY) {
			too_big = true;
			break;
		}
	}
	buf[n] = 0;
	if (timed_out || too_big)
		kill(-pid, SIGKILL);
	/* stdout closed: wait for the exit, still within the deadline */
	while (!reaped) {
		pid_t w = waitpid(pid, &status, timed_out || too_big ? 0 : WNOHANG);
		if (w == pid) {
			reaped = true;
		} else if (w < 0 && errno != EINTR) {
			break;
		} else if (w == 0) {
			if (clock_mono_ms() >= deadline) {
				timed_out = true;
				kill(-pid, SIGKILL);
			} else {
				struct timespec ts = { 0, 10 * 1000000 };
				nanosleep(&ts, NULL);
			}
		}
	}
	/* whatever the command left behind in its group goes too */
	kill(-pid, SIGKILL);
	if (timed_out) {
		gerr_set(err, "command: timed out after %" PRId64 "ms", timeout_or_default(timeout_ms));
		goto out;
	}
	if (too_big) {
		gerr_set(err, "command: more than %d bytes on stdout", PROVIDER_MAX_BODY);
		goto out;
	}
	if (!reaped) {
		gerr_set(err, "command: lost the child process");
		goto out;
	}
	if (WIFSIGNALED(status)) {
		gerr_set(err, "command: killed by signal %d", WTERMSIG(status));
		goto out;
	}
	if (parse_number(buf, out) < 0) {
		if (WEXITSTATUS(status) == 127) {
			gerr_set(err, "command: not found (exit 127)");
			goto out;
		}
		*out = WEXITSTATUS(status);
	}
	ret = 0;
out:
	if (pfd[0] >= 0)
		close(pfd[0]);
	if (pfd[1] >= 0)
		close(pfd[1]);
	free(buf);
	free(cmd);
	if (have_wc)
		workload_cmd_release(&wc);
	return ret;
}

int provider_measure(const struct analysis_metric *m, const struct provider_vars *v, double *out, struct gerr *err)
{
	switch (m->provider) {
	case PROVIDER_PROMETHEUS:
		return provider_prometheus(m->address, m->query, v, m->timeout_ms, out, err);
	case PROVIDER_HTTP:
		return provider_http(m->url, m->json_path, v, m->timeout_ms, out, err);
	case PROVIDER_COMMAND:
		return provider_command(m->command, v, m->timeout_ms, out, err);
	case PROVIDER_BUILTIN:
		break;
	}
	return gerr_set(err, "metric '%s': builtin metrics come from the proxy, not a provider", m->name ? m->name : "?");
}
