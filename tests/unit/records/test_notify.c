#include "common.h"
#include <setjmp.h>
#include <cmocka.h>
#include <arpa/inet.h>
#include <jansson.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include "records/notify.h"
#include "store/store.h"

/* the published Standard Webhooks test vector */
static void test_signature_vector(void **state)
{
	char sig[128];
	(void)state;
	assert_int_equal(notify_sign("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "msg_p5jXN8AQM9LWM0D4loKWxJek",
				     1614265330, "{\"test\": 2432232314}", sig, sizeof(sig)), 0);
	assert_string_equal(sig, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
	assert_int_equal(notify_sign("whsec_!!!", "m", 1, "{}", sig, sizeof(sig)), -1);
	assert_int_equal(notify_sign("", "m", 1, "{}", sig, sizeof(sig)), -1);
	/* a raw secret works too, and differs */
	assert_int_equal(notify_sign("plain", "m", 1, "{}", sig, sizeof(sig)), 0);
	assert_int_equal(strncmp(sig, "v1,", 3), 0);
}

static void test_bodies_and_config(void **state)
{
	json_t *data = json_pack("{s:s, s:s, s:s}", "service", "api", "environment", "production", "message",
				 "revision 4 rolled back");
	json_t *cfg = json_loads("[{\"url\": \"http://127.0.0.1:1/x\", \"format\": \"standard\", \"events\": [\"rollout_failed\"],"
				 "   \"allow_private\": \"true\", \"secret\": \"HOOK\"},"
				 " {\"url\": \"https://hooks.slack.com/services/T/B/X\", \"format\": \"slack\"},"
				 " {\"url\": \"https://hooks.example.com/x\", \"secret\": \"a.b-C_1\", \"allow_private\": false}]", 0, NULL);
	char *s = notify_slack_body("rollout_rolled_back", data), *b;
	json_t *j;
	struct gerr err;
	static const char *const bad[] = {
		"{}", "[{\"url\": \"ftp://x\"}]", "[{\"url\": \"http://x\", \"format\": \"teams\"}]",
		"[{\"url\": \"http://x\", \"secret_env\": \"S\"}]", "[{\"url\": \"http://x\", \"events\": \"all\"}]", "[1]",
		"[{\"url\": \"http://x\", \"secret\": \"two words\"}]", "[{\"url\": \"http://x\", \"secret\": \"\"}]",
		"[{\"url\": \"http://x\", \"format\": \"slack\", \"secret\": \"S\"}]",
		"[{\"url\": \"http://x\", \"allow_private\": \"yes\"}]", "[{\"url\": \"http://x\", \"allow_private\": 1}]",
		"[{\"url\": \"http://x\", \"wat\": 1}]", "[{\"url\": \"http://\"}]",
	};
	(void)state;
	assert_string_equal(s, "{\"text\":\"rollout_rolled_back api@production: revision 4 rolled back\"}");
	free(s);
	b = notify_standard_body("rollout_failed", 1715353200, data);
	j = json_loads(b, 0, NULL);
	assert_string_equal(json_string_value(json_object_get(j, "type")), "rollout_failed");
	assert_string_equal(json_string_value(json_object_get(j, "timestamp")), "2024-05-10T15:00:00Z");
	assert_string_equal(json_string_value(json_object_get(json_object_get(j, "data"), "service")), "api");
	json_decref(j);
	free(b);
	if (notify_config_check(cfg, &err) < 0)
		fail_msg("refused a good list: %s", err.msg);
	assert_true(notify_wants(json_array_get(cfg, 0), "rollout_failed"));
	assert_false(notify_wants(json_array_get(cfg, 0), "incident_opened"));
	assert_true(notify_wants(json_array_get(cfg, 1), "incident_opened"));
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		json_t *c = json_loads(bad[i], 0, NULL);
		if (notify_config_check(c, &err) == 0)
			fail_msg("accepted %s", bad[i]);
		json_decref(c);
	}
	json_decref(cfg);
	json_decref(data);
}

