#include "common.h"
#include "cli/cli.h"
#include <sys/stat.h>

/* the command table: one row per src/cli/NAME.c */
static const struct cli_cmd *const commands[] = {
	&cli_cmd_init,
	&cli_cmd_validate,
	&cli_cmd_serve,
	&cli_cmd_apply,
	&cli_cmd_diff,
	&cli_cmd_spec,
	&cli_cmd_deploy,
	&cli_cmd_status,
	&cli_cmd_history,
	&cli_cmd_events,
	&cli_cmd_nodes,
	&cli_cmd_rollback,
	&cli_cmd_scale,
	&cli_cmd_release,
	&cli_cmd_restart,
	&cli_cmd_logs,
	&cli_cmd_traffic,
	&cli_cmd_maintenance,
	&cli_cmd_flag,
	&cli_cmd_pause,
	&cli_cmd_resume,
	&cli_cmd_abort,
	&cli_cmd_promote,
	&cli_cmd_deployments,
	&cli_cmd_approve,
	&cli_cmd_reject,
	&cli_cmd_incident,
	&cli_cmd_audit,
	&cli_cmd_dora,
	&cli_cmd_checklist,
	&cli_cmd_user,
	&cli_cmd_secret,
	&cli_cmd_proxy,
	&cli_cmd_version,
	&cli_cmd_upgrade,
	&cli_cmd_db,
};

const struct cli_cmd *cli_lookup(const char *name)
{
	for (size_t i = 0; i < ARRAY_SIZE(commands); i++)
		if (!strcmp(commands[i]->name, name))
			return commands[i];
	return NULL;
}

void cli_usage(FILE *f)
{
	fprintf(f, "usage: gantry [-f FILE] [--home DIR] [-o table|json] COMMAND [ARGS]\n\n"
		   "commands:\n");
	for (size_t i = 0; i < ARRAY_SIZE(commands); i++)
		fprintf(f, "  %-10s %s\n", commands[i]->name, commands[i]->summary);
	fprintf(f, "\nexit codes: 0 ok, 1 operation failed, 2 usage or invalid input, 3 refused by a gate\n");
}

int cli_error(const char *fmt, ...)
{
	va_list ap;
	fputs("error: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return EXIT_USAGE;
}

char *cli_spec_path(const struct cli_ctx *ctx)
{
	return xstrdup(ctx->spec_path ? ctx->spec_path : "gantry.yaml");
}

char *cli_home(const struct cli_ctx *ctx)
{
	const char *h = ctx->home ? ctx->home : getenv("GANTRY_HOME");
	char *spec, *slash, *home;
	if (h && *h)
		return xstrdup(h);
	spec = cli_spec_path(ctx);
	slash = strrchr(spec, '/');
	if (slash) {
		*slash = 0;
		home = xasprintf("%s/.gantry", spec);
	} else {
		home = xstrdup(".gantry");
	}
	free(spec);
	return home;
}
