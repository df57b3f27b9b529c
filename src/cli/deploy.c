/*
 * gantry deploy SVC --env E: from a project directory, validate the spec,
 * run `build`, snapshot the artifact (content-addressed; with GANTRY_API,
 * upload it unless the daemon has it), work out the version, and send the
 * spec with the request: the controller applies it under its rules,
 * resolves the config and evaluates the gates from what it stores
 * (docs/security.md). Without a spec, --version V deploys a version the
 * controller already has against its stored spec.
 */
#include "common.h"
#include "cli/client.h"
#include "cli/gates_cli.h"
#include "cli/spec_load.h"
#include "core/spec.h"
#include "store/artifact.h"
#include "util/parse.h"
#include <sys/wait.h>

/* `git rev-parse --short HEAD` of dir, "-dirty" if uncommitted; 0 or -1 if not a repo */
static int git_version(const char *dir, char *out, size_t len)
{
	char *cmd = xasprintf("cd '%s' 2>/dev/null && git rev-parse --is-inside-work-tree >/dev/null 2>&1 && "
			      "git rev-parse --short=12 HEAD 2>/dev/null && "
			      "{ test -z \"$(git status --porcelain --untracked-files=no 2>/dev/null)\" || echo dirty; }", dir);
	FILE *p = popen(cmd, "r");
	char line[128];
	int ret = -1;
	free(cmd);
	if (!p)
		return -1;
	if (fgets(line, sizeof(line), p)) {
		line[strcspn(line, "\n")] = 0;
		if (*line) {
			strlcpy_g(out, line, len);
			ret = 0;
			if (fgets(line, sizeof(line), p) && !strncmp(line, "dirty", 5)) {
				size_t l = strlen(out);
				snprintf(out + l, len - l, "-dirty");
			}
		}
	}
	if (pclose(p) != 0)
		ret = -1;
	return ret;
}

