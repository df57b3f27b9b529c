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

struct incident_opts {
	const char *severity, *title, *service, *env, *resolution;
	bool all;
};

/* the request of subcommand sub (argv[0] of the npos positional arguments), or NULL after printing the error */
static json_t *incident_request(const struct incident_opts *o, int npos, char **argv)
{
	const char *sub = argv[0];
	json_t *req;

	if (!strcmp(sub, "open")) {
		if (npos > 1 || !o->severity || !o->title)
			return cli_error("usage: gantry incident open --severity P0..P3 --title TEXT [--service S] [--env E]"), NULL;
		req = json_pack("{s:s, s:s, s:s}", "op", "incident_open", "severity", o->severity, "title", o->title);
		client_req_str(req, "service", o->service);
		client_req_str(req, "environment", o->env);
	} else if (!strcmp(sub, "close")) {
		long id = npos == 2 ? gates_cli_id(argv[1]) : -1;
		if (id < 0)
			return cli_error("usage: gantry incident close ID [--resolution TEXT] (ID from 'gantry incident list')"),
			       NULL;
		req = json_pack("{s:s, s:i}", "op", "incident_close", "id", (int)id);
		client_req_str(req, "resolution", o->resolution);
	} else if (!strcmp(sub, "list")) {
		if (npos > 1)
			return cli_error("gantry incident list: unexpected argument '%s'", argv[1]), NULL;
		return json_pack("{s:s, s:b}", "op", "incident_list", "all", o->all);
	} else {
		return cli_error("gantry incident: unknown subcommand '%s' (open, close or list)", sub), NULL;
	}
	json_object_set_new(req, "deployed_by", json_string(client_user()));
	return req;
}

static int run(int argc, char **argv, struct cli_ctx *ctx)
{
	struct incident_opts o = { 0 };
	json_t *req, *resp = NULL, *v;
	int npos, ret;
	size_t i;

	if ((npos = cli_parse_opts(ctx->cmd, argc, argv, ctx, &o)) < 0)
		return EXIT_USAGE;
	if (npos < 1)
		return cli_error("gantry incident: missing subcommand (open, close or list)");
	if (!(req = incident_request(&o, npos, argv)))
		return EXIT_USAGE;
	if ((ret = client_call(ctx, req, &resp)))
		return ret;
	if (!strcmp(argv[0], "list")) {
		v = json_object_get(resp, "incidents");
		if (ctx->json) {
			client_print_json(v);
		} else {
			printf("%-4s %-3s %-7s %-20s %-16s %-20s %s\n", "ID", "SEV", "STATUS", "OPENED", "SERVICE", "ENVIRONMENT", "TITLE");
			json_array_foreach(v, i, req)
				print_incident(req);
		}
	} else {
		v = json_object_get(resp, "incident");
		if (ctx->json)
			client_print_json(v);
		else
			printf("incident %lld %s (%s: %s)\n", (long long)json_integer_value(json_object_get(v, "id")),
			       json_string_value(json_object_get(v, "status")), json_string_value(json_object_get(v, "severity")),
			       json_string_value(json_object_get(v, "title")));
	}
	json_decref(resp);
	return EXIT_OK;
}

static const struct cli_option incident_options[] = {
	CLI_STRING('s', "severity", struct incident_opts, severity, "P0..P3", "open: how bad"),
	CLI_STRING('t', "title", struct incident_opts, title, "TEXT", "open: what is wrong"),
	CLI_STRING(0, "service", struct incident_opts, service, "S", "open: the service concerned (default every one)"),
	CLI_STRING('e', "env", struct incident_opts, env, "E", "open: the environment concerned (default every one)"),
	CLI_STRING('r', "resolution", struct incident_opts, resolution, "TEXT", "close: how it was resolved"),
	CLI_BOOL('a', "all", struct incident_opts, all, "list: the closed ones too"),
	CLI_END,
};

const struct cli_cmd cli_cmd_incident = {
	.name = "incident",
	.usage = "gantry incident open --severity P0..P3 --title TEXT [--service S] [--env E] | close ID [--resolution TEXT] | list [--all] [-o json]",
	.summary = "open, close and list incidents (open ones may freeze deploys)",
	.options = incident_options,
	.run = run,
};
