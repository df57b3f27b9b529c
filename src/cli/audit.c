/*
 * gantry audit [-o json]     the audit log, oldest first
 * gantry audit verify        checks the hash chain; exit 1 names the first bad entry
 */
#include "common.h"
#include "cli/client.h"

static int run(int argc, char **argv, struct cli_ctx *ctx)
{
	json_t *resp = NULL, *list, *e;
	int npos, ret;
	size_t i;
	bool verify;

	if ((npos = cli_parse_opts(ctx->cmd, argc, argv, ctx, NULL)) < 0)
		return EXIT_USAGE;
	if (npos > 1 || (npos == 1 && strcmp(argv[0], "verify")))
		return cli_error("usage: gantry audit [verify] [-o json]");
	verify = npos == 1;
	if ((ret = client_call(ctx, json_pack("{s:s}", "op", verify ? "audit_verify" : "audit"), &resp)))
		return ret;
	if (verify) {
		bool intact = json_is_true(json_object_get(resp, "intact"));
		if (ctx->json) {
			client_print_reply(resp);
		} else {
			printf("%s (%lld entries)\n", json_string_value(json_object_get(resp, "message")),
			       (long long)json_integer_value(json_object_get(resp, "entries")));
		}
		ret = intact ? EXIT_OK : EXIT_FAILED;
		goto out;
	}
	list = json_object_get(resp, "audit");
	if (ctx->json) {
		client_print_json(list);
		goto out;
	}
	printf("%-5s %-20s %-12s %-16s %-24s %s\n", "SEQ", "TIME", "ACTOR", "ACTION", "TARGET", "DETAILS");
	json_array_foreach(list, i, e) {
		char *d = json_dumps(json_object_get(e, "details"), JSON_COMPACT | JSON_SORT_KEYS);
		printf("%-5lld %-20s %-12s %-16s %-24s %.120s\n", (long long)json_integer_value(json_object_get(e, "seq")),
		       json_string_value(json_object_get(e, "time")), json_string_value(json_object_get(e, "actor")),
		       json_string_value(json_object_get(e, "action")), json_string_value(json_object_get(e, "target")),
		       d ? d : "");
		free(d);
	}
out:
	json_decref(resp);
	return ret;
}

const struct cli_cmd cli_cmd_audit = {
	.name = "audit",
	.usage = "gantry audit [verify] [-o json]",
	.summary = "show the tamper-evident audit log, or verify its hash chain",
	.run = run,
};
