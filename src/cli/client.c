#include "common.h"
#include "cli/client.h"
#include "artifact/pack.h"
#include "util/buf.h"
#include "util/clock.h"
#include <curl/curl.h>
#include <poll.h>
#include <signal.h>
#include <pwd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>

#define CLIENT_TIMEOUT_MS 30000
#define CLIENT_MAX_REPLY (16 * 1024 * 1024)

const char *client_user(void)
{
	const char *u = getenv("GANTRY_USER");
	struct passwd *pw;
	if (u && *u)
		return u;
	u = getenv("USER");
	if (u && *u)
		return u;
	pw = getpwuid(getuid());
	return pw ? pw->pw_name : "unknown";
}

int client_parse_target(struct cli_ctx *ctx, int argc, char **argv, void *opts, const char *const *env)
{
	const char *cmd = ctx->cmd->name;
	int npos = cli_parse_opts(ctx->cmd, argc, argv, ctx, opts);

	if (npos < 0)
		return EXIT_USAGE;
	if (npos < 1)
		return cli_error("gantry %s: missing SERVICE (usage: gantry %s SERVICE --env ENV)", cmd, cmd);
	if (npos > 1)
		return cli_error("gantry %s: unexpected argument '%s'", cmd, argv[1]);
	if (!*env)
		return cli_error("gantry %s: --env is required (usage: gantry %s SERVICE --env ENV)", cmd, cmd);
	return 0;
}

void client_req_str(json_t *req, const char *key, const char *value)
{
	if (value)
		json_object_set_new(req, key, json_string(value));
}

void client_req_override(json_t *req, bool emergency, const char *reason)
{
	if (emergency)
		json_object_set_new(req, "emergency", json_true());
	client_req_str(req, "reason", reason);
}

void client_print_line(const json_t *v)
{
	char *s = json_dumps(v, JSON_COMPACT);
	printf("%s\n", s ? s : "null");
	free(s);
}

void client_print_json(const json_t *v)
{
	char *s = json_dumps(v, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	printf("%s\n", s ? s : "null");
	free(s);
}

void client_print_reply(json_t *resp)
{
	json_object_del(resp, "ok");
	client_print_json(resp);
}

static int connect_home(const char *home, const char **why)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	char *path = xasprintf("%s/api.sock", home);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0), r;
	char cwd[PATH_MAX];
	bool moved = false;

	*why = NULL;
	if (fd < 0) {
		free(path);
		return -1;
	}
	if (strlen(path) >= sizeof(sa.sun_path)) {
		/* long paths: connect relative to the home directory */
		if (!getcwd(cwd, sizeof(cwd)) || chdir(home) < 0) {
			free(path);
			close(fd);
			return -1;
		}
		moved = true;
		strlcpy_g(sa.sun_path, "api.sock", sizeof(sa.sun_path));
	} else {
		strlcpy_g(sa.sun_path, path, sizeof(sa.sun_path));
	}
	r = connect(fd, (struct sockaddr *)&sa, sizeof(sa));
	if (moved && chdir(cwd) < 0)
		r = -1;
	if (r < 0) {
		*why = errno == ENOENT || errno == ECONNREFUSED ? "not running" : strerror(errno);
		close(fd);
		fd = -1;
	}
	free(path);
	return fd;
}

#define CLIENT_RETRIES 240 /* x 250 ms */

const char *client_api_url(void)
{
	static char url[512];
	const char *e = getenv("GANTRY_API");
	size_t n;
	if (!e || !*e)
		return NULL;
	strlcpy_g(url, e, sizeof(url));
	n = strlen(url);
	while (n && url[n - 1] == '/')
		url[--n] = 0;
	return url;
}

/* one HTTP request to the TCP API */
struct http_req {
	const char *method;          /* "POST", "GET" or "PUT" */
	const char *path;            /* after GANTRY_API: "/v1/status" */
	const char *text;            /* POST: the body (borrowed) */
	struct artifact_pack *pack;  /* PUT: the body, read as it is sent (borrowed) */
	struct gerr pack_err;        /* why reading the pack failed */
	bool pack_failed;
	uint64_t pack_size;          /* for the progress line */
	int64_t last_progress_ms;
};

static size_t on_curl_read(char *p, size_t size, size_t n, void *ud)
{
	struct http_req *r = ud;
	size_t got = 0;
	if (artifact_pack_read(r->pack, p, size * n, &got, &r->pack_err) < 0) {
		r->pack_failed = true;
		return CURL_READFUNC_ABORT;
	}
	return got;
}

