/*
 * gates_cli.c — spec-derived parts of requests for the gates (gates_cli.h).
 */
#include "common.h"
#include "cli/gates_cli.h"
#include "core/spec.h"
#include "gates/checks.h"
#include "gates/gspec.h"

struct spec *gates_cli_spec(const struct cli_ctx *ctx)
{
	char *path = cli_spec_path(ctx);
	struct diags d = { 0 };
	struct spec *spec = NULL;
	if (access(path, R_OK) == 0 && spec_load(path, &spec, &d) < 0)
		spec = NULL;
	diags_release(&d);
	free(path);
	return spec;
}

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

void gates_cli_decorate(const struct spec *spec, const char *svc, const char *env, json_t *req)
{
	json_t *n;
	int64_t ct;
	if (!spec)
		return;
	json_object_set_new(req, "gates", gspec_gates(spec, svc, env));
	if ((n = gspec_notify(spec)))
		json_object_set_new(req, "notify", n);
	if (!json_object_get(req, "commit_time") && (ct = gates_cli_commit_time(spec->dir)) > 0)
		json_object_set_new(req, "commit_time", json_integer(ct));
}

void gates_cli_add_notify(const struct cli_ctx *ctx, json_t *req)
{
	struct spec *spec = gates_cli_spec(ctx);
	json_t *n = spec ? gspec_notify(spec) : NULL;
	if (n)
		json_object_set_new(req, "notify", n);
	spec_free(spec);
}

int gates_cli_pre_checks(const struct spec *spec, const char *svc, json_t *req, bool quiet)
{
	json_t *g = spec ? gspec_gates(spec, svc, "-") : NULL;
	json_t *pre = json_object_get(json_object_get(g, "checks"), "pre"), *res, *r;
	bool ok = true;
	size_t i;
	if (!json_is_array(pre) || !json_array_size(pre)) {
		json_decref(g);
		return EXIT_OK;
	}
	if (!quiet)
		fprintf(stderr, "pre-deployment checks of %s:\n", svc);
	res = checks_run_list(pre, spec->dir, 0, &ok);
	json_array_foreach(res, i, r) {
		json_object_set_new(r, "phase", json_string("pre"));
		if (!quiet)
			fprintf(stderr, "  %s %s\n%s%s", json_is_true(json_object_get(r, "ok")) ? "ok  " : "FAIL",
				json_string_value(json_object_get(r, "check")),
				json_is_true(json_object_get(r, "ok")) ? "" : json_string_value(json_object_get(r, "output")),
				json_is_true(json_object_get(r, "ok")) ? "" : "\n");
	}
	json_object_set_new(req, "checks", res);
	json_decref(g);
	if (!ok) {
		fprintf(stderr, "error: a pre-deployment check failed: nothing was deployed\n");
		return EXIT_REFUSED;
	}
	return EXIT_OK;
}

void gates_cli_print_json(const json_t *v)
{
	char *s = json_dumps(v, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	printf("%s\n", s ? s : "null");
	free(s);
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
