/*
 * test_docker.c — the Docker Engine client (runtime/docker.c) against a
 * fake Engine: a small HTTP/1.1 server on a Unix socket in a thread of the
 * test, answering canned responses by method and path; and the stream
 * parsers (runtime/docker-stream.c) fed bytes cut at every boundary.
 * The real dockerd is exercised by tests/e2e/t6000-docker-engine.sh.
 */
#include "common.h"
#include <setjmp.h>
#include <cmocka.h>
#include <curl/curl.h>
#include <jansson.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include "runtime/docker.h"
#include "util/buf.h"

/* a literal where the interface takes char * (never written through) */
#define S(lit) ((char *)(lit))

/* ---- the fake Engine ---- */

#include "fake_engine.h"

/* ---- version negotiation ---- */

static void test_negotiate_same(void **state)
{
	struct gerr err = { { 0 } };
	struct docker *d;

	(void)state;
	fake_route("GET", "/_ping", PING("1.41"), false);
	fake_route("GET", "/v1.41/images/web/json", JSON_REPLY("200 OK", "{\"Id\":\"sha256:abc\",\"Size\":7}"), false);
	d = docker_open(F.host, &err);
	assert_non_null(d);
	assert_string_equal(docker_api_version(d), "1.41");
	assert_string_equal(docker_host(d), F.host);
	assert_string_equal(F.target, "/_ping");
	{
		/* every later path is prefixed with the negotiated version */
		struct docker_image im;
		assert_int_equal(docker_image_inspect(d, "web", &im, &err), 1);
		assert_string_equal(F.target, "/v1.41/images/web/json");
		assert_string_equal(im.id, "sha256:abc");
		assert_int_equal(im.size, 7);
	}
	assert_int_equal(docker_ping(d, &err), 0);
	docker_close(d);
}

static void test_negotiate_newer_server(void **state)
{
	struct gerr err = { { 0 } };
	struct docker *d;

	(void)state;
	fake_route("GET", "/_ping", PING("1.45"), false);
	d = docker_open(F.host, &err);
	assert_non_null(d);
	assert_string_equal(docker_api_version(d), DOCKER_API_MAX);
	docker_close(d);
}

static void test_negotiate_old_server(void **state)
{
	struct gerr err = { { 0 } };

	(void)state;
	fake_route("GET", "/_ping", PING("1.30"), false);
	assert_null(docker_open(F.host, &err));
	assert_non_null(strstr(err.msg, "speaks API 1.30"));
	assert_non_null(strstr(err.msg, "needs " DOCKER_API_MIN " or later"));
	assert_null(strchr(err.msg, '\n'));
}

static void test_no_version_header(void **state)
{
	struct gerr err = { { 0 } };

	(void)state;
	fake_route("GET", "/_ping", "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nOK", false);
	assert_null(docker_open(F.host, &err));
	assert_non_null(strstr(err.msg, "no API version"));
}

static void test_unreachable(void **state)
{
	struct gerr err = { { 0 } };
	char host[200];

	(void)state;
	snprintf(host, sizeof(host), "unix://%s/nobody.sock", F.dir);
	assert_null(docker_open(host, &err));
	assert_non_null(strstr(err.msg, "docker: cannot reach unix://"));
	assert_non_null(strstr(err.msg, "nobody.sock"));
	assert_null(docker_open("ssh://somewhere", &err));
	assert_non_null(strstr(err.msg, "unsupported DOCKER_HOST 'ssh://somewhere'"));
	/* DOCKER_HOST is read when no host is given */
	setenv("DOCKER_HOST", host, 1);
	assert_null(docker_open(NULL, &err));
	assert_non_null(strstr(err.msg, "nobody.sock"));
	unsetenv("DOCKER_HOST");
}

/* ---- error messages from the Engine's bodies ---- */