/* "12.3 MB" */
static const char *human_size(uint64_t n, char *out, size_t len)
{
	if (n < 1000)
		snprintf(out, len, "%llu bytes", (unsigned long long)n);
	else if (n < 1000000)
		snprintf(out, len, "%.1f kB", (double)n / 1e3);
	else if (n < 1000000000)
		snprintf(out, len, "%.1f MB", (double)n / 1e6);
	else
		snprintf(out, len, "%.2f GB", (double)n / 1e9);
	return out;
}

/* a progress line on a terminal, twice a second at most */
static int on_curl_progress(void *ud, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal, curl_off_t ulnow)
{
	struct http_req *r = ud;
	int64_t now = clock_mono_ms();
	char a[32], b[32];
	(void)dltotal;
	(void)dlnow;
	(void)ultotal;
	if (now - r->last_progress_ms < 500 || !r->pack_size)
		return 0;
	r->last_progress_ms = now;
	fprintf(stderr, "\ruploading artifact %s of %s (%d%%)", human_size((uint64_t)ulnow, a, sizeof(a)),
		human_size(r->pack_size, b, sizeof(b)), (int)(100 * (uint64_t)ulnow / r->pack_size));
	return 0;
}

/*
 * The request r to the API at api, with $GANTRY_TOKEN as a Bearer
 * credential (docs/api.md, "Over TCP"). *out: the reply object (owned by
 * caller) whatever the HTTP status, since the daemon answers errors as
 * JSON too, and *status the HTTP status; otherwise prints why and returns
 * the exit code.
 */
static int http_call(const char *api, struct http_req *r, long *status, json_t **out)
{
	static bool curl_ready;
	struct hbuf_sink b; /* the reply body, bounded by CLIENT_MAX_REPLY */
	struct curl_slist *hdr = NULL;
	char errbuf[CURL_ERROR_SIZE] = "", *url, *auth;
	json_error_t jerr;
	CURL *c;
	CURLcode rc;
	int ret = EXIT_FAILED;

	*out = NULL;
	*status = 0;
	hbuf_sink_init(&b, CLIENT_MAX_REPLY);
	if (!curl_ready) {
		curl_global_init(CURL_GLOBAL_DEFAULT);
		curl_ready = true;
	}
	c = curl_easy_init();
	if (!c) {
		fprintf(stderr, "error: GANTRY_API: cannot start an HTTP client\n");
		return EXIT_FAILED;
	}
	url = xasprintf("%s%s", api, r->path);
	auth = xasprintf("Authorization: Bearer %s", getenv("GANTRY_TOKEN"));
	hdr = curl_slist_append(hdr, auth);
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
	if (r->text) {
		hdr = curl_slist_append(hdr, "Content-Type: application/json");
		hdr = curl_slist_append(hdr, "Expect:"); /* no 100-continue round trip */
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, r->text);
		curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(r->text));
	} else if (r->pack) {
		/* chunked, and Expect: 100-continue so that a refusal comes before the body */
		hdr = curl_slist_append(hdr, "Content-Type: application/octet-stream");
		hdr = curl_slist_append(hdr, "Transfer-Encoding: chunked");
		curl_easy_setopt(c, CURLOPT_UPLOAD, 1L);
		curl_easy_setopt(c, CURLOPT_READFUNCTION, on_curl_read);
		curl_easy_setopt(c, CURLOPT_READDATA, r);
		if (isatty(STDERR_FILENO)) {
			curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_curl_progress);
			curl_easy_setopt(c, CURLOPT_XFERINFODATA, r);
			curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
			r->last_progress_ms = clock_mono_ms();
		}
	}
	curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, r->method);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdr);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, hbuf_sink_write);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, 10000L);
	if (r->pack) {
		/* an upload takes as long as it takes, but may not stall */
		curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1L);
		curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, 30L);
	} else {
		curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)CLIENT_TIMEOUT_MS);
	}
	rc = curl_easy_perform(c);
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, status);
	if (r->pack && isatty(STDERR_FILENO) && r->last_progress_ms)
		fprintf(stderr, "\n");
	if (r->pack_failed) {
		fprintf(stderr, "error: %s\n", r->pack_err.msg);
		goto out;
	}
	if (b.over) {
		fprintf(stderr, "error: reply from the gantry API at %s is too large\n", api);
		goto out;
	}
	if (rc != CURLE_OK && !(r->pack && b.buf.len && *status)) {
		/* (an upload refused early may end in a reset after its reply) */
		fprintf(stderr, "error: cannot reach the gantry API at %s (GANTRY_API): %s\n", api,
			errbuf[0] ? errbuf : curl_easy_strerror(rc));
		goto out;
	}
	*out = b.buf.len ? json_loadb(b.buf.data, b.buf.len, 0, &jerr) : NULL;
	if (!json_is_object(*out)) {
		json_decref(*out);
		*out = NULL;
		fprintf(stderr, "error: the gantry API at %s answered HTTP %ld without a JSON reply "
			"(is GANTRY_API the address of 'gantry serve --api'?)\n", api, *status);
		goto out;
	}
	ret = EXIT_OK;
