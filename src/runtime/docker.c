/*
 * docker.c — the Docker Engine HTTP API client (contract: docker.h; the
 * design: docs/internals/runtime.md, "The Docker Engine client").
 *
 * Every call makes its own curl easy handle and drives it through a multi
 * handle polled every 200 ms, so a follow of the logs sees *stop in time
 * and every other call is bounded by its timeout. struct docker is never
 * written after docker_open: calls may run on several threads at once.
 */
#include "common.h"
#include <arpa/inet.h>
#include <curl/curl.h>
#include <dirent.h>
#include <fnmatch.h>
#include <jansson.h>
#include <signal.h>
#include <sys/stat.h>
#include <time.h>
#include "runtime/docker.h"
#include "runtime/docker-int.h"
#include "util/buf.h"

struct docker {
	char *host;          /* as given: unix:///… or tcp://… */
	char *sock;          /* the Unix socket path, NULL for tcp */
	char *base;          /* "http://docker" or "http://HOST:PORT" */
	char version[16];    /* negotiated, "1.41" */
};

#define ERRBODY_MAX (64 << 10)
#define REPLY_MAX (16 << 20)
#define POLL_MS 200

/* ---- one request ---- */

struct xfer {
	CURL *c;
	long status;
	/* where the body goes: a bounded sink (reply), or on_data for a 2xx
	 * stream; an error status always goes to errbody */
	struct hbuf_sink reply;
	struct hbuf_sink errbody;
	void (*on_data)(void *arg, const char *p, size_t n);
	void *arg;
	char api_version[16]; /* the API-Version header, if any */
	bool stream_failed;   /* on_data asked to stop */
};

static size_t xfer_write(char *p, size_t size, size_t n, void *u)
{
	struct xfer *x = u;
	size_t len = size * n;

	if (!x->status)
		curl_easy_getinfo(x->c, CURLINFO_RESPONSE_CODE, &x->status);
	if (x->status >= 300)
		return hbuf_sink_write(p, size, n, &x->errbody);
	if (x->on_data) {
		x->on_data(x->arg, p, len);
		return x->stream_failed ? 0 : len;
	}
	return hbuf_sink_write(p, size, n, &x->reply);
}

static size_t xfer_header(char *p, size_t size, size_t n, void *u)
{
	struct xfer *x = u;
	size_t len = size * n;

	if (len > 12 && strncasecmp(p, "API-Version:", 12) == 0) {
		size_t i = 12, j;
		while (i < len && (p[i] == ' ' || p[i] == '\t'))
			i++;
		for (j = i; j < len && p[j] != '\r' && p[j] != '\n' && p[j] != ' '; j++)
			;
		snprintf(x->api_version, sizeof(x->api_version), "%.*s", (int)(j - i), p + i);
	}
	return len;
}

struct req {
	const char *op;           /* "create container web-1": the error's prefix */
	const char *method;       /* GET POST DELETE */
	const char *path;         /* "/containers/json?all=1": after /vVERSION */
	bool unversioned;         /* /_ping */
	const char *body;         /* NULL: none */
	size_t bodylen;
	const char *ctype;        /* body's Content-Type; default application/json */
	bool registry_auth;       /* send an empty X-Registry-Auth (pull, push) */
	long timeout_ms;          /* 0: none (a follow: stop decides) */
	volatile int *stop;
	void (*on_data)(void *arg, const char *p, size_t n);
	void *arg;
};

/* the Engine's {"message": "..."} of an error body, else the status */
static void engine_message(const struct xfer *x, char *out, size_t len)
{
	json_t *j = json_loadb(x->errbody.buf.data ? x->errbody.buf.data : "", x->errbody.buf.len, 0, NULL);
	const char *m = json_string_value(json_object_get(j, "message"));

	if (m && *m)
		snprintf(out, len, "%s", m);
	else if (x->errbody.buf.len && x->errbody.buf.len < 200 && !j) {
		/* the body's first line (the buffer holds no NUL) */
		const char *b = x->errbody.buf.data;
		size_t n = 0;
		while (n < x->errbody.buf.len && b[n] != '\r' && b[n] != '\n')
			n++;
		snprintf(out, len, "HTTP %ld: %.*s", x->status, (int)n, b);
	}
	else
		snprintf(out, len, "HTTP %ld", x->status);
	for (char *c = out; *c; c++)
		if ((unsigned char)*c < 0x20)
			*c = ' ';
	json_decref(j);
}

/*
 * Performs r. Returns the HTTP status (>= 100), or -1 with err when the
 * daemon could not be reached or the transfer failed; a stop request ends
 * it with status 0. The reply (2xx, not streamed) is in x->reply, an error
 * body in x->errbody: the caller owns x's buffers (xfer_release) either way.
 */
