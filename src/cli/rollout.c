/*
 * gantry pause | resume [--full] | abort SERVICE --env ENV [--reason TEXT]:
 * the commands that steer a running rollout, one shape with a verb (the
 * command's name is the API operation).
 */
#include "common.h"
#include "cli/client.h"

struct steer_opts {
	const char *env, *reason;
	bool full;
};

static int run(int argc, char **argv, struct cli_ctx *ctx)
{
	const char *op = ctx->cmd->name;
	struct steer_opts o = { 0 };
	json_t *req, *resp = NULL;
	int ret;

	if ((ret = client_parse_target(ctx, argc, argv, &o, &o.env)))
		return ret;
	req = json_pack("{s:s, s:s, s:s, s:s, s:b}", "op", op, "service", argv[0], "environment", o.env,
			"deployed_by", client_user(), "full", o.full);
	client_req_str(req, "reason", o.reason);
	if ((ret = client_call(ctx, req, &resp)))
		return ret;
	if (ctx->json)
		client_print_line(resp);
	else
		printf("%s@%s: rollout %s: %s\n", argv[0], o.env, json_string_value(json_object_get(resp, "phase")),
		       json_string_value(json_object_get(resp, "message")));
	json_decref(resp);
	return EXIT_OK;
}

static const struct cli_option steer_options[] = {
	CLI_STRING('e', "env", struct steer_opts, env, "ENV", "the environment of the rollout"),
	CLI_STRING(0, "reason", struct steer_opts, reason, "TEXT", "why, for the events and the audit log"),
	CLI_END,
};

static const struct cli_option resume_options[] = {
	CLI_STRING('e', "env", struct steer_opts, env, "ENV", "the environment of the rollout"),
	CLI_BOOL(0, "full", struct steer_opts, full, "skip the remaining steps: promote now"),
	CLI_STRING(0, "reason", struct steer_opts, reason, "TEXT", "why, for the events and the audit log"),
	CLI_END,
};

const struct cli_cmd cli_cmd_pause = {
	.name = "pause",
	.usage = "gantry pause SERVICE --env ENV [--reason TEXT]",
	.summary = "hold a canary or blue-green rollout where it is",
	.options = steer_options,
	.run = run,
};

const struct cli_cmd cli_cmd_resume = {
	.name = "resume",
	.usage = "gantry resume SERVICE --env ENV [--full] [--reason TEXT]",
	.summary = "continue a paused rollout (--full: skip the remaining steps, promote)",
	.options = resume_options,
	.run = run,
};

const struct cli_cmd cli_cmd_abort = {
	.name = "abort",
	.usage = "gantry abort SERVICE --env ENV [--reason TEXT]",
	.summary = "stop a rollout: all traffic back on the stable revision",
	.options = steer_options,
	.run = run,
};
