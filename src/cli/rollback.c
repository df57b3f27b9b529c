#include "common.h"
#include "cli/client.h"
#include "util/parse.h"

/* rollback and restart share everything but the operation */
static int run_op(const char *op, int argc, char **argv, struct cli_ctx *ctx)
{
	const char *env = NULL, *to = NULL, *timeout = NULL, **pos;
	bool wait = false;
	struct cli_opt ropts[] = {
		{ "env", 'e', OPT_STRING, &env },
		{ "to-revision", 0, OPT_STRING, &to },
		{ "wait", 'w', OPT_FLAG, &wait },
		{ "timeout", 0, OPT_STRING, &timeout },
		{ 0 },
	};
	json_t *req, *resp = NULL;
	int64_t timeout_ms = 15 * 60 * 1000;
	int npos, ret;
	char *end;

	if (!strcmp(op, "restart"))
		ropts[1] = (struct cli_opt){ "wait", 'w', OPT_FLAG, &wait };
	if (cli_parse(argc, argv, ropts, ctx, &pos, &npos) < 0)
		return EXIT_USAGE;
	if ((ret = client_need_svc_env(op, pos, npos, env)))
		goto out;
	if (timeout && parse_duration_ms(timeout, &timeout_ms) < 0) {
		ret = cli_error("--timeout: invalid duration '%s'", timeout);
		goto out;
	}
	req = json_pack("{s:s, s:s, s:s, s:s}", "op", op, "service", pos[0], "environment", env,
			"deployed_by", client_user());
	if (to) {
		long n = strtol(to, &end, 10);
		if (*end || n <= 0 || n > INT_MAX) {
			json_decref(req);
			ret = cli_error("--to-revision: '%s' is not a revision number", to);
			goto out;
		}
		json_object_set_new(req, "to_revision", json_integer(n));
	}
	if ((ret = client_call(ctx, req, &resp)))
		goto out;
	if (json_is_true(json_object_get(resp, "warm"))) {
		/* the previous revision was still warm: the switch is done already */
		if (ctx->json) {
			char *s = json_dumps(resp, JSON_COMPACT);
			printf("%s\n", s);
			free(s);
		} else {
			printf("%s@%s: traffic is back on revision %lld (its replicas were still warm)\n", pos[0], env,
			       (long long)json_integer_value(json_object_get(resp, "revision")));
		}
		goto out;
	}
	if (ctx->json && !wait) {
		char *s = json_dumps(resp, JSON_COMPACT);
		printf("%s\n", s);
		free(s);
	} else if (!ctx->json) {
		printf("%s %s@%s: revision %lld (version %s), rollout %lld\n",
		       !strcmp(op, "rollback") ? "rolling back" : "restarting", pos[0], env,
		       (long long)json_integer_value(json_object_get(resp, "revision")),
		       json_string_value(json_object_get(resp, "version")),
		       (long long)json_integer_value(json_object_get(resp, "rollout")));
	}
	fflush(stdout);
	if (wait)
		ret = client_wait_rollout(ctx, pos[0], env, json_integer_value(json_object_get(resp, "rollout")),
					  timeout_ms);
out:
	json_decref(resp);
	if (npos)
		free(pos);
	return ret;
}

static int run_rollback(int argc, char **argv, struct cli_ctx *ctx)
{
	return run_op("rollback", argc, argv, ctx);
}

static int run_restart(int argc, char **argv, struct cli_ctx *ctx)
{
	return run_op("restart", argc, argv, ctx);
}

const struct cli_cmd cli_cmd_rollback = {
	.name = "rollback",
	.usage = "gantry rollback SERVICE --env ENV [--to-revision N] [--wait] [--timeout DUR]",
	.summary = "roll back to the previous (or a given) revision's exact artifact and config",
	.run = run_rollback,
};

const struct cli_cmd cli_cmd_restart = {
	.name = "restart",
	.usage = "gantry restart SERVICE --env ENV [--wait] [--timeout DUR]",
	.summary = "replace every replica, one rolling step at a time",
	.run = run_restart,
};
