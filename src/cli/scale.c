#include "common.h"
#include "cli/client.h"

struct scale_opts {
	const char *env, *reason;
	long replicas;
	bool emergency;
};

static int run(int argc, char **argv, struct cli_ctx *ctx)
{
	struct scale_opts o = { .replicas = -1 };
	json_t *req, *resp = NULL;
	int ret;

	if ((ret = client_parse_target(ctx, argc, argv, &o, &o.env)))
		return ret;
	if (o.replicas < 0)
		return cli_error("gantry scale: --replicas N is required");
	req = json_pack("{s:s, s:s, s:s, s:i, s:s}", "op", "scale", "service", argv[0], "environment", o.env,
			"replicas", (int)o.replicas, "deployed_by", client_user());
	client_req_override(req, o.emergency, o.reason);
	if ((ret = client_call(ctx, req, &resp)))
		return ret;
	if (!ctx->json)
		printf("scaling %s@%s to %ld replicas\n", argv[0], o.env, o.replicas);
	else
		printf("{\"service\":\"%s\",\"environment\":\"%s\",\"replicas\":%ld}\n", argv[0], o.env, o.replicas);
	json_decref(resp);
	return EXIT_OK;
}

static const struct cli_option scale_options[] = {
	CLI_STRING('e', "env", struct scale_opts, env, "ENV", "the environment"),
	CLI_INT('r', "replicas", struct scale_opts, replicas, "N", 0, 1000, "the number of replicas (required)"),
	CLIENT_EMERGENCY_OPTIONS(struct scale_opts, "override a closed window or a freeze"),
	CLI_END,
};

const struct cli_cmd cli_cmd_scale = {
	.name = "scale",
	.usage = "gantry scale SERVICE --env ENV --replicas N [--emergency --reason TEXT]",
	.summary = "change the number of replicas of the serving revision",
	.options = scale_options,
	.run = run,
};
