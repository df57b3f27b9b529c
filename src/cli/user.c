/*
 * gantry user add NAME --role viewer|deployer|approver|admin [--no-token]
 *   prints the new API token once (the daemon keeps only its SHA-256);
 *   the CLI sends $GANTRY_TOKEN with every request.
 * gantry user list | remove NAME | whoami | sync
 *   sync: applies the spec's `roles:` (OS users, no token).
 */
#include "common.h"
#include "cli/client.h"
#include "cli/gates_cli.h"
#include "core/spec.h"
#include "gates/gspec.h"

static int sync_roles(struct cli_ctx *ctx)
{
	struct spec *spec = gates_cli_spec(ctx);
	json_t *roles = spec ? gspec_roles(spec) : NULL, *v, *resp;
	const char *name;
	int ret = EXIT_OK;
	if (!spec) {
		spec_free(spec);
		return cli_error("gantry user sync: no valid spec (see 'gantry validate')");
	}
	json_object_foreach(roles, name, v) {
		int r = client_call(ctx, json_pack("{s:s, s:s, s:O, s:b}", "op", "user_add", "name", name, "role", v,
						   "no_token", 1), &resp);
		if (r) {
			ret = r;
			break;
		}
		printf("%s: %s\n", name, json_string_value(v));
		json_decref(resp);
	}
	json_decref(roles);
	spec_free(spec);
	return ret;
}

static int run(int argc, char **argv, struct cli_ctx *ctx)
{
	const char *role = NULL, **pos;
	bool no_token = false;
	struct cli_opt opts[] = { { "role", 'r', OPT_STRING, &role }, { "no-token", 0, OPT_FLAG, &no_token }, { 0 } };
	json_t *resp = NULL, *v;
	int npos, ret = EXIT_OK;
	size_t i;

	if (cli_parse(argc, argv, opts, ctx, &pos, &npos) < 0)
		return EXIT_USAGE;
	if (npos < 1) {
		ret = cli_error("usage: gantry user add NAME --role ROLE | list | remove NAME | whoami | sync");
		goto out;
	}
	if (!strcmp(pos[0], "add")) {
		if (npos != 2 || !role) {
			ret = cli_error("usage: gantry user add NAME --role viewer|deployer|approver|admin [--no-token]");
			goto out;
		}
		ret = client_call(ctx, json_pack("{s:s, s:s, s:s, s:b}", "op", "user_add", "name", pos[1], "role", role,
						 "no_token", no_token), &resp);
		if (ret)
			goto out;
		if (ctx->json) {
			json_object_del(resp, "ok");
			gates_cli_print_json(resp);
		} else if (!no_token) {
			fprintf(stderr, "user %s (%s) added; its API token, shown only now:\n", pos[1], role);
			printf("%s\n", json_string_value(json_object_get(resp, "token")));
		} else {
			printf("user %s (%s) added\n", pos[1], role);
		}
	} else if (!strcmp(pos[0], "remove") && npos == 2) {
		ret = client_call(ctx, json_pack("{s:s, s:s}", "op", "user_remove", "name", pos[1]), &resp);
		if (!ret)
			printf("user %s removed\n", pos[1]);
	} else if (!strcmp(pos[0], "list") && npos == 1) {
		ret = client_call(ctx, json_pack("{s:s}", "op", "user_list"), &resp);
		if (ret)
			goto out;
		if (ctx->json) {
			gates_cli_print_json(json_object_get(resp, "users"));
		} else {
			printf("%-20s %-9s %-6s %-20s %s\n", "NAME", "ROLE", "TOKEN", "CREATED", "BY");
			json_array_foreach(json_object_get(resp, "users"), i, v)
				printf("%-20s %-9s %-6s %-20s %s\n", json_string_value(json_object_get(v, "name")),
				       json_string_value(json_object_get(v, "role")),
				       json_is_true(json_object_get(v, "token")) ? "yes" : "no",
				       json_string_value(json_object_get(v, "created_at")),
				       json_string_value(json_object_get(v, "created_by")));
		}
	} else if (!strcmp(pos[0], "whoami") && npos == 1) {
		ret = client_call(ctx, json_pack("{s:s}", "op", "whoami"), &resp);
		if (ret)
			goto out;
		if (ctx->json) {
			json_object_del(resp, "ok");
			gates_cli_print_json(resp);
		} else {
			printf("%s (%s%s)\n", json_string_value(json_object_get(resp, "name")),
			       json_string_value(json_object_get(resp, "role")),
			       json_is_true(json_object_get(resp, "token")) ? ", by API token" : ", by OS user");
		}
	} else if (!strcmp(pos[0], "sync") && npos == 1) {
		ret = sync_roles(ctx);
	} else {
		ret = cli_error("usage: gantry user add NAME --role ROLE | list | remove NAME | whoami | sync");
	}
out:
	json_decref(resp);
	if (npos)
		free(pos);
	return ret;
}

const struct cli_cmd cli_cmd_user = {
	.name = "user",
	.usage = "gantry user add NAME --role viewer|deployer|approver|admin [--no-token] | list | remove NAME | whoami | sync",
	.summary = "users, roles and API tokens",
	.run = run,
};
