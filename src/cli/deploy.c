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
#include "cli/deploy.h"
#include "cli/gates_cli.h"
#include "cli/pullwait.h"
#include "cli/spec_load.h"
#include "core/spec.h"
#include "artifact/artifact.h"
#include "runtime/docker.h"
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

struct deploy_opts {
	const char *env, *version, *strategy, *reason;
	struct cli_multi sets;
	bool wait, emergency;
	int64_t timeout_ms;
};

/* --set env.KEY=VALUE with KEY a valid environment variable name: 0, or the error printed and EXIT_USAGE */
static int check_sets(const struct cli_multi *sets)
{
	for (size_t i = 0; i < sets->n; i++) {
		const char *s = sets->items[i], *eq = strchr(s, '=');
		size_t klen = eq ? (size_t)(eq - s - 4) : 0;
		if (strncmp(s, "env.", 4) || !eq || eq == s + 4)
			return cli_error("--set %s: expected env.KEY=VALUE", s);
		if (strspn(s + 4, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_") < klen ||
		    (s[4] >= '0' && s[4] <= '9'))
			return cli_error("--set %s: '%.*s' is not a valid environment variable name", s, (int)klen, s + 4);
	}
	return 0;
}

/* runs the service's build command in the project directory: 0, or the error printed and EXIT_FAILED */
static int build(const struct spec *spec, const struct svc_config *cfg)
{
	char *cmd;
	int st;
	if (!cfg->build || !*cfg->build)
		return 0;
	cmd = xasprintf("cd '%s' && %s", spec->dir, cfg->build);
	fprintf(stderr, "build: %s\n", cfg->build);
	st = system(cmd);
	free(cmd);
	if (st == 0)
		return 0;
	fprintf(stderr, "error: build failed (%s %d): nothing was deployed\n",
		WIFEXITED(st) ? "exit status" : "signal", WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st));
	return EXIT_FAILED;
}

/* a line of the Engine's build or push progress, on stderr */
static void show_progress(void *data, const char *line)
{
	(void)data;
	fprintf(stderr, "%s\n", line);
}

/*
 * build: {dockerfile, context, args}: the image is built through the Engine
 * at DOCKER_HOST and tagged SERVICE:VERSION; with a registry it is also
 * tagged REGISTRY/SERVICE:VERSION and pushed, and image_ref names it there
 * by its manifest digest. digest gets the image id's hex (the revision's
 * artifact). 0, or the error printed and EXIT_FAILED (nothing deployed).
 */
static int build_image(const struct spec *spec, const struct svc_config *cfg, const char *ver, char *digest,
		       size_t dlen, char *image_ref, size_t rlen)
{
	const struct image_build *b = cfg->image_build;
	struct docker *d;
	struct docker_image img;
	struct gerr err;
	char *ctxdir = NULL, *tag = NULL, *repo = NULL, *pushref = NULL;
	int ret = EXIT_FAILED;

	image_ref[0] = 0;
	if (!(d = docker_open(NULL, &err))) {
		fprintf(stderr, "error: %s: cannot build its image: %s: nothing was deployed\n", cfg->service, err.msg);
		return EXIT_FAILED;
	}
	ctxdir = b->context && b->context[0] == '/' ? xstrdup(b->context)
		: xasprintf("%s/%s", spec->dir, b->context ? b->context : ".");
	tag = xasprintf("%s:%s", cfg->service, ver);
	fprintf(stderr, "build: %s (context %s, %s)\n", tag, b->context ? b->context : ".",
		b->dockerfile ? b->dockerfile : "Dockerfile");
	if (docker_image_build(d, ctxdir, b->dockerfile, b->args, b->nargs, tag, show_progress, NULL, &img,
			       &err) < 0) {
		fprintf(stderr, "error: %s: the image build failed: %s: nothing was deployed\n", cfg->service, err.msg);
		goto out;
	}
	if (strncmp(img.id, "sha256:", 7) || strlen(img.id + 7) != 64 || strlen(img.id + 7) >= dlen) {
		fprintf(stderr, "error: %s: the build gave an unexpected image id '%s': nothing was deployed\n", cfg->service, img.id);
		goto out;
	}
	fprintf(stderr, "built %s: image %.19s\n", tag, img.id);
	if (cfg->registry && *cfg->registry) {
		repo = xasprintf("%s/%s", cfg->registry, cfg->service);
		pushref = xasprintf("%s:%s", repo, ver);
		if (docker_image_tag(d, img.id, repo, ver, &err) < 0) {
			fprintf(stderr, "error: %s: %s: nothing was deployed\n", cfg->service, err.msg);
			goto out;
		}
		fprintf(stderr, "push: %s\n", pushref);
		if (docker_image_push(d, pushref, show_progress, NULL, &err) < 0) {
			fprintf(stderr, "error: push of %s to registry %s failed: %s: nothing was deployed\n", pushref,
				cfg->registry, err.msg);
			goto out;
		}
		/* the manifest digest the registry gave it: what another Engine pulls */
		if (docker_image_inspect(d, pushref, &img, &err) != 1 || strncmp(img.repo_digest, repo, strlen(repo)) ||
		    img.repo_digest[strlen(repo)] != '@') {
			fprintf(stderr, "error: pushed %s but the Engine reports no digest for it in %s (%s): nothing was "
				"deployed\n", pushref, repo, img.repo_digest[0] ? img.repo_digest : "none");
			goto out;
		}
		snprintf(image_ref, rlen, "%s@%s", pushref, img.repo_digest + strlen(repo) + 1);
		fprintf(stderr, "pushed %s\n", image_ref);
	}
	strlcpy_g(digest, img.id + 7, dlen);
	ret = 0;
out:
	docker_close(d);
	free(ctxdir);
	free(tag);
	free(repo);
	free(pushref);
	return ret;
}

