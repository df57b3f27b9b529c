#include "common.h"
#include "cli/client.h"

static int run(int argc, char **argv, struct cli_ctx *ctx)
{
	return client_rollout_command("pause", argc, argv, ctx);
}

const struct cli_cmd cli_cmd_pause = {
	.name = "pause",
	.usage = "gantry pause SERVICE --env ENV [--reason TEXT]",
	.summary = "hold a canary or blue-green rollout where it is",
	.run = run,
};
