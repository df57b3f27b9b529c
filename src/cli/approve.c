/*
 * gantry approve [ID] [--comment TEXT]
 *   Approves deployment ID (from the deploy's "waiting for approval" message,
 *   or the rollout id `gantry status` shows in phase pending_approval). The
 *   requester cannot approve their own deploy; when enough distinct approvers
 *   have approved, the rollout starts. Without ID: lists what waits.
 * gantry reject ID [--comment TEXT]
 *   Ends a deployment waiting for approval.
 * One command shape with a verb: the command's name is the API operation.
 */
#include "common.h"
#include "cli/client.h"
#include "cli/gates_cli.h"

struct decide_opts {
	const char *comment;
};

static int list_pending(struct cli_ctx *ctx)
{
	json_t *resp, *d;
	size_t i;
	int ret = client_call(ctx, json_pack("{s:s, s:s}", "op", "deployments", "state", "pending_approval"), &resp);
	if (ret)
		return ret;
	if (ctx->json) {
		client_print_json(json_object_get(resp, "deployments"));
	} else {
		printf("%-5s %-24s %-20s %-12s %-9s %s\n", "ID", "SERVICE", "VERSION", "REQUESTER", "APPROVALS", "REQUESTED");
		json_array_foreach(json_object_get(resp, "deployments"), i, d) {
			char se[160];
			snprintf(se, sizeof(se), "%s@%s", json_string_value(json_object_get(d, "service")),
				 json_string_value(json_object_get(d, "environment")));
			printf("%-5lld %-24s %-20s %-12s %zu/%-7lld %s\n", (long long)json_integer_value(json_object_get(d, "id")),
			       se, json_string_value(json_object_get(d, "version")),
			       json_string_value(json_object_get(d, "requester")),
			       json_array_size(json_object_get(d, "approvals")),
			       (long long)json_integer_value(json_object_get(d, "approvals_needed")),
			       json_string_value(json_object_get(d, "created_at")));
		}
	}
	json_decref(resp);
	return EXIT_OK;
}

/* what an approval did: started the rollout, its checks, or counts towards it */
static void print_approved(long id, json_t *resp)
{
	long long got = (long long)json_integer_value(json_object_get(resp, "approvals"));
	long long needed = (long long)json_integer_value(json_object_get(resp, "needed"));
	const char *msg = json_string_value(json_object_get(resp, "message"));

	if (!strcmp(json_string_value(json_object_get(resp, "state")) ?: "", "pre_checks"))
		printf("deployment %ld approved (%lld of %lld): its pre-deployment checks run in the controller; "
		       "it starts when they pass (gantry deployments, gantry status)\n", id, got, needed);
	else if (json_object_get(resp, "release"))
		printf("deployment %ld approved (%lld of %lld): release %lld starts (gantry release status %lld)\n", id,
		       got, needed, (long long)json_integer_value(json_object_get(resp, "release")),
		       (long long)json_integer_value(json_object_get(resp, "release")));
	else if (json_is_true(json_object_get(resp, "started")))
		printf("deployment %ld approved (%lld of %lld): rollout %lld started, revision %lld (version %s)\n", id,
		       got, needed, (long long)json_integer_value(json_object_get(resp, "rollout")),
		       (long long)json_integer_value(json_object_get(resp, "revision")),
		       json_string_value(json_object_get(resp, "version")));
	else
		printf("deployment %ld approved (%lld of %lld)%s%s\n", id, got, needed, msg ? ": " : "", msg ? msg : "");
}

static int run(int argc, char **argv, struct cli_ctx *ctx)
{
	const char *op = ctx->cmd->name;
	bool approve = !strcmp(op, "approve");
	struct decide_opts o = { 0 };
	json_t *resp = NULL, *req;
	int npos, ret;
	long id;

	if ((npos = cli_parse_opts(ctx->cmd, argc, argv, ctx, &o)) < 0)
		return EXIT_USAGE;
	if (!npos && approve)
		return list_pending(ctx);
	id = npos == 1 ? gates_cli_id(argv[0]) : -1;
	if (id < 0)
		return cli_error(approve ? "usage: gantry approve [ID] [--comment TEXT] (ID: a deployment waiting for approval)"
				 : "usage: gantry reject ID [--comment TEXT]");
	req = json_pack("{s:s, s:i, s:s}", "op", op, "deployment", (int)id, "deployed_by", client_user());
	client_req_str(req, "comment", o.comment);
	if ((ret = client_call(ctx, req, &resp)))
		return ret;
	if (!approve)
		printf("deployment %ld rejected\n", id);
	else if (ctx->json)
		client_print_reply(resp);
	else
		print_approved(id, resp);
	json_decref(resp);
	return EXIT_OK;
}

static const struct cli_option decide_options[] = {
	CLI_STRING('m', "comment", struct decide_opts, comment, "TEXT", "a note kept with the decision"),
	CLI_END,
};

const struct cli_cmd cli_cmd_approve = {
	.name = "approve",
	.usage = "gantry approve [ID] [--comment TEXT]",
	.summary = "approve a deployment waiting for approval (no ID: list them)",
	.options = decide_options,
	.run = run,
};

const struct cli_cmd cli_cmd_reject = {
	.name = "reject",
	.usage = "gantry reject ID [--comment TEXT]",
	.summary = "reject a deployment waiting for approval",
	.options = decide_options,
	.run = run,
};
