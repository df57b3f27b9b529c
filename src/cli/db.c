/*
 * gantry db status|history|up|down SERVICE --env ENV: the database of a
 * service environment's target revision, through the controller (it
 * resolves the database URL from the revision's config; the CLI never
 * sees it). The controller runs the work on a thread and answers a job
 * number; this polls it (db_job) until it is done.
 */
#include "common.h"
#include "cli/client.h"
#include "util/clock.h"

struct db_opts {
	const char *env, *to, *reason;
	long revision;
	int64_t timeout_ms;
};

static const char *str(const json_t *o, const char *k)
{
	const char *s = json_string_value(json_object_get(o, k));
	return s ? s : "";
}

static void print_status(const char *svc, const char *env, json_t *r)
{
	json_t *v = json_object_get(r, "version"), *e;
	size_t i;
	printf("%s@%s  %s\n", svc, env, str(r, "driver"));
	if (!json_is_integer(v))
		printf("  version: none (no migration applied)\n");
	else
		printf("  version: %lld%s\n", (long long)json_integer_value(v),
		       json_is_true(json_object_get(r, "dirty")) ? " (DIRTY: a migration outside a transaction failed half-way)" : "");
	if (json_is_integer(json_object_get(r, "files_latest")))
		printf("  the target revision's files go up to version %lld\n",
		       (long long)json_integer_value(json_object_get(r, "files_latest")));
	if (*str(r, "checksum_error"))
		printf("  checksum: %s\n", str(r, "checksum_error"));
	printf("  pending: %zu\n", json_array_size(json_object_get(r, "pending")));
	json_array_foreach(json_object_get(r, "pending"), i, e)
		printf("    %-6lld %s%s\n", (long long)json_integer_value(json_object_get(e, "version")), str(e, "name"),
		       json_is_true(json_object_get(e, "contract")) ? " (contract: after promotion)" : "");
	if (json_array_size(json_object_get(r, "revisions")))
		printf("  revisions (newest first) and the version their files go up to:\n");
	json_array_foreach(json_object_get(r, "revisions"), i, e) {
		json_t *nv = json_object_get(e, "needs");
		printf("    revision %-4lld %-12s needs %s", (long long)json_integer_value(json_object_get(e, "revision")),
		       str(e, "status"), json_is_integer(nv) ? "" : "none");
		if (json_is_integer(nv))
			printf("%lld", (long long)json_integer_value(nv));
		printf("\n");
	}
	printf("  applied: %zu\n", json_array_size(json_object_get(r, "applied")));
	json_array_foreach(json_object_get(r, "applied"), i, e)
		printf("    %-6lld %-36s %s by %s, revision %lld, sha256 %.12s\n",
		       (long long)json_integer_value(json_object_get(e, "version")), str(e, "name"), str(e, "applied_at"),
		       str(e, "applied_by"), (long long)json_integer_value(json_object_get(e, "revision")), str(e, "checksum"));
}

static void print_history(json_t *r)
{
	json_t *e;
	size_t i;
	printf("%-20s %-4s %-6s %-36s %-7s %-10s %-4s %s\n", "AT", "DIR", "VER", "FILE", "RESULT", "BY", "REV", "OUTPUT");
	json_array_foreach(json_object_get(r, "history"), i, e) {
		const char *out = str(e, "output");
		printf("%-20s %-4s %-6lld %-36s %-7s %-10s %-4lld %.*s\n", str(e, "at"), str(e, "direction"),
		       (long long)json_integer_value(json_object_get(e, "version")), str(e, "name"), str(e, "result"),
		       str(e, "by"), (long long)json_integer_value(json_object_get(e, "revision")),
		       (int)strcspn(out, "\n"), out);
	}
}

