/*
 * main.c — global flags, look up argv[1] in the command table, nothing else.
 */
#include "common.h"
#include "cli/cli.h"
#include "runtime/runtime.h"

int main(int argc, char **argv)
{
	struct cli_ctx ctx = { 0 };
	int i;

	/* hidden: the first step of every replica (see runtime_spawn) */
	if (argc > 1 && !strcmp(argv[1], "__exec"))
		return runtime_exec_main(argc - 1, argv + 1);
	/* global flags may come before the command too (-h, --help and --version only there) */
	i = cli_parse_global(argc, argv, &ctx);
	if (i < 0)
		return EXIT_USAGE;
	if (i >= argc) {
		cli_usage(stderr);
		return EXIT_USAGE;
	}
	ctx.cmd = cli_lookup(argv[i]);
	if (!ctx.cmd)
		return cli_error("'%s' is not a gantry command (see 'gantry --help')", argv[i]);
	return ctx.cmd->run(argc - i, argv + i, &ctx);
}
