/*
 * secret_tools.h — the plumbing subcommands of `gantry secret` over the
 * age and SOPS formats (src/secrets/): keygen, encrypt, decrypt,
 * sops-encrypt, sops-decrypt. They work on files and pipes only: no
 * controller, no home.
 *
 * The owner of `gantry secret` (src/cli/secret.c) calls cmd_secret_tools
 * BEFORE parsing any option, with argv[0] the subcommand's name and the
 * rest of its arguments unparsed; it returns the exit code, or -2 when
 * argv[0] is not one of its subcommands (nothing printed then).
 */
#ifndef GANTRY_CLI_SECRET_TOOLS_H
#define GANTRY_CLI_SECRET_TOOLS_H
#include "common.h"
#include "cli/cli.h"

int cmd_secret_tools(int argc, char **argv);

/* the options of the subcommands but -o OUT (for the help of `gantry secret -h`), ended by CLI_END */
extern const struct cli_option secret_tools_options[];
/* the usage lines of the subcommands, one a line */
extern const char secret_tools_usage[];

/* until src/cli/secret.c exists: `gantry secret` runs only these subcommands */
extern const struct cli_cmd cli_cmd_secret_tools_tmp;

#endif
