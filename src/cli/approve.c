/*
 * gantry approve [ID] [--comment TEXT]
 *   Approves deployment ID (from the deploy's "waiting for approval" message,
 *   or the rollout id `gantry status` shows in phase pending_approval). The
 *   requester cannot approve their own deploy; when enough distinct approvers
 *   have approved, the rollout starts. Without ID: lists what waits.
 */
#include "common.h"
#include "cli/client.h"
#include "cli/gates_cli.h"

static int list_pending(struct cli_ctx *ctx)
{
	json_t *resp, *d;
	size_t i;
	int ret = client_call(ctx, json_pack("{s:s, s:s}", "op", "deployments", "state", "pending_approval"), &resp);
	if (ret)
		return ret;
	if (ctx->json) {
		gates_cli_print_json(json_object_get(resp, "deployments"));
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

/* shared with reject.c through the command name */
static int run(int argc, char **argv, struct cli_ctx *ctx)
{
	const char *comment = NULL, **pos;
	struct cli_opt opts[] = { { "comment", 'm', OPT_STRING, &comment }, { 0 } };
	json_t *resp = NULL, *req;
	int npos, ret;
	long id;

	if (cli_parse(argc, argv, opts, ctx, &pos, &npos) < 0)
		return EXIT_USAGE;
	if (!npos) {
		ret = list_pending(ctx);
		goto out;
	}
	id = npos == 1 ? gates_cli_id(pos[0]) : -1;
	if (id < 0) {
		ret = cli_error("usage: gantry approve [ID] [--comment TEXT] (ID: a deployment waiting for approval)");
		goto out;
	}
	req = json_pack("{s:s, s:i, s:s}", "op", "approve", "deployment", (int)id, "deployed_by", client_user());
	if (comment)
		json_object_set_new(req, "comment", json_string(comment));
	ret = client_call(ctx, req, &resp);
	if (ret)
		goto out;
	if (ctx->json) {
		json_object_del(resp, "ok");
		gates_cli_print_json(resp);
	} else if (!strcmp(json_string_value(json_object_get(resp, "state")) ?: "", "pre_checks")) {
		printf("deployment %ld approved (%lld of %lld): its pre-deployment checks run in the controller; "
		       "it starts when they pass (gantry deployments, gantry status)\n", id,
		       (long long)json_integer_value(json_object_get(resp, "approvals")),
		       (long long)json_integer_value(json_object_get(resp, "needed")));
	} else if (json_is_true(json_object_get(resp, "started"))) {
		printf("deployment %ld approved (%lld of %lld): rollout %lld started, revision %lld (version %s)\n", id,
		       (long long)json_integer_value(json_object_get(resp, "approvals")),
		       (long long)json_integer_value(json_object_get(resp, "needed")),
		       (long long)json_integer_value(json_object_get(resp, "rollout")),
		       (long long)json_integer_value(json_object_get(resp, "revision")),
		       json_string_value(json_object_get(resp, "version")));
	} else {
		const char *msg = json_string_value(json_object_get(resp, "message"));
		printf("deployment %ld approved (%lld of %lld)%s%s\n", id,
		       (long long)json_integer_value(json_object_get(resp, "approvals")),
		       (long long)json_integer_value(json_object_get(resp, "needed")), msg ? ": " : "", msg ? msg : "");
	}
out:
	json_decref(resp);
	if (npos)
		free(pos);
	return ret;
}

const struct cli_cmd cli_cmd_approve = {
	.name = "approve",
	.usage = "gantry approve [ID] [--comment TEXT]",
	.summary = "approve a deployment waiting for approval (no ID: list them)",
	.run = run,
};
