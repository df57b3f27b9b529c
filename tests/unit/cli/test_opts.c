/*
 * The option parser (src/cli/opts.c): typed values, the spellings of a
 * flag, errors naming it, positional arguments kept in order, the global
 * flags' table, and every command's table checked against its -h and its
 * usage line.
 */
#include "common.h"
#include "cli/cli.h"
#include <setjmp.h>
#include <cmocka.h>

struct t_opts {
	bool flag;
	const char *name;
	long count;
	int64_t wait_ms;
	struct cli_multi tags;
	bool follow;
};

static const struct cli_option t_options[] = {
	CLI_BOOL('b', "flag", struct t_opts, flag, "a flag"),
	CLI_STRING('n', "name", struct t_opts, name, "NAME", "a string"),
	CLI_INT('c', "count", struct t_opts, count, "N", 0, 1000, "a number"),
	CLI_DURATION(0, "wait-for", struct t_opts, wait_ms, "DUR", 0, 0, "a duration"),
	CLI_MULTI(0, "tag", struct t_opts, tags, "T", "repeatable"),
	CLI_BOOL('f', "follow", struct t_opts, follow, "shadows the global -f"),
	CLI_END,
};

static const struct cli_cmd t_cmd = {
	.name = "t",
	.usage = "gantry t [--flag] [--name NAME] [--count N] [--wait-for DUR] [--tag T]... [-f] ARG...",
	.summary = "a command to test with",
	.options = t_options,
	.run = NULL,
};

static char err_text[4096];

/*
 * cli_parse_opts over args (NULL-terminated, "t" first) with o and ctx
 * zeroed first; the positional arguments' count (argv rearranged in *out),
 * and what it printed on stderr in err_text.
 */
static int parse(struct t_opts *o, struct cli_ctx *ctx, char ***out, const char **args)
{
	static char *argv[32];
	FILE *tmp = tmpfile();
	int argc = 0, saved = dup(STDERR_FILENO), n;
	size_t len;

	memset(o, 0, sizeof(*o));
	memset(ctx, 0, sizeof(*ctx));
	while (args[argc]) {
		argv[argc] = (char *)args[argc];
		argc++;
	}
	argv[argc] = NULL;
	fflush(stderr);
	dup2(fileno(tmp), STDERR_FILENO);
	n = cli_parse_opts(&t_cmd, argc, argv, ctx, o);
	fflush(stderr);
	dup2(saved, STDERR_FILENO);
	close(saved);
	rewind(tmp);
	len = fread(err_text, 1, sizeof(err_text) - 1, tmp);
	err_text[len] = 0;
	fclose(tmp);
	*out = argv;
	return n;
}

#define PARSE(o, ctx, out, ...) parse(o, ctx, out, (const char *[]){ "t", __VA_ARGS__, NULL })

static void test_types(void **state)
{
	struct t_opts o;
	struct cli_ctx ctx;
	char **pos;
	(void)state;
	assert_int_equal(PARSE(&o, &ctx, &pos, "--flag", "--name", "x", "--count", "7", "--wait-for", "1m30s", "--tag",
			       "a"), 0);
	assert_true(o.flag);
	assert_string_equal(o.name, "x");
	assert_int_equal(o.count, 7);
	assert_int_equal(o.wait_ms, 90000);
	assert_int_equal(o.tags.n, 1);
	assert_string_equal(o.tags.items[0], "a");
	free(o.tags.items);
	assert_string_equal(err_text, "");
}

static void test_spellings(void **state)
{
	struct t_opts o;
	struct cli_ctx ctx;
	char **pos;
	(void)state;
	/* --name=V, -nV, -n V; an empty value is a value */
	assert_int_equal(PARSE(&o, &ctx, &pos, "--name=a=b", "--count=3", "--wait-for=250ms"), 0);
	assert_string_equal(o.name, "a=b");
	assert_int_equal(o.count, 3);
	assert_int_equal(o.wait_ms, 250);
	assert_int_equal(PARSE(&o, &ctx, &pos, "-nshort", "-c12", "-b"), 0);
	assert_string_equal(o.name, "short");
	assert_int_equal(o.count, 12);
	assert_true(o.flag);
	assert_int_equal(PARSE(&o, &ctx, &pos, "-n", "sep", "--name="), 0);
	assert_string_equal(o.name, "");
	/* a value may start with '-': it is the flag's */
	assert_int_equal(PARSE(&o, &ctx, &pos, "--name", "-x", "-n", "--flag"), 0);
	assert_string_equal(o.name, "--flag");
	assert_false(o.flag);
}

