/*
 * nodes.c — `gantry nodes [--env ENV] [-o json]`: the nodes of the clusters
 * the controller runs revisions on (environments.E.cluster), as its last
 * poll saw them, and how many of our replicas each runs.
 */
#include "common.h"
#include "cli/client.h"

struct nodes_opts {
	const char *env;
};

static int run(int argc, char **argv, struct cli_ctx *ctx)
{
	struct nodes_opts o = { 0 };
	json_t *req, *resp, *n;
	size_t i;
	int npos, ret;

	if ((npos = cli_parse_opts(ctx->cmd, argc, argv, ctx, &o)) < 0)
		return EXIT_USAGE;
	if (npos > 0)
		return cli_error("gantry nodes: unexpected argument '%s'", argv[0]);
	req = json_pack("{s:s}", "op", "nodes");
	client_req_str(req, "environment", o.env);
	if ((ret = client_call(ctx, req, &resp)))
		return ret;
	if (ctx->json) {
		client_print_line(json_object_get(resp, "nodes"));
		json_decref(resp);
		return EXIT_OK;
	}
	if (!json_array_size(json_object_get(resp, "nodes")))
		printf("no cluster in use (environments.E.cluster, with a revision deployed there)\n");
	else
		printf("%-24s %-8s %-8s %-12s %8s  %s\n", "HOSTNAME", "ROLE", "STATE", "AVAILABILITY", "REPLICAS",
		       "ENVIRONMENTS");
	json_array_foreach(json_object_get(resp, "nodes"), i, n) {
		const char *e = json_string_value(json_object_get(n, "error"));
		if (e) {
			printf("cluster %s (%s): %s\n", json_string_value(json_object_get(n, "cluster")),
			       json_string_value(json_object_get(n, "environment")), e);
			continue;
		}
		printf("%-24s %-8s %-8s %-12s %8lld  %s%s\n", json_string_value(json_object_get(n, "hostname")),
		       json_string_value(json_object_get(n, "role")), json_string_value(json_object_get(n, "state")),
		       json_string_value(json_object_get(n, "availability")),
		       (long long)json_integer_value(json_object_get(n, "replicas")),
		       json_string_value(json_object_get(n, "environment")),
		       json_is_true(json_object_get(n, "leader")) ? " (leader)" : "");
	}
	json_decref(resp);
	return EXIT_OK;
}

static const struct cli_option nodes_options[] = {
	CLI_STRING('e', "env", struct nodes_opts, env, "ENV", "only the cluster of this environment"),
	CLI_END,
};

const struct cli_cmd cli_cmd_nodes = {
	.name = "nodes",
	.usage = "gantry nodes [--env ENV] [-o json]",
	.summary = "list the nodes of the clusters revisions run on, and our replicas on each",
	.options = nodes_options,
	.run = run,
};