/*
 * A docker service's artifact: an image: reference is pinned by the
 * controller (nothing sent); a build: {dockerfile, ...} is built here (and
 * pushed to its registry) and its id sent. The version is --version, else
 * the commit, else (image:) the reference's tag or (build:) "build".
 */
static int docker_artifact(const struct spec *spec, const struct svc_config *cfg, const char *version, char *ver,
			   size_t vlen, char *digest, size_t dlen, char *image_ref, size_t rlen)
{
	digest[0] = image_ref[0] = 0;
	if (version) {
		strlcpy_g(ver, version, vlen);
	} else if (git_version(spec->dir, ver, vlen) < 0) {
		if (cfg->image_build) {
			snprintf(ver, vlen, "build");
		} else {
			const char *slash = strrchr(cfg->image, '/'), *colon = strrchr(slash ? slash : cfg->image, ':');
			strlcpy_g(ver, colon ? colon + 1 : cfg->image, vlen);
		}
	}
	if (!cfg->image_build)
		return 0;
	return build_image(spec, cfg, ver, digest, dlen, image_ref, rlen);
}

/*
 * The artifact of svc in env for a deploy or a release (cfg: the caller's
 * storage, resolved here; released by the caller): a docker service's
 * image (its "digest" and "image_ref" set in req), else the build, then the
 * snapshot (or upload) of the artifact; req gets "digest", ver the version
 * (version given, else the git short SHA, else the digest's first 12).
 */
int cli_deploy_artifact(struct cli_ctx *ctx, const struct spec *spec, const char *svc, const char *env,
			const char *version, json_t *req, struct svc_config *cfg, char *ver, size_t verlen,
			char digest[ARTIFACT_DIGEST_HEX + 1])
{
	struct gerr err;
	char *artifact = NULL, *home = NULL;
	int ret = 0;

	if (spec_resolve(spec, svc, env, cfg, &err) < 0)
		return cli_error("%s", err.msg);
	if (cfg->runtime == RUNTIME_DOCKER) {
		/* the controller pins the image (its id in its Engine) */
		char image_ref[512];
		if ((ret = docker_artifact(spec, cfg, version, ver, verlen, digest, ARTIFACT_DIGEST_HEX + 1,
					   image_ref, sizeof(image_ref))))
			return ret;
		if (digest[0])
			json_object_set_new(req, "digest", json_string(digest));
		if (image_ref[0])
			json_object_set_new(req, "image_ref", json_string(image_ref));
		return 0;
	}
	if ((ret = build(spec, cfg)))
		return ret;
	artifact = cfg->artifact && cfg->artifact[0] == '/' ? xstrdup(cfg->artifact)
		: xasprintf("%s/%s", spec->dir, cfg->artifact ? cfg->artifact : ".");
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
		strlcpy_g(ver, version, verlen);
	else if (git_version(spec->dir, ver, verlen) < 0)
		snprintf(ver, verlen, "%.12s", digest);
	json_object_set_new(req, "digest", json_string(digest));
out:
	free(artifact);
	free(home);
	return ret;
}

