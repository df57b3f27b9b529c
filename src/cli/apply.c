/*
 * gantry apply [-f FILE] [--expect-version N] | diff [-f FILE] | spec show|diff|history:
 * the controller's stored spec (docs/security.md). apply sends the whole
 * spec; the controller validates it, decides from the diff and the
 * caller's role (a policy key needs an admin), stores it as a new
 * numbered version and says what changed. diff shows what an apply would
 * change and whether the caller may. spec reads the stored versions.
 */
#include "common.h"
#include "cli/client.h"
#include "cli/spec_load.h"

struct apply_opts {
	long expect_version;
	bool dry_run;
};

static int run_apply(int argc, char **argv, struct cli_ctx *ctx)
{
	struct apply_opts o = { 0 };
	json_t *req, *resp = NULL;
	int npos, ret;
	bool is_diff = ctx->cmd == &cli_cmd_diff;

	if ((npos = cli_parse_opts(ctx->cmd, argc, argv, ctx, &o)) < 0)
		return EXIT_USAGE;
	if (npos)
		return cli_error("gantry %s: unexpected argument '%s' (the spec is -f FILE)", ctx->cmd->name, argv[0]);
	req = json_pack("{s:s, s:s}", "op", is_diff ? "spec_diff" : "apply", "deployed_by", client_user());
	if ((ret = cli_spec_attach(ctx, req))) {
		json_decref(req);
		return ret;
	}
	if (o.expect_version)
		json_object_set_new(req, "expect_version", json_integer(o.expect_version));
	if (o.dry_run)
		json_object_set_new(req, "dry_run", json_true());
	/* a refusal names each policy key it is about */
	if ((ret = client_call(ctx, req, &resp)))
		return ret;
	if (ctx->json) {
		client_print_json(resp);
	} else if (is_diff || o.dry_run) {
		json_t *diff = json_object_get(resp, "diff");
		if (!json_array_size(diff)) {
			printf("no changes: the controller runs this spec (version %lld)\n",
			       (long long)json_integer_value(json_object_get(resp, "version")));
		} else {
			printf("against spec version %lld, an apply would change:\n",
			       (long long)json_integer_value(json_object_get(resp, "version")));
			cli_print_spec_diff(stdout, diff);
			printf("%s\n", json_is_false(json_object_get(resp, "allowed")) ? "you may not apply it (role viewer)"
			       : json_is_true(json_object_get(resp, "policy")) ? "policy keys change: you may apply it (admin)"
			       : "you may apply it");
		}
	} else if (json_is_true(json_object_get(resp, "changed"))) {
		printf("spec version %lld applied (was %lld):\n", (long long)json_integer_value(json_object_get(resp, "version")),
		       (long long)json_integer_value(json_object_get(resp, "previous")));
		cli_print_spec_diff(stdout, json_object_get(resp, "diff"));
	} else {
		printf("no changes: the controller already runs this spec (version %lld)\n",
		       (long long)json_integer_value(json_object_get(resp, "version")));
	}
	json_decref(resp);
	return EXIT_OK;
}

struct spec_opts {
	long version, from, to;
};

static int run_spec(int argc, char **argv, struct cli_ctx *ctx)
{
	struct spec_opts o = { 0 };
	json_t *req, *resp = NULL, *v;
	const char *sub;
	size_t i;
	int npos, ret;

	if ((npos = cli_parse_opts(ctx->cmd, argc, argv, ctx, &o)) < 0)
		return EXIT_USAGE;
	if (npos != 1)
		return cli_error("usage: gantry spec show [--version N] | diff [--from N] [--to M] | history");
	sub = argv[0];
	if (!strcmp(sub, "show")) {
		req = json_pack("{s:s, s:i}", "op", "spec_show", "version", (int)o.version);
	} else if (!strcmp(sub, "history")) {
		req = json_pack("{s:s}", "op", "spec_history");
	} else if (!strcmp(sub, "diff")) {
		req = json_pack("{s:s}", "op", "spec_diff");
		if (o.from)
			json_object_set_new(req, "from", json_integer(o.from));
		if (o.to)
			json_object_set_new(req, "to", json_integer(o.to));
	} else {
		return cli_error("gantry spec: unknown subcommand '%s' (show, diff or history)", sub);
	}
	if ((ret = client_call(ctx, req, &resp)))
		return ret;
	if (ctx->json) {
		client_print_json(resp);
	} else if (!strcmp(sub, "show")) {
		fputs(json_string_value(json_object_get(resp, "text")), stdout);
		fprintf(stderr, "# spec version %lld, applied by %s at %s from %s\n",
			(long long)json_integer_value(json_object_get(resp, "version")),
			json_string_value(json_object_get(resp, "applied_by")),
			json_string_value(json_object_get(resp, "applied_at")), json_string_value(json_object_get(resp, "name")));
	} else if (!strcmp(sub, "history")) {
		printf("%-8s %-21s %-16s %-8s %s\n", "VERSION", "APPLIED", "BY", "CHANGES", "DIGEST");
		json_array_foreach(json_object_get(resp, "versions"), i, v)
			printf("%-8lld %-21s %-16s %-8zu %.12s%s\n", (long long)json_integer_value(json_object_get(v, "version")),
			       json_string_value(json_object_get(v, "applied_at")),
			       json_string_value(json_object_get(v, "applied_by")), json_array_size(json_object_get(v, "diff")),
			       json_string_value(json_object_get(v, "digest")),
			       json_integer_value(json_object_get(v, "version")) ==
			       json_integer_value(json_object_get(resp, "current")) ? "  (current)" : "");
	} else {
		printf("spec version %lld -> %lld:\n", (long long)json_integer_value(json_object_get(resp, "from")),
		       (long long)json_integer_value(json_object_get(resp, "to")));
		cli_print_spec_diff(stdout, json_object_get(resp, "diff"));
	}
	json_decref(resp);
	return EXIT_OK;
}

static const struct cli_option apply_options[] = {
	CLI_INT(0, "expect-version", struct apply_opts, expect_version, "N", 1, INT_MAX,
		"refuse unless the controller's spec version is still N"),
	CLI_BOOL(0, "dry-run", struct apply_opts, dry_run, "show what would change, as diff; store nothing"),
	CLI_END,
};

static const struct cli_option spec_options[] = {
	CLI_INT(0, "version", struct spec_opts, version, "N", 1, INT_MAX, "show: version N (default the current one)"),
	CLI_INT(0, "from", struct spec_opts, from, "N", 1, INT_MAX, "diff: from version N (default the one before --to)"),
	CLI_INT(0, "to", struct spec_opts, to, "M", 1, INT_MAX, "diff: to version M (default the current one)"),
	CLI_END,
};

const struct cli_cmd cli_cmd_apply = {
	.name = "apply",
	.usage = "gantry apply [-f FILE] [--expect-version N] [--dry-run] [-o json]",
	.summary = "store the spec in the controller as a new version (policy keys need an admin)",
	.options = apply_options,
	.run = run_apply,
};

const struct cli_cmd cli_cmd_diff = {
	.name = "diff",
	.usage = "gantry diff [-f FILE] [-o json]",
	.summary = "what an apply of the spec would change, and whether you may",
	.run = run_apply,
};

const struct cli_cmd cli_cmd_spec = {
	.name = "spec",
	.usage = "gantry spec show [--version N] | diff [--from N] [--to M] | history [-o json]",
	.summary = "the spec versions the controller stores",
	.options = spec_options,
	.run = run_spec,
};