static int run(int argc, char **argv, struct cli_ctx *ctx)
{
	struct db_opts o = { .timeout_ms = 10 * 60 * 1000 };
	int npos = cli_parse_opts(ctx->cmd, argc, argv, ctx, &o), ret;
	const char *action, *svc;
	json_t *req, *resp = NULL;
	json_int_t job;
	int64_t t0;

	if (npos < 0)
		return EXIT_USAGE;
	if (npos != 2)
		return cli_error("gantry db: usage: gantry db status|history|up|down|restore SERVICE --env ENV");
	action = argv[0];
	svc = argv[1];
	if (strcmp(action, "status") && strcmp(action, "history") && strcmp(action, "up") && strcmp(action, "down") &&
	    strcmp(action, "restore"))
		return cli_error("gantry db: unknown action '%s' (status, history, up, down, restore)", action);
	if (!strcmp(action, "restore") != (o.revision > 0))
		return cli_error("gantry db: --revision N goes with restore, and restore needs it");
	if (!o.env)
		return cli_error("gantry db: --env is required");
	if (o.to && strcmp(action, "up") && strcmp(action, "down"))
		return cli_error("gantry db %s: --to is for up and down", action);
	req = json_pack("{s:s, s:s, s:s}", "op", "", "service", svc, "environment", o.env);
	{
		char op[16];
		snprintf(op, sizeof(op), "db_%s", action);
		json_object_set_new(req, "op", json_string(op));
	}
	if (o.to) {
		char *end;
		long long v = !strcmp(o.to, "none") ? -1 : strtoll(o.to, &end, 10);
		if (strcmp(o.to, "none") && (*end || v < 0)) {
			json_decref(req);
			return cli_error("--to: '%s' is not a version (a number, or none)", o.to);
		}
		json_object_set_new(req, "to", json_integer(v));
	}
	if (o.revision > 0)
		json_object_set_new(req, "revision", json_integer(o.revision));
	client_req_str(req, "reason", o.reason);
	if ((ret = client_call(ctx, req, &resp)))
		return ret;
	job = json_integer_value(json_object_get(resp, "job"));
	t0 = clock_mono_ms();
	while (!json_is_true(json_object_get(resp, "done"))) {
		json_decref(resp);
		resp = NULL;
		if (client_stop || clock_mono_ms() - t0 > o.timeout_ms)
			return cli_error("gantry db %s: no answer after %llds (job %lld runs on in the controller)", action,
					 (long long)(o.timeout_ms / 1000), (long long)job);
		usleep(100000);
		req = json_pack("{s:s, s:I}", "op", "db_job", "job", job);
		if ((ret = client_call(ctx, req, &resp)))
			return ret;
	}
	if (ctx->json)
		client_print_json(resp);
	else if (!strcmp(action, "status"))
		print_status(svc, o.env, resp);
	else if (!strcmp(action, "history"))
		print_history(resp);
	else {
		fputs(str(resp, "output"), stdout);
		printf("%s@%s: %lld migration%s run; %s\n", svc, o.env, (long long)json_integer_value(json_object_get(resp, "ran")),
		       json_integer_value(json_object_get(resp, "ran")) == 1 ? "" : "s", str(resp, "state"));
	}
	json_decref(resp);
	return EXIT_OK;
}

static const struct cli_option db_options[] = {
	CLI_STRING('e', "env", struct db_opts, env, "ENV", "the environment"),
	CLI_STRING(0, "to", struct db_opts, to, "VERSION",
		   "up: run up to this version (default: all); down: down to this version, none for all (default: one)"),
	CLI_INT(0, "revision", struct db_opts, revision, "N", 1, INT_MAX,
		"restore: the snapshot taken before revision N's up-migrations (migrations.snapshot)"),
	CLI_STRING(0, "reason", struct db_opts, reason, "TEXT", "why (audited with up, down and restore)"),
	CLI_DURATION(0, "timeout", struct db_opts, timeout_ms, "DUR", 1000, 24LL * 3600 * 1000,
		     "wait for the controller's answer at most this long (default 10m)"),
	CLI_END,
};

const struct cli_cmd cli_cmd_db = {
	.name = "db",
	.usage = "gantry db status|history|up|down|restore SERVICE --env ENV [--to VERSION] [--revision N] [--reason TEXT] [-o json]",
	.summary = "the service's database migrations: state, history, run up or down, restore a snapshot (admin)",
	.options = db_options,
	.run = run,
};
