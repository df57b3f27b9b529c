#include "common.h"
#include "cli/client.h"

static int run(int argc, char **argv, struct cli_ctx *ctx)
{
	return client_rollout_command("abort", argc, argv, ctx);
}

const struct cli_cmd cli_cmd_abort = {
	.name = "abort",
	.usage = "gantry abort SERVICE --env ENV [--reason TEXT]",
	.summary = "stop a rollout: all traffic back on the stable revision",
	.run = run,
};