static int run(int argc, char **argv, struct cli_ctx *ctx)
{
	const char *env = NULL, *version = NULL, *strategy = NULL, *timeout = NULL, *reason = NULL, **pos;
	bool wait = false, emergency = false;
	struct cli_multi sets = { 0 };
	struct cli_opt opts[] = {
		{ "env", 'e', OPT_STRING, &env },
		{ "version", 0, OPT_STRING, &version },
		{ "set", 0, OPT_MULTI, &sets },
		{ "strategy", 0, OPT_STRING, &strategy },
		{ "wait", 'w', OPT_FLAG, &wait },
		{ "timeout", 0, OPT_STRING, &timeout },
		{ "emergency", 0, OPT_FLAG, &emergency },
		{ "reason", 0, OPT_STRING, &reason },
		{ 0 },
	};
	struct spec *spec = NULL;
	struct svc_config cfg = { 0 };
	struct gerr err;
	char digest[ARTIFACT_DIGEST_HEX + 1] = "", ver[160] = "", *artifact = NULL, *home = NULL;
	int64_t timeout_ms = 0;
	int npos, ret;
	json_t *resp = NULL, *req = NULL, *row = NULL;
	json_int_t rev, rollout;

	if (cli_parse(argc, argv, opts, ctx, &pos, &npos) < 0)
		return EXIT_USAGE;
	if ((ret = client_need_svc_env("deploy", pos, npos, env)))
		goto out;
	if (timeout && parse_duration_ms(timeout, &timeout_ms) < 0) {
		ret = cli_error("--timeout: invalid duration '%s' (e.g. 90s, 10m)", timeout);
		goto out;
	}
	if (strategy && strcmp(strategy, "rolling") && strcmp(strategy, "recreate")) {
		ret = cli_error("--strategy: unknown strategy '%s' (rolling or recreate)", strategy);
		goto out;
	}
	for (size_t i = 0; i < sets.n; i++) {
		const char *s = sets.items[i], *eq = strchr(s, '=');
		size_t klen = eq ? (size_t)(eq - s - 4) : 0;
		if (strncmp(s, "env.", 4) || !eq || eq == s + 4) {
			ret = cli_error("--set %s: expected env.KEY=VALUE", s);
			goto out;
		}
		if (strspn(s + 4, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_") < klen ||
		    (s[4] >= '0' && s[4] <= '9')) {
			ret = cli_error("--set %s: '%.*s' is not a valid environment variable name", s, (int)klen, s + 4);
			goto out;
		}
	}
	req = json_pack("{s:s, s:s, s:s, s:s}", "op", "deploy", "service", pos[0], "environment", env,
			"deployed_by", client_user());
	if (cli_spec_present(ctx)) {
		/* from a project directory: build, snapshot or upload the artifact,
		 * and send the spec; the controller applies it under its rules and
		 * resolves the config itself */
		if ((ret = cli_load_spec(ctx, &spec)))
			goto out;
		if (spec_resolve(spec, pos[0], env, &cfg, &err) < 0) {
			ret = cli_error("%s", err.msg);
			goto out;
		}
		if (cfg.build && *cfg.build) {
			char *cmd = xasprintf("cd '%s' && %s", spec->dir, cfg.build);
			int st;
			fprintf(stderr, "build: %s\n", cfg.build);
			st = system(cmd);
			free(cmd);
			if (st != 0) {
				fprintf(stderr, "error: build failed (%s %d): nothing was deployed\n",
					WIFEXITED(st) ? "exit status" : "signal", WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st));
				ret = EXIT_FAILED;
				goto out;
			}
		}
		artifact = cfg.artifact && cfg.artifact[0] == '/' ? xstrdup(cfg.artifact)
			: xasprintf("%s/%s", spec->dir, cfg.artifact ? cfg.artifact : ".");
		home = cli_home(ctx);
		if (client_api_url()) {
			/* the daemon may be on another machine: it gets the artifact over
			 * the API (uploaded if it lacks it), never through a local HOME */
			if ((ret = client_push_artifact(artifact, home, digest)))
				goto out;
		} else if (artifact_snapshot(artifact, home, digest, &err) < 0) {
			fprintf(stderr, "error: %s\n", err.msg);
			ret = EXIT_FAILED;
			goto out;
		}
		if (version)
			strlcpy_g(ver, version, sizeof(ver));
		else if (git_version(spec->dir, ver, sizeof(ver)) < 0)
			snprintf(ver, sizeof(ver), "%.12s", digest);
		json_object_set_new(req, "digest", json_string(digest));
		if ((ret = cli_spec_attach(ctx, req)))
			goto out;
		{
			int64_t ct = gates_cli_commit_time(spec->dir);
			if (ct > 0)
				json_object_set_new(req, "commit_time", json_integer(ct));
		}
	} else if (version) {
		/* no spec at hand (CI, another machine): the stored spec, and the
		 * artifact of a revision that already has this version */
		strlcpy_g(ver, version, sizeof(ver));
	} else {
		ret = cli_error("deploy: no gantry.yaml here (name one with -f FILE), or give --version V to deploy a "
				"version the controller already has against its stored spec");
		goto out;
	}
	json_object_set_new(req, "version", json_string(ver));
	if (sets.n) {
		json_t *a = json_array();
		for (size_t i = 0; i < sets.n; i++)
			json_array_append_new(a, json_string(sets.items[i]));
		json_object_set_new(req, "set", a);
	}
	if (strategy)
		json_object_set_new(req, "strategy", json_string(strategy));
	if (emergency)
		json_object_set_new(req, "emergency", json_true());
	if (reason)
		json_object_set_new(req, "reason", json_string(reason));
	ret = client_call(ctx, req, &resp);
	req = NULL;
	if (ret)
		goto out;
	if (json_is_object(json_object_get(resp, "spec_applied")) && !ctx->json) {
		json_t *sa = json_object_get(resp, "spec_applied");
		fprintf(stderr, "spec version %lld applied with this deploy:\n",
			(long long)json_integer_value(json_object_get(sa, "version")));
		cli_print_spec_diff(stderr, json_object_get(sa, "diff"));
	}
	if (!strcmp(json_string_value(json_object_get(resp, "state")) ?: "", "pre_checks")) {
		if ((ret = gates_cli_wait_deployment(ctx, pos[0], env, json_integer_value(json_object_get(resp, "deployment")),
						     &row)))
			goto out;
		rev = json_integer_value(json_object_get(row, "revision"));
		rollout = json_integer_value(json_object_get(row, "rollout"));
	} else {
		rev = json_integer_value(json_object_get(resp, "revision"));
		rollout = json_integer_value(json_object_get(resp, "rollout"));
	}
	if (ctx->json && !wait)
		printf("{\"service\":\"%s\",\"environment\":\"%s\",\"revision\":%lld,\"rollout\":%lld,\"version\":\"%s\"}\n",
		       pos[0], env, (long long)rev, (long long)rollout, ver);
	else if (!ctx->json)
		printf("deploying %s@%s revision %lld (version %s%s%.12s), rollout %lld\n", pos[0], env, (long long)rev, ver,
		       digest[0] ? ", artifact " : "", digest, (long long)rollout);
	fflush(stdout);
	if (wait)
		ret = client_wait_rollout(ctx, pos[0], env, rollout, timeout_ms ? timeout_ms
					  : (cfg.progress_deadline_ms ? cfg.progress_deadline_ms : 600000) + 60000);
out:
	json_decref(req);
	json_decref(resp);
	json_decref(row);
	svc_config_release(&cfg);
	spec_free(spec);
	free(artifact);
	free(home);
	free(sets.items);
	if (npos)
		free(pos);
	return ret;
}

const struct cli_cmd cli_cmd_deploy = {
	.name = "deploy",
	.usage = "gantry deploy SERVICE --env ENV [--version V] [--set env.KEY=VALUE]... [--strategy rolling|recreate] [--wait] [--timeout DUR]\n"
		 "       [--emergency --reason TEXT]",
	.summary = "create a new revision from the spec and roll it out",
	.run = run,
};
