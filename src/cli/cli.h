/*
 * cli.h — the subcommand table and the option parser every command uses.
 *
 * Adding a command:
 *   1. src/cli/NAME.c exporting `const struct cli_cmd cli_cmd_NAME`, its
 *      options a table in that entry (`gantry NAME -h` lists them)
 *   2. a row in the table in src/cli/cli.c
 *   3. a section in docs/gantry.1.md and in docs/api.md if it talks to the daemon
 *   4. an e2e test in tests/e2e/
 */
#ifndef GANTRY_CLI_H
#define GANTRY_CLI_H
#include "common.h"

/* exit codes: enum gantry_exit in common.h (the API's "code" is the same) */

struct cli_cmd;

/*
 * The global flags, shared by every command: before the command
 * (cli_parse_global) or after it (cli_parse_opts), one table (opts.c).
 */
struct cli_ctx {
	const char *spec_path;      /* -f FILE, --file FILE; default ./gantry.yaml */
	const char *home;           /* --home DIR, GANTRY_HOME; default .gantry beside the spec */
	bool json;                  /* -o json, --output json */
	const struct cli_cmd *cmd;  /* the command being run (main.c) */
};

/* ---- options: a table per command, one parser (src/cli/opts.c) ---- */

enum cli_opt_type {
	OPT_BOOL,       /* bool: true when given; takes no value */
	OPT_STRING,     /* const char *: the value, borrowed from argv; the last one given wins */
	OPT_MULTI,      /* struct cli_multi: every value given, in order */
	OPT_INT,        /* long, a decimal number from min to max */
	OPT_DURATION,   /* int64_t milliseconds ("90s", "10m": parse_duration_ms), from min to max */
	OPT_CALLBACK,   /* cb(o, flag, value, dest) stores it */
};

struct cli_multi {
	const char **items; /* owned (free), the strings borrowed from argv */
	size_t n;
};

struct cli_option {
	const char *long_name;      /* without the dashes; NULL ends a table */
	char short_name;            /* 0 if none */
	enum cli_opt_type type;
	size_t offset;              /* where it is stored, in the command's options struct */
	const char *argh;           /* the value's name in -h ("ENV", "DUR"); NULL for OPT_BOOL */
	const char *help;           /* one line for -h */
	int64_t min, max;           /* OPT_INT, OPT_DURATION (ms): the accepted range; max 0: no upper bound */
	/* OPT_CALLBACK: stores value (borrowed) at dest; -1 after printing the error naming flag */
	int (*cb)(const struct cli_option *o, const char *flag, const char *value, void *dest);
};

/*
 * A row for field F of the options struct ST (F's type is checked at
 * compile time): short name S (0 for none), long name L, the value's name
 * A in -h, the one-line help H, and for numbers the range LO..HI.
 */
#define CLI_FIELD(st, f, type) \
	(offsetof(st, f) + 0 * sizeof(char[1 - 2 * !__builtin_types_compatible_p(__typeof__(((st *)0)->f), type)]))
#define CLI_BOOL(s, l, st, f, h) \
	{ .long_name = (l), .short_name = (s), .type = OPT_BOOL, .offset = CLI_FIELD(st, f, bool), .help = (h) }
#define CLI_STRING(s, l, st, f, a, h) \
	{ .long_name = (l), .short_name = (s), .type = OPT_STRING, .offset = CLI_FIELD(st, f, const char *), \
	  .argh = (a), .help = (h) }
#define CLI_MULTI(s, l, st, f, a, h) \
	{ .long_name = (l), .short_name = (s), .type = OPT_MULTI, .offset = CLI_FIELD(st, f, struct cli_multi), \
	  .argh = (a), .help = (h) }
#define CLI_INT(s, l, st, f, a, lo, hi, h) \
	{ .long_name = (l), .short_name = (s), .type = OPT_INT, .offset = CLI_FIELD(st, f, long), .argh = (a), \
	  .help = (h), .min = (lo), .max = (hi) }
#define CLI_DURATION(s, l, st, f, a, lo, hi, h) \
	{ .long_name = (l), .short_name = (s), .type = OPT_DURATION, .offset = CLI_FIELD(st, f, int64_t), \
	  .argh = (a), .help = (h), .min = (lo), .max = (hi) }
#define CLI_END { .long_name = NULL }

/*
 * Parses argv (argv[0] is the command's name) against cmd->options, which
 * store into opts (the command's options struct: caller's storage, holding
 * the defaults), and the global flags, which store into ctx. Flags and
 * positional arguments mix; "--" ends the flags. A flag's value is
 * "--name=V", "--name V", "-xV" or "-x V". -h or --help prints the
 * command's help on stdout and exits 0.
 *
 * Returns the number of positional arguments, moved in order to the front
 * of argv (argv[0] is the first one then; the strings are borrowed), or
 * -1 after printing the error naming the flag ("error: --replicas: 'x' is
 * not a number from 0 to 1000"): the caller exits with EXIT_USAGE.
 */
int cli_parse_opts(const struct cli_cmd *cmd, int argc, char **argv, struct cli_ctx *ctx, void *opts);

/*
 * The global flags before the command: stores them into ctx and returns
 * the index in argv of the command's name (argc when there is none), or
 * -1 after printing the error. -h, --help (the list of commands) and
 * --version print on stdout and exit 0.
 */
int cli_parse_global(int argc, char **argv, struct cli_ctx *ctx);

/* the help of `gantry CMD -h`: usage, summary, the options, the global flags */
void cli_print_help(const struct cli_cmd *cmd, FILE *f);

struct cli_cmd {
	const char *name;
	const char *usage;
	const char *summary;
	const struct cli_option *options; /* ended by CLI_END; NULL: none */
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
	cli_cmd_rollback, cli_cmd_scale, cli_cmd_release, cli_cmd_restart, cli_cmd_logs,
	cli_cmd_proxy, cli_cmd_traffic, cli_cmd_pause, cli_cmd_resume, cli_cmd_abort, cli_cmd_version, cli_cmd_upgrade;
/* gates and records (src/gates, src/records) */
extern const struct cli_cmd cli_cmd_apply, cli_cmd_diff, cli_cmd_spec, cli_cmd_deployments;
extern const struct cli_cmd cli_cmd_promote, cli_cmd_approve, cli_cmd_reject, cli_cmd_incident,
	cli_cmd_audit, cli_cmd_dora, cli_cmd_checklist, cli_cmd_user, cli_cmd_secret;
/* maintenance mode (daemon/maintenance.h) */
extern const struct cli_cmd cli_cmd_maintenance;
/* database migrations (src/migrate, daemon/migrations.c) */
extern const struct cli_cmd cli_cmd_db;
/* fleets (daemon/swarmrt.h) */
extern const struct cli_cmd cli_cmd_nodes;
/* feature flags (daemon/flags.h) */
extern const struct cli_cmd cli_cmd_flag;

#endif
