/*
 * gantry reject ID [--comment TEXT]: ends a deployment waiting for approval.
 */
#include "common.h"
#include "cli/client.h"
#include "cli/gates_cli.h"

static int run(int argc, char **argv, struct cli_ctx *ctx)
{
	const char *comment = NULL, **pos;
	struct cli_opt opts[] = { { "comment", 'm', OPT_STRING, &comment }, { 0 } };
	json_t *resp = NULL, *req;
	int npos, ret;
	long id;

	if (cli_parse(argc, argv, opts, ctx, &pos, &npos) < 0)
		return EXIT_USAGE;
	id = npos == 1 ? gates_cli_id(pos[0]) : -1;
	if (id < 0) {
		ret = cli_error("usage: gantry reject ID [--comment TEXT]");
		goto out;
	}
	req = json_pack("{s:s, s:i, s:s}", "op", "reject", "deployment", (int)id, "deployed_by", client_user());
	if (comment)
		json_object_set_new(req, "comment", json_string(comment));
	ret = client_call(ctx, req, &resp);
	if (!ret)
		printf("deployment %ld rejected\n", id);
out:
	json_decref(resp);
	if (npos)
		free(pos);
	return ret;
}

const struct cli_cmd cli_cmd_reject = {
	.name = "reject",
	.usage = "gantry reject ID [--comment TEXT]",
	.summary = "reject a deployment waiting for approval",
	.run = run,
};
