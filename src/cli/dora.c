/*
 * gantry dora [SVC] [--env E] [--since 30d] [-o json]: the DORA figures per
 * service environment (definitions: docs/internals/records.md); --releases:
 * per environment, a release as one deployment (releases_dora).
 */
#include "common.h"
#include "cli/client.h"
#include "util/parse.h"

static void human(int64_t s, char *buf, size_t len)
{
	if (s < 0)
		snprintf(buf, len, "-");
	else
		format_duration(s * 1000, buf, len);
}

struct dora_opts {
	const char *env;
	bool releases;
	int64_t since_ms;
};

static int run(int argc, char **argv, struct cli_ctx *ctx)
{
	struct dora_opts o = { .since_ms = 30LL * 86400000 };
	json_t *resp = NULL, *req, *d;
	int npos, ret;
	size_t i;

	if ((npos = cli_parse_opts(ctx->cmd, argc, argv, ctx, &o)) < 0)
		return EXIT_USAGE;
	if (npos > 1)
		return cli_error("usage: gantry dora [SERVICE] [--env E] [--since 30d] [-o json]");
	if (npos && o.releases)
		return cli_error("gantry dora --releases: per environment, no SERVICE");
	req = json_pack("{s:s, s:i}", "op", "dora", "since", (int)(o.since_ms / 1000));
	if (o.releases)
		json_object_set_new(req, "releases", json_true());
	client_req_str(req, "service", npos ? argv[0] : NULL);
	client_req_str(req, "environment", o.env);
	if ((ret = client_call(ctx, req, &resp)))
		return ret;
	if (ctx->json) {
		client_print_reply(resp);
		goto out;
	}
	printf("from %s to %s\n", json_string_value(json_object_get(resp, "since")),
	       json_string_value(json_object_get(resp, "until")));
	printf("%-28s %8s %8s %10s %10s %12s %10s\n", o.releases ? "ENVIRONMENT" : "SERVICE",
	       o.releases ? "RELEASES" : "DEPLOYS", "PER-DAY", "LEAD(p50)", "LEAD(p90)",
	       "FAILURE-RATE", "RESTORE");
	json_array_foreach(json_object_get(resp, "dora"), i, d) {
		char se[160], l50[32], l90[32], rs[32], cfr[32];
		json_t *lt = json_object_get(d, "lead_time"), *cf = json_object_get(d, "change_failure_rate"),
		       *tr = json_object_get(d, "time_to_restore"), *df = json_object_get(d, "deployment_frequency");
		if (o.releases)
			snprintf(se, sizeof(se), "%s", json_string_value(json_object_get(d, "environment")));
		else
			snprintf(se, sizeof(se), "%s@%s", json_string_value(json_object_get(d, "service")),
				 json_string_value(json_object_get(d, "environment")));
		human(json_is_integer(json_object_get(lt, "median_seconds")) ? json_integer_value(json_object_get(lt, "median_seconds")) : -1, l50, sizeof(l50));
		human(json_is_integer(json_object_get(lt, "p90_seconds")) ? json_integer_value(json_object_get(lt, "p90_seconds")) : -1, l90, sizeof(l90));
		human(json_is_integer(json_object_get(tr, "median_seconds")) ? json_integer_value(json_object_get(tr, "median_seconds")) : -1, rs, sizeof(rs));
		if (json_is_number(json_object_get(cf, "rate")))
			snprintf(cfr, sizeof(cfr), "%.0f%% (%lld/%lld)", json_number_value(json_object_get(cf, "rate")) * 100,
				 (long long)json_integer_value(json_object_get(cf, "failures")),
				 (long long)json_integer_value(json_object_get(cf, "finished")));
		else
			snprintf(cfr, sizeof(cfr), "-");
		printf("%-28s %8lld %8.2f %10s %10s %12s %10s\n", se,
		       (long long)json_integer_value(json_object_get(df, "deployments")),
		       json_number_value(json_object_get(df, "per_day")), l50, l90, cfr, rs);
	}
out:
	json_decref(resp);
	return EXIT_OK;
}

static const struct cli_option dora_options[] = {
	CLI_STRING('e', "env", struct dora_opts, env, "E", "only this environment"),
	CLI_BOOL(0, "releases", struct dora_opts, releases, "per environment, a release as one deployment"),
	CLI_DURATION(0, "since", struct dora_opts, since_ms, "DUR", 1000, 3650LL * 86400000,
		     "the period, back from now (default 30d)"),
	CLI_END,
};

const struct cli_cmd cli_cmd_dora = {
	.name = "dora",
	.usage = "gantry dora [SERVICE] [--env E] [--since 30d] [--releases] [-o json]",
	.summary = "deployment frequency, lead time, change failure rate, time to restore",
	.options = dora_options,
	.run = run,
};
