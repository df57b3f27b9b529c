/*
 * gantry maintenance on|off SERVICE --env ENV [--message TEXT]
 *     [--allow-header H=V]... [--retry-after SECONDS]
 * gantry maintenance status [SERVICE] [--env ENV] [-o json]
 *
 * Maintenance mode (daemon/maintenance.h): the proxy answers the service
 * environment's clients with 503, Retry-After and a small page (JSON for
 * Accept: application/json), except requests carrying an allowed header
 * with its exact value. The flags are checked here first (the error names
 * the flag, nothing is sent), then again by the controller.
 */
#include "common.h"
#include "cli/client.h"
#include "proxy/maint.h"

struct maint_opts {
	const char *env, *message;
	struct cli_multi allow;
	long retry_after;
};

/* the request of on/off, or NULL after printing the error naming the flag */
static json_t *set_request(const struct maint_opts *o, bool on, const char *svc)
{
	struct gerr err;
	json_t *req, *ah;

	if (!on && (o->message || o->allow.n || o->retry_after))
		return cli_error("gantry maintenance off: %s is only for 'on'",
				 o->message ? "--message" : o->allow.n ? "--allow-header" : "--retry-after"),
		       NULL;
	if (o->message && maint_check_message(o->message, &err) < 0)
		return cli_error("--message: %s", err.msg), NULL;
	if (o->allow.n > MAINT_HEADERS_MAX)
		return cli_error("--allow-header: at most %d headers", MAINT_HEADERS_MAX), NULL;
	req = json_pack("{s:s, s:s, s:s, s:b, s:s}", "op", "maintenance", "service", svc, "environment", o->env, "on",
			on, "deployed_by", client_user());
	if (!on)
		return req;
	client_req_str(req, "message", o->message);
	if (o->retry_after)
		json_object_set_new(req, "retry_after_s", json_integer(o->retry_after));
	ah = json_array();
	for (size_t i = 0; i < o->allow.n; i++) {
		char name[MAINT_HEADER_NAME_MAX + 1], value[MAINT_HEADER_VALUE_MAX + 1];
		if (maint_split_header(o->allow.items[i], name, sizeof(name), value, sizeof(value), &err) < 0) {
			json_decref(ah);
			json_decref(req);
			return cli_error("--allow-header: %s", err.msg), NULL;
		}
		for (size_t k = 0; k < json_array_size(ah); k++)
			if (!strcmp(json_string_value(json_object_get(json_array_get(ah, k), "header")), name)) {
				json_decref(ah);
				json_decref(req);
				return cli_error("--allow-header: header '%s' is given twice", name), NULL;
			}
		json_array_append_new(ah, json_pack("{s:s, s:s}", "header", name, "value", value));
		explicit_bzero(value, sizeof(value));
	}
	json_object_set_new(req, "allow_headers", ah);
	return req;
}

static void print_row(const json_t *m)
{
	const json_t *ah = json_object_get(m, "allow_headers"), *h;
	char names[600] = "";
	size_t i;
	bool on = json_is_true(json_object_get(m, "on"));
	json_array_foreach(ah, i, h)
		snprintf(names + strlen(names), sizeof(names) - strlen(names), "%s%s", i ? "," : "", json_string_value(h));
	printf("%-16s %-12s %-4s %-9s %-21s %-12s %-20s %s\n", json_string_value(json_object_get(m, "service")),
	       json_string_value(json_object_get(m, "environment")), on ? "on" : "off",
	       json_is_true(json_object_get(m, "in_force")) ? "yes" : "not yet",
	       json_string_value(json_object_get(m, "set_at")) ? json_string_value(json_object_get(m, "set_at")) : "-",
	       json_string_value(json_object_get(m, "set_by")) ? json_string_value(json_object_get(m, "set_by")) : "-",
	       names[0] ? names : "-", on ? json_string_value(json_object_get(m, "message")) : "");
}

static int status(const struct cli_ctx *ctx, const struct maint_opts *o, int npos, char **argv)
{
	json_t *req = json_pack("{s:s}", "op", "maintenance_status"), *resp = NULL, *list, *m;
	size_t i;
	int ret;

	if (npos > 2)
		return cli_error("gantry maintenance status: unexpected argument '%s'", argv[2]);
	client_req_str(req, "service", npos == 2 ? argv[1] : NULL);
	client_req_str(req, "environment", o->env);
	if ((ret = client_call(ctx, req, &resp)))
		return ret;
	list = json_object_get(resp, "maintenance");
	if (ctx->json) {
		client_print_json(list);
	} else if (!json_array_size(list)) {
		printf("no service environment is in maintenance\n");
	} else {
		printf("%-16s %-12s %-4s %-9s %-21s %-12s %-20s %s\n", "SERVICE", "ENVIRONMENT", "MODE", "IN FORCE",
		       "SINCE", "BY", "BYPASS HEADERS", "MESSAGE");
		json_array_foreach(list, i, m)
			print_row(m);
	}
	json_decref(resp);
	return EXIT_OK;
}