/* secret_env is refused with the way out; a private target without consent names the url, the rule and the fix */
static void test_config_errors(void **state)
{
	static const struct {
		const char *cfg, *want[3];
	} cases[] = {
		{ "[{\"url\": \"https://x.example\"}, {\"url\": \"https://y.example\", \"secret_env\": \"HOOK\"}]",
		  { "notify[1].secret_env: ", "use secret: NAME; the value goes in HOME/webhook-secrets" } },
		{ "[{\"url\": \"http://127.0.0.1:9000/hook\"}]",
		  { "notify[0].url: 127.0.0.1 is a loopback address", "need allow_private: true" } },
		{ "[{\"url\": \"http://localhost:9000/hook\", \"allow_private\": \"false\"}]",
		  { "notify[0].url: localhost is a loopback address", "allow_private: true" } },
		{ "[{\"url\": \"http://[::ffff:192.168.1.2]/hook\"}]", { "notify[0].url: ", "is a private address" } },
		{ "[{\"url\": \"http://169.254.169.254/latest/meta-data\"}]", { "notify[0].url: ", "link-local" } },
		{ "[{\"url\": \"http://0.0.0.0:80/\"}]", { "notify[0].url: ", "unspecified" } },
		{ "[{\"url\": \"http://[::]:80/\"}]", { "notify[0].url: ", "unspecified" } },
		{ "[{\"url\": \"http://2130706433/\"}]", { "notify[0].url: ", "loopback" } },
		{ "[{\"url\": \"http://x\", \"allow_private\": \"maybe\"}]", { "notify[0].allow_private: " } },
	};
	static const char *const good[] = {
		"[{\"url\": \"http://127.0.0.1:9000/hook\", \"allow_private\": true}]",
		"[{\"url\": \"http://[::1]:9000/hook\", \"allow_private\": \"true\"}]",
		"[{\"url\": \"http://10.1.2.3/hook\", \"allow_private\": \"True\"}]",
		"[{\"url\": \"https://hooks.example.com/x\", \"allow_private\": \"false\"}]",
		"[{\"url\": \"http://8.8.8.8/x\"}, {\"url\": \"http://[2001:db8::1]/x\"}, {\"url\": \"http://172.32.0.1/x\"}]",
		"[{\"url\": \"http://notlocalhost/x\"}, {\"url\": \"http://localhost.example.com/x\"}]",
	};
	struct gerr err;
	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		json_t *c = json_loads(cases[i].cfg, 0, NULL);
		assert_non_null(c);
		if (notify_config_check(c, &err) == 0)
			fail_msg("accepted %s", cases[i].cfg);
		for (size_t k = 0; k < ARRAY_SIZE(cases[i].want) && cases[i].want[k]; k++)
			if (!strstr(err.msg, cases[i].want[k]))
				fail_msg("%s: error '%s' lacks '%s'", cases[i].cfg, err.msg, cases[i].want[k]);
		json_decref(c);
	}
	for (size_t i = 0; i < ARRAY_SIZE(good); i++) {
		json_t *c = json_loads(good[i], 0, NULL);
		assert_non_null(c);
		if (notify_config_check(c, &err) < 0)
			fail_msg("refused %s: %s", good[i], err.msg);
		json_decref(c);
	}
}

static const char *class_of(const char *ip)
{
	struct sockaddr_storage ss;
	memset(&ss, 0, sizeof(ss));
	if (inet_pton(AF_INET, ip, &((struct sockaddr_in *)&ss)->sin_addr) == 1)
		ss.ss_family = AF_INET;
	else if (inet_pton(AF_INET6, ip, &((struct sockaddr_in6 *)&ss)->sin6_addr) == 1)
		ss.ss_family = AF_INET6;
	else
		fail_msg("bad test address %s", ip);
	return notify_addr_private((struct sockaddr *)&ss);
}

