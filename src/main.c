/*
 * main.c — global flags, look up argv[1] in the command table, nothing else.
 */
#include "common.h"
#include "cli/cli.h"
#include "runtime/runtime.h"

int main(int argc, char **argv)
{
	struct cli_ctx ctx = { 0 };
	const struct cli_cmd *cmd;
	int i = 1;

	/* hidden: the first step of every replica (see runtime_spawn) */
	if (argc > 1 && !strcmp(argv[1], "__exec"))
		return runtime_exec_main(argc - 1, argv + 1);
	/* global flags may come before the subcommand too */
	while (i < argc && argv[i][0] == '-') {
		const char *a = argv[i];
		if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
			cli_usage(stdout);
			return EXIT_OK;
		} else if (!strcmp(a, "--version")) {
			printf("gantry %s\n", GANTRY_VERSION);
			return EXIT_OK;
		} else if ((!strcmp(a, "-f") || !strcmp(a, "--home") || !strcmp(a, "-o")) && i + 1 < argc) {
			if (a[1] == 'f')
				ctx.spec_path = argv[i + 1];
			else if (a[1] == 'o') {
				if (strcmp(argv[i + 1], "json") && strcmp(argv[i + 1], "table"))
					return cli_error("-o: unknown output format '%s' (use table or json)", argv[i + 1]);
				ctx.json = !strcmp(argv[i + 1], "json");
			} else
				ctx.home = argv[i + 1];
			i += 2;
		} else {
			return cli_error("%s: unknown global flag (see 'gantry --help')", a);
		}
	}
	if (i >= argc) {
		cli_usage(stderr);
		return EXIT_USAGE;
	}
	cmd = cli_lookup(argv[i]);
	if (!cmd)
		return cli_error("'%s' is not a gantry command (see 'gantry --help')", argv[i]);
	return cmd->run(argc - i, argv + i, &ctx);
}