out:
	curl_slist_free_all(hdr);
	curl_easy_cleanup(c);
	free(url);
	free(auth);
	hbuf_release(&b.buf);
	return ret;
}

/* POST api/v1/OP with the request text (borrowed); *out as http_call's */
static int roundtrip_http(const char *api, const char *op, const char *text, json_t **out)
{
	struct http_req r = { .method = "POST", .text = text };
	char *path = xasprintf("/v1/%s", op);
	long status;
	int ret;
	r.path = path;
	ret = http_call(api, &r, &status, out);
	free(path);
	return ret;
}

/* text and a newline to fd: 0, or -1 with the error printed */
static int send_line(int fd, const char *text)
{
	char *line = xasprintf("%s\n", text);
	size_t len = strlen(line), off = 0;
	int ret = 0;

	while (off < len) {
		ssize_t w = write(fd, line + off, len - off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0) {
			fprintf(stderr, "error: talking to gantry serve: %s\n", strerror(errno));
			ret = -1;
			break;
		}
		off += (size_t)w;
	}
	free(line);
	return ret;
}

/*
 * What fd sends until it closes, at most CLIENT_MAX_REPLY bytes, each read
 * within CLIENT_TIMEOUT_MS: 0 with *buf (owned by caller, NULL when
 * nothing came) and *len, or -1 with the error printed and *buf NULL.
 */
static int read_reply(int fd, char **buf, size_t *len)
{
	*buf = NULL;
	*len = 0;
	for (;;) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		ssize_t n;
		int pr = poll(&p, 1, CLIENT_TIMEOUT_MS);
		if (pr == 0) {
			fprintf(stderr, "error: gantry serve did not answer within %ds\n", CLIENT_TIMEOUT_MS / 1000);
			break;
		}
		if (pr < 0 && errno == EINTR)
			continue;
		*buf = xrealloc(*buf, *len + 65536 + 1);
		n = read(fd, *buf + *len, 65536);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return 0;
		*len += (size_t)n;
		if (*len > CLIENT_MAX_REPLY) {
			fprintf(stderr, "error: reply from gantry serve is too large\n");
			break;
		}
	}
	free(*buf);
	*buf = NULL;
	return -1;
}

/* a reply's text (len bytes, borrowed; NULL: none came) as a JSON object into *out (owned by caller); -1 if it is not one */
static int reply_object(const char *text, size_t len, json_t **out)
{
	json_error_t jerr;
	*out = text ? json_loadb(text, len, 0, &jerr) : NULL;
	if (json_is_object(*out))
		return 0;
	json_decref(*out);
	*out = NULL;
	return -1;
}

/* one request line (text, borrowed) over HOME/api.sock; *out as above */
static int roundtrip_unix(const struct cli_ctx *ctx, const char *text, json_t **out)
{
	char *home = cli_home(ctx), *buf = NULL;
	const char *why;
	size_t len;
	int fd = connect_home(home, &why), ret = EXIT_FAILED;

	*out = NULL;
	if (fd < 0) {
		fprintf(stderr, "error: gantry serve is %s for %s (start it with 'gantry serve', "
			"or point --home/GANTRY_HOME at its state directory)\n", why ? why : "not reachable", home);
	} else if (send_line(fd, text) == 0 && read_reply(fd, &buf, &len) == 0) {
		if (reply_object(buf, len, out) == 0)
			ret = EXIT_OK;
		else
			fprintf(stderr, "error: gantry serve sent a malformed reply\n");
	}
	if (fd >= 0)
		close(fd);
	free(buf);
	free(home);
	return ret;
}