static void test_errors(void **state)
{
	struct gerr err = { { 0 } };
	struct docker *d;
	struct docker_image im;
	struct docker_state ds;
	struct docker_create c = { .name = "web-1", .image = "sha256:missing" };
	char id[80];

	(void)state;
	fake_route("GET", "/v1.41/images/nope/json",
		   JSON_REPLY("404 Not Found", "{\"message\":\"No such image: nope:latest\"}\n"), false);
	fake_route("POST", "/v1.41/containers/create?name=web-1",
		   JSON_REPLY("404 Not Found", "{\"message\":\"No such image: sha256:missing\"}\n"), false);
	fake_route("POST", "/v1.41/containers/create?name=dup",
		   JSON_REPLY("409 Conflict", "{\"message\":\"Conflict. The container name \\\"/dup\\\" is already in use\"}\n"),
		   false);
	fake_route("POST", "/v1.41/containers/c1/kill",
		   JSON_REPLY("409 Conflict", "{\"message\":\"Container c1 is not running\"}\n"), false);
	fake_route("POST", "/v1.41/containers/c2/start",
		   JSON_REPLY("500 Internal Server Error", "{\"message\":\"driver failed programming external connectivity\\non endpoint\"}\n"),
		   false);
	fake_route("POST", "/v1.41/containers/c3/start", "HTTP/1.1 304 Not Modified\r\nConnection: close\r\n\r\n", false);
	fake_route("GET", "/v1.41/containers/gone/json",
		   JSON_REPLY("404 Not Found", "{\"message\":\"No such container: gone\"}\n"), false);
	fake_route("DELETE", "/v1.41/containers/gone", JSON_REPLY("404 Not Found", "{\"message\":\"No such container: gone\"}"),
		   false);
	fake_route("GET", "/v1.41/containers/c5/json", "HTTP/1.1 500 Internal Server Error\r\nConnection: close\r\n\r\n<html>", false);
	d = open_141();

	assert_int_equal(docker_image_inspect(d, "nope", &im, &err), 0);
	assert_int_equal(docker_container_create(d, &c, id, sizeof(id), &err), -1);
	assert_string_equal(err.msg, "create container web-1: No such image: sha256:missing");
	c.name = "dup";
	assert_int_equal(docker_container_create(d, &c, id, sizeof(id), &err), -1);
	assert_string_equal(err.msg, "create container dup: Conflict. The container name \"/dup\" is already in use");
	assert_int_equal(docker_container_kill(d, "c1", SIGTERM, &err), 0);
	assert_string_equal(F.target, "/v1.41/containers/c1/kill?signal=15");
	assert_int_equal(docker_container_start(d, "c2", &err), -1);
	/* one line, even where the Engine's message had two */
	assert_string_equal(err.msg, "start container c2: driver failed programming external connectivity on endpoint");
	assert_int_equal(docker_container_start(d, "c3", &err), 0);
	assert_int_equal(docker_container_inspect(d, "gone", &ds, &err), 0);
	assert_int_equal(docker_container_remove(d, "gone", &err), 0);
	assert_string_equal(F.method, "DELETE");
	assert_string_equal(F.target, "/v1.41/containers/gone?force=1&v=1");
	assert_int_equal(docker_container_inspect(d, "c5", &ds, &err), -1);
	assert_string_equal(err.msg, "inspect container c5: HTTP 500: <html>");
	docker_close(d);
}

/* ---- create: the body the Engine gets ---- */

static void test_create_body(void **state)
{
	struct gerr err = { { 0 } };
	struct docker *d;
	char *env[] = { S("PORT=8080"), S("A=b"), NULL };
	char *ep[] = { S("/hello"), NULL };
	char *cmd[] = { S("-v"), NULL };
	struct kv labels[] = { { S("gantry.service"), S("web") }, { S("gantry.replica"), S("r1") } };
	struct resources res = { .cpu_millis = 500, .memory_bytes = 64 << 20, .pids = 100 };
	struct docker_create c = { .name = "gantry-r1", .image = "sha256:abc", .env = env, .user = "1000:1000",
				   .entrypoint = ep, .cmd = cmd, .labels = labels, .nlabels = 2,
				   .container_port = 8080, .host_port = 34567, .res = &res, .network = "gt-net",
				   .stop_signal = SIGINT };
	char id[80];
	json_t *j, *hc;

	(void)state;
	fake_route("POST", "/v1.41/containers/create?name=gantry-r1",
		   JSON_REPLY("201 Created", "{\"Id\":\"0123456789abcdef\",\"Warnings\":[]}"), false);
	d = open_141();
	assert_int_equal(docker_container_create(d, &c, id, sizeof(id), &err), 0);
	assert_string_equal(id, "0123456789abcdef");
	j = json_loads(F.body, 0, NULL);
	assert_non_null(j);
	assert_string_equal(json_string_value(json_object_get(j, "Image")), "sha256:abc");
	assert_string_equal(json_string_value(json_array_get(json_object_get(j, "Env"), 1)), "A=b");
	assert_string_equal(json_string_value(json_object_get(j, "User")), "1000:1000");
	assert_string_equal(json_string_value(json_array_get(json_object_get(j, "Entrypoint"), 0)), "/hello");
	assert_string_equal(json_string_value(json_array_get(json_object_get(j, "Cmd"), 0)), "-v");
	assert_string_equal(json_string_value(json_object_get(json_object_get(j, "Labels"), "gantry.replica")), "r1");
	assert_string_equal(json_string_value(json_object_get(j, "StopSignal")), "2");
	assert_non_null(json_object_get(json_object_get(j, "ExposedPorts"), "8080/tcp"));
	hc = json_object_get(j, "HostConfig");
	assert_string_equal(json_string_value(json_object_get(json_object_get(hc, "RestartPolicy"), "Name")), "no");
	{
		json_t *b = json_array_get(json_object_get(json_object_get(hc, "PortBindings"), "8080/tcp"), 0);
		assert_string_equal(json_string_value(json_object_get(b, "HostIp")), "127.0.0.1");
		assert_string_equal(json_string_value(json_object_get(b, "HostPort")), "34567");
	}
	assert_int_equal(json_integer_value(json_object_get(hc, "Memory")), 64 << 20);
	assert_int_equal(json_integer_value(json_object_get(hc, "NanoCpus")), 500000000);
	assert_int_equal(json_integer_value(json_object_get(hc, "PidsLimit")), 100);
	assert_string_equal(json_string_value(json_object_get(hc, "NetworkMode")), "gt-net");
	json_decref(j);
	docker_close(d);
}

/* ---- inspect, list, stats ---- */