static void test_errors_name_the_flag(void **state)
{
	static const struct {
		const char *args[4];
		const char *err;
	} cases[] = {
		{ { "--name" }, "error: --name: needs a value\n" },
		{ { "-n" }, "error: -n: needs a value\n" },
		{ { "--bogus" }, "error: --bogus: unknown option for 'gantry t'\n" },
		{ { "-z" }, "error: -z: unknown option for 'gantry t'\n" },
		{ { "--bogus=1" }, "error: --bogus: unknown option for 'gantry t'\n" },
		{ { "--flag=1" }, "error: --flag: takes no value\n" },
		{ { "-bx" }, "error: -b: takes no value\n" },
		{ { "--count", "x" }, "error: --count: 'x' is not a number from 0 to 1000\n" },
		{ { "--count", "" }, "error: --count: '' is not a number from 0 to 1000\n" },
		{ { "--count", "1001" }, "error: --count: '1001' is not a number from 0 to 1000\n" },
		{ { "-c", "-1" }, "error: -c: '-1' is not a number from 0 to 1000\n" },
		{ { "--count=99999999999999999999" }, "error: --count: '99999999999999999999' is not a number from 0 to 1000\n" },
		{ { "--wait-for", "soon" }, "error: --wait-for: invalid duration 'soon' (e.g. 90s, 10m)\n" },
		{ { "--wait-for", "10" }, "error: --wait-for: invalid duration '10' (e.g. 90s, 10m)\n" },
		{ { "-o", "yaml" }, "error: -o: unknown output format 'yaml' (use table or json)\n" },
		{ { "--output=xml" }, "error: --output: unknown output format 'xml' (use table or json)\n" },
		{ { "--home" }, "error: --home: needs a value\n" },
	};
	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		struct t_opts o;
		struct cli_ctx ctx;
		char **pos;
		const char *args[6] = { "t" };
		for (int k = 0; k < 4 && cases[i].args[k]; k++)
			args[k + 1] = cases[i].args[k];
		if (parse(&o, &ctx, &pos, args) != -1)
			fail_msg("case %zu (%s) parsed", i, cases[i].args[0]);
		assert_string_equal(err_text, cases[i].err);
		free(o.tags.items);
	}
}

static void test_ranges(void **state)
{
	static const struct cli_option r_options[] = {
		CLI_INT(0, "rev", struct t_opts, count, "N", 1, 0, "1 and up"),
		CLI_DURATION(0, "since", struct t_opts, wait_ms, "DUR", 1000, 86400000, "1s to 1d"),
		CLI_DURATION(0, "backoff", struct t_opts, wait_ms, "DUR", 1, 0, "above 0"),
		CLI_END,
	};
	const struct cli_cmd r_cmd = { .name = "r", .usage = "gantry r", .summary = "", .options = r_options };
	static const struct {
		const char *flag, *value, *err;
	} bad[] = {
		{ "--rev", "0", "error: --rev: '0' is not a number (1 or more)\n" },
		{ "--since", "500ms", "error: --since: '500ms' is not a duration from 1s to 1d\n" },
		{ "--since", "2d", "error: --since: '2d' is not a duration from 1s to 1d\n" },
		{ "--backoff", "0", "error: --backoff: '0' is shorter than 1ms\n" },
	};
	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		struct t_opts o = { 0 };
		struct cli_ctx ctx = { 0 };
		char *argv[] = { (char *)"r", (char *)bad[i].flag, (char *)bad[i].value, NULL };
		FILE *tmp = tmpfile();
		int saved = dup(STDERR_FILENO);
		size_t len;
		fflush(stderr);
		dup2(fileno(tmp), STDERR_FILENO);
		assert_int_equal(cli_parse_opts(&r_cmd, 3, argv, &ctx, &o), -1);
		fflush(stderr);
		dup2(saved, STDERR_FILENO);
		close(saved);
		rewind(tmp);
		len = fread(err_text, 1, sizeof(err_text) - 1, tmp);
		err_text[len] = 0;
		fclose(tmp);
		assert_string_equal(err_text, bad[i].err);
	}
	{
		struct t_opts o = { 0 };
		struct cli_ctx ctx = { 0 };
		char *argv[] = { (char *)"r", (char *)"--rev", (char *)"2147483648", (char *)"--since=1d", NULL };
		assert_int_equal(cli_parse_opts(&r_cmd, 4, argv, &ctx, &o), 0);
		assert_int_equal(o.count, 2147483648L);
		assert_int_equal(o.wait_ms, 86400000);
	}
}

