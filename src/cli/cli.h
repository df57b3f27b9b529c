/*
 * cli.h — the subcommand table.
 *
 * Adding a command:
 *   1. src/cli/NAME.c exporting `const struct cli_cmd cli_cmd_NAME`
 *   2. a row in the table in src/cli/cli.c
 *   3. a section in docs/gantry.1.md and in docs/api.md if it talks to the daemon
 *   4. an e2e test in tests/e2e/
 */
#ifndef GANTRY_CLI_H
#define GANTRY_CLI_H
#include "common.h"

/* exit codes: enum gantry_exit in common.h (the API's "code" is the same) */

/* global flags, shared by every command */
struct cli_ctx {
	const char *spec_path; /* -f FILE; default ./gantry.yaml */
	const char *home;      /* --home DIR, GANTRY_HOME; default .gantry beside the spec */
	bool json;             /* -o json */
};

enum cli_opt_kind { OPT_FLAG, OPT_STRING, OPT_MULTI };

struct cli_opt {
	const char *name;  /* long name without dashes */
	char short_name;   /* 0 if none */
	enum cli_opt_kind kind;
	void *value;       /* bool*, const char**, or struct cli_multi* */
};

struct cli_multi {
	const char **items;
	size_t n;
};

/*
 * Parses argv (argv[0] is the command name) against opts plus the global
 * flags. Positional arguments are left in pos[] (borrowed from argv).
 * Returns 0, or prints "error: ..." naming the flag and returns -1.
 */
int cli_parse(int argc, char **argv, const struct cli_opt *opts,
	      struct cli_ctx *ctx, const char ***pos, int *npos);

struct cli_cmd {
	const char *name;
	const char *usage;
	const char *summary;
	int (*run)(int argc, char **argv, struct cli_ctx *ctx);
};

const struct cli_cmd *cli_lookup(const char *name);
void cli_usage(FILE *f);
int cli_error(const char *fmt, ...) PRINTF_LIKE(1, 2); /* prints, returns EXIT_USAGE */

/* Resolve spec path and home dir. Returned strings owned by caller. */
char *cli_spec_path(const struct cli_ctx *ctx);
char *cli_home(const struct cli_ctx *ctx);

extern const struct cli_cmd cli_cmd_init, cli_cmd_validate, cli_cmd_serve,
	cli_cmd_deploy, cli_cmd_status, cli_cmd_history, cli_cmd_events,
	cli_cmd_rollback, cli_cmd_scale, cli_cmd_restart, cli_cmd_logs,
	cli_cmd_proxy, cli_cmd_traffic, cli_cmd_pause, cli_cmd_resume, cli_cmd_abort, cli_cmd_version;
/* gates and records (src/gates, src/records) */
extern const struct cli_cmd cli_cmd_apply, cli_cmd_diff, cli_cmd_spec;
extern const struct cli_cmd cli_cmd_promote, cli_cmd_approve, cli_cmd_reject, cli_cmd_incident,
	cli_cmd_audit, cli_cmd_dora, cli_cmd_checklist, cli_cmd_user;

#endif
