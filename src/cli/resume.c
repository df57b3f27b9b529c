#include "common.h"
#include "cli/client.h"

static int run(int argc, char **argv, struct cli_ctx *ctx)
{
	return client_rollout_command("resume", argc, argv, ctx);
}

const struct cli_cmd cli_cmd_resume = {
	.name = "resume",
	.usage = "gantry resume SERVICE --env ENV [--full] [--reason TEXT]",
	.summary = "continue a paused rollout (--full: skip the remaining steps, promote)",
	.run = run,
};
