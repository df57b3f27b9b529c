/*
 * gantry checklist SVC --env E [-o json] [--markdown]
 * The runbook checklist of the next release of SVC to E, from the spec and
 * the live state: each item done, failing or manual. Exit 1 when an item fails.
 */
#include "common.h"
#include "cli/client.h"
#include "core/spec.h"
#include "gates/gspec.h"
#include "util/parse.h"

static void item(json_t *list, const char *name, const char *status, const char *fmt, ...) PRINTF_LIKE(4, 5);
static void item(json_t *list, const char *name, const char *status, const char *fmt, ...)
{
	char detail[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(detail, sizeof(detail), fmt, ap);
	va_end(ap);
	json_array_append_new(list, json_pack("{s:s, s:s, s:s}", "item", name, "status", status, "detail", detail));
}

static const char *gate_status(const char *g)
{
	if (!g || !strcmp(g, "passed") || !strcmp(g, "none") || !strncmp(g, "skipped", 7))
		return "done";
	if (!strcmp(g, "pending"))
		return "manual";
	return "failing";
}

struct checklist_opts {
	const char *env;
	bool markdown;
};

static int run(int argc, char **argv, struct cli_ctx *ctx)
{
	struct checklist_opts o = { 0 };
	const char *env, *svc;
	char *path;
	struct diags d = { 0 };
	struct spec *spec = NULL;
	json_t *list, *gates = NULL, *src = NULL, *chk = NULL, *st = NULL, *v;
	int ret, failing = 0;
	size_t i;

	if ((ret = client_parse_target(ctx, argc, argv, &o, &o.env)))
		return ret;
	env = o.env;
	svc = argv[0];
	path = cli_spec_path(ctx);
	list = json_array();
	if (spec_load(path, &spec, &d) < 0) {
		item(list, "spec is valid", "failing", "%s: %zu problem%s (gantry validate)", path, d.n, d.n == 1 ? "" : "s");
	} else if (!spec_find_env(spec, env) || !spec_find_service(spec, svc)) {
		item(list, "spec is valid", "failing", "%s has no %s '%s'", path, spec_find_env(spec, env) ? "service" : "environment",
		     spec_find_env(spec, env) ? svc : env);
	} else {
		item(list, "spec is valid", "done", "%s", path);
		gates = gspec_gates(spec, svc, env);
	}
	if (gates) {
		const char *from = json_string_value(json_object_get(gates, "promote_from"));
		json_t *req = json_pack("{s:s, s:s, s:s}", "op", "gates_check", "service", svc, "environment", env), *g;
		if (from) {
			if (client_call(ctx, json_pack("{s:s, s:s, s:s}", "op", "promotion_source", "service", svc,
						       "from", from), &src) == EXIT_OK) {
				json_object_set(req, "digest", json_object_get(src, "digest"));
				json_object_set_new(req, "promotion", json_pack("{s:s, s:O}", "from", from, "revision",
										 json_object_get(src, "revision")));
			}
		}
		if (client_call(ctx, req, &chk) != EXIT_OK) {
			ret = EXIT_FAILED;
			goto out;
		}
		g = json_object_get(chk, "gates");
		if (json_is_object(json_object_get(chk, "policy"))) {
			/* what the controller decides with: its stored policy, not this file */
			json_decref(gates);
			gates = json_incref(json_object_get(chk, "policy"));
			from = json_string_value(json_object_get(gates, "promote_from")); /* the old one was freed */
		}
		v = json_object_get(gates, "windows");
		item(list, "inside a deploy window", gate_status(json_string_value(json_object_get(g, "window"))),
		     "%s", !strcmp(gate_status(json_string_value(json_object_get(g, "window"))), "failing")
		     ? json_string_value(json_object_get(chk, "reason")) : v ? "allowed now" : "no windows configured");
		item(list, "no incident freezes the environment", gate_status(json_string_value(json_object_get(g, "freeze"))),
		     "%s", !strcmp(gate_status(json_string_value(json_object_get(g, "freeze"))), "failing")
		     ? json_string_value(json_object_get(chk, "reason")) : json_object_get(gates, "freeze_on_incident")
		     ? "no open incident of a freezing severity" : "no freeze configured");
		if (from) {
			if (!src)
				item(list, "version promoted and soaked", "failing", "nothing serves healthily in %s", from);
			else
				item(list, "version promoted and soaked", gate_status(json_string_value(json_object_get(g, "promotion"))),
				     "%s revision %lld (version %s) has served in %s since %s%s%s", svc,
				     (long long)json_integer_value(json_object_get(src, "revision")),
				     json_string_value(json_object_get(src, "version")), from,
				     json_string_value(json_object_get(src, "serving_since")),
				     !strcmp(gate_status(json_string_value(json_object_get(g, "promotion"))), "failing") ? ": " : "",
				     !strcmp(gate_status(json_string_value(json_object_get(g, "promotion"))), "failing")
				     ? json_string_value(json_object_get(chk, "reason")) : "");
		}
		if (json_integer_value(json_object_get(gates, "approvals")) > 0)
			item(list, "approvals", "manual", "%lld approval%s by approvers other than the requester (gantry approve)",
			     (long long)json_integer_value(json_object_get(gates, "approvals")),
			     json_integer_value(json_object_get(gates, "approvals")) > 1 ? "s" : "");
		v = json_object_get(json_object_get(gates, "checks"), "pre");
		if (json_array_size(v))
			item(list, "pre-deployment checks defined", "done", "%zu check(s), run by gantry deploy", json_array_size(v));
		else
			item(list, "pre-deployment checks defined", "manual", "none in services.%s.checks.pre: check by hand", svc);
		v = json_object_get(json_object_get(gates, "checks"), "post");
		if (json_array_size(v))
			item(list, "post-deployment checks defined", "done", "%zu check(s); a failure rolls back", json_array_size(v));
		else
			item(list, "post-deployment checks defined", "manual", "none in services.%s.checks.post: smoke-test by hand", svc);
	}
	if (client_call(ctx, json_pack("{s:s, s:s, s:s}", "op", "status", "service", svc, "environment", env), &st) == EXIT_OK) {
		json_t *s = json_array_get(json_object_get(st, "status"), 0);
		json_int_t stable = json_integer_value(json_object_get(s, "stable_revision"));
		json_int_t ready = json_integer_value(json_object_get(s, "ready_replicas"));
		if (!s || !stable)
			item(list, "rollback target warm", "manual", "first deploy of %s to %s: nothing to roll back to", svc, env);
		else
			item(list, "rollback target warm", ready > 0 ? "done" : "failing",
			     "revision %lld serves with %lld ready replica%s; 'gantry rollback %s --env %s' returns to it",
			     (long long)stable, (long long)ready, ready == 1 ? "" : "s", svc, env);
	}
	if (spec && gates) {
		json_t *manual = gspec_checklist(spec, env);
		json_array_foreach(manual, i, v)
			item(list, json_string_value(v), "manual", "listed in environments.%s.protection.checklist", env);
		json_decref(manual);
	}
	json_array_foreach(list, i, v)
		failing += !strcmp(json_string_value(json_object_get(v, "status")), "failing");
	if (ctx->json) {
		client_print_json(list);
	} else if (o.markdown) {
		printf("## Release checklist: %s to %s\n\n", svc, env);
		json_array_foreach(list, i, v) {
			const char *s = json_string_value(json_object_get(v, "status"));
			printf("- [%s] %s%s — %s\n", !strcmp(s, "done") ? "x" : " ", json_string_value(json_object_get(v, "item")),
			       !strcmp(s, "failing") ? " **(failing)**" : !strcmp(s, "manual") ? " *(manual)*" : "",
			       json_string_value(json_object_get(v, "detail")));
		}
	} else {
		json_array_foreach(list, i, v) {
			const char *s = json_string_value(json_object_get(v, "status"));
			printf("%-8s %-38s %s\n", !strcmp(s, "done") ? "[done]" : !strcmp(s, "failing") ? "[FAIL]" : "[manual]",
			       json_string_value(json_object_get(v, "item")), json_string_value(json_object_get(v, "detail")));
		}
	}
	ret = failing ? EXIT_FAILED : EXIT_OK;
out:
	json_decref(list);
	json_decref(gates);
	json_decref(src);
	json_decref(chk);
	json_decref(st);
	diags_release(&d);
	spec_free(spec);
	free(path);
	return ret;
}

static const struct cli_option checklist_options[] = {
	CLI_STRING('e', "env", struct checklist_opts, env, "ENV", "the environment released to"),
	CLI_BOOL(0, "markdown", struct checklist_opts, markdown, "print it as a Markdown task list"),
	CLI_END,
};

const struct cli_cmd cli_cmd_checklist = {
	.name = "checklist",
	.usage = "gantry checklist SERVICE --env ENV [-o json] [--markdown]",
	.summary = "the release checklist from the spec and live state (done, failing, manual)",
	.options = checklist_options,
	.run = run,
};