/* after a change: until the proxy answers with it (10 s at most; it usually takes a poll, ~100 ms) */
static bool wait_in_force(const struct cli_ctx *ctx, const char *svc, const char *env)
{
	for (int i = 0; i < 100; i++) {
		json_t *req = json_pack("{s:s, s:s, s:s}", "op", "maintenance_status", "service", svc, "environment", env);
		json_t *resp = NULL;
		bool ok;
		if (client_call(ctx, req, &resp))
			return false;
		ok = json_is_true(json_object_get(json_array_get(json_object_get(resp, "maintenance"), 0), "in_force"));
		json_decref(resp);
		if (ok)
			return true;
		client_pause_ms(100);
	}
	return false;
}

static int run(int argc, char **argv, struct cli_ctx *ctx)
{
	struct maint_opts o = { 0 };
	json_t *req, *resp = NULL, *m;
	const char *sub;
	bool on, in_force;
	int npos, ret;

	if ((npos = cli_parse_opts(ctx->cmd, argc, argv, ctx, &o)) < 0)
		return EXIT_USAGE;
	ret = EXIT_USAGE;
	if (npos < 1) {
		cli_error("gantry maintenance: missing subcommand (on, off or status)");
		goto out;
	}
	sub = argv[0];
	if (!strcmp(sub, "status")) {
		ret = status(ctx, &o, npos, argv);
		goto out;
	}
	if (strcmp(sub, "on") && strcmp(sub, "off")) {
		cli_error("gantry maintenance: unknown subcommand '%s' (on, off or status)", sub);
		goto out;
	}
	on = !strcmp(sub, "on");
	if (npos < 2) {
		cli_error("gantry maintenance %s: missing SERVICE (usage: gantry maintenance %s SERVICE --env ENV)", sub, sub);
		goto out;
	}
	if (npos > 2) {
		cli_error("gantry maintenance %s: unexpected argument '%s'", sub, argv[2]);
		goto out;
	}
	if (!o.env) {
		cli_error("gantry maintenance %s: --env is required (usage: gantry maintenance %s SERVICE --env ENV)", sub,
			  sub);
		goto out;
	}
	if (!(req = set_request(&o, on, argv[1])))
		goto out;
	if ((ret = client_call(ctx, req, &resp)))
		goto out;
	in_force = wait_in_force(ctx, argv[1], o.env);
	m = json_object_get(resp, "maintenance");
	if (ctx->json) {
		json_object_set(m, "in_force", json_boolean(in_force));
		json_object_set_new(m, "changed", json_boolean(json_is_true(json_object_get(resp, "changed"))));
		client_print_line(m);
	} else {
		printf("maintenance %s for %s@%s%s: %s\n", sub, argv[1], o.env,
		       json_is_true(json_object_get(resp, "changed")) ? "" : " (it already was)",
		       in_force ? (on ? "the proxy answers 503 with the maintenance page"
				      : "the proxy forwards requests to the replicas again")
				: "the proxy has not confirmed it yet (see gantry maintenance status)");
	}
	json_decref(resp);
	ret = EXIT_OK;
out:
	free(o.allow.items);
	return ret;
}

static const struct cli_option maint_options[] = {
	CLI_STRING('e', "env", struct maint_opts, env, "ENV", "the environment"),
	CLI_STRING('m', "message", struct maint_opts, message, "TEXT",
		   "on: what the page says (at most 1024 bytes, no CR/LF; HTML-escaped by the proxy)"),
	CLI_MULTI(0, "allow-header", struct maint_opts, allow, "H=V",
		  "on: requests with header H equal to V pass through (a secret of 8..256 visible bytes; repeatable, at most 8)"),
	CLI_INT(0, "retry-after", struct maint_opts, retry_after, "SECONDS", 1, 86400,
		"on: the Retry-After header (default 120)"),
	CLI_END,
};

const struct cli_cmd cli_cmd_maintenance = {
	.name = "maintenance",
	.usage = "gantry maintenance on|off SERVICE --env ENV [--message TEXT] [--allow-header H=V]... [--retry-after SECONDS] | status [SERVICE] [--env ENV] [-o json]",
	.summary = "answer a service's clients with a maintenance page (503), except allowed requests",
	.options = maint_options,
	.run = run,
};