static void test_positionals_and_dashdash(void **state)
{
	struct t_opts o;
	struct cli_ctx ctx;
	char **pos;
	(void)state;
	/* flags and arguments mix; the arguments stay in order at the front */
	assert_int_equal(PARSE(&o, &ctx, &pos, "p1", "--flag", "p2", "-n", "v", "-", "p3"), 4);
	assert_string_equal(pos[0], "p1");
	assert_string_equal(pos[1], "p2");
	assert_string_equal(pos[2], "-");
	assert_string_equal(pos[3], "p3");
	assert_true(o.flag);
	assert_string_equal(o.name, "v");
	/* "--" ends the flags: what follows is an argument, even "--flag" */
	assert_int_equal(PARSE(&o, &ctx, &pos, "a", "--", "--flag", "-n", "--"), 4);
	assert_string_equal(pos[0], "a");
	assert_string_equal(pos[1], "--flag");
	assert_string_equal(pos[2], "-n");
	assert_string_equal(pos[3], "--");
	assert_false(o.flag);
	assert_null(o.name);
	assert_int_equal(PARSE(&o, &ctx, &pos, "--flag"), 0);
}

static void test_repeated(void **state)
{
	struct t_opts o;
	struct cli_ctx ctx;
	char **pos;
	(void)state;
	/* the last string or number wins; a multi keeps them all, in order; a flag twice is a flag */
	assert_int_equal(PARSE(&o, &ctx, &pos, "--name", "a", "--tag", "x", "-n", "b", "--tag=y", "--count", "1",
			       "-c", "2", "--tag", "z", "-b", "--flag"), 0);
	assert_string_equal(o.name, "b");
	assert_int_equal(o.count, 2);
	assert_true(o.flag);
	assert_int_equal(o.tags.n, 3);
	assert_string_equal(o.tags.items[0], "x");
	assert_string_equal(o.tags.items[1], "y");
	assert_string_equal(o.tags.items[2], "z");
	free(o.tags.items);
}

static void test_defaults_kept(void **state)
{
	struct t_opts o = { .name = "default", .count = 100, .wait_ms = 5 };
	struct cli_ctx ctx = { 0 };
	char *argv[] = { (char *)"t", (char *)"arg", NULL };
	(void)state;
	assert_int_equal(cli_parse_opts(&t_cmd, 2, argv, &ctx, &o), 1);
	assert_string_equal(o.name, "default");
	assert_int_equal(o.count, 100);
	assert_int_equal(o.wait_ms, 5);
}

static void test_global_flags(void **state)
{
	struct t_opts o;
	struct cli_ctx ctx;
	char **pos;
	(void)state;
	assert_int_equal(PARSE(&o, &ctx, &pos, "--file", "a.yaml", "--home=/h", "-o", "json", "x"), 1);
	assert_string_equal(ctx.spec_path, "a.yaml");
	assert_string_equal(ctx.home, "/h");
	assert_true(ctx.json);
	assert_int_equal(PARSE(&o, &ctx, &pos, "--file=b.yaml", "-ojson", "--output", "table", "--home", "/x"), 0);
	assert_string_equal(ctx.spec_path, "b.yaml");
	assert_string_equal(ctx.home, "/x");
	assert_false(ctx.json);
	/* this command's -f is --follow; -fFILE, a value attached, can only be the spec */
	assert_int_equal(PARSE(&o, &ctx, &pos, "-f", "svc"), 1);
	assert_true(o.follow);
	assert_null(ctx.spec_path);
	assert_string_equal(pos[0], "svc");
	assert_int_equal(PARSE(&o, &ctx, &pos, "-fc.yaml"), 0);
	assert_false(o.follow);
	assert_string_equal(ctx.spec_path, "c.yaml");
}

