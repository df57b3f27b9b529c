#include "common.h"
#include "cli/client.h"

static int run(int argc, char **argv, struct cli_ctx *ctx)
{
	const char *env = NULL, **pos;
	struct cli_opt opts[] = { { "env", 'e', OPT_STRING, &env }, { 0 } };
	json_t *resp, *list, *r;
	size_t i;
	int npos, ret;

	if (cli_parse(argc, argv, opts, ctx, &pos, &npos) < 0)
		return EXIT_USAGE;
	if ((ret = client_need_svc_env("history", pos, npos, env)))
		goto out;
	ret = client_call(ctx, json_pack("{s:s, s:s, s:s}", "op", "history", "service", pos[0],
					 "environment", env), &resp);
	if (ret)
		goto out;
	list = json_object_get(resp, "history");
	if (ctx->json) {
		char *s = json_dumps(list, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
		printf("%s\n", s);
		free(s);
	} else {
		printf("%-4s %-22s %-20s %-12s %-10s %-12s %s\n", "REV", "CREATED", "VERSION", "STATUS", "KIND", "BY", "REASON");
		json_array_foreach(list, i, r)
			printf("%-4lld %-22s %-20s %-12s %-10s %-12s %s\n",
			       (long long)json_integer_value(json_object_get(r, "revision")),
			       json_string_value(json_object_get(r, "created_at")),
			       json_string_value(json_object_get(r, "version")),
			       json_string_value(json_object_get(r, "status")),
			       json_string_value(json_object_get(r, "kind")),
			       json_string_value(json_object_get(r, "deployed_by")),
			       json_string_value(json_object_get(r, "reason")));
	}
	json_decref(resp);
out:
	if (npos)
		free(pos);
	return ret;
}

const struct cli_cmd cli_cmd_history = {
	.name = "history",
	.usage = "gantry history SERVICE --env ENV [-o json]",
	.summary = "list the revisions of a service environment, newest first",
	.run = run,
};