static int client_call_retry(const struct cli_ctx *ctx, const char *op, const char *saved, json_t **resp,
			     int retries_left);

/* GANTRY_API (api) and GANTRY_TOKEN are usable: 0, else the error printed and its exit code */
static int api_ready(const char *api)
{
	const char *token = getenv("GANTRY_TOKEN");
	/* over TCP the token is the only identity, sent as a header */
	if (strncmp(api, "http://", 7) && strncmp(api, "https://", 8))
		return cli_error("GANTRY_API: '%s' is not an http:// or https:// URL "
				 "(e.g. GANTRY_API=http://127.0.0.1:8443)", api);
	if (!token || !*token)
		return cli_error("GANTRY_API is set (%s): the TCP API needs GANTRY_TOKEN "
				 "('gantry user add NAME --role ROLE' prints a token)", api);
	for (const char *t = token; *t; t++)
		if (*t <= 0x20 || *t >= 0x7f)
			return cli_error("GANTRY_TOKEN: not a token (it has spaces or control characters)");
	return 0;
}

int client_call(const struct cli_ctx *ctx, json_t *req, json_t **resp)
{
	const char *token = getenv("GANTRY_TOKEN"), *api = client_api_url();
	char *text, op[64] = "";
	int ret;

	*resp = NULL;
	if (api) {
		if ((ret = api_ready(api))) {
			json_decref(req);
			return ret;
		}
		strlcpy_g(op, json_string_value(json_object_get(req, "op")) ? json_string_value(json_object_get(req, "op"))
			  : "", sizeof(op));
		json_object_del(req, "op");
		json_object_del(req, "token");
	} else if (token && *token && json_is_object(req) && !json_object_get(req, "token")) {
		/* the identity for the API (src/daemon/gates_flow.h); without it, the OS user */
		json_object_set_new(req, "token", json_string(token));
	}
	text = json_dumps(req, JSON_COMPACT);
	json_decref(req);
	ret = client_call_retry(ctx, op, text, resp, CLIENT_RETRIES);
	free(text);
	return ret;
}

/* op: the operation ("" over the socket: it is in the text); saved: the request text (borrowed) */
static int client_call_retry(const struct cli_ctx *ctx, const char *op, const char *saved, json_t **resp,
			     int retries_left)
{
	const char *api = client_api_url();
	json_t *r = NULL;
	int ret;

	*resp = NULL;
	ret = api ? roundtrip_http(api, op, saved, &r) : roundtrip_unix(ctx, saved, &r);
	if (ret)
		return ret;
	if (!json_is_true(json_object_get(r, "ok")) && json_is_true(json_object_get(r, "retry")) &&
	    retries_left > 0) {
		/* the daemon is restoring its desired state after a start: wait */
		if (retries_left == CLIENT_RETRIES)
			fprintf(stderr, "%s: waiting...\n", json_string_value(json_object_get(r, "error")));
		json_decref(r);
		usleep(250000);
		return client_call_retry(ctx, op, saved, resp, retries_left - 1);
	}
	if (!json_is_true(json_object_get(r, "ok"))) {
		json_t *code = json_object_get(r, "code");
		const char *msg = json_string_value(json_object_get(r, "error"));
		fprintf(stderr, "error: %s\n", msg ? msg : "request failed");
		ret = json_is_integer(code) ? (int)json_integer_value(code) : EXIT_FAILED;
		json_decref(r);
		return ret;
	}
	*resp = r;
	return EXIT_OK;
}

/* the reply's error, printed; its exit code */
static int api_failure(json_t *reply, long status)
{
	json_t *code = json_object_get(reply, "code");
	const char *msg = json_string_value(json_object_get(reply, "error"));
	fprintf(stderr, "error: %s (HTTP %ld)\n", msg ? msg : "request failed", status);
	return json_is_integer(code) ? (int)json_integer_value(code) : EXIT_FAILED;
}

