/*
 * gantry deployments [SVC] [--env E] [--state S] [-o json]: the deployment
 * records, newest first: every deploy, promotion, rollback and restart
 * asked of the controller, with its state (pending_approval until it
 * expires, pre_checks, started, succeeded, failed, refused, rejected,
 * expired, ...), who asked, the spec version it was resolved from, and for
 * one waiting for approval when it expires.
 */
#include "common.h"
#include "cli/client.h"
#include "cli/gates_cli.h"

static const char *str(json_t *o, const char *k)
{
	const char *s = json_string_value(json_object_get(o, k));
	return s && *s ? s : "-";
}

static int run(int argc, char **argv, struct cli_ctx *ctx)
{
	const char *env = NULL, *state = NULL, **pos;
	struct cli_opt opts[] = {
		{ "env", 'e', OPT_STRING, &env },
		{ "state", 0, OPT_STRING, &state },
		{ 0 },
	};
	json_t *req, *resp = NULL, *d;
	size_t i;
	int npos, ret;

	if (cli_parse(argc, argv, opts, ctx, &pos, &npos) < 0)
		return EXIT_USAGE;
	if (npos > 1) {
		ret = cli_error("gantry deployments: unexpected argument '%s'", pos[1]);
		goto out;
	}
	req = json_pack("{s:s, s:i}", "op", "deployments", "limit", 200);
	if (npos)
		json_object_set_new(req, "service", json_string(pos[0]));
	if (env)
		json_object_set_new(req, "environment", json_string(env));
	if (state)
		json_object_set_new(req, "state", json_string(state));
	if ((ret = client_call(ctx, req, &resp)))
		goto out;
	if (ctx->json) {
		gates_cli_print_json(json_object_get(resp, "deployments"));
		goto out;
	}
	printf("%-5s %-24s %-8s %-17s %-12s %-14s %-5s %-20s %s\n", "ID", "SERVICE@ENV", "KIND", "STATE", "BY", "VERSION",
	       "SPEC", "CREATED", "EXPIRES / RESULT");
	json_array_foreach(json_object_get(resp, "deployments"), i, d) {
		char target[160];
		bool pending = !strcmp(str(d, "state"), "pending_approval");
		snprintf(target, sizeof(target), "%s@%s", str(d, "service"), str(d, "environment"));
		printf("%-5lld %-24s %-8s %-17s %-12s %-14s %-5lld %-20s %s%s%s\n",
		       (long long)json_integer_value(json_object_get(d, "id")), target, str(d, "kind"), str(d, "state"),
		       str(d, "requester"), str(d, "version"), (long long)json_integer_value(json_object_get(d, "spec_version")),
		       str(d, "created_at"), pending ? "expires " : str(d, "result"),
		       pending ? str(d, "expires_at") : (*str(d, "result_reason") != '-' ? ": " : ""),
		       pending ? "" : (*str(d, "result_reason") != '-' ? str(d, "result_reason") : ""));
	}
out:
	json_decref(resp);
	if (npos)
		free(pos);
	return ret;
}

const struct cli_cmd cli_cmd_deployments = {
	.name = "deployments",
	.usage = "gantry deployments [SERVICE] [--env ENV] [--state STATE] [-o json]",
	.summary = "the deployment records: who asked what, its state, when a waiting one expires",
	.run = run,
};
