/*
 * gantry release --env E [SVC...]: from a project directory, the artifact
 * of every service (or of those named), snapshotted as gantry deploy does
 * (cli_deploy_artifact), sent with the spec in one request; the controller
 * deploys the changed ones in dependency order (src/daemon/releases.c).
 * gantry release status [ID] --env E, gantry release history --env E,
 * gantry release resume|abort ID --env E (releases_command), gantry release
 * promote ID --env E --to E2 (releases_promote).
 */
#include "common.h"
#include "cli/client.h"
#include "cli/deploy.h"
#include "cli/gates_cli.h"
#include "cli/spec_load.h"
#include "core/spec.h"
#include "util/clock.h"
#include <unistd.h>

struct release_opts {
	const char *env;
	const char *reason;
	const char *to;
	bool wait;
	int64_t timeout_ms;
};

static bool finished(const char *state)
{
	return strcmp(state, "running") && strcmp(state, "rolling_back");
}

static void print_release(json_t *r)
{
	size_t i;
	json_t *it;
	printf("release %lld %s: %s (%s)\n", (long long)json_integer_value(json_object_get(r, "id")),
	       json_string_value(json_object_get(r, "environment")), json_string_value(json_object_get(r, "state")),
	       json_string_value(json_object_get(r, "message")));
	printf("  by %s, on_failure %s\n", json_string_value(json_object_get(r, "created_by")),
	       json_string_value(json_object_get(r, "on_failure")));
	json_array_foreach(json_object_get(r, "services"), i, it) {
		const char *msg = json_string_value(json_object_get(it, "message"));
		long long rb = json_integer_value(json_object_get(it, "rollback_revision"));
		long long rev = json_integer_value(json_object_get(it, "revision"));
		printf("  level %lld  %-16s %-14s version %s", (long long)json_integer_value(json_object_get(it, "level")),
		       json_string_value(json_object_get(it, "service")), json_string_value(json_object_get(it, "state")),
		       json_string_value(json_object_get(it, "version")));
		if (rev)
			printf(" revision %lld (from %lld)", rev,
			       (long long)json_integer_value(json_object_get(it, "from_revision")));
		else if (!json_integer_value(json_object_get(it, "deployment")))
			printf(", not started");
		if (rb)
			printf(", rollback revision %lld", rb);
		if (msg && *msg)
			printf(": %s", msg);
		printf("\n");
	}
}

static int get_release(struct cli_ctx *ctx, const char *env, long long id, json_t **out)
{
	json_t *req = json_pack("{s:s, s:s, s:I}", "op", "release_status", "environment", env, "id", (json_int_t)id);
	json_t *resp = NULL;
	int ret = client_call(ctx, req, &resp);
	if (ret)
		return ret;
	*out = json_incref(json_object_get(resp, "release"));
	json_decref(resp);
	return EXIT_OK;
}

static int wait_release(struct cli_ctx *ctx, const char *env, long long id, int64_t timeout_ms, json_t **out)
{
	int64_t until = clock_steady_ms() + (timeout_ms ? timeout_ms : 30 * 60 * 1000);
	char last[4096] = "";
	for (;;) {
		json_t *r = NULL;
		int ret = get_release(ctx, env, id, &r);
		char *now;
		if (ret)
			return ret;
		now = json_dumps(json_object_get(r, "services"), JSON_COMPACT);
		if (!ctx->json && strcmp(now ? now : "", last)) {
			/* one line per change of a service's state */
			size_t i;
			json_t *it;
			json_t *old = json_loads(last, 0, NULL);
			json_array_foreach(json_object_get(r, "services"), i, it) {
				json_t *o = json_array_get(old, i);
				const char *st = json_string_value(json_object_get(it, "state"));
				if (!o || strcmp(st, json_string_value(json_object_get(o, "state"))))
					printf("  %s: %s\n", json_string_value(json_object_get(it, "service")), st);
			}
			json_decref(old);
			fflush(stdout);
			strlcpy_g(last, now ? now : "", sizeof(last));
		}
		free(now);
		if (finished(json_string_value(json_object_get(r, "state")))) {
			*out = r;
			return EXIT_OK;
		}
		json_decref(r);
		if (clock_steady_ms() > until) {
			fprintf(stderr, "error: --wait: release %lld still running after the timeout\n", id);
			return EXIT_FAILED;
		}
		usleep(200 * 1000);
	}
}

/* r (borrowed): -o json prints the record, else print_release */
static void show_release(const struct cli_ctx *ctx, json_t *r)
{
	if (ctx->json) {
		json_dumpf(r, stdout, JSON_COMPACT | JSON_SORT_KEYS);
		printf("\n");
	} else {
		print_release(r);
	}
}

/*
 * What `release`, `resume`, `abort` and `promote` print once the controller
 * took the request (resp, its reply; borrowed): without --wait, with -o json,
 * the record it replied; with --wait, release id of env followed to its end
 * and shown. *out: that final record (the caller's to release), NULL without
 * --wait. Returns the exit code of the wait.
 */
