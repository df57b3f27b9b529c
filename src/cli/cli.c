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
	&cli_cmd_rollback,
	&cli_cmd_scale,
	&cli_cmd_restart,
	&cli_cmd_logs,
	&cli_cmd_traffic,
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
	&cli_cmd_proxy,
	&cli_cmd_version,
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

static const struct cli_opt *find_opt(const struct cli_opt *opts, const char *lname, char sname)
{
	for (; opts && opts->name; opts++)
		if ((lname && !strcmp(opts->name, lname)) || (sname && opts->short_name == sname))
			return opts;
	return NULL;
}

static int set_opt(const struct cli_opt *o, const char *flag, const char *val)
{
	switch (o->kind) {
	case OPT_FLAG:
		if (val) {
			cli_error("%s: takes no value", flag);
			return -1;
		}
		*(bool *)o->value = true;
		return 0;
	case OPT_STRING:
		*(const char **)o->value = val;
		return 0;
	case OPT_MULTI: {
		struct cli_multi *m = o->value;
		m->items = xrealloc(m->items, (m->n + 1) * sizeof(*m->items));
		m->items[m->n++] = val;
		return 0;
	}
	}
	return -1;
}

int cli_parse(int argc, char **argv, const struct cli_opt *opts,
	      struct cli_ctx *ctx, const char ***pos, int *npos)
{
	static const char *empty[1];
	const char **p = xcalloc((size_t)argc + 1, sizeof(*p));
	int n = 0;
	bool only_pos = false;

	for (int i = 1; i < argc; i++) {
		char *a = argv[i];
		const char *val = NULL;
		const struct cli_opt *o;
		char flag[128];

		if (only_pos || a[0] != '-' || !a[1]) {
			p[n++] = a;
			continue;
		}
		if (!strcmp(a, "--")) {
			only_pos = true;
			continue;
		}
		if (a[1] == '-') {
			const char *eq = strchr(a + 2, '=');
			size_t len = eq ? (size_t)(eq - (a + 2)) : strlen(a + 2);
			char name[96];
			if (len >= sizeof(name))
				len = sizeof(name) - 1;
			memcpy(name, a + 2, len);
			name[len] = 0;
			snprintf(flag, sizeof(flag), "--%s", name);
			if (eq)
				val = eq + 1;
			if (!strcmp(name, "home") || !strcmp(name, "file") || !strcmp(name, "output")) {
				if (!val && i + 1 < argc)
					val = argv[++i];
				if (!val)
					goto missing;
				if (name[0] == 'h')
					ctx->home = val;
				else if (name[0] == 'f')
					ctx->spec_path = val;
				else
					goto output;
				continue;
			}
			if (!strcmp(name, "help"))
				goto help;
			o = find_opt(opts, name, 0);
		} else {
			snprintf(flag, sizeof(flag), "-%c", a[1]);
			if (a[2])
				val = a + 2;
			if (a[1] == 'h' && !a[2])
				goto help;
			if (a[1] == 'f' || a[1] == 'o') {
				if (!val && i + 1 < argc)
					val = argv[++i];
				if (!val)
					goto missing;
				if (a[1] == 'f') {
					ctx->spec_path = val;
					continue;
				}
				goto output;
			}
			o = find_opt(opts, NULL, a[1]);
		}
		if (!o) {
			cli_error("%s: unknown option for 'gantry %s'", flag, argv[0]);
			goto fail;
		}
		if (o->kind != OPT_FLAG && !val) {
			if (i + 1 >= argc)
				goto missing;
			val = argv[++i];
		}
		if (set_opt(o, flag, val) < 0)
			goto fail;
		continue;
output:
		if (strcmp(val, "json") && strcmp(val, "table")) {
			cli_error("-o: unknown output format '%s' (use table or json)", val);
			goto fail;
		}
		ctx->json = !strcmp(val, "json");
		continue;
missing:
		cli_error("%s: needs a value", flag);
		goto fail;
	}
	*pos = n ? p : empty;
	if (!n)
		free(p);
	*npos = n;
	return 0;
help:
	{
		const struct cli_cmd *c = cli_lookup(argv[0]);
		if (c)
			printf("usage: %s\n\n%s\n", c->usage, c->summary);
		free(p);
		exit(EXIT_OK);
	}
fail:
	free(p);
	return -1;
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