static void test_private_ranges(void **state)
{
	static const struct {
		const char *ip, *range; /* range NULL: public */
	} cases[] = {
		{ "127.0.0.1", "loopback" }, { "127.255.255.254", "loopback" }, { "10.0.0.1", "private" },
		{ "10.255.255.255", "private" }, { "172.16.0.1", "private" }, { "172.31.255.255", "private" },
		{ "192.168.0.1", "private" }, { "169.254.169.254", "link-local" }, { "0.0.0.0", "unspecified" },
		{ "100.64.0.1", "private" }, { "100.127.255.255", "private" },
		{ "8.8.8.8", NULL }, { "172.15.255.255", NULL }, { "172.32.0.0", NULL }, { "192.169.0.1", NULL },
		{ "169.255.0.1", NULL }, { "11.0.0.1", NULL }, { "126.255.255.255", NULL }, { "128.0.0.1", NULL },
		{ "100.63.255.255", NULL }, { "100.128.0.0", NULL }, { "1.0.0.0", NULL },
		{ "::1", "loopback" }, { "::", "unspecified" }, { "fe80::1", "link-local" },
		{ "febf:ffff::1", "link-local" }, { "fc00::1", "private" }, { "fdff:ffff::1", "private" },
		{ "fec0::1", "private" }, { "fe7f::1", NULL }, { "fbff::1", NULL }, { "fe00::1", NULL },
		{ "2001:db8::1", NULL }, { "2606:4700::1111", NULL }, { "::1:2:3:4", NULL },
		{ "::2", "unspecified" }, /* IPv4-compatible 0.0.0.2 */
		/* IPv4-mapped, -compatible and NAT64 forms are the IPv4 address they carry */
		{ "::ffff:127.0.0.1", "loopback" }, { "::ffff:10.1.2.3", "private" }, { "::ffff:169.254.1.1", "link-local" },
		{ "::ffff:0.0.0.0", "unspecified" }, { "::ffff:192.168.1.1", "private" }, { "::ffff:8.8.8.8", NULL },
		{ "::127.0.0.1", "loopback" }, { "::10.0.0.1", "private" }, { "64:ff9b::127.0.0.1", "loopback" },
		{ "64:ff9b::8.8.8.8", NULL }, { "::ffff:7f00:1", "loopback" },
	};
	static const struct {
		const char *host, *range;
	} hosts[] = {
		{ "localhost", "loopback" }, { "LOCALHOST", "loopback" }, { "localhost.", "loopback" },
		{ "api.localhost", "loopback" }, { "[::1]", "loopback" }, { "::1", "loopback" },
		{ "[fe80::1%eth0]", "link-local" }, { "[::ffff:10.0.0.1]", "private" }, { "127.1", "loopback" },
		{ "0x7f000001", "loopback" }, { "2130706433", "loopback" }, { "0177.0.0.1", "loopback" },
		{ "10.0.0.1.", "private" }, { "0", "unspecified" },
		{ "example.com", NULL }, { "notlocalhost", NULL }, { "localhost.example.com", NULL },
		{ "8.8.8.8", NULL }, { "[2001:db8::1]", NULL }, { "", NULL }, { "[]", NULL },
	};
	struct sockaddr sa = { .sa_family = AF_UNIX };
	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		const char *got = class_of(cases[i].ip);
		if (!cases[i].range != !got || (got && strcmp(got, cases[i].range)))
			fail_msg("%s: got %s, want %s", cases[i].ip, got ? got : "public",
				 cases[i].range ? cases[i].range : "public");
	}
	for (size_t i = 0; i < ARRAY_SIZE(hosts); i++) {
		const char *got = notify_host_private(hosts[i].host);
		if (!hosts[i].range != !got || (got && strcmp(got, hosts[i].range)))
			fail_msg("host %s: got %s, want %s", hosts[i].host, got ? got : "public",
				 hosts[i].range ? hosts[i].range : "public");
	}
	assert_non_null(notify_addr_private(&sa)); /* not an IP address: never connected */
	assert_non_null(notify_addr_private(NULL));
	assert_null(notify_host_private(NULL));
}

