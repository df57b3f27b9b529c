/*
 * gantry flag set NAME on|off|VARIANT|N%|spec --env ENV [--reason TEXT]
 * gantry flag list [--env ENV] [-o json]
 * gantry flag history NAME --env ENV [-o json]
 * gantry flag token --env ENV
 *
 * Feature flags (daemon/flags.h): the state of a flag declared in the
 * spec's `flags:` in one environment, changed without a rollout and seen
 * by the next OFREP evaluation of the replicas.
 */
#include "common.h"
#include "cli/client.h"

struct flag_opts {
	const char *env, *reason;
};

static const char *str(const json_t *o, const char *k)
{
	const char *s = json_string_value(json_object_get(o, k));
	return s && *s ? s : "-";
}

static int list(const struct cli_ctx *ctx, const struct flag_opts *o)
{
	json_t *req = json_pack("{s:s}", "op", "flag_list"), *resp = NULL, *fl, *f;
	size_t i;
	int ret;
	client_req_str(req, "environment", o->env);
	if ((ret = client_call(ctx, req, &resp)))
		return ret;
	fl = json_object_get(resp, "flags");
	if (ctx->json) {
		client_print_json(fl);
	} else if (!json_array_size(fl)) {
		printf("no flags (declare them under flags: in gantry.yaml)\n");
	} else {
		printf("%-24s %-12s %-8s %-8s %-4s %-21s %-12s %s\n", "FLAG", "ENVIRONMENT", "STATE", "DEFAULT", "VER",
		       "SINCE", "BY", "REASON");
		json_array_foreach(fl, i, f)
			printf("%-24s %-12s %-8s %-8s %-4d %-21s %-12s %s\n", str(f, "name"), str(f, "environment"),
			       str(f, "state"), str(f, "default"), (int)json_integer_value(json_object_get(f, "version")),
			       str(f, "set_at"), str(f, "set_by"), str(f, "reason"));
	}
	json_decref(resp);
	return EXIT_OK;
}

static int history(const struct cli_ctx *ctx, const struct flag_opts *o, const char *name)
{
	json_t *req = json_pack("{s:s, s:s, s:s}", "op", "flag_history", "environment", o->env, "name", name);
	json_t *resp = NULL, *h, *c;
	size_t i;
	int ret;
	if ((ret = client_call(ctx, req, &resp)))
		return ret;
	h = json_object_get(resp, "history");
	if (ctx->json) {
		client_print_json(h);
	} else if (!json_array_size(h)) {
		printf("flag %s has never been set in %s (its state is 'spec')\n", name, o->env);
	} else {
		printf("%-4s %-21s %-12s %-8s %-8s %s\n", "VER", "AT", "BY", "FROM", "TO", "REASON");
		json_array_foreach(h, i, c)
			printf("%-4d %-21s %-12s %-8s %-8s %s\n", (int)json_integer_value(json_object_get(c, "version")),
			       str(c, "at"), str(c, "by"), str(c, "from"), str(c, "to"), str(c, "reason"));
	}
	json_decref(resp);
	return EXIT_OK;
}

static int run(int argc, char **argv, struct cli_ctx *ctx)
{
	struct flag_opts o = { 0 };
	json_t *req, *resp = NULL, *f;
	const char *sub;
	int npos, ret;

	if ((npos = cli_parse_opts(ctx->cmd, argc, argv, ctx, &o)) < 0)
		return EXIT_USAGE;
	if (npos < 1)
		return cli_error("gantry flag: missing subcommand (set, list, history or token)");
	sub = argv[0];
	if (!strcmp(sub, "list")) {
		if (npos > 1)
			return cli_error("gantry flag list: unexpected argument '%s'", argv[1]);
		return list(ctx, &o);
	}
	if (strcmp(sub, "set") && strcmp(sub, "history") && strcmp(sub, "token"))
		return cli_error("gantry flag: unknown subcommand '%s' (set, list, history or token)", sub);
	if (!o.env)
		return cli_error("gantry flag %s: --env is required", sub);
	if (!strcmp(sub, "token")) {
		if (npos > 1)
			return cli_error("gantry flag token: unexpected argument '%s'", argv[1]);
		req = json_pack("{s:s, s:s}", "op", "flag_token", "environment", o.env);
		if ((ret = client_call(ctx, req, &resp)))
			return ret;
		printf("%s\n", json_string_value(json_object_get(resp, "token")));
		json_decref(resp);
		return EXIT_OK;
	}
	if (!strcmp(sub, "history")) {
		if (npos != 2)
			return cli_error("gantry flag history: usage: gantry flag history NAME --env ENV");
		return history(ctx, &o, argv[1]);
	}
	if (npos != 3)
		return cli_error("gantry flag set: usage: gantry flag set NAME on|off|VARIANT|N%%|spec --env ENV [--reason TEXT]");
	req = json_pack("{s:s, s:s, s:s, s:s, s:s}", "op", "flag_set", "environment", o.env, "name", argv[1], "state",
			argv[2], "deployed_by", client_user());
	client_req_str(req, "reason", o.reason);
	if ((ret = client_call(ctx, req, &resp)))
		return ret;
	f = json_object_get(resp, "flag");
	if (ctx->json) {
		json_object_set_new(f, "changed", json_boolean(json_is_true(json_object_get(resp, "changed"))));
		client_print_line(f);
	} else {
		printf("flag %s in %s: %s%s (version %d)\n", argv[1], o.env, str(f, "state"),
		       json_is_true(json_object_get(resp, "changed")) ? "" : " (it already was)",
		       (int)json_integer_value(json_object_get(f, "version")));
	}
	json_decref(resp);
	return EXIT_OK;
}

static const struct cli_option flag_options[] = {
	CLI_STRING('e', "env", struct flag_opts, env, "ENV", "the environment"),
	CLI_STRING('r', "reason", struct flag_opts, reason, "TEXT", "set: why (recorded in the history and the audit log)"),
	CLI_END,
};

const struct cli_cmd cli_cmd_flag = {
	.name = "flag",
	.usage = "gantry flag set NAME on|off|VARIANT|N%|spec --env ENV [--reason TEXT] | list [--env ENV] [-o json] | history NAME --env ENV [-o json] | token --env ENV",
	.summary = "change and list feature flags (served to replicas over OFREP)",
	.options = flag_options,
	.run = run,
};
