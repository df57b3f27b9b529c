#include "common.h"
#include "cli/cli.h"

static int run(int argc, char **argv, struct cli_ctx *ctx)
{
	if (cli_parse_opts(ctx->cmd, argc, argv, ctx, NULL) < 0)
		return EXIT_USAGE;
	if (ctx->json)
		printf("{\"version\":\"%s\"}\n", GANTRY_VERSION);
	else
		printf("gantry %s\n", GANTRY_VERSION);
	return EXIT_OK;
}

const struct cli_cmd cli_cmd_version = {
	.name = "version",
	.usage = "gantry version [-o json]",
	.summary = "print gantry's version",
	.run = run,
};
