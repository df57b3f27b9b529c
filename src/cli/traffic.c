#include "common.h"
#include "cli/client.h"

/* "41=90,42=10" -> [{revision, weight}], or NULL with the error printed */
static json_t *parse_weights(const char *s)
{
	json_t *list = json_array();
	char *copy = xstrdup(s), *save = NULL, *tok;
	int sum = 0;
	for (tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		char *eq = strchr(tok, '='), *end1, *end2;
		long rev, w;
		if (!eq)
			goto bad;
		*eq = 0;
		rev = strtol(tok, &end1, 10);
		w = strtol(eq + 1, &end2, 10);
		if (*end1 || *end2 || end1 == tok || end2 == eq + 1 || rev <= 0 || w < 0 || w > 100)
			goto bad;
		sum += (int)w;
		json_array_append_new(list, json_pack("{s:i, s:i}", "revision", (int)rev, "weight", (int)w));
	}
	free(copy);
	if (!json_array_size(list) || sum != 100) {
		cli_error("--set %s: weights must add up to 100 (they add up to %d)", s, sum);
		json_decref(list);
		return NULL;
	}
	return list;
bad:
	cli_error("--set %s: expected REV=WEIGHT[,REV=WEIGHT...] with weights 0..100 (e.g. 41=90,42=10)", s);
	free(copy);
	json_decref(list);
	return NULL;
}

struct traffic_opts {
	const char *env, *set, *reason;
	bool reset, emergency;
};

static int run(int argc, char **argv, struct cli_ctx *ctx)
{
	struct traffic_opts o = { 0 };
	json_t *req, *resp = NULL, *weights = NULL;
	int ret;

	if ((ret = client_parse_target(ctx, argc, argv, &o, &o.env)))
		return ret;
	if (!o.set == !o.reset)
		return cli_error("gantry traffic: give either --set REV=W[,REV=W...] or --reset");
	if (o.set && !(weights = parse_weights(o.set)))
		return EXIT_USAGE;
	req = json_pack("{s:s, s:s, s:s, s:s}", "op", "traffic", "service", argv[0], "environment", o.env,
			"deployed_by", client_user());
	json_object_set_new(req, "weights", weights ? weights : json_null());
	client_req_override(req, o.emergency, o.reason);
	if ((ret = client_call(ctx, req, &resp)))
		return ret;
	if (!ctx->json)
		printf("%s@%s traffic: %s\n", argv[0], o.env, o.set ? o.set : "by ready replicas");
	else
		printf("{\"ok\":true}\n");
	json_decref(resp);
	return EXIT_OK;
}

static const struct cli_option traffic_options[] = {
	CLI_STRING('e', "env", struct traffic_opts, env, "ENV", "the environment"),
	CLI_STRING(0, "set", struct traffic_opts, set, "REV=W[,REV=W...]", "each revision's weight, adding up to 100"),
	CLI_BOOL(0, "reset", struct traffic_opts, reset, "back to the split by ready replicas"),
	CLIENT_EMERGENCY_OPTIONS(struct traffic_opts, "override a closed window or a freeze"),
	CLI_END,
};

const struct cli_cmd cli_cmd_traffic = {
	.name = "traffic",
	.usage = "gantry traffic SERVICE --env ENV (--set REV=W[,REV=W...] | --reset) [--emergency --reason TEXT]",
	.summary = "split traffic between running revisions by hand (weights add up to 100)",
	.options = traffic_options,
	.run = run,
};
