/*
 * gantry audit [-o json]     the audit log, oldest first
 * gantry audit verify        checks the hash chain; exit 1 names the first bad entry
 */
#include "common.h"
#include "cli/client.h"
#include "cli/gates_cli.h"

static int run(int argc, char **argv, struct cli_ctx *ctx)
{
	const char **pos;
	json_t *resp = NULL, *list, *e;
	int npos, ret;
	size_t i;
	bool verify;

	if (cli_parse(argc, argv, NULL, ctx, &pos, &npos) < 0)
		return EXIT_USAGE;
	if (npos > 1 || (npos == 1 && strcmp(pos[0], "verify"))) {
		ret = cli_error("usage: gantry audit [verify] [-o json]");
		goto out;
	}
	verify = npos == 1;
	ret = client_call(ctx, json_pack("{s:s}", "op", verify ? "audit_verify" : "audit"), &resp);
	if (ret)
		goto out;
	if (verify) {
		bool intact = json_is_true(json_object_get(resp, "intact"));
		if (ctx->json) {
			json_object_del(resp, "ok");
			gates_cli_print_json(resp);
		} else {
			printf("%s (%lld entries)\n", json_string_value(json_object_get(resp, "message")),
			       (long long)json_integer_value(json_object_get(resp, "entries")));
		}
		ret = intact ? EXIT_OK : EXIT_FAILED;
		goto out;
	}
	list = json_object_get(resp, "audit");
	if (ctx->json) {
		gates_cli_print_json(list);
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
	if (npos)
		free(pos);
	return ret;
}

const struct cli_cmd cli_cmd_audit = {
	.name = "audit",
	.usage = "gantry audit [verify] [-o json]",
	.summary = "show the tamper-evident audit log, or verify its hash chain",
	.run = run,
};
