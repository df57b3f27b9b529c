/*
 * gantry rollback SERVICE --env ENV [--to-revision N] [--wait] [--timeout DUR]
 * gantry restart SERVICE --env ENV [--wait] [--timeout DUR]
 * One shape with a verb: a new revision from a stored one (rollback: the
 * previous or N's artifact and config; restart: the current one's),
 * rolled out. The command's name is the API operation.
 */
#include "common.h"
#include "cli/client.h"
#include "cli/pullwait.h"
#include "cli/gates_cli.h"

struct rollback_opts {
	const char *env, *schema;
	long to_revision;
	bool wait;
	int64_t timeout_ms;
};

static int run(int argc, char **argv, struct cli_ctx *ctx)
{
	const char *op = ctx->cmd->name;
	struct rollback_opts o = { .timeout_ms = 15 * 60 * 1000 };
	json_t *req, *resp = NULL;
	int ret;

	if ((ret = client_parse_target(ctx, argc, argv, &o, &o.env)))
		return ret;
	req = json_pack("{s:s, s:s, s:s, s:s}", "op", op, "service", argv[0], "environment", o.env,
			"deployed_by", client_user());
	if (o.to_revision)
		json_object_set_new(req, "to_revision", json_integer(o.to_revision));
	if (o.schema && strcmp(o.schema, "keep") && strcmp(o.schema, "restore")) {
		json_decref(req);
		return cli_error("--schema: '%s' is not keep or restore", o.schema);
	}
	client_req_str(req, "schema", o.schema);
	if ((ret = client_call(ctx, req, &resp)))
		return ret;
	/* its image lost by the Engine: pulled first (nothing changes if it cannot be),
	 * then its down-migrations: waited for, as a deploy's */
	if ((ret = cli_pull_follow(ctx, argv[0], o.env, resp)) ||
	    (ret = gates_cli_deploy_started(ctx, argv[0], o.env, resp)))
		goto out;
	if (json_is_true(json_object_get(resp, "warm"))) {
		/* the previous revision was still warm: the switch is done already */
		if (ctx->json)
			client_print_line(resp);
		else
			printf("%s@%s: traffic is back on revision %lld (its replicas were still warm)\n", argv[0], o.env,
			       (long long)json_integer_value(json_object_get(resp, "revision")));
		goto out;
	}
	if (ctx->json && !o.wait)
		client_print_line(resp);
	else if (!ctx->json)
		printf("%s %s@%s: revision %lld (version %s), rollout %lld\n",
		       ctx->cmd == &cli_cmd_rollback ? "rolling back" : "restarting", argv[0], o.env,
		       (long long)json_integer_value(json_object_get(resp, "revision")),
		       json_string_value(json_object_get(resp, "version")),
		       (long long)json_integer_value(json_object_get(resp, "rollout")));
	fflush(stdout);
	if (o.wait)
		ret = client_wait_rollout(ctx, argv[0], o.env, json_integer_value(json_object_get(resp, "rollout")),
					  o.timeout_ms);
out:
	json_decref(resp);
	return ret;
}

static const struct cli_option rollback_options[] = {
	CLI_STRING('e', "env", struct rollback_opts, env, "ENV", "the environment"),
	CLI_INT(0, "to-revision", struct rollback_opts, to_revision, "N", 1, INT_MAX,
		"revision N's artifact and config (default the one that served before)"),
	CLI_STRING(0, "schema", struct rollback_opts, schema, "keep|restore",
		   "keep: the newer schema stays (no downs); restore: the snapshot taken before the current revision's migrations"),
	CLIENT_WAIT_OPTIONS(struct rollback_opts, "--wait at most this long (default 15m)"),
	CLI_END,
};

static const struct cli_option restart_options[] = {
	CLI_STRING('e', "env", struct rollback_opts, env, "ENV", "the environment"),
	CLIENT_WAIT_OPTIONS(struct rollback_opts, "--wait at most this long (default 15m)"),
	CLI_END,
};

const struct cli_cmd cli_cmd_rollback = {
	.name = "rollback",
	.usage = "gantry rollback SERVICE --env ENV [--to-revision N] [--schema keep|restore] [--wait] [--timeout DUR]",
	.summary = "roll back to the previous (or a given) revision's exact artifact and config",
	.options = rollback_options,
	.run = run,
};

const struct cli_cmd cli_cmd_restart = {
	.name = "restart",
	.usage = "gantry restart SERVICE --env ENV [--wait] [--timeout DUR]",
	.summary = "replace every replica, one rolling step at a time",
	.options = restart_options,
	.run = run,
};