/* ---- secrets file ---- */

static char *tmpdir(void)
{
	char *d = xasprintf("%s/gantry-notify-XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
	assert_non_null(mkdtemp(d));
	return d;
}

static void rmtree(const char *dir)
{
	char *cmd = xasprintf("rm -rf '%s'", dir);
	assert_int_equal(system(cmd), 0);
	free(cmd);
}

static void write_file(const char *path, const char *text, mode_t mode)
{
	FILE *f;
	unlink(path);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
	assert_int_equal(chmod(path, mode), 0);
}

static void test_secret_parse(void **state)
{
	static const char text[] =
		"# webhook secrets\n"
		"\n"
		"HOOK=whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\n"
		"  SPACED =  value with = sign  \r\n"
		"HOOK2=second\n"
		"#COMMENTED=no\n"
		"EMPTY=\n"
		"noequals\n"
		"LAST=no-newline";
	char v[64];
	struct gerr err;
	(void)state;
	assert_int_equal(notify_secret_parse(text, strlen(text), "HOOK", v, sizeof(v), &err), 0);
	assert_string_equal(v, "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw");
	assert_int_equal(notify_secret_parse(text, strlen(text), "HOOK2", v, sizeof(v), &err), 0);
	assert_string_equal(v, "second");
	assert_int_equal(notify_secret_parse(text, strlen(text), "SPACED", v, sizeof(v), &err), 0);
	assert_string_equal(v, "value with = sign");
	assert_int_equal(notify_secret_parse(text, strlen(text), "LAST", v, sizeof(v), &err), 0);
	assert_string_equal(v, "no-newline");
	assert_int_equal(notify_secret_parse(text, strlen(text), "COMMENTED", v, sizeof(v), &err), -1);
	assert_non_null(strstr(err.msg, "secret COMMENTED is not in the file"));
	assert_int_equal(notify_secret_parse(text, strlen(text), "HOO", v, sizeof(v), &err), -1);
	assert_int_equal(notify_secret_parse(text, strlen(text), "noequals", v, sizeof(v), &err), -1);
	assert_int_equal(notify_secret_parse(text, strlen(text), "EMPTY", v, sizeof(v), &err), -1);
	assert_non_null(strstr(err.msg, "empty"));
	/* too long for the caller's buffer: refused, and the value is not in the message */
	assert_int_equal(notify_secret_parse(text, strlen(text), "HOOK", v, 8, &err), -1);
	assert_null(strstr(err.msg, "whsec_"));
}

static void test_secret_file_checks(void **state)
{
	char *dir = tmpdir(), *path = xasprintf("%s/webhook-secrets", dir), *link = xasprintf("%s/link", dir);
	char v[128];
	struct gerr err;
	(void)state;
	write_file(path, "HOOK=topsecretvalue\n", 0600);
	assert_int_equal(notify_secret_read(path, "HOOK", v, sizeof(v), &err), 0);
	assert_string_equal(v, "topsecretvalue");
	assert_int_equal(notify_secret_read(path, "OTHER", v, sizeof(v), &err), -1);
	assert_non_null(strstr(err.msg, "secret OTHER is not in the file"));
	assert_non_null(strstr(err.msg, path));
	assert_int_equal(chmod(path, 0400), 0);
	assert_int_equal(notify_secret_read(path, "HOOK", v, sizeof(v), &err), 0);
	/* readable, or even only writable or executable, by group or others: refused */
	static const mode_t bad[] = { 0640, 0604, 0644, 0610, 0601, 0660, 0666, 0620 };
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		assert_int_equal(chmod(path, bad[i]), 0);
		if (notify_secret_read(path, "HOOK", v, sizeof(v), &err) == 0)
			fail_msg("mode %03o accepted", (unsigned)bad[i]);
		assert_non_null(strstr(err.msg, "chmod 600"));
		assert_null(strstr(err.msg, "topsecretvalue"));
	}
	assert_int_equal(chmod(path, 0600), 0);
	/* a link to it, a directory, a missing file: refused */
	assert_int_equal(symlink(path, link), 0);
	assert_int_equal(notify_secret_read(link, "HOOK", v, sizeof(v), &err), -1);
	assert_non_null(strstr(err.msg, "symbolic link"));
	assert_int_equal(notify_secret_read(dir, "HOOK", v, sizeof(v), &err), -1);
	assert_non_null(strstr(err.msg, "regular file"));
	unlink(link);
	assert_int_equal(notify_secret_read(link, "HOOK", v, sizeof(v), &err), -1);
	/* owned by another user: refused (root can make one; others use a file root owns) */
	if (geteuid() == 0) {
		assert_int_equal(chown(path, 65534, 65534), 0);
		assert_int_equal(notify_secret_read(path, "HOOK", v, sizeof(v), &err), -1);
	} else {
		struct stat st;
		assert_int_equal(stat("/etc/passwd", &st), 0);
		assert_int_not_equal(st.st_uid, geteuid());
		assert_int_equal(notify_secret_read("/etc/passwd", "root", v, sizeof(v), &err), -1);
	}
	assert_non_null(strstr(err.msg, "must be owned by the controller's user"));
	assert_null(strstr(err.msg, "topsecretvalue"));
	rmtree(dir);
	free(dir);
	free(path);
	free(link);
}