static int run(int argc, char **argv, struct cli_ctx *ctx)
{
	struct deploy_opts o = { 0 };
	const char *svc, *env;
	struct spec *spec = NULL;
	struct svc_config cfg = { 0 };
	char digest[ARTIFACT_DIGEST_HEX + 1] = "", ver[160] = "", *artifact = NULL, *home = NULL;
	int ret;
	json_t *resp = NULL, *req = NULL;
	json_int_t rollout;

	if ((ret = client_parse_target(ctx, argc, argv, &o, &o.env)))
		goto out;
	svc = argv[0];
	env = o.env;
	if (o.strategy && strcmp(o.strategy, "rolling") && strcmp(o.strategy, "recreate")) {
		ret = cli_error("--strategy: unknown strategy '%s' (rolling or recreate)", o.strategy);
		goto out;
	}
	if ((ret = check_sets(&o.sets)))
		goto out;
	req = json_pack("{s:s, s:s, s:s, s:s}", "op", "deploy", "service", svc, "environment", env,
			"deployed_by", client_user());
	if (cli_spec_present(ctx)) {
		/* from a project directory: build, snapshot or upload the artifact,
		 * and send the spec; the controller applies it under its rules and
		 * resolves the config itself */
		if ((ret = cli_load_spec(ctx, &spec)))
			goto out;
		if ((ret = cli_deploy_artifact(ctx, spec, svc, env, o.version, req, &cfg, ver, sizeof(ver), digest)))
			goto out;
		if (cfg.runtime == RUNTIME_DOCKER) {
			if ((ret = cli_spec_attach(ctx, req)) || (ret = cli_sops_attach(spec, env, req)))
				goto out;
			goto send;
		}
		if ((ret = cli_spec_attach(ctx, req)) || (ret = cli_sops_attach(spec, env, req)))
			goto out;
		{
			int64_t ct = gates_cli_commit_time(spec->dir);
			if (ct > 0)
				json_object_set_new(req, "commit_time", json_integer(ct));
		}
	} else if (o.version) {
		/* no spec at hand (CI, another machine): the stored spec, and the
		 * artifact of a revision that already has this version */
		strlcpy_g(ver, o.version, sizeof(ver));
	} else {
		ret = cli_error("deploy: no gantry.yaml here (name one with -f FILE), or give --version V to deploy a "
				"version the controller already has against its stored spec");
		goto out;
	}
send:
	json_object_set_new(req, "version", json_string(ver));
	if (o.sets.n) {
		json_t *a = json_array();
		for (size_t i = 0; i < o.sets.n; i++)
			json_array_append_new(a, json_string(o.sets.items[i]));
		json_object_set_new(req, "set", a);
	}
	client_req_str(req, "strategy", o.strategy);
	client_req_override(req, o.emergency, o.reason);
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
	if ((ret = cli_pull_follow(ctx, svc, env, resp)))
		goto out;
	if ((ret = gates_cli_deploy_started(ctx, svc, env, resp)))
		goto out;
	rollout = json_integer_value(json_object_get(resp, "rollout"));
	if (ctx->json && !o.wait)
		printf("{\"service\":\"%s\",\"environment\":\"%s\",\"revision\":%lld,\"rollout\":%lld,\"version\":\"%s\"}\n",
		       svc, env, (long long)json_integer_value(json_object_get(resp, "revision")), (long long)rollout, ver);
	else if (!ctx->json)
		printf("deploying %s@%s revision %lld (version %s%s%.12s), rollout %lld\n", svc, env,
		       (long long)json_integer_value(json_object_get(resp, "revision")), ver,
		       digest[0] ? ", artifact " : "", digest, (long long)rollout);
	fflush(stdout);
	if (o.wait)
		ret = client_wait_rollout(ctx, svc, env, rollout, client_wait_ms(o.timeout_ms, cfg.progress_deadline_ms));
out:
	json_decref(req);
	json_decref(resp);
	svc_config_release(&cfg);
	spec_free(spec);
	free(artifact);
	free(home);
	free(o.sets.items);
	return ret;
}

static const struct cli_option deploy_options[] = {
	CLI_STRING('e', "env", struct deploy_opts, env, "ENV", "the environment to deploy to"),
	CLI_STRING(0, "version", struct deploy_opts, version, "V",
		   "its version (default the git short SHA); without a spec: one the controller has"),
	CLI_MULTI(0, "set", struct deploy_opts, sets, "env.KEY=VALUE", "an environment variable on top of the spec's (repeatable)"),
	CLI_STRING(0, "strategy", struct deploy_opts, strategy, "rolling|recreate", "the strategy, instead of the spec's"),
	CLIENT_WAIT_OPTIONS(struct deploy_opts, "--wait at most this long (default the progress deadline and a minute)"),
	CLIENT_EMERGENCY_OPTIONS(struct deploy_opts, "skip windows, freezes and approvals"),
	CLI_END,
};

const struct cli_cmd cli_cmd_deploy = {
	.name = "deploy",
	.usage = "gantry deploy SERVICE --env ENV [--version V] [--set env.KEY=VALUE]... [--strategy rolling|recreate] [--wait] [--timeout DUR]\n"
		 "       [--emergency --reason TEXT]",
	.summary = "create a new revision from the spec and roll it out",
	.options = deploy_options,
	.run = run,
};