static int follow_release(struct cli_ctx *ctx, const struct release_opts *o, const char *env, long long id,
			  json_t *resp, json_t **out)
{
	int ret;
	*out = NULL;
	fflush(stdout);
	if (!o->wait) {
		if (ctx->json)
			show_release(ctx, json_object_get(resp, "record"));
		return EXIT_OK;
	}
	if ((ret = wait_release(ctx, env, id, o->timeout_ms, out)))
		return ret;
	show_release(ctx, *out);
	return EXIT_OK;
}

/* r's state (borrowed) is want: EXIT_OK, else EXIT_FAILED */
static int state_is(json_t *r, const char *want)
{
	return strcmp(json_string_value(json_object_get(r, "state")), want) ? EXIT_FAILED : EXIT_OK;
}

static int run_status(struct cli_ctx *ctx, const struct release_opts *o, int npos, char **argv)
{
	long long id = 0;
	json_t *r = NULL;
	int ret;
	if (npos > 2)
		return cli_error("gantry release status: one ID at most");
	if (npos == 2 && (id = strtoll(argv[1], NULL, 10)) <= 0)
		return cli_error("gantry release status: '%s' is not a release id", argv[1]);
	if ((ret = get_release(ctx, o->env, id, &r)))
		return ret;
	show_release(ctx, r);
	json_decref(r);
	return EXIT_OK;
}

static int run_history(struct cli_ctx *ctx, const struct release_opts *o)
{
	json_t *req = json_pack("{s:s, s:s}", "op", "releases", "environment", o->env), *resp = NULL, *r;
	size_t i;
	int ret = client_call(ctx, req, &resp);
	if (ret)
		return ret;
	if (ctx->json) {
		json_dumpf(json_object_get(resp, "releases"), stdout, JSON_COMPACT | JSON_SORT_KEYS);
		printf("\n");
	} else {
		printf("%-6s %-13s %-20s %s\n", "ID", "STATE", "BY", "SERVICES");
		json_array_foreach(json_object_get(resp, "releases"), i, r) {
			size_t k;
			json_t *it;
			printf("%-6lld %-13s %-20s", (long long)json_integer_value(json_object_get(r, "id")),
			       json_string_value(json_object_get(r, "state")),
			       json_string_value(json_object_get(r, "created_by")));
			json_array_foreach(json_object_get(r, "services"), k, it)
				printf(" %s=%s", json_string_value(json_object_get(it, "service")),
				       json_string_value(json_object_get(it, "state")));
			printf("\n");
		}
	}
	json_decref(resp);
	return EXIT_OK;
}

/* gantry release resume|abort ID --env ENV [--reason TEXT] [--wait] */
static int run_command(struct cli_ctx *ctx, const struct release_opts *o, int npos, char **argv)
{
	long long id = 0;
	json_t *req, *resp = NULL, *r = NULL;
	int ret;
	if (npos != 2 || (id = strtoll(argv[1], NULL, 10)) <= 0)
		return cli_error("gantry release %s: one release ID", argv[0]);
	req = json_pack("{s:s, s:s, s:I}", "op", !strcmp(argv[0], "resume") ? "release_resume" : "release_abort",
			"environment", o->env, "id", (json_int_t)id);
	if (o->reason)
		json_object_set_new(req, "reason", json_string(o->reason));
	if ((ret = client_call(ctx, req, &resp)))
		return ret;
	if (!ctx->json)
		printf("release %lld of %s: %s\n", id, o->env, json_string_value(json_object_get(resp, "state")));
	ret = follow_release(ctx, o, o->env, id, resp, &r);
	json_decref(resp);
	/* resume: it succeeded; abort: what it changed is back (or a pending one ended) */
	if (!ret && r)
		ret = state_is(r, !strcmp(argv[0], "resume") ? "succeeded" : "rolled_back") == EXIT_OK ||
		      state_is(r, "aborted") == EXIT_OK ? EXIT_OK : EXIT_FAILED;
	json_decref(r);
	return ret;
}

/* gantry release promote ID --env FROM --to ENV [--wait]: a new release of ENV */
static int run_promote(struct cli_ctx *ctx, const struct release_opts *o, int npos, char **argv)
{
	long long id = 0, nid;
	json_t *resp = NULL, *r = NULL;
	int ret;
	if (npos != 2 || (id = strtoll(argv[1], NULL, 10)) <= 0)
		return cli_error("gantry release promote: one release ID");
	if (!o->to)
		return cli_error("gantry release promote: --to ENV is required");
	ret = client_call(ctx, json_pack("{s:s, s:s, s:I, s:s, s:s}", "op", "release_promote", "environment", o->env,
					 "id", (json_int_t)id, "to", o->to, "deployed_by", client_user()),
			  &resp);
	if (ret)
		return ret;
	nid = json_integer_value(json_object_get(resp, "release"));
	if (!ctx->json)
		printf("release %lld of %s (release %lld of %s promoted) started\n", nid, o->to, id, o->env);
	ret = follow_release(ctx, o, o->to, nid, resp, &r);
	json_decref(resp);
	if (!ret && r)
		ret = state_is(r, "succeeded");
	json_decref(r);
	return ret;
}

