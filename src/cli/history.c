/*
 * gantry history: the revisions of a service environment, newest first,
 * each with the deployment record that produced it (who asked, from which
 * revision, the gates passed or overridden, the approvers, the checks with
 * their output, start, end, result and reason). --all adds the deployments
 * that never made a revision: refused by a gate, rejected, expired, or
 * still waiting for approval.
 *
 * Two API calls (history, deployments) joined here: a deployment record
 * names the revision it created.
 */
#include "common.h"
#include "cli/client.h"

/* the newest record of deployments (newest first) that created revision rev, or NULL (borrowed) */
static json_t *record_of(json_t *deployments, json_int_t rev)
{
	size_t i;
	json_t *d;
	/* the record that rolled it out; a record without a rollout (the
	 * controller verifying a revision it rolled back to) only as a last resort */
	json_array_foreach(deployments, i, d)
		if (json_integer_value(json_object_get(d, "revision")) == rev && json_integer_value(json_object_get(d, "rollout")))
			return d;
	json_array_foreach(deployments, i, d)
		if (json_integer_value(json_object_get(d, "revision")) == rev)
			return d;
	return NULL;
}

static const char *str(json_t *o, const char *k)
{
	const char *s = json_string_value(json_object_get(o, k));
	return s ? s : "";
}

/* "window overridden, approvals passed (bob, carol)" (one approval per approver: the store keeps the last) — only the gates that were not "none" */
static void gates_summary(json_t *d, char *buf, size_t len)
{
	const char *k;
	json_t *v, *a;
	size_t i, off = 0;
	char who[256] = "";
	size_t wo = 0;

	buf[0] = 0;
	if (!d)
		return;
	json_array_foreach(json_object_get(d, "approvals"), i, a)
		if (!strcmp(str(a, "decision"), "approve") && wo < sizeof(who))
			wo += (size_t)snprintf(who + wo, sizeof(who) - wo, "%s%s", wo ? ", " : "", str(a, "by"));
	json_object_foreach(json_object_get(d, "gates"), k, v) {
		const char *s = json_string_value(v);
		if (!s || !strcmp(s, "none") || !strcmp(k, "permission") || off >= len)
			continue;
		if (!strcmp(k, "approvals") && who[0])
			off += (size_t)snprintf(buf + off, len - off, "%sapprovals %s (%s)", off ? ", " : "", s, who);
		else
			off += (size_t)snprintf(buf + off, len - off, "%s%s %s", off ? ", " : "", k, s);
	}
}

static void print_row(const char *rev, json_t *r, json_t *d)
{
	char gates[256], from[16] = "-", offs[512] = "";
	const char *result = d ? str(d, "result") : "";
	const char *reason = r ? str(r, "reason") : "";

	if (d && json_integer_value(json_object_get(d, "from_revision")) > 0)
		snprintf(from, sizeof(from), "%lld", (long long)json_integer_value(json_object_get(d, "from_revision")));
	if (d && !*result)
		result = str(d, "state");
	if (d && !*reason)
		reason = *str(d, "result_reason") ? str(d, "result_reason") : str(d, "reason");
	gates_summary(d, gates, sizeof(gates));
	{
		/* a flag turned off instead of rolling this revision back */
		size_t k, off = 0;
		json_t *f;
		json_array_foreach(d ? json_object_get(d, "flag_offs") : NULL, k, f)
			if (off < sizeof(offs))
				off += (size_t)snprintf(offs + off, sizeof(offs) - off, " [flag %s off by %s at %s]",
							str(f, "flag"), str(f, "source"), str(f, "at"));
	}
	printf("%-4s %-20s %-16s %-11s %-8s %-10s %-4s %-11s %-30s %s%s\n", rev,
	       r ? str(r, "created_at") : str(d, "created_at"), r ? str(r, "version") : str(d, "version"),
	       r ? str(r, "status") : "-", r ? str(r, "kind") : str(d, "kind"),
	       r ? str(r, "deployed_by") : str(d, "requester"), from, *result ? result : "-",
	       *gates ? gates : "-", reason, offs);
}

struct history_opts {
	const char *env;
	bool all;
};

static int run(int argc, char **argv, struct cli_ctx *ctx)
{
	struct history_opts o = { 0 };
	const char *svc;
	json_t *resp = NULL, *dresp = NULL, *list, *deps, *r, *d, *out;
	size_t i;
	int ret;

	if ((ret = client_parse_target(ctx, argc, argv, &o, &o.env)))
		return ret;
	svc = argv[0];
	ret = client_call(ctx, json_pack("{s:s, s:s, s:s}", "op", "history", "service", svc,
					 "environment", o.env), &resp);
	if (ret)
		goto out;
	ret = client_call(ctx, json_pack("{s:s, s:s, s:s, s:i}", "op", "deployments", "service", svc,
					 "environment", o.env, "limit", 100000), &dresp);
	if (ret)
		goto out;
	list = json_object_get(resp, "history");
	deps = json_object_get(dresp, "deployments");
	if (ctx->json) {
		char *s;
		out = json_array();
		json_array_foreach(list, i, r) {
			json_t *e = json_deep_copy(r);
			d = record_of(deps, json_integer_value(json_object_get(r, "revision")));
			json_object_set(e, "deployment", d ? d : json_null());
			json_array_append_new(out, e);
		}
		json_array_foreach(deps, i, d) {
			if (!o.all || json_integer_value(json_object_get(d, "revision")) > 0)
				continue;
			json_array_append_new(out, json_pack("{s:n, s:s, s:s, s:s, s:s, s:s, s:O}", "revision",
							     "version", str(d, "version"), "created_at", str(d, "created_at"),
							     "status", str(d, "state"), "reason", str(d, "result_reason"),
							     "deployed_by", str(d, "requester"), "deployment", d));
		}
		s = json_dumps(out, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
		printf("%s\n", s);
		free(s);
		json_decref(out);
	} else {
		printf("%-4s %-20s %-16s %-11s %-8s %-10s %-4s %-11s %-30s %s\n", "REV", "CREATED", "VERSION", "STATUS",
		       "KIND", "BY", "FROM", "RESULT", "GATES", "REASON");
		json_array_foreach(list, i, r) {
			char rev[16];
			snprintf(rev, sizeof(rev), "%lld", (long long)json_integer_value(json_object_get(r, "revision")));
			print_row(rev, r, record_of(deps, json_integer_value(json_object_get(r, "revision"))));
		}
		json_array_foreach(deps, i, d)
			if (o.all && json_integer_value(json_object_get(d, "revision")) <= 0)
				print_row("-", NULL, d);
	}
out:
	json_decref(resp);
	json_decref(dresp);
	return ret;
}

static const struct cli_option history_options[] = {
	CLI_STRING('e', "env", struct history_opts, env, "ENV", "the environment"),
	CLI_BOOL(0, "all", struct history_opts, all, "also the deployments that made no revision (refused, rejected, ...)"),
	CLI_END,
};

const struct cli_cmd cli_cmd_history = {
	.name = "history",
	.usage = "gantry history SERVICE --env ENV [--all] [-o json]",
	.summary = "the revisions of a service environment, newest first, with their deployment records",
	.options = history_options,
	.run = run,
};