/* ---- delivery ---- */

/* a receiver on 127.0.0.1: answers up to max requests with reply */
struct receiver {
	int fd, port, max, served;
	const char *reply;
	char req[8192];
	size_t len;
};

static void *serve(void *arg)
{
	struct receiver *r = arg;
	while (r->served < r->max) {
		struct pollfd p = { .fd = r->fd, .events = POLLIN };
		int c;
		if (poll(&p, 1, 10000) <= 0)
			return NULL;
		c = accept(r->fd, NULL, NULL);
		if (c < 0)
			return NULL;
		r->len = 0;
		for (;;) {
			struct pollfd q = { .fd = c, .events = POLLIN };
			const char *cl;
			char *body;
			ssize_t n;
			if (poll(&q, 1, 5000) <= 0)
				break;
			n = read(c, r->req + r->len, sizeof(r->req) - 1 - r->len);
			if (n <= 0)
				break;
			r->len += (size_t)n;
			r->req[r->len] = 0;
			body = strstr(r->req, "\r\n\r\n");
			cl = strcasestr(r->req, "Content-Length:");
			if (body && strlen(body + 4) >= (size_t)atoi(cl ? cl + 15 : "0"))
				break;
		}
		if (write(c, r->reply, strlen(r->reply)) < 0)
			r->len = 0;
		close(c);
		r->served++;
	}
	return NULL;
}

static void receiver_start(struct receiver *r, pthread_t *t, int max, const char *reply)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };
	socklen_t sl = sizeof(sa);
	memset(r, 0, sizeof(*r));
	r->max = max;
	r->reply = reply;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	r->fd = socket(AF_INET, SOCK_STREAM, 0);
	assert_int_equal(bind(r->fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(r->fd, 4), 0);
	getsockname(r->fd, (struct sockaddr *)&sa, &sl);
	r->port = ntohs(sa.sin_port);
	if (t)
		pthread_create(t, NULL, serve, r);
}

static const char *header(const char *req, const char *name, char *out, size_t len)
{
	const char *h = strcasestr(req, name), *e;
	if (!h)
		return NULL;
	h += strlen(name);
	while (*h == ' ')
		h++;
	e = strstr(h, "\r\n");
	snprintf(out, len, "%.*s", (int)(e - h), h);
	return out;
}

/* one state directory for every delivery test: the worker stays on the first database */
static char *home, *db, *secrets;

static int setup_home(void **state)
{
	struct store *st;
	struct gerr err;
	(void)state;
	home = tmpdir();
	db = xasprintf("%s/state.db", home);
	secrets = xasprintf("%s/webhook-secrets", home);
	/* the daemon's database exists before anything is sent */
	if (store_open(db, &st, &err) < 0)
		return -1;
	store_close(st);
	return 0;
}

