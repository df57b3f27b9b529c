/*
 * gantry deployments [SVC] [--env E] [--state S] [-o json]: the deployment
 * records, newest first: every deploy, promotion, rollback and restart
 * asked of the controller, with its state (pending_approval until it
 * expires, pre_checks, started, succeeded, failed, refused, rejected,
 * expired, ...), who asked, the spec version it was resolved from, and for
 * one waiting for approval when it expires.
 */
#include "common.h"
#include "cli/client.h"

static const char *str(json_t *o, const char *k)
{
	const char *s = json_string_value(json_object_get(o, k));
	return s && *s ? s : "-";
}

/* " [flag risky off by rollback_on at T]..." for the flags turned off instead of a rollback (flag_offs) */
static void flag_offs(json_t *d, char *buf, size_t len)
{
	size_t i, off = 0;
	json_t *f;
	buf[0] = 0;
	json_array_foreach(json_object_get(d, "flag_offs"), i, f)
		if (off < len)
			off += (size_t)snprintf(buf + off, len - off, " [flag %s off by %s at %s]", str(f, "flag"),
						str(f, "source"), str(f, "at"));
}

struct deployments_opts {
	const char *env, *state;
};

static int run(int argc, char **argv, struct cli_ctx *ctx)
{
	struct deployments_opts o = { 0 };
	json_t *req, *resp = NULL, *d;
	size_t i;
	int npos, ret;

	if ((npos = cli_parse_opts(ctx->cmd, argc, argv, ctx, &o)) < 0)
		return EXIT_USAGE;
	if (npos > 1)
		return cli_error("gantry deployments: unexpected argument '%s'", argv[1]);
	req = json_pack("{s:s, s:i}", "op", "deployments", "limit", 200);
	client_req_str(req, "service", npos ? argv[0] : NULL);
	client_req_str(req, "environment", o.env);
	client_req_str(req, "state", o.state);
	if ((ret = client_call(ctx, req, &resp)))
		return ret;
	if (ctx->json) {
		client_print_json(json_object_get(resp, "deployments"));
		goto out;
	}
	printf("%-5s %-24s %-8s %-17s %-12s %-14s %-5s %-20s %s\n", "ID", "SERVICE@ENV", "KIND", "STATE", "BY", "VERSION",
	       "SPEC", "CREATED", "EXPIRES / RESULT");
	json_array_foreach(json_object_get(resp, "deployments"), i, d) {
		char target[160], offs[512];
		bool pending = !strcmp(str(d, "state"), "pending_approval");
		snprintf(target, sizeof(target), "%s@%s", str(d, "service"), str(d, "environment"));
		flag_offs(d, offs, sizeof(offs));
		printf("%-5lld %-24s %-8s %-17s %-12s %-14s %-5lld %-20s %s%s%s%s\n",
		       (long long)json_integer_value(json_object_get(d, "id")), target, str(d, "kind"), str(d, "state"),
		       str(d, "requester"), str(d, "version"), (long long)json_integer_value(json_object_get(d, "spec_version")),
		       str(d, "created_at"), pending ? "expires " : str(d, "result"),
		       pending ? str(d, "expires_at") : (*str(d, "result_reason") != '-' ? ": " : ""),
		       pending ? "" : (*str(d, "result_reason") != '-' ? str(d, "result_reason") : ""), offs);
	}
out:
	json_decref(resp);
	return EXIT_OK;
}

static const struct cli_option deployments_options[] = {
	CLI_STRING('e', "env", struct deployments_opts, env, "ENV", "only this environment's"),
	CLI_STRING(0, "state", struct deployments_opts, state, "STATE", "only those in this state (pending_approval, ...)"),
	CLI_END,
};

const struct cli_cmd cli_cmd_deployments = {
	.name = "deployments",
	.usage = "gantry deployments [SERVICE] [--env ENV] [--state STATE] [-o json]",
	.summary = "the deployment records: who asked what, its state, when a waiting one expires",
	.options = deployments_options,
	.run = run,
};