static void test_inspect_container(void **state)
{
	struct gerr err = { { 0 } };
	struct docker *d;
	struct docker_state s;

	(void)state;
	fake_route("GET", "/v1.41/containers/abc/json",
		   JSON_REPLY("200 OK",
			      "{\"Id\":\"abcdef\",\"Name\":\"/gantry-r1\",\"Image\":\"sha256:img\","
			      "\"Config\":{\"Image\":\"web:1\"},"
			      "\"State\":{\"Status\":\"exited\",\"Running\":false,\"Pid\":0,\"ExitCode\":137,"
			      "\"OOMKilled\":true,\"Error\":\"\",\"StartedAt\":\"2026-12-07T09:41:03.123456789Z\","
			      "\"FinishedAt\":\"2026-12-07T10:41:03.5+01:00\"},"
			      "\"NetworkSettings\":{\"IPAddress\":\"\",\"Ports\":{\"8080/tcp\":[{\"HostIp\":\"127.0.0.1\","
			      "\"HostPort\":\"34567\"}]},\"Networks\":{\"bridge\":{\"IPAddress\":\"10.231.0.2\"}}}}"),
		   false);
	d = open_141();
	assert_int_equal(docker_container_inspect(d, "abc", &s, &err), 1);
	assert_string_equal(s.id, "abcdef");
	assert_string_equal(s.name, "gantry-r1");
	assert_string_equal(s.image, "sha256:img");
	assert_string_equal(s.image_ref, "web:1");
	assert_string_equal(s.status, "exited");
	assert_false(s.running);
	assert_int_equal(s.exit_code, 137);
	assert_true(s.oom_killed);
	assert_int_equal(s.started_at_ms, 1796636463123LL);
	/* 10:41:03.5 at +01:00 is 09:41:03.5Z */
	assert_int_equal(s.finished_at_ms, 1796636463500LL);
	assert_int_equal(s.host_port, 34567);
	assert_string_equal(s.ip, "10.231.0.2");
	docker_close(d);
}

static void test_list_labels(void **state)
{
	struct gerr err = { { 0 } };
	struct docker *d;
	struct docker_container *c;
	size_t n;

	(void)state;
	fake_route("GET", "/v1.41/containers/json",
		   JSON_REPLY("200 OK",
			      "[{\"Id\":\"a1\",\"Names\":[\"/gantry-r1\"],\"ImageID\":\"sha256:i\",\"State\":\"running\","
			      "\"Labels\":{\"gantry.home\":\"h1\",\"gantry.service\":\"web\"}},"
			      "{\"Id\":\"a2\",\"Names\":[\"/gantry-r2\"],\"State\":\"exited\",\"Labels\":{}}]"),
		   false);
	d = open_141();
	assert_int_equal(docker_container_list(d, "gantry.home=h1", &c, &n, &err), 0);
	/* the filter travels as escaped JSON */
	assert_string_equal(F.target,
			    "/v1.41/containers/json?all=1&filters=%7B%22label%22%3A%5B%22gantry.home%3Dh1%22%5D%7D");
	assert_int_equal(n, 2);
	assert_string_equal(c[0].id, "a1");
	assert_string_equal(c[0].name, "gantry-r1");
	assert_string_equal(c[0].status, "running");
	assert_string_equal(c[0].image, "sha256:i");
	assert_int_equal(c[0].nlabels, 2);
	assert_string_equal(docker_label(&c[0], "gantry.service"), "web");
	assert_null(docker_label(&c[0], "gantry.revision"));
	assert_int_equal(c[1].nlabels, 0);
	assert_string_equal(c[1].status, "exited");
	docker_containers_free(c, n);
	docker_close(d);
}

static void test_stats(void **state)
{
	struct gerr err = { { 0 } };
	struct docker *d;
	struct docker_stats s;

	(void)state;
	/* 0.5 s of cpu over 4 cores' 2 s of system time, 2 cores online: 50% of one core */
	fake_route("GET", "/v1.41/containers/v1/stats",
		   JSON_REPLY("200 OK",
			      "{\"cpu_stats\":{\"cpu_usage\":{\"total_usage\":1500000000},\"system_cpu_usage\":12000000000,"
			      "\"online_cpus\":2},\"precpu_stats\":{\"cpu_usage\":{\"total_usage\":1000000000},"
			      "\"system_cpu_usage\":10000000000,\"online_cpus\":2},"
			      "\"memory_stats\":{\"usage\":10485760,\"limit\":16777216,\"stats\":{\"cache\":2097152}}}"),
		   false);
	fake_route("GET", "/v1.41/containers/v2/stats",
		   JSON_REPLY("200 OK",
			      "{\"cpu_stats\":{\"cpu_usage\":{\"total_usage\":5},\"system_cpu_usage\":10,\"online_cpus\":1},"
			      "\"precpu_stats\":{},"
			      "\"memory_stats\":{\"usage\":10485760,\"limit\":9223372036854771712,"
			      "\"stats\":{\"inactive_file\":1048576}}}"),
		   false);
	d = open_141();
	assert_int_equal(docker_container_stats(d, "v1", &s, &err), 0);
	assert_string_equal(F.target, "/v1.41/containers/v1/stats?stream=false");
	assert_true(s.cpu_percent > 49.99 && s.cpu_percent < 50.01);
	assert_int_equal(s.memory_bytes, 8 << 20);
	assert_int_equal(s.memory_limit, 16 << 20);
	/* cgroup v2; no previous sample yet: 0%, not a made-up figure; no limit: 0 */
	assert_int_equal(docker_container_stats(d, "v2", &s, &err), 0);
	assert_true(s.cpu_percent == 0);
	assert_int_equal(s.memory_bytes, 9 << 20);
	assert_int_equal(s.memory_limit, 0);
	docker_close(d);
}

/* ---- log frames ---- */

struct collected {
	char out[4096];
	size_t nout;
	char err[4096];
	size_t nerr;
};