static int teardown_home(void **state)
{
	(void)state;
	for (int i = 0; i < 100 && !notify_idle(); i++)
		usleep(50000);
	rmtree(home);
	free(home);
	free(db);
	free(secrets);
	return 0;
}

/* the message of the first event of kind whose message holds needle, waiting up to 15 s; NULL if none */
static char *wait_event(const char *kind, const char *needle)
{
	for (int i = 0; i < 300; i++) {
		struct store *st;
		struct gerr err;
		struct event_row *ev;
		size_t n = 0;
		char *found = NULL;
		if (store_open(db, &st, &err) == 0) {
			if (store_event_list(st, NULL, NULL, 0, 1000, &ev, &n, &err) == 0) {
				for (size_t k = 0; k < n && !found; k++)
					if (!strcmp(ev[k].kind, kind) && strstr(ev[k].message, needle))
						found = xstrdup(ev[k].message);
				free(ev);
			}
			store_close(st);
		}
		if (found)
			return found;
		usleep(50000);
	}
	return NULL;
}

static void test_delivery_signed(void **state)
{
	struct receiver r;
	pthread_t t;
	char url[64], id[128], ts[64], sig[128], want[128], *msg;
	json_t *cfg, *data = json_pack("{s:s}", "message", "hello");
	const char *body;
	(void)state;
	write_file(secrets, "# test\nOTHER=x\nHOOK=whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\n", 0600);
	receiver_start(&r, &t, 1, "HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n");
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/hook", r.port);
	cfg = json_pack("[{s:s, s:s, s:s, s:b}]", "url", url, "format", "standard", "secret", "HOOK", "allow_private", 1);
	assert_int_equal(notify_send(NULL, db, cfg, "incident_opened", data), 1);
	pthread_join(t, NULL);
	close(r.fd);
	assert_true(r.len > 0);
	assert_non_null(header(r.req, "webhook-id:", id, sizeof(id)));
	assert_non_null(header(r.req, "webhook-timestamp:", ts, sizeof(ts)));
	assert_non_null(header(r.req, "webhook-signature:", sig, sizeof(sig)));
	body = strstr(r.req, "\r\n\r\n") + 4;
	assert_int_equal(notify_sign("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", id, atoll(ts), body, want, sizeof(want)), 0);
	assert_string_equal(sig, want);
	assert_non_null(strstr(body, "\"type\":\"incident_opened\""));
	/* the outcome is recorded as an event by the worker */
	msg = wait_event("notify_sent", url);
	assert_non_null(msg);
	free(msg);
	json_decref(cfg);
	json_decref(data);
}

/* a name resolving to loopback, on a target without allow_private: never connected, recorded once */
static void test_delivery_private_refused(void **state)
{
	struct receiver r;
	char url[64], *msg;
	json_t *cfg, *data = json_pack("{s:s}", "message", "hello");
	struct pollfd p;
	(void)state;
	receiver_start(&r, NULL, 0, "");
	snprintf(url, sizeof(url), "http://localhost:%d/private", r.port);
	cfg = json_pack("[{s:s, s:s}]", "url", url, "format", "slack");
	assert_int_equal(notify_send(NULL, db, cfg, "rollout_failed", data), 1);
	msg = wait_event("notify_failed", url);
	assert_non_null(msg);
	if (!strstr(msg, "refused") || !strstr(msg, "loopback address") || !strstr(msg, "allow_private: true"))
		fail_msg("recorded: %s", msg);
	assert_null(strstr(msg, "attempts")); /* a refusal is final */
	p = (struct pollfd){ .fd = r.fd, .events = POLLIN };
	assert_int_equal(poll(&p, 1, 0), 0); /* nobody connected */
	close(r.fd);
	free(msg);
	json_decref(cfg);
	json_decref(data);
}

