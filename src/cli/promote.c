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
#include "cli/pullwait.h"
#include "cli/spec_load.h"
#include "core/spec.h"

struct promote_opts {
	const char *from, *to, *reason;
	long revision;
	bool wait, emergency;
	int64_t timeout_ms;
};

static int run(int argc, char **argv, struct cli_ctx *ctx)
{
	struct promote_opts o = { 0 };
	const char *svc;
	struct spec *spec = NULL;
	struct svc_config cfg = { 0 };
	struct gerr err;
	json_t *src = NULL, *resp = NULL, *req;
	long want;
	int npos, ret;
	char why[256];
	json_int_t rollout;

	if ((npos = cli_parse_opts(ctx->cmd, argc, argv, ctx, &o)) < 0)
		return EXIT_USAGE;
	if (npos != 1 || !o.from || !o.to)
		return cli_error("usage: gantry promote SERVICE --from ENV --to ENV [--revision N] [--wait]");
	if (!strcmp(o.from, o.to))
		return cli_error("--from and --to name the same environment '%s'", o.from);
	if (o.emergency && (!o.reason || !*o.reason))
		return cli_error("--emergency needs --reason \"...\"");
	svc = argv[0];
	if (cli_spec_present(ctx)) {
		/* a spec at hand is checked here and applied by the controller */
		if ((ret = cli_load_spec(ctx, &spec)))
			goto out;
		if (!spec_find_env(spec, o.from)) {
			ret = cli_error("--from: no environment '%s' in %s", o.from, spec->path);
			goto out;
		}
		if (spec_resolve(spec, svc, o.to, &cfg, &err) < 0) {
			ret = cli_error("%s", err.msg);
			goto out;
		}
	}
	req = json_pack("{s:s, s:s, s:s}", "op", "promotion_source", "service", svc, "from", o.from);
	if (o.revision)
		json_object_set_new(req, "revision", json_integer(o.revision));
	if ((ret = client_call(ctx, req, &src)))
		goto out;
	want = (long)json_integer_value(json_object_get(src, "revision"));
	snprintf(why, sizeof(why), "%s%spromote revision %ld from %s", o.reason ? o.reason : "", o.reason ? ": " : "",
		 want, o.from);
	req = json_pack("{s:s, s:s, s:s, s:O, s:O, s:s, s:{s:s, s:i}, s:s}", "op", "deploy", "service", svc,
			"environment", o.to, "version", json_object_get(src, "version"), "digest",
			json_object_get(src, "digest"), "deployed_by", client_user(),
			"promotion", "from", o.from, "revision", (int)want, "reason", why);
	if (o.emergency)
		json_object_set_new(req, "emergency", json_true());
	if (spec && (ret = cli_spec_attach(ctx, req))) {
		json_decref(req);
		goto out;
	}
	if ((ret = client_call(ctx, req, &resp)))
		goto out;
	if ((ret = cli_pull_follow(ctx, svc, o.to, resp)))
		goto out;
	if ((ret = gates_cli_deploy_started(ctx, svc, o.to, resp)))
		goto out;
	rollout = json_integer_value(json_object_get(resp, "rollout"));
	if (ctx->json && !o.wait)
		printf("{\"service\":\"%s\",\"environment\":\"%s\",\"revision\":%lld,\"rollout\":%lld,\"version\":\"%s\","
		       "\"digest\":\"%s\",\"from\":\"%s\",\"from_revision\":%ld}\n", svc, o.to,
		       (long long)json_integer_value(json_object_get(resp, "revision")), (long long)rollout,
		       json_string_value(json_object_get(src, "version")), json_string_value(json_object_get(src, "digest")),
		       o.from, want);
	else if (!ctx->json)
		printf("promoting %s revision %ld of %s (version %s, artifact %.12s) to %s: revision %lld, rollout %lld\n",
		       svc, want, o.from, json_string_value(json_object_get(src, "version")),
		       json_string_value(json_object_get(src, "digest")), o.to,
		       (long long)json_integer_value(json_object_get(resp, "revision")), (long long)rollout);
	fflush(stdout);
	if (o.wait)
		ret = client_wait_rollout(ctx, svc, o.to, rollout, client_wait_ms(o.timeout_ms, cfg.progress_deadline_ms));
out:
	json_decref(src);
	json_decref(resp);
	svc_config_release(&cfg);
	spec_free(spec);
	return ret;
}

static const struct cli_option promote_options[] = {
	CLI_STRING(0, "from", struct promote_opts, from, "ENV", "the environment whose serving revision is promoted"),
	CLI_STRING(0, "to", struct promote_opts, to, "ENV", "the environment it is deployed to"),
	CLI_INT(0, "revision", struct promote_opts, revision, "N", 1, INT_MAX,
		"revision N of --from instead of the serving one"),
	CLIENT_WAIT_OPTIONS(struct promote_opts, "--wait at most this long (default the progress deadline and a minute)"),
	CLIENT_EMERGENCY_OPTIONS(struct promote_opts, "skip windows, freezes and approvals"),
	CLI_END,
};

const struct cli_cmd cli_cmd_promote = {
	.name = "promote",
	.usage = "gantry promote SERVICE --from ENV --to ENV [--revision N] [--wait] [--timeout DUR] [--emergency --reason TEXT]",
	.summary = "deploy the exact artifact serving in one environment to another",
	.options = promote_options,
	.run = run,
};
