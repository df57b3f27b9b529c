/*
 * gantry upgrade — replace the running controller and its proxy with the
 * gantry binary now on disk, without a refused connection (daemon/upgrade.c).
 */
#include "common.h"
#include "cli/client.h"
#include "util/clock.h"

struct upgrade_opts {
	int64_t timeout_ms;
};

static int run(int argc, char **argv, struct cli_ctx *ctx)
{
	struct upgrade_opts o = { .timeout_ms = 60000 };
	json_t *req, *resp = NULL;
	int ret, npos;
	int old_pid, new_pid;
	char binary[PATH_MAX];
	int64_t deadline;

	if ((npos = cli_parse_opts(ctx->cmd, argc, argv, ctx, &o)) < 0)
		return EXIT_USAGE;
	if (npos)
		return cli_error("gantry upgrade: unexpected argument '%s'", argv[0]);
	req = json_pack("{s:s}", "op", "upgrade");
	if ((ret = client_call(ctx, req, &resp)))
		return ret;
	old_pid = (int)json_integer_value(json_object_get(resp, "old_pid"));
	new_pid = (int)json_integer_value(json_object_get(resp, "new_pid"));
	strlcpy_g(binary, json_string_value(json_object_get(resp, "binary")) ?
		  json_string_value(json_object_get(resp, "binary")) : "?", sizeof(binary));
	json_decref(resp);
	if (!ctx->json)
		printf("upgrading: gantry serve pid %d is starting %s as pid %d\n", old_pid, binary, new_pid);
	fflush(stdout);
	/* whoever answers ping says how it went: the new controller, or the
	 * old one saying why the new one did not take over */
	deadline = clock_mono_ms() + o.timeout_ms;
	while (clock_mono_ms() < deadline) {
		json_t *up;
		int pid;
		usleep(100000);
		if (client_call(ctx, json_pack("{s:s}", "op", "ping"), &resp))
			continue;
		pid = (int)json_integer_value(json_object_get(resp, "pid"));
		up = json_object_get(resp, "upgrade");
		if (pid == new_pid) {
			const char *v = json_string_value(json_object_get(resp, "version"));
			if (ctx->json)
				printf("{\"upgraded\":true,\"old_pid\":%d,\"new_pid\":%d,\"version\":\"%s\"}\n", old_pid,
				       new_pid, v ? v : "");
			else
				printf("upgraded: gantry serve is pid %d (gantry %s); pid %d handed over and exited\n",
				       new_pid, v ? v : "?", old_pid);
			json_decref(resp);
			return EXIT_OK;
		}
		if (pid == old_pid && up && !strcmp(json_string_value(json_object_get(up, "state")) ?: "", "failed")) {
			const char *e = json_string_value(json_object_get(up, "error"));
			if (ctx->json)
				printf("{\"upgraded\":false,\"old_pid\":%d,\"new_pid\":%d}\n", old_pid, new_pid);
			fprintf(stderr, "error: the new controller (pid %d) did not take over: %s; gantry serve pid %d "
				"goes on with the binary it runs\n", new_pid, e ? e : "?", old_pid);
			json_decref(resp);
			return EXIT_FAILED;
		}
		json_decref(resp);
	}
	fprintf(stderr, "error: no answer from the new controller (pid %d) within --timeout; see gantry serve's log\n",
		new_pid);
	return EXIT_FAILED;
}

static const struct cli_option upgrade_options[] = {
	CLI_DURATION(0, "timeout", struct upgrade_opts, timeout_ms, "DUR", 1, 0,
		     "wait at most this long for the new controller (default 60s)"),
	CLI_END,
};

const struct cli_cmd cli_cmd_upgrade = {
	.name = "upgrade",
	.usage = "gantry upgrade [--timeout DUR] [-o json]",
	.summary = "replace the running controller and proxy with the gantry binary on disk, dropping nothing",
	.options = upgrade_options,
	.run = run,
};