/* a 500 with a body: the recorded failure is the status, never the body; bodies are read only so far */
static void test_delivery_error_no_body(void **state)
{
	static char big[64 * 1024 + 200];
	struct receiver r;
	pthread_t t;
	char url[64], *msg;
	json_t *cfg, *data = json_pack("{s:s}", "message", "hello");
	(void)state;
	receiver_start(&r, &t, 3, "HTTP/1.1 500 Internal Server Error\r\nContent-Length: 16\r\nConnection: close\r\n"
				  "\r\nSECRET-BODY-TEXT");
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/err", r.port);
	cfg = json_pack("[{s:s, s:b}]", "url", url, "allow_private", 1);
	assert_int_equal(notify_send(NULL, db, cfg, "incident_closed", data), 1);
	msg = wait_event("notify_failed", url);
	pthread_join(t, NULL);
	close(r.fd);
	assert_non_null(msg);
	if (!strstr(msg, "after 3 attempts: HTTP 500") || strstr(msg, "SECRET-BODY-TEXT"))
		fail_msg("recorded: %s", msg);
	free(msg);
	json_decref(cfg);

	/* a 2xx with an endless body is still delivered: its body is cut, not buffered */
	memcpy(big, "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n", 38);
	memset(big + 38, 'x', sizeof(big) - 39);
	receiver_start(&r, &t, 1, big);
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/big", r.port);
	cfg = json_pack("[{s:s, s:b}]", "url", url, "allow_private", 1);
	assert_int_equal(notify_send(NULL, db, cfg, "incident_closed", data), 1);
	msg = wait_event("notify_sent", url);
	pthread_join(t, NULL);
	close(r.fd);
	assert_non_null(msg);
	free(msg);
	json_decref(cfg);
	json_decref(data);
}

/* the secrets file is checked at each delivery: a bad one fails the delivery, recorded, without the value */
static void test_delivery_secret_problems(void **state)
{
	static const struct {
		const char *text, *secret, *want;
		mode_t mode;
	} cases[] = {
		{ "HOOK=topsecretvalue\n", "HOOK", "chmod 600", 0644 },
		{ "HOOK=topsecretvalue\n", "MISSING", "secret MISSING is not in the file", 0600 },
		{ "HOOK=whsec_!!topsecretvalue\n", "HOOK", "not a valid key", 0600 },
		{ NULL, "HOOK", "No such file", 0600 },
	};
	json_t *data = json_pack("{s:s}", "message", "hello");
	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		char url[64], *msg;
		json_t *cfg;
		if (cases[i].text)
			write_file(secrets, cases[i].text, cases[i].mode);
		else
			unlink(secrets);
		/* nothing listens: the delivery must fail before it connects */
		snprintf(url, sizeof(url), "http://127.0.0.1:1/secret%zu", i);
		cfg = json_pack("[{s:s, s:s, s:b}]", "url", url, "secret", cases[i].secret, "allow_private", 1);
		assert_int_equal(notify_send(NULL, db, cfg, "emergency_deploy", data), 1);
		msg = wait_event("notify_failed", url);
		assert_non_null(msg);
		if (!strstr(msg, cases[i].want) || !strstr(msg, "refused") || strstr(msg, "topsecretvalue"))
			fail_msg("case %zu recorded: %s", i, msg);
		free(msg);
		json_decref(cfg);
	}
	json_decref(data);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_signature_vector),
		cmocka_unit_test(test_bodies_and_config),
		cmocka_unit_test(test_config_errors),
		cmocka_unit_test(test_private_ranges),
		cmocka_unit_test(test_secret_parse),
		cmocka_unit_test(test_secret_file_checks),
		cmocka_unit_test(test_delivery_signed),
		cmocka_unit_test(test_delivery_private_refused),
		cmocka_unit_test(test_delivery_error_no_body),
		cmocka_unit_test(test_delivery_secret_problems),
	};
	return cmocka_run_group_tests(tests, setup_home, teardown_home);
}