static void collect(void *data, int stream, const char *buf, size_t len)
{
	struct collected *c = data;
	char *dst = stream == 2 ? c->err : c->out;
	size_t *n = stream == 2 ? &c->nerr : &c->nout;

	BUG_ON(*n + len >= sizeof(c->out));
	memcpy(dst + *n, buf, len);
	*n += len;
	dst[*n] = 0;
}

static size_t frame(char *p, int stream, const char *payload, size_t len)
{
	p[0] = (char)stream;
	p[1] = p[2] = p[3] = 0;
	p[4] = (char)(len >> 24);
	p[5] = (char)(len >> 16);
	p[6] = (char)(len >> 8);
	p[7] = (char)len;
	memcpy(p + 8, payload, len);
	return 8 + len;
}

/* three frames (one empty, one of 300 bytes: a length byte past 255) */
static size_t log_stream(char *s, char *big, size_t biglen)
{
	size_t n = 0;

	for (size_t i = 0; i < biglen; i++)
		big[i] = (char)('a' + i % 26);
	n += frame(s + n, 1, "hello: listening on 0.0.0.0:8080\n", 33);
	n += frame(s + n, 2, "", 0);
	n += frame(s + n, 2, "warn\n", 5);
	n += frame(s + n, 1, big, biglen);
	return n;
}

static void test_demux_split_everywhere(void **state)
{
	char s[1024], big[300];
	size_t n = log_stream(s, big, sizeof(big));

	(void)state;
	/* one cut at every byte boundary, and every byte alone */
	for (size_t cut = 0; cut <= n; cut++) {
		struct docker_demux m;
		struct collected c = { .nout = 0 };
		struct gerr err = { { 0 } };
		docker_demux_init(&m);
		assert_int_equal(docker_demux_feed(&m, s, cut, collect, &c, &err), 0);
		assert_int_equal(docker_demux_clean(&m), cut == n || cut == 0 || cut == 41 || cut == 49 || cut == 62);
		assert_int_equal(docker_demux_feed(&m, s + cut, n - cut, collect, &c, &err), 0);
		assert_true(docker_demux_clean(&m));
		assert_int_equal(c.nout, 33 + sizeof(big));
		assert_memory_equal(c.out, "hello: listening on 0.0.0.0:8080\n", 33);
		assert_memory_equal(c.out + 33, big, sizeof(big));
		assert_string_equal(c.err, "warn\n");
	}
	{
		struct docker_demux m;
		struct collected c = { .nout = 0 };
		struct gerr err = { { 0 } };
		docker_demux_init(&m);
		for (size_t i = 0; i < n; i++)
			assert_int_equal(docker_demux_feed(&m, s + i, 1, collect, &c, &err), 0);
		assert_int_equal(c.nout, 33 + sizeof(big));
		assert_string_equal(c.err, "warn\n");
	}
	{
		/* a stream that ends inside a frame is not clean */
		struct docker_demux m;
		struct gerr err = { { 0 } };
		docker_demux_init(&m);
		assert_int_equal(docker_demux_feed(&m, s, 20, NULL, NULL, &err), 0);
		assert_false(docker_demux_clean(&m));
	}
}

static void test_demux_malformed(void **state)
{
	struct docker_demux m;
	struct gerr err = { { 0 } };

	(void)state;
	docker_demux_init(&m);
	/* a TTY container's raw text is not a frame header */
	assert_int_equal(docker_demux_feed(&m, "hello world\n", 12, NULL, NULL, &err), -1);
	assert_non_null(strstr(err.msg, "malformed log frame header"));
	docker_demux_init(&m);
	assert_int_equal(docker_demux_feed(&m, "\x03\0\0\0\0\0\0\1x", 9, NULL, NULL, &err), -1);
}

static void on_log(void *data, const char *buf, size_t len)
{
	struct hbuf *b = data;
	hbuf_append(b, buf, len);
}

static volatile int log_stop;
static void on_log_stop(void *data, const char *buf, size_t len)
{
	on_log(data, buf, len);
	log_stop = 1;
}

static void test_logs_through_engine(void **state)
{
	static char resp[2048];
	struct gerr err = { { 0 } };
	struct docker *d;
	struct hbuf b;
	char s[1024], big[300];
	size_t n = log_stream(s, big, sizeof(big)), h;
	volatile int stop = 0;

	(void)state;
	h = (size_t)snprintf(resp, sizeof(resp),
			     "HTTP/1.1 200 OK\r\nContent-Type: application/vnd.docker.raw-stream\r\n"
			     "Connection: close\r\n\r\n");
	memcpy(resp + h, s, n);
	fake_route_bytes("GET", "/v1.41/containers/c1/logs", resp, h + n, false);
	fake_route_bytes("GET", "/v1.41/containers/c2/logs", resp, h + n, true);
	fake_route("GET", "/v1.41/containers/c3/logs", JSON_REPLY("404 Not Found", "{\"message\":\"No such container: c3\"}"),
		   false);
	d = open_141();
	hbuf_init(&b, 1 << 16);
	assert_int_equal(docker_container_logs(d, "c1", false, 0, on_log, &b, &stop, &err), 0);
	assert_string_equal(F.target, "/v1.41/containers/c1/logs?stdout=1&stderr=1&follow=0&since=0");
	/* stdout and stderr interleaved as they came, without frame headers */
	assert_int_equal(b.len, 33 + 5 + sizeof(big));
	assert_memory_equal(b.data, "hello: listening on 0.0.0.0:8080\nwarn\n", 38);
	assert_memory_equal(b.data + 38, big, sizeof(big));
	/* a follow that never ends by itself: *stop ends it, 0 */
	b.len = 0;
	log_stop = 0;
	assert_int_equal(docker_container_logs(d, "c2", true, 1700000000, on_log_stop, &b, &log_stop, &err), 0);
	assert_string_equal(F.target, "/v1.41/containers/c2/logs?stdout=1&stderr=1&follow=1&since=1700000000");
	assert_true(b.len >= 33);
	assert_int_equal(docker_container_logs(d, "c3", false, 0, on_log, &b, &stop, &err), -1);
	assert_string_equal(err.msg, "logs of container c3: No such container: c3");
	hbuf_release(&b);
	docker_close(d);
}