static int run(int argc, char **argv, struct cli_ctx *ctx)
{
	struct release_opts o = { 0 };
	struct spec *spec = NULL;
	json_t *req = NULL, *resp = NULL, *services, *only = NULL, *r = NULL;
	int npos, ret = EXIT_OK;
	long long id;

	if ((npos = cli_parse_opts(ctx->cmd, argc, argv, ctx, &o)) < 0)
		return EXIT_USAGE;
	if (!o.env)
		return cli_error("gantry release: --env ENV is required");
	if (npos && !strcmp(argv[0], "status"))
		return run_status(ctx, &o, npos, argv);
	if (npos && !strcmp(argv[0], "promote"))
		return run_promote(ctx, &o, npos, argv);
	if (npos && (!strcmp(argv[0], "resume") || !strcmp(argv[0], "abort")))
		return run_command(ctx, &o, npos, argv);
	if (npos && !strcmp(argv[0], "history"))
		return npos > 1 ? cli_error("gantry release history: no arguments") : run_history(ctx, &o);
	if ((ret = cli_load_spec(ctx, &spec)))
		return ret;
	for (int i = 0; i < npos; i++)
		if (!spec_find_service(spec, argv[i])) {
			ret = cli_error("gantry release: no service '%s' in %s", argv[i], spec->path);
			goto out;
		}
	req = json_pack("{s:s, s:s, s:s}", "op", "release", "environment", o.env, "deployed_by", client_user());
	services = json_array();
	json_object_set_new(req, "services", services);
	if (npos) {
		only = json_array();
		for (int i = 0; i < npos; i++)
			json_array_append_new(only, json_string(argv[i]));
		json_object_set_new(req, "only", only);
	}
	for (size_t i = 0; i < spec->nservices; i++) {
		const char *svc = spec->services[i].name;
		struct svc_config cfg = { 0 };
		char ver[160] = "", digest[ARTIFACT_DIGEST_HEX + 1] = "";
		json_t *item = json_pack("{s:s}", "service", svc);
		bool named = !npos;
		for (int k = 0; k < npos; k++)
			named |= !strcmp(argv[k], svc);
		if (!named) {
			json_decref(item);
			continue;
		}
		ret = cli_deploy_artifact(ctx, spec, svc, o.env, NULL, item, &cfg, ver, sizeof(ver), digest);
		svc_config_release(&cfg);
		if (ret) {
			json_decref(item);
			goto out;
		}
		json_object_set_new(item, "version", json_string(ver));
		json_array_append_new(services, item);
	}
	if ((ret = cli_spec_attach(ctx, req)) || (ret = cli_sops_attach(spec, o.env, req)))
		goto out;
	{
		/* the project's HEAD commit time, as deploy sends it: the release's lead time */
		int64_t ct = gates_cli_commit_time(spec->dir);
		if (ct > 0)
			json_object_set_new(req, "commit_time", json_integer(ct));
	}
	ret = client_call(ctx, req, &resp);
	req = NULL;
	if (ret)
		goto out;
	id = json_integer_value(json_object_get(resp, "release"));
	if (!ctx->json)
		printf("release %lld of %s started\n", id, o.env);
	ret = follow_release(ctx, &o, o.env, id, resp, &r);
	if (!ret && r)
		ret = state_is(r, "succeeded");
out:
	json_decref(r);
	json_decref(req);
	json_decref(resp);
	spec_free(spec);
	return ret;
}

static const struct cli_option release_options[] = {
	CLI_STRING('e', "env", struct release_opts, env, "ENV", "the environment"),
	CLI_STRING(0, "reason", struct release_opts, reason, "TEXT", "resume, abort: why (recorded)"),
	CLI_STRING('t', "to", struct release_opts, to, "ENV", "promote: the environment to release to"),
	CLIENT_WAIT_OPTIONS(struct release_opts, "--wait at most this long (default 30m)"),
	CLI_END,
};

const struct cli_cmd cli_cmd_release = {
	.name = "release",
	.usage = "gantry release --env ENV [SERVICE...] [--wait] [--timeout DUR]\n"
		 "       gantry release status [ID] --env ENV\n"
		 "       gantry release history --env ENV\n"
		 "       gantry release resume ID --env ENV [--reason TEXT] [--wait]\n"
		 "       gantry release abort ID --env ENV [--reason TEXT] [--wait]\n"
		 "       gantry release promote ID --env ENV --to ENV [--wait]",
	.summary = "deploy several services in dependency order, rolled back together",
	.options = release_options,
	.run = run,
};
