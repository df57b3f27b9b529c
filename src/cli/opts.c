/*
 * opts.c — the one option parser (cli.h): a command's table, then the
 * global flags' table, in one pass over argv (git's parse-options, tmux's
 * args). A command's options are declared in its table entry, so that
 * `gantry CMD -h` lists them from the same rows the parser reads.
 */
#include "common.h"
#include "cli/cli.h"
#include "util/parse.h"

static int set_output(const struct cli_option *o, const char *flag, const char *value, void *dest)
{
	(void)o;
	if (strcmp(value, "json") && strcmp(value, "table"))
		return cli_error("%s: unknown output format '%s' (use table or json)", flag, value), -1;
	*(bool *)dest = !strcmp(value, "json");
	return 0;
}

/* the global flags, into struct cli_ctx; -f, --home and -o are the canonical spellings */
static const struct cli_option global_options[] = {
	CLI_STRING('f', "file", struct cli_ctx, spec_path, "FILE", "the spec (default ./gantry.yaml)"),
	CLI_STRING(0, "home", struct cli_ctx, home, "DIR",
		   "the state directory (default $GANTRY_HOME, else .gantry beside the spec)"),
	{ .long_name = "output", .short_name = 'o', .type = OPT_CALLBACK, .offset = CLI_FIELD(struct cli_ctx, json, bool),
	  .argh = "table|json", .help = "the output of read commands", .cb = set_output },
	CLI_END,
};

/* a table and the struct its rows store into (at base + offset) */
struct optset {
	const struct cli_option *opts;
	void *base;
};

static const struct cli_option *find_long(const struct optset *sets, size_t nsets, const char *name, size_t len,
				       void **base)
{
	for (size_t s = 0; s < nsets; s++)
		for (const struct cli_option *o = sets[s].opts; o && o->long_name; o++)
			if (strlen(o->long_name) == len && !strncmp(o->long_name, name, len)) {
				*base = sets[s].base;
				return o;
			}
	return NULL;
}

/*
 * The first row with short name c, the command's before the global ones;
 * with a value attached ("-fFILE") the first that takes a value, so a
 * command's -f flag (events, logs: follow) leaves -fFILE to the spec.
 */
static const struct cli_option *find_short(const struct optset *sets, size_t nsets, char c, bool attached, void **base)
{
	const struct cli_option *first = NULL;
	void *first_base = NULL;
	for (size_t s = 0; s < nsets; s++)
		for (const struct cli_option *o = sets[s].opts; o && o->long_name; o++) {
			if (o->short_name != c)
				continue;
			if (!attached || o->type != OPT_BOOL) {
				*base = sets[s].base;
				return o;
			}
			if (!first) {
				first = o;
				first_base = sets[s].base;
			}
		}
	*base = first_base;
	return first;
}

static int bad_int(const struct cli_option *o, const char *flag, const char *value)
{
	if (!o->max || o->max >= INT_MAX)
		return cli_error("%s: '%s' is not a number (%lld or more)", flag, value, (long long)o->min), -1;
	return cli_error("%s: '%s' is not a number from %lld to %lld", flag, value, (long long)o->min,
			 (long long)o->max), -1;
}

static int store(const struct cli_option *o, void *base, const char *flag, const char *value)
{
	void *dest = (char *)base + o->offset;

	switch (o->type) {
	case OPT_BOOL:
		if (value)
			return cli_error("%s: takes no value", flag), -1;
		*(bool *)dest = true;
		return 0;
	case OPT_STRING:
		*(const char **)dest = value;
		return 0;
	case OPT_MULTI: {
		struct cli_multi *m = dest;
		m->items = xrealloc(m->items, (m->n + 1) * sizeof(*m->items));
		m->items[m->n++] = value;
		return 0;
	}
	case OPT_INT: {
		char *end;
		long n;
		errno = 0;
		n = strtol(value, &end, 10);
		if (!*value || *end || errno || n < o->min || (o->max && n > o->max))
			return bad_int(o, flag, value);
		*(long *)dest = n;
		return 0;
	}
	case OPT_DURATION: {
		int64_t ms;
		char lo[32], hi[32];
		if (parse_duration_ms(value, &ms) < 0)
			return cli_error("%s: invalid duration '%s' (e.g. 90s, 10m)", flag, value), -1;
		if (ms >= o->min && (!o->max || ms <= o->max)) {
			*(int64_t *)dest = ms;
			return 0;
		}
		format_duration(o->min, lo, sizeof(lo));
		if (!o->max)
			return cli_error("%s: '%s' is shorter than %s", flag, value, lo), -1;
		format_duration(o->max, hi, sizeof(hi));
		return cli_error("%s: '%s' is not a duration from %s to %s", flag, value, lo, hi), -1;
	}
	case OPT_CALLBACK:
		return o->cb(o, flag, value, dest);
	}
	BUG_ON(true); /* a type without a case above */
	return -1;
}

