/*
 * gates_cli.c — the CLI's helpers for the gates and records (gates_cli.h).
 */
#include "common.h"
#include "cli/gates_cli.h"
#include "cli/client.h"

int64_t gates_cli_commit_time(const char *dir)
{
	char *cmd = xasprintf("cd '%s' 2>/dev/null && git rev-parse --is-inside-work-tree >/dev/null 2>&1 && "
			      "git log -1 --format=%%ct HEAD 2>/dev/null", dir);
	FILE *p = popen(cmd, "r");
	char line[64] = "";
	int64_t t = 0;
	free(cmd);
	if (!p)
		return 0;
	if (fgets(line, sizeof(line), p))
		t = strtoll(line, NULL, 10);
	pclose(p);
	return t > 0 ? t : 0;
}

int gates_cli_wait_deployment(const struct cli_ctx *ctx, const char *svc, const char *env, json_int_t id,
			      json_t **row)
{
	json_t *resp = NULL, *d = NULL, *c;
	int ret;
	size_t i;
	*row = NULL;
	if (!ctx->json)
		fprintf(stderr, "deployment %lld: pre-deployment checks or migrations running in the controller...\n",
			(long long)id);
	for (int tries = 0; tries < 36000 && !client_stop; tries++) {
		json_t *req = json_pack("{s:s, s:s, s:s, s:i}", "op", "deployments", "service", svc, "environment", env,
					"limit", 200);
		json_t *list, *e;
		if ((ret = client_call(ctx, req, &resp)))
			return ret;
		list = json_object_get(resp, "deployments");
		d = NULL;
		json_array_foreach(list, i, e)
			if (json_integer_value(json_object_get(e, "id")) == id)
				d = e;
		if (!d) {
			json_decref(resp);
			return cli_error("deployment %lld of %s@%s vanished", (long long)id, svc, env);
		}
		if (strcmp(json_string_value(json_object_get(d, "state")), "pre_checks") &&
		    strcmp(json_string_value(json_object_get(d, "state")), "migrating"))
			break;
		json_decref(resp);
		resp = NULL;
		d = NULL;
		usleep(100000);
	}
	if (!d) {
		json_decref(resp);
		return EXIT_FAILED;
	}
	json_array_foreach(json_object_get(d, "checks"), i, c) {
		bool ok = json_is_true(json_object_get(c, "ok"));
		if (ctx->json || strcmp(json_string_value(json_object_get(c, "phase")), "pre"))
			continue;
		fprintf(stderr, "  %s %s\n%s%s", ok ? "ok  " : "FAIL", json_string_value(json_object_get(c, "check")),
			ok ? "" : json_string_value(json_object_get(c, "output")), ok ? "" : "\n");
	}
	*row = json_incref(d);
	json_decref(resp);
	if (!strcmp(json_string_value(json_object_get(*row, "state")), "failed")) {
		const char *why = json_string_value(json_object_get(*row, "result_reason"));
		fprintf(stderr, "error: %s: nothing was deployed\n", why);
		/* a migration that failed is an operation that failed (1), a check a refusal (3) */
		return why && !strncmp(why, "migration", 9) ? EXIT_FAILED : EXIT_REFUSED;
	}
	return EXIT_OK;
}

int gates_cli_deploy_started(const struct cli_ctx *ctx, const char *svc, const char *env, json_t *resp)
{
	json_t *row = NULL;
	int ret;
	if (strcmp(json_string_value(json_object_get(resp, "state")) ?: "", "pre_checks") &&
	    strcmp(json_string_value(json_object_get(resp, "state")) ?: "", "migrating"))
		return EXIT_OK;
	ret = gates_cli_wait_deployment(ctx, svc, env, json_integer_value(json_object_get(resp, "deployment")), &row);
	if (!ret) {
		json_object_set(resp, "revision", json_object_get(row, "revision"));
		json_object_set(resp, "rollout", json_object_get(row, "rollout"));
		if (json_is_string(json_object_get(row, "version")))
			json_object_set(resp, "version", json_object_get(row, "version"));
	}
	json_decref(row);
	return ret;
}

long gates_cli_id(const char *s)
{
	char *end;
	long v;
	if (!s || !*s)
		return -1;
	errno = 0;
	v = strtol(s, &end, 10);
	return *end || errno || v <= 0 ? -1 : v;
}
