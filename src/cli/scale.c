#include "common.h"
#include "cli/client.h"

static int run(int argc, char **argv, struct cli_ctx *ctx)
{
	const char *env = NULL, *replicas = NULL, *reason = NULL, **pos;
	bool emergency = false;
	struct cli_opt opts[] = {
		{ "env", 'e', OPT_STRING, &env },
		{ "replicas", 'r', OPT_STRING, &replicas },
		{ "emergency", 0, OPT_FLAG, &emergency },
		{ "reason", 0, OPT_STRING, &reason },
		{ 0 },
	};
	json_t *resp = NULL;
	int npos, ret;
	char *end;
	long n;

	if (cli_parse(argc, argv, opts, ctx, &pos, &npos) < 0)
		return EXIT_USAGE;
	if ((ret = client_need_svc_env("scale", pos, npos, env)))
		goto out;
	if (!replicas) {
		ret = cli_error("gantry scale: --replicas N is required");
		goto out;
	}
	n = strtol(replicas, &end, 10);
	if (*end || !*replicas || n < 0 || n > 1000) {
		ret = cli_error("--replicas: '%s' is not a number from 0 to 1000", replicas);
		goto out;
	}
	{
		json_t *req = json_pack("{s:s, s:s, s:s, s:i, s:s}", "op", "scale", "service", pos[0], "environment", env,
					"replicas", (int)n, "deployed_by", client_user());
		if (emergency)
			json_object_set_new(req, "emergency", json_true());
		if (reason)
			json_object_set_new(req, "reason", json_string(reason));
		ret = client_call(ctx, req, &resp);
	}
	if (!ret && !ctx->json)
		printf("scaling %s@%s to %ld replicas\n", pos[0], env, n);
	else if (!ret)
		printf("{\"service\":\"%s\",\"environment\":\"%s\",\"replicas\":%ld}\n", pos[0], env, n);
out:
	json_decref(resp);
	if (npos)
		free(pos);
	return ret;
}

const struct cli_cmd cli_cmd_scale = {
	.name = "scale",
	.usage = "gantry scale SERVICE --env ENV --replicas N [--emergency --reason TEXT]",
	.summary = "change the number of replicas of the serving revision",
	.run = run,
};
