#include "common.h"
#include <setjmp.h>
#include <cmocka.h>
#include <arpa/inet.h>
#include <jansson.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <sys/socket.h>
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
	json_t *cfg = json_loads("[{\"url\": \"http://127.0.0.1:1/x\", \"format\": \"standard\", \"events\": [\"rollout_failed\"]},"
				 " {\"url\": \"https://hooks.slack.com/services/T/B/X\", \"format\": \"slack\"}]", 0, NULL);
	char *s = notify_slack_body("rollout_rolled_back", data), *b;
	json_t *j;
	struct gerr err;
	static const char *const bad[] = {
		"{}", "[{\"url\": \"ftp://x\"}]", "[{\"url\": \"http://x\", \"format\": \"teams\"}]",
		"[{\"url\": \"http://x\", \"secret\": \"s\"}]", "[{\"url\": \"http://x\", \"events\": \"all\"}]", "[1]",
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
	assert_int_equal(notify_config_check(cfg, &err), 0);
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

/* a one-shot receiver on 127.0.0.1 */
struct receiver {
	int fd, port;
	char req[8192];
	size_t len;
};

static void *serve_one(void *arg)
{
	struct receiver *r = arg;
	struct pollfd p = { .fd = r->fd, .events = POLLIN };
	int c;
	if (poll(&p, 1, 10000) <= 0)
		return NULL;
	c = accept(r->fd, NULL, NULL);
	if (c < 0)
		return NULL;
	for (;;) {
		struct pollfd q = { .fd = c, .events = POLLIN };
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
		if (body && strlen(body + 4) >= (size_t)atoi(strcasestr(r->req, "Content-Length:") ?
							     strcasestr(r->req, "Content-Length:") + 15 : "0"))
			break;
	}
	if (write(c, "HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n", 45) < 0)
		r->len = 0;
	close(c);
	return NULL;
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

static void test_delivery_signed(void **state)
{
	struct receiver r = { 0 };
	struct sockaddr_in sa = { .sin_family = AF_INET };
	socklen_t sl = sizeof(sa);
	pthread_t t;
	char url[64], id[128], ts[64], sig[128], want[128], dir[256], *db;
	json_t *cfg, *data = json_pack("{s:s}", "message", "hello");
	const char *body;
	(void)state;
	snprintf(dir, sizeof(dir), "%s/gantry-notify-XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
	assert_non_null(mkdtemp(dir));
	db = xasprintf("%s/state.db", dir);
	{
		/* the daemon's database exists before anything is sent */
		struct store *st;
		struct gerr err;
		assert_int_equal(store_open(db, &st, &err), 0);
		store_close(st);
	}
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	r.fd = socket(AF_INET, SOCK_STREAM, 0);
	assert_int_equal(bind(r.fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(r.fd, 4), 0);
	getsockname(r.fd, (struct sockaddr *)&sa, &sl);
	r.port = ntohs(sa.sin_port);
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/hook", r.port);
	cfg = json_pack("[{s:s, s:s, s:s}]", "url", url, "format", "standard", "secret_env", "GANTRY_TEST_HOOK_SECRET");
	setenv("GANTRY_TEST_HOOK_SECRET", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", 1);
	pthread_create(&t, NULL, serve_one, &r);
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
	{
		bool seen = false;
		for (int i = 0; i < 100 && !seen; i++) {
			struct store *st;
			struct gerr err;
			struct event_row *ev;
			size_t n = 0;
			if (store_open(db, &st, &err) == 0) {
				if (store_event_list(st, NULL, NULL, 0, 10, &ev, &n, &err) == 0) {
					for (size_t k = 0; k < n; k++)
						seen |= !strcmp(ev[k].kind, "notify_sent");
					free(ev);
				}
				store_close(st);
			}
			if (!seen)
				usleep(50000);
		}
		assert_true(seen);
		for (int i = 0; i < 100 && !notify_idle(); i++)
			usleep(50000);
		assert_true(notify_idle());
	}
	json_decref(cfg);
	json_decref(data);
	free(db);
	{
		char *cmd = xasprintf("rm -rf '%s'", dir);
		assert_int_equal(system(cmd), 0);
		free(cmd);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_signature_vector),
		cmocka_unit_test(test_bodies_and_config),
		cmocka_unit_test(test_delivery_signed),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