/* ---- exec ---- */

/* a frame of a string */
static size_t sframe(char *p, int stream, const char *payload)
{
	return frame(p, stream, payload, strlen(payload));
}

static void test_exec(void **state)
{
	static char resp[1024];
	char *const argv[] = { S("/bin/sh"), S("-c"), S("wget -q -O- http://127.0.0.1:$PORT/ready"), NULL };
	char *const argv2[] = { S("/bin/sh"), S("-c"), S("exit 1"), NULL };
	struct gerr err = { { 0 } };
	struct docker *d;
	char out[24];
	int code = 0;
	size_t n;
	struct timespec t0, t1;

	(void)state;
	n = (size_t)snprintf(resp, sizeof(resp),
			     "HTTP/1.1 200 OK\r\nContent-Type: application/vnd.docker.raw-stream\r\n"
			     "Connection: close\r\n\r\n");
	/* an empty line first, the first line cut in two frames, a second line */
	n += sframe(resp + n, 1, "\r\n");
	n += sframe(resp + n, 2, "wget: server returned ");
	n += sframe(resp + n, 2, "error: HTTP/1.1 503\nsecond line\n");
	fake_route("POST", "/v1.41/containers/c1/exec", JSON_REPLY("201 Created", "{\"Id\":\"e1\"}"), false);
	fake_route_bytes("POST", "/v1.41/exec/e1/start", resp, n, false);
	fake_route("GET", "/v1.41/exec/e1/json", JSON_REPLY("200 OK", "{\"Running\":false,\"ExitCode\":1}"), false);
	fake_route("POST", "/v1.41/containers/c2/exec",
		   JSON_REPLY("409 Conflict", "{\"message\":\"Container c2 is not running\"}"), false);
	fake_route("POST", "/v1.41/containers/c3/exec", JSON_REPLY("201 Created", "{\"Id\":\"e3\"}"), false);
	fake_route("POST", "/v1.41/containers/c4/exec", JSON_REPLY("201 Created", "{\"Id\":\"e4\"}"), false);
	fake_route("POST", "/v1.41/exec/e4/start",
		   "HTTP/1.1 200 OK\r\nContent-Type: application/vnd.docker.raw-stream\r\nConnection: close\r\n\r\n", false);
	fake_route("GET", "/v1.41/exec/e4/json", JSON_REPLY("200 OK", "{\"Running\":false,\"ExitCode\":null}"), false);
	/* a command that never ends: the stream stays open */
	fake_route("POST", "/v1.41/exec/e3/start",
		   "HTTP/1.1 200 OK\r\nContent-Type: application/vnd.docker.raw-stream\r\n\r\n", true);
	d = open_141();

	/* it ran and failed: 0, its status, the first non-empty line cut to fit */
	assert_int_equal(docker_exec(d, "c1", argv, "1000:1000", 5000, &code, out, sizeof(out), &err), 0);
	assert_int_equal(code, 1);
	assert_string_equal(out, "wget: server returned e");
	assert_string_equal(F.target, "/v1.41/exec/e1/json");

	/* the Engine refuses: -1 with its message; the exec asked for was the command, as the user */
	assert_int_equal(docker_exec(d, "c2", argv2, "1000:1000", 5000, &code, out, sizeof(out), &err), -1);
	assert_string_equal(err.msg, "exec in container c2: Container c2 is not running");
	assert_int_equal(code, -1);
	assert_non_null(strstr(F.body, "\"Cmd\":[\"/bin/sh\",\"-c\",\"exit 1\"]"));
	assert_non_null(strstr(F.body, "\"User\":\"1000:1000\""));
	assert_non_null(strstr(F.body, "\"AttachStdout\":true"));
	assert_non_null(strstr(F.body, "\"AttachStderr\":true"));

	/* ended without a status: an error, never a success */
	assert_int_equal(docker_exec(d, "c4", argv2, NULL, 5000, &code, out, sizeof(out), &err), -1);
	assert_string_equal(err.msg, "exec in container c4: the exec ended without an exit code");
	assert_int_equal(code, -1);

	/* bounded by its timeout, the whole sequence */
	clock_gettime(CLOCK_MONOTONIC, &t0);
	assert_int_equal(docker_exec(d, "c3", argv2, NULL, 300, &code, out, sizeof(out), &err), -1);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	assert_string_equal(err.msg, "timeout after 300ms");
	assert_string_equal(F.target, "/v1.41/exec/e3/start");
	/* not before it, and not far past it (curl's own bound; generous for a busy machine) */
	{
		int64_t ms = (int64_t)(t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000;
		assert_true(ms >= 290);
		assert_true(ms < 5000);
	}
	docker_close(d);
}

/* ---- the JSON progress stream ---- */

struct lines {
	char all[8192];
	int n;
};

static void on_line(void *data, const char *line)
{
	struct lines *l = data;
	size_t k = strlen(l->all);
	snprintf(l->all + k, sizeof(l->all) - k, "%s\n", line);
	l->n++;
}

static const char build_stream[] =
	"{\"stream\":\"Step 1/3 : FROM scratch\"}\r\n"
	"{\"stream\":\"\\n\"}\r\n"
	"{\"stream\":\" ---\\u003e Running in 1234\\n ---\\u003e abc\\n\"}\r\n"
	"{\"status\":\"Downloading\",\"progressDetail\":{\"current\":1200000,\"total\":40000000},\"id\":\"a1b2\"}\n"
	"{\"aux\":{\"ID\":\"sha256:feed\"}}\r\n"
	"{\"stream\":\"Step 3/3 : RUN false\\n\"}\r\n"
	"{\"errorDetail\":{\"code\":1,\"message\":\"The command '/bin/sh -c false' returned a non-zero code: 1\"},"
	"\"error\":\"The command '/bin/sh -c false' returned a non-zero code: 1\"}\r\n";

static void check_build_progress(const struct docker_progress *p, const struct lines *l)
{
	char tail[1024];

	assert_string_equal(p->error, "The command '/bin/sh -c false' returned a non-zero code: 1");
	assert_string_equal(p->id, "sha256:feed");
	assert_string_equal(l->all, "build t: Step 1/3 : FROM scratch\n"
				    "build t:  ---> Running in 1234\n"
				    "build t:  ---> abc\n"
				    "build t: a1b2: Downloading 1.2 MB/40.0 MB\n"
				    "build t: Step 3/3 : RUN false\n");
	docker_progress_tail(p, tail, sizeof(tail));
	assert_string_equal(tail, "Step 1/3 : FROM scratch |  ---> Running in 1234 |  ---> abc | "
				  "a1b2: Downloading 1.2 MB/40.0 MB | Step 3/3 : RUN false");
}

static void test_progress_split_everywhere(void **state)
{
	size_t n = strlen(build_stream);

	(void)state;
	for (size_t cut = 0; cut <= n; cut++) {
		struct docker_progress p;
		struct lines l = { .n = 0 };
		docker_progress_init(&p, "build t", on_line, &l);
		docker_progress_feed(&p, build_stream, cut);
		docker_progress_feed(&p, build_stream + cut, n - cut);
		docker_progress_finish(&p);
		check_build_progress(&p, &l);
		docker_progress_release(&p);
	}
	{
		struct docker_progress p;
		struct lines l = { .n = 0 };
		docker_progress_init(&p, "build t", on_line, &l);
		for (size_t i = 0; i < n; i++)
			docker_progress_feed(&p, build_stream + i, 1);
		docker_progress_finish(&p);
		check_build_progress(&p, &l);
		docker_progress_release(&p);
	}
}

static void test_progress_keeps_ten(void **state)
{
	struct docker_progress p;
	char tail[2048], line[64];

	(void)state;
	docker_progress_init(&p, "pull x", NULL, NULL);
	for (int i = 1; i <= 25; i++) {
		snprintf(line, sizeof(line), "{\"status\":\"line %d\"}\n", i);
		docker_progress_feed(&p, line, strlen(line));
	}
	/* not JSON: kept as text; no final newline: taken at the end */
	docker_progress_feed(&p, "garbage\n{\"error\":\"manifest unknown\"}", 36);
	docker_progress_finish(&p);
	assert_string_equal(p.error, "manifest unknown");
	docker_progress_tail(&p, tail, sizeof(tail));
	assert_string_equal(tail, "line 17 | line 18 | line 19 | line 20 | line 21 | line 22 | line 23 | line 24 | "
				  "line 25 | garbage");
	docker_progress_release(&p);
}

static void test_pull_push_build(void **state)
{
	struct gerr err = { { 0 } };
	struct docker *d;
	struct lines l = { .n = 0 };
	struct docker_image im;
	struct kv args[] = { { S("V"), S("1 2") } };
	char dir[128], path[256], cmd[512];
	FILE *f;

	(void)state;
	fake_route("POST", "/v1.41/images/create?fromImage=127.0.0.1%3A5000%2Fweb&tag=1",
		   JSON_REPLY("200 OK", "{\"status\":\"Pulling from web\",\"id\":\"1\"}\r\n"
					"{\"errorDetail\":{\"message\":\"manifest unknown\"},\"error\":\"manifest unknown\"}\r\n"),
		   false);
	fake_route("POST", "/v1.41/images/create?fromImage=web&tag=latest",
		   JSON_REPLY("200 OK", "{\"status\":\"Status: Image is up to date for web:latest\"}\r\n"), false);
	fake_route("POST", "/v1.41/images/127.0.0.1:5000/web/push?tag=2",
		   JSON_REPLY("200 OK", "{\"status\":\"The push refers to repository [127.0.0.1:5000/web]\"}\r\n"
					"{\"status\":\"2: digest: sha256:dd size: 527\"}\r\n"
					"{\"progressDetail\":{},\"aux\":{\"Tag\":\"2\",\"Digest\":\"sha256:dd\",\"Size\":527}}\r\n"),
		   false);
	fake_route("POST", "/v1.41/build?", JSON_REPLY("200 OK", "{\"stream\":\"Step 1/1 : FROM scratch\\n\"}\r\n"
								  "{\"aux\":{\"ID\":\"sha256:built\"}}\r\n"
								  "{\"stream\":\"Successfully built built\\n\"}\r\n"),
		   false);
	fake_route("GET", "/v1.41/images/sha256:built/json", JSON_REPLY("200 OK", "{\"Id\":\"sha256:built\",\"Size\":3}"),
		   false);
	d = open_141();
	assert_int_equal(docker_image_pull(d, "127.0.0.1:5000/web:1", on_line, &l, &err), -1);
	assert_string_equal(err.msg, "pull 127.0.0.1:5000/web:1: manifest unknown");
	assert_non_null(strstr(l.all, "pull 127.0.0.1:5000/web:1: 1: Pulling from web\n"));
	assert_int_equal(docker_image_pull(d, "web", NULL, NULL, &err), 0);
	assert_int_equal(docker_image_push(d, "127.0.0.1:5000/web:2", NULL, NULL, &err), 0);
	assert_non_null(strcasestr(F.target, "push?tag=2"));

	/* build: the context goes as a tar the Engine can read; .dockerignore holds */
	snprintf(dir, sizeof(dir), "%s/ctx", F.dir);
	assert_int_equal(mkdir(dir, 0755), 0);
	snprintf(path, sizeof(path), "%s/sub", dir);
	assert_int_equal(mkdir(path, 0755), 0);
	snprintf(path, sizeof(path), "%s/Dockerfile", dir);
	f = fopen(path, "w");
	fputs("FROM scratch\nCOPY . /\n", f);
	fclose(f);
	snprintf(path, sizeof(path), "%s/sub/a.txt", dir);
	f = fopen(path, "w");
	fputs("aaa\n", f);
	fclose(f);
	snprintf(path, sizeof(path), "%s/secret.key", dir);
	f = fopen(path, "w");
	fputs("no\n", f);
	fclose(f);
	snprintf(path, sizeof(path), "%s/.dockerignore", dir);
	f = fopen(path, "w");
	fputs("# comment\n*.key\n\n/skip/\n", f);
	fclose(f);
	/* a directory pattern leaves out what is under it */
	snprintf(path, sizeof(path), "%s/skip", dir);
	assert_int_equal(mkdir(path, 0755), 0);
	snprintf(path, sizeof(path), "%s/skip/x", dir);
	f = fopen(path, "w");
	fputs("x\n", f);
	fclose(f);
	snprintf(path, sizeof(path), "%s/.hidden.key", dir);
	f = fopen(path, "w");
	fclose(f);
	snprintf(path, sizeof(path), "%s/link", dir);
	assert_int_equal(symlink("sub/a.txt", path), 0);
	assert_int_equal(docker_image_build(d, dir, NULL, args, 1, "web:3", NULL, NULL, &im, &err), 0);
	assert_string_equal(im.id, "sha256:built");
	assert_non_null(strstr(F.target, "/v1.41/images/sha256:built/json"));
	/* the build request was the last with a body: the context's tar */
	snprintf(path, sizeof(path), "%s/ctx.tar", F.dir);
	f = fopen(path, "wb");
	assert_int_equal(fwrite(F.body, 1, F.bodylen, f), F.bodylen);
	fclose(f);
	assert_int_equal(F.bodylen % 512, 0);
	snprintf(cmd, sizeof(cmd), "tar -tvf %s > %s/list 2>&1", path, F.dir);
	assert_int_equal(system(cmd), 0);
	snprintf(path, sizeof(path), "%s/list", F.dir);
	{
		char list[4096] = "";
		f = fopen(path, "r");
		list[fread(list, 1, sizeof(list) - 1, f)] = 0;
		fclose(f);
		assert_non_null(strstr(list, " .dockerignore\n"));
		assert_non_null(strstr(list, " Dockerfile\n"));
		assert_non_null(strstr(list, " link -> sub/a.txt\n"));
		assert_non_null(strstr(list, " sub/\n"));
		assert_non_null(strstr(list, " 4 "));
		assert_non_null(strstr(list, " sub/a.txt\n"));
		assert_null(strstr(list, "secret.key"));
		assert_null(strstr(list, ".hidden.key"));
		assert_null(strstr(list, "skip"));
		/* owned by 0:0 whoever made the files */
		assert_non_null(strstr(list, " 0/0 "));
	}
	/* and sent it with its tag and build args */
	snprintf(cmd, sizeof(cmd), "rm -rf %s/ctx %s/ctx.tar %s/list", F.dir, F.dir, F.dir);
	assert_int_equal(system(cmd), 0);
	docker_close(d);
}

static void test_build_fails(void **state)
{
	struct gerr err = { { 0 } };
	struct docker *d;
	struct docker_image im;
	struct kv args[] = { { S("V"), S("1 2") } };
	char dir[128], path[256];
	FILE *f;

	(void)state;
	fake_route("POST", "/v1.41/build?", JSON_REPLY("200 OK", "{\"stream\":\"Step 1/2 : FROM scratch\\n\"}\r\n"
								  "{\"stream\":\"Step 2/2 : RUN false\\n\"}\r\n"
								  "{\"errorDetail\":{\"message\":\"no shell\"},"
								  "\"error\":\"no shell\"}\r\n"),
		   false);
	d = open_141();
	snprintf(dir, sizeof(dir), "%s/ctx", F.dir);
	assert_int_equal(mkdir(dir, 0755), 0);
	snprintf(path, sizeof(path), "%s/Dockerfile.x", dir);
	f = fopen(path, "w");
	fputs("FROM scratch\nRUN false\n", f);
	fclose(f);
	assert_int_equal(docker_image_build(d, dir, "Dockerfile.x", args, 1, "web:3", NULL, NULL, &im, &err), -1);
	assert_string_equal(err.msg, "build web:3: no shell (last lines: Step 1/2 : FROM scratch | Step 2/2 : RUN false)");
	assert_string_equal(F.target, "/v1.41/build?rm=1&forcerm=1&dockerfile=Dockerfile.x&t=web%3A3&buildargs=%7B%22V%22%3A%221%202%22%7D");
	/* a context that does not exist: named */
	assert_int_equal(docker_image_build(d, "/nonexistent-ctx", NULL, NULL, 0, "web:3", NULL, NULL, &im, &err), -1);
	assert_non_null(strstr(err.msg, "build web:3: build context: cannot read /nonexistent-ctx"));
	unlink(path);
	rmdir(dir);
	docker_close(d);
}

static void test_ref_split(void **state)
{
	char n[64], t[64];

	(void)state;
	assert_int_equal(docker_ref_split("web", n, sizeof(n), t, sizeof(t)), 0);
	assert_string_equal(n, "web");
	assert_string_equal(t, "latest");
	assert_int_equal(docker_ref_split("127.0.0.1:5000/team/web:1.2", n, sizeof(n), t, sizeof(t)), 0);
	assert_string_equal(n, "127.0.0.1:5000/team/web");
	assert_string_equal(t, "1.2");
	assert_int_equal(docker_ref_split("127.0.0.1:5000/web", n, sizeof(n), t, sizeof(t)), 0);
	assert_string_equal(n, "127.0.0.1:5000/web");
	assert_string_equal(t, "latest");
	assert_int_equal(docker_ref_split("web@sha256:abcd", n, sizeof(n), t, sizeof(t)), 0);
	assert_string_equal(n, "web");
	assert_string_equal(t, "sha256:abcd");
	assert_int_equal(docker_ref_split("", n, sizeof(n), t, sizeof(t)), -1);
	assert_int_equal(docker_ref_split(":x", n, sizeof(n), t, sizeof(t)), -1);
	assert_int_equal(docker_ref_split("web:", n, sizeof(n), t, sizeof(t)), -1);
	assert_int_equal(docker_ref_split("a-name-longer-than-eight:1", n, 8, t, sizeof(t)), -1);
}

/* one struct docker, calls from several threads at once */
struct worker {
	struct docker *d;
	int ok;
};

static void *worker_run(void *arg)
{
	struct worker *w = arg;
	for (int i = 0; i < 20; i++) {
		struct gerr err = { { 0 } };
		struct docker_image im;
		if (docker_image_inspect(w->d, "web", &im, &err) == 1 && strcmp(im.id, "sha256:abc") == 0)
			w->ok++;
	}
	return NULL;
}

static void test_threads(void **state)
{
	struct worker w[4];
	pthread_t th[4];
	struct docker *d;

	(void)state;
	fake_route("GET", "/v1.41/images/web/json", JSON_REPLY("200 OK", "{\"Id\":\"sha256:abc\",\"Size\":7}"), false);
	d = open_141();
	for (int i = 0; i < 4; i++) {
		w[i] = (struct worker){ d, 0 };
		assert_int_equal(pthread_create(&th[i], NULL, worker_run, &w[i]), 0);
	}
	for (int i = 0; i < 4; i++) {
		pthread_join(th[i], NULL);
		assert_int_equal(w[i].ok, 20);
	}
	docker_close(d);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_negotiate_same, fake_setup, fake_teardown),
		cmocka_unit_test_setup_teardown(test_negotiate_newer_server, fake_setup, fake_teardown),
		cmocka_unit_test_setup_teardown(test_negotiate_old_server, fake_setup, fake_teardown),
		cmocka_unit_test_setup_teardown(test_no_version_header, fake_setup, fake_teardown),
		cmocka_unit_test_setup_teardown(test_unreachable, fake_setup, fake_teardown),
		cmocka_unit_test_setup_teardown(test_errors, fake_setup, fake_teardown),
		cmocka_unit_test_setup_teardown(test_create_body, fake_setup, fake_teardown),
		cmocka_unit_test_setup_teardown(test_inspect_container, fake_setup, fake_teardown),
		cmocka_unit_test_setup_teardown(test_list_labels, fake_setup, fake_teardown),
		cmocka_unit_test_setup_teardown(test_stats, fake_setup, fake_teardown),
		cmocka_unit_test_setup_teardown(test_logs_through_engine, fake_setup, fake_teardown),
		cmocka_unit_test_setup_teardown(test_exec, fake_setup, fake_teardown),
		cmocka_unit_test_setup_teardown(test_pull_push_build, fake_setup, fake_teardown),
		cmocka_unit_test_setup_teardown(test_build_fails, fake_setup, fake_teardown),
		cmocka_unit_test_setup_teardown(test_threads, fake_setup, fake_teardown),
		cmocka_unit_test(test_ref_split),
		cmocka_unit_test(test_demux_split_everywhere),
		cmocka_unit_test(test_demux_malformed),
		cmocka_unit_test(test_progress_split_everywhere),
		cmocka_unit_test(test_progress_keeps_ten),
	};
	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
