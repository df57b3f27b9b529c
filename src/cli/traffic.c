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

static int run(int argc, char **argv, struct cli_ctx *ctx)
{
	const char *env = NULL, *set = NULL, *reason = NULL, **pos;
	bool reset = false, emergency = false;
	struct cli_opt opts[] = {
		{ "env", 'e', OPT_STRING, &env },
		{ "set", 0, OPT_STRING, &set },
		{ "reset", 0, OPT_FLAG, &reset },
		{ "emergency", 0, OPT_FLAG, &emergency },
		{ "reason", 0, OPT_STRING, &reason },
		{ 0 },
	};
	json_t *req, *resp = NULL, *weights = NULL;
	int npos, ret;

	if (cli_parse(argc, argv, opts, ctx, &pos, &npos) < 0)
		return EXIT_USAGE;
	if ((ret = client_need_svc_env("traffic", pos, npos, env)))
		goto out;
	if (!set == !reset) {
		ret = cli_error("gantry traffic: give either --set REV=W[,REV=W...] or --reset");
		goto out;
	}
	if (set && !(weights = parse_weights(set))) {
		ret = EXIT_USAGE;
		goto out;
	}
	req = json_pack("{s:s, s:s, s:s, s:s}", "op", "traffic", "service", pos[0], "environment", env,
			"deployed_by", client_user());
	json_object_set_new(req, "weights", weights ? weights : json_null());
	if (emergency)
		json_object_set_new(req, "emergency", json_true());
	if (reason)
		json_object_set_new(req, "reason", json_string(reason));
	if ((ret = client_call(ctx, req, &resp)))
		goto out;
	if (!ctx->json)
		printf("%s@%s traffic: %s\n", pos[0], env, set ? set : "by ready replicas");
	else
		printf("{\"ok\":true}\n");
out:
	json_decref(resp);
	if (npos)
		free(pos);
	return ret;
}

const struct cli_cmd cli_cmd_traffic = {
	.name = "traffic",
	.usage = "gantry traffic SERVICE --env ENV (--set REV=W[,REV=W...] | --reset) [--emergency --reason TEXT]",
	.summary = "split traffic between running revisions by hand (weights add up to 100)",
	.run = run,
};
