#include "common.h"
#include "cli/client.h"
#include "store/store.h"
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

int client_need_svc_env(const char *cmd, const char **pos, int npos, const char *env)
{
	if (npos < 1)
		return cli_error("gantry %s: missing SERVICE (usage: gantry %s SERVICE --env ENV)", cmd, cmd);
	if (npos > 1)
		return cli_error("gantry %s: unexpected argument '%s'", cmd, pos[1]);
	if (!env)
		return cli_error("gantry %s: --env is required (usage: gantry %s SERVICE --env ENV)", cmd, cmd);
	return 0;
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

static int client_call_retry(const struct cli_ctx *ctx, const char *saved, json_t **resp, int retries_left);

int client_call(const struct cli_ctx *ctx, json_t *req, json_t **resp)
{
	const char *token = getenv("GANTRY_TOKEN");
	char *text;
	int ret;
	/* the identity for gates (src/gates/hooks.h); without it, the OS user */
	if (token && *token && json_is_object(req) && !json_object_get(req, "token"))
		json_object_set_new(req, "token", json_string(token));
	text = json_dumps(req, JSON_COMPACT);
	json_decref(req);
	ret = client_call_retry(ctx, text, resp, CLIENT_RETRIES);
	free(text);
	return ret;
}

/* saved: the request text (borrowed) */
static int client_call_retry(const struct cli_ctx *ctx, const char *saved, json_t **resp, int retries_left)
{
	char *home = cli_home(ctx), *line, *buf = NULL;
	const char *why;
	size_t len = 0, off = 0;
	int fd = connect_home(home, &why), ret = EXIT_FAILED;
	json_error_t jerr;
	json_t *r = NULL;

	*resp = NULL;
	if (fd < 0) {
		fprintf(stderr, "error: gantry serve is %s for %s (start it with 'gantry serve', "
			"or point --home/GANTRY_HOME at its state directory)\n", why ? why : "not reachable", home);
		free(home);
		return EXIT_FAILED;
	}
	line = xasprintf("%s\n", saved);
	len = strlen(line);
	while (off < len) {
		ssize_t w = write(fd, line + off, len - off);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			fprintf(stderr, "error: talking to gantry serve: %s\n", strerror(errno));
			goto out;
		}
		off += (size_t)w;
	}
	len = 0;
	for (;;) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		ssize_t n;
		int pr = poll(&p, 1, CLIENT_TIMEOUT_MS);
		if (pr == 0) {
			fprintf(stderr, "error: gantry serve did not answer within %ds\n", CLIENT_TIMEOUT_MS / 1000);
			goto out;
		}
		if (pr < 0 && errno == EINTR)
			continue;
		buf = xrealloc(buf, len + 65536 + 1);
		n = read(fd, buf + len, 65536);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		len += (size_t)n;
		if (len > CLIENT_MAX_REPLY) {
			fprintf(stderr, "error: reply from gantry serve is too large\n");
			goto out;
		}
	}
	r = buf ? json_loadb(buf, len, 0, &jerr) : NULL;
	if (!r || !json_is_object(r)) {
		fprintf(stderr, "error: gantry serve sent a malformed reply\n");
		goto out;
	}
	if (!json_is_true(json_object_get(r, "ok")) && json_is_true(json_object_get(r, "retry")) &&
	    retries_left > 0) {
		/* the daemon is restoring its desired state after a start: wait */
		if (retries_left == CLIENT_RETRIES)
			fprintf(stderr, "%s: waiting...\n", json_string_value(json_object_get(r, "error")));
		json_decref(r);
		free(buf);
		free(line);
		free(home);
		close(fd);
		usleep(250000);
		return client_call_retry(ctx, saved, resp, retries_left - 1);
	}
	if (!json_is_true(json_object_get(r, "ok"))) {
		json_t *code = json_object_get(r, "code");
		fprintf(stderr, "error: %s\n", json_string_value(json_object_get(r, "error"))
			? json_string_value(json_object_get(r, "error")) : "request failed");
		ret = json_is_integer(code) ? (int)json_integer_value(code) : EXIT_FAILED;
		goto out;
	}
	*resp = r;
	r = NULL;
	ret = EXIT_OK;
out:
	json_decref(r);
	free(buf);
	free(line);
	free(home);
	close(fd);
	return ret;
}

int client_wait_rollout(const struct cli_ctx *ctx, const char *svc, const char *env,
			json_int_t id, int64_t timeout_ms)
{
	int64_t deadline = now_ms() + timeout_ms;
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
		if (now_ms() > deadline) {
			fprintf(stderr, "error: rollout %lld still progressing after the --timeout; it continues "
				"(see 'gantry status %s --env %s')\n", (long long)id, svc, env);
			return EXIT_FAILED;
		}
		usleep(200000);
	}
}

int client_rollout_command(const char *op, int argc, char **argv, struct cli_ctx *ctx)
{
	const char *env = NULL, *reason = NULL, **pos;
	bool full = false;
	struct cli_opt opts[] = {
		{ "env", 'e', OPT_STRING, &env },
		{ "reason", 0, OPT_STRING, &reason },
		{ "full", 0, OPT_FLAG, &full },
		{ 0 },
	};
	json_t *req, *resp = NULL;
	int npos, ret;

	if (strcmp(op, "resume"))
		opts[2] = (struct cli_opt){ 0 };
	if (cli_parse(argc, argv, opts, ctx, &pos, &npos) < 0)
		return EXIT_USAGE;
	if ((ret = client_need_svc_env(op, pos, npos, env)))
		goto out;
	req = json_pack("{s:s, s:s, s:s, s:s, s:b}", "op", op, "service", pos[0], "environment", env,
			"deployed_by", client_user(), "full", full);
	if (reason)
		json_object_set_new(req, "reason", json_string(reason));
	if ((ret = client_call(ctx, req, &resp)))
		goto out;
	if (ctx->json) {
		char *s = json_dumps(resp, JSON_COMPACT);
		printf("%s\n", s);
		free(s);
	} else {
		printf("%s@%s: rollout %s: %s\n", pos[0], env, json_string_value(json_object_get(resp, "phase")),
		       json_string_value(json_object_get(resp, "message")));
	}
out:
	json_decref(resp);
	if (npos)
		free(pos);
	return ret;
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