static long perform(const struct docker *d, const struct req *r, struct xfer *x, struct gerr *err)
{
	char url[4096], cerr[CURL_ERROR_SIZE] = "";
	struct curl_slist *h = NULL;
	CURLM *m = NULL;
	CURLcode rc = CURLE_OK;
	bool stopped = false;
	long ret = -1;
	int running = 1;
	int64_t deadline = 0;
	struct timespec ts;

	memset(x, 0, sizeof(*x));
	hbuf_sink_init(&x->reply, REPLY_MAX);
	hbuf_sink_init(&x->errbody, ERRBODY_MAX);
	x->on_data = r->on_data;
	x->arg = r->arg;
	if (r->unversioned)
		snprintf(url, sizeof(url), "%s%s", d->base, r->path);
	else
		snprintf(url, sizeof(url), "%s/v%s%s", d->base, d->version, r->path);
	x->c = curl_easy_init();
	m = curl_multi_init();
	if (!x->c || !m) {
		gerr_set(err, "%s: curl cannot start a transfer", r->op);
		goto out;
	}
	if (d->sock)
		curl_easy_setopt(x->c, CURLOPT_UNIX_SOCKET_PATH, d->sock);
	curl_easy_setopt(x->c, CURLOPT_URL, url);
	curl_easy_setopt(x->c, CURLOPT_PROTOCOLS_STR, "http");
	curl_easy_setopt(x->c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(x->c, CURLOPT_PROXY, "");
	curl_easy_setopt(x->c, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(x->c, CURLOPT_ERRORBUFFER, cerr);
	curl_easy_setopt(x->c, CURLOPT_USERAGENT, "gantry/" GANTRY_VERSION);
	curl_easy_setopt(x->c, CURLOPT_CONNECTTIMEOUT_MS, (long)DOCKER_TIMEOUT_MS);
	if (r->timeout_ms)
		curl_easy_setopt(x->c, CURLOPT_TIMEOUT_MS, r->timeout_ms);
	curl_easy_setopt(x->c, CURLOPT_WRITEFUNCTION, xfer_write);
	curl_easy_setopt(x->c, CURLOPT_WRITEDATA, x);
	curl_easy_setopt(x->c, CURLOPT_HEADERFUNCTION, xfer_header);
	curl_easy_setopt(x->c, CURLOPT_HEADERDATA, x);
	curl_easy_setopt(x->c, CURLOPT_CUSTOMREQUEST, r->method);
	if (strcmp(r->method, "GET") == 0)
		curl_easy_setopt(x->c, CURLOPT_HTTPGET, 1L);
	if (strcmp(r->method, "POST") == 0 || r->body) {
		curl_easy_setopt(x->c, CURLOPT_POST, 1L);
		curl_easy_setopt(x->c, CURLOPT_POSTFIELDS, r->body ? r->body : "");
		curl_easy_setopt(x->c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)(r->body ? r->bodylen : 0));
		h = curl_slist_append(h, r->ctype ? (r->ctype[0] ? r->ctype : "Content-Type:")
						  : "Content-Type: application/json");
		/* no "Expect: 100-continue" round trip for a large build context */
		h = curl_slist_append(h, "Expect:");
	}
	if (r->registry_auth)
		h = curl_slist_append(h, "X-Registry-Auth: e30="); /* base64("{}"): anonymous */
	if (h)
		curl_easy_setopt(x->c, CURLOPT_HTTPHEADER, h);
	curl_multi_add_handle(m, x->c);
	clock_gettime(CLOCK_MONOTONIC, &ts);
	if (r->timeout_ms)
		deadline = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000 + r->timeout_ms + 1000;
	while (running) {
		CURLMcode mc = curl_multi_perform(m, &running);
		if (mc != CURLM_OK) {
			gerr_set(err, "%s: %s", r->op, curl_multi_strerror(mc));
			goto out;
		}
		if (!running)
			break;
		if (r->stop && *r->stop) {
			stopped = true;
			break;
		}
		clock_gettime(CLOCK_MONOTONIC, &ts);
		/* curl enforces TIMEOUT_MS; this only guards the loop itself */
		if (deadline && (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000 > deadline) {
			gerr_set(err, "%s: timed out after %ld ms", r->op, r->timeout_ms);
			goto out;
		}
		curl_multi_poll(m, NULL, 0, POLL_MS, NULL);
	}
	if (!stopped) {
		CURLMsg *msg;
		int q;
		while ((msg = curl_multi_info_read(m, &q)))
			if (msg->msg == CURLMSG_DONE)
				rc = msg->data.result;
	}
	if (!x->status)
		curl_easy_getinfo(x->c, CURLINFO_RESPONSE_CODE, &x->status);
	if (stopped) {
		ret = 0;
	} else if (rc == CURLE_COULDNT_CONNECT || rc == CURLE_COULDNT_RESOLVE_HOST ||
		   (rc != CURLE_OK && x->status == 0 && rc != CURLE_OPERATION_TIMEDOUT)) {
		long oserr = 0;
		/* "No such file or directory" says more than curl's "port 80" of a socket */
		curl_easy_getinfo(x->c, CURLINFO_OS_ERRNO, &oserr);
		gerr_set(err, "docker: cannot reach %s: %s", d->host,
			 oserr ? strerror((int)oserr) : *cerr ? cerr : curl_easy_strerror(rc));
	} else if (rc == CURLE_WRITE_ERROR && x->status >= 300) {
		ret = x->status; /* an error body past its bound: the status says enough */
	} else if (rc == CURLE_WRITE_ERROR && x->reply.over) {
		gerr_set(err, "%s: the Engine's reply is larger than %d MiB", r->op, REPLY_MAX >> 20);
	} else if (rc == CURLE_WRITE_ERROR && x->stream_failed) {
		ret = x->status; /* the stream's consumer said why */
	} else if (rc != CURLE_OK) {
		gerr_set(err, "%s: %s", r->op, *cerr ? cerr : curl_easy_strerror(rc));
	} else {
		ret = x->status;
	}
out:
	if (m && x->c)
		curl_multi_remove_handle(m, x->c);
	if (m)
		curl_multi_cleanup(m);
	if (x->c)
		curl_easy_cleanup(x->c);
	x->c = NULL;
	curl_slist_free_all(h);
	return ret;
}

static void xfer_release(struct xfer *x)
{
	hbuf_release(&x->reply.buf);
	hbuf_release(&x->errbody.buf);
}

/* -1 with "OP: MESSAGE" for an error status */
static int status_error(const struct req *r, const struct xfer *x, struct gerr *err)
{
	char msg[512];

	engine_message(x, msg, sizeof(msg));
	return gerr_set(err, "%s: %s", r->op, msg);
}

/* the 2xx reply as JSON (owned), or NULL with err */
static json_t *reply_json(const struct req *r, struct xfer *x, struct gerr *err)
{
	json_error_t je;
	json_t *j = json_loadb(x->reply.buf.data ? x->reply.buf.data : "", x->reply.buf.len, 0, &je);

	if (!j)
		gerr_set(err, "%s: the Engine's reply is not JSON: %s", r->op, je.text);
	return j;
}

/* a simple request: status or -1; the reply stays in x (xfer_release) */
static long call(struct docker *d, struct req *r, struct xfer *x, struct gerr *err)
{
	if (!r->timeout_ms)
		r->timeout_ms = DOCKER_TIMEOUT_MS;
	return perform(d, r, x, err);
}

/*
 * Performs r and parses its 200 or 201 reply: 1 (*out owned), 0 for a 404
 * when missing_ok (the object does not exist), -1 with err (r->op names it)
 */
static int req_json(struct docker *d, struct req *r, bool missing_ok, json_t **out, struct gerr *err)
{
	struct xfer x;
	long st = call(d, r, &x, err);
	int ret = -1;

	*out = NULL;
	if (st < 0)
		goto out;
	if (st == 404 && missing_ok) {
		ret = 0;
	} else if (st != 200 && st != 201) {
		status_error(r, &x, err);
	} else if ((*out = reply_json(r, &x, err))) {
		ret = 1;
	}
out:
	xfer_release(&x);
	return ret;
}

/* GET path, as req_json */
static int get_json(struct docker *d, const char *op, const char *path, bool missing_ok, json_t **out,
		    struct gerr *err)
{
	struct req r = { .op = op, .method = "GET", .path = path };
	return req_json(d, &r, missing_ok, out, err);
}

static char *esc(const char *s)
{
	char *e = curl_easy_escape(NULL, s, 0);
	char *r;

	if (!e)
		return xstrdup("");
	r = xstrdup(e);
	curl_free(e);
	return r;
}

/* ---- open, ping, version ---- */

static int parse_version(const char *v, int *maj, int *min)
{
	char *end;
	long a, b;

	errno = 0;
	a = strtol(v, &end, 10);
	if (end == v || *end != '.')
		return -1;
	v = end + 1;
	b = strtol(v, &end, 10);
	if (end == v || *end || errno || a < 0 || b < 0 || a > 1000 || b > 100000)
		return -1;
	*maj = (int)a;
	*min = (int)b;
	return 0;
}

static int vcmp(const char *a, const char *b)
{
	int am = 0, an = 0, bm = 0, bn = 0;

	parse_version(a, &am, &an);
	parse_version(b, &bm, &bn);
	return am != bm ? (am < bm ? -1 : 1) : an != bn ? (an < bn ? -1 : 1) : 0;
}

int docker_ping(struct docker *d, struct gerr *err)
{
	struct req r = { .op = "ping", .method = "GET", .path = "/_ping", .unversioned = true };
	struct xfer x;
	long st = call(d, &r, &x, err);
	int ret = -1;

	if (st < 0)
		goto out;
	if (st != 200) {
		status_error(&r, &x, err);
		goto out;
	}
	ret = 0;
out:
	xfer_release(&x);
	return ret;
}

/* the negotiation: GET /_ping's API-Version against MIN and MAX */
static int negotiate(struct docker *d, struct gerr *err)
{
	struct req r = { .op = "ping", .method = "GET", .path = "/_ping", .unversioned = true };
	struct xfer x;
	long st = call(d, &r, &x, err);
	int ret = -1, maj, min;

	if (st < 0)
		goto out;
	if (st != 200) {
		char msg[512];
		engine_message(&x, msg, sizeof(msg));
		gerr_set(err, "docker: %s does not answer /_ping: %s", d->host, msg);
		goto out;
	}
	if (!x.api_version[0] || parse_version(x.api_version, &maj, &min) < 0) {
		gerr_set(err, "docker: %s gives no API version in its /_ping answer (API-Version: '%s')", d->host,
			 x.api_version);
		goto out;
	}
	if (vcmp(x.api_version, DOCKER_API_MIN) < 0) {
		gerr_set(err, "docker: the Engine at %s speaks API %s; gantry needs %s or later", d->host,
			 x.api_version, DOCKER_API_MIN);
		goto out;
	}
	snprintf(d->version, sizeof(d->version), "%d.%d", maj, min);
	if (vcmp(d->version, DOCKER_API_MAX) > 0)
		strlcpy_g(d->version, DOCKER_API_MAX, sizeof(d->version));
	ret = 0;
out:
	xfer_release(&x);
	return ret;
}

struct docker *docker_open(const char *host, struct gerr *err)
{
	struct docker *d = xcalloc(1, sizeof(*d));

	if (!host || !*host)
		host = getenv("DOCKER_HOST");
	if (!host || !*host)
		host = "unix:///var/run/docker.sock";
	d->host = xstrdup(host);
	if (strncmp(host, "unix://", 7) == 0 && host[7] == '/') {
		d->sock = xstrdup(host + 7);
		d->base = xstrdup("http://docker");
	} else if (strncmp(host, "tcp://", 6) == 0 && host[6] && !strchr(host + 6, '/')) {
		d->base = xasprintf("http://%s", host + 6);
	} else if (strncmp(host, "tcp://", 6) == 0 && host[6] && strchr(host + 6, '/') &&
		   strchr(host + 6, '/')[1] == 0) {
		d->base = xasprintf("http://%.*s", (int)(strchr(host + 6, '/') - (host + 6)), host + 6);
	} else {
		gerr_set(err, "docker: unsupported DOCKER_HOST '%s' (unix:///PATH or tcp://HOST:PORT)", host);
		goto fail;
	}
	curl_global_init(CURL_GLOBAL_DEFAULT);
	strlcpy_g(d->version, DOCKER_API_MIN, sizeof(d->version));
	if (negotiate(d, err) < 0) {
		docker_close(d);
		return NULL;
	}
	return d;
fail:
	free(d->host);
	free(d->sock);
	free(d->base);
	free(d);
	return NULL;
}

void docker_close(struct docker *d)
{
	if (!d)
		return;
	free(d->host);
	free(d->sock);
	free(d->base);
	free(d);
	curl_global_cleanup();
}

const char *docker_api_version(const struct docker *d)
{
	return d->version;
}

const char *docker_host(const struct docker *d)
{
	return d->host;
}

/* ---- small JSON readers ---- */

static void jstr(json_t *o, const char *key, char *out, size_t len)
{
	const char *s = json_string_value(json_object_get(o, key));
	strlcpy_g(out, s ? s : "", len);
}

/* RFC 3339 ("2026-12-07T09:41:03.123456789Z", "+01:00") to unix ms; 0 for
 * Go's zero time ("0001-01-01T00:00:00Z") and anything unreadable */
static int64_t rfc3339_ms(const char *s)
{
	struct tm tm = { 0 };
	int64_t ms = 0, t;
	const char *p;
	int n = 0;

	if (!s || sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour,
			 &tm.tm_min, &tm.tm_sec, &n) != 6 || n == 0)
		return 0;
	if (tm.tm_year < 1971)
		return 0;
	tm.tm_year -= 1900;
	tm.tm_mon -= 1;
	p = s + n;
	if (*p == '.') {
		int digits = 0;
		for (p++; *p >= '0' && *p <= '9'; p++)
			if (digits < 3) {
				ms = ms * 10 + (*p - '0');
				digits++;
			}
		while (digits++ < 3)
			ms *= 10;
	}
	t = (int64_t)timegm(&tm);
	if (*p == '+' || *p == '-') {
		int hh = 0, mm = 0;
		if (sscanf(p + 1, "%2d:%2d", &hh, &mm) == 2)
			t -= (*p == '+' ? 1 : -1) * (int64_t)(hh * 3600 + mm * 60);
	}
	return t * 1000 + ms;
}

/* ---- images ---- */

int docker_ref_split(const char *ref, char *name, size_t namelen, char *tag, size_t taglen)
{
	const char *at = strchr(ref, '@');
	const char *slash = strrchr(ref, '/');
	const char *colon = strrchr(ref, ':');
	size_t nl;
	const char *t;

	if (!*ref)
		return -1;
	if (at) {
		nl = (size_t)(at - ref);
		t = at + 1;
	} else if (colon && (!slash || colon > slash)) {
		nl = (size_t)(colon - ref);
		t = colon + 1;
	} else {
		nl = strlen(ref);
		t = "latest";
	}
	if (!nl || !*t || nl >= namelen || strlen(t) >= taglen)
		return -1;
	memcpy(name, ref, nl);
	name[nl] = 0;
	strlcpy_g(tag, t, taglen);
	return 0;
}

int docker_image_inspect(struct docker *d, const char *ref, struct docker_image *out, struct gerr *err)
{
	char *op = xasprintf("inspect image %s", ref);
	char *path = xasprintf("/images/%s/json", ref);
	json_t *j = NULL, *rd;
	int ret;

	memset(out, 0, sizeof(*out));
	if ((ret = get_json(d, op, path, true, &j, err)) <= 0)
		goto out;
	ret = -1;
	jstr(j, "Id", out->id, sizeof(out->id));
	rd = json_object_get(j, "RepoDigests");
	if (json_array_size(rd))
		strlcpy_g(out->repo_digest, json_string_value(json_array_get(rd, 0)) ? json_string_value(json_array_get(rd, 0)) : "", sizeof(out->repo_digest));
	out->size = json_integer_value(json_object_get(j, "Size"));
	if (!out->id[0]) {
		gerr_set(err, "%s: the Engine's answer has no Id", op);
		goto out;
	}
	ret = 1;
out:
	json_decref(j);
	free(op);
	free(path);
	return ret;
}

int docker_network_gateway(struct docker *d, const char *name, char *ip, size_t len, struct gerr *err)
{
	char *n = esc(name), *op = xasprintf("inspect network %s", name), *path = xasprintf("/networks/%s", n);
	json_t *j = NULL, *cfg, *one;
	size_t i;
	int ret;

	ip[0] = 0;
	if ((ret = get_json(d, op, path, true, &j, err)) <= 0)
		goto out;
	ret = 0;
	cfg = json_object_get(json_object_get(j, "IPAM"), "Config");
	json_array_foreach(cfg, i, one) {
		const char *g = json_string_value(json_object_get(one, "Gateway"));
		struct in_addr a;
		/* the IPv4 one: what a container on the network reaches the host at */
		if (g && inet_pton(AF_INET, g, &a) == 1 && strlen(g) < len) {
			strlcpy_g(ip, g, len);
			ret = 1;
			break;
		}
	}
out:
	json_decref(j);
	free(n);
	free(op);
	free(path);
	return ret;
}

static char **strv_from_json(const json_t *a)
{
	char **v;
	size_t i, n = json_array_size(a), o = 0;
	const json_t *e;
	if (!json_is_array(a))
		return NULL;
	v = xcalloc(n + 1, sizeof(*v));
	json_array_foreach(a, i, e)
		if (json_is_string(e))
			v[o++] = xstrdup(json_string_value(e));
	return v;
}

int docker_image_command(struct docker *d, const char *ref, char ***entrypoint, char ***cmd, struct gerr *err)
{
	char *op = xasprintf("inspect image %s", ref);
	char *path = xasprintf("/images/%s/json", ref);
	json_t *j = NULL, *conf;
	int ret;

	*entrypoint = *cmd = NULL;
	if ((ret = get_json(d, op, path, true, &j, err)) > 0) {
		conf = json_object_get(j, "Config");
		*entrypoint = strv_from_json(json_object_get(conf, "Entrypoint"));
		*cmd = strv_from_json(json_object_get(conf, "Cmd"));
		ret = 1;
	}
	json_decref(j);
	free(op);
	free(path);
	return ret;
}

static void progress_data(void *arg, const char *p, size_t n)
{
	docker_progress_feed(arg, p, n);
}

/* a progress-stream request (pull, push, build): 0 or -1 with err naming op */
static int progress_call(struct docker *d, struct req *r, struct docker_progress *pg, bool tail,
			 struct gerr *err)
{
	struct xfer x;
	long st;
	int ret = -1;

	r->on_data = progress_data;
	r->arg = pg;
	r->timeout_ms = DOCKER_LONG_TIMEOUT_MS;
	st = perform(d, r, &x, err);
	docker_progress_finish(pg);
	if (st < 0)
		goto out;
	if (st < 200 || st >= 300) {
		status_error(r, &x, err);
		goto out;
	}
	if (pg->error[0]) {
		char t[768];
		docker_progress_tail(pg, t, sizeof(t));
		if (tail && t[0])
			gerr_set(err, "%s: %s (last lines: %s)", r->op, pg->error, t);
		else
			gerr_set(err, "%s: %s", r->op, pg->error);
		goto out;
	}
	ret = 0;
out:
	xfer_release(&x);
	return ret;
}

static int image_pull(struct docker *d, const char *ref, docker_progress_cb cb, void *data, docker_layer_cb lcb,
		      void *ldata, struct gerr *err);

int docker_image_pull(struct docker *d, const char *ref, docker_progress_cb cb, void *data, struct gerr *err)
{
	return image_pull(d, ref, cb, data, NULL, NULL, err);
}

int docker_image_pull_layers(struct docker *d, const char *ref, docker_layer_cb lcb, void *data, struct gerr *err)
{
	return image_pull(d, ref, NULL, NULL, lcb, data, err);
}

static int image_pull(struct docker *d, const char *ref, docker_progress_cb cb, void *data, docker_layer_cb lcb,
		      void *ldata, struct gerr *err)
{
	char name[512], tag[160];
	char *op = xasprintf("pull %s", ref), *en = NULL, *et = NULL, *path = NULL;
	struct docker_progress pg;
	struct req r = { .op = op, .method = "POST", .registry_auth = true };
	int ret = -1;

	docker_progress_init(&pg, op, cb, data);
	pg.lcb = lcb;
	pg.ldata = ldata;
	if (docker_ref_split(ref, name, sizeof(name), tag, sizeof(tag)) < 0) {
		gerr_set(err, "%s: not an image reference", op);
		goto out;
	}
	en = esc(name);
	et = esc(tag);
	path = xasprintf("/images/create?fromImage=%s&tag=%s", en, et);
	r.path = path;
	ret = progress_call(d, &r, &pg, false, err);
out:
	docker_progress_release(&pg);
	free(op);
	free(en);
	free(et);
	free(path);
	return ret;
}

int docker_image_push(struct docker *d, const char *ref, docker_progress_cb cb, void *data, struct gerr *err)
{
	char name[512], tag[160];
	char *op = xasprintf("push %s", ref), *et = NULL, *path = NULL;
	struct docker_progress pg;
	struct req r = { .op = op, .method = "POST", .registry_auth = true };
	int ret = -1;

	docker_progress_init(&pg, op, cb, data);
	if (strchr(ref, '@') || docker_ref_split(ref, name, sizeof(name), tag, sizeof(tag)) < 0) {
		gerr_set(err, "%s: not a NAME:TAG reference", op);
		goto out;
	}
	et = esc(tag);
	path = xasprintf("/images/%s/push?tag=%s", name, et);
	r.path = path;
	ret = progress_call(d, &r, &pg, false, err);
out:
	docker_progress_release(&pg);
	free(op);
	free(et);
	free(path);
	return ret;
}

int docker_image_tag(struct docker *d, const char *ref, const char *repo, const char *tag, struct gerr *err)
{
	char *op = xasprintf("tag %s as %s:%s", ref, repo, tag ? tag : "latest");
	char *er = esc(repo), *et = esc(tag ? tag : "latest");
	char *path = xasprintf("/images/%s/tag?repo=%s&tag=%s", ref, er, et);
	struct req r = { .op = op, .method = "POST", .path = path };
	struct xfer x;
	long st = call(d, &r, &x, err);
	int ret = -1;

	if (st < 0)
		goto out;
	if (st != 201 && st != 200) {
		status_error(&r, &x, err);
		goto out;
	}
	ret = 0;
out:
	xfer_release(&x);
	free(op);
	free(er);
	free(et);
	free(path);
	return ret;
}

int docker_image_remove(struct docker *d, const char *ref, struct gerr *err)
{
	char *op = xasprintf("remove image %s", ref);
	char *path = xasprintf("/images/%s", ref);
	struct req r = { .op = op, .method = "DELETE", .path = path };
	struct xfer x;
	long st = call(d, &r, &x, err);
	int ret = -1;

	if (st < 0)
		goto out;
	if (st == 200)
		ret = 1;
	else if (st == 404 || st == 409)
		ret = 0; /* absent, or in use by a container: it stays */
	else
		status_error(&r, &x, err);
out:
	xfer_release(&x);
	free(op);
	free(path);
	return ret;
}

/* ---- build: the context as a tar, in memory ---- */

struct ignore {
	char **pat;
	size_t n;
};

static int ignore_load(const char *dir, struct ignore *ig, struct gerr *err)
{
	char *path = xasprintf("%s/.dockerignore", dir);
	FILE *f = fopen(path, "r");
	char line[4096];
	int ret = 0, lineno = 0;

	memset(ig, 0, sizeof(*ig));
	if (!f)
		goto out;
	while (fgets(line, sizeof(line), f)) {
		char *s = line, *e;
		lineno++;
		s[strcspn(s, "\r\n")] = 0;
		while (*s == ' ' || *s == '\t')
			s++;
		e = s + strlen(s);
		while (e > s && (e[-1] == ' ' || e[-1] == '\t'))
			*--e = 0;
		if (!*s || *s == '#')
			continue;
		if (*s == '!') {
			ret = gerr_set(err, "%s:%d: '!' exceptions are not supported", path, lineno);
			break;
		}
		while (*s == '/')
			s++;
		while (e > s && e[-1] == '/')
			*--e = 0;
		if (strncmp(s, "./", 2) == 0)
			s += 2;
		if (!*s)
			continue;
		ig->pat = xrealloc(ig->pat, (ig->n + 1) * sizeof(*ig->pat));
		ig->pat[ig->n++] = xstrdup(s);
	}
	fclose(f);
out:
	free(path);
	return ret;
}

static void ignore_release(struct ignore *ig)
{
	for (size_t i = 0; i < ig->n; i++)
		free(ig->pat[i]);
	free(ig->pat);
}

/* rel or one of its parent directories matches a pattern */
static bool ignored(const struct ignore *ig, const char *rel)
{
	for (size_t i = 0; i < ig->n; i++)
		/* no FNM_PERIOD: as Go's filepath.Match, "*.key" matches ".a.key" */
		if (fnmatch(ig->pat[i], rel, FNM_PATHNAME | FNM_LEADING_DIR) == 0)
			return true;
	return false;
}

static void octal(char *field, size_t len, uint64_t v)
{
	/* len-1 octal digits, zero-padded, and a NUL (the caller bounds v) */
	field[len - 1] = 0;
	for (size_t i = len - 1; i-- > 0; v >>= 3)
		field[i] = (char)('0' + (v & 7));
}

/* one ustar header (name split into prefix/name when it is long) */
static int tar_header(struct hbuf *t, const char *rel, char type, uint64_t size, mode_t mode, time_t mtime,
		      const char *link, struct gerr *err)
{
	unsigned char h[512];
	size_t n = strlen(rel), sum = 0;
	char chk[8];

	memset(h, 0, sizeof(h));
	if (n <= 100) {
		memcpy(h, rel, n);
	} else {
		/* split at a '/' so the name fits 100 and the prefix 155 */
		const char *cut = NULL;
		for (const char *s = rel; (s = strchr(s, '/')); s++)
			if ((size_t)(s - rel) <= 155 && n - (size_t)(s - rel) - 1 <= 100 && s != rel) {
				cut = s;
				break;
			}
		if (!cut)
			return gerr_set(err, "build context: path too long for a ustar archive: %s", rel);
		memcpy(h + 345, rel, (size_t)(cut - rel));
		memcpy(h, cut + 1, n - (size_t)(cut - rel) - 1);
	}
	if (link && strlen(link) > 100)
		return gerr_set(err, "build context: symlink target too long for a ustar archive: %s", rel);
	octal((char *)h + 100, 8, mode & 07777);
	octal((char *)h + 108, 8, 0);
	octal((char *)h + 116, 8, 0);
	octal((char *)h + 124, 12, size);
	octal((char *)h + 136, 12, mtime > 0 ? (uint64_t)mtime : 0);
	h[156] = (unsigned char)type;
	if (link)
		memcpy(h + 157, link, strlen(link));
	memcpy(h + 257, "ustar", 6);
	memcpy(h + 263, "00", 2);
	memset(h + 148, ' ', 8);
	for (size_t i = 0; i < sizeof(h); i++)
		sum += h[i];
	snprintf(chk, sizeof(chk), "%06o", (unsigned)sum);
	memcpy(h + 148, chk, 7);
	if (hbuf_append(t, h, sizeof(h)) < 0)
		return gerr_set(err, "build context is larger than %d MiB", DOCKER_CONTEXT_MAX >> 20);
	return 0;
}

static int tar_file(struct hbuf *t, const char *full, const char *rel, const struct stat *st, struct gerr *err)
{
	static const char zero[512];
	FILE *f = fopen(full, "rb");
	char buf[65536];
	uint64_t done = 0;
	size_t r;
	int ret = -1;

	if (!f)
		return gerr_set(err, "build context: %s: %s", rel, strerror(errno));
	if ((uint64_t)st->st_size > (uint64_t)DOCKER_CONTEXT_MAX) {
		gerr_set(err, "build context is larger than %d MiB", DOCKER_CONTEXT_MAX >> 20);
		goto out;
	}
	if (tar_header(t, rel, '0', (uint64_t)st->st_size, st->st_mode, st->st_mtime, NULL, err) < 0)
		goto out;
	while (done < (uint64_t)st->st_size && (r = fread(buf, 1, sizeof(buf), f)) > 0) {
		r = (size_t)MIN((uint64_t)r, (uint64_t)st->st_size - done);
		if (hbuf_append(t, buf, r) < 0) {
			gerr_set(err, "build context is larger than %d MiB", DOCKER_CONTEXT_MAX >> 20);
			goto out;
		}
		done += r;
	}
	if (done != (uint64_t)st->st_size) {
		gerr_set(err, "build context: %s changed while it was read", rel);
		goto out;
	}
	if (done % 512 && hbuf_append(t, zero, 512 - done % 512) < 0) {
		gerr_set(err, "build context is larger than %d MiB", DOCKER_CONTEXT_MAX >> 20);
		goto out;
	}
	ret = 0;
out:
	fclose(f);
	return ret;
}

static int dirsort(const struct dirent **a, const struct dirent **b)
{
	return strcmp((*a)->d_name, (*b)->d_name);
}

/* dir/rel (rel "" for the top), sorted, so one context gives one tar */
static int tar_dir(struct hbuf *t, const char *top, const char *rel, const struct ignore *ig, const char *dockerfile,
		   int depth, struct gerr *err)
{
	char *dir = *rel ? xasprintf("%s/%s", top, rel) : xstrdup(top);
	struct dirent **ents = NULL;
	int n = scandir(dir, &ents, NULL, dirsort), ret = 0;

	if (n < 0) {
		ret = gerr_set(err, "build context: cannot read %s: %s", dir, strerror(errno));
		goto out;
	}
	if (depth > 64) {
		ret = gerr_set(err, "build context: %s is nested too deep", dir);
		goto out;
	}
	for (int i = 0; i < n && ret == 0; i++) {
		const char *nm = ents[i]->d_name;
		char *r2, *full;
		struct stat st;
		if (strcmp(nm, ".") == 0 || strcmp(nm, "..") == 0)
			continue;
		r2 = *rel ? xasprintf("%s/%s", rel, nm) : xstrdup(nm);
		full = xasprintf("%s/%s", top, r2);
		if (ignored(ig, r2) && strcmp(r2, dockerfile) != 0 && strcmp(r2, ".dockerignore") != 0) {
			/* ignored: not sent */
		} else if (lstat(full, &st) < 0) {
			ret = gerr_set(err, "build context: %s: %s", r2, strerror(errno));
		} else if (S_ISREG(st.st_mode)) {
			ret = tar_file(t, full, r2, &st, err);
		} else if (S_ISDIR(st.st_mode)) {
			char *d2 = xasprintf("%s/", r2);
			ret = tar_header(t, d2, '5', 0, st.st_mode, st.st_mtime, NULL, err);
			free(d2);
			if (ret == 0)
				ret = tar_dir(t, top, r2, ig, dockerfile, depth + 1, err);
		} else if (S_ISLNK(st.st_mode)) {
			char target[PATH_MAX];
			ssize_t k = readlink(full, target, sizeof(target) - 1);
			if (k < 0) {
				ret = gerr_set(err, "build context: %s: %s", r2, strerror(errno));
			} else {
				target[k] = 0;
				ret = tar_header(t, r2, '2', 0, st.st_mode, st.st_mtime, target, err);
			}
		}
		/* sockets, fifos, devices: not part of a context */
		free(r2);
		free(full);
	}
out:
	for (int i = 0; i < n; i++)
		free(ents[i]);
	free(ents);
	free(dir);
	return ret < 0 ? -1 : 0;
}

int docker_image_build(struct docker *d, const char *context_dir, const char *dockerfile,
		       const struct kv *args, size_t nargs, const char *tag, docker_progress_cb cb, void *data,
		       struct docker_image *out, struct gerr *err)
{
	static const char zero[1024];
	char *op = xasprintf("build %s", tag ? tag : context_dir);
	struct ignore ig = { 0 };
	struct hbuf t;
	struct docker_progress pg;
	struct hbuf path;
	json_t *ba = json_object();
	char *bas = NULL, *e;
	struct req r = { .op = op, .method = "POST", .ctype = "Content-Type: application/x-tar" };
	int ret = -1;

	memset(out, 0, sizeof(*out));
	hbuf_init(&t, DOCKER_CONTEXT_MAX);
	hbuf_init(&path, 1 << 20);
	docker_progress_init(&pg, op, cb, data);
	if (!dockerfile || !*dockerfile)
		dockerfile = "Dockerfile";
	if (ignore_load(context_dir, &ig, err) < 0)
		goto out;
	if (tar_dir(&t, context_dir, "", &ig, dockerfile, 0, err) < 0) {
		char m[sizeof(err->msg)];
		strlcpy_g(m, err ? err->msg : "", sizeof(m));
		gerr_set(err, "%s: %s", op, m);
		goto out;
	}
	if (hbuf_append(&t, zero, sizeof(zero)) < 0) {
		gerr_set(err, "%s: build context is larger than %d MiB", op, DOCKER_CONTEXT_MAX >> 20);
		goto out;
	}
	for (size_t i = 0; i < nargs; i++)
		json_object_set_new(ba, args[i].key, json_string(args[i].value ? args[i].value : ""));
	bas = json_dumps(ba, JSON_COMPACT);
	hbuf_addstr(&path, "/build?rm=1&forcerm=1&dockerfile=");
	e = esc(dockerfile);
	hbuf_addstr(&path, e);
	free(e);
	if (tag && *tag) {
		hbuf_addstr(&path, "&t=");
		e = esc(tag);
		hbuf_addstr(&path, e);
		free(e);
	}
	if (nargs) {
		hbuf_addstr(&path, "&buildargs=");
		e = esc(bas ? bas : "{}");
		if (hbuf_addstr(&path, e) < 0) {
			free(e);
			gerr_set(err, "%s: build args are too long", op);
			goto out;
		}
		free(e);
	}
	if (hbuf_append(&path, "", 1) < 0) {
		gerr_set(err, "%s: build args are too long", op);
		goto out;
	}
	r.path = path.data;
	r.body = t.data;
	r.bodylen = t.len;
	if (progress_call(d, &r, &pg, true, err) < 0)
		goto out;
	if (!pg.id[0] && !(tag && *tag)) {
		gerr_set(err, "%s: the Engine did not say which image it built", op);
		goto out;
	}
	{
		int k = docker_image_inspect(d, pg.id[0] ? pg.id : tag, out, err);
		if (k == 0)
			gerr_set(err, "%s: the image built (%s) is gone", op, pg.id[0] ? pg.id : tag);
		if (k <= 0)
			goto out;
	}
	ret = 0;
out:
	ignore_release(&ig);
	hbuf_release(&t);
	hbuf_release(&path);
	docker_progress_release(&pg);
	json_decref(ba);
	free(bas);
	free(op);
	return ret;
}

/* ---- containers ---- */

static json_t *strv(char *const *v)
{
	json_t *a = json_array();
	for (; v && *v; v++)
		json_array_append_new(a, json_string(*v));
	return a;
}

int docker_container_create(struct docker *d, const struct docker_create *c, char *id, size_t idlen,
			    struct gerr *err)
{
	char *op = xasprintf("create container %s", c->name ? c->name : "");
	char *en = esc(c->name ? c->name : ""), *path = NULL, *body = NULL;
	json_t *j = json_object(), *hc = json_object(), *labels = json_object(), *reply = NULL;
	struct req r = { .op = op, .method = "POST" };
	int ret = -1;

	if (idlen)
		id[0] = 0;
	json_object_set_new(j, "Image", json_string(c->image ? c->image : ""));
	json_object_set_new(j, "Env", strv(c->env));
	if (c->user && *c->user)
		json_object_set_new(j, "User", json_string(c->user));
	if (c->entrypoint)
		json_object_set_new(j, "Entrypoint", strv(c->entrypoint));
	if (c->cmd)
		json_object_set_new(j, "Cmd", strv(c->cmd));
	for (size_t i = 0; i < c->nlabels; i++)
		json_object_set_new(labels, c->labels[i].key, json_string(c->labels[i].value ? c->labels[i].value : ""));
	json_object_set_new(j, "Labels", labels);
	{
		char sig[16];
		snprintf(sig, sizeof(sig), "%d", c->stop_signal > 0 ? c->stop_signal : SIGTERM);
		json_object_set_new(j, "StopSignal", json_string(sig));
	}
	json_object_set_new(j, "AttachStdout", json_false());
	json_object_set_new(j, "AttachStderr", json_false());
	json_object_set_new(j, "Tty", json_false());
	json_object_set_new(j, "OpenStdin", json_false());
	{
		json_t *rp = json_object();
		json_object_set_new(rp, "Name", json_string("no"));
		json_object_set_new(hc, "RestartPolicy", rp);
	}
	if (c->container_port > 0) {
		char port[32], hp[16];
		json_t *ep = json_object(), *pb = json_object(), *bind = json_object(), *arr = json_array();
		snprintf(port, sizeof(port), "%d/tcp", c->container_port);
		snprintf(hp, sizeof(hp), "%d", c->host_port > 0 ? c->host_port : 0);
		json_object_set_new(ep, port, json_object());
		json_object_set_new(j, "ExposedPorts", ep);
		json_object_set_new(bind, "HostIp", json_string(c->host_ip && *c->host_ip ? c->host_ip : "127.0.0.1"));
		json_object_set_new(bind, "HostPort", json_string(c->host_port > 0 ? hp : ""));
		json_array_append_new(arr, bind);
		json_object_set_new(pb, port, arr);
		json_object_set_new(hc, "PortBindings", pb);
	}
	if (c->res) {
		if (c->res->memory_bytes > 0) {
			json_object_set_new(hc, "Memory", json_integer(c->res->memory_bytes));
			/* the limit is the memory: no swap beyond it */
			json_object_set_new(hc, "MemorySwap", json_integer(c->res->memory_bytes));
		}
		if (c->res->cpu_millis > 0)
			json_object_set_new(hc, "NanoCpus", json_integer(c->res->cpu_millis * 1000000));
		if (c->res->pids > 0)
			json_object_set_new(hc, "PidsLimit", json_integer(c->res->pids));
	}
	if (c->network && *c->network)
		json_object_set_new(hc, "NetworkMode", json_string(c->network));
	if (c->binds && c->binds[0])
		json_object_set_new(hc, "Binds", strv(c->binds));
	json_object_set_new(j, "HostConfig", hc);
	hc = NULL;
	body = json_dumps(j, JSON_COMPACT);
	path = c->name && *c->name ? xasprintf("/containers/create?name=%s", en) : xstrdup("/containers/create");
	r.path = path;
	r.body = body;
	r.bodylen = strlen(body);
	if (req_json(d, &r, false, &reply, err) < 0)
		goto out;
	if (!json_string_value(json_object_get(reply, "Id"))) {
		gerr_set(err, "%s: the Engine's answer has no Id", op);
		goto out;
	}
	if (strlen(json_string_value(json_object_get(reply, "Id"))) >= idlen) {
		gerr_set(err, "%s: the container id does not fit %zu bytes", op, idlen);
		goto out;
	}
	strlcpy_g(id, json_string_value(json_object_get(reply, "Id")), idlen);
	ret = 0;
out:
	json_decref(j);
	json_decref(reply);
	free(op);
	free(en);
	free(path);
	free(body);
	return ret;
}

/* POST/DELETE on a container with an expected set of answers */
static int container_verb(struct docker *d, const char *op, const char *method, const char *path, long ok1,
			  long ok2, long zero1, long zero2, struct gerr *err)
{
	struct req r = { .op = op, .method = method, .path = path };
	struct xfer x;
	long st = call(d, &r, &x, err);
	int ret = -1;

	if (st < 0)
		goto out;
	if (st == ok1 || st == ok2)
		ret = 1;
	else if (st == zero1 || st == zero2)
		ret = 0;
	else
		status_error(&r, &x, err);
out:
	xfer_release(&x);
	return ret;
}

int docker_container_start(struct docker *d, const char *id, struct gerr *err)
{
	char *op = xasprintf("start container %s", id);
	char *path = xasprintf("/containers/%s/start", id);
	/* 304: already started */
	int k = container_verb(d, op, "POST", path, 204, 304, -1, -1, err);

	free(op);
	free(path);
	return k < 0 ? -1 : 0;
}

int docker_container_kill(struct docker *d, const char *id, int sig, struct gerr *err)
{
	char *op = xasprintf("kill container %s", id);
	char *path = xasprintf("/containers/%s/kill?signal=%d", id, sig);
	/* 409: not running */
	int k = container_verb(d, op, "POST", path, 204, 200, 409, -1, err);

	free(op);
	free(path);
	return k < 0 ? -1 : 0;
}

int docker_container_remove(struct docker *d, const char *id, struct gerr *err)
{
	char *op = xasprintf("remove container %s", id);
	char *path = xasprintf("/containers/%s?force=1&v=1", id);
	int k = container_verb(d, op, "DELETE", path, 204, 200, 404, -1, err);

	free(op);
	free(path);
	return k;
}

int docker_container_inspect(struct docker *d, const char *id, struct docker_state *out, struct gerr *err)
{
	char *op = xasprintf("inspect container %s", id);
	char *path = xasprintf("/containers/%s/json", id);
	json_t *j = NULL, *s, *ns, *ports, *nets;
	int ret;

	memset(out, 0, sizeof(*out));
	if ((ret = get_json(d, op, path, true, &j, err)) <= 0)
		goto out;
	ret = -1;
	jstr(j, "Id", out->id, sizeof(out->id));
	{
		const char *n = json_string_value(json_object_get(j, "Name"));
		strlcpy_g(out->name, n ? (n[0] == '/' ? n + 1 : n) : "", sizeof(out->name));
	}
	jstr(j, "Image", out->image, sizeof(out->image));
	jstr(json_object_get(j, "Config"), "Image", out->image_ref, sizeof(out->image_ref));
	s = json_object_get(j, "State");
	jstr(s, "Status", out->status, sizeof(out->status));
	out->running = json_is_true(json_object_get(s, "Running"));
	out->pid = (int)json_integer_value(json_object_get(s, "Pid"));
	out->exit_code = (int)json_integer_value(json_object_get(s, "ExitCode"));
	out->oom_killed = json_is_true(json_object_get(s, "OOMKilled"));
	out->started_at_ms = rfc3339_ms(json_string_value(json_object_get(s, "StartedAt")));
	out->finished_at_ms = rfc3339_ms(json_string_value(json_object_get(s, "FinishedAt")));
	jstr(s, "Error", out->error, sizeof(out->error));
	ns = json_object_get(j, "NetworkSettings");
	ports = json_object_get(ns, "Ports");
	if (json_is_object(ports)) {
		const char *k;
		json_t *v;
		json_object_foreach(ports, k, v) {
			const char *hp;
			if (!strstr(k, "/tcp") || !json_array_size(v))
				continue;
			hp = json_string_value(json_object_get(json_array_get(v, 0), "HostPort"));
			if (hp && atoi(hp) > 0) {
				out->host_port = atoi(hp);
				break;
			}
		}
	}
	jstr(ns, "IPAddress", out->ip, sizeof(out->ip));
	nets = json_object_get(ns, "Networks");
	if (!out->ip[0] && json_is_object(nets)) {
		const char *k;
		json_t *v;
		json_object_foreach(nets, k, v) {
			jstr(v, "IPAddress", out->ip, sizeof(out->ip));
			if (out->ip[0])
				break;
		}
	}
	ret = 1;
out:
	json_decref(j);
	free(op);
	free(path);
	return ret;
}

void docker_containers_free(struct docker_container *c, size_t n)
{
	for (size_t i = 0; i < n && c; i++) {
		for (size_t k = 0; k < c[i].nlabels; k++) {
			free(c[i].labels[k].key);
			free(c[i].labels[k].value);
		}
		free(c[i].labels);
	}
	free(c);
}

const char *docker_label(const struct docker_container *c, const char *key)
{
	for (size_t i = 0; i < c->nlabels; i++)
		if (strcmp(c->labels[i].key, key) == 0)
			return c->labels[i].value;
	return NULL;
}

int docker_container_list(struct docker *d, const char *label, struct docker_container **out, size_t *n,
			  struct gerr *err)
{
	char *op = xasprintf("list containers labelled %s", label ? label : "(any)");
	char *path, *filters = NULL, *ef = NULL;
	json_t *j = NULL;
	int ret = -1;

	*out = NULL;
	*n = 0;
	if (label && *label) {
		json_t *f = json_pack("{s:[s]}", "label", label);
		filters = json_dumps(f, JSON_COMPACT);
		json_decref(f);
		ef = esc(filters);
		path = xasprintf("/containers/json?all=1&filters=%s", ef);
	} else {
		path = xstrdup("/containers/json?all=1");
	}
	if (get_json(d, op, path, false, &j, err) < 0)
		goto out;
	if (!json_is_array(j)) {
		gerr_set(err, "%s: the Engine's answer is not a list", op);
		goto out;
	}
	*out = xcalloc(json_array_size(j) + 1, sizeof(**out));
	for (size_t i = 0; i < json_array_size(j); i++) {
		json_t *e = json_array_get(j, i), *names = json_object_get(e, "Names"), *lb = json_object_get(e, "Labels");
		struct docker_container *c = &(*out)[*n];
		const char *nm = json_string_value(json_array_get(names, 0));
		jstr(e, "Id", c->id, sizeof(c->id));
		strlcpy_g(c->name, nm ? (nm[0] == '/' ? nm + 1 : nm) : "", sizeof(c->name));
		jstr(e, "ImageID", c->image, sizeof(c->image));
		jstr(e, "State", c->status, sizeof(c->status));
		if (json_is_object(lb) && json_object_size(lb)) {
			const char *k;
			json_t *v;
			c->labels = xcalloc(json_object_size(lb), sizeof(*c->labels));
			json_object_foreach(lb, k, v) {
				c->labels[c->nlabels].key = xstrdup(k);
				c->labels[c->nlabels].value = xstrdup(json_string_value(v) ? json_string_value(v) : "");
				c->nlabels++;
			}
		}
		(*n)++;
	}
	ret = 0;
out:
	if (ret < 0) {
		docker_containers_free(*out, *n);
		*out = NULL;
		*n = 0;
	}
	json_decref(j);
	free(op);
	free(path);
	free(filters);
	free(ef);
	return ret;
}

/* ---- logs ---- */

struct logs {
	struct docker_demux m;
	docker_log_cb cb;
	void *data;
	struct gerr derr;
	bool bad;
	struct xfer *x;
};

static void logs_piece(void *arg, int stream, const char *p, size_t n)
{
	struct logs *l = arg;
	(void)stream;
	if (l->cb)
		l->cb(l->data, p, n);
}

static void logs_data(void *arg, const char *p, size_t n)
{
	struct logs *l = arg;

	if (l->bad)
		return;
	if (docker_demux_feed(&l->m, p, n, logs_piece, l, &l->derr) < 0) {
		l->bad = true;
		l->x->stream_failed = true;
	}
}

int docker_container_logs(struct docker *d, const char *id, bool follow, int64_t since, docker_log_cb cb,
			  void *data, volatile int *stop, struct gerr *err)
{
	char *op = xasprintf("logs of container %s", id);
	char *path = xasprintf("/containers/%s/logs?stdout=1&stderr=1&follow=%d&since=%lld", id, follow ? 1 : 0,
			       (long long)since);
	struct logs l = { .cb = cb, .data = data };
	struct req r = { .op = op, .method = "GET", .path = path, .stop = stop, .on_data = logs_data, .arg = &l };
	struct xfer x;
	long st;
	int ret = -1;

	docker_demux_init(&l.m);
	/* perform() clears x first; the callback reaches it through l.x */
	l.x = &x;
	r.timeout_ms = follow ? 0 : DOCKER_TIMEOUT_MS;
	st = perform(d, &r, &x, err);
	if (st < 0)
		goto out;
	if (l.bad) {
		gerr_set(err, "%s: %s", op, l.derr.msg);
		goto out;
	}
	if (st == 0) {
		ret = 0; /* stopped */
		goto out;
	}
	if (st != 200) {
		status_error(&r, &x, err);
		goto out;
	}
	ret = 0;
out:
	xfer_release(&x);
	free(op);
	free(path);
	return ret;
}

/* ---- exec ---- */

struct exec_out {
	struct docker_demux m;
	char *out;                /* the first non-empty line of the output, NUL-terminated */
	size_t outlen, got;
	bool line_done;           /* its end was seen: the rest is only counted */
	bool bad;
	struct gerr derr;
	struct xfer *x;
};

static void exec_piece(void *arg, int stream, const char *p, size_t n)
{
	struct exec_out *o = arg;
	(void)stream;
	for (size_t i = 0; i < n && !o->line_done && o->outlen; i++) {
		if (p[i] == '\n' || p[i] == '\r') {
			o->line_done = o->got > 0;
			continue;
		}
		if (o->got + 1 < o->outlen) {
			o->out[o->got++] = (unsigned char)p[i] < 0x20 ? ' ' : p[i];
			o->out[o->got] = 0;
		}
	}
}

static void exec_data(void *arg, const char *p, size_t n)
{
	struct exec_out *o = arg;

	if (o->bad)
		return;
	if (docker_demux_feed(&o->m, p, n, exec_piece, o, &o->derr) < 0) {
		o->bad = true;
		o->x->stream_failed = true;
	}
}

/* ms left before deadline (clock_gettime MONOTONIC), at least 0 */
static int64_t ms_left(int64_t deadline)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return MAX(deadline - ((int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000), 0);
}

/*
 * Three requests within timeout_ms in all: create the exec, start it
 * (attached: the answer is its multiplexed output until it exits), then
 * inspect it for its exit code. Past the deadline the command is left to
 * the Engine: the API has no way to kill an exec's process (it ends with
 * the container, or by itself), so a probe command that hangs keeps
 * running inside the container while the probe is reported as timed out.
 */
int docker_exec(struct docker *d, const char *id, char *const *argv, const char *user, int64_t timeout_ms,
		int *exit_code, char *out, size_t outlen, struct gerr *err)
{
	char *op = xasprintf("exec in container %.12s", id);
	char *path = NULL, *body = NULL, eid[80] = "";
	json_t *j = json_object(), *reply = NULL;
	struct exec_out o = { .out = out, .outlen = outlen };
	struct req r = { .op = op, .method = "POST" };
	struct xfer x;
	struct timespec ts;
	int64_t deadline;
	long st;
	int ret = -1;

	memset(&x, 0, sizeof(x));
	*exit_code = -1;
	if (outlen)
		out[0] = 0;
	if (timeout_ms <= 0)
		timeout_ms = 1000;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	deadline = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000 + timeout_ms;

	json_object_set_new(j, "Cmd", strv(argv));
	if (user && *user)
		json_object_set_new(j, "User", json_string(user));
	json_object_set_new(j, "AttachStdin", json_false());
	json_object_set_new(j, "AttachStdout", json_true());
	json_object_set_new(j, "AttachStderr", json_true());
	json_object_set_new(j, "Tty", json_false());
	body = json_dumps(j, JSON_COMPACT);
	path = xasprintf("/containers/%s/exec", id);
	r.path = path;
	r.body = body;
	r.bodylen = strlen(body);
	r.timeout_ms = MAX(ms_left(deadline), 1);
	if (req_json(d, &r, false, &reply, err) < 0)
		goto out;
	if (!json_string_value(json_object_get(reply, "Id")) ||
	    strlen(json_string_value(json_object_get(reply, "Id"))) >= sizeof(eid)) {
		gerr_set(err, "%s: the Engine's answer has no exec id", op);
		goto out;
	}
	strlcpy_g(eid, json_string_value(json_object_get(reply, "Id")), sizeof(eid));

	/* start, attached: the stream ends when the command does */
	free(path);
	free(body);
	path = xasprintf("/exec/%s/start", eid);
	body = xstrdup("{\"Detach\":false,\"Tty\":false}");
	docker_demux_init(&o.m);
	o.x = &x; /* perform() clears x first; the callback reaches it through o.x */
	r = (struct req){ .op = op, .method = "POST", .path = path, .body = body, .bodylen = strlen(body),
			  .on_data = exec_data, .arg = &o };
	if ((r.timeout_ms = ms_left(deadline)) <= 0)
		goto timeout;
	st = perform(d, &r, &x, err);
	if (st < 0)
		goto out;
	if (o.bad) {
		gerr_set(err, "%s: %s", op, o.derr.msg);
		goto out;
	}
	if (st != 200 && st != 101) {
		status_error(&r, &x, err);
		goto out;
	}
	xfer_release(&x);

	/* its exit code: Running may stay true a moment after the stream ended */
	free(path);
	path = xasprintf("/exec/%s/json", eid);
	for (;;) {
		json_t *ej = NULL;
		int64_t left = ms_left(deadline);
		bool running;
		if (left <= 0)
			goto timeout;
		r = (struct req){ .op = op, .method = "GET", .path = path, .timeout_ms = left };
		if (req_json(d, &r, false, &ej, err) < 0)
			goto out;
		running = json_is_true(json_object_get(ej, "Running"));
		*exit_code = (int)json_integer_value(json_object_get(ej, "ExitCode"));
		if (!running && !json_is_integer(json_object_get(ej, "ExitCode"))) {
			/* never started: no status to read as a success */
			json_decref(ej);
			*exit_code = -1;
			gerr_set(err, "%s: the exec ended without an exit code", op);
			goto out;
		}
		json_decref(ej);
		if (!running)
			break;
		*exit_code = -1;
		{
			struct timespec nap = { 0, 10 * 1000000 };
			nanosleep(&nap, NULL);
		}
	}
	ret = 0;
	goto out;
timeout:
	gerr_set(err, "timeout after %lldms", (long long)timeout_ms);
out:
	/* a request cut by the deadline says so, whatever curl called it (curl's
	 * own timer may fire a millisecond before ours: a little slack) */
	if (ret < 0 && ms_left(deadline) <= 10)
		gerr_set(err, "timeout after %lldms", (long long)timeout_ms);
	json_decref(j);
	json_decref(reply);
	xfer_release(&x);
	free(op);
	free(path);
	free(body);
	return ret;
}

/* ---- stats ---- */

static int64_t host_memory(void)
{
	long pages = sysconf(_SC_PHYS_PAGES), psz = sysconf(_SC_PAGESIZE);
	return pages > 0 && psz > 0 ? (int64_t)pages * psz : 0;
}

int docker_container_stats(struct docker *d, const char *id, struct docker_stats *out, struct gerr *err)
{
	char *op = xasprintf("stats of container %s", id);
	char *path = xasprintf("/containers/%s/stats?stream=false", id);
	json_t *j = NULL, *cs, *ps, *ms, *mst;
	int ret = -1;

	memset(out, 0, sizeof(*out));
	if (get_json(d, op, path, false, &j, err) < 0)
		goto out;
	cs = json_object_get(j, "cpu_stats");
	ps = json_object_get(j, "precpu_stats");
	{
		json_int_t cpu = json_integer_value(json_object_get(json_object_get(cs, "cpu_usage"), "total_usage"));
		json_int_t pcpu = json_integer_value(json_object_get(json_object_get(ps, "cpu_usage"), "total_usage"));
		json_int_t sys = json_integer_value(json_object_get(cs, "system_cpu_usage"));
		json_int_t psys = json_integer_value(json_object_get(ps, "system_cpu_usage"));
		json_int_t ncpu = json_integer_value(json_object_get(cs, "online_cpus"));
		if (ncpu <= 0)
			ncpu = (json_int_t)json_array_size(json_object_get(json_object_get(cs, "cpu_usage"), "percpu_usage"));
		if (ncpu <= 0)
			ncpu = 1;
		out->cpu_total_ns = cpu;
		/* system_cpu_usage counts every core: scale to "100 = one core" */
		if (cpu > pcpu && sys > psys && pcpu > 0)
			out->cpu_percent = (double)(cpu - pcpu) / (double)(sys - psys) * (double)ncpu * 100.0;
	}
	ms = json_object_get(j, "memory_stats");
	mst = json_object_get(ms, "stats");
	{
		json_int_t usage = json_integer_value(json_object_get(ms, "usage"));
		json_int_t cache = 0;
		if (json_object_get(mst, "cache"))
			cache = json_integer_value(json_object_get(mst, "cache")); /* cgroup v1 */
		else
			cache = json_integer_value(json_object_get(mst, "inactive_file")); /* v2 */
		out->memory_bytes = usage > cache ? usage - cache : usage;
		out->memory_limit = json_integer_value(json_object_get(ms, "limit"));
		{
			int64_t hm = host_memory();
			if (hm && out->memory_limit >= hm)
				out->memory_limit = 0;
		}
	}
	ret = 0;
out:
	json_decref(j);
	free(op);
	free(path);
	return ret;
}

/* ---- for the module's other Engine clients (docker-int.h) ---- */

long docker__request(struct docker *d, const char *op, const char *method, const char *path, const char *body,
		     long timeout_ms, json_t **reply, struct gerr *err)
{
	struct req r = { .op = op, .method = method, .path = path, .body = body, .bodylen = body ? strlen(body) : 0,
			 .timeout_ms = timeout_ms };
	struct xfer x;
	long st = call(d, &r, &x, err);

	if (reply)
		*reply = NULL;
	if (st < 0)
		goto out;
	if (st < 200 || st >= 300) {
		status_error(&r, &x, err);
		goto out;
	}
	if (reply && x.reply.buf.len) {
		if (!(*reply = reply_json(&r, &x, err)))
			st = -1;
	}
out:
	xfer_release(&x);
	return st;
}

char *docker__esc(const char *s)
{
	return esc(s);
}

int64_t docker__rfc3339_ms(const char *s)
{
	return rfc3339_ms(s);
}