int client_push_artifact(const char *dir, const char *home, char *digest_out)
{
	const char *api = client_api_url();
	struct http_req r = { .method = "GET" };
	struct artifact_pack pack;
	struct gerr err;
	char *path = NULL, sent[ARTIFACT_DIGEST_HEX + 1], size[32];
	uint64_t bytes = 0;
	int64_t t0;
	long status;
	json_t *reply = NULL;
	int ret;

	if ((ret = api_ready(api)))
		return ret;
	/* a first pass for the digest: the upload's path names it */
	if (artifact_pack_write(dir, home, -1, digest_out, &bytes, &err) < 0) {
		fprintf(stderr, "error: %s\n", err.msg);
		return EXIT_FAILED;
	}
	path = xasprintf("/v1/artifacts/%s", digest_out);
	r.path = path;
	if ((ret = http_call(api, &r, &status, &reply)))
		goto out;
	if (status == 200) {
		fprintf(stderr, "artifact %.12s already on the server\n", digest_out);
		goto out;
	}
	if (status != 404) {
		ret = api_failure(reply, status);
		goto out;
	}
	json_decref(reply);
	reply = NULL;
	if (artifact_pack_open(&pack, dir, home, &err) < 0) {
		artifact_pack_close(&pack);
		fprintf(stderr, "error: %s\n", err.msg);
		ret = EXIT_FAILED;
		goto out;
	}
	fprintf(stderr, "uploading artifact %s (%.12s)\n", human_size(bytes, size, sizeof(size)), digest_out);
	r = (struct http_req){ .method = "PUT", .path = path, .pack = &pack, .pack_size = bytes };
	t0 = clock_mono_ms();
	ret = http_call(api, &r, &status, &reply);
	if (!ret && pack.ended) {
		artifact_pack_digest(&pack, sent);
		if (strcmp(sent, digest_out)) {
			fprintf(stderr, "error: artifact: %s changed while it was being uploaded; try again\n", dir);
			ret = EXIT_FAILED;
		}
	}
	artifact_pack_close(&pack);
	if (ret)
		goto out;
	if (status != 200 && status != 201) {
		ret = api_failure(reply, status);
		goto out;
	}
	fprintf(stderr, "uploaded artifact %.12s in %.1f s\n", digest_out, (double)(clock_mono_ms() - t0) / 1000.0);
out:
	json_decref(reply);
	free(path);
	return ret;
}

int client_wait_rollout(const struct cli_ctx *ctx, const char *svc, const char *env,
			json_int_t id, int64_t timeout_ms)
{
	int64_t deadline = clock_mono_ms() + timeout_ms;
	char last[1024] = "";
	for (;;) {
		json_t *resp, *st, *ro;
		const char *phase, *msg;
		int rc = client_call(ctx, json_pack("{s:s, s:s, s:s}", "op", "status", "service", svc,
						    "environment", env), &resp);
		if (rc)
			return rc;
		st = json_array_get(json_object_get(resp, "status"), 0);
		ro = json_object_get(st, "rollout");
		if (!json_is_object(ro) || json_integer_value(json_object_get(ro, "id")) != id) {
			/* a newer rollout superseded ours */
			fprintf(stderr, "rollout %lld was superseded\n", (long long)id);
			json_decref(resp);
			return EXIT_FAILED;
		}
		phase = json_string_value(json_object_get(ro, "phase"));
		msg = json_string_value(json_object_get(ro, "message"));
		if (msg && strcmp(msg, last) && !ctx->json) {
			fprintf(stderr, "  %s\n", msg);
			strlcpy_g(last, msg, sizeof(last));
			/* a pause waits for a person or its timer: keep waiting */
			if (phase && !strcmp(phase, "paused"))
				fprintf(stderr, "  (paused: 'gantry resume %s --env %s' continues, 'gantry abort %s --env %s' "
					"goes back)\n", svc, env, svc, env);
		}
		if (phase && strcmp(phase, "progressing") && strcmp(phase, "paused")) {
			int ok = !strcmp(phase, "complete");
			if (!ctx->json)
				printf("rollout %lld %s: %s\n", (long long)id, phase, msg ? msg : "");
			json_decref(resp);
			return ok ? EXIT_OK : EXIT_FAILED;
		}
		json_decref(resp);
		if (clock_mono_ms() > deadline) {
			fprintf(stderr, "error: rollout %lld still progressing after the --timeout; it continues "
				"(see 'gantry status %s --env %s')\n", (long long)id, svc, env);
			return EXIT_FAILED;
		}
		usleep(200000);
	}
}

volatile sig_atomic_t client_stop;

static void on_stop_signal(int sig)
{
	(void)sig;
	client_stop = 1;
}

void client_catch_stop(void)
{
	signal(SIGINT, on_stop_signal);
	signal(SIGTERM, on_stop_signal);
}

void client_pause_ms(int ms)
{
	for (int i = 0; !client_stop && i < ms / 100; i++)
		usleep(100000);
}
