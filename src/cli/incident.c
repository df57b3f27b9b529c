/*
 * gantry incident open --severity P0..P3 --title T [--service S] [--env E]
 * gantry incident close ID [--resolution TEXT]
 * gantry incident list [--all] [-o json]
 * An open incident of a severity listed in environments.E.protection.
 * freeze_on_incident refuses deploys to E (not rollbacks).
 */
#include "common.h"
#include "cli/client.h"
#include "cli/gates_cli.h"

static void print_incident(const json_t *i)
{
	const char *svc = json_string_value(json_object_get(i, "service"));
	const char *env = json_string_value(json_object_get(i, "environment"));
	printf("%-4lld %-3s %-7s %-20s %-16s %-20s %s\n", (long long)json_integer_value(json_object_get(i, "id")),
	       json_string_value(json_object_get(i, "severity")), json_string_value(json_object_get(i, "status")),
	       json_string_value(json_object_get(i, "opened_at")),
	       svc && *svc ? svc : "*", env && *env ? env : "*", json_string_value(json_object_get(i, "title")));
}

static int run(int argc, char **argv, struct cli_ctx *ctx)
{
	const char *sev = NULL, *title = NULL, *svc = NULL, *env = NULL, *res = NULL, **pos;
	bool all = false;
	struct cli_opt opts[] = {
		{ "severity", 's', OPT_STRING, &sev }, { "title", 't', OPT_STRING, &title },
		{ "service", 0, OPT_STRING, &svc },    { "env", 'e', OPT_STRING, &env },
		{ "resolution", 'r', OPT_STRING, &res }, { "all", 'a', OPT_FLAG, &all },
		{ 0 },
	};
	json_t *req = NULL, *resp = NULL, *v;
	int npos, ret = EXIT_OK;
	size_t i;

	if (cli_parse(argc, argv, opts, ctx, &pos, &npos) < 0)
		return EXIT_USAGE;
	if (npos < 1) {
		ret = cli_error("gantry incident: missing subcommand (open, close or list)");
		goto out;
	}
	if (!strcmp(pos[0], "open")) {
		if (npos > 1 || !sev || !title) {
			ret = cli_error("usage: gantry incident open --severity P0..P3 --title TEXT [--service S] [--env E]");
			goto out;
		}
		req = json_pack("{s:s, s:s, s:s}", "op", "incident_open", "severity", sev, "title", title);
		if (svc)
			json_object_set_new(req, "service", json_string(svc));
		if (env)
			json_object_set_new(req, "environment", json_string(env));
	} else if (!strcmp(pos[0], "close")) {
		long id = npos == 2 ? gates_cli_id(pos[1]) : -1;
		if (id < 0) {
			ret = cli_error("usage: gantry incident close ID [--resolution TEXT] (ID from 'gantry incident list')");
			goto out;
		}
		req = json_pack("{s:s, s:i}", "op", "incident_close", "id", (int)id);
		if (res)
			json_object_set_new(req, "resolution", json_string(res));
	} else if (!strcmp(pos[0], "list")) {
		if (npos > 1) {
			ret = cli_error("gantry incident list: unexpected argument '%s'", pos[1]);
			goto out;
		}
		req = json_pack("{s:s, s:b}", "op", "incident_list", "all", all);
	} else {
		ret = cli_error("gantry incident: unknown subcommand '%s' (open, close or list)", pos[0]);
		goto out;
	}
	if (strcmp(pos[0], "list")) {
		json_object_set_new(req, "deployed_by", json_string(client_user()));
	}
	ret = client_call(ctx, req, &resp);
	req = NULL;
	if (ret)
		goto out;
	if (!strcmp(pos[0], "list")) {
		v = json_object_get(resp, "incidents");
		if (ctx->json) {
			gates_cli_print_json(v);
		} else {
			printf("%-4s %-3s %-7s %-20s %-16s %-20s %s\n", "ID", "SEV", "STATUS", "OPENED", "SERVICE", "ENVIRONMENT", "TITLE");
			json_array_foreach(v, i, req)
				print_incident(req);
			req = NULL;
		}
	} else {
		v = json_object_get(resp, "incident");
		if (ctx->json)
			gates_cli_print_json(v);
		else
			printf("incident %lld %s (%s: %s)\n", (long long)json_integer_value(json_object_get(v, "id")),
			       json_string_value(json_object_get(v, "status")), json_string_value(json_object_get(v, "severity")),
			       json_string_value(json_object_get(v, "title")));
	}
out:
	json_decref(req);
	json_decref(resp);
	if (npos)
		free(pos);
	return ret;
}

const struct cli_cmd cli_cmd_incident = {
	.name = "incident",
	.usage = "gantry incident open --severity P0..P3 --title TEXT [--service S] [--env E] | close ID [--resolution TEXT] | list [--all] [-o json]",
	.summary = "open, close and list incidents (open ones may freeze deploys)",
	.run = run,
};
