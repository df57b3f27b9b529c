/*
 * gantry promote SVC --from E1 --to E2 [--revision N] [--wait] [--timeout D]
 *                [--emergency --reason TEXT]
 * Deploys to E2 the exact artifact (same digest, same version) of the
 * revision serving in E1 (or revision N of E1), with E2's resolved config
 * from the spec. The daemon refuses a revision that is not serving healthily
 * in E1, or has not soaked environments.E2.min_soak; E2's other gates apply.
 */
#include "common.h"
#include "cli/client.h"
#include "cli/gates_cli.h"
#include "cli/spec_load.h"
#include "core/spec.h"
#include "util/parse.h"

static int run(int argc, char **argv, struct cli_ctx *ctx)
{
	const char *from = NULL, *to = NULL, *rev = NULL, *timeout = NULL, *reason = NULL, **pos;
	bool wait = false, emergency = false;
	struct cli_opt opts[] = {
		{ "from", 0, OPT_STRING, &from },      { "to", 0, OPT_STRING, &to },
		{ "revision", 0, OPT_STRING, &rev },   { "wait", 'w', OPT_FLAG, &wait },
		{ "timeout", 0, OPT_STRING, &timeout }, { "emergency", 0, OPT_FLAG, &emergency },
		{ "reason", 0, OPT_STRING, &reason },  { 0 },
	};
	struct spec *spec = NULL;
	struct svc_config cfg = { 0 };
	struct gerr err;
	json_t *src = NULL, *resp = NULL, *req;
	long want = 0;
	int64_t timeout_ms = 0;
	int npos, ret;
	char why[256];

	if (cli_parse(argc, argv, opts, ctx, &pos, &npos) < 0)
		return EXIT_USAGE;
	if (npos != 1 || !from || !to) {
		ret = cli_error("usage: gantry promote SERVICE --from ENV --to ENV [--revision N] [--wait]");
		goto out;
	}
	if (!strcmp(from, to)) {
		ret = cli_error("--from and --to name the same environment '%s'", from);
		goto out;
	}
	if (rev && (want = gates_cli_id(rev)) < 0) {
		ret = cli_error("--revision: expected a revision number, got '%s'", rev);
		goto out;
	}
	if (timeout && parse_duration_ms(timeout, &timeout_ms) < 0) {
		ret = cli_error("--timeout: invalid duration '%s' (e.g. 90s, 10m)", timeout);
		goto out;
	}
	if (emergency && (!reason || !*reason)) {
		ret = cli_error("--emergency needs --reason \"...\"");
		goto out;
	}
	if (cli_spec_present(ctx)) {
		/* a spec at hand is checked here and applied by the controller */
		if ((ret = cli_load_spec(ctx, &spec)))
			goto out;
		if (!spec_find_env(spec, from)) {
			ret = cli_error("--from: no environment '%s' in %s", from, spec->path);
			goto out;
		}
		if (spec_resolve(spec, pos[0], to, &cfg, &err) < 0) {
			ret = cli_error("%s", err.msg);
			goto out;
		}
	}
	req = json_pack("{s:s, s:s, s:s}", "op", "promotion_source", "service", pos[0], "from", from);
	if (want)
		json_object_set_new(req, "revision", json_integer(want));
	if ((ret = client_call(ctx, req, &src)))
		goto out;
	want = (long)json_integer_value(json_object_get(src, "revision"));
	snprintf(why, sizeof(why), "%s%spromote revision %ld from %s", reason ? reason : "", reason ? ": " : "", want, from);
	req = json_pack("{s:s, s:s, s:s, s:O, s:O, s:s, s:{s:s, s:i}, s:s}", "op", "deploy", "service", pos[0],
			"environment", to, "version", json_object_get(src, "version"), "digest",
			json_object_get(src, "digest"), "deployed_by", client_user(),
			"promotion", "from", from, "revision", (int)want, "reason", why);
	if (emergency)
		json_object_set_new(req, "emergency", json_true());
	if (spec && (ret = cli_spec_attach(ctx, req))) {
		json_decref(req);
		goto out;
	}
	if ((ret = client_call(ctx, req, &resp)))
		goto out;
	if (!strcmp(json_string_value(json_object_get(resp, "state")) ?: "", "pre_checks")) {
		json_t *row = NULL;
		ret = gates_cli_wait_deployment(ctx, pos[0], to, json_integer_value(json_object_get(resp, "deployment")), &row);
		if (row) {
			json_object_set(resp, "revision", json_object_get(row, "revision"));
			json_object_set(resp, "rollout", json_object_get(row, "rollout"));
		}
		json_decref(row);
		if (ret)
			goto out;
	}
	{
		json_int_t r = json_integer_value(json_object_get(resp, "revision"));
		json_int_t rollout = json_integer_value(json_object_get(resp, "rollout"));
		if (ctx->json && !wait)
			printf("{\"service\":\"%s\",\"environment\":\"%s\",\"revision\":%lld,\"rollout\":%lld,\"version\":\"%s\","
			       "\"digest\":\"%s\",\"from\":\"%s\",\"from_revision\":%ld}\n", pos[0], to, (long long)r,
			       (long long)rollout, json_string_value(json_object_get(src, "version")),
			       json_string_value(json_object_get(src, "digest")), from, want);
		else if (!ctx->json)
			printf("promoting %s revision %ld of %s (version %s, artifact %.12s) to %s: revision %lld, rollout %lld\n",
			       pos[0], want, from, json_string_value(json_object_get(src, "version")),
			       json_string_value(json_object_get(src, "digest")), to, (long long)r, (long long)rollout);
		fflush(stdout);
		if (wait)
			ret = client_wait_rollout(ctx, pos[0], to, rollout, timeout_ms ? timeout_ms
						  : (cfg.progress_deadline_ms ? cfg.progress_deadline_ms : 600000) + 60000);
	}
out:
	json_decref(src);
	json_decref(resp);
	svc_config_release(&cfg);
	spec_free(spec);
	if (npos)
		free(pos);
	return ret;
}

const struct cli_cmd cli_cmd_promote = {
	.name = "promote",
	.usage = "gantry promote SERVICE --from ENV --to ENV [--revision N] [--wait] [--timeout DUR] [--emergency --reason TEXT]",
	.summary = "deploy the exact artifact serving in one environment to another",
	.run = run,
};