static void test_global_before_the_command(void **state)
{
	struct cli_ctx ctx = { 0 };
	char *a1[] = { (char *)"gantry", (char *)"-f", (char *)"x.yaml", (char *)"--home=/h", (char *)"-ojson",
		       (char *)"status", (char *)"--bogus", NULL };
	char *a2[] = { (char *)"gantry", (char *)"--file=y.yaml", (char *)"--output", (char *)"table", NULL };
	char *a3[] = { (char *)"gantry", (char *)"--", (char *)"deploy", NULL };
	(void)state;
	assert_int_equal(cli_parse_global(7, a1, &ctx), 5);
	assert_string_equal(ctx.spec_path, "x.yaml");
	assert_string_equal(ctx.home, "/h");
	assert_true(ctx.json);
	assert_int_equal(cli_parse_global(4, a2, &ctx), 4);
	assert_string_equal(ctx.spec_path, "y.yaml");
	assert_false(ctx.json);
	assert_int_equal(cli_parse_global(3, a3, &ctx), 2);
}

/* the names in `gantry --help` (two spaces, the name, a space) */
static size_t command_names(char names[][32], size_t max)
{
	FILE *f = tmpfile();
	char line[512];
	size_t n = 0;
	cli_usage(f);
	rewind(f);
	while (n < max && fgets(line, sizeof(line), f))
		if (!strncmp(line, "  ", 2) && line[2] >= 'a' && line[2] <= 'z' && sscanf(line + 2, "%31s", names[n]) == 1)
			n++;
	fclose(f);
	return n;
}

static bool global_long(const char *name)
{
	return !strcmp(name, "file") || !strcmp(name, "home") || !strcmp(name, "output");
}

static void test_every_command_table(void **state)
{
	char names[64][32];
	size_t n = command_names(names, ARRAY_SIZE(names));
	(void)state;
	assert_true(n >= 25);
	for (size_t i = 0; i < n; i++) {
		const struct cli_cmd *c = cli_lookup(names[i]);
		char help[8192], flag[64];
		FILE *f = tmpfile();
		size_t len;
		const char *u;

		assert_non_null(c);
		cli_print_help(c, f);
		rewind(f);
		len = fread(help, 1, sizeof(help) - 1, f);
		help[len] = 0;
		fclose(f);
		/* -h starts with the usage line t9000 finds in docs/gantry.1.md */
		assert_true(!strncmp(help, "usage: ", 7) && !strncmp(help + 7, c->usage, strlen(c->usage)));
		for (const struct cli_option *o = c->options; o && o->long_name; o++) {
			assert_non_null(o->help);
			assert_true(o->type == OPT_BOOL ? !o->argh : o->argh != NULL);
			if (global_long(o->long_name) || !strcmp(o->long_name, "help") || o->short_name == 'h' ||
			    o->short_name == 'o')
				fail_msg("gantry %s --%s: a global flag's name", c->name, o->long_name);
			for (const struct cli_option *p = o + 1; p->long_name; p++)
				if (!strcmp(o->long_name, p->long_name) || (o->short_name && o->short_name == p->short_name))
					fail_msg("gantry %s: --%s twice", c->name, o->long_name);
			/* -h lists each */
			snprintf(flag, sizeof(flag), "--%s", o->long_name);
			if (!strstr(help, flag))
				fail_msg("gantry %s -h lacks %s", c->name, flag);
		}
		/* each --flag of the usage line is in the table (or global) */
		for (u = strstr(c->usage, "--"); u; u = strstr(u + 2, "--")) {
			size_t k = strspn(u + 2, "abcdefghijklmnopqrstuvwxyz-");
			const struct cli_option *o = c->options;
			snprintf(flag, sizeof(flag), "%.*s", (int)MIN(k, (size_t)60), u + 2);
			while (o && o->long_name && strcmp(o->long_name, flag))
				o++;
			if (!global_long(flag) && !(o && o->long_name) && c->options)
				fail_msg("gantry %s: usage names --%s, which its table lacks", c->name, flag);
		}
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_types),
		cmocka_unit_test(test_spellings),
		cmocka_unit_test(test_errors_name_the_flag),
		cmocka_unit_test(test_ranges),
		cmocka_unit_test(test_positionals_and_dashdash),
		cmocka_unit_test(test_repeated),
		cmocka_unit_test(test_defaults_kept),
		cmocka_unit_test(test_global_flags),
		cmocka_unit_test(test_global_before_the_command),
		cmocka_unit_test(test_every_command_table),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
