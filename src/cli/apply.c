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
#include "cli/gates_cli.h"
#include "cli/spec_load.h"

static long parse_version(const char *flag, const char *s)
{
	long v = s ? gates_cli_id(s) : 0;
	if (s && v < 0)
		return cli_error("%s: expected a version number, got '%s'", flag, s), -1;
	return v;
}

static int run_apply(int argc, char **argv, struct cli_ctx *ctx)
{
	const char *expect = NULL, **pos;
	bool dry = false;
	struct cli_opt opts[] = {
		{ "expect-version", 0, OPT_STRING, &expect },
		{ "dry-run", 0, OPT_FLAG, &dry },
		{ 0 },
	};
	json_t *req, *resp = NULL;
	long ev;
	int npos, ret;
	bool is_diff = !strcmp(argv[0], "diff");

	if (cli_parse(argc, argv, opts, ctx, &pos, &npos) < 0)
		return EXIT_USAGE;
	if (npos) {
		ret = cli_error("gantry %s: unexpected argument '%s' (the spec is -f FILE)", argv[0], pos[0]);
		goto out;
	}
	if ((ev = parse_version("--expect-version", expect)) < 0) {
		ret = EXIT_USAGE;
		goto out;
	}
	req = json_pack("{s:s, s:s}", "op", is_diff ? "spec_diff" : "apply", "deployed_by", client_user());
	if ((ret = cli_spec_attach(ctx, req))) {
		json_decref(req);
		goto out;
	}
	if (expect)
		json_object_set_new(req, "expect_version", json_integer(ev));
	if (dry)
		json_object_set_new(req, "dry_run", json_true());
	if ((ret = client_call(ctx, req, &resp))) {
		/* a refusal names each policy key it is about */
		goto out;
	}
	if (ctx->json) {
		gates_cli_print_json(resp);
	} else if (is_diff || dry) {
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
out:
	json_decref(resp);
	if (npos)
		free(pos);
	return ret;
}

static int run_spec(int argc, char **argv, struct cli_ctx *ctx)
{
	const char *version = NULL, *from = NULL, *to = NULL, **pos;
	struct cli_opt opts[] = {
		{ "version", 0, OPT_STRING, &version },
		{ "from", 0, OPT_STRING, &from },
		{ "to", 0, OPT_STRING, &to },
		{ 0 },
	};
	json_t *req = NULL, *resp = NULL, *v;
	long lv, lf, lt;
	size_t i;
	int npos, ret;

	if (cli_parse(argc, argv, opts, ctx, &pos, &npos) < 0)
		return EXIT_USAGE;
	if (npos != 1) {
		ret = cli_error("usage: gantry spec show [--version N] | diff [--from N] [--to M] | history");
		goto out;
	}
	if ((lv = parse_version("--version", version)) < 0 || (lf = parse_version("--from", from)) < 0 ||
	    (lt = parse_version("--to", to)) < 0) {
		ret = EXIT_USAGE;
		goto out;
	}
	if (!strcmp(pos[0], "show")) {
		req = json_pack("{s:s, s:i}", "op", "spec_show", "version", (int)lv);
	} else if (!strcmp(pos[0], "history")) {
		req = json_pack("{s:s}", "op", "spec_history");
	} else if (!strcmp(pos[0], "diff")) {
		req = json_pack("{s:s}", "op", "spec_diff");
		if (from)
			json_object_set_new(req, "from", json_integer(lf));
		if (to)
			json_object_set_new(req, "to", json_integer(lt));
	} else {
		ret = cli_error("gantry spec: unknown subcommand '%s' (show, diff or history)", pos[0]);
		goto out;
	}
	ret = client_call(ctx, req, &resp);
	req = NULL;
	if (ret)
		goto out;
	if (ctx->json) {
		gates_cli_print_json(resp);
	} else if (!strcmp(pos[0], "show")) {
		fputs(json_string_value(json_object_get(resp, "text")), stdout);
		fprintf(stderr, "# spec version %lld, applied by %s at %s from %s\n",
			(long long)json_integer_value(json_object_get(resp, "version")),
			json_string_value(json_object_get(resp, "applied_by")),
			json_string_value(json_object_get(resp, "applied_at")), json_string_value(json_object_get(resp, "name")));
	} else if (!strcmp(pos[0], "history")) {
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
out:
	json_decref(req);
	json_decref(resp);
	if (npos)
		free(pos);
	return ret;
}

const struct cli_cmd cli_cmd_apply = {
	.name = "apply",
	.usage = "gantry apply [-f FILE] [--expect-version N] [--dry-run] [-o json]",
	.summary = "store the spec in the controller as a new version (policy keys need an admin)",
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
	.run = run_spec,
};
