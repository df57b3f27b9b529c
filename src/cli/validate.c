/*
 * gantry validate — check the spec and print every problem at once
 * (nginx -t, haproxy -c). Exit 0 when valid, 2 when not.
 */
#include "common.h"
#include "cli/cli.h"
#include "core/spec.h"
#include <jansson.h>

static json_t *diags_to_json(const struct diags *d)
{
	json_t *a = json_array();
	for (size_t i = 0; i < d->n; i++) {
		const struct diag *g = &d->items[i];
		json_array_append_new(a, json_pack("{s:s, s:i, s:i, s:s?, s:s}", "file", g->file, "line", g->line,
						   "column", g->col, "path", g->path, "message", g->message));
	}
	return a;
}

struct validate_opts {
	bool keys;
};

static int run(int argc, char **argv, struct cli_ctx *ctx)
{
	struct validate_opts o = { 0 };
	int npos, ret;
	char *path;
	struct spec *spec = NULL;
	struct diags d = { 0 };

	if ((npos = cli_parse_opts(ctx->cmd, argc, argv, ctx, &o)) < 0)
		return EXIT_USAGE;
	if (npos)
		return cli_error("validate: unexpected argument '%s' (the file is given with -f FILE)", argv[0]);
	if (o.keys) {
		/* the key reference, from the validator's own tables */
		spec_print_keys(stdout);
		return EXIT_OK;
	}
	path = cli_spec_path(ctx);
	ret = spec_load(path, &spec, &d) < 0 ? EXIT_USAGE : EXIT_OK;
	if (ctx->json) {
		json_t *j = json_pack("{s:b, s:o}", "valid", ret == EXIT_OK, "errors", diags_to_json(&d));
		if (spec) {
			json_object_set_new(j, "services", json_integer((json_int_t)spec->nservices));
			json_object_set_new(j, "environments", json_integer((json_int_t)spec->nenvs));
		}
		json_dumpf(j, stdout, JSON_INDENT(2));
		fputc('\n', stdout);
		json_decref(j);
	} else if (spec) {
		printf("%s: ok (%zu service%s, %zu environment%s)\n", path, spec->nservices,
		       spec->nservices == 1 ? "" : "s", spec->nenvs, spec->nenvs == 1 ? "" : "s");
	} else {
		diags_print(&d, stderr);
	}
	diags_release(&d);
	spec_free(spec);
	free(path);
	return ret;
}

static const struct cli_option validate_options[] = {
	CLI_BOOL(0, "keys", struct validate_opts, keys, "list every key of gantry.yaml(5) instead"),
	CLI_END,
};

const struct cli_cmd cli_cmd_validate = {
	.name = "validate",
	.usage = "gantry validate [-f FILE] [-o json] [--keys]",
	.summary = "check the spec and report every problem (exit 0 valid, 2 invalid); --keys lists every spec key",
	.options = validate_options,
	.run = run,
};