/*
 * The pass over argv[1..argc) (see cli_parse_opts). cmd NULL: the global
 * flags before a command, stopping at the first positional argument and
 * returning its index.
 */
static int parse(const struct cli_cmd *cmd, const struct optset *sets, size_t nsets, int argc, char **argv)
{
	int n = 0;
	bool only_pos = false;

	for (int i = 1; i < argc; i++) {
		char *a = argv[i], flag[128];
		const char *value = NULL;
		const struct cli_option *o;
		void *base = NULL;

		if (only_pos || a[0] != '-' || !a[1]) {
			if (!cmd)
				return i;
			argv[n++] = a;
			continue;
		}
		if (!strcmp(a, "--")) {
			if (!cmd)
				return i + 1;
			only_pos = true;
			continue;
		}
		if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
			if (cmd)
				cli_print_help(cmd, stdout);
			else
				cli_usage(stdout);
			exit(EXIT_OK);
		}
		if (!cmd && !strcmp(a, "--version")) {
			printf("gantry %s\n", GANTRY_VERSION);
			exit(EXIT_OK);
		}
		if (a[1] == '-') {
			const char *name = a + 2, *eq = strchr(name, '=');
			size_t len = eq ? (size_t)(eq - name) : strlen(name);
			snprintf(flag, sizeof(flag), "--%.*s", (int)MIN(len, (size_t)100), name);
			if (eq)
				value = eq + 1;
			o = find_long(sets, nsets, name, len, &base);
		} else {
			snprintf(flag, sizeof(flag), "-%c", a[1]);
			if (a[2])
				value = a + 2;
			o = find_short(sets, nsets, a[1], value != NULL, &base);
		}
		if (!o) {
			if (cmd)
				cli_error("%s: unknown option for 'gantry %s'", flag, cmd->name);
			else
				cli_error("%s: unknown global flag (see 'gantry --help')", a);
			return -1;
		}
		if (o->type != OPT_BOOL && !value) {
			if (i + 1 >= argc)
				return cli_error("%s: needs a value", flag), -1;
			value = argv[++i];
		}
		if (store(o, base, flag, value) < 0)
			return -1;
	}
	return cmd ? n : argc;
}

int cli_parse_opts(const struct cli_cmd *cmd, int argc, char **argv, struct cli_ctx *ctx, void *opts)
{
	const struct optset sets[] = { { cmd->options, opts }, { global_options, ctx } };
	return parse(cmd, sets, ARRAY_SIZE(sets), argc, argv);
}

int cli_parse_global(int argc, char **argv, struct cli_ctx *ctx)
{
	const struct optset sets[] = { { global_options, ctx } };
	return parse(NULL, sets, ARRAY_SIZE(sets), argc, argv);
}

/* one row of -h: "  -e, --env ENV      the environment" */
static void print_opt(FILE *f, const struct cli_option *o, bool show_short)
{
	char left[96];
	int w;
	if (show_short && o->short_name)
		w = snprintf(left, sizeof(left), "-%c, --%s%s%s", o->short_name, o->long_name, o->argh ? " " : "",
			     o->argh ? o->argh : "");
	else
		w = snprintf(left, sizeof(left), "    --%s%s%s", o->long_name, o->argh ? " " : "", o->argh ? o->argh : "");
	if (w > 26)
		fprintf(f, "  %s\n  %-26s %s\n", left, "", o->help ? o->help : "");
	else
		fprintf(f, "  %-26s %s\n", left, o->help ? o->help : "");
}

static bool has_short(const struct cli_option *opts, char c)
{
	for (; opts && opts->long_name; opts++)
		if (opts->short_name == c)
			return true;
	return false;
}

void cli_print_help(const struct cli_cmd *cmd, FILE *f)
{
	fprintf(f, "usage: %s\n\n%s\n", cmd->usage, cmd->summary);
	if (cmd->options && cmd->options->long_name) {
		fprintf(f, "\noptions:\n");
		for (const struct cli_option *o = cmd->options; o->long_name; o++)
			print_opt(f, o, true);
	}
	fprintf(f, "\nglobal flags (before or after the command):\n");
	for (const struct cli_option *o = global_options; o->long_name; o++)
		print_opt(f, o, !has_short(cmd->options, o->short_name));
}
